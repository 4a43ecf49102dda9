/* Writes an RGB8 page as PNG (libpng), atomically (temporary file + rename via dp_atomic_*),
 * so no half-written file is ever visible. libpng's error longjmp is caught here; all state
 * freed on that path lives in a heap context. Thread-safe (no shared state). */
#include "dp_out.h"

#include "dp_alloc.h"
#include "dp_fs.h"

#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#define PNG_MSG_MAX 200

struct png_wctx {
    char msg[PNG_MSG_MAX];
    struct dp_atomic_file f;
};

static void on_error(png_structp png, png_const_charp msg) {
    struct png_wctx *c = png_get_error_ptr(png);
    if (!c->msg[0])
        snprintf(c->msg, sizeof c->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg;
}

enum dp_status dp_png_write(const char *path, const uint8_t *rgb, int w, int h, double dpi,
                            struct dp_err *err) {
    if (w <= 0 || h <= 0)
        return dp_err_set(err, DP_ERR_INTERNAL, "%s: bad image size %dx%d", path, w, h);
    struct png_wctx *c = dp_calloc(1, sizeof *c);
    if (!c)
        return dp_err_set(err, DP_ERR_NOMEM, "%s: out of memory", path);
    enum dp_status st = dp_atomic_open(&c->f, path, true, err);
    if (st != DP_OK) {
        dp_free(c);
        return st;
    }
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, c, on_error, on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        st = dp_err_set(err, DP_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    if (setjmp(png_jmpbuf(png))) {
        st = dp_err_set(err, DP_ERR_IO, "%s: PNG write failed: %s", path, c->msg);
        goto done;
    }
    png_init_io(png, c->f.fp);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (dpi > 0) {
        const double inch_per_m = 100.0 / 2.54;
        png_uint_32 ppm = (png_uint_32)(dpi * inch_per_m + 0.5);
        png_set_pHYs(png, info, ppm, ppm, PNG_RESOLUTION_METER);
    }
    png_write_info(png, info);
    for (int y = 0; y < h; y++)
        png_write_row(png, rgb + (size_t)y * (size_t)w * 3);
    png_write_end(png, NULL);
done:
    png_destroy_write_struct(png ? &png : NULL, info ? &info : NULL);
    if (st == DP_OK)
        st = dp_atomic_commit(&c->f, err);
    else
        dp_atomic_abort(&c->f);
    dp_free(c);
    return st;
}
