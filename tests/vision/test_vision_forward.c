/* vl__vision_encode on a random-weight vision tower with a small, non-published config
 * (patch 2, window 8, 2 heads of 16, merge 2) against an independent naive reference written in
 * ORIGINAL row order with attention masks (window / frame membership) instead of a permutation,
 * double accumulation. Checks patch embedding, every block (through the window index), the
 * final embeddings, 1 vs 2 threads, exact scratch sizing (ASan) and input errors.
 * Usage: test_vision_forward [--large]   (--large: a grid big enough for query tiles and row
 * chunks; slower, labelled slow). */
#include "t.h"
#include "vl_impl.h"

#include <math.h>

#define MAX_DEPTH 4

struct rng {
    uint64_t s;
};
static float rnd(struct rng *r) { /* uniform in [-1, 1) (xorshift64*) */
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    uint64_t v = r->s * 2685821657736338717ULL;
    return (float)((double)(v >> 11) / (double)(1ULL << 53) * 2.0 - 1.0);
}

static float *rnd_buf(struct rng *r, int64_t n, float scale, float offset) {
    float *p = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++)
        p[i] = offset + scale * rnd(r);
    return p;
}

static struct vl_tensor ten(const float *data, int ndim, int64_t a, int64_t b) {
    struct vl_tensor t = {0};
    t.dtype = VL_DTYPE_F32;
    t.ndim = ndim;
    t.ne[0] = a;
    t.ne[1] = b;
    t.data = data;
    return t;
}

struct toy {
    struct vl_model m;
    struct vl_vision_block blocks[MAX_DEPTH];
    float *bufs[64];
    int nbufs;
};

static const float *keep(struct toy *t, float *p) {
    t->bufs[t->nbufs++] = p;
    return p;
}

static void toy_init(struct toy *t, uint64_t seed) {
    memset(t, 0, sizeof *t);
    struct vl_vision_config *vc = &t->m.cfg.vision;
    vc->depth = 3;
    vc->hidden_size = 32;
    vc->num_heads = 2;
    vc->intermediate_size = 48;
    vc->out_hidden_size = 24;
    vc->patch_size = 2;
    vc->temporal_patch_size = 2;
    vc->spatial_merge_size = 2;
    vc->window_size = 8; /* 2 merged units */
    vc->in_chans = 3;
    vc->n_fullatt = 1;
    vc->fullatt_block_indexes[0] = 1;
    vc->rms_norm_eps = 1e-6;
    struct rng r = {seed};
    const int64_t d = 32, iv = 48, ho = 24, pd = 3 * 2 * 2 * 2, ud = 4 * d;
    struct vl_tensor pe = ten(keep(t, rnd_buf(&r, d * pd, 1.0f / sqrtf((float)pd), 0)), 5, d, 3);
    pe.ne[2] = 2;
    pe.ne[3] = 2;
    pe.ne[4] = 2;
    t->m.w.patch_embed = pe;
    for (int64_t b = 0; b < vc->depth; b++) {
        struct vl_vision_block *k = &t->blocks[b];
        float sd = 1.0f / sqrtf((float)d), si = 1.0f / sqrtf((float)iv);
        k->norm1 = ten(keep(t, rnd_buf(&r, d, 0.2f, 1.0f)), 1, d, 0);
        k->norm2 = ten(keep(t, rnd_buf(&r, d, 0.2f, 1.0f)), 1, d, 0);
        k->qkv_w = ten(keep(t, rnd_buf(&r, 3 * d * d, 2 * sd, 0)), 2, 3 * d, d);
        k->qkv_b = ten(keep(t, rnd_buf(&r, 3 * d, 0.1f, 0)), 1, 3 * d, 0);
        k->proj_w = ten(keep(t, rnd_buf(&r, d * d, sd, 0)), 2, d, d);
        k->proj_b = ten(keep(t, rnd_buf(&r, d, 0.1f, 0)), 1, d, 0);
        k->gate_w = ten(keep(t, rnd_buf(&r, iv * d, sd, 0)), 2, iv, d);
        k->gate_b = ten(keep(t, rnd_buf(&r, iv, 0.1f, 0)), 1, iv, 0);
        k->up_w = ten(keep(t, rnd_buf(&r, iv * d, sd, 0)), 2, iv, d);
        k->up_b = ten(keep(t, rnd_buf(&r, iv, 0.1f, 0)), 1, iv, 0);
        k->down_w = ten(keep(t, rnd_buf(&r, d * iv, si, 0)), 2, d, iv);
        k->down_b = ten(keep(t, rnd_buf(&r, d, 0.1f, 0)), 1, d, 0);
    }
    t->m.w.vblocks = t->blocks;
    t->m.w.merger_norm = ten(keep(t, rnd_buf(&r, d, 0.2f, 1.0f)), 1, d, 0);
    t->m.w.merger_fc1_w = ten(keep(t, rnd_buf(&r, ud * ud, 1.0f / sqrtf((float)ud), 0)), 2, ud, ud);
    t->m.w.merger_fc1_b = ten(keep(t, rnd_buf(&r, ud, 0.1f, 0)), 1, ud, 0);
    t->m.w.merger_fc2_w = ten(keep(t, rnd_buf(&r, ho * ud, 1.0f / sqrtf((float)ud), 0)), 2, ho, ud);
    t->m.w.merger_fc2_b = ten(keep(t, rnd_buf(&r, ho, 0.1f, 0)), 1, ho, 0);
}

static void toy_free(struct toy *t) {
    for (int i = 0; i < t->nbufs; i++)
        free(t->bufs[i]);
}

/* ---- naive reference, original row order ------------------------------------------------- */

static void ref_linear(double *y, const double *x, int64_t n, const struct vl_tensor *w,
                       const struct vl_tensor *b) {
    const float *W = w->data, *B = b ? b->data : NULL;
    int64_t out = w->ne[0], in = w->ne[1];
    for (int64_t i = 0; i < n; i++)
        for (int64_t o = 0; o < out; o++) {
            double s = B ? B[o] : 0.0;
            for (int64_t k = 0; k < in; k++)
                s += x[i * in + k] * (double)W[o * in + k];
            y[i * out + o] = s;
        }
}

static void ref_rmsnorm(double *y, const double *x, int64_t n, int64_t d, const float *w,
                        double eps) {
    for (int64_t i = 0; i < n; i++) {
        double ss = 0;
        for (int64_t k = 0; k < d; k++)
            ss += x[i * d + k] * x[i * d + k];
        double r = 1.0 / sqrt(ss / (double)d + eps);
        for (int64_t k = 0; k < d; k++)
            y[i * d + k] = x[i * d + k] * r * w[k];
    }
}

struct ref_out {
    double *pe;            /* (n, d) */
    double *blk[MAX_DEPTH]; /* (n, d) original order */
    double *emb;           /* (units, hout) */
};

static void ref_forward(struct ref_out *o, const struct vl_model *m, const float *px, int64_t gt,
                        int64_t gh, int64_t gw) {
    const struct vl_vision_config *vc = &m->cfg.vision;
    const int64_t n = gt * gh * gw, d = vc->hidden_size, nh = vc->num_heads, dh = d / nh;
    const int64_t ms = vc->spatial_merge_size, lh = gh / ms, lw = gw / ms;
    const int64_t vw = vc->window_size / ms / vc->patch_size, nww = (lw + vw - 1) / vw;
    const int64_t nwh = (lh + vw - 1) / vw, pd = 3 * 2 * 2 * 2, iv = vc->intermediate_size;
    int64_t *hp = malloc((size_t)n * 8), *wp = malloc((size_t)n * 8);
    int64_t *win = malloc((size_t)n * 8), *frame = malloc((size_t)n * 8);
    for (int64_t r = 0; r < n; r++) {
        int64_t u = r / (ms * ms), s = r % (ms * ms);
        int64_t g = u / (lh * lw), y = (u % (lh * lw)) / lw, x = u % lw;
        hp[r] = y * ms + s / ms;
        wp[r] = x * ms + s % ms;
        frame[r] = g;
        win[r] = (g * nwh + y / vw) * nww + x / vw;
    }
    double *X = malloc((size_t)(n * pd) * 8), *H = malloc((size_t)(n * d) * 8);
    double *A = malloc((size_t)(n * d) * 8), *QKV = malloc((size_t)(n * 3 * d) * 8);
    double *O = malloc((size_t)(n * d) * 8), *G = malloc((size_t)(n * iv) * 8);
    double *U = malloc((size_t)(n * iv) * 8), *sc = malloc((size_t)n * 8);
    for (int64_t i = 0; i < n * pd; i++)
        X[i] = px[i];
    struct vl_tensor wpe = m->w.patch_embed;
    wpe.ndim = 2;
    wpe.ne[1] = pd;
    ref_linear(H, X, n, &wpe, NULL);
    memcpy(o->pe, H, (size_t)(n * d) * 8);
    const int64_t nf = dh / 4, half = dh / 2;
    for (int64_t b = 0; b < vc->depth; b++) {
        const struct vl_vision_block *k = &m->w.vblocks[b];
        bool full = false;
        for (int64_t i = 0; i < vc->n_fullatt; i++)
            full |= vc->fullatt_block_indexes[i] == b;
        const int64_t *grp = full ? frame : win;
        ref_rmsnorm(A, H, n, d, k->norm1.data, vc->rms_norm_eps);
        ref_linear(QKV, A, n, &k->qkv_w, &k->qkv_b);
        for (int64_t r = 0; r < n; r++)
            for (int64_t part = 0; part < 2; part++)
                for (int64_t h = 0; h < nh; h++) {
                    double *v = QKV + r * 3 * d + part * d + h * dh;
                    for (int64_t i = 0; i < half; i++) {
                        int64_t j = i % nf;
                        double th = pow(10000.0, -(double)(2 * j) / (double)half);
                        double ang = (double)(i < nf ? hp[r] : wp[r]) * th;
                        double x1 = v[i], x2 = v[i + half];
                        v[i] = x1 * cos(ang) - x2 * sin(ang);
                        v[i + half] = x2 * cos(ang) + x1 * sin(ang);
                    }
                }
        for (int64_t i = 0; i < n; i++)
            for (int64_t h = 0; h < nh; h++) {
                double mx = -INFINITY, den = 0;
                for (int64_t j = 0; j < n; j++) {
                    if (grp[j] != grp[i])
                        continue;
                    double s = 0;
                    for (int64_t e = 0; e < dh; e++)
                        s += QKV[i * 3 * d + h * dh + e] * QKV[j * 3 * d + d + h * dh + e];
                    sc[j] = s / sqrt((double)dh);
                    mx = sc[j] > mx ? sc[j] : mx;
                }
                for (int64_t e = 0; e < dh; e++)
                    O[i * d + h * dh + e] = 0;
                for (int64_t j = 0; j < n; j++) {
                    if (grp[j] != grp[i])
                        continue;
                    double p = exp(sc[j] - mx);
                    den += p;
                    for (int64_t e = 0; e < dh; e++)
                        O[i * d + h * dh + e] += p * QKV[j * 3 * d + 2 * d + h * dh + e];
                }
                for (int64_t e = 0; e < dh; e++)
                    O[i * d + h * dh + e] /= den;
            }
        ref_linear(A, O, n, &k->proj_w, &k->proj_b);
        for (int64_t i = 0; i < n * d; i++)
            H[i] += A[i];
        ref_rmsnorm(A, H, n, d, k->norm2.data, vc->rms_norm_eps);
        ref_linear(G, A, n, &k->gate_w, &k->gate_b);
        ref_linear(U, A, n, &k->up_w, &k->up_b);
        for (int64_t i = 0; i < n * iv; i++)
            G[i] = G[i] / (1.0 + exp(-G[i])) * U[i];
        ref_linear(A, G, n, &k->down_w, &k->down_b);
        for (int64_t i = 0; i < n * d; i++)
            H[i] += A[i];
        memcpy(o->blk[b], H, (size_t)(n * d) * 8);
    }
    const int64_t units = n / (ms * ms), ud = ms * ms * d;
    ref_rmsnorm(A, H, n, d, m->w.merger_norm.data, vc->rms_norm_eps); /* (units, ud) view */
    double *Y1 = malloc((size_t)(units * ud) * 8);
    ref_linear(Y1, A, units, &m->w.merger_fc1_w, &m->w.merger_fc1_b);
    for (int64_t i = 0; i < units * ud; i++)
        Y1[i] = 0.5 * Y1[i] * (1.0 + erf(Y1[i] / sqrt(2.0)));
    ref_linear(o->emb, Y1, units, &m->w.merger_fc2_w, &m->w.merger_fc2_b);
    free(Y1);
    free(hp), free(wp), free(win), free(frame), free(X), free(H), free(A), free(QKV), free(O);
    free(G), free(U), free(sc);
}

/* ---- capture and compare ----------------------------------------------------------------- */

struct capture {
    int64_t n, d, units, hout;
    float *pe, *blk[MAX_DEPTH], *merger, *emb;
    int n_calls;
};

static void grab(float *dst, const float *src, int64_t n) {
    if (dst)
        memcpy(dst, src, (size_t)n * sizeof(float));
}

static void hook(const char *name, const float *data, int ndim, const int64_t *shape, void *user) {
    struct capture *cp = user;
    cp->n_calls++;
    T_CHECK(ndim == 2);
    int64_t cnt = shape[0] * shape[1];
    int b = -1;
    if (!strcmp(name, "vit.patch_embed"))
        grab(cp->pe, data, cnt);
    else if (sscanf(name, "vit.blk.%d.out", &b) == 1 && b >= 0 && b < MAX_DEPTH)
        grab(cp->blk[b], data, cnt);
    else if (!strcmp(name, "merger.out"))
        grab(cp->merger, data, cnt);
    else if (!strcmp(name, "vision.embeds"))
        grab(cp->emb, data, cnt);
}

static double rel_l2(const float *got, const double *want, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = (double)got[i] - want[i];
        num += e * e;
        den += want[i] * want[i];
    }
    return sqrt(num / (den > 0 ? den : 1));
}

#define TOL_REL 2e-5

static void check_rel(const char *what, const float *got, const double *want, int64_t n) {
    double e = rel_l2(got, want, n);
    printf("  %-28s rel L2 %.3g\n", what, e);
    T_CHECK_MSG(e <= TOL_REL, "%s: rel L2 %.3g > %.3g", what, e, TOL_REL);
}

static void run_case(struct toy *t, int64_t gt, int64_t gh, int64_t gw, uint64_t seed) {
    const struct vl_vision_config *vc = &t->m.cfg.vision;
    const int64_t n = gt * gh * gw, d = vc->hidden_size, pd = 24, units = n / 4;
    const int64_t ho = vc->out_hidden_size;
    printf("grid (%lld, %lld, %lld): %lld patches\n", (long long)gt, (long long)gh, (long long)gw,
           (long long)n);
    struct rng r = {seed};
    float *px = rnd_buf(&r, n * pd, 1.5f, 0);
    struct ref_out ro;
    ro.pe = malloc((size_t)(n * d) * 8);
    ro.emb = malloc((size_t)(units * ho) * 8);
    for (int b = 0; b < vc->depth; b++)
        ro.blk[b] = malloc((size_t)(n * d) * 8);
    ref_forward(&ro, &t->m, px, gt, gh, gw);

    int64_t *widx = malloc((size_t)units * 8), *cu = malloc((size_t)(units + 1) * 8);
    vl__vision_window_index(widx, cu, vc, gt, gh, gw);
    double *perm = malloc((size_t)(n * d) * 8);

    struct vl_vision_input in = {px, n, pd, gt, gh, gw, gt > 1, 0.0};
    float *emb1 = NULL;
    for (int nth = 1; nth <= 2; nth++) {
        struct vl_error err = {0};
        struct vl_compute c;
        T_EQ_I64(vl__compute_init(&c, nth, 4 * d, 4 * d, &err), VL_OK);
        size_t nf = vl__vision_scratch_floats(&t->m.cfg, n);
        T_CHECK(nf > 0);
        float *scratch = malloc(nf * sizeof(float)); /* exact size: ASan catches overruns */
        struct capture cp = {.n = n, .d = d, .units = units, .hout = ho};
        cp.pe = malloc((size_t)(n * d) * 4);
        cp.emb = malloc((size_t)(units * ho) * 4);
        cp.merger = malloc((size_t)(units * ho) * 4);
        for (int b = 0; b < vc->depth; b++)
            cp.blk[b] = malloc((size_t)(n * d) * 4);
        float *out = malloc((size_t)(units * ho) * 4);
        enum vl_status st = vl__vision_encode(&c, &t->m, &in, scratch, out, hook, &cp, &err);
        T_CHECK_MSG(st == VL_OK, "encode: %s", err.msg);
        printf(" threads %d\n", nth);
        check_rel("patch_embed", cp.pe, ro.pe, n * d);
        for (int b = 0; b < vc->depth; b++) {
            for (int64_t k = 0; k < units; k++)
                memcpy(perm + k * 4 * d, ro.blk[b] + widx[k] * 4 * d, (size_t)(4 * d) * 8);
            char what[32];
            snprintf(what, sizeof what, "block %d (window order)", b);
            check_rel(what, cp.blk[b], perm, n * d);
        }
        check_rel("embeds", out, ro.emb, units * ho);
        T_CHECK(!memcmp(out, cp.emb, (size_t)(units * ho) * 4));
        for (int64_t k = 0; k < units; k++) /* merger.out is the window-ordered version */
            T_CHECK(!memcmp(cp.merger + k * ho, out + widx[k] * ho, (size_t)ho * 4));
        if (nth == 1) {
            emb1 = out;
        } else {
            double e = 0;
            for (int64_t i = 0; i < units * ho; i++)
                e = fmax(e, fabs((double)out[i] - emb1[i]));
            printf("  1 vs 2 threads: max abs diff %.3g\n", e);
            T_CHECK(e < 1e-4);
            free(out);
        }
        free(cp.pe), free(cp.emb), free(cp.merger);
        for (int b = 0; b < vc->depth; b++)
            free(cp.blk[b]);
        free(scratch);
        vl__compute_free(&c);
    }
    free(emb1), free(perm), free(widx), free(cu), free(px), free(ro.pe), free(ro.emb);
    for (int b = 0; b < vc->depth; b++)
        free(ro.blk[b]);
}

static void test_errors(struct toy *t) {
    struct vl_error err = {0};
    struct vl_compute c;
    T_EQ_I64(vl__compute_init(&c, 1, 128, 128, &err), VL_OK);
    float px[16 * 24] = {0}, out[4 * 24];
    size_t nf = vl__vision_scratch_floats(&t->m.cfg, 16);
    float *scratch = malloc(nf * sizeof(float));
    struct vl_vision_input in = {px, 16, 24, 1, 4, 4, false, 0.0};
    in.n_patches = 15;
    T_EQ_I64(vl__vision_encode(&c, &t->m, &in, scratch, out, NULL, NULL, &err), VL_ERR_INVALID);
    T_CHECK(strstr(err.msg, "pixel rows") != NULL);
    in.n_patches = 16;
    in.grid_h = 3; /* not a multiple of the merge size */
    struct vl_error e2 = {0};
    T_EQ_I64(vl__vision_encode(&c, &t->m, &in, scratch, out, NULL, NULL, &e2), VL_ERR_INVALID);
    in.grid_h = 4;
    struct vl_tensor saved = t->blocks[1].up_w;
    t->blocks[1].up_w.ne[0]++;
    struct vl_error e3 = {0};
    T_EQ_I64(vl__vision_encode(&c, &t->m, &in, scratch, out, NULL, NULL, &e3), VL_ERR_MODEL);
    T_CHECK(strstr(e3.msg, "block 1") != NULL);
    t->blocks[1].up_w = saved;
    struct vl_error e4 = {0};
    T_EQ_I64(vl__vision_encode(&c, &t->m, &in, scratch, out, NULL, NULL, &e4), VL_OK);
    free(scratch);
    vl__compute_free(&c);
}

int main(int argc, char **argv) {
    bool large = argc > 1 && !strcmp(argv[1], "--large");
    struct toy t;
    toy_init(&t, 0x5eed1234ULL);
    if (large) {
        run_case(&t, 1, 68, 64, 7); /* 4352 patches: several query tiles, MLP row chunks */
    } else {
        test_errors(&t);
        run_case(&t, 1, 4, 4, 1);   /* one window */
        run_case(&t, 1, 10, 14, 2); /* edge windows in both directions */
        run_case(&t, 2, 6, 4, 3);   /* video: two frame-pairs */
    }
    toy_free(&t);
    return t_done();
}
