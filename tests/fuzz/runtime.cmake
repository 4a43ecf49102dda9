# Fuzz targets of the model runtime (libvl: safetensors, configs, tokenizer).
dp_add_fuzz(safetensors LIBS vl)
dp_add_fuzz(config LIBS vl)
dp_add_fuzz(tokenizer LIBS vl PkgConfig::JANSSON PkgConfig::GLIB)
dp_add_fuzz(gguf LIBS vl)
target_include_directories(fuzz_gguf PRIVATE ${CMAKE_SOURCE_DIR}/model)
if(DP_BUILD_FUZZERS)
  target_include_directories(fuzz_gguf_lf PRIVATE ${CMAKE_SOURCE_DIR}/model)
endif()
