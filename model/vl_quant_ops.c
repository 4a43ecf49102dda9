/* Quantized weights, part 2: the pool front end of the quantized Linear (vl__qlinear_multi),
 * which vl__linear, vl__linear_multi and vl__linear_swiglu call for Q8_0 / Q4_0 weights.
 * x rows are quantized into c->scratch (as many per pass as fit; the rows split over the
 * workers), then the workers claim ranges of output rows (guided, as the BF16 GEMV) and run the dispatched integer kernel over all x rows
 * of the pass, add the bias and (swiglu) the SiLU product. Every output value is one kernel dot
 * product, so results do not depend on n, the passes, the claims or the thread count.
 * Thread-safety: a struct vl_compute belongs to one control thread. */
#include "vl_quant_impl.h"

#include <string.h>

#define UNIT_ROWS 16                           /* output rows per claim unit */
#define CLAIM_DIV 4                            /* guided claims: 1/4 of a worker's share */
#define CLAIM_MAX_BYTES ((size_t)256 << 10)    /* weight bytes of one claim, rows stay in L2 */
/* one x row: claims in units of the decode tile's 4 packed groups, so every claim splits into
 * the tile's four quarters with no 1-3-group rest (a rest tile starts its streams cold) */
#define DECODE_UNIT_ROWS 64
#define DECODE_CLAIM_DIV 2 /* one x row: guided claims of 1/2 a worker's share (longer streams) */
#define BIAS_TILE 256
#define ACT_POOL_MIN_ROWS 4                    /* x rows below which one thread quantizes */

struct qtask {
    struct vl_pool *pool;
    const int8_t *xq; /* (n, nb * 32) */
    const float *xd;  /* (n, nb) */
    const int32_t *xc[2]; /* (n, nb): the x blocks' corrections for Q8_0 [0] and Q4_0 [1] */
    int64_t n, nb, y_off;
    const struct vl_linear_out *outs;
    int n_outs;
    bool swiglu;
    int64_t rows, unit_rows, units, min_units, max_units, claim_div;
};

static void qrows(const struct qtask *t, const struct vl_linear_out *o, int64_t r0, int64_t r1) {
    const struct vl_tensor *w = o->w;
    const int64_t out = w->ne[0];
    float *y = o->y + t->y_off * out;
    VL_ASSERT(w->pack); /* every quantized Linear weight is packed at load (vl_quant_model.c) */
    vl__qsimd()->gemm(y, out, t->xq, t->xd, t->xc[w->dtype == VL_DTYPE_Q4_0], t->n, w->pack,
                      w->dtype, t->nb, r0, r1);
    for (int64_t b0 = r0; o->b && b0 < r1; b0 += BIAS_TILE) {
        float bias[BIAS_TILE]; /* (len) widened bias */
        int64_t len = r1 - b0 < BIAS_TILE ? r1 - b0 : BIAS_TILE;
        vl__to_f32(bias, o->b, b0, len);
        for (int64_t i = 0; i < t->n; i++)
            for (int64_t r = 0; r < len; r++)
                y[i * out + b0 + r] += bias[r];
    }
}

/* Virtual rows [v0, v1): the outputs' rows one after the other (swiglu: gate's, with up's). */
static void qrange(const struct qtask *t, int64_t v0, int64_t v1) {
    if (t->swiglu) {
        const int64_t out = t->outs[0].w->ne[0];
        qrows(t, &t->outs[0], v0, v1);
        qrows(t, &t->outs[1], v0, v1);
        for (int64_t i = 0; i < t->n; i++) {
            int64_t off = (t->y_off + i) * out + v0;
            vl__simd()->silu_mul(t->outs[0].y + off, t->outs[1].y + off, v1 - v0);
        }
        return;
    }
    int64_t base = 0;
    for (int k = 0; k < t->n_outs && base < v1; k++) {
        int64_t rows = t->outs[k].w->ne[0];
        int64_t a = v0 > base ? v0 - base : 0, b = v1 - base < rows ? v1 - base : rows;
        if (a < b)
            qrows(t, &t->outs[k], a, b);
        base += rows;
    }
}

static void qunits(const struct qtask *t, int64_t u0, int64_t u1) {
    int64_t v1 = u1 * t->unit_rows;
    qrange(t, u0 * t->unit_rows, v1 < t->rows ? v1 : t->rows);
}

static void qtask_run(void *arg, int ith, int nth) {
    const struct qtask *t = arg;
    int64_t u0, u1;
    (void)ith;
    if (nth == 1 || !t->pool) {
        for (u0 = 0; u0 < t->units; u0 = u1) {
            u1 = t->units - u0 < t->max_units ? t->units : u0 + t->max_units;
            qunits(t, u0, u1);
        }
        return;
    }
    while (vl__pool_claim(t->pool, t->units, t->claim_div, t->min_units, t->max_units, &u0, &u1))
        qunits(t, u0, u1);
}

/* The x rows of a pass quantized by the table's activation quantizer, split over the workers
 * (each row's bytes do not depend on the split). */
struct qact {
    int8_t *xq;
    float *xd;
    int32_t *xc[2]; /* NULL where no weight of that type (Q8_0, Q4_0) is in the call */
    const float *x;
    int64_t in, nb, n;
};

static void qact_run(void *arg, int ith, int nth) {
    const struct qact *a = arg;
    const vl_quantize_act_fn quantize = vl__qsimd()->quantize_act;
    int64_t i0, i1;
    vl__pool_split(a->n, 1, ith, nth, &i0, &i1);
    for (int64_t i = i0; i < i1; i++) {
        quantize(a->xq + i * a->nb * VL_QK, a->xd + i * a->nb, a->x + i * a->in, a->in);
        for (int k = 0; k < 2; k++)
            if (a->xc[k])
                vl__act_corr(a->xc[k] + i * a->nb, a->xq + i * a->nb * VL_QK, a->nb,
                             k ? VL_DTYPE_Q4_0 : VL_DTYPE_Q8_0);
    }
}

void vl__qlinear_multi(struct vl_compute *c, const float *x, int64_t n,
                       const struct vl_linear_out *outs, int n_outs, bool swiglu) {
    VL_ASSERT(c && n_outs >= 1 && n_outs <= VL_LINEAR_MAX_OUTS && (!swiglu || n_outs == 2));
    const int64_t in = outs[0].w->ne[1];
    int64_t rows = 0;
    size_t row_bytes = 0; /* weight bytes per virtual row */
    bool has[2] = {false, false}; /* Q8_0, Q4_0 weights in the call */
    for (int k = 0; k < n_outs; k++) {
        const struct vl_tensor *w = outs[k].w;
        VL_ASSERT(w->ndim == 2 && w->ne[1] == in && vl__dtype_is_quant(w->dtype));
        VL_ASSERT(!outs[k].b || (outs[k].b->ndim == 1 && outs[k].b->ne[0] == w->ne[0]));
        VL_ASSERT(!swiglu || w->ne[0] == outs[0].w->ne[0]);
        rows += swiglu && k ? 0 : w->ne[0];
        has[w->dtype == VL_DTYPE_Q4_0] = true;
        size_t rb = vl__q_row_bytes(w->dtype, in) * (swiglu ? 2 : 1);
        row_bytes = rb > row_bytes ? rb : row_bytes;
    }
    if (rows == 0 || n == 0)
        return;
    const int64_t nb = vl__q_blocks(in);
    struct qtask t = {
        .pool = vl__pool_in_task() ? NULL : c->pool,
        .nb = nb,
        .outs = outs,
        .n_outs = n_outs,
        .swiglu = swiglu,
        .rows = rows,
        .unit_rows = UNIT_ROWS,
        .units = (rows + UNIT_ROWS - 1) / UNIT_ROWS,
        .claim_div = CLAIM_DIV,
    };
    int64_t fit = (int64_t)(CLAIM_MAX_BYTES / (row_bytes * UNIT_ROWS));
    t.max_units = fit < 1 ? 1 : fit;
    t.min_units = 1;
    if (n == 1) { /* decode: every weight is read once, nothing to keep in L2; long claims of
                   * whole 4-group tiles keep the streams (and their prefetches) running */
        t.unit_rows = DECODE_UNIT_ROWS;
        t.units = (rows + DECODE_UNIT_ROWS - 1) / DECODE_UNIT_ROWS;
        t.max_units = t.units;
        t.claim_div = DECODE_CLAIM_DIV;
    }
    /* quantized x rows (int8, then the f32 scales, then the corrections of each weight type in
     * the call) in the scratch, as many per pass as fit */
    const size_t xrow = (size_t)nb * VL_QK + (size_t)nb * sizeof(float) +
                        (size_t)(has[0] + has[1]) * (size_t)nb * sizeof(int32_t);
    int64_t batch = (int64_t)(c->scratch_bytes / xrow);
    VL_ASSERT(batch >= 1);
    batch = batch < n ? batch : n;
    for (int64_t i0 = 0; i0 < n; i0 += batch) {
        int64_t nbt = n - i0 < batch ? n - i0 : batch;
        int8_t *xq = (int8_t *)c->scratch;
        float *xd = (float *)(xq + (size_t)batch * (size_t)nb * VL_QK); /* 4-aligned: 32 | row */
        int32_t *xc = (int32_t *)(xd + (size_t)batch * (size_t)nb);
        struct qact qa = {.xq = xq, .xd = xd, .x = x + i0 * in, .in = in, .nb = nb, .n = nbt};
        for (int k = 0; k < 2; k++)
            if (has[k]) {
                qa.xc[k] = xc;
                xc += (size_t)batch * (size_t)nb;
            }
        vl__pool_run(nbt >= ACT_POOL_MIN_ROWS ? t.pool : NULL, qact_run, &qa);
        t.xq = xq;
        t.xd = xd;
        t.xc[0] = qa.xc[0];
        t.xc[1] = qa.xc[1];
        t.n = nbt;
        t.y_off = i0;
        vl__pool_run(t.pool, qtask_run, &t);
    }
}
