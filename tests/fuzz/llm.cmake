# LLM area (docs/model-llm.md): untrusted placeholder layouts through rope_index / expansion, and
# the sampler on arbitrary logits and parameters.
dp_add_fuzz(rope_index LIBS vl)
target_include_directories(fuzz_rope_index PRIVATE ${CMAKE_SOURCE_DIR}/model)
# Quantized checkpoints' quantization.json (docs/quantization.md): untrusted description.
dp_add_fuzz(quant_desc LIBS vl PkgConfig::GLIB)
target_include_directories(fuzz_quant_desc PRIVATE ${CMAKE_SOURCE_DIR}/model)
