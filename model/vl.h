/* libvl: Qwen2.5-VL inference in C — the core API: load a checkpoint, tokenize and template a
 * prompt, preprocess images, generate. Standalone: OpenBLAS, jansson, PCRE2 and GLib, never docproc.
 * Tooling (safetensors I/O, weight formats, stream decoding, sizing, dumps, knobs): vl_tools.h.
 *
 *   struct vl_error err = {0};           // every call: VL_OK or a code + err.msg
 *   struct vl_model *m = NULL;  struct vl_state *st = NULL;
 *   vl_model_load(&m, "Qwen2.5-VL-3B-Instruct", &err);
 *   struct vl_image_params ip;  vl_image_params_default(&ip);
 *   struct vl_vision_input img = {0};
 *   vl_image_preprocess(&img, rgb, w, h, &ip, &err);             // rgb (h, w, 3) RGB8
 *   int32_t *ids; size_t n;
 *   vl_chat_build(m, NULL, "Describe this image.", &img, 1, &ids, &n, &err);
 *   struct vl_state_params sp = vl_state_default_params();
 *   vl_state_new(&st, m, &sp, &err);                             // all inference memory, once
 *   struct vl_request rq = {.ids = ids, .n_ids = (int64_t)n, .vision = &img, .n_vision = 1};
 *   struct vl_gen_params gp = vl_gen_default_params();
 *   struct vl_result res;  char *text;
 *   vl_generate(st, &rq, &gp, &res, &err);
 *   vl_tokenizer_decode(vl_model_tokenizer(m), res.ids, (size_t)res.n, true, &text, NULL, &err);
 *   free(text); free(ids); vl_vision_input_free(&img); vl_state_free(st); vl_model_free(m);
 * Sections name the vl_*.c files that implement them. */
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
struct vl_state;
struct vl_tokenizer;
struct vl_vision_input;

/* ---- model loading (vl_config.c, vl_weights.c, vl_model.c) ------------------------------- */

/* Loads a checkpoint directory in the published Hugging Face layout (config.json,
 * preprocessor_config.json, generation_config.json, model.safetensors or its index and shards,
 * optional tokenizer.json); validates every file and binds every tensor (VL_ERR_MODEL: missing /
 * unexpected / wrong-shape tensors; VL_ERR_UNSUPPORTED: other architectures). Weights stay
 * mmapped in their stored dtype. Immutable and thread-safe; caller frees with vl_model_free. */
enum vl_status vl_model_load(struct vl_model **out, const char *dir, struct vl_error *err);
/* llama.cpp's GGUF files (docs/quantization.md, "GGUF"): dir is a .gguf text model
 * (general.architecture qwen2vl) or a directory holding one and optionally its vision projector
 * (clip, qwen2.5vl_merger); mmproj (may be NULL) names the projector explicitly. Without a
 * projector the model is text-only (image requests: VL_ERR_INVALID). A projector that does not
 * fit the text model, or any other kind of file: VL_ERR_MODEL / VL_ERR_UNSUPPORTED; mmproj with
 * a checkpoint directory: VL_ERR_INVALID. vl_model_load(out, dir, err) is this with mmproj NULL. */
enum vl_status vl_model_load_with_projector(struct vl_model **out, const char *dir,
                                            const char *mmproj, struct vl_error *err);
/* False for a GGUF text model loaded without its projector (text-only requests only). */
bool vl_model_has_vision(const struct vl_model *m);
void vl_model_free(struct vl_model *m); /* NULL-safe */

/* ---- tokenizer & chat (vl_tokenizer*.c, vl_chat.c) --------------------------------------- */
/* Byte-level BPE, HF `tokenizers` semantics (spec §8); borrowed, NULL without tokenizer.json. */
const struct vl_tokenizer *vl_model_tokenizer(const struct vl_model *m);
/* UTF-8 (invalid: VL_ERR_INVALID) to ids, special-token strings as their ids, no BOS/EOS; more
 * than cap ids: VL_ERR_LIMIT with *n_out = the number needed. Thread-safe. */
enum vl_status vl_tokenizer_encode(const struct vl_tokenizer *t, const char *text, size_t len,
                                   int32_t *ids, size_t cap, size_t *n_out, struct vl_error *err);
/* Ids to UTF-8 (bad sequences U+FFFD, unknown ids dropped); *out NUL-terminated, free(). */
enum vl_status vl_tokenizer_decode(const struct vl_tokenizer *t, const int32_t *ids, size_t n,
                                   bool skip_special, char **out, size_t *out_len,
                                   struct vl_error *err);

/* Chat template (spec §5.1) and placeholder expansion (§5.2): <|im_start|>system\n...<|im_end|>\n
 * <|im_start|>user\n<|vision_start|><|image_pad|>xN<|vision_end|>TEXT<|im_end|>\n
 * <|im_start|>assistant\n, N = grid_t*grid_h*grid_w/merge^2 per input. */
#define VL_CHAT_DEFAULT_SYSTEM "You are a helpful assistant."
#define VL_CHAT_MAX_INPUTS 256 /* images + videos in one prompt */
/* One turn: system (NULL: the default), user = the inputs of vis in order then user_text, the
 * generation prompt; tokenised and expanded. *out_ids is caller-owned (free()). */
enum vl_status vl_chat_build(const struct vl_model *m, const char *system, const char *user_text,
                             const struct vl_vision_input *vis, int n_vis, int32_t **out_ids,
                             size_t *n_out, struct vl_error *err);

/* ---- image preprocessing (vl_image.c, vl_video.c) ----------------------------------------- */

/* One image or video as the vision encoder takes it: the reference's pixel_values (§2.7, §3). */
struct vl_vision_input {
    float *pixel_values;      /* (n_patches, patch_dim), rows in 2x2 merge-block order; owned */
    int64_t n_patches;        /* grid_t * grid_h * grid_w */
    int64_t patch_dim;        /* C * TP * P * P (1176) */
    int64_t grid_t, grid_h, grid_w;
    bool is_video;
    double second_per_grid_t; /* video only: temporal_patch_size / fps */
};
void vl_vision_input_free(struct vl_vision_input *in); /* frees pixel_values; NULL-safe */

/* Published preprocessor_config.json values (spec §1.3); docproc refers to these, never copies. */
#define VL_IMAGE_DEFAULT_MIN_PIXELS   3136      /* 4 * 28 * 28 */
#define VL_IMAGE_DEFAULT_MAX_PIXELS   12845056  /* 16384 * 28 * 28 */
#define VL_IMAGE_DEFAULT_PATCH        14
#define VL_IMAGE_DEFAULT_TEMPORAL     2
#define VL_IMAGE_DEFAULT_MERGE        2
#define VL_IMAGE_DEFAULT_RESCALE      0.00392156862745098 /* 1/255 */
#define VL_IMAGE_CHANNELS             3
extern const double vl_image_default_mean[VL_IMAGE_CHANNELS]; /* OpenAI CLIP, RGB */
extern const double vl_image_default_std[VL_IMAGE_CHANNELS];

/* Processor settings (a plain copy of preprocessor_config.json; see vl_image_params_load). */
struct vl_image_params {
    int64_t min_pixels, max_pixels;
    int64_t patch_size, temporal_patch_size, merge_size;
    double image_mean[VL_IMAGE_CHANNELS], image_std[VL_IMAGE_CHANNELS];
    double rescale_factor;
    bool fused_normalize; /* true: the video processor's fused float32 form (spec §2.5) */
};
void vl_image_params_default(struct vl_image_params *out); /* the published defaults above */
/* Reads preprocessor_config.json; absent keys keep their defaults. */
enum vl_status vl_image_params_load(struct vl_image_params *out, const char *path,
                                    struct vl_error *err);
/* rgb (h, w, 3) to pixel_values: smart_resize, PIL bicubic resize, rescale + normalise, temporal
 * duplication, patchify (spec §2.3-§2.7). Free with vl_vision_input_free. */
enum vl_status vl_image_preprocess(struct vl_vision_input *out, const uint8_t *rgb, int64_t w,
                                   int64_t h, const struct vl_image_params *p,
                                   struct vl_error *err);
/* Sampled frames (n_frames (h, w, 3) RGB8 of one size) to pixel_values_videos (spec §3.4-§3.5):
 * last frame repeated to a multiple of temporal_patch_size, smart_resize, fused normalisation. */
enum vl_status vl_video_preprocess(struct vl_vision_input *out, const uint8_t *const *frames,
                                   int64_t n_frames, int64_t w, int64_t h, double fps,
                                   const struct vl_image_params *p, struct vl_error *err);

/* ---- inference state & generation (vl_state.c, vl_generate.c, vl_llm.c, vl_vision*.c) ---- */

#define VL_STATE_DEFAULT_CTX   8192 /* tokens in the KV cache (prompt + generated) */
#define VL_STATE_DEFAULT_BATCH 2048 /* prefill chunk: bounds the activation memory */
#define VL_STATE_DEFAULT_ATTN_BLOCK 256 /* prefill attention query rows per block */

struct vl_state_params {
    int n_threads;              /* threads for our pool and OpenBLAS [1] */
    int64_t n_ctx;              /* tokens of a request incl. generated [CTX, <= max positions] */
    int64_t n_batch;            /* prefill chunk rows [VL_STATE_DEFAULT_BATCH] */
    int64_t attn_block;         /* prefill attention query rows per block [ATTN_BLOCK] */
    int64_t max_vision_patches; /* largest image/video in 14-px patches [0: n_ctx * merge^2] */
    int max_seqs;               /* sequences in flight at once, vl_seq_add [1] */
    bool join_first;            /* vl_step: a joining sequence's vision and prefill go before
                                 * decode steps (all sequences then decode together); default:
                                 * they alternate with decode steps [false] */
};
struct vl_state_params vl_state_default_params(void);
#define VL_STATE_MAX_SEQS 64 /* most sequences one state runs at once */
/* Allocates everything inference needs once (KV cache, activations, vision scratch, sampler);
 * model is borrowed and must outlive the state. VL_ERR_NOMEM / _LIMIT (overflow) / _INVALID. */
enum vl_status vl_state_new(struct vl_state **out, const struct vl_model *model,
                            const struct vl_state_params *params, struct vl_error *err);
void vl_state_free(struct vl_state *s); /* NULL-safe */
/* Forgets the cached prefix (the KV cache); the next request prefills from scratch. */
void vl_state_reset(struct vl_state *s);

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

/* The published generation_config.json is effectively greedy with repetition penalty 1.05 (spec
 * §1.4); vl_gen_default_params() is that: greedy, top_k 0, top_p 1, seed 0, 512 new tokens. */
#define VL_GEN_DEFAULT_MAX_NEW_TOKENS      512
#define VL_GEN_DEFAULT_REPETITION_PENALTY  1.05 /* double; a float field takes 1.05f */

struct vl_gen_params {
    int64_t max_new_tokens;   /* >= 1; the result is flagged truncated when reached */
    float temperature;        /* <= 0: greedy (argmax, first index among ties) */
    int64_t top_k;            /* 0: off */
    float top_p;              /* 1: off */
    float repetition_penalty; /* 1: off; HF rule over every distinct prompt and output id */
    uint64_t seed;            /* sampling RNG seed (re-seeded at every vl_generate) */
    bool ignore_eos;          /* never stop at EOS: EOS ids are excluded from the choice */
    bool reuse_prefix;        /* keep the KV of the common text prefix with the last request */
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

/* One prompt: ids templated, tokenised and expanded (spec §5.2); vision lists the images and
 * videos in prompt order (the k-th fills the k-th run of pads), borrowed for the call. */
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
    const int32_t *ids;      /* (n) generated ids; borrowed until the next vl_generate */
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

/* Vision tower + prefill + decode of one request; on error *out still holds the tokens so far.
 * VL_ERR_INVALID (id out of range, placeholders not matching the inputs), VL_ERR_LIMIT (prompt
 * or vision input larger than the state: "prompt has N tokens, context is M"), _CANCELLED. */
enum vl_status vl_generate(struct vl_state *s, const struct vl_request *req,
                           const struct vl_gen_params *p, struct vl_result *out,
                           struct vl_error *err);

/* ---- several sequences at once (vl_seq.c) ------------------------------------------------------
 *
 *   sp.max_seqs = 8;  ...vl_state_new...;  int id;
 *   vl_seq_add(st, &id, &rq, &gp, &err);                 // any time a slot is free
 *   while (vl_state_busy(st) > 0) {
 *       vl_step(st, &err);                               // one unit of work
 *       for each id: if (vl_seq_done(st, id, &res, &status, &seq_err)) { use; vl_seq_release(st, id); }
 *   }
 * A step is a decode step of every decoding sequence (weights read once for all), one prefill
 * chunk of one sequence, or the vision tower of one sequence. Batch-invariant: a sequence's
 * logits are bit-identical whatever else is in flight (see vl_seq.c). */

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

#endif
