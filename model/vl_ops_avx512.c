/* x86 AVX-512 kernels (AVX512F/BW/VL), compiled with per-function target attributes and picked
 * at run time by vl__simd() when the CPU and OS support them. They cover what moves the most
 * bytes: BF16/F16 widening (the prefill and vision weight panels), the streaming BF16 GEMV
 * (decode) and the decode attention's p v over the V cache (bit-identical to the AVX2 kernel);
 * the table takes every other entry from the AVX2 table. Each kernel has the same
 * scalar twin in vl_ops.c as its AVX2 version, and tests/kernels runs every table the CPU has.
 *
 * AVX512_BF16 (vdpbf16ps) is deliberately not used: it multiplies BF16 by BF16, so the f32
 * activations would have to be rounded to BF16 (errors ~1e-3, far from the reference's f32
 * round-off), and splitting x exactly into three BF16 parts costs three dot products per weight,
 * more than the two integer ops + FMA per weight the f32 path needs. Pure and thread-safe. */
#include "vl_impl.h"

#include <pthread.h>
#include <string.h>

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

/* One accumulator per (weight row, x row) pair, fed the even and then the odd half of each
 * block of 32 weights in order: acc += we . xp[k..k+16); acc += wo . xp[k+16..k+32). Every
 * AVX-512 BF16 GEMV (one, four and eight x rows) computes each row exactly so, then
 * vl__gemv_bf16_tail(reduce(acc)) — batch invariance rests on it. One chain per pair leaves
 * the registers for many pairs: the 8-row kernel keeps 2 weight rows x 8 x rows = 16 chains,
 * two FMAs per x load, which the two-chains-per-pair form (32 registers) could not. */
#define BF16_EVEN(v) _mm512_castsi512_ps(_mm512_slli_epi32((v), 16))
#define BF16_ODD(v, m) _mm512_castsi512_ps(_mm512_and_si512((v), (m)))
#define FMA2(acc, we, wo, x) \
    acc = _mm512_fmadd_ps(wo, _mm512_loadu_ps((x) + F32_LANES), _mm512_fmadd_ps(we, _mm512_loadu_ps(x), acc))

/* The end of a row: the shared scalar tail, called only when there is one (most rows have
 * none, and the call costs as much as the reduction at in = 2048). */
static inline float row_end(float s, const float *xp, const uint16_t *row, int64_t in, int64_t kv) {
    return kv == in ? s : vl__gemv_bf16_tail(s, xp, row, in, kv);
}

/* Four weight rows at a time (four independent chains hide the FMA latency), then one. */
AVX512 static void gemv_bf16_avx512(float *y, const float *xp, const uint16_t *w, int64_t in,
                                    int64_t r0, int64_t r1) {
    const __m512i hm = _mm512_set1_epi32((int)0xffff0000u);
    const int64_t kv = in - in % BF16_BLOCK;
    const int64_t pf = vl__gemv_prefetch; /* read once: the loop keeps it in a register */
    const int64_t pa = vl__gemv_page_ahead;
    int64_t r = r0;
    for (; r + 4 <= r1; r += 4) {
        const uint16_t *w0 = w + r * in, *w1 = w0 + in, *w2 = w1 + in, *w3 = w2 + in;
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
        __m512 a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
        for (int64_t k = 0; k < kv; k += BF16_BLOCK) {
            _mm_prefetch((const char *)(w0 + k + pf), _MM_HINT_T0);
            _mm_prefetch((const char *)(w1 + k + pf), _MM_HINT_T0);
            _mm_prefetch((const char *)(w2 + k + pf), _MM_HINT_T0);
            _mm_prefetch((const char *)(w3 + k + pf), _MM_HINT_T0);
            if ((k & (VL_GEMV_PAGE_ELEMS - 1)) == 0)
                _mm_prefetch((const char *)(w3 + k + pa), _MM_HINT_T2);
            __m512i v0 = _mm512_loadu_si512((const void *)(w0 + k));
            __m512i v1 = _mm512_loadu_si512((const void *)(w1 + k));
            __m512i v2 = _mm512_loadu_si512((const void *)(w2 + k));
            __m512i v3 = _mm512_loadu_si512((const void *)(w3 + k));
            FMA2(a0, BF16_EVEN(v0), BF16_ODD(v0, hm), xp + k);
            FMA2(a1, BF16_EVEN(v1), BF16_ODD(v1, hm), xp + k);
            FMA2(a2, BF16_EVEN(v2), BF16_ODD(v2, hm), xp + k);
            FMA2(a3, BF16_EVEN(v3), BF16_ODD(v3, hm), xp + k);
        }
        y[r] = row_end(_mm512_reduce_add_ps(a0), xp, w0, in, kv);
        y[r + 1] = row_end(_mm512_reduce_add_ps(a1), xp, w1, in, kv);
        y[r + 2] = row_end(_mm512_reduce_add_ps(a2), xp, w2, in, kv);
        y[r + 3] = row_end(_mm512_reduce_add_ps(a3), xp, w3, in, kv);
    }
    for (; r < r1; r++) {
        const uint16_t *row = w + r * in;
        __m512 a = _mm512_setzero_ps();
        for (int64_t k = 0; k < kv; k += BF16_BLOCK) {
            __m512i v = _mm512_loadu_si512((const void *)(row + k));
            FMA2(a, BF16_EVEN(v), BF16_ODD(v, hm), xp + k);
        }
        y[r] = row_end(_mm512_reduce_add_ps(a), xp, row, in, kv);
    }
}

/* One load feeds two FMAs: without this GCC folds the load into both FMAs (two loads). */
#define KEEP_IN_REG(v) __asm__("" : "+v"(v))

/* NX prepared x rows (xp + j * in) against two weight rows at a time (2 * NX chains), then an
 * odd last weight row: y[j * ldy + r]. NX = 4 or 8, unrolled by the compiler. */
#define GEMV_XN_BODY(NX)                                                                         \
    const __m512i hm = _mm512_set1_epi32((int)0xffff0000u);                                   \
    const int64_t kv = in - in % BF16_BLOCK;                                                    \
    const int64_t pf = vl__gemv_prefetch;                                                       \
    int64_t r = r0;                                                                             \
    for (; r + 2 <= r1; r += 2) {                                                               \
        const uint16_t *w0 = w + r * in, *w1 = w0 + in;                                         \
        __m512 a[NX], b[NX];                                                                    \
        for (int j = 0; j < NX; j++)                                                            \
            a[j] = b[j] = _mm512_setzero_ps();                                                  \
        for (int64_t k = 0; k < kv; k += BF16_BLOCK) {                                          \
            _mm_prefetch((const char *)(w0 + k + pf), _MM_HINT_T0);                             \
            _mm_prefetch((const char *)(w1 + k + pf), _MM_HINT_T0);                             \
            __m512i v0 = _mm512_loadu_si512((const void *)(w0 + k));                            \
            __m512i v1 = _mm512_loadu_si512((const void *)(w1 + k));                            \
            __m512 e0 = BF16_EVEN(v0), o0 = BF16_ODD(v0, hm);                                   \
            __m512 e1 = BF16_EVEN(v1), o1 = BF16_ODD(v1, hm);                                   \
            for (int j = 0; j < NX; j++) {                                                      \
                __m512 xe = _mm512_loadu_ps(xp + j * in + k);                                   \
                KEEP_IN_REG(xe);                                                                \
                a[j] = _mm512_fmadd_ps(e0, xe, a[j]);                                           \
                b[j] = _mm512_fmadd_ps(e1, xe, b[j]);                                           \
            }                                                                                   \
            for (int j = 0; j < NX; j++) {                                                      \
                __m512 xo = _mm512_loadu_ps(xp + j * in + k + F32_LANES);                       \
                KEEP_IN_REG(xo);                                                                \
                a[j] = _mm512_fmadd_ps(o0, xo, a[j]);                                           \
                b[j] = _mm512_fmadd_ps(o1, xo, b[j]);                                           \
            }                                                                                   \
        }                                                                                       \
        for (int j = 0; j < NX; j++) {                                                          \
            y[j * ldy + r] = row_end(_mm512_reduce_add_ps(a[j]), xp + j * in, w0, in, kv); \
            y[j * ldy + r + 1] =                                                                \
                row_end(_mm512_reduce_add_ps(b[j]), xp + j * in, w1, in, kv);       \
        }                                                                                       \
    }                                                                                           \
    for (; r < r1; r++) {                                                                       \
        const uint16_t *row = w + r * in;                                                       \
        __m512 a[NX];                                                                           \
        for (int j = 0; j < NX; j++)                                                            \
            a[j] = _mm512_setzero_ps();                                                         \
        for (int64_t k = 0; k < kv; k += BF16_BLOCK) {                                          \
            __m512i v = _mm512_loadu_si512((const void *)(row + k));                            \
            __m512 e = BF16_EVEN(v), o = BF16_ODD(v, hm);                                       \
            for (int j = 0; j < NX; j++)                                                        \
                FMA2(a[j], e, o, xp + j * in + k);                                              \
        }                                                                                       \
        for (int j = 0; j < NX; j++)                                                            \
            y[j * ldy + r] = row_end(_mm512_reduce_add_ps(a[j]), xp + j * in, row, in, kv); \
    }

/* The parked accumulators of weight rows [g, g_end) to y. A group's park rows run weight row by
 * weight row (park[item][h * nx + j] of weight row g + item * H + h), so weight row r's chain
 * for x row j is park row (r - g) * nx + j. */
AVX512 static void park_rows_out(float *y, int64_t ldy, const float *xp, const uint16_t *w,
                                 int64_t in, int64_t kv, const float *park, int64_t g,
                                 int64_t g_end, int nx) {
    for (int64_t r = g; r < g_end; r++)
        for (int j = 0; j < nx; j++) {
            const float *acc = park + ((r - g) * nx + j) * F32_LANES;
            float s = kv ? _mm512_reduce_add_ps(_mm512_load_ps(acc)) : 0.0f;
            y[j * ldy + r] = row_end(s, xp + j * in, w + r * in, in, kv);
        }
}

/* The 16 named accumulators of a multi-row kernel to and from their parking rows pk[0..15]
 * (named, not an array, so GCC keeps them in registers inside the tile). */
#define PARK_LOAD16(pk, v0, v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, v11, v12, v13, v14, v15) \
    (v0 = _mm512_load_ps(pk[0]), v1 = _mm512_load_ps(pk[1]), v2 = _mm512_load_ps(pk[2]),      \
     v3 = _mm512_load_ps(pk[3]), v4 = _mm512_load_ps(pk[4]), v5 = _mm512_load_ps(pk[5]),      \
     v6 = _mm512_load_ps(pk[6]), v7 = _mm512_load_ps(pk[7]), v8 = _mm512_load_ps(pk[8]),      \
     v9 = _mm512_load_ps(pk[9]), v10 = _mm512_load_ps(pk[10]), v11 = _mm512_load_ps(pk[11]),  \
     v12 = _mm512_load_ps(pk[12]), v13 = _mm512_load_ps(pk[13]), v14 = _mm512_load_ps(pk[14]), \
     v15 = _mm512_load_ps(pk[15]))
#define PARK_STORE16(pk, v0, v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, v11, v12, v13, v14, v15) \
    (_mm512_store_ps(pk[0], v0), _mm512_store_ps(pk[1], v1), _mm512_store_ps(pk[2], v2),       \
     _mm512_store_ps(pk[3], v3), _mm512_store_ps(pk[4], v4), _mm512_store_ps(pk[5], v5),       \
     _mm512_store_ps(pk[6], v6), _mm512_store_ps(pk[7], v7), _mm512_store_ps(pk[8], v8),       \
     _mm512_store_ps(pk[9], v9), _mm512_store_ps(pk[10], v10), _mm512_store_ps(pk[11], v11),   \
     _mm512_store_ps(pk[12], v12), _mm512_store_ps(pk[13], v13), _mm512_store_ps(pk[14], v14), \
     _mm512_store_ps(pk[15], v15))

/* Four x rows against four weight rows at a time (16 chains, four FMAs per x load), k-tiled
 * like the eight-row kernel below (which see): x of four rows is 32 KB at in = 2048, 172 KB at
 * 11008. The last 1-3 weight rows go through GEMV_XN_BODY's loops. */
#define X4_TILE_BLOCKS 8
#define X4_GROUP_QUADS 8
#define X4_CHAINS      (4 * VL_GEMV_X_ROWS)

#define X4_STEP(xr, ac, bc, cc, dc)                                            \
    do {                                                                       \
        __m512 xe_ = _mm512_loadu_ps((xr) + k);                                \
        KEEP_IN_REG(xe_);                                                      \
        ac = _mm512_fmadd_ps(e0, xe_, ac);                                     \
        bc = _mm512_fmadd_ps(e1, xe_, bc);                                     \
        cc = _mm512_fmadd_ps(e2, xe_, cc);                                     \
        dc = _mm512_fmadd_ps(e3, xe_, dc);                                     \
        __m512 xo_ = _mm512_loadu_ps((xr) + k + F32_LANES);                    \
        KEEP_IN_REG(xo_);                                                      \
        ac = _mm512_fmadd_ps(o0, xo_, ac);                                     \
        bc = _mm512_fmadd_ps(o1, xo_, bc);                                     \
        cc = _mm512_fmadd_ps(o2, xo_, cc);                                     \
        dc = _mm512_fmadd_ps(o3, xo_, dc);                                     \
    } while (0)

AVX512 static void gemv_bf16_x4_tail_avx512(float *y, int64_t ldy, const float *xp,
                                            const uint16_t *w, int64_t in, int64_t r0,
                                            int64_t r1) {
    GEMV_XN_BODY(VL_GEMV_X_ROWS)
}

AVX512 static void gemv_bf16_x4_avx512(float *y, int64_t ldy, const float *xp, const uint16_t *w,
                                       int64_t in, int64_t r0, int64_t r1) {
    const __m512i hm = _mm512_set1_epi32((int)0xffff0000u);
    const int64_t kv = in - in % BF16_BLOCK;
    const int64_t kt_len = (int64_t)X4_TILE_BLOCKS * BF16_BLOCK;
    const int64_t pf = vl__gemv_prefetch;
    const float *x0 = xp, *x1 = x0 + in, *x2 = x1 + in, *x3 = x2 + in;
    _Alignas(64) float park[X4_GROUP_QUADS][X4_CHAINS][F32_LANES];
    const int64_t r_quads_end = r0 + (r1 - r0) / 4 * 4;
    for (int64_t g = r0; g < r_quads_end; g += 4 * X4_GROUP_QUADS) {
        const int64_t g_end = g + 4 * X4_GROUP_QUADS < r_quads_end ? g + 4 * X4_GROUP_QUADS
                                                                   : r_quads_end;
        for (int64_t kt = 0; kt < kv; kt += kt_len) {
            const int64_t k_end = kt + kt_len < kv ? kt + kt_len : kv;
            for (int64_t r = g; r < g_end; r += 4) {
                float(*pk)[F32_LANES] = park[(r - g) / 4];
                const uint16_t *w0 = w + r * in, *w1 = w0 + in, *w2 = w1 + in, *w3 = w2 + in;
                __m512 a0, a1, a2, a3, b0, b1, b2, b3, c0, c1, c2, c3, d0, d1, d2, d3;
                if (kt == 0) {
                    a0 = _mm512_setzero_ps();
                    a1 = a2 = a3 = b0 = b1 = b2 = b3 = a0;
                    c0 = c1 = c2 = c3 = d0 = d1 = d2 = d3 = a0;
                } else {
                    PARK_LOAD16(pk, a0, a1, a2, a3, b0, b1, b2, b3, c0, c1, c2, c3, d0, d1, d2, d3);
                }
                for (int64_t k = kt; k < k_end; k += BF16_BLOCK) {
                    _mm_prefetch((const char *)(w0 + k + pf), _MM_HINT_T0);
                    _mm_prefetch((const char *)(w1 + k + pf), _MM_HINT_T0);
                    _mm_prefetch((const char *)(w2 + k + pf), _MM_HINT_T0);
                    _mm_prefetch((const char *)(w3 + k + pf), _MM_HINT_T0);
                    __m512i v0 = _mm512_loadu_si512((const void *)(w0 + k));
                    __m512i v1 = _mm512_loadu_si512((const void *)(w1 + k));
                    __m512i v2 = _mm512_loadu_si512((const void *)(w2 + k));
                    __m512i v3 = _mm512_loadu_si512((const void *)(w3 + k));
                    const __m512 e0 = BF16_EVEN(v0), o0 = BF16_ODD(v0, hm);
                    const __m512 e1 = BF16_EVEN(v1), o1 = BF16_ODD(v1, hm);
                    const __m512 e2 = BF16_EVEN(v2), o2 = BF16_ODD(v2, hm);
                    const __m512 e3 = BF16_EVEN(v3), o3 = BF16_ODD(v3, hm);
                    X4_STEP(x0, a0, b0, c0, d0);
                    X4_STEP(x1, a1, b1, c1, d1);
                    X4_STEP(x2, a2, b2, c2, d2);
                    X4_STEP(x3, a3, b3, c3, d3);
                }
                PARK_STORE16(pk, a0, a1, a2, a3, b0, b1, b2, b3, c0, c1, c2, c3, d0, d1, d2, d3);
            }
        }
        park_rows_out(y, ldy, xp, w, in, kv, park[0][0], g, g_end, VL_GEMV_X_ROWS);
    }
    if (r_quads_end < r1)
        gemv_bf16_x4_tail_avx512(y, ldy, xp, w, in, r_quads_end, r1);
}

/* The eight-row kernel written out: 16 named chains (2 weight rows x 8 x rows) so GCC keeps
 * every accumulator, weight half and x pointer in registers. */
#define X8_STEP(xr, ac, bc)                                                    \
    do {                                                                       \
        __m512 xe_ = _mm512_loadu_ps((xr) + k);                                \
        KEEP_IN_REG(xe_);                                                      \
        ac = _mm512_fmadd_ps(e0, xe_, ac);                                     \
        bc = _mm512_fmadd_ps(e1, xe_, bc);                                     \
        __m512 xo_ = _mm512_loadu_ps((xr) + k + F32_LANES);                    \
        KEEP_IN_REG(xo_);                                                      \
        ac = _mm512_fmadd_ps(o0, xo_, ac);                                     \
        bc = _mm512_fmadd_ps(o1, xo_, bc);                                     \
    } while (0)

/* k-tiled: x of eight rows is 8 x 4 x in bytes (64 KB at in = 2048, 344 KB at 11008), more than
 * L1 holds, and re-reading it from L2 for every pair of weight rows left the kernel bound by L2
 * traffic beside the weight stream. So a group of X8_GROUP_PAIRS pairs of weight rows walks K in
 * tiles of X8_TILE_BLOCKS blocks (one x tile of 8 rows stays in L1), the 16 accumulators of a
 * pair parked in acc_park between tiles. Each accumulator still sees its FMAs in the same order
 * (parking is a plain store and load), so every row is bit-identical to the 1- and 4-row kernels. */
#define X8_TILE_BLOCKS 8
#define X8_GROUP_PAIRS 16
#define X8_CHAINS      (2 * VL_GEMV_X8_ROWS)

AVX512 static void gemv_bf16_x8_avx512(float *y, int64_t ldy, const float *xp, const uint16_t *w,
                                       int64_t in, int64_t r0, int64_t r1) {
    const __m512i hm = _mm512_set1_epi32((int)0xffff0000u);
    const int64_t kv = in - in % BF16_BLOCK;
    const int64_t kt_len = (int64_t)X8_TILE_BLOCKS * BF16_BLOCK;
    const int64_t pf = vl__gemv_prefetch;
    const float *x0 = xp, *x1 = x0 + in, *x2 = x1 + in, *x3 = x2 + in;
    const float *x4 = x3 + in, *x5 = x4 + in, *x6 = x5 + in, *x7 = x6 + in;
    _Alignas(64) float park[X8_GROUP_PAIRS][X8_CHAINS][F32_LANES];
    const int64_t r_pairs_end = r0 + (r1 - r0) / 2 * 2;
    for (int64_t g = r0; g < r_pairs_end; g += 2 * X8_GROUP_PAIRS) {
        const int64_t g_end = g + 2 * X8_GROUP_PAIRS < r_pairs_end ? g + 2 * X8_GROUP_PAIRS
                                                                   : r_pairs_end;
        for (int64_t kt = 0; kt < kv; kt += kt_len) {
            const int64_t k_end = kt + kt_len < kv ? kt + kt_len : kv;
            for (int64_t r = g; r < g_end; r += 2) {
                float(*pk)[F32_LANES] = park[(r - g) / 2];
                const uint16_t *w0 = w + r * in, *w1 = w0 + in;
                __m512 a0, a1, a2, a3, a4, a5, a6, a7, b0, b1, b2, b3, b4, b5, b6, b7;
                if (kt == 0) {
                    a0 = _mm512_setzero_ps();
                    a1 = a2 = a3 = a4 = a5 = a6 = a7 = a0;
                    b0 = b1 = b2 = b3 = b4 = b5 = b6 = b7 = a0;
                } else {
                    PARK_LOAD16(pk, a0, a1, a2, a3, a4, a5, a6, a7, b0, b1, b2, b3, b4, b5, b6, b7);
                }
                for (int64_t k = kt; k < k_end; k += BF16_BLOCK) {
                    _mm_prefetch((const char *)(w0 + k + pf), _MM_HINT_T0);
                    _mm_prefetch((const char *)(w1 + k + pf), _MM_HINT_T0);
                    __m512i v0 = _mm512_loadu_si512((const void *)(w0 + k));
                    __m512i v1 = _mm512_loadu_si512((const void *)(w1 + k));
                    const __m512 e0 = BF16_EVEN(v0), o0 = BF16_ODD(v0, hm);
                    const __m512 e1 = BF16_EVEN(v1), o1 = BF16_ODD(v1, hm);
                    X8_STEP(x0, a0, b0);
                    X8_STEP(x1, a1, b1);
                    X8_STEP(x2, a2, b2);
                    X8_STEP(x3, a3, b3);
                    X8_STEP(x4, a4, b4);
                    X8_STEP(x5, a5, b5);
                    X8_STEP(x6, a6, b6);
                    X8_STEP(x7, a7, b7);
                }
                PARK_STORE16(pk, a0, a1, a2, a3, a4, a5, a6, a7, b0, b1, b2, b3, b4, b5, b6, b7);
            }
        }
        park_rows_out(y, ldy, xp, w, in, kv, park[0][0], g, g_end, VL_GEMV_X8_ROWS);
    }
    if (r_pairs_end < r1) /* an odd last weight row: the four-row kernel's, twice */
        for (int h = 0; h < 2; h++)
            gemv_bf16_x4_avx512(y + h * VL_GEMV_X_ROWS * ldy, ldy, xp + h * VL_GEMV_X_ROWS * in,
                                w, in, r_pairs_end, r1);
}

/* ---- decode attention: o = p v of one KV head --------------------------------------------- */

/* The AVX2 kernel's arithmetic with twice the lanes: every o[r, j] starts at 0 and takes one
 * FMA per key in key order, whatever the blocking, so each element is bit-identical to the AVX2
 * table's (test_kernels_ops checks it). A block is up to 8 rows (a 3B GQA group) x 32 columns
 * (16 accumulators; the AVX2 block is 4 x 16): half the FMAs and broadcasts per key. */
#define PV_ROWS 8
#define PV_COLS 32 /* two zmm a row; a last 16-column block uses one */
#define PV_KEYS 32 /* keys per chunk: 32 x head_dim floats stay in L1 for every block */

AVX512 static inline __attribute__((always_inline)) void
pv_block_avx512(float *o, const float *p, int rows, int zmms, const float *v, int64_t n,
                int64_t d, int64_t j, int64_t t0, int64_t t1) {
    __m512 a[PV_ROWS], b[PV_ROWS];
    for (int r = 0; r < rows; r++) {
        a[r] = _mm512_loadu_ps(o + r * d + j);
        b[r] = zmms == 2 ? _mm512_loadu_ps(o + r * d + j + F32_LANES) : a[r];
    }
    for (int64_t t = t0; t < t1; t++) {
        const __m512 va = _mm512_loadu_ps(v + t * d + j);
        const __m512 vb = zmms == 2 ? _mm512_loadu_ps(v + t * d + j + F32_LANES) : va;
        for (int r = 0; r < rows; r++) {
            const __m512 w = _mm512_set1_ps(p[r * n + t]);
            a[r] = _mm512_fmadd_ps(w, va, a[r]);
            if (zmms == 2)
                b[r] = _mm512_fmadd_ps(w, vb, b[r]);
        }
    }
    for (int r = 0; r < rows; r++) {
        _mm512_storeu_ps(o + r * d + j, a[r]);
        if (zmms == 2)
            _mm512_storeu_ps(o + r * d + j + F32_LANES, b[r]);
    }
}

/* Rows is a constant after inlining, so the accumulators live in registers. */
#define PV_ROWS_CASES(zmms)                                                                      \
    switch (rows) {                                                                              \
    case 1: pv_block_avx512(oi, pi, 1, zmms, v, n, d, j, t0, t1); break;                         \
    case 2: pv_block_avx512(oi, pi, 2, zmms, v, n, d, j, t0, t1); break;                         \
    case 3: pv_block_avx512(oi, pi, 3, zmms, v, n, d, j, t0, t1); break;                         \
    case 4: pv_block_avx512(oi, pi, 4, zmms, v, n, d, j, t0, t1); break;                         \
    case 5: pv_block_avx512(oi, pi, 5, zmms, v, n, d, j, t0, t1); break;                         \
    case 6: pv_block_avx512(oi, pi, 6, zmms, v, n, d, j, t0, t1); break;                         \
    case 7: pv_block_avx512(oi, pi, 7, zmms, v, n, d, j, t0, t1); break;                         \
    default: pv_block_avx512(oi, pi, PV_ROWS, zmms, v, n, d, j, t0, t1); break;                  \
    }

/* Columns past the last 16 (head_dim % 16, not in any Qwen2.5-VL size) as the AVX2 kernel does
 * them: a product, then a sum (C11: no contraction). */
AVX512 static void attn_pv_avx512(float *o, const float *p, int64_t m, const float *v, int64_t n,
                                  int64_t d) {
    const int64_t dv = d - d % F32_LANES;
    memset(o, 0, (size_t)(m * d) * sizeof *o);
    for (int64_t t0 = 0; t0 < n; t0 += PV_KEYS) {
        const int64_t t1 = n - t0 < PV_KEYS ? n : t0 + PV_KEYS;
        for (int64_t i = 0; i < m; i += PV_ROWS) {
            const int64_t rows = m - i < PV_ROWS ? m - i : PV_ROWS;
            float *oi = o + i * d;
            const float *pi = p + i * n;
            int64_t j = 0;
            for (; j + PV_COLS <= dv; j += PV_COLS)
                PV_ROWS_CASES(2)
            if (j < dv)
                PV_ROWS_CASES(1)
            for (int64_t r = 0; r < rows; r++)
                for (j = dv; j < d; j++)
                    for (int64_t t = t0; t < t1; t++)
                        oi[r * d + j] += pi[r * n + t] * v[t * d + j];
        }
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
    simd_avx512.gemv_bf16_x8 = gemv_bf16_x8_avx512;
    simd_avx512.gemv_bf16_row_invariant = true;
    simd_avx512.attn_pv = attn_pv_avx512;
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
