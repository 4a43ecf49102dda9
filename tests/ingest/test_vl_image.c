/* Image preprocessing against the reference fixtures ($DP_FIXTURES/qwen25vl-tiny):
 * every row of smart_resize_table.json (errors included), the pil_bicubic cases byte-exact,
 * the spec's worked coefficient rows, and pixel_values / image_grid_thw of every image and
 * video case listed in manifest.json, decoded from the case's source PNGs (bit-exact). */
#include "t.h"

#include "dp_ingest.h"
#include "vl_tools.h"

#include <jansson.h>

#define FIX "qwen25vl-tiny"
#define MAX_IMAGES 16

static json_t *load_json(const char *rel) {
    char p[1024];
    json_error_t e;
    json_t *j = json_load_file(t_path(p, sizeof p, "DP_FIXTURES", rel), 0, &e);
    if (!j)
        fprintf(stderr, "cannot load %s: %s\n", p, e.text);
    return j;
}

static void test_smart_resize_table(void) {
    json_t *t = load_json(FIX "/smart_resize_table.json");
    T_CHECK(t != NULL);
    if (!t)
        return;
    json_t *rows = json_object_get(t, "rows");
    T_CHECK(json_array_size(rows) > 0);
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r) {
        int64_t h = json_integer_value(json_object_get(r, "height"));
        int64_t w = json_integer_value(json_object_get(r, "width"));
        int64_t f = json_integer_value(json_object_get(r, "factor"));
        int64_t mn = json_integer_value(json_object_get(r, "min_pixels"));
        int64_t mx = json_integer_value(json_object_get(r, "max_pixels"));
        json_t *ref = json_object_get(r, "transformers");
        int64_t oh = -1, ow = -1;
        struct vl_error err = {0};
        enum vl_status st = vl_smart_resize(&oh, &ow, h, w, f, mn, mx, &err);
        if (json_object_get(ref, "raises")) {
            T_CHECK_MSG(st != VL_OK && err.msg[0], "row %zu (%lldx%lld) should raise", i,
                        (long long)h, (long long)w);
        } else {
            json_t *res = json_object_get(ref, "result");
            int64_t eh = json_integer_value(json_array_get(res, 0));
            int64_t ew = json_integer_value(json_array_get(res, 1));
            T_CHECK_MSG(st == VL_OK && oh == eh && ow == ew,
                        "row %zu: smart_resize(%lld, %lld) = (%lld, %lld), want (%lld, %lld): %s",
                        i, (long long)h, (long long)w, (long long)oh, (long long)ow,
                        (long long)eh, (long long)ew, err.msg);
        }
    }
    json_decref(t);
}

/* Spec §2.4.1 worked rows (confirmed with Pillow). */
static void test_bicubic_rows(void) {
    struct vl_error err = {0};
    uint8_t src1[2 * 3], dst1[4 * 3];
    const uint8_t row1[2] = {10, 200};
    for (int x = 0; x < 2; x++)
        src1[3 * x] = src1[3 * x + 1] = src1[3 * x + 2] = row1[x];
    T_CHECK(vl_image_resize_bicubic(dst1, 4, 1, src1, 2, 1, &err) == VL_OK);
    const uint8_t want1[4] = {0, 49, 161, 217};
    for (int x = 0; x < 4; x++)
        T_EQ_I64(dst1[3 * x + 1], want1[x]);
    uint8_t src2[4 * 3], dst2[2 * 3];
    const uint8_t row2[4] = {10, 200, 30, 250};
    for (int x = 0; x < 4; x++)
        src2[3 * x] = src2[3 * x + 1] = src2[3 * x + 2] = row2[x];
    T_CHECK(vl_image_resize_bicubic(dst2, 2, 1, src2, 4, 1, &err) == VL_OK);
    T_EQ_I64(dst2[0], 91);
    T_EQ_I64(dst2[3], 152);
    /* vertical pass alone: the same row as a column */
    T_CHECK(vl_image_resize_bicubic(dst2, 1, 2, src2, 1, 4, &err) == VL_OK);
    T_EQ_I64(dst2[2], 91);
    T_EQ_I64(dst2[5], 152);
}

static void test_pil_bicubic(void) {
    char p[1024];
    struct vl_st_file *f = NULL;
    struct vl_error err = {0};
    T_CHECK(vl_st_open(&f, t_path(p, sizeof p, "DP_FIXTURES", FIX "/pil_bicubic/pil_bicubic.safetensors"),
                       &err) == VL_OK);
    if (!f)
        return;
    int cases = 0;
    for (int c = 0;; c++) {
        char ns[64], no[64];
        snprintf(ns, sizeof ns, "case%d.src", c);
        snprintf(no, sizeof no, "case%d.out", c);
        const struct vl_st_entry *s = vl_st_find(f, ns), *o = vl_st_find(f, no);
        if (!s || !o)
            break;
        cases++;
        uint8_t *dst = malloc(o->nbytes);
        T_CHECK(vl_image_resize_bicubic(dst, o->shape[1], o->shape[0], s->data, s->shape[1],
                                        s->shape[0], &err) == VL_OK);
        size_t bad = 0;
        for (size_t i = 0; i < o->nbytes; i++)
            bad += dst[i] != ((const uint8_t *)o->data)[i];
        T_CHECK_MSG(bad == 0, "pil_bicubic case %d: %zu of %zu bytes differ", c, bad, o->nbytes);
        free(dst);
    }
    T_CHECK(cases >= 3);
    vl_st_close(f);
}

/* Decodes a fixture PNG through the page source API (native size, no fitting). */
static uint8_t *load_rgb(const char *rel, int *w, int *h) {
    char p[1024];
    struct dp_doc *d = NULL;
    struct dp_err e = {0};
    if (dp_doc_open(&d, t_path(p, sizeof p, "DP_FIXTURES", rel), NULL, &e) != DP_OK) {
        fprintf(stderr, "%s\n", e.msg);
        return NULL;
    }
    struct dp_page pg;
    uint8_t *rgb = NULL;
    if (dp_doc_render(&pg, d, 0, &e) == DP_OK) {
        rgb = pg.rgb;
        *w = pg.width;
        *h = pg.height;
    } else {
        fprintf(stderr, "%s\n", e.msg);
    }
    dp_doc_close(d);
    return rgb;
}

static void compare_case(const char *id, const char *pv_name, const char *grid_name,
                         const struct vl_vision_input *in, int n) {
    char rel[512], p[1024];
    snprintf(rel, sizeof rel, FIX "/goldens/%s.safetensors", id);
    struct vl_st_file *f = NULL;
    struct vl_error err = {0};
    T_CHECK(vl_st_open(&f, t_path(p, sizeof p, "DP_FIXTURES", rel), &err) == VL_OK);
    if (!f)
        return;
    const struct vl_st_entry *pv = vl_st_find(f, pv_name), *g = vl_st_find(f, grid_name);
    T_CHECK(pv && g && !strcmp(pv->dtype, "F32") && !strcmp(g->dtype, "I64"));
    if (pv && g) {
        T_EQ_I64(g->shape[0], n);
        int64_t rows = 0;
        for (int i = 0; i < n; i++) {
            const int64_t *gw = (const int64_t *)g->data + 3 * i;
            T_CHECK_MSG(gw[0] == in[i].grid_t && gw[1] == in[i].grid_h && gw[2] == in[i].grid_w,
                        "%s image %d: grid %lld/%lld/%lld want %lld/%lld/%lld", id, i,
                        (long long)in[i].grid_t, (long long)in[i].grid_h,
                        (long long)in[i].grid_w, (long long)gw[0], (long long)gw[1],
                        (long long)gw[2]);
            rows += in[i].n_patches;
        }
        T_CHECK_MSG(pv->shape[0] == rows && pv->shape[1] == 1176, "%s: rows %lld want %lld", id,
                    (long long)rows, (long long)pv->shape[0]);
        if (pv->shape[0] == rows) {
            const float *want = pv->data;
            size_t bad = 0, first = 0;
            double maxd = 0;
            for (int i = 0; i < n; i++) {
                size_t k = (size_t)(in[i].n_patches * in[i].patch_dim);
                for (size_t j = 0; j < k; j++, want++) {
                    double d = fabs((double)in[i].pixel_values[j] - (double)*want);
                    if (d > 0 && !bad++)
                        first = j;
                    if (d > maxd)
                        maxd = d;
                }
            }
            T_CHECK_MSG(bad == 0, "%s: %zu values differ (first %zu, max abs diff %g)", id, bad,
                        first, maxd);
        }
    }
    vl_st_close(f);
}

static void test_golden_cases(void) {
    json_t *m = load_json(FIX "/manifest.json");
    T_CHECK(m != NULL);
    if (!m)
        return;
    size_t i;
    json_t *c;
    int n_image_cases = 0, n_video_cases = 0;
    json_array_foreach(json_object_get(m, "cases"), i, c) {
        const char *id = json_string_value(json_object_get(c, "id"));
        json_t *imgs = json_object_get(c, "images"), *vid = json_object_get(c, "video");
        struct vl_image_params prm;
        vl_image_params_default(&prm);
        prm.min_pixels = json_integer_value(json_object_get(c, "image_min_pixels"));
        prm.max_pixels = json_integer_value(json_object_get(c, "image_max_pixels"));
        struct vl_vision_input in[MAX_IMAGES] = {0};
        struct vl_error err = {0};
        int n = 0;
        if (json_array_size(imgs) > 0) {
            size_t k;
            json_t *im;
            json_array_foreach(imgs, k, im) {
                char rel[512];
                snprintf(rel, sizeof rel, FIX "/%s", json_string_value(json_object_get(im, "file")));
                int w = 0, h = 0;
                uint8_t *rgb = load_rgb(rel, &w, &h);
                T_CHECK(rgb != NULL);
                if (rgb && n < MAX_IMAGES)
                    T_CHECK_MSG(vl_image_preprocess(&in[n++], rgb, w, h, &prm, &err) == VL_OK,
                                "%s: %s", id, err.msg);
                free(rgb);
            }
            compare_case(id, "pixel_values", "image_grid_thw", in, n);
            n_image_cases++;
        } else if (json_is_object(vid)) {
            json_t *pp = json_object_get(m, "preprocessing");
            prm.min_pixels = json_integer_value(json_object_get(pp, "video_min_pixels"));
            prm.max_pixels = json_integer_value(json_object_get(pp, "video_max_pixels"));
            json_t *frames = json_object_get(vid, "frames");
            size_t nf = json_array_size(frames), k;
            const uint8_t *fr[MAX_IMAGES] = {0};
            int w = 0, h = 0;
            T_CHECK(nf > 0 && nf <= MAX_IMAGES);
            for (k = 0; k < nf && k < MAX_IMAGES; k++) {
                char rel[512];
                snprintf(rel, sizeof rel, FIX "/%s", json_string_value(json_array_get(frames, k)));
                fr[k] = load_rgb(rel, &w, &h);
                T_CHECK(fr[k] != NULL);
            }
            double fps = json_number_value(json_object_get(vid, "fps"));
            T_CHECK_MSG(vl_video_preprocess(&in[0], fr, (int64_t)nf, w, h, fps, &prm, &err) ==
                            VL_OK, "%s: %s", id, err.msg);
            n = 1;
            compare_case(id, "pixel_values_videos", "video_grid_thw", in, 1);
            json_t *sp = json_object_get(c, "second_per_grid_ts");
            T_NEAR(in[0].second_per_grid_t, json_number_value(json_array_get(sp, 0)), 1e-9);
            T_CHECK(in[0].is_video);
            for (k = 0; k < nf && k < MAX_IMAGES; k++)
                free((void *)fr[k]);
            n_video_cases++;
        }
        for (int j = 0; j < n; j++)
            vl_vision_input_free(&in[j]);
    }
    T_CHECK(n_image_cases >= 5);
    T_CHECK(n_video_cases >= 1);
    json_decref(m);
}

static void test_video_frames(void) {
    /* spec §3.5 worked example: 10 s at 30 fps -> 20 frames. */
    int64_t n = 0;
    struct vl_error err = {0};
    T_CHECK(vl_video_nframes(&n, 300, 30.0, 2.0, &err) == VL_OK);
    T_EQ_I64(n, 20);
    int64_t idx[20];
    vl_video_frame_indices(idx, 20, 300);
    const int64_t want[20] = {0,   16,  31,  47,  63,  79,  94,  110, 126, 142,
                              157, 173, 189, 205, 220, 236, 252, 268, 283, 299};
    for (int i = 0; i < 20; i++)
        T_EQ_I64(idx[i], want[i]);
    T_CHECK(vl_video_nframes(&n, 1, 30.0, 2.0, &err) != VL_OK);
}

static void test_params_and_errors(void) {
    char p[1024];
    struct vl_image_params prm;
    struct vl_error err = {0};
    T_CHECK(vl_image_params_load(&prm, t_path(p, sizeof p, "DP_FIXTURES", FIX "/model/preprocessor_config.json"),
                                 &err) == VL_OK);
    T_EQ_I64(prm.min_pixels, 3136);
    T_EQ_I64(prm.max_pixels, 12845056);
    T_EQ_I64(prm.patch_size, 14);
    T_NEAR(prm.image_std[2], 0.27577711, 1e-12);
    struct vl_error e2 = {0};
    T_CHECK(vl_image_params_load(&prm, "/nonexistent/preprocessor_config.json", &e2) == VL_ERR_IO);
    /* aspect ratio > 200 is refused by preprocess too */
    vl_image_params_default(&prm);
    uint8_t px[201 * 3] = {0};
    struct vl_vision_input in;
    struct vl_error e3 = {0};
    T_CHECK(vl_image_preprocess(&in, px, 201, 1, &prm, &e3) == VL_ERR_INVALID);
    /* a tiny image is upscaled to 56x56: 16 patches, grid 1x4x4 */
    struct vl_error e4 = {0};
    T_CHECK(vl_image_preprocess(&in, px, 1, 1, &prm, &e4) == VL_OK);
    T_EQ_I64(in.n_patches, 16);
    T_EQ_I64(in.grid_h, 4);
    vl_vision_input_free(&in);
    vl_vision_input_free(NULL);
}

int main(int argc, char **argv) {
    t_args(argc, argv);
    T_RUN(test_smart_resize_table);
    T_RUN(test_bicubic_rows);
    T_RUN(test_pil_bicubic);
    T_RUN(test_golden_cases);
    T_RUN(test_video_frames);
    T_RUN(test_params_and_errors);
    return t_done();
}
