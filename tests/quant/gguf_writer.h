/* Test helper: writes a loaded model's text weights as a llama.cpp-style GGUF v3 file
 * (general.architecture qwen2vl, qwen2vl.* hparams, llama.cpp tensor names, ggml dim order).
 * Float tensors are written as float_type (VL_GGML_F32, F16 or BF16); Linear weights the model
 * holds as Q8_0 / Q4_0 blocks (quantized at load) are written as those blocks, byte for byte.
 * output.weight is written only when the model has its own lm_head (untied or quantized). */
#ifndef GGUF_WRITER_H
#define GGUF_WRITER_H

#include "vl_gguf_impl.h"

/* arch: general.architecture to write (NULL: "qwen2vl"). tokenizer_json: a tokenizer.json whose
 * vocabulary, merges and added tokens are written as tokenizer.ggml.* the way llama.cpp's
 * converter does (ids without a token: "[PADn]", type UNUSED), or NULL. Returns 0 on success. */
int gw_write(const char *path, const struct vl_model *m, uint32_t float_type, const char *arch,
             const char *tokenizer_json);

#endif
