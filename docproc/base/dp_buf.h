/* A growable byte buffer with a hard cap and a sticky error (curl dynbuf).
 *
 *   struct dp_buf b;
 *   dp_buf_init(&b, DP_MAX_TEXT_BYTES);
 *   dp_buf_append(&b, "abc", 3);
 *   dp_buf_appendf(&b, "%d", 42);
 *   if (b.status != DP_OK) ...;      // check once at the end
 *   dp_buf_free(&b);
 *
 * data is always NUL-terminated (when non-NULL). Not thread-safe. */
#ifndef DP_BUF_H
#define DP_BUF_H

#include "dp_status.h"

#include <stddef.h>

struct dp_buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max;            /* hard limit on len */
    enum dp_status status; /* first failure; later appends are ignored */
};

void dp_buf_init(struct dp_buf *b, size_t max);
void dp_buf_free(struct dp_buf *b);
void dp_buf_reset(struct dp_buf *b);
enum dp_status dp_buf_append(struct dp_buf *b, const void *data, size_t len);
enum dp_status dp_buf_puts(struct dp_buf *b, const char *s);
enum dp_status dp_buf_putc(struct dp_buf *b, char c);
enum dp_status dp_buf_appendf(struct dp_buf *b, const char *fmt, ...) DP_PRINTF(2, 3);
/* Hands the data to the caller (free with dp_free) and resets the buffer. */
char *dp_buf_steal(struct dp_buf *b, size_t *len_out);

#endif
