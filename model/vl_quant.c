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

/* ---- the definition, the packed layout and the scalar twin ------------------------------- */

#define Q8_PACK_CHUNKS (VL_QK / 4)      /* 4-element groups of a block */
#define Q4_PACK_CHUNKS (VL_QK / 2 / 4)  /* 4-byte groups of a Q4_0 block's 16 bytes */

float vl__qdot(const int8_t *xq, const float *xd, const uint8_t *wrow, enum vl_dtype t,
               int64_t nb) {
    float acc = 0.0f;
    const size_t bs = vl__dtype_size(t);
    for (int64_t b = 0; b < nb; b++) {
        int8_t q[VL_QK];
        float dw = unpack_block(q, wrow + (size_t)b * bs, t);
        int32_t s = 0;
        for (int j = 0; j < VL_QK; j++)
            s += (int32_t)q[j] * (int32_t)xq[b * VL_QK + j];
        acc = fmaf((float)s, dw * xd[b], acc);
    }
    return acc;
}

size_t vl__qpack_bytes(enum vl_dtype t, int64_t out, int64_t nb) {
    const int64_t groups = (out + VL_QPACK_ROWS - 1) / VL_QPACK_ROWS;
    return (size_t)groups * (size_t)nb * VL_QPACK_ROWS * vl__dtype_size(t);
}

void vl__qpack(uint8_t *dst, const uint8_t *src, enum vl_dtype t, int64_t out, int64_t nb,
               int64_t g0, int64_t g1) {
    VL_ASSERT(vl__dtype_is_quant(t));
    const size_t bs = vl__dtype_size(t), rb = (size_t)nb * bs, gb = VL_QPACK_ROWS * bs;
    const bool q8 = t == VL_DTYPE_Q8_0;
    for (int64_t g = g0; g < g1; g++) {
        for (int64_t b = 0; b < nb; b++) {
            uint8_t *o = dst + ((size_t)g * (size_t)nb + (size_t)b) * gb;
            if ((g + 1) * VL_QPACK_ROWS > out) /* the last group's padding rows */
                memset(o, 0, gb);
            for (int j = 0; j < VL_QPACK_ROWS; j++) {
                const int64_t r = g * VL_QPACK_ROWS + j;
                if (r >= out)
                    break;
                const uint8_t *blk = src + (size_t)r * rb + (size_t)b * bs;
                memcpy(o + 2 * j, blk, 2);
                uint8_t *q = o + VL_QPACK_SCALE_BYTES + 4 * j;
                for (int c = 0; c < (q8 ? Q8_PACK_CHUNKS : Q4_PACK_CHUNKS); c++)
                    for (int k = 0; k < 4; k++)
                        q[c * VL_QPACK_CHUNK + k] = q8 ? (uint8_t)(blk[2 + 4 * c + k] ^ 0x80u)
                                                       : blk[2 + 4 * c + k];
            }
        }
    }
}

void *vl__qpack_tensor(const struct vl_tensor *w) {
    VL_ASSERT(w->ndim == 2 && vl__dtype_is_quant(w->dtype));
    const int64_t out = w->ne[0], nb = vl__q_blocks(w->ne[1]);
    size_t bytes = vl__qpack_bytes(w->dtype, out, nb);
    uint8_t *p = vl__aligned_alloc(VL_QPACK_CHUNK, bytes ? bytes : 1);
    if (p)
        vl__qpack(p, w->data, w->dtype, out, nb, 0, (out + VL_QPACK_ROWS - 1) / VL_QPACK_ROWS);
    return p;
}

void vl__qunpack_row(uint8_t *dst, const uint8_t *pack, enum vl_dtype t, int64_t nb, int64_t r) {
    VL_ASSERT(vl__dtype_is_quant(t));
    const size_t bs = vl__dtype_size(t), gb = VL_QPACK_ROWS * bs;
    const bool q8 = t == VL_DTYPE_Q8_0;
    const int j = (int)(r % VL_QPACK_ROWS);
    const uint8_t *g = pack + (size_t)(r / VL_QPACK_ROWS) * (size_t)nb * gb;
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *o = g + (size_t)b * gb;
        uint8_t *blk = dst + (size_t)b * bs;
        memcpy(blk, o + 2 * j, 2);
        const uint8_t *q = o + VL_QPACK_SCALE_BYTES + 4 * j;
        for (int c = 0; c < (q8 ? Q8_PACK_CHUNKS : Q4_PACK_CHUNKS); c++)
            for (int k = 0; k < 4; k++)
                blk[2 + 4 * c + k] = q8 ? (uint8_t)(q[c * VL_QPACK_CHUNK + k] ^ 0x80u)
                                        : q[c * VL_QPACK_CHUNK + k];
    }
}

const uint8_t *vl__qrow(const struct vl_tensor *w, int64_t r, uint8_t *buf) {
    VL_ASSERT(w->ndim == 2 && vl__dtype_is_quant(w->dtype) && r >= 0 && r < w->ne[0]);
    if (w->data)
        return (const uint8_t *)w->data + (size_t)r * vl__q_row_bytes(w->dtype, w->ne[1]);
    VL_ASSERT(w->pack);
    vl__qunpack_row(buf, w->pack, w->dtype, vl__q_blocks(w->ne[1]), r);
    return buf;
}

void vl__act_corr(int32_t *xc, const int8_t *xq, int64_t nb, enum vl_dtype t) {
    const int32_t k = t == VL_DTYPE_Q8_0 ? 128 : VL_Q4_OFFSET;
    for (int64_t b = 0; b < nb; b++) {
        int32_t s = 0;
        for (int j = 0; j < VL_QK; j++)
            s += xq[b * VL_QK + j];
        xc[b] = -k * s;
    }
}

/* Row j of a packed group block as 32 signed weights in element order. */
static void unpack_packed(int8_t q[VL_QK], const uint8_t *blk, enum vl_dtype t, int j) {
    const uint8_t *p = blk + VL_QPACK_SCALE_BYTES + 4 * j;
    if (t == VL_DTYPE_Q8_0) {
        for (int c = 0; c < Q8_PACK_CHUNKS; c++)
            for (int k = 0; k < 4; k++)
                q[4 * c + k] = (int8_t)(p[c * VL_QPACK_CHUNK + k] ^ 0x80u);
        return;
    }
    for (int c = 0; c < Q4_PACK_CHUNKS; c++)
        for (int k = 0; k < 4; k++) {
            uint8_t v = p[c * VL_QPACK_CHUNK + k];
            q[4 * c + k] = (int8_t)((v & 0x0f) - VL_Q4_OFFSET);
            q[VL_QK / 2 + 4 * c + k] = (int8_t)((v >> 4) - VL_Q4_OFFSET);
        }
}

/* The scalar twin: the definition, read from the packed layout (xc is not needed: the weights
 * are taken back to signed values). */
static void gemm_scalar(float *y, int64_t ldy, const int8_t *xq, const float *xd,
                        const int32_t *xc, int64_t nx, const uint8_t *wp, enum vl_dtype t,
                        int64_t nb, int64_t r0, int64_t r1) {
    (void)xc;
    const size_t gb = VL_QPACK_ROWS * vl__dtype_size(t);
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *wg = wp + (size_t)(r / VL_QPACK_ROWS) * (size_t)nb * gb;
        const int j = (int)(r % VL_QPACK_ROWS);
        for (int64_t i = 0; i < nx; i++) {
            const int8_t *x = xq + i * nb * VL_QK;
            float acc = 0.0f;
            for (int64_t b = 0; b < nb; b++) {
                const uint8_t *blk = wg + (size_t)b * gb;
                int8_t q[VL_QK];
                unpack_packed(q, blk, t, j);
                int32_t s = 0;
                for (int k = 0; k < VL_QK; k++)
                    s += (int32_t)q[k] * (int32_t)x[b * VL_QK + k];
                acc = fmaf((float)s, load_f16(blk + 2 * j) * xd[i * nb + b], acc);
            }
            y[i * ldy + r] = acc;
        }
    }
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
int64_t vl__qgemv_prefetch = VL_QGEMV_PREFETCH_DEFAULT_BYTES;

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
    long long pf = vl__qgemv_prefetch; /* VL_QGEMV_PREFETCH=BYTES replaces the default */
    vl__env_bytes("VL_QGEMV_PREFETCH", VL_GEMV_PREFETCH_MAX_BYTES, &pf);
    vl__qgemv_prefetch = pf;
    vl__log(VL_LOG_DEBUG, "integer kernels: %s, decode prefetch %lld bytes", qsimd_active->name,
            (long long)vl__qgemv_prefetch);
}

const struct vl_qsimd *vl__qsimd(void) {
    pthread_once(&qsimd_once, qsimd_pick);
    return qsimd_active;
}

const char *vl_qsimd_name(void) {
    return vl__qsimd()->name;
}

int vl_qgemv_prefetch_bytes(void) {
    (void)vl__qsimd(); /* VL_QGEMV_PREFETCH is read with the table */
    return (int)vl__qgemv_prefetch;
}

/* ---- reference Linear (tests) ------------------------------------------------------------ */

void vl__qlinear_ref(float *y, const float *x, int64_t n, const struct vl_tensor *w,
                     const struct vl_tensor *b) {
    const int64_t out = w->ne[0], in = w->ne[1];
    const size_t rb = vl__q_row_bytes(w->dtype, in);
    float *row = vl__malloc((size_t)in * sizeof *row);
    uint8_t *blocks = vl__malloc(rb);
    VL_ASSERT(row && blocks);
    for (int64_t r = 0; r < out; r++) {
        vl__dequantize_row(row, w->dtype, vl__qrow(w, r, blocks), in);
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
    vl__free(blocks);
    vl__free(row);
}
