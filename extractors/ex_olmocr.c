/* olmOCR-2 answers (ex_olmocr.h): the YAML front matter (the five keys of olmOCR's PageResponse,
 * read as olmOCR's FrontMatterParser reads them, with its scalar forms: True/False/true/false,
 * null/~/empty, integers, quoted strings) becomes page fields typed against the `olmocr` schema;
 * the Markdown body goes through the markdown parser (headings, lines, pipe tables, HTML
 * <table>s; LaTeX kept as written). Malformed or truncated front matter becomes warnings.
 * Thread-safe: all state lives in the page being built. */
#include "ex_impl.h"
#include "ex_olmocr.h"
#include "dp_alloc.h"

#include <glib.h>
#include <stdlib.h>
#include <string.h>

#define N_KEYS 5
#define VALUE_MAX 256

static const char *const KEYS[N_KEYS] = {"primary_language", "is_rotation_valid",
                                         "rotation_correction", "is_table", "is_diagram"};

struct line {
    size_t off, len;
};

static bool next_line(const char *s, size_t end, size_t *pos, struct line *ln) {
    if (*pos >= end)
        return false;
    ln->off = *pos;
    const char *nl = memchr(s + *pos, '\n', end - *pos);
    size_t e = nl ? (size_t)(nl - s) : end;
    ln->len = e - *pos;
    if (ln->len && s[e - 1] == '\r')
        ln->len--;
    *pos = nl ? e + 1 : end;
    return true;
}

static bool is_delim(const char *s, struct line ln) {
    size_t l = ln.len;
    while (l && (s[ln.off + l - 1] == ' ' || s[ln.off + l - 1] == '\t'))
        l--;
    return l == 3 && !memcmp(s + ln.off, "---", 3);
}

/* "key: value" -> key span and value span (trimmed, quotes removed). */
static bool key_value(const char *s, struct line ln, struct line *k, struct line *v) {
    const char *colon = memchr(s + ln.off, ':', ln.len);
    if (!colon)
        return false;
    k->off = ln.off;
    k->len = (size_t)(colon - s) - ln.off;
    while (k->len && (s[k->off + k->len - 1] == ' ' || s[k->off + k->len - 1] == '\t'))
        k->len--;
    v->off = (size_t)(colon - s) + 1;
    v->len = ln.off + ln.len - v->off;
    while (v->len && (s[v->off] == ' ' || s[v->off] == '\t')) {
        v->off++;
        v->len--;
    }
    while (v->len && (s[v->off + v->len - 1] == ' ' || s[v->off + v->len - 1] == '\t'))
        v->len--;
    if (v->len >= 2 && (s[v->off] == '"' || s[v->off] == '\'') &&
        s[v->off + v->len - 1] == s[v->off]) {
        v->off++;
        v->len -= 2;
    }
    for (size_t i = 0; i < k->len; i++) {
        char c = s[k->off + i];
        if (!(g_ascii_isalnum(c) || c == '_'))
            return false;
    }
    return k->len > 0;
}

static int key_index(const char *s, struct line k) {
    for (int i = 0; i < N_KEYS; i++)
        if (strlen(KEYS[i]) == k.len && !memcmp(s + k.off, KEYS[i], k.len))
            return i;
    return -1;
}

/* YAML 1.1 booleans as PyYAML reads the forms olmOCR's model writes. */
static int yaml_bool(const char *v) {
    if (!strcmp(v, "True") || !strcmp(v, "true") || !strcmp(v, "TRUE"))
        return 1;
    if (!strcmp(v, "False") || !strcmp(v, "false") || !strcmp(v, "FALSE"))
        return 0;
    return -1;
}

static bool yaml_null(const char *v) {
    return !*v || !strcmp(v, "null") || !strcmp(v, "Null") || !strcmp(v, "NULL") ||
           !strcmp(v, "~");
}

/* Parses the front matter; when sink/pb are given also reports and builds fields. */
static bool front_matter(const char *s, size_t len, struct ex_olmocr_fm *fm,
                         struct ex__pagebuild *pb, enum dp_status *st) {
    memset(fm, 0, sizeof *fm);
    size_t pos = 0;
    while (pos < len && (s[pos] == ' ' || s[pos] == '\t' || s[pos] == '\n' || s[pos] == '\r'))
        pos++;
    struct line ln;
    size_t start = pos;
    if (!next_line(s, len, &pos, &ln) || !is_delim(s, ln)) {
        fm->body_off = start;
        fm->body_len = len - start;
        return false;
    }
    fm->found = true;
    fm->fm_off = pos;
    bool seen[N_KEYS] = {false}, ok[N_KEYS] = {false};
    size_t body = len;
    size_t last_end = pos;
    while (next_line(s, len, &pos, &ln)) {
        if (is_delim(s, ln)) {
            fm->closed = true;
            fm->fm_len = ln.off - fm->fm_off;
            body = pos;
            break;
        }
        struct line k, v;
        if (!key_value(s, ln, &k, &v)) {
            /* not YAML: an unclosed front matter ends here and the body starts */
            body = ln.off;
            break;
        }
        last_end = pos;
        char val[VALUE_MAX];
        size_t vl = v.len < sizeof val - 1 ? v.len : sizeof val - 1;
        memcpy(val, s + v.off, vl);
        val[vl] = '\0';
        int ki = key_index(s, k);
        if (ki < 0) {
            if (pb)
                ex__warn(&pb->ws, EX_WARN_UNKNOWN_KEY, ln.off, ln.len, NULL,
                         "front matter key '%.*s' is not one of olmOCR's", (int)(k.len < 40 ? k.len : 40),
                         s + k.off);
            continue;
        }
        if (seen[ki] && pb)
            ex__warn(&pb->ws, EX_WARN_DUPLICATE, ln.off, ln.len, KEYS[ki],
                     "front matter key '%s' given twice: the later is kept", KEYS[ki]);
        seen[ki] = true;
        enum ex_vtype type = EX_V_STRING;
        int b = yaml_bool(val);
        char *end = NULL;
        long n = strtol(val, &end, 10);
        bool is_int = *val && end && !*end;
        switch (ki) {
        case 0: /* primary_language: string or null */
            ok[0] = true;
            fm->primary_language[0] = '\0';
            if (yaml_null(val) || b >= 0) { /* PyYAML reads "no" etc. as a bool: null */
                type = EX_V_NULL;
            } else {
                g_strlcpy(fm->primary_language, val, sizeof fm->primary_language);
            }
            break;
        case 2: /* rotation_correction */
            type = is_int ? EX_V_INTEGER : EX_V_STRING;
            ok[2] = is_int && (n == 0 || n == 90 || n == 180 || n == 270);
            fm->rotation_correction = ok[2] ? (int)n : 0;
            if (!ok[2] && pb)
                ex__warn(&pb->ws, EX_WARN_ENUM, v.off, v.len, KEYS[2],
                         "rotation_correction '%.20s' is not 0, 90, 180 or 270", val);
            break;
        default: /* the three booleans */
            type = b >= 0 ? EX_V_BOOL : EX_V_STRING;
            ok[ki] = b >= 0;
            if (ki == 1)
                fm->is_rotation_valid = b == 1;
            else if (ki == 3)
                fm->is_table = b == 1;
            else
                fm->is_diagram = b == 1;
            if (b < 0 && pb)
                ex__warn(&pb->ws, EX_WARN_TYPE, v.off, v.len, KEYS[ki],
                         "%s '%.20s' is not True or False", KEYS[ki], val);
            break;
        }
        if (!pb || *st != DP_OK)
            continue;
        const struct sc_field *sf =
            pb->schema ? sc_field_find(pb->schema->fields, pb->schema->n_fields, KEYS[ki]) : NULL;
        struct ex_field f;
        memset(&f, 0, sizeof f);
        f.name = dp_strdup(KEYS[ki]);
        f.key = dp_strndup(s + k.off, k.len);
        f.raw = dp_strdup(val);
        f.type = type;
        f.in_schema = sf != NULL;
        if (type == EX_V_BOOL)
            f.boolean = b == 1;
        if (type == EX_V_INTEGER) {
            f.num = (double)n;
            f.type = EX_V_NUMBER; /* typed to INTEGER by ex__field_type against the schema */
        }
        ex__prov_set(&f.prov, pb->geom, pb->page, NULL, v.off, v.len);
        if (!f.name || !f.key || !f.raw) {
            ex__field_free(&f);
            *st = DP_ERR_NOMEM;
            continue;
        }
        ex__field_type(&f, sf, &pb->ws, KEYS[ki]);
        bool replaced = false;
        for (size_t i = 0; i < pb->n_fields && !replaced; i++)
            if (!strcmp(pb->fields[i].name, f.name)) {
                ex__field_free(&pb->fields[i]);
                pb->fields[i] = f;
                replaced = true;
            }
        if (!replaced) {
            if (!ex__grow((void **)&pb->fields, &pb->cap_fields, pb->n_fields, sizeof *pb->fields)) {
                ex__field_free(&f);
                *st = DP_ERR_NOMEM;
                continue;
            }
            pb->fields[pb->n_fields++] = f;
        }
    }
    if (!fm->closed) {
        fm->fm_len = (body < len ? body : last_end) - fm->fm_off;
        if (pb)
            ex__warn(&pb->ws, body >= len ? EX_WARN_TRUNCATED : EX_WARN_SYNTAX, fm->fm_off,
                     fm->fm_len, NULL,
                     body >= len ? "the answer ends inside its front matter"
                                 : "the front matter has no closing '---' line");
        if (body >= len && pb)
            pb->truncated = true;
    }
    bool all = true;
    for (int i = 0; i < N_KEYS; i++) {
        all = all && seen[i] && ok[i];
        if (!seen[i] && pb && fm->closed)
            ex__warn(&pb->ws, EX_WARN_REQUIRED, fm->fm_off, fm->fm_len, KEYS[i],
                     "front matter has no '%s'", KEYS[i]);
    }
    fm->valid = fm->closed && all;
    /* body: the rest, stripped (as olmOCR's parser does) */
    while (body < len && g_ascii_isspace(s[body]))
        body++;
    size_t e = len;
    while (e > body && g_ascii_isspace(s[e - 1]))
        e--;
    fm->body_off = body;
    fm->body_len = e - body;
    return true;
}

bool ex_olmocr_front_matter(const char *raw, size_t len, struct ex_olmocr_fm *fm) {
    enum dp_status st = DP_OK;
    return front_matter(raw, len, fm, NULL, &st);
}

/* Finds s[0, n) case-insensitively in t[0, len); offset or len. */
static size_t find_ci(const char *t, size_t from, size_t len, const char *s) {
    size_t n = strlen(s);
    for (size_t i = from; i + n <= len; i++)
        if (!g_ascii_strncasecmp(t + i, s, n))
            return i;
    return len;
}

/* Display math opening at line ln ("$$" or "\\["): the delimiter pair, or NULL. */
static const char *math_close(const char *s, struct line ln) {
    size_t o = ln.off, l = ln.len;
    while (l && (s[o] == ' ' || s[o] == '\t')) {
        o++;
        l--;
    }
    if (l >= 2 && !memcmp(s + o, "$$", 2))
        return "$$";
    if (l >= 2 && !memcmp(s + o, "\\[", 2))
        return "\\]";
    return NULL;
}

/* The body: display math ($$ ... $$, \[ ... \]) becomes formula blocks holding the LaTeX, the
 * rest goes through the markdown parser. */
static enum dp_status body_parse(struct ex__pagebuild *pb, size_t from, size_t end) {
    const char *s = pb->raw;
    size_t pos = from, seg = from;
    struct line ln;
    enum dp_status st = DP_OK;
    while (st == DP_OK && next_line(s, end, &pos, &ln)) {
        const char *close = math_close(s, ln);
        if (!close)
            continue;
        if (ln.off > seg)
            st = ex__markdown_parse(pb, seg, ln.off - seg);
        size_t open = (size_t)(strstr(s + ln.off, close[0] == '$' ? "$$" : "\\[") - s) + 2;
        size_t stop = end, after = end;
        for (size_t i = open; i + 2 <= end; i++)
            if (!memcmp(s + i, close, 2)) {
                stop = i;
                after = i + 2;
                break;
            }
        if (stop == end) {
            ex__warn(&pb->ws, EX_WARN_TRUNCATED, ln.off, end - ln.off, NULL,
                     "the answer ends inside a formula");
            pb->truncated = true;
        }
        char *tex = st == DP_OK ? ex__clean_collapse(s + open, stop - open) : NULL;
        if (st == DP_OK && (!tex || !ex__pb_block(pb, EX_BLOCK_FORMULA, "math", NULL, tex, NULL,
                                                  ln.off, after - ln.off)))
            st = DP_ERR_NOMEM;
        /* continue after the line holding the closing delimiter */
        pos = after;
        while (pos < end && s[pos] != '\n')
            pos++;
        if (pos > after) { /* text after the delimiter on its line: keep it as markdown */
            seg = after;
        } else {
            seg = pos < end ? pos + 1 : end;
        }
        pos = pos < end ? pos + 1 : end;
        if (seg == after && pos > seg && st == DP_OK) {
            st = ex__markdown_parse(pb, seg, pos - seg);
            seg = pos;
        }
    }
    if (st == DP_OK && end > seg)
        st = ex__markdown_parse(pb, seg, end - seg);
    return st;
}

enum dp_status ex__olmocr_parse(struct ex__pagebuild *pb) {
    struct ex_olmocr_fm fm;
    enum dp_status st = DP_OK;
    bool found = front_matter(pb->raw, pb->raw_len, &fm, pb, &st);
    if (st != DP_OK)
        return st;
    if (!found)
        ex__warn(&pb->ws, EX_WARN_SYNTAX, 0, 0, NULL,
                 "the answer has no front matter: all of it is read as the Markdown body");
    size_t end = fm.body_off + fm.body_len;
    /* an HTML table opened and never closed: the answer was cut inside it */
    for (size_t t = find_ci(pb->raw, fm.body_off, end, "<table"); t < end;
         t = find_ci(pb->raw, t + 1, end, "<table")) {
        size_t close = find_ci(pb->raw, t, end, "</table>");
        if (close == end) {
            ex__warn(&pb->ws, EX_WARN_TRUNCATED, t, end - t, NULL,
                     "the answer ends inside an HTML table");
            pb->truncated = true;
            break;
        }
        t = close;
    }
    return body_parse(pb, fm.body_off, end);
}
