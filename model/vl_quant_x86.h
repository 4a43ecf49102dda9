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
/* x rows per tile: the quantized rows one pass over a weight row meets stay in L2 */
#define X_TILE_BYTES ((size_t)128 << 10)

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

#endif /* VL_HAVE_X86 */

#endif
