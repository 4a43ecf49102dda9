/* Shared by the kernel tests (test_kernels.c, test_kernels_ops.c): a deterministic xorshift
 * generator, random tensors in every float dtype, and the error measures the kernels are held
 * to (the rigorous f32 summation bound, relative error with a floor). */
#ifndef KERNEL_UTIL_H
#define KERNEL_UTIL_H

#include "vl_impl.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static inline float frand(void) { /* uniform in [-1, 1) */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((double)(rng_state >> 11) / (double)(1ull << 53) * 2.0 - 1.0);
}

static inline float *frand_buf(int64_t n, float scale) {
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof *p);
    for (int64_t i = 0; i < n; i++)
        p[i] = frand() * scale;
    return p;
}

static inline uint16_t to_bf16(float f) { /* round to nearest even */
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* Float tensor [d0] or [d0, d1] of dtype dt filled with random values in [-scale, scale). */
static inline struct vl_tensor make_tensor(enum vl_dtype dt, int ndim, int64_t d0, int64_t d1,
                                    float scale) {
    struct vl_tensor t = {.dtype = dt, .ndim = ndim, .ne = {d0, ndim == 2 ? d1 : 0}, .name = "t"};
    int64_t n = ndim == 2 ? d0 * d1 : d0;
    if (dt == VL_DTYPE_F32) {
        t.data = frand_buf(n, scale);
    } else {
        uint16_t *h = malloc((size_t)n * sizeof *h);
        for (int64_t i = 0; i < n; i++) {
            float f = frand() * scale;
            if (dt == VL_DTYPE_BF16) {
                h[i] = to_bf16(f);
            } else { /* a random normal F16 in (-1, 1): sign, exponent 1..14, mantissa */
                uint16_t mant = (uint16_t)(to_bf16(f) & 0x3ff), sign = f < 0 ? 0x8000 : 0;
                uint16_t ex = (uint16_t)(1 + (to_bf16(frand()) & 0xff) % 14);
                h[i] = (uint16_t)(sign | ex << 10 | mant);
            }
        }
        t.data = h;
    }
    return t;
}

static inline float at(const struct vl_tensor *t, int64_t i) {
    float f;
    vl__to_f32(&f, t, i, 1);
    return f;
}

/* Worst |got - want| / (FLT_EPSILON * bound_i), where bound_i = terms * sum|products| is the
 * rigorous f32 summation error bound; <= 1 passes. */
static inline double worst_dot_err(const float *got, const float *want, const float *absdot,
                            int64_t count, int64_t terms) {
    double worst = 0.0;
    for (int64_t i = 0; i < count; i++) {
        double bound = (double)FLT_EPSILON * (double)(terms + 2) * ((double)absdot[i] + 1e-30);
        double e = fabs((double)got[i] - (double)want[i]) / bound;
        worst = e > worst ? e : worst;
    }
    return worst;
}

/* absdot[i, o] = sum_k |x[i,k] w[o,k]| + |b[o]| */
static inline void abs_linear(float *absdot, const float *x, int64_t n, const struct vl_tensor *w,
                       const struct vl_tensor *b) {
    int64_t out = w->ne[0], in = w->ne[1];
    for (int64_t i = 0; i < n; i++)
        for (int64_t o = 0; o < out; o++) {
            double s = b ? fabs((double)at(b, o)) : 0.0;
            for (int64_t k = 0; k < in; k++)
                s += fabs((double)x[i * in + k] * (double)at(w, o * in + k));
            absdot[i * out + o] = (float)s;
        }
}

static inline double max_rel(const float *got, const float *want, int64_t n, double floor) {
    double worst = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - (double)want[i]) / (fabs((double)want[i]) + floor);
        worst = e > worst ? e : worst;
    }
    return worst;
}

static const enum vl_dtype float_types[] = {VL_DTYPE_F32, VL_DTYPE_F16, VL_DTYPE_BF16};
#define N_FLOAT_TYPES 3

#endif
