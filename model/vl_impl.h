/* model/ private declarations shared between files of libvl (vl__* symbols).
 * Never included by a public header or by code outside model/.
 *
 * Ownership: struct vl_model owns the mappings (vl_safetensors), the config, the tokenizer and the
 * weight views; every struct vl_tensor in struct vl_weights is a borrowed view into a mapping
 * (or into model->owned for small tensors widened at load). */
#ifndef VL_IMPL_H
#define VL_IMPL_H

#include "vl_tools.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

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
    VL_DTYPE_Q8_0, /* blocks of 32 (vl_quant_impl.h); never a safetensors dtype */
    VL_DTYPE_Q4_0,
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
    /* Q8_0 / Q4_0 Linear weights: the same blocks in the kernels' interleaved layout
     * (vl_quant_impl.h, "packed"): model-owned (packed at load from the rows, or quantized at
     * load), or a view of a version-2 `model quantize` checkpoint's mapping; NULL for every other
     * tensor. A quantized tensor may have pack without data (no rows kept: quantized at load,
     * v2 checkpoints); vl__qrow gives any one row's blocks from either. */
    const void *pack;
};

size_t vl__dtype_size(enum vl_dtype t);       /* bytes per element; per block of a block type */
int64_t vl__dtype_block(enum vl_dtype t);     /* elements per block: 1, or 32 for Q8_0/Q4_0 */
const char *vl__dtype_name(enum vl_dtype t);  /* safetensors spelling: "BF16", "F32", ... */
/* Element dtypes only (what safetensors may hold); block dtypes by vl__dtype_from_any_name. */
bool vl__dtype_from_name(const char *name, enum vl_dtype *out);
bool vl__dtype_from_any_name(const char *name, enum vl_dtype *out);
bool vl__dtype_is_float(enum vl_dtype t);     /* F32, F16 or BF16 (what the kernels read) */
int64_t vl__tensor_numel(const struct vl_tensor *t);
size_t vl__tensor_nbytes(const struct vl_tensor *t);
/* A view of a validated safetensors entry (borrows its name and data). */
enum vl_status vl__tensor_from_st(struct vl_tensor *out, const struct vl_st_entry *e,
                                  struct vl_error *err);
/* "[a, b, c]" into buf; returns snprintf's count. */
int vl__shape_str(char *buf, size_t n, int ndim, const int64_t *ne);
/* Overflow-checked size arithmetic (false on overflow, *out unspecified). */
bool vl__size_mul(size_t *out, size_t a, size_t b);
bool vl__size_add(size_t *out, size_t a, size_t b);

/* ---- file writing (vl_safetensors.c) ---------------------------------------------------- */

/* Atomic file: a temporary beside path, renamed onto it by commit (fsync first). */
struct vl_atomic_file {
    FILE *fp;
    char *path;
    char *tmp;
};
enum vl_status vl__atomic_open(struct vl_atomic_file *af, const char *path, struct vl_error *err);
enum vl_status vl__atomic_commit(struct vl_atomic_file *af, struct vl_error *err); /* frees af */
void vl__atomic_abort(struct vl_atomic_file *af); /* removes the temporary; zeroed af is fine */
enum vl_status vl__write_all(FILE *fp, const void *p, size_t n, const char *path,
                             struct vl_error *err);
/* Data offsets written by vl_st_write / vl__st_header (and the header's padded length): 64, a
 * cache line, so the mapped packed quantized weights (docs/quantization.md) start on one and
 * their 64-byte chunks never straddle two; readers accept any offset. */
#define VL_ST_WRITE_ALIGN 64
/* The safetensors header (8-byte length + JSON padded to VL_ST_WRITE_ALIGN) for n tensors whose
 * data follows in order, each at the next VL_ST_WRITE_ALIGN-aligned offset; e[i].data is not
 * read. *out_data_bytes = data section size. Caller frees *out with free(). */
enum vl_status vl__st_header(char **out, size_t *out_len, size_t *out_data_bytes,
                             const struct vl_st_entry *e, int n, struct vl_error *err);

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
    bool tie_word_embeddings_given; /* false: absent from config.json (decided by lm_head) */
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

/* Published Qwen2.5-VL special-token ids (config.json / generation_config.json, all sizes;
 * spec §1.2, §1.4): fallbacks when a file omits them, and what `model synth` writes. */
#define VL_PUB_BOS_ID 151643          /* <|endoftext|> (also pad and the second EOS) */
#define VL_PUB_EOS_ID 151645          /* <|im_end|> */
#define VL_PUB_VISION_START_ID 151652 /* <|vision_start|> */
#define VL_PUB_VISION_END_ID 151653   /* <|vision_end|> */
#define VL_PUB_VISION_PAD_ID 151654   /* <|vision_pad|> (unused by the model) */
#define VL_PUB_IMAGE_PAD_ID 151655    /* <|image_pad|> */
#define VL_PUB_VIDEO_PAD_ID 151656    /* <|video_pad|> */

/* Largest config/index JSON file read (tokenizer.json has its own limit). */
#define VL_CONFIG_MAX_BYTES ((size_t)64 << 20)

/* vl_config.c. Parsers fill the struct from one file's text (file names messages). Absent fields
 * take the published Qwen2.5-VL values; config_parse also sets preproc/gen to their defaults. */
enum vl_status vl__config_parse(struct vl_config *c, const char *text, size_t len,
                                const char *file, struct vl_error *err);
void vl__preproc_defaults(struct vl_preproc_config *p, const struct vl_vision_config *v);
enum vl_status vl__preproc_parse(struct vl_preproc_config *p, const struct vl_vision_config *v,
                                 const char *text, size_t len, const char *file,
                                 struct vl_error *err);
void vl__gen_defaults(struct vl_gen_config *g);
enum vl_status vl__gen_parse(struct vl_gen_config *g, const char *text, size_t len,
                             const char *file, struct vl_error *err);
/* config.json (required), preprocessor_config.json and generation_config.json (optional). */
enum vl_status vl__config_load_dir(struct vl_config *c, const char *dir, struct vl_error *err);
/* Whole file, NUL-terminated; refuses files over max. Caller frees *out with free(). */
enum vl_status vl__read_file(const char *path, size_t max, char **out, size_t *out_len,
                             struct vl_error *err);
char *vl__path_join(const char *dir, const char *name); /* malloc'd "dir/name"; NULL on OOM */

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

/* vl_weights.c: the binding table (name pattern -> field -> expected shape). */
#define VL_LM_HEAD_NAME "lm_head.weight"
enum vl_weight_init { VL_INIT_WEIGHT, VL_INIT_BIAS, VL_INIT_NORM }; /* how synth fills it */
/* Calls fn for every tensor of a checkpoint with config c (canonical names, expected shapes), in
 * table order; stops at and returns fn's first non-zero result. */
int vl__weights_foreach(const struct vl_config *c, bool with_lm_head,
                        int (*fn)(const char *name, int ndim, const int64_t *shape,
                                  enum vl_weight_init init, void *user),
                        void *user);
/* Spec §1.7: strips "model.visual." -> "visual.", "model.language_model." -> "model."; returns
 * name itself or buf. */
const char *vl__canonical_name(const char *name, char *buf, size_t n);

struct vl_st_file;      /* vl_safetensors.c: one mapped file (vl.h) */
struct vl_tokenizer;    /* vl_tokenizer.c */
struct vl_gguf;         /* vl_gguf.c */

struct vl_model {
    char *dir;
    struct vl_config cfg;
    struct vl_weights w;
    struct vl_st_file **files;     /* one per shard */
    int n_files;
    struct vl_tokenizer *tok;      /* NULL if loaded without tokenizer */
    void **owned;                  /* aligned copies of unaligned tensors, quantized weights */
    int n_owned;
    size_t owned_bytes;            /* their sizes summed (vl__model_own; model info's memory) */
    struct vl_gguf *gguf;          /* a llama.cpp GGUF the files view (vl_gguf_model.c), or NULL */
    struct vl_gguf *gguf_proj;     /* its vision projector (--mmproj, vl_gguf_proj.c), or NULL */
    bool text_only;                /* no vision tower bound (GGUF without a projector) */
    void *quant_desc;              /* GHashTable canonical name -> struct vl_quant_entry of a
                                    * `model quantize` checkpoint (vl_quant_ckpt.c); or NULL */
    int quant_version;             /* its description's version (1: rows, 2: packed); 0: none */
};

/* Hands p (bytes long, from vl__malloc / vl__aligned_alloc) to m: freed by vl_model_free and
 * counted in m->owned_bytes. On failure p is freed and VL_ERR_NOMEM returned. */
enum vl_status vl__model_own(struct vl_model *m, void *p, size_t bytes, struct vl_error *err);

/* Binds m->files' tensors to m->w per the table (m->cfg set); errors on missing, unexpected,
 * duplicate or wrong-shape tensors. Decides tying when config.json does not say. */
enum vl_status vl__weights_bind(struct vl_model *m, struct vl_error *err);
/* A file view over entries that live elsewhere (a GGUF's tensors under their canonical names):
 * copies the entries and names, borrows dtype strings and data. vl_st_close frees it. */
enum vl_status vl__st_from_entries(struct vl_st_file **out, const char *path, size_t file_size,
                                   const struct vl_st_entry *e, int n, struct vl_error *err);
void vl__weights_free(struct vl_weights *w);

/* ---- compute kernels (vl_pool.c, vl_compute.c, vl_ops.c, vl_ops_blas.c, vl_ops_x86.c,
 *      vl_attn.c; measured figures and design notes in docs/performance.md) -----------------
 * Threads: one vl_pool for everything. OpenBLAS is set to one thread and large GEMMs are split
 * into slices that the pool's workers run with the single-threaded cblas_sgemm (a second,
 * spinning OpenBLAS pool oversubscribes the cores; see vl_ops_blas.c, docs/performance.md).
 * vl__gemm_f32 / vl__linear may be called from the control thread or from inside a pool task
 * (then they run on that worker alone).
 * Every optimised kernel has a scalar *_ref twin that tests/kernels compares against.
 *
 *   struct vl_compute c;
 *   if (vl__compute_init(&c, n_threads, max_out, max_in, err) != VL_OK) return err->code;
 *   vl__linear(&c, y, x, n_tokens, &layer->q_w, &layer->q_b);   // y (n, out) = x (n, in) . W^T + b
 *   vl__compute_free(&c);
 *
 * Row-major conventions (documented once): every activation matrix is row-major (n, d) with a
 * leading dimension equal to its row length unless an ld argument says otherwise; weights are
 * row-major [out, in] as stored by PyTorch/safetensors, so a Linear is y = x . W^T, i.e.
 * cblas_sgemm(RowMajor, NoTrans, Trans, n, out, in, 1, x, in, W, in, 0, y, out). */

#ifndef VL_ASSERT
/* Programmer errors only (never input data): logs file:line:expr at VL_LOG_ERROR and aborts. */
#define VL_ASSERT(x)                                                                               \
    do {                                                                                           \
        if (!(x))                                                                                  \
            vl__assert_fail(__FILE__, __LINE__, #x);                                               \
    } while (0)
#endif
_Noreturn void vl__assert_fail(const char *file, int line, const char *expr);

struct vl_pool;
/* n_threads >= 1; the calling thread is worker 0; workers 1..n-1 are pthreads that spin briefly
 * and then sleep between runs. NULL on allocation or thread-creation failure. */
struct vl_pool *vl__pool_new(int n_threads);
void vl__pool_free(struct vl_pool *p); /* NULL-safe */
int vl__pool_size(const struct vl_pool *p); /* 1 for NULL */
/* Runs fn(arg, ith, nth) for ith = 0..nth-1 on the workers and returns when all are done (the
 * join is the barrier). p NULL, or a call from inside a running task (nested): fn(arg, 0, 1)
 * on the calling thread. One controlling thread per pool. */
void vl__pool_run(struct vl_pool *p, void (*fn)(void *arg, int ith, int nth), void *arg);
/* Dynamic scheduling inside a run: returns 0, 1, 2, ... across all workers (each value once),
 * reset by every top-level vl__pool_run. Only for tasks run with nth > 1 (with nth == 1 the
 * task iterates its chunks itself: a nested run would share the outer run's counter). */
int64_t vl__pool_next_chunk(struct vl_pool *p);
/* Guided self-scheduling inside a run (nth > 1, as vl__pool_next_chunk, whose counter it
 * shares): claims the next [*r0, *r1) of [0, total), about remaining / (div * nth) units clamped
 * to [min, max] (the last claim takes what is left), so the first claims are long streams and
 * the last ones short, and the workers reach the join together. False when nothing is left. */
bool vl__pool_claim(struct vl_pool *p, int64_t total, int64_t div, int64_t min, int64_t max,
                    int64_t *r0, int64_t *r1);
/* [*r0, *r1) = slice ith of nth of [0, n), cut at multiples of align (the last may be short,
 * trailing slices empty): the static split every pool task uses for independent rows/elements. */
void vl__pool_split(int64_t n, int64_t align, int ith, int nth, int64_t *r0, int64_t *r1);
/* True while the calling thread runs a pool task (kernels then stay single-threaded). */
int vl__pool_in_task(void);

/* Everything a kernel call needs besides its operands. Owned by the inference state. */
struct vl_compute {
    struct vl_pool *pool;
    int n_threads;
    float *scratch;      /* weight-widening panel (f32); sized by vl__compute_scratch_bytes */
    size_t scratch_bytes;
};

/* Creates the pool (n_threads workers) and scratch for weights of at most max_out x max_in, and
 * sets OpenBLAS to one thread (openblas_set_num_threads(1): process-wide; our pool splits GEMMs).
 * On failure *c is left zeroed and err set. */
enum vl_status vl__compute_init(struct vl_compute *c, int n_threads, int64_t max_out,
                                int64_t max_in, struct vl_error *err);
void vl__compute_free(struct vl_compute *c); /* NULL-safe; zeroes *c */
/* Scratch bytes vl__linear needs for weights of at most max_out x max_in (one widened panel of
 * whole rows per worker; capped, so the model is never widened as a whole). */
size_t vl__compute_scratch_bytes(int n_threads, int64_t max_out, int64_t max_in);

/* y[n, out] = x[n, in] . W^T (+ b). W is [out, in] in F32, F16 or BF16 (read from the mapping,
 * widened per panel), b is [out] (any float dtype) or NULL. y must not alias x.
 * n <= VL_LINEAR_GEMV_MAX_N: a streaming SIMD GEMV over the stored dtype split by output rows
 * on the pool; larger n: each worker widens panels of its rows into its part of c->scratch and
 * cblas_sgemm's them against all n rows (bias written into y first, beta 1). */
void vl__linear(struct vl_compute *c, float *y, const float *x, int64_t n,
                const struct vl_tensor *w, const struct vl_tensor *b);
/* The two paths of vl__linear, callable directly (tests, benchmarks). The GEMM path needs
 * c->scratch to hold at least one widened row for F16/BF16 weights. */
void vl__linear_gemv(struct vl_compute *c, float *y, const float *x, int64_t n,
                     const struct vl_tensor *w, const struct vl_tensor *b);
void vl__linear_gemm(struct vl_compute *c, float *y, const float *x, int64_t n,
                     const struct vl_tensor *w, const struct vl_tensor *b);
/* One output of a fused Linear: y[n, out] = x . W^T (+ b). */
struct vl_linear_out {
    float *y;
    const struct vl_tensor *w, *b;
};
#define VL_LINEAR_MAX_OUTS 4
/* y_k = x . W_k^T (+ b_k) for n_outs <= VL_LINEAR_MAX_OUTS weights of one input width (q, k, v):
 * for n <= VL_LINEAR_GEMV_MAX_N one GEMV pass over all their rows (x prepared once, one join
 * instead of n_outs), else one vl__linear each. Results equal n_outs vl__linear calls. */
void vl__linear_multi(struct vl_compute *c, const float *x, int64_t n,
                      const struct vl_linear_out *outs, int n_outs);
/* SwiGLU's first half: gate = silu(x . Wg^T) * (x . Wu^T), up is scratch of the same shape
 * (n, out). Small n: one GEMV pass, gate and up rows claimed together and multiplied while in
 * cache. Results equal vl__linear, vl__linear, vl__silu_mul. */
void vl__linear_swiglu(struct vl_compute *c, float *gate, float *up, const float *x, int64_t n,
                       const struct vl_tensor *w_gate, const struct vl_tensor *w_up);
/* The GEMV path of both (swiglu: outs = {gate, up}, n_outs 2). */
void vl__linear_gemv_multi(struct vl_compute *c, const float *x, int64_t n,
                           const struct vl_linear_out *outs, int n_outs, bool swiglu);
/* Tests: true sends leftover BF16 GEMV rows through the padded 4-row pass on every table (the
 * path a table whose one-row kernel differs from its four-row kernel takes). */
extern bool vl__gemv_force_pad;
/* n at or below which vl__linear streams the stored weights (GEMV, BF16 rows 4 at a time);
 * above, panel + sgemm (widening and packing cost ~14 bytes of traffic per weight, worth it
 * only when amortised over many rows). */
#define VL_LINEAR_GEMV_MAX_N 32
#define VL_GEMV_X_ROWS 4
#define VL_GEMV_X8_ROWS 8 /* rows of gemv_bf16_x8 */
/* Target size of one worker's widened weight panel (f32), and the row multiple of panels. */
#define VL_PANEL_TARGET_BYTES ((size_t)16 << 20)
#define VL_PANEL_ROW_ALIGN 16
/* Scalar reference (double accumulation). */
void vl__linear_ref(float *y, const float *x, int64_t n, const struct vl_tensor *w,
                    const struct vl_tensor *b);
/* Row-major f32 GEMM: C = alpha * op(A) . op(B) + beta * C (cblas_sgemm semantics; op(A) is
 * m x k, op(B) is k x n, C is m x n). */
void vl__gemm_f32(struct vl_compute *c, bool trans_a, bool trans_b, int64_t m, int64_t n,
                  int64_t k, float alpha, const float *a, int64_t lda, const float *b, int64_t ldb,
                  float beta, float *cm, int64_t ldc);
void vl__gemm_f32_ref(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                      const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                      float *cm, int64_t ldc);
/* y[n, d] = x / sqrt(mean(x^2) + eps) * w  (as HF: f32 mean of squares, x * rsqrt(var + eps),
 * then * w; y may alias x). w is [d], any float dtype. */
void vl__rmsnorm(struct vl_compute *c, float *y, const float *x, int64_t n, int64_t d,
                 const struct vl_tensor *w, float eps);
/* x[i] = silu(gate[i]) * up[i] for n elements (result in gate); silu(x) = x / (1 + exp(-x)). */
void vl__silu_mul(struct vl_compute *c, float *gate, const float *up, int64_t n);
/* Exact (erf) GELU in place: 0.5 x (1 + erf(x / sqrt 2)). */
void vl__gelu(struct vl_compute *c, float *x, int64_t n);
/* In-place softmax of each of n rows of length d (max-subtracted, f32), on the caller's thread
 * (attention calls it per head from inside its own pool task). */
void vl__softmax_rows(float *x, int64_t n, int64_t d);
/* Multi-head attention over segments (vl_attn.c): for segment s, the query rows
 * [q_cu[s], q_cu[s+1]) attend to the key/value rows [k_cu[s], k_cu[s+1]); with causal, query i
 * of a segment sees keys [0, i + klen - qlen] (queries are the last qlen positions: prefill
 * against a KV cache). Row r of head h of q is at q + h * q_head_stride + r * ldq (likewise k, v
 * with KV head h / (n_heads / n_kv_heads), and out). Vision: q_cu = k_cu = cu_seqlens, q/k/v
 * the packed qkv rows (ld 3d, head stride dh). LLM prefill: one segment {0, n} / {0, start + n},
 * k/v the cache of one layer (ld hd, head stride n_ctx * hd).
 *   o = softmax(scale * q k^T) v per row, f32 softmax as vl__softmax_rows. */
struct vl_attn {
    const float *q, *k, *v;
    float *out;
    int64_t ldq, ldk, ldv, ldo;
    int64_t q_head_stride, k_head_stride, v_head_stride, o_head_stride;
    int64_t n_heads, n_kv_heads, head_dim;
    float scale;
    const int64_t *q_cu, *k_cu; /* [n_seg + 1] each, increasing */
    int64_t n_seg;
    bool causal;
};
/* Query rows per work unit (a unit is one segment x head x query tile on one worker). */
#define VL_ATTN_TILE_ROWS 128
/* Units run on the pool with their score tiles in c->scratch (needs >= the longest key range
 * floats per worker). No allocation. */
void vl__attention(struct vl_compute *c, const struct vl_attn *a);
/* Scalar reference (double dot products); scores: caller buffer of the longest key range. */
void vl__attention_ref(const struct vl_attn *a, float *scores);
/* Widens n values of a tensor's dtype (F32, F16 or BF16) starting at element offset to f32. */
void vl__to_f32(float *dst, const struct vl_tensor *t, int64_t offset, int64_t n);
float vl__bf16_to_f32(uint16_t h);
/* s + the scalar tail [kv, in) of one prepared row: the end of every SIMD BF16 GEMV row, compiled
 * without FMA contraction so the one-row and four-row kernels end each row identically. */
float vl__gemv_bf16_tail(float s, const float *xp, const uint16_t *row, int64_t in, int64_t kv);
/* The end of a 4-row BF16 GEMV (gemv_bf16_x4) for weight row r: adds the scalar tail [kv, in)
 * to the SIMD sums s[j] and stores y[j * ldy + r]. xp holds the four prepared rows. */
void vl__gemv_bf16_x4_tail(float *y, int64_t ldy, int64_t r, const float s[4], const float *xp,
                           const uint16_t *row, int64_t in, int64_t kv);
float vl__f16_to_f32(uint16_t h); /* exact, incl. subnormals, inf and NaN */

/* Slice kernels, (ith, nth) split rows or elements; scalar references of the SIMD ones. */
void vl__rmsnorm_ref(float *y, const float *x, int64_t n, int64_t d, const struct vl_tensor *w,
                     float eps);
void vl__silu_mul_ref(float *gate, const float *up, int64_t n);
void vl__gelu_ref(float *x, int64_t n);
void vl__softmax_rows_ref(float *x, int64_t n, int64_t d);
/* s (m, n) = scale * q (m, d) . k (n, d)^T; o (m, d) = p (m, n) . v (n, d); all contiguous. The
 * decode step's attention per KV head (m = query heads of the group, n = cached keys). */
void vl__attn_qk_ref(float *s, const float *q, int64_t m, const float *k, int64_t n, int64_t d,
                     float scale);
void vl__attn_pv_ref(float *o, const float *p, int64_t m, const float *v, int64_t n, int64_t d);
/* y[out] = W[out, in] . x[in] over rows [r0, r1), BF16/F16/F32 weights, f32 accumulation. */
void vl__gemv_rows_ref(float *y, const float *x, const struct vl_tensor *w, int64_t r0,
                       int64_t r1);

/* SIMD dispatch (vl_ops_x86.c): kernels picked once from the CPU's features; the generic
 * versions are the scalar code above. VL_SIMD=off in the environment forces scalar, VL_SIMD=avx2
 * caps the choice at AVX2. */
struct vl_simd {
    const char *name; /* "avx512", "avx2", "scalar" */
    /* dst[0..n) = widen(src[0..n)) for one dtype */
    void (*widen_bf16)(float *dst, const uint16_t *src, int64_t n);
    void (*widen_f16)(float *dst, const uint16_t *src, int64_t n);
    /* y[r] = W[r, :] . x for r in [r0, r1) (y is the whole output); in = row length.
     * gemv_bf16 takes xp = gemv_bf16_prep(x), x rearranged in the kernel's lane order. */
    void (*gemv_bf16_prep)(float *xp, const float *x, int64_t in);
    void (*gemv_bf16)(float *y, const float *x, const uint16_t *w, int64_t in, int64_t r0,
                      int64_t r1);
    /* VL_GEMV_X_ROWS prepared rows xp + j * in at once: y[j * ldy + r] for r in [r0, r1) */
    void (*gemv_bf16_x4)(float *y, int64_t ldy, const float *xp, const uint16_t *w, int64_t in,
                         int64_t r0, int64_t r1);
    /* VL_GEMV_X8_ROWS prepared rows at once, each row computed exactly as by gemv_bf16_x4 */
    void (*gemv_bf16_x8)(float *y, int64_t ldy, const float *xp, const uint16_t *w, int64_t in,
                         int64_t r0, int64_t r1);
    /* true when gemv_bf16 computes each row exactly as gemv_bf16_x4 does (same accumulators
     * and order): rows left over from groups of VL_GEMV_X_ROWS then take gemv_bf16; else they
     * go through gemv_bf16_x4 padded, so a row's result never depends on the row count */
    bool gemv_bf16_row_invariant;
    void (*gemv_f16)(float *y, const float *x, const uint16_t *w, int64_t in, int64_t r0,
                     int64_t r1);
    void (*gemv_f32)(float *y, const float *x, const float *w, int64_t in, int64_t r0,
                     int64_t r1);
    /* y[i, :] = rmsnorm(x[i, :]) * w for rows [r0, r1); w f32 [d] */
    void (*rmsnorm_rows)(float *y, const float *x, int64_t d, const float *w, float eps,
                         int64_t r0, int64_t r1);
    void (*silu_mul)(float *gate, const float *up, int64_t n);
    void (*softmax_rows)(float *x, int64_t n, int64_t d);
    /* decode attention of one KV head against its cache (vl__attn_qk_ref / _pv_ref) */
    void (*attn_qk)(float *s, const float *q, int64_t m, const float *k, int64_t n, int64_t d,
                    float scale);
    void (*attn_pv)(float *o, const float *p, int64_t m, const float *v, int64_t n, int64_t d);
};
const struct vl_simd *vl__simd(void);         /* the dispatched table (never NULL) */
/* The SIMD GEMVs' software prefetch distance in weight elements (bytes / 2): how far ahead of
 * the row being read they request lines, so a stream keeps enough misses in flight across 4 KB
 * page boundaries (where hardware prefetchers stop). VL_GEMV_PREFETCH_DEFAULT_BYTES (vl.h) unless
 * VL_GEMV_PREFETCH=BYTES (0..VL_GEMV_PREFETCH_MAX_BYTES, a tuning knob for new machines) is set
 * when vl__simd() first runs. */
extern int64_t vl__gemv_prefetch;
/* The page-ahead distance in weight elements (VL_GEMV_PAGE_AHEAD_DEFAULT_BYTES / 2 unless
 * VL_GEMV_PAGE_AHEAD is set, read with VL_GEMV_PREFETCH); the GEMVs request row + k + it once
 * every VL_GEMV_PAGE_ELEMS elements of k (a 4 KB page of BF16 weights). */
extern int64_t vl__gemv_page_ahead;
#define VL_GEMV_PAGE_ELEMS 2048
const struct vl_simd *vl__simd_scalar(void);  /* the scalar table */
const struct vl_simd *vl__simd_avx2(void);    /* NULL if the CPU lacks AVX2+FMA+F16C */
const struct vl_simd *vl__simd_avx512(void);  /* NULL without AVX512F/BW/VL (vl_ops_avx512.c) */
/* What the CPU and OS can run, for the OpenBLAS kernel check: AVX512 = F, CD, BW, DQ and VL
 * (OpenBLAS's SkylakeX kernels), AVX2 = AVX2 + FMA + F16C. */
enum vl_cpu_level { VL_CPU_BASELINE, VL_CPU_AVX2, VL_CPU_AVX512 };
enum vl_cpu_level vl__cpu_level(void);
/* The OPENBLAS_CORETYPE to use on a CPU of level cpu when OpenBLAS runs family core (NULL:
 * unknown), or NULL if core is already as wide as the CPU allows. Pure (tested by name). */
const char *vl__blas_core_pick(enum vl_cpu_level cpu, const char *core);
#define VL_SIMD_MAX_TABLES 3
/* Every table this CPU can run, scalar first (for tests and benchmarks); returns the count. */
int vl__simd_tables(const struct vl_simd *out[VL_SIMD_MAX_TABLES]);

/* ---- vision encoder (vl_vision.c, vl_vision_window.c) ------------------------------------
 * One image or one video per call; the caller loops over items and concatenates the outputs
 * (items never interact in the reference: every attention segment lies inside one item).
 *
 *   size_t nf = vl__vision_scratch_floats(&m->cfg, in->n_patches);   // 0: overflow / bad config
 *   float *scratch = arena_alloc(nf * sizeof(float));                 // >= 8-byte aligned
 *   float *out = ...;            // (in->n_patches / M^2, out_hidden_size), raster token order
 *   st = vl__vision_encode(&c, m, in, scratch, out, hook, user, err);
 *
 * Hooks (f32, row-major): "vit.patch_embed" (N, D) original row order; "vit.rope_cos" and
 * "vit.rope_sin" (N, Dh) window order; "vit.blk.%d.out" (N, D) window order (as HF);
 * "merger.out" (N/M^2, Hout) window order; "vision.embeds" (N/M^2, Hout) raster order. */

/* 2-D vision RoPE base. Fixed in the reference (Qwen2_5_VisionRotaryEmbedding theta=10000.0,
 * spec §4.3); config.json has no field for it. */
#define VL_VISION_ROPE_THETA 10000.0f
/* Largest vision head dim accepted (stack tables); the published models use 80. */
#define VL_VISION_MAX_HEAD_DIM 1024
#define VL_VISION_MAX_ROPE_FREQS (VL_VISION_MAX_HEAD_DIM / 4)

/* Checks a grid (t, h, w) in patches against the config: all >= 1, h and w multiples of the
 * merge size, t*h*w representable. VL_ERR_INVALID with a message otherwise. */
enum vl_status vl__vision_check_grid(const struct vl_vision_config *vc, int64_t gt, int64_t gh,
                                     int64_t gw, struct vl_error *err);
/* Window partition of one item (spec §4.4), empty windows dropped (= the reference's
 * unique_consecutive). out_widx: (gt*gh*gw / M^2) merge-unit ids, reordered[k] =
 * original[out_widx[k]]. out_cu: cumulative window lengths in PATCH rows, starting at 0; needs
 * room for gt*gh*gw / M^2 + 1 values. Returns the number of windows (out_cu has that + 1). */
int64_t vl__vision_window_index(int64_t *out_widx, int64_t *out_cu,
                                const struct vl_vision_config *vc, int64_t gt, int64_t gh,
                                int64_t gw);
/* Full-attention segments of one item (spec §4.5): gt + 1 values 0, gh*gw, ..., gt*gh*gw. */
void vl__vision_cu_seqlens(int64_t *out, int64_t gt, int64_t gh, int64_t gw);
/* 2-D RoPE tables (spec §4.3) in WINDOW order for the rows given by widx: out_cos, out_sin
 * (gt*gh*gw, Dh) with Dh = hidden_size / num_heads. */
void vl__vision_rope_table(float *out_cos, float *out_sin, const struct vl_vision_config *vc,
                           const int64_t *widx, int64_t gt, int64_t gh, int64_t gw);
/* Exact scratch floats vl__vision_encode needs for an item of n_patches patches (any grid);
 * 0 if the size overflows or the config is unusable. Non-decreasing in n_patches, so a buffer
 * sized for the largest item serves every smaller one. */
size_t vl__vision_scratch_floats(const struct vl_config *cfg, int64_t n_patches);
/* Vision tower of one image or video: pixel rows -> (n_patches / M^2, out_hidden_size) in
 * raster (placeholder-token) order. scratch: vl__vision_scratch_floats(&m->cfg, in->n_patches)
 * floats, 8-byte aligned, not aliasing out. No allocation; hook may be NULL. Errors:
 * VL_ERR_INVALID (grid / patch_dim mismatch), VL_ERR_MODEL (weights of unexpected shape). */
enum vl_status vl__vision_encode(struct vl_compute *c, const struct vl_model *m,
                                 const struct vl_vision_input *in, float *scratch, float *out,
                                 vl_hook_fn hook, void *hook_user, struct vl_error *err);

/* ---- errors and logging inside libvl ----------------------------------------------------- */

enum vl_status vl__err(struct vl_error *err, enum vl_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void vl__log(enum vl_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* True when a message of this level reaches the application's log function. */
bool vl__log_enabled(enum vl_log_level level);

/* ---- the one allocation wrapper of libvl (vl_common.c) ----------------------------------- */

/* Every heap allocation of libvl goes through these (the kernels' vl_pool.c / vl_ops*.c /
 * vl_compute.c excepted, see docs/testing.md). They are plain malloc/calloc/realloc/free
 * underneath, so memory libvl hands to callers is still released with free(), as vl.h
 * documents. NULL on overflow or failure; callers turn that into VL_ERR_NOMEM. Thread-safe. */
void *vl__malloc(size_t n);
void *vl__calloc(size_t count, size_t size); /* count * size checked */
void *vl__realloc(void *p, size_t n);
void *vl__aligned_alloc(size_t align, size_t n); /* n rounded up to a multiple of align */
char *vl__strdup(const char *s);
/* All n buffers (out[i] = vl__malloc(bytes[i])) or none (false, every out[i] NULL): for arrays
 * replaced together (a prefix cache and its ids, a result's ids and log-probs). */
bool vl__malloc_all(void *out[], const size_t bytes[], int n);
char *vl__strndup(const char *s, size_t n);
void vl__free(void *p);
/* Seconds on the monotonic clock (timings only). */
double vl__now_s(void);
/* Asks for transparent huge pages over [p, p + n) (page-aligned p): mapped weights and the
 * packed quantized copies are streamed by decode with 1/512 of the page walks (docs/
 * performance.md, "Huge pages for the weights"). A hint; without THP nothing changes. */
void vl__advise_huge(void *p, size_t n);
/* A byte count from the environment (the kernels' tuning knobs): name=BYTES in 0..max sets *bytes;
 * unset or empty keeps it; anything else is refused with a warning naming the variable, *bytes
 * kept. */
void vl__env_bytes(const char *name, long long max, long long *bytes);
/* Test hook (OOM torture, like dp_alloc_fail_after): n > 0 makes the n-th allocation from now
 * on fail, and every later one too until the hook is reset with 0. Returns the number of
 * allocations made since the previous call (counting stops at the first failure). */
int64_t vl__alloc_fail_after(int64_t n);

#endif
