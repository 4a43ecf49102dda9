/* The single allocation wrapper with a fail-the-Nth-allocation test hook.
 * Thread-safe except for dp_alloc_fail_after, which tests set before starting work. */
#include "dp_alloc.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static atomic_long fail_countdown; /* 0 = never fail */

long dp_alloc_fail_after(long n) {
    return atomic_exchange(&fail_countdown, n);
}

static bool should_fail(void) {
    long v = atomic_load(&fail_countdown);
    if (v <= 0)
        return false;
    return atomic_fetch_sub(&fail_countdown, 1) == 1;
}

void *dp_malloc(size_t n) {
    if (should_fail())
        return NULL;
    return malloc(n ? n : 1);
}

void *dp_calloc(size_t count, size_t size) {
    if (should_fail())
        return NULL;
    return calloc(count ? count : 1, size ? size : 1);
}

void *dp_realloc(void *p, size_t n) {
    if (should_fail())
        return NULL;
    return realloc(p, n ? n : 1);
}

void *dp_reallocarray(void *p, size_t count, size_t size) {
    size_t n;
    if (!dp_size_mul(&n, count, size))
        return NULL;
    return dp_realloc(p, n);
}

char *dp_strndup(const char *s, size_t n) {
    size_t len = strnlen(s, n);
    char *d = dp_malloc(len + 1);
    if (!d)
        return NULL;
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

char *dp_strdup(const char *s) {
    return dp_strndup(s, strlen(s));
}

void dp_free(void *p) {
    free(p);
}

bool dp_size_add(size_t *out, size_t a, size_t b) {
    return !__builtin_add_overflow(a, b, out);
}

bool dp_size_mul(size_t *out, size_t a, size_t b) {
    return !__builtin_mul_overflow(a, b, out);
}

bool dp_size_mul3(size_t *out, size_t a, size_t b, size_t c) {
    size_t ab;
    return dp_size_mul(&ab, a, b) && dp_size_mul(out, ab, c);
}
