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
/* packed groups (streams) of the AVX2 / AVX-VNNI decode tile */
#define VL_QDEC_GROUPS 4

/* The 4-byte group at p as an int32 broadcast to every lane (4 int8 of one x row). */
AVX2 static inline __m256i bcast4(const int8_t *p) {
    int32_t v;
    __builtin_memcpy(&v, p, sizeof v);
    return _mm256_set1_epi32(v);
}

/* The packed-layout kernel of the AVX2 and AVX-VNNI tables, defined in each including file with
 * its target attribute ATTR and its own integer steps: init_q8(c) / init_q4(c) (the block sum's
 * start from the x block's correction c), dot_q8(s, w, x) (w: 8 rows' 4 bytes w + 128 as u8,
 * x: 4 int8 broadcast) and dot_q4(s, nib, x) (8 rows' 4 nibbles, u8). A ymm holds one block sum
 * of 8 weight rows (half a packed group) for one x row; then the definition's f32 steps, per
 * lane: convert, d_w * d_x, FMA — the scalar twin's operations, hence its bits. */
#define VL_QUANT_DOT_FNS(ATTR)                                                                   \
    /* y[k * ldy + lane] for x rows k < XN and the 8 rows of half h of the group at wg (lanes    \
     * with mask bit clear are not stored). */                                                  \
    ATTR static inline __attribute__((always_inline)) void half_tile(                           \
        float *y, int64_t ldy, const int8_t *xq, const float *xd, const int32_t *xc,             \
        const uint8_t *wg, enum vl_dtype t, int64_t nb, int h, __m256i mask, const int XN) {     \
        const size_t gb = VL_QPACK_ROWS * vl__dtype_size(t);                                     \
        const int64_t xrow = nb * VL_QK;                                                         \
        const __m256i lo = _mm256_set1_epi8(0x0f);                                               \
        __m256 acc[X_ROWS];                                                                      \
        _Pragma("GCC unroll 4") for (int k = 0; k < XN; k++) acc[k] = _mm256_setzero_ps();       \
        const int64_t pf = vl__qgemv_prefetch;                                                   \
        for (int64_t b = 0; b < nb; b++) {                                                       \
            const uint8_t *blk = wg + (size_t)b * gb;                                            \
            if (XN == 1 && h == 0) /* decode: first pass over the group streams it */            \
                for (size_t o = 0; o < gb; o += 64)                                              \
                    _mm_prefetch((const char *)blk + pf + o, _MM_HINT_T0);                       \
            const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const void *)(blk + 16 * h)));   \
            const uint8_t *q = blk + VL_QPACK_SCALE_BYTES + 32 * h;                              \
            const int8_t *xb = xq + b * VL_QK;                                                   \
            __m256i s[X_ROWS];                                                                   \
            if (t == VL_DTYPE_Q8_0) {                                                            \
                _Pragma("GCC unroll 4") for (int k = 0; k < XN; k++) s[k] =                      \
                    init_q8(xc[k * nb + b]);                                                     \
                _Pragma("GCC unroll 8") for (int e = 0; e < 8; e++) {                            \
                    const __m256i w = _mm256_loadu_si256((const void *)(q + e * VL_QPACK_CHUNK)); \
                    _Pragma("GCC unroll 4") for (int k = 0; k < XN; k++) s[k] =                  \
                        dot_q8(s[k], w, bcast4(xb + k * xrow + 4 * e));                          \
                }                                                                                \
            } else {                                                                             \
                _Pragma("GCC unroll 4") for (int k = 0; k < XN; k++) s[k] =                      \
                    init_q4(xc[k * nb + b]);                                                     \
                _Pragma("GCC unroll 4") for (int c = 0; c < 4; c++) {                            \
                    const __m256i v = _mm256_loadu_si256((const void *)(q + c * VL_QPACK_CHUNK)); \
                    const __m256i wl = _mm256_and_si256(v, lo);                                  \
                    const __m256i wh = _mm256_and_si256(_mm256_srli_epi16(v, 4), lo);            \
                    _Pragma("GCC unroll 4") for (int k = 0; k < XN; k++) {                       \
                        s[k] = dot_q4(s[k], wl, bcast4(xb + k * xrow + 4 * c));                  \
                        s[k] = dot_q4(s[k], wh, bcast4(xb + k * xrow + VL_QK / 2 + 4 * c));     \
                    }                                                                            \
                }                                                                                \
            }                                                                                    \
            _Pragma("GCC unroll 4") for (int k = 0; k < XN; k++) {                               \
                const __m256 d = _mm256_mul_ps(dw, _mm256_broadcast_ss(xd + k * nb + b));        \
                acc[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s[k]), d, acc[k]);                   \
            }                                                                                    \
        }                                                                                        \
        _Pragma("GCC unroll 4") for (int k = 0; k < XN; k++)                                     \
            _mm256_maskstore_ps(y + k * ldy, mask, acc[k]);                                      \
    }                                                                                            \
    /* Decode (one x row): NG groups at wg + g * gs, both halves of each, stored at              \
     * y + ys * g + 8 h (lanes with m[2 g + h] set); the same per-lane operations as half_tile   \
     * with one x row.                                                                           \
     * The groups come one from each quarter of a range, so the NG streams run on through their  \
     * quarters (the AVX-512 table's decode tile; docs/performance.md). */                       \
    ATTR static inline __attribute__((always_inline)) void dec_tile(                             \
        float *y, const int8_t *xb0, const float *xd, const int32_t *xc, const uint8_t *wg,      \
        size_t gs, int64_t ys, enum vl_dtype t, int64_t nb, const __m256i *m, const int NG) {    \
        const size_t gb = VL_QPACK_ROWS * vl__dtype_size(t);                                     \
        const __m256i lo = _mm256_set1_epi8(0x0f);                                               \
        const int64_t pf = vl__qgemv_prefetch;                                                   \
        __m256 acc[2 * VL_QDEC_GROUPS];                                                          \
        _Pragma("GCC unroll 8") for (int k = 0; k < 2 * NG; k++) acc[k] = _mm256_setzero_ps();   \
        for (int64_t b = 0; b < nb; b++) {                                                       \
            const int8_t *xb = xb0 + b * VL_QK;                                                  \
            const __m256 dx = _mm256_broadcast_ss(xd + b);                                       \
            _Pragma("GCC unroll 4") for (int g = 0; g < NG; g++) {                               \
                const uint8_t *blk = wg + g * gs + (size_t)b * gb;                               \
                _Pragma("GCC unroll 8") for (size_t o = 0; o < gb; o += 64)                      \
                    _mm_prefetch((const char *)blk + pf + o, _MM_HINT_T0);                       \
                _Pragma("GCC unroll 2") for (int h = 0; h < 2; h++) {                            \
                    const __m256 dw =                                                            \
                        _mm256_cvtph_ps(_mm_loadu_si128((const void *)(blk + 16 * h)));          \
                    const uint8_t *q = blk + VL_QPACK_SCALE_BYTES + 32 * h;                      \
                    __m256i s;                                                                   \
                    if (t == VL_DTYPE_Q8_0) {                                                    \
                        s = init_q8(xc[b]);                                                      \
                        _Pragma("GCC unroll 8") for (int e = 0; e < 8; e++) s = dot_q8(          \
                            s, _mm256_loadu_si256((const void *)(q + e * VL_QPACK_CHUNK)),       \
                            bcast4(xb + 4 * e));                                                 \
                    } else {                                                                     \
                        s = init_q4(xc[b]);                                                      \
                        _Pragma("GCC unroll 4") for (int c = 0; c < 4; c++) {                    \
                            const __m256i v =                                                    \
                                _mm256_loadu_si256((const void *)(q + c * VL_QPACK_CHUNK));      \
                            s = dot_q4(s, _mm256_and_si256(v, lo), bcast4(xb + 4 * c));          \
                            s = dot_q4(s, _mm256_and_si256(_mm256_srli_epi16(v, 4), lo),         \
                                       bcast4(xb + VL_QK / 2 + 4 * c));                          \
                        }                                                                        \
                    }                                                                            \
                    acc[2 * g + h] = _mm256_fmadd_ps(                                            \
                        _mm256_cvtepi32_ps(s), _mm256_mul_ps(dw, dx), acc[2 * g + h]);           \
                }                                                                                \
            }                                                                                    \
        }                                                                                        \
        _Pragma("GCC unroll 8") for (int k = 0; k < 2 * NG; k++)                                 \
            _mm256_maskstore_ps(y + ys * (k / 2) + 8 * (k % 2), m[k], acc[k]);                   \
    }                                                                                            \
    /* The 8 lanes of half h of group g inside the rows [r0, r1). */                             \
    ATTR static inline __m256i half_mask(int64_t g, int h, int64_t r0, int64_t r1) {             \
        const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);                          \
        const int64_t r = g * VL_QPACK_ROWS + 8 * h;                                             \
        return _mm256_and_si256(_mm256_cmpgt_epi32(_mm256_set1_epi32((int)(r1 - r)), lane),      \
                                _mm256_cmpgt_epi32(lane, _mm256_set1_epi32((int)(r0 - r) - 1))); \
    }                                                                                            \
    /* One x row over the groups [g0, g1) of the rows [r0, r1): VL_QDEC_GROUPS groups a pass,    \
     * one from each quarter of the range, then the last groups one by one. */                   \
    ATTR static void gemv_dec(float *y, const int8_t *xq, const float *xd, const int32_t *xc,    \
                              const uint8_t *wp, enum vl_dtype t, int64_t nb, int64_t r0,        \
                              int64_t r1) {                                                      \
        const size_t gs = (size_t)nb * VL_QPACK_ROWS * vl__dtype_size(t);                        \
        const int64_t g0 = r0 / VL_QPACK_ROWS, g1 = (r1 + VL_QPACK_ROWS - 1) / VL_QPACK_ROWS;    \
        const int64_t q = (g1 - g0) / VL_QDEC_GROUPS;                                            \
        __m256i m[2 * VL_QDEC_GROUPS];                                                           \
        for (int64_t j = 0; j < q; j++) {                                                        \
            for (int k = 0; k < 2 * VL_QDEC_GROUPS; k++)                                         \
                m[k] = half_mask(g0 + j + (k / 2) * q, k % 2, r0, r1);                           \
            dec_tile(y + (g0 + j) * VL_QPACK_ROWS, xq, xd, xc, wp + (size_t)(g0 + j) * gs,       \
                     (size_t)q * gs, q * VL_QPACK_ROWS, t, nb, m, VL_QDEC_GROUPS);               \
        }                                                                                        \
        for (int64_t g = g0 + q * VL_QDEC_GROUPS; g < g1; g++) {                                 \
            m[0] = half_mask(g, 0, r0, r1);                                                      \
            m[1] = half_mask(g, 1, r0, r1);                                                      \
            dec_tile(y + g * VL_QPACK_ROWS, xq, xd, xc, wp + (size_t)g * gs, gs,                 \
                     VL_QPACK_ROWS, t, nb, m, 1);                                                \
        }                                                                                        \
    }                                                                                            \
    /* y[i * ldy + r] for x rows [0, nx) and weight rows [r0, r1) of the packed weights wp */    \
    ATTR static void gemm_x86(float *y, int64_t ldy, const int8_t *xq, const float *xd,          \
                              const int32_t *xc, int64_t nx, const uint8_t *wp, enum vl_dtype t, \
                              int64_t nb, int64_t r0, int64_t r1) {                              \
        const size_t gb = VL_QPACK_ROWS * vl__dtype_size(t);                                     \
        const int64_t xrow = nb * VL_QK;                                                         \
        if (nx == 1) { /* decode: the weights stream once, in VL_QDEC_GROUPS long streams */     \
            if (r0 < r1) {                                                                       \
                gemv_dec(y, xq, xd, xc, wp, t, nb, r0, r1);                                      \
            }                                                                                    \
            return;                                                                              \
        }                                                                                        \
        int64_t tile = (int64_t)(X_TILE_BYTES / (size_t)xrow);                                   \
        tile = tile < X_ROWS ? X_ROWS : tile - tile % X_ROWS;                                    \
        for (int64_t i0 = 0; i0 < nx; i0 += tile) {                                              \
            const int64_t i1 = nx - i0 < tile ? nx : i0 + tile;                                  \
            for (int64_t r = r0 - r0 % 8; r < r1; r += 8) {                                      \
                const int64_t g = r / VL_QPACK_ROWS;                                             \
                const int h = (int)(r % VL_QPACK_ROWS) / 8;                                      \
                const __m256i m = half_mask(g, h, r0, r1);                                       \
                const uint8_t *wg = wp + (size_t)g * (size_t)nb * gb;                            \
                int64_t i = i0;                                                                  \
                for (; i + X_ROWS <= i1; i += X_ROWS)                                            \
                    half_tile(y + i * ldy + r, ldy, xq + i * xrow, xd + i * nb, xc + i * nb, wg, \
                              t, nb, h, m, X_ROWS);                                              \
                for (; i < i1; i++)                                                              \
                    half_tile(y + i * ldy + r, ldy, xq + i * xrow, xd + i * nb, xc + i * nb, wg, \
                              t, nb, h, m, 1);                                                   \
            }                                                                                    \
        }                                                                                        \
    }

#endif /* VL_HAVE_X86 */

#endif
