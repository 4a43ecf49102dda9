/* model/ private declarations shared between files of libvl (vl__* symbols).
 * Never included by a public header or by code outside model/.
 *
 * Ownership: struct vl_model owns the mappings (vl_safetensors), the config, the tokenizer and the
 * weight views; every struct vl_tensor in struct vl_weights is a borrowed view into a mapping
 * (or into model->owned for small tensors widened at load). */
#ifndef VL_IMPL_H
#define VL_IMPL_H

#include "vl.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- tensors ----------------------------------------------------------------------------- */

enum vl_dtype {
    VL_DTYPE_F32 = 0,
    VL_DTYPE_F16,
    VL_DTYPE_BF16,
    VL_DTYPE_F64,
    VL_DTYPE_I64,
    VL_DTYPE_I32,
    VL_DTYPE_I16,
    VL_DTYPE_I8,
    VL_DTYPE_U8,
    VL_DTYPE_BOOL,
    VL_DTYPE_F8_E4M3,
    VL_DTYPE_F8_E5M2,
    VL_DTYPE_COUNT
};

#define VL_MAX_DIMS 5 /* Conv3d patch-embed weight is 5-D */

/* A view of n-dimensional row-major data. ne[0] is the OUTERMOST dimension, as in safetensors
 * and PyTorch (shape [out, in] has ne[0] = out, ne[1] = in). */
struct vl_tensor {
    enum vl_dtype dtype;
    int ndim;
    int64_t ne[VL_MAX_DIMS];
    const void *data; /* borrowed */
    const char *name; /* borrowed; valid while the owner lives */
};

size_t vl__dtype_size(enum vl_dtype t);
const char *vl__dtype_name(enum vl_dtype t);
int64_t vl__tensor_numel(const struct vl_tensor *t);

/* ---- configuration (config.json, preprocessor_config.json, generation_config.json) ------ */

#define VL_MAX_FULLATT_BLOCKS 64
#define VL_MROPE_SECTIONS 3

struct vl_vision_config {
    int64_t depth;              /* number of ViT blocks */
    int64_t hidden_size;        /* D */
    int64_t num_heads;
    int64_t intermediate_size;  /* Iv */
    int64_t out_hidden_size;    /* merger output = LLM hidden */
    int64_t patch_size;         /* P */
    int64_t temporal_patch_size;/* TP */
    int64_t spatial_merge_size; /* M */
    int64_t window_size;        /* in pixels */
    int64_t in_chans;
    int64_t n_fullatt;
    int64_t fullatt_block_indexes[VL_MAX_FULLATT_BLOCKS];
    double tokens_per_second;
    double rms_norm_eps;        /* ViT RMSNorm eps (1e-6; not in config.json) */
};

struct vl_text_config {
    int64_t hidden_size;        /* H */
    int64_t intermediate_size;  /* I */
    int64_t num_hidden_layers;
    int64_t num_attention_heads;
    int64_t num_key_value_heads;
    int64_t head_dim;           /* derived H / nQ */
    int64_t vocab_size;
    int64_t max_position_embeddings;
    double rms_norm_eps;
    double rope_theta;
    int64_t mrope_section[VL_MROPE_SECTIONS];
    bool tie_word_embeddings;
};

struct vl_preproc_config {
    int64_t min_pixels, max_pixels;
    int64_t patch_size, temporal_patch_size, merge_size;
    double image_mean[3], image_std[3];
    double rescale_factor;
};

#define VL_MAX_EOS_IDS 8

struct vl_gen_config {
    int32_t bos_token_id, pad_token_id;
    int n_eos;
    int32_t eos_token_ids[VL_MAX_EOS_IDS];
    double temperature, top_p, repetition_penalty;
    int64_t top_k;
    bool do_sample;
};

struct vl_config {
    char model_type[64];        /* "qwen2_5_vl" */
    struct vl_text_config text;
    struct vl_vision_config vision;
    struct vl_preproc_config preproc;
    struct vl_gen_config gen;
    int32_t image_token_id, video_token_id, vision_start_token_id, vision_end_token_id;
    int32_t vision_token_id;
};

/* ---- weights --------------------------------------------------------------------------- */

struct vl_vision_block {
    struct vl_tensor norm1, qkv_w, qkv_b, proj_w, proj_b, norm2;
    struct vl_tensor gate_w, gate_b, up_w, up_b, down_w, down_b;
};

struct vl_llm_layer {
    struct vl_tensor attn_norm, q_w, q_b, k_w, k_b, v_w, v_b, o_w, mlp_norm;
    struct vl_tensor gate_w, up_w, down_w;
};

struct vl_weights {
    /* vision */
    struct vl_tensor patch_embed;  /* [D, C, TP, P, P] */
    struct vl_vision_block *vblocks; /* [depth] */
    struct vl_tensor merger_norm, merger_fc1_w, merger_fc1_b, merger_fc2_w, merger_fc2_b;
    /* llm */
    struct vl_tensor embed;        /* [V, H] */
    struct vl_llm_layer *layers;   /* [num_hidden_layers] */
    struct vl_tensor final_norm;   /* [H] */
    struct vl_tensor lm_head;      /* [V, H]; == embed when tied */
};

struct vl_safetensors;  /* vl_safetensors.c: one mapped file */
struct vl_tokenizer;    /* vl_tokenizer.c */

struct vl_model {
    char *dir;
    struct vl_config cfg;
    struct vl_weights w;
    struct vl_safetensors **files; /* one per shard */
    int n_files;
    struct vl_tokenizer *tok;      /* NULL if loaded without tokenizer */
};

/* ---- compute kernels (vl_pool.c, vl_ops.c, vl_ops_*.c) ------------------------------------
 * Threads: OpenBLAS's pool for GEMM and one vl_pool for everything else; never both at once.
 * Every optimised kernel has a scalar *_ref twin that tests compare against. */

struct vl_pool;
/* n_threads >= 1; the calling thread is worker 0. */
struct vl_pool *vl__pool_new(int n_threads);
void vl__pool_free(struct vl_pool *p);
int vl__pool_size(const struct vl_pool *p);
/* Runs fn(arg, ith, nth) on every worker and returns when all are done. */
void vl__pool_run(struct vl_pool *p, void (*fn)(void *arg, int ith, int nth), void *arg);

/* Everything a kernel call needs besides its operands. */
struct vl_compute {
    struct vl_pool *pool;
    int n_threads;
    float *scratch;      /* weight-widening tiles; sized by vl__compute_scratch_bytes */
    size_t scratch_bytes;
};

/* y[n, out] = x[n, in] . W^T (+ b). W is [out, in] in F32, F16 or BF16 (read from the mapping,
 * widened per tile); b is [out] or NULL. y must not alias x. */
void vl__linear(struct vl_compute *c, float *y, const float *x, int64_t n,
                const struct vl_tensor *w, const struct vl_tensor *b);
void vl__linear_ref(float *y, const float *x, int64_t n, const struct vl_tensor *w,
                    const struct vl_tensor *b);
/* Row-major f32 GEMM: C = alpha * op(A) . op(B) + beta * C (cblas_sgemm semantics). */
void vl__gemm_f32(struct vl_compute *c, bool trans_a, bool trans_b, int64_t m, int64_t n,
                  int64_t k, float alpha, const float *a, int64_t lda, const float *b, int64_t ldb,
                  float beta, float *cm, int64_t ldc);
/* y[n, d] = x / sqrt(mean(x^2) + eps) * w  (computed in f32; y may alias x). */
void vl__rmsnorm(struct vl_compute *c, float *y, const float *x, int64_t n, int64_t d,
                 const struct vl_tensor *w, float eps);
/* x[i] = silu(gate[i]) * up[i] for n elements (result in gate). */
void vl__silu_mul(struct vl_compute *c, float *gate, const float *up, int64_t n);
/* Exact (erf) GELU in place. */
void vl__gelu(struct vl_compute *c, float *x, int64_t n);
/* In-place softmax of each of n rows of length d (max-subtracted, f32). */
void vl__softmax_rows(float *x, int64_t n, int64_t d);
/* Scratch bytes vl__linear needs for weights of at most max_out x max_in. */
size_t vl__compute_scratch_bytes(int n_threads, int64_t max_out, int64_t max_in);
/* Widens n values of a tensor's dtype starting at element offset to f32. */
void vl__to_f32(float *dst, const struct vl_tensor *t, int64_t offset, int64_t n);

/* ---- errors and logging inside libvl ----------------------------------------------------- */

enum vl_status vl__err(struct vl_error *err, enum vl_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void vl__log(enum vl_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
