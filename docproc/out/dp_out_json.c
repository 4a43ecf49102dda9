/* The result JSON of a document (dp_out.h), documented by schemas/result.schema.json: source,
 * reproducibility stamp, merged fields, pages (geometry, blocks, fields, tables, charts,
 * warnings), document warnings; every value with its provenance (page, box in model pixels,
 * page pixels and PDF points, byte span and the raw text of that span). Thread-safe per call. */
#include "dp_out.h"
#include "dp_out_impl.h"
#include "dp_alloc.h"
#include "dp_jw.h"
#include "dp_limits.h"

#include <stdio.h>
#include <string.h>

#define REASON_MAX 1024 /* bytes of one invalid_reasons entry */

#define BOX_DECIMALS 2

const struct ex_page *dp__out_page(const struct ex_doc *doc, int number) {
    for (size_t i = 0; i < doc->n_pages; i++)
        if (doc->pages[i]->number == number)
            return doc->pages[i];
    return NULL;
}

enum dp_status dp__out_span_text(const struct ex_doc *doc, const struct ex_prov *p, char **out) {
    *out = NULL;
    const struct ex_page *pg = dp__out_page(doc, p->page);
    if (!pg || !p->span_len || p->span_off > pg->raw_len || p->span_len > pg->raw_len - p->span_off)
        return DP_OK;
    *out = ex_text_clean(pg->raw + p->span_off, p->span_len);
    return *out ? DP_OK : DP_ERR_NOMEM;
}

static void box(struct dp_jw *w, const char *key, const struct ex_box *b) {
    dp_jw_key(w, key);
    dp_jw_arr_inline(w);
    dp_jw_num_prec(w, b->x1, BOX_DECIMALS);
    dp_jw_num_prec(w, b->y1, BOX_DECIMALS);
    dp_jw_num_prec(w, b->x2, BOX_DECIMALS);
    dp_jw_num_prec(w, b->y2, BOX_DECIMALS);
    dp_jw_end(w);
}

static void prov(struct dp_jw *w, const struct ex_doc *doc, const struct ex_prov *p) {
    dp_jw_key(w, "provenance");
    dp_jw_obj(w);
    dp_jw_key(w, "page");
    dp_jw_int(w, p->page);
    if (p->has_box) {
        dp_jw_key(w, "bbox");
        dp_jw_obj(w);
        box(w, "model", &p->model);
        box(w, "page_px", &p->page_px);
        if (p->has_pdf)
            box(w, "pdf_pt", &p->pdf_pt);
        dp_jw_end(w);
    }
    if (p->span_len) {
        dp_jw_key(w, "span");
        dp_jw_arr_inline(w);
        dp_jw_int(w, (int64_t)p->span_off);
        dp_jw_int(w, (int64_t)p->span_len);
        dp_jw_end(w);
        char *t = NULL;
        if (dp__out_span_text(doc, p, &t) != DP_OK && w->st == DP_OK)
            w->st = DP_ERR_NOMEM;
        if (t) {
            dp_jw_key(w, "source_text");
            dp_jw_str(w, t);
            dp_free(t);
        }
    }
    dp_jw_end(w);
}

static void field(struct dp_jw *w, const struct ex_doc *doc, const struct ex_field *f, int depth) {
    dp_jw_obj(w);
    dp_jw_key(w, "name");
    dp_jw_str(w, f->name);
    if (f->key && strcmp(f->key, f->name)) {
        dp_jw_key(w, "key");
        dp_jw_str(w, f->key);
    }
    dp_jw_key(w, "type");
    dp_jw_str(w, ex_vtype_name(f->type));
    dp_jw_key(w, "in_schema");
    dp_jw_bool(w, f->in_schema);
    if (f->type != EX_V_OBJECT && f->type != EX_V_ARRAY) {
        dp_jw_key(w, "value");
        switch (f->type) {
        case EX_V_NUMBER:
        case EX_V_INTEGER:
        case EX_V_AMOUNT:
        case EX_V_PERCENT: dp_jw_num(w, f->num); break;
        case EX_V_BOOL: dp_jw_bool(w, f->boolean); break;
        case EX_V_NULL: dp_jw_null(w); break;
        default: dp_jw_str(w, f->value); break;
        }
        dp_jw_key(w, "raw");
        dp_jw_str(w, f->raw);
    }
    if (f->currency[0]) {
        dp_jw_key(w, "currency");
        dp_jw_str(w, f->currency);
    }
    if (f->ambiguous) {
        dp_jw_key(w, "ambiguous");
        dp_jw_bool(w, true);
        dp_jw_key(w, "alternative");
        dp_jw_str(w, f->alt);
    }
    if (f->has_conf) {
        dp_jw_key(w, "confidence");
        dp_jw_num(w, f->conf);
    }
    if (f->value_truncated) {
        dp_jw_key(w, "value_truncated");
        dp_jw_bool(w, true);
    }
    prov(w, doc, &f->prov);
    if (f->type == EX_V_OBJECT || f->type == EX_V_ARRAY) {
        dp_jw_key(w, f->type == EX_V_ARRAY ? "items" : "fields");
        dp_jw_arr(w);
        for (size_t i = 0; i < f->n_children; i++)
            field(w, doc, &f->children[i], depth + 1);
        dp_jw_end(w);
    }
    dp_jw_end(w);
}

static void fields(struct dp_jw *w, const struct ex_doc *doc, const struct ex_field *f, size_t n) {
    dp_jw_key(w, "fields");
    dp_jw_arr(w);
    for (size_t i = 0; i < n; i++)
        field(w, doc, &f[i], 0);
    dp_jw_end(w);
}

static void warnings(struct dp_jw *w, const struct ex_warning *ws, size_t n) {
    dp_jw_key(w, "warnings");
    dp_jw_arr(w);
    for (size_t i = 0; i < n; i++) {
        const struct ex_warning *x = &ws[i];
        dp_jw_obj(w);
        dp_jw_key(w, "code");
        dp_jw_str(w, ex_warn_code_name(x->code));
        dp_jw_key(w, "message");
        dp_jw_str(w, x->msg);
        dp_jw_key(w, "page");
        dp_jw_int(w, x->page);
        if (x->path) {
            dp_jw_key(w, "path");
            dp_jw_str(w, x->path);
        }
        if (x->span_len) {
            dp_jw_key(w, "span");
            dp_jw_arr_inline(w);
            dp_jw_int(w, (int64_t)x->span_off);
            dp_jw_int(w, (int64_t)x->span_len);
            dp_jw_end(w);
        }
        dp_jw_end(w);
    }
    dp_jw_end(w);
}

static void table(struct dp_jw *w, const struct ex_doc *doc, const struct ex_table *t) {
    dp_jw_obj(w);
    dp_jw_key(w, "rows");
    dp_jw_int(w, t->n_rows);
    dp_jw_key(w, "cols");
    dp_jw_int(w, t->n_cols);
    if (t->caption) {
        dp_jw_key(w, "caption");
        dp_jw_str(w, t->caption);
    }
    prov(w, doc, &t->prov);
    dp_jw_key(w, "cells");
    dp_jw_arr(w);
    for (int r = 0; r < t->n_rows; r++) {
        for (int c = 0; c < t->n_cols; c++) {
            const struct ex_cell *x = &t->cells[(size_t)r * (size_t)t->n_cols + (size_t)c];
            if (x->orow != r || x->ocol != c)
                continue; /* covered by a span: implied by the origin's rowspan/colspan */
            dp_jw_obj(w);
            dp_jw_key(w, "row");
            dp_jw_int(w, r);
            dp_jw_key(w, "col");
            dp_jw_int(w, c);
            dp_jw_key(w, "rowspan");
            dp_jw_int(w, x->rowspan);
            dp_jw_key(w, "colspan");
            dp_jw_int(w, x->colspan);
            dp_jw_key(w, "header");
            dp_jw_bool(w, x->header);
            dp_jw_key(w, "text");
            dp_jw_str(w, x->text ? x->text : "");
            if (x->has_conf) { /* from the cell's tokens (docs/constrain.md) */
                dp_jw_key(w, "confidence");
                dp_jw_num(w, x->conf);
            }
            prov(w, doc, &x->prov);
            dp_jw_end(w);
        }
    }
    dp_jw_end(w);
    dp_jw_end(w);
}

static void chart(struct dp_jw *w, const struct ex_doc *doc, const struct ex_chart *c) {
    dp_jw_obj(w);
    const char *keys[] = {"type", "title", "x_label", "y_label"};
    const char *vals[] = {c->type, c->title, c->x_label, c->y_label};
    for (int i = 0; i < 4; i++) {
        dp_jw_key(w, keys[i]);
        dp_jw_str(w, vals[i]);
    }
    prov(w, doc, &c->prov);
    dp_jw_key(w, "series");
    dp_jw_arr(w);
    for (size_t i = 0; i < c->n_series; i++) {
        const struct ex_series *s = &c->series[i];
        dp_jw_obj(w);
        dp_jw_key(w, "name");
        dp_jw_str(w, s->name);
        dp_jw_key(w, "points");
        dp_jw_arr(w);
        for (size_t k = 0; k < s->n_points; k++) {
            const struct ex_point *p = &s->points[k];
            dp_jw_obj(w);
            dp_jw_key(w, "x");
            dp_jw_str(w, p->x);
            dp_jw_key(w, "y");
            if (p->has_y)
                dp_jw_num(w, p->y);
            else
                dp_jw_null(w);
            if (p->y_raw) {
                dp_jw_key(w, "y_raw");
                dp_jw_str(w, p->y_raw);
            }
            dp_jw_end(w);
        }
        dp_jw_end(w);
        dp_jw_end(w);
    }
    dp_jw_end(w);
    dp_jw_end(w);
}

static void block(struct dp_jw *w, const struct ex_doc *doc, const struct ex_block *b) {
    dp_jw_obj(w);
    dp_jw_key(w, "kind");
    dp_jw_str(w, ex_block_kind_name(b->kind));
    dp_jw_key(w, "tag");
    dp_jw_str(w, b->tag);
    if (b->cls) {
        dp_jw_key(w, "class");
        dp_jw_str(w, b->cls);
    }
    if (b->level) {
        dp_jw_key(w, "level");
        dp_jw_int(w, b->level);
    }
    if (b->table >= 0) {
        dp_jw_key(w, "table");
        dp_jw_int(w, b->table);
    }
    dp_jw_key(w, "text");
    dp_jw_str(w, b->text);
    prov(w, doc, &b->prov);
    dp_jw_end(w);
}

void dp__out_geom_json(struct dp_jw *w, const struct ex_geom *g) {
    dp_jw_key(w, "geometry");
    dp_jw_obj(w);
    dp_jw_key(w, "model_w");
    dp_jw_int(w, g->model_w);
    dp_jw_key(w, "model_h");
    dp_jw_int(w, g->model_h);
    dp_jw_key(w, "page_w");
    dp_jw_int(w, g->page_w);
    dp_jw_key(w, "page_h");
    dp_jw_int(w, g->page_h);
    dp_jw_key(w, "pdf_w_pt");
    dp_jw_num_prec(w, g->pdf_w_pt, 4);
    dp_jw_key(w, "pdf_h_pt");
    dp_jw_num_prec(w, g->pdf_h_pt, 4);
    dp_jw_end(w);
}

void dp__out_stamp_json(struct dp_jw *w, const struct ex_stamp *s) {
    dp_jw_key(w, "stamp");
    dp_jw_obj(w);
    dp_jw_key(w, "docproc_version");
    dp_jw_str(w, s->docproc_version);
    dp_jw_key(w, "model");
    dp_jw_obj(w);
    dp_jw_key(w, "id");
    dp_jw_str(w, s->model_id);
    dp_jw_key(w, "sha256");
    dp_jw_str(w, s->model_hash);
    dp_jw_end(w);
    dp_jw_key(w, "schema");
    dp_jw_obj(w);
    dp_jw_key(w, "name");
    dp_jw_str(w, s->schema_name);
    dp_jw_key(w, "version");
    dp_jw_str(w, s->schema_version);
    dp_jw_key(w, "sha256");
    dp_jw_str(w, s->schema_hash);
    dp_jw_end(w);
    dp_jw_key(w, "prompt");
    dp_jw_str(w, s->prompt);
    dp_jw_key(w, "render");
    dp_jw_obj(w);
    dp_jw_key(w, "dpi");
    dp_jw_int(w, s->dpi);
    dp_jw_key(w, "max_pixels");
    dp_jw_int(w, s->max_pixels);
    dp_jw_end(w);
    dp_jw_key(w, "max_new_tokens");
    dp_jw_int(w, s->max_new_tokens);
    dp_jw_key(w, "seed");
    dp_jw_int(w, (int64_t)s->seed);
    dp_jw_key(w, "threads");
    dp_jw_int(w, s->threads);
    dp_jw_key(w, "created");
    dp_jw_str(w, s->created);
    dp_jw_end(w);
}

enum dp_status dp_out_json(const struct ex_doc *doc, struct dp_buf *out, struct dp_err *err) {
    struct dp_jw w;
    dp_jw_init(&w, out, true);
    dp_jw_obj(&w);
    dp_jw_key(&w, "format");
    dp_jw_str(&w, DP_RESULT_FORMAT);
    dp_jw_key(&w, "source");
    dp_jw_obj(&w);
    dp_jw_key(&w, "path");
    dp_jw_str(&w, doc->source);
    dp_jw_key(&w, "sha256");
    dp_jw_str(&w, doc->source_sha256);
    dp_jw_key(&w, "pages");
    dp_jw_int(&w, (int64_t)doc->n_pages);
    dp_jw_end(&w);
    dp__out_stamp_json(&w, &doc->stamp);
    dp_jw_key(&w, "truncated");
    dp_jw_bool(&w, doc->truncated);
    /* validation: the document-level warnings that make it invalid, as "path: message" */
    dp_jw_key(&w, "valid");
    dp_jw_bool(&w, ex_doc_valid(doc, NULL));
    dp_jw_key(&w, "invalid_reasons");
    dp_jw_arr(&w);
    for (size_t i = 0; i < doc->n_warnings; i++) {
        const struct ex_warning *x = &doc->warnings[i];
        if (!ex_warn_is_validation(x->code))
            continue;
        char line[REASON_MAX]; /* one line: no allocation, a longer reason is cut */
        snprintf(line, sizeof line, "%s%s%s", x->path ? x->path : "", x->path ? ": " : "",
                 x->msg ? x->msg : "");
        dp_jw_str(&w, line);
    }
    dp_jw_end(&w);
    dp_jw_key(&w, "needs_review");
    dp_jw_bool(&w, doc->needs_review);
    dp_jw_key(&w, "review_reasons");
    dp_jw_arr(&w);
    for (size_t i = 0; i < doc->n_review_reasons; i++)
        dp_jw_str(&w, doc->review_reasons[i]);
    dp_jw_end(&w);
    fields(&w, doc, doc->fields, doc->n_fields);
    warnings(&w, doc->warnings, doc->n_warnings);
    dp_jw_key(&w, "pages");
    dp_jw_arr(&w);
    for (size_t i = 0; i < doc->n_pages; i++) {
        const struct ex_page *p = doc->pages[i];
        dp_jw_obj(&w);
        dp_jw_key(&w, "number");
        dp_jw_int(&w, p->number);
        dp_jw_key(&w, "answer");
        dp_jw_str(&w, ex_source_kind_name(p->source));
        dp_jw_key(&w, "truncated");
        dp_jw_bool(&w, p->truncated);
        dp_jw_key(&w, "stop");
        dp_jw_str(&w, ex_stop_name(p->stop));
        if (p->constrained) { /* --constrain: what the automaton appended without sampling */
            dp_jw_key(&w, "decoding");
            dp_jw_obj(&w);
            dp_jw_key(&w, "constrained");
            dp_jw_bool(&w, true);
            dp_jw_key(&w, "forced_ids");
            dp_jw_int(&w, p->n_forced);
            dp_jw_key(&w, "jumps");
            dp_jw_int(&w, p->n_jumps);
            dp_jw_end(&w);
        }
        dp__out_geom_json(&w, &p->geom);
        dp_jw_key(&w, "blocks");
        dp_jw_arr(&w);
        for (size_t k = 0; k < p->n_blocks; k++)
            block(&w, doc, &p->blocks[k]);
        dp_jw_end(&w);
        fields(&w, doc, p->fields, p->n_fields);
        dp_jw_key(&w, "tables");
        dp_jw_arr(&w);
        for (size_t k = 0; k < p->n_tables; k++)
            table(&w, doc, &p->tables[k]);
        dp_jw_end(&w);
        dp_jw_key(&w, "charts");
        dp_jw_arr(&w);
        for (size_t k = 0; k < p->n_charts; k++)
            chart(&w, doc, &p->charts[k]);
        dp_jw_end(&w);
        warnings(&w, p->warnings, p->n_warnings);
        dp_jw_end(&w);
    }
    dp_jw_end(&w);
    dp_jw_end(&w);
    dp_buf_putc(out, '\n');
    enum dp_status st = dp_jw_status(&w);
    if (st == DP_OK)
        st = out->status;
    if (st != DP_OK)
        return dp_err_set(err, st, "%s: writing JSON: %s", doc->source, dp_status_str(st));
    return DP_OK;
}
