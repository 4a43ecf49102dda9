/* Private pieces of the searchable PDF writer shared by dp_out_pdf.c and dp_pdf_pdfa.c. */
#ifndef DP_PDF_IMPL_H
#define DP_PDF_IMPL_H

#include "dp_out_pdf.h"

/* Fixed object numbers; page i uses FIRST_PAGE + 3i (page), +1 (content), +2 (image). */
enum {
    DP_PDF_OBJ_CATALOG = 1,
    DP_PDF_OBJ_PAGES,
    DP_PDF_OBJ_FONT,
    DP_PDF_OBJ_CIDFONT,
    DP_PDF_OBJ_DESCRIPTOR,
    DP_PDF_OBJ_FONTFILE,
    DP_PDF_OBJ_CIDTOGID,
    DP_PDF_OBJ_TOUNICODE,
    DP_PDF_OBJ_INFO,
    DP_PDF_OBJ_XMP,     /* PDF/A only */
    DP_PDF_OBJ_INTENT,  /* PDF/A only */
    DP_PDF_OBJ_ICC,     /* PDF/A only */
    DP_PDF_OBJ_FIRST_PAGE,
};

struct dp__pdf {
    struct dp_buf *b;
    size_t *offs; /* (n_ids) absolute offset in b of each object, 0 = not written */
    int n_ids;
    size_t base;
    bool pdfa;
};

enum dp_status dp__pdf_obj_begin(struct dp__pdf *w, int id);
/* A whole stream object: dict_extra (may be NULL) goes after /Length. */
void dp__pdf_stream(struct dp__pdf *w, int id, const char *dict_extra, const void *data,
                    size_t len);
enum dp_status dp__pdf_flate(const void *data, size_t len, uint8_t **out, size_t *out_len);
/* A number with up to 3 decimals, C locale, into b (>= 48 bytes). */
const char *dp__pdf_num(char *b, double v);
/* A PDF text string as UTF-16BE hex with BOM. */
void dp__pdf_text_string(struct dp_buf *b, const char *utf8);
/* "YYYYMMDDHHMMSSZ" (PDF date without "D:"), from dp__archive_time's clock. */
void dp__pdf_date(char *b, size_t n);
/* XMP metadata (PDF/A-2b identification, title, producer, dates) and the sRGB output intent. */
enum dp_status dp__pdf_pdfa(struct dp__pdf *w, const char *title, const char *version,
                            const char *pdf_date);

#endif
