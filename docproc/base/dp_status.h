/* Status codes and the per-job error context shared by all dp_/ex_/sc_ code.
 *
 *   struct dp_err err = {0};
 *   if (dp_pdf_open(&doc, path, &opts, &err) != DP_OK)
 *       dp_log_error("%s: %s", path, err.msg);
 *
 * The first error set wins; callers propagate the code and never overwrite the message. */
#ifndef DP_STATUS_H
#define DP_STATUS_H

#include <stdarg.h>

#if defined(__GNUC__)
#define DP_PRINTF(fmt_idx, arg_idx) __attribute__((format(printf, fmt_idx, arg_idx)))
#else
#define DP_PRINTF(fmt_idx, arg_idx)
#endif

enum dp_status {
    DP_OK              = 0,
    DP_ERR_NOMEM       = -1,
    DP_ERR_IO          = -2,
    DP_ERR_FORMAT      = -3,
    DP_ERR_LIMIT       = -4,
    DP_ERR_UNSUPPORTED = -5,
    DP_ERR_MODEL       = -6,
    DP_ERR_SCHEMA      = -7,
    DP_ERR_CANCELLED   = -8,
    DP_ERR_PASSWORD    = -9,
    DP_ERR_USAGE       = -10,
    DP_ERR_INVALID     = -11, /* a result failed its schema's validation (--strict) */
    DP_ERR_INTERNAL    = -99,
};

#define DP_ERR_MSG_MAX 256

struct dp_err {
    enum dp_status code;
    int sys_errno;
    char msg[DP_ERR_MSG_MAX];
};

/* Short constant text for a code ("out of memory", "bad format", ...). */
const char *dp_status_str(enum dp_status code);

/* Records code and message unless an error is already recorded; returns code (first error wins).
 * err may be NULL. */
enum dp_status dp_err_set(struct dp_err *err, enum dp_status code, const char *fmt, ...)
    DP_PRINTF(3, 4);
enum dp_status dp_err_setv(struct dp_err *err, enum dp_status code, const char *fmt, va_list ap)
    DP_PRINTF(3, 0);
/* As dp_err_set, also recording errno and appending strerror(errno). */
enum dp_status dp_err_set_errno(struct dp_err *err, enum dp_status code, int sys_errno,
                                const char *fmt, ...) DP_PRINTF(4, 5);
/* Prefixes the stored message with "prefix: " (e.g. the file name) if it does not start with it. */
void dp_err_prefix(struct dp_err *err, const char *fmt, ...) DP_PRINTF(2, 3);
void dp_err_clear(struct dp_err *err);

/* Programmer errors: abort with file/line/expression, even in release builds. */
void dp_assert_fail(const char *file, int line, const char *expr) __attribute__((noreturn));
#define DP_ASSERT(x)                                                                               \
    do {                                                                                           \
        if (!(x))                                                                                  \
            dp_assert_fail(__FILE__, __LINE__, #x);                                                \
    } while (0)

#endif
