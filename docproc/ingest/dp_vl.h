/* The one boundary between docproc and libvl: how a libvl status becomes a docproc status and
 * message, and where libvl's log lines go. Every docproc caller of libvl uses these.
 *
 *   struct vl_error ve = {0};
 *   if (vl_model_load(&m, dir, &ve) != VL_OK)
 *       return dp_vl_err(err, &ve, DP_ERR_MODEL, "%s", dir);   // "DIR: <libvl's message>"
 *   ...
 *   dp_vl_log_route();   // once, after dp_log_set_level: libvl lines as "docproc: LEVEL: model: ..."
 *
 * Lives in dpingest because ingest is the lowest docproc layer that links libvl. */
#ifndef DP_VL_H
#define DP_VL_H

#include "dp_status.h"
#include "vl.h"

/* The docproc status for a libvl one. NOMEM, LIMIT and CANCELLED always keep their twins. The
 * rest say what failed in the caller's terms: `other` when it is not DP_OK (e.g. DP_ERR_MODEL
 * while loading, DP_ERR_FORMAT for an input), else the twin (IO, FORMAT, UNSUPPORTED, MODEL,
 * INTERNAL; VL_ERR_INVALID, a bad request, is DP_ERR_FORMAT). */
enum dp_status dp_vl_status(enum vl_status st, enum dp_status other);

/* Records dp_vl_status(ve->code, other) in err with the message "<prefix>: <ve->msg>" (prefix
 * formatted from fmt; the message alone when fmt is NULL or when ve->msg already starts with
 * "<prefix>:", so a path is not named twice) and returns the status. */
enum dp_status dp_vl_err(struct dp_err *err, const struct vl_error *ve, enum dp_status other,
                         const char *fmt, ...) DP_PRINTF(4, 5);

/* Loads --model DIR (a checkpoint, a llama.cpp GGUF text model or a directory holding one) with
 * --mmproj if given (vl_model_load_with_projector); DP_ERR_MODEL with libvl's message naming dir. */
enum dp_status dp_vl_model_load(struct vl_model **out, const char *dir, const char *mmproj,
                                struct dp_err *err);
/* Applies --weights / --vision-weights to a freshly loaded model: vl_model_quantize to text /
 * vision (enum vl_wformat; -1 keeps what the checkpoint stores) with n_threads workers.
 * DP_ERR_MODEL with libvl's message when the checkpoint cannot give the format. */
enum dp_status dp_vl_model_weights(struct vl_model *m, int text, int vision, int n_threads,
                                   struct dp_err *err);

/* Routes libvl's log lines into dp_log as "model: <line>", each at its own level, filtered by
 * dp_log's level (dp_log_set_level). */
void dp_vl_log_route(void);

/* What a checkpoint without tokenizer.json needs (e.g. `model synth` without --from): said by
 * every command that refuses one, and by `model synth` when it writes one. */
#define DP_VL_NO_TOKENIZER_HINT                                                                \
    "no tokenizer.json: copy the tokenizer of a Qwen2.5-VL checkpoint into it (docproc model " \
    "synth --from CHECKPOINT or --tokenizer FILE does)"

#endif
