/* MRoPE positions and tables: get_rope_index against position_ids / rope_deltas of every golden
 * case (input_ids + grids from the golden files), the section-selected cos/sin tables against
 * lm.rope_cos / lm.rope_sin, the spec's worked examples (§6.2-§6.4) on a synthetic config, and
 * the placeholder-mismatch errors. */
#include "t.h"
#include "llm_golden.h"
#include "vl_llm_impl.h"

static struct vl_config cfg;

static void golden_case(const char *id) {
    struct vl_st_file *f = lg_open(id);
    T_CHECK_MSG(f != NULL, "%s: golden file", id);
    if (!f)
        return;
    size_t n_ids, n_pos, n_img, n_vid, n_sgt, n_delta, n_cos, n_sin;
    int64_t *ids64 = lg_i64(f, "input_ids", &n_ids);
    int64_t *want = lg_i64(f, "position_ids", &n_pos);
    int64_t *delta = lg_i64(f, "rope_deltas", &n_delta);
    int64_t *img = lg_i64(f, "image_grid_thw", &n_img);
    int64_t *vid = lg_i64(f, "video_grid_thw", &n_vid);
    float *sgt = lg_f32(f, "second_per_grid_ts", &n_sgt);
    float *wcos = lg_f32(f, "lm.rope_cos", &n_cos);
    float *wsin = lg_f32(f, "lm.rope_sin", &n_sin);
    T_CHECK(ids64 && want && delta && n_pos == 3 * n_ids);
    struct vl_vision_input vis[8];
    int nv = 0;
    memset(vis, 0, sizeof vis);
    for (size_t i = 0; img && i < n_img / 3 && nv < 8; i++, nv++) {
        vis[nv].grid_t = img[3 * i];
        vis[nv].grid_h = img[3 * i + 1];
        vis[nv].grid_w = img[3 * i + 2];
    }
    for (size_t i = 0; vid && i < n_vid / 3 && nv < 8; i++, nv++) {
        vis[nv].grid_t = vid[3 * i];
        vis[nv].grid_h = vid[3 * i + 1];
        vis[nv].grid_w = vid[3 * i + 2];
        vis[nv].is_video = true;
        vis[nv].second_per_grid_t = sgt && i < n_sgt ? sgt[i] : 1.0;
    }
    int32_t *ids = malloc(n_ids * sizeof *ids);
    int64_t *pos = malloc(3 * n_ids * sizeof *pos);
    for (size_t i = 0; i < n_ids; i++)
        ids[i] = (int32_t)ids64[i];
    int64_t got_delta = 12345;
    struct vl_error err = {0};
    enum vl_status st =
        vl__rope_index(pos, &got_delta, ids, (int64_t)n_ids, &cfg, vis, nv, &err);
    T_CHECK_MSG(st == VL_OK, "%s: rope_index: %s", id, err.msg);
    size_t bad = 0;
    for (size_t i = 0; i < 3 * n_ids; i++)
        bad += pos[i] != want[i];
    T_CHECK_MSG(bad == 0, "%s: %zu position ids differ", id, bad);
    T_EQ_I64(got_delta, delta[0]);
    /* tables */
    const int64_t hd = cfg.text.head_dim;
    float *inv = malloc((size_t)hd / 2 * sizeof *inv);
    float *c = malloc(n_ids * (size_t)hd * sizeof *c), *s = malloc(n_ids * (size_t)hd * sizeof *s);
    vl__rope_inv_freq(inv, hd, cfg.text.rope_theta);
    vl__mrope_tables(c, s, pos, (int64_t)n_ids, (int64_t)n_ids, inv, hd, cfg.text.mrope_section);
    double mc = 0, ms = 0;
    if (wcos && wsin && n_cos == n_ids * (size_t)hd) {
        lg_rel_l2(c, wcos, n_cos, &mc);
        lg_rel_l2(s, wsin, n_sin, &ms);
    }
    T_CHECK_MSG(wcos && mc <= 1e-6 && ms <= 1e-6, "%s: rope tables max abs %g / %g", id, mc, ms);
    printf("%-24s S=%4zu delta=%4lld positions exact, rope cos/sin max abs %.2g / %.2g\n", id,
           n_ids, (long long)got_delta, mc, ms);
    free(inv);
    free(c);
    free(s);
    free(ids);
    free(pos);
    free(ids64);
    free(want);
    free(delta);
    free(img);
    free(vid);
    free(sgt);
    free(wcos);
    free(wsin);
    vl_st_close(f);
}

/* Builds ids: text(n0) then, per block, start, pads, end, text(nk). */
static int64_t build(int32_t *ids, const int64_t *text, const struct vl_vision_input *vis, int nv) {
    int64_t n = 0;
    for (int64_t i = 0; i < text[0]; i++)
        ids[n++] = 100;
    for (int k = 0; k < nv; k++) {
        ids[n++] = cfg.vision_start_token_id;
        int64_t nt = vl__vision_tokens(&cfg, &vis[k]);
        for (int64_t i = 0; i < nt; i++)
            ids[n++] = vis[k].is_video ? cfg.video_token_id : cfg.image_token_id;
        ids[n++] = cfg.vision_end_token_id;
        for (int64_t i = 0; i < text[k + 1]; i++)
            ids[n++] = 101;
    }
    return n;
}

static void worked_examples(void) {
    int32_t ids[256];
    int64_t pos[3 * 256], delta;
    struct vl_error err = {0};
    /* spec §6.2: 15 text tokens (incl. vision_start) + image 1x4x6 + end + 9 tokens */
    struct vl_vision_input im = {.grid_t = 1, .grid_h = 4, .grid_w = 6};
    int64_t text[2] = {14, 9};
    int64_t n = build(ids, text, &im, 1);
    T_EQ_I64(n, 31);
    T_CHECK(vl__rope_index(pos, &delta, ids, n, &cfg, &im, 1, &err) == VL_OK);
    T_EQ_I64(delta, -3);
    T_EQ_I64(pos[0 * n + 20], 15);
    T_EQ_I64(pos[1 * n + 20], 16);
    T_EQ_I64(pos[2 * n + 20], 17);
    T_EQ_I64(pos[2 * n + 21], 18);
    T_EQ_I64(pos[0 * n + 30], 27);
    /* spec §6.3: video 3x4x4 after 3 text tokens, sgt 1.0 -> temporal ids base, +2, +4 */
    struct vl_vision_input v = {.grid_t = 3, .grid_h = 4, .grid_w = 4, .is_video = true,
                                .second_per_grid_t = 1.0};
    int64_t tv[2] = {3, 6};
    n = build(ids, tv, &v, 1);
    T_EQ_I64(n, 23);
    T_CHECK(vl__rope_index(pos, &delta, ids, n, &cfg, &v, 1, &err) == VL_OK);
    T_EQ_I64(pos[0 * n + 4], 4);
    T_EQ_I64(pos[0 * n + 8], 6);
    T_EQ_I64(pos[0 * n + 12], 8);
    T_EQ_I64(pos[2 * n + 15], 5);
    T_EQ_I64(pos[0 * n + 16], 9);
    T_EQ_I64(delta, -7);
    /* sgt 0.5: truncated to 0 -> all frame pairs at the base */
    v.second_per_grid_t = 0.5;
    T_CHECK(vl__rope_index(pos, &delta, ids, n, &cfg, &v, 1, &err) == VL_OK);
    T_EQ_I64(pos[0 * n + 12], 4);
    /* spec §6.4: text(5) img(1x4x4) text(3) img(1x2x6) text */
    struct vl_vision_input two[2] = {{.grid_t = 1, .grid_h = 4, .grid_w = 4},
                                     {.grid_t = 1, .grid_h = 2, .grid_w = 6}};
    int64_t t2[3] = {4, 1, 2};
    n = build(ids, t2, two, 2);
    T_CHECK(vl__rope_index(pos, &delta, ids, n, &cfg, two, 2, &err) == VL_OK);
    T_EQ_I64(pos[1 * n + 5], 5);
    T_EQ_I64(pos[2 * n + 8], 6);
    T_EQ_I64(pos[0 * n + 9], 7);  /* vision_end after the first image */
    T_EQ_I64(pos[0 * n + 12], 10); /* second image base */
    T_EQ_I64(pos[2 * n + 14], 12);
    T_EQ_I64(pos[0 * n + 15], 13);
    /* text only */
    for (int i = 0; i < 10; i++)
        ids[i] = 5;
    T_CHECK(vl__rope_index(pos, &delta, ids, 10, &cfg, NULL, 0, &err) == VL_OK);
    T_EQ_I64(delta, 0);
    T_EQ_I64(pos[2 * 10 + 9], 9);
}

static void mismatches(void) {
    int32_t ids[64];
    int64_t pos[3 * 64], delta;
    struct vl_vision_input im = {.grid_t = 1, .grid_h = 4, .grid_w = 4};
    int64_t text[2] = {2, 2};
    int64_t n = build(ids, text, &im, 1);
    struct vl_error err = {0};
    /* no inputs for a placeholder run */
    T_EQ_I64(vl__rope_index(pos, &delta, ids, n, &cfg, NULL, 0, &err), VL_ERR_INVALID);
    printf("error (no input): %s\n", err.msg);
    /* two inputs, one run */
    struct vl_vision_input two[2] = {im, im};
    memset(&err, 0, sizeof err);
    T_EQ_I64(vl__rope_index(pos, &delta, ids, n, &cfg, two, 2, &err), VL_ERR_INVALID);
    printf("error (extra input): %s\n", err.msg);
    /* run longer than the image's tokens */
    struct vl_vision_input small = {.grid_t = 1, .grid_h = 2, .grid_w = 2};
    memset(&err, 0, sizeof err);
    T_EQ_I64(vl__rope_index(pos, &delta, ids, n, &cfg, &small, 1, &err), VL_ERR_INVALID);
    printf("error (run longer): %s\n", err.msg);
    /* run shorter than the image's tokens */
    struct vl_vision_input big = {.grid_t = 1, .grid_h = 8, .grid_w = 8};
    memset(&err, 0, sizeof err);
    T_EQ_I64(vl__rope_index(pos, &delta, ids, n, &cfg, &big, 1, &err), VL_ERR_INVALID);
    printf("error (run shorter): %s\n", err.msg);
    /* two images in one run of pads (no text between): the reference takes them in turn */
    struct vl_vision_input quarter = {.grid_t = 1, .grid_h = 2, .grid_w = 4}; /* 2 tokens */
    struct vl_vision_input pair[2] = {quarter, quarter};
    memset(&err, 0, sizeof err);
    T_EQ_I64(vl__rope_index(pos, &delta, ids, n, &cfg, pair, 2, &err), VL_OK);
    T_EQ_I64(pos[2 * n + 4], 4); /* first image (base 3): w 3, 4 */
    T_EQ_I64(pos[0 * n + 5], 5); /* second image starts at 1 + max = 5 */
    T_EQ_I64(pos[2 * n + 6], 6);
    /* a video input for an image run */
    struct vl_vision_input v = im;
    v.is_video = true;
    memset(&err, 0, sizeof err);
    T_EQ_I64(vl__rope_index(pos, &delta, ids, n, &cfg, &v, 1, &err), VL_ERR_INVALID);
}

int main(void) {
    char dir[LG_PATH_MAX];
    struct vl_error err = {0};
    enum vl_status st = vl__config_load_dir(&cfg, lg_model_dir(dir, sizeof dir), &err);
    T_CHECK_MSG(st == VL_OK, "config: %s", err.msg);
    if (st != VL_OK)
        return t_done();
    static char cases[LG_MAX_CASES][LG_PATH_MAX];
    int n = lg_cases(cases, LG_MAX_CASES);
    T_CHECK_MSG(n >= 7, "found %d golden cases", n);
    for (int i = 0; i < n; i++)
        golden_case(cases[i]);
    worked_examples();
    mismatches();
    return t_done();
}
