/* The result XML of a document (dp_out.h) through libxml2's xmlTextWriter, valid against
 * schemas/docproc-result.xsd; the same content as the JSON (see docs/extraction.md). Every
 * xmlTextWriter call goes through a sticky-error wrapper: after the first failure (-1) the rest
 * are skipped and the writer reports DP_ERR_IO once. Thread-safe per call (libxml2 initialised). */
#include "dp_out.h"
#include "dp_out_impl.h"
#include "dp_alloc.h"

#include <glib.h>
#include <libxml/xmlwriter.h>
#include <stdio.h>
#include <string.h>

#define XML_NUM_MAX 48
#define BOX_DECIMALS 2

struct xw {
    xmlTextWriterPtr w;
    enum dp_status st;
};

#define X(s) ((const xmlChar *)(s))

static void xw_check(struct xw *x, int rc) {
    if (rc < 0 && x->st == DP_OK)
        x->st = DP_ERR_IO;
}

static void start(struct xw *x, const char *name) {
    if (x->st == DP_OK)
        xw_check(x, xmlTextWriterStartElement(x->w, X(name)));
}

static void end(struct xw *x) {
    if (x->st == DP_OK)
        xw_check(x, xmlTextWriterEndElement(x->w));
}

static void attr(struct xw *x, const char *name, const char *v) {
    if (x->st == DP_OK && v)
        xw_check(x, xmlTextWriterWriteAttribute(x->w, X(name), X(v)));
}

static void attr_int(struct xw *x, const char *name, long long v) {
    char b[XML_NUM_MAX];
    snprintf(b, sizeof b, "%lld", v);
    attr(x, name, b);
}

static void attr_num(struct xw *x, const char *name, double v, int decimals) {
    char b[XML_NUM_MAX], fmt[16];
    snprintf(fmt, sizeof fmt, "%%.%df", decimals);
    g_ascii_formatd(b, sizeof b, fmt, v);
    attr(x, name, b);
}

static void attr_bool(struct xw *x, const char *name, bool v) {
    attr(x, name, v ? "true" : "false");
}

static void text_el(struct xw *x, const char *name, const char *text) {
    if (!text)
        return;
    start(x, name);
    if (x->st == DP_OK)
        xw_check(x, xmlTextWriterWriteString(x->w, X(text)));
    end(x);
}

static void bbox(struct xw *x, const char *space, const struct ex_box *b) {
    start(x, "bbox");
    attr(x, "space", space);
    attr_num(x, "x1", b->x1, BOX_DECIMALS);
    attr_num(x, "y1", b->y1, BOX_DECIMALS);
    attr_num(x, "x2", b->x2, BOX_DECIMALS);
    attr_num(x, "y2", b->y2, BOX_DECIMALS);
    end(x);
}

static void prov(struct xw *x, const struct ex_doc *doc, const struct ex_prov *p) {
    start(x, "provenance");
    attr_int(x, "page", p->page);
    if (p->span_len) {
        attr_int(x, "span-offset", (long long)p->span_off);
        attr_int(x, "span-length", (long long)p->span_len);
    }
    if (p->has_box) {
        bbox(x, "model", &p->model);
        bbox(x, "page-px", &p->page_px);
        if (p->has_pdf)
            bbox(x, "pdf-pt", &p->pdf_pt);
    }
    char *t = NULL;
    if (dp__out_span_text(doc, p, &t) != DP_OK && x->st == DP_OK)
        x->st = DP_ERR_NOMEM;
    text_el(x, "source-text", t);
    dp_free(t);
    end(x);
}

#define CONF_DECIMALS 4

static void field(struct xw *x, const struct ex_doc *doc, const struct ex_field *f) {
    start(x, "field");
    attr(x, "name", f->name);
    if (f->key && strcmp(f->key, f->name))
        attr(x, "key", f->key);
    attr(x, "type", ex_vtype_name(f->type));
    attr_bool(x, "in-schema", f->in_schema);
    if (f->currency[0])
        attr(x, "currency", f->currency);
    if (f->ambiguous) {
        attr_bool(x, "ambiguous", true);
        attr(x, "alternative", f->alt);
    }
    if (f->has_conf) /* --constrain (docs/constrain.md) */
        attr_num(x, "confidence", f->conf, CONF_DECIMALS);
    if (f->value_truncated)
        attr_bool(x, "value-truncated", true);
    if (f->type != EX_V_OBJECT && f->type != EX_V_ARRAY && f->type != EX_V_NULL) {
        char b[XML_NUM_MAX];
        const char *v = f->value;
        if (f->type == EX_V_NUMBER || f->type == EX_V_INTEGER || f->type == EX_V_AMOUNT ||
            f->type == EX_V_PERCENT) {
            g_ascii_formatd(b, sizeof b, "%.15g", f->num);
            v = b;
        } else if (f->type == EX_V_BOOL) {
            v = f->boolean ? "true" : "false";
        }
        text_el(x, "value", v ? v : "");
    }
    text_el(x, "raw", f->raw);
    prov(x, doc, &f->prov);
    for (size_t i = 0; i < f->n_children; i++)
        field(x, doc, &f->children[i]);
    end(x);
}

static void fields(struct xw *x, const struct ex_doc *doc, const struct ex_field *f, size_t n) {
    start(x, "fields");
    for (size_t i = 0; i < n; i++)
        field(x, doc, &f[i]);
    end(x);
}

static void warnings(struct xw *x, const struct ex_warning *w, size_t n) {
    start(x, "warnings");
    for (size_t i = 0; i < n; i++) {
        start(x, "warning");
        attr(x, "code", ex_warn_code_name(w[i].code));
        attr_int(x, "page", w[i].page);
        attr(x, "path", w[i].path);
        if (w[i].span_len) {
            attr_int(x, "span-offset", (long long)w[i].span_off);
            attr_int(x, "span-length", (long long)w[i].span_len);
        }
        if (x->st == DP_OK)
            xw_check(x, xmlTextWriterWriteString(x->w, X(w[i].msg)));
        end(x);
    }
    end(x);
}

static void page(struct xw *x, const struct ex_doc *doc, const struct ex_page *p) {
    start(x, "page");
    attr_int(x, "number", p->number);
    attr(x, "answer", ex_source_kind_name(p->source));
    attr_bool(x, "truncated", p->truncated);
    attr(x, "stop", ex_stop_name(p->stop));
    start(x, "geometry");
    attr_int(x, "model-width", p->geom.model_w);
    attr_int(x, "model-height", p->geom.model_h);
    attr_int(x, "page-width", p->geom.page_w);
    attr_int(x, "page-height", p->geom.page_h);
    attr_num(x, "pdf-width-pt", p->geom.pdf_w_pt, 4);
    attr_num(x, "pdf-height-pt", p->geom.pdf_h_pt, 4);
    end(x);
    start(x, "blocks");
    for (size_t i = 0; i < p->n_blocks; i++) {
        const struct ex_block *b = &p->blocks[i];
        start(x, "block");
        attr(x, "kind", ex_block_kind_name(b->kind));
        attr(x, "tag", b->tag);
        attr(x, "class", b->cls);
        if (b->level)
            attr_int(x, "level", b->level);
        if (b->table >= 0)
            attr_int(x, "table", b->table);
        text_el(x, "text", b->text);
        prov(x, doc, &b->prov);
        end(x);
    }
    end(x);
    fields(x, doc, p->fields, p->n_fields);
    start(x, "tables");
    for (size_t i = 0; i < p->n_tables; i++) {
        const struct ex_table *t = &p->tables[i];
        start(x, "table");
        attr_int(x, "rows", t->n_rows);
        attr_int(x, "cols", t->n_cols);
        text_el(x, "caption", t->caption);
        prov(x, doc, &t->prov);
        for (int r = 0; r < t->n_rows; r++)
            for (int c = 0; c < t->n_cols; c++) {
                const struct ex_cell *e = &t->cells[(size_t)r * (size_t)t->n_cols + (size_t)c];
                if (e->orow != r || e->ocol != c)
                    continue;
                start(x, "cell");
                attr_int(x, "row", r);
                attr_int(x, "col", c);
                attr_int(x, "rowspan", e->rowspan);
                attr_int(x, "colspan", e->colspan);
                attr_bool(x, "header", e->header);
                if (e->has_conf) /* from the cell's tokens (docs/constrain.md) */
                    attr_num(x, "confidence", e->conf, CONF_DECIMALS);
                text_el(x, "text", e->text ? e->text : "");
                prov(x, doc, &e->prov);
                end(x);
            }
        end(x);
    }
    end(x);
    start(x, "charts");
    for (size_t i = 0; i < p->n_charts; i++) {
        const struct ex_chart *c = &p->charts[i];
        start(x, "chart");
        attr(x, "type", c->type);
        attr(x, "title", c->title);
        attr(x, "x-label", c->x_label);
        attr(x, "y-label", c->y_label);
        prov(x, doc, &c->prov);
        for (size_t s = 0; s < c->n_series; s++) {
            start(x, "series");
            attr(x, "name", c->series[s].name);
            for (size_t k = 0; k < c->series[s].n_points; k++) {
                const struct ex_point *pt = &c->series[s].points[k];
                start(x, "point");
                attr(x, "x", pt->x ? pt->x : "");
                if (pt->has_y) {
                    char b[XML_NUM_MAX];
                    g_ascii_formatd(b, sizeof b, "%.15g", pt->y);
                    attr(x, "y", b);
                }
                attr(x, "y-raw", pt->y_raw);
                end(x);
            }
            end(x);
        }
        end(x);
    }
    end(x);
    warnings(x, p->warnings, p->n_warnings);
    end(x);
}

static void stamp(struct xw *x, const struct ex_stamp *s) {
    start(x, "stamp");
    attr(x, "docproc-version", s->docproc_version);
    attr(x, "model-id", s->model_id);
    attr(x, "model-sha256", s->model_hash);
    attr(x, "schema-name", s->schema_name);
    attr(x, "schema-version", s->schema_version);
    attr(x, "schema-sha256", s->schema_hash);
    attr_int(x, "dpi", s->dpi);
    attr_int(x, "max-pixels", s->max_pixels);
    attr_int(x, "max-new-tokens", s->max_new_tokens);
    char seed[XML_NUM_MAX];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)s->seed);
    attr(x, "seed", seed);
    attr_int(x, "threads", s->threads);
    attr(x, "created", s->created);
    text_el(x, "prompt", s->prompt);
    end(x);
}

enum dp_status dp_out_xml(const struct ex_doc *doc, struct dp_buf *out, struct dp_err *err) {
    ex_xml_init();
    xmlBufferPtr xb = xmlBufferCreate();
    struct xw x = {.w = xb ? xmlNewTextWriterMemory(xb, 0) : NULL};
    if (!x.w) {
        if (xb)
            xmlBufferFree(xb);
        return dp_err_set(err, DP_ERR_NOMEM, "%s: cannot create the XML writer", doc->source);
    }
    xw_check(&x, xmlTextWriterSetIndent(x.w, 1));
    xw_check(&x, xmlTextWriterSetIndentString(x.w, X("  ")));
    xw_check(&x, xmlTextWriterStartDocument(x.w, "1.0", "UTF-8", NULL));
    start(&x, "docproc-result");
    attr(&x, "format", DP_RESULT_FORMAT);
    attr_bool(&x, "truncated", doc->truncated);
    attr_bool(&x, "valid", ex_doc_valid(doc, NULL));
    start(&x, "source");
    attr(&x, "path", doc->source);
    attr(&x, "sha256", doc->source_sha256);
    attr_int(&x, "pages", (long long)doc->n_pages);
    end(&x);
    stamp(&x, &doc->stamp);
    fields(&x, doc, doc->fields, doc->n_fields);
    warnings(&x, doc->warnings, doc->n_warnings);
    start(&x, "pages");
    for (size_t i = 0; i < doc->n_pages; i++)
        page(&x, doc, doc->pages[i]);
    end(&x);
    end(&x);
    if (x.st == DP_OK)
        xw_check(&x, xmlTextWriterEndDocument(x.w));
    xmlFreeTextWriter(x.w); /* flushes into xb */
    if (x.st == DP_OK)
        dp_buf_append(out, xmlBufferContent(xb), (size_t)xmlBufferLength(xb));
    xmlBufferFree(xb);
    enum dp_status st = x.st != DP_OK ? x.st : out->status;
    if (st != DP_OK)
        return dp_err_set(err, st, "%s: writing XML: %s", doc->source, dp_status_str(st));
    return DP_OK;
}
