/* Row independence of the decode GEMV (the basis of batch-invariant decoding, vl_seq.c): on every
 * SIMD table the one-row BF16 kernel gives each row bit-for-bit what the four- and eight-row
 * kernels give it (tables that claim gemv_bf16_row_invariant), and through the vl__linear front
 * end a row's output is the same whether it is computed alone or as one of 2..13 rows (groups
 * of 8 and 4 and leftovers), with the leftover rows
 * taken by the one-row kernel or by the padded four-row pass (vl__gemv_force_pad), at 1 and
 * 2 threads, for BF16, F16 and F32 weights, with and without bias. Also against the scalar twin
 * (vl__linear_ref) within the f32 dot-product bound. */
#include "t.h"
#include "vl_impl.h"

#include <float.h>

#define MAX_ROWS 13

static uint64_t rng = 0x2545f4914f6cdd1dull;

static float frand(void) { /* uniform in [-1, 1) */
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((double)(rng >> 11) / (double)(1ull << 53) * 2.0 - 1.0);
}

static uint16_t to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static uint16_t to_f16(float f) { /* small values in [-1, 1): normal or zero, truncated */
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    int e = (int)((u >> 23) & 0xff) - 127 + 15;
    if (e <= 0)
        return sign;
    return (uint16_t)(sign | (uint16_t)(e << 10) | (uint16_t)((u >> 13) & 0x3ffu));
}

static struct vl_tensor make(enum vl_dtype dt, int ndim, int64_t d0, int64_t d1) {
    struct vl_tensor t = {.dtype = dt, .ndim = ndim, .ne = {d0, ndim == 2 ? d1 : 0}, .name = "w"};
    int64_t n = ndim == 2 ? d0 * d1 : d0;
    if (dt == VL_DTYPE_F32) {
        float *p = malloc((size_t)n * sizeof *p);
        for (int64_t i = 0; i < n; i++)
            p[i] = frand();
        t.data = p;
    } else {
        uint16_t *p = malloc((size_t)n * sizeof *p);
        for (int64_t i = 0; i < n; i++)
            p[i] = dt == VL_DTYPE_BF16 ? to_bf16(frand()) : to_f16(frand());
        t.data = p;
    }
    return t;
}

/* Every table: one-row kernel == each row of the four- and eight-row kernels, bit for bit.
 * 600 = 2 k-tiles of the AVX-512 multi-row kernels + 2 blocks + a tail; 70 rows span three row
 * groups of them with an odd last row. */
#define ROWWISE_MAX_OUT 70
static void kernels_rowwise(void) {
    static const int64_t in_list[] = {16, 32, 48, 130, 600, 2048};
    static const int64_t out_list[] = {1, 2, 37, ROWWISE_MAX_OUT};
    const struct vl_simd *tabs[VL_SIMD_MAX_TABLES];
    int n_tabs = vl__simd_tables(tabs);
    for (int ti = 0; ti < n_tabs; ti++) {
        const struct vl_simd *t = tabs[ti];
        for (size_t k = 0; k < sizeof in_list / sizeof *in_list; k++)
            for (size_t o = 0; o < sizeof out_list / sizeof *out_list; o++) {
                const int64_t in = in_list[k], out = out_list[o];
                const int nx = VL_GEMV_X8_ROWS;
                struct vl_tensor w = make(VL_DTYPE_BF16, 2, out, in);
                float *x = malloc((size_t)(nx * in) * sizeof *x);
                float *xp = malloc((size_t)(nx * in) * sizeof *xp);
                for (int64_t i = 0; i < nx * in; i++)
                    x[i] = frand();
                for (int j = 0; j < nx; j++)
                    t->gemv_bf16_prep(xp + j * in, x + j * in, in);
                float y4[VL_GEMV_X_ROWS * ROWWISE_MAX_OUT], y8[VL_GEMV_X8_ROWS * ROWWISE_MAX_OUT];
                float y1[ROWWISE_MAX_OUT];
                t->gemv_bf16_x4(y4, out, xp, w.data, in, 0, out);
                t->gemv_bf16_x8(y8, out, xp, w.data, in, 0, out);
                int diff4 = 0, diff8 = 0;
                for (int j = 0; j < nx; j++) {
                    t->gemv_bf16(y1, xp + j * in, w.data, in, 0, out);
                    size_t bytes = (size_t)out * sizeof *y1;
                    if (j < VL_GEMV_X_ROWS)
                        diff4 += memcmp(y1, y4 + j * out, bytes) != 0;
                    diff8 += memcmp(y1, y8 + j * out, bytes) != 0;
                }
                if (t->gemv_bf16_row_invariant) {
                    T_CHECK_MSG(diff4 == 0, "%s in %lld out %lld: %d of 4 rows differ, x1/x4",
                                t->name, (long long)in, (long long)out, diff4);
                    T_CHECK_MSG(diff8 == 0, "%s in %lld out %lld: %d of 8 rows differ, x1/x8",
                                t->name, (long long)in, (long long)out, diff8);
                } else {
                    printf("%s in %lld: x1 and x4/x8 rows differ in %d/%d (padded path used)\n",
                           t->name, (long long)in, diff4, diff8);
                }
                free((void *)w.data);
                free(x);
                free(xp);
            }
    }
}

/* Front end: row r of an n-row call == the same row alone, for n = 1..MAX_ROWS. */
static void front_end_rows(int threads, bool pad) {
    static const enum vl_dtype dts[] = {VL_DTYPE_BF16, VL_DTYPE_F16, VL_DTYPE_F32};
    static const int64_t in_list[] = {17, 64, 130};
    static const int64_t out_list[] = {5, 70, 300};
    vl__gemv_force_pad = pad;
    struct vl_compute c;
    struct vl_error err = {0};
    T_CHECK(vl__compute_init(&c, threads, 300, 130, &err) == VL_OK);
    for (size_t d = 0; d < sizeof dts / sizeof *dts; d++)
        for (size_t a = 0; a < sizeof in_list / sizeof *in_list; a++)
            for (size_t o = 0; o < sizeof out_list / sizeof *out_list; o++)
                for (int with_b = 0; with_b < 2; with_b++) {
                    const int64_t in = in_list[a], out = out_list[o];
                    struct vl_tensor w = make(dts[d], 2, out, in);
                    struct vl_tensor b = make(VL_DTYPE_BF16, 1, out, 0);
                    const struct vl_tensor *bp = with_b ? &b : NULL;
                    float *x = malloc((size_t)(MAX_ROWS * in) * sizeof *x);
                    float *alone = malloc((size_t)(MAX_ROWS * out) * sizeof *alone);
                    float *got = malloc((size_t)(MAX_ROWS * out) * sizeof *got);
                    float *ref = malloc((size_t)(MAX_ROWS * out) * sizeof *ref);
                    for (int64_t i = 0; i < MAX_ROWS * in; i++)
                        x[i] = frand();
                    for (int r = 0; r < MAX_ROWS; r++)
                        vl__linear(&c, alone + r * out, x + r * in, 1, &w, bp);
                    vl__linear_ref(ref, x, MAX_ROWS, &w, bp);
                    double worst = 0;
                    for (int64_t i = 0; i < MAX_ROWS * out; i++) {
                        double e = fabs((double)alone[i] - (double)ref[i]);
                        worst = e > worst ? e : worst;
                    }
                    /* |sum| <= in, f32 rounding per step: a loose bound that still catches a
                     * wrong row or a dropped block */
                    T_CHECK_MSG(worst <= (double)(in + 1) * (double)in * FLT_EPSILON,
                                "t%d pad %d dtype %d in %lld out %lld: %.3g from the scalar twin",
                                threads, pad, (int)dts[d], (long long)in, (long long)out, worst);
                    int bad = 0;
                    for (int n = 2; n <= MAX_ROWS; n++) {
                        vl__linear(&c, got, x, n, &w, bp);
                        bad += memcmp(got, alone, (size_t)(n * out) * sizeof *got) != 0;
                    }
                    T_CHECK_MSG(bad == 0,
                                "t%d pad %d dtype %d in %lld out %lld b %d: %d row counts change "
                                "a row's bits",
                                threads, pad, (int)dts[d], (long long)in, (long long)out, with_b,
                                bad);
                    free((void *)w.data);
                    free((void *)b.data);
                    free(x);
                    free(alone);
                    free(got);
                    free(ref);
                }
    vl__compute_free(&c);
    vl__gemv_force_pad = false;
}

int main(void) {
    printf("dispatched table: %s\n", vl__simd()->name);
    kernels_rowwise();
    for (int threads = 1; threads <= 2; threads++)
        for (int pad = 0; pad < 2; pad++)
            front_end_rows(threads, pad);
    return t_done();
}
