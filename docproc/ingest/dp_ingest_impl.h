/* Private to docproc/ingest: the document object and the per-format back ends
 * (dp_pdf.c, dp_tiff.c, dp_png.c, dp_jpeg.c) behind dp_doc_open / dp_doc_render. */
#ifndef DP_INGEST_IMPL_H
#define DP_INGEST_IMPL_H

#include "dp_ingest.h"

struct dp_doc;

struct dp_doc_ops {
    /* Fills out (zeroed by the caller) for 0-based page index. */
    enum dp_status (*render)(struct dp_doc *d, int index, struct dp_page *out,
                             struct dp_err *err);
    void (*close)(struct dp_doc *d);
    /* Whether the page has text of its own; NULL for formats without text (raster). */
    enum dp_status (*has_text)(struct dp_doc *d, int index, bool *out, struct dp_err *err);
};

struct dp_doc {
    enum dp_format format;
    char *name;                  /* owned: path or caller-given name, for messages */
    char *password;              /* owned copy of opts.password, or NULL */
    struct dp_ingest_opts opts;  /* copy; opts.password points at password */
    int n_pages;
    const struct dp_doc_ops *ops;
    void *impl;                  /* back-end state, freed by ops->close */
    uint8_t *data;               /* owned file bytes (raster formats, PDFs opened from memory) */
    size_t len;
};

/* Back ends: fill d->n_pages, d->ops, d->impl from d->data/d->len (or d->name for PDF files).
 * Messages are prefixed with the file name by the caller. */
/* Scales (w, h) so that the longer side is long_side (rounded; no-op when long_side <= 0). */
void dp__long_side(int64_t *w, int64_t *h, int64_t long_side);
enum dp_status dp__pdf_open(struct dp_doc *d, bool from_memory, struct dp_err *err);
enum dp_status dp__tiff_open(struct dp_doc *d, struct dp_err *err);
enum dp_status dp__png_open(struct dp_doc *d, struct dp_err *err);
enum dp_status dp__jpeg_open(struct dp_doc *d, struct dp_err *err);

/* Checks w*h against the decode cap before any allocation; returns the byte size of RGB8. */
enum dp_status dp__pixels_check(size_t *out_bytes, const struct dp_doc *d, int page_no, int64_t w,
                                int64_t h, struct dp_err *err);
/* Applies TIFF/EXIF orientation (1..8) to p->rgb as PIL's exif_transpose does; may swap
 * width and height. Other values are ignored. */
enum dp_status dp__orient_apply(struct dp_page *p, int orientation, struct dp_err *err);
/* PIL alpha_composite over opaque white of one 8-bit channel value c with alpha a
 * (non-premultiplied). */
uint8_t dp__over_white(uint8_t c, uint8_t a);
/* PIL's CMYK -> RGB of one channel: ink c (0..255) under black k (0..255). */
uint8_t dp__cmyk_channel(uint32_t c, uint32_t k);

#endif
