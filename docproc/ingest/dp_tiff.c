/* TIFF back end (libtiff, decoded from memory): the only file that touches libtiff.
 * Multi-page (main IFD chain; IFD loops end the open with an error), every photometric and
 * compression libtiff's RGBA interface handles (bilevel, grey 8/16, palette, RGB 8/16, CMYK,
 * YCbCr, alpha; none/LZW/Deflate/PackBits/CCITT G3/G4/JPEG/old JPEG), with grey/RGB/CMYK
 * samples converted as PIL converts them (see decode_exact), Orientation applied,
 * X/YResolution recorded. libtiff errors reach dp_err through a per-handle handler
 * (TIFFOpenOptionsSetErrorHandlerExtR), never the process-wide one. One handle per dp_doc. */
#include "dp_ingest.h"
#include "dp_ingest_impl.h"

#include "dp_alloc.h"
#include "dp_limits.h"
#include "dp_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <tiffio.h>

#define TIFF_MSG_MAX 200
#define TIFF_RESUNIT_INCH 2
#define TIFF_RESUNIT_CM 3
#define CM_PER_INCH 2.54
#define TIFF_BIGTIFF_VERSION 43

struct tiff_impl {
    TIFF *tif;
    const uint8_t *data; /* borrowed d->data */
    size_t len;
    toff_t pos;
    char msg[TIFF_MSG_MAX]; /* first libtiff error since the last reset */
    const char *name;
};

/* ---- memory I/O and handlers ----------------------------------------------------------- */

static tmsize_t mem_read(thandle_t h, void *buf, tmsize_t size) {
    struct tiff_impl *im = h;
    if (size <= 0 || im->pos >= im->len)
        return 0;
    size_t n = (size_t)size;
    if (n > im->len - im->pos)
        n = im->len - (size_t)im->pos;
    memcpy(buf, im->data + im->pos, n);
    im->pos += n;
    return (tmsize_t)n;
}

static tmsize_t mem_write(thandle_t h, void *buf, tmsize_t size) {
    (void)h;
    (void)buf;
    (void)size;
    return -1;
}

static toff_t mem_seek(thandle_t h, toff_t off, int whence) {
    struct tiff_impl *im = h;
    toff_t base = whence == SEEK_CUR ? im->pos : whence == SEEK_END ? (toff_t)im->len : 0;
    if (off > UINT64_MAX - base)
        return (toff_t)-1;
    im->pos = base + off; /* reads past the end return 0 bytes */
    return im->pos;
}

static int mem_close(thandle_t h) {
    (void)h;
    return 0;
}

static toff_t mem_size(thandle_t h) { return ((struct tiff_impl *)h)->len; }

static int mem_map(thandle_t h, void **base, toff_t *size) {
    (void)h;
    (void)base;
    (void)size;
    return 0;
}

static void mem_unmap(thandle_t h, void *base, toff_t size) {
    (void)h;
    (void)base;
    (void)size;
}

#ifdef DP_HAVE_TIFF_OPEN_OPTIONS
/* libtiff hands us its printf format: let the compiler check it as one */
static int on_error(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

static int on_error(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap) {
    (void)tif;
    struct tiff_impl *im = user;
    if (!im->msg[0]) {
        int k = snprintf(im->msg, sizeof im->msg, "%s: ", module ? module : "libtiff");
        if (k < 0 || (size_t)k >= sizeof im->msg)
            k = 0;
        vsnprintf(im->msg + k, sizeof im->msg - (size_t)k, fmt, ap);
    }
    return 1; /* handled: do not pass to the global handler */
}

static int on_warning(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap) {
    (void)tif;
    (void)user;
    (void)module;
    (void)fmt;
    (void)ap;
    return 1; /* unknown tags and the like: not worth a line per page */
}
#endif

static const char *last_msg(const struct tiff_impl *im, const char *fallback) {
    return im->msg[0] ? im->msg : fallback;
}

static void tiff_close(struct dp_doc *d) {
    struct tiff_impl *im = d->impl;
    if (!im)
        return;
    if (im->tif)
        TIFFClose(im->tif);
    dp_free(im);
    d->impl = NULL;
}

/* ---- IFD chain check ------------------------------------------------------------------- */

static uint64_t rd(const uint8_t *p, int nbytes, bool le) {
    uint64_t v = 0;
    for (int i = 0; i < nbytes; i++)
        v |= (uint64_t)p[le ? i : nbytes - 1 - i] << (8 * i);
    return v;
}

/* The next-IFD pointer stored after the directory at off (classic or BigTIFF). */
static bool next_ifd_offset(const struct tiff_impl *im, uint64_t off, uint64_t *out) {
    const bool le = im->data[0] == 'I', big = rd(im->data + 2, 2, le) == TIFF_BIGTIFF_VERSION;
    const int cnt_bytes = big ? 8 : 2, entry = big ? 20 : 12, ptr = big ? 8 : 4;
    if (off > im->len || im->len - off < (uint64_t)cnt_bytes)
        return false;
    uint64_t count = rd(im->data + off, cnt_bytes, le);
    if (count > im->len / (uint64_t)entry)
        return false;
    uint64_t at = off + (uint64_t)cnt_bytes + count * (uint64_t)entry;
    if (at > im->len || im->len - at < (uint64_t)ptr)
        return false;
    *out = rd(im->data + at, ptr, le);
    return true;
}

/* Whether target is the offset of one of the first n directories. */
static bool ifd_seen(TIFF *tif, int n, uint64_t target) {
    for (int i = 0; i < n; i++)
        if (TIFFSetDirectory(tif, (tdir_t)i) && TIFFCurrentDirOffset(tif) == target)
            return true;
    return false;
}

/* ---- rendering ------------------------------------------------------------------------- */

static void record_resolution(TIFF *tif, struct dp_page *out) {
    float xr = 0, yr = 0;
    uint16_t unit = 0;
    if (TIFFGetField(tif, TIFFTAG_XRESOLUTION, &xr))
        out->x_resolution = xr;
    if (TIFFGetField(tif, TIFFTAG_YRESOLUTION, &yr))
        out->y_resolution = yr;
    TIFFGetFieldDefaulted(tif, TIFFTAG_RESOLUTIONUNIT, &unit);
    out->resolution_unit = unit;
    if (out->x_resolution > 0 && unit == TIFF_RESUNIT_INCH)
        out->dpi = out->x_resolution;
    else if (out->x_resolution > 0 && unit == TIFF_RESUNIT_CM)
        out->dpi = out->x_resolution * CM_PER_INCH;
}

/* ---- decoding ------------------------------------------------------------------------------ */

/* Layouts decoded from the samples the way PIL does (TiffImagePlugin's unpackers, then the
 * processor's convert_to_rgb), not through TIFFRGBAImage, whose arithmetic differs from PIL's:
 * 16-bit samples keep their high byte (libtiff rounds v * 255 / 65535), CMYK goes through PIL's
 * rounded cmyk2rgb (libtiff truncates), and grey + alpha is composited over white (libtiff's
 * grey path returns it unpremultiplied), and associated alpha is divided out as PIL's "RGBa"
 * unpacker does before compositing. Striped, contiguous, unsigned samples only; every other
 * layout (bilevel, palette, YCbCr, tiles, planes, 16-bit grey ...) goes through TIFFRGBAImage. */
enum exact_kind { EXACT_GREY, EXACT_RGB, EXACT_CMYK };

struct exact_layout {
    enum exact_kind kind;
    int spp, bps;
    bool alpha;  /* last sample is alpha */
    bool premul; /* ... associated (colour premultiplied by it): 8-bit RGB only */
    bool invert; /* min-is-white */
};

static bool exact_layout(TIFF *tif, struct exact_layout *L) {
    uint16_t photo = 0, spp = 1, bps = 1, planar = PLANARCONFIG_CONTIG;
    uint16_t fmt = SAMPLEFORMAT_UINT, ink = INKSET_CMYK, compression = COMPRESSION_NONE;
    uint16_t n_extra = 0, *extra = NULL;
    if (TIFFIsTiled(tif) || !TIFFGetField(tif, TIFFTAG_PHOTOMETRIC, &photo))
        return false;
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLESPERPIXEL, &spp);
    TIFFGetFieldDefaulted(tif, TIFFTAG_BITSPERSAMPLE, &bps);
    TIFFGetFieldDefaulted(tif, TIFFTAG_PLANARCONFIG, &planar);
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLEFORMAT, &fmt);
    TIFFGetFieldDefaulted(tif, TIFFTAG_INKSET, &ink);
    TIFFGetFieldDefaulted(tif, TIFFTAG_COMPRESSION, &compression);
    TIFFGetFieldDefaulted(tif, TIFFTAG_EXTRASAMPLES, &n_extra, &extra);
    if (planar != PLANARCONFIG_CONTIG || fmt != SAMPLEFORMAT_UINT ||
        compression == COMPRESSION_OJPEG || (bps != 8 && bps != 16) || n_extra > 1 ||
        (n_extra == 1 && (!extra || (extra[0] != EXTRASAMPLE_UNASSALPHA &&
                                     extra[0] != EXTRASAMPLE_ASSOCALPHA))))
        return false;
    *L = (struct exact_layout){.spp = spp, .bps = bps, .alpha = n_extra == 1};
    L->premul = L->alpha && extra[0] == EXTRASAMPLE_ASSOCALPHA;
    if (L->premul && (photo != PHOTOMETRIC_RGB || bps != 8))
        return false;
    switch (photo) {
    case PHOTOMETRIC_MINISBLACK:
    case PHOTOMETRIC_MINISWHITE: /* 16-bit grey: TIFFRGBAImage (docs/ingestion.md) */
        L->kind = EXACT_GREY;
        L->invert = photo == PHOTOMETRIC_MINISWHITE;
        return bps == 8 && spp == 1 + n_extra && !(L->invert && L->alpha);
    case PHOTOMETRIC_RGB: L->kind = EXACT_RGB; return spp == 3 + n_extra;
    case PHOTOMETRIC_SEPARATED: L->kind = EXACT_CMYK; return ink == INKSET_CMYK && spp == 4;
    default: return false;
    }
}

/* Sample c of pixel x of a decoded row, reduced to 8 bits as PIL's ";16" unpackers do. */
static uint32_t sample8(const struct exact_layout *L, const uint8_t *row, uint32_t x, int c) {
    size_t i = (size_t)x * (size_t)L->spp + (size_t)c;
    if (L->bps == 8)
        return row[i];
    uint16_t v; /* native byte order: libtiff swabs 16-bit samples when it reads them */
    memcpy(&v, row + 2 * i, sizeof v);
    return (uint32_t)v >> 8;
}

static void exact_row(const struct exact_layout *L, const uint8_t *row, uint32_t w, uint8_t *rgb) {
    for (uint32_t x = 0; x < w; x++, rgb += 3) {
        uint32_t s[4];
        for (int c = 0; c < L->spp; c++)
            s[c] = sample8(L, row, x, c);
        switch (L->kind) {
        case EXACT_GREY:
            for (int c = 0; c < 3; c++)
                rgb[c] = (uint8_t)(L->invert ? 255u - s[0] : s[0]);
            break;
        case EXACT_RGB:
            for (int c = 0; c < 3; c++)
                rgb[c] = (uint8_t)s[c];
            break;
        case EXACT_CMYK:
            for (int c = 0; c < 3; c++)
                rgb[c] = dp__cmyk_channel(s[c], s[3]);
            break;
        }
        if (!L->alpha)
            continue;
        uint32_t a = s[L->spp - 1];
        for (int c = 0; c < 3; c++) {
            uint32_t v = rgb[c];
            if (L->premul) /* PIL's unpackRGBa: v * 255 / a, truncated and clipped; 0 if a = 0 */
                v = a == 0 ? 0u : v * 255u / a > 255u ? 255u : v * 255u / a;
            rgb[c] = dp__over_white((uint8_t)v, (uint8_t)a);
        }
    }
}

static enum dp_status decode_exact(struct tiff_impl *im, const struct exact_layout *L, uint32_t w,
                                   uint32_t h, size_t rgb_bytes, uint8_t **out,
                                   struct dp_err *err) {
    TIFF *tif = im->tif;
    uint64_t line = TIFFScanlineSize64(tif);
    size_t want = 0;
    if (!dp_size_mul(&want, (size_t)w * (size_t)L->spp, (size_t)L->bps / 8) || line != want)
        return dp_err_set(err, DP_ERR_FORMAT, "TIFF damaged beyond repair: scanline of %llu bytes",
                          (unsigned long long)line);
    uint8_t *row = dp_malloc((size_t)line), *rgb = dp_malloc(rgb_bytes);
    if (!row || !rgb) {
        dp_free(row);
        dp_free(rgb);
        return dp_err_set(err, DP_ERR_NOMEM, "out of memory for %ux%u pixels", w, h);
    }
    for (uint32_t y = 0; y < h; y++) {
        if (TIFFReadScanline(tif, row, y, 0) < 0) {
            dp_free(row);
            dp_free(rgb);
            return dp_err_set(err, DP_ERR_FORMAT, "TIFF damaged beyond repair: %s",
                              last_msg(im, "decoding failed"));
        }
        exact_row(L, row, w, rgb + (size_t)y * (size_t)w * 3);
    }
    dp_free(row);
    *out = rgb;
    return DP_OK;
}

static enum dp_status decode_rgba(struct tiff_impl *im, uint32_t w, uint32_t h, size_t rgb_bytes,
                                  uint8_t **out, struct dp_err *err) {
    TIFF *tif = im->tif;
    char emsg[1024] = "";
    if (!TIFFRGBAImageOK(tif, emsg))
        return dp_err_set(err, DP_ERR_UNSUPPORTED, "unsupported TIFF photometric/format: %s",
                          emsg);
    size_t raster_bytes = 0;
    if (!dp_size_mul(&raster_bytes, (size_t)w * (size_t)h, sizeof(uint32_t)))
        return dp_err_set(err, DP_ERR_LIMIT, "pixel limit exceeded");
    uint32_t *raster = dp_malloc(raster_bytes); /* (h, w) packed ABGR, premultiplied */
    if (!raster)
        return dp_err_set(err, DP_ERR_NOMEM, "out of memory for %ux%u pixels", w, h);
    TIFFRGBAImage img;
    if (!TIFFRGBAImageBegin(&img, tif, 1, emsg)) {
        dp_free(raster);
        return dp_err_set(err, DP_ERR_UNSUPPORTED, "unsupported TIFF photometric/format: %s",
                          emsg);
    }
    /* Ask for the stored orientation: rows come out in file order, and the Orientation tag
     * (including the transposing values 5-8, which TIFFRGBAImage cannot do) is applied later. */
    img.req_orientation = img.orientation;
    int ok = TIFFRGBAImageGet(&img, raster, w, h);
    TIFFRGBAImageEnd(&img);
    if (!ok) {
        dp_free(raster);
        return dp_err_set(err, DP_ERR_FORMAT, "TIFF damaged beyond repair: %s",
                          last_msg(im, "decoding failed"));
    }
    /* In place: ABGR words -> RGB bytes over white (byte 3i never passes word i). */
    uint8_t *rgb = (uint8_t *)raster;
    size_t n = (size_t)w * (size_t)h;
    for (size_t i = 0; i < n; i++) {
        uint32_t px = raster[i];
        uint32_t bg = 255u - TIFFGetA(px);
        uint32_t r = TIFFGetR(px) + bg, g = TIFFGetG(px) + bg, b = TIFFGetB(px) + bg;
        rgb[3 * i + 0] = (uint8_t)(r > 255u ? 255u : r);
        rgb[3 * i + 1] = (uint8_t)(g > 255u ? 255u : g);
        rgb[3 * i + 2] = (uint8_t)(b > 255u ? 255u : b);
    }
    uint8_t *shrunk = dp_realloc(rgb, rgb_bytes);
    *out = shrunk ? shrunk : rgb;
    return DP_OK;
}

static enum dp_status tiff_render(struct dp_doc *d, int index, struct dp_page *out,
                                  struct dp_err *err) {
    struct tiff_impl *im = d->impl;
    TIFF *tif = im->tif;
    im->msg[0] = '\0';
    if (!TIFFSetDirectory(tif, (tdir_t)index))
        return dp_err_set(err, DP_ERR_FORMAT, "TIFF damaged beyond repair: %s",
                          last_msg(im, "cannot read directory"));
    uint32_t w = 0, h = 0;
    uint16_t orientation = ORIENTATION_TOPLEFT, compression = COMPRESSION_NONE;
    if (!TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &w) || !TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &h))
        return dp_err_set(err, DP_ERR_FORMAT, "TIFF damaged beyond repair: no image size");
    TIFFGetFieldDefaulted(tif, TIFFTAG_ORIENTATION, &orientation);
    TIFFGetFieldDefaulted(tif, TIFFTAG_COMPRESSION, &compression);
    size_t bytes = 0;
    enum dp_status st = dp__pixels_check(&bytes, d, index + 1, w, h, err);
    if (st != DP_OK)
        return st;
    if (!TIFFIsCODECConfigured(compression))
        return dp_err_set(err, DP_ERR_UNSUPPORTED, "unsupported TIFF compression %u",
                          (unsigned)compression);
    struct exact_layout layout;
    uint8_t *rgb = NULL;
    st = exact_layout(tif, &layout) ? decode_exact(im, &layout, w, h, bytes, &rgb, err)
                                    : decode_rgba(im, w, h, bytes, &rgb, err);
    if (st != DP_OK)
        return st;
    out->rgb = rgb;
    out->width = (int)w;
    out->height = (int)h;
    record_resolution(tif, out);
    if ((st = dp__orient_apply(out, orientation, err)) != DP_OK)
        return st;
    out->src_width = out->width;
    out->src_height = out->height;
    return DP_OK;
}

static const struct dp_doc_ops tiff_ops = {tiff_render, tiff_close, NULL};

enum dp_status dp__tiff_open(struct dp_doc *d, struct dp_err *err) {
    struct tiff_impl *im = dp_calloc(1, sizeof *im);
    if (!im)
        return dp_err_set(err, DP_ERR_NOMEM, "out of memory");
    d->impl = im;
    d->ops = &tiff_ops;
    im->data = d->data;
    im->len = d->len;
    im->name = d->name;
#ifdef DP_HAVE_TIFF_OPEN_OPTIONS
    TIFFOpenOptions *oo = TIFFOpenOptionsAlloc();
    if (!oo)
        return dp_err_set(err, DP_ERR_NOMEM, "out of memory");
    TIFFOpenOptionsSetErrorHandlerExtR(oo, on_error, im);
    TIFFOpenOptionsSetWarningHandlerExtR(oo, on_warning, im);
    TIFFOpenOptionsSetMaxSingleMemAlloc(oo, (tmsize_t)DP_TIFF_MAX_SINGLE_ALLOC);
    im->tif = TIFFClientOpenExt(d->name, "rm", im, mem_read, mem_write, mem_seek, mem_close,
                                mem_size, mem_map, mem_unmap, oo);
    TIFFOpenOptionsFree(oo);
#else
    im->tif = TIFFClientOpen(d->name, "rm", im, mem_read, mem_write, mem_seek, mem_close,
                             mem_size, mem_map, mem_unmap);
#endif
    if (!im->tif)
        return dp_err_set(err, DP_ERR_FORMAT, "TIFF damaged beyond repair: %s",
                          last_msg(im, "cannot read header"));
    /* Count the main IFD chain. libtiff 4.5 refuses a directory it has seen (IFD loop) by
     * returning 0 like at the end of the chain, so the next-IFD pointer is checked here. */
    int n = 1;
    uint64_t last_off = 0;
    for (;;) {
        last_off = TIFFCurrentDirOffset(im->tif);
        if (n > DP_MAX_PAGES)
            return dp_err_set(err, DP_ERR_LIMIT, "more than %d TIFF directories", DP_MAX_PAGES);
        im->msg[0] = '\0';
        if (!TIFFReadDirectory(im->tif))
            break;
        n++;
    }
    uint64_t next = 0;
    bool ok = next_ifd_offset(im, last_off, &next);
    if (!ok || next != 0 || im->msg[0]) {
        if (ok && next != 0 && ifd_seen(im->tif, n, next))
            return dp_err_set(err, DP_ERR_FORMAT,
                              "TIFF IFD loop: directory %d points back to offset %llu", n,
                              (unsigned long long)next);
        return dp_err_set(err, DP_ERR_FORMAT, "TIFF directory chain broken after %d page(s): %s",
                          n, last_msg(im, "unreadable next directory"));
    }
    d->n_pages = n;
    return DP_OK;
}
