/* Test helper: writes a loaded model as llama.cpp-style GGUF v3 files.
 *   gw_write        the text model (general.architecture qwen2vl, qwen2vl.* hparams, llama.cpp
 *                   tensor names, ggml dim order)
 *   gw_write_k      the same with the Linear weights (and the embedding) in a k-quant type,
 *                   quantized here by our own implementation of the block layout; or, as the
 *                   reference, those k-quant values dequantized and written as F32
 *   gw_write_mmproj the vision tower as llama.cpp's projector (clip, qwen2.5vl_merger): the
 *                   Conv3d patch embedding split into its two temporal Conv2d halves, qkv split
 *                   into attn_q/k/v, v.*, mm.0 / mm.2 names; options make hostile variants
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

/* kq: VL_GGML_Q4_K (then v and down in Q6_K and the embedding in Q6_K, like llama.cpp's
 * Q4_K_M), VL_GGML_Q6_K (all of them), or any other type id (Q5_K: written as zero blocks of
 * its size, to test refusals). dequant: write every such tensor as F32 holding the values its
 * k-quant blocks decode to (the exact-path reference of the same weights). */
int gw_write_k(const char *path, const struct vl_model *m, uint32_t kq, bool dequant);

/* Hostile / mismatching variants of the projector (zero or NULL: as the model says). */
struct gw_proj_opts {
    const char *arch;           /* general.architecture (NULL: "clip") */
    const char *projector_type; /* NULL: "qwen2.5vl_merger" */
    int64_t projection_dim;     /* clip.vision.projection_dim (0: the model's out_hidden_size) */
    int64_t merge_size;         /* clip.vision.spatial_merge_size (0: the model's) */
    bool drop_patch_half;       /* leave out v.patch_embd.weight.1 */
    bool mean_off;              /* image_mean of another normalisation */
};
int gw_write_mmproj(const char *path, const struct vl_model *m, uint32_t float_type,
                    const struct gw_proj_opts *o);

/* Our own k-quant encoders (the layouts of ggml-common.h): n a multiple of 256. recon (may be
 * NULL) receives the values the blocks stand for, computed from the integer scales and quants
 * before they are packed into bytes, so it is independent of the packing libvl's decoder reads. */
void gw_quantize_q4_k(uint8_t *dst, float *recon, const float *x, int64_t n);
void gw_quantize_q6_k(uint8_t *dst, float *recon, const float *x, int64_t n);

/* A whole file into a malloc'd buffer (NULL on failure), and bytes out to a file (0 on success):
 * for the tests that corrupt and truncate written GGUF files. */
unsigned char *gw_read_file(const char *path, size_t *n);
int gw_write_file(const char *path, const unsigned char *b, size_t n);

#endif
