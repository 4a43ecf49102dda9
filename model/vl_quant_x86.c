/* Quantized weights, part 3: the AVX2 integer kernel (vpmaddubsw / vpmaddwd), compiled with a
 * per-function target attribute and picked at run time (vl__qsimd), never with -march=native.
 * Per block of 32: |w| (u8) times sign(x, w) (s8) in pairs (vpmaddubsw: |w|, |x| <= 128 and
 * 127, so no pair saturates), pairs summed to 8 int32 lanes (vpmaddwd with ones), converted to
 * f32 and accumulated with d_w * d_x by FMA: exactly the scalar twin's arithmetic (vl_quant.c),
 * so both tables give bit-identical outputs. Four x rows share each weight block load.
 * The VNNI tables (vl_quant_avxvnni.c, vl_quant_avx512.c) compute the same lane sums with
 * vpdpbusd and the same f32 steps, so they are bit-identical to this one.
 * Pure functions; thread-safe. */
#include "vl_quant_x86.h"

#ifdef VL_HAVE_X86
#define X_ROWS 4 /* x rows per weight-block load */

/* acc += cvt(lane sums of w . x) * (dw * dx) */
AVX2 static inline __m256 block_fma(__m256 acc, __m256i aw, __m256i w, const int8_t *xb,
                                    __m256 dw, const float *dx) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i x = _mm256_loadu_si256((const __m256i *)xb);
    __m256i p16 = _mm256_maddubs_epi16(aw, _mm256_sign_epi8(x, w));
    __m256i p32 = _mm256_madd_epi16(p16, ones);
    __m256 d = _mm256_mul_ps(dw, _mm256_broadcast_ss(dx));
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(p32), d, acc);
}

VL_QUANT_DOT_FNS(AVX2)

AVX2 static void gemm_avx2(float *y, int64_t ldy, const int8_t *xq, const float *xd, int64_t nx,
                           const uint8_t *w, enum vl_dtype t, int64_t nb, int64_t r0, int64_t r1) {
    const size_t bs = vl__dtype_size(t), rb = (size_t)nb * bs;
    const int64_t xrow = nb * VL_QK;
    int64_t tile = (int64_t)(X_TILE_BYTES / (size_t)xrow);
    tile = tile < X_ROWS ? X_ROWS : tile - tile % X_ROWS;
    for (int64_t i0 = 0; i0 < nx; i0 += tile) {
        int64_t i1 = nx - i0 < tile ? nx : i0 + tile;
        for (int64_t r = r0; r < r1; r++) {
            const uint8_t *wr = w + (size_t)r * rb;
            int64_t i = i0;
            for (; i + X_ROWS <= i1; i += X_ROWS)
                dot_x4(y + i * ldy + r, ldy, xq + i * xrow, xd + i * nb, wr, t, bs, nb);
            for (; i < i1; i++)
                y[i * ldy + r] = dot_x1(xq + i * xrow, xd + i * nb, wr, t, bs, nb);
        }
    }
}

static const struct vl_qsimd qsimd_avx2 = {.name = "avx2", .gemm = gemm_avx2};
#endif

const struct vl_qsimd *vl__qsimd_avx2(void) {
#ifdef VL_HAVE_X86
    if (vl__simd_avx2()) /* the same CPU check (AVX2 + FMA + F16C, OS-enabled) */
        return &qsimd_avx2;
#endif
    return NULL;
}
