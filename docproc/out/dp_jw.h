/* A streaming JSON writer over a dp_buf with a sticky error (redis rio / SQLite StrAccum style):
 * calls after the first failure do nothing; check dp_jw_status once at the end.
 *
 *   struct dp_jw w; dp_jw_init(&w, &buf, true);
 *   dp_jw_obj(&w); dp_jw_key(&w, "n"); dp_jw_int(&w, 3); dp_jw_end(&w);
 *   if (dp_jw_status(&w) != DP_OK) ...
 *
 * Strings are expected to be valid UTF-8 (ex.h guarantees it for results); control characters are
 * escaped. Not thread-safe per writer. */
#ifndef DP_JW_H
#define DP_JW_H

#include "dp_buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DP_JW_MAX_DEPTH 64

struct dp_jw {
    struct dp_buf *out;
    bool pretty;
    int depth;
    bool first[DP_JW_MAX_DEPTH]; /* no element written yet at this level */
    bool after_key;
    char close[DP_JW_MAX_DEPTH]; /* '}' or ']' */
    int inline_from;             /* depth of the outermost one-line array, 0 = none */
    enum dp_status st;
};

void dp_jw_init(struct dp_jw *w, struct dp_buf *out, bool pretty);
void dp_jw_obj(struct dp_jw *w);
void dp_jw_arr(struct dp_jw *w);
/* An array written on one line even when pretty (boxes, spans). */
void dp_jw_arr_inline(struct dp_jw *w);
void dp_jw_end(struct dp_jw *w);
void dp_jw_key(struct dp_jw *w, const char *key);
void dp_jw_str(struct dp_jw *w, const char *s); /* NULL writes null */
void dp_jw_strn(struct dp_jw *w, const char *s, size_t n);
void dp_jw_num(struct dp_jw *w, double v);       /* non-finite writes null */
/* Fixed decimals (trailing zeros dropped); for bounded values such as coordinates (|v| < 1e9). */
void dp_jw_num_prec(struct dp_jw *w, double v, int decimals);
void dp_jw_int(struct dp_jw *w, int64_t v);
void dp_jw_bool(struct dp_jw *w, bool v);
void dp_jw_null(struct dp_jw *w);
enum dp_status dp_jw_status(const struct dp_jw *w);

#endif
