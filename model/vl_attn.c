/* Fused multi-head attention on the pool: o = softmax(scale · q kᵀ [+ causal mask]) v for every
 * head of every segment, computed in work units of (segment, head, query tile) that the pool's
 * workers claim dynamically. Each unit runs two single-threaded cblas_sgemm calls (Q·Kᵀ into the
 * worker's part of the compute scratch, then P·V) around an f32 max-subtracted row softmax,
 * the same operations as a per-head GEMM/softmax/GEMM loop, but all cores busy on small windows
 * and no dispatch between the three steps. GQA: query head h reads KV head h / (nq / nkv).
 * Thread-safety: call from the control thread of a vl_compute (inside a task it runs alone). */
#include "vl_impl.h"

#include <cblas.h>
#include <limits.h>
#include <string.h>

struct attn_task {
    const struct vl_attn *a;
    struct vl_compute *c;
    int64_t tile;        /* query rows per unit */
    int64_t part_floats; /* scratch floats per worker */
    int64_t n_units;
};

static blasint bi(int64_t v) {
    VL_ASSERT(v >= 0 && v <= INT_MAX);
    return (blasint)v;
}

/* Unit u -> segment s, head h, first query row (relative to the segment) q0. */
static void unit_locate(const struct attn_task *t, int64_t u, int64_t *s, int64_t *h, int64_t *q0) {
    const struct vl_attn *a = t->a;
    for (int64_t i = 0; i < a->n_seg; i++) {
        int64_t qlen = a->q_cu[i + 1] - a->q_cu[i];
        int64_t per_head = (qlen + t->tile - 1) / t->tile;
        int64_t units = per_head * a->n_heads;
        if (u < units) {
            *s = i;
            *h = u / per_head;
            *q0 = (u % per_head) * t->tile;
            return;
        }
        u -= units;
    }
    VL_ASSERT(!"attention: unit out of range");
}

static void attn_unit(const struct attn_task *t, int64_t u, float *scores) {
    const struct vl_attn *a = t->a;
    int64_t s, h, q0;
    unit_locate(t, u, &s, &h, &q0);
    const int64_t qs = a->q_cu[s], qlen = a->q_cu[s + 1] - qs;
    const int64_t ks = a->k_cu[s], klen = a->k_cu[s + 1] - ks;
    const int64_t rows = qlen - q0 < t->tile ? qlen - q0 : t->tile;
    const int64_t kvh = h / (a->n_heads / a->n_kv_heads);
    const int64_t off = klen - qlen; /* causal: query i sees keys [0, i + off] */
    int64_t nk = klen;
    if (a->causal && q0 + rows + off < nk)
        nk = q0 + rows + off;
    const float *q = a->q + h * a->q_head_stride + (qs + q0) * a->ldq;
    const float *k = a->k + kvh * a->k_head_stride + ks * a->ldk;
    const float *v = a->v + kvh * a->v_head_stride + ks * a->ldv;
    float *o = a->out + h * a->o_head_stride + (qs + q0) * a->ldo;
    /* scores (rows, nk) = scale · q (rows, dh) · kᵀ (dh, nk) */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, bi(rows), bi(nk), bi(a->head_dim),
                a->scale, q, bi(a->ldq), k, bi(a->ldk), 0.0f, scores, bi(nk));
    for (int64_t i = 0; i < rows; i++) {
        float *row = scores + i * nk;
        int64_t vis = a->causal ? q0 + i + off + 1 : nk;
        vis = vis > nk ? nk : vis;
        vl__softmax_rows(row, 1, vis);
        if (vis < nk)
            memset(row + vis, 0, (size_t)(nk - vis) * sizeof *row);
    }
    /* o (rows, dh) = P (rows, nk) · v (nk, dh) */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, bi(rows), bi(a->head_dim), bi(nk), 1.0f,
                scores, bi(nk), v, bi(a->ldv), 0.0f, o, bi(a->ldo));
}

static void attn_task_run(void *arg, int ith, int nth) {
    const struct attn_task *t = arg;
    float *scores = t->c->scratch + (int64_t)ith * t->part_floats; /* (tile, klen_max) */
    if (nth == 1) {
        for (int64_t u = 0; u < t->n_units; u++)
            attn_unit(t, u, scores);
        return;
    }
    for (;;) {
        int64_t u = vl__pool_next_chunk(t->c->pool);
        if (u >= t->n_units)
            break;
        attn_unit(t, u, scores);
    }
}

void vl__attention(struct vl_compute *c, const struct vl_attn *a) {
    VL_ASSERT(c && c->scratch && a->n_heads > 0 && a->n_kv_heads > 0);
    VL_ASSERT(a->n_heads % a->n_kv_heads == 0 && a->head_dim > 0);
    int64_t klen_max = 1, n_q = 0;
    for (int64_t s = 0; s < a->n_seg; s++) {
        int64_t ql = a->q_cu[s + 1] - a->q_cu[s], kl = a->k_cu[s + 1] - a->k_cu[s];
        VL_ASSERT(ql >= 0 && kl >= 0 && (!a->causal || ql <= kl));
        klen_max = kl > klen_max ? kl : klen_max;
        n_q = ql > n_q ? ql : n_q;
    }
    if (n_q == 0)
        return;
    struct vl_pool *pool = vl__pool_in_task() ? NULL : c->pool;
    int nth = vl__pool_size(pool);
    int64_t part = (int64_t)(c->scratch_bytes / sizeof(float)) / nth;
    int64_t tile = part / klen_max;
    tile = tile < VL_ATTN_TILE_ROWS ? tile : VL_ATTN_TILE_ROWS;
    VL_ASSERT(tile >= 1); /* the scratch holds at least one score row per worker */
    struct attn_task t = {.a = a, .c = c, .tile = tile, .part_floats = part, .n_units = 0};
    for (int64_t s = 0; s < a->n_seg; s++)
        t.n_units += (a->q_cu[s + 1] - a->q_cu[s] + tile - 1) / tile * a->n_heads;
    vl__pool_run(pool, attn_task_run, &t);
}

void vl__attention_ref(const struct vl_attn *a, float *scores) {
    for (int64_t s = 0; s < a->n_seg; s++) {
        const int64_t qs = a->q_cu[s], qlen = a->q_cu[s + 1] - qs;
        const int64_t ks = a->k_cu[s], klen = a->k_cu[s + 1] - ks;
        for (int64_t h = 0; h < a->n_heads; h++) {
            const int64_t kvh = h / (a->n_heads / a->n_kv_heads);
            for (int64_t i = 0; i < qlen; i++) {
                const float *q = a->q + h * a->q_head_stride + (qs + i) * a->ldq;
                int64_t vis = a->causal ? i + (klen - qlen) + 1 : klen;
                for (int64_t j = 0; j < vis; j++) {
                    const float *k = a->k + kvh * a->k_head_stride + (ks + j) * a->ldk;
                    double acc = 0.0;
                    for (int64_t d = 0; d < a->head_dim; d++)
                        acc += (double)q[d] * (double)k[d];
                    scores[j] = (float)(acc * (double)a->scale);
                }
                vl__softmax_rows_ref(scores, 1, vis);
                float *o = a->out + h * a->o_head_stride + (qs + i) * a->ldo;
                for (int64_t d = 0; d < a->head_dim; d++) {
                    double acc = 0.0;
                    for (int64_t j = 0; j < vis; j++)
                        acc += (double)scores[j] *
                               (double)a->v[kvh * a->v_head_stride + (ks + j) * a->ldv + d];
                    o[d] = (float)acc;
                }
            }
        }
    }
}
