/* Page sources: format sniffing by magic bytes, dp_doc open/render/close dispatch to the
 * per-format back ends, the pixel cap, orientation and alpha helpers, dp_page_fit (PIL-exact
 * bicubic to the model's smart_resize target) and --pages selection parsing.
 * A dp_doc is single-threaded; distinct docs may be used from distinct threads. */
#include "dp_ingest.h"
#include "dp_ingest_impl.h"

#include "dp_alloc.h"
#include "dp_fs.h"
#include "dp_limits.h"
#include "dp_vl.h"
#include "vl_tools.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <math.h>
#include <string.h>

/* ---- sniffing -------------------------------------------------------------------------- */

static const uint8_t png_magic[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
#define PDF_MAGIC "%PDF-"

enum dp_format dp_format_sniff(const uint8_t *buf, size_t n) {
    if (n >= sizeof png_magic && !memcmp(buf, png_magic, sizeof png_magic))
        return DP_FORMAT_PNG;
    if (n >= 3 && buf[0] == 0xff && buf[1] == 0xd8 && buf[2] == 0xff)
        return DP_FORMAT_JPEG;
    /* Classic TIFF (42) and BigTIFF (43), both byte orders. */
    if (n >= 4 && ((buf[0] == 'I' && buf[1] == 'I' && (buf[2] == 42 || buf[2] == 43) && !buf[3]) ||
                   (buf[0] == 'M' && buf[1] == 'M' && !buf[2] && (buf[3] == 42 || buf[3] == 43))))
        return DP_FORMAT_TIFF;
    /* PDF readers accept junk before the header within the first KB (as poppler does). */
    size_t lim = n < DP_SNIFF_BYTES ? n : DP_SNIFF_BYTES;
    size_t ml = sizeof PDF_MAGIC - 1;
    for (size_t i = 0; i + ml <= lim; i++)
        if (!memcmp(buf + i, PDF_MAGIC, ml))
            return DP_FORMAT_PDF;
    return DP_FORMAT_UNKNOWN;
}

const char *dp_format_name(enum dp_format f) {
    switch (f) {
    case DP_FORMAT_PDF: return "pdf";
    case DP_FORMAT_TIFF: return "tiff";
    case DP_FORMAT_PNG: return "png";
    case DP_FORMAT_JPEG: return "jpeg";
    case DP_FORMAT_UNKNOWN: break;
    }
    return "unknown";
}

static enum dp_status unknown_format(const char *name, const uint8_t *buf, size_t n,
                                     struct dp_err *err) {
    if (n == 0)
        return dp_err_set(err, DP_ERR_UNSUPPORTED, "%s: empty file: not a PDF, TIFF, PNG or JPEG",
                          name);
    char hex[3 * 8 + 1] = "";
    size_t k = n < 8 ? n : 8;
    for (size_t i = 0; i < k; i++)
        snprintf(hex + 3 * i, sizeof hex - 3 * i, "%02x ", buf[i]);
    if (k)
        hex[3 * k - 1] = '\0';
    return dp_err_set(err, DP_ERR_UNSUPPORTED,
                      "%s: not a PDF, TIFF, PNG or JPEG file (starts with bytes %s)", name, hex);
}

enum dp_status dp_format_sniff_file(enum dp_format *out, const char *path, struct dp_err *err) {
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return dp_err_set_errno(err, DP_ERR_IO, errno, "%s: cannot open", path);
    uint8_t head[DP_SNIFF_BYTES];
    size_t n = fread(head, 1, sizeof head, fp);
    int rerr = ferror(fp) ? errno : 0;
    fclose(fp);
    if (rerr)
        return dp_err_set_errno(err, DP_ERR_IO, rerr, "%s: cannot read", path);
    *out = dp_format_sniff(head, n);
    if (*out == DP_FORMAT_UNKNOWN)
        return unknown_format(path, head, n, err);
    return DP_OK;
}

/* ---- options and pages ----------------------------------------------------------------- */

void dp_ingest_opts_init(struct dp_ingest_opts *o) {
    memset(o, 0, sizeof *o);
    o->dpi = DP_DEFAULT_DPI;
    o->min_pixels = VL_IMAGE_DEFAULT_MIN_PIXELS;
    o->max_pixels = DP_DEFAULT_MAX_PIXELS; /* not the checkpoint's 12.8 Mpx (docs/batch.md) */
    o->factor = (int64_t)VL_IMAGE_DEFAULT_PATCH * VL_IMAGE_DEFAULT_MERGE;
    o->max_decode_pixels = DP_DEFAULT_MAX_DECODE_PIXELS;
    o->password = NULL;
    o->long_side = 0;
}

void dp_page_free(struct dp_page *p) {
    if (!p)
        return;
    dp_free(p->rgb);
    memset(p, 0, sizeof *p);
}

enum dp_status dp__pixels_check(size_t *out_bytes, const struct dp_doc *d, int page_no, int64_t w,
                                int64_t h, struct dp_err *err) {
    if (w <= 0 || h <= 0)
        return dp_err_set(err, DP_ERR_FORMAT, "%s: page %d: invalid size %lldx%lld", d->name,
                          page_no, (long long)w, (long long)h);
    size_t px = 0;
    if (w > INT_MAX || h > INT_MAX || !dp_size_mul(&px, (size_t)w, (size_t)h) ||
        px > d->opts.max_decode_pixels)
        return dp_err_set(err, DP_ERR_LIMIT,
                          "%s: page %d: pixel limit exceeded: %lldx%lld pixels, max %zu",
                          d->name, page_no, (long long)w, (long long)h,
                          d->opts.max_decode_pixels);
    if (!dp_size_mul(out_bytes, px, 3))
        return dp_err_set(err, DP_ERR_LIMIT, "%s: page %d: pixel limit exceeded", d->name,
                          page_no);
    return DP_OK;
}

uint8_t dp__over_white(uint8_t c, uint8_t a) {
    /* PIL ImagingAlphaComposite with an opaque white destination: 7 bits of precision,
     * coef1 = a*128, coef2 = (255-a)*128, rounded division by 255 via SHIFTFORDIV255. */
    const uint32_t prec = 7, white = 255;
    uint32_t coef1 = (uint32_t)a << prec;
    uint32_t coef2 = (white << prec) - coef1;
    uint32_t tmp = (uint32_t)c * coef1 + white * coef2 + (0x80u << prec);
    return (uint8_t)((((tmp >> 8) + tmp) >> 8) >> prec);
}

uint8_t dp__cmyk_channel(uint32_t c, uint32_t k) {
    /* PIL's cmyk2rgb: nk = 255 - k; out = nk - c * nk / 255, the product rounded (MULDIV255) */
    uint32_t nk = 255u - k, t = c * nk + 128u;
    uint32_t prod = ((t >> 8) + t) >> 8;
    return (uint8_t)(nk > prod ? nk - prod : 0u);
}

enum dp_status dp__orient_apply(struct dp_page *p, int orientation, struct dp_err *err) {
    if (orientation < 2 || orientation > 8)
        return DP_OK;
    const int w = p->width, h = p->height;
    const bool swap = orientation >= 5;
    const int ow = swap ? h : w, oh = swap ? w : h;
    size_t n = (size_t)w * (size_t)h * 3;
    uint8_t *dst = dp_malloc(n); /* (oh, ow, 3) */
    if (!dst)
        return dp_err_set(err, DP_ERR_NOMEM, "page %d: out of memory for orientation",
                          p->page_no);
    for (int y = 0; y < oh; y++)
        for (int x = 0; x < ow; x++) {
            int sx = x, sy = y;
            switch (orientation) {
            case 2: sx = w - 1 - x; break;                    /* mirror left-right */
            case 3: sx = w - 1 - x; sy = h - 1 - y; break;    /* rotate 180 */
            case 4: sy = h - 1 - y; break;                    /* mirror top-bottom */
            case 5: sx = y; sy = x; break;                    /* transpose */
            case 6: sx = y; sy = h - 1 - x; break;            /* rotate 90 clockwise */
            case 7: sx = w - 1 - y; sy = h - 1 - x; break;    /* transverse */
            case 8: sx = w - 1 - y; sy = x; break;            /* rotate 90 counter-clockwise */
            }
            const uint8_t *s = p->rgb + ((size_t)sy * (size_t)w + (size_t)sx) * 3;
            uint8_t *o = dst + ((size_t)y * (size_t)ow + (size_t)x) * 3;
            o[0] = s[0];
            o[1] = s[1];
            o[2] = s[2];
        }
    dp_free(p->rgb);
    p->rgb = dst;
    p->width = ow;
    p->height = oh;
    p->orientation = orientation;
    return DP_OK;
}

void dp__long_side(int64_t *w, int64_t *h, int64_t long_side) {
    if (long_side <= 0 || *w <= 0 || *h <= 0)
        return;
    int64_t w0 = *w, h0 = *h;
    if (w0 >= h0) {
        *w = long_side;
        *h = (int64_t)fmax(1.0, round((double)h0 * (double)long_side / (double)w0));
    } else {
        *h = long_side;
        *w = (int64_t)fmax(1.0, round((double)w0 * (double)long_side / (double)h0));
    }
}

enum dp_status dp_page_fit(struct dp_page *p, const struct dp_ingest_opts *o, struct dp_err *err) {
    if (p->at_target)
        return DP_OK;
    struct vl_error verr = {0};
    int64_t th = 0, tw = 0;
    int64_t h = p->height, w = p->width;
    dp__long_side(&w, &h, o->long_side);
    if (vl_smart_resize(&th, &tw, h, w, o->factor, o->min_pixels, o->max_pixels, &verr) != VL_OK)
        return dp_vl_err(err, &verr, DP_ERR_FORMAT, "page %d", p->page_no);
    if (tw == p->width && th == p->height) {
        p->at_target = true;
        return DP_OK;
    }
    size_t px = 0, bytes = 0;
    if (tw > INT_MAX || th > INT_MAX || !dp_size_mul(&px, (size_t)tw, (size_t)th) ||
        px > o->max_decode_pixels || !dp_size_mul(&bytes, px, 3))
        return dp_err_set(err, DP_ERR_LIMIT,
                          "page %d: pixel limit exceeded: target %lldx%lld, max %zu pixels",
                          p->page_no, (long long)tw, (long long)th, o->max_decode_pixels);
    uint8_t *dst = dp_malloc(bytes); /* (th, tw, 3) */
    if (!dst)
        return dp_err_set(err, DP_ERR_NOMEM, "page %d: out of memory resizing to %lldx%lld",
                          p->page_no, (long long)tw, (long long)th);
    if (vl_image_resize_bicubic(dst, tw, th, p->rgb, p->width, p->height, &verr) != VL_OK) {
        dp_free(dst);
        return dp_vl_err(err, &verr, DP_ERR_INTERNAL, "page %d", p->page_no);
    }
    dp_free(p->rgb);
    p->rgb = dst;
    p->width = (int)tw;
    p->height = (int)th;
    p->at_target = true;
    return DP_OK;
}

/* ---- documents ------------------------------------------------------------------------- */

static enum dp_status doc_new(struct dp_doc **out, const char *name, const struct dp_ingest_opts *o,
                              struct dp_err *err) {
    struct dp_doc *d = dp_calloc(1, sizeof *d);
    if (!d)
        return dp_err_set(err, DP_ERR_NOMEM, "%s: out of memory", name);
    d->name = dp_strdup(name);
    if (o) {
        d->opts = *o;
    } else {
        dp_ingest_opts_init(&d->opts);
    }
    if (d->opts.password)
        d->password = dp_strdup(d->opts.password);
    d->opts.password = d->password;
    if (!d->name || (o && o->password && !d->password)) {
        dp_doc_close(d);
        return dp_err_set(err, DP_ERR_NOMEM, "%s: out of memory", name);
    }
    *out = d;
    return DP_OK;
}

static enum dp_status doc_dispatch(struct dp_doc *d, bool pdf_from_memory, struct dp_err *err) {
    switch (d->format) {
    case DP_FORMAT_PDF: return dp__pdf_open(d, pdf_from_memory, err);
    case DP_FORMAT_TIFF: return dp__tiff_open(d, err);
    case DP_FORMAT_PNG: return dp__png_open(d, err);
    case DP_FORMAT_JPEG: return dp__jpeg_open(d, err);
    case DP_FORMAT_UNKNOWN: break;
    }
    return unknown_format(d->name, d->data, d->len, err);
}

static enum dp_status doc_finish_open(struct dp_doc **out, struct dp_doc *d, enum dp_status st,
                                      struct dp_err *err) {
    if (st == DP_OK && (d->n_pages < 0 || d->n_pages > DP_MAX_PAGES))
        st = dp_err_set(err, DP_ERR_LIMIT, "%s: %d pages, max %d", d->name, d->n_pages,
                        DP_MAX_PAGES);
    if (st != DP_OK) {
        dp_err_prefix(err, "%s", d->name);
        dp_doc_close(d);
        return st;
    }
    *out = d;
    return DP_OK;
}

enum dp_status dp_doc_open(struct dp_doc **out, const char *path, const struct dp_ingest_opts *o,
                           struct dp_err *err) {
    *out = NULL;
    enum dp_format fmt;
    enum dp_status st = dp_format_sniff_file(&fmt, path, err);
    if (st != DP_OK)
        return st;
    struct dp_doc *d = NULL;
    if ((st = doc_new(&d, path, o, err)) != DP_OK)
        return st;
    d->format = fmt;
    if (fmt != DP_FORMAT_PDF) {
        char *buf = NULL;
        st = dp_file_read(path, DP_MAX_IMAGE_FILE_BYTES, &buf, &d->len, err);
        d->data = (uint8_t *)buf;
    }
    if (st == DP_OK)
        st = doc_dispatch(d, false, err);
    return doc_finish_open(out, d, st, err);
}

enum dp_status dp_doc_open_mem(struct dp_doc **out, const void *data, size_t len, const char *name,
                               const struct dp_ingest_opts *o, struct dp_err *err) {
    *out = NULL;
    struct dp_doc *d = NULL;
    enum dp_status st = doc_new(&d, name ? name : "<memory>", o, err);
    if (st != DP_OK)
        return st;
    d->data = dp_malloc(len ? len : 1);
    if (!d->data)
        return doc_finish_open(out, d, dp_err_set(err, DP_ERR_NOMEM, "out of memory"), err);
    if (len)
        memcpy(d->data, data, len);
    d->len = len;
    d->format = dp_format_sniff(d->data, len);
    return doc_finish_open(out, d, doc_dispatch(d, true, err), err);
}

void dp_doc_close(struct dp_doc *d) {
    if (!d)
        return;
    if (d->ops && d->ops->close)
        d->ops->close(d);
    dp_free(d->data);
    dp_free(d->name);
    dp_free(d->password);
    dp_free(d);
}

int dp_doc_page_count(const struct dp_doc *d) { return d->n_pages; }
enum dp_format dp_doc_format(const struct dp_doc *d) { return d->format; }
const char *dp_doc_name(const struct dp_doc *d) { return d->name; }

enum dp_status dp_doc_render(struct dp_page *out, struct dp_doc *d, int index, struct dp_err *err) {
    memset(out, 0, sizeof *out);
    if (index < 0 || index >= d->n_pages)
        return dp_err_set(err, DP_ERR_USAGE, "%s: page %d out of range (document has %d)",
                          d->name, index + 1, d->n_pages);
    out->page_no = index + 1;
    out->format = d->format;
    out->orientation = 1;
    enum dp_status st = d->ops->render(d, index, out, err);
    if (st != DP_OK) {
        dp_page_free(out);
        dp_err_prefix(err, "%s: page %d", d->name, index + 1);
        return st;
    }
    return DP_OK;
}

enum dp_status dp_doc_page_has_text(struct dp_doc *d, int index, bool *out, struct dp_err *err) {
    *out = false;
    if (index < 0 || index >= d->n_pages)
        return dp_err_set(err, DP_ERR_USAGE, "%s: page %d out of range (document has %d)",
                          d->name, index + 1, d->n_pages);
    if (!d->ops->has_text)
        return DP_OK;
    enum dp_status st = d->ops->has_text(d, index, out, err);
    if (st != DP_OK)
        dp_err_prefix(err, "%s", d->name);
    return st;
}

/* ---- page selection -------------------------------------------------------------------- */

static bool parse_page_no(const char **s, int *out) {
    const char *p = *s;
    long v = 0;
    if (*p < '0' || *p > '9')
        return false;
    while (*p >= '0' && *p <= '9') {
        v = v * 10 + (*p - '0');
        if (v > DP_MAX_PAGES)
            return false;
        p++;
    }
    if (v < 1)
        return false;
    *out = (int)v;
    *s = p;
    return true;
}

enum dp_status dp_page_sel_parse(struct dp_page_sel *out, const char *spec, struct dp_err *err) {
    memset(out, 0, sizeof *out);
    if (!spec || !*spec)
        return DP_OK;
    snprintf(out->spec, sizeof out->spec, "%s", spec);
    const char *p = spec;
    while (*p) {
        struct dp_page_range r;
        if (!parse_page_no(&p, &r.first))
            goto bad;
        r.last = r.first;
        if (*p == '-') {
            p++;
            if (*p == ',' || !*p)
                r.last = DP_PAGE_LAST;
            else if (!parse_page_no(&p, &r.last) || r.last < r.first)
                goto bad;
        }
        if (*p == ',') {
            p++;
            if (!*p)
                goto bad;
        } else if (*p) {
            goto bad;
        }
        struct dp_page_range *nr = dp_reallocarray(out->ranges, (size_t)out->n + 1, sizeof *nr);
        if (!nr) {
            dp_page_sel_free(out);
            return dp_err_set(err, DP_ERR_NOMEM, "--pages: out of memory");
        }
        out->ranges = nr;
        out->ranges[out->n++] = r;
    }
    return DP_OK;
bad:
    dp_page_sel_free(out);
    return dp_err_set(err, DP_ERR_USAGE,
                      "--pages: expected a list like 1-3,7 or 5- (pages 1..%d), got '%s'",
                      DP_MAX_PAGES, spec);
}

void dp_page_sel_free(struct dp_page_sel *s) {
    if (!s)
        return;
    DP_FREE(s->ranges);
    s->n = 0;
}

bool dp_page_sel_has(const struct dp_page_sel *s, int page_no) {
    if (!s || s->n == 0)
        return true;
    for (int i = 0; i < s->n; i++)
        if (page_no >= s->ranges[i].first && page_no <= s->ranges[i].last)
            return true;
    return false;
}

int dp_page_sel_count(const struct dp_page_sel *s, int n_pages) {
    if (!s || s->n == 0)
        return n_pages;
    int k = 0;
    for (int i = 1; i <= n_pages; i++)
        k += dp_page_sel_has(s, i);
    return k;
}

enum dp_status dp_page_sel_check(const struct dp_page_sel *s, int n_pages, const char *name,
                                 struct dp_err *err) {
    if (dp_page_sel_count(s, n_pages) > 0 || !s || s->n == 0)
        return DP_OK;
    return dp_err_set(err, DP_ERR_USAGE, "%s: --pages %s selects no page (the document has %d)",
                      name, s->spec, n_pages);
}

bool dp_page_sel_beyond(const struct dp_page_sel *s, int n_pages, char *buf, size_t cap) {
    char list[128] = "";
    size_t len = 0;
    int n_beyond = 0; /* pages named; an open or closed range counts as several */
    for (int i = 0; s && i < s->n; i++) {
        const struct dp_page_range *r = &s->ranges[i];
        int first = r->first > n_pages ? r->first : n_pages + 1;
        if (r->last < first || (r->last == DP_PAGE_LAST && r->first <= n_pages))
            continue; /* within the document, or an open range that starts inside it */
        const char *sep = n_beyond ? "," : "";
        int k = r->last == DP_PAGE_LAST ? snprintf(list + len, sizeof list - len, "%s%d-", sep, first)
                : r->last > first ? snprintf(list + len, sizeof list - len, "%s%d-%d", sep, first,
                                             r->last)
                                  : snprintf(list + len, sizeof list - len, "%s%d", sep, first);
        if (k > 0)
            len = len + (size_t)k < sizeof list ? len + (size_t)k : sizeof list - 1;
        n_beyond += r->last == first ? 1 : 2;
    }
    if (n_beyond && cap)
        snprintf(buf, cap, "--pages %s: %s %s %s beyond the end of the document (%d page%s), "
                 "ignored", s->spec, n_beyond > 1 ? "pages" : "page", list,
                 n_beyond > 1 ? "are" : "is", n_pages, n_pages == 1 ? "" : "s");
    return n_beyond > 0;
}
