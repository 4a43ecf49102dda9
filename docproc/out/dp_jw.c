/* Streaming JSON writer with a sticky error (dp_jw.h). Not thread-safe per writer. */
#include "dp_jw.h"

#include <glib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define JW_NUM_MAX 48
#define JW_INDENT 2
#define JW_EXACT_INT 1e15 /* integers below this print exactly without a fraction */

void dp_jw_init(struct dp_jw *w, struct dp_buf *out, bool pretty) {
    memset(w, 0, sizeof *w);
    w->out = out;
    w->pretty = pretty;
    w->st = out->status;
}

static void sync(struct dp_jw *w) {
    if (w->st == DP_OK)
        w->st = w->out->status;
}

static void newline(struct dp_jw *w) {
    if (!w->pretty || (w->inline_from && w->depth >= w->inline_from)) {
        bool after_open = w->out->len && w->out->data[w->out->len - 1] == '[';
        if (w->pretty && w->inline_from && w->depth >= w->inline_from && !after_open)
            dp_buf_putc(w->out, ' ');
        return;
    }
    dp_buf_putc(w->out, '\n');
    for (int i = 0; i < w->depth * JW_INDENT; i++)
        dp_buf_putc(w->out, ' ');
}

/* Separator before a value or key at the current level. */
static void pre(struct dp_jw *w) {
    if (w->after_key) {
        w->after_key = false;
        return;
    }
    if (w->depth > 0) {
        if (!w->first[w->depth])
            dp_buf_putc(w->out, ',');
        w->first[w->depth] = false;
        newline(w);
    }
}

static void jw_open(struct dp_jw *w, char o, char c) {
    if (w->st != DP_OK)
        return;
    if (w->depth + 1 >= DP_JW_MAX_DEPTH) {
        w->st = DP_ERR_LIMIT;
        return;
    }
    pre(w);
    dp_buf_putc(w->out, o);
    w->depth++;
    w->first[w->depth] = true;
    w->close[w->depth] = c;
    sync(w);
}

void dp_jw_obj(struct dp_jw *w) { jw_open(w, '{', '}'); }
void dp_jw_arr(struct dp_jw *w) { jw_open(w, '[', ']'); }

void dp_jw_arr_inline(struct dp_jw *w) {
    jw_open(w, '[', ']');
    if (w->st == DP_OK && !w->inline_from)
        w->inline_from = w->depth;
}

void dp_jw_end(struct dp_jw *w) {
    if (w->st != DP_OK)
        return;
    if (w->depth <= 0) {
        w->st = DP_ERR_INTERNAL;
        return;
    }
    bool empty = w->first[w->depth];
    char c = w->close[w->depth];
    bool was_inline = w->inline_from && w->depth >= w->inline_from;
    if (w->inline_from == w->depth)
        w->inline_from = 0;
    w->depth--;
    if (!empty && !was_inline)
        newline(w);
    dp_buf_putc(w->out, c);
    sync(w);
}

static void put_string(struct dp_jw *w, const char *s, size_t n) {
    dp_buf_putc(w->out, '"');
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        dp_buf_append(w->out, s + run, i - run);
        run = i + 1;
        switch (c) {
        case '"': dp_buf_puts(w->out, "\\\""); break;
        case '\\': dp_buf_puts(w->out, "\\\\"); break;
        case '\n': dp_buf_puts(w->out, "\\n"); break;
        case '\r': dp_buf_puts(w->out, "\\r"); break;
        case '\t': dp_buf_puts(w->out, "\\t"); break;
        default: dp_buf_appendf(w->out, "\\u%04x", c); break;
        }
    }
    dp_buf_append(w->out, s + run, n - run);
    dp_buf_putc(w->out, '"');
}

void dp_jw_key(struct dp_jw *w, const char *key) {
    if (w->st != DP_OK)
        return;
    pre(w);
    put_string(w, key, strlen(key));
    dp_buf_puts(w->out, w->pretty ? ": " : ":");
    w->after_key = true;
    sync(w);
}

void dp_jw_strn(struct dp_jw *w, const char *s, size_t n) {
    if (w->st != DP_OK)
        return;
    pre(w);
    if (s)
        put_string(w, s, n);
    else
        dp_buf_puts(w->out, "null");
    sync(w);
}

void dp_jw_str(struct dp_jw *w, const char *s) {
    dp_jw_strn(w, s, s ? strlen(s) : 0);
}

void dp_jw_num_prec(struct dp_jw *w, double v, int decimals) {
    if (w->st != DP_OK)
        return;
    pre(w);
    if (!isfinite(v)) {
        dp_buf_puts(w->out, "null");
    } else {
        char buf[JW_NUM_MAX], fmt[16];
        if (decimals >= 0) {
            snprintf(fmt, sizeof fmt, "%%.%df", decimals > 9 ? 9 : decimals);
            g_ascii_formatd(buf, sizeof buf, fmt, v);
            /* drop trailing zeros: 93.50 -> 93.5, 94.00 -> 94 */
            char *dot = strchr(buf, '.');
            if (dot) {
                char *e = buf + strlen(buf);
                while (e > dot + 1 && e[-1] == '0')
                    *--e = '\0';
                if (e == dot + 1)
                    *dot = '\0';
            }
        } else {
            g_ascii_formatd(buf, sizeof buf, "%.17g", v);
        }
        if (!strcmp(buf, "-0"))
            memcpy(buf, "0", 2);
        dp_buf_puts(w->out, buf);
    }
    sync(w);
}

/* Shortest faithful-enough form: 15 significant digits, exponent for large magnitudes. */
static void dp_jw_num_g(struct dp_jw *w, double v) {
    if (w->st != DP_OK)
        return;
    pre(w);
    char buf[JW_NUM_MAX];
    if (!isfinite(v))
        memcpy(buf, "null", 5);
    else
        g_ascii_formatd(buf, sizeof buf, "%.15g", v);
    dp_buf_puts(w->out, buf);
    sync(w);
}

void dp_jw_num(struct dp_jw *w, double v) {
    /* Range first: converting an out-of-range double to an integer is undefined. */
    if (isfinite(v) && fabs(v) < JW_EXACT_INT && v == (double)(int64_t)v)
        dp_jw_int(w, (int64_t)v);
    else
        dp_jw_num_g(w, v);
}

void dp_jw_int(struct dp_jw *w, int64_t v) {
    if (w->st != DP_OK)
        return;
    pre(w);
    dp_buf_appendf(w->out, "%lld", (long long)v);
    sync(w);
}

void dp_jw_bool(struct dp_jw *w, bool v) {
    if (w->st != DP_OK)
        return;
    pre(w);
    dp_buf_puts(w->out, v ? "true" : "false");
    sync(w);
}

void dp_jw_null(struct dp_jw *w) {
    if (w->st != DP_OK)
        return;
    pre(w);
    dp_buf_puts(w->out, "null");
    sync(w);
}

enum dp_status dp_jw_status(const struct dp_jw *w) {
    if (w->st == DP_OK && w->depth != 0)
        return DP_ERR_INTERNAL;
    return w->st;
}
