/* Quantized weights, part 5: the AVX-512 VNNI integer kernel (vpdpbusd on zmm) on the packed
 * layout (vl_quant_impl.h), compiled with a per-function target attribute and picked at run time
 * (vl__qsimd), never -march=native. A zmm holds the block sums of 16 outputs: the 16 weight rows
 * of a packed group, for one x row. Per 4-element group of a block: one 64-byte load of the
 * weights (Q8_0: w + 128, u8; Q4_0: one load, and/shift+and for the low and high nibbles, w + 8,
 * u8) and per x row one vpdpbusd with the x row's 4 bytes broadcast ({1to16}, the signed
 * operand), started from the x block's correction -128 * sum(x) resp. -8 * sum(x): the exact
 * int32 block sum s_b of each output. Then per 16 outputs one convert, one multiply by
 * d_w * d_x (the 16 rows' f16 scales converted together) and one FMA — the scalar twin's f32
 * operations, so the table is bit-identical to it, and a row never depends on the rows computed
 * with it. Tiles: one group by 12 x rows (prefill, vision: 12 independent sum chains, the weights
 * unpacked once per 12 x rows), then 8, 4, 2, 1 for the rest; few x rows (decode): four groups
 * by one x row, one from each quarter of the range (the last 1-3 groups together), each stream
 * prefetched
 * vl__qgemv_prefetch bytes ahead: the weights are read once, so the tile lives on keeping enough
 * misses in flight (3B q4 decode: 35 -> 46 GB/s, docs/performance.md); its block sums run as two
 * chains per group (q8: even and odd chunks; q4: low nibbles, and the high nibbles masked in
 * place, i.e. 16 times their sum, shifted back exactly), added as int32 — the same s_b.
 * Pure functions; thread-safe. */
#include "vl_quant_x86.h"

#ifdef VL_HAVE_X86
#include <cpuid.h>

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))
#define INLINE __attribute__((always_inline)) inline
#define XN_MAX 12                        /* x rows of the prefill tile */
#define NG_MAX 4                         /* packed groups of the decode tile */
#define FEW_ROWS 4                       /* below this many x rows: the decode tile per row */
#define X_TILE_ROWS_BYTES ((size_t)256 << 10) /* x rows of one pass over a row range (L2) */
#define CPUID7_ECX_AVX512VNNI (1u << 11) /* Intel SDM vol. 2A, CPUID leaf 7 sub-leaf 0 */

/* s + vpdpbusd(w (u8), the 4 int8 at p broadcast to the 16 lanes (s8)): the memory operand's
 * {1to16} form, written out because the compiler otherwise materializes every x broadcast of a
 * block up front and spills them to the stack. */
AVX512 static INLINE __m512i dpb(__m512i s, __m512i w, const int8_t *p) {
    __asm__("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(s) : "v"(w), "m"(*(const int32_t *)p));
    return s;
}

/* y[k * ldy + ys g + lane] for x rows k < XN and packed groups g < NG (at wg + g * gs), lanes
 * with m[g]'s bit set. */
AVX512 static INLINE void tile(float *y, int64_t ldy, const int8_t *xq, const float *xd,
                               const int32_t *xc, const uint8_t *wg, size_t gs, int64_t ys,
                               enum vl_dtype t, int64_t nb, const __mmask16 *m, const int NG,
                               const int XN) {
    const size_t gb = VL_QPACK_ROWS * vl__dtype_size(t);
    const int64_t xrow = nb * VL_QK;
    const __m512i lo = _mm512_set1_epi8(0x0f);
    __m512 acc[NG_MAX][XN_MAX];
#pragma GCC unroll 4
    for (int g = 0; g < NG; g++)
#pragma GCC unroll 12
        for (int k = 0; k < XN; k++)
            acc[g][k] = _mm512_setzero_ps();
    const int64_t pf = vl__qgemv_prefetch;
    for (int64_t b = 0; b < nb; b++) {
        const int8_t *xb = xq + b * VL_QK;
        __m512i s[NG_MAX][XN_MAX];
        if (XN == 1) { /* decode: the weights stream once; keep each group's misses in flight */
#pragma GCC unroll 4
            for (int g = 0; g < NG; g++) {
                const char *p = (const char *)(wg + g * gs + (size_t)b * gb) + pf;
#pragma GCC unroll 8
                for (size_t o = 0; o < gb; o += 64)
                    _mm_prefetch(p + o, _MM_HINT_T0);
            }
        }
#pragma GCC unroll 4
        for (int g = 0; g < NG; g++)
#pragma GCC unroll 12
            for (int k = 0; k < XN; k++)
                s[g][k] = _mm512_set1_epi32(xc[k * nb + b]);
        /* one x row (decode): a second sum chain per group — q8's odd chunks, q4's high nibbles
         * masked in place (16 h, so 16 times their sum) — added back at the end, exact int32 */
        const bool two = XN == 1;
        __m512i s2[NG_MAX];
#pragma GCC unroll 4
        for (int g = 0; g < NG; g++)
            s2[g] = _mm512_setzero_si512();
        if (t == VL_DTYPE_Q8_0) {
#pragma GCC unroll 8
            for (int e = 0; e < 8; e++)
#pragma GCC unroll 4
                for (int g = 0; g < NG; g++) {
                    const uint8_t *q = wg + g * gs + (size_t)b * gb + VL_QPACK_SCALE_BYTES;
                    const __m512i w = _mm512_loadu_si512((const void *)(q + e * VL_QPACK_CHUNK));
#pragma GCC unroll 12
                    for (int k = 0; k < XN; k++) {
                        if (two && (e & 1))
                            s2[g] = dpb(s2[g], w, xb + 4 * e);
                        else
                            s[g][k] = dpb(s[g][k], w, xb + k * xrow + 4 * e);
                    }
                }
        } else {
            const __m512i hi = _mm512_set1_epi8((char)0xf0);
#pragma GCC unroll 4
            for (int c = 0; c < 4; c++)
#pragma GCC unroll 4
                for (int g = 0; g < NG; g++) {
                    const uint8_t *q = wg + g * gs + (size_t)b * gb + VL_QPACK_SCALE_BYTES;
                    const __m512i v = _mm512_loadu_si512((const void *)(q + c * VL_QPACK_CHUNK));
                    const __m512i wl = _mm512_and_si512(v, lo);
                    const __m512i wh = two ? _mm512_and_si512(v, hi)
                                           : _mm512_and_si512(_mm512_srli_epi16(v, 4), lo);
#pragma GCC unroll 12
                    for (int k = 0; k < XN; k++) {
                        s[g][k] = dpb(s[g][k], wl, xb + k * xrow + 4 * c);
                        if (two)
                            s2[g] = dpb(s2[g], wh, xb + VL_QK / 2 + 4 * c);
                        else
                            s[g][k] = dpb(s[g][k], wh, xb + k * xrow + VL_QK / 2 + 4 * c);
                    }
                }
        }
        if (two) {
#pragma GCC unroll 4
            for (int g = 0; g < NG; g++)
                s[g][0] = _mm512_add_epi32(
                    s[g][0], t == VL_DTYPE_Q8_0 ? s2[g] : _mm512_srai_epi32(s2[g], 4));
        }
#pragma GCC unroll 4
        for (int g = 0; g < NG; g++) {
            const __m512 dw = _mm512_cvtph_ps(
                _mm256_loadu_si256((const void *)(wg + g * gs + (size_t)b * gb)));
#pragma GCC unroll 12
            for (int k = 0; k < XN; k++) {
                const __m512 d = _mm512_mul_ps(dw, _mm512_set1_ps(xd[k * nb + b]));
                acc[g][k] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s[g][k]), d, acc[g][k]);
            }
        }
    }
#pragma GCC unroll 4
    for (int g = 0; g < NG; g++)
#pragma GCC unroll 12
        for (int k = 0; k < XN; k++)
            _mm512_mask_storeu_ps(y + k * ldy + ys * g, m[g], acc[g][k]);
}

typedef void (*tile_fn)(float *y, int64_t ldy, const int8_t *xq, const float *xd,
                        const int32_t *xc, const uint8_t *wg, size_t gs, int64_t ys,
                        enum vl_dtype t, int64_t nb, const __mmask16 *m);
#define TILE_FN(NG, XN)                                                                          \
    AVX512 static void tile_##NG##x##XN(float *y, int64_t ldy, const int8_t *xq, const float *xd, \
                                        const int32_t *xc, const uint8_t *wg, size_t gs,          \
                                        int64_t ys, enum vl_dtype t, int64_t nb,                  \
                                        const __mmask16 *m) {                                     \
        tile(y, ldy, xq, xd, xc, wg, gs, ys, t, nb, m, NG, XN);                                  \
    }
TILE_FN(1, 12)
TILE_FN(1, 8)
TILE_FN(1, 4)
TILE_FN(1, 2)
TILE_FN(1, 1)
TILE_FN(4, 1)
TILE_FN(3, 1)
TILE_FN(2, 1)

/* The lanes of group g inside the rows [r0, r1). */
static __mmask16 group_mask(int64_t g, int64_t r0, int64_t r1) {
    int64_t a = r0 - g * VL_QPACK_ROWS, e = r1 - g * VL_QPACK_ROWS;
    a = a < 0 ? 0 : a;
    e = e > VL_QPACK_ROWS ? VL_QPACK_ROWS : e;
    return (__mmask16)(((1u << e) - 1u) & ~((1u << a) - 1u));
}

AVX512 static void gemm_avx512vnni(float *y, int64_t ldy, const int8_t *xq, const float *xd,
                                   const int32_t *xc, int64_t nx, const uint8_t *wp,
                                   enum vl_dtype t, int64_t nb, int64_t r0, int64_t r1) {
    const size_t gs = (size_t)nb * VL_QPACK_ROWS * vl__dtype_size(t);
    const int64_t xrow = nb * VL_QK, g0 = r0 / VL_QPACK_ROWS;
    const int64_t g1 = (r1 + VL_QPACK_ROWS - 1) / VL_QPACK_ROWS;
    if (r0 >= r1)
        return;
    if (nx < FEW_ROWS) { /* decode: four streams a pass, one x row at a time */
        /* the range's groups as NG_MAX quarters of q groups; pass j takes group j of each
         * quarter, so each of the tile's four streams runs on through its quarter (and prefetches
         * into its next group), instead of four 18 KB streams (3B q4, 2048 inputs) started cold
         * every tile: 3B q4 decode tiles 49 -> 54 GB/s (docs/performance.md) */
        const int64_t q = (g1 - g0) / NG_MAX;
        for (int64_t i = 0; i < nx; i++) {
            for (int64_t j = 0; j < q; j++) {
                __mmask16 m[NG_MAX];
                for (int k = 0; k < NG_MAX; k++)
                    m[k] = group_mask(g0 + j + k * q, r0, r1);
                tile_4x1(y + i * ldy + (g0 + j) * VL_QPACK_ROWS, ldy, xq + i * xrow, xd + i * nb,
                         xc + i * nb, wp + (size_t)(g0 + j) * gs, (size_t)q * gs,
                         q * VL_QPACK_ROWS, t, nb, m);
            }
            const int64_t g = g0 + q * NG_MAX;
            if (g < g1) { /* the last 1-3 groups together */
                static const tile_fn last[NG_MAX] = {NULL, tile_1x1, tile_2x1, tile_3x1};
                __mmask16 m[NG_MAX];
                for (int j = 0; j < g1 - g; j++)
                    m[j] = group_mask(g + j, r0, r1);
                last[g1 - g](y + i * ldy + g * VL_QPACK_ROWS, ldy, xq + i * xrow, xd + i * nb,
                             xc + i * nb, wp + (size_t)g * gs, gs, VL_QPACK_ROWS, t, nb, m);
            }
        }
        return;
    }
    static const tile_fn rest[4] = {tile_1x8, tile_1x4, tile_1x2, tile_1x1};
    static const int rest_rows[4] = {8, 4, 2, 1};
    int64_t tile_rows = (int64_t)(X_TILE_ROWS_BYTES / (size_t)xrow);
    tile_rows = tile_rows < XN_MAX ? XN_MAX : tile_rows - tile_rows % XN_MAX;
    for (int64_t i0 = 0; i0 < nx; i0 += tile_rows) {
        const int64_t i1 = nx - i0 < tile_rows ? nx : i0 + tile_rows;
        for (int64_t g = g0; g < g1; g++) {
            const __mmask16 m = group_mask(g, r0, r1);
            const uint8_t *wg = wp + (size_t)g * gs;
            float *yg = y + g * VL_QPACK_ROWS;
            int64_t i = i0;
            for (; i + XN_MAX <= i1; i += XN_MAX)
                tile_1x12(yg + i * ldy, ldy, xq + i * xrow, xd + i * nb, xc + i * nb, wg, gs,
                          VL_QPACK_ROWS, t, nb, &m);
            for (int k = 0; k < 4; k++)
                for (; i + rest_rows[k] <= i1; i += rest_rows[k])
                    rest[k](yg + i * ldy, ldy, xq + i * xrow, xd + i * nb, xc + i * nb, wg, gs,
                            VL_QPACK_ROWS, t, nb, &m);
        }
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
