/* llama.cpp's k-quant tensor types Q4_K and Q6_K, read at load (docs/quantization.md, "GGUF:
 * Q4_K and Q6_K"). docproc has no kernels on these layouts: a Linear weight in Q4_K / Q6_K is
 * converted once, row by row, into libvl's q8 blocks (Q8_0: dequantize the 256-weight super-block
 * to f32, requantize per 32 with vl__quantize_row), every other tensor is dequantized to f32.
 * Block layouts (ggml-common.h; facts only, no code taken from there), QK_K = 256 weights:
 *   Q4_K (144 bytes): f16 d, f16 dmin, u8 scales[12], u8 qs[128]
 *       8 sub-blocks of 32, each with a 6-bit scale sc and a 6-bit min mn packed in scales[12]
 *       (j < 4: sc = s[j] & 63, mn = s[j+4] & 63; else sc = (s[j+4] & 15) | (s[j-4] >> 6) << 4,
 *       mn = (s[j+4] >> 4) | (s[j] >> 6) << 4); value = d*sc * q - dmin*mn, q a nibble; each 32
 *       bytes of qs hold sub-block 2i in their low and 2i+1 in their high nibbles.
 *   Q6_K (210 bytes): u8 ql[128], u8 qh[64], i8 scales[16], f16 d
 *       16 sub-blocks of 16 with an int8 scale; q = 6 bits (4 from ql, 2 from qh) - 32; each
 *       half of 128 weights uses 64 ql, 32 qh and 8 scales: element l (< 32) of quarter k takes
 *       ql[l + 32*(k & 1)] nibble (k >> 1) and qh[l] bits 2k..2k+1, scale sc[l/16 + 2k].
 * Pure functions, thread-safe. */
#include "vl_gguf_impl.h"
#include "vl_quant_impl.h"

#include <string.h>

#define QK_K 256
#define Q4_K_SCALES 12
#define Q6_K_QL (QK_K / 2)
#define Q6_K_QH (QK_K / 4)
#define Q6_K_SCALES (QK_K / 16)
#define Q6_K_OFFSET 32

static float f16_at(const uint8_t *p) { return vl__f16_to_f32((uint16_t)(p[0] | p[1] << 8)); }

/* 6-bit scale and min of sub-block j (0..7) from the 12 packed bytes */
static void scale_min_k4(int j, const uint8_t *s, int *sc, int *mn) {
    if (j < 4) {
        *sc = s[j] & 63;
        *mn = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
        *mn = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

void vl__dequantize_q4_k(float *y, const uint8_t *src, int64_t n) {
    for (int64_t b = 0; b < n / QK_K; b++) {
        const uint8_t *blk = src + b * VL_GGML_Q4_K_BYTES;
        const float d = f16_at(blk), dmin = f16_at(blk + 2);
        const uint8_t *s = blk + 4, *q = blk + 4 + Q4_K_SCALES;
        for (int j = 0; j < QK_K / 64; j++) {
            int sc0, mn0, sc1, mn1;
            scale_min_k4(2 * j, s, &sc0, &mn0);
            scale_min_k4(2 * j + 1, s, &sc1, &mn1);
            const float d0 = d * (float)sc0, m0 = dmin * (float)mn0;
            const float d1 = d * (float)sc1, m1 = dmin * (float)mn1;
            for (int l = 0; l < 32; l++)
                *y++ = d0 * (float)(q[l] & 0xF) - m0;
            for (int l = 0; l < 32; l++)
                *y++ = d1 * (float)(q[l] >> 4) - m1;
            q += 32;
        }
    }
}

void vl__dequantize_q6_k(float *y, const uint8_t *src, int64_t n) {
    for (int64_t b = 0; b < n / QK_K; b++) {
        const uint8_t *blk = src + b * VL_GGML_Q6_K_BYTES;
        const uint8_t *ql = blk, *qh = blk + Q6_K_QL;
        const int8_t *sc = (const int8_t *)(blk + Q6_K_QL + Q6_K_QH);
        const float d = f16_at(blk + Q6_K_QL + Q6_K_QH + Q6_K_SCALES);
        for (int half = 0; half < 2; half++) {
            for (int l = 0; l < 32; l++) {
                const int is = l / 16;
                const int q0 = ((ql[l] & 0xF) | ((qh[l] & 3) << 4)) - Q6_K_OFFSET;
                const int q1 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - Q6_K_OFFSET;
                const int q2 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - Q6_K_OFFSET;
                const int q3 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - Q6_K_OFFSET;
                y[l] = d * (float)sc[is] * (float)q0;
                y[l + 32] = d * (float)sc[is + 2] * (float)q1;
                y[l + 64] = d * (float)sc[is + 4] * (float)q2;
                y[l + 96] = d * (float)sc[is + 6] * (float)q3;
            }
            y += 128;
            ql += 64;
            qh += 32;
            sc += 8;
        }
    }
}

bool vl__ggml_dequantize_row(float *dst, uint32_t type, const void *src, int64_t n) {
    switch (type) {
    case VL_GGML_Q8_0: vl__dequantize_row(dst, VL_DTYPE_Q8_0, src, n); return true;
    case VL_GGML_Q4_0: vl__dequantize_row(dst, VL_DTYPE_Q4_0, src, n); return true;
    case VL_GGML_Q4_K: vl__dequantize_q4_k(dst, src, n); return true;
    case VL_GGML_Q6_K: vl__dequantize_q6_k(dst, src, n); return true;
    default: return false;
    }
}

size_t vl__ggml_row_bytes(uint32_t type, int64_t n) {
    switch (type) {
    case VL_GGML_Q8_0: return vl__q_row_bytes(VL_DTYPE_Q8_0, n);
    case VL_GGML_Q4_0: return vl__q_row_bytes(VL_DTYPE_Q4_0, n);
    case VL_GGML_Q4_K: return (size_t)(n / QK_K) * VL_GGML_Q4_K_BYTES;
    case VL_GGML_Q6_K: return (size_t)(n / QK_K) * VL_GGML_Q6_K_BYTES;
    default: return 0;
    }
}
