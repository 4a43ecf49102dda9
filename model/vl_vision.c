/* Qwen2.5-VL vision tower, one image or video per call (spec §4): patch embedding as one GEMM,
 * the window permutation, blocks with window / full attention and 2-D RoPE, the 2x2 merger, and
 * the inverse permutation back to placeholder-token order.
 * All activations live in the caller's scratch (vl__vision_scratch_floats); nothing is allocated
 * here. Not re-entrant per struct vl_compute (its pool and scratch are used); distinct computes
 * and scratch buffers may run concurrently on one read-only model. GEMMs run on the calling
 * thread (OpenBLAS threads them); element-wise work and softmax run on the compute's pool. */
#include "vl_impl.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define VIS_ALIGN_FLOATS 16            /* every scratch region starts on a 64-byte boundary */
#define VIS_ROW_CHUNK 1024             /* rows per MLP / merger step: bounds (rows, Iv) buffers */
#define VIS_SCORE_FLOATS (1LL << 22)   /* attention score tile budget, all heads (16 MiB) */
#define VIS_SOFTMAX_PAR_MIN (1LL << 14) /* smaller score tiles: softmax on the calling thread */
#define VIS_HOOK_NAME_MAX 64
#define VIS_QKV 3                      /* q, k, v packed in one row of the qkv projection */
#define VIS_I64_FLOATS ((int64_t)(sizeof(int64_t) / sizeof(float)))

/* ---- sizes and scratch layout ------------------------------------------------------------ */

struct vis_dims {
    int64_t n;     /* patches of the item (rows) */
    int64_t units; /* merge units = n / ur */
    int64_t ur;    /* patch rows per merge unit (M^2) */
    int64_t d;     /* ViT width */
    int64_t nh;    /* heads */
    int64_t dh;    /* head dim */
    int64_t iv;    /* MLP width */
    int64_t hout;  /* merger output width */
    int64_t pd;    /* patch vector length C * TP * P * P */
};

/* Offsets in floats from the start of scratch. */
struct vis_layout {
    size_t widx, cu_win, cu_seq; /* int64 arrays */
    size_t cos, sin;             /* (n, dh) window order */
    size_t hs;                   /* (n, d) hidden states, window order */
    size_t tmp;                  /* (n, d) patch embed / norm output / attention output */
    size_t big;                  /* qkv (n, 3d) | proj out (n, d) | MLP chunk | merger chunk */
    size_t scores;               /* (nh, nq, L) attention tile */
    size_t total;
};

static int64_t i64_min(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t i64_max(int64_t a, int64_t b) { return a > b ? a : b; }

static bool vis_config_ok(const struct vl_vision_config *vc) {
    if (vc->hidden_size < 1 || vc->num_heads < 1 || vc->hidden_size % vc->num_heads)
        return false;
    int64_t dh = vc->hidden_size / vc->num_heads;
    return dh % 4 == 0 && dh <= VL_VISION_MAX_HEAD_DIM && vc->spatial_merge_size >= 1 &&
           vc->patch_size >= 1 && vc->temporal_patch_size >= 1 && vc->in_chans >= 1 &&
           vc->intermediate_size >= 1 && vc->out_hidden_size >= 1 && vc->depth >= 0 &&
           vc->window_size / vc->spatial_merge_size / vc->patch_size >= 1; /* window >= 1 unit */
}

static void vis_dims_init(struct vis_dims *dm, const struct vl_vision_config *vc, int64_t n) {
    dm->n = n;
    dm->ur = vc->spatial_merge_size * vc->spatial_merge_size;
    dm->units = (n + dm->ur - 1) / dm->ur;
    dm->d = vc->hidden_size;
    dm->nh = vc->num_heads;
    dm->dh = vc->hidden_size / vc->num_heads;
    dm->iv = vc->intermediate_size;
    dm->hout = vc->out_hidden_size;
    dm->pd = vc->in_chans * vc->temporal_patch_size * vc->patch_size * vc->patch_size;
}

/* Appends a region of nfloats (rounded up to the alignment); false on overflow. */
static bool lay_add(size_t *off, size_t *cur, int64_t nfloats) {
    if (nfloats < 0)
        return false;
    size_t n = (size_t)nfloats, r = 0;
    if (__builtin_add_overflow(n, (size_t)VIS_ALIGN_FLOATS - 1, &r))
        return false;
    r -= r % VIS_ALIGN_FLOATS;
    *off = *cur;
    return !__builtin_add_overflow(*cur, r, cur);
}

/* Score tile for a segment of len keys: all heads of the whole segment at once when that fits
 * the budget (windows: few large GEMM batches, one softmax dispatch), otherwise one head at a
 * time in query tiles of rows so that rows * len fits the budget (full attention). */
struct tile {
    int64_t heads; /* heads per tile: nh or 1 */
    int64_t rows;  /* query rows per tile */
};

static struct tile tile_for(const struct vis_dims *dm, int64_t len) {
    struct tile t;
    if (len <= VIS_SCORE_FLOATS / len / dm->nh) {
        t.heads = dm->nh;
        t.rows = len;
    } else {
        t.heads = 1;
        t.rows = i64_max(1, i64_min(len, VIS_SCORE_FLOATS / len));
    }
    return t;
}

static bool vis_layout_init(struct vis_layout *L, const struct vis_dims *dm) {
    int64_t nd = 0, n3d = 0, ndh = 0, big = 0, t = 0, scores = 0;
    const int64_t chunk = i64_min(dm->n, VIS_ROW_CHUNK), chunk_u = i64_min(dm->units, VIS_ROW_CHUNK);
    if (__builtin_mul_overflow(dm->n, dm->d, &nd) || __builtin_mul_overflow(nd, VIS_QKV, &n3d) ||
        __builtin_mul_overflow(dm->n, dm->dh, &ndh))
        return false;
    big = n3d;
    if (__builtin_mul_overflow(chunk, 2 * dm->iv, &t))
        return false;
    big = i64_max(big, t);
    if (__builtin_mul_overflow(chunk_u, dm->ur * dm->d, &t))
        return false;
    big = i64_max(big, t);
    if (__builtin_mul_overflow(dm->units, dm->hout, &t))
        return false;
    big = i64_max(big, t);
    /* score tile (tile_for): heads * rows * len <= max(budget, n), and <= nh * n * n */
    scores = i64_max(VIS_SCORE_FLOATS, dm->n);
    if (!__builtin_mul_overflow(dm->nh, dm->n, &t) && !__builtin_mul_overflow(t, dm->n, &t))
        scores = i64_min(scores, t);
    size_t cur = 0;
    int64_t n_i64 = (dm->units + 1) * VIS_I64_FLOATS;
    return lay_add(&L->widx, &cur, dm->units * VIS_I64_FLOATS) &&
           lay_add(&L->cu_win, &cur, n_i64) && lay_add(&L->cu_seq, &cur, n_i64) &&
           lay_add(&L->cos, &cur, ndh) && lay_add(&L->sin, &cur, ndh) &&
           lay_add(&L->hs, &cur, nd) && lay_add(&L->tmp, &cur, nd) &&
           lay_add(&L->big, &cur, big) && lay_add(&L->scores, &cur, scores) &&
           (L->total = cur, true);
}

size_t vl__vision_scratch_floats(const struct vl_config *cfg, int64_t n_patches) {
    if (!vis_config_ok(&cfg->vision) || n_patches < 1)
        return 0;
    struct vis_dims dm;
    struct vis_layout L;
    vis_dims_init(&dm, &cfg->vision, n_patches);
    return vis_layout_init(&L, &dm) ? L.total : 0;
}

/* ---- pool tasks -------------------------------------------------------------------------- */

struct add_task {
    float *x;
    const float *y;
    int64_t n;
};

static void add_fn(void *arg, int ith, int nth) {
    const struct add_task *t = arg;
    int64_t i0, i1;
    vl__pool_split(t->n, 1, ith, nth, &i0, &i1);
    for (int64_t i = i0; i < i1; i++)
        t->x[i] += t->y[i];
}

/* x[0..n) += y[0..n) (residual connection). */
static void residual_add(struct vl_compute *c, float *x, const float *y, int64_t n) {
    struct add_task t = {x, y, n};
    vl__pool_run(c->pool, add_fn, &t);
}

struct rope_task {
    float *qkv; /* (n, 3d) */
    const float *cos, *sin; /* (n, dh) */
    const struct vis_dims *dm;
};

/* Rotate-half RoPE on q and k of every head, pairs (i, i + dh/2) (spec §4.3):
 * x'[i] = x[i] cos[i] - x[i+half] sin[i];  x'[i+half] = x[i+half] cos[i+half] + x[i] sin[i+half]. */
static void rope_fn(void *arg, int ith, int nth) {
    const struct rope_task *t = arg;
    const struct vis_dims *dm = t->dm;
    const int64_t half = dm->dh / 2;
    int64_t r0, r1;
    vl__pool_split(dm->n, 1, ith, nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        const float *cr = t->cos + r * dm->dh, *sr = t->sin + r * dm->dh;
        for (int64_t part = 0; part < 2; part++) { /* 0: q, 1: k */
            float *row = t->qkv + r * VIS_QKV * dm->d + part * dm->d;
            for (int64_t h = 0; h < dm->nh; h++) {
                float *x = row + h * dm->dh;
                for (int64_t i = 0; i < half; i++) {
                    const float x1 = x[i], x2 = x[i + half];
                    x[i] = x1 * cr[i] + (-x2) * sr[i];
                    x[i + half] = x2 * cr[i + half] + x1 * sr[i + half];
                }
            }
        }
    }
}

struct softmax_task {
    float *x;
    int64_t rows, len;
};

static void softmax_fn(void *arg, int ith, int nth) {
    const struct softmax_task *t = arg;
    int64_t r0, r1;
    vl__pool_split(t->rows, 1, ith, nth, &r0, &r1);
    if (r1 > r0)
        vl__softmax_rows(t->x + r0 * t->len, r1 - r0, t->len);
}

/* ---- attention --------------------------------------------------------------------------- */

/* Bidirectional attention inside each segment [cu[s], cu[s+1]) for every head:
 * o[q, h] = softmax(q_h k_h^T / sqrt(dh)) v_h, in score tiles (tile_for) so the score memory is
 * bounded (VIS_SCORE_FLOATS) even for full attention over thousands of patches.
 * qkv: (n, 3d) after RoPE; o: (n, d); scores: (heads, rows, len) per tile. */
static void attention(struct vl_compute *c, const struct vis_dims *dm, const float *qkv,
                      float *o, float *scores, const int64_t *cu, int64_t nseg) {
    const int64_t ld = VIS_QKV * dm->d;
    const float scale = (float)(1.0 / sqrt((double)dm->dh));
    for (int64_t s = 0; s < nseg; s++) {
        const int64_t s0 = cu[s], len = cu[s + 1] - cu[s];
        const struct tile tl = tile_for(dm, len);
        const float *k = qkv + s0 * ld + dm->d;
        const float *v = qkv + s0 * ld + 2 * dm->d;
        for (int64_t h0 = 0; h0 < dm->nh; h0 += tl.heads) {
            for (int64_t q0 = s0; q0 < s0 + len; q0 += tl.rows) {
                const int64_t rows = i64_min(tl.rows, s0 + len - q0);
                const int64_t per_head = rows * len; /* (rows, len) scores of one head */
                for (int64_t h = h0; h < h0 + tl.heads; h++)
                    vl__gemm_f32(c, false, true, rows, len, dm->dh, scale,
                                 qkv + q0 * ld + h * dm->dh, ld, k + h * dm->dh, ld, 0.0f,
                                 scores + (h - h0) * per_head, len);
                struct softmax_task st = {scores, tl.heads * rows, len};
                if (tl.heads * per_head >= VIS_SOFTMAX_PAR_MIN)
                    vl__pool_run(c->pool, softmax_fn, &st);
                else
                    softmax_fn(&st, 0, 1);
                for (int64_t h = h0; h < h0 + tl.heads; h++)
                    vl__gemm_f32(c, false, false, rows, dm->dh, len, 1.0f,
                                 scores + (h - h0) * per_head, len, v + h * dm->dh, ld, 0.0f,
                                 o + q0 * dm->d + h * dm->dh, dm->d);
            }
        }
    }
}

/* ---- blocks and merger ------------------------------------------------------------------- */

struct vis_bufs {
    float *cos, *sin, *hs, *tmp, *big, *scores;
    int64_t *widx, *cu_win, *cu_seq;
};

/* One ViT block on the window-ordered hidden states hs (n, d) (spec §4.6). */
static void block_forward(struct vl_compute *c, const struct vis_dims *dm,
                          const struct vl_vision_block *w, const struct vis_bufs *b, float eps,
                          const int64_t *cu, int64_t nseg) {
    /* attention half: hs += proj(attn(rope(qkv(norm1(hs))))) */
    vl__rmsnorm(c, b->tmp, b->hs, dm->n, dm->d, &w->norm1, eps);
    vl__linear(c, b->big, b->tmp, dm->n, &w->qkv_w, &w->qkv_b); /* (n, 3d) */
    struct rope_task rt = {b->big, b->cos, b->sin, dm};
    vl__pool_run(c->pool, rope_fn, &rt);
    attention(c, dm, b->big, b->tmp, b->scores, cu, nseg);        /* tmp: (n, d) */
    vl__linear(c, b->big, b->tmp, dm->n, &w->proj_w, &w->proj_b); /* big: (n, d) */
    residual_add(c, b->hs, b->big, dm->n * dm->d);
    /* MLP half, in row chunks: hs += down(silu(gate(x)) * up(x)), x = norm2(hs) */
    vl__rmsnorm(c, b->tmp, b->hs, dm->n, dm->d, &w->norm2, eps);
    for (int64_t r0 = 0; r0 < dm->n; r0 += VIS_ROW_CHUNK) {
        const int64_t rows = i64_min(VIS_ROW_CHUNK, dm->n - r0);
        float *gate = b->big;            /* (rows, iv) */
        float *up = b->big + rows * dm->iv; /* (rows, iv) */
        float *x = b->tmp + r0 * dm->d;  /* (rows, d), consumed before being overwritten */
        vl__linear(c, gate, x, rows, &w->gate_w, &w->gate_b);
        vl__linear(c, up, x, rows, &w->up_w, &w->up_b);
        vl__silu_mul(c, gate, up, rows * dm->iv);
        vl__linear(c, x, gate, rows, &w->down_w, &w->down_b);
    }
    residual_add(c, b->hs, b->tmp, dm->n * dm->d);
}

/* Merger (spec §4.7): RMSNorm, rows of one merge unit concatenated (a plain reshape of the
 * window-ordered rows), Linear, exact GELU, Linear. out: (units, hout), window order. */
static void merger_forward(struct vl_compute *c, const struct vis_dims *dm,
                           const struct vl_weights *w, const struct vis_bufs *b, float eps,
                           float *out) {
    const int64_t ud = dm->ur * dm->d; /* merged vector length */
    vl__rmsnorm(c, b->tmp, b->hs, dm->n, dm->d, &w->merger_norm, eps); /* (units, ud) */
    for (int64_t u0 = 0; u0 < dm->units; u0 += VIS_ROW_CHUNK) {
        const int64_t rows = i64_min(VIS_ROW_CHUNK, dm->units - u0);
        vl__linear(c, b->big, b->tmp + u0 * ud, rows, &w->merger_fc1_w, &w->merger_fc1_b);
        vl__gelu(c, b->big, rows * ud);
        vl__linear(c, out + u0 * dm->hout, b->big, rows, &w->merger_fc2_w, &w->merger_fc2_b);
    }
}

/* ---- validation -------------------------------------------------------------------------- */

static bool shape_is(const struct vl_tensor *t, int ndim, int64_t a, int64_t b) {
    if ((!t->data && !t->pack) || t->ndim != ndim || t->ne[0] != a) /* pack: quantized */
        return false;
    return ndim == 1 || t->ne[1] == b;
}

static enum vl_status check_weights(const struct vl_model *m, const struct vis_dims *dm,
                                    struct vl_error *err) {
    const struct vl_weights *w = &m->w;
    const struct vl_tensor *pe = &w->patch_embed;
    if (!pe->data || pe->ne[0] != dm->d || vl__tensor_numel(pe) != dm->d * dm->pd)
        return vl__err(err, VL_ERR_MODEL, "vision: patch_embed has %lld values, expected %lld x %lld",
                       (long long)vl__tensor_numel(pe), (long long)dm->d, (long long)dm->pd);
    const int64_t ud = dm->ur * dm->d;
    if (!shape_is(&w->merger_norm, 1, dm->d, 0) || !shape_is(&w->merger_fc1_w, 2, ud, ud) ||
        !shape_is(&w->merger_fc1_b, 1, ud, 0) || !shape_is(&w->merger_fc2_w, 2, dm->hout, ud) ||
        !shape_is(&w->merger_fc2_b, 1, dm->hout, 0))
        return vl__err(err, VL_ERR_MODEL, "vision: merger weights do not match %lld -> %lld",
                       (long long)ud, (long long)dm->hout);
    if (m->cfg.vision.depth > 0 && !w->vblocks)
        return vl__err(err, VL_ERR_MODEL, "vision: blocks not loaded");
    for (int64_t i = 0; i < m->cfg.vision.depth; i++) {
        const struct vl_vision_block *bk = &w->vblocks[i];
        if (!shape_is(&bk->norm1, 1, dm->d, 0) || !shape_is(&bk->norm2, 1, dm->d, 0) ||
            !shape_is(&bk->qkv_w, 2, VIS_QKV * dm->d, dm->d) ||
            !shape_is(&bk->qkv_b, 1, VIS_QKV * dm->d, 0) ||
            !shape_is(&bk->proj_w, 2, dm->d, dm->d) || !shape_is(&bk->proj_b, 1, dm->d, 0) ||
            !shape_is(&bk->gate_w, 2, dm->iv, dm->d) || !shape_is(&bk->gate_b, 1, dm->iv, 0) ||
            !shape_is(&bk->up_w, 2, dm->iv, dm->d) || !shape_is(&bk->up_b, 1, dm->iv, 0) ||
            !shape_is(&bk->down_w, 2, dm->d, dm->iv) || !shape_is(&bk->down_b, 1, dm->d, 0))
            return vl__err(err, VL_ERR_MODEL, "vision: block %lld weights have unexpected shapes",
                           (long long)i);
    }
    return VL_OK;
}

static void call_hook(vl_hook_fn hook, void *user, const char *name, const float *data,
                      int64_t rows, int64_t cols) {
    if (!hook)
        return;
    int64_t shape[2] = {rows, cols};
    hook(name, data, 2, shape, user);
}

static bool is_full_block(const struct vl_vision_config *vc, int64_t b) {
    for (int64_t i = 0; i < vc->n_fullatt; i++)
        if (vc->fullatt_block_indexes[i] == b)
            return true;
    return false;
}

/* ---- forward ----------------------------------------------------------------------------- */

enum vl_status vl__vision_encode(struct vl_compute *c, const struct vl_model *m,
                                 const struct vl_vision_input *in, float *scratch, float *out,
                                 vl_hook_fn hook, void *hook_user, struct vl_error *err) {
    const struct vl_vision_config *vc = &m->cfg.vision;
    VL_ASSERT(c && in && scratch && out);
    VL_ASSERT((uintptr_t)scratch % sizeof(int64_t) == 0);
    if (!vis_config_ok(vc))
        return vl__err(err, VL_ERR_MODEL, "vision: unusable config (hidden %lld, heads %lld)",
                       (long long)vc->hidden_size, (long long)vc->num_heads);
    enum vl_status st = vl__vision_check_grid(vc, in->grid_t, in->grid_h, in->grid_w, err);
    if (st != VL_OK)
        return st;
    struct vis_dims dm;
    vis_dims_init(&dm, vc, in->grid_t * in->grid_h * in->grid_w);
    if (in->n_patches != dm.n || in->patch_dim != dm.pd || !in->pixel_values)
        return vl__err(err, VL_ERR_INVALID,
                       "vision: input has %lld x %lld pixel rows, grid (%lld, %lld, %lld) needs "
                       "%lld x %lld", (long long)in->n_patches, (long long)in->patch_dim,
                       (long long)in->grid_t, (long long)in->grid_h, (long long)in->grid_w,
                       (long long)dm.n, (long long)dm.pd);
    st = check_weights(m, &dm, err);
    if (st != VL_OK)
        return st;
    struct vis_layout L;
    if (!vis_layout_init(&L, &dm))
        return vl__err(err, VL_ERR_LIMIT, "vision: %lld patches overflow the scratch size",
                       (long long)dm.n);
    struct vis_bufs b = {
        .cos = scratch + L.cos, .sin = scratch + L.sin, .hs = scratch + L.hs,
        .tmp = scratch + L.tmp, .big = scratch + L.big, .scores = scratch + L.scores,
        .widx = (int64_t *)(void *)(scratch + L.widx),
        .cu_win = (int64_t *)(void *)(scratch + L.cu_win),
        .cu_seq = (int64_t *)(void *)(scratch + L.cu_seq),
    };
    const float eps = (float)vc->rms_norm_eps;
    const size_t unit_bytes = (size_t)(dm.ur * dm.d) * sizeof(float);

    /* patch embedding: Conv3d with kernel == stride == one patch is X (n, pd) . W^T, W viewed
     * as (d, pd) in its stored dtype (spec §4.2) */
    struct vl_tensor wpe = m->w.patch_embed;
    wpe.ndim = 2;
    wpe.ne[0] = dm.d;
    wpe.ne[1] = dm.pd;
    vl__linear(c, b.tmp, in->pixel_values, dm.n, &wpe, NULL); /* (n, d) original order */
    call_hook(hook, hook_user, "vit.patch_embed", b.tmp, dm.n, dm.d);

    /* window permutation of rows (4 per merge unit) and the RoPE tables in that order */
    const int64_t nwin = vl__vision_window_index(b.widx, b.cu_win, vc, in->grid_t, in->grid_h,
                                                 in->grid_w);
    vl__vision_cu_seqlens(b.cu_seq, in->grid_t, in->grid_h, in->grid_w);
    for (int64_t k = 0; k < dm.units; k++)
        memcpy(b.hs + k * dm.ur * dm.d, b.tmp + b.widx[k] * dm.ur * dm.d, unit_bytes);
    vl__vision_rope_table(b.cos, b.sin, vc, b.widx, in->grid_t, in->grid_h, in->grid_w);
    call_hook(hook, hook_user, "vit.rope_cos", b.cos, dm.n, dm.dh);
    call_hook(hook, hook_user, "vit.rope_sin", b.sin, dm.n, dm.dh);

    char name[VIS_HOOK_NAME_MAX];
    for (int64_t i = 0; i < vc->depth; i++) {
        const bool full = is_full_block(vc, i);
        block_forward(c, &dm, &m->w.vblocks[i], &b, eps, full ? b.cu_seq : b.cu_win,
                      full ? in->grid_t : nwin);
        if (hook) {
            snprintf(name, sizeof name, "vit.blk.%lld.out", (long long)i);
            call_hook(hook, hook_user, name, b.hs, dm.n, dm.d);
        }
    }

    merger_forward(c, &dm, &m->w, &b, eps, out); /* (units, hout) window order */
    call_hook(hook, hook_user, "merger.out", out, dm.units, dm.hout);
    /* undo the permutation: token widx[k] is row k of the merger output (spec §4.8) */
    const size_t tok_bytes = (size_t)dm.hout * sizeof(float);
    memcpy(b.big, out, (size_t)dm.units * tok_bytes);
    for (int64_t k = 0; k < dm.units; k++)
        memcpy(out + b.widx[k] * dm.hout, b.big + k * dm.hout, tok_bytes);
    call_hook(hook, hook_user, "vision.embeds", out, dm.units, dm.hout);
    return VL_OK;
}
