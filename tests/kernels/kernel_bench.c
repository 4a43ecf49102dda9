/* kernel_bench: times libvl's compute kernels on the real Qwen2.5-VL-3B shapes (not a test; run
 * by hand, see docs/performance.md). GEMV (n = 1, decode) over BF16 weights in GB/s and
 * GFLOP/s; the large-n Linear (panel widening + sgemm) at vision/prefill row counts in
 * GFLOP/s next to a plain f32 cblas_sgemm of the same shape (OpenBLAS's ceiling).
 * Times are the best repetition within SECONDS_PER_CASE (the dev machine is shared).
 * `read` and `decode` put the GEMV next to the memory system: a plain streaming read over the
 * pool (the machine's read bandwidth as our threads see it) and one decode step's GEMVs over the
 * whole 3B LLM weight set (6.2 GB, every matrix its own buffer, as in the model), which is the
 * decode speed the GEMV alone allows; `docproc bench` decode / that = the rest of the step's cost.
 * `read` also times a prefetched read (4 streams per thread, lines requested 0.75-6 KB ahead, as
 * the integer decode tiles read): the best of these is the machine's read bound.
 * `qdecode:q4|q8[:ROWS]`: the decode step on packed Q4_0 / Q8_0 weights (integer kernels).
 * Usage: kernel_bench [THREADS] [SECONDS_PER_CASE]
 *        [all|gemv|gemm|gemm:I|attn|attn-decode|read|decode|decode:ROWS|qdecode:q4|q8[:ROWS]] */
#include "vl_impl.h"
#include "vl_quant_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double cpu_s(void) { /* CPU time of the whole process (all threads) */
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *fill_random(size_t bytes) {
    uint32_t *p = malloc(bytes);
    if (!p) {
        fprintf(stderr, "kernel_bench: out of memory (%zu bytes)\n", bytes);
        exit(1);
    }
    uint32_t s = 0x12345678u;
    for (size_t i = 0; i < bytes / sizeof *p; i++) {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        /* two bf16 in [-1, 1): sign + exponent 0x3f0..0x3f7 range, random mantissa */
        uint32_t lo = (s & 0x807f) | 0x3c00, hi = ((s >> 16) & 0x807f) | 0x3c00;
        p[i] = lo | hi << 16;
    }
    return p;
}

struct shape {
    const char *name;
    int64_t out, in;
};

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Repetition times of one case: the best is the kernel's own speed on a shared machine, the
 * median what a run of many calls sees. */
#define MAX_REPS 100000
struct reps {
    double t[MAX_REPS];
    size_t n;
};

static void reps_add(struct reps *r, double t) {
    if (r->n < MAX_REPS)
        r->t[r->n++] = t;
}

static double reps_best(struct reps *r) {
    qsort(r->t, r->n, sizeof *r->t, cmp_double);
    return r->n ? r->t[0] : 0.0;
}

static double reps_median(struct reps *r) {
    qsort(r->t, r->n, sizeof *r->t, cmp_double);
    return r->n ? r->t[r->n / 2] : 0.0;
}

/* Decode reads every weight once per token, never from cache: cycle through enough copies of the
 * matrix (GEMV_WORKING_SET bytes) that each call streams from DRAM, as in a real forward pass. */
#define GEMV_WORKING_SET ((size_t)512 << 20)

static void bench_gemv(struct vl_compute *c, const struct shape *sh, double secs) {
    size_t wbytes = (size_t)sh->out * (size_t)sh->in * 2;
    size_t copies = GEMV_WORKING_SET / wbytes + 1;
    uint8_t *all = fill_random(wbytes * copies);
    float *x = calloc((size_t)sh->in, sizeof *x), *y = calloc((size_t)sh->out, sizeof *y);
    for (int64_t i = 0; i < sh->in; i++)
        x[i] = (float)(i % 7) * 0.1f;
    static struct reps r;
    r.n = 0;
    double t0 = now_s();
    size_t rep = 0;
    do {
        struct vl_tensor w = {.dtype = VL_DTYPE_BF16, .ndim = 2, .ne = {sh->out, sh->in},
                              .name = sh->name, .data = all + (rep++ % copies) * wbytes};
        double t1 = now_s();
        vl__linear(c, y, x, 1, &w, NULL);
        reps_add(&r, now_s() - t1);
    } while (now_s() - t0 < secs);
    double per = reps_best(&r), med = reps_median(&r);
    printf("  gemv  %-28s %6lld x %-6lld  %8.3f ms  %6.1f GB/s  %6.1f GFLOP/s  (median %6.1f "
           "GB/s)\n",
           sh->name, (long long)sh->out, (long long)sh->in, per * 1e3, (double)wbytes / per * 1e-9,
           2.0 * (double)sh->out * (double)sh->in / per * 1e-9, (double)wbytes / med * 1e-9);
    free(all);
    free(x);
    free(y);
}

/* A plain streaming read of n bytes split over the pool: 64-bit sums, which the compiler
 * vectorises; the machine's read bandwidth as the pool's threads see it. */
#define READ_SUMS        64 /* per-thread sums kept (so the reads are not optimised away) */
#define READ_ALIGN_WORDS 8  /* slices start on 64-byte lines */
#define READ_STREAMS 4      /* the prefetched read's streams per thread (the decode tile's groups) */

struct read_task {
    const uint64_t *p;
    int64_t n; /* words */
    int64_t prefetch; /* 0, or bytes ahead of the stream to request each line (as the GEMVs) */
    uint64_t sum[READ_SUMS];
};

static void read_task_run(void *arg, int ith, int nth) {
    struct read_task *t = arg;
    int64_t i0, i1;
    vl__pool_split(t->n, READ_ALIGN_WORDS, ith, nth, &i0, &i1);
    uint64_t s = 0;
    if (t->prefetch) { /* READ_STREAMS streams in lockstep, as the decode tiles read */
        const int64_t pw = t->prefetch / (int64_t)sizeof(uint64_t);
        const int64_t len = (i1 - i0) / READ_STREAMS / READ_ALIGN_WORDS * READ_ALIGN_WORDS;
        const uint64_t *q[READ_STREAMS];
        for (int k = 0; k < READ_STREAMS; k++)
            q[k] = t->p + i0 + k * len;
        uint64_t v[READ_ALIGN_WORDS] = {0};
        for (int64_t i = 0; i < len; i += READ_ALIGN_WORDS)
            for (int k = 0; k < READ_STREAMS; k++) {
                __builtin_prefetch(q[k] + i + pw, 0, 3);
                for (int j = 0; j < READ_ALIGN_WORDS; j++)
                    v[j] += q[k][i + j];
            }
        for (int64_t i = i0 + READ_STREAMS * len; i < i1; i++)
            s += t->p[i];
        for (int j = 0; j < READ_ALIGN_WORDS; j++)
            s += v[j];
    } else {
        for (int64_t i = i0; i < i1; i++)
            s += t->p[i];
    }
    t->sum[ith % READ_SUMS] = s;
}

static double read_gbps_pf(struct vl_compute *c, const void *p, size_t bytes, struct reps *r,
                           double secs, bool median, int64_t prefetch) {
    struct read_task t = {.p = p, .n = (int64_t)(bytes / sizeof(uint64_t)), .prefetch = prefetch};
    r->n = 0;
    double t0 = now_s();
    do {
        double t1 = now_s();
        vl__pool_run(c->pool, read_task_run, &t);
        reps_add(r, now_s() - t1);
    } while (now_s() - t0 < secs);
    return (double)bytes / (median ? reps_median(r) : reps_best(r)) * 1e-9;
}

static double read_gbps(struct vl_compute *c, const void *p, size_t bytes, struct reps *r,
                        double secs, bool median) {
    return read_gbps_pf(c, p, bytes, r, secs, median, 0);
}

#define READ_BYTES ((size_t)1 << 30)

static void bench_read(struct vl_compute *c, double secs) {
    static struct reps r;
    void *p = fill_random(READ_BYTES);
    double best = read_gbps(c, p, READ_BYTES, &r, secs, false);
    printf("  read  1 GiB plain streaming read    best %6.1f GB/s  median %6.1f GB/s\n", best,
           (double)READ_BYTES / reps_median(&r) * 1e-9);
    /* the same with each line requested ahead, as the integer decode tiles read: on machines
     * where software prefetch raises the bandwidth a stream gets, the best of these distances
     * (the tiles' default among them) is the bound */
    static const int64_t dist[] = {768, 1024, 1536, 2048, 3072, 4096, 6144};
    double bound = 0, bound_med = 0;
    int64_t bound_at = 0;
    for (size_t i = 0; i < sizeof dist / sizeof *dist; i++) {
        best = read_gbps_pf(c, p, READ_BYTES, &r, secs, false, dist[i]);
        double med = (double)READ_BYTES / reps_median(&r) * 1e-9;
        printf("  read  1 GiB prefetched read (%5lld B) best %6.1f GB/s  median %6.1f GB/s\n",
               (long long)dist[i], best, med);
        if (med > bound_med) {
            bound = best;
            bound_med = med;
            bound_at = dist[i];
        }
    }
    printf("  read  bound: prefetched read at %lld B  best %6.1f GB/s  median %6.1f GB/s\n",
           (long long)bound_at, bound, bound_med);
    free(p);
}

/* One decode step's GEMVs over the whole Qwen2.5-VL-3B LLM weight set, every matrix in its own
 * buffer, in forward order; then a plain read of the same buffers. */
#define DEC_N_LAYERS 36
#define DEC_MATS     7

#define DEC_N_MATS   (DEC_N_LAYERS * DEC_MATS + 1)

/* Matrix i of one decode step in forward order (q, k, v, o, gate, up, down per layer, then
 * lm_head); sh: q/o, k/v, gate/up, down, lm_head (gemv_shapes). */
static const struct shape *dec_shape(const struct shape *sh, int64_t i) {
    static const int order[DEC_MATS] = {0, 1, 1, 0, 2, 2, 3};
    return i + 1 == DEC_N_MATS ? &sh[4] : &sh[order[i % DEC_MATS]];
}

static void bench_decode_weights(struct vl_compute *c, const struct shape *sh, int64_t rows,
                                 double secs) {
    const int64_t n_mats = DEC_N_MATS;
    struct vl_tensor *w = calloc((size_t)n_mats, sizeof *w);
    size_t total = 0;
    int64_t max_in = 0, max_out = 0;
    for (int64_t i = 0; i < n_mats; i++) {
        const struct shape *m = dec_shape(sh, i);
        size_t bytes = (size_t)m->out * (size_t)m->in * 2;
        w[i] = (struct vl_tensor){.dtype = VL_DTYPE_BF16,
                                  .ndim = 2,
                                  .ne = {m->out, m->in},
                                  .name = m->name,
                                  .data = fill_random(bytes)};
        total += bytes;
        max_in = m->in > max_in ? m->in : max_in;
        max_out = m->out > max_out ? m->out : max_out;
    }
    float *x = calloc((size_t)(max_in * rows), sizeof *x);
    float *y = calloc((size_t)(max_out * rows), sizeof *y);
    for (int64_t i = 0; i < max_in * rows; i++)
        x[i] = (float)(i % 7) * 0.1f;
    static struct reps r;
    r.n = 0;
    double t0 = now_s();
    do {
        double t1 = now_s();
        for (int64_t i = 0; i < n_mats; i++)
            vl__linear(c, y, x, rows, &w[i], NULL);
        reps_add(&r, now_s() - t1);
    } while (now_s() - t0 < secs || r.n < 3);
    double best = reps_best(&r), med = reps_median(&r), rd = 0.0;
    static struct reps rr;
    for (int64_t i = 0; i < n_mats; i++) { /* the same bytes, read plainly, one call per matrix */
        size_t bytes = (size_t)w[i].ne[0] * (size_t)w[i].ne[1] * 2;
        rd += (double)bytes * 1e-9 / read_gbps(c, w[i].data, bytes, &rr, 0.0, true);
    }
    printf("  decode weights %.2f GB (3B LLM + lm_head), %lld rows, %zu steps: GEMVs best %.1f ms "
           "= %.2f tok/s (%.1f GB/s), median %.2f tok/s (%.1f GB/s); plain read of the same "
           "buffers %.1f GB/s\n",
           (double)total * 1e-9, (long long)rows, r.n, best * 1e3, (double)rows / best,
           (double)total / best * 1e-9, (double)rows / med, (double)total / med * 1e-9,
           (double)total * 1e-9 / rd);
    for (int64_t i = 0; i < n_mats; i++)
        free((void *)w[i].data);
    free(w);
    free(x);
    free(y);
}

/* The same decode step on quantized weights (t = Q8_0 or Q4_0), as the model calls them: q/k/v
 * fused, o, gate/up as one SwiGLU pass, down, lm_head; every matrix's packed copy in its own
 * buffer (random blocks with small finite scales). Bytes = the packed bytes the kernels stream. */
static void bench_qdecode(struct vl_compute *c, const struct shape *sh, enum vl_dtype t,
                          int64_t rows, double secs) {
    const int64_t n_mats = DEC_N_MATS;
    struct vl_tensor *w = calloc((size_t)n_mats, sizeof *w);
    size_t total = 0;
    int64_t max_in = 0, max_out = 0;
    for (int64_t i = 0; i < n_mats; i++) {
        const struct shape *m = dec_shape(sh, i);
        const int64_t nb = vl__q_blocks(m->in);
        const size_t rb = vl__q_row_bytes(t, m->in), bytes = (size_t)m->out * rb;
        uint8_t *q = fill_random(bytes);
        for (int64_t r = 0; r < m->out * nb; r++) { /* scale: f16 in [2^-10, 2^-9) */
            uint8_t *blk = q + (size_t)r * vl__dtype_size(t);
            uint16_t d = (uint16_t)(0x1400 | (blk[0] & 0xff));
            memcpy(blk, &d, sizeof d);
        }
        w[i] = (struct vl_tensor){.dtype = t, .ndim = 2, .ne = {m->out, m->in}, .name = m->name,
                                  .data = q};
        w[i].pack = vl__qpack_tensor(&w[i]);
        if (!w[i].pack) {
            fprintf(stderr, "kernel_bench: out of memory\n");
            exit(1);
        }
        free(q);
        w[i].data = NULL;
        total += vl__qpack_bytes(t, m->out, nb);
        max_in = m->in > max_in ? m->in : max_in;
        max_out = m->out > max_out ? m->out : max_out;
    }
    float *x = calloc((size_t)(max_in * rows), sizeof *x);
    float *y = calloc((size_t)(max_out * rows), sizeof *y);
    float *y2 = calloc((size_t)(max_out * rows), sizeof *y2);
    float *y3 = calloc((size_t)(max_out * rows), sizeof *y3);
    for (int64_t i = 0; i < max_in * rows; i++)
        x[i] = (float)(i % 7) * 0.1f - 0.3f;
    static struct reps r;
    r.n = 0;
    double t0 = now_s();
    do {
        double t1 = now_s();
        for (int64_t l = 0; l < DEC_N_LAYERS; l++) {
            const struct vl_tensor *lw = &w[l * DEC_MATS];
            struct vl_linear_out qkv[3] = {{y, &lw[0], NULL}, {y2, &lw[1], NULL}, {y3, &lw[2], NULL}};
            vl__linear_multi(c, x, rows, qkv, 3);
            vl__linear(c, y, x, rows, &lw[3], NULL);
            vl__linear_swiglu(c, y, y2, x, rows, &lw[4], &lw[5]);
            vl__linear(c, y3, x, rows, &lw[6], NULL);
        }
        vl__linear(c, y, x, rows, &w[n_mats - 1], NULL);
        reps_add(&r, now_s() - t1);
    } while (now_s() - t0 < secs || r.n < 3);
    double best = reps_best(&r), med = reps_median(&r);
    printf("  qdecode %s weights %.2f GB (3B LLM + lm_head, packed), %lld rows, %zu steps: best "
           "%.1f ms = %.2f tok/s (%.1f GB/s), median %.2f tok/s (%.1f GB/s)\n",
           vl__dtype_name(t), (double)total * 1e-9, (long long)rows, r.n, best * 1e3,
           (double)rows / best, (double)total / best * 1e-9, (double)rows / med,
           (double)total / med * 1e-9);
    for (int64_t i = 0; i < n_mats; i++)
        vl__free((void *)w[i].pack);
    free(w);
    free(x);
    free(y);
    free(y2);
    free(y3);
}

static void bench_gemm(struct vl_compute *c, const struct shape *sh, int64_t n, double secs) {
    struct vl_tensor w = {.dtype = VL_DTYPE_BF16, .ndim = 2, .ne = {sh->out, sh->in}, .name = sh->name};
    w.data = fill_random((size_t)sh->out * (size_t)sh->in * 2);
    float *wf = malloc((size_t)sh->out * (size_t)sh->in * sizeof *wf);
    vl__to_f32(wf, &w, 0, sh->out * sh->in);
    float *x = malloc((size_t)(n * sh->in) * sizeof *x);
    float *y = malloc((size_t)(n * sh->out) * sizeof *y);
    for (int64_t i = 0; i < n * sh->in; i++)
        x[i] = (float)(i % 13) * 0.05f - 0.3f;
    double flop = 2.0 * (double)n * (double)sh->out * (double)sh->in;
    double best[2] = {0, 0}, best_cpu[2] = {0, 0};
    for (int mode = 0; mode < 2; mode++) {
        double per = 1e30, per_cpu = 1e30, t0 = now_s();
        do {
            double t1 = now_s(), u1 = cpu_s();
            if (mode == 0)
                vl__linear(c, y, x, n, &w, NULL);
            else
                vl__gemm_f32(c, false, true, n, sh->out, sh->in, 1.0f, x, sh->in, wf, sh->in, 0.0f,
                             y, sh->out);
            double dt = now_s() - t1, du = cpu_s() - u1;
            per = dt < per ? dt : per;
            per_cpu = du < per_cpu ? du : per_cpu;
        } while (now_s() - t0 < secs);
        best[mode] = per;
        best_cpu[mode] = per_cpu;
    }
    /* GFLOP per CPU-second: the per-core speed even when other processes share the cores */
    printf("  gemm  %-16s n %5lld %6lld x %-6lld  bf16 linear %6.1f GFLOP/s (%7.2f ms, %6.1f "
           "per cpu-s)  f32 sgemm %6.1f GFLOP/s (%6.1f per cpu-s)\n",
           sh->name, (long long)n, (long long)sh->out, (long long)sh->in, flop / best[0] * 1e-9,
           best[0] * 1e3, flop / best_cpu[0] * 1e-9, flop / best[1] * 1e-9,
           flop / best_cpu[1] * 1e-9);
    free((void *)w.data);
    free(wf);
    free(x);
    free(y);
}

/* Vision attention of the 812x1064 page (4408 patches, 16 heads x 80): the 4 full-attention
 * blocks (one segment) and the 28 window blocks (69 segments of <= 64 rows), fused vs a
 * per-head GEMM / softmax / GEMM loop (what a caller writes with vl__gemm_f32). */
static void bench_attention(struct vl_compute *c, bool windows) {
    const int64_t n = 4408, nh = 16, dh = 80, d = nh * dh, win = 64;
    int64_t cu[128], nseg = 0;
    cu[0] = 0;
    for (int64_t r = 0; r < n; r += windows ? win : n)
        cu[++nseg] = r + (windows ? win : n) < n ? r + (windows ? win : n) : n;
    float *qkv = malloc((size_t)(n * 3 * d) * sizeof *qkv), *o = malloc((size_t)(n * d) * sizeof *o);
    float *scores = malloc((size_t)(n * 512) * sizeof *scores);
    for (int64_t i = 0; i < n * 3 * d; i++)
        qkv[i] = (float)((i * 7919) % 1000) * 1e-3f - 0.5f;
    struct vl_attn a = {
        .q = qkv, .k = qkv + d, .v = qkv + 2 * d, .out = o, .ldq = 3 * d, .ldk = 3 * d,
        .ldv = 3 * d, .ldo = d, .q_head_stride = dh, .k_head_stride = dh, .v_head_stride = dh,
        .o_head_stride = dh, .n_heads = nh, .n_kv_heads = nh, .head_dim = dh,
        .scale = 0.1118f, .q_cu = cu, .k_cu = cu, .n_seg = nseg, .causal = false,
    };
    double flop = 0;
    for (int64_t s = 0; s < nseg; s++)
        flop += 4.0 * (double)(cu[s + 1] - cu[s]) * (double)(cu[s + 1] - cu[s]) * (double)d;
    double t0 = now_s();
    vl__attention(c, &a);
    double fused = now_s() - t0;
    const int64_t tile = windows ? win : 512; /* query rows per step of the loop */
    t0 = now_s();
    for (int64_t s = 0; s < nseg; s++) {
        int64_t s0 = cu[s], len = cu[s + 1] - cu[s];
        for (int64_t q0 = s0; q0 < s0 + len; q0 += tile) {
            int64_t rows = s0 + len - q0 < tile ? s0 + len - q0 : tile;
            for (int64_t h = 0; h < nh; h++) {
                vl__gemm_f32(c, false, true, rows, len, dh, a.scale, qkv + q0 * 3 * d + h * dh,
                             3 * d, qkv + s0 * 3 * d + d + h * dh, 3 * d, 0.0f, scores, len);
                vl__softmax_rows(scores, rows, len);
                vl__gemm_f32(c, false, false, rows, dh, len, 1.0f, scores, len,
                             qkv + s0 * 3 * d + 2 * d + h * dh, 3 * d, 0.0f, o + q0 * d + h * dh, d);
            }
        }
    }
    double loop = now_s() - t0;
    printf("  attn  %-8s %3lld segments: fused %7.1f ms (%6.1f GFLOP/s)   per-head loop %7.1f ms "
           "(%6.1f GFLOP/s)\n", windows ? "window" : "full", (long long)nseg, fused * 1e3,
           flop / fused * 1e-9, loop * 1e3, flop / loop * 1e-9);
    free(qkv);
    free(o);
    free(scores);
}

/* One decode step's attention over a page-length cache on the 3B shapes (36 layers x 2 KV heads,
 * 8 query heads each, head_dim 128), one thread: the attn_qk/attn_pv kernels against the
 * sgemm pair they replaced. */
#define DEC_LAYERS_X_HEADS 72
#define DEC_GROUP 8
#define DEC_HD 128
#define DEC_KEYS 1168

static void bench_attn_decode(double secs) {
    const int64_t g = DEC_GROUP, d = DEC_HD, n = DEC_KEYS, lh = DEC_LAYERS_X_HEADS;
    float *kc = fill_random((size_t)(lh * n * d) * sizeof(float));
    float *vc = fill_random((size_t)(lh * n * d) * sizeof(float));
    float *q = fill_random((size_t)(g * d) * sizeof(float));
    float *s = malloc((size_t)(g * n) * sizeof(float)), *o = malloc((size_t)(g * d) * sizeof *o);
    for (int64_t i = 0; i < lh * n * d; i++) { /* finite values: random bits may be NaN */
        kc[i] = (float)(i % 97) * 1e-2f;
        vc[i] = (float)(i % 89) * 1e-2f;
    }
    for (int64_t i = 0; i < g * d; i++)
        q[i] = (float)(i % 13) * 1e-2f;
    double best[4] = {1e30, 1e30, 1e30, 1e30};
    for (int mode = 0; mode < 4; mode++)
        for (double t_end = now_s() + secs; now_s() < t_end;) {
            double t0 = now_s();
            for (int64_t h = 0; h < lh; h++) {
                const float *k = kc + h * n * d, *v = vc + h * n * d;
                if (mode == 0) {
                    vl__simd()->attn_qk(s, q, g, k, n, d, 0.1f);
                    vl__simd()->attn_pv(o, s, g, v, n, d);
                } else if (mode == 2) {
                    vl__simd()->attn_qk(s, q, g, k, n, d, 0.1f);
                } else if (mode == 3) {
                    vl__simd()->attn_pv(o, s, g, v, n, d);
                } else {
                    vl__gemm_f32(NULL, false, true, g, n, d, 0.1f, q, d, k, d, 0.0f, s, n);
                    vl__gemm_f32(NULL, false, false, g, d, n, 1.0f, s, n, v, d, 0.0f, o, d);
                }
            }
            double t = now_s() - t0;
            best[mode] = t < best[mode] ? t : best[mode];
        }
    printf("  attn decode step (%lld x %lld keys, group %lld): kernels %.2f ms, sgemm pair %.2f ms "
           "(1 thread)\n", (long long)lh, (long long)n, (long long)g, best[0] * 1e3,
           best[1] * 1e3);
    printf("  qk %.2f ms  pv %.2f ms\n", best[2] * 1e3, best[3] * 1e3);
    free(kc);
    free(vc);
    free(q);
    free(s);
    free(o);
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? (int)strtol(argv[1], NULL, 10) : 2;
    double secs = argc > 2 ? strtod(argv[2], NULL) : 1.0;
    const char *only = argc > 3 ? argv[3] : "all";
    struct vl_compute c;
    struct vl_error err = {0};
    if (vl__compute_init(&c, threads, 151936, 11008, &err) != VL_OK) {
        fprintf(stderr, "kernel_bench: %s\n", err.msg);
        return 1;
    }
    printf("kernel_bench: %d threads, kernels %s, panel scratch %zu bytes\n", threads,
           vl__simd()->name, c.scratch_bytes);
    static const struct shape gemv_shapes[] = {
        {"llm q/o_proj", 2048, 2048},      {"llm k/v_proj", 256, 2048},
        {"llm gate/up_proj", 11008, 2048}, {"llm down_proj", 2048, 11008},
        {"lm_head", 151936, 2048},
    };
    static const struct shape vis_shapes[] = {
        {"vit qkv", 3840, 1280},  {"vit proj", 1280, 1280}, {"vit gate/up", 3420, 1280},
        {"vit down", 1280, 3420}, {"merger fc1", 5120, 5120},
    };
    if (!strcmp(only, "all") || !strcmp(only, "gemv"))
        for (size_t i = 0; i < sizeof gemv_shapes / sizeof *gemv_shapes; i++)
            bench_gemv(&c, &gemv_shapes[i], secs);
    if (!strcmp(only, "read"))
        bench_read(&c, secs);
    if (!strncmp(only, "decode", 6)) /* decode or decode:ROWS (rows per step, batched decode) */
        bench_decode_weights(&c, gemv_shapes, only[6] == ':' ? strtol(only + 7, NULL, 10) : 1,
                             secs);
    if (!strncmp(only, "qdecode:q4", 10) || !strncmp(only, "qdecode:q8", 10))
        bench_qdecode(&c, gemv_shapes, only[9] == '4' ? VL_DTYPE_Q4_0 : VL_DTYPE_Q8_0,
                      only[10] == ':' ? strtol(only + 11, NULL, 10) : 1, secs);
    if (!strncmp(only, "gemm:", 5)) { /* one vision shape, for perf stat */
        long i = strtol(only + 5, NULL, 10);
        if (i >= 0 && i < (long)(sizeof vis_shapes / sizeof *vis_shapes))
            bench_gemm(&c, &vis_shapes[i], i == 4 ? 1102 : 4408, secs);
    }
    if (!strcmp(only, "all") || !strcmp(only, "attn-decode"))
        bench_attn_decode(secs);
    if (!strcmp(only, "all") || !strcmp(only, "attn")) {
        bench_attention(&c, true);
        bench_attention(&c, false);
    }
    if (!strcmp(only, "all") || !strcmp(only, "gemm")) {
        for (size_t i = 0; i < sizeof vis_shapes / sizeof *vis_shapes; i++)
            bench_gemm(&c, &vis_shapes[i], i == 4 ? 1102 : 4408, secs);
        bench_gemm(&c, &gemv_shapes[2], 1024, secs);
        bench_gemm(&c, &gemv_shapes[3], 1024, secs);
        bench_gemm(&c, &gemv_shapes[0], 1024, secs);
    }
    vl__compute_free(&c);
    return 0;
}
