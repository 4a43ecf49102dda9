/* Golden test of the vision tower: for EVERY case of $DP_FIXTURES/qwen25vl-tiny/goldens with an
 * image or a video, runs vl__vision_encode per item (from the golden pixel_values and grids)
 * at 1 and 2 threads and compares with the transformers float32 reference:
 *   window_index, cu_window_seqlens, cu_seqlens     exactly (items composed as HF does)
 *   patch_embed, rope_cos/sin, every saved blockN.out, merger_out, embeds, image/video_embeds.i
 *                                                    relative L2 error <= TOL_REL
 * Prints the worst relative L2 error and max abs difference per checkpoint. */
#include "t.h"
#include "vl_impl.h"

#include <dirent.h>
#include <math.h>

#define TOL_REL 1e-5 /* spec §10.3 measured <= 1e-6 for a float32 re-implementation */
#define MAX_ITEMS 16
#define MAX_BLOCKS 64
#define MAX_FILES 64
#define NAME_MAX_LEN 96
#define PATH_MAX_LEN 1024

/* ---- worst error per checkpoint ---------------------------------------------------------- */

#define MAX_CKPT 32
static struct {
    char name[NAME_MAX_LEN];
    double rel, abs;
} worst[MAX_CKPT];
static int n_worst;

static void note_worst(const char *name, double rel, double mabs) {
    int i = 0;
    while (i < n_worst && strcmp(worst[i].name, name))
        i++;
    if (i == n_worst) {
        if (n_worst == MAX_CKPT)
            return;
        snprintf(worst[n_worst++].name, NAME_MAX_LEN, "%s", name);
    }
    worst[i].rel = fmax(worst[i].rel, rel);
    worst[i].abs = fmax(worst[i].abs, mabs);
}

/* ---- golden file access ------------------------------------------------------------------ */

/* Copy of a tensor's values (golden data need not be aligned). NULL if absent. */
static void *get_copy(const struct vl_st_file *f, const char *name, const char *dtype,
                      int64_t *count) {
    const struct vl_st_entry *e = vl_st_find(f, name);
    if (!e || strcmp(e->dtype, dtype))
        return NULL;
    void *p = malloc(e->nbytes ? e->nbytes : 1);
    memcpy(p, e->data, e->nbytes);
    if (count)
        *count = (int64_t)(e->nbytes / (strcmp(dtype, "I64") ? sizeof(float) : sizeof(int64_t)));
    return p;
}

static void cmp_f32(const char *case_id, const char *ckpt, const struct vl_st_file *f,
                    const char *gname, const float *got, int64_t n) {
    int64_t cnt = 0;
    float *want = get_copy(f, gname, "F32", &cnt);
    T_CHECK_MSG(want && cnt == n, "%s: golden %s missing or has %lld values, want %lld", case_id,
                gname, (long long)cnt, (long long)n);
    if (!want || cnt != n) {
        free(want);
        return;
    }
    double num = 0, den = 0, mabs = 0;
    int64_t first_bad = -1;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)got[i] - (double)want[i];
        num += d * d;
        den += (double)want[i] * want[i];
        if (fabs(d) > mabs)
            mabs = fabs(d);
        if (first_bad < 0 && fabs(d) > 1e-3 * (1.0 + fabs((double)want[i])))
            first_bad = i;
    }
    double rel = sqrt(num / (den > 0 ? den : 1));
    printf("    %-22s rel L2 %.3g  max abs %.3g\n", gname, rel, mabs);
    note_worst(ckpt, rel, mabs);
    T_CHECK_MSG(rel <= TOL_REL, "%s %s: rel L2 %.3g > %.3g (first bad index %lld: got %.7g want "
                "%.7g)", case_id, gname, rel, TOL_REL, (long long)first_bad,
                first_bad >= 0 ? got[first_bad] : 0.0, first_bad >= 0 ? want[first_bad] : 0.0);
    free(want);
}

static void cmp_i64(const char *case_id, const struct vl_st_file *f, const char *gname,
                    const int64_t *got, int64_t n) {
    int64_t cnt = 0;
    int64_t *want = get_copy(f, gname, "I64", &cnt);
    bool ok = want && cnt == n;
    for (int64_t i = 0; ok && i < n; i++)
        ok = got[i] == want[i];
    T_CHECK_MSG(ok, "%s: %s differs (got %lld values, golden %lld)", case_id, gname,
                (long long)n, (long long)cnt);
    free(want);
}

/* ---- capture of the hook tensors into whole-call buffers (items concatenated) -------------- */

struct capture {
    int64_t row_off, unit_off; /* of the current item */
    int64_t d, dh, hout;
    float *pe, *cos, *sin, *blk[MAX_BLOCKS], *merger, *emb;
};

static void hook(const char *name, const float *data, int ndim, const int64_t *shape, void *user) {
    struct capture *cp = user;
    if (ndim != 2)
        return;
    size_t bytes = (size_t)(shape[0] * shape[1]) * sizeof(float);
    int b = -1;
    if (!strcmp(name, "vit.patch_embed"))
        memcpy(cp->pe + cp->row_off * cp->d, data, bytes);
    else if (!strcmp(name, "vit.rope_cos"))
        memcpy(cp->cos + cp->row_off * cp->dh, data, bytes);
    else if (!strcmp(name, "vit.rope_sin"))
        memcpy(cp->sin + cp->row_off * cp->dh, data, bytes);
    else if (sscanf(name, "vit.blk.%d.out", &b) == 1 && b >= 0 && b < MAX_BLOCKS && cp->blk[b])
        memcpy(cp->blk[b] + cp->row_off * cp->d, data, bytes);
    else if (!strcmp(name, "merger.out"))
        memcpy(cp->merger + cp->unit_off * cp->hout, data, bytes);
    else if (!strcmp(name, "vision.embeds"))
        memcpy(cp->emb + cp->unit_off * cp->hout, data, bytes);
}

/* ---- one vision call of a case (all images, or all videos) -------------------------------- */

static void run_kind(const char *case_id, const struct vl_st_file *f, const struct vl_model *m,
                     bool video) {
    const char *pfx = video ? "vvid" : "vimg";
    int64_t npx = 0, ngrid = 0;
    float *px = get_copy(f, video ? "pixel_values_videos" : "pixel_values", "F32", &npx);
    int64_t *grid = get_copy(f, video ? "video_grid_thw" : "image_grid_thw", "I64", &ngrid);
    if (!px || !grid || ngrid == 0) {
        free(px), free(grid);
        return;
    }
    const struct vl_vision_config *vc = &m->cfg.vision;
    const int64_t n_items = ngrid / 3, d = vc->hidden_size, dh = d / vc->num_heads;
    const int64_t ur = vc->spatial_merge_size * vc->spatial_merge_size;
    const int64_t hout = vc->out_hidden_size;
    const int64_t pd = vc->in_chans * vc->temporal_patch_size * vc->patch_size * vc->patch_size;
    T_CHECK(n_items <= MAX_ITEMS);
    int64_t n_total = 0;
    for (int64_t i = 0; i < n_items; i++)
        n_total += grid[i * 3] * grid[i * 3 + 1] * grid[i * 3 + 2];
    T_EQ_I64(npx, n_total * pd);
    const int64_t u_total = n_total / ur;
    printf("  %s: %lld %s, %lld patches\n", pfx, (long long)n_items, video ? "video(s)" : "image(s)",
           (long long)n_total);

    /* geometry, composed over items as the reference does in one call */
    int64_t *widx = malloc((size_t)u_total * 8), *cu = malloc((size_t)(u_total + 1) * 8);
    int64_t *cu_seq = malloc((size_t)(n_total + 1) * 8);
    int64_t *tmp_w = malloc((size_t)u_total * 8), *tmp_cu = malloc((size_t)(u_total + 1) * 8);
    int64_t *tmp_s = malloc((size_t)(n_total + 1) * 8);
    int64_t nw = 0, nseq = 0, u_off = 0, r_off = 0;
    cu[nw++] = 0;
    cu_seq[nseq++] = 0;
    for (int64_t i = 0; i < n_items; i++) {
        const int64_t gt = grid[i * 3], gh = grid[i * 3 + 1], gw = grid[i * 3 + 2];
        const int64_t nwi = vl__vision_window_index(tmp_w, tmp_cu, vc, gt, gh, gw);
        vl__vision_cu_seqlens(tmp_s, gt, gh, gw);
        const int64_t units = gt * gh * gw / ur;
        for (int64_t k = 0; k < units; k++)
            widx[u_off + k] = tmp_w[k] + u_off;
        for (int64_t k = 1; k <= nwi; k++)
            cu[nw++] = tmp_cu[k] + r_off;
        for (int64_t k = 1; k <= gt; k++)
            cu_seq[nseq++] = tmp_s[k] + r_off;
        u_off += units;
        r_off += gt * gh * gw;
    }
    char g[NAME_MAX_LEN];
    snprintf(g, sizeof g, "%s.window_index", pfx);
    cmp_i64(case_id, f, g, widx, u_total);
    snprintf(g, sizeof g, "%s.cu_window_seqlens", pfx);
    cmp_i64(case_id, f, g, cu, nw);
    snprintf(g, sizeof g, "%s.cu_seqlens", pfx);
    cmp_i64(case_id, f, g, cu_seq, nseq);

    for (int nth = 1; nth <= 2; nth++) {
        printf("   threads %d\n", nth);
        struct vl_error err = {0};
        struct vl_compute c;
        const int64_t wmax = 4 * d > vc->intermediate_size ? 4 * d : vc->intermediate_size;
        T_EQ_I64(vl__compute_init(&c, nth, wmax > hout ? wmax : hout, wmax > pd ? wmax : pd, &err),
                 VL_OK);
        struct capture cp = {.d = d, .dh = dh, .hout = hout};
        cp.pe = calloc((size_t)(n_total * d), 4);
        cp.cos = calloc((size_t)(n_total * dh), 4);
        cp.sin = calloc((size_t)(n_total * dh), 4);
        for (int64_t b = 0; b < vc->depth && b < MAX_BLOCKS; b++)
            cp.blk[b] = calloc((size_t)(n_total * d), 4);
        cp.merger = calloc((size_t)(u_total * hout), 4);
        cp.emb = calloc((size_t)(u_total * hout), 4);
        float *out = calloc((size_t)(u_total * hout), 4);
        for (int64_t i = 0; i < n_items; i++) {
            const int64_t gt = grid[i * 3], gh = grid[i * 3 + 1], gw = grid[i * 3 + 2];
            const int64_t n = gt * gh * gw;
            struct vl_vision_input in = {px + cp.row_off * pd, n, pd, gt, gh, gw, video, 0.0};
            size_t nf = vl__vision_scratch_floats(&m->cfg, n);
            float *scratch = malloc(nf * sizeof(float));
            enum vl_status st = vl__vision_encode(&c, m, &in, scratch, out + cp.unit_off * hout,
                                                  hook, &cp, &err);
            T_CHECK_MSG(st == VL_OK, "%s item %lld: %s", case_id, (long long)i, err.msg);
            free(scratch);
            cp.row_off += n;
            cp.unit_off += n / ur;
        }
        snprintf(g, sizeof g, "%s.patch_embed", pfx);
        cmp_f32(case_id, "patch_embed", f, g, cp.pe, n_total * d);
        snprintf(g, sizeof g, "%s.rope_cos", pfx);
        cmp_f32(case_id, "rope_cos", f, g, cp.cos, n_total * dh);
        snprintf(g, sizeof g, "%s.rope_sin", pfx);
        cmp_f32(case_id, "rope_sin", f, g, cp.sin, n_total * dh);
        int n_blocks_cmp = 0;
        for (int64_t b = 0; b < vc->depth && b < MAX_BLOCKS; b++) {
            snprintf(g, sizeof g, "%s.block%lld.out", pfx, (long long)b);
            if (!vl_st_find(f, g))
                continue;
            char ck[NAME_MAX_LEN];
            snprintf(ck, sizeof ck, "block%lld.out", (long long)b);
            cmp_f32(case_id, ck, f, g, cp.blk[b], n_total * d);
            n_blocks_cmp++;
        }
        T_CHECK_MSG(n_blocks_cmp > 0, "%s: no block outputs in the golden file", case_id);
        snprintf(g, sizeof g, "%s.merger_out", pfx);
        cmp_f32(case_id, "merger_out", f, g, cp.merger, u_total * hout);
        snprintf(g, sizeof g, "%s.embeds", pfx);
        cmp_f32(case_id, "embeds", f, g, out, u_total * hout);
        T_CHECK(!memcmp(out, cp.emb, (size_t)(u_total * hout) * sizeof(float)));
        int64_t off = 0;
        for (int64_t i = 0; i < n_items; i++) {
            const int64_t units = grid[i * 3] * grid[i * 3 + 1] * grid[i * 3 + 2] / ur;
            snprintf(g, sizeof g, "%s_embeds.%lld", video ? "video" : "image", (long long)i);
            cmp_f32(case_id, "image/video_embeds.i", f, g, out + off * hout, units * hout);
            off += units;
        }
        free(cp.pe), free(cp.cos), free(cp.sin), free(cp.merger), free(cp.emb), free(out);
        for (int64_t b = 0; b < vc->depth && b < MAX_BLOCKS; b++)
            free(cp.blk[b]);
        vl__compute_free(&c);
    }
    free(widx), free(cu), free(cu_seq), free(tmp_w), free(tmp_cu), free(tmp_s), free(px),
        free(grid);
}

static int cmp_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(void) {
    char dir[PATH_MAX_LEN], path[2 * PATH_MAX_LEN];
    t_path(dir, sizeof dir, "DP_FIXTURES", "qwen25vl-tiny/model");
    struct vl_error err = {0};
    struct vl_model *m = NULL;
    if (vl_model_load(&m, dir, &err) != VL_OK) {
        T_CHECK_MSG(false, "vl_model_load(%s): %s", dir, err.msg);
        return t_done();
    }
    t_path(dir, sizeof dir, "DP_FIXTURES", "qwen25vl-tiny/goldens");
    DIR *dp = opendir(dir);
    T_CHECK_MSG(dp != NULL, "cannot open %s", dir);
    char *names[MAX_FILES];
    int n_names = 0;
    for (struct dirent *de = dp ? readdir(dp) : NULL; de; de = readdir(dp)) {
        size_t len = strlen(de->d_name);
        const char *ext = ".safetensors";
        if (len > strlen(ext) && !strcmp(de->d_name + len - strlen(ext), ext) &&
            n_names < MAX_FILES)
            names[n_names++] = strdup(de->d_name);
    }
    if (dp)
        closedir(dp);
    qsort(names, (size_t)n_names, sizeof names[0], cmp_names);
    int n_vision_cases = 0;
    for (int i = 0; i < n_names; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        struct vl_st_file *f = NULL;
        struct vl_error e = {0};
        T_CHECK_MSG(vl_st_open(&f, path, &e) == VL_OK, "%s: %s", path, e.msg);
        if (!f)
            continue;
        const bool img = vl_st_find(f, "pixel_values") != NULL;
        const bool vid = vl_st_find(f, "pixel_values_videos") != NULL;
        printf("case %s\n", names[i]);
        if (img)
            run_kind(names[i], f, m, false);
        if (vid)
            run_kind(names[i], f, m, true);
        n_vision_cases += img || vid;
        vl_st_close(f);
        free(names[i]);
    }
    T_CHECK_MSG(n_vision_cases >= 1, "no golden case with an image or video in %s", dir);
    printf("worst over %d cases, 1 and 2 threads:\n", n_vision_cases);
    for (int i = 0; i < n_worst; i++)
        printf("  %-22s rel L2 %.3g  max abs %.3g\n", worst[i].name, worst[i].rel, worst[i].abs);
    vl_model_free(m);
    return t_done();
}
