/* The compute context (pool + weight-widening scratch + OpenBLAS thread count) and the
 * pool-parallel front ends of the kernels: vl__linear (GEMV for small n, panel + sgemm for
 * large n, bias), RMSNorm, SiLU*up, GELU and row softmax. Each front end splits rows or
 * elements by (ith, nth) and calls the dispatched SIMD kernel (vl_ops_x86.c) or its scalar twin.
 * Thread-safety: a struct vl_compute belongs to one control thread (the inference state). */
#include "vl_impl.h"
#include "vl_quant_impl.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SCRATCH_ALIGN 64
/* Below this many elements an elementwise op runs on the caller (dispatch costs more). */
#define PAR_MIN_ELEMS 16384
/* Elementwise ranges are cut at multiples of this (whole SIMD vectors, one cache line). */
#define ELEM_ALIGN 16
/* GEMV scheduling: workers claim ranges of output rows guided (vl__pool_claim): each claim about
 * 1/GEMV_GUIDED_DIV of a worker's share of what is left (long streams for the prefetchers
 * first), down to GEMV_TAIL_BYTES of weights, so both workers reach the join together (with
 * fixed chunks of 1/8 per worker a 3B decode step idled ~5 % of one core at the joins). Claims
 * are whole units of GEMV_UNIT_ROWS rows: whole SIMD vectors of y, so the SiLU fused into
 * vl__linear_swiglu splits vectors from the scalar tail as one pass over the row would, and the
 * result never depends on how the rows were claimed. For n > 1 a claim's weights also fit
 * GEMV_CHUNK_CACHE_BYTES so x rows 2..n re-read them from L2. */
#define GEMV_GUIDED_DIV 4
#define GEMV_TAIL_BYTES ((size_t)64 << 10)
#define GEMV_UNIT_ROWS ELEM_ALIGN
#define GEMV_CHUNK_CACHE_BYTES ((size_t)256 << 10)
#define GEMV_BIAS_TILE 256
/* Output rows per stack tile of the padded 4-row pass (4 KB of sums). */
#define GEMV_PAD_TILE 256

/* ---- context ----------------------------------------------------------------------------- */

size_t vl__compute_scratch_bytes(int n_threads, int64_t max_out, int64_t max_in) {
    if (n_threads < 1)
        n_threads = 1;
    if (max_out < VL_LINEAR_GEMV_MAX_N) /* the GEMV's prepared x rows */
        max_out = VL_LINEAR_GEMV_MAX_N;
    if (max_in < 1)
        max_in = 1;
    /* one panel of VL_PANEL_TARGET_BYTES per worker, never more rows than the largest weight */
    size_t row = (size_t)max_in * sizeof(float);
    size_t rows = VL_PANEL_TARGET_BYTES / row;
    if (rows < VL_PANEL_ROW_ALIGN)
        rows = VL_PANEL_ROW_ALIGN;
    rows *= (size_t)n_threads;
    if (rows > (size_t)max_out)
        rows = (size_t)max_out;
    return rows * row;
}

enum vl_status vl__compute_init(struct vl_compute *c, int n_threads, int64_t max_out,
                                int64_t max_in, struct vl_error *err) {
    memset(c, 0, sizeof *c);
    if (n_threads < 1)
        return vl__err(err, VL_ERR_INVALID, "threads: got %d, need at least 1", n_threads);
    size_t bytes = vl__compute_scratch_bytes(n_threads, max_out, max_in);
    size_t alloc = (bytes + SCRATCH_ALIGN - 1) / SCRATCH_ALIGN * SCRATCH_ALIGN;
    c->scratch = vl__aligned_alloc(SCRATCH_ALIGN, alloc);
    if (!c->scratch)
        return vl__err(err, VL_ERR_NOMEM, "compute scratch: cannot allocate %zu bytes", alloc);
    c->scratch_bytes = bytes;
    c->pool = vl__pool_new(n_threads);
    if (!c->pool) {
        vl__free(c->scratch);
        memset(c, 0, sizeof *c);
        return vl__err(err, VL_ERR_NOMEM, "thread pool: cannot start %d threads", n_threads);
    }
    c->n_threads = n_threads;
    /* OpenBLAS runs single-threaded inside our pool's slices (see vl_ops_blas.c) */
    openblas_set_num_threads(1);
    vl__log(VL_LOG_DEBUG, "compute: %d threads, kernels %s, scratch %zu bytes, openblas %s",
            n_threads, vl__simd()->name, bytes, openblas_get_config());
    return VL_OK;
}

void vl__compute_free(struct vl_compute *c) {
    if (!c)
        return;
    vl__pool_free(c->pool);
    vl__free(c->scratch);
    memset(c, 0, sizeof *c);
}

static struct vl_pool *pool_of(const struct vl_compute *c) {
    return c ? c->pool : NULL;
}

/* ---- Linear ------------------------------------------------------------------------------ */

struct gemv_task {
    struct vl_pool *pool;
    const float *x; /* (n, in); for BF16 weights, prepared by gemv_bf16_prep */
    int64_t n, in;
    int64_t y_off; /* x row 0 is row y_off of every output (a batch of the caller's rows) */
    const struct vl_linear_out *outs;
    int n_outs;
    bool swiglu;   /* outs = {gate, up}: then gate = silu(gate) * up per claimed range */
    int64_t rows;  /* the virtual row space: the outputs' rows in order (swiglu: gate's) */
    int64_t units; /* groups of GEMV_UNIT_ROWS rows of it */
    int64_t min_units, max_units;
};

bool vl__gemv_force_pad = false;

/* The last 1-3 prepared rows (xp, rem rows; the rows after them up to a group of
 * VL_GEMV_X_ROWS hold copies of the last, see vl__linear_gemv_multi) through the 4-row kernel:
 * the padded rows' sums go to a stack tile and are dropped. Costs the padded rows' FMAs, never
 * more weight traffic. */
static void gemv_bf16_padded(float *y, int64_t ldy, const float *xp, int64_t rem,
                             const uint16_t *w, int64_t in, int64_t r0, int64_t r1) {
    float tile[VL_GEMV_X_ROWS * GEMV_PAD_TILE]; /* (4, GEMV_PAD_TILE) */
    for (int64_t a = r0; a < r1; a += GEMV_PAD_TILE) {
        int64_t len = r1 - a < GEMV_PAD_TILE ? r1 - a : GEMV_PAD_TILE;
        vl__simd()->gemv_bf16_x4(tile, GEMV_PAD_TILE, xp, w + a * in, in, 0, len);
        for (int64_t j = 0; j < rem; j++)
            memcpy(y + j * ldy + a, tile + j * GEMV_PAD_TILE, (size_t)len * sizeof(float));
    }
}

/* y rows [r0, r1) of one output for the task's n x rows. */
static void gemv_rows(const struct gemv_task *t, const struct vl_linear_out *o, int64_t r0,
                      int64_t r1) {
    const struct vl_simd *s = vl__simd();
    const struct vl_tensor *w = o->w;
    const int64_t out = w->ne[0], in = t->in;
    float *y = o->y + t->y_off * out;
    int64_t i0 = 0;
    if (w->dtype == VL_DTYPE_BF16) { /* groups of 8, then 4 rows read each weight row once */
        for (; i0 + VL_GEMV_X8_ROWS <= t->n; i0 += VL_GEMV_X8_ROWS)
            s->gemv_bf16_x8(y + i0 * out, out, t->x + i0 * in, w->data, in, r0, r1);
        for (; i0 + VL_GEMV_X_ROWS <= t->n; i0 += VL_GEMV_X_ROWS)
            s->gemv_bf16_x4(y + i0 * out, out, t->x + i0 * in, w->data, in, r0, r1);
        if (i0 < t->n && !(s->gemv_bf16_row_invariant && !vl__gemv_force_pad)) {
            gemv_bf16_padded(y + i0 * out, out, t->x + i0 * in, t->n - i0, w->data, in, r0, r1);
            i0 = t->n;
        }
    }
    for (int64_t i = i0; i < t->n; i++) {
        float *yi = y + i * out;
        const float *xi = t->x + i * in;
        switch (w->dtype) {
        case VL_DTYPE_BF16: s->gemv_bf16(yi, xi, w->data, in, r0, r1); break;
        case VL_DTYPE_F16: s->gemv_f16(yi, xi, w->data, in, r0, r1); break;
        case VL_DTYPE_F32: s->gemv_f32(yi, xi, w->data, in, r0, r1); break;
        default: VL_ASSERT(!"linear: weight dtype is not F32, F16 or BF16");
        }
    }
    for (int64_t i = 0; i < t->n && o->b; i++) {
        float *yi = y + i * out;
        for (int64_t b0 = r0; b0 < r1; b0 += GEMV_BIAS_TILE) {
            float bias[GEMV_BIAS_TILE]; /* (len) widened bias */
            int64_t len = r1 - b0 < GEMV_BIAS_TILE ? r1 - b0 : GEMV_BIAS_TILE;
            vl__to_f32(bias, o->b, b0, len);
            for (int64_t r = 0; r < len; r++)
                yi[b0 + r] += bias[r];
        }
    }
}

/* Virtual rows [v0, v1): the outputs' rows one after the other (swiglu: gate and up rows r
 * together, then their SiLU product). */
static void gemv_range(const struct gemv_task *t, int64_t v0, int64_t v1) {
    if (t->swiglu) {
        const int64_t out = t->outs[0].w->ne[0];
        gemv_rows(t, &t->outs[0], v0, v1);
        gemv_rows(t, &t->outs[1], v0, v1);
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
            gemv_rows(t, &t->outs[k], a, b);
        base += rows;
    }
}

static void gemv_units(const struct gemv_task *t, int64_t u0, int64_t u1) {
    int64_t v1 = u1 * GEMV_UNIT_ROWS;
    gemv_range(t, u0 * GEMV_UNIT_ROWS, v1 < t->rows ? v1 : t->rows);
}

static void gemv_task_run(void *arg, int ith, int nth) {
    const struct gemv_task *t = arg;
    int64_t u0, u1;
    (void)ith;
    if (nth == 1 || !t->pool) { /* alone: claims of the largest size, in order */
        for (u0 = 0; u0 < t->units; u0 = u1) {
            u1 = t->units - u0 < t->max_units ? t->units : u0 + t->max_units;
            gemv_units(t, u0, u1);
        }
        return;
    }
    while (vl__pool_claim(t->pool, t->units, GEMV_GUIDED_DIV, t->min_units, t->max_units, &u0, &u1))
        gemv_units(t, u0, u1);
}

void vl__linear_gemv_multi(struct vl_compute *c, const float *x, int64_t n,
                           const struct vl_linear_out *outs, int n_outs, bool swiglu) {
    VL_ASSERT(c && n_outs >= 1 && n_outs <= VL_LINEAR_MAX_OUTS && (!swiglu || n_outs == 2));
    const int64_t in = outs[0].w->ne[1];
    for (int k = 1; k < n_outs; k++)
        if (outs[k].w->dtype != outs[0].w->dtype) { /* one x layout per pass: one by one */
            for (int j = 0; j < n_outs; j++)
                vl__linear_gemv_multi(c, x, n, &outs[j], 1, false);
            if (swiglu)
                vl__silu_mul(c, outs[0].y, outs[1].y, n * outs[0].w->ne[0]);
            return;
        }
    int64_t rows = 0;
    size_t row_bytes = 0; /* weight bytes per virtual row */
    const bool bf16 = outs[0].w->dtype == VL_DTYPE_BF16;
    for (int k = 0; k < n_outs; k++) {
        const struct vl_tensor *w = outs[k].w;
        VL_ASSERT(w->ndim == 2 && w->ne[1] == in);
        VL_ASSERT(!outs[k].b || (outs[k].b->ndim == 1 && outs[k].b->ne[0] == w->ne[0]));
        VL_ASSERT(!swiglu || w->ne[0] == outs[0].w->ne[0]);
        rows += swiglu && k ? 0 : w->ne[0];
        row_bytes = (size_t)in * vl__dtype_size(w->dtype) * (swiglu ? 2 : 1);
    }
    if (rows == 0 || n == 0)
        return;
    struct gemv_task t = {
        .pool = pool_of(c),
        .n_outs = n_outs,
        .outs = outs,
        .in = in,
        .swiglu = swiglu,
        .rows = rows,
        .units = (rows + GEMV_UNIT_ROWS - 1) / GEMV_UNIT_ROWS,
    };
    const int64_t unit_bytes = (int64_t)row_bytes * GEMV_UNIT_ROWS;
    t.min_units = (int64_t)GEMV_TAIL_BYTES / unit_bytes;
    t.min_units = t.min_units < 1 ? 1 : t.min_units;
    t.max_units = t.units;
    if (n > 1) {
        int64_t fit = (int64_t)GEMV_CHUNK_CACHE_BYTES / unit_bytes;
        t.max_units = fit < 1 ? 1 : fit;
    }
    t.min_units = t.min_units < t.max_units ? t.min_units : t.max_units;
    /* BF16: x rows go to the scratch in the kernel's lane order, as many per pass as fit */
    int64_t batch = n, pad_fit = 0;
    if (bf16) {
        VL_ASSERT(c->scratch_bytes >= (size_t)in * sizeof(float));
        int64_t fit = (int64_t)(c->scratch_bytes / ((size_t)in * sizeof(float)));
        /* whole groups, so the padding rows of the last group fit beside it */
        VL_ASSERT(fit >= VL_GEMV_X_ROWS);
        pad_fit = fit;
        fit -= fit % VL_GEMV_X_ROWS;
        batch = batch < fit ? batch : fit;
    }
    for (int64_t i0 = 0; i0 < n; i0 += batch) {
        int64_t nb = n - i0 < batch ? n - i0 : batch;
        const float *xb = x + i0 * in;
        if (bf16) {
            for (int64_t i = 0; i < nb; i++)
                vl__simd()->gemv_bf16_prep(c->scratch + i * in, xb + i * in, in);
            /* copies of the last row up to a whole group, for the padded pass */
            for (int64_t i = nb; i % VL_GEMV_X_ROWS && i < pad_fit; i++)
                memcpy(c->scratch + i * in, c->scratch + (nb - 1) * in, (size_t)in * sizeof(float));
            xb = c->scratch;
        }
        t.x = xb;
        t.n = nb;
        t.y_off = i0;
        vl__pool_run(t.pool, gemv_task_run, &t);
    }
}

void vl__linear_gemv(struct vl_compute *c, float *y, const float *x, int64_t n,
                     const struct vl_tensor *w, const struct vl_tensor *b) {
    struct vl_linear_out o = {.y = y, .w = w, .b = b};
    vl__linear_gemv_multi(c, x, n, &o, 1, false);
}

void vl__linear(struct vl_compute *c, float *y, const float *x, int64_t n,
                const struct vl_tensor *w, const struct vl_tensor *b) {
    VL_ASSERT(c && c->scratch && w->ndim == 2 && n >= 0);
    VL_ASSERT(!b || (b->ndim == 1 && b->ne[0] == w->ne[0]));
    if (n == 0)
        return;
    if (vl__dtype_is_quant(w->dtype)) { /* Q8_0 / Q4_0: the integer kernels, any n */
        struct vl_linear_out o = {.y = y, .w = w, .b = b};
        vl__qlinear_multi(c, x, n, &o, 1, false);
        return;
    }
    if (n <= VL_LINEAR_GEMV_MAX_N) {
        vl__linear_gemv(c, y, x, n, w, b);
        return;
    }
    vl__linear_gemm(c, y, x, n, w, b);
}

void vl__linear_multi(struct vl_compute *c, const float *x, int64_t n,
                      const struct vl_linear_out *outs, int n_outs) {
    int n_quant = 0;
    for (int k = 0; k < n_outs; k++)
        n_quant += vl__dtype_is_quant(outs[k].w->dtype);
    if (n_quant == n_outs) { /* Q8_0 / Q4_0: the integer kernels, any n */
        vl__qlinear_multi(c, x, n, outs, n_outs, false);
        return;
    }
    if (n <= VL_LINEAR_GEMV_MAX_N && n_quant == 0) {
        vl__linear_gemv_multi(c, x, n, outs, n_outs, false);
        return;
    }
    for (int k = 0; k < n_outs; k++)
        vl__linear(c, outs[k].y, x, n, outs[k].w, outs[k].b);
}

void vl__linear_swiglu(struct vl_compute *c, float *gate, float *up, const float *x, int64_t n,
                       const struct vl_tensor *w_gate, const struct vl_tensor *w_up) {
    VL_ASSERT(w_gate->ne[0] == w_up->ne[0]);
    bool qg = vl__dtype_is_quant(w_gate->dtype), qu = vl__dtype_is_quant(w_up->dtype);
    if (qg && qu) {
        struct vl_linear_out o[2] = {{.y = gate, .w = w_gate}, {.y = up, .w = w_up}};
        vl__qlinear_multi(c, x, n, o, 2, true);
        return;
    }
    if (n <= VL_LINEAR_GEMV_MAX_N && !qg && !qu) {
        struct vl_linear_out o[2] = {{.y = gate, .w = w_gate}, {.y = up, .w = w_up}};
        vl__linear_gemv_multi(c, x, n, o, 2, true);
        return;
    }
    vl__linear(c, gate, x, n, w_gate, NULL);
    vl__linear(c, up, x, n, w_up, NULL);
    vl__silu_mul(c, gate, up, n * w_gate->ne[0]);
}

/* ---- RMSNorm ----------------------------------------------------------------------------- */

struct rmsnorm_task {
    float *y;
    const float *x; /* (n, d) */
    const float *w; /* (d) */
    int64_t n, d;
    float eps;
};

static void rmsnorm_task_run(void *arg, int ith, int nth) {
    const struct rmsnorm_task *t = arg;
    int64_t r0, r1;
    vl__pool_split(t->n, 1, ith, nth, &r0, &r1);
    if (r0 < r1)
        vl__simd()->rmsnorm_rows(t->y, t->x, t->d, t->w, t->eps, r0, r1);
}

void vl__rmsnorm(struct vl_compute *c, float *y, const float *x, int64_t n, int64_t d,
                 const struct vl_tensor *w, float eps) {
    VL_ASSERT(w->ndim == 1 && w->ne[0] == d);
    const float *wf = w->data;
    if (w->dtype != VL_DTYPE_F32) {
        VL_ASSERT(c && c->scratch_bytes >= (size_t)d * sizeof(float));
        vl__to_f32(c->scratch, w, 0, d);
        wf = c->scratch;
    }
    struct rmsnorm_task t = {.y = y, .x = x, .w = wf, .n = n, .d = d, .eps = eps};
    vl__pool_run(n * d >= PAR_MIN_ELEMS ? pool_of(c) : NULL, rmsnorm_task_run, &t);
}

/* ---- elementwise --------------------------------------------------------------------------- */

struct elem_task {
    float *a;
    const float *b;
    int64_t n;
};

static void silu_task_run(void *arg, int ith, int nth) {
    const struct elem_task *t = arg;
    int64_t i0, i1;
    vl__pool_split(t->n, ELEM_ALIGN, ith, nth, &i0, &i1);
    if (i0 < i1)
        vl__simd()->silu_mul(t->a + i0, t->b + i0, i1 - i0);
}

void vl__silu_mul(struct vl_compute *c, float *gate, const float *up, int64_t n) {
    struct elem_task t = {.a = gate, .b = up, .n = n};
    vl__pool_run(n >= PAR_MIN_ELEMS ? pool_of(c) : NULL, silu_task_run, &t);
}

static void gelu_task_run(void *arg, int ith, int nth) {
    const struct elem_task *t = arg;
    int64_t i0, i1;
    vl__pool_split(t->n, ELEM_ALIGN, ith, nth, &i0, &i1);
    if (i0 < i1)
        vl__gelu_ref(t->a + i0, i1 - i0);
}

void vl__gelu(struct vl_compute *c, float *x, int64_t n) {
    struct elem_task t = {.a = x, .b = NULL, .n = n};
    vl__pool_run(n >= PAR_MIN_ELEMS ? pool_of(c) : NULL, gelu_task_run, &t);
}

void vl__softmax_rows(float *x, int64_t n, int64_t d) {
    vl__simd()->softmax_rows(x, n, d);
}
