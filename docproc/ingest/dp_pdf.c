/* PDF back end (poppler-glib + cairo): the only file that touches poppler. Each page is
 * rendered directly at the smart_resize target of its size at opts.dpi (never rendered and
 * resampled), then cairo's premultiplied native-endian ARGB32 is flattened over white into RGB8.
 * Page /Rotate is honoured by poppler (poppler_page_get_size and poppler_page_render both apply
 * it). Poppler is not safe to call from several threads at once even on distinct documents
 * (shared GlobalParams, font caches), so every poppler call here holds one process-wide lock,
 * as libvips does; distinct documents may then be used from distinct threads. */
#include "dp_ingest.h"
#include "dp_ingest_impl.h"

#include "dp_alloc.h"
#include "dp_vl.h"
#include "vl_tools.h"

#include <cairo.h>
#include <glib.h>
#include <math.h>
#include <poppler.h>
#include <pthread.h>
#include <string.h>

#define PDF_POINTS_PER_INCH 72.0

/* Serialises all poppler use in the process (see the file comment). */
static pthread_mutex_t poppler_lock = PTHREAD_MUTEX_INITIALIZER;

struct pdf_impl {
    PopplerDocument *doc; /* owned reference */
    GBytes *bytes;        /* owned when opened from memory; borrows d->data */
};

static enum dp_status gerror_to_status(GError *gerr, const struct dp_doc *d, struct dp_err *err) {
    enum dp_status st;
    const char *msg = gerr && gerr->message ? gerr->message : "unknown error";
    if (gerr && gerr->domain == POPPLER_ERROR && gerr->code == POPPLER_ERROR_ENCRYPTED) {
        if (d->password)
            st = dp_err_set(err, DP_ERR_PASSWORD, "wrong password for encrypted PDF");
        else
            st = dp_err_set(err, DP_ERR_PASSWORD,
                            "PDF is encrypted and needs a password (use --password)");
    } else if (gerr && gerr->domain == G_FILE_ERROR) {
        st = dp_err_set(err, DP_ERR_IO, "cannot open: %s", msg);
    } else {
        st = dp_err_set(err, DP_ERR_FORMAT, "PDF damaged beyond repair: %s", msg);
    }
    if (gerr)
        g_error_free(gerr);
    return st;
}

static void pdf_close(struct dp_doc *d) {
    struct pdf_impl *im = d->impl;
    if (!im)
        return;
    pthread_mutex_lock(&poppler_lock);
    if (im->doc)
        g_object_unref(im->doc);
    pthread_mutex_unlock(&poppler_lock);
    if (im->bytes)
        g_bytes_unref(im->bytes);
    dp_free(im);
    d->impl = NULL;
}

/* Flattens cairo ARGB32 (premultiplied, native-endian 0xAARRGGBB) over white into RGB8:
 * over white, a premultiplied channel c becomes c + 255 - a exactly. */
static void argb_to_rgb(uint8_t *dst, const unsigned char *src, int stride, int w, int h) {
    for (int y = 0; y < h; y++) {
        const uint32_t *row = (const uint32_t *)(const void *)(src + (size_t)y * (size_t)stride);
        uint8_t *o = dst + (size_t)y * (size_t)w * 3;
        for (int x = 0; x < w; x++) {
            uint32_t px = row[x];
            uint32_t a = px >> 24, r = (px >> 16) & 0xffu, g = (px >> 8) & 0xffu, b = px & 0xffu;
            uint32_t bg = 255u - a;
            /* premultiplied channels never exceed alpha; clamp anyway for broken producers */
            o[3 * x + 0] = (uint8_t)(r + bg > 255u ? 255u : r + bg);
            o[3 * x + 1] = (uint8_t)(g + bg > 255u ? 255u : g + bg);
            o[3 * x + 2] = (uint8_t)(b + bg > 255u ? 255u : b + bg);
        }
    }
}

static enum dp_status pdf_render_locked(struct dp_doc *d, int index, struct dp_page *out,
                                        struct dp_err *err) {
    struct pdf_impl *im = d->impl;
    const int page_no = index + 1;
    PopplerPage *page = poppler_document_get_page(im->doc, index);
    if (!page)
        return dp_err_set(err, DP_ERR_FORMAT, "PDF damaged beyond repair: page %d unreadable",
                          page_no);
    enum dp_status st = DP_OK;
    cairo_surface_t *surf = NULL;
    double wpt = 0, hpt = 0;
    poppler_page_get_size(page, &wpt, &hpt); /* points, /Rotate applied */
    if (!(wpt > 0 && hpt > 0) || !isfinite(wpt) || !isfinite(hpt)) {
        st = dp_err_set(err, DP_ERR_FORMAT, "PDF damaged beyond repair: page size %gx%g pt",
                        wpt, hpt);
        goto done;
    }
    /* Page size at the requested dpi, then the model's pixel budget: that is the render size. */
    double scale_dpi = d->opts.dpi / PDF_POINTS_PER_INCH;
    double wpx = fmax(1.0, round(wpt * scale_dpi)), hpx = fmax(1.0, round(hpt * scale_dpi));
    if (wpx > (double)INT32_MAX || hpx > (double)INT32_MAX) {
        st = dp_err_set(err, DP_ERR_LIMIT, "pixel limit exceeded: page %gx%g pt at %g dpi",
                        wpt, hpt, d->opts.dpi);
        goto done;
    }
    int64_t th = 0, tw = 0, lw = (int64_t)wpx, lh = (int64_t)hpx;
    dp__long_side(&lw, &lh, d->opts.long_side);
    struct vl_error verr = {0};
    if (vl_smart_resize(&th, &tw, lh, lw, d->opts.factor, d->opts.min_pixels,
                        d->opts.max_pixels, &verr) != VL_OK) {
        st = dp_vl_err(err, &verr, DP_ERR_FORMAT, "page %gx%g pt", wpt, hpt);
        goto done;
    }
    size_t bytes = 0;
    if ((st = dp__pixels_check(&bytes, d, page_no, tw, th, err)) != DP_OK)
        goto done;
    surf = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, (int)tw, (int)th);
    if (cairo_surface_status(surf) != CAIRO_STATUS_SUCCESS) {
        st = dp_err_set(err, DP_ERR_NOMEM, "cannot allocate a %lldx%lld cairo surface",
                        (long long)tw, (long long)th);
        goto done;
    }
    out->rgb = dp_malloc(bytes); /* (th, tw, 3) */
    if (!out->rgb) {
        st = dp_err_set(err, DP_ERR_NOMEM, "out of memory for %lldx%lld pixels", (long long)tw,
                        (long long)th);
        goto done;
    }
    cairo_t *cr = cairo_create(surf);
    cairo_scale(cr, (double)tw / wpt, (double)th / hpt);
    poppler_page_render(page, cr);
    cairo_status_t cst = cairo_status(cr);
    cairo_destroy(cr);
    if (cst != CAIRO_STATUS_SUCCESS) {
        st = dp_err_set(err, DP_ERR_FORMAT, "rendering failed: %s", cairo_status_to_string(cst));
        goto done;
    }
    cairo_surface_flush(surf);
    argb_to_rgb(out->rgb, cairo_image_surface_get_data(surf), cairo_image_surface_get_stride(surf),
                (int)tw, (int)th);
    out->width = out->src_width = (int)tw;
    out->height = out->src_height = (int)th;
    out->dpi = (double)tw / wpt * PDF_POINTS_PER_INCH;
    out->width_pt = wpt;
    out->height_pt = hpt;
    PopplerRectangle crop;
    poppler_page_get_crop_box(page, &crop);
    /* poppler-glib exposes no /Rotate getter: a displayed size that is the crop box turned
     * a quarter means 90 or 270; 0 and 180 are not distinguished (recorded as 0). */
    double cw = fabs(crop.x2 - crop.x1), ch = fabs(crop.y2 - crop.y1);
    out->rotation = (fabs(cw - hpt) < 1e-6 && fabs(ch - wpt) < 1e-6 && fabs(cw - ch) > 1e-6)
                        ? 90
                        : 0;
    out->at_target = true;
done:
    if (surf)
        cairo_surface_destroy(surf);
    g_object_unref(page);
    return st;
}

static enum dp_status pdf_render(struct dp_doc *d, int index, struct dp_page *out,
                                 struct dp_err *err) {
    pthread_mutex_lock(&poppler_lock);
    enum dp_status st = pdf_render_locked(d, index, out, err);
    pthread_mutex_unlock(&poppler_lock);
    return st;
}

/* Any non-space character in poppler's text of the page (invisible text included). */
static enum dp_status pdf_has_text(struct dp_doc *d, int index, bool *out, struct dp_err *err) {
    struct pdf_impl *im = d->impl;
    *out = false;
    pthread_mutex_lock(&poppler_lock);
    PopplerPage *page = poppler_document_get_page(im->doc, index);
    char *text = page ? poppler_page_get_text(page) : NULL;
    for (const char *p = text; p && *p && !*out; p++)
        *out = !g_ascii_isspace(*p);
    g_free(text);
    if (page)
        g_object_unref(page);
    pthread_mutex_unlock(&poppler_lock);
    if (!page)
        return dp_err_set(err, DP_ERR_FORMAT, "PDF damaged beyond repair: page %d unreadable",
                          index + 1);
    return DP_OK;
}

static const struct dp_doc_ops pdf_ops = {pdf_render, pdf_close, pdf_has_text};

enum dp_status dp__pdf_open(struct dp_doc *d, bool from_memory, struct dp_err *err) {
    if (!(d->opts.dpi >= 1.0) || d->opts.dpi > 1e5)
        return dp_err_set(err, DP_ERR_USAGE, "bad dpi %g", d->opts.dpi);
    struct pdf_impl *im = dp_calloc(1, sizeof *im);
    if (!im)
        return dp_err_set(err, DP_ERR_NOMEM, "out of memory");
    d->impl = im;
    d->ops = &pdf_ops;
    GError *gerr = NULL;
    pthread_mutex_lock(&poppler_lock);
    if (from_memory) {
        im->bytes = g_bytes_new_static(d->data, d->len); /* d->data outlives the document */
        im->doc = poppler_document_new_from_bytes(im->bytes, d->password, &gerr);
    } else {
        char *abs = g_canonicalize_filename(d->name, NULL);
        char *uri = g_filename_to_uri(abs, NULL, &gerr);
        g_free(abs);
        if (uri)
            im->doc = poppler_document_new_from_file(uri, d->password, &gerr);
        g_free(uri);
    }
    int n = im->doc ? poppler_document_get_n_pages(im->doc) : 0;
    pthread_mutex_unlock(&poppler_lock);
    if (!im->doc)
        return gerror_to_status(gerr, d, err);
    if (n <= 0)
        return dp_err_set(err, DP_ERR_FORMAT, "PDF damaged beyond repair: no pages");
    d->n_pages = n;
    return DP_OK;
}
