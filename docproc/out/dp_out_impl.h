/* Private declarations shared by the files of libdpout (dp__*). */
#ifndef DP_OUT_IMPL_H
#define DP_OUT_IMPL_H

#include "dp_jw.h"
#include "dp_out.h"

/* Version of the result format (JSON "format", XML version attribute). */
#define DP_RESULT_FORMAT "docproc-result/1"

/* The page with that number, or NULL. */
const struct ex_page *dp__out_page(const struct ex_doc *doc, int number);
/* The raw answer text of a provenance span, cleaned (caller frees with dp_free) into *out; *out is
 * NULL when the span lies outside the page's answer. DP_ERR_NOMEM only. */
enum dp_status dp__out_span_text(const struct ex_doc *doc, const struct ex_prov *p, char **out);
void dp__out_geom_json(struct dp_jw *w, const struct ex_geom *g);
void dp__out_stamp_json(struct dp_jw *w, const struct ex_stamp *s);
/* <stem>/raw/pages.json for a document. */
enum dp_status dp__out_pages_json(const struct ex_doc *doc, struct dp_buf *out);

/* Adds the archive formats asked for in formats (ALTO, hOCR, PAGE, md, txt; not the PDF) of a
 * document under <stem>/ (dp_out_bundle_archive.c). */
struct dp_bundle;
enum dp_status dp__bundle_add_archive(struct dp_bundle *b, const struct ex_doc *doc,
                                      const char *stem, unsigned formats, struct dp_err *err);

#endif
