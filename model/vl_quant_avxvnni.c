/* Quantized weights, part 4: the AVX-VNNI integer kernel (VEX vpdpbusd on ymm: Alder Lake and
 * later Intel cores, Zen 5), compiled with a per-function target attribute and picked at run time
 * (vl__qsimd), never with -march=native. The AVX2 kernel's structure (vl_quant_x86.c) with its
 * two integer steps (vpmaddubsw, vpmaddwd with ones) replaced by one vpdpbusd into zero: the
 * same 8 int32 lanes (lane l = elements 4l..4l+3 of |w| . sign(x, w); |w| <= 128, |x| <= 127,
 * so no lane can overflow), then the same f32 steps, so the table is bit-identical to the AVX2
 * and scalar ones. Pure functions; thread-safe. */
#include "vl_quant_x86.h"

#ifdef VL_HAVE_X86
#include <cpuid.h>

#define VNNI __attribute__((target("avx2,fma,f16c,avxvnni")))
#define CPUID7_1_EAX_AVXVNNI (1u << 4) /* Intel SDM vol. 2A, CPUID leaf 7 sub-leaf 1 */

/* acc += cvt(lane sums of w . x) * (dw * dx) */
VNNI static inline __m256 block_fma(__m256 acc, __m256i aw, __m256i w, const int8_t *xb,
                                    __m256 dw, const float *dx) {
    __m256i x = _mm256_loadu_si256((const __m256i *)xb);
    __m256i p32 = _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), aw, _mm256_sign_epi8(x, w));
    __m256 d = _mm256_mul_ps(dw, _mm256_broadcast_ss(dx));
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(p32), d, acc);
}

/* One x row (gemv_r4): vpdpbusd of w ^ 0x80 = w + 128 (u8) by x from -128 * (lane sums of x)
 * (Q8_0), of the nibbles (u8) by x from -8 * (lane sums of x) (Q4_0); the corrections once per
 * x block. Exact: the products fit int16, the sums int32. */
VNNI static inline __m256i xcorr_q8(__m256i x) {
    const __m256i z = _mm256_setzero_si256();
    return _mm256_sub_epi32(z, _mm256_dpbusd_avx_epi32(z, _mm256_set1_epi8((char)0x80), x));
}

VNNI static inline __m256i lanes_q8(__m256i w, __m256i x, __m256i cx) {
    return _mm256_dpbusd_avx_epi32(cx, _mm256_xor_si256(w, _mm256_set1_epi8((char)0x80)), x);
}

VNNI static inline __m256i xcorr_q4(__m256i x) {
    const __m256i z = _mm256_setzero_si256();
    return _mm256_sub_epi32(z, _mm256_dpbusd_avx_epi32(z, _mm256_set1_epi8(VL_Q4_OFFSET), x));
}

VNNI static inline __m256i lanes_q4(__m256i nib, __m256i x, __m256i cx) {
    return _mm256_dpbusd_avx_epi32(cx, nib, x);
}

VL_QUANT_DOT_FNS(VNNI)

static const struct vl_qsimd qsimd_avxvnni = {
    .name = "avxvnni", .quantize_act = vl__quantize_act_avx2, .gemm = gemm_x86};

static bool cpu_has_avxvnni(void) {
    unsigned a, b, c, d;
    if (!vl__qsimd_avx2() || __get_cpuid_max(0, NULL) < 7) /* AVX2 + FMA + F16C, YMM state */
        return false;
    __cpuid_count(7, 0, a, b, c, d);
    if (a < 1) /* highest sub-leaf of leaf 7 */
        return false;
    __cpuid_count(7, 1, a, b, c, d);
    return (a & CPUID7_1_EAX_AVXVNNI) != 0;
}
#endif /* VL_HAVE_X86 */

const struct vl_qsimd *vl__qsimd_avxvnni(void) {
#ifdef VL_HAVE_X86
    if (cpu_has_avxvnni())
        return &qsimd_avxvnni;
#endif
    return NULL;
}
