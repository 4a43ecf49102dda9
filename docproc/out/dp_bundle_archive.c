/* The archive formats of one document inside a bundle (dp__bundle_add_archive): ALTO, hOCR,
 * PAGE XML per page, Markdown and text under <stem>/. The searchable PDF is added by the batch,
 * which has the page images. Not thread-safe per bundle (as dp_bundle). */
#include "dp_archive_impl.h"
#include "dp_limits.h"
#include "dp_out.h"
#include "dp_out_impl.h"

#include <stdio.h>

static enum dp_status put(struct dp_bundle *b, const char *stem, const char *file,
                          struct dp_buf *buf, struct dp_err *err) {
    char name[DP_OUT_MAX_STEM + 64];
    snprintf(name, sizeof name, "%s/%s", stem, file);
    if (buf->status != DP_OK)
        return dp_err_set(err, buf->status, "%s: %s", name, dp_status_str(buf->status));
    enum dp_status st = dp_bundle_add_file(b, name, buf->data ? buf->data : "", buf->len, err);
    dp_buf_reset(buf);
    return st;
}

enum dp_status dp__bundle_add_archive(struct dp_bundle *b, const struct ex_doc *doc,
                                      const char *stem, unsigned formats, struct dp_err *err) {
    struct dp_buf buf;
    dp_buf_init(&buf, DP_MAX_TEXT_BYTES);
    enum dp_status st = DP_OK;
    if (formats & DP_OUT_ALTO) {
        st = dp_out_alto(doc, doc->tokconf, &buf, err);
        if (st == DP_OK)
            st = put(b, stem, "result.alto.xml", &buf, err);
    }
    if (st == DP_OK && (formats & DP_OUT_HOCR)) {
        st = dp_out_hocr(doc, doc->tokconf, &buf, err);
        if (st == DP_OK)
            st = put(b, stem, "result.hocr", &buf, err);
    }
    for (size_t i = 0; st == DP_OK && (formats & DP_OUT_PAGE) && i < doc->n_pages; i++) {
        char file[64];
        snprintf(file, sizeof file, "page/page-%04d.xml", doc->pages[i]->number);
        st = dp_out_page_xml(doc, doc->pages[i], dp__archive_conf(doc->tokconf, i), &buf, err);
        if (st == DP_OK)
            st = put(b, stem, file, &buf, err);
    }
    if (st == DP_OK && (formats & DP_OUT_MD)) {
        st = dp_out_markdown(doc, &buf, err);
        if (st == DP_OK)
            st = put(b, stem, "result.md", &buf, err);
    }
    if (st == DP_OK && (formats & DP_OUT_TXT)) {
        st = dp_out_text(doc, &buf, err);
        if (st == DP_OK)
            st = put(b, stem, "result.txt", &buf, err);
    }
    dp_buf_free(&buf);
    return st;
}
