/* Unit tests of libvl's attention, row and elementwise kernels (model/vl_ops*.c): fused
 * attention, RMSNorm, SiLU, GELU, softmax and the decode attention tables, every SIMD kernel
 * against its scalar twin on random data and odd sizes, with 1 and 2 threads, on both the
 * dispatched and the scalar table. GEMV/GEMM, pool and conversions are in test_kernels.c. */
#include "kernel_util.h"
#include "t.h"
#include "vl_impl.h"

#include <float.h>

/* ---- fused attention -------------------------------------------------------------------- */

/* Vision-like (packed qkv rows, window segments, bidirectional) and LLM-like (GQA, causal
 * against a longer key range, per-head cache layout) cases against the double reference. */
static void test_attention(void) {
    for (int nt = 1; nt <= 2; nt++) {
        struct vl_compute c;
        struct vl_error err = {0};
        /* max_in 16: a small scratch, so long key ranges get short query tiles */
        T_CHECK(vl__compute_init(&c, nt, 64, 16, &err) == VL_OK);
        /* vision: d = 3 heads x 8, segments of 5, 1, 17, 64, 3 rows */
        {
            const int64_t nh = 3, dh = 8, d = nh * dh;
            const int64_t cu[] = {0, 5, 6, 23, 87, 90};
            const int64_t n = cu[5];
            float *qkv = frand_buf(n * 3 * d, 2.0f);
            float *o1 = calloc((size_t)(n * d), sizeof *o1), *o2 = calloc((size_t)(n * d), sizeof *o2);
            float *sc = malloc(64 * sizeof *sc);
            struct vl_attn a = {
                .q = qkv, .k = qkv + d, .v = qkv + 2 * d, .out = o1,
                .ldq = 3 * d, .ldk = 3 * d, .ldv = 3 * d, .ldo = d,
                .q_head_stride = dh, .k_head_stride = dh, .v_head_stride = dh, .o_head_stride = dh,
                .n_heads = nh, .n_kv_heads = nh, .head_dim = dh, .scale = 0.35f,
                .q_cu = cu, .k_cu = cu, .n_seg = 5, .causal = false,
            };
            vl__attention(&c, &a);
            a.out = o2;
            vl__attention_ref(&a, sc);
            T_CHECK_MSG(max_rel(o1, o2, n * d, 1.0) < 1e-5, "vision attention t%d: %.3g", nt,
                        max_rel(o1, o2, n * d, 1.0));
            free(qkv);
            free(o1);
            free(o2);
            free(sc);
        }
        /* LLM: 4 query heads over 2 KV heads, hd 16, 7 new rows after 300 cached (causal), the
         * cache as (kv_head, ctx, hd) with ctx 320; and a 1-row decode step */
        for (int dec = 0; dec < 2; dec++) {
            const int64_t nq = 4, nkv = 2, hd = 16, ctx = 320, start = 300, n = dec ? 1 : 7;
            float *q = frand_buf(n * nq * hd, 1.0f);
            float *kc = frand_buf(nkv * ctx * hd, 1.0f), *vc = frand_buf(nkv * ctx * hd, 1.0f);
            float *o1 = calloc((size_t)(n * nq * hd), sizeof *o1);
            float *o2 = calloc((size_t)(n * nq * hd), sizeof *o2);
            float *sc = malloc((size_t)(start + n) * sizeof *sc);
            const int64_t qcu[] = {0, n}, kcu[] = {0, start + n};
            struct vl_attn a = {
                .q = q, .k = kc, .v = vc, .out = o1,
                .ldq = nq * hd, .ldk = hd, .ldv = hd, .ldo = nq * hd,
                .q_head_stride = hd, .k_head_stride = ctx * hd, .v_head_stride = ctx * hd,
                .o_head_stride = hd, .n_heads = nq, .n_kv_heads = nkv, .head_dim = hd,
                .scale = 0.25f, .q_cu = qcu, .k_cu = kcu, .n_seg = 1, .causal = true,
            };
            vl__attention(&c, &a);
            a.out = o2;
            vl__attention_ref(&a, sc);
            T_CHECK_MSG(max_rel(o1, o2, n * nq * hd, 1.0) < 1e-5, "llm attention t%d n %lld: %.3g",
                        nt, (long long)n, max_rel(o1, o2, n * nq * hd, 1.0));
            free(q);
            free(kc);
            free(vc);
            free(o1);
            free(o2);
            free(sc);
        }
        vl__compute_free(&c);
    }
}

/* ---- RMSNorm, SiLU, GELU, softmax -------------------------------------------------------- */

static void test_rows_and_elementwise(void) {
    static const int64_t n_list[] = {1, 3, 17};
    static const int64_t d_list[] = {1, 3, 17, 1280, 2053};
    const struct vl_simd *tabs[VL_SIMD_MAX_TABLES];
    const int n_tabs = vl__simd_tables(tabs);
    for (int nt = 1; nt <= 2; nt++) {
        struct vl_compute c;
        struct vl_error err = {0};
        T_CHECK(vl__compute_init(&c, nt, 16, 2053, &err) == VL_OK);
        for (size_t a = 0; a < 3; a++)
            for (size_t b = 0; b < 5; b++)
                for (int dt = 0; dt < N_FLOAT_TYPES; dt++) {
                    int64_t n = n_list[a], d = d_list[b];
                    struct vl_tensor w = make_tensor(float_types[dt], 1, d, 0, 2.0f);
                    float *x = frand_buf(n * d, 3.0f);
                    float *y = calloc((size_t)(n * d), sizeof *y);
                    float *want = calloc((size_t)(n * d), sizeof *want);
                    vl__rmsnorm(&c, y, x, n, d, &w, 1e-6f);
                    vl__rmsnorm_ref(want, x, n, d, &w, 1e-6f);
                    T_CHECK_MSG(max_rel(y, want, n * d, 1e-6) < 1e-5, "rmsnorm n %lld d %lld",
                                (long long)n, (long long)d);
                    vl__rmsnorm(&c, x, x, n, d, &w, 1e-6f); /* in place */
                    T_CHECK(max_rel(x, want, n * d, 1e-6) < 1e-5);
                    free((void *)w.data);
                    free(x);
                    free(y);
                    free(want);
                }
        static const int64_t e_list[] = {1, 3, 17, 100, 20001};
        for (size_t a = 0; a < 5; a++) {
            int64_t n = e_list[a];
            float *g = frand_buf(n, 12.0f), *u = frand_buf(n, 2.0f);
            float *g2 = malloc((size_t)n * sizeof *g2);
            memcpy(g2, g, (size_t)n * sizeof *g2);
            g[0] = 100.0f; /* exp(-x) underflow / overflow ends */
            g2[0] = 100.0f;
            if (n > 1) {
                g[1] = g2[1] = -100.0f;
            }
            vl__silu_mul(&c, g, u, n);
            vl__silu_mul_ref(g2, u, n);
            T_CHECK_MSG(max_rel(g, g2, n, 1e-30) < 1e-5, "silu_mul n %lld: %.3g", (long long)n,
                        max_rel(g, g2, n, 1e-30));
            float *x = frand_buf(n, 6.0f), *x2 = malloc((size_t)n * sizeof *x2);
            memcpy(x2, x, (size_t)n * sizeof *x2);
            vl__gelu(&c, x, n);
            vl__gelu_ref(x2, n);
            T_CHECK(max_rel(x, x2, n, 0.0) == 0.0);
            free(g);
            free(g2);
            free(u);
            free(x);
            free(x2);
        }
        vl__compute_free(&c);
    }
    /* known values */
    float gl[3] = {0.0f, 1.0f, -3.0f};
    vl__gelu(NULL, gl, 3);
    T_NEAR(gl[1], 0.8413447460685429, 1e-6);
    T_NEAR(gl[2], -0.0040496977, 1e-7);
    /* softmax: both tables, odd widths, masked entries and a fully masked row */
    for (int ti = 0; ti < n_tabs; ti++) {
        if (!tabs[ti])
            continue;
        static const int64_t w_list[] = {1, 3, 8, 17, 64, 4409};
        for (size_t a = 0; a < 6; a++) {
            int64_t d = w_list[a], n = 3;
            float *x = frand_buf(n * d, 30.0f), *x2 = malloc((size_t)(n * d) * sizeof *x2);
            for (int64_t k = d / 2 + 1; k < d; k++)
                x[d + k] = -INFINITY; /* row 1: causal-style mask */
            for (int64_t k = 0; k < d; k++)
                x[2 * d + k] = -INFINITY; /* row 2: fully masked */
            memcpy(x2, x, (size_t)(n * d) * sizeof *x2);
            tabs[ti]->softmax_rows(x, n, d);
            vl__softmax_rows_ref(x2, n, d);
            T_CHECK_MSG(max_rel(x, x2, n * d, 1e-30) < 2e-6, "softmax %s d %lld: %.3g",
                        tabs[ti]->name, (long long)d, max_rel(x, x2, n * d, 1e-30));
            double s = 0;
            for (int64_t k = 0; k < d; k++)
                s += x[k];
            T_NEAR(s, 1.0, 1e-5);
            int zeros = 1;
            for (int64_t k = 0; k < d; k++)
                zeros &= x[2 * d + k] == 0.0f && (k <= d / 2 || x[d + k] == 0.0f);
            T_CHECK(zeros);
            free(x);
            free(x2);
        }
        /* the SIMD rmsnorm / silu against the scalar table directly */
        float xr[37], wr[37], y1[37], y2[37];
        for (int i = 0; i < 37; i++) {
            xr[i] = frand();
            wr[i] = frand();
        }
        tabs[ti]->rmsnorm_rows(y1, xr, 37, wr, 1e-6f, 0, 1);
        vl__simd_scalar()->rmsnorm_rows(y2, xr, 37, wr, 1e-6f, 0, 1);
        T_CHECK(max_rel(y1, y2, 37, 1e-6) < 1e-5);
    }
    vl__softmax_rows(gl, 1, 3);
    T_NEAR(gl[0] + gl[1] + gl[2], 1.0, 1e-6);
}

/* ---- decode attention kernels (table level) ---------------------------------------------- */

/* A matrix with element (r, c) at data[r * rs + c * cs]. */
struct strided {
    const float *data;
    int64_t rs, cs;
};

/* want (m, n) = scale * a (m, l) . b (l, n) summed in double, absd the sums of |terms|. */
static void matmul_double(float *want, float *absd, const struct strided *a,
                          const struct strided *b, int64_t m, int64_t n, int64_t l, double scale) {
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double acc = 0.0, aa = 0.0;
            for (int64_t t = 0; t < l; t++) {
                double term = (double)a->data[i * a->rs + t * a->cs] *
                              (double)b->data[t * b->rs + j * b->cs];
                acc += term;
                aa += fabs(term);
            }
            want[i * n + j] = (float)(acc * scale);
            absd[i * n + j] = (float)(aa * scale);
        }
}

/* s = scale q k^T and o = p v of every table against double sums: error within the f32
 * summation bound, odd shapes for the 4-row / 16-column blocks and their tails. */
static void test_attn_decode_tables(void) {
    static const int64_t m_list[] = {1, 3, 4, 5, 8, 9, 16};
    static const int64_t n_list[] = {1, 2, 7, 300};
    static const int64_t d_list[] = {1, 7, 8, 17, 48, 64, 130};
    const struct vl_simd *tabs[VL_SIMD_MAX_TABLES];
    const int n_tabs = vl__simd_tables(tabs);
    const struct vl_simd *avx2 = NULL;
    for (int ti = 0; ti < n_tabs; ti++)
        avx2 = !strcmp(tabs[ti]->name, "avx2") ? tabs[ti] : avx2;
    double worst = 0.0;
    for (int ti = 0; ti < n_tabs; ti++)
        for (size_t a = 0; a < sizeof m_list / sizeof *m_list; a++)
            for (size_t b = 0; b < sizeof n_list / sizeof *n_list; b++)
                for (size_t c = 0; c < sizeof d_list / sizeof *d_list; c++) {
                    int64_t m = m_list[a], n = n_list[b], d = d_list[c];
                    float *q = frand_buf(m * d, 2.0f), *k = frand_buf(n * d, 2.0f);
                    float *p = frand_buf(m * n, 1.0f), *v = frand_buf(n * d, 3.0f);
                    float *s = malloc((size_t)(m * n + 1) * sizeof *s);
                    float *o = malloc((size_t)(m * d + 1) * sizeof *o);
                    float *want = malloc((size_t)(m * (n > d ? n : d)) * sizeof *want);
                    float *absd = malloc((size_t)(m * (n > d ? n : d)) * sizeof *absd);
                    const float scale = 0.25f;
                    s[m * n] = o[m * d] = 7.0f;
                    tabs[ti]->attn_qk(s, q, m, k, n, d, scale);
                    struct strided qd = {q, d, 1}, kt = {k, 1, d}, pd = {p, n, 1}, vd = {v, d, 1};
                    matmul_double(want, absd, &qd, &kt, m, n, d, scale);
                    double e1 = worst_dot_err(s, want, absd, m * n, d);
                    tabs[ti]->attn_pv(o, p, m, v, n, d);
                    matmul_double(want, absd, &pd, &vd, m, d, n, 1.0);
                    double e2 = worst_dot_err(o, want, absd, m * d, n);
                    if (avx2 && !strcmp(tabs[ti]->name, "avx512")) { /* same bits as AVX2 */
                        float *o2 = malloc((size_t)(m * d) * sizeof *o2);
                        avx2->attn_pv(o2, p, m, v, n, d);
                        T_CHECK_MSG(!memcmp(o, o2, (size_t)(m * d) * sizeof *o),
                                    "attn_pv avx512 != avx2 at m %lld n %lld d %lld", (long long)m,
                                    (long long)n, (long long)d);
                        free(o2);
                    }
                    T_CHECK_MSG(e1 <= 1.0 && e2 <= 1.0 && s[m * n] == 7.0f && o[m * d] == 7.0f,
                                "attn %s m %lld n %lld d %lld: qk %.3g pv %.3g", tabs[ti]->name,
                                (long long)m, (long long)n, (long long)d, e1, e2);
                    worst = e1 > worst ? e1 : worst;
                    worst = e2 > worst ? e2 : worst;
                    free(q);
                    free(k);
                    free(p);
                    free(v);
                    free(s);
                    free(o);
                    free(want);
                    free(absd);
                }
    printf("decode attention: worst error %.3g of the f32 summation bound%s\n", worst,
           avx2 ? "; avx512 o = p v bit-identical to avx2" : "");
}


static void log_to_stderr(enum vl_log_level level, const char *msg, void *user) {
    (void)user;
    fprintf(stderr, "libvl[%d]: %s\n", (int)level, msg);
}

int main(void) {
    vl_log_set(log_to_stderr, NULL, VL_LOG_WARN);
    printf("kernels: dispatched %s\n", vl__simd()->name);
    test_attn_decode_tables();
    test_attention();
    test_rows_and_elementwise();
    return t_done();
}
