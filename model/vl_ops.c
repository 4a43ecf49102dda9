/* Scalar kernels of libvl: dtype widening (BF16/F16 -> f32, exact), the reference Linear and
 * GEMM (double accumulation: the "truth" the fast paths are tested against), RMSNorm, SiLU*up,
 * exact GELU and row softmax, plus the scalar SIMD-dispatch table used on CPUs without AVX2.
 * Every function here is pure (no globals), works on caller-provided buffers and is
 * thread-safe; (r0, r1) arguments let the pool split rows between workers. */
#include "vl_impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- asserts ---------------------------------------------------------------------------- */

_Noreturn void vl__assert_fail(const char *file, int line, const char *expr) {
    if (vl__log_enabled(VL_LOG_ERROR))
        vl__log(VL_LOG_ERROR, "%s:%d: assertion failed: %s", file, line, expr);
    else /* no log sink: the abort must not be silent */
        fprintf(stderr, "libvl: %s:%d: assertion failed: %s\n", file, line, /* check_style: allow */
                expr);
    abort(); /* check_style: allow (assert) */
}

static int64_t numel(const struct vl_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= t->ne[i];
    return n;
}

/* ---- dtype widening --------------------------------------------------------------------- */

#define F16_EXP_MASK 0x1fu
#define F16_MANT_BITS 10
#define F16_MANT_MASK 0x3ffu
#define F16_EXP_BIAS 15
#define F32_EXP_BIAS 127
#define F32_MANT_BITS 23
#define F32_EXP_ALL_ONES 0xffu
#define BF16_SHIFT 16
#define INV_SQRT2 0.70710678118654752440 /* 1 / sqrt(2), for the exact GELU */

static float bits_to_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

float vl__bf16_to_f32(uint16_t h) {
    return bits_to_f32((uint32_t)h << BF16_SHIFT);
}

float vl__f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31;
    uint32_t exp = (h >> F16_MANT_BITS) & F16_EXP_MASK;
    uint32_t mant = h & F16_MANT_MASK;
    if (exp == 0) {
        /* zero or subnormal: mant * 2^-24, exact in f32 */
        float v = (float)mant * 0x1p-24f;
        return sign ? -v : v;
    }
    if (exp == F16_EXP_MASK) /* inf / NaN: keep the payload */
        return bits_to_f32(sign | (F32_EXP_ALL_ONES << F32_MANT_BITS) |
                           (mant << (F32_MANT_BITS - F16_MANT_BITS)));
    return bits_to_f32(sign | ((exp - F16_EXP_BIAS + F32_EXP_BIAS) << F32_MANT_BITS) |
                       (mant << (F32_MANT_BITS - F16_MANT_BITS)));
}

static void widen_bf16_scalar(float *dst, const uint16_t *src, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        dst[i] = vl__bf16_to_f32(src[i]);
}

static void widen_f16_scalar(float *dst, const uint16_t *src, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        dst[i] = vl__f16_to_f32(src[i]);
}

void vl__to_f32(float *dst, const struct vl_tensor *t, int64_t offset, int64_t n) {
    VL_ASSERT(offset >= 0 && n >= 0 && offset + n <= numel(t));
    switch (t->dtype) {
    case VL_DTYPE_F32:
        memcpy(dst, (const float *)t->data + offset, (size_t)n * sizeof *dst);
        return;
    case VL_DTYPE_BF16:
        vl__simd()->widen_bf16(dst, (const uint16_t *)t->data + offset, n);
        return;
    case VL_DTYPE_F16:
        vl__simd()->widen_f16(dst, (const uint16_t *)t->data + offset, n);
        return;
    default:
        VL_ASSERT(!"vl__to_f32: dtype is not F32, F16 or BF16");
    }
}

/* One element of a float tensor as f32 (reference paths only). */
static float tensor_at(const struct vl_tensor *t, int64_t i) {
    switch (t->dtype) {
    case VL_DTYPE_F32: return ((const float *)t->data)[i];
    case VL_DTYPE_BF16: return vl__bf16_to_f32(((const uint16_t *)t->data)[i]);
    case VL_DTYPE_F16: return vl__f16_to_f32(((const uint16_t *)t->data)[i]);
    default: VL_ASSERT(!"tensor_at: dtype is not F32, F16 or BF16");
    }
    return 0.0f;
}

/* ---- Linear / GEMV / GEMM references ---------------------------------------------------- */

void vl__linear_ref(float *y, const float *x, int64_t n, const struct vl_tensor *w,
                    const struct vl_tensor *b) {
    VL_ASSERT(w->ndim == 2);
    int64_t out = w->ne[0], in = w->ne[1];
    VL_ASSERT(!b || numel(b) == out);
    for (int64_t i = 0; i < n; i++) {
        for (int64_t o = 0; o < out; o++) {
            double acc = 0.0;
            for (int64_t k = 0; k < in; k++)
                acc += (double)x[i * in + k] * (double)tensor_at(w, o * in + k);
            if (b)
                acc += (double)tensor_at(b, o);
            y[i * out + o] = (float)acc;
        }
    }
}

void vl__gemv_rows_ref(float *y, const float *x, const struct vl_tensor *w, int64_t r0,
                       int64_t r1) {
    int64_t in = w->ne[1];
    for (int64_t r = r0; r < r1; r++) {
        double acc = 0.0;
        for (int64_t k = 0; k < in; k++)
            acc += (double)x[k] * (double)tensor_at(w, r * in + k);
        y[r] = (float)acc;
    }
}

void vl__gemm_f32_ref(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                      const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                      float *cm, int64_t ldc) {
    for (int64_t i = 0; i < m; i++) {
        for (int64_t j = 0; j < n; j++) {
            double acc = 0.0;
            for (int64_t p = 0; p < k; p++) {
                float av = trans_a ? a[p * lda + i] : a[i * lda + p];
                float bv = trans_b ? b[j * ldb + p] : b[p * ldb + j];
                acc += (double)av * (double)bv;
            }
            float prev = beta == 0.0f ? 0.0f : beta * cm[i * ldc + j];
            cm[i * ldc + j] = (float)((double)alpha * acc) + prev;
        }
    }
}

/* Scalar GEMV bodies of the dispatch table: f32 accumulation, as the SIMD versions. */
#define GEMV_SCALAR(NAME, T, LOAD)                                                                 \
    static void NAME(float *y, const float *x, const T *w, int64_t in, int64_t r0, int64_t r1) {   \
        for (int64_t r = r0; r < r1; r++) {                                                        \
            const T *row = w + r * in;                                                             \
            float acc = 0.0f;                                                                      \
            for (int64_t k = 0; k < in; k++)                                                       \
                acc += x[k] * LOAD(row[k]);                                                        \
            y[r] = acc;                                                                            \
        }                                                                                          \
    }
#define LOAD_F32(v) (v)
static void gemv_bf16_prep_scalar(float *xp, const float *x, int64_t in) {
    memcpy(xp, x, (size_t)in * sizeof *xp);
}
GEMV_SCALAR(gemv_bf16_scalar, uint16_t, vl__bf16_to_f32)
GEMV_SCALAR(gemv_f16_scalar, uint16_t, vl__f16_to_f32)
GEMV_SCALAR(gemv_f32_scalar, float, LOAD_F32)

static void gemv_bf16_x4_scalar(float *y, int64_t ldy, const float *xp, const uint16_t *w,
                                int64_t in, int64_t r0, int64_t r1) {
    for (int64_t j = 0; j < VL_GEMV_X_ROWS; j++)
        gemv_bf16_scalar(y + j * ldy, xp + j * in, w, in, r0, r1);
}

static void gemv_bf16_x8_scalar(float *y, int64_t ldy, const float *xp, const uint16_t *w,
                                int64_t in, int64_t r0, int64_t r1) {
    for (int64_t j = 0; j < VL_GEMV_X8_ROWS; j++)
        gemv_bf16_scalar(y + j * ldy, xp + j * in, w, in, r0, r1);
}

/* ---- normalisation and activations ------------------------------------------------------ */

/* 1 / sqrt(mean(x^2) + eps) of one row of d values, the mean accumulated in double. */
static float rms_inv(const float *xi, int64_t d, float eps) {
    double ss = 0.0;
    for (int64_t k = 0; k < d; k++)
        ss += (double)xi[k] * (double)xi[k];
    float var = (float)(ss / (double)d);
    return 1.0f / sqrtf(var + eps);
}

static void rmsnorm_rows_scalar(float *y, const float *x, int64_t d, const float *w, float eps,
                                int64_t r0, int64_t r1) {
    for (int64_t i = r0; i < r1; i++) {
        const float *xi = x + i * d;
        float *yi = y + i * d;
        float r = rms_inv(xi, d, eps);
        for (int64_t k = 0; k < d; k++)
            yi[k] = (xi[k] * r) * w[k];
    }
}

void vl__rmsnorm_ref(float *y, const float *x, int64_t n, int64_t d, const struct vl_tensor *w,
                     float eps) {
    VL_ASSERT(numel(w) == d);
    for (int64_t i = 0; i < n; i++) {
        const float *xi = x + i * d;
        float *yi = y + i * d;
        float r = rms_inv(xi, d, eps);
        for (int64_t k = 0; k < d; k++)
            yi[k] = (xi[k] * r) * tensor_at(w, k);
    }
}

void vl__silu_mul_ref(float *gate, const float *up, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        float g = gate[i];
        gate[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

void vl__gelu_ref(float *x, int64_t n) {
    const float inv_sqrt2 = (float)INV_SQRT2;
    for (int64_t i = 0; i < n; i++)
        x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * inv_sqrt2));
}

void vl__softmax_rows_ref(float *x, int64_t n, int64_t d) {
    for (int64_t i = 0; i < n; i++) {
        float *xi = x + i * d;
        float mx = -INFINITY;
        for (int64_t k = 0; k < d; k++)
            mx = xi[k] > mx ? xi[k] : mx;
        if (mx == -INFINITY) { /* a fully masked row: define it as all zeros (no NaN) */
            memset(xi, 0, (size_t)d * sizeof *xi);
            continue;
        }
        double sum = 0.0;
        for (int64_t k = 0; k < d; k++) {
            xi[k] = expf(xi[k] - mx);
            sum += (double)xi[k];
        }
        float inv = (float)(1.0 / sum);
        for (int64_t k = 0; k < d; k++)
            xi[k] *= inv;
    }
}

/* Decode attention of one KV head (row-major, contiguous): s (m, n) = scale * q (m, d) . k^T
 * with k (n, d); o (m, d) = p (m, n) . v with v (n, d). f32 sums in index order. */
void vl__attn_qk_ref(float *s, const float *q, int64_t m, const float *k, int64_t n, int64_t d,
                     float scale) {
    for (int64_t i = 0; i < m; i++)
        for (int64_t t = 0; t < n; t++) {
            float acc = 0.0f;
            for (int64_t j = 0; j < d; j++)
                acc += q[i * d + j] * k[t * d + j];
            s[i * n + t] = acc * scale;
        }
}

void vl__attn_pv_ref(float *o, const float *p, int64_t m, const float *v, int64_t n, int64_t d) {
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < d; j++) {
            float acc = 0.0f;
            for (int64_t t = 0; t < n; t++)
                acc += p[i * n + t] * v[t * d + j];
            o[i * d + j] = acc;
        }
}

/* ---- the scalar dispatch table ---------------------------------------------------------- */

static const struct vl_simd simd_scalar = {
    .name = "scalar",
    .widen_bf16 = widen_bf16_scalar,
    .widen_f16 = widen_f16_scalar,
    .gemv_bf16_prep = gemv_bf16_prep_scalar,
    .gemv_bf16 = gemv_bf16_scalar,
    .gemv_bf16_x4 = gemv_bf16_x4_scalar,
    .gemv_bf16_x8 = gemv_bf16_x8_scalar,
    .gemv_bf16_row_invariant = true, /* x4 is four one-row calls */
    .gemv_f16 = gemv_f16_scalar,
    .gemv_f32 = gemv_f32_scalar,
    .rmsnorm_rows = rmsnorm_rows_scalar,
    .silu_mul = vl__silu_mul_ref,
    .softmax_rows = vl__softmax_rows_ref,
    .attn_qk = vl__attn_qk_ref,
    .attn_pv = vl__attn_pv_ref,
};

const struct vl_simd *vl__simd_scalar(void) {
    return &simd_scalar;
}

float vl__gemv_bf16_tail(float s, const float *xp, const uint16_t *row, int64_t in, int64_t kv) {
    for (int64_t k = kv; k < in; k++)
        s += xp[k] * vl__bf16_to_f32(row[k]);
    return s;
}

void vl__gemv_bf16_x4_tail(float *y, int64_t ldy, int64_t r, const float s[4], const float *xp,
                           const uint16_t *row, int64_t in, int64_t kv) {
    for (int j = 0; j < VL_GEMV_X_ROWS; j++)
        y[j * ldy + r] = vl__gemv_bf16_tail(s[j], xp + j * in, row, in, kv);
}
