/* libvl: Qwen2.5-VL inference in C (checkpoint loading, tokenizer, vision encoder, LLM, generation).
 * A standalone library: it depends on OpenBLAS, jansson, PCRE2 and GLib, never on docproc code.
 *
 *   struct vl_error err = {0};
 *   struct vl_model *m = NULL;
 *   if (vl_model_load(&m, "Qwen2.5-VL-3B-Instruct", &err) != VL_OK) { report(err.msg); return; }
 *   ...
 *   vl_model_free(m);
 *
 * Sections: status & logging | model loading | tokenizer & chat | image preprocessing |
 * inference state & generation. Each section is implemented by the vl_*.c files named there. */
#ifndef VL_H
#define VL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- status & logging (vl_common.c) ----------------------------------------------------- */

enum vl_status {
    VL_OK              = 0,
    VL_ERR_NOMEM       = -1,
    VL_ERR_IO          = -2,
    VL_ERR_FORMAT      = -3,
    VL_ERR_LIMIT       = -4,
    VL_ERR_UNSUPPORTED = -5,
    VL_ERR_MODEL       = -6,
    VL_ERR_INVALID     = -7, /* bad argument or request (e.g. placeholder/image count mismatch) */
    VL_ERR_CANCELLED   = -8,
    VL_ERR_INTERNAL    = -99,
};

#define VL_ERR_MSG_MAX 256

/* First error wins: a message once set is never overwritten. */
struct vl_error {
    enum vl_status code;
    char msg[VL_ERR_MSG_MAX];
};

const char *vl_status_str(enum vl_status st);

enum vl_log_level { VL_LOG_ERROR = 0, VL_LOG_WARN, VL_LOG_INFO, VL_LOG_DEBUG };
typedef void (*vl_log_fn)(enum vl_log_level level, const char *msg, void *user);
/* Routes libvl's log lines (default: none are printed). Set once before use. */
void vl_log_set(vl_log_fn fn, void *user, enum vl_log_level max_level);

struct vl_model;
struct vl_vision_input;

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

/* Writes tensors to path atomically (temporary + rename), 8-byte aligned data offsets. */
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

/* ---- model loading (vl_config.c, vl_weights.c, vl_model.c) ------------------------------- */

/* Loads a checkpoint directory in the published Hugging Face layout: config.json
 * (+ preprocessor_config.json, generation_config.json), model.safetensors or the shards of
 * model.safetensors.index.json, tokenizer.json (optional; without it vl_model_tokenizer is NULL).
 * Validates every file and binds every tensor (missing / unexpected / wrong-shape tensors are
 * VL_ERR_MODEL, other architectures VL_ERR_UNSUPPORTED). Weights stay mmapped in their stored
 * dtype. Caller frees with vl_model_free. The loaded model is immutable and thread-safe. */
enum vl_status vl_model_load(struct vl_model **out, const char *dir, struct vl_error *err);
void vl_model_free(struct vl_model *m); /* NULL-safe */

/* Weight formats (vl_quant_model.c; docs/quantization.md). BF16 is the exact path: the weights
 * as stored (BF16, or F16/F32 checkpoints). Q8 and Q4 are blocks of 32 weights with one f16 scale
 * (GGUF Q8_0 / Q4_0 layouts) computed with int8 activations quantized on the fly. */
enum vl_wformat { VL_WFORMAT_BF16 = 0, VL_WFORMAT_Q8, VL_WFORMAT_Q4 };
bool vl_wformat_parse(const char *s, enum vl_wformat *out); /* "bf16", "q8", "q4" */
const char *vl_wformat_name(enum vl_wformat f);
/* Quantizes a freshly loaded model's Linear weights in memory the model owns, before it is
 * shared: text (LLM q/k/v/o, gate/up/down, lm_head; a tied lm_head gets its own copy and the
 * embedding stays as stored) and vision (ViT qkv, proj, MLP, merger; bf16 or q8 only). Norms,
 * biases, embeddings, the patch embedding and attention stay f32/BF16. A group already stored
 * quantized (a `model quantize` checkpoint) must be asked for in its own format. VL_ERR_INVALID on
 * a format the checkpoint cannot give, VL_ERR_NOMEM. n_threads workers quantize. */
enum vl_status vl_model_quantize(struct vl_model *m, enum vl_wformat text, enum vl_wformat vision,
                                 int n_threads, struct vl_error *err);
/* Writes a quantized model as a checkpoint directory dir (must exist): the source's config and
 * tokenizer files, one model.safetensors (block tensors as U8 rows, the rest as stored) and
 * quantization.json describing them (vl_quant_ckpt.c, docs/quantization.md). vl_model_load
 * maps it back without a copy. VL_ERR_INVALID if nothing is quantized. */
enum vl_status vl_model_write_quantized(const struct vl_model *m, const char *dir,
                                        struct vl_error *err);
/* The format the model's text (vision false) or vision Linear weights are in now. */
enum vl_wformat vl_model_wformat(const struct vl_model *m, bool vision);

#define VL_SUMMARY_MAX_FULLATT 64
#define VL_SUMMARY_MAX_DTYPES 16

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

/* ---- tokenizer & chat (vl_tokenizer*.c, vl_chat.c) --------------------------------------- */
/* Byte-level BPE from tokenizer.json with HF `tokenizers` semantics (spec §8).
 *
 *   const struct vl_tokenizer *tok = vl_model_tokenizer(m);
 *   int32_t ids[256]; size_t n;
 *   if (vl_tokenizer_encode(tok, text, strlen(text), ids, 256, &n, &err) == VL_ERR_LIMIT) ...
 *   char *s; vl_tokenizer_decode(tok, ids, n, false, &s, NULL, &err); ... free(s);
 */
struct vl_tokenizer;

enum vl_status vl_tokenizer_load(struct vl_tokenizer **out, const char *path,
                                 struct vl_error *err);
enum vl_status vl_tokenizer_load_mem(struct vl_tokenizer **out, const char *json, size_t len,
                                     struct vl_error *err);
void vl_tokenizer_free(struct vl_tokenizer *t); /* NULL-safe */
/* Borrowed from the model; NULL when the directory had no tokenizer.json. */
const struct vl_tokenizer *vl_model_tokenizer(const struct vl_model *m);

/* Encodes UTF-8 text (NUL bytes allowed; invalid UTF-8 is VL_ERR_INVALID). Special-token strings
 * in the text become their ids; no BOS/EOS is added. Writes at most cap ids; if more are needed
 * returns VL_ERR_LIMIT with *n_out = the number needed. Thread-safe. */
enum vl_status vl_tokenizer_encode(const struct vl_tokenizer *t, const char *text, size_t len,
                                   int32_t *ids, size_t cap, size_t *n_out, struct vl_error *err);
/* Decodes ids to UTF-8 (invalid sequences -> U+FFFD; unknown ids dropped; special tokens
 * dropped if skip_special). *out is NUL-terminated; caller frees with free(). */
enum vl_status vl_tokenizer_decode(const struct vl_tokenizer *t, const int32_t *ids, size_t n,
                                   bool skip_special, char **out, size_t *out_len,
                                   struct vl_error *err);
int32_t vl_tokenizer_n_ids(const struct vl_tokenizer *t); /* 1 + largest id */
bool vl_tokenizer_is_special(const struct vl_tokenizer *t, int32_t id);
/* Id of an added token ("<|im_start|>") or of the vocab token with exactly these bytes; -1. */
int32_t vl_tokenizer_token_id(const struct vl_tokenizer *t, const char *content);
/* Raw bytes of one token (not NUL-terminated, may be partial UTF-8); NULL if id has none. */
const char *vl_tokenizer_token_bytes(const struct vl_tokenizer *t, int32_t id, size_t *len);

/* Streaming decode for generation: text is emitted as soon as it is complete UTF-8.
 *   struct vl_tok_stream s; vl_tok_stream_init(&s, true);
 *   char buf[...];   // at least vl_tok_stream_bound(tok) bytes
 *   vl_tok_stream_push(tok, &s, id, buf, sizeof buf, &n, &err); fwrite(buf, 1, n, stdout);
 *   n = vl_tok_stream_flush(&s, buf, sizeof buf);   // at the end: U+FFFD for a cut sequence */
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

/* Chat template of Qwen2.5-VL (spec §5.1) and placeholder expansion (§5.2).
 *   int32_t *ids; size_t n;
 *   vl_chat_build(m, NULL, "Describe this image.", &img, 1, &ids, &n, &err);  // ... free(ids)
 * gives <|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n
 * <|vision_start|><|image_pad|>xN<|vision_end|>Describe this image.<|im_end|>\n
 * <|im_start|>assistant\n as ids, N = grid_t*grid_h*grid_w/merge^2 per input. */
#define VL_CHAT_DEFAULT_SYSTEM "You are a helpful assistant."
#define VL_CHAT_MAX_INPUTS 256 /* images + videos in one prompt */
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
/* LLM tokens of one image/video: grid_t * (grid_h/merge) * (grid_w/merge); -1 if not mergeable. */
int64_t vl_chat_tokens_for_grid(int64_t grid_t, int64_t grid_h, int64_t grid_w, int64_t merge);
/* Copies ids to out replacing the k-th pad_id by counts[k] copies; the number of pad_ids must
 * equal n_items (else VL_ERR_INVALID). VL_ERR_LIMIT (with *n_out = needed) if cap is short. */
enum vl_status vl_chat_expand(int32_t *out, size_t cap, size_t *n_out, const int32_t *ids,
                              size_t n, int32_t pad_id, const int64_t *counts, int n_items,
                              struct vl_error *err);
/* One-turn prompt for generation: system (NULL = the default), a user turn holding the visual
 * inputs in order then user_text, the generation prompt; tokenised and expanded with the grids
 * of vis (ids from config.json). *out_ids is caller-owned (free()). */
enum vl_status vl_chat_build(const struct vl_model *m, const char *system, const char *user_text,
                             const struct vl_vision_input *vis, int n_vis, int32_t **out_ids,
                             size_t *n_out, struct vl_error *err);

/* ---- image preprocessing (vl_image.c) ---------------------------------------------------- */

/* What the vision encoder consumes for one image or one video: exactly the reference
 * processor's pixel_values rows and grid (spec §2.7, §3). */
struct vl_vision_input {
    float *pixel_values;      /* (n_patches, patch_dim), rows in 2x2 merge-block order; owned */
    int64_t n_patches;        /* grid_t * grid_h * grid_w */
    int64_t patch_dim;        /* C * TP * P * P (1176) */
    int64_t grid_t, grid_h, grid_w;
    bool is_video;
    double second_per_grid_t; /* video only: temporal_patch_size / fps */
};
void vl_vision_input_free(struct vl_vision_input *in); /* frees pixel_values; NULL-safe */

/* Published Qwen2.5-VL preprocessor_config.json values (spec §1.3), used when no model is given. */
#define VL_IMAGE_DEFAULT_MIN_PIXELS   3136      /* 4 * 28 * 28 */
#define VL_IMAGE_DEFAULT_MAX_PIXELS   12845056  /* 16384 * 28 * 28 */
#define VL_IMAGE_DEFAULT_PATCH        14
#define VL_IMAGE_DEFAULT_TEMPORAL     2
#define VL_IMAGE_DEFAULT_MERGE        2
#define VL_IMAGE_DEFAULT_RESCALE      0.00392156862745098 /* 1/255 */
#define VL_IMAGE_MAX_ASPECT_RATIO     200.0     /* smart_resize refuses max/min side above this */
#define VL_IMAGE_CHANNELS             3

/* Processor settings (a plain copy of preprocessor_config.json; see vl_image_params_load). */
struct vl_image_params {
    int64_t min_pixels, max_pixels;
    int64_t patch_size, temporal_patch_size, merge_size;
    double image_mean[VL_IMAGE_CHANNELS], image_std[VL_IMAGE_CHANNELS];
    double rescale_factor;
    bool fused_normalize; /* false: slow HF image processor (images); true: fused float32 form
                           * of the HF video processor (spec §2.5) */
};
/* The published defaults (OpenAI CLIP mean/std, 3136..12845056 pixels, 14/2/2). */
void vl_image_params_default(struct vl_image_params *out);
/* Reads preprocessor_config.json (keys absent from the file keep their defaults). */
enum vl_status vl_image_params_load(struct vl_image_params *out, const char *path,
                                    struct vl_error *err);

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

/* One still image (rgb (h, w, 3)) to pixel_values: smart_resize, bicubic resize if the size
 * changes, rescale + normalise, temporal duplication, patchify (spec §2.3-§2.7).
 * out is caller-embedded; free with vl_vision_input_free. */
enum vl_status vl_image_preprocess(struct vl_vision_input *out, const uint8_t *rgb, int64_t w,
                                   int64_t h, const struct vl_image_params *p,
                                   struct vl_error *err);

/* Already-sampled video frames (n_frames pointers to (h, w, 3) RGB8, all the same size) to
 * pixel_values_videos (spec §3.4-§3.5): frames padded to a multiple of temporal_patch_size by
 * repeating the last, resized to smart_resize of p's budget, fused normalisation,
 * second_per_grid_t = temporal_patch_size / fps. */
enum vl_status vl_video_preprocess(struct vl_vision_input *out, const uint8_t *const *frames,
                                   int64_t n_frames, int64_t w, int64_t h, double fps,
                                   const struct vl_image_params *p, struct vl_error *err);

/* qwen-vl-utils smart_nframes (spec §3.2) with its defaults (fps 2, min 4, max 768 frames):
 * how many frames to sample from total_frames at video_fps. VL_ERR_INVALID if < 2 result. */
enum vl_status vl_video_nframes(int64_t *out, int64_t total_frames, double video_fps,
                                double target_fps, struct vl_error *err);
/* Frame indices (spec §3.3): out[i] = round-half-even(linspace(0, total-1, n)[i]), float32. */
void vl_video_frame_indices(int64_t *out, int64_t n, int64_t total_frames);

/* ---- inference state & generation (vl_state.c, vl_rope.c, vl_llm.c, vl_sampler.c,
 *      vl_generate.c, vl_debug.c; vision tower in vl_vision*.c) ---------------------------------
 *
 *   struct vl_state_params sp = vl_state_default_params();
 *   sp.n_threads = 2;
 *   struct vl_state *st = NULL;
 *   if (vl_state_new(&st, model, &sp, &err) != VL_OK) ...
 *   struct vl_request rq = { .ids = ids, .n_ids = n, .vision = inputs, .n_vision = n_in };
 *   struct vl_gen_params gp = vl_gen_default_params();
 *   gp.max_new_tokens = 256;
 *   struct vl_result res;
 *   if (vl_generate(st, &rq, &gp, &res, &err) != VL_OK) ...   // res.ids, res.logprobs, res.n
 *   vl_state_free(st);
 *
 * ids are the templated, tokenised prompt with every <|image_pad|> / <|video_pad|> placeholder
 * already expanded to vl_vision_tokens() copies (spec §5.2). */

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

/* The OpenBLAS kernel family in use (its corename, e.g. "Haswell"), and, when OpenBLAS picked a
 * narrower family than this CPU runs (Debian 12's OpenBLAS 0.3.21 falls back to "Prescott" SSE3
 * kernels on CPUs newer than it knows, such as Sapphire Rapids: GEMMs ~4x slower), the
 * OPENBLAS_CORETYPE value that selects the widest ("SkylakeX" or "Haswell"); else NULL.
 * OpenBLAS reads OPENBLAS_CORETYPE when it is loaded: a program sets it and re-executes itself. */
const char *vl_blas_core(void);
const char *vl_blas_core_upgrade(void);
/* The compute kernels in use: "avx512", "avx2" or "scalar" (VL_SIMD=off|avx2 caps it). */
const char *vl_simd_name(void);
/* The GEMVs' software prefetch distance in bytes: VL_GEMV_PREFETCH=BYTES in the environment
 * (0..VL_GEMV_PREFETCH_MAX_BYTES) overrides the default; it changes speed only. */
#define VL_GEMV_PREFETCH_DEFAULT_BYTES 1024
#define VL_GEMV_PREFETCH_MAX_BYTES     16384
int vl_gemv_prefetch_bytes(void);
/* The GEMVs' page-ahead prefetch in bytes: one line of every 4 KB page of weights is requested
 * this far ahead of the stream, so the page's address translation (a page walk, nested under a
 * hypervisor) is done before the stream reaches it: decode +14 % over a long-used checkpoint on
 * the 2-core AVX2 machine, +4 % over a fresh copy (docs/performance.md). VL_GEMV_PAGE_AHEAD=BYTES (0..VL_GEMV_PAGE_AHEAD_MAX_BYTES; 0 requests
 * the current page, i.e. off) overrides the default; it changes speed only. */
#define VL_GEMV_PAGE_AHEAD_DEFAULT_BYTES 65536
#define VL_GEMV_PAGE_AHEAD_MAX_BYTES     4194304
int vl_gemv_page_ahead_bytes(void);

/* Defaults of vl_state_default_params. */
#define VL_STATE_DEFAULT_CTX   8192 /* tokens in the KV cache (prompt + generated) */
#define VL_STATE_DEFAULT_BATCH 2048 /* prefill chunk: bounds the activation memory */
/* Prefill attention goes in blocks of this many query rows; a block computes scores only for the
 * keys its last row can see (the masked part of the causal square is mostly skipped) and the
 * scores buffer holds one block, whatever n_batch is. */
#define VL_STATE_DEFAULT_ATTN_BLOCK 256

struct vl_state_params {
    int n_threads;              /* threads for our pool and OpenBLAS [1] */
    int64_t n_ctx;              /* max tokens of a request incl. generated ones
                                 * [VL_STATE_DEFAULT_CTX, capped by max_position_embeddings] */
    int64_t n_batch;            /* prefill chunk rows [VL_STATE_DEFAULT_BATCH] */
    int64_t attn_block;         /* prefill attention query rows per block
                                 * [VL_STATE_DEFAULT_ATTN_BLOCK, capped by n_batch] */
    int64_t max_vision_patches; /* largest single image/video, in 14-px patches
                                 * [0 = n_ctx * merge^2, i.e. as many as the context can take] */
    int max_seqs;               /* sequences in flight at once, vl_seq_add [1] */
    bool join_first;            /* vl_step: a joining sequence's vision and prefill go before
                                 * decode steps (all sequences then decode together); default:
                                 * they alternate with decode steps [false] */
};
/* Most sequences one state runs at once. */
#define VL_STATE_MAX_SEQS 64
struct vl_state_params vl_state_default_params(void);

struct vl_state;
/* Sizes and allocates everything inference needs once (KV cache, activations, vision scratch,
 * sampler); nothing is allocated later. model is borrowed and must outlive the state.
 * VL_ERR_NOMEM / VL_ERR_LIMIT (sizes overflow) / VL_ERR_INVALID (bad params). */
enum vl_status vl_state_new(struct vl_state **out, const struct vl_model *model,
                            const struct vl_state_params *params, struct vl_error *err);
void vl_state_free(struct vl_state *s); /* NULL-safe */
/* Forgets the cached prefix (the KV cache); the next request prefills from scratch. */
void vl_state_reset(struct vl_state *s);
/* Installs (or with fn NULL removes) the named-tensor hook. */
void vl_set_hook(struct vl_state *s, vl_hook_fn fn, void *user);
/* Resolved parameters (n_ctx etc. after defaults and caps). */
const struct vl_state_params *vl_state_params_get(const struct vl_state *s);

/* Per-token callback: the id just chosen and log p(id) under the raw model distribution.
 * Return false to stop generating (result.stop = VL_STOP_CALLBACK). */
typedef bool (*vl_token_fn)(int32_t id, float logprob, void *user);
/* Polled between prefill chunks and decode steps; true stops with VL_ERR_CANCELLED. */
typedef bool (*vl_abort_fn)(void *user);
/* Constraint hook (schema-constrained decoding; generic). Called before each token choice with
 * the logits (n_vocab, mutable: set an entry to -INFINITY to forbid that id). Return 0 to let the
 * sampler choose from the (masked) logits; return k > 0 after writing k ids (k <= cap) to forced:
 * they are appended without sampling (jump-forward), fed to the model as one chunk, and the hook
 * is called again on the logits after them; return < 0 to stop with VL_ERR_INVALID (the hook
 * found no allowed token: an internal error of the constraint, never a silent fallback). */
typedef int (*vl_constrain_fn)(float *logits, int64_t n_vocab, int32_t *forced, int cap,
                               void *user);
/* Told every id appended to the answer (sampled or forced), in order. */
typedef void (*vl_accept_fn)(int32_t id, void *user);
/* Most ids one constrain call may force (one prefill chunk, also capped by n_batch). */
#define VL_GEN_MAX_FORCED 64

/* Generation defaults. The published generation_config.json of Qwen2.5-VL is effectively greedy
 * with repetition penalty 1.05 (spec §1.4); vl_gen_default_params() returns exactly that:
 * temperature 0 (greedy), top_k 0, top_p 1, repetition_penalty 1.05, seed 0, 512 new tokens. */
#define VL_GEN_DEFAULT_MAX_NEW_TOKENS      512
#define VL_GEN_DEFAULT_REPETITION_PENALTY  1.05f

struct vl_gen_params {
    int64_t max_new_tokens;   /* >= 1; the result is flagged truncated when reached */
    float temperature;        /* <= 0: greedy (argmax, first index among ties) */
    int64_t top_k;            /* 0: off */
    float top_p;              /* 1: off */
    float repetition_penalty; /* 1: off; HF rule over every distinct prompt and output id */
    uint64_t seed;            /* sampling RNG seed (re-seeded at every vl_generate) */
    bool ignore_eos;          /* never stop at EOS: EOS ids are excluded from the choice */
    bool reuse_prefix;        /* keep the KV cache of the longest common text prefix with the
                               * previous request (stops before the first vision token) [true] */
    vl_token_fn on_token;     /* may be NULL */
    void *token_user;
    vl_abort_fn should_abort; /* may be NULL */
    void *abort_user;
    vl_constrain_fn constrain; /* may be NULL: unconstrained */
    vl_accept_fn accept;       /* may be NULL */
    void *constrain_user;
};
struct vl_gen_params vl_gen_default_params(void);
/* The model's own defaults (generation_config.json, as HF generate uses them): do_sample false
 * -> greedy, else its temperature / top_k / top_p; its repetition_penalty. Callbacks unset. */
struct vl_gen_params vl_gen_model_params(const struct vl_model *model);

/* One prompt. vision lists the images and videos in prompt order (the k-th image fills the
 * k-th run of image pads, likewise videos); inputs are borrowed for the call. */
struct vl_request {
    const int32_t *ids;
    int64_t n_ids;
    const struct vl_vision_input *vision;
    int n_vision;
};

enum vl_stop {
    VL_STOP_EOS = 0,     /* an EOS id was generated (it is the last of ids) */
    VL_STOP_MAX_TOKENS,  /* max_new_tokens reached (truncated) */
    VL_STOP_CONTEXT,     /* the KV cache is full (truncated) */
    VL_STOP_CALLBACK,    /* on_token returned false */
};

struct vl_timings {
    double vision_s;           /* vision tower, all inputs */
    double prefill_s;          /* embeddings + decoder over the prompt, incl. first logits */
    double decode_s;           /* decode steps (sampling included) */
    int64_t n_vision_tokens;   /* merged vision tokens in the prompt */
    int64_t n_prompt;          /* prompt tokens */
    int64_t n_reused;          /* of them, taken from the cached prefix (not recomputed) */
    int64_t n_decoded;         /* tokens run through decode steps (n_gen - 1 at most) */
};

struct vl_result {
    const int32_t *ids;      /* (n) generated ids; borrowed from the state until its next
                              * vl_generate / vl_state_free */
    const float *logprobs;   /* (n) log p of each id under the raw logits; NAN for forced ids */
    const float *masked_logprobs; /* (n) log p within the ids the constrain hook allowed (equal to
                              * logprobs without a hook); 0 for forced ids */
    int64_t n;
    int64_t n_forced;        /* ids appended by the constrain hook without sampling */
    int64_t n_forced_chunks; /* prefill chunks they were fed in (jump-forwards) */
    bool truncated;          /* stopped by max_new_tokens or the context, not by EOS */
    enum vl_stop stop;
    struct vl_timings t;
};

/* Vision tower + prefill + decode for one request. On error, *out still describes the tokens
 * produced so far (e.g. VL_ERR_CANCELLED). Errors: VL_ERR_INVALID (id out of range,
 * placeholders not matching the inputs), VL_ERR_LIMIT (prompt or vision input larger than the
 * state: "prompt has N tokens, context is M"), VL_ERR_CANCELLED. */
enum vl_status vl_generate(struct vl_state *s, const struct vl_request *req,
                           const struct vl_gen_params *p, struct vl_result *out,
                           struct vl_error *err);

/* ---- several sequences at once (vl_seq.c) ------------------------------------------------------
 *
 *   sp.max_seqs = 8;                                     // vl_state_new as above
 *   int id;
 *   vl_seq_add(st, &id, &rq, &gp, &err);                 // any time a slot is free
 *   while (vl_state_busy(st) > 0) {
 *       vl_step(st, &err);                               // one unit of work
 *       for each added id: if (vl_seq_done(st, id, &res, &status, &seq_err)) { use; vl_seq_release(st, id); }
 *   }
 *
 * A step is one of: a decode step of every decoding sequence (the weights are read once for all
 * of them), one prefill chunk of one sequence, or the vision tower of one sequence; decode steps
 * alternate with the others so running sequences keep producing tokens while a new one joins.
 * Exact and batch-invariant: a sequence's logits are bit-identical whatever else is in flight
 * (decode rows go through row-independent kernels; a prompt is prefilled in chunks of its own,
 * split at its first vision token, so the shared prefix is computed the same way every time). */

/* Adds a request (checked as vl_generate checks it). ids are copied; vision inputs are borrowed
 * until vl_seq_release. VL_ERR_LIMIT when all max_seqs slots are taken. *out_seq: its slot. */
enum vl_status vl_seq_add(struct vl_state *s, int *out_seq, const struct vl_request *req,
                          const struct vl_gen_params *p, struct vl_error *err);
/* Does one unit of work (see above). A sequence's own failure (out of memory for its cache, a
 * cancel) ends that sequence only, with its status; the return value is VL_OK then. */
enum vl_status vl_step(struct vl_state *s, struct vl_error *err);
/* Sequences added and not yet done. */
int vl_state_busy(const struct vl_state *s);
/* True when seq has finished: *out as vl_generate fills it (arrays valid until release),
 * *status its outcome (VL_OK, VL_ERR_CANCELLED, ...), seq_err its message (may be NULL). */
bool vl_seq_done(const struct vl_state *s, int seq, struct vl_result *out,
                 enum vl_status *status, struct vl_error *seq_err);
/* Ends seq now (status VL_ERR_CANCELLED unless already done); release still required. */
void vl_seq_cancel(struct vl_state *s, int seq);
/* Frees the slot for the next vl_seq_add (its cache memory is kept for reuse). */
void vl_seq_release(struct vl_state *s, int seq);
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

/* Tokens one image/video occupies in the prompt: grid_t * grid_h * grid_w / merge^2. */
int64_t vl_vision_tokens(const struct vl_model *model, const struct vl_vision_input *in);
/* Expands each image / video pad id of a tokenised prompt (one <|image_pad|> per image, as the
 * chat template writes it) into vl_vision_tokens() copies, the k-th image pad for the k-th image
 * of vision (videos likewise). VL_ERR_INVALID when the numbers of placeholders and inputs differ
 * ("prompt has 2 image placeholders, 1 image given"). Caller frees *out_ids with free(). */
enum vl_status vl_prompt_expand(int32_t **out_ids, int64_t *out_n, const struct vl_model *model,
                                const int32_t *ids, int64_t n, const struct vl_vision_input *vision,
                                int n_vision, struct vl_error *err);
/* Builds a synthetic prompt for benchmarks: for each input <|vision_start|>, its pads,
 * <|vision_end|>, then n_text ordinary text ids. Caller frees *out_ids with free(). */
enum vl_status vl_prompt_synthetic(int32_t **out_ids, int64_t *out_n, const struct vl_model *model,
                                   const struct vl_vision_input *vision, int n_vision,
                                   int64_t n_text, struct vl_error *err);

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

#endif
