/* Quantized weights, part 6: the activation quantizer on AVX2 and AVX-512 (the scalar twin is
 * vl__quantize_act in vl_quant.c), compiled with per-function target attributes and reached
 * through the integer kernel tables (vl_qsimd.quantize_act), never -march=native: the AVX-512
 * one is the avx512vnni table's, the AVX2 one the avx2 and avxvnni tables'.
 * Per block of 32: amax = max |x| (NaN ignored, as fmaxf), d = amax / 127, id = 1 / d (0 when
 * d is 0), q = x * id with NaN -> 0, clamped to [-127, 127] and rounded to nearest, ties to even
 * (cvtps2dq under the default MXCSR, as the twin's 1.5 * 2^23 trick): the same f32 operations in
 * the same order as the twin, so every table writes the same bytes. A last partial block is
 * zero-padded as in the twin. Pure functions; thread-safe. */
#include "vl_quant_x86.h"

#ifdef VL_HAVE_X86

#define AVX512Q __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))

/* The scalar steps both kernels share: d and 1 / d of a block's amax. */
static inline float act_id(float amax, float *d) {
    *d = amax / (float)VL_Q8_MAX;
    return *d > 0.0f ? 1.0f / *d : 0.0f;
}

/* The block's 32 values (a last partial block zero-padded into buf). */
static inline const float *act_block(float buf[VL_QK], const float *x, int64_t n, int64_t b) {
    if ((b + 1) * VL_QK <= n)
        return x + b * VL_QK;
    for (int j = 0; j < VL_QK; j++)
        buf[j] = b * VL_QK + j < n ? x[b * VL_QK + j] : 0.0f;
    return buf;
}

AVX2 static inline __m256i act_round8(__m256 v, __m256 id) {
    __m256 r = _mm256_mul_ps(v, id);
    r = _mm256_and_ps(r, _mm256_cmp_ps(r, r, _CMP_ORD_Q)); /* NaN -> 0 */
    r = _mm256_max_ps(r, _mm256_set1_ps(-(float)VL_Q8_MAX));
    r = _mm256_min_ps(r, _mm256_set1_ps((float)VL_Q8_MAX));
    return _mm256_cvtps_epi32(r);
}

AVX2 void vl__quantize_act_avx2(int8_t *q, float *d, const float *x, int64_t n) {
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    const int64_t nb = vl__q_blocks(n);
    for (int64_t b = 0; b < nb; b++) {
        float buf[VL_QK];
        const float *p = act_block(buf, x, n, b);
        __m256 v0 = _mm256_loadu_ps(p), v1 = _mm256_loadu_ps(p + 8);
        __m256 v2 = _mm256_loadu_ps(p + 16), v3 = _mm256_loadu_ps(p + 24);
        /* max(|v|, m): a NaN |v| yields m (the second operand), as fmaxf ignores NaN */
        __m256 m = _mm256_max_ps(_mm256_and_ps(v0, absmask), _mm256_setzero_ps());
        m = _mm256_max_ps(_mm256_and_ps(v1, absmask), m);
        m = _mm256_max_ps(_mm256_and_ps(v2, absmask), m);
        m = _mm256_max_ps(_mm256_and_ps(v3, absmask), m);
        __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        h = _mm_max_ps(h, _mm_movehl_ps(h, h));
        h = _mm_max_ss(h, _mm_movehdup_ps(h));
        const __m256 id = _mm256_set1_ps(act_id(_mm_cvtss_f32(h), d + b));
        __m256i a = _mm256_packs_epi32(act_round8(v0, id), act_round8(v1, id));
        __m256i c = _mm256_packs_epi32(act_round8(v2, id), act_round8(v3, id));
        /* packs work per 128-bit lane: dwords come out as 0,2,4,6 / 1,3,5,7 of the 4-element
         * groups; the permute puts elements 0..31 in order */
        __m256i s = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(a, c), order);
        _mm256_storeu_si256((__m256i *)(q + b * VL_QK), s);
    }
}

AVX512Q static inline __m128i act_round16(__m512 v, __m512 id) {
    __m512 r = _mm512_mul_ps(v, id);
    r = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(r, r, _CMP_ORD_Q), r); /* NaN -> 0 */
    r = _mm512_max_ps(r, _mm512_set1_ps(-(float)VL_Q8_MAX));
    r = _mm512_min_ps(r, _mm512_set1_ps((float)VL_Q8_MAX));
    return _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(r));
}

AVX512Q void vl__quantize_act_avx512(int8_t *q, float *d, const float *x, int64_t n) {
    const int64_t nb = vl__q_blocks(n);
    for (int64_t b = 0; b < nb; b++) {
        float buf[VL_QK];
        const float *p = act_block(buf, x, n, b);
        __m512 v0 = _mm512_loadu_ps(p), v1 = _mm512_loadu_ps(p + 16);
        __m512 m = _mm512_max_ps(_mm512_abs_ps(v0), _mm512_setzero_ps());
        m = _mm512_max_ps(_mm512_abs_ps(v1), m);
        __m256 m8 = _mm256_max_ps(_mm512_castps512_ps256(m),
                                  _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(m), 1)));
        __m128 h = _mm_max_ps(_mm256_castps256_ps128(m8), _mm256_extractf128_ps(m8, 1));
        h = _mm_max_ps(h, _mm_movehl_ps(h, h));
        h = _mm_max_ss(h, _mm_movehdup_ps(h));
        const __m512 id = _mm512_set1_ps(act_id(_mm_cvtss_f32(h), d + b));
        _mm_storeu_si128((__m128i *)(q + b * VL_QK), act_round16(v0, id));
        _mm_storeu_si128((__m128i *)(q + b * VL_QK + 16), act_round16(v1, id));
    }
}
#endif /* VL_HAVE_X86 */
