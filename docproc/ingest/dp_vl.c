/* The docproc <-> libvl boundary (dp_vl.h): status mapping, error messages, the log route.
 * Stateless apart from libvl's process-wide log hook; thread-safe. */
#include "dp_vl.h"

#include "dp_log.h"
#include "vl_tools.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum dp_status dp_vl_status(enum vl_status st, enum dp_status other) {
    switch (st) {
    case VL_OK: return DP_OK;
    case VL_ERR_NOMEM: return DP_ERR_NOMEM;
    case VL_ERR_LIMIT: return DP_ERR_LIMIT;
    case VL_ERR_CANCELLED: return DP_ERR_CANCELLED;
    default: break;
    }
    if (other != DP_OK)
        return other;
    switch (st) {
    case VL_ERR_IO: return DP_ERR_IO;
    case VL_ERR_FORMAT: return DP_ERR_FORMAT;
    case VL_ERR_UNSUPPORTED: return DP_ERR_UNSUPPORTED;
    case VL_ERR_MODEL: return DP_ERR_MODEL;
    case VL_ERR_INVALID: return DP_ERR_FORMAT;
    default: return DP_ERR_INTERNAL;
    }
}

enum dp_status dp_vl_err(struct dp_err *err, const struct vl_error *ve, enum dp_status other,
                         const char *fmt, ...) {
    enum dp_status st = dp_vl_status(ve->code, other);
    if (st == DP_OK) /* a vl_error without a code: still an error */
        st = other != DP_OK ? other : DP_ERR_INTERNAL;
    if (!fmt)
        return dp_err_set(err, st, "%s", ve->msg);
    char prefix[DP_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    size_t n = strlen(prefix);
    if (n && strncmp(ve->msg, prefix, n) == 0 && ve->msg[n] == ':') /* it names that already */
        return dp_err_set(err, st, "%s", ve->msg);
    return dp_err_set(err, st, "%s: %s", prefix, ve->msg);
}

enum dp_status dp_vl_model_load(struct vl_model **out, const char *dir, const char *mmproj,
                                struct dp_err *err) {
    struct vl_error verr = {0};
    if (vl_model_load_with_projector(out, dir, mmproj, &verr) != VL_OK)
        return dp_vl_err(err, &verr, DP_ERR_MODEL, "%s", dir);
    return DP_OK;
}

enum dp_status dp_vl_model_weights(struct vl_model *m, int text, int vision, int n_threads,
                                   struct dp_err *err) {
    enum vl_wformat t = text >= 0 ? (enum vl_wformat)text : vl_model_wformat(m, false);
    enum vl_wformat v = vision >= 0 ? (enum vl_wformat)vision : vl_model_wformat(m, true);
    struct vl_error verr = {0};
    if (vl_model_quantize(m, t, v, n_threads, &verr) != VL_OK)
        return dp_vl_err(err, &verr, DP_ERR_MODEL, NULL);
    return DP_OK;
}

static void log_line(enum vl_log_level level, const char *msg, void *user) {
    (void)user;
    enum dp_log_level l = level == VL_LOG_ERROR  ? DP_LOG_ERROR
                          : level == VL_LOG_WARN ? DP_LOG_WARN
                          : level == VL_LOG_INFO ? DP_LOG_INFO
                                                 : DP_LOG_DEBUG;
    DP_LOG_AT(l, "model: %s", msg);
}

void dp_vl_log_route(void) {
    vl_log_set(log_line, NULL, (enum vl_log_level)dp_log_get_level());
}
