/* Archive outputs of a document (docs/archive.md): ALTO 4.4, hOCR 1.2, PAGE XML 2019-07-15,
 * Markdown and plain text, all built from the lines model (extractors/ex_lines.h), and the
 * searchable PDF (dp_out_pdf.h).
 *
 *   struct dp_buf b; dp_buf_init(&b, DP_MAX_TEXT_BYTES);
 *   dp_out_alto(doc, NULL, &b, &err);            // NULL: no token probabilities (--from-raw)
 *   dp_out_page_xml(doc, doc->pages[0], &b, &err); // one PAGE file per page
 *
 * conf, where given, has one entry per page of doc (index = position in doc->pages): the
 * answer's token log-probabilities, which become ALTO WC / hOCR x_wconf / PAGE conf.
 * Every writer appends to out and returns DP_OK or the first error (NOMEM, LIMIT).
 * Thread-safe per call. */
#ifndef DP_OUT_ARCHIVE_H
#define DP_OUT_ARCHIVE_H

#include "dp_buf.h"
#include "dp_status.h"
#include "ex.h"
#include "ex_lines.h"

/* Namespaces and schema locations written (and tested against the official XSDs). */
#define DP_ALTO_NS "http://www.loc.gov/standards/alto/ns-v4#"
#define DP_ALTO_XSD "http://www.loc.gov/standards/alto/v4/alto-4-4.xsd"
#define DP_PAGE_NS "http://schema.primaresearch.org/PAGE/gts/pagecontent/2019-07-15"
#define DP_PAGE_XSD DP_PAGE_NS "/pagecontent.xsd"

enum dp_status dp_out_alto(const struct ex_doc *doc, const struct ex_tokconf *conf,
                           struct dp_buf *out, struct dp_err *err);
enum dp_status dp_out_hocr(const struct ex_doc *doc, const struct ex_tokconf *conf,
                           struct dp_buf *out, struct dp_err *err);
/* PAGE XML holds one page: call once per page (bundles write <stem>/page/page-NNNN.xml). */
enum dp_status dp_out_page_xml(const struct ex_doc *doc, const struct ex_page *page,
                               const struct ex_tokconf *conf, struct dp_buf *out,
                               struct dp_err *err);
/* Markdown: blocks in reading order, headings as #, tables as pipe tables (HTML when a cell
 * spans), formulas as $$ LaTeX $$, a page break marker between pages. */
enum dp_status dp_out_markdown(const struct ex_doc *doc, struct dp_buf *out, struct dp_err *err);
/* Plain text: one line per text line, tables as tab-separated rows, form feed between pages. */
enum dp_status dp_out_text(const struct ex_doc *doc, struct dp_buf *out, struct dp_err *err);

/* The marker dp_out_markdown writes between pages (followed by the page number and " -->"). */
#define DP_MD_PAGE_BREAK "<!-- page "

#endif
