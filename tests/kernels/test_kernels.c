/* Unit tests of libvl's compute kernels (model/vl_ops*.c, vl_compute.c, vl_pool.c): exact
 * BF16/F16 widening over all 65536 codes, every SIMD kernel against its scalar twin and every
 * pool front end against its _ref, on random data and odd sizes (1, 3, 17, non-multiples of the
 * SIMD width), with 1 and 2 threads, on both the dispatched and the scalar table. Attention, row and
 * elementwise kernels are in test_kernels_ops.c. */
#include "kernel_util.h"
#include "t.h"
#include "vl_impl.h"

#include <float.h>
#include <stdatomic.h>

/* ---- dtype conversions ------------------------------------------------------------------- */

static void test_conversions(void) {
    int bad_bf16 = 0, bad_f16 = 0, bad_simd = 0;
    const struct vl_simd *tabs[VL_SIMD_MAX_TABLES];
    const int n_tabs = vl__simd_tables(tabs);
    static uint16_t all[65536];
    static float wide[65536];
    for (uint32_t h = 0; h < 65536; h++)
        all[h] = (uint16_t)h;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = vl__bf16_to_f32((uint16_t)h);
        uint32_t u;
        memcpy(&u, &f, sizeof u);
        bad_bf16 += u != h << 16;
        /* F16 by definition: (-1)^s 2^(e-15) (1 + m/1024), subnormal 2^-14 m/1024 */
        uint32_t s = h >> 15, e = (h >> 10) & 0x1f, m = h & 0x3ff;
        double ref = e == 0 ? ldexp((double)m, -24)
                   : e == 31 ? (m ? NAN : INFINITY)
                             : ldexp(1.0 + (double)m / 1024.0, (int)e - 15);
        if (s)
            ref = -ref;
        float g = vl__f16_to_f32((uint16_t)h);
        bad_f16 += isnan(ref) ? !isnan(g) : (double)g != ref || !signbit(g) != !signbit(ref);
    }
    T_EQ_I64(bad_bf16, 0);
    T_EQ_I64(bad_f16, 0);
    for (int ti = 0; ti < n_tabs; ti++) {
        if (!tabs[ti])
            continue;
        for (int bf = 0; bf < 2; bf++) {
            (bf ? tabs[ti]->widen_bf16 : tabs[ti]->widen_f16)(wide, all, 65536);
            for (uint32_t h = 0; h < 65536; h++) {
                float want = bf ? vl__bf16_to_f32((uint16_t)h) : vl__f16_to_f32((uint16_t)h);
                bad_simd += isnan(want) ? !isnan(wide[h])
                                        : memcmp(&want, &wide[h], sizeof want) != 0;
            }
        }
        /* odd lengths and offsets: the tails */
        for (int64_t n = 0; n < 40; n++) {
            float buf[41];
            buf[n] = 12345.0f;
            tabs[ti]->widen_bf16(buf, all + 3 + n, n);
            for (int64_t i = 0; i < n; i++)
                bad_simd += buf[i] != vl__bf16_to_f32(all[3 + n + i]);
            bad_simd += buf[n] != 12345.0f; /* no write past the end */
        }
    }
    T_EQ_I64(bad_simd, 0);
    /* vl__to_f32 on a tensor with an offset */
    uint16_t bf[5] = {0x3f80, 0x4000, 0xbf80, 0x7f80, 0x0001};
    struct vl_tensor t = {.dtype = VL_DTYPE_BF16, .ndim = 1, .ne = {5}, .data = bf, .name = "b"};
    float out[3];
    vl__to_f32(out, &t, 1, 3);
    T_CHECK(out[0] == 2.0f && out[1] == -1.0f && isinf(out[2]));
}

/* ---- pool -------------------------------------------------------------------------------- */

struct pool_probe {
    struct vl_pool *pool;
    atomic_int hits[8];
    atomic_int chunks_seen[1000];
    atomic_int nth_seen;
};

static void probe_run(void *arg, int ith, int nth) {
    struct pool_probe *p = arg;
    atomic_fetch_add(&p->hits[ith], 1);
    atomic_store(&p->nth_seen, nth);
    for (;;) {
        int64_t c = vl__pool_next_chunk(p->pool);
        if (c >= 1000)
            break;
        atomic_fetch_add(&p->chunks_seen[c], 1);
    }
}

static void test_pool(void) {
    for (int nt = 1; nt <= 3; nt++) {
        struct pool_probe *p = calloc(1, sizeof *p);
        p->pool = vl__pool_new(nt);
        T_CHECK(p->pool != NULL);
        T_EQ_I64(vl__pool_size(p->pool), nt);
        int bad = 0;
        for (int rep = 0; rep < 200; rep++) {
            for (int c = 0; c < 1000; c++)
                atomic_store(&p->chunks_seen[c], 0);
            vl__pool_run(p->pool, probe_run, p);
            for (int c = 0; c < 1000; c++)
                bad += atomic_load(&p->chunks_seen[c]) != 1;
            bad += atomic_load(&p->nth_seen) != nt;
        }
        for (int i = 0; i < nt; i++)
            bad += atomic_load(&p->hits[i]) != 200;
        T_EQ_I64(bad, 0);
        vl__pool_free(p->pool);
        free(p);
    }
    /* allocation failures in vl__compute_init (pool, thread array, scratch): a clean
     * VL_ERR_NOMEM with the context zeroed, then success once allocation works again */
    int clean = 1, ok_at = 0;
    for (int64_t k = 1; k <= 8 && !ok_at; k++) {
        struct vl_compute c;
        struct vl_error err = {0};
        vl__alloc_fail_after(k);
        enum vl_status st = vl__compute_init(&c, 2, 64, 64, &err);
        vl__alloc_fail_after(0);
        if (st == VL_OK) {
            ok_at = (int)k;
            vl__compute_free(&c);
        } else {
            clean &= st == VL_ERR_NOMEM && err.msg[0] && !c.pool && !c.scratch;
        }
    }
    T_CHECK(clean);
    T_CHECK(ok_at > 1);
    T_EQ_I64(vl__pool_size(NULL), 1);
    T_CHECK(vl__pool_new(0) == NULL);
    vl__pool_free(NULL);
}

/* vl__pool_claim: every unit claimed once, each claim within [min, max] but the last (which
 * takes the rest), and claims shrinking (guided), at 1 to 3 workers. */
struct claim_probe {
    struct vl_pool *pool;
    int64_t total, div, min, max;
    atomic_int seen[5000];
    atomic_int bad; /* claims outside the rules */
};

static void claim_run(void *arg, int ith, int nth) {
    struct claim_probe *p = arg;
    int64_t r0, r1, prev = INT64_MAX;
    (void)ith;
    (void)nth;
    while (vl__pool_claim(p->pool, p->total, p->div, p->min, p->max, &r0, &r1)) {
        int64_t len = r1 - r0;
        if (len < 1 || len > p->max || (len < p->min && r1 != p->total) || len > prev)
            atomic_fetch_add(&p->bad, 1);
        prev = len;
        for (int64_t i = r0; i < r1; i++)
            atomic_fetch_add(&p->seen[i], 1);
    }
}

static void test_pool_claim(void) {
    static const int64_t totals[] = {0, 1, 7, 64, 1000, 4999};
    static const int64_t rules[][3] = {{1, 1, INT64_MAX}, {4, 3, 1000}, {2, 16, 16}, {4, 1, 5}};
    for (int nt = 1; nt <= 3; nt++) {
        struct claim_probe *p = calloc(1, sizeof *p);
        p->pool = vl__pool_new(nt);
        T_CHECK(p->pool != NULL);
        int bad = 0;
        for (size_t a = 0; a < sizeof totals / sizeof *totals; a++)
            for (size_t r = 0; r < sizeof rules / sizeof *rules; r++)
                for (int rep = 0; rep < 20; rep++) {
                    p->total = totals[a];
                    p->div = rules[r][0];
                    p->min = rules[r][1];
                    p->max = rules[r][2];
                    for (int i = 0; i < 5000; i++)
                        atomic_store(&p->seen[i], 0);
                    vl__pool_run(p->pool, claim_run, p);
                    for (int64_t i = 0; i < 5000; i++)
                        bad += atomic_load(&p->seen[i]) != (i < p->total);
                }
        T_EQ_I64(bad, 0);
        T_EQ_I64(atomic_load(&p->bad), 0);
        vl__pool_free(p->pool);
        free(p);
    }
}

/* ---- GEMV kernels (table level) ---------------------------------------------------------- */

static void test_gemv_tables(void) {
    static const int64_t rows_list[] = {1, 3, 4, 5, 17, 67};
    /* 16/32-wide blocks, their 2x unrolls, and tails of each */
    static const int64_t in_list[] = {1, 3, 15, 16, 17, 33, 80, 100, 2053};
    const struct vl_simd *tabs[VL_SIMD_MAX_TABLES];
    const int n_tabs = vl__simd_tables(tabs);
    double worst = 0.0;
    for (int ti = 0; ti < n_tabs; ti++) {
        if (!tabs[ti])
            continue;
        for (size_t a = 0; a < sizeof rows_list / sizeof *rows_list; a++)
            for (size_t bi = 0; bi < sizeof in_list / sizeof *in_list; bi++)
                for (int d = 0; d < N_FLOAT_TYPES; d++) {
                    int64_t rows = rows_list[a], in = in_list[bi];
                    struct vl_tensor w = make_tensor(float_types[d], 2, rows, in, 1.0f);
                    float *x = frand_buf(in, 1.0f);
                    float *got = calloc((size_t)rows + 2, sizeof *got);
                    float *want = calloc((size_t)rows + 2, sizeof *want);
                    float *absd = calloc((size_t)rows, sizeof *absd);
                    got[rows + 1] = want[rows + 1] = 7.0f;
                    /* rows [1, rows) through the kernel, row 0 separately: both bounds used */
                    switch (w.dtype) {
                    case VL_DTYPE_BF16: {
                        float *xp = malloc((size_t)in * sizeof *xp);
                        tabs[ti]->gemv_bf16_prep(xp, x, in);
                        tabs[ti]->gemv_bf16(got, xp, w.data, in, 1, rows);
                        tabs[ti]->gemv_bf16(got, xp, w.data, in, 0, 1);
                        /* four rows at once: the same x four times, outputs 4 x (rows + 2) */
                        float *xp4 = malloc((size_t)(4 * in) * sizeof *xp4);
                        float *y4 = calloc((size_t)(4 * (rows + 2)), sizeof *y4);
                        for (int j = 0; j < 4; j++)
                            memcpy(xp4 + j * in, xp, (size_t)in * sizeof *xp4);
                        tabs[ti]->gemv_bf16_x4(y4, rows + 2, xp4, w.data, in, 0, rows);
                        int same = 1;
                        for (int j = 0; j < 4; j++)
                            for (int64_t r = 0; r < rows; r++)
                                same &= fabsf(y4[j * (rows + 2) + r] - got[r]) <=
                                        1e-6f * (1.0f + fabsf(got[r])) * (float)in;
                        T_CHECK_MSG(same, "gemv_bf16_x4 %s rows %lld in %lld", tabs[ti]->name,
                                    (long long)rows, (long long)in);
                        /* eight rows at once, the same way */
                        float *xp8 = malloc((size_t)(8 * in) * sizeof *xp8);
                        float *y8 = calloc((size_t)(8 * (rows + 2)), sizeof *y8);
                        for (int j = 0; j < 8; j++)
                            memcpy(xp8 + j * in, xp, (size_t)in * sizeof *xp8);
                        tabs[ti]->gemv_bf16_x8(y8, rows + 2, xp8, w.data, in, 0, rows);
                        same = 1;
                        for (int j = 0; j < 8; j++)
                            for (int64_t r = 0; r < rows; r++)
                                same &= fabsf(y8[j * (rows + 2) + r] - got[r]) <=
                                        1e-6f * (1.0f + fabsf(got[r])) * (float)in;
                        T_CHECK_MSG(same, "gemv_bf16_x8 %s rows %lld in %lld", tabs[ti]->name,
                                    (long long)rows, (long long)in);
                        free(xp8);
                        free(y8);
                        free(xp4);
                        free(y4);
                        free(xp);
                        break;
                    }
                    case VL_DTYPE_F16:
                        tabs[ti]->gemv_f16(got, x, w.data, in, 0, rows);
                        break;
                    default: tabs[ti]->gemv_f32(got, x, w.data, in, 0, rows); break;
                    }
                    vl__gemv_rows_ref(want, x, &w, 0, rows);
                    abs_linear(absd, x, 1, &w, NULL);
                    double e = worst_dot_err(got, want, absd, rows, in);
                    worst = e > worst ? e : worst;
                    T_CHECK_MSG(e <= 1.0, "gemv %s dtype %d rows %lld in %lld: err %.3g",
                                tabs[ti]->name, (int)w.dtype, (long long)rows, (long long)in, e);
                    T_CHECK(got[rows + 1] == 7.0f);
                    free((void *)w.data);
                    free(x);
                    free(got);
                    free(want);
                    free(absd);
                }
    }
    printf("gemv: worst error %.3g of the f32 summation bound\n", worst);
}

/* ---- vl__linear (both paths, 1 and 2 threads) -------------------------------------------- */

static void test_linear(void) {
    static const int64_t n_list[] = {1, 2, 3, 4, 5, 9, 17, 32, 33};
    static const int64_t out_list[] = {1, 3, 17, 70};
    static const int64_t in_list[] = {1, 3, 17, 33, 130};
    for (int nt = 1; nt <= 2; nt++) {
        struct vl_compute c;
        struct vl_error err = {0};
        /* max_out 16: weights of 70 rows take several panels (and a remainder) */
        T_CHECK(vl__compute_init(&c, nt, 16, 130, &err) == VL_OK);
        for (size_t a = 0; a < sizeof n_list / sizeof *n_list; a++)
            for (size_t o = 0; o < sizeof out_list / sizeof *out_list; o++)
                for (size_t k = 0; k < sizeof in_list / sizeof *in_list; k++)
                    for (int d = 0; d < N_FLOAT_TYPES; d++)
                        for (int with_b = 0; with_b < 2; with_b++) {
                            int64_t n = n_list[a], out = out_list[o], in = in_list[k];
                            struct vl_tensor w = make_tensor(float_types[d], 2, out, in, 1.0f);
                            struct vl_tensor b =
                                make_tensor(float_types[(d + 1) % N_FLOAT_TYPES], 1, out, 0, 1.0f);
                            float *x = frand_buf(n * in, 1.0f);
                            float *got = calloc((size_t)(n * out), sizeof *got);
                            float *got2 = calloc((size_t)(n * out), sizeof *got2);
                            float *want = calloc((size_t)(n * out), sizeof *want);
                            float *absd = calloc((size_t)(n * out), sizeof *absd);
                            const struct vl_tensor *bp = with_b ? &b : NULL;
                            vl__linear(&c, got, x, n, &w, bp);
                            vl__linear_gemv(&c, got2, x, n, &w, bp);
                            vl__linear_ref(want, x, n, &w, bp);
                            abs_linear(absd, x, n, &w, bp);
                            double e1 = worst_dot_err(got, want, absd, n * out, in + 1);
                            double e2 = worst_dot_err(got2, want, absd, n * out, in + 1);
                            T_CHECK_MSG(e1 <= 1.0 && e2 <= 1.0,
                                        "linear t%d n %lld out %lld in %lld dtype %d b %d: "
                                        "err %.3g / gemv %.3g",
                                        nt, (long long)n, (long long)out, (long long)in, (int)d,
                                        with_b, e1, e2);
                            free((void *)w.data);
                            free((void *)b.data);
                            free(x);
                            free(got);
                            free(got2);
                            free(want);
                            free(absd);
                        }
        vl__compute_free(&c);
        T_CHECK(c.pool == NULL && c.scratch == NULL);
    }
    /* the GEMM path on a large n with a real panel split (forced: n > GEMV_MAX_N) */
    struct vl_compute c;
    struct vl_error err = {0};
    T_CHECK(vl__compute_init(&c, 2, 300, 257, &err) == VL_OK);
    struct vl_tensor w = make_tensor(VL_DTYPE_BF16, 2, 300, 257, 1.0f);
    int64_t n = 41;
    float *x = frand_buf(n * 257, 1.0f);
    float *got = calloc((size_t)(n * 300), sizeof *got);
    float *want = calloc((size_t)(n * 300), sizeof *want);
    float *absd = calloc((size_t)(n * 300), sizeof *absd);
    struct vl_tensor bias = make_tensor(VL_DTYPE_BF16, 1, 300, 0, 1.0f);
    vl__linear_gemm(&c, got, x, n, &w, &bias);
    vl__linear_ref(want, x, n, &w, &bias);
    abs_linear(absd, x, n, &w, &bias);
    free((void *)bias.data);
    T_CHECK(worst_dot_err(got, want, absd, n * 300, 257) <= 1.0);
    free((void *)w.data);
    free(x);
    free(got);
    free(want);
    free(absd);
    vl__compute_free(&c);
    vl__compute_free(NULL);
    struct vl_error e2 = {0};
    T_CHECK(vl__compute_init(&c, 0, 1, 1, &e2) == VL_ERR_INVALID && e2.msg[0]);
}

/* ---- GEMM -------------------------------------------------------------------------------- */

/* vl__linear_multi and vl__linear_swiglu (the decode step's fused GEMVs) give exactly what the
 * separate calls give (swiglu: up exactly, gate as the SiLU reference to f32 round-off, and
 * identical from run to run): q/k/v-like outputs of different row counts (not multiples of the claim
 * unit), with and without biases, one dtype and mixed (which runs them one by one), every n on
 * both sides of VL_LINEAR_GEMV_MAX_N, 1 and 2 threads; repeated runs are identical. */
static void test_linear_fused(void) {
    static const int64_t n_list[] = {1, 2, 4, 5, 32, 33};
    static const int64_t rows[3] = {37, 5, 130};
    static const int64_t in_list[] = {3, 130};
    for (int nt = 1; nt <= 2; nt++) {
        struct vl_compute c;
        struct vl_error err = {0};
        T_CHECK(vl__compute_init(&c, nt, 16, 130, &err) == VL_OK);
        for (size_t a = 0; a < sizeof n_list / sizeof *n_list; a++)
            for (size_t k = 0; k < sizeof in_list / sizeof *in_list; k++)
                for (int d = 0; d < N_FLOAT_TYPES + 1; d++) { /* the last: mixed dtypes */
                    const int64_t n = n_list[a], in = in_list[k];
                    struct vl_tensor w[3], b[3];
                    struct vl_linear_out o[3], o2[3];
                    float *x = frand_buf(n * in, 1.0f);
                    int diff = 0;
                    for (int j = 0; j < 3; j++) {
                        enum vl_dtype dt = float_types[d < N_FLOAT_TYPES ? d : j % N_FLOAT_TYPES];
                        w[j] = make_tensor(dt, 2, rows[j], in, 1.0f);
                        b[j] = make_tensor(VL_DTYPE_BF16, 1, rows[j], 0, 1.0f);
                        o[j] = (struct vl_linear_out){
                            .y = calloc((size_t)(n * rows[j]), sizeof(float)),
                            .w = &w[j],
                            .b = j == 1 ? NULL : &b[j]};
                        o2[j] = o[j];
                        o2[j].y = calloc((size_t)(n * rows[j]), sizeof(float));
                    }
                    for (int rep = 0; rep < 3; rep++) {
                        vl__linear_multi(&c, x, n, o, 3);
                        for (int j = 0; j < 3; j++) {
                            vl__linear(&c, o2[j].y, x, n, o2[j].w, o2[j].b);
                            diff += memcmp(o[j].y, o2[j].y, (size_t)(n * rows[j]) * sizeof(float));
                        }
                    }
                    /* swiglu: gate and up of outputs 0 and 2's shape (both 130 rows) */
                    struct vl_tensor wu = make_tensor(w[0].dtype, 2, rows[2], in, 1.0f);
                    float *g = calloc((size_t)(n * rows[2]), sizeof *g);
                    float *u = calloc((size_t)(n * rows[2]), sizeof *u);
                    float *g2 = calloc((size_t)(n * rows[2]), sizeof *g2);
                    float *u2 = calloc((size_t)(n * rows[2]), sizeof *u2);
                    const size_t gbytes = (size_t)(n * rows[2]) * sizeof *g;
                    vl__linear(&c, g2, x, n, &w[2], NULL);
                    vl__linear(&c, u2, x, n, &wu, NULL);
                    vl__silu_mul_ref(g2, u2, n * rows[2]);
                    float *first = malloc(gbytes);
                    for (int rep = 0; rep < 3; rep++) { /* claims differ run to run, results not */
                        vl__linear_swiglu(&c, g, u, x, n, &w[2], &wu);
                        if (rep == 0)
                            memcpy(first, g, gbytes);
                        diff += memcmp(g, first, gbytes) != 0;
                        diff += memcmp(u, u2, gbytes) != 0;
                    }
                    T_CHECK_MSG(max_rel(g, g2, n * rows[2], 1e-30) < 1e-5, "swiglu: %.3g",
                                max_rel(g, g2, n * rows[2], 1e-30));
                    free(first);
                    T_CHECK_MSG(diff == 0, "fused linear t%d n %lld in %lld dtype %d", nt,
                                (long long)n, (long long)in, d);
                    for (int j = 0; j < 3; j++) {
                        free((void *)w[j].data);
                        free((void *)b[j].data);
                        free(o[j].y);
                        free(o2[j].y);
                    }
                    free((void *)wu.data);
                    free(x);
                    free(g);
                    free(u);
                    free(g2);
                    free(u2);
                }
        vl__compute_free(&c);
    }
    /* Weights large enough for many claims: the fused SiLU splits vectors from the scalar tail
     * exactly as the kernel over each whole row does (claims are whole vectors), so gate is
     * bit-identical to that however the rows were claimed. */
    struct vl_compute c;
    struct vl_error err = {0};
    T_CHECK(vl__compute_init(&c, 2, 16, 520, &err) == VL_OK);
    const int64_t out = 1000, in = 520;
    struct vl_tensor wg = make_tensor(VL_DTYPE_BF16, 2, out, in, 1.0f);
    struct vl_tensor wu = make_tensor(VL_DTYPE_BF16, 2, out, in, 1.0f);
    for (int64_t n = 1; n <= 3; n += 2) {
        float *x = frand_buf(n * in, 1.0f);
        float *g = calloc((size_t)(n * out), sizeof *g), *u = calloc((size_t)(n * out), sizeof *u);
        float *g2 = calloc((size_t)(n * out), sizeof *g2);
        float *u2 = calloc((size_t)(n * out), sizeof *u2);
        vl__linear(&c, g2, x, n, &wg, NULL);
        vl__linear(&c, u2, x, n, &wu, NULL);
        for (int64_t i = 0; i < n; i++)
            vl__simd()->silu_mul(g2 + i * out, u2 + i * out, out);
        int diff = 0;
        for (int rep = 0; rep < 20; rep++) {
            vl__linear_swiglu(&c, g, u, x, n, &wg, &wu);
            diff += memcmp(g, g2, (size_t)(n * out) * sizeof *g) != 0;
        }
        T_CHECK_MSG(diff == 0, "swiglu n %lld: %d of 20 runs differ from the whole-row SiLU",
                    (long long)n, diff);
        free(x);
        free(g);
        free(u);
        free(g2);
        free(u2);
    }
    free((void *)wg.data);
    free((void *)wu.data);
    vl__compute_free(&c);
}

static void test_gemm(void) {
    struct vl_compute c;
    struct vl_error err = {0};
    T_CHECK(vl__compute_init(&c, 2, 1, 1, &err) == VL_OK);
    static const int64_t dims[] = {1, 3, 17, 40};
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (size_t i = 0; i < 4; i++)
                for (size_t j = 0; j < 4; j++)
                    for (size_t l = 0; l < 4; l++) {
                        int64_t m = dims[i], n = dims[j], k = dims[l];
                        int64_t lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 1, ldc = n + 2;
                        float *a = frand_buf((ta ? k : m) * lda, 1.0f);
                        float *b = frand_buf((tb ? n : k) * ldb, 1.0f);
                        float *c1 = frand_buf(m * ldc, 1.0f);
                        float *c2 = malloc((size_t)(m * ldc) * sizeof *c2);
                        memcpy(c2, c1, (size_t)(m * ldc) * sizeof *c2);
                        vl__gemm_f32(&c, ta, tb, m, n, k, 0.5f, a, lda, b, ldb, 0.25f, c1, ldc);
                        vl__gemm_f32_ref(ta, tb, m, n, k, 0.5f, a, lda, b, ldb, 0.25f, c2, ldc);
                        T_CHECK_MSG(max_rel(c1, c2, m * ldc, 1.0) < 1e-5,
                                    "gemm ta %d tb %d m %lld n %lld k %lld", ta, tb, (long long)m,
                                    (long long)n, (long long)k);
                        free(a);
                        free(b);
                        free(c1);
                        free(c2);
                    }
    /* large enough to be split over the pool: by rows (m >= n) and by columns (m < n) */
    static const int64_t big[2][3] = {{70, 40, 1000}, {20, 300, 400}};
    for (int sh = 0; sh < 2; sh++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                int64_t m = big[sh][0], n = big[sh][1], k = big[sh][2];
                int64_t lda = ta ? m : k, ldb = tb ? k : n, ldc = n + 5;
                float *a = frand_buf((ta ? k : m) * lda, 1.0f);
                float *b = frand_buf((tb ? n : k) * ldb, 1.0f);
                float *c1 = frand_buf(m * ldc, 1.0f);
                float *c2 = malloc((size_t)(m * ldc) * sizeof *c2);
                memcpy(c2, c1, (size_t)(m * ldc) * sizeof *c2);
                vl__gemm_f32(&c, ta, tb, m, n, k, 1.0f, a, lda, b, ldb, 1.0f, c1, ldc);
                vl__gemm_f32_ref(ta, tb, m, n, k, 1.0f, a, lda, b, ldb, 1.0f, c2, ldc);
                T_CHECK_MSG(max_rel(c1, c2, m * ldc, 1.0) < 1e-4, "split gemm %d ta %d tb %d: %.3g",
                            sh, ta, tb, max_rel(c1, c2, m * ldc, 1.0));
                free(a);
                free(b);
                free(c1);
                free(c2);
            }
    vl__compute_free(&c);
}

/* A GEMM issued from inside a pool task runs on that worker (no nested dispatch / deadlock). */
struct nested_gemm {
    struct vl_compute *c;
    const float *a, *b;
    float *out; /* (2, 64, 64) one product per slice */
};

static void nested_gemm_run(void *arg, int ith, int nth) {
    const struct nested_gemm *t = arg;
    (void)nth;
    vl__gemm_f32(t->c, false, false, 64, 64, 1024, 1.0f, t->a, 1024, t->b, 64, 0.0f,
                 t->out + ith * 64 * 64, 64);
}

static void test_gemm_nested(void) {
    struct vl_compute c;
    struct vl_error err = {0};
    T_CHECK(vl__compute_init(&c, 2, 1, 1, &err) == VL_OK);
    float *a = frand_buf(64 * 1024, 1.0f), *b = frand_buf(1024 * 64, 1.0f);
    float *out = calloc(2 * 64 * 64, sizeof *out), *want = calloc(64 * 64, sizeof *want);
    struct nested_gemm t = {&c, a, b, out};
    vl__pool_run(c.pool, nested_gemm_run, &t);
    vl__gemm_f32_ref(false, false, 64, 64, 1024, 1.0f, a, 1024, b, 64, 0.0f, want, 64);
    T_CHECK(max_rel(out, want, 64 * 64, 1.0) < 1e-4);
    T_CHECK(max_rel(out + 64 * 64, want, 64 * 64, 1.0) < 1e-4);
    free(a);
    free(b);
    free(out);
    free(want);
    vl__compute_free(&c);
}

/* ---- OpenBLAS kernel family check -------------------------------------------------------- */

/* vl__blas_core_pick(cpu, core) is want (NULL: no change needed) */
static bool picks(enum vl_cpu_level cpu, const char *core, const char *want) {
    const char *got = vl__blas_core_pick(cpu, core);
    return want ? got && !strcmp(got, want) : got == NULL;
}

static void test_blas_core_pick(void) {
    T_CHECK(picks(VL_CPU_AVX512, "Prescott", "SkylakeX"));
    T_CHECK(picks(VL_CPU_AVX512, "Haswell", "SkylakeX"));
    T_CHECK(picks(VL_CPU_AVX512, NULL, "SkylakeX"));
    T_CHECK(picks(VL_CPU_AVX512, "SkylakeX", NULL));
    T_CHECK(picks(VL_CPU_AVX512, "sapphirerapids", NULL));
    T_CHECK(picks(VL_CPU_AVX512, "Cooperlake", NULL));
    T_CHECK(picks(VL_CPU_AVX2, "Prescott", "Haswell"));
    T_CHECK(picks(VL_CPU_AVX2, "Sandybridge", "Haswell"));
    T_CHECK(picks(VL_CPU_AVX2, "", "Haswell"));
    T_CHECK(picks(VL_CPU_AVX2, "Zen", NULL));
    T_CHECK(picks(VL_CPU_AVX2, "SkylakeX", NULL));
    T_CHECK(picks(VL_CPU_BASELINE, "Prescott", NULL));
    T_CHECK(picks(VL_CPU_BASELINE, NULL, NULL));
    /* this machine: the level agrees with the SIMD tables, and docproc's re-exec target (if any)
     * is a family of that level */
    enum vl_cpu_level lv = vl__cpu_level();
    T_CHECK((lv >= VL_CPU_AVX2) == (vl__simd_avx2() != NULL));
    T_CHECK(lv < VL_CPU_AVX512 || vl__simd_avx512() != NULL);
    printf("openblas kernels: %s (upgrade: %s)\n", vl_blas_core(),
           vl_blas_core_upgrade() ? vl_blas_core_upgrade() : "none");
}

static void log_to_stderr(enum vl_log_level level, const char *msg, void *user) {
    (void)user;
    fprintf(stderr, "libvl[%d]: %s\n", (int)level, msg);
}

int main(void) {
    vl_log_set(log_to_stderr, NULL, VL_LOG_WARN);
    const struct vl_simd *tabs[VL_SIMD_MAX_TABLES];
    int n_tabs = vl__simd_tables(tabs);
    printf("kernels: dispatched %s; tables tested:", vl__simd()->name);
    for (int i = 0; i < n_tabs; i++)
        printf(" %s", tabs[i]->name);
    printf("\n");
    test_conversions();
    test_blas_core_pick();
    test_pool();
    test_pool_claim();
    test_gemv_tables();
    test_linear();
    test_linear_fused();
    test_gemm();
    test_gemm_nested();
    return t_done();
}
