/* x86 SIMD kernels (AVX2 + FMA + F16C), compiled with per-function target attributes and
 * picked at run time by vl__simd(), so the library itself is built for baseline x86-64 and
 * never with -march=native. Contents: BF16/F16 widening, the streaming GEMV over stored
 * BF16/F16/F32 weights (one sequential stream, f32 FMA accumulation), RMSNorm rows and SiLU*up with
 * a vectorised expf. Each has a scalar twin in vl_ops.c that tests/kernels checks it against.
 * All functions are pure and thread-safe; the dispatch table is initialised once. */
#include "vl_impl.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define VL_HAVE_X86 1
#include <cpuid.h>
#include <immintrin.h>
#endif

#ifdef VL_HAVE_X86
#define AVX2 __attribute__((target("avx2,fma,f16c")))

#define GEMV_ROWS 4   /* output rows per pass: 4 weight streams, 8 accumulators */
#define BF16_BLOCK 16 /* bf16 per 256-bit load */
#define F32_LANES 8

/* ---- helpers ----------------------------------------------------------------------------- */

AVX2 static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Splits 16 consecutive floats into the lanes that pair with a 256-bit load of 16 bf16 split
 * as even = bits << 16 (elements 0,2,..,14) and odd = bits & 0xffff0000 (1,3,..,15). */
AVX2 static inline void x_even_odd(const float *x, __m256 *even, __m256 *odd) {
    __m256 a = _mm256_loadu_ps(x), b = _mm256_loadu_ps(x + F32_LANES);
    /* [a0 a2 b0 b2 | a4 a6 b4 b6] -> [a0 a2 a4 a6 | b0 b2 b4 b6] = x0 x2 .. x14 */
    __m256 e = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0));
    __m256 o = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1));
    *even = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), _MM_SHUFFLE(3, 1, 2, 0)));
    *odd = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(o), _MM_SHUFFLE(3, 1, 2, 0)));
}

/* ---- widening ---------------------------------------------------------------------------- */

AVX2 static void widen_bf16_avx2(float *dst, const uint16_t *src, int64_t n) {
    int64_t i = 0;
    for (; i + BF16_BLOCK <= n; i += BF16_BLOCK) {
        __m256i lo = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(src + i)));
        __m256i hi = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(src + i + 8)));
        _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(_mm256_slli_epi32(lo, 16)));
        _mm256_storeu_ps(dst + i + 8, _mm256_castsi256_ps(_mm256_slli_epi32(hi, 16)));
    }
    for (; i < n; i++)
        dst[i] = vl__bf16_to_f32(src[i]);
}

AVX2 static void widen_f16_avx2(float *dst, const uint16_t *src, int64_t n) {
    int64_t i = 0;
    for (; i + F32_LANES <= n; i += F32_LANES)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
    for (; i < n; i++)
        dst[i] = vl__f16_to_f32(src[i]);
}

/* ---- GEMV: y[r] = W[r, :] . x ------------------------------------------------------------ */

/* xp: x in the lane order the BF16 GEMV pairs with one 256-bit load of 16 weights split as
 * even = bits << 16 (elements 0, 2, .., 14) and odd = bits & 0xffff0000 (1, 3, .., 15):
 * per block of 16, [x0 x2 .. x14][x1 x3 .. x15]; the tail (in % 16) is copied as is. */
AVX2 static void gemv_bf16_prep_avx2(float *xp, const float *x, int64_t in) {
    int64_t k = 0;
    for (; k + BF16_BLOCK <= in; k += BF16_BLOCK) {
        __m256 e, o;
        x_even_odd(x + k, &e, &o);
        _mm256_storeu_ps(xp + k, e);
        _mm256_storeu_ps(xp + k + F32_LANES, o);
    }
    for (; k < in; k++)
        xp[k] = x[k];
}

/* One row at a time: the weights are read as one sequential stream (rows are contiguous), which
 * the prefetchers follow across rows; xp (<= 44 KB for the 3B shapes) stays in L1/L2.
 * Per row it computes exactly what gemv_bf16_x4_avx2 computes for each of its rows (one even and
 * one odd accumulator, blocks in order, the same tail), so a row's result never depends on how
 * many rows share the pass: the batch invariance of batched decoding rests on this. */
AVX2 static void gemv_bf16_avx2(float *y, const float *xp, const uint16_t *w, int64_t in,
                                int64_t r0, int64_t r1) {
    const __m256i hi_mask = _mm256_set1_epi32((int)0xffff0000u);
    const int64_t kv = in - in % BF16_BLOCK;
    const int64_t pf = vl__gemv_prefetch; /* read once: the loop keeps it in a register */
    const int64_t pa = vl__gemv_page_ahead;
    for (int64_t r = r0; r < r1; r++) {
        const uint16_t *row = w + r * in;
        __m256 a = _mm256_setzero_ps(), b = _mm256_setzero_ps();
        int64_t k = 0;
        for (; k + 2 * BF16_BLOCK <= kv; k += 2 * BF16_BLOCK) {
            _mm_prefetch((const char *)(row + k + pf), _MM_HINT_T0);
            if ((k & (VL_GEMV_PAGE_ELEMS - 1)) == 0)
                _mm_prefetch((const char *)(row + k + pa), _MM_HINT_T2);
            __m256i v0 = _mm256_loadu_si256((const __m256i *)(row + k));
            __m256i v1 = _mm256_loadu_si256((const __m256i *)(row + k + BF16_BLOCK));
            a = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(v0, 16)),
                                _mm256_loadu_ps(xp + k), a);
            b = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_and_si256(v0, hi_mask)),
                                _mm256_loadu_ps(xp + k + 8), b);
            a = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(v1, 16)),
                                _mm256_loadu_ps(xp + k + 16), a);
            b = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_and_si256(v1, hi_mask)),
                                _mm256_loadu_ps(xp + k + 24), b);
        }
        if (k < kv) {
            __m256i v0 = _mm256_loadu_si256((const __m256i *)(row + k));
            a = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(v0, 16)),
                                _mm256_loadu_ps(xp + k), a);
            b = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_and_si256(v0, hi_mask)),
                                _mm256_loadu_ps(xp + k + 8), b);
        }
        y[r] = vl__gemv_bf16_tail(hsum8(_mm256_add_ps(a, b)), xp, row, in, kv);
    }
}

AVX2 static void gemv_bf16_x4_avx2(float *y, int64_t ldy, const float *xp, const uint16_t *w,
                                   int64_t in, int64_t r0, int64_t r1) {
    const __m256i hi_mask = _mm256_set1_epi32((int)0xffff0000u);
    const int64_t kv = in - in % BF16_BLOCK;
    const int64_t pf = vl__gemv_prefetch; /* read once: the loop keeps it in a register */
    const int64_t pa = vl__gemv_page_ahead;
    const float *x0 = xp, *x1 = xp + in, *x2 = xp + 2 * in, *x3 = xp + 3 * in;
    for (int64_t r = r0; r < r1; r++) {
        const uint16_t *row = w + r * in;
        __m256 a0 = _mm256_setzero_ps(), b0 = _mm256_setzero_ps();
        __m256 a1 = _mm256_setzero_ps(), b1 = _mm256_setzero_ps();
        __m256 a2 = _mm256_setzero_ps(), b2 = _mm256_setzero_ps();
        __m256 a3 = _mm256_setzero_ps(), b3 = _mm256_setzero_ps();
        for (int64_t k = 0; k < kv; k += BF16_BLOCK) {
            if ((k & (2 * BF16_BLOCK - 1)) == 0)
                _mm_prefetch((const char *)(row + k + pf), _MM_HINT_T0);
            if ((k & (VL_GEMV_PAGE_ELEMS - 1)) == 0)
                _mm_prefetch((const char *)(row + k + pa), _MM_HINT_T2);
            __m256i v = _mm256_loadu_si256((const __m256i *)(row + k));
            __m256 we = _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
            __m256 wo = _mm256_castsi256_ps(_mm256_and_si256(v, hi_mask));
            a0 = _mm256_fmadd_ps(we, _mm256_loadu_ps(x0 + k), a0);
            b0 = _mm256_fmadd_ps(wo, _mm256_loadu_ps(x0 + k + 8), b0);
            a1 = _mm256_fmadd_ps(we, _mm256_loadu_ps(x1 + k), a1);
            b1 = _mm256_fmadd_ps(wo, _mm256_loadu_ps(x1 + k + 8), b1);
            a2 = _mm256_fmadd_ps(we, _mm256_loadu_ps(x2 + k), a2);
            b2 = _mm256_fmadd_ps(wo, _mm256_loadu_ps(x2 + k + 8), b2);
            a3 = _mm256_fmadd_ps(we, _mm256_loadu_ps(x3 + k), a3);
            b3 = _mm256_fmadd_ps(wo, _mm256_loadu_ps(x3 + k + 8), b3);
        }
        const float sums[VL_GEMV_X_ROWS] = {
            hsum8(_mm256_add_ps(a0, b0)), hsum8(_mm256_add_ps(a1, b1)),
            hsum8(_mm256_add_ps(a2, b2)), hsum8(_mm256_add_ps(a3, b3))};
        vl__gemv_bf16_x4_tail(y, ldy, r, sums, xp, row, in, kv);
    }
}

/* Eight rows as two four-row passes (the second over weights in cache): AVX2's 16 registers
 * hold no more accumulators. */
AVX2 static void gemv_bf16_x8_avx2(float *y, int64_t ldy, const float *xp, const uint16_t *w,
                                   int64_t in, int64_t r0, int64_t r1) {
    gemv_bf16_x4_avx2(y, ldy, xp, w, in, r0, r1);
    gemv_bf16_x4_avx2(y + VL_GEMV_X_ROWS * ldy, ldy, xp + VL_GEMV_X_ROWS * in, w, in, r0, r1);
}

AVX2 static void gemv_f16_avx2(float *y, const float *x, const uint16_t *w, int64_t in,
                               int64_t r0, int64_t r1) {
    int64_t kv = in - in % BF16_BLOCK;
    for (int64_t r = r0; r < r1; r++) {
        const uint16_t *row = w + r * in;
        __m256 a = _mm256_setzero_ps(), b = _mm256_setzero_ps();
        for (int64_t k = 0; k < kv; k += BF16_BLOCK) {
            __m256 w_lo = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(row + k)));
            __m256 w_hi = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(row + k + 8)));
            a = _mm256_fmadd_ps(w_lo, _mm256_loadu_ps(x + k), a);
            b = _mm256_fmadd_ps(w_hi, _mm256_loadu_ps(x + k + 8), b);
        }
        float s = hsum8(_mm256_add_ps(a, b));
        for (int64_t k = kv; k < in; k++)
            s += x[k] * vl__f16_to_f32(row[k]);
        y[r] = s;
    }
}

AVX2 static void gemv_f32_avx2(float *y, const float *x, const float *w, int64_t in, int64_t r0,
                               int64_t r1) {
    int64_t kv = in - in % BF16_BLOCK;
    for (int64_t r = r0; r < r1; r++) {
        const float *row = w + r * in;
        __m256 a = _mm256_setzero_ps(), b = _mm256_setzero_ps();
        for (int64_t k = 0; k < kv; k += BF16_BLOCK) {
            a = _mm256_fmadd_ps(_mm256_loadu_ps(row + k), _mm256_loadu_ps(x + k), a);
            b = _mm256_fmadd_ps(_mm256_loadu_ps(row + k + 8), _mm256_loadu_ps(x + k + 8), b);
        }
        float s = hsum8(_mm256_add_ps(a, b));
        for (int64_t k = kv; k < in; k++)
            s += x[k] * row[k];
        y[r] = s;
    }
}

/* ---- RMSNorm rows ------------------------------------------------------------------------ */

AVX2 static void rmsnorm_rows_avx2(float *y, const float *x, int64_t d, const float *w, float eps,
                                   int64_t r0, int64_t r1) {
    int64_t dv = d - d % BF16_BLOCK;
    for (int64_t i = r0; i < r1; i++) {
        const float *xi = x + i * d;
        float *yi = y + i * d;
        __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
        for (int64_t k = 0; k < dv; k += BF16_BLOCK) {
            __m256 v0 = _mm256_loadu_ps(xi + k), v1 = _mm256_loadu_ps(xi + k + 8);
            s0 = _mm256_fmadd_ps(v0, v0, s0);
            s1 = _mm256_fmadd_ps(v1, v1, s1);
        }
        double ss = (double)hsum8(_mm256_add_ps(s0, s1));
        for (int64_t k = dv; k < d; k++)
            ss += (double)xi[k] * (double)xi[k];
        float var = (float)(ss / (double)d);
        float rs = 1.0f / sqrtf(var + eps);
        __m256 vr = _mm256_set1_ps(rs);
        int64_t k = 0;
        for (; k + F32_LANES <= d; k += F32_LANES) {
            __m256 v = _mm256_mul_ps(_mm256_loadu_ps(xi + k), vr);
            _mm256_storeu_ps(yi + k, _mm256_mul_ps(v, _mm256_loadu_ps(w + k)));
        }
        for (; k < d; k++)
            yi[k] = (xi[k] * rs) * w[k];
    }
}

/* ---- SiLU * up with a vectorised expf ---------------------------------------------------- */

/* exp(x) for x in [EXP_LO, EXP_HI] (clamped outside): 2^n * p(r), r = x - n ln2 in
 * [-ln2/2, ln2/2], p a degree-6 minimax polynomial (Cephes expf coefficients), ~1 ulp. */
#define EXP_HI 88.3762626647949f
#define EXP_LO (-87.3365478515625f) /* keeps 2^n normal */
#define LOG2E 1.44269504088896341f
#define LN2_HI 0.693359375f
#define LN2_LO (-2.12194440e-4f)
#define EXP_P0 1.9875691500e-4f
#define EXP_P1 1.3981999507e-3f
#define EXP_P2 8.3334519073e-3f
#define EXP_P3 4.1665795894e-2f
#define EXP_P4 1.6666665459e-1f
#define EXP_P5 5.0000001201e-1f
#define F32_EXP_BIAS_I 127
#define F32_MANT_BITS_I 23

AVX2 static inline __m256 exp_avx2(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(EXP_LO)), _mm256_set1_ps(EXP_HI));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(LOG2E)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_HI), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_LO), r);
    __m256 p = _mm256_set1_ps(EXP_P0);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P5));
    __m256 r2 = _mm256_mul_ps(r, r);
    p = _mm256_fmadd_ps(p, r2, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(
        _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(F32_EXP_BIAS_I)),
        F32_MANT_BITS_I);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

AVX2 static void silu_mul_avx2(float *gate, const float *up, int64_t n) {
    const __m256 one = _mm256_set1_ps(1.0f);
    const __m256 zero = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + F32_LANES <= n; i += F32_LANES) {
        __m256 g = _mm256_loadu_ps(gate + i);
        __m256 e = exp_avx2(_mm256_sub_ps(zero, g));
        __m256 s = _mm256_div_ps(g, _mm256_add_ps(one, e));
        _mm256_storeu_ps(gate + i, _mm256_mul_ps(s, _mm256_loadu_ps(up + i)));
    }
    vl__silu_mul_ref(gate + i, up + i, n - i);
}

/* ---- row softmax ------------------------------------------------------------------------- */

AVX2 static void softmax_rows_avx2(float *x, int64_t n, int64_t d) {
    for (int64_t i = 0; i < n; i++) {
        float *xi = x + i * d;
        int64_t k = 0;
        __m256 vm = _mm256_set1_ps(-INFINITY);
        for (; k + F32_LANES <= d; k += F32_LANES)
            vm = _mm256_max_ps(vm, _mm256_loadu_ps(xi + k));
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(vm), _mm256_extractf128_ps(vm, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        float mx = _mm_cvtss_f32(m4);
        for (; k < d; k++)
            mx = xi[k] > mx ? xi[k] : mx;
        if (mx == -INFINITY) { /* fully masked row: zeros, as the reference */
            memset(xi, 0, (size_t)d * sizeof *xi);
            continue;
        }
        __m256 vmx = _mm256_set1_ps(mx), vs = _mm256_setzero_ps();
        for (k = 0; k + F32_LANES <= d; k += F32_LANES) {
            __m256 e = exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(xi + k), vmx));
            /* exp_avx2 clamps at EXP_LO; masked (-inf) scores must give exactly 0 */
            e = _mm256_and_ps(e, _mm256_cmp_ps(_mm256_loadu_ps(xi + k),
                                               _mm256_set1_ps(-INFINITY), _CMP_NEQ_OQ));
            _mm256_storeu_ps(xi + k, e);
            vs = _mm256_add_ps(vs, e);
        }
        double sum = (double)hsum8(vs);
        for (; k < d; k++) {
            xi[k] = expf(xi[k] - mx);
            sum += (double)xi[k];
        }
        float inv = (float)(1.0 / sum);
        __m256 vi = _mm256_set1_ps(inv);
        for (k = 0; k + F32_LANES <= d; k += F32_LANES)
            _mm256_storeu_ps(xi + k, _mm256_mul_ps(_mm256_loadu_ps(xi + k), vi));
        for (; k < d; k++)
            xi[k] *= inv;
    }
}

/* ---- decode attention of one KV head ----------------------------------------------------- */

#define QK_ROWS 4 /* query rows per pass over a key: 4 accumulators, the key loaded once */

/* s[i, t] = scale * q_i . k_t: each key row (d floats) is read once per QK_ROWS query rows,
 * which stay in L1 (a 3B group is 8 x 128 floats). */
AVX2 static void attn_qk_avx2(float *s, const float *q, int64_t m, const float *k, int64_t n,
                              int64_t d, float scale) {
    const int64_t dv = d - d % F32_LANES;
    for (int64_t t = 0; t < n; t++) {
        const float *kt = k + t * d;
        int64_t i = 0;
        for (; i + QK_ROWS <= m; i += QK_ROWS) {
            const float *q0 = q + i * d, *q1 = q0 + d, *q2 = q1 + d, *q3 = q2 + d;
            __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
            __m256 a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
            for (int64_t j = 0; j < dv; j += F32_LANES) {
                __m256 kv = _mm256_loadu_ps(kt + j);
                a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q0 + j), kv, a0);
                a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q1 + j), kv, a1);
                a2 = _mm256_fmadd_ps(_mm256_loadu_ps(q2 + j), kv, a2);
                a3 = _mm256_fmadd_ps(_mm256_loadu_ps(q3 + j), kv, a3);
            }
            float r0 = hsum8(a0), r1 = hsum8(a1), r2 = hsum8(a2), r3 = hsum8(a3);
            for (int64_t j = dv; j < d; j++) {
                r0 += q0[j] * kt[j];
                r1 += q1[j] * kt[j];
                r2 += q2[j] * kt[j];
                r3 += q3[j] * kt[j];
            }
            s[i * n + t] = r0 * scale;
            s[(i + 1) * n + t] = r1 * scale;
            s[(i + 2) * n + t] = r2 * scale;
            s[(i + 3) * n + t] = r3 * scale;
        }
        for (; i < m; i++) {
            const float *qi = q + i * d;
            __m256 a = _mm256_setzero_ps();
            for (int64_t j = 0; j < dv; j += F32_LANES)
                a = _mm256_fmadd_ps(_mm256_loadu_ps(qi + j), _mm256_loadu_ps(kt + j), a);
            float r = hsum8(a);
            for (int64_t j = dv; j < d; j++)
                r += qi[j] * kt[j];
            s[i * n + t] = r * scale;
        }
    }
}

#define PV_ROWS 4  /* output rows per register block */
#define PV_COLS 16 /* output columns per register block: 2 registers per row */
#define PV_KEYS 32 /* keys per chunk: 32 x head_dim floats stay in L1 for every block */

/* o[r0 .. r0 + rows) x [j, j + PV_COLS) += sum over keys [t0, t1) of p[r, t] v[t, j ..]; rows
 * is a constant 1..PV_ROWS after inlining, so the accumulators live in registers. */
AVX2 static inline __attribute__((always_inline)) void
pv_block(float *o, const float *p, int rows, const float *v, int64_t n, int64_t d, int64_t j,
         int64_t t0, int64_t t1) {
    __m256 a[PV_ROWS], b[PV_ROWS];
    for (int r = 0; r < rows; r++) {
        a[r] = _mm256_loadu_ps(o + r * d + j);
        b[r] = _mm256_loadu_ps(o + r * d + j + F32_LANES);
    }
    for (int64_t t = t0; t < t1; t++) {
        __m256 va = _mm256_loadu_ps(v + t * d + j);
        __m256 vb = _mm256_loadu_ps(v + t * d + j + F32_LANES);
        for (int r = 0; r < rows; r++) {
            __m256 w = _mm256_broadcast_ss(p + r * n + t);
            a[r] = _mm256_fmadd_ps(w, va, a[r]);
            b[r] = _mm256_fmadd_ps(w, vb, b[r]);
        }
    }
    for (int r = 0; r < rows; r++) {
        _mm256_storeu_ps(o + r * d + j, a[r]);
        _mm256_storeu_ps(o + r * d + j + F32_LANES, b[r]);
    }
}

/* o[i, j] = sum_t p[i, t] v[t, j]: keys in chunks of PV_KEYS (each v row read from memory once,
 * then from L1 by every block), blocks of up to PV_ROWS rows x PV_COLS columns in registers;
 * columns past the last full block (head_dim % 16, not in any Qwen2.5-VL size) in scalar. */
AVX2 static void attn_pv_avx2(float *o, const float *p, int64_t m, const float *v, int64_t n,
                              int64_t d) {
    const int64_t dv = d - d % PV_COLS;
    memset(o, 0, (size_t)(m * d) * sizeof *o);
    for (int64_t t0 = 0; t0 < n; t0 += PV_KEYS) {
        const int64_t t1 = n - t0 < PV_KEYS ? n : t0 + PV_KEYS;
        for (int64_t i = 0; i < m; i += PV_ROWS) {
            const int64_t rows = m - i < PV_ROWS ? m - i : PV_ROWS;
            float *oi = o + i * d;
            const float *pi = p + i * n;
            for (int64_t j = 0; j < dv; j += PV_COLS)
                switch (rows) {
                case 1: pv_block(oi, pi, 1, v, n, d, j, t0, t1); break;
                case 2: pv_block(oi, pi, 2, v, n, d, j, t0, t1); break;
                case 3: pv_block(oi, pi, 3, v, n, d, j, t0, t1); break;
                default: pv_block(oi, pi, PV_ROWS, v, n, d, j, t0, t1); break;
                }
            for (int64_t r = 0; r < rows; r++)
                for (int64_t j = dv; j < d; j++)
                    for (int64_t t = t0; t < t1; t++)
                        oi[r * d + j] += pi[r * n + t] * v[t * d + j];
        }
    }
}

static const struct vl_simd simd_avx2 = {
    .name = "avx2",
    .widen_bf16 = widen_bf16_avx2,
    .widen_f16 = widen_f16_avx2,
    .gemv_bf16_prep = gemv_bf16_prep_avx2,
    .gemv_bf16 = gemv_bf16_avx2,
    .gemv_bf16_x4 = gemv_bf16_x4_avx2,
    .gemv_bf16_x8 = gemv_bf16_x8_avx2,
    .gemv_bf16_row_invariant = true,
    .gemv_f16 = gemv_f16_avx2,
    .gemv_f32 = gemv_f32_avx2,
    .rmsnorm_rows = rmsnorm_rows_avx2,
    .silu_mul = silu_mul_avx2,
    .softmax_rows = softmax_rows_avx2,
    .attn_qk = attn_qk_avx2,
    .attn_pv = attn_pv_avx2,
};
#endif /* VL_HAVE_X86 */

#ifdef VL_HAVE_X86
/* CPUID bits (Intel SDM vol. 2A, CPUID): leaf 1 ECX and leaf 7 EBX; XCR0 bits for SSE and AVX
 * state. cpuid.h rather than __builtin_cpu_supports, which clang 14 lacks "f16c" for. */
#define CPUID1_ECX_FMA (1u << 12)
#define CPUID1_ECX_OSXSAVE (1u << 27)
#define CPUID1_ECX_F16C (1u << 29)
#define CPUID1_ECX_AVX (1u << 28)
#define CPUID7_EBX_AVX2 (1u << 5)
#define XCR0_SSE_AVX 0x6u

static bool cpu_has_avx2_fma_f16c(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return false;
    const unsigned need1 = CPUID1_ECX_FMA | CPUID1_ECX_OSXSAVE | CPUID1_ECX_F16C | CPUID1_ECX_AVX;
    if ((c & need1) != need1)
        return false;
    unsigned xlo, xhi;
    __asm__ volatile("xgetbv" : "=a"(xlo), "=d"(xhi) : "c"(0)); /* OS saves the YMM state */
    (void)xhi;
    if ((xlo & XCR0_SSE_AVX) != XCR0_SSE_AVX)
        return false;
    if (__get_cpuid_max(0, NULL) < 7)
        return false;
    __cpuid_count(7, 0, a, b, c, d);
    return (b & CPUID7_EBX_AVX2) != 0;
}
#endif

const struct vl_simd *vl__simd_avx2(void) {
#ifdef VL_HAVE_X86
    if (cpu_has_avx2_fma_f16c())
        return &simd_avx2;
#endif
    return NULL;
}

/* ---- dispatch ---------------------------------------------------------------------------- */

int64_t vl__gemv_prefetch = VL_GEMV_PREFETCH_DEFAULT_BYTES / 2;
int64_t vl__gemv_page_ahead = VL_GEMV_PAGE_AHEAD_DEFAULT_BYTES / 2;

static const struct vl_simd *simd_active;
static pthread_once_t simd_once = PTHREAD_ONCE_INIT;

/* A GEMV prefetch distance from the environment (vl__env_bytes) into *elems (BF16 weight
 * elements, bytes / 2). */
static void env_distance(const char *name, long long max, int64_t *elems) {
    long long bytes = (long long)*elems * 2;
    vl__env_bytes(name, max, &bytes);
    *elems = (int64_t)(bytes / 2);
}

/* VL_SIMD=off forces the scalar table, VL_SIMD=avx2 caps the choice at AVX2 (to compare the
 * tables on one machine); otherwise the widest table the CPU has. */
static void simd_pick(void) {
    const char *env = getenv("VL_SIMD");
    const struct vl_simd *s = NULL;
    bool off = env && strcmp(env, "off") == 0, cap_avx2 = env && strcmp(env, "avx2") == 0;
    if (!off && !cap_avx2)
        s = vl__simd_avx512();
    if (!off && !s)
        s = vl__simd_avx2();
    simd_active = s ? s : vl__simd_scalar();
    env_distance("VL_GEMV_PREFETCH", VL_GEMV_PREFETCH_MAX_BYTES, &vl__gemv_prefetch);
    env_distance("VL_GEMV_PAGE_AHEAD", VL_GEMV_PAGE_AHEAD_MAX_BYTES, &vl__gemv_page_ahead);
    vl__log(VL_LOG_DEBUG, "compute kernels: %s, GEMV prefetch %lld bytes, page-ahead %lld bytes",
            simd_active->name, (long long)vl__gemv_prefetch * 2,
            (long long)vl__gemv_page_ahead * 2);
}

int vl__simd_tables(const struct vl_simd *out[VL_SIMD_MAX_TABLES]) {
    const struct vl_simd *all[VL_SIMD_MAX_TABLES] = {vl__simd_scalar(), vl__simd_avx2(),
                                                     vl__simd_avx512()};
    int n = 0;
    for (int i = 0; i < VL_SIMD_MAX_TABLES; i++)
        if (all[i])
            out[n++] = all[i];
    return n;
}

const char *vl_simd_name(void) {
    return vl__simd()->name;
}

int vl_gemv_prefetch_bytes(void) {
    (void)vl__simd(); /* VL_GEMV_PREFETCH is read with the table */
    return (int)(vl__gemv_prefetch * 2);
}

int vl_gemv_page_ahead_bytes(void) {
    (void)vl__simd(); /* VL_GEMV_PAGE_AHEAD is read with the table */
    return (int)(vl__gemv_page_ahead * 2);
}

const struct vl_simd *vl__simd(void) {
    pthread_once(&simd_once, simd_pick);
    return simd_active;
}
