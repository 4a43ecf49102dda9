/* libvl status text, first-error-wins errors and the log callback.
 * The log callback is process-wide, set once at start-up (like ggml_log_set); not changed
 * while inference runs. */
#include "vl_impl.h"

#include <stdarg.h>
#include <stdio.h>

#define VL_LOG_LINE_MAX 1024

static vl_log_fn log_fn;
static void *log_user;
static enum vl_log_level log_max = VL_LOG_WARN;

const char *vl_status_str(enum vl_status st) {
    switch (st) {
    case VL_OK: return "ok";
    case VL_ERR_NOMEM: return "out of memory";
    case VL_ERR_IO: return "i/o error";
    case VL_ERR_FORMAT: return "bad format";
    case VL_ERR_LIMIT: return "limit exceeded";
    case VL_ERR_UNSUPPORTED: return "unsupported";
    case VL_ERR_MODEL: return "model error";
    case VL_ERR_INVALID: return "invalid request";
    case VL_ERR_CANCELLED: return "cancelled";
    case VL_ERR_INTERNAL: return "internal error";
    }
    return "unknown status";
}

enum vl_status vl__err(struct vl_error *err, enum vl_status code, const char *fmt, ...) {
    if (!err || err->code != VL_OK)
        return code;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return code;
}

void vl_log_set(vl_log_fn fn, void *user, enum vl_log_level max_level) {
    log_fn = fn;
    log_user = user;
    log_max = max_level;
}

void vl__log(enum vl_log_level level, const char *fmt, ...) {
    if (!log_fn || level > log_max)
        return;
    char line[VL_LOG_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    log_fn(level, line, log_user);
}
