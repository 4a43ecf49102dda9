/* x86 AVX-512 kernels (AVX512F/BW/VL), compiled with per-function target attributes and picked
 * at run time by vl__simd() when the CPU and OS support them. They cover what moves the most
 * bytes: BF16/F16 widening (the prefill and vision weight panels) and the streaming BF16 GEMV
 * (decode); the table takes every other entry from the AVX2 table. Each kernel has the same
 * scalar twin in vl_ops.c as its AVX2 version, and tests/kernels runs every table the CPU has.
 *
 * AVX512_BF16 (vdpbf16ps) is deliberately not used: it multiplies BF16 by BF16, so the f32
 * activations would have to be rounded to BF16 (errors ~1e-3, far from the reference's f32
 * round-off), and splitting x exactly into three BF16 parts costs three dot products per weight,
 * more than the two integer ops + FMA per weight the f32 path needs. Pure and thread-safe. */
#include "vl_impl.h"

#include <pthread.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define VL_HAVE_X86 1
#include <cpuid.h>
#include <immintrin.h>
#endif

#ifdef VL_HAVE_X86
#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))

#define F32_LANES 16   /* floats per 512-bit register */
#define BF16_BLOCK 32  /* bf16 per 512-bit load */

/* ---- widening ---------------------------------------------------------------------------- */

AVX512 static void widen_bf16_avx512(float *dst, const uint16_t *src, int64_t n) {
    int64_t i = 0;
    for (; i + BF16_BLOCK <= n; i += BF16_BLOCK) {
        __m512i lo = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(src + i)));
        __m512i hi = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(src + i + 16)));
        _mm512_storeu_ps(dst + i, _mm512_castsi512_ps(_mm512_slli_epi32(lo, 16)));
        _mm512_storeu_ps(dst + i + F32_LANES, _mm512_castsi512_ps(_mm512_slli_epi32(hi, 16)));
    }
    for (; i < n; i++)
        dst[i] = vl__bf16_to_f32(src[i]);
}

AVX512 static void widen_f16_avx512(float *dst, const uint16_t *src, int64_t n) {
    int64_t i = 0;
    for (; i + F32_LANES <= n; i += F32_LANES)
        _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(src + i))));
    for (; i < n; i++)
        dst[i] = vl__f16_to_f32(src[i]);
}

/* ---- GEMV: y[r] = W[r, :] . x ------------------------------------------------------------ */

/* xp: x in the lane order that pairs with one 512-bit load of 32 weights split as
 * even = bits << 16 (elements 0, 2, .., 30) and odd = bits & 0xffff0000 (1, 3, .., 31):
 * per block of 32, [x0 x2 .. x30][x1 x3 .. x31]; the tail (in % 32) is copied as is. */
AVX512 static void gemv_bf16_prep_avx512(float *xp, const float *x, int64_t in) {
    const __m512i even_idx = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6,
                                              4, 2, 0);
    const __m512i odd_idx = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7,
                                             5, 3, 1);
    int64_t k = 0;
    for (; k + BF16_BLOCK <= in; k += BF16_BLOCK) {
        __m512 a = _mm512_loadu_ps(x + k), b = _mm512_loadu_ps(x + k + F32_LANES);
        _mm512_storeu_ps(xp + k, _mm512_permutex2var_ps(a, even_idx, b));
        _mm512_storeu_ps(xp + k + F32_LANES, _mm512_permutex2var_ps(a, odd_idx, b));
    }
    for (; k < in; k++)
        xp[k] = x[k];
}

/* w * x for one block of 32 weights: acc_e += even weights . xp[0..16), acc_o += odd . [16..32) */
AVX512 static inline void bf16_block_fma(const uint16_t *w, const float *xp, __m512 *acc_e,
                                         __m512 *acc_o) {
    const __m512i hi_mask = _mm512_set1_epi32((int)0xffff0000u);
    __m512i v = _mm512_loadu_si512((const void *)w);
    *acc_e = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(v, 16)), _mm512_loadu_ps(xp),
                             *acc_e);
    *acc_o = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(v, hi_mask)),
                             _mm512_loadu_ps(xp + F32_LANES), *acc_o);
}

/* One row at a time, as the AVX2 kernel: the weights are one sequential stream. Per row it
 * computes exactly what gemv_bf16_x4_avx512 computes for each of its rows (one even and one odd
 * accumulator, blocks in order, the same reduction and tail): batch invariance rests on it. */
AVX512 static void gemv_bf16_avx512(float *y, const float *xp, const uint16_t *w, int64_t in,
                                    int64_t r0, int64_t r1) {
    const int64_t kv = in - in % BF16_BLOCK;
    const int64_t pf = vl__gemv_prefetch; /* read once: the loop keeps it in a register */
    const int64_t pa = vl__gemv_page_ahead;
    for (int64_t r = r0; r < r1; r++) {
        const uint16_t *row = w + r * in;
        __m512 a = _mm512_setzero_ps(), b = _mm512_setzero_ps();
        int64_t k = 0;
        for (; k + 2 * BF16_BLOCK <= kv; k += 2 * BF16_BLOCK) {
            /* 128 bytes per step: both lines */
            _mm_prefetch((const char *)(row + k + pf), _MM_HINT_T0);
            _mm_prefetch((const char *)(row + k + BF16_BLOCK + pf), _MM_HINT_T0);
            if ((k & (VL_GEMV_PAGE_ELEMS - 1)) == 0)
                _mm_prefetch((const char *)(row + k + pa), _MM_HINT_T2);
            bf16_block_fma(row + k, xp + k, &a, &b);
            bf16_block_fma(row + k + BF16_BLOCK, xp + k + BF16_BLOCK, &a, &b);
        }
        if (k < kv)
            bf16_block_fma(row + k, xp + k, &a, &b);
        y[r] = vl__gemv_bf16_tail(_mm512_reduce_add_ps(_mm512_add_ps(a, b)), xp, row, in, kv);
    }
}

/* Four prepared input rows (xp + j * in) per pass over a weight row: y[j * ldy + r]. */
AVX512 static void gemv_bf16_x4_avx512(float *y, int64_t ldy, const float *xp, const uint16_t *w,
                                       int64_t in, int64_t r0, int64_t r1) {
    const __m512i hi_mask = _mm512_set1_epi32((int)0xffff0000u);
    const int64_t kv = in - in % BF16_BLOCK;
    const int64_t pf = vl__gemv_prefetch; /* read once: the loop keeps it in a register */
    const int64_t pa = vl__gemv_page_ahead;
    const float *x0 = xp, *x1 = xp + in, *x2 = xp + 2 * in, *x3 = xp + 3 * in;
    for (int64_t r = r0; r < r1; r++) {
        const uint16_t *row = w + r * in;
        __m512 a0 = _mm512_setzero_ps(), b0 = _mm512_setzero_ps();
        __m512 a1 = _mm512_setzero_ps(), b1 = _mm512_setzero_ps();
        __m512 a2 = _mm512_setzero_ps(), b2 = _mm512_setzero_ps();
        __m512 a3 = _mm512_setzero_ps(), b3 = _mm512_setzero_ps();
        for (int64_t k = 0; k < kv; k += BF16_BLOCK) {
            _mm_prefetch((const char *)(row + k + pf), _MM_HINT_T0);
            if ((k & (VL_GEMV_PAGE_ELEMS - 1)) == 0)
                _mm_prefetch((const char *)(row + k + pa), _MM_HINT_T2);
            __m512i v = _mm512_loadu_si512((const void *)(row + k));
            __m512 we = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
            __m512 wo = _mm512_castsi512_ps(_mm512_and_si512(v, hi_mask));
            a0 = _mm512_fmadd_ps(we, _mm512_loadu_ps(x0 + k), a0);
            b0 = _mm512_fmadd_ps(wo, _mm512_loadu_ps(x0 + k + F32_LANES), b0);
            a1 = _mm512_fmadd_ps(we, _mm512_loadu_ps(x1 + k), a1);
            b1 = _mm512_fmadd_ps(wo, _mm512_loadu_ps(x1 + k + F32_LANES), b1);
            a2 = _mm512_fmadd_ps(we, _mm512_loadu_ps(x2 + k), a2);
            b2 = _mm512_fmadd_ps(wo, _mm512_loadu_ps(x2 + k + F32_LANES), b2);
            a3 = _mm512_fmadd_ps(we, _mm512_loadu_ps(x3 + k), a3);
            b3 = _mm512_fmadd_ps(wo, _mm512_loadu_ps(x3 + k + F32_LANES), b3);
        }
        const float sums[VL_GEMV_X_ROWS] = {_mm512_reduce_add_ps(_mm512_add_ps(a0, b0)),
                                            _mm512_reduce_add_ps(_mm512_add_ps(a1, b1)),
                                            _mm512_reduce_add_ps(_mm512_add_ps(a2, b2)),
                                            _mm512_reduce_add_ps(_mm512_add_ps(a3, b3))};
        vl__gemv_bf16_x4_tail(y, ldy, r, sums, xp, row, in, kv);
    }
}

/* ---- detection --------------------------------------------------------------------------- */

/* CPUID leaf 7 EBX (Intel SDM vol. 2A) and the XCR0 state the OS must save: SSE, AVX, opmask,
 * the upper halves of ZMM0-15 and ZMM16-31. */
#define CPUID7_EBX_AVX512F (1u << 16)
#define CPUID7_EBX_AVX512DQ (1u << 17)
#define CPUID7_EBX_AVX512CD (1u << 28)
#define CPUID7_EBX_AVX512BW (1u << 30)
#define CPUID7_EBX_AVX512VL (1u << 31)
#define CPUID1_ECX_OSXSAVE (1u << 27)
#define XCR0_AVX512_STATE 0xe6u

/* AVX512F/BW/VL (our kernels), or with also_dq_cd the SkylakeX set (F, CD, BW, DQ, VL). */
static bool cpu_has_avx512(bool also_dq_cd) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & CPUID1_ECX_OSXSAVE))
        return false;
    unsigned xlo, xhi;
    __asm__ volatile("xgetbv" : "=a"(xlo), "=d"(xhi) : "c"(0));
    (void)xhi;
    if ((xlo & XCR0_AVX512_STATE) != XCR0_AVX512_STATE || __get_cpuid_max(0, NULL) < 7)
        return false;
    __cpuid_count(7, 0, a, b, c, d);
    unsigned need = CPUID7_EBX_AVX512F | CPUID7_EBX_AVX512BW | CPUID7_EBX_AVX512VL;
    if (also_dq_cd)
        need |= CPUID7_EBX_AVX512DQ | CPUID7_EBX_AVX512CD;
    return (b & need) == need;
}

static struct vl_simd simd_avx512; /* .name set once the CPU has passed the check */
static pthread_once_t avx512_once = PTHREAD_ONCE_INIT;

static void avx512_init(void) {
    const struct vl_simd *base = vl__simd_avx2(); /* AVX-512 CPUs have AVX2; checked anyway */
    if (!base || !cpu_has_avx512(false))
        return;
    simd_avx512 = *base;
    simd_avx512.name = "avx512";
    simd_avx512.widen_bf16 = widen_bf16_avx512;
    simd_avx512.widen_f16 = widen_f16_avx512;
    simd_avx512.gemv_bf16_prep = gemv_bf16_prep_avx512;
    simd_avx512.gemv_bf16 = gemv_bf16_avx512;
    simd_avx512.gemv_bf16_x4 = gemv_bf16_x4_avx512;
    simd_avx512.gemv_bf16_row_invariant = true;
}
#endif /* VL_HAVE_X86 */

const struct vl_simd *vl__simd_avx512(void) {
#ifdef VL_HAVE_X86
    pthread_once(&avx512_once, avx512_init);
    if (simd_avx512.name)
        return &simd_avx512;
#endif
    return NULL;
}

enum vl_cpu_level vl__cpu_level(void) {
#ifdef VL_HAVE_X86
    if (vl__simd_avx2() && cpu_has_avx512(true))
        return VL_CPU_AVX512;
#endif
    return vl__simd_avx2() ? VL_CPU_AVX2 : VL_CPU_BASELINE;
}
