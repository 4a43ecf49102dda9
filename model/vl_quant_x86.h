/* model/ private: the x86 helpers the integer kernels share (vl_quant_x86.c: AVX2,
 * vl_quant_avxvnni.c: AVX-VNNI, vl_quant_avx512.c: AVX-512 VNNI). Each helper carries the AVX2
 * target attribute, so it inlines into any kernel whose target is a superset; nothing here runs
 * unless the caller's table passed its CPU check. Included only by those three files. */
#ifndef VL_QUANT_X86_H
#define VL_QUANT_X86_H

#include "vl_quant_impl.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define VL_HAVE_X86 1
#include <immintrin.h>
#endif

#ifdef VL_HAVE_X86
#define AVX2 __attribute__((target("avx2,fma,f16c")))
/* vl__quantize_act on AVX2 and on AVX-512 (F/BW/VL), bit-identical to it (vl_quant_act.c); only
 * reached through a table whose CPU check covers them. */
void vl__quantize_act_avx2(int8_t *q, float *d, const float *x, int64_t n);
void vl__quantize_act_avx512(int8_t *q, float *d, const float *x, int64_t n);
/* x rows per tile: the quantized rows one pass over a weight row meets stay in L2 */
#define X_TILE_BYTES ((size_t)128 << 10)
/* x rows per weight-block load in the AVX2 / AVX-VNNI dot products */
#define X_ROWS 4

AVX2 static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

AVX2 static inline float f16_at(const uint8_t *p) {
    uint16_t h;
    __builtin_memcpy(&h, p, sizeof h);
    return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h)));
}

/* The block's 32 signed weights in element order, and its scale. */
AVX2 static inline __m256i load_block(const uint8_t *blk, enum vl_dtype t, float *d) {
    *d = f16_at(blk);
    if (t == VL_DTYPE_Q8_0)
        return _mm256_loadu_si256((const __m256i *)(blk + 2));
    const __m128i qs = _mm_loadu_si128((const __m128i *)(blk + 2));
    const __m128i lo_mask = _mm_set1_epi8(0x0f);
    __m128i lo = _mm_and_si128(qs, lo_mask);
    __m128i hi = _mm_and_si128(_mm_srli_epi16(qs, 4), lo_mask);
    __m256i q = _mm256_set_m128i(hi, lo); /* elements 0..15 low nibbles, 16..31 high */
    return _mm256_sub_epi8(q, _mm256_set1_epi8(VL_Q4_OFFSET));
}

/* Q4_0 block: its 32 nibbles (u8, 0..15) in element order: [qs | qs] with the high 128 bits
 * shifted right by 4, masked. */
AVX2 static inline __m256i load_nibbles(const uint8_t *blk) {
    const __m256i qs = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(blk + 2)));
    return _mm256_and_si256(_mm256_srlv_epi64(qs, _mm256_set_epi64x(4, 4, 0, 0)),
                            _mm256_set1_epi8(0x0f));
}

/* The 4-row and 1-row dot products over a weight row's nb blocks and the tiled loop over rows, defined in each including file
 * with its target attribute ATTR and its own block_fma (maddubs on AVX2, vpdpbusd on AVX-VNNI):
 * the loops, the per-lane float steps and their order are the same in both, which keeps the
 * tables bit-identical. */
#define VL_QUANT_DOT_FNS(ATTR)                                                                   \
    ATTR static void dot_x4(float *y, int64_t ldy, const int8_t *xq, const float *xd,           \
                            const uint8_t *wr, enum vl_dtype t, size_t bs, int64_t nb) {        \
        const int64_t xrow = nb * VL_QK;                                                       \
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                            \
        for (int64_t b = 0; b < nb; b++) {                                                     \
            float dws;                                                                         \
            __m256i w = load_block(wr + (size_t)b * bs, t, &dws);                              \
            __m256i aw = _mm256_sign_epi8(w, w); /* |w| as u8 (|-128| = 128 reads right) */    \
            __m256 dw = _mm256_set1_ps(dws);                                                   \
            const int8_t *xb = xq + b * VL_QK;                                                 \
            a0 = block_fma(a0, aw, w, xb, dw, xd + b);                                         \
            a1 = block_fma(a1, aw, w, xb + xrow, dw, xd + nb + b);                             \
            a2 = block_fma(a2, aw, w, xb + 2 * xrow, dw, xd + 2 * nb + b);                     \
            a3 = block_fma(a3, aw, w, xb + 3 * xrow, dw, xd + 3 * nb + b);                     \
        }                                                                                      \
        y[0] = hsum8(a0);                                                                      \
        y[ldy] = hsum8(a1);                                                                    \
        y[2 * ldy] = hsum8(a2);                                                                \
        y[3 * ldy] = hsum8(a3);                                                                \
    }                                                                                          \
    ATTR static float dot_x1(const int8_t *xq, const float *xd, const uint8_t *wr,             \
                             enum vl_dtype t, size_t bs, int64_t nb) {                         \
        __m256 a0 = _mm256_setzero_ps();                                                       \
        for (int64_t b = 0; b < nb; b++) {                                                     \
            float dws;                                                                         \
            __m256i w = load_block(wr + (size_t)b * bs, t, &dws);                              \
            a0 = block_fma(a0, _mm256_sign_epi8(w, w), w, xq + b * VL_QK, _mm256_set1_ps(dws), \
                           xd + b);                                                            \
        }                                                                                      \
        return hsum8(a0);                                                                      \
    }                                                                                          \
    /* One x row against 4 weight rows (decode): the lane sums by lanes_q8 / lanes_q4 with   \
     * the x block's corrections (xcorr_q8 / xcorr_q4) computed once for the 4 rows; the same  \
     * exact int32 lane sums, then the same f32 steps. */                                      \
    ATTR static void gemv_r4(float *y, const int8_t *xq, const float *xd, const uint8_t *wr,   \
                             size_t rb, enum vl_dtype t, int64_t nb) {                         \
        const size_t bs = vl__dtype_size(t);                                                   \
        __m256 a[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),          \
                       _mm256_setzero_ps()};                                                   \
        for (int64_t b = 0; b < nb; b++) {                                                     \
            const uint8_t *blk = wr + (size_t)b * bs;                                          \
            if (t == VL_DTYPE_Q8_0 || !(b & 1)) /* the next pass's rows: see gemv_prefetch */   \
                for (int j = 0; j < 4; j++)                                                    \
                    _mm_prefetch((const char *)(blk + (size_t)(4 + j) * rb), _MM_HINT_T0);     \
            const __m256i x = _mm256_loadu_si256((const __m256i *)(xq + b * VL_QK));           \
            const __m256 dx = _mm256_broadcast_ss(xd + b);                                     \
            if (t == VL_DTYPE_Q8_0) {                                                          \
                const __m256i cx = xcorr_q8(x);                                                \
                for (int j = 0; j < 4; j++) {                                                  \
                    const uint8_t *bj = blk + (size_t)j * rb;                                  \
                    __m256i w = _mm256_loadu_si256((const __m256i *)(bj + 2));                 \
                    __m256 d = _mm256_mul_ps(_mm256_set1_ps(f16_at(bj)), dx);                  \
                    a[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(lanes_q8(w, x, cx)), d, a[j]);   \
                }                                                                              \
            } else {                                                                           \
                const __m256i cx = xcorr_q4(x);                                                \
                for (int j = 0; j < 4; j++) {                                                  \
                    const uint8_t *bj = blk + (size_t)j * rb;                                  \
                    __m256i nib = load_nibbles(bj);                                            \
                    __m256 d = _mm256_mul_ps(_mm256_set1_ps(f16_at(bj)), dx);                  \
                    a[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(lanes_q4(nib, x, cx)), d, a[j]); \
                }                                                                              \
            }                                                                                  \
        }                                                                                      \
        for (int j = 0; j < 4; j++)                                                            \
            y[j] = hsum8(a[j]);                                                                \
    }                                                                                          \
    /* y[i * ldy + r] for x rows [0, nx) and weight rows [r0, r1): x in L2-sized tiles */      \
    ATTR static void gemm_x86(float *y, int64_t ldy, const int8_t *xq, const float *xd,        \
                              int64_t nx, const uint8_t *w, enum vl_dtype t, int64_t nb,       \
                              int64_t r0, int64_t r1) {                                        \
        const size_t bs = vl__dtype_size(t), rb = (size_t)nb * bs;                             \
        const int64_t xrow = nb * VL_QK;                                                       \
        int64_t tile = (int64_t)(X_TILE_BYTES / (size_t)xrow);                                 \
        tile = tile < X_ROWS ? X_ROWS : tile - tile % X_ROWS;                                  \
        if (nx == 1) /* decode: 4 weight rows per pass, the rest one by one below */           \
            for (; r0 + 4 <= r1; r0 += 4)                                                      \
                gemv_r4(y + r0, xq, xd, w + (size_t)r0 * rb, rb, t, nb);                       \
        for (int64_t i0 = 0; i0 < nx; i0 += tile) {                                            \
            int64_t i1 = nx - i0 < tile ? nx : i0 + tile;                                      \
            for (int64_t r = r0; r < r1; r++) {                                                \
                const uint8_t *wr = w + (size_t)r * rb;                                        \
                int64_t i = i0;                                                                \
                for (; i + X_ROWS <= i1; i += X_ROWS)                                          \
                    dot_x4(y + i * ldy + r, ldy, xq + i * xrow, xd + i * nb, wr, t, bs, nb);   \
                for (; i < i1; i++)                                                            \
                    y[i * ldy + r] = dot_x1(xq + i * xrow, xd + i * nb, wr, t, bs, nb);        \
            }                                                                                  \
        }                                                                                      \
    }

#endif /* VL_HAVE_X86 */

#endif
