/* Quantized weights, part 1: the block formats (Q8_0, Q4_0: quantize, dequantize, f16 scales),
 * the on-the-fly activation quantizer, the scalar twin of the integer kernel and the kernel
 * table dispatch. The format and the kernels' exact arithmetic are described in
 * vl_quant_impl.h and docs/quantization.md. The pool front end (vl__qlinear_multi) is in
 * vl_quant_ops.c, the AVX2 kernels in vl_quant_x86.c.
 * Thread-safety: pure functions; the dispatch table is chosen once (pthread_once). */
#include "vl_quant_impl.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Q4_0 scale candidates: the block's signed extreme m is mapped to m / t for each t below and
 * the scale with the least squared error wins (ties: the first, t = -8, which is llama.cpp's
 * Q4_0 choice), so the result is never less accurate than plain Q4_0 (docs/quantization.md). */
static const float q4_scale_divs[] = {-8.0f, -7.5f, -7.0f, -6.5f, 7.0f, 7.5f};
#define Q4_N_DIVS (sizeof q4_scale_divs / sizeof q4_scale_divs[0])
#define F16_EXP_BIAS 15
#define F32_EXP_BIAS 127
#define F16_MAX_EXP 15      /* largest unbiased exponent of a finite f16 */
#define F16_MIN_NORMAL_EXP (-14)
#define F16_MANT_BITS 10
#define F32_MANT_BITS 23
#define LANES 8             /* f32 accumulator lanes of the kernels */
#define LANE_ELEMS (VL_QK / LANES)

bool vl__dtype_is_quant(enum vl_dtype t) {
    return t == VL_DTYPE_Q8_0 || t == VL_DTYPE_Q4_0;
}

int64_t vl__q_blocks(int64_t in) {
    return (in + VL_QK - 1) / VL_QK;
}

size_t vl__q_row_bytes(enum vl_dtype t, int64_t in) {
    VL_ASSERT(vl__dtype_is_quant(t));
    return (size_t)vl__q_blocks(in) * vl__dtype_size(t);
}

/* ---- f16 scales ---------------------------------------------------------------------------- */

uint16_t vl__f32_to_f16(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t exp = (u >> F32_MANT_BITS) & 0xffu, mant = u & 0x7fffffu;
    if (exp == 0xffu) /* inf or NaN (quiet) */
        return (uint16_t)(sign | 0x7c00u | (mant ? 0x200u : 0u));
    int e = (int)exp - F32_EXP_BIAS;
    if (e > F16_MAX_EXP)
        return (uint16_t)(sign | 0x7c00u);
    if (exp == 0) /* f32 zero or subnormal: far below f16's smallest subnormal */
        return sign;
    uint32_t m = mant | 0x800000u; /* 24 significant bits */
    int shift;                     /* bits dropped from m */
    uint32_t base;                 /* the f16 bits above the kept mantissa */
    if (e >= F16_MIN_NORMAL_EXP) {
        shift = F32_MANT_BITS - F16_MANT_BITS;
        base = (uint32_t)(e + F16_EXP_BIAS) << F16_MANT_BITS;
        m &= 0x7fffffu; /* the implicit bit goes into the exponent field */
    } else {
        shift = F32_MANT_BITS - F16_MANT_BITS + (F16_MIN_NORMAL_EXP - e);
        if (shift > 24)
            return sign;
        base = 0;
    }
    uint32_t kept = m >> shift, rest = m & ((1u << shift) - 1u), half = 1u << (shift - 1);
    uint32_t h = base + kept; /* a mantissa carry rolls into the exponent, as it should */
    if (rest > half || (rest == half && (kept & 1u)))
        h++;
    return (uint16_t)(sign | h);
}

static float load_f16(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, sizeof h);
    return vl__f16_to_f32(h);
}

static void store_f16(uint8_t *p, float f) {
    uint16_t h = vl__f32_to_f16(f);
    memcpy(p, &h, sizeof h);
}

/* ---- formats ------------------------------------------------------------------------------- */

/* Block b of a row of n values, zero-padded past n. */
static void block_values(float v[VL_QK], const float *x, int64_t n, int64_t b) {
    for (int j = 0; j < VL_QK; j++) {
        int64_t k = b * VL_QK + j;
        v[j] = k < n ? x[k] : 0.0f;
    }
}

/* Adding and subtracting 1.5 * 2^23 rounds an f32 of magnitude below 2^22 to an integer, ties to
 * even (the default rounding mode; the build never contracts or reassociates: C11, no fast-math):
 * nearbyintf without the libm call. */
#define ROUND_MAGIC 12582912.0f

/* round(v * id) clamped to [lo, hi]; NaN goes to 0 (never undefined behaviour). */
static int round_clamp(float v, float id, int lo, int hi) {
    float r = v * id;
    if (!(r == r))
        return 0;
    if (r < (float)lo)
        return lo;
    if (r > (float)hi)
        return hi;
    float t = r + ROUND_MAGIC; /* f32 (FLT_EVAL_METHOD 0 on x86-64): the rounding step */
    return (int)(t - ROUND_MAGIC);
}

static void quantize_block_q8(uint8_t *blk, const float v[VL_QK]) {
    float amax = 0.0f;
    for (int j = 0; j < VL_QK; j++)
        amax = fmaxf(amax, fabsf(v[j]));
    uint16_t dh = vl__f32_to_f16(amax / (float)VL_Q8_MAX);
    float d = vl__f16_to_f32(dh), id = d > 0.0f ? 1.0f / d : 0.0f;
    memcpy(blk, &dh, sizeof dh);
    for (int j = 0; j < VL_QK; j++)
        blk[2 + j] = (uint8_t)(int8_t)round_clamp(v[j], id, -VL_Q8_MAX, VL_Q8_MAX);
}

/* Squared error of v quantized to Q4_0 with scale d (f16-rounded); q (may be NULL) gets the
 * nibbles. */
static double q4_error(const float v[VL_QK], float d, uint8_t q[VL_QK]) {
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    double e = 0;
    for (int j = 0; j < VL_QK; j++) {
        int n = round_clamp(v[j], id, -VL_Q4_OFFSET, VL_Q4_OFFSET - 1) + VL_Q4_OFFSET;
        if (q)
            q[j] = (uint8_t)n;
        double diff = (double)v[j] - (double)d * (n - VL_Q4_OFFSET);
        e += diff * diff;
    }
    return e;
}

static void quantize_block_q4(uint8_t *blk, const float v[VL_QK]) {
    float m = 0.0f; /* the signed value of largest magnitude */
    for (int j = 0; j < VL_QK; j++)
        if (fabsf(v[j]) > fabsf(m))
            m = v[j];
    float best_d = 0.0f;
    double best = INFINITY;
    for (size_t k = 0; k < Q4_N_DIVS; k++) {
        float d = vl__f16_to_f32(vl__f32_to_f16(m / q4_scale_divs[k]));
        double e = q4_error(v, d, NULL);
        if (e < best) {
            best = e;
            best_d = d;
        }
    }
    uint8_t q[VL_QK];
    q4_error(v, best_d, q);
    store_f16(blk, best_d);
    for (int j = 0; j < VL_QK / 2; j++)
        blk[2 + j] = (uint8_t)(q[j] | (q[j + VL_QK / 2] << 4));
}

void vl__quantize_row(void *dst, enum vl_dtype t, const float *x, int64_t n) {
    uint8_t *out = dst;
    const int64_t nb = vl__q_blocks(n);
    const size_t bs = vl__dtype_size(t);
    for (int64_t b = 0; b < nb; b++) {
        float v[VL_QK];
        block_values(v, x, n, b);
        if (t == VL_DTYPE_Q8_0)
            quantize_block_q8(out + (size_t)b * bs, v);
        else if (t == VL_DTYPE_Q4_0)
            quantize_block_q4(out + (size_t)b * bs, v);
        else
            VL_ASSERT(!"quantize: not a block dtype");
    }
}

/* The 32 signed integer weights of a block and its scale. */
static float unpack_block(int8_t q[VL_QK], const uint8_t *blk, enum vl_dtype t) {
    if (t == VL_DTYPE_Q8_0) {
        memcpy(q, blk + 2, VL_QK);
    } else {
        for (int j = 0; j < VL_QK / 2; j++) {
            q[j] = (int8_t)((blk[2 + j] & 0x0f) - VL_Q4_OFFSET);
            q[j + VL_QK / 2] = (int8_t)((blk[2 + j] >> 4) - VL_Q4_OFFSET);
        }
    }
    return load_f16(blk);
}

void vl__dequantize_row(float *dst, enum vl_dtype t, const void *src, int64_t n) {
    VL_ASSERT(vl__dtype_is_quant(t));
    const uint8_t *in = src;
    const size_t bs = vl__dtype_size(t);
    for (int64_t b = 0; b < vl__q_blocks(n); b++) {
        int8_t q[VL_QK];
        float d = unpack_block(q, in + (size_t)b * bs, t);
        for (int j = 0; j < VL_QK && b * VL_QK + j < n; j++)
            dst[b * VL_QK + j] = d * (float)q[j];
    }
}

void vl__quantize_act(int8_t *q, float *d, const float *x, int64_t n) {
    for (int64_t b = 0; b < vl__q_blocks(n); b++) {
        float v[VL_QK];
        block_values(v, x, n, b);
        float amax = 0.0f;
        for (int j = 0; j < VL_QK; j++)
            amax = fmaxf(amax, fabsf(v[j]));
        float db = amax / (float)VL_Q8_MAX, id = db > 0.0f ? 1.0f / db : 0.0f;
        d[b] = db;
        for (int j = 0; j < VL_QK; j++)
            q[b * VL_QK + j] = (int8_t)round_clamp(v[j], id, -VL_Q8_MAX, VL_Q8_MAX);
    }
}

/* ---- scalar twin of the integer kernel ------------------------------------------------------ */

/* One output: the 8-lane f32 accumulation and reduction order of the SIMD kernels. */
static float dot_ref(const int8_t *xq, const float *xd, const uint8_t *w, enum vl_dtype t,
                     int64_t nb) {
    float acc[LANES] = {0};
    const size_t bs = vl__dtype_size(t);
    for (int64_t b = 0; b < nb; b++) {
        int8_t q[VL_QK];
        float d = unpack_block(q, w + (size_t)b * bs, t) * xd[b];
        const int8_t *xb = xq + b * VL_QK;
        for (int l = 0; l < LANES; l++) {
            int32_t p = 0;
            for (int k = 0; k < LANE_ELEMS; k++)
                p += (int32_t)q[l * LANE_ELEMS + k] * (int32_t)xb[l * LANE_ELEMS + k];
            acc[l] = fmaf((float)p, d, acc[l]);
        }
    }
    /* hsum8: lanes (i, i + 4), then (i, i + 2), then (0, 1) */
    float s4[4], s2[2];
    for (int i = 0; i < 4; i++)
        s4[i] = acc[i] + acc[i + 4];
    for (int i = 0; i < 2; i++)
        s2[i] = s4[i] + s4[i + 2];
    return s2[0] + s2[1];
}

static void gemm_scalar(float *y, int64_t ldy, const int8_t *xq, const float *xd, int64_t nx,
                        const uint8_t *w, enum vl_dtype t, int64_t nb, int64_t r0, int64_t r1) {
    const size_t rb = (size_t)nb * vl__dtype_size(t);
    for (int64_t r = r0; r < r1; r++)
        for (int64_t i = 0; i < nx; i++)
            y[i * ldy + r] = dot_ref(xq + i * nb * VL_QK, xd + i * nb, w + (size_t)r * rb, t, nb);
}

static const struct vl_qsimd qsimd_scalar = {
    .name = "scalar", .quantize_act = vl__quantize_act, .gemm = gemm_scalar};

const struct vl_qsimd *vl__qsimd_scalar(void) {
    return &qsimd_scalar;
}

int vl__qsimd_tables(const struct vl_qsimd *out[VL_QSIMD_MAX_TABLES]) {
    const struct vl_qsimd *all[VL_QSIMD_MAX_TABLES] = {vl__qsimd_scalar(), vl__qsimd_avx2(),
                                                       vl__qsimd_avxvnni(),
                                                       vl__qsimd_avx512vnni()};
    int n = 0;
    for (int i = 0; i < VL_QSIMD_MAX_TABLES; i++)
        if (all[i])
            out[n++] = all[i];
    return n;
}

/* The integer kernels follow the main table's choice: VL_SIMD=off gives scalar, VL_SIMD=avx2
 * caps them at AVX2 (no VNNI); otherwise the widest the CPU has (avx512vnni, avxvnni, avx2).
 * VL_QSIMD=scalar|avx2|avxvnni|avx512vnni names one table (to compare them on one machine; one
 * the CPU lacks is refused with a warning and the default kept). */
static const struct vl_qsimd *qsimd_active;
static pthread_once_t qsimd_once = PTHREAD_ONCE_INIT;

static void qsimd_pick(void) {
    const char *cap = getenv("VL_SIMD"), *want = getenv("VL_QSIMD");
    const struct vl_qsimd *s = NULL;
    if (strcmp(vl__simd()->name, "scalar")) {
        if (!(cap && strcmp(cap, "avx2") == 0))
            s = vl__qsimd_avx512vnni();
        if (!s && !(cap && strcmp(cap, "avx2") == 0))
            s = vl__qsimd_avxvnni();
        if (!s)
            s = vl__qsimd_avx2();
    }
    qsimd_active = s ? s : vl__qsimd_scalar();
    if (want && *want) {
        const struct vl_qsimd *tabs[VL_QSIMD_MAX_TABLES];
        int n = vl__qsimd_tables(tabs), k = 0;
        while (k < n && strcmp(tabs[k]->name, want))
            k++;
        if (k < n)
            qsimd_active = tabs[k];
        else
            vl__log(VL_LOG_WARN, "VL_QSIMD=%s: not an integer kernel table of this CPU, keeping %s",
                    want, qsimd_active->name);
    }
    vl__log(VL_LOG_DEBUG, "integer kernels: %s", qsimd_active->name);
}

const struct vl_qsimd *vl__qsimd(void) {
    pthread_once(&qsimd_once, qsimd_pick);
    return qsimd_active;
}

const char *vl_qsimd_name(void) {
    return vl__qsimd()->name;
}

/* ---- reference Linear (tests) ------------------------------------------------------------ */

void vl__qlinear_ref(float *y, const float *x, int64_t n, const struct vl_tensor *w,
                     const struct vl_tensor *b) {
    const int64_t out = w->ne[0], in = w->ne[1];
    const size_t rb = vl__q_row_bytes(w->dtype, in);
    float *row = vl__malloc((size_t)in * sizeof *row);
    VL_ASSERT(row);
    for (int64_t r = 0; r < out; r++) {
        vl__dequantize_row(row, w->dtype, (const uint8_t *)w->data + (size_t)r * rb, in);
        float bias = 0.0f;
        if (b)
            vl__to_f32(&bias, b, r, 1);
        for (int64_t i = 0; i < n; i++) {
            double s = 0;
            for (int64_t k = 0; k < in; k++)
                s += (double)row[k] * (double)x[i * in + k];
            y[i * out + r] = (float)s + bias;
        }
    }
    vl__free(row);
}
