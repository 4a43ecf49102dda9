/* Quantized weights, part 3: the AVX2 integer kernel (vpmaddubsw / vpmaddwd) on the packed
 * layout (vl_quant_impl.h), compiled with a per-function target attribute and picked at run time
 * (vl__qsimd), never with -march=native. A ymm is one block sum of 8 weight rows (half a packed
 * group) for one x row, four x rows per weight load: Q8_0 takes the packed w + 128 back to w
 * (xor 0x80) and multiplies |w| (u8) by sign(x, w) in pairs (|w| <= 128, |x| <= 127: no pair
 * saturates), so it needs no correction; Q4_0 multiplies the nibbles w + 8 (u8) by x in pairs
 * (<= 2 * 15 * 127) and starts from the x block's correction -8 * sum(x). Pairs to int32 with
 * vpmaddwd by ones. The same exact int32 block sums as the scalar twin, then its f32 steps
 * (VL_QUANT_DOT_FNS), so the tables give bit-identical outputs. Pure functions; thread-safe. */
#include "vl_quant_x86.h"

#ifdef VL_HAVE_X86

AVX2 static inline __m256i init_q8(int32_t c) {
    (void)c;
    return _mm256_setzero_si256();
}

AVX2 static inline __m256i init_q4(int32_t c) {
    return _mm256_set1_epi32(c);
}

AVX2 static inline __m256i dot_q8(__m256i s, __m256i wu, __m256i x) {
    const __m256i w = _mm256_xor_si256(wu, _mm256_set1_epi8((char)0x80));
    const __m256i p16 = _mm256_maddubs_epi16(_mm256_abs_epi8(w), _mm256_sign_epi8(x, w));
    return _mm256_add_epi32(s, _mm256_madd_epi16(p16, _mm256_set1_epi16(1)));
}

AVX2 static inline __m256i dot_q4(__m256i s, __m256i nib, __m256i x) {
    const __m256i p16 = _mm256_maddubs_epi16(nib, x);
    return _mm256_add_epi32(s, _mm256_madd_epi16(p16, _mm256_set1_epi16(1)));
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
