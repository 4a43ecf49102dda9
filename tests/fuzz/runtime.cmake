# Fuzz targets of the model runtime (libvl: safetensors, configs, tokenizer).
dp_add_fuzz(safetensors LIBS vl)
dp_add_fuzz(config LIBS vl)
dp_add_fuzz(tokenizer LIBS vl PkgConfig::JANSSON PkgConfig::GLIB)
