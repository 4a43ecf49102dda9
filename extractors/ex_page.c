/* ex_page_parse: picks the parser for one raw answer and assembles the page; plus charts from
 * JSON answers (series of points in the shapes models write: {x, y} objects, [x, y] pairs, bare
 * values with labels, chart.js-like {labels, datasets}) and key-value lines of plain-text answers.
 * Thread-safe: all state lives in the page being built. */
#include "ex_impl.h"
#include "dp_alloc.h"
#include "dp_limits.h"

#include <glib.h>
#include <stdio.h>
#include <string.h>

#define EX_KV_MAX_KEY 64 /* a "key: value" line's key longer than this is prose, not a key */

/* ---- charts -------------------------------------------------------------------------------- */

static const struct ex_jv *get_any(const struct ex_jv *o, const char *const *keys, size_t n) {
    for (size_t i = 0; i < n; i++) {
        const struct ex_jv *v = ex__jv_get(o, keys[i]);
        if (v)
            return v;
    }
    return NULL;
}

/* Text of a scalar, or of an axis object's title/label. */
static bool text_of(const struct ex_jv *v, char **out) {
    *out = NULL;
    if (!v)
        return true;
    if (v->type == EX_J_OBJ) {
        static const char *const k[] = {"title", "label", "name", "text"};
        return text_of(get_any(v, k, sizeof k / sizeof *k), out);
    }
    if (v->type != EX_J_STR && v->type != EX_J_NUM)
        return true;
    *out = dp_strdup(v->str ? v->str : "");
    return *out != NULL;
}

static bool add_point(struct ex_series *s, size_t *cap, const struct ex_jv *x, const struct ex_jv *y,
                      size_t idx) {
    if (!ex__grow((void **)&s->points, cap, s->n_points, sizeof *s->points))
        return false;
    struct ex_point *p = &s->points[s->n_points];
    memset(p, 0, sizeof *p);
    char ib[24];
    snprintf(ib, sizeof ib, "%zu", idx);
    if (x && !text_of(x, &p->x))
        return false;
    if (!p->x && !(p->x = dp_strdup(ib)))
        return false;
    if (y && y->type == EX_J_NUM) {
        p->y = y->num;
        p->has_y = true;
    } else if (y && y->type == EX_J_STR && y->str) {
        p->has_y = ex_norm_number(y->str, &p->y) || ex_norm_percent(y->str, &p->y);
        if (!p->has_y && !(p->y_raw = dp_strdup(y->str)))
            return false;
    }
    s->n_points++;
    return true;
}

static bool fill_series(struct ex_series *s, const struct ex_jv *pts, const struct ex_jv *labels) {
    size_t cap = 0;
    for (size_t i = 0; pts && pts->type == EX_J_ARR && i < pts->n; i++) {
        const struct ex_jv *e = &pts->items[i];
        const struct ex_jv *x = NULL, *y = NULL;
        if (e->type == EX_J_OBJ) {
            static const char *const xk[] = {"x", "label", "category", "name", "key"};
            static const char *const yk[] = {"y", "value", "count", "amount"};
            x = get_any(e, xk, sizeof xk / sizeof *xk);
            y = get_any(e, yk, sizeof yk / sizeof *yk);
        } else if (e->type == EX_J_ARR && e->n >= 2) {
            x = &e->items[0];
            y = &e->items[1];
        } else {
            y = e;
            x = labels && labels->type == EX_J_ARR && i < labels->n ? &labels->items[i] : NULL;
        }
        if (!add_point(s, &cap, x, y, i))
            return false;
    }
    return true;
}

enum dp_status ex__chart_from_json(struct ex__pagebuild *pb, const struct ex_jv *o) {
    if (!ex__grow((void **)&pb->charts, &pb->cap_charts, pb->n_charts, sizeof *pb->charts))
        return DP_ERR_NOMEM;
    struct ex_chart *c = &pb->charts[pb->n_charts++];
    memset(c, 0, sizeof *c);
    static const char *const tk[] = {"chart_type", "type", "kind"};
    static const char *const xk[] = {"x_axis", "x_label", "xAxis", "x"};
    static const char *const yk[] = {"y_axis", "y_label", "yAxis", "y"};
    static const char *const sk[] = {"series", "datasets", "data"};
    static const char *const pk[] = {"points", "data", "values"};
    static const char *const nk[] = {"name", "label", "series"};
    bool ok = text_of(get_any(o, tk, 3), &c->type) && text_of(ex__jv_get(o, "title"), &c->title) &&
              text_of(get_any(o, xk, 4), &c->x_label) && text_of(get_any(o, yk, 4), &c->y_label);
    struct ex_box box;
    if (ex__jv_box(ex__jv_get(o, "bbox_2d"), &box))
        ex__prov_set(&c->prov, pb->geom, pb->page, &box, o->off, o->len);
    else
        ex__prov_set(&c->prov, pb->geom, pb->page, NULL, o->off, o->len);
    const struct ex_jv *series = get_any(o, sk, 3);
    const struct ex_jv *labels = ex__jv_get(o, "labels");
    if (series && series->type == EX_J_OBJ) { /* {"labels": [...], "datasets": [...]} */
        labels = ex__jv_get(series, "labels");
        series = ex__jv_get(series, "datasets");
    }
    if (!series || series->type != EX_J_ARR) {
        ex__warn(&pb->ws, EX_WARN_TYPE, o->off, o->len, "series", "chart answer has no series");
        return ok ? DP_OK : DP_ERR_NOMEM;
    }
    bool flat = series->n > 0 && series->items[0].type != EX_J_OBJ;
    if (!flat && series->n > 0 && !get_any(&series->items[0], pk, 3)) /* [{x, y}, ...] */
        flat = true;
    size_t ns = flat ? 1 : series->n;
    c->series = dp_calloc(ns ? ns : 1, sizeof *c->series);
    ok = ok && c->series;
    for (size_t i = 0; ok && i < ns; i++) {
        struct ex_series *s = &c->series[i];
        c->n_series = i + 1;
        if (flat) {
            ok = fill_series(s, series, labels);
            continue;
        }
        const struct ex_jv *e = &series->items[i];
        ok = text_of(get_any(e, nk, 3), &s->name) && fill_series(s, get_any(e, pk, 3), labels);
    }
    return ok ? DP_OK : DP_ERR_NOMEM;
}

/* A chart from a table answer: the header row names the series, the first column holds x. */
static enum dp_status chart_from_table(struct ex__pagebuild *pb, const struct ex_table *t) {
    if (t->n_rows < 2 || t->n_cols < 2)
        return DP_OK;
    if (!ex__grow((void **)&pb->charts, &pb->cap_charts, pb->n_charts, sizeof *pb->charts))
        return DP_ERR_NOMEM;
    struct ex_chart *c = &pb->charts[pb->n_charts++];
    memset(c, 0, sizeof *c);
    c->prov = t->prov;
    size_t ns = (size_t)t->n_cols - 1;
    c->series = dp_calloc(ns, sizeof *c->series);
    if (!c->series)
        return DP_ERR_NOMEM;
    const struct ex_cell *cells = t->cells;
#define CELL_TEXT(r, cc)                                                                          \
    (cells[(size_t)(r) * (size_t)t->n_cols + (size_t)(cc)].text                                     \
         ? cells[(size_t)(r) * (size_t)t->n_cols + (size_t)(cc)].text                               \
         : cells[(size_t)cells[(size_t)(r) * (size_t)t->n_cols + (size_t)(cc)].orow *               \
                     (size_t)t->n_cols +                                                           \
                 (size_t)cells[(size_t)(r) * (size_t)t->n_cols + (size_t)(cc)].ocol]                \
               .text)
    if (!(c->x_label = dp_strdup(CELL_TEXT(0, 0))))
        return DP_ERR_NOMEM;
    for (size_t k = 0; k < ns; k++) {
        struct ex_series *s = &c->series[k];
        c->n_series = k + 1;
        s->name = dp_strdup(CELL_TEXT(0, k + 1));
        s->points = dp_calloc((size_t)t->n_rows - 1, sizeof *s->points);
        if (!s->name || !s->points)
            return DP_ERR_NOMEM;
        for (int r = 1; r < t->n_rows; r++) {
            struct ex_point *p = &s->points[s->n_points++];
            const char *y = CELL_TEXT(r, k + 1);
            p->x = dp_strdup(CELL_TEXT(r, 0));
            p->has_y = ex_norm_number(y, &p->y) || ex_norm_percent(y, &p->y);
            if (!p->x || (!p->has_y && !(p->y_raw = dp_strdup(y))))
                return DP_ERR_NOMEM;
        }
    }
#undef CELL_TEXT
    return DP_OK;
}

/* ---- key: value lines of text answers ------------------------------------------------------ */

/* Length of the colon (':' or U+FF1A) at t, or 0. */
static size_t colon_len(const char *t) {
    if (*t == ':')
        return 1;
    return !strncmp(t, "\xEF\xBC\x9A", 3) ? 3 : 0;
}

/* Where the next "key: value" pair starts after value_start: a space followed by one token that
 * ends in a colon ("品名：A 产品类型：B", "Date: 1 Jun Time: 18:41"); keys ending in a digit are
 * not keys ("12:30"). Returns the end of the current value. */
static const char *pair_end(const char *value_start, const char **next_key) {
    *next_key = NULL;
    for (const char *p = value_start; *p; p++) {
        if (*p != ' ')
            continue;
        const char *k = p + 1, *e = k;
        while (*e && *e != ' ' && !colon_len(e))
            e++;
        if (e > k && colon_len(e) && (size_t)(e - k) <= EX_KV_MAX_KEY && !g_ascii_isdigit(e[-1])) {
            *next_key = k;
            return p;
        }
    }
    return value_start + strlen(value_start);
}

/* Adds field key = value from a text line; a repeated name replaces the earlier field (warned). */
static enum dp_status kv_add(struct ex__pagebuild *pb, const struct ex_block *b, const char *k,
                             size_t kl, const char *v, size_t vl, size_t text_off) {
    const struct sc_schema *s = pb->schema;
    char *key = ex__clean_collapse(k, kl);
    char *raw = ex__clean_collapse(v, vl);
    if (!key || !raw) {
        dp_free(key);
        dp_free(raw);
        return DP_ERR_NOMEM;
    }
    const struct sc_field *sf = s ? sc_field_find(s->fields, s->n_fields, key) : NULL;
    /* Keys must match the schema when it lists fields. */
    bool usable = *key && *raw && !g_ascii_isdigit(key[strlen(key) - 1]) && (sf || !s || !s->n_fields) &&
                  (!sf || (sf->type != SC_TYPE_OBJECT && sf->type != SC_TYPE_ARRAY));
    if (!usable || pb->n_fields >= EX_MAX_FIELDS) {
        dp_free(key);
        dp_free(raw);
        return DP_OK;
    }
    struct ex_field f = {.key = key, .raw = raw, .type = EX_V_STRING, .in_schema = sf != NULL,
                         .prov = b->prov};
    f.name = dp_strdup(sf ? sf->name : key);
    if (!f.name) {
        ex__field_free(&f);
        return DP_ERR_NOMEM;
    }
    /* The pair's own span when the block text is the line as written. */
    if (b->prov.span_len == strlen(b->text) && !memcmp(pb->raw + b->prov.span_off, b->text, b->prov.span_len)) {
        f.prov.span_off = b->prov.span_off + text_off;
        f.prov.span_len = (size_t)(v + vl - k);
    }
    ex__field_type(&f, sf, &pb->ws, f.name);
    for (size_t i = 0; i < pb->n_fields; i++) {
        if (strcmp(pb->fields[i].name, f.name))
            continue;
        ex__warn(&pb->ws, EX_WARN_DUPLICATE, f.prov.span_off, f.prov.span_len, f.name,
                 "field '%s' given twice: the later is kept", f.name);
        ex__field_free(&pb->fields[i]);
        pb->fields[i] = f;
        return pb->ws.status;
    }
    if (!ex__grow((void **)&pb->fields, &pb->cap_fields, pb->n_fields, sizeof *pb->fields)) {
        ex__field_free(&f);
        return DP_ERR_NOMEM;
    }
    pb->fields[pb->n_fields++] = f;
    return pb->ws.status;
}

static enum dp_status kv_lines(struct ex__pagebuild *pb) {
    size_t n_blocks = pb->n_blocks;
    for (size_t i = 0; i < n_blocks; i++) {
        const struct ex_block *b = &pb->blocks[i];
        if (b->kind != EX_BLOCK_TEXT && b->kind != EX_BLOCK_LIST_ITEM)
            continue;
        const char *t = b->text, *key = t;
        while (key && *key) {
            const char *c = key;
            while (*c && !colon_len(c))
                c++;
            if (!*c || c == key || (size_t)(c - key) > EX_KV_MAX_KEY)
                break;
            const char *v = c + colon_len(c);
            while (*v == ' ')
                v++;
            const char *next;
            const char *ve = pair_end(v, &next);
            enum dp_status st = kv_add(pb, b, key, (size_t)(c - key), v, (size_t)(ve - v),
                                       (size_t)(key - t));
            if (st != DP_OK)
                return st;
            key = next;
        }
    }
    return pb->ws.status;
}

/* ---- page ---------------------------------------------------------------------------------- */

static bool blank(const char *s, size_t off, size_t len) {
    for (size_t i = off; i < off + len; i++)
        if (!g_ascii_isspace(s[i]))
            return false;
    return true;
}

static const char *find_ci(const char *s, size_t off, size_t len, const char *needle) {
    size_t nl = strlen(needle);
    for (size_t i = off; i + nl <= off + len; i++)
        if (!g_ascii_strncasecmp(s + i, needle, nl))
            return s + i;
    return NULL;
}

static bool looks_html(const char *s, size_t off, size_t len) {
    static const char *const tags[] = {"<html", "<body", "<table", "<div", "<p>", "<p ", "<h1",
                                       "<h2", "<h3", "<ul", "<ol", "<!doctype", "data-bbox",
                                       "<points"};
    size_t o = off, l = len;
    while (l && g_ascii_isspace(s[o]))
        o++, l--;
    if (!l || s[o] != '<')
        return false;
    for (size_t i = 0; i < sizeof tags / sizeof *tags; i++)
        if (find_ci(s, o, l, tags[i]))
            return true;
    return false;
}

/* Fields in schema order first, then the others in answer order (stable). */
static void order_fields(struct ex__pagebuild *pb) {
    const struct sc_schema *s = pb->schema;
    if (!s || pb->n_fields < 2)
        return;
    for (size_t i = 1; i < pb->n_fields; i++) {
        struct ex_field f = pb->fields[i];
        const struct sc_field *fs = f.in_schema ? sc_field_find(s->fields, s->n_fields, f.name) : NULL;
        size_t ki = fs ? (size_t)(fs - s->fields) : s->n_fields;
        size_t j = i;
        while (j > 0) {
            const struct ex_field *p = &pb->fields[j - 1];
            const struct sc_field *ps = p->in_schema ? sc_field_find(s->fields, s->n_fields, p->name) : NULL;
            size_t kp = ps ? (size_t)(ps - s->fields) : s->n_fields;
            if (kp <= ki)
                break;
            pb->fields[j] = pb->fields[j - 1];
            j--;
        }
        pb->fields[j] = f;
    }
}

static void warn_outside(struct ex__pagebuild *pb, size_t body_off, size_t body_len, bool closed) {
    if (body_off > 0) {
        /* the prose before the opening fence (up to the ``` line) */
        size_t end = body_off;
        const char *s = pb->raw;
        const char *fence = NULL;
        for (size_t i = 0; i + 3 <= body_off; i++)
            if (s[i] == '`' && s[i + 1] == '`' && s[i + 2] == '`') {
                fence = s + i;
                break;
            }
        if (fence)
            end = (size_t)(fence - s);
        if (!blank(s, 0, end))
            ex__warn(&pb->ws, EX_WARN_EXTRA_TEXT, 0, end, NULL, "text before the code block not used");
    }
    size_t after = body_off + body_len + (closed ? 3 : 0);
    if (closed && after < pb->raw_len && !blank(pb->raw, after, pb->raw_len - after))
        ex__warn(&pb->ws, EX_WARN_EXTRA_TEXT, after, pb->raw_len - after, NULL,
                 "text after the code block not used");
}

/* Start of the incomplete tag at the end of a truncated HTML answer, or off + len. */
static size_t html_tail(const char *s, size_t off, size_t len) {
    for (size_t i = off + len; i-- > off;) {
        if (s[i] == '>')
            break;
        if (s[i] == '<')
            return i;
    }
    return off + len;
}

const char *ex_stop_name(enum ex_stop s) {
    switch (s) {
    case EX_STOP_EOS: return "eos";
    case EX_STOP_MAX_NEW_TOKENS: return "max_new_tokens";
    case EX_STOP_REPETITION: return "repetition";
    case EX_STOP_TIMEOUT: return "timeout";
    case EX_STOP_BLANK: return "blank";
    }
    return "eos";
}

bool ex_stop_parse(const char *name, enum ex_stop *out) {
    for (int s = EX_STOP_EOS; s <= EX_STOP_BLANK; s++)
        if (name && !strcmp(name, ex_stop_name((enum ex_stop)s))) {
            *out = (enum ex_stop)s;
            return true;
        }
    return false;
}

enum dp_status ex_page_parse(struct ex_page **out, const struct sc_schema *schema, const char *raw,
                             size_t raw_len, const struct ex_geom *geom, int page_number,
                             enum ex_stop stop, struct dp_err *err) {
    bool model_truncated = stop != EX_STOP_EOS && stop != EX_STOP_BLANK;
    *out = NULL;
    if (raw_len > DP_MAX_TEXT_BYTES)
        return dp_err_set(err, DP_ERR_LIMIT, "page %d: answer of %zu bytes exceeds %zu",
                          page_number, raw_len, DP_MAX_TEXT_BYTES);
    struct ex_page *p = dp_calloc(1, sizeof *p);
    char *copy = dp_malloc(raw_len + 1);
    if (!p || !copy) {
        dp_free(p);
        dp_free(copy);
        return dp_err_set(err, DP_ERR_NOMEM, "page %d: out of memory", page_number);
    }
    if (raw_len)
        memcpy(copy, raw, raw_len);
    copy[raw_len] = '\0';
    p->raw = copy;
    p->raw_len = raw_len;
    p->number = page_number;
    p->model_truncated = model_truncated;
    p->stop = stop;
    if (geom)
        p->geom = *geom;
    struct ex__pagebuild pb = {.schema = schema, .geom = &p->geom, .raw = copy, .raw_len = raw_len,
                               .page = page_number, .ws = {.page = page_number}};
    size_t off, len;
    char lang[16];
    bool unclosed;
    bool fenced = ex__fence_find(copy, raw_len, &off, &len, lang, &unclosed);
    enum dp_status st = DP_OK;
    enum sc_task task = schema ? schema->task : SC_TASK_KIE;
    if (task == SC_TASK_OLMOCR) /* Markdown: a code block is part of the body, not the answer */
        fenced = unclosed = false;
    if (fenced)
        warn_outside(&pb, off, len, !unclosed);
    bool truncated = model_truncated || unclosed;
    bool want_json = !g_ascii_strcasecmp(lang, "json") ||
                     (!lang[0] && !looks_html(copy, off, len) &&
                      (memchr(copy + off, '{', len) || memchr(copy + off, '[', len)) &&
                      task != SC_TASK_LAYOUT && task != SC_TASK_TABLE);
    bool want_html = !g_ascii_strcasecmp(lang, "html") || !g_ascii_strcasecmp(lang, "xml") ||
                     (!lang[0] && looks_html(copy, off, len));
    if (raw_len == 0 || blank(copy, 0, raw_len)) {
        p->source = EX_SRC_EMPTY;
    } else if (task == SC_TASK_OLMOCR) {
        p->source = EX_SRC_MARKDOWN;
        st = ex__olmocr_parse(&pb);
    } else if (want_json) {
        struct ex_jdoc jd;
        st = ex__json_parse(&jd, copy, off, len, &pb.ws);
        if (st == DP_OK && jd.found) {
            p->source = EX_SRC_JSON;
            truncated = truncated || jd.truncated;
            st = ex__json_to_page(&pb, &jd);
        } else if (st == DP_OK) {
            p->source = EX_SRC_TEXT;
            st = ex__markdown_parse(&pb, off, len);
        }
        ex__json_free(&jd);
    } else if (want_html) {
        p->source = EX_SRC_HTML;
        bool closed_html = !find_ci(copy, off, len, "<html") || find_ci(copy, off, len, "</html>");
        size_t end = off + len;
        if (truncated || !closed_html) {
            /* Keep every complete element: the cut-off tag at the end is not parsed. */
            truncated = true;
            end = html_tail(copy, off, len);
            if (end < off + len)
                ex__warn(&pb.ws, EX_WARN_TRUNCATED, end, off + len - end, NULL,
                         "answer ends inside an HTML tag: '%.40s' dropped", copy + end);
            else
                ex__warn(&pb.ws, EX_WARN_TRUNCATED, end, 0, NULL,
                         "answer ends before the HTML document is closed");
        }
        st = ex__html_parse(&pb, off, end - off);
    } else {
        p->source = fenced || memchr(copy, '|', raw_len) ? EX_SRC_MARKDOWN : EX_SRC_TEXT;
        st = ex__markdown_parse(&pb, off, len);
        if (st == DP_OK && task == SC_TASK_KIE)
            st = kv_lines(&pb);
    }
    truncated = truncated || pb.truncated;
    bool explained = false; /* a truncation warning with the dropped span already exists */
    for (size_t i = 0; i < pb.ws.n && !explained; i++)
        explained = pb.ws.w[i].code == EX_WARN_TRUNCATED;
    if (st == DP_OK && truncated && !explained)
        ex__warn(&pb.ws, EX_WARN_TRUNCATED, raw_len, 0, NULL,
                 stop == EX_STOP_MAX_NEW_TOKENS ? "the model stopped at max-new-tokens"
                 : stop == EX_STOP_REPETITION  ? "the repetition guard stopped the model (a loop)"
                 : stop == EX_STOP_TIMEOUT     ? "the page time limit stopped the model"
                                               : "the answer ends before its code block is closed");
    if (st == DP_OK && task == SC_TASK_CHART && pb.n_charts == 0 && pb.n_tables > 0)
        st = chart_from_table(&pb, &pb.tables[0]);
    if (st == DP_OK)
        order_fields(&pb);
    ex__wsink_close(&pb.ws);
    if (st == DP_OK)
        st = pb.ws.status;
    p->truncated = truncated;
    p->blocks = pb.blocks, p->n_blocks = pb.n_blocks;
    p->fields = pb.fields, p->n_fields = pb.n_fields;
    p->tables = pb.tables, p->n_tables = pb.n_tables;
    p->charts = pb.charts, p->n_charts = pb.n_charts;
    p->warnings = pb.ws.w, p->n_warnings = pb.ws.n;
    if (st != DP_OK) {
        ex_page_free(p);
        return dp_err_set(err, st, "page %d: %s while parsing the answer", page_number,
                          dp_status_str(st));
    }
    *out = p;
    return DP_OK;
}
