/* Quantized weights, part 5: the AVX-512 VNNI integer kernel (vpdpbusd on zmm), compiled with
 * a per-function target attribute and picked at run time (vl__qsimd), never -march=native.
 * A zmm holds one block of two weight rows (rows r and r + 1 in its 256-bit halves) against the
 * same x block broadcast to both halves, so each half carries one output's 8 lanes exactly as the
 * AVX2 kernel's ymm does. The integer lane sums (elements 4l..4l+3) come from one vpdpbusd:
 * Q8_0: of x + 128 (u8) by w (s8), started from -128 * (the lane sums of w), computed once per
 * weight block; Q4_0: of the nibbles (w + 8, u8) by x (s8), started from -8 * (the lane sums of
 * x), computed once per x tile for all weight rows (x_corrections). Both exact integers, the same as the AVX2 kernel's; then the same f32 steps (convert, FMA with
 * d_w * d_x) and the halves reduced in the AVX2 order. Every output is computed by the same
 * per-lane steps as the scalar twin whatever the grouping (two weight-row pairs by 8, 4 or 1 x
 * rows, one pair, one leftover row), so the table is bit-identical to the AVX2 and scalar ones
 * and a row never depends on the rows computed with it. One x row (decode) takes its own path,
 * 8 weight rows a pass with the corrections from the x block (gemv8_q8, gemv8_q4, below): the
 * same int32 lane sums and f32 steps. Pure functions; thread-safe. */
#include "vl_quant_x86.h"

#ifdef VL_HAVE_X86
#include <cpuid.h>

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))
#define INLINE __attribute__((always_inline)) inline
#define WP_MAX 2                        /* weight-row pairs per pass */
#define XN_MAX 8                        /* x rows per pass */
#define CPUID7_ECX_AVX512VNNI (1u << 11) /* Intel SDM vol. 2A, CPUID leaf 7 sub-leaf 0 */
#define XC_LANES 8                      /* int32 corrections per x block */
#define XC_BUF_LANES ((size_t)32 << 10) /* corrections of one x tile (128 KiB, per thread) */

/* The x tile's corrections (x_corrections), per thread: the kernel runs on every pool worker. */
static _Thread_local int32_t xc_buf[XC_BUF_LANES];

/* The blocks at p0 (row r) and p1 (row r + 1) as one zmm of weights [r | r + 1] (Q8_0: signed;
 * Q4_0: the unsigned nibbles, w + 8), and their scales as [d0 x 8 | d1 x 8]. */
AVX512 static INLINE __m512i load_pair(const uint8_t *p0, const uint8_t *p1, enum vl_dtype t,
                                       __m512 *dw) {
    *dw = _mm512_mask_blend_ps(0xff00, _mm512_set1_ps(f16_at(p0)), _mm512_set1_ps(f16_at(p1)));
    if (t == VL_DTYPE_Q8_0)
        return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const void *)(p0 + 2))),
                                  _mm256_loadu_si256((const void *)(p1 + 2)), 1);
    const __m256i qs = _mm256_inserti128_si256(
        _mm256_castsi128_si256(_mm_loadu_si128((const void *)(p0 + 2))),
        _mm_loadu_si128((const void *)(p1 + 2)), 1); /* [qs0 | qs1] */
    const __m256i lo_mask = _mm256_set1_epi8(0x0f);
    __m256i lo = _mm256_and_si256(qs, lo_mask);
    __m256i hi = _mm256_and_si256(_mm256_srli_epi16(qs, 4), lo_mask);
    /* 128-bit lanes [lo0, lo1, hi0, hi1] -> [lo0, hi0, lo1, hi1]: each row's elements 0..31 */
    __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
    return _mm512_shuffle_i64x2(z, z, _MM_SHUFFLE(3, 1, 2, 0)); /* w + 8 as u8 */
}

/* y[k * ldy + j] for x rows k < xn and weight rows j < 2 wp (rows at wr + j * rb). */
AVX512 static INLINE void dot_tile(float *y, int64_t ldy, const int8_t *xq, const float *xd,
                                   const int32_t *xc, const uint8_t *wr, size_t rb,
                                   enum vl_dtype t, size_t bs, int64_t nb, const int wp,
                                   const int xn) {
    const int64_t xrow = nb * VL_QK;
    const bool q8 = t == VL_DTYPE_Q8_0;
    const __m512i zero = _mm512_setzero_si512(), bias = _mm512_set1_epi8((char)0x80);
    __m512 acc[WP_MAX][XN_MAX];
    for (int p = 0; p < wp; p++)
        for (int k = 0; k < xn; k++)
            acc[p][k] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        __m512i wq[WP_MAX], corr[WP_MAX];
        __m512 dw[WP_MAX];
        for (int p = 0; p < wp; p++) {
            const uint8_t *blk = wr + (size_t)(2 * p) * rb + (size_t)b * bs;
            wq[p] = load_pair(blk, blk + rb, t, &dw[p]);
            /* Q8_0: -128 * (lane sums of w), what x + 128 adds to the lane sums, taken back */
            if (q8)
                corr[p] = _mm512_sub_epi32(zero, _mm512_dpbusd_epi32(zero, bias, wq[p]));
        }
        for (int k = 0; k < xn; k++) {
            const int8_t *xb = xq + k * xrow + b * VL_QK;
            __m512i x = _mm512_broadcast_i64x4(_mm256_loadu_si256((const void *)xb)), c = zero;
            if (q8) /* x + 128 as u8 (x >= -127: no wrap) */
                x = _mm512_xor_si512(x, bias);
            else /* Q4_0: -8 * (lane sums of x), what the nibbles' bias adds, taken back */
                c = _mm512_broadcast_i64x4(
                    _mm256_loadu_si256((const void *)(xc + (k * nb + b) * XC_LANES)));
            __m512 dx = _mm512_set1_ps(xd[k * nb + b]);
            for (int p = 0; p < wp; p++) {
                __m512i p32 = q8 ? _mm512_dpbusd_epi32(corr[p], x, wq[p])
                                 : _mm512_dpbusd_epi32(c, wq[p], x);
                __m512 d = _mm512_mul_ps(dw[p], dx);
                acc[p][k] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p32), d, acc[p][k]);
            }
        }
    }
    for (int p = 0; p < wp; p++)
        for (int k = 0; k < xn; k++) {
            __m256 lo = _mm512_castps512_ps256(acc[p][k]);
            __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc[p][k]), 1));
            y[k * ldy + 2 * p] = hsum8(lo);
            y[k * ldy + 2 * p + 1] = hsum8(hi);
        }
}

AVX512 static void tile_2x8(float *y, int64_t ldy, const int8_t *xq, const float *xd,
                            const int32_t *xc, const uint8_t *wr, size_t rb, enum vl_dtype t,
                            size_t bs, int64_t nb) {
    dot_tile(y, ldy, xq, xd, xc, wr, rb, t, bs, nb, 2, 8);
}

AVX512 static void tile_2x4(float *y, int64_t ldy, const int8_t *xq, const float *xd,
                            const int32_t *xc, const uint8_t *wr, size_t rb, enum vl_dtype t,
                            size_t bs, int64_t nb) {
    dot_tile(y, ldy, xq, xd, xc, wr, rb, t, bs, nb, 2, 4);
}

AVX512 static void tile_2x1(float *y, int64_t ldy, const int8_t *xq, const float *xd,
                            const int32_t *xc, const uint8_t *wr, size_t rb, enum vl_dtype t,
                            size_t bs, int64_t nb) {
    dot_tile(y, ldy, xq, xd, xc, wr, rb, t, bs, nb, 2, 1);
}

AVX512 static void tile_1x8(float *y, int64_t ldy, const int8_t *xq, const float *xd,
                            const int32_t *xc, const uint8_t *wr, size_t rb, enum vl_dtype t,
                            size_t bs, int64_t nb) {
    dot_tile(y, ldy, xq, xd, xc, wr, rb, t, bs, nb, 1, 8);
}

AVX512 static void tile_1x4(float *y, int64_t ldy, const int8_t *xq, const float *xd,
                            const int32_t *xc, const uint8_t *wr, size_t rb, enum vl_dtype t,
                            size_t bs, int64_t nb) {
    dot_tile(y, ldy, xq, xd, xc, wr, rb, t, bs, nb, 1, 4);
}

AVX512 static void tile_1x1(float *y, int64_t ldy, const int8_t *xq, const float *xd,
                            const int32_t *xc, const uint8_t *wr, size_t rb, enum vl_dtype t,
                            size_t bs, int64_t nb) {
    dot_tile(y, ldy, xq, xd, xc, wr, rb, t, bs, nb, 1, 1);
}

/* One weight row (an odd row left over) against one x row: the ymm form of the same steps. */
AVX512 static float dot_row(const int8_t *xq, const float *xd, const uint8_t *wr, enum vl_dtype t,
                            size_t bs, int64_t nb) {
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        float dws;
        __m256i w = load_block(wr + (size_t)b * bs, t, &dws);
        __m256i x = _mm256_loadu_si256((const void *)(xq + b * VL_QK));
        __m256i p32 = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_sign_epi8(w, w),
                                          _mm256_sign_epi8(x, w));
        __m256 d = _mm256_mul_ps(_mm256_set1_ps(dws), _mm256_broadcast_ss(xd + b));
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p32), d, acc);
    }
    return hsum8(acc);
}

/* ---- one x row (decode GEMV): 8 weight rows per pass --------------------------------------
 * The integer lane sums are the same exact int32 values by a cheaper route, with the corrections
 * taken from the x block (once per block for all 8 rows) instead of from each weight block:
 *   Q8_0: vpdpbusd of w ^ 0x80 = w + 128 (u8) by x (s8) from -128 * (lane sums of x);
 *   Q4_0: vpdpbusd of the nibbles (u8, 0..15) by x (s8) from -8 * (lane sums of x),
 * both  = sum of w . x  (products fit int16, sums int32: no saturation, no wrap). The f32 steps
 * per output lane (convert, d_w * d_x, FMA) and the reduction are the scalar twin's. */
#define GEMV_ROWS 8

/* The same block of the next 8 rows (the next pass), into L1: 8 row streams interleaved at
 * 18 or 34 bytes a step are more than the hardware prefetchers follow (measured: 8.7 GB/s a
 * thread without, against a 22 GB/s plain read). Prefetches never fault past the tensor. */
AVX512 static INLINE void gemv_prefetch(const uint8_t *blk, size_t rb) {
    for (int j = 0; j < GEMV_ROWS; j++)
        _mm_prefetch((const char *)(blk + (size_t)j * rb), _MM_HINT_T0);
}

/* The 8 rows' block-b scales times dx: [d_0 .. d_7] * dx (lane j = row j). */
AVX512 static INLINE __m256 gemv_scales(const uint8_t *blk, size_t rb, float dx) {
    __m128i h = _mm_setzero_si128();
    uint16_t v[GEMV_ROWS];
    for (int j = 0; j < GEMV_ROWS; j++)
        __builtin_memcpy(&v[j], blk + (size_t)j * rb, sizeof v[j]);
    h = _mm_insert_epi16(h, v[0], 0);
    h = _mm_insert_epi16(h, v[1], 1);
    h = _mm_insert_epi16(h, v[2], 2);
    h = _mm_insert_epi16(h, v[3], 3);
    h = _mm_insert_epi16(h, v[4], 4);
    h = _mm_insert_epi16(h, v[5], 5);
    h = _mm_insert_epi16(h, v[6], 6);
    h = _mm_insert_epi16(h, v[7], 7);
    return _mm256_mul_ps(_mm256_cvtph_ps(h), _mm256_set1_ps(dx));
}

/* y[j] = dot(row j, x) for the 8 Q8_0 rows at wr: zmm p holds rows 2p | 2p + 1. */
AVX512 static void gemv8_q8(float *y, const int8_t *xq, const float *xd, const uint8_t *wr,
                            size_t rb, int64_t nb) {
    const __m512i zero = _mm512_setzero_si512(), bias = _mm512_set1_epi8((char)0x80);
    const __m512i pat[4] = {
        _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0),
        _mm512_set_epi32(3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2),
        _mm512_set_epi32(5, 5, 5, 5, 5, 5, 5, 5, 4, 4, 4, 4, 4, 4, 4, 4),
        _mm512_set_epi32(7, 7, 7, 7, 7, 7, 7, 7, 6, 6, 6, 6, 6, 6, 6, 6)};
    __m512 acc[4];
    for (int p = 0; p < 4; p++)
        acc[p] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = wr + (size_t)b * VL_Q8_0_BYTES;
        gemv_prefetch(blk + GEMV_ROWS * rb, rb);
        __m512i x = _mm512_broadcast_i64x4(_mm256_loadu_si256((const void *)(xq + b * VL_QK)));
        /* -128 * (lane sums of x) */
        __m512i cx = _mm512_sub_epi32(zero, _mm512_dpbusd_epi32(zero, bias, x));
        __m512 d8 = _mm512_castps256_ps512(gemv_scales(blk, rb, xd[b]));
        for (int p = 0; p < 4; p++) {
            const uint8_t *b0 = blk + (size_t)(2 * p) * rb + 2;
            __m512i w = _mm512_castsi256_si512(_mm256_loadu_si256((const void *)b0));
            w = _mm512_inserti64x4(w, _mm256_loadu_si256((const void *)(b0 + rb)), 1);
            __m512i p32 = _mm512_dpbusd_epi32(cx, _mm512_xor_si512(w, bias), x);
            __m512 d = _mm512_permutexvar_ps(pat[p], d8);
            acc[p] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p32), d, acc[p]);
        }
    }
    for (int p = 0; p < 4; p++) {
        y[2 * p] = hsum8(_mm512_castps512_ps256(acc[p]));
        y[2 * p + 1] = hsum8(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc[p]), 1)));
    }
}

/* y[j] = dot(row j, x) for the 8 Q4_0 rows at wr: group g holds rows 4g .. 4g + 3, one per
 * 128-bit lane; lo carries elements 0..15 (output lanes 0..3), hi elements 16..31 (lanes 4..7). */
AVX512 static void gemv8_q4(float *y, const int8_t *xq, const float *xd, const uint8_t *wr,
                            size_t rb, int64_t nb) {
    const __m512i zero = _mm512_setzero_si512(), mask = _mm512_set1_epi8(0x0f);
    const __m512i eight = _mm512_set1_epi8(VL_Q4_OFFSET);
    const __m512i pat[2] = {
        _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0),
        _mm512_set_epi32(7, 7, 7, 7, 6, 6, 6, 6, 5, 5, 5, 5, 4, 4, 4, 4)};
    __m512 lo_acc[2], hi_acc[2];
    for (int g = 0; g < 2; g++)
        lo_acc[g] = hi_acc[g] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = wr + (size_t)b * VL_Q4_0_BYTES;
        if (!(b & 1))
            gemv_prefetch(blk + GEMV_ROWS * rb, rb);
        const int8_t *xb = xq + b * VL_QK;
        __m512i xl = _mm512_broadcast_i32x4(_mm_loadu_si128((const void *)xb));
        __m512i xh = _mm512_broadcast_i32x4(_mm_loadu_si128((const void *)(xb + 16)));
        /* -8 * (lane sums of x) */
        __m512i cl = _mm512_sub_epi32(zero, _mm512_dpbusd_epi32(zero, eight, xl));
        __m512i ch = _mm512_sub_epi32(zero, _mm512_dpbusd_epi32(zero, eight, xh));
        __m512 d8 = _mm512_castps256_ps512(gemv_scales(blk, rb, xd[b]));
        for (int g = 0; g < 2; g++) {
            const uint8_t *q = blk + (size_t)(4 * g) * rb + 2;
            __m512i z = _mm512_castsi128_si512(_mm_loadu_si128((const void *)q));
            z = _mm512_inserti32x4(z, _mm_loadu_si128((const void *)(q + rb)), 1);
            z = _mm512_inserti32x4(z, _mm_loadu_si128((const void *)(q + 2 * rb)), 2);
            z = _mm512_inserti32x4(z, _mm_loadu_si128((const void *)(q + 3 * rb)), 3);
            __m512i lo = _mm512_and_si512(z, mask);
            __m512i hi = _mm512_and_si512(_mm512_srli_epi16(z, 4), mask);
            __m512 d = _mm512_permutexvar_ps(pat[g], d8);
            lo_acc[g] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_dpbusd_epi32(cl, lo, xl)), d,
                                        lo_acc[g]);
            hi_acc[g] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_dpbusd_epi32(ch, hi, xh)), d,
                                        hi_acc[g]);
        }
    }
    for (int g = 0; g < 2; g++) {
        __m128 l[4] = {_mm512_extractf32x4_ps(lo_acc[g], 0), _mm512_extractf32x4_ps(lo_acc[g], 1),
                       _mm512_extractf32x4_ps(lo_acc[g], 2), _mm512_extractf32x4_ps(lo_acc[g], 3)};
        __m128 h[4] = {_mm512_extractf32x4_ps(hi_acc[g], 0), _mm512_extractf32x4_ps(hi_acc[g], 1),
                       _mm512_extractf32x4_ps(hi_acc[g], 2), _mm512_extractf32x4_ps(hi_acc[g], 3)};
        for (int j = 0; j < 4; j++)
            y[4 * g + j] = hsum8(_mm256_set_m128(h[j], l[j]));
    }
}

typedef void (*tile_fn)(float *y, int64_t ldy, const int8_t *xq, const float *xd,
                        const int32_t *xc, const uint8_t *wr, size_t rb, enum vl_dtype t,
                        size_t bs, int64_t nb);

/* x rows [i0, i1) against the weight rows of one tile width: by 8, then 4, then 1 x rows
 * (xc: the corrections of the tile's rows, from row i0). */
AVX512 static void x_rows(float *y, int64_t ldy, const int8_t *xq, const float *xd,
                          const int32_t *xc, int64_t i0, int64_t i1, const uint8_t *wr, size_t rb,
                          enum vl_dtype t, size_t bs, int64_t nb, const tile_fn fn[3]) {
    const int64_t xrow = nb * VL_QK;
    const int64_t step[3] = {XN_MAX, XN_MAX / 2, 1};
    int64_t i = i0;
    for (int s = 0; s < 3; s++)
        for (; i + step[s] <= i1; i += step[s])
            fn[s](y + i * ldy, ldy, xq + i * xrow, xd + i * nb, xc + (i - i0) * nb * XC_LANES, wr,
                  rb, t, bs, nb);
}

/* Q4_0: xc[(i - i0) * nb * 8 + b * 8 + l] = -8 * (x row i's elements 4l..4l+3 of block b):
 * added to the lane sums of the nibbles (w + 8) times x it leaves exactly those of w times x. */
AVX512 static void x_corrections(int32_t *xc, const int8_t *xq, int64_t i0, int64_t i1,
                                 int64_t nb) {
    const __m256i ones = _mm256_set1_epi8(1), zero = _mm256_setzero_si256();
    const int shift = 3; /* log2 of VL_Q4_OFFSET */
    for (int64_t i = i0; i < i1; i++)
        for (int64_t b = 0; b < nb; b++) {
            __m256i x = _mm256_loadu_si256((const void *)(xq + (i * nb + b) * VL_QK));
            __m256i s = _mm256_dpbusd_epi32(zero, ones, x); /* lane sums of x */
            _mm256_storeu_si256((void *)(xc + ((i - i0) * nb + b) * XC_LANES),
                                _mm256_sub_epi32(zero, _mm256_slli_epi32(s, shift)));
        }
}

AVX512 static void gemm_avx512vnni(float *y, int64_t ldy, const int8_t *xq, const float *xd,
                                   int64_t nx, const uint8_t *w, enum vl_dtype t, int64_t nb,
                                   int64_t r0, int64_t r1) {
    static const tile_fn pairs2[3] = {tile_2x8, tile_2x4, tile_2x1};
    static const tile_fn pairs1[3] = {tile_1x8, tile_1x4, tile_1x1};
    const size_t bs = vl__dtype_size(t), rb = (size_t)nb * bs;
    const int64_t xrow = nb * VL_QK, xc_row = nb * XC_LANES;
    if (nx == 1) /* decode: 8 weight rows per pass, the rest by the tiles below */
        for (; r0 + GEMV_ROWS <= r1; r0 += GEMV_ROWS)
            (t == VL_DTYPE_Q8_0 ? gemv8_q8 : gemv8_q4)(y + r0, xq, xd, w + (size_t)r0 * rb, rb, nb);
    /* x rows per tile: their int8 rows stay in L2 and their corrections fit xc_buf */
    int64_t tile = (int64_t)(X_TILE_BYTES / (size_t)xrow);
    int64_t fit = (int64_t)(XC_BUF_LANES / xc_row);
    tile = tile < XN_MAX ? XN_MAX : tile - tile % XN_MAX;
    tile = tile < fit ? tile : fit;
    if (tile < 1) { /* a row wider than the buffer: the ymm form, row by row */
        for (int64_t r = r0; r < r1; r++)
            for (int64_t i = 0; i < nx; i++)
                y[i * ldy + r] = dot_row(xq + i * xrow, xd + i * nb, w + (size_t)r * rb, t, bs, nb);
        return;
    }
    for (int64_t i0 = 0; i0 < nx; i0 += tile) {
        int64_t i1 = nx - i0 < tile ? nx : i0 + tile;
        int64_t r = r0;
        if (t == VL_DTYPE_Q4_0 && r + 2 <= r1)
            x_corrections(xc_buf, xq, i0, i1, nb);
        for (; r + 2 * WP_MAX <= r1; r += 2 * WP_MAX)
            x_rows(y + r, ldy, xq, xd, xc_buf, i0, i1, w + (size_t)r * rb, rb, t, bs, nb, pairs2);
        for (; r + 2 <= r1; r += 2)
            x_rows(y + r, ldy, xq, xd, xc_buf, i0, i1, w + (size_t)r * rb, rb, t, bs, nb, pairs1);
        for (; r < r1; r++)
            for (int64_t i = i0; i < i1; i++)
                y[i * ldy + r] = dot_row(xq + i * xrow, xd + i * nb, w + (size_t)r * rb, t, bs, nb);
    }
}

static const struct vl_qsimd qsimd_avx512vnni = {
    .name = "avx512vnni", .quantize_act = vl__quantize_act_avx512, .gemm = gemm_avx512vnni};

static bool cpu_has_avx512vnni(void) {
    unsigned a, b, c, d;
    /* vl__simd_avx512: AVX512F/BW/VL with the OS saving the ZMM state; AVX2 + FMA + F16C too */
    if (!vl__simd_avx512() || !vl__qsimd_avx2() || __get_cpuid_max(0, NULL) < 7)
        return false;
    __cpuid_count(7, 0, a, b, c, d);
    return (c & CPUID7_ECX_AVX512VNNI) != 0;
}
#endif /* VL_HAVE_X86 */

const struct vl_qsimd *vl__qsimd_avx512vnni(void) {
#ifdef VL_HAVE_X86
    if (cpu_has_avx512vnni())
        return &qsimd_avx512vnni;
#endif
    return NULL;
}
