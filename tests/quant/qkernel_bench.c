/* qkernel_bench: one decode step's quantized Linears over the whole Qwen2.5-VL-3B LLM weight set
 * (36 layers of q/k/v, o, gate/up, down in Q8_0 or Q4_0, then the 151936 x 2048 lm_head), each
 * matrix its own buffer and each call the one the model makes (q/k/v as one vl__linear_multi,
 * gate/up as one vl__linear_swiglu, o and down, lm_head: vl__linear), one x row: the decode speed
 * the integer GEMV and its front end (activation quantization, pool hand-offs) allow, next to a
 * plain streaming read of the same buffers. Not a test; run by hand (docs/performance.md).
 * Random weights: nibbles / int8 from a xorshift, every block scale 2^-8 (a normal f16).
 * usage: qkernel_bench [THREADS] [SECONDS] [q8|q4] [TABLE: scalar|avx2|avxvnni|avx512vnni] */
#include "vl_quant_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define N_LAYERS 36
#define HIDDEN 2048
#define KV_OUT 256
#define FFN 11008
#define VOCAB 151936
#define SCALE_F16 0x1c00u /* 2^-8 */
#define READ_SUMS 64

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static struct vl_tensor qmat(enum vl_dtype t, int64_t out, int64_t in, uint32_t *seed) {
    size_t rb = vl__q_row_bytes(t, in), bytes = rb * (size_t)out, bs = vl__dtype_size(t);
    uint8_t *p = malloc(bytes);
    if (!p) /* data NULL: main reports it */
        return (struct vl_tensor){.dtype = t, .ndim = 2, .ne = {out, in}, .name = "w"};
    uint32_t s = *seed;
    for (size_t i = 0; i < bytes; i++) {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        p[i] = (uint8_t)(s >> 7);
    }
    for (size_t o = 0; o < bytes; o += bs) {
        uint16_t h = SCALE_F16;
        memcpy(p + o, &h, sizeof h);
        if (t == VL_DTYPE_Q8_0) /* keep the weights in Q8_0's [-127, 127] */
            for (size_t j = 2; j < bs; j++)
                p[o + j] = p[o + j] == 0x80 ? 0x81 : p[o + j];
    }
    *seed = s;
    /* the kernels read only the packed copy: the row layout is freed to keep one copy in memory
     * (data points at the packed bytes, which nothing here reads as rows) */
    void *pk = vl__qpack_tensor(&(struct vl_tensor){.dtype = t, .ndim = 2, .ne = {out, in},
                                                     .data = p});
    free(p);
    return (struct vl_tensor){.dtype = t, .ndim = 2, .ne = {out, in}, .name = "w", .data = pk,
                              .pack = pk};
}

struct read_task {
    const uint64_t *p;
    int64_t n;
    uint64_t sum[READ_SUMS];
};

static void read_run(void *arg, int ith, int nth) {
    struct read_task *t = arg;
    int64_t i0, i1;
    vl__pool_split(t->n, 8, ith, nth, &i0, &i1);
    uint64_t s = 0;
    for (int64_t i = i0; i < i1; i++)
        s += t->p[i];
    t->sum[ith % READ_SUMS] = s;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

#define MAX_REPS 1000
enum { M_Q, M_K, M_V, M_O, M_GATE, M_UP, M_DOWN, M_PER_LAYER };

int main(int argc, char **argv) {
    int threads = argc > 1 ? (int)strtol(argv[1], NULL, 10) : 2;
    double secs = argc > 2 ? strtod(argv[2], NULL) : 3.0;
    enum vl_dtype t = argc > 3 && !strcmp(argv[3], "q4") ? VL_DTYPE_Q4_0 : VL_DTYPE_Q8_0;
    if (argc > 4)
        setenv("VL_QSIMD", argv[4], 1);
    struct vl_compute c;
    struct vl_error err = {0};
    if (vl__compute_init(&c, threads, VOCAB, FFN, &err) != VL_OK) {
        fprintf(stderr, "qkernel_bench: %s\n", err.msg);
        return 1;
    }
    uint32_t seed = 0x12345678u;
    static struct vl_tensor w[N_LAYERS][M_PER_LAYER];
    size_t total = 0;
    for (int l = 0; l < N_LAYERS; l++) {
        const int64_t shp[M_PER_LAYER][2] = {{HIDDEN, HIDDEN}, {KV_OUT, HIDDEN}, {KV_OUT, HIDDEN},
                                              {HIDDEN, HIDDEN}, {FFN, HIDDEN},    {FFN, HIDDEN},
                                              {HIDDEN, FFN}};
        for (int k = 0; k < M_PER_LAYER; k++) {
            w[l][k] = qmat(t, shp[k][0], shp[k][1], &seed);
            if (!w[l][k].data) {
                fprintf(stderr, "qkernel_bench: out of memory\n");
                return 1;
            }
            total += vl__q_row_bytes(t, shp[k][1]) * (size_t)shp[k][0];
        }
    }
    struct vl_tensor head = qmat(t, VOCAB, HIDDEN, &seed);
    if (!head.data) {
        fprintf(stderr, "qkernel_bench: out of memory\n");
        return 1;
    }
    total += vl__q_row_bytes(t, HIDDEN) * VOCAB;
    float *x = malloc(FFN * sizeof *x), *y = malloc(VOCAB * sizeof *y);
    float *q = malloc(HIDDEN * sizeof *q), *kk = malloc(KV_OUT * sizeof *kk);
    float *v = malloc(KV_OUT * sizeof *v), *g = malloc(FFN * sizeof *g);
    float *u = malloc(FFN * sizeof *u);
    if (!x || !y || !q || !kk || !v || !g || !u) {
        fprintf(stderr, "qkernel_bench: out of memory\n");
        return 1;
    }
    for (int i = 0; i < FFN; i++)
        x[i] = (float)((i * 37) % 101 - 50) * 0.02f;
    printf("qkernel_bench: %d threads, %s, integer kernels %s, %.2f GB of weights\n", threads,
           vl__dtype_name(t), vl__qsimd()->name, (double)total * 1e-9);
    static double rep[MAX_REPS];
    size_t n = 0;
    double t0 = now_s();
    do {
        double t1 = now_s();
        for (int l = 0; l < N_LAYERS; l++) {
            struct vl_linear_out qkv[3] = {{q, &w[l][M_Q], NULL}, {kk, &w[l][M_K], NULL},
                                           {v, &w[l][M_V], NULL}};
            vl__linear_multi(&c, x, 1, qkv, 3);
            vl__linear(&c, y, q, 1, &w[l][M_O], NULL);
            vl__linear_swiglu(&c, g, u, x, 1, &w[l][M_GATE], &w[l][M_UP]);
            vl__linear(&c, y, x, 1, &w[l][M_DOWN], NULL);
        }
        vl__linear(&c, y, x, 1, &head, NULL);
        if (n < MAX_REPS)
            rep[n++] = now_s() - t1;
    } while (now_s() - t0 < secs || n < 3);
    qsort(rep, n, sizeof *rep, cmp_double);
    double best = rep[0], med = rep[n / 2];
    /* the same buffers read plainly, one pool call per matrix */
    double rd = now_s();
    struct read_task rt;
    for (int l = 0; l < N_LAYERS; l++)
        for (int k = 0; k < M_PER_LAYER; k++) {
            rt = (struct read_task){.p = w[l][k].data,
                                    .n = (int64_t)(vl__q_row_bytes(t, w[l][k].ne[1]) *
                                                   (size_t)w[l][k].ne[0] / 8)};
            vl__pool_run(c.pool, read_run, &rt);
        }
    rt = (struct read_task){.p = head.data, .n = (int64_t)(vl__q_row_bytes(t, HIDDEN) * VOCAB / 8)};
    vl__pool_run(c.pool, read_run, &rt);
    rd = now_s() - rd;
    printf("  decode step GEMVs: best %.1f ms = %.2f tok/s (%.1f GB/s), median %.1f ms "
           "(%.1f GB/s), %zu steps; plain read of the same buffers %.1f ms (%.1f GB/s)\n",
           best * 1e3, 1.0 / best, (double)total / best * 1e-9, med * 1e3,
           (double)total / med * 1e-9, n, rd * 1e3, (double)total / rd * 1e-9);
    return 0;
}
