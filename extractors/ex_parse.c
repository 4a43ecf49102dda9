/* Page parsing entry point of libex (ex_page_parse): finds the answer in the model's text (code
 * fence or bare), picks the parser (JSON, HTML, markdown/plain text) from the fence language, the
 * first character and the schema's task, and builds the page: blocks, fields typed against the
 * schema, tables, charts, warnings, truncation flag; plus coordinate mapping (ex_geom_map).
 * Thread-safe: all state lives in the page being built. */
#include "ex_impl.h"
#include "dp_alloc.h"
#include "dp_limits.h"

#include <glib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- geometry ------------------------------------------------------------------------------ */

static double clampd(double v, double lo, double hi) {
    return v < lo ? lo : v > hi ? hi : v;
}

void ex_geom_map(const struct ex_geom *g, const struct ex_box *model, struct ex_prov *out) {
    out->has_box = true;
    out->model = *model;
    out->page_px = *model;
    out->has_pdf = false;
    if (!g)
        return;
    if (g->model_w > 0 && g->model_h > 0) {
        out->model.x1 = clampd(model->x1, 0, g->model_w);
        out->model.x2 = clampd(model->x2, 0, g->model_w);
        out->model.y1 = clampd(model->y1, 0, g->model_h);
        out->model.y2 = clampd(model->y2, 0, g->model_h);
        out->page_px = out->model;
        if (g->page_w > 0 && g->page_h > 0) {
            double sx = (double)g->page_w / g->model_w, sy = (double)g->page_h / g->model_h;
            out->page_px.x1 = out->model.x1 * sx;
            out->page_px.x2 = out->model.x2 * sx;
            out->page_px.y1 = out->model.y1 * sy;
            out->page_px.y2 = out->model.y2 * sy;
        }
    }
    double pw = g->page_w > 0 ? g->page_w : g->model_w, ph = g->page_h > 0 ? g->page_h : g->model_h;
    if (g->pdf_w_pt > 0 && g->pdf_h_pt > 0 && pw > 0 && ph > 0) {
        out->has_pdf = true;
        out->pdf_pt.x1 = out->page_px.x1 * g->pdf_w_pt / pw;
        out->pdf_pt.x2 = out->page_px.x2 * g->pdf_w_pt / pw;
        out->pdf_pt.y1 = out->page_px.y1 * g->pdf_h_pt / ph;
        out->pdf_pt.y2 = out->page_px.y2 * g->pdf_h_pt / ph;
    }
}

void ex__prov_set(struct ex_prov *p, const struct ex_geom *g, int page, const struct ex_box *box,
                  size_t off, size_t len) {
    memset(p, 0, sizeof *p);
    p->page = page;
    p->span_off = off;
    p->span_len = len;
    if (box)
        ex_geom_map(g, box, p);
}

static void check_box(struct ex__pagebuild *pb, const struct ex_box *b, size_t off, size_t len) {
    const struct ex_geom *g = pb->geom;
    if (!g || g->model_w <= 0 || g->model_h <= 0)
        return;
    if (b->x1 < 0 || b->y1 < 0 || b->x2 > g->model_w || b->y2 > g->model_h)
        ex__warn(&pb->ws, EX_WARN_BBOX, off, len, NULL,
                 "box [%g, %g, %g, %g] outside the %dx%d model input: clamped", b->x1, b->y1, b->x2,
                 b->y2, g->model_w, g->model_h);
}

struct ex_block *ex__pb_block(struct ex__pagebuild *pb, enum ex_block_kind kind, const char *tag,
                              const char *cls, char *text, const struct ex_box *box, size_t off,
                              size_t len) {
    if (!ex__grow((void **)&pb->blocks, &pb->cap_blocks, pb->n_blocks, sizeof *pb->blocks)) {
        dp_free(text);
        return NULL;
    }
    struct ex_block *b = &pb->blocks[pb->n_blocks];
    memset(b, 0, sizeof *b);
    b->kind = kind;
    b->table = -1;
    b->text = text ? text : dp_strdup("");
    b->tag = dp_strdup(tag ? tag : "");
    b->cls = cls ? ex__clean_collapse(cls, strlen(cls)) : NULL;
    if (!b->text || !b->tag || (cls && !b->cls)) {
        dp_free(b->text);
        dp_free(b->tag);
        dp_free(b->cls);
        return NULL;
    }
    if (box)
        check_box(pb, box, off, len);
    ex__prov_set(&b->prov, pb->geom, pb->page, box, off, len);
    pb->n_blocks++;
    return b;
}

/* ---- page lifetime ------------------------------------------------------------------------- */

static void chart_free(struct ex_chart *c) {
    for (size_t i = 0; i < c->n_series; i++) {
        struct ex_series *s = &c->series[i];
        for (size_t k = 0; k < s->n_points; k++) {
            dp_free(s->points[k].x);
            dp_free(s->points[k].y_raw);
        }
        dp_free(s->points);
        dp_free(s->name);
    }
    dp_free(c->series);
    dp_free(c->type);
    dp_free(c->title);
    dp_free(c->x_label);
    dp_free(c->y_label);
    memset(c, 0, sizeof *c);
}

static void pb_free(struct ex__pagebuild *pb) {
    for (size_t i = 0; i < pb->n_blocks; i++) {
        dp_free(pb->blocks[i].text);
        dp_free(pb->blocks[i].tag);
        dp_free(pb->blocks[i].cls);
    }
    dp_free(pb->blocks);
    for (size_t i = 0; i < pb->n_tables; i++)
        ex__table_free(&pb->tables[i]);
    dp_free(pb->tables);
    for (size_t i = 0; i < pb->n_charts; i++)
        chart_free(&pb->charts[i]);
    dp_free(pb->charts);
    for (size_t i = 0; i < pb->n_fields; i++)
        ex__field_free(&pb->fields[i]);
    dp_free(pb->fields);
    for (size_t i = 0; i < pb->ws.n; i++)
        ex__warning_free(&pb->ws.w[i]);
    dp_free(pb->ws.w);
}

void ex_page_free(struct ex_page *p) {
    if (!p)
        return;
    struct ex__pagebuild pb = {
        .blocks = p->blocks, .n_blocks = p->n_blocks, .tables = p->tables,
        .n_tables = p->n_tables, .charts = p->charts, .n_charts = p->n_charts,
        .fields = p->fields, .n_fields = p->n_fields,
        .ws = {.w = p->warnings, .n = p->n_warnings},
    };
    pb_free(&pb);
    dp_free(p->raw);
    dp_free(p);
}

/* ---- JSON answers -> fields, blocks, charts ------------------------------------------------ */

static const char *const BOX_KEYS[] = {"bbox_2d", "bbox", "box", "bounding_box"};
static const char *const TEXT_KEYS[] = {"text_content", "text", "value", "content", "label",
                                        "name", "description"};
static const char *const GROUNDED_EXTRA[] = {"bbox_2d", "bbox", "box", "bounding_box",
                                             "point_2d", "confidence", "page", "label"};

static bool box_of(const struct ex_jv *obj, struct ex_box *b) {
    for (size_t i = 0; i < sizeof BOX_KEYS / sizeof *BOX_KEYS; i++)
        if (ex__jv_box(ex__jv_get(obj, BOX_KEYS[i]), b))
            return true;
    const struct ex_jv *pt = ex__jv_get(obj, "point_2d");
    if (pt && pt->type == EX_J_ARR && pt->n == 2 && pt->items[0].type == EX_J_NUM &&
        pt->items[1].type == EX_J_NUM && fabs(pt->items[0].num) <= EX_BOX_MAX_ABS &&
        fabs(pt->items[1].num) <= EX_BOX_MAX_ABS) {
        b->x1 = b->x2 = pt->items[0].num;
        b->y1 = b->y2 = pt->items[1].num;
        return true;
    }
    return false;
}

static bool has_box_key(const struct ex_jv *obj) {
    struct ex_box b;
    return obj->type == EX_J_OBJ && box_of(obj, &b);
}

/* {"value": v, "bbox_2d": [...]} (grounded field). */
static bool is_grounded(const struct ex_jv *obj) {
    if (obj->type != EX_J_OBJ || !ex__jv_get(obj, "value"))
        return false;
    for (size_t i = 0; i < obj->n; i++) {
        bool known = !g_ascii_strcasecmp(obj->items[i].key, "value");
        for (size_t k = 0; k < sizeof GROUNDED_EXTRA / sizeof *GROUNDED_EXTRA && !known; k++)
            known = !g_ascii_strcasecmp(obj->items[i].key, GROUNDED_EXTRA[k]);
        if (!known)
            return false;
    }
    return true;
}

static char *scalar_text(const struct ex_jv *v) {
    switch (v->type) {
    case EX_J_STR:
    case EX_J_NUM: return dp_strdup(v->str ? v->str : "");
    case EX_J_BOOL: return dp_strdup(v->b ? "true" : "false");
    default: return NULL;
    }
}

static void path_join(char *dst, size_t n, const char *parent, const char *key, bool index) {
    if (index)
        snprintf(dst, n, "%s[%s]", parent, key);
    else if (*parent)
        snprintf(dst, n, "%s.%s", parent, key);
    else
        snprintf(dst, n, "%s", key);
}

#define EX_PATH_MAX 256

static enum dp_status build_field(struct ex__pagebuild *pb, struct ex_field *f, const char *key,
                                  const struct ex_jv *v, const struct sc_field *sf,
                                  const char *path, int depth);

static enum dp_status build_children(struct ex__pagebuild *pb, struct ex_field *f,
                                     const struct ex_jv *v, const struct sc_field *sf,
                                     const char *path, int depth) {
    bool arr = v->type == EX_J_ARR;
    f->type = arr ? EX_V_ARRAY : EX_V_OBJECT;
    if (!v->n)
        return DP_OK;
    f->children = dp_calloc(v->n, sizeof *f->children);
    if (!f->children)
        return DP_ERR_NOMEM;
    /* Element schema of an array: an object with sf's children, or a scalar of item_type. */
    struct sc_field item = {0};
    if (sf && arr) {
        item.name = sf->name;
        item.type = sf->item_type;
        item.children = sf->children;
        item.n_children = sf->n_children;
    }
    for (size_t i = 0; i < v->n; i++) {
        const struct ex_jv *c = &v->items[i];
        char idx[24], sub[EX_PATH_MAX];
        const struct sc_field *csf = NULL;
        const char *ckey;
        if (arr) {
            snprintf(idx, sizeof idx, "%zu", i);
            ckey = idx;
            csf = sf ? &item : NULL;
        } else {
            ckey = c->key;
            if (sf && sf->n_children) {
                csf = sc_field_find(sf->children, sf->n_children, ckey);
                if (!csf)
                    ex__warn(&pb->ws, EX_WARN_UNKNOWN_KEY, c->off, c->len, path,
                             "key '%.40s' is not in the schema: kept as is", ckey);
            }
        }
        path_join(sub, sizeof sub, path, ckey, arr);
        enum dp_status st = build_field(pb, &f->children[i], ckey, c, csf, sub, depth + 1);
        f->n_children = i + 1;
        if (st != DP_OK)
            return st;
    }
    return DP_OK;
}

static enum dp_status build_field(struct ex__pagebuild *pb, struct ex_field *f, const char *key,
                                  const struct ex_jv *v, const struct sc_field *sf,
                                  const char *path, int depth) {
    memset(f, 0, sizeof *f);
    f->key = dp_strdup(key ? key : "");
    f->name = dp_strdup(sf && sf->name ? sf->name : (key ? key : ""));
    if (!f->key || !f->name)
        return DP_ERR_NOMEM;
    f->in_schema = sf != NULL;
    ex__prov_set(&f->prov, pb->geom, pb->page, NULL, v->off, v->len);
    const struct ex_jv *val = v;
    struct ex_box box;
    if (is_grounded(v)) {
        val = ex__jv_get(v, "value");
        if (box_of(v, &box)) {
            check_box(pb, &box, v->off, v->len);
            ex__prov_set(&f->prov, pb->geom, pb->page, &box, v->off, v->len);
        }
    }
    if (val->type == EX_J_OBJ || val->type == EX_J_ARR) {
        if (depth >= EX_MAX_FIELD_DEPTH) {
            ex__warn(&pb->ws, EX_WARN_LIMIT, v->off, v->len, path,
                     "fields nested deeper than %d: kept as null", EX_MAX_FIELD_DEPTH);
            f->type = EX_V_NULL;
            return DP_OK;
        }
        if (val->type == EX_J_OBJ && !f->prov.has_box && box_of(val, &box))
            ex__prov_set(&f->prov, pb->geom, pb->page, &box, v->off, v->len);
        return build_children(pb, f, val, sf, path, depth);
    }
    f->type = val->type == EX_J_NUM ? EX_V_NUMBER : val->type == EX_J_BOOL ? EX_V_BOOL
              : val->type == EX_J_STR ? EX_V_STRING : EX_V_NULL;
    f->num = val->num;
    f->boolean = val->b;
    if (val->type != EX_J_NULL) {
        f->raw = scalar_text(val);
        if (!f->raw)
            return DP_ERR_NOMEM;
    }
    if (sf && (sf->type == SC_TYPE_OBJECT || sf->type == SC_TYPE_ARRAY) && f->type != EX_V_NULL)
        ex__warn(&pb->ws, EX_WARN_TYPE, v->off, v->len, path, "expected %s, got '%.40s'",
                 sc_type_name(sf->type), f->raw);
    ex__field_type(f, sf && sf->type != SC_TYPE_OBJECT && sf->type != SC_TYPE_ARRAY ? sf : NULL,
                   &pb->ws, path);
    return pb->ws.status;
}

/* Adds one top-level field from member (key, v); a repeated field replaces the earlier one. */
static enum dp_status add_top_field(struct ex__pagebuild *pb, const char *key,
                                    const struct ex_jv *v) {
    const struct sc_schema *s = pb->schema;
    if (pb->n_fields >= EX_MAX_FIELDS) {
        if (pb->n_fields_dropped == 0)
            ex__warn(&pb->ws, EX_WARN_LIMIT, v->off, pb->raw_len - v->off, NULL,
                     "more than %d fields on a page: the rest are not kept", EX_MAX_FIELDS);
        pb->n_fields_dropped++;
        return DP_OK;
    }
    const struct sc_field *sf = s ? sc_field_find(s->fields, s->n_fields, key) : NULL;
    if (s && s->n_fields && !sf)
        ex__warn(&pb->ws, EX_WARN_UNKNOWN_KEY, v->off, v->len, NULL,
                 "key '%.40s' is not in schema '%s': kept as is", key, s->name);
    struct ex_field f;
    enum dp_status st = build_field(pb, &f, key, v, sf, sf ? sf->name : key, 0);
    if (st != DP_OK) {
        ex__field_free(&f);
        return st;
    }
    for (size_t i = 0; i < pb->n_fields; i++) {
        if (strcmp(pb->fields[i].name, f.name))
            continue;
        ex__warn(&pb->ws, EX_WARN_DUPLICATE, v->off, v->len, f.name,
                 "field '%s' given twice (keys '%.30s' and '%.30s'): the later is kept", f.name,
                 pb->fields[i].key, f.key);
        ex__field_free(&pb->fields[i]);
        pb->fields[i] = f;
        return DP_OK;
    }
    if (!ex__grow((void **)&pb->fields, &pb->cap_fields, pb->n_fields, sizeof *pb->fields)) {
        ex__field_free(&f);
        return DP_ERR_NOMEM;
    }
    pb->fields[pb->n_fields++] = f;
    return DP_OK;
}

static const char *first_text(const struct ex_jv *obj) {
    for (size_t i = 0; i < sizeof TEXT_KEYS / sizeof *TEXT_KEYS; i++) {
        const struct ex_jv *t = ex__jv_get(obj, TEXT_KEYS[i]);
        if (t && (t->type == EX_J_STR || t->type == EX_J_NUM) && t->str)
            return t->str;
    }
    return "";
}

/* [{"bbox_2d": [...], "text_content": "..."}, ...]: one block per element. */
static enum dp_status grounded_blocks(struct ex__pagebuild *pb, const struct ex_jv *arr) {
    for (size_t i = 0; i < arr->n; i++) {
        const struct ex_jv *e = &arr->items[i];
        struct ex_box box;
        bool hb = e->type == EX_J_OBJ && box_of(e, &box);
        const char *t = e->type == EX_J_OBJ ? first_text(e) : (e->str ? e->str : "");
        const struct ex_jv *label = e->type == EX_J_OBJ ? ex__jv_get(e, "label") : NULL;
        char *text = dp_strdup(t);
        if (!text)
            return DP_ERR_NOMEM;
        if (e->type == EX_J_OBJ && !hb)
            ex__warn(&pb->ws, EX_WARN_BBOX, e->off, e->len, NULL, "element %zu has no usable box", i);
        struct ex_block *b = ex__pb_block(pb, EX_BLOCK_TEXT, "json",
                                          label && label->str && strcmp(label->str, t) ? label->str : NULL,
                                          text, hb ? &box : NULL, e->off, e->len);
        if (!b)
            return DP_ERR_NOMEM;
    }
    return DP_OK;
}

/* [[...], [...]]: rows of a table (first row as header). */
static enum dp_status rows_table(struct ex__pagebuild *pb, const struct ex_jv *arr) {
    struct ex__tcell *cells = NULL;
    size_t n = 0, cap = 0;
    enum dp_status st = DP_OK;
    for (size_t r = 0; r < arr->n && st == DP_OK; r++) {
        const struct ex_jv *row = &arr->items[r];
        for (size_t c = 0; c < row->n && st == DP_OK; c++) {
            if (!ex__grow((void **)&cells, &cap, n, sizeof *cells)) {
                st = DP_ERR_NOMEM;
                break;
            }
            struct ex__tcell *tc = &cells[n];
            memset(tc, 0, sizeof *tc);
            tc->row = (int)r;
            tc->rowspan = tc->colspan = 1;
            tc->header = r == 0;
            tc->off = row->items[c].off;
            tc->len = row->items[c].len;
            tc->text = scalar_text(&row->items[c]);
            if (!tc->text)
                tc->text = dp_strdup("");
            if (!tc->text)
                st = DP_ERR_NOMEM;
            else
                n++;
        }
    }
    if (st == DP_OK &&
        !ex__grow((void **)&pb->tables, &pb->cap_tables, pb->n_tables, sizeof *pb->tables))
        st = DP_ERR_NOMEM;
    if (st != DP_OK) {
        for (size_t i = 0; i < n; i++)
            dp_free(cells[i].text);
        dp_free(cells);
        return st;
    }
    struct ex_table *t = &pb->tables[pb->n_tables];
    st = ex__table_build(t, cells, n, (int)arr->n, pb->geom, pb->page, &pb->ws);
    dp_free(cells);
    if (st != DP_OK)
        return st;
    ex__prov_set(&t->prov, pb->geom, pb->page, NULL, arr->off, arr->len);
    pb->n_tables++;
    struct ex_block *b = ex__pb_block(pb, EX_BLOCK_TABLE, "json", NULL, NULL, NULL, arr->off, arr->len);
    if (!b)
        return DP_ERR_NOMEM;
    b->table = (int)pb->n_tables - 1;
    return DP_OK;
}

enum dp_status ex__json_to_page(struct ex__pagebuild *pb, const struct ex_jdoc *jd) {
    const struct ex_jv *root = &jd->root;
    enum dp_status st = DP_OK;
    if (root->type == EX_J_ARR) {
        bool all_obj = root->n > 0, any_box = false, all_arr = root->n > 0;
        for (size_t i = 0; i < root->n; i++) {
            all_obj = all_obj && root->items[i].type == EX_J_OBJ;
            all_arr = all_arr && root->items[i].type == EX_J_ARR;
            any_box = any_box || has_box_key(&root->items[i]);
        }
        if (all_arr)
            return rows_table(pb, root);
        if (all_obj && !any_box) { /* [{...}]: a key-value answer wrapped in a list */
            for (size_t i = 0; i < root->n && st == DP_OK; i++)
                for (size_t k = 0; k < root->items[i].n && st == DP_OK; k++)
                    st = add_top_field(pb, root->items[i].items[k].key, &root->items[i].items[k]);
            return st;
        }
        return grounded_blocks(pb, root);
    }
    if (root->type != EX_J_OBJ)
        return DP_OK;
    bool chart = (pb->schema && pb->schema->task == SC_TASK_CHART) || ex__jv_get(root, "series");
    if (chart)
        st = ex__chart_from_json(pb, root);
    for (size_t i = 0; i < root->n && st == DP_OK; i++)
        st = add_top_field(pb, root->items[i].key, &root->items[i]);
    return st;
}
