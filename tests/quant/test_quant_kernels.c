/* Unit tests of the quantized weights (model/vl_quant*.c): f16 scale rounding over every f16
 * code, Q8_0 / Q4_0 quantize -> dequantize within each format's bound (and Q4_0 never worse than
 * llama.cpp's plain Q4_0 choice), the activation quantizer's bound, every integer kernel table
 * against an independent integer reference and bit-identical to the scalar twin, results of a
 * row independent of the rows computed with it, and the pool front end (vl__linear on Q8_0/Q4_0
 * weights, fused q/k/v and SwiGLU) at 1 and 2 threads against the dequantized double reference
 * within the bound the activation rounding allows. */
#include "t.h"
#include "vl_impl.h"
#include "vl_quant_impl.h"

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static uint64_t rng_next(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static float frand(void) { /* uniform in [-1, 1) */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((double)(rng_state >> 11) / (double)(1ull << 53) * 2.0 - 1.0);
}

/* Weight-like values: mostly small, some outliers, some blocks all zero or tiny. */
static void fill(float *x, int64_t n, float scale) {
    for (int64_t i = 0; i < n; i++) {
        float v = frand() * scale;
        if (i % 97 == 5)
            v *= 8.0f;
        x[i] = v;
    }
    if (n >= 64)
        for (int j = 32; j < 64; j++)
            x[j] = 0.0f; /* an all-zero block */
}

/* ---- f16 ---------------------------------------------------------------------------------- */

static void test_f16(void) {
    int64_t bad = 0;
    for (uint32_t h = 0; h < 0x10000u; h++) {
        float f = vl__f16_to_f32((uint16_t)h);
        if (f != f)
            continue;
        bad += vl__f32_to_f16(f) != h;
    }
    T_EQ_I64(bad, 0);
    /* random floats: the result is a nearest f16 (ties to even) */
    int64_t not_nearest = 0;
    for (int i = 0; i < 200000; i++) {
        float f = frand() * ldexpf(1.0f, (int)(frand() * 30.0f) - 8);
        uint16_t h = vl__f32_to_f16(f);
        double got = vl__f16_to_f32(h), err = fabs(got - f);
        if ((h & 0x7c00u) == 0x7c00u) {
            not_nearest += fabs((double)f) < 65520.0;
            continue;
        }
        for (int dlt = -1; dlt <= 1; dlt += 2) {
            uint16_t n = (uint16_t)(h + dlt);
            if ((h & 0x7fffu) == 0 && dlt < 0)
                continue;
            double alt = vl__f16_to_f32(n);
            if (alt != alt || isinf(alt))
                continue;
            double e2 = fabs(alt - f);
            if (e2 < err || (e2 == err && (h & 1u)))
                not_nearest++;
        }
    }
    T_EQ_I64(not_nearest, 0);
    T_EQ_I64(vl__f32_to_f16(1.0f), 0x3c00);
    T_EQ_I64(vl__f32_to_f16(-2.0f), 0xc000);
    T_EQ_I64(vl__f32_to_f16(65520.0f), 0x7c00);   /* rounds to inf */
    T_EQ_I64(vl__f32_to_f16(5.96046448e-8f), 1);  /* smallest subnormal */
    T_EQ_I64(vl__f32_to_f16(2.98023224e-8f), 0);  /* half of it: ties to even (0) */
}

/* ---- formats ------------------------------------------------------------------------------ */

/* llama.cpp's plain Q4_0 choice of one block (d = m / -8, unrounded 1/d): squared error. */
static double plain_q4_sse(const float *v, int n) {
    float m = 0.0f;
    for (int j = 0; j < n; j++)
        if (fabsf(v[j]) > fabsf(m))
            m = v[j];
    float d = m / -8.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
    float dh = vl__f16_to_f32(vl__f32_to_f16(d));
    double e = 0;
    for (int j = 0; j < n; j++) {
        float r = v[j] * id + 8.5f;
        int q = r < 0 ? 0 : (int)r;
        q = q > 15 ? 15 : q;
        double diff = (double)v[j] - (double)dh * (q - 8);
        e += diff * diff;
    }
    return e;
}

static void test_formats(void) {
    const int64_t sizes[] = {32, 64, 96, 100, 1, 2048};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        const int64_t n = sizes[s], nb = vl__q_blocks(n);
        float *x = malloc((size_t)nb * VL_QK * sizeof *x), *y = malloc((size_t)n * sizeof *y);
        uint8_t *q = malloc(vl__q_row_bytes(VL_DTYPE_Q8_0, n));
        fill(x, n, 0.05f);
        if (n == 2048)
            for (int j = 64; j < 96; j++)
                x[j] = 1e-9f * frand(); /* a block whose scale is an f16 subnormal or zero */
        /* Q8_0: every value within half a step of its block: |x - x^| <= d / 2 */
        vl__quantize_row(q, VL_DTYPE_Q8_0, x, n);
        vl__dequantize_row(y, VL_DTYPE_Q8_0, q, n);
        int64_t over = 0, out_of_range = 0;
        for (int64_t b = 0; b < nb; b++) {
            const uint8_t *blk = q + b * VL_Q8_0_BYTES;
            uint16_t dh;
            memcpy(&dh, blk, 2);
            double d = vl__f16_to_f32(dh);
            for (int j = 0; j < VL_QK && b * VL_QK + j < n; j++) {
                int64_t k = b * VL_QK + j;
                over += fabs((double)x[k] - (double)y[k]) > d / 2 * (1 + 1e-6) + 1e-30 &&
                        fabs((double)x[k] - (double)y[k]) > 1e-7; /* tiny blocks: f16 floor */
                out_of_range += (int8_t)blk[2 + j] < -VL_Q8_MAX;
            }
        }
        T_CHECK_MSG(over == 0, "Q8_0 n=%lld: %lld values beyond d/2", (long long)n, (long long)over);
        T_EQ_I64(out_of_range, 0);
        /* Q4_0: per block, squared error <= llama.cpp's plain Q4_0 choice's, and <= 32 d0^2 */
        free(q);
        q = malloc(vl__q_row_bytes(VL_DTYPE_Q4_0, n));
        vl__quantize_row(q, VL_DTYPE_Q4_0, x, n);
        vl__dequantize_row(y, VL_DTYPE_Q4_0, q, n);
        int64_t worse = 0, beyond = 0;
        double sse_ours = 0, sse_plain = 0;
        for (int64_t b = 0; b < nb; b++) {
            int len = (int)(n - b * VL_QK < VL_QK ? n - b * VL_QK : VL_QK);
            float v[VL_QK] = {0};
            memcpy(v, x + b * VL_QK, (size_t)len * sizeof *v);
            double e = 0, amax = 0;
            for (int j = 0; j < len; j++) {
                double diff = (double)v[j] - (double)y[b * VL_QK + j];
                e += diff * diff;
                amax = fmax(amax, fabs((double)v[j]));
            }
            double plain = plain_q4_sse(v, VL_QK);
            double d0 = amax / 8 * (1 + 1.0 / 1024); /* plain Q4_0's step, f16-rounded */
            worse += e > plain * (1 + 1e-9) + 1e-30;
            /* no value off by more than a step (f16 scales: values below ~6e-8 may round to 0) */
            beyond += e > VL_QK * (d0 * d0 * (1 + 1e-6) + 6e-8 * 6e-8);
            sse_ours += e;
            sse_plain += plain;
        }
        T_CHECK_MSG(worse == 0, "Q4_0 n=%lld: %lld blocks worse than plain Q4_0", (long long)n,
                    (long long)worse);
        T_EQ_I64(beyond, 0);
        if (n == 2048)
            T_CHECK_MSG(sse_ours < 0.99 * sse_plain, "Q4_0 search: sse %g vs plain %g", sse_ours,
                        sse_plain);
        /* activations: |x - q d| <= d / 2, |q| <= 127, padding zero */
        int8_t *xq = malloc((size_t)nb * VL_QK);
        float *xd = malloc((size_t)nb * sizeof *xd);
        vl__quantize_act(xq, xd, x, n);
        int64_t abad = 0;
        for (int64_t k = 0; k < nb * VL_QK; k++) {
            double want = k < n ? x[k] : 0.0;
            double d = xd[k / VL_QK];
            abad += fabs(want - d * xq[k]) > d / 2 * (1 + 1e-6) || xq[k] < -VL_Q8_MAX;
        }
        T_EQ_I64(abad, 0);
        free(xq);
        free(xd);
        free(q);
        free(x);
        free(y);
    }
    /* non-finite input never misbehaves (NaN quantizes to 0) */
    float bad[VL_QK] = {NAN, 1.0f, -1.0f};
    int8_t bq[VL_QK];
    float bd;
    vl__quantize_act(bq, &bd, bad, VL_QK);
    T_EQ_I64(bq[0], 0);
    T_EQ_I64(bq[1], 127);
}

/* ---- kernels ------------------------------------------------------------------------------ */

/* 1 if /proc/cpuinfo's first "flags" line lists flag, 0 if not, -1 if there is no such file. */
static int cpu_flag(const char *flag) {
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return -1;
    char line[8192];
    int found = -1;
    while (found < 0 && fgets(line, sizeof line, f)) {
        if (strncmp(line, "flags", 5))
            continue;
        found = 0;
        for (char *tok = strtok(line + 5, " \t:\n"); tok; tok = strtok(NULL, " \t:\n"))
            found |= strcmp(tok, flag) == 0;
    }
    fclose(f);
    return found;
}

/* Independent reference of one output: sum over blocks of d_w d_x (integer dot), in double. */
static double dot_int_ref(const int8_t *xq, const float *xd, const uint8_t *w, enum vl_dtype t,
                          int64_t nb, double *mag) {
    double s = 0;
    *mag = 0;
    float deq[VL_QK];
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = w + b * vl__dtype_size(t);
        vl__dequantize_row(deq, t, blk, VL_QK);
        for (int j = 0; j < VL_QK; j++) {
            double p = (double)deq[j] * xd[b] * xq[b * VL_QK + j];
            s += p;
            *mag += fabs(p);
        }
    }
    return s;
}

static void test_kernels(void) {
    const struct vl_qsimd *tabs[VL_QSIMD_MAX_TABLES];
    int nt = vl__qsimd_tables(tabs);
    fprintf(stderr, "quant tables: %d (", nt);
    for (int k = 0; k < nt; k++)
        fprintf(stderr, "%s%s", k ? ", " : "", tabs[k]->name);
    fprintf(stderr, ")\n");
    /* every table this CPU can run is tested: the kernel-level CPU checks agree with the
     * kernel's own flags (Linux: /proc/cpuinfo) */
    const char *flag_of[][2] = {{"avx2", "avx2"}, {"avx_vnni", "avxvnni"},
                                {"avx512_vnni", "avx512vnni"}};
    for (size_t f = 0; f < sizeof flag_of / sizeof *flag_of; f++) {
        int cpu = cpu_flag(flag_of[f][0]), have = 0;
        for (int k = 0; k < nt; k++)
            have |= strcmp(tabs[k]->name, flag_of[f][1]) == 0;
        if (cpu >= 0)
            T_CHECK_MSG(have == cpu, "CPU flag %s is %d but table %s is %s", flag_of[f][0], cpu,
                        flag_of[f][1], have ? "present" : "absent");
    }
    const enum vl_dtype types[] = {VL_DTYPE_Q8_0, VL_DTYPE_Q4_0};
    const int64_t ins[] = {32, 96, 100, 2048};
    /* x-row counts: every tile of the kernels (12s, 8s, 4s, 2s, ones, the few-rows decode path,
     * odd rests) */
    const int64_t nxs[] = {1, 2, 3, 4, 5, 8, 9, 12, 13, 17, 24, 31};
    /* weight rows: odd, twelve whole packed groups of 16 and a partial thirteenth (the decode
     * path's 4-group tile over quarters of 1, 2 or 3 groups, then 3, 2 or 1 groups); sub-ranges
     * that start and end inside groups */
    const int64_t out = 197;
    const int64_t ranges[][2] = {{0, 197}, {3, 197}, {5, 30}, {16, 32}, {17, 18}, {0, 64},
                                 {20, 90}, {33, 100}, {0, 128}, {20, 190}, {33, 180}};
    for (size_t ti = 0; ti < 2; ti++) {
        for (size_t ii = 0; ii < sizeof ins / sizeof *ins; ii++) {
            const enum vl_dtype t = types[ti];
            const int64_t in = ins[ii], nb = vl__q_blocks(in);
            const size_t rb = vl__q_row_bytes(t, in);
            float *wf = malloc((size_t)(out * in) * sizeof *wf);
            uint8_t *w = malloc(rb * (size_t)out);
            fill(wf, out * in, 0.1f);
            for (int64_t r = 0; r < out; r++)
                vl__quantize_row(w + r * rb, t, wf + r * in, in);
            if (t == VL_DTYPE_Q8_0) { /* -128 (GGUF files may hold it) reads as -128 */
                w[2 + 3] = 0x80;
                w[20 * rb + 2 + 31] = 0x80;
            } else { /* the extreme nibbles 0 (-8) and 15 (+7) in both halves */
                w[2] = 0xf0;
                w[20 * rb + 2 + 15] = 0x0f;
            }
            struct vl_tensor wt = {.dtype = t, .ndim = 2, .ne = {out, in}, .data = w};
            uint8_t *wp = vl__qpack_tensor(&wt);
            T_CHECK(wp != NULL);
            T_EQ_I64((int64_t)vl__qpack_bytes(t, out, nb), (int64_t)(208 * rb));
            const int64_t nxmax = 31;
            float *x = malloc((size_t)(nxmax * in) * sizeof *x);
            int8_t *xq = malloc((size_t)(nxmax * nb * VL_QK));
            float *xd = malloc((size_t)(nxmax * nb) * sizeof *xd);
            int32_t *xc = malloc((size_t)(nxmax * nb) * sizeof *xc);
            fill(x, nxmax * in, 1.0f);
            for (int64_t i = 0; i < nxmax; i++) {
                if (i == 7) /* an x block at the int8 extremes */
                    for (int64_t k = 0; k < in; k++)
                        x[i * in + k] = k % 2 ? 1.0f : -1.0f;
                vl__quantize_act(xq + i * nb * VL_QK, xd + i * nb, x + i * in, in);
                vl__act_corr(xc + i * nb, xq + i * nb * VL_QK, nb, t);
            }
            float *ys = malloc((size_t)(nxmax * out) * sizeof *ys);
            float *yt = malloc((size_t)(nxmax * out) * sizeof *yt);
            float *y1 = malloc((size_t)out * sizeof *y1);
            /* scalar twin (packed) vs the definition on the row layout (bits) and vs the
             * independent double reference */
            tabs[0]->gemm(ys, out, xq, xd, xc, nxmax, wp, t, nb, 0, out);
            int64_t far = 0, notdef = 0;
            for (int64_t i = 0; i < nxmax; i++)
                for (int64_t r = 0; r < out; r++) {
                    double mag, ref = dot_int_ref(xq + i * nb * VL_QK, xd + i * nb, w + r * rb, t,
                                                  nb, &mag);
                    far += fabs(ys[i * out + r] - ref) > 1e-5 * mag + 1e-30;
                    float def = vl__qdot(xq + i * nb * VL_QK, xd + i * nb, w + r * rb, t, nb);
                    notdef += memcmp(&def, &ys[i * out + r], sizeof def) != 0;
                }
            T_CHECK_MSG(far == 0, "%s in=%lld: scalar kernel far from the integer reference",
                        vl__dtype_name(t), (long long)in);
            T_CHECK_MSG(notdef == 0, "%s in=%lld: packed scalar kernel != the definition (%lld)",
                        vl__dtype_name(t), (long long)in, (long long)notdef);
            for (int k = 0; k < nt; k++) {
                for (size_t xi = 0; xi < sizeof nxs / sizeof *nxs; xi++) {
                    for (size_t ri = 0; ri < sizeof ranges / sizeof *ranges; ri++) {
                        const int64_t nx = nxs[xi], r0 = ranges[ri][0], r1 = ranges[ri][1];
                        /* bit-identical to the scalar twin inside [r0, r1), nothing written
                         * outside it */
                        for (int64_t j = 0; j < nxmax * out; j++)
                            yt[j] = -12345.0f;
                        tabs[k]->gemm(yt, out, xq, xd, xc, nx, wp, t, nb, r0, r1);
                        int64_t diff = 0, outside = 0;
                        for (int64_t i = 0; i < nxmax; i++)
                            for (int64_t r = 0; r < out; r++) {
                                bool in_range = i < nx && r >= r0 && r < r1;
                                if (in_range)
                                    diff += memcmp(&yt[i * out + r], &ys[i * out + r],
                                                   sizeof *yt) != 0;
                                else
                                    outside += yt[i * out + r] != -12345.0f;
                            }
                        T_CHECK_MSG(diff == 0 && outside == 0,
                                    "%s %s in=%lld nx=%lld rows [%lld, %lld): %lld differ from "
                                    "scalar, %lld written outside",
                                    tabs[k]->name, vl__dtype_name(t), (long long)in,
                                    (long long)nx, (long long)r0, (long long)r1, (long long)diff,
                                    (long long)outside);
                    }
                }
                /* each row alone gives the same bits as in the batch */
                int64_t dep = 0;
                for (int64_t i = 0; i < nxmax; i++) {
                    tabs[k]->gemm(y1, out, xq + i * nb * VL_QK, xd + i * nb, xc + i * nb, 1, wp,
                                  t, nb, 0, out);
                    dep += memcmp(y1, ys + i * out, (size_t)out * sizeof *y1) != 0;
                }
                T_CHECK_MSG(dep == 0, "%s %s in=%lld: a row depends on the batch", tabs[k]->name,
                            vl__dtype_name(t), (long long)in);
            }
            free(wf);
            free(w);
            vl__free(wp);
            free(x);
            free(xq);
            free(xd);
            free(xc);
            free(ys);
            free(yt);
            free(y1);
        }
    }
}

/* Every table's activation quantizer writes the scalar twin's bytes and scales: random rows of
 * several lengths (partial last blocks), ties (x / d exactly k + 1/2), zeros, huge values, and
 * NaN / inf / -0 (NaN ignored by amax and quantized to 0, inf gives d = inf and q = 0). */
static void test_act_tables(void) {
    const struct vl_qsimd *tabs[VL_QSIMD_MAX_TABLES];
    int nt = vl__qsimd_tables(tabs);
    T_CHECK(tabs[0]->quantize_act == vl__quantize_act);
    const int64_t lens[] = {1, 7, 31, 32, 33, 64, 100, 1280, 3420};
    const int64_t nmax = 3420, nbmax = vl__q_blocks(nmax);
    float *x = malloc((size_t)nmax * sizeof *x);
    int8_t *q0 = malloc((size_t)nbmax * VL_QK), *q1 = malloc((size_t)nbmax * VL_QK);
    float *d0 = malloc((size_t)nbmax * sizeof *d0), *d1 = malloc((size_t)nbmax * sizeof *d1);
    for (int rep = 0; rep < 6; rep++) {
        fill(x, nmax, rep < 3 ? 1.0f : 1e4f);
        if (rep == 1) /* ties: values k + 1/2 times a block whose amax gives d = 1 */
            for (int64_t k = 0; k < nmax; k++)
                x[k] = k % VL_QK == 0 ? 127.0f : (float)((int)(k % 255) - 127) + 0.5f;
        if (rep == 2)
            for (int64_t k = 0; k < nmax; k += 13)
                x[k] = k % 3 == 0 ? NAN : k % 3 == 1 ? -0.0f : (k % 2 ? INFINITY : -INFINITY);
        if (rep == 4)
            for (int64_t k = 64; k < 128; k++)
                x[k] = k % 5 ? 0.0f : 1e-38f; /* subnormal scales */
        for (size_t li = 0; li < sizeof lens / sizeof *lens; li++) {
            const int64_t n = lens[li], nb = vl__q_blocks(n);
            memset(q0, 0x55, (size_t)nbmax * VL_QK);
            vl__quantize_act(q0, d0, x, n);
            for (int k = 0; k < nt; k++) {
                memset(q1, 0x33, (size_t)nbmax * VL_QK);
                tabs[k]->quantize_act(q1, d1, x, n);
                T_CHECK_MSG(!memcmp(q0, q1, (size_t)(nb * VL_QK)) &&
                                !memcmp(d0, d1, (size_t)nb * sizeof *d0),
                            "%s: activation quantizer differs from the scalar twin (n=%lld, "
                            "case %d)",
                            tabs[k]->name, (long long)n, rep);
            }
        }
    }
    /* the ties case really has ties, rounded to even by the twin */
    int8_t tq[VL_QK];
    float td, tx[VL_QK] = {127.0f, 2.5f, -3.5f, 0.5f};
    vl__quantize_act(tq, &td, tx, VL_QK);
    T_CHECK(td == 1.0f && tq[1] == 2 && tq[2] == -4 && tq[3] == 0);
    free(x);
    free(q0);
    free(q1);
    free(d0);
    free(d1);
}

/* ---- the Linear front end ------------------------------------------------------------------ */

static struct vl_tensor qtensor(enum vl_dtype t, int64_t out, int64_t in, float scale,
                                float **wf_out) {
    float *wf = malloc((size_t)(out * in) * sizeof *wf);
    fill(wf, out * in, scale);
    size_t rb = vl__q_row_bytes(t, in);
    uint8_t *w = malloc(rb * (size_t)out);
    for (int64_t r = 0; r < out; r++)
        vl__quantize_row(w + r * rb, t, wf + r * in, in);
    *wf_out = wf;
    struct vl_tensor wt = {.dtype = t, .ndim = 2, .ne = {out, in}, .data = w, .name = "w"};
    wt.pack = vl__qpack_tensor(&wt);
    return wt;
}

/* |y - ref| within what rounding x to int8 allows: sum_k |w^_k| d_x(k) / 2, plus f32 slack. */
static int64_t beyond_act_bound(const float *y, const float *ref, const float *x, int64_t n,
                                const struct vl_tensor *w) {
    const int64_t out = w->ne[0], in = w->ne[1], nb = vl__q_blocks(in);
    const size_t rb = vl__q_row_bytes(w->dtype, in);
    float *row = malloc((size_t)in * sizeof *row);
    int8_t *xq = malloc((size_t)(nb * VL_QK));
    float *xd = malloc((size_t)nb * sizeof *xd);
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++) {
        vl__quantize_act(xq, xd, x + i * in, in);
        for (int64_t r = 0; r < out; r++) {
            vl__dequantize_row(row, w->dtype, (const uint8_t *)w->data + r * rb, in);
            double bound = 0, mag = 0;
            for (int64_t k = 0; k < in; k++) {
                bound += fabs((double)row[k]) * xd[k / VL_QK] / 2;
                mag += fabs((double)row[k] * x[i * in + k]);
            }
            bad += fabs((double)y[i * out + r] - ref[i * out + r]) > bound + 1e-5 * mag + 1e-6;
        }
    }
    free(row);
    free(xq);
    free(xd);
    return bad;
}

static void test_linear(void) {
    const enum vl_dtype types[] = {VL_DTYPE_Q8_0, VL_DTYPE_Q4_0};
    const int64_t ns[] = {1, 3, 33, 70};
    const int64_t out = 50, in = 96, nmax = 70;
    for (size_t ti = 0; ti < 2; ti++) {
        float *wf, *wf2, *wf3;
        struct vl_tensor w = qtensor(types[ti], out, in, 0.1f, &wf);
        struct vl_tensor w2 = qtensor(types[ti], out, in, 0.1f, &wf2);
        struct vl_tensor w3 = qtensor(types[ti], 20, in, 0.1f, &wf3);
        float *bias = malloc((size_t)out * sizeof *bias);
        fill(bias, out, 0.5f);
        struct vl_tensor b = {.dtype = VL_DTYPE_F32, .ndim = 1, .ne = {out}, .data = bias};
        float *x = malloc((size_t)(nmax * in) * sizeof *x);
        fill(x, nmax * in, 1.0f);
        float *ref = malloc((size_t)(nmax * out) * sizeof *ref);
        vl__qlinear_ref(ref, x, nmax, &w, &b);
        float *y = malloc((size_t)(nmax * out) * sizeof *y);
        float *y1 = malloc((size_t)(nmax * out) * sizeof *y1);
        float *g = malloc((size_t)(nmax * out) * sizeof *g), *u = malloc(sizeof *u * nmax * out);
        float *g2 = malloc((size_t)(nmax * out) * sizeof *g2);
        float *yk = malloc((size_t)(nmax * 20) * sizeof *yk), *yk2 = malloc(sizeof *yk2 * nmax * 20);
        for (int th = 1; th <= 2; th++) {
            struct vl_compute c;
            struct vl_error err = {0};
            T_CHECK(vl__compute_init(&c, th, out, in, &err) == VL_OK);
            for (size_t ni = 0; ni < sizeof ns / sizeof *ns; ni++) {
                const int64_t n = ns[ni];
                vl__linear(&c, y, x, n, &w, &b);
                T_CHECK_MSG(beyond_act_bound(y, ref, x, n, &w) == 0,
                            "%s n=%lld threads=%d: beyond the activation-rounding bound",
                            vl__dtype_name(types[ti]), (long long)n, th);
                /* row by row: the same bits */
                for (int64_t i = 0; i < n; i++)
                    vl__linear(&c, y1 + i * out, x + i * in, 1, &w, &b);
                T_CHECK_MSG(!memcmp(y, y1, (size_t)(n * out) * sizeof *y),
                            "%s n=%lld threads=%d: rows depend on n", vl__dtype_name(types[ti]),
                            (long long)n, th);
                /* fused SwiGLU == two Linears and silu_mul per row */
                vl__linear_swiglu(&c, g, u, x, n, &w, &w2);
                vl__linear(&c, g2, x, n, &w, NULL);
                vl__linear(&c, y1, x, n, &w2, NULL);
                for (int64_t i = 0; i < n; i++) /* SiLU's vectors start at each row */
                    vl__simd()->silu_mul(g2 + i * out, y1 + i * out, out);
                T_CHECK(!memcmp(g, g2, (size_t)(n * out) * sizeof *g));
                /* fused q/k/v-style multi == separate Linears */
                struct vl_linear_out o[3] = {{.y = g, .w = &w, .b = &b}, {.y = u, .w = &w2},
                                             {.y = yk, .w = &w3}};
                vl__linear_multi(&c, x, n, o, 3);
                vl__linear(&c, y1, x, n, &w2, NULL);
                vl__linear(&c, yk2, x, n, &w3, NULL);
                T_CHECK(!memcmp(g, y, (size_t)(n * out) * sizeof *g));
                T_CHECK(!memcmp(u, y1, (size_t)(n * out) * sizeof *u));
                T_CHECK(!memcmp(yk, yk2, (size_t)(n * 20) * sizeof *yk));
            }
            vl__compute_free(&c);
        }
        free(wf);
        free(wf2);
        free(wf3);
        free((void *)w.data);
        free((void *)w2.data);
        free((void *)w3.data);
        vl__free((void *)w.pack);
        vl__free((void *)w2.pack);
        vl__free((void *)w3.pack);
        free(bias);
        free(x);
        free(ref);
        free(y);
        free(y1);
        free(g);
        free(u);
        free(g2);
        free(yk);
        free(yk2);
    }
}

/* pack -> unpack gives back every row's original blocks (vl__qunpack_row, vl__qrow), for odd
 * shapes: out not a multiple of 16 (a padded last group), one row, in not a multiple of 32. */
static void test_unpack(void) {
    const int64_t shapes[][2] = {{1, 1}, {15, 33}, {16, 32}, {17, 64}, {33, 100}, {50, 257},
                                 {64, 96}};
    const enum vl_dtype types[] = {VL_DTYPE_Q8_0, VL_DTYPE_Q4_0};
    for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++) {
        for (int ti = 0; ti < 2; ti++) {
            const enum vl_dtype t = types[ti];
            const int64_t out = shapes[si][0], in = shapes[si][1], nb = vl__q_blocks(in);
            const size_t rb = vl__q_row_bytes(t, in), pb = vl__qpack_bytes(t, out, nb);
            T_EQ_I64((int64_t)pb, (out + 15) / 16 * 16 * (int64_t)rb);
            uint8_t *rows = malloc((size_t)out * rb), *pk = malloc(pb), *back = malloc(rb);
            for (size_t k = 0; k < (size_t)out * rb; k++) /* any bytes: a byte permutation */
                rows[k] = (uint8_t)(rng_next() >> 56);
            vl__qpack(pk, rows, t, out, nb, 0, (out + 15) / 16);
            struct vl_tensor w = {.dtype = t, .ndim = 2, .ne = {out, in}, .pack = pk};
            int64_t bad = 0;
            for (int64_t r = 0; r < out; r++) {
                memset(back, 0xa5, rb);
                vl__qunpack_row(back, pk, t, nb, r);
                bad += memcmp(back, rows + (size_t)r * rb, rb) != 0;
                bad += memcmp(vl__qrow(&w, r, back), rows + (size_t)r * rb, rb) != 0;
            }
            T_CHECK_MSG(bad == 0, "%s [%lld, %lld]: %lld rows differ after pack -> unpack",
                        vl__dtype_name(t), (long long)out, (long long)in, (long long)bad);
            /* with rows present, vl__qrow returns them in place */
            w.data = rows;
            T_CHECK(vl__qrow(&w, out - 1, back) == rows + (size_t)(out - 1) * rb);
            free(rows);
            free(pk);
            free(back);
        }
    }
}

int main(void) {
    test_unpack();
    test_f16();
    test_formats();
    test_kernels();
    test_act_tables();
    test_linear();
    /* dispatch: VL_QSIMD=NAME -> that table where the CPU has it, else VL_SIMD=off -> scalar,
     * VL_SIMD=avx2 -> avx2 (no VNNI), otherwise the widest (the tables are listed narrowest first) */
    const struct vl_qsimd *tabs[VL_QSIMD_MAX_TABLES];
    int nt = vl__qsimd_tables(tabs);
    const char *simd = getenv("VL_SIMD"), *want = getenv("VL_QSIMD"), *expect = tabs[nt - 1]->name;
    if (simd && !strcmp(simd, "avx2") && vl__qsimd_avx2())
        expect = "avx2";
    if (simd && !strcmp(simd, "off"))
        expect = "scalar";
    for (int k = 0; want && k < nt; k++) /* the named table wins */
        if (!strcmp(tabs[k]->name, want))
            expect = want;
    fprintf(stderr, "integer kernels in use: %s\n", vl__qsimd()->name);
    T_CHECK_MSG(!strcmp(vl__qsimd()->name, expect), "dispatched %s, expected %s",
                vl__qsimd()->name, expect);
    return t_done();
}
