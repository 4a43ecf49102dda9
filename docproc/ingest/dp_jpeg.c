/* JPEG back end (libjpeg + libexif), decoded from memory into RGB8 the way PIL sees it:
 * libjpeg's defaults (islow DCT, fancy upsampling, as PIL), CMYK/YCCK converted as PIL does, the
 * EXIF orientation applied. The pixel cap is checked after the header and before any pixel
 * allocation. libjpeg longjmps on error; all state freed on that path lives in a heap context.
 * One-page documents; thread-safe per dp_doc. */
#include "dp_ingest.h"
#include "dp_ingest_impl.h"

#include "dp_alloc.h"
#include "dp_log.h"

#include <setjmp.h>
#include <stdio.h> /* before jpeglib.h, which uses FILE */
#include <string.h>

#include <jpeglib.h>
#include <jerror.h> /* JWRN_JPEG_EOF */
#include <libexif/exif-data.h>

#define JPEG_APP1 (JPEG_APP0 + 1)
#define JPEG_MARKER_MAX 0xffff
#define JPEG_DENSITY_DPI 1
#define JPEG_DENSITY_DPCM 2
#define CM_PER_INCH 2.54

static const struct dp_doc_ops jpeg_ops;

static void jpeg_close(struct dp_doc *d) { (void)d; }

/* ---- JPEG ------------------------------------------------------------------------------ */

struct jpeg_ctx {
    struct jpeg_error_mgr pub; /* first member: libjpeg casts cinfo->err to this */
    jmp_buf jb;
    char msg[JMSG_LENGTH_MAX];
    struct jpeg_decompress_struct cinfo;
    bool created;
    bool eof;        /* libjpeg hit the end of the data early (and padded the image with gray) */
    int n_warnings;
    char warning[JMSG_LENGTH_MAX]; /* the first other warning (corrupt data), for the log */
    uint8_t *buf;    /* (h, w, 3) output, or (h, w, 4) for CMYK */
};

static void jpeg_on_error(j_common_ptr cinfo) {
    struct jpeg_ctx *c = (struct jpeg_ctx *)(void *)cinfo->err;
    if (!c->msg[0])
        cinfo->err->format_message(cinfo, c->msg);
    longjmp(c->jb, 1);
}

/* Level -1 is a warning; others are trace messages (ignored). A premature end of data is an
 * error after decoding (libjpeg would silently pad the page with gray; PIL refuses truncated
 * files too); other corrupt-data warnings are tolerated and logged once per page. */
static void jpeg_on_message(j_common_ptr cinfo, int level) {
    if (level >= 0)
        return;
    struct jpeg_ctx *c = (struct jpeg_ctx *)(void *)cinfo->err;
    if (cinfo->err->msg_code == JWRN_JPEG_EOF) {
        c->eof = true;
        return;
    }
    if (c->n_warnings++ == 0)
        cinfo->err->format_message(cinfo, c->warning);
}

static int exif_orientation(j_decompress_ptr cinfo) {
    int orientation = 1;
    for (jpeg_saved_marker_ptr m = cinfo->marker_list; m; m = m->next) {
        if (m->marker != JPEG_APP1 || m->data_length < 6 || memcmp(m->data, "Exif\0\0", 6))
            continue;
        ExifData *ed = exif_data_new_from_data(m->data, m->data_length);
        if (!ed)
            continue;
        ExifEntry *e = exif_data_get_entry(ed, EXIF_TAG_ORIENTATION);
        if (e && e->format == EXIF_FORMAT_SHORT && e->components >= 1 && e->size >= 2)
            orientation = exif_get_short(e->data, exif_data_get_byte_order(ed));
        exif_data_unref(ed);
        break;
    }
    return orientation;
}

static enum dp_status jpeg_render(struct dp_doc *d, int index, struct dp_page *out,
                                  struct dp_err *err) {
    (void)index;
    struct jpeg_ctx *c = dp_calloc(1, sizeof *c);
    if (!c)
        return dp_err_set(err, DP_ERR_NOMEM, "out of memory");
    enum dp_status st = DP_OK;
    struct jpeg_decompress_struct *ci = &c->cinfo;
    ci->err = jpeg_std_error(&c->pub);
    c->pub.error_exit = jpeg_on_error;
    c->pub.emit_message = jpeg_on_message;
    if (setjmp(c->jb)) {
        st = dp_err_set(err, DP_ERR_FORMAT, "JPEG damaged beyond repair: %s", c->msg);
        goto done;
    }
    jpeg_create_decompress(ci);
    c->created = true;
    jpeg_mem_src(ci, d->data, (unsigned long)d->len);
    jpeg_save_markers(ci, JPEG_APP1, JPEG_MARKER_MAX);
    jpeg_read_header(ci, TRUE);
    size_t bytes = 0;
    if ((st = dp__pixels_check(&bytes, d, 1, ci->image_width, ci->image_height, err)) != DP_OK)
        goto done;
    bool cmyk = ci->jpeg_color_space == JCS_CMYK || ci->jpeg_color_space == JCS_YCCK;
    ci->out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
    jpeg_start_decompress(ci);
    uint32_t w = ci->output_width, h = ci->output_height;
    size_t comps = (size_t)ci->output_components, row = (size_t)w * comps, buf_bytes = 0;
    if (w != ci->image_width || h != ci->image_height || comps != (cmyk ? 4u : 3u) ||
        !dp_size_mul(&buf_bytes, row, h)) {
        st = dp_err_set(err, DP_ERR_UNSUPPORTED, "unsupported JPEG layout");
        goto done;
    }
    c->buf = dp_malloc(buf_bytes);
    if (!c->buf) {
        st = dp_err_set(err, DP_ERR_NOMEM, "out of memory for %ux%u pixels", w, h);
        goto done;
    }
    while (ci->output_scanline < h) {
        JSAMPROW r = c->buf + (size_t)ci->output_scanline * row;
        jpeg_read_scanlines(ci, &r, 1);
    }
    if (cmyk) { /* Adobe files store inverted CMYK (PIL rawmode "CMYK;I") */
        bool inv = ci->saw_Adobe_marker;
        size_t n = (size_t)w * h;
        for (size_t i = 0; i < n; i++) {
            uint8_t *p = c->buf + 4 * i;
            uint32_t k = inv ? 255u - p[3] : p[3];
            uint8_t rgb[3];
            for (int j = 0; j < 3; j++)
                rgb[j] = dp__cmyk_channel(inv ? 255u - p[j] : p[j], k);
            memcpy(c->buf + 3 * i, rgb, 3);
        }
    }
    int orientation = exif_orientation(ci);
    if (ci->density_unit == JPEG_DENSITY_DPI)
        out->dpi = ci->X_density;
    else if (ci->density_unit == JPEG_DENSITY_DPCM)
        out->dpi = ci->X_density * CM_PER_INCH;
    jpeg_finish_decompress(ci);
    if (c->eof) {
        st = dp_err_set(err, DP_ERR_FORMAT,
                        "JPEG damaged beyond repair: data ends early (truncated file)");
        goto done;
    }
    if (c->n_warnings)
        DP_LOG_WARN("%s: page 1: JPEG data damaged (%d warning(s), first: %s); decoded anyway",
                    d->name, c->n_warnings, c->warning);
    out->rgb = c->buf;
    c->buf = NULL;
    out->width = (int)w;
    out->height = (int)h;
    if ((st = dp__orient_apply(out, orientation, err)) != DP_OK)
        goto done;
    out->src_width = out->width;
    out->src_height = out->height;
done:
    if (c->created)
        jpeg_destroy_decompress(ci);
    dp_free(c->buf);
    dp_free(c);
    return st;
}

enum dp_status dp__jpeg_open(struct dp_doc *d, struct dp_err *err) {
    (void)err;
    d->ops = &jpeg_ops;
    d->n_pages = 1;
    return DP_OK;
}

static const struct dp_doc_ops jpeg_ops = {jpeg_render, jpeg_close, NULL};
