/* libvl tooling: what `docproc model`, `preprocess`, `bench`, the tests and the fuzzers use on top
 * of the core API of vl.h — raw safetensors I/O, streaming detokenization, weight formats and
 * quantization, model facts, state sizing and statistics, random-weight checkpoints, the
 * named-tensor hook and its dump sink, low-level prompt pieces, and the kernel tuning knobs.
 * An application that only loads a model and generates needs vl.h alone.
 *
 *   struct vl_st_file *f = NULL;
 *   if (vl_st_open(&f, "model.safetensors", &err) != VL_OK) ...
 *   const struct vl_st_entry *e = vl_st_find(f, "lm_head.weight");   // e->dtype, e->shape
 *   vl_st_close(f);
 *
 *   struct vl_dump *d = NULL;                          // every hook tensor to DIR/<name>.safetensors
 *   vl_dump_new(&d, "dump", &err);
 *   vl_set_hook(st, vl_dump_hook, d);
 *   vl_generate(st, &rq, &gp, &res, &err);
 *   vl_dump_finish(d, &err); vl_dump_free(d); */
#ifndef VL_TOOLS_H
#define VL_TOOLS_H

#include "vl.h"

/* ---- tokenizer: standalone loading and single tokens (vl_tokenizer*.c) -------------------- */
/*   struct vl_tokenizer *tok = NULL;
 *   vl_tokenizer_load(&tok, "tokenizer.json", &err);
 *   int32_t ids[256]; size_t n;
 *   if (vl_tokenizer_encode(tok, text, strlen(text), ids, 256, &n, &err) == VL_ERR_LIMIT) ...
 *   vl_tokenizer_free(tok); */
enum vl_status vl_tokenizer_load(struct vl_tokenizer **out, const char *path,
                                 struct vl_error *err);
enum vl_status vl_tokenizer_load_mem(struct vl_tokenizer **out, const char *json, size_t len,
                                     struct vl_error *err);
void vl_tokenizer_free(struct vl_tokenizer *t); /* NULL-safe */
int32_t vl_tokenizer_n_ids(const struct vl_tokenizer *t); /* 1 + largest id */
bool vl_tokenizer_is_special(const struct vl_tokenizer *t, int32_t id);
/* Id of an added token ("<|im_start|>") or of the vocab token with exactly these bytes; -1. */
int32_t vl_tokenizer_token_id(const struct vl_tokenizer *t, const char *content);
/* Raw bytes of one token (not NUL-terminated, may be partial UTF-8); NULL if id has none. */
const char *vl_tokenizer_token_bytes(const struct vl_tokenizer *t, int32_t id, size_t *len);

/* ---- streaming detokenization (vl_tokenizer_decode.c) ------------------------------------ */

/* Streaming decode: text out as soon as it is complete UTF-8 (buffers of at least
 * vl_tok_stream_bound(t) bytes); flush at the end (U+FFFD for a cut sequence). */
#define VL_TOK_STREAM_PENDING_MAX 4
struct vl_tok_stream {
    uint8_t pending[VL_TOK_STREAM_PENDING_MAX]; /* incomplete UTF-8 held back */
    int n_pending;
    bool skip_special;
};
void vl_tok_stream_init(struct vl_tok_stream *s, bool skip_special);
size_t vl_tok_stream_bound(const struct vl_tokenizer *t); /* output bytes one push may need */
enum vl_status vl_tok_stream_push(const struct vl_tokenizer *t, struct vl_tok_stream *s,
                                  int32_t id, char *out, size_t cap, size_t *n_out,
                                  struct vl_error *err);
size_t vl_tok_stream_flush(struct vl_tok_stream *s, char *out, size_t cap);

/* ---- chat template pieces (vl_chat.c) ---------------------------------------------------- */

enum vl_chat_part_type { VL_CHAT_TEXT, VL_CHAT_IMAGE, VL_CHAT_VIDEO };
struct vl_chat_part {
    enum vl_chat_part_type type;
    const char *text; /* VL_CHAT_TEXT only */
};
struct vl_chat_msg {
    const char *role;                  /* "system", "user", "assistant" */
    const char *text;                  /* used when parts is NULL */
    const struct vl_chat_part *parts;  /* content list, rendered in order, no separators */
    int n_parts;
};
/* Renders messages (a default system message first unless msgs[0] is "system"), then
 * "<|im_start|>assistant\n" if add_generation_prompt; add_vision_id prefixes "Picture k: ".
 * *out is NUL-terminated, caller frees with free(). */
enum vl_status vl_chat_render(char **out, const struct vl_chat_msg *msgs, int n,
                              bool add_generation_prompt, bool add_vision_id,
                              struct vl_error *err);
/* ---- preprocessing pieces (vl_image.c) ------------------------------------------------ */

#define VL_IMAGE_MAX_ASPECT_RATIO     200.0     /* smart_resize refuses max/min side above this */
/* smart_resize of transformers 5.x (spec §2.3): target (height, width), multiples of factor.
 * VL_ERR_INVALID for a zero/negative side or aspect ratio > 200 (the reference raises). */
enum vl_status vl_smart_resize(int64_t *out_h, int64_t *out_w, int64_t height, int64_t width,
                               int64_t factor, int64_t min_pixels, int64_t max_pixels,
                               struct vl_error *err);
/* PIL Image.resize((dst_w, dst_h), BICUBIC) on 8-bit RGB, bit-exact (spec §2.4.1).
 * src (src_h, src_w, 3), dst (dst_h, dst_w, 3); dst must not alias src. */
enum vl_status vl_image_resize_bicubic(uint8_t *dst, int64_t dst_w, int64_t dst_h,
                                       const uint8_t *src, int64_t src_w, int64_t src_h,
                                       struct vl_error *err);

/* ---- video frame sampling (vl_video.c) --------------------------------------------------- */

/* qwen-vl-utils smart_nframes (spec §3.2) with its defaults (fps 2, min 4, max 768 frames):
 * how many frames to sample from total_frames at video_fps. VL_ERR_INVALID if < 2 result. */
enum vl_status vl_video_nframes(int64_t *out, int64_t total_frames, double video_fps,
                                double target_fps, struct vl_error *err);
/* Frame indices (spec §3.3): out[i] = round-half-even(linspace(0, total-1, n)[i]), float32. */
void vl_video_frame_indices(int64_t *out, int64_t n, int64_t total_frames);

/* ---- safetensors files (vl_safetensors.c) ----------------------------------------------- */

#define VL_ST_MAX_DIMS 8
/* Largest JSON header accepted (the safetensors reference implementation's limit). */
#define VL_ST_MAX_HEADER_BYTES ((unsigned long long)100 * 1000 * 1000)
/* Most tensors in one file (the 72B checkpoint has ~1,000 in all shards). */
#define VL_ST_MAX_TENSORS 1000000

/* One tensor of a safetensors file, as plain types (for tools, tests, --dump and preprocess). */
struct vl_st_entry {
    const char *name;
    const char *dtype;               /* "F32", "BF16", "F16", "I64", "I32", ... */
    int ndim;
    int64_t shape[VL_ST_MAX_DIMS];
    const void *data;                /* little-endian, row-major; NOT necessarily aligned to
                                        the element size (safetensors packs tensors): memcpy */
    size_t nbytes;
};

/* Writes tensors to path atomically (temporary + rename), data offsets aligned to
 * VL_ST_WRITE_ALIGN (64) bytes. */
enum vl_status vl_st_write(const char *path, const struct vl_st_entry *entries, int n,
                           struct vl_error *err);

struct vl_st_file;
/* Maps and fully validates a file (header is untrusted input). Caller frees with vl_st_close. */
enum vl_status vl_st_open(struct vl_st_file **out, const char *path, struct vl_error *err);
void vl_st_close(struct vl_st_file *f);
int vl_st_count(const struct vl_st_file *f);
/* Borrowed; valid until vl_st_close. NULL if absent / out of range. */
const struct vl_st_entry *vl_st_get(const struct vl_st_file *f, int i);
const struct vl_st_entry *vl_st_find(const struct vl_st_file *f, const char *name);
/* As vl_st_open over a buffer the caller keeps alive until vl_st_close (tests, fuzzing). */
enum vl_status vl_st_open_mem(struct vl_st_file **out, const void *data, size_t size,
                              struct vl_error *err);
size_t vl_st_file_size(const struct vl_st_file *f);
const char *vl_st_path(const struct vl_st_file *f);
/* Bytes of the files' mappings the kernel maps with huge (PMD, 2 MiB) pages now, the sum of
 * FilePmdMapped in /proc/self/smaps: what decode's weight stream gets depends on it (how the
 * page cache holds the files, docs/performance.md). -1 where smaps cannot tell (no /proc, an
 * older kernel, no file mapped). Reads /proc: not for hot paths. */
int64_t vl_st_huge_mapped_bytes(const struct vl_st_file *const *files, int n);

/* ---- weight formats and quantization (vl_quant_model.c) ---------------------------------- */

/* Weight formats (vl_quant_model.c; docs/quantization.md). BF16 is the exact path: the weights
 * as stored. Q8 and Q4 are blocks of 32 weights with one f16 scale (GGUF Q8_0 / Q4_0 layouts)
 * computed with int8 activations quantized on the fly. */
enum vl_wformat { VL_WFORMAT_BF16 = 0, VL_WFORMAT_Q8, VL_WFORMAT_Q4 };
bool vl_wformat_parse(const char *s, enum vl_wformat *out); /* "bf16", "q8", "q4" */
const char *vl_wformat_name(enum vl_wformat f);
/* Quantizes a freshly loaded model's Linear weights (text: LLM projections and lm_head; vision:
 * ViT and merger, bf16 or q8 only) before it is shared; norms, biases, embeddings and the patch
 * embedding stay as stored. A group stored quantized must be asked for in its own format
 * (VL_ERR_INVALID otherwise). n_threads workers quantize (docs/quantization.md). */
enum vl_status vl_model_quantize(struct vl_model *m, enum vl_wformat text, enum vl_wformat vision,
                                 int n_threads, struct vl_error *err);
/* The format the model's text (vision false) or vision Linear weights are in now. */
enum vl_wformat vl_model_wformat(const struct vl_model *m, bool vision);

/* ---- model facts (vl_model.c) ------------------------------------------------------------ */

#define VL_SUMMARY_MAX_FULLATT 64
#define VL_SUMMARY_MAX_DTYPES 16

/* True when the model was loaded from llama.cpp GGUF files (no preprocessor_config.json: the
 * published image processing applies). */
bool vl_model_is_gguf(const struct vl_model *m);
/* Plain-typed facts about a loaded model (for `docproc model info` and logs). */
struct vl_model_summary {
    char model_type[64];
    int64_t hidden_size, intermediate_size, n_layers, n_heads, n_kv_heads, head_dim, vocab_size;
    int64_t max_positions, mrope_section[3];
    double rope_theta, rms_norm_eps;
    bool tied_embeddings;
    int64_t vit_depth, vit_hidden, vit_heads, vit_intermediate;
    int64_t patch_size, temporal_patch_size, merge_size, window_size;
    int n_fullatt;
    int64_t fullatt[VL_SUMMARY_MAX_FULLATT];
    int64_t min_pixels, max_pixels;
    /* parameters per component (the tied lm_head counts 0) */
    int64_t params_vision, params_merger, params_embed, params_layers, params_lm_head;
    int64_t params_total;
    int n_files, n_tensors;
    int64_t n_tensors_by_dtype[VL_SUMMARY_MAX_DTYPES]; /* index: see vl_dtype_str */
    size_t bytes_files, bytes_tensors;
    size_t kv_bytes_per_token; /* f32 K and V of all layers for one token */
    /* weight bytes one decode step streams: every decoder layer, the final norm, the lm_head (the
     * embedding when tied) and one embedding row; memory read GB/s over this is decode's bound */
    size_t bytes_decode_step;
    /* model-owned weight memory beside the mappings: the integer kernels' packed copies of
     * quantized Linear weights not stored packed (quantized at load, version-1 checkpoints,
     * GGUF blocks), GGUF conversions, aligned copies of unaligned tensors; 0 for a BF16 or a
     * version-2 quantized checkpoint */
    size_t bytes_owned;
    int weights, vision_weights; /* enum vl_wformat of the Linear weights now (after quantize) */
};
void vl_model_summary(const struct vl_model *m, struct vl_model_summary *out);
const char *vl_dtype_str(int dtype); /* "BF16", ... for an index of n_tensors_by_dtype */
int vl_model_n_files(const struct vl_model *m);
const char *vl_model_file_path(const struct vl_model *m, int i); /* borrowed */
size_t vl_model_file_size(const struct vl_model *m, int i);
/* vl_st_huge_mapped_bytes over the model's files. */
int64_t vl_model_huge_mapped_bytes(const struct vl_model *m);
/* Reads every float weight once and counts NaN/Inf values; first names the first bad tensor. */
enum vl_status vl_model_scan(const struct vl_model *m, int64_t *n_nonfinite, char *first,
                             size_t first_cap, struct vl_error *err);

/* Writes a quantized model as a checkpoint directory dir (must exist): the source's config and
 * tokenizer files, one model.safetensors (block tensors as U8 tensors in the integer kernels'
 * packed layout, the rest as stored) and quantization.json describing them (version 2;
 * vl_quant_ckpt.c, docs/quantization.md). vl_model_load maps it back without a copy: the kernels
 * read the mapping. The model may itself be a quantized checkpoint (re-save). VL_ERR_INVALID if
 * nothing is quantized. */
enum vl_status vl_model_write_quantized(const struct vl_model *m, const char *dir,
                                        struct vl_error *err);

/* Teacher-forced comparison of two models on one request (vl_compare.c; `model compare`): for
 * steps k = 0..steps-1 both models see the prompt plus the reference's first k argmax tokens;
 * the next-token logits are compared. Both models must share the vocabulary. */
struct vl_compare_stats {
    int64_t steps;          /* compared positions */
    int64_t top1_agree;     /* positions where both argmaxes agree */
    double kl_mean, kl_max; /* KL(softmax(ref) || softmax(cand)) over the positions, nats */
    double logits_rel_err;  /* ||cand - ref|| / ||ref|| over all positions' logits */
    double sq_err, sq_ref;  /* its numerator and denominator squared (to pool requests) */
};
enum vl_status vl_compare_run(const struct vl_model *ref, const struct vl_model *cand,
                              const struct vl_request *req, int64_t steps, int n_threads,
                              struct vl_compare_stats *out, struct vl_error *err);

/* ---- state sizing and statistics (vl_state.c, vl_seq.c) ---------------------------------- */

/* Work done by a state's steps since vl_state_new (wall seconds of each kind of step). */
struct vl_state_stats {
    int64_t decode_steps, decode_rows; /* rows: sequences summed over decode steps */
    int64_t prefill_chunks, visions;
    double decode_s, prefill_s, vision_s;
};
void vl_state_stats_get(const struct vl_state *s, struct vl_state_stats *out);
/* Heap bytes one sequence of n_tokens positions (prompt + new tokens) needs: its KV cache,
 * its share of the sampler and result arrays (for deciding how many to run at once). */
size_t vl_seq_bytes(const struct vl_model *model, int64_t n_tokens);
/* Heap bytes of a state with these parameters, sequences' caches excluded. */
size_t vl_state_bytes(const struct vl_model *model, const struct vl_state_params *params);

/* ---- random-weight checkpoints (vl_synth.c) ---------------------------------------------- */

/* Random-weight checkpoint in the published layout (vl_synth.c; `docproc model synth`).
 * Streams BF16 data (memory stays small); shards of at most shard_bytes (0: the 5 GB that
 * transformers uses); one model.safetensors when a single shard suffices. dir must exist. */
#define VL_SYNTH_SHARD_BYTES ((size_t)5000000000)
struct vl_synth_opts {
    const char *dir;
    const char *shape;                 /* "3b", "7b" or "tiny" */
    uint64_t seed;
    size_t shard_bytes;
    const char *tokenizer_path;        /* copied to dir/tokenizer.json; NULL: none */
    const char *tokenizer_config_path; /* copied to dir/tokenizer_config.json; NULL: none */
    bool force;                        /* overwrite an existing checkpoint */
};
struct vl_synth_result {
    int n_shards, n_tensors;
    size_t total_bytes; /* tensor data */
};
enum vl_status vl_synth_write(const struct vl_synth_opts *o, struct vl_synth_result *res,
                              struct vl_error *err);

/* ---- low-level prompt pieces (vl_chat.c, vl_generate.c) ------------------------------------ */

/* LLM tokens of one image/video: grid_t * (grid_h/merge) * (grid_w/merge); -1 if not mergeable. */
int64_t vl_chat_tokens_for_grid(int64_t grid_t, int64_t grid_h, int64_t grid_w, int64_t merge);
/* Copies ids to out replacing the k-th pad_id by counts[k] copies; the number of pad_ids must
 * equal n_items (else VL_ERR_INVALID). VL_ERR_LIMIT (with *n_out = needed) if cap is short. */
enum vl_status vl_chat_expand(int32_t *out, size_t cap, size_t *n_out, const int32_t *ids,
                              size_t n, int32_t pad_id, const int64_t *counts, int n_items,
                              struct vl_error *err);
/* Builds a synthetic prompt for benchmarks: for each input <|vision_start|>, its pads,
 * <|vision_end|>, then n_text ordinary text ids. Caller frees *out_ids with free(). */
enum vl_status vl_prompt_synthetic(int32_t **out_ids, int64_t *out_n, const struct vl_model *model,
                                   const struct vl_vision_input *vision, int n_vision,
                                   int64_t n_text, struct vl_error *err);

/* Tokens one image/video occupies in the prompt: grid_t * grid_h * grid_w / merge^2. */
int64_t vl_vision_tokens(const struct vl_model *model, const struct vl_vision_input *in);
/* Expands each image / video pad id of a tokenised prompt (one <|image_pad|> per image, as the
 * chat template writes it) into vl_vision_tokens() copies, the k-th image pad for the k-th image
 * of vision (videos likewise). VL_ERR_INVALID when the numbers of placeholders and inputs differ
 * ("prompt has 2 image placeholders, 1 image given"). Caller frees *out_ids with free(). */
enum vl_status vl_prompt_expand(int32_t **out_ids, int64_t *out_n, const struct vl_model *model,
                                const int32_t *ids, int64_t n, const struct vl_vision_input *vision,
                                int n_vision, struct vl_error *err);

/* ---- named-tensor hook and dump sink (vl_state.c, vl_debug.c) ----------------------------- */

/* Named-tensor hook, called during vl_generate's prefill (never during decode steps), f32
 * row-major data borrowed for the duration of the call; costs nothing when unset. Names are the
 * golden-file names: "position_ids" (3, S) and "rope_deltas" (1) (integers stored exactly as
 * floats), "lm.rope_cos"/"lm.rope_sin" (S, hd), "lm.inputs_embeds", "lm.layer%d.out",
 * "lm.final_norm" (S, H), "logits.last" (V); the vision tower adds "vit.patch_embed",
 * "vit.blk.%d.out", "merger.out", "vision.embeds" per image/video (see vl_impl.h). When the
 * prompt is prefilled in several chunks (or a cached prefix is reused) the lm.* tensors arrive
 * as consecutive row blocks of one name; "logits.last" comes once, for the last prompt token. */
typedef void (*vl_hook_fn)(const char *name, const float *data, int ndim, const int64_t *shape,
                           void *user);

/* Installs (or with fn NULL removes) the named-tensor hook. */
void vl_set_hook(struct vl_state *s, vl_hook_fn fn, void *user);
/* Resolved parameters (n_ctx etc. after defaults and caps). */
const struct vl_state_params *vl_state_params_get(const struct vl_state *s);

/* Debug sink for the hook (vl_debug.c): collects every hook tensor (row blocks of the same name
 * concatenated) and writes one DIR/<name>.safetensors per name, holding one tensor <name>;
 * "position_ids" and "rope_deltas" are written as I64, the rest F32. */
struct vl_dump;
enum vl_status vl_dump_new(struct vl_dump **out, const char *dir, struct vl_error *err);
/* Pass as vl_set_hook(st, vl_dump_hook, dump). Errors are kept until vl_dump_finish. */
void vl_dump_hook(const char *name, const float *data, int ndim, const int64_t *shape,
                  void *user);
/* Writes the files; returns the first error of collecting or writing. */
enum vl_status vl_dump_finish(struct vl_dump *d, struct vl_error *err);
void vl_dump_free(struct vl_dump *d); /* NULL-safe */

/* ---- kernels: BLAS, SIMD and GEMV tuning (vl_ops_blas.c, vl_ops_x86.c) ------------------------ */

/* The OpenBLAS kernel family in use (its corename, e.g. "Haswell"), and, when OpenBLAS picked a
 * narrower family than this CPU runs (an OpenBLAS older than the CPU falls back to "Prescott"
 * SSE3 kernels), the OPENBLAS_CORETYPE value that selects the widest ("SkylakeX" or "Haswell");
 * else NULL. OpenBLAS reads OPENBLAS_CORETYPE when it is loaded: a program sets it and
 * re-executes itself. What this costs and gains: docs/performance.md, "Design decisions". */
const char *vl_blas_core(void);
const char *vl_blas_core_upgrade(void);
/* The compute kernels in use: "avx512", "avx2" or "scalar" (VL_SIMD=off|avx2 caps it). */
const char *vl_simd_name(void);
/* The integer (q8/q4) kernels in use: "avx512vnni", "avxvnni", "avx2" or "scalar" (VL_SIMD caps
 * them as the compute kernels; VL_QSIMD=NAME picks one the CPU has). */
const char *vl_qsimd_name(void);
/* The GEMVs' software prefetch distance in bytes: VL_GEMV_PREFETCH=BYTES in the environment
 * (0..VL_GEMV_PREFETCH_MAX_BYTES) overrides the default; it changes speed only. */
#define VL_GEMV_PREFETCH_DEFAULT_BYTES 1024
#define VL_GEMV_PREFETCH_MAX_BYTES     16384
int vl_gemv_prefetch_bytes(void);
/* The same for the integer (q8/q4) kernels' decode tiles, which stream 4 packed row groups at
 * once: VL_QGEMV_PREFETCH=BYTES (0..VL_GEMV_PREFETCH_MAX_BYTES) overrides the default (3B
 * decode sweep with the tiles' long quarter streams, docs/performance.md: 1-1.5 KB best). */
#define VL_QGEMV_PREFETCH_DEFAULT_BYTES 1536
int vl_qgemv_prefetch_bytes(void);
/* The GEMVs' page-ahead prefetch in bytes: one line of every 4 KB page of weights is requested
 * this far ahead of the stream, so the page's address translation is done before the stream
 * reaches it (measurements: docs/performance.md, "Page-ahead prefetch").
 * VL_GEMV_PAGE_AHEAD=BYTES (0..VL_GEMV_PAGE_AHEAD_MAX_BYTES; 0 requests the current page, i.e.
 * off) overrides the default; it changes speed only. */
#define VL_GEMV_PAGE_AHEAD_DEFAULT_BYTES 65536
#define VL_GEMV_PAGE_AHEAD_MAX_BYTES     4194304
int vl_gemv_page_ahead_bytes(void);

#endif
