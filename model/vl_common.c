/* libvl status text, first-error-wins errors, the log callback and the one allocation wrapper
 * (vl__malloc and friends, with the fail-the-Nth test hook).
 * The log callback is process-wide, set once at start-up (like ggml_log_set); not changed
 * while inference runs. The allocation wrapper is thread-safe (atomic counters). */
#define _DEFAULT_SOURCE /* madvise and MADV_HUGEPAGE beside POSIX 2008 */
#include "vl_impl.h"

#include <sys/mman.h>
#include <time.h>

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

bool vl__log_enabled(enum vl_log_level level) {
    return log_fn && level <= log_max;
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

/* ---- allocation ------------------------------------------------------------------------- */

static atomic_int_fast64_t alloc_count;   /* allocations since the last vl__alloc_fail_after */
static atomic_int_fast64_t alloc_fail_at; /* 0 = never fail; else fail from this count on */

/* True when this allocation is to fail (test hook); counts it otherwise. */
static bool alloc_fails(void) {
    int_fast64_t at = atomic_load_explicit(&alloc_fail_at, memory_order_relaxed);
    int_fast64_t k = atomic_fetch_add_explicit(&alloc_count, 1, memory_order_relaxed) + 1;
    return at > 0 && k >= at;
}

int64_t vl__alloc_fail_after(int64_t n) {
    int64_t before = (int64_t)atomic_exchange(&alloc_count, 0);
    atomic_store(&alloc_fail_at, n > 0 ? n : 0);
    return before;
}

void *vl__malloc(size_t n) {
    if (alloc_fails())
        return NULL;
    return malloc(n ? n : 1);
}

bool vl__malloc_all(void *out[], const size_t bytes[], int n) {
    for (int i = 0; i < n; i++) {
        out[i] = vl__malloc(bytes[i]);
        if (!out[i]) {
            for (int j = 0; j < i; j++) {
                vl__free(out[j]);
                out[j] = NULL;
            }
            return false;
        }
    }
    return true;
}

void *vl__calloc(size_t count, size_t size) {
    if (size && count > SIZE_MAX / size)
        return NULL;
    if (alloc_fails())
        return NULL;
    return calloc(count ? count : 1, size ? size : 1);
}

void *vl__realloc(void *p, size_t n) {
    if (alloc_fails())
        return NULL;
    return realloc(p, n ? n : 1);
}

void *vl__aligned_alloc(size_t align, size_t n) {
    size_t rounded = n ? n : align;
    if (rounded % align) {
        if (rounded > SIZE_MAX - align)
            return NULL;
        rounded += align - rounded % align;
    }
    if (alloc_fails())
        return NULL;
    return aligned_alloc(align, rounded);
}

char *vl__strndup(const char *s, size_t n) {
    size_t len = strnlen(s, n);
    char *d = vl__malloc(len + 1);
    if (!d)
        return NULL;
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

char *vl__strdup(const char *s) { return vl__strndup(s, SIZE_MAX); }

void vl__free(void *p) { free(p); }

/* ---- small system helpers ----------------------------------------------------------------- */

double vl__now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void vl__env_bytes(const char *name, long long max, long long *bytes) {
    const char *v = getenv(name);
    if (!v || !*v)
        return;
    char *end;
    long long b = strtoll(v, &end, 10);
    if (*end || b < 0 || b > max)
        vl__log(VL_LOG_WARN, "%s=%s: not 0..%lld bytes, keeping %lld", name, v, max, *bytes);
    else
        *bytes = b;
}

void vl__advise_huge(void *p, size_t n) {
#ifdef MADV_HUGEPAGE
    (void)madvise(p, n, MADV_HUGEPAGE); /* a hint: EINVAL without CONFIG_TRANSPARENT_HUGEPAGE */
#else
    (void)p;
    (void)n;
#endif
}
