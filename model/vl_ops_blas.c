/* The f32 GEMM paths over OpenBLAS (pthread build): vl__gemm_f32, and the large-n Linear that
 * widens a panel of BF16/F16 weight rows into the compute scratch once and multiplies it
 * against all n activation rows with one cblas_sgemm, so the widening is amortised over n.
 *
 * Row-major conventions, documented once (see also vl_impl.h): activations x are (n, in),
 * weights W are [out, in] as stored, so y (n, out) = x . W^T is
 *   cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M=n, N=out, K=in,
 *               1, x, lda=in, W, ldb=in, 0, y, ldc=out);
 * a panel of rows [o0, o0+P) writes the column block y[:, o0:o0+P] with ldc = out.
 * Thread-safety: called from the one control thread of a vl_compute; OpenBLAS uses its own pool
 * (thread count set by vl__compute_init) and our pool only widens, never during a BLAS call. */
#include "vl_impl.h"

#include <cblas.h>
#include <limits.h>

static blasint to_blasint(int64_t v) {
    VL_ASSERT(v >= 0 && v <= INT_MAX);
    return (blasint)v;
}

void vl__gemm_f32(struct vl_compute *c, bool trans_a, bool trans_b, int64_t m, int64_t n,
                  int64_t k, float alpha, const float *a, int64_t lda, const float *b, int64_t ldb,
                  float beta, float *cm, int64_t ldc) {
    (void)c;
    if (m == 0 || n == 0)
        return;
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, to_blasint(m), to_blasint(n), to_blasint(k),
                alpha, a, to_blasint(lda), b, to_blasint(ldb), beta, cm, to_blasint(ldc));
}

/* ---- large-n Linear: widen a panel, then one sgemm --------------------------------------- */

struct widen_task {
    float *dst;            /* (rows, in) f32 panel */
    const uint16_t *src;   /* (rows, in) stored bf16/f16 */
    int64_t rows, in;
    bool is_bf16;
};

static void widen_task_run(void *arg, int ith, int nth) {
    const struct widen_task *t = arg;
    int64_t per = (t->rows + nth - 1) / nth;
    int64_t r0 = per * ith, r1 = r0 + per > t->rows ? t->rows : r0 + per;
    if (r0 >= r1)
        return;
    const struct vl_simd *s = vl__simd();
    void (*widen)(float *, const uint16_t *, int64_t) = t->is_bf16 ? s->widen_bf16 : s->widen_f16;
    widen(t->dst + r0 * t->in, t->src + r0 * t->in, (r1 - r0) * t->in);
}

/* Rows of an [out, in] weight that fit one scratch panel (at least 1). */
static int64_t panel_rows(const struct vl_compute *c, int64_t in) {
    int64_t rows = (int64_t)(c->scratch_bytes / ((size_t)in * sizeof(float)));
    if (rows >= VL_PANEL_ROW_ALIGN)
        rows -= rows % VL_PANEL_ROW_ALIGN;
    return rows;
}

void vl__linear_gemm(struct vl_compute *c, float *y, const float *x, int64_t n,
                     const struct vl_tensor *w) {
    int64_t out = w->ne[0], in = w->ne[1];
    if (w->dtype == VL_DTYPE_F32) {
        vl__gemm_f32(c, false, true, n, out, in, 1.0f, x, in, (const float *)w->data, in, 0.0f, y,
                     out);
        return;
    }
    VL_ASSERT(w->dtype == VL_DTYPE_BF16 || w->dtype == VL_DTYPE_F16);
    int64_t prows = panel_rows(c, in);
    VL_ASSERT(prows >= 1);
    for (int64_t o0 = 0; o0 < out; o0 += prows) {
        int64_t rows = out - o0 < prows ? out - o0 : prows;
        struct widen_task t = {
            .dst = c->scratch,
            .src = (const uint16_t *)w->data + o0 * in,
            .rows = rows,
            .in = in,
            .is_bf16 = w->dtype == VL_DTYPE_BF16,
        };
        vl__pool_run(c->pool, widen_task_run, &t);
        vl__gemm_f32(c, false, true, n, rows, in, 1.0f, x, in, c->scratch, in, 0.0f, y + o0, out);
    }
}
