/* ALTO 4.4 writer (dp_out_archive.h): Description (MeasurementUnit pixel, sourceImageInformation,
 * Processing naming docproc, its version, the model and its hash), then per page
 * Page/PrintSpace/TextBlock/TextLine/String/SP with positions in page pixels and WC where token
 * probabilities are known. Word positions are estimated (split from the line box); the
 * Processing step says so. Validated against the official XSD in tests/archive.
 * Thread-safe per call. */
#include "dp_archive_impl.h"
#include "dp_out.h"
#include "dp_xw.h"

#include <stdio.h>
#include <string.h>

#define POS_DECIMALS 0
#define WC_DECIMALS 3

static void pos(struct dp_xw *x, const struct dp_ibox *b) {
    dp_xw_attrf(x, "HPOS", "%ld", b->x1);
    dp_xw_attrf(x, "VPOS", "%ld", b->y1);
    dp_xw_attrf(x, "WIDTH", "%ld", b->x2 - b->x1);
    dp_xw_attrf(x, "HEIGHT", "%ld", b->y2 - b->y1);
}

static void description(struct dp_xw *x, const struct ex_doc *doc) {
    const struct ex_stamp *s = &doc->stamp;
    dp_xw_start(x, "Description");
    dp_xw_text_el(x, "MeasurementUnit", "pixel");
    dp_xw_start(x, "sourceImageInformation");
    dp_xw_text_el(x, "fileName", doc->source);
    dp_xw_end(x);
    dp_xw_start(x, "Processing");
    dp_xw_attr(x, "ID", "docproc");
    dp_xw_text_el(x, "processingCategory", "contentGeneration");
    dp_xw_text_el(x, "processingStepDescription",
                  "text and line positions read by a vision-language model; word positions "
                  "estimated by splitting each line box in proportion to its characters");
    char settings[2048];
    snprintf(settings, sizeof settings, "model=%s; model-sha256=%s; schema=%s; schema-sha256=%s",
             s->model_id ? s->model_id : "", s->model_hash ? s->model_hash : "",
             s->schema_name ? s->schema_name : "", s->schema_hash ? s->schema_hash : "");
    dp_xw_text_el(x, "processingStepSettings", settings);
    dp_xw_start(x, "processingSoftware");
    dp_xw_text_el(x, "softwareName", "docproc");
    dp_xw_text_el(x, "softwareVersion", s->docproc_version);
    dp_xw_end(x);
    dp_xw_end(x);
    dp_xw_end(x);
}

static void line(struct dp_xw *x, const struct ex_lines *L, const struct ex_line *l,
                 const char *id) {
    struct dp_ibox lb = dp__archive_ibox(&l->box, L->width, L->height);
    dp_xw_start(x, "TextLine");
    dp_xw_attr(x, "ID", id);
    pos(x, &lb);
    for (size_t w = 0; w < l->n_words; w++) {
        const struct ex_word *wd = &l->words[w];
        struct dp_ibox wb = dp__archive_ibox(&wd->box, L->width, L->height);
        if (w) { /* the gap between the previous word and this one */
            struct dp_ibox pb = dp__archive_ibox(&l->words[w - 1].box, L->width, L->height);
            dp_xw_start(x, "SP");
            dp_xw_attrf(x, "WIDTH", "%ld", wb.x1 > pb.x2 ? wb.x1 - pb.x2 : 0);
            dp_xw_attrf(x, "HPOS", "%ld", pb.x2);
            dp_xw_attrf(x, "VPOS", "%ld", lb.y1);
            dp_xw_end(x);
        }
        dp_xw_start(x, "String");
        dp_xw_attrf(x, "ID", "%s_w%zu", id, w + 1);
        pos(x, &wb);
        dp_xw_attr(x, "CONTENT", wd->text);
        if (wd->conf >= 0)
            dp_xw_attr_num(x, "WC", wd->conf, WC_DECIMALS);
        dp_xw_end(x);
    }
    dp_xw_end(x);
}

static void page(struct dp_xw *x, const struct ex_lines *L) {
    dp_xw_start(x, "Page");
    dp_xw_attrf(x, "ID", "p%d", L->page);
    dp_xw_attrf(x, "PHYSICAL_IMG_NR", "%d", L->page);
    dp_xw_attrf(x, "WIDTH", "%d", L->width);
    dp_xw_attrf(x, "HEIGHT", "%d", L->height);
    dp_xw_start(x, "PrintSpace");
    struct ex_box all = {0, 0, L->width, L->height};
    struct dp_ibox pb = dp__archive_ibox(&all, L->width, L->height);
    pos(x, &pb);
    for (size_t r = 0; r < L->n_regions; r++) {
        const struct ex_region *g = &L->regions[r];
        if (!g->has_box)
            continue; /* ALTO positions everything: unboxed text is in md/txt only */
        struct dp_ibox rb = dp__archive_ibox(&g->box, L->width, L->height);
        char id[64];
        dp_xw_start(x, "TextBlock");
        snprintf(id, sizeof id, "p%d_b%zu", L->page, r + 1);
        dp_xw_attr(x, "ID", id);
        pos(x, &rb);
        for (size_t i = 0; i < g->n_lines; i++) {
            char lid[96];
            snprintf(lid, sizeof lid, "%s_l%zu", id, i + 1);
            line(x, L, &g->lines[i], lid);
        }
        dp_xw_end(x);
    }
    dp_xw_end(x);
    dp_xw_end(x);
}

enum dp_status dp_out_alto(const struct ex_doc *doc, const struct ex_tokconf *conf,
                           struct dp_buf *out, struct dp_err *err) {
    struct dp_xw x;
    if (dp_xw_open(&x, NULL, NULL, NULL) != DP_OK)
        return dp_err_set(err, DP_ERR_NOMEM, "%s: cannot create the XML writer", doc->source);
    dp_xw_start(&x, "alto");
    dp_xw_attr(&x, "xmlns", DP_ALTO_NS);
    dp_xw_attr(&x, "xmlns:xlink", "http://www.w3.org/1999/xlink");
    dp_xw_attr(&x, "xmlns:xsi", "http://www.w3.org/2001/XMLSchema-instance");
    dp_xw_attr(&x, "xsi:schemaLocation", DP_ALTO_NS " " DP_ALTO_XSD);
    description(&x, doc);
    dp_xw_start(&x, "Layout");
    enum dp_status st = DP_OK;
    for (size_t i = 0; i < doc->n_pages && st == DP_OK; i++) {
        struct ex_lines *L = NULL;
        st = ex_lines_build(&L, doc->pages[i], dp__archive_conf(conf, i), err);
        if (st == DP_OK)
            page(&x, L);
        ex_lines_free(L);
    }
    dp_xw_end(&x);
    dp_xw_end(&x);
    enum dp_status xs = dp_xw_finish(&x, out);
    if (st != DP_OK)
        return st;
    if (xs != DP_OK)
        return dp_err_set(err, xs, "%s: writing ALTO: %s", doc->source, dp_status_str(xs));
    return DP_OK;
}
