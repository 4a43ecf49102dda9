/* Image preprocessing of Qwen2.5-VL (spec §2): smart_resize, PIL-exact bicubic resampling on
 * 8-bit RGB, rescale + normalise, temporal duplication and patchify into pixel_values rows in
 * 2x2 merge-block order. Also preprocessor_config.json parsing into struct vl_image_params.
 * Video (spec §3) lives in vl_video.c and reuses the static helpers through vl__image_*.
 * Pure functions over caller buffers: thread-safe. Float arithmetic relies on -std=c11
 * (gcc then does not contract a*b+c into FMA), which keeps PIL's coefficients bit-exact. */
#include "vl.h"
#include "vl_impl.h"
#include "vl_image_impl.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* PIL Resample.c constants: fixed-point precision and the Keys cubic parameter. */
#define PIL_PRECISION_BITS 22
#define PIL_BICUBIC_A      (-0.5)
#define PIL_BICUBIC_SUPPORT 2.0
/* Largest side accepted anywhere in this file (keeps h*w*3 products far from overflow). */
#define VL_IMAGE_MAX_SIDE ((int64_t)1 << 20)

/* ---- parameters ------------------------------------------------------------------------ */

/* OpenAI CLIP mean/std, as published in preprocessor_config.json (spec §1.3); the one copy. */
const double vl_image_default_mean[VL_IMAGE_CHANNELS] = {0.48145466, 0.4578275, 0.40821073};
const double vl_image_default_std[VL_IMAGE_CHANNELS] = {0.26862954, 0.26130258, 0.27577711};

void vl_image_params_default(struct vl_image_params *out) {
    memset(out, 0, sizeof *out);
    out->min_pixels = VL_IMAGE_DEFAULT_MIN_PIXELS;
    out->max_pixels = VL_IMAGE_DEFAULT_MAX_PIXELS;
    out->patch_size = VL_IMAGE_DEFAULT_PATCH;
    out->temporal_patch_size = VL_IMAGE_DEFAULT_TEMPORAL;
    out->merge_size = VL_IMAGE_DEFAULT_MERGE;
    for (int c = 0; c < VL_IMAGE_CHANNELS; c++) {
        out->image_mean[c] = vl_image_default_mean[c];
        out->image_std[c] = vl_image_default_std[c];
    }
    out->rescale_factor = VL_IMAGE_DEFAULT_RESCALE;
    out->fused_normalize = false;
}

static enum vl_status get_int(json_t *root, const char *key, int64_t *dst, const char *path,
                              struct vl_error *err) {
    json_t *v = json_object_get(root, key);
    if (!v)
        return VL_OK;
    if (!json_is_integer(v) || json_integer_value(v) <= 0)
        return vl__err(err, VL_ERR_FORMAT, "%s: '%s' must be a positive integer", path, key);
    *dst = (int64_t)json_integer_value(v);
    return VL_OK;
}

static enum vl_status get_triple(json_t *root, const char *key, double dst[VL_IMAGE_CHANNELS],
                                 const char *path, struct vl_error *err) {
    json_t *v = json_object_get(root, key);
    if (!v)
        return VL_OK;
    if (!json_is_array(v) || json_array_size(v) != VL_IMAGE_CHANNELS)
        return vl__err(err, VL_ERR_FORMAT, "%s: '%s' must be an array of %d numbers", path, key,
                       VL_IMAGE_CHANNELS);
    for (size_t c = 0; c < VL_IMAGE_CHANNELS; c++) {
        json_t *e = json_array_get(v, c);
        if (!json_is_number(e))
            return vl__err(err, VL_ERR_FORMAT, "%s: '%s'[%zu] is not a number", path, key, c);
        dst[c] = json_number_value(e);
    }
    return VL_OK;
}

enum vl_status vl_image_params_load(struct vl_image_params *out, const char *path,
                                    struct vl_error *err) {
    vl_image_params_default(out);
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root)
        return vl__err(err, VL_ERR_IO, "%s: line %d: %s", path, jerr.line, jerr.text);
    enum vl_status st = VL_OK;
    if (!json_is_object(root)) {
        st = vl__err(err, VL_ERR_FORMAT, "%s: not a JSON object", path);
        goto done;
    }
    /* Newer files spell the budget as size {shortest_edge, longest_edge}; explicit keys win. */
    json_t *size = json_object_get(root, "size");
    if (json_is_object(size)) {
        if ((st = get_int(size, "shortest_edge", &out->min_pixels, path, err)) != VL_OK ||
            (st = get_int(size, "longest_edge", &out->max_pixels, path, err)) != VL_OK)
            goto done;
    }
    if ((st = get_int(root, "min_pixels", &out->min_pixels, path, err)) != VL_OK ||
        (st = get_int(root, "max_pixels", &out->max_pixels, path, err)) != VL_OK ||
        (st = get_int(root, "patch_size", &out->patch_size, path, err)) != VL_OK ||
        (st = get_int(root, "temporal_patch_size", &out->temporal_patch_size, path, err)) !=
            VL_OK ||
        (st = get_int(root, "merge_size", &out->merge_size, path, err)) != VL_OK ||
        (st = get_triple(root, "image_mean", out->image_mean, path, err)) != VL_OK ||
        (st = get_triple(root, "image_std", out->image_std, path, err)) != VL_OK)
        goto done;
    json_t *rf = json_object_get(root, "rescale_factor");
    if (rf) {
        if (!json_is_number(rf) || json_number_value(rf) <= 0) {
            st = vl__err(err, VL_ERR_FORMAT, "%s: 'rescale_factor' must be a positive number",
                         path);
            goto done;
        }
        out->rescale_factor = json_number_value(rf);
    }
    for (int c = 0; c < VL_IMAGE_CHANNELS; c++)
        if (!(out->image_std[c] > 0)) {
            st = vl__err(err, VL_ERR_FORMAT, "%s: image_std[%d] must be > 0", path, c);
            goto done;
        }
    if (out->min_pixels > out->max_pixels)
        st = vl__err(err, VL_ERR_FORMAT, "%s: min_pixels %lld > max_pixels %lld", path,
                     (long long)out->min_pixels, (long long)out->max_pixels);
done:
    json_decref(root);
    return st;
}

/* ---- smart_resize ---------------------------------------------------------------------- */

enum vl_status vl_smart_resize(int64_t *out_h, int64_t *out_w, int64_t height, int64_t width,
                               int64_t factor, int64_t min_pixels, int64_t max_pixels,
                               struct vl_error *err) {
    if (height <= 0 || width <= 0)
        return vl__err(err, VL_ERR_INVALID, "smart_resize: image size %lldx%lld (WxH) has a zero side",
                       (long long)width, (long long)height);
    if (height > VL_IMAGE_MAX_SIDE || width > VL_IMAGE_MAX_SIDE)
        return vl__err(err, VL_ERR_LIMIT, "smart_resize: image size %lldx%lld exceeds %lld per side",
                       (long long)width, (long long)height, (long long)VL_IMAGE_MAX_SIDE);
    if (factor <= 0 || min_pixels < 0 || max_pixels <= 0)
        return vl__err(err, VL_ERR_INVALID, "smart_resize: bad factor %lld or pixel budget",
                       (long long)factor);
    double hd = (double)height, wd = (double)width, f = (double)factor;
    double ratio = (height > width ? hd : wd) / (height > width ? wd : hd);
    if (ratio > VL_IMAGE_MAX_ASPECT_RATIO)
        return vl__err(err, VL_ERR_INVALID,
                       "smart_resize: absolute aspect ratio must be smaller than %g, got %.17g",
                       VL_IMAGE_MAX_ASPECT_RATIO, ratio);
    /* nearbyint rounds half to even in the default mode, as Python's round() does. */
    int64_t h_bar = (int64_t)nearbyint(hd / f) * factor;
    int64_t w_bar = (int64_t)nearbyint(wd / f) * factor;
    if (h_bar * w_bar > max_pixels) {
        double beta = sqrt((double)(height * width) / (double)max_pixels);
        h_bar = (int64_t)floor(hd / beta / f) * factor;
        w_bar = (int64_t)floor(wd / beta / f) * factor;
        if (h_bar < factor)
            h_bar = factor;
        if (w_bar < factor)
            w_bar = factor;
    } else if (h_bar * w_bar < min_pixels) {
        double beta = sqrt((double)min_pixels / (double)(height * width));
        h_bar = (int64_t)ceil(hd * beta / f) * factor;
        w_bar = (int64_t)ceil(wd * beta / f) * factor;
    }
    *out_h = h_bar;
    *out_w = w_bar;
    return VL_OK;
}

/* ---- PIL bicubic ----------------------------------------------------------------------- */

static double bicubic_filter(double x) {
    if (x < 0.0)
        x = -x;
    if (x < 1.0)
        return ((PIL_BICUBIC_A + 2.0) * x - (PIL_BICUBIC_A + 3.0)) * x * x + 1;
    if (x < 2.0)
        return (((x - 5) * x + 8) * x - 4) * PIL_BICUBIC_A;
    return 0.0;
}

void vl__resample_coeffs_free(struct vl_resample_coeffs *c) {
    if (!c)
        return;
    vl__free(c->bounds);
    vl__free(c->kk);
    memset(c, 0, sizeof *c);
}

/* PIL precompute_coeffs + normalize_coeffs_8bpc for one axis (box [0, in_size]). */
enum vl_status vl__resample_coeffs(struct vl_resample_coeffs *out, int64_t in_size,
                                   int64_t out_size, struct vl_error *err) {
    memset(out, 0, sizeof *out);
    double scale = (double)in_size / (double)out_size;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = PIL_BICUBIC_SUPPORT * filterscale;
    int64_t ksize = (int64_t)ceil(support) * 2 + 1;
    if (ksize > VL_IMAGE_MAX_SIDE * 2 + 1 || out_size > VL_IMAGE_MAX_SIDE)
        return vl__err(err, VL_ERR_LIMIT, "bicubic resize %lld -> %lld: too large",
                       (long long)in_size, (long long)out_size);
    double *pre = vl__malloc((size_t)ksize * sizeof *pre); /* (ksize) double weights of one output */
    out->bounds = vl__malloc((size_t)out_size * 2 * sizeof *out->bounds); /* (out, 2) xmin, count */
    out->kk = vl__malloc((size_t)out_size * (size_t)ksize * sizeof *out->kk); /* (out, ksize) */
    if (!pre || !out->bounds || !out->kk) {
        vl__free(pre);
        vl__resample_coeffs_free(out);
        return vl__err(err, VL_ERR_NOMEM, "bicubic resize: out of memory for coefficients");
    }
    out->ksize = ksize;
    for (int64_t xx = 0; xx < out_size; xx++) {
        double center = ((double)xx + 0.5) * scale;
        double ww = 0.0;
        double ss = 1.0 / filterscale;
        int64_t xmin = (int64_t)(int)(center - support + 0.5); /* (int) truncation as in PIL */
        if (xmin < 0)
            xmin = 0;
        int64_t xmax = (int64_t)(int)(center + support + 0.5);
        if (xmax > in_size)
            xmax = in_size;
        xmax -= xmin;
        for (int64_t x = 0; x < xmax; x++) {
            double w = bicubic_filter(((double)(x + xmin) - center + 0.5) * ss);
            pre[x] = w;
            ww += w;
        }
        int32_t *k = &out->kk[xx * ksize];
        for (int64_t x = 0; x < ksize; x++) {
            double w = 0.0;
            if (x < xmax)
                w = ww != 0.0 ? pre[x] / ww : pre[x];
            k[x] = w < 0 ? (int32_t)(-0.5 + w * (1 << PIL_PRECISION_BITS))
                         : (int32_t)(0.5 + w * (1 << PIL_PRECISION_BITS));
        }
        out->bounds[xx * 2 + 0] = xmin;
        out->bounds[xx * 2 + 1] = xmax;
    }
    vl__free(pre);
    return VL_OK;
}

static uint8_t clip8(int32_t in) {
    if (in >= (1 << PIL_PRECISION_BITS << 8))
        return 255;
    if (in <= 0)
        return 0;
    return (uint8_t)(in >> PIL_PRECISION_BITS);
}

/* dst (rows, out_w, 3) = horizontal pass over src rows [row0, row0 + rows) of (., src_w, 3). */
static void resample_horizontal(uint8_t *dst, const uint8_t *src, int64_t src_w, int64_t row0,
                                int64_t rows, int64_t out_w, const struct vl_resample_coeffs *c) {
    for (int64_t yy = 0; yy < rows; yy++) {
        const uint8_t *in = src + (size_t)(row0 + yy) * (size_t)src_w * VL_IMAGE_CHANNELS;
        uint8_t *o = dst + (size_t)yy * (size_t)out_w * VL_IMAGE_CHANNELS;
        for (int64_t xx = 0; xx < out_w; xx++) {
            int64_t xmin = c->bounds[xx * 2], xmax = c->bounds[xx * 2 + 1];
            const int32_t *k = &c->kk[xx * c->ksize];
            int32_t ss0 = 1 << (PIL_PRECISION_BITS - 1), ss1 = ss0, ss2 = ss0;
            for (int64_t x = 0; x < xmax; x++) {
                const uint8_t *p = in + (size_t)(x + xmin) * VL_IMAGE_CHANNELS;
                ss0 += p[0] * k[x];
                ss1 += p[1] * k[x];
                ss2 += p[2] * k[x];
            }
            o[xx * VL_IMAGE_CHANNELS + 0] = clip8(ss0);
            o[xx * VL_IMAGE_CHANNELS + 1] = clip8(ss1);
            o[xx * VL_IMAGE_CHANNELS + 2] = clip8(ss2);
        }
    }
}

/* dst (out_h, w, 3) = vertical pass; bounds are relative to src row 0. */
static void resample_vertical(uint8_t *dst, const uint8_t *src, int64_t w, int64_t out_h,
                              const struct vl_resample_coeffs *c, int64_t row_shift) {
    size_t stride = (size_t)w * VL_IMAGE_CHANNELS;
    for (int64_t yy = 0; yy < out_h; yy++) {
        int64_t ymin = c->bounds[yy * 2] - row_shift, ymax = c->bounds[yy * 2 + 1];
        const int32_t *k = &c->kk[yy * c->ksize];
        uint8_t *o = dst + (size_t)yy * stride;
        for (int64_t xx = 0; xx < w * VL_IMAGE_CHANNELS; xx++) {
            int32_t ss = 1 << (PIL_PRECISION_BITS - 1);
            for (int64_t y = 0; y < ymax; y++)
                ss += src[(size_t)(y + ymin) * stride + (size_t)xx] * k[y];
            o[xx] = clip8(ss);
        }
    }
}

enum vl_status vl_image_resize_bicubic(uint8_t *dst, int64_t dst_w, int64_t dst_h,
                                       const uint8_t *src, int64_t src_w, int64_t src_h,
                                       struct vl_error *err) {
    if (dst_w <= 0 || dst_h <= 0 || src_w <= 0 || src_h <= 0 || dst_w > VL_IMAGE_MAX_SIDE ||
        dst_h > VL_IMAGE_MAX_SIDE || src_w > VL_IMAGE_MAX_SIDE || src_h > VL_IMAGE_MAX_SIDE)
        return vl__err(err, VL_ERR_INVALID, "bicubic resize %lldx%lld -> %lldx%lld: bad size",
                       (long long)src_w, (long long)src_h, (long long)dst_w, (long long)dst_h);
    bool need_h = dst_w != src_w, need_v = dst_h != src_h;
    if (!need_h && !need_v) {
        memcpy(dst, src, (size_t)src_w * (size_t)src_h * VL_IMAGE_CHANNELS);
        return VL_OK;
    }
    struct vl_resample_coeffs ch = {0}, cv = {0};
    uint8_t *tmp = NULL; /* (rows used by the vertical pass, dst_w, 3) */
    enum vl_status st = VL_OK;
    if (need_h && (st = vl__resample_coeffs(&ch, src_w, dst_w, err)) != VL_OK)
        goto done;
    if (need_v && (st = vl__resample_coeffs(&cv, src_h, dst_h, err)) != VL_OK)
        goto done;
    if (!need_v) {
        resample_horizontal(dst, src, src_w, 0, src_h, dst_w, &ch);
        goto done;
    }
    if (!need_h) {
        resample_vertical(dst, src, src_w, dst_h, &cv, 0);
        goto done;
    }
    /* Horizontal pass only over the source rows the vertical pass reads (as PIL). */
    int64_t first = cv.bounds[0];
    int64_t last = cv.bounds[(dst_h - 1) * 2] + cv.bounds[(dst_h - 1) * 2 + 1];
    tmp = vl__malloc((size_t)(last - first) * (size_t)dst_w * VL_IMAGE_CHANNELS);
    if (!tmp) {
        st = vl__err(err, VL_ERR_NOMEM, "bicubic resize: out of memory (%lldx%lld)",
                     (long long)dst_w, (long long)(last - first));
        goto done;
    }
    resample_horizontal(tmp, src, src_w, first, last - first, dst_w, &ch);
    resample_vertical(dst, tmp, dst_w, dst_h, &cv, first);
done:
    vl__free(tmp);
    vl__resample_coeffs_free(&ch);
    vl__resample_coeffs_free(&cv);
    return st;
}

/* ---- normalise + patchify -------------------------------------------------------------- */

void vl_vision_input_free(struct vl_vision_input *in) {
    if (!in)
        return;
    vl__free(in->pixel_values);
    memset(in, 0, sizeof *in);
}

/* lut (3, 256): normalised value of each uint8 per channel (spec §2.5, slow or fused form). */
void vl__image_norm_lut(float lut[VL_IMAGE_CHANNELS][256], const struct vl_image_params *p,
                        bool fused) {
    for (int c = 0; c < VL_IMAGE_CHANNELS; c++) {
        float mean = (float)p->image_mean[c], std = (float)p->image_std[c];
        float inv = (float)(1.0 / p->rescale_factor);
        float mean_f = mean * inv, std_f = std * inv;
        for (int u = 0; u < 256; u++) {
            if (fused) {
                lut[c][u] = ((float)u - mean_f) / std_f;
            } else {
                float v = (float)((double)u * p->rescale_factor);
                lut[c][u] = (v - mean) / std;
            }
        }
    }
}

enum vl_status vl__image_check_params(const struct vl_image_params *p, struct vl_error *err) {
    if (p->patch_size <= 0 || p->merge_size <= 0 || p->temporal_patch_size <= 0 ||
        p->patch_size > VL_IMAGE_MAX_SIDE || p->merge_size > VL_IMAGE_MAX_SIDE ||
        p->temporal_patch_size > VL_IMAGE_MAX_SIDE || !(p->rescale_factor > 0))
        return vl__err(err, VL_ERR_INVALID, "image params: bad patch/merge/temporal size");
    return VL_OK;
}

/* Allocates out for n_frames frames of (h, w) (multiples of patch*merge) and patchifies:
 * frames[t] (h, w, 3) uint8 with t in [0, n_frames), n_frames a multiple of TP. */
enum vl_status vl__image_patchify(struct vl_vision_input *out, const uint8_t *const *frames,
                                  int64_t n_frames, int64_t w, int64_t h,
                                  const struct vl_image_params *p, bool fused,
                                  struct vl_error *err) {
    const int64_t P = p->patch_size, TP = p->temporal_patch_size, M = p->merge_size;
    const int64_t C = VL_IMAGE_CHANNELS;
    memset(out, 0, sizeof *out);
    if (n_frames <= 0 || n_frames % TP != 0 || h % (P * M) != 0 || w % (P * M) != 0)
        return vl__err(err, VL_ERR_INTERNAL, "patchify: %lld frames of %lldx%lld not aligned",
                       (long long)n_frames, (long long)w, (long long)h);
    int64_t gt = n_frames / TP, gh = h / P, gw = w / P;
    int64_t patch_dim = C * TP * P * P;
    int64_t n_patches = gt * gh * gw;
    if (n_patches > VL_IMAGE_MAX_SIDE * VL_IMAGE_MAX_SIDE / P ||
        (size_t)n_patches > SIZE_MAX / sizeof(float) / (size_t)patch_dim)
        return vl__err(err, VL_ERR_LIMIT, "patchify: %lld patches is too many",
                       (long long)n_patches);
    float *pv = vl__malloc((size_t)n_patches * (size_t)patch_dim * sizeof *pv); /* (N, patch_dim) */
    if (!pv)
        return vl__err(err, VL_ERR_NOMEM, "patchify: out of memory for %lld x %lld floats",
                       (long long)n_patches, (long long)patch_dim);
    float lut[VL_IMAGE_CHANNELS][256];
    vl__image_norm_lut(lut, p, fused);
    const int64_t bh_n = gh / M, bw_n = gw / M;
    for (int64_t g = 0; g < gt; g++)
        for (int64_t bh = 0; bh < bh_n; bh++)
            for (int64_t bw = 0; bw < bw_n; bw++)
                for (int64_t mh = 0; mh < M; mh++)
                    for (int64_t mw = 0; mw < M; mw++) {
                        int64_t r = ((g * bh_n + bh) * bw_n + bw) * M * M + mh * M + mw;
                        float *row = pv + r * patch_dim;
                        int64_t y0 = (bh * M + mh) * P, x0 = (bw * M + mw) * P;
                        for (int64_t c = 0; c < C; c++)
                            for (int64_t tp = 0; tp < TP; tp++) {
                                const uint8_t *fr = frames[g * TP + tp];
                                for (int64_t py = 0; py < P; py++) {
                                    const uint8_t *src =
                                        fr + ((size_t)(y0 + py) * (size_t)w + (size_t)x0) * C;
                                    float *dst = row + ((c * TP + tp) * P + py) * P;
                                    for (int64_t px = 0; px < P; px++)
                                        dst[px] = lut[c][src[px * C + c]];
                                }
                            }
                    }
    out->pixel_values = pv;
    out->n_patches = n_patches;
    out->patch_dim = patch_dim;
    out->grid_t = gt;
    out->grid_h = gh;
    out->grid_w = gw;
    return VL_OK;
}

/* Resizes rgb (h, w, 3) to (th, tw) into a new buffer, or returns NULL in *out when no
 * resize is needed (the caller then uses rgb directly). */
enum vl_status vl__image_resize_alloc(uint8_t **out, const uint8_t *rgb, int64_t w, int64_t h,
                                      int64_t tw, int64_t th, struct vl_error *err) {
    *out = NULL;
    if (tw == w && th == h)
        return VL_OK;
    uint8_t *buf = vl__malloc((size_t)tw * (size_t)th * VL_IMAGE_CHANNELS); /* (th, tw, 3) */
    if (!buf)
        return vl__err(err, VL_ERR_NOMEM, "resize to %lldx%lld: out of memory", (long long)tw,
                       (long long)th);
    enum vl_status st = vl_image_resize_bicubic(buf, tw, th, rgb, w, h, err);
    if (st != VL_OK) {
        vl__free(buf);
        return st;
    }
    *out = buf;
    return VL_OK;
}

enum vl_status vl_image_preprocess(struct vl_vision_input *out, const uint8_t *rgb, int64_t w,
                                   int64_t h, const struct vl_image_params *p,
                                   struct vl_error *err) {
    memset(out, 0, sizeof *out);
    enum vl_status st = vl__image_check_params(p, err);
    if (st != VL_OK)
        return st;
    int64_t th = 0, tw = 0;
    st = vl_smart_resize(&th, &tw, h, w, p->patch_size * p->merge_size, p->min_pixels,
                         p->max_pixels, err);
    if (st != VL_OK)
        return st;
    uint8_t *resized = NULL;
    if ((st = vl__image_resize_alloc(&resized, rgb, w, h, tw, th, err)) != VL_OK)
        return st;
    const uint8_t *img = resized ? resized : rgb;
    /* Temporal duplication (spec §2.6): a still image is TP copies of the same frame. */
    const uint8_t *frames_stack[VL_IMAGE_MAX_TEMPORAL];
    if (p->temporal_patch_size > VL_IMAGE_MAX_TEMPORAL) {
        vl__free(resized);
        return vl__err(err, VL_ERR_UNSUPPORTED, "temporal_patch_size %lld > %d",
                       (long long)p->temporal_patch_size, VL_IMAGE_MAX_TEMPORAL);
    }
    for (int64_t t = 0; t < p->temporal_patch_size; t++)
        frames_stack[t] = img;
    st = vl__image_patchify(out, frames_stack, p->temporal_patch_size, tw, th, p,
                            p->fused_normalize, err);
    vl__free(resized);
    return st;
}
