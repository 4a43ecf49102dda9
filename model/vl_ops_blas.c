/* The f32 GEMM paths over OpenBLAS: vl__gemm_f32, and the large-n Linear that widens panels of
 * BF16/F16 weight rows into the compute scratch and multiplies each against all n activation
 * rows with one cblas_sgemm, so the widening is amortised over n.
 *
 * Threading (a deliberate departure from "OpenBLAS's pool for GEMMs", see docs/performance.md):
 * OpenBLAS runs with ONE thread and our vl_pool splits every large GEMM into independent slices,
 * each worker calling the single-threaded cblas_sgemm on its own slice (and widening its own
 * weight panels into its own part of the scratch). A second pool of OpenBLAS threads spinning
 * next to ours oversubscribes the cores: measured on the 2-core machine, each of our pool
 * dispatches then waited for a time slice. Small GEMMs (attention of one window/head, decode)
 * run on the caller, and any GEMM issued from inside a pool task runs on that worker alone.
 *
 * Row-major conventions, documented once (see also vl_impl.h): activations x are (n, in),
 * weights W are [out, in] as stored, so y (n, out) = x . W^T is
 *   cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M=n, N=out, K=in,
 *               1, x, lda=in, W, ldb=in, 0, y, ldc=out);
 * a panel of weight rows [o0, o0+P) writes the column block y[:, o0:o0+P] with ldc = out.
 * Thread-safety: called from the control thread of a vl_compute (or inside one pool task). */
#include "vl_impl.h"

#include <cblas.h>
#include <limits.h>
#include <string.h>
#include <strings.h>

/* GEMMs below this many multiply-adds run on the calling thread (a dispatch costs more). */
#define GEMM_PAR_MIN_MACS ((int64_t)1 << 21)
/* Row/column slices of a split GEMM are cut at multiples of this (OpenBLAS micro-tile). */
#define GEMM_SPLIT_ALIGN 16
/* Bias values widened per step of bias_fill. */
#define BIAS_TILE 256

static blasint to_blasint(int64_t v) {
    VL_ASSERT(v >= 0 && v <= INT_MAX);
    return (blasint)v;
}

static void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                  const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *cm,
                  int64_t ldc) {
    if (m == 0 || n == 0)
        return;
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, to_blasint(m), to_blasint(n), to_blasint(k),
                alpha, a, to_blasint(lda), b, to_blasint(ldb), beta, cm, to_blasint(ldc));
}

/* ---- vl__gemm_f32 ------------------------------------------------------------------------ */

struct gemm_task {
    bool trans_a, trans_b, split_rows;
    int64_t m, n, k;
    float alpha, beta;
    const float *a, *b;
    int64_t lda, ldb, ldc;
    float *c;
};

static void gemm_task_run(void *arg, int ith, int nth) {
    const struct gemm_task *t = arg;
    int64_t s0, s1;
    if (t->split_rows) { /* rows of C = rows of op(A) */
        vl__pool_split(t->m, GEMM_SPLIT_ALIGN, ith, nth, &s0, &s1);
        const float *a = t->trans_a ? t->a + s0 : t->a + s0 * t->lda;
        sgemm(t->trans_a, t->trans_b, s1 - s0, t->n, t->k, t->alpha, a, t->lda, t->b, t->ldb,
              t->beta, t->c + s0 * t->ldc, t->ldc);
    } else { /* columns of C = columns of op(B) */
        vl__pool_split(t->n, GEMM_SPLIT_ALIGN, ith, nth, &s0, &s1);
        const float *b = t->trans_b ? t->b + s0 * t->ldb : t->b + s0;
        sgemm(t->trans_a, t->trans_b, t->m, s1 - s0, t->k, t->alpha, t->a, t->lda, b, t->ldb,
              t->beta, t->c + s0, t->ldc);
    }
}

void vl__gemm_f32(struct vl_compute *c, bool trans_a, bool trans_b, int64_t m, int64_t n,
                  int64_t k, float alpha, const float *a, int64_t lda, const float *b, int64_t ldb,
                  float beta, float *cm, int64_t ldc) {
    struct vl_pool *pool = c ? c->pool : NULL;
    int nth = vl__pool_size(pool);
    if (nth == 1 || vl__pool_in_task() || m * n * k < GEMM_PAR_MIN_MACS ||
        (m < GEMM_SPLIT_ALIGN * nth && n < GEMM_SPLIT_ALIGN * nth)) {
        sgemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, cm, ldc);
        return;
    }
    struct gemm_task t = {
        .trans_a = trans_a, .trans_b = trans_b, .split_rows = m >= n,
        .m = m, .n = n, .k = k, .alpha = alpha, .beta = beta,
        .a = a, .b = b, .lda = lda, .ldb = ldb, .ldc = ldc, .c = cm,
    };
    vl__pool_run(pool, gemm_task_run, &t);
}

/* ---- large-n Linear: per-worker panels, widened once, one sgemm each ---------------------- */

/* y[i, o0 + j] = b[o0 + j] for i < n, j < cols (y row stride ldy): the GEMM then accumulates
 * with beta = 1, which spares OpenBLAS's separate pass that zeroes C for beta = 0 and our own
 * bias pass (together ~4 % of the vision tower). */
static void bias_fill(float *y, int64_t ldy, int64_t n, const struct vl_tensor *b, int64_t o0,
                      int64_t cols) {
    float tile[BIAS_TILE]; /* (len) widened bias */
    for (int64_t j0 = 0; j0 < cols; j0 += BIAS_TILE) {
        int64_t len = cols - j0 < BIAS_TILE ? cols - j0 : BIAS_TILE;
        vl__to_f32(tile, b, o0 + j0, len);
        for (int64_t i = 0; i < n; i++)
            memcpy(y + i * ldy + o0 + j0, tile, (size_t)len * sizeof *tile);
    }
}

struct bias_task {
    float *y; /* (n, out) */
    const struct vl_tensor *b;
    int64_t n, out;
};

static void bias_task_run(void *arg, int ith, int nth) {
    const struct bias_task *t = arg;
    int64_t i0, i1;
    vl__pool_split(t->n, 1, ith, nth, &i0, &i1);
    if (i0 < i1)
        bias_fill(t->y + i0 * t->out, t->out, i1 - i0, t->b, 0, t->out);
}

struct linear_task {
    float *y;          /* (n, out) */
    const float *x;    /* (n, in) */
    int64_t n, out, in;
    const struct vl_tensor *w, *b;
    float *scratch;    /* nth parts of part_floats */
    int64_t part_floats;
};

static void linear_task_run(void *arg, int ith, int nth) {
    const struct linear_task *t = arg;
    const struct vl_simd *s = vl__simd();
    void (*widen)(float *, const uint16_t *, int64_t) =
        t->w->dtype == VL_DTYPE_BF16 ? s->widen_bf16 : s->widen_f16;
    float *panel = t->scratch + (int64_t)ith * t->part_floats; /* (rows, in) */
    int64_t prows = t->part_floats / t->in;
    if (prows >= GEMM_SPLIT_ALIGN)
        prows -= prows % GEMM_SPLIT_ALIGN;
    VL_ASSERT(prows >= 1);
    int64_t c0, c1;
    vl__pool_split(t->out, GEMM_SPLIT_ALIGN, ith, nth, &c0, &c1);
    for (int64_t o0 = c0; o0 < c1; o0 += prows) {
        int64_t rows = c1 - o0 < prows ? c1 - o0 : prows;
        widen(panel, (const uint16_t *)t->w->data + o0 * t->in, rows * t->in);
        if (t->b)
            bias_fill(t->y, t->out, t->n, t->b, o0, rows);
        sgemm(false, true, t->n, rows, t->in, 1.0f, t->x, t->in, panel, t->in, t->b ? 1.0f : 0.0f,
              t->y + o0, t->out);
    }
}

void vl__linear_gemm(struct vl_compute *c, float *y, const float *x, int64_t n,
                     const struct vl_tensor *w, const struct vl_tensor *b) {
    int64_t out = w->ne[0], in = w->ne[1];
    if (w->dtype == VL_DTYPE_F32) {
        if (b) {
            struct bias_task bt = {.y = y, .b = b, .n = n, .out = out};
            vl__pool_run(vl__pool_in_task() ? NULL : c->pool, bias_task_run, &bt);
        }
        vl__gemm_f32(c, false, true, n, out, in, 1.0f, x, in, (const float *)w->data, in,
                     b ? 1.0f : 0.0f, y, out);
        return;
    }
    VL_ASSERT(w->dtype == VL_DTYPE_BF16 || w->dtype == VL_DTYPE_F16);
    struct vl_pool *pool = vl__pool_in_task() ? NULL : c->pool;
    int nth = vl__pool_size(pool);
    int64_t part = (int64_t)(c->scratch_bytes / sizeof(float)) / nth;
    if (part < in) { /* too little scratch for one row per worker: one worker */
        pool = NULL;
        part = (int64_t)(c->scratch_bytes / sizeof(float));
    }
    VL_ASSERT(part >= in);
    struct linear_task t = {
        .y = y, .x = x, .n = n, .out = out, .in = in, .w = w, .b = b,
        .scratch = c->scratch, .part_floats = part,
    };
    vl__pool_run(pool, linear_task_run, &t);
}

/* ---- OpenBLAS kernel family ---------------------------------------------------------------- */

/* OpenBLAS's DYNAMIC_ARCH picks its kernels from the CPU model when it is loaded, and a release
 * that does not know a newer model falls back to its oldest x86-64 family: Debian 12's 0.3.21
 * runs "Prescott" (SSE3) kernels on Sapphire Rapids: GEMMs ~4x slower (docs/performance.md).
 * The families below are OpenBLAS's OPENBLAS_CORETYPE names, by the widest SIMD their GEMM uses. */
static const char *const blas_avx512_cores[] = {"SkylakeX", "Cooperlake", "SapphireRapids"};
static const char *const blas_avx2_cores[] = {"Haswell", "Zen", "Excavator"};

static bool name_in(const char *name, const char *const *list, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!strcasecmp(name, list[i]))
            return true;
    return false;
}

const char *vl__blas_core_pick(enum vl_cpu_level cpu, const char *core) {
    const size_t n512 = sizeof blas_avx512_cores / sizeof *blas_avx512_cores;
    const size_t n2 = sizeof blas_avx2_cores / sizeof *blas_avx2_cores;
    int have = !core                                  ? VL_CPU_BASELINE
             : name_in(core, blas_avx512_cores, n512) ? VL_CPU_AVX512
             : name_in(core, blas_avx2_cores, n2)     ? VL_CPU_AVX2
                                                      : VL_CPU_BASELINE;
    if ((int)cpu <= have)
        return NULL;
    return cpu == VL_CPU_AVX512 ? blas_avx512_cores[0] : blas_avx2_cores[0];
}

const char *vl_blas_core(void) {
    return openblas_get_corename();
}

const char *vl_blas_core_upgrade(void) {
    return vl__blas_core_pick(vl__cpu_level(), openblas_get_corename());
}
