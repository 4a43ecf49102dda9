/* Capped growable buffer (dp_buf.h). Not thread-safe; one owner. */
#include "dp_buf.h"
#include "dp_alloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define DP_BUF_MIN_CAP 64

void dp_buf_init(struct dp_buf *b, size_t max) {
    memset(b, 0, sizeof *b);
    b->max = max;
}

void dp_buf_free(struct dp_buf *b) {
    dp_free(b->data);
    memset(b, 0, sizeof *b);
}

void dp_buf_reset(struct dp_buf *b) {
    b->len = 0;
    b->status = DP_OK;
    if (b->data)
        b->data[0] = '\0';
}

static enum dp_status reserve(struct dp_buf *b, size_t extra) {
    size_t need;
    if (!dp_size_add(&need, b->len, extra) || need > b->max) {
        b->status = DP_ERR_LIMIT;
        return b->status;
    }
    if (need + 1 <= b->cap)
        return DP_OK;
    size_t cap = b->cap ? b->cap : DP_BUF_MIN_CAP;
    while (cap < need + 1)
        cap = cap > SIZE_MAX / 2 ? need + 1 : cap * 2;
    char *p = dp_realloc(b->data, cap);
    if (!p) {
        b->status = DP_ERR_NOMEM;
        return b->status;
    }
    b->data = p;
    b->cap = cap;
    return DP_OK;
}

enum dp_status dp_buf_append(struct dp_buf *b, const void *data, size_t len) {
    if (b->status != DP_OK)
        return b->status;
    if (reserve(b, len) != DP_OK)
        return b->status;
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return DP_OK;
}

enum dp_status dp_buf_puts(struct dp_buf *b, const char *s) {
    return dp_buf_append(b, s, strlen(s));
}

enum dp_status dp_buf_putc(struct dp_buf *b, char c) {
    return dp_buf_append(b, &c, 1);
}

enum dp_status dp_buf_appendf(struct dp_buf *b, const char *fmt, ...) {
    if (b->status != DP_OK)
        return b->status;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->status = DP_ERR_INTERNAL;
        return b->status;
    }
    if (reserve(b, (size_t)n) != DP_OK)
        return b->status;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return DP_OK;
}

char *dp_buf_steal(struct dp_buf *b, size_t *len_out) {
    char *d = b->data;
    if (len_out)
        *len_out = b->len;
    size_t max = b->max;
    dp_buf_init(b, max);
    return d;
}
