/* Checked allocation and overflow-checked size arithmetic.
 *
 *   size_t n;
 *   if (!dp_size_mul3(&n, w, h, 3)) return dp_err_set(err, DP_ERR_LIMIT, "...");
 *   uint8_t *px = dp_malloc(n);
 *   if (!px) return dp_err_set(err, DP_ERR_NOMEM, "...");
 *
 * Every allocation in dp_/ex_/sc_ code goes through these so the OOM torture test
 * (dp_alloc_fail_after) can fail the Nth one. */
#ifndef DP_ALLOC_H
#define DP_ALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

void *dp_malloc(size_t n);
void *dp_calloc(size_t count, size_t size);
void *dp_realloc(void *p, size_t n);
/* realloc of count*size elements; NULL (and p untouched) on overflow or failure. */
void *dp_reallocarray(void *p, size_t count, size_t size);
char *dp_strdup(const char *s);
char *dp_strndup(const char *s, size_t n);
void dp_free(void *p);
#define DP_FREE(p)                                                                                 \
    do {                                                                                           \
        dp_free(p);                                                                                \
        (p) = NULL;                                                                                \
    } while (0)

/* Test hook: the Nth allocation from now fails (0 disables). Returns what was left of the
 * previous countdown: > 0 when the armed failure never happened (fewer allocations were made).
 * Not thread-safe; tests only. */
long dp_alloc_fail_after(long n);

/* Overflow-checked arithmetic; return false on overflow and leave *out unspecified. */
bool dp_size_add(size_t *out, size_t a, size_t b);
bool dp_size_mul(size_t *out, size_t a, size_t b);
bool dp_size_mul3(size_t *out, size_t a, size_t b, size_t c);

#endif
