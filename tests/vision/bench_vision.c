/* Times vl__vision_encode on a random-weight vision tower of the published Qwen2.5-VL shape
 * (D 1280, 16 heads, Iv 3420, Hout 2048 = 3B, BF16 weights, window 112, full attention every
 * 8th block) for one page image. Stage times come from the checkpoint hook, so a reduced
 * --depth (default 4: 3 window blocks + 1 full) gives per-block figures that extrapolate to 32.
 * Usage: bench_vision [--width W] [--height H] [--depth N] [--threads N] [--hout N] */
#include "vl_impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BENCH_MAX_DEPTH 32
#define BENCH_MAX_STAGES (BENCH_MAX_DEPTH + 8)
#define BENCH_FULL_EVERY 8 /* published fullatt_block_indexes 7, 15, 23, 31 */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

struct stages {
    double t_prev;
    int n;
    char name[BENCH_MAX_STAGES][32];
    double dt[BENCH_MAX_STAGES];
};

static void hook(const char *name, const float *data, int ndim, const int64_t *shape, void *user) {
    (void)data, (void)ndim, (void)shape;
    struct stages *s = user;
    double t = now_s();
    if (s->n < BENCH_MAX_STAGES) {
        snprintf(s->name[s->n], sizeof s->name[0], "%s", name);
        s->dt[s->n++] = t - s->t_prev;
    }
    s->t_prev = now_s(); /* exclude the hook itself */
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint16_t rnd_bf16(float scale) {
    rng_state ^= rng_state >> 12, rng_state ^= rng_state << 25, rng_state ^= rng_state >> 27;
    double u = (double)((rng_state * 2685821657736338717ULL) >> 11) / (double)(1ULL << 53);
    float f = scale * (float)(2.0 * u - 1.0);
    uint32_t bits;
    memcpy(&bits, &f, 4);
    return (uint16_t)(bits >> 16);
}

static struct vl_tensor mk(int64_t a, int64_t b, float scale, float offset) {
    struct vl_tensor t = {0};
    int64_t n = a * (b ? b : 1);
    uint16_t *p = malloc((size_t)n * 2);
    if (!p)
        return t;
    for (int64_t i = 0; i < n; i++) {
        float f = offset;
        uint32_t bits;
        uint16_t r = rnd_bf16(scale);
        bits = (uint32_t)r << 16;
        float v;
        memcpy(&v, &bits, 4);
        f += v;
        memcpy(&bits, &f, 4);
        p[i] = (uint16_t)(bits >> 16);
    }
    t.dtype = VL_DTYPE_BF16;
    t.ndim = b ? 2 : 1;
    t.ne[0] = a;
    t.ne[1] = b;
    t.data = p;
    return t;
}

int main(int argc, char **argv) {
    int64_t width = 812, height = 1064, depth = 4, hout = 2048;
    int threads = 2;
    for (int i = 1; i + 1 < argc; i += 2) {
        char *end = NULL;
        long long v = strtoll(argv[i + 1], &end, 10);
        if (!end || *end || v < 1) {
            fprintf(stderr, "bench_vision: bad value %s\n", argv[i + 1]);
            return 2;
        }
        if (!strcmp(argv[i], "--width")) width = v;
        else if (!strcmp(argv[i], "--height")) height = v;
        else if (!strcmp(argv[i], "--depth")) depth = v;
        else if (!strcmp(argv[i], "--threads")) threads = (int)v;
        else if (!strcmp(argv[i], "--hout")) hout = v;
        else {
            fprintf(stderr, "bench_vision: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (depth > BENCH_MAX_DEPTH || width % 28 || height % 28) {
        fprintf(stderr, "bench_vision: depth <= %d and sides multiple of 28 required\n",
                BENCH_MAX_DEPTH);
        return 2;
    }
    struct vl_model m;
    memset(&m, 0, sizeof m);
    struct vl_vision_config *vc = &m.cfg.vision;
    vc->depth = depth;
    vc->hidden_size = 1280;
    vc->num_heads = 16;
    vc->intermediate_size = 3420;
    vc->out_hidden_size = hout;
    vc->patch_size = 14;
    vc->temporal_patch_size = 2;
    vc->spatial_merge_size = 2;
    vc->window_size = 112;
    vc->in_chans = 3;
    vc->rms_norm_eps = 1e-6;
    for (int64_t b = BENCH_FULL_EVERY - 1; b < depth; b += BENCH_FULL_EVERY)
        vc->fullatt_block_indexes[vc->n_fullatt++] = b;
    if (vc->n_fullatt == 0) /* short runs: last block full, so both kinds are timed */
        vc->fullatt_block_indexes[vc->n_fullatt++] = depth - 1;
    const int64_t d = 1280, iv = 3420, pd = 1176, ud = 4 * d;
    struct vl_vision_block *blocks = calloc((size_t)depth, sizeof *blocks);
    m.w.patch_embed = mk(d, pd, 0.03f, 0);
    for (int64_t b = 0; b < depth; b++) {
        struct vl_vision_block *k = &blocks[b];
        k->norm1 = mk(d, 0, 0.1f, 1), k->norm2 = mk(d, 0, 0.1f, 1);
        k->qkv_w = mk(3 * d, d, 0.05f, 0), k->qkv_b = mk(3 * d, 0, 0.05f, 0);
        k->proj_w = mk(d, d, 0.03f, 0), k->proj_b = mk(d, 0, 0.05f, 0);
        k->gate_w = mk(iv, d, 0.03f, 0), k->gate_b = mk(iv, 0, 0.05f, 0);
        k->up_w = mk(iv, d, 0.03f, 0), k->up_b = mk(iv, 0, 0.05f, 0);
        k->down_w = mk(d, iv, 0.02f, 0), k->down_b = mk(d, 0, 0.05f, 0);
    }
    m.w.vblocks = blocks;
    m.w.merger_norm = mk(d, 0, 0.1f, 1);
    m.w.merger_fc1_w = mk(ud, ud, 0.015f, 0), m.w.merger_fc1_b = mk(ud, 0, 0.05f, 0);
    m.w.merger_fc2_w = mk(hout, ud, 0.015f, 0), m.w.merger_fc2_b = mk(hout, 0, 0.05f, 0);

    const int64_t gh = height / 14, gw = width / 14, n = gh * gw;
    float *px = malloc((size_t)(n * pd) * sizeof(float));
    for (int64_t i = 0; i < n * pd; i++)
        px[i] = (float)((i * 7919) % 1000) / 500.0f - 1.0f;
    struct vl_vision_input in = {px, n, pd, 1, gh, gw, false, 0.0};
    struct vl_error err = {0};
    struct vl_compute c;
    if (vl__compute_init(&c, threads, ud, ud, &err) != VL_OK) {
        fprintf(stderr, "bench_vision: %s\n", err.msg);
        return 1;
    }
    size_t nf = vl__vision_scratch_floats(&m.cfg, n);
    float *scratch = malloc(nf * sizeof(float));
    float *out = malloc((size_t)(n / 4 * hout) * sizeof(float));
    struct stages st = {0};
    st.t_prev = now_s();
    double t0 = st.t_prev;
    if (vl__vision_encode(&c, &m, &in, scratch, out, hook, &st, &err) != VL_OK) {
        fprintf(stderr, "bench_vision: %s\n", err.msg);
        return 1;
    }
    double total = now_s() - t0;
    double t_win = 0, t_full = 0, t_pe = 0, t_merge = 0;
    int n_win = 0, n_full = 0;
    for (int i = 0; i < st.n; i++) {
        int b = -1;
        if (sscanf(st.name[i], "vit.blk.%d.out", &b) == 1) {
            bool full = false;
            for (int64_t j = 0; j < vc->n_fullatt; j++)
                full |= vc->fullatt_block_indexes[j] == b;
            if (full)
                t_full += st.dt[i], n_full++;
            else
                t_win += st.dt[i], n_win++;
        } else if (!strcmp(st.name[i], "vit.patch_embed")) {
            t_pe += st.dt[i];
        } else if (!strcmp(st.name[i], "merger.out")) {
            t_merge += st.dt[i];
        }
    }
    double per_win = n_win ? t_win / n_win : 0, per_full = n_full ? t_full / n_full : 0;
    double est32 = t_pe + t_merge + 28 * per_win + 4 * per_full;
    printf("{\"image\": [%lld, %lld], \"patches\": %lld, \"threads\": %d, \"depth\": %lld, "
           "\"scratch_mib\": %.1f, \"total_s\": %.3f, \"patch_embed_s\": %.3f, "
           "\"window_block_s\": %.3f, \"full_block_s\": %.3f, \"merger_s\": %.3f, "
           "\"estimate_32_blocks_s\": %.2f}\n",
           (long long)width, (long long)height, (long long)n, threads, (long long)depth,
           (double)nf * 4.0 / (1024.0 * 1024.0), total, t_pe, per_win, per_full, t_merge, est32);
    vl__compute_free(&c);
    return 0;
}
