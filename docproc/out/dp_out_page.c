/* PAGE XML 2019-07-15 writer (dp_out_archive.h), one page per file: Metadata, Page (image file
 * and size), ReadingOrder, TextRegion/TextLine/Word each with Coords (rectangles in page pixels)
 * and TextEquiv. Word coordinates estimated from the line box are marked with
 * custom="bbox {estimated:true;}" (PAGE's custom attribute convention); tables are TextRegions
 * with custom="structure {type:table;}", one line per row. Thread-safe per call. */
#include "dp_archive_impl.h"
#include "dp_out.h"
#include "dp_xw.h"

#include <stdio.h>
#include <string.h>

#define CONF_DECIMALS 3
#define TIME_BYTES 32

static void coords(struct dp_xw *x, const struct dp_ibox *b) {
    dp_xw_start(x, "Coords");
    dp_xw_attrf(x, "points", "%ld,%ld %ld,%ld %ld,%ld %ld,%ld", b->x1, b->y1, b->x2, b->y1, b->x2,
                b->y2, b->x1, b->y2);
    dp_xw_end(x);
}

static void equiv(struct dp_xw *x, const char *text, double conf) {
    dp_xw_start(x, "TextEquiv");
    if (conf >= 0)
        dp_xw_attr_num(x, "conf", conf, CONF_DECIMALS);
    dp_xw_text_el(x, "Unicode", text);
    dp_xw_end(x);
}

static const char *region_type(enum ex_block_kind k) {
    switch (k) {
    case EX_BLOCK_HEADING: return "heading";
    case EX_BLOCK_CAPTION: return "caption";
    case EX_BLOCK_TEXT:
    case EX_BLOCK_LIST_ITEM: return "paragraph";
    default: return "other";
    }
}

static void region(struct dp_xw *x, const struct ex_lines *L, const struct ex_region *g,
                   size_t r) {
    struct dp_ibox rb = dp__archive_ibox(&g->box, L->width, L->height);
    dp_xw_start(x, "TextRegion");
    dp_xw_attrf(x, "id", "r%zu", r + 1);
    dp_xw_attr(x, "type", region_type(g->kind));
    if (g->kind == EX_BLOCK_TABLE)
        dp_xw_attr(x, "custom", "structure {type:table;}");
    coords(x, &rb);
    struct dp_buf all;
    dp_buf_init(&all, (size_t)1 << 30);
    for (size_t i = 0; i < g->n_lines; i++) {
        const struct ex_line *l = &g->lines[i];
        struct dp_ibox lb = dp__archive_ibox(&l->box, L->width, L->height);
        dp_xw_start(x, "TextLine");
        dp_xw_attrf(x, "id", "r%zu_l%zu", r + 1, i + 1);
        if (l->box_estimated)
            dp_xw_attr(x, "custom", "bbox {estimated:true;}");
        coords(x, &lb);
        for (size_t w = 0; w < l->n_words; w++) {
            struct dp_ibox wb = dp__archive_ibox(&l->words[w].box, L->width, L->height);
            dp_xw_start(x, "Word");
            dp_xw_attrf(x, "id", "r%zu_l%zu_w%zu", r + 1, i + 1, w + 1);
            dp_xw_attr(x, "custom", "bbox {estimated:true;}");
            coords(x, &wb);
            equiv(x, l->words[w].text, l->words[w].conf);
            dp_xw_end(x);
        }
        equiv(x, l->text, l->conf);
        dp_xw_end(x);
        if (i)
            dp_buf_putc(&all, '\n');
        dp_buf_puts(&all, l->text);
    }
    if (all.status != DP_OK && x->st == DP_OK)
        x->st = all.status;
    equiv(x, all.data ? all.data : "", -1);
    dp_buf_free(&all);
    dp_xw_end(x);
}

enum dp_status dp_out_page_xml(const struct ex_doc *doc, const struct ex_page *pg,
                               const struct ex_tokconf *conf, struct dp_buf *out,
                               struct dp_err *err) {
    struct ex_lines *L = NULL;
    enum dp_status st = ex_lines_build(&L, pg, conf, err);
    if (st != DP_OK)
        return st;
    struct dp_xw x;
    if (dp_xw_open(&x, NULL, NULL, NULL) != DP_OK) {
        ex_lines_free(L);
        return dp_err_set(err, DP_ERR_NOMEM, "%s: cannot create the XML writer", doc->source);
    }
    char now[TIME_BYTES];
    dp__archive_time(now, sizeof now);
    dp_xw_start(&x, "PcGts");
    dp_xw_attr(&x, "xmlns", DP_PAGE_NS);
    dp_xw_attr(&x, "xmlns:xsi", "http://www.w3.org/2001/XMLSchema-instance");
    dp_xw_attr(&x, "xsi:schemaLocation", DP_PAGE_NS " " DP_PAGE_XSD);
    dp_xw_start(&x, "Metadata");
    char creator[256];
    snprintf(creator, sizeof creator, "docproc %s; model %s",
             doc->stamp.docproc_version ? doc->stamp.docproc_version : "",
             doc->stamp.model_id ? doc->stamp.model_id : "");
    dp_xw_text_el(&x, "Creator", creator);
    dp_xw_text_el(&x, "Created", now);
    dp_xw_text_el(&x, "LastChange", now);
    dp_xw_end(&x);
    dp_xw_start(&x, "Page");
    dp_xw_attr(&x, "imageFilename", doc->source ? doc->source : "");
    dp_xw_attrf(&x, "imageWidth", "%d", L->width);
    dp_xw_attrf(&x, "imageHeight", "%d", L->height);
    size_t n_boxed = 0;
    for (size_t r = 0; r < L->n_regions; r++)
        n_boxed += L->regions[r].has_box;
    if (n_boxed) {
        dp_xw_start(&x, "ReadingOrder");
        dp_xw_start(&x, "OrderedGroup");
        dp_xw_attr(&x, "id", "ro1");
        dp_xw_attr(&x, "caption", "reading order of the model's answer");
        size_t k = 0;
        for (size_t r = 0; r < L->n_regions; r++) {
            if (!L->regions[r].has_box)
                continue;
            dp_xw_start(&x, "RegionRefIndexed");
            dp_xw_attrf(&x, "index", "%zu", k++);
            dp_xw_attrf(&x, "regionRef", "r%zu", r + 1);
            dp_xw_end(&x);
        }
        dp_xw_end(&x);
        dp_xw_end(&x);
    }
    for (size_t r = 0; r < L->n_regions; r++)
        if (L->regions[r].has_box)
            region(&x, L, &L->regions[r], r);
    dp_xw_end(&x);
    dp_xw_end(&x);
    ex_lines_free(L);
    enum dp_status xs = dp_xw_finish(&x, out);
    if (xs != DP_OK)
        return dp_err_set(err, xs, "%s: page %d: writing PAGE XML: %s", doc->source, pg->number,
                          dp_status_str(xs));
    return DP_OK;
}
