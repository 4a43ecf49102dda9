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

/* ---- safetensors files (vl_safetensors.c) ----------------------------------------------- */

#define VL_ST_MAX_DIMS 8

/* One tensor of a safetensors file, as plain types (for tools, tests, --dump and preprocess). */
struct vl_st_entry {
    const char *name;
    const char *dtype;               /* "F32", "BF16", "F16", "I64", "I32", ... */
    int ndim;
    int64_t shape[VL_ST_MAX_DIMS];
    const void *data;                /* little-endian, row-major */
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

/* ---- model loading (vl_config.c, vl_weights.c, vl_model.c) ------------------------------- */
/* (declarations added by the runtime work) */

/* ---- tokenizer & chat (vl_tokenizer.c, vl_chat.c) ---------------------------------------- */

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

/* ---- inference state & generation (vl_state.c, vl_vision.c, vl_llm.c, vl_generate.c) ------ */

/* Named-tensor hook at fixed points ("vit.patch_embed", "vit.blk.%d.out", "merger.out",
 * "inputs_embeds", "llm.blk.%d.out", "llm.norm", "logits", ...). data is f32, row-major,
 * borrowed for the duration of the call. Costs nothing when unset. */
typedef void (*vl_hook_fn)(const char *name, const float *data, int ndim, const int64_t *shape,
                           void *user);

#endif
