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

/* One x row (gemv_r4): Q8_0 keeps the sign trick (no correction: zero); Q4_0 multiplies the
 * nibbles (u8) by x in pairs (|pair| <= 2 * 15 * 127, no saturation) and subtracts 8 * (the lane
 * sums of x), computed once per x block. */
AVX2 static inline __m256i xcorr_q8(__m256i x) {
    (void)x;
    return _mm256_setzero_si256();
}

AVX2 static inline __m256i lanes_q8(__m256i w, __m256i x, __m256i cx) {
    (void)cx;
    const __m256i p16 = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
    return _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
}

AVX2 static inline __m256i xcorr_q4(__m256i x) { /* -8 * (lane sums of x) */
    const __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(VL_Q4_OFFSET), x),
                                        _mm256_set1_epi16(1));
    return _mm256_sub_epi32(_mm256_setzero_si256(), s);
}

AVX2 static inline __m256i lanes_q4(__m256i nib, __m256i x, __m256i cx) {
    const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(nib, x), _mm256_set1_epi16(1));
    return _mm256_add_epi32(p, cx);
}

VL_QUANT_DOT_FNS(AVX2)

static const struct vl_qsimd qsimd_avx2 = {
    .name = "avx2", .quantize_act = vl__quantize_act_avx2, .gemm = gemm_x86};
#endif

const struct vl_qsimd *vl__qsimd_avx2(void) {
#ifdef VL_HAVE_X86
    if (vl__simd_avx2()) /* the same CPU check (AVX2 + FMA + F16C, OS-enabled) */
        return &qsimd_avx2;
#endif
    return NULL;
}
