/* Status text and the first-error-wins error context (dp_status.h).
 * Thread-safe: functions touch only the dp_err passed in. */
#include "dp_status.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *dp_status_str(enum dp_status code) {
    switch (code) {
    case DP_OK: return "ok";
    case DP_ERR_NOMEM: return "out of memory";
    case DP_ERR_IO: return "i/o error";
    case DP_ERR_FORMAT: return "bad format";
    case DP_ERR_LIMIT: return "limit exceeded";
    case DP_ERR_UNSUPPORTED: return "unsupported";
    case DP_ERR_MODEL: return "model error";
    case DP_ERR_SCHEMA: return "schema error";
    case DP_ERR_CANCELLED: return "cancelled";
    case DP_ERR_PASSWORD: return "password required or wrong";
    case DP_ERR_USAGE: return "usage error";
    case DP_ERR_INVALID: return "validation failed";
    case DP_ERR_INTERNAL: return "internal error";
    }
    return "unknown status";
}

enum dp_status dp_err_setv(struct dp_err *err, enum dp_status code, const char *fmt, va_list ap) {
    if (!err || err->code != DP_OK)
        return code;
    err->code = code;
    vsnprintf(err->msg, sizeof err->msg, fmt, ap); /* truncation of a message is acceptable */
    return code;
}

enum dp_status dp_err_set(struct dp_err *err, enum dp_status code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    dp_err_setv(err, code, fmt, ap);
    va_end(ap);
    return code;
}

enum dp_status dp_err_set_errno(struct dp_err *err, enum dp_status code, int sys_errno,
                                const char *fmt, ...) {
    if (!err || err->code != DP_OK)
        return code;
    va_list ap;
    va_start(ap, fmt);
    dp_err_setv(err, code, fmt, ap);
    va_end(ap);
    err->sys_errno = sys_errno;
    size_t n = strlen(err->msg);
    if (n < sizeof err->msg)
        snprintf(err->msg + n, sizeof err->msg - n, ": %s", strerror(sys_errno));
    return code;
}

void dp_err_prefix(struct dp_err *err, const char *fmt, ...) {
    if (!err || err->code == DP_OK)
        return;
    char prefix[DP_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    size_t plen = strlen(prefix);
    if (strncmp(err->msg, prefix, plen) == 0)
        return;
    /* Shift the message right by "prefix: " and copy the prefix in, truncating at the end. */
    size_t add = plen + 2, cap = sizeof err->msg - 1;
    if (add >= cap)
        return;
    size_t mlen = strlen(err->msg);
    if (mlen > cap - add)
        mlen = cap - add;
    memmove(err->msg + add, err->msg, mlen);
    err->msg[add + mlen] = '\0';
    memcpy(err->msg, prefix, plen);
    err->msg[plen] = ':';
    err->msg[plen + 1] = ' ';
}

void dp_err_clear(struct dp_err *err) {
    if (err)
        memset(err, 0, sizeof *err);
}

void dp_assert_fail(const char *file, int line, const char *expr) {
    /* DP_ASSERT is the one place that prints outside dp_log and aborts. */
    fprintf(stderr, "docproc: internal error: %s:%d: assertion failed: %s\n", /* check_style: allow */
            file, line, expr);
    abort(); /* check_style: allow */
}
