/* Sticky-error wrapper over libxml2's xmlTextWriter for the archive writers (ALTO, hOCR,
 * PAGE XML): after the first failing call the rest are skipped and dp_xw_finish reports it once.
 *
 *   struct dp_xw x;
 *   if (dp_xw_open(&x) != DP_OK) ...;                 // DP_ERR_NOMEM
 *   dp_xw_start(&x, "alto"); dp_xw_attr(&x, "xmlns", NS); ... dp_xw_end(&x);
 *   st = dp_xw_finish(&x, &buf);                      // appends the document, frees the writer
 *
 * Private to libdpout. Thread-safe per object (libxml2 initialised through ex_xml_init). */
#ifndef DP_XW_H
#define DP_XW_H

#include "dp_buf.h"
#include "dp_status.h"

#include <libxml/xmlwriter.h>

struct dp_xw {
    xmlBufferPtr buf;
    xmlTextWriterPtr w;
    enum dp_status st;
};

/* Starts an indented UTF-8 document; doctype (may be NULL) is written as
 * <!DOCTYPE root PUBLIC pubid sysid> when root is given. */
enum dp_status dp_xw_open(struct dp_xw *x, const char *doctype_root, const char *pubid,
                          const char *sysid);
void dp_xw_start(struct dp_xw *x, const char *name);
void dp_xw_end(struct dp_xw *x);
void dp_xw_attr(struct dp_xw *x, const char *name, const char *v); /* v NULL: nothing */
void dp_xw_attrf(struct dp_xw *x, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A number with at most `decimals` decimals, C locale, trailing zeros dropped. */
void dp_xw_attr_num(struct dp_xw *x, const char *name, double v, int decimals);
void dp_xw_text(struct dp_xw *x, const char *text);
void dp_xw_text_el(struct dp_xw *x, const char *name, const char *text);
/* Ends the document, appends it to out and frees the writer (also on failure). */
enum dp_status dp_xw_finish(struct dp_xw *x, struct dp_buf *out);

/* Formats v like dp_xw_attr_num into b (at least DP_XW_NUM_MAX bytes). */
#define DP_XW_NUM_MAX 48
const char *dp_xw_num(char *b, double v, int decimals);

#endif
