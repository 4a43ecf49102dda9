/* PNG back end (libpng), decoded from memory into RGB8 the way PIL + the HF processor see it:
 * palette/grey/low-bit expanded, 16-bit reduced to the high byte, no gamma applied, alpha
 * composited over white with PIL's alpha_composite arithmetic. The pixel cap is checked after the
 * header and before any pixel allocation. libpng longjmps on error; all state freed on that path
 * lives in a heap context. One-page documents; thread-safe per dp_doc. */
#include "dp_ingest.h"
#include "dp_ingest_impl.h"

#include "dp_alloc.h"

#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <png.h>

#define RASTER_MSG_MAX 200
#define CM_PER_INCH 2.54

static const struct dp_doc_ops png_ops;

static void png_close(struct dp_doc *d) { (void)d; }

/* ---- PNG ------------------------------------------------------------------------------- */

struct png_ctx {
    const uint8_t *data; /* borrowed d->data */
    size_t len, pos;
    char msg[RASTER_MSG_MAX];
    uint8_t *buf;        /* (h, w, channels) decode buffer */
    png_bytep *rows;     /* (h) row pointers into buf */
};

static void png_on_error(png_structp png, png_const_charp msg) {
    struct png_ctx *c = png_get_error_ptr(png);
    if (!c->msg[0])
        snprintf(c->msg, sizeof c->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg;
}

static void png_read_mem(png_structp png, png_bytep out, size_t n) {
    struct png_ctx *c = png_get_io_ptr(png);
    if (n > c->len - c->pos)
        png_error(png, "unexpected end of file");
    memcpy(out, c->data + c->pos, n);
    c->pos += n;
}

static enum dp_status png_render(struct dp_doc *d, int index, struct dp_page *out,
                                 struct dp_err *err) {
    (void)index;
    struct png_ctx *c = dp_calloc(1, sizeof *c);
    if (!c)
        return dp_err_set(err, DP_ERR_NOMEM, "out of memory");
    c->data = d->data;
    c->len = d->len;
    enum dp_status st = DP_OK;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, c, png_on_error,
                                             png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        st = dp_err_set(err, DP_ERR_NOMEM, "out of memory");
        goto done;
    }
    if (setjmp(png_jmpbuf(png))) {
        st = dp_err_set(err, DP_ERR_FORMAT, "PNG damaged beyond repair: %s", c->msg);
        goto done;
    }
    png_set_read_fn(png, c, png_read_mem);
    png_read_info(png, info);
    uint32_t w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    size_t bytes = 0;
    if ((st = dp__pixels_check(&bytes, d, 1, w, h, err)) != DP_OK)
        goto done;
    png_set_expand(png);      /* palette -> RGB, grey < 8 bit -> 8, tRNS -> alpha */
    png_set_strip_16(png);    /* high byte, as PIL's 16-bit unpackers */
    png_set_gray_to_rgb(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    size_t ch = png_get_channels(png, info), rowbytes = png_get_rowbytes(png, info);
    size_t buf_bytes = 0;
    if ((ch != 3 && ch != 4) || rowbytes != (size_t)w * ch ||
        !dp_size_mul(&buf_bytes, rowbytes, h)) {
        st = dp_err_set(err, DP_ERR_UNSUPPORTED, "unsupported PNG layout (%zu channels)", ch);
        goto done;
    }
    c->buf = dp_malloc(buf_bytes);
    c->rows = dp_calloc(h, sizeof *c->rows);
    if (!c->buf || !c->rows) {
        st = dp_err_set(err, DP_ERR_NOMEM, "out of memory for %ux%u pixels", w, h);
        goto done;
    }
    for (uint32_t y = 0; y < h; y++)
        c->rows[y] = c->buf + (size_t)y * rowbytes;
    png_read_image(png, c->rows);
    if (ch == 4) { /* RGBA -> RGB over white, in place (3i <= 4i) */
        size_t n = (size_t)w * h;
        for (size_t i = 0; i < n; i++) {
            uint8_t a = c->buf[4 * i + 3];
            for (int k = 0; k < 3; k++)
                c->buf[3 * i + (size_t)k] = dp__over_white(c->buf[4 * i + (size_t)k], a);
        }
        uint8_t *shrunk = dp_realloc(c->buf, bytes);
        if (shrunk)
            c->buf = shrunk;
    }
    out->rgb = c->buf;
    c->buf = NULL;
    out->width = out->src_width = (int)w;
    out->height = out->src_height = (int)h;
    png_uint_32 xres = 0, yres = 0;
    int unit = 0;
    if (png_get_pHYs(png, info, &xres, &yres, &unit) && unit == PNG_RESOLUTION_METER)
        out->dpi = xres * CM_PER_INCH / 100.0;
done:
    png_destroy_read_struct(png ? &png : NULL, info ? &info : NULL, NULL);
    dp_free(c->buf);
    dp_free(c->rows);
    dp_free(c);
    return st;
}

enum dp_status dp__png_open(struct dp_doc *d, struct dp_err *err) {
    (void)err;
    d->ops = &png_ops;
    d->n_pages = 1;
    return DP_OK;
}

static const struct dp_doc_ops png_ops = {png_render, png_close, NULL};
