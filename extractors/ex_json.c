/* The tolerant JSON parser of libex: reads what language models actually write — prose around the
 * value, trailing and doubled commas, missing commas, single-quoted or bare keys and strings,
 * comments (// # and slash-star), Python literals (True/False/None), HTML entities in strings,
 * duplicated keys (last wins, warned) and answers cut off mid-way (every complete element is kept,
 * incomplete ones are dropped with a warning, the document is flagged truncated). Hard limits on
 * nesting depth and node count. Every problem becomes a warning with its byte span.
 * Thread-safe: state lives in the parser struct on the stack. */
#include "ex_impl.h"
#include "dp_alloc.h"
#include "dp_buf.h"
#include "dp_limits.h"

#include <glib.h>
#include <math.h>
#include <string.h>
#include <strings.h>

#define HEX_DIGITS_U 4

struct parser {
    const char *s;
    size_t pos, end;
    struct ex__wsink *ws;
    struct ex_jdoc *doc;
    bool eof;     /* ran out of input inside a value */
    bool stopped; /* node limit reached */
    bool dropped; /* an incomplete element was dropped */
    size_t drop_off;       /* start of the outermost dropped element (reported once) */
    const char *drop_what;
    enum dp_status st;
};

enum pv { PV_OK, PV_NONE }; /* a value was produced / no value starts here */

void ex__jv_free(struct ex_jv *v) {
    if (!v)
        return;
    for (size_t i = 0; i < v->n; i++)
        ex__jv_free(&v->items[i]);
    dp_free(v->items);
    dp_free(v->key);
    dp_free(v->str);
    memset(v, 0, sizeof *v);
}

void ex__json_free(struct ex_jdoc *d) {
    ex__jv_free(&d->root);
    memset(d, 0, sizeof *d);
}

static void skip_ws(struct parser *p) {
    while (p->pos < p->end) {
        char c = p->s[p->pos];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            p->pos++;
        } else if (c == '#' || (c == '/' && p->pos + 1 < p->end && p->s[p->pos + 1] == '/')) {
            while (p->pos < p->end && p->s[p->pos] != '\n')
                p->pos++;
        } else if (c == '/' && p->pos + 1 < p->end && p->s[p->pos + 1] == '*') {
            p->pos += 2;
            while (p->pos + 1 < p->end && !(p->s[p->pos] == '*' && p->s[p->pos + 1] == '/'))
                p->pos++;
            p->pos = p->pos + 1 < p->end ? p->pos + 2 : p->end;
        } else {
            break;
        }
    }
}

static bool is_delim(char c) {
    return c == ',' || c == ':' || c == '{' || c == '}' || c == '[' || c == ']' || c == '\n' ||
           c == '"' || c == '\'';
}

static int hexval(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static bool read_hex4(struct parser *p, size_t at, unsigned long *out) {
    if (at + HEX_DIGITS_U > p->end)
        return false;
    unsigned long v = 0;
    for (size_t i = 0; i < HEX_DIGITS_U; i++) {
        int d = hexval(p->s[at + i]);
        if (d < 0)
            return false;
        v = v * 16 + (unsigned long)d;
    }
    *out = v;
    return true;
}

/* Stores the cleaned, entity-decoded buffer as the string of v. */
static void set_str(struct parser *p, char **dst, struct dp_buf *b) {
    if (b->status != DP_OK) {
        p->st = b->status;
        return;
    }
    if (b->data)
        ex__entities_decode(b->data);
    *dst = ex__clean(b->data ? b->data : "", b->data ? strlen(b->data) : 0);
    if (!*dst)
        p->st = DP_ERR_NOMEM;
}

/* A quoted string at p->pos. Returns false when the input ends first. */
static bool parse_string(struct parser *p, char **out) {
    char q = p->s[p->pos++];
    struct dp_buf b;
    dp_buf_init(&b, DP_MAX_TEXT_BYTES);
    bool closed = false;
    while (p->pos < p->end) {
        char c = p->s[p->pos++];
        if (c == q) {
            closed = true;
            break;
        }
        if (c != '\\') {
            dp_buf_putc(&b, c);
            continue;
        }
        if (p->pos >= p->end)
            break;
        char e = p->s[p->pos++];
        unsigned long cp;
        char u8[4];
        switch (e) {
        case 'n': dp_buf_putc(&b, '\n'); break;
        case 't': dp_buf_putc(&b, '\t'); break;
        case 'r': dp_buf_putc(&b, '\r'); break;
        case 'b': dp_buf_putc(&b, ' '); break;
        case 'f': dp_buf_putc(&b, ' '); break;
        case 'u':
            if (!read_hex4(p, p->pos, &cp)) {
                ex__warn(p->ws, EX_WARN_SYNTAX, p->pos - 2, 2, NULL, "bad \\u escape kept as text");
                dp_buf_puts(&b, "\\u");
                break;
            }
            p->pos += HEX_DIGITS_U;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                unsigned long lo;
                if (p->pos + 1 < p->end && p->s[p->pos] == '\\' && p->s[p->pos + 1] == 'u' &&
                    read_hex4(p, p->pos + 2, &lo) && lo >= 0xDC00 && lo <= 0xDFFF) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    p->pos += 2 + HEX_DIGITS_U;
                }
            }
            dp_buf_append(&b, u8, ex__utf8_put(u8, cp)); /* lone surrogates -> U+FFFD */
            break;
        default: dp_buf_putc(&b, e); break; /* \" \\ \/ \' and unknown escapes: the char */
        }
    }
    set_str(p, out, &b);
    dp_buf_free(&b);
    return closed;
}

/* Bare word: number, literal, or unquoted text up to a delimiter. */
static void parse_bare(struct parser *p, struct ex_jv *v) {
    size_t start = p->pos;
    while (p->pos < p->end && !is_delim(p->s[p->pos]) && p->s[p->pos] != '}' && p->s[p->pos] != ']')
        p->pos++;
    size_t n = p->pos - start;
    while (n > 0 && (p->s[start + n - 1] == ' ' || p->s[start + n - 1] == '\t' ||
                     p->s[start + n - 1] == '\r'))
        n--;
    /* Copy n bytes exactly (the answer may hold NUL bytes; dp_strndup would stop there). */
    char *w = dp_malloc(n + 1);
    if (w) {
        memcpy(w, p->s + start, n);
        w[n] = '\0';
    }
    if (!w) {
        p->st = DP_ERR_NOMEM;
        return;
    }
    v->len = p->pos - v->off;
    if (!strcmp(w, "true") || !strcmp(w, "True")) {
        v->type = EX_J_BOOL, v->b = true;
    } else if (!strcmp(w, "false") || !strcmp(w, "False")) {
        v->type = EX_J_BOOL, v->b = false;
    } else if (!strcmp(w, "null") || !strcmp(w, "None") || !strcmp(w, "undefined")) {
        v->type = EX_J_NULL;
    } else {
        char *endp = NULL;
        double d = n ? g_ascii_strtod(w, &endp) : 0;
        if (n && endp == w + n && isfinite(d) && strcasecmp(w, "nan")) {
            v->type = EX_J_NUM;
            v->num = d;
        } else {
            v->type = EX_J_STR;
            if (n)
                ex__warn(p->ws, EX_WARN_SYNTAX, start, n, NULL, "unquoted text '%.40s' read as a string", w);
        }
        v->str = ex__clean(w, n);
        if (!v->str)
            p->st = DP_ERR_NOMEM;
    }
    dp_free(w);
}

static enum pv parse_value(struct parser *p, struct ex_jv *v, int depth);

static bool push(struct parser *p, struct ex_jv *parent, struct ex_jv *child) {
    if (!ex__grow((void **)&parent->items, &parent->cap, parent->n, sizeof *parent->items)) {
        p->st = DP_ERR_NOMEM;
        ex__jv_free(child);
        return false;
    }
    parent->items[parent->n++] = *child;
    return true;
}

/* Inner elements are dropped before their containers, so the last call is the outermost. */
static void drop(struct parser *p, struct ex_jv *child, const char *what) {
    p->dropped = true;
    p->drop_off = child->off;
    p->drop_what = what;
    ex__jv_free(child);
}

/* Skips a balanced container when the depth limit is hit. */
static void skip_balanced(struct parser *p) {
    int level = 0;
    char q = 0;
    while (p->pos < p->end) {
        char c = p->s[p->pos++];
        if (q) {
            if (c == '\\')
                p->pos++;
            else if (c == q)
                q = 0;
        } else if (c == '"' || c == '\'') {
            q = c;
        } else if (c == '{' || c == '[') {
            level++;
        } else if ((c == '}' || c == ']') && --level == 0) {
            return;
        }
    }
    if (p->pos > p->end)
        p->pos = p->end;
    p->eof = true;
}

/* Index of the member named key in v, or -1. Objects with many members use a hash index
 * (*seen, created on demand) so duplicate detection stays linear. */
#define EX_JSON_HASH_FROM 16
static long find_member(const struct ex_jv *v, const char *key, GHashTable **seen) {
    if (v->n < EX_JSON_HASH_FROM) {
        for (size_t i = 0; i < v->n; i++)
            if (!strcmp(v->items[i].key, key))
                return (long)i;
        return -1;
    }
    if (!*seen) {
        *seen = g_hash_table_new(g_str_hash, g_str_equal);
        for (size_t i = 0; i < v->n; i++)
            g_hash_table_insert(*seen, v->items[i].key, GSIZE_TO_POINTER(i + 1));
    }
    gpointer hit = g_hash_table_lookup(*seen, key);
    return hit ? (long)GPOINTER_TO_SIZE(hit) - 1 : -1;
}

static void parse_members(struct parser *p, struct ex_jv *v, int depth, GHashTable **seen);

static void parse_container(struct parser *p, struct ex_jv *v, int depth) {
    GHashTable *seen = NULL;
    parse_members(p, v, depth, &seen);
    if (seen)
        g_hash_table_destroy(seen);
}

static void parse_members(struct parser *p, struct ex_jv *v, int depth, GHashTable **seen) {
    bool is_obj = p->s[p->pos] == '{';
    char close = is_obj ? '}' : ']';
    v->type = is_obj ? EX_J_OBJ : EX_J_ARR;
    if (depth >= EX_JSON_MAX_DEPTH) {
        size_t start = p->pos;
        skip_balanced(p);
        ex__warn(p->ws, EX_WARN_LIMIT, start, p->pos - start, NULL,
                 "nesting deeper than %d: value skipped", EX_JSON_MAX_DEPTH);
        v->type = EX_J_NULL;
        v->complete = !p->eof;
        v->len = p->pos - v->off;
        return;
    }
    p->pos++;
    for (;;) {
        skip_ws(p);
        if (p->st != DP_OK || p->stopped || p->pos >= p->end) {
            p->eof = p->eof || p->pos >= p->end;
            v->len = p->pos - v->off;
            return; /* incomplete */
        }
        char c = p->s[p->pos];
        if (c == close) {
            p->pos++;
            v->complete = true;
            v->len = p->pos - v->off;
            return;
        }
        if (c == ',') {
            p->pos++; /* trailing or doubled comma */
            continue;
        }
        if (c == '}' || c == ']') {
            ex__warn(p->ws, EX_WARN_SYNTAX, p->pos, 1, NULL, "mismatched '%c' ignored", c);
            p->pos++;
            continue;
        }
        struct ex_jv child = {0};
        size_t elem_start = p->pos;
        if (is_obj) {
            child.key_off = p->pos;
            if (c == '"' || c == '\'') {
                if (!parse_string(p, &child.key)) {
                    dp_free(child.key);
                    p->eof = true;
                    continue;
                }
            } else {
                size_t ks = p->pos;
                while (p->pos < p->end && !is_delim(p->s[p->pos]) && p->s[p->pos] != '}' &&
                       p->s[p->pos] != ']')
                    p->pos++;
                size_t kn = p->pos - ks;
                while (kn > 0 && (p->s[ks + kn - 1] == ' ' || p->s[ks + kn - 1] == '\t'))
                    kn--;
                if (kn == 0) {
                    ex__warn(p->ws, EX_WARN_SYNTAX, p->pos, 1, NULL, "unexpected '%c' skipped",
                             p->s[p->pos]);
                    p->pos++;
                    continue;
                }
                child.key = ex__clean(p->s + ks, kn);
                if (!child.key) {
                    p->st = DP_ERR_NOMEM;
                    return;
                }
            }
            if (p->st != DP_OK) {
                dp_free(child.key);
                return;
            }
            skip_ws(p);
            if (p->pos >= p->end) {
                p->eof = true;
                child.off = elem_start;
                drop(p, &child, "an object member");
                continue;
            }
            if (p->s[p->pos] == ':' || p->s[p->pos] == '=')
                p->pos++;
            else
                ex__warn(p->ws, EX_WARN_SYNTAX, p->pos, 1, NULL, "missing ':' after key '%.40s'",
                         child.key);
        }
        char *key = child.key;
        child.key = NULL;
        enum pv r = parse_value(p, &child, depth + 1);
        child.key = key;
        if (p->st != DP_OK) {
            ex__jv_free(&child);
            return;
        }
        if (r == PV_NONE) {
            if (p->pos < p->end && !is_obj) {
                ex__warn(p->ws, EX_WARN_SYNTAX, p->pos, 1, NULL, "unexpected '%c' skipped",
                         p->s[p->pos]);
                p->pos++;
            } else if (is_obj) {
                ex__warn(p->ws, EX_WARN_SYNTAX, elem_start, p->pos - elem_start, NULL,
                         "member '%.40s' has no value", child.key);
            }
            dp_free(child.key);
            continue;
        }
        if (is_obj) { /* a member's span covers "key": value */
            size_t vend = child.off + child.len;
            child.off = elem_start;
            child.len = vend - elem_start;
        }
        bool scalar = child.type != EX_J_OBJ && child.type != EX_J_ARR;
        if (!child.complete && (scalar || !is_obj)) {
            drop(p, &child, is_obj ? "an object member" : "an array element");
            continue;
        }
        if (is_obj) {
            long i = find_member(v, child.key, seen);
            if (i >= 0) {
                ex__warn(p->ws, EX_WARN_DUPLICATE, v->items[i].key_off, v->items[i].len, child.key,
                         "duplicated key '%.40s': the later value is kept", child.key);
                if (*seen)
                    g_hash_table_remove(*seen, v->items[i].key);
                ex__jv_free(&v->items[i]);
                v->items[i] = child;
                if (*seen)
                    g_hash_table_insert(*seen, v->items[i].key, GSIZE_TO_POINTER((size_t)i + 1));
            } else {
                if (!push(p, v, &child))
                    return;
                if (*seen)
                    g_hash_table_insert(*seen, v->items[v->n - 1].key, GSIZE_TO_POINTER(v->n));
            }
        } else if (!push(p, v, &child)) {
            return;
        }
        skip_ws(p);
        if (p->pos < p->end && p->s[p->pos] != ',' && p->s[p->pos] != close &&
            p->s[p->pos] != '}' && p->s[p->pos] != ']')
            ex__warn(p->ws, EX_WARN_SYNTAX, p->pos, 1, NULL, "missing ',' before '%c'",
                     p->s[p->pos]);
    }
}

static enum pv parse_value(struct parser *p, struct ex_jv *v, int depth) {
    skip_ws(p);
    memset(v, 0, sizeof *v);
    v->off = p->pos;
    if (p->pos >= p->end) {
        p->eof = true;
        return PV_NONE;
    }
    if (++p->doc->nodes > EX_JSON_MAX_NODES) {
        if (!p->stopped)
            ex__warn(p->ws, EX_WARN_LIMIT, p->pos, p->end - p->pos, NULL,
                     "more than %d JSON values: rest of the answer not parsed", EX_JSON_MAX_NODES);
        p->stopped = true;
        return PV_NONE;
    }
    char c = p->s[p->pos];
    if (c == '{' || c == '[') {
        parse_container(p, v, depth);
        return PV_OK;
    }
    if (c == '"' || c == '\'') {
        v->type = EX_J_STR;
        v->complete = parse_string(p, &v->str);
        if (!v->complete)
            p->eof = true;
        v->len = p->pos - v->off;
        return PV_OK;
    }
    if (is_delim(c) || c == '}' || c == ']')
        return PV_NONE;
    parse_bare(p, v);
    /* A bare word cut by the end of the input may be incomplete ("12" of "123"). */
    v->complete = p->pos < p->end;
    if (!v->complete)
        p->eof = true;
    return PV_OK;
}

enum dp_status ex__json_parse(struct ex_jdoc *out, const char *text, size_t off, size_t len,
                              struct ex__wsink *ws) {
    memset(out, 0, sizeof *out);
    struct parser p = {.s = text, .pos = off, .end = off + len, .ws = ws, .doc = out};
    while (p.pos < p.end && text[p.pos] != '{' && text[p.pos] != '[')
        p.pos++;
    if (p.pos >= p.end)
        return DP_OK;
    if (p.pos > off) {
        size_t n = p.pos - off;
        bool blank = true;
        for (size_t i = off; i < p.pos && blank; i++)
            blank = text[i] == ' ' || text[i] == '\n' || text[i] == '\r' || text[i] == '\t';
        if (!blank)
            ex__warn(ws, EX_WARN_EXTRA_TEXT, off, n, NULL, "text before the JSON value not used");
    }
    out->found = true;
    parse_value(&p, &out->root, 0);
    if (p.st != DP_OK) {
        ex__json_free(out);
        return p.st;
    }
    out->truncated = !out->root.complete || p.eof || p.stopped;
    if (p.dropped)
        ex__warn(ws, EX_WARN_TRUNCATED, p.drop_off, p.end - p.drop_off, NULL,
                 "answer ends inside %s: incomplete element dropped", p.drop_what);
    else if (out->truncated && !p.stopped)
        ex__warn(ws, EX_WARN_TRUNCATED, out->root.off, p.end - out->root.off, NULL,
                 "answer ends inside the JSON value");
    skip_ws(&p);
    if (p.pos < p.end)
        ex__warn(ws, EX_WARN_EXTRA_TEXT, p.pos, p.end - p.pos, NULL,
                 "text after the JSON value not used");
    return ws->status;
}

/* ---- accessors ----------------------------------------------------------------------------- */

const struct ex_jv *ex__jv_get(const struct ex_jv *obj, const char *key) {
    if (!obj || obj->type != EX_J_OBJ)
        return NULL;
    for (size_t i = obj->n; i-- > 0;)
        if (obj->items[i].key && !g_ascii_strcasecmp(obj->items[i].key, key))
            return &obj->items[i];
    return NULL;
}

bool ex__jv_box(const struct ex_jv *v, struct ex_box *out) {
    if (!v || v->type != EX_J_ARR || v->n != 4)
        return false;
    double c[4];
    for (int i = 0; i < 4; i++) {
        if (v->items[i].type == EX_J_NUM) {
            c[i] = v->items[i].num;
        } else if (v->items[i].type == EX_J_STR && v->items[i].str) {
            char *e;
            c[i] = g_ascii_strtod(v->items[i].str, &e);
            if (e == v->items[i].str || *e)
                return false;
        } else {
            return false;
        }
        if (!isfinite(c[i]) || fabs(c[i]) > EX_BOX_MAX_ABS)
            return false;
    }
    out->x1 = c[0] < c[2] ? c[0] : c[2];
    out->x2 = c[0] < c[2] ? c[2] : c[0];
    out->y1 = c[1] < c[3] ? c[1] : c[3];
    out->y2 = c[1] < c[3] ? c[3] : c[1];
    return true;
}
