/* The compute context (pool + weight-widening scratch + OpenBLAS thread count) and the
 * pool-parallel front ends of the kernels: vl__linear (GEMV for small n, panel + sgemm for
 * large n, bias), RMSNorm, SiLU*up, GELU and row softmax. Each front end splits rows or
 * elements by (ith, nth) and calls the dispatched SIMD kernel (vl_ops_x86.c) or its scalar twin.
 * Thread-safety: a struct vl_compute belongs to one control thread (the inference state). */
#include "vl_impl.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SCRATCH_ALIGN 64
/* Below this many elements an elementwise op runs on the caller (dispatch costs more). */
#define PAR_MIN_ELEMS 16384
/* GEMV work units: each worker takes about GEMV_CHUNKS_PER_THREAD dynamically scheduled chunks
 * of contiguous rows (long streams for the prefetchers, yet balanced when a core is busy), at
 * least GEMV_CHUNK_MIN_ROWS rows, a multiple of GEMV_ROW_ALIGN (the kernel's rows per pass); for
 * n > 1 a chunk's weights also fit GEMV_CHUNK_CACHE_BYTES so rows 2..n re-read them from L2. */
#define GEMV_CHUNKS_PER_THREAD 8
#define GEMV_CHUNK_MIN_ROWS 16
#define GEMV_ROW_ALIGN 4
#define GEMV_CHUNK_CACHE_BYTES ((size_t)256 << 10)
#define GEMV_BIAS_TILE 256
/* Elementwise ranges are cut at multiples of this (whole SIMD vectors, one cache line). */
#define ELEM_ALIGN 16

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
    float *y;            /* (n, out) */
    const float *x;      /* (n, in); for BF16 weights, prepared by gemv_bf16_prep */
    int64_t n, out, in;
    const struct vl_tensor *w, *b;
    int64_t chunk_rows, n_chunks;
};

static void gemv_chunk(const struct gemv_task *t, int64_t chunk) {
    const struct vl_simd *s = vl__simd();
    int64_t r0 = chunk * t->chunk_rows;
    int64_t r1 = r0 + t->chunk_rows > t->out ? t->out : r0 + t->chunk_rows;
    int64_t i0 = 0;
    if (t->w->dtype == VL_DTYPE_BF16) /* groups of 4 rows read each weight row once */
        for (; i0 + VL_GEMV_X_ROWS <= t->n; i0 += VL_GEMV_X_ROWS)
            s->gemv_bf16_x4(t->y + i0 * t->out, t->out, t->x + i0 * t->in, t->w->data, t->in, r0,
                            r1);
    for (int64_t i = i0; i < t->n; i++) {
        float *yi = t->y + i * t->out;
        const float *xi = t->x + i * t->in;
        switch (t->w->dtype) {
        case VL_DTYPE_BF16: s->gemv_bf16(yi, xi, t->w->data, t->in, r0, r1); break;
        case VL_DTYPE_F16: s->gemv_f16(yi, xi, t->w->data, t->in, r0, r1); break;
        case VL_DTYPE_F32: s->gemv_f32(yi, xi, t->w->data, t->in, r0, r1); break;
        default: VL_ASSERT(!"linear: weight dtype is not F32, F16 or BF16");
        }
    }
    for (int64_t i = 0; i < t->n && t->b; i++) {
        float *yi = t->y + i * t->out;
        for (int64_t b0 = r0; b0 < r1; b0 += GEMV_BIAS_TILE) {
            float bias[GEMV_BIAS_TILE]; /* (len) widened bias */
            int64_t len = r1 - b0 < GEMV_BIAS_TILE ? r1 - b0 : GEMV_BIAS_TILE;
            vl__to_f32(bias, t->b, b0, len);
            for (int64_t r = 0; r < len; r++)
                yi[b0 + r] += bias[r];
        }
    }
}

static void gemv_task_run(void *arg, int ith, int nth) {
    const struct gemv_task *t = arg;
    if (nth == 1 || !t->pool) {
        for (int64_t ch = 0; ch < t->n_chunks; ch++)
            gemv_chunk(t, ch);
        return;
    }
    (void)ith;
    for (;;) {
        int64_t ch = vl__pool_next_chunk(t->pool);
        if (ch >= t->n_chunks)
            break;
        gemv_chunk(t, ch);
    }
}

void vl__linear_gemv(struct vl_compute *c, float *y, const float *x, int64_t n,
                     const struct vl_tensor *w, const struct vl_tensor *b) {
    struct vl_pool *pool = pool_of(c);
    int64_t out = w->ne[0], in = w->ne[1];
    int64_t rows = out / ((int64_t)vl__pool_size(pool) * GEMV_CHUNKS_PER_THREAD);
    if (n > 1) {
        int64_t fit = (int64_t)(GEMV_CHUNK_CACHE_BYTES / ((size_t)in * vl__dtype_size(w->dtype)));
        rows = rows < fit ? rows : fit;
    }
    rows = rows < GEMV_CHUNK_MIN_ROWS ? GEMV_CHUNK_MIN_ROWS : rows - rows % GEMV_ROW_ALIGN;
    /* BF16: x rows go to the scratch in the kernel's lane order, as many per pass as fit */
    int64_t batch = n;
    if (w->dtype == VL_DTYPE_BF16) {
        VL_ASSERT(c && c->scratch_bytes >= (size_t)in * sizeof(float));
        int64_t fit = (int64_t)(c->scratch_bytes / ((size_t)in * sizeof(float)));
        batch = batch < fit ? batch : fit;
    }
    for (int64_t i0 = 0; i0 < n; i0 += batch) {
        int64_t nb = n - i0 < batch ? n - i0 : batch;
        const float *xb = x + i0 * in;
        if (w->dtype == VL_DTYPE_BF16) {
            for (int64_t i = 0; i < nb; i++)
                vl__simd()->gemv_bf16_prep(c->scratch + i * in, xb + i * in, in);
            xb = c->scratch;
        }
        struct gemv_task t = {
            .pool = pool,
            .y = y + i0 * out,
            .x = xb,
            .n = nb,
            .out = out,
            .in = in,
            .w = w,
            .b = b,
            .chunk_rows = rows,
            .n_chunks = (out + rows - 1) / rows,
        };
        vl__pool_run(t.pool, gemv_task_run, &t);
    }
}

void vl__linear(struct vl_compute *c, float *y, const float *x, int64_t n,
                const struct vl_tensor *w, const struct vl_tensor *b) {
    VL_ASSERT(c && c->scratch && w->ndim == 2 && n >= 0);
    VL_ASSERT(!b || (b->ndim == 1 && b->ne[0] == w->ne[0]));
    if (n == 0)
        return;
    if (n <= VL_LINEAR_GEMV_MAX_N) {
        vl__linear_gemv(c, y, x, n, w, b);
        return;
    }
    vl__linear_gemm(c, y, x, n, w, b);
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
