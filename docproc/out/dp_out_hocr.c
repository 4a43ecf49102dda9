/* hOCR 1.2 writer (dp_out_archive.h): well-formed XHTML with ocr_page (image, bbox, ppageno),
 * ocr_carea / ocr_par per region, ocr_line and ocrx_word with bbox and x_wconf (0-100, where
 * token probabilities are known). Word boxes split from the line box carry the engine-specific
 * property "x_bbox_estimated 1" (hOCR reserves x_ for such properties). Every bbox lies inside
 * its parent's (boxes are clamped and rounded outward consistently). Thread-safe per call. */
#include "dp_archive_impl.h"
#include "dp_out.h"
#include "dp_xw.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define TITLE_MAX 4200

static void box_title(struct dp_xw *x, const struct dp_ibox *b, const char *extra) {
    dp_xw_attrf(x, "title", "bbox %ld %ld %ld %ld%s", b->x1, b->y1, b->x2, b->y2,
                extra ? extra : "");
}

static void words(struct dp_xw *x, const struct ex_lines *L, const struct ex_line *l,
                  const char *lid) {
    for (size_t w = 0; w < l->n_words; w++) {
        const struct ex_word *wd = &l->words[w];
        struct dp_ibox b = dp__archive_ibox(&wd->box, L->width, L->height);
        char extra[64] = "; x_bbox_estimated 1";
        if (wd->conf >= 0)
            snprintf(extra, sizeof extra, "; x_wconf %ld; x_bbox_estimated 1",
                     lround(wd->conf * 100));
        dp_xw_start(x, "span");
        dp_xw_attr(x, "class", "ocrx_word");
        dp_xw_attrf(x, "id", "word_%s_%zu", lid, w + 1);
        box_title(x, &b, extra);
        dp_xw_text(x, wd->text);
        dp_xw_end(x);
        if (w + 1 < l->n_words)
            dp_xw_text(x, " ");
    }
}

static void page(struct dp_xw *x, const struct ex_doc *doc, const struct ex_lines *L) {
    char title[TITLE_MAX];
    /* image "path" needs its quotes and backslashes escaped as the hOCR spec asks */
    char img[2048];
    size_t o = 0;
    for (const char *p = doc->source ? doc->source : ""; *p && o + 3 < sizeof img; p++) {
        if (*p == '"' || *p == '\\')
            img[o++] = '\\';
        img[o++] = *p;
    }
    img[o] = '\0';
    snprintf(title, sizeof title, "image \"%s\"; bbox 0 0 %d %d; ppageno %d", img, L->width,
             L->height, L->page - 1);
    dp_xw_start(x, "div");
    dp_xw_attr(x, "class", "ocr_page");
    dp_xw_attrf(x, "id", "page_%d", L->page);
    dp_xw_attr(x, "title", title);
    for (size_t r = 0; r < L->n_regions; r++) {
        const struct ex_region *g = &L->regions[r];
        if (!g->has_box)
            continue;
        struct dp_ibox rb = dp__archive_ibox(&g->box, L->width, L->height);
        dp_xw_start(x, "div");
        dp_xw_attr(x, "class", "ocr_carea");
        dp_xw_attrf(x, "id", "block_%d_%zu", L->page, r + 1);
        box_title(x, &rb, NULL);
        dp_xw_start(x, "p");
        dp_xw_attr(x, "class", "ocr_par");
        dp_xw_attrf(x, "id", "par_%d_%zu", L->page, r + 1);
        box_title(x, &rb, NULL);
        for (size_t i = 0; i < g->n_lines; i++) {
            const struct ex_line *l = &g->lines[i];
            struct dp_ibox lb = dp__archive_ibox(&l->box, L->width, L->height);
            char lid[64];
            snprintf(lid, sizeof lid, "line_%d_%zu_%zu", L->page, r + 1, i + 1);
            dp_xw_start(x, "span");
            dp_xw_attr(x, "class", "ocr_line");
            dp_xw_attr(x, "id", lid);
            box_title(x, &lb, l->box_estimated ? "; x_bbox_estimated 1" : NULL);
            words(x, L, l, lid + strlen("line_"));
            dp_xw_end(x);
        }
        dp_xw_end(x);
        dp_xw_end(x);
    }
    dp_xw_end(x);
}

enum dp_status dp_out_hocr(const struct ex_doc *doc, const struct ex_tokconf *conf,
                           struct dp_buf *out, struct dp_err *err) {
    struct dp_xw x;
    if (dp_xw_open(&x, "html", "-//W3C//DTD XHTML 1.0 Transitional//EN",
                   "http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd") != DP_OK)
        return dp_err_set(err, DP_ERR_NOMEM, "%s: cannot create the XML writer", doc->source);
    dp_xw_start(&x, "html");
    dp_xw_attr(&x, "xmlns", "http://www.w3.org/1999/xhtml");
    dp_xw_start(&x, "head");
    dp_xw_text_el(&x, "title", doc->source);
    dp_xw_start(&x, "meta");
    dp_xw_attr(&x, "http-equiv", "Content-Type");
    dp_xw_attr(&x, "content", "text/html;charset=utf-8");
    dp_xw_end(&x);
    dp_xw_start(&x, "meta");
    dp_xw_attr(&x, "name", "ocr-system");
    dp_xw_attrf(&x, "content", "docproc %s", doc->stamp.docproc_version
                                               ? doc->stamp.docproc_version : "");
    dp_xw_end(&x);
    dp_xw_start(&x, "meta");
    dp_xw_attr(&x, "name", "ocr-capabilities");
    dp_xw_attr(&x, "content", "ocr_page ocr_carea ocr_par ocr_line ocrx_word ocrp_wconf");
    dp_xw_end(&x);
    dp_xw_end(&x);
    dp_xw_start(&x, "body");
    enum dp_status st = DP_OK;
    for (size_t i = 0; i < doc->n_pages && st == DP_OK; i++) {
        struct ex_lines *L = NULL;
        st = ex_lines_build(&L, doc->pages[i], dp__archive_conf(conf, i), err);
        if (st == DP_OK)
            page(&x, doc, L);
        ex_lines_free(L);
    }
    dp_xw_end(&x);
    dp_xw_end(&x);
    enum dp_status xs = dp_xw_finish(&x, out);
    if (st != DP_OK)
        return st;
    if (xs != DP_OK)
        return dp_err_set(err, xs, "%s: writing hOCR: %s", doc->source, dp_status_str(xs));
    return DP_OK;
}
