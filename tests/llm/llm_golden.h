/* Helpers shared by the tests/llm binaries: golden case discovery and typed copies of golden
 * tensors (safetensors data may be unaligned, so everything is memcpy'd into fresh buffers). */
#ifndef LLM_GOLDEN_H
#define LLM_GOLDEN_H

#include "vl_tools.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LG_MAX_CASES 64
#define LG_PATH_MAX 1024

/* Sorted golden case ids (file stems) of $DP_FIXTURES/qwen25vl-tiny/goldens; returns count. */
static inline int lg_cases(char names[][LG_PATH_MAX], int max) {
    char dir[LG_PATH_MAX];
    const char *root = getenv("DP_FIXTURES");
    snprintf(dir, sizeof dir, "%s/qwen25vl-tiny/goldens", root ? root : ".");
    DIR *d = opendir(dir);
    int n = 0;
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < max) {
        size_t len = strlen(e->d_name);
        const char *ext = ".safetensors";
        size_t el = strlen(ext);
        if (len > el && !strcmp(e->d_name + len - el, ext) && len - el < LG_PATH_MAX) {
            memcpy(names[n], e->d_name, len - el);
            names[n][len - el] = 0;
            n++;
        }
    }
    closedir(d);
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            char t[LG_PATH_MAX];
            memcpy(t, names[j], LG_PATH_MAX);
            memcpy(names[j], names[j - 1], LG_PATH_MAX);
            memcpy(names[j - 1], t, LG_PATH_MAX);
        }
    return n;
}

static inline struct vl_st_file *lg_open(const char *case_id) {
    char path[LG_PATH_MAX * 2];
    const char *root = getenv("DP_FIXTURES");
    int k = snprintf(path, sizeof path, "%s/qwen25vl-tiny/goldens/%s.safetensors",
                     root ? root : ".", case_id);
    if (k < 0 || (size_t)k >= sizeof path)
        return NULL;
    struct vl_error err = {0};
    struct vl_st_file *f = NULL;
    if (vl_st_open(&f, path, &err) != VL_OK)
        fprintf(stderr, "cannot open %s: %s\n", path, err.msg);
    return f;
}

static inline size_t lg_numel(const struct vl_st_entry *e) {
    size_t n = 1;
    for (int i = 0; i < e->ndim; i++)
        n *= (size_t)e->shape[i];
    return n;
}

/* Copy of an I64 tensor (NULL if absent); *n = element count. Caller frees. */
static inline int64_t *lg_i64(const struct vl_st_file *f, const char *name, size_t *n) {
    const struct vl_st_entry *e = vl_st_find(f, name);
    *n = 0;
    if (!e || strcmp(e->dtype, "I64"))
        return NULL;
    *n = lg_numel(e);
    int64_t *p = malloc(*n ? *n * sizeof *p : 1);
    if (p)
        memcpy(p, e->data, *n * sizeof *p);
    return p;
}

/* Copy of an F32 tensor (NULL if absent); *n = element count. Caller frees. */
static inline float *lg_f32(const struct vl_st_file *f, const char *name, size_t *n) {
    const struct vl_st_entry *e = vl_st_find(f, name);
    *n = 0;
    if (!e || strcmp(e->dtype, "F32"))
        return NULL;
    *n = lg_numel(e);
    float *p = malloc(*n ? *n * sizeof *p : 1);
    if (p)
        memcpy(p, e->data, *n * sizeof *p);
    return p;
}

static inline const char *lg_model_dir(char *buf, size_t n) {
    const char *root = getenv("DP_FIXTURES");
    snprintf(buf, n, "%s/qwen25vl-tiny/model", root ? root : ".");
    return buf;
}

/* Relative L2 error ||got - want|| / ||want|| and max abs difference. */
static inline double lg_rel_l2(const float *got, const float *want, size_t n, double *max_abs) {
    double num = 0, den = 0, mx = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)got[i] - (double)want[i];
        num += d * d;
        den += (double)want[i] * (double)want[i];
        if (fabs(d) > mx)
            mx = fabs(d);
    }
    if (max_abs)
        *max_abs = mx;
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* Greedy tokens each golden case holds (gen.decode_ids). */
#define LG_GEN_TOKENS 24

/* One golden case as a request: prompt ids, vision inputs, the reference's greedy tokens. */
struct lg_case {
    int32_t *ids;
    int64_t n_ids;
    struct vl_vision_input vis[8];
    int n_vis;
    int64_t *want_ids;
};

static inline bool lg_case_load(struct lg_case *c, const struct vl_st_file *f) {
    size_t n, ng, np, nsg;
    memset(c, 0, sizeof *c);
    int64_t *ids = lg_i64(f, "input_ids", &n);
    if (!ids)
        return false;
    c->ids = malloc(n * sizeof *c->ids);
    for (size_t i = 0; i < n; i++)
        c->ids[i] = (int32_t)ids[i];
    c->n_ids = (int64_t)n;
    free(ids);
    const char *kinds[2][2] = {{"image_grid_thw", "pixel_values"},
                               {"video_grid_thw", "pixel_values_videos"}};
    for (int v = 0; v < 2; v++) {
        int64_t *g = lg_i64(f, kinds[v][0], &ng);
        float *pv = lg_f32(f, kinds[v][1], &np);
        float *sgt = lg_f32(f, "second_per_grid_ts", &nsg);
        size_t row = 0;
        for (size_t i = 0; g && pv && i < ng / 3 && c->n_vis < 8; i++) {
            struct vl_vision_input *in = &c->vis[c->n_vis++];
            in->grid_t = g[3 * i];
            in->grid_h = g[3 * i + 1];
            in->grid_w = g[3 * i + 2];
            in->n_patches = in->grid_t * in->grid_h * in->grid_w;
            in->is_video = v == 1;
            in->second_per_grid_t = v == 1 && sgt && i < nsg ? sgt[i] : 0.0;
            const struct vl_st_entry *e = vl_st_find(f, kinds[v][1]);
            in->patch_dim = e->shape[1];
            in->pixel_values = malloc((size_t)(in->n_patches * in->patch_dim) * sizeof(float));
            memcpy(in->pixel_values, pv + row * (size_t)in->patch_dim,
                   (size_t)(in->n_patches * in->patch_dim) * sizeof(float));
            row += (size_t)in->n_patches;
        }
        free(g);
        free(pv);
        free(sgt);
    }
    c->want_ids = lg_i64(f, "gen.decode_ids", &n);
    return c->want_ids && n == LG_GEN_TOKENS;
}

static inline void lg_case_free(struct lg_case *c) {
    for (int i = 0; i < c->n_vis; i++)
        vl_vision_input_free(&c->vis[i]);
    free(c->ids);
    free(c->want_ids);
}

/* A golden case as a request: its input ids and images (pixel values, grids), for tests that
 * run the same request through two weight formats or loaders. */
#define LG_REQ_MAX_VIS 8
struct lg_req {
    int32_t *ids;
    int64_t n_ids;
    struct vl_vision_input vis[LG_REQ_MAX_VIS];
    int n_vis;
};

static inline bool lg_req_load(struct lg_req *r, const char *id) {
    memset(r, 0, sizeof *r);
    struct vl_st_file *f = lg_open(id);
    if (!f)
        return false;
    size_t n, ng, np;
    int64_t *ids = lg_i64(f, "input_ids", &n);
    int64_t *g = lg_i64(f, "image_grid_thw", &ng);
    float *pv = lg_f32(f, "pixel_values", &np);
    bool ok = ids != NULL;
    if (ok) {
        r->ids = malloc(n * sizeof *r->ids);
        for (size_t i = 0; i < n; i++)
            r->ids[i] = (int32_t)ids[i];
        r->n_ids = (int64_t)n;
    }
    size_t row = 0;
    for (size_t i = 0; ok && g && pv && i < ng / 3 && r->n_vis < LG_REQ_MAX_VIS; i++) {
        struct vl_vision_input *in = &r->vis[r->n_vis++];
        in->grid_t = g[3 * i];
        in->grid_h = g[3 * i + 1];
        in->grid_w = g[3 * i + 2];
        in->n_patches = in->grid_t * in->grid_h * in->grid_w;
        in->patch_dim = vl_st_find(f, "pixel_values")->shape[1];
        size_t cnt = (size_t)(in->n_patches * in->patch_dim);
        in->pixel_values = malloc(cnt * sizeof(float));
        memcpy(in->pixel_values, pv + row * (size_t)in->patch_dim, cnt * sizeof(float));
        row += (size_t)in->n_patches;
    }
    free(ids);
    free(g);
    free(pv);
    vl_st_close(f);
    return ok;
}

static inline void lg_req_free(struct lg_req *r) {
    for (int i = 0; i < r->n_vis; i++)
        vl_vision_input_free(&r->vis[i]);
    free(r->ids);
}

#endif
