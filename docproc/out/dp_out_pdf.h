/* Searchable PDF writer (docs/archive.md): each page image at its native resolution under an
 * invisible text layer (render mode 3) set in a glyph-less font whose ToUnicode map makes every
 * UTF-16 code unit its own character (the technique of Tesseract's PDF renderer), one positioned
 * string per word, horizontally scaled to its box.
 *
 *   struct dp_pdf_image im = {.width = w, .height = h, .dpi = 300, .rgb = pixels};  // or .jpeg
 *   struct dp_pdf_opts po = {.pdfa = false};
 *   struct dp_buf b; dp_buf_init(&b, DP_PDF_MAX_BYTES);
 *   int no_text = 0;
 *   dp_out_pdf(doc, &im, 1, NULL, &po, &b, &no_text, &err);   // one image per doc page
 *
 * Images: JPEG bytes are embedded as they are (DCTDecode, no recompression); pixels are stored
 * losslessly with Flate, as 1-bit gray when the page is bilevel, 8-bit gray when R = G = B, else
 * RGB. A PDF input keeps its pages (dp_out_pdf_graft). Thread-safe per call. */
#ifndef DP_OUT_PDF_H
#define DP_OUT_PDF_H

#include "dp_buf.h"
#include "dp_status.h"
#include "ex.h"
#include "ex_lines.h"

#include <stdint.h>

/* Largest PDF written (images included). */
#define DP_PDF_MAX_BYTES ((size_t)1 << 30)
/* Resolution assumed for a page image that records none (page size = pixels * 72 / dpi). */
#define DP_PDF_DEFAULT_DPI 300.0
/* Advance width of every glyph of the glyph-less font, in 1/1000 em. */
#define DP_PDF_GLYPH_WIDTH 500

struct dp_pdf_image {
    int width, height;       /* pixels */
    double dpi;              /* 0 = DP_PDF_DEFAULT_DPI */
    const uint8_t *jpeg;     /* a baseline/progressive JPEG file to embed as is, or NULL */
    size_t jpeg_len;
    int jpeg_components;     /* 1 gray, 3 YCbCr/RGB, 4 CMYK (from the JPEG's SOF) */
    const uint8_t *rgb;      /* (height, width, 3) RGB8 when jpeg is NULL */
};

struct dp_pdf_opts {
    bool pdfa;               /* PDF/A-2b structure: XMP metadata, sRGB output intent, IDs */
    const char *title;       /* document title for Info/XMP, or NULL (the source path) */
};

/* Writes the PDF of doc: page i of doc over images[i] (n must equal doc->n_pages). conf as in
 * dp_out_archive.h (may be NULL). *pages_without_text counts pages that got no text layer
 * (no boxed lines). DP_ERR_NOMEM, DP_ERR_LIMIT (too large), DP_ERR_FORMAT (bad image). */
enum dp_status dp_out_pdf(const struct ex_doc *doc, const struct dp_pdf_image *images, size_t n,
                          const struct ex_tokconf *conf, const struct dp_pdf_opts *opts,
                          struct dp_buf *out, int *pages_without_text, struct dp_err *err);

/* What dp_out_pdf_graft did with the answered pages. */
struct dp_pdf_graft_stats {
    int pages_kept_text;    /* had a text layer of their own: left as they were */
    int pages_text_added;   /* got the invisible text layer */
    int pages_without_text; /* needed one, but the answer has no line boxes: left as they were */
};

/* Born-digital PDF input (like OCRmyPDF's --skip-text): the PDF at path (password or NULL),
 * every page, object and stream kept as stored (libqpdf), plus an invisible text layer on each
 * answered page doc->pages[i] with has_text[i] false (the page has no text of its own), placed
 * at its lines' boxes mapped through the page's crop box and /Rotate. Pages of the document
 * without an answer are kept too. conf as in dp_out_pdf. DP_ERR_FORMAT (unreadable PDF, a page
 * number not in it), DP_ERR_NOMEM, DP_ERR_LIMIT. */
enum dp_status dp_out_pdf_graft(const struct ex_doc *doc, const char *path, const char *password,
                                const bool *has_text, const struct ex_tokconf *conf,
                                const struct dp_pdf_opts *opts, struct dp_buf *out,
                                struct dp_pdf_graft_stats *stats, struct dp_err *err);

/* Reads width, height and components from a JPEG's SOF marker; false if none is found. */
bool dp_pdf_jpeg_info(const uint8_t *data, size_t len, int *w, int *h, int *components);

/* The glyph-less TrueType font program (two empty glyphs of DP_PDF_GLYPH_WIDTH), built from the
 * TrueType tables it needs; caller frees with dp_free. Public for tests. */
uint8_t *dp_pdf_glyphless_ttf(size_t *len);

#endif
