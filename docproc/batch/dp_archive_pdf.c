/* The searchable PDF of one document (docs/archive.md): opens the source document again (for
 * --from-raw the path recorded with the answers), decodes each answered page at its native size
 * and hands the images to dp_out_pdf; a JPEG file without an EXIF rotation is embedded byte for
 * byte. PDF input (born-digital pages) keeps its pages: poppler tells which answered pages have
 * no text of their own and dp_out_pdf_graft adds the invisible text to those only (OCRmyPDF's
 * --skip-text). Pages without boxed lines get the image only (scans) or stay as they are (PDF),
 * with a warning. Thread-safe per call (one dp_doc per call). */
#include "dp_batch_impl.h"
#include "dp_alloc.h"
#include "dp_fs.h"
#include "dp_limits.h"
#include "dp_log.h"
#include "dp_out_pdf.h"

#include <string.h>

/* PDF input: the original document with text added where a page has none. */
static enum dp_status archive_pdf_input(const struct dp_batch_opts *o, const struct ex_doc *doc,
                                        struct dp_doc *src, struct dp_buf *out,
                                        struct dp_err *err) {
    size_t n = doc->n_pages;
    bool *has_text = dp_calloc(n ? n : 1, sizeof *has_text);
    if (!has_text)
        return dp_err_set(err, DP_ERR_NOMEM, "%s: out of memory", doc->source);
    enum dp_status st = DP_OK;
    for (size_t i = 0; i < n && st == DP_OK; i++) {
        int number = doc->pages[i]->number;
        if (number < 1 || number > dp_doc_page_count(src))
            st = dp_err_set(err, DP_ERR_FORMAT, "%s: page %d of the answers is not in the document",
                            doc->source, number);
        else
            st = dp_doc_page_has_text(src, number - 1, &has_text[i], err);
    }
    struct dp_pdf_graft_stats gs = {0};
    if (st == DP_OK) {
        struct dp_pdf_opts po = {.pdfa = o->pdfa};
        st = dp_out_pdf_graft(doc, doc->source, o->ingest.password, has_text, doc->tokconf, &po,
                              out, &gs, err);
    }
    dp_free(has_text);
    if (st == DP_OK && gs.pages_without_text && o->verbosity >= 0)
        DP_LOG_WARN("%s: %d of %zu pages have no line boxes in the answer and no text of their "
                    "own: kept without a text layer in the PDF",
                    doc->source, gs.pages_without_text, n);
    if (st == DP_OK)
        DP_LOG_INFO("%s: searchable PDF: %d pages kept their own text, %d got a text layer",
                    doc->source, gs.pages_kept_text, gs.pages_text_added);
    return st;
}

enum dp_status dp__archive_pdf(const struct dp_batch_opts *o, const struct ex_doc *doc,
                               struct dp_buf *out, struct dp_err *err) {
    struct dp_doc *src = NULL;
    enum dp_status st = dp_doc_open(&src, doc->source, &o->ingest, err);
    if (st != DP_OK) {
        dp_err_prefix(err, "searchable PDF needs the source document");
        return st;
    }
    if (dp_doc_format(src) == DP_FORMAT_PDF) {
        st = archive_pdf_input(o, doc, src, out, err);
        dp_doc_close(src);
        return st;
    }
    size_t n = doc->n_pages;
    struct dp_pdf_image *im = dp_calloc(n ? n : 1, sizeof *im);
    struct dp_page *pg = dp_calloc(n ? n : 1, sizeof *pg);
    char *jpeg = NULL;
    size_t jpeg_len = 0;
    if (!im || !pg)
        st = dp_err_set(err, DP_ERR_NOMEM, "%s: out of memory", doc->source);
    if (st == DP_OK && dp_doc_format(src) == DP_FORMAT_JPEG)
        st = dp_file_read(doc->source, DP_MAX_IMAGE_FILE_BYTES, &jpeg, &jpeg_len, err);
    for (size_t i = 0; i < n && st == DP_OK; i++) {
        int number = doc->pages[i]->number;
        if (number < 1 || number > dp_doc_page_count(src)) {
            st = dp_err_set(err, DP_ERR_FORMAT, "%s: page %d of the answers is not in the document",
                            doc->source, number);
            break;
        }
        st = dp_doc_render(&pg[i], src, number - 1, err);
        if (st != DP_OK)
            break;
        im[i].width = pg[i].width;
        im[i].height = pg[i].height;
        im[i].dpi = pg[i].dpi;
        im[i].rgb = pg[i].rgb;
        int jw = 0, jh = 0, jc = 0;
        if (jpeg && pg[i].orientation <= 1 &&
            dp_pdf_jpeg_info((const uint8_t *)jpeg, jpeg_len, &jw, &jh, &jc) &&
            jw == pg[i].width && jh == pg[i].height && (jc == 1 || jc == 3)) {
            im[i].jpeg = (const uint8_t *)jpeg;
            im[i].jpeg_len = jpeg_len;
            im[i].jpeg_components = jc;
        }
    }
    int no_text = 0;
    if (st == DP_OK) {
        struct dp_pdf_opts po = {.pdfa = o->pdfa};
        st = dp_out_pdf(doc, im, n, doc->tokconf, &po, out, &no_text, err);
    }
    if (st == DP_OK && no_text && o->verbosity >= 0)
        DP_LOG_WARN("%s: %d of %zu pages have no line boxes in the answer: image only, no text "
                    "layer in the PDF",
                    doc->source, no_text, n);
    for (size_t i = 0; pg && i < n; i++)
        dp_page_free(&pg[i]);
    dp_free(pg);
    dp_free(im);
    dp_free(jpeg);
    dp_doc_close(src);
    return st;
}
