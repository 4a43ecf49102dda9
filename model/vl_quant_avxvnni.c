/* Quantized weights, part 4: the AVX-VNNI integer kernel (VEX vpdpbusd on ymm: Alder Lake and
 * later Intel cores, Zen 5) on the packed layout, compiled with a per-function target attribute
 * and picked at run time (vl__qsimd), never with -march=native. The AVX2 kernel's structure
 * (VL_QUANT_DOT_FNS) with one vpdpbusd per 4-element group of 8 rows: the packed w + 128 (Q8_0)
 * or nibbles w + 8 (Q4_0) as the unsigned operand, x (broadcast) as the signed one, started from
 * the x block's correction -128 * sum(x) resp. -8 * sum(x): the same exact int32 block sums (the
 * products fit int16, the sums int32), then the same f32 steps, so the table is bit-identical to
 * the AVX2 and scalar ones. Pure functions; thread-safe. */
#include "vl_quant_x86.h"

#ifdef VL_HAVE_X86
#include <cpuid.h>

#define VNNI __attribute__((target("avx2,fma,f16c,avxvnni")))
#define CPUID7_1_EAX_AVXVNNI (1u << 4) /* Intel SDM vol. 2A, CPUID leaf 7 sub-leaf 1 */

VNNI static inline __m256i init_q8(int32_t c) {
    return _mm256_set1_epi32(c);
}

VNNI static inline __m256i init_q4(int32_t c) {
    return _mm256_set1_epi32(c);
}

VNNI static inline __m256i dot_q8(__m256i s, __m256i wu, __m256i x) {
    return _mm256_dpbusd_avx_epi32(s, wu, x);
}

VNNI static inline __m256i dot_q4(__m256i s, __m256i nib, __m256i x) {
    return _mm256_dpbusd_avx_epi32(s, nib, x);
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
