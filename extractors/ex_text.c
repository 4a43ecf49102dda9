/* Text utilities of libex: growable arrays, the per-page warning sink, UTF-8 cleaning (every
 * string stored in results is valid UTF-8 without XML-forbidden characters), HTML entity
 * decoding and markdown code-fence detection. Thread-safe: no shared state. */
#include "ex_impl.h"
#include "dp_alloc.h"
#include "dp_buf.h"
#include "dp_limits.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define EX_ARRAY_MIN_CAP 8
#define EX_WARN_MSG_MAX  512
#define UNICODE_MAX      0x10FFFFul
#define REPLACEMENT_CHAR 0xFFFDul

bool ex__grow(void **arr, size_t *cap, size_t n, size_t elem) {
    if (n < *cap)
        return true;
    size_t nc = *cap ? *cap * 2 : EX_ARRAY_MIN_CAP;
    if (nc <= *cap)
        return false;
    void *p = dp_reallocarray(*arr, nc, elem);
    if (!p)
        return false;
    *arr = p;
    *cap = nc;
    return true;
}

/* ---- warnings ------------------------------------------------------------------------------ */

void ex__warning_free(struct ex_warning *w) {
    dp_free(w->msg);
    dp_free(w->path);
    memset(w, 0, sizeof *w);
}

void ex__warn(struct ex__wsink *s, enum ex_warn_code code, size_t off, size_t len, const char *path,
              const char *fmt, ...) {
    if (s->status != DP_OK)
        return;
    if (s->n >= EX_MAX_WARNINGS) {
        s->dropped++;
        return;
    }
    if (!ex__grow((void **)&s->w, &s->cap, s->n, sizeof *s->w)) {
        s->status = DP_ERR_NOMEM;
        return;
    }
    char buf[EX_WARN_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (k < 0)
        buf[0] = '\0';
    struct ex_warning *w = &s->w[s->n];
    memset(w, 0, sizeof *w);
    w->code = code;
    w->page = s->page;
    w->span_off = off;
    w->span_len = len;
    w->msg = ex__clean(buf, strlen(buf)); /* a message may quote model text cut mid-character */
    w->path = path ? dp_strdup(path) : NULL;
    if (!w->msg || (path && !w->path)) {
        ex__warning_free(w);
        s->status = DP_ERR_NOMEM;
        return;
    }
    s->n++;
}

void ex__wsink_close(struct ex__wsink *s) {
    if (!s->dropped)
        return;
    size_t d = s->dropped;
    s->dropped = 0;
    /* Make room for the summary line by replacing the last warning. */
    if (s->n >= EX_MAX_WARNINGS && s->n > 0) {
        ex__warning_free(&s->w[s->n - 1]);
        s->n--;
        d++;
    }
    ex__warn(s, EX_WARN_LIMIT, 0, 0, NULL, "%zu more warnings not recorded (max %d per page)", d,
             EX_MAX_WARNINGS);
}

/* ---- UTF-8 --------------------------------------------------------------------------------- */

size_t ex__utf8_put(char *dst, unsigned long cp) {
    if (cp > UNICODE_MAX || (cp >= 0xD800 && cp <= 0xDFFF))
        cp = REPLACEMENT_CHAR;
    if (cp < 0x80) {
        dst[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        dst[0] = (char)(0xC0 | (cp >> 6));
        dst[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        dst[0] = (char)(0xE0 | (cp >> 12));
        dst[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        dst[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    dst[0] = (char)(0xF0 | (cp >> 18));
    dst[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    dst[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    dst[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Length of the valid UTF-8 sequence at s (n bytes left) and its code point; 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n, unsigned long *cp) {
    unsigned char c = s[0];
    size_t len;
    unsigned long v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if ((c & 0xE0) == 0xC0) {
        len = 2, v = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3, v = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > UNICODE_MAX || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    /* XML 1.0 forbids U+FFFE and U+FFFF. */
    if (v == 0xFFFE || v == 0xFFFF)
        return 0;
    *cp = v;
    return len;
}

static char *clean(const char *s, size_t n, bool collapse) {
    size_t cap;
    /* Worst case: each byte becomes U+FFFD (3 bytes). */
    if (!dp_size_mul(&cap, n, 3) || !dp_size_add(&cap, cap, 1))
        return NULL;
    char *out = dp_malloc(cap);
    if (!out)
        return NULL;
    size_t o = 0;
    bool space = collapse; /* drops leading whitespace when collapsing */
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        unsigned long cp;
        size_t k = utf8_seq(u + i, n - i, &cp);
        if (k == 0) {
            cp = REPLACEMENT_CHAR;
            k = 1;
        }
        i += k;
        bool ws = cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r' || cp == 0xA0;
        if (!ws && (cp < 0x20 || cp == 0x7F)) {
            cp = ' ';
            ws = true;
        }
        if (collapse && ws) {
            if (!space)
                out[o++] = ' ';
            space = true;
            continue;
        }
        space = false;
        if (cp < 0x80) {
            out[o++] = (char)cp;
        } else if (k > 1 && cp != REPLACEMENT_CHAR) {
            memcpy(out + o, u + i - k, k);
            o += k;
        } else {
            o += ex__utf8_put(out + o, cp);
        }
    }
    if (collapse && o > 0 && out[o - 1] == ' ')
        o--;
    out[o] = '\0';
    return out;
}

char *ex__clean(const char *s, size_t n) {
    return clean(s, n, false);
}

char *ex_text_clean(const char *s, size_t n) {
    return clean(s, n, false);
}

char *ex__clean_collapse(const char *s, size_t n) {
    return clean(s, n, true);
}

/* ---- HTML entities ------------------------------------------------------------------------- */

static const struct {
    const char *name;
    unsigned long cp;
} ENTITIES[] = {
    {"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"quot", '"'}, {"apos", '\''}, {"nbsp", 0xA0},
    {"euro", 0x20AC}, {"pound", 0xA3}, {"yen", 0xA5}, {"cent", 0xA2}, {"copy", 0xA9},
    {"reg", 0xAE}, {"deg", 0xB0}, {"times", 0xD7}, {"middot", 0xB7}, {"ndash", 0x2013},
    {"mdash", 0x2014}, {"hellip", 0x2026},
};

#define EX_ENTITY_MAX_LEN 10

void ex__entities_decode(char *s) {
    char *w = s;
    for (char *r = s; *r;) {
        if (*r != '&') {
            *w++ = *r++;
            continue;
        }
        char *semi = memchr(r, ';', strnlen(r, EX_ENTITY_MAX_LEN + 2));
        unsigned long cp = 0;
        bool ok = false;
        if (semi && r[1] == '#') {
            char *end;
            const char *digits = r + 2;
            int base = 10;
            if (*digits == 'x' || *digits == 'X') {
                digits++;
                base = 16;
            }
            if (digits < semi) {
                unsigned long v = 0;
                ok = true;
                for (end = (char *)digits; end < semi && ok; end++) {
                    int d = (*end >= '0' && *end <= '9')   ? *end - '0'
                            : (*end >= 'a' && *end <= 'f') ? *end - 'a' + 10
                            : (*end >= 'A' && *end <= 'F') ? *end - 'A' + 10
                                                           : 99;
                    ok = d < base && v <= UNICODE_MAX;
                    v = v * (unsigned long)base + (unsigned long)d;
                }
                cp = v;
                ok = ok && cp != 0;
            }
        } else if (semi) {
            for (size_t i = 0; i < sizeof ENTITIES / sizeof *ENTITIES && !ok; i++) {
                size_t l = strlen(ENTITIES[i].name);
                if ((size_t)(semi - r - 1) == l && !memcmp(r + 1, ENTITIES[i].name, l)) {
                    cp = ENTITIES[i].cp;
                    ok = true;
                }
            }
        }
        if (!ok) {
            *w++ = *r++;
            continue;
        }
        char tmp[4];
        size_t k = ex__utf8_put(tmp, cp);
        /* The entity is at least 3 bytes ("&x;") and UTF-8 at most 4: "&#1;" is 4 bytes, so the
         * encoding never outgrows the entity it replaces. */
        memcpy(w, tmp, k);
        w += k;
        r = semi + 1;
    }
    *w = '\0';
}

/* ---- fences -------------------------------------------------------------------------------- */

static const char *find3(const char *s, size_t n, size_t from) {
    for (size_t i = from; i + 3 <= n; i++)
        if (s[i] == '`' && s[i + 1] == '`' && s[i + 2] == '`')
            return s + i;
    return NULL;
}

bool ex__fence_find(const char *s, size_t n, size_t *off, size_t *len, char lang[16],
                    bool *unclosed) {
    lang[0] = '\0';
    *unclosed = false;
    *off = 0;
    *len = n;
    const char *open = find3(s, n, 0);
    if (!open)
        return false;
    size_t i = (size_t)(open - s) + 3;
    size_t li = 0;
    while (i < n && s[i] != '\n' && s[i] != '`') {
        if (li + 1 < 16 && s[i] != ' ' && s[i] != '\r')
            lang[li++] = s[i];
        i++;
    }
    lang[li] = '\0';
    if (i < n && s[i] == '\n')
        i++;
    const char *close = find3(s, n, i);
    *off = i;
    if (!close) {
        *unclosed = true;
        *len = n - i;
    } else {
        *len = (size_t)(close - s) - i;
    }
    return true;
}
