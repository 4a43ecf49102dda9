/* dpingest: documents and scans to RGB8 pages (PDF via poppler+cairo, TIFF, PNG, JPEG).
 *
 *   struct dp_ingest_opts o;
 *   dp_ingest_opts_init(&o);                       // dpi 150, model pixel budget, decode cap
 *   struct dp_doc *doc = NULL;
 *   struct dp_err err = {0};
 *   if (dp_doc_open(&doc, "scan.tif", &o, &err) != DP_OK) { ... err.msg names the file ... }
 *   for (int i = 0; i < dp_doc_page_count(doc); i++) {
 *       struct dp_page pg;
 *       if (dp_doc_render(&pg, doc, i, &err) != DP_OK) break;   // msg names file and page
 *       ... pg.rgb is (pg.height, pg.width, 3) ...
 *       dp_page_free(&pg);
 *   }
 *   dp_doc_close(doc);
 *
 * Formats are sniffed from magic bytes only, never from the extension. PDF pages are rendered
 * directly at the smart_resize target size (page size at opts.dpi, then the pixel budget), so
 * they are already what the model sees. Raster pages (TIFF/PNG/JPEG) are decoded at their
 * native size, orientation applied; dp_page_fit() resamples them (PIL-exact bicubic) to the
 * smart_resize target. A dp_doc is used by one thread at a time; different documents may be
 * used on different threads (poppler calls are serialised by one internal lock).
 *
 * Ownership: dp_doc_open returns a caller-owned doc (dp_doc_close). dp_doc_render fills a
 * caller-embedded struct dp_page whose pixels it owns (dp_page_free). opts.password is copied. */
#ifndef DP_INGEST_H
#define DP_INGEST_H

#include "dp_status.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum dp_format {
    DP_FORMAT_UNKNOWN = 0,
    DP_FORMAT_PDF,
    DP_FORMAT_TIFF,
    DP_FORMAT_PNG,
    DP_FORMAT_JPEG,
};

/* Format from the first bytes of a file (at least DP_SNIFF_BYTES are looked at if present). */
#define DP_SNIFF_BYTES 1024
enum dp_format dp_format_sniff(const uint8_t *buf, size_t n);
/* "pdf", "tiff", "png", "jpeg", "unknown". */
const char *dp_format_name(enum dp_format f);
/* Reads the head of path and sniffs it (DP_ERR_IO if unreadable, DP_ERR_UNSUPPORTED if unknown). */
enum dp_status dp_format_sniff_file(enum dp_format *out, const char *path, struct dp_err *err);

struct dp_ingest_opts {
    double dpi;               /* PDF render resolution before the pixel budget [DP_DEFAULT_DPI] */
    int64_t min_pixels;       /* smart_resize budget (the model's preprocessor_config.json) */
    int64_t max_pixels;
    int64_t factor;           /* patch_size * merge_size (28) */
    size_t max_decode_pixels; /* refuse any bitmap larger than this, before allocating */
    const char *password;     /* PDF user/owner password or NULL (copied by dp_doc_open) */
    int64_t long_side;        /* > 0: the page is first scaled so that its longest side has this
                               * many pixels (olmOCR renders at 1288), then smart_resize; 0 = off */
};
/* Defaults: DP_DEFAULT_DPI, the published Qwen2.5-VL budget (VL_IMAGE_DEFAULT_*),
 * DP_DEFAULT_MAX_DECODE_PIXELS, no password. */
void dp_ingest_opts_init(struct dp_ingest_opts *o);

/* One page as RGB8. Caller-embedded; pixels owned, freed by dp_page_free. */
struct dp_page {
    uint8_t *rgb;            /* (height, width, 3) row-major RGB8, no padding */
    int width, height;       /* pixels of rgb */
    int src_width, src_height; /* raster inputs: decoded size after orientation; PDF: = width/height */
    int page_no;             /* 1-based page number in the document */
    enum dp_format format;   /* source format */
    double dpi;              /* PDF: effective render dpi (after the pixel budget; x axis);
                              * raster: x resolution in dpi if the file records one, else 0 */
    double width_pt, height_pt; /* PDF page size in points as displayed (rotation applied); else 0 */
    int rotation;            /* PDF /Rotate applied (0/90/180/270); raster: 0 */
    int orientation;         /* TIFF Orientation / EXIF orientation applied (1..8); PDF: 1 */
    double x_resolution, y_resolution; /* TIFF XResolution/YResolution as stored; else 0 */
    int resolution_unit;     /* TIFF ResolutionUnit (1 none, 2 inch, 3 cm); else 0 */
    bool at_target;          /* pixels are already at the smart_resize target size */
};
void dp_page_free(struct dp_page *p); /* frees p->rgb and zeroes *p; NULL-safe */

struct dp_doc;
/* Opens path (sniffed by magic). Errors (message names the file): DP_ERR_IO unreadable,
 * DP_ERR_UNSUPPORTED unknown format, DP_ERR_PASSWORD needs a password / wrong password,
 * DP_ERR_FORMAT damaged beyond repair / not a PDF, DP_ERR_LIMIT too many pages. */
enum dp_status dp_doc_open(struct dp_doc **out, const char *path, const struct dp_ingest_opts *o,
                           struct dp_err *err);
/* Same from memory (fuzzing, stdin). name is used in messages. data is copied for raster
 * formats and PDF alike, so the caller may free it after the call. */
enum dp_status dp_doc_open_mem(struct dp_doc **out, const void *data, size_t len, const char *name,
                               const struct dp_ingest_opts *o, struct dp_err *err);
void dp_doc_close(struct dp_doc *d); /* NULL-safe */
int dp_doc_page_count(const struct dp_doc *d);
enum dp_format dp_doc_format(const struct dp_doc *d);
const char *dp_doc_name(const struct dp_doc *d); /* borrowed; the path or name given at open */

/* Renders (PDF) or decodes (raster) page index (0-based) into out. Errors name file and page:
 * DP_ERR_LIMIT pixel cap, DP_ERR_UNSUPPORTED e.g. TIFF photometric, DP_ERR_FORMAT damaged. */
enum dp_status dp_doc_render(struct dp_page *out, struct dp_doc *d, int index, struct dp_err *err);

/* Whether page index (0-based) has a text layer of its own: poppler finds any non-space
 * character on it, invisible text included (OCRmyPDF's --skip-text test). Raster formats:
 * false. DP_ERR_FORMAT for an unreadable page (message names file and page). */
enum dp_status dp_doc_page_has_text(struct dp_doc *d, int index, bool *out, struct dp_err *err);

/* Resamples a raster page to the smart_resize target of o (PIL-exact bicubic); no-op when
 * p->at_target or the size already matches. DP_ERR_FORMAT for aspect ratio > 200. */
enum dp_status dp_page_fit(struct dp_page *p, const struct dp_ingest_opts *o, struct dp_err *err);

/* ---- page selection ("1-3,7", "5-", "-2") --------------------------------------------- */

struct dp_page_range {
    int first, last; /* 1-based, inclusive; last == DP_PAGE_LAST means "to the end" */
};
#define DP_PAGE_LAST 0x7fffffff
struct dp_page_sel {
    int n;                        /* 0 = all pages */
    struct dp_page_range *ranges; /* owned */
    char spec[64];                /* the text parsed (cut to fit), for messages */
};
/* Parses spec (NULL or "" = all). DP_ERR_USAGE with a message on bad syntax. */
enum dp_status dp_page_sel_parse(struct dp_page_sel *out, const char *spec, struct dp_err *err);
void dp_page_sel_free(struct dp_page_sel *s);
bool dp_page_sel_has(const struct dp_page_sel *s, int page_no);
/* One rule for every form of --pages: pages beyond the end of the document are ignored (see
 * dp_page_sel_beyond for the warning), and a selection that keeps no page at all is the
 * document's failure: DP_ERR_USAGE "NAME: --pages 3-5 selects no page (the document has 2)". */
enum dp_status dp_page_sel_check(const struct dp_page_sel *s, int n_pages, const char *name,
                                 struct dp_err *err);
/* Whether s asks for pages beyond n_pages; if so writes the warning into buf ("--pages 1-3,9:
 * pages 3,9 are beyond the end of the document (2 pages) and were ignored"). An open range
 * ("2-") is beyond the end only when it starts there. */
bool dp_page_sel_beyond(const struct dp_page_sel *s, int n_pages, char *buf, size_t cap);
/* The number of pages 1..n_pages that s selects. */
int dp_page_sel_count(const struct dp_page_sel *s, int n_pages);

#endif
