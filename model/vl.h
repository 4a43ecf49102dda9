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

/* ---- inference state & generation (vl_state.c, vl_vision.c, vl_llm.c, vl_generate.c) ------ */

/* Named-tensor hook at fixed points ("vit.patch_embed", "vit.blk.%d.out", "merger.out",
 * "inputs_embeds", "llm.blk.%d.out", "llm.norm", "logits", ...). data is f32, row-major,
 * borrowed for the duration of the call. Costs nothing when unset. */
typedef void (*vl_hook_fn)(const char *name, const float *data, int ndim, const int64_t *shape,
                           void *user);

#endif
