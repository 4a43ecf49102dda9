/* `docproc bench`: end-to-end inference benchmark of a checkpoint (typically the random-weight
 * one from `docproc model synth --shape 3b`). Builds a synthetic page image of --image-size,
 * preprocesses it as a real page, makes a synthetic prompt (vision pads + --prompt-tokens text
 * ids), runs vl_generate greedily for --gen-tokens with EOS ignored, and prints one JSON object:
 * vision encode seconds, prefill tokens/s, decode tokens/s, load seconds, peak RSS and the
 * configuration. Figures and the machine they came from are recorded in docs/performance.md.
 * Single control thread; the model uses --threads threads. */
#include "dp_cli.h"
#include "dp_cli_opts.h"
#include "dp_limits.h"
#include "dp_log.h"
#include "dp_vl.h"
#include "vl_tools.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define CMD "bench"
#define BENCH_DEFAULT_W 812          /* a letter page at ~100 dpi, multiples of 28 (issue 4) */
#define BENCH_DEFAULT_H 1064
#define BENCH_MAX_SIDE 16384
#define BENCH_DEFAULT_PROMPT_TOKENS 64
#define BENCH_DEFAULT_GEN_TOKENS 32
#define BENCH_MAX_TOKENS 1000000
#define BENCH_KIB 1024.0
#define BENCH_MIB (1024.0 * 1024.0)
#define BENCH_GB 1e9                 /* decimal, as memory bandwidth is quoted */
#define BENCH_CPU_NAME_MAX 256
#define BENCH_PATH_MAX 4096
#define BENCH_NOISE_SEED 0x2545f4914f6cdd1dull
#define BENCH_WARMUP_SIDE 56 /* 2x2 merged tokens: touches every vision weight cheaply */
#define BENCH_WARMUP_PATCHES 16 /* (56 / 14)^2 patches of the warm-up page */
#define BENCH_WARMUP_GEN 2   /* one prefill + one decode step */
#define BENCH_WARMUP_MIN_CTX 16 /* the warm-up prompt: vision start/end, 4 pads, 1 text, 2 gen */
#define BENCH_MAX_REPEAT 100
#define BENCH_MAX_PAGES 100000
#define BENCH_S_PER_HOUR 3600.0

struct bench_opts {
    const char *model_dir;
    long width, height; /* 0: no image (text-only prompt) */
    int64_t prompt_tokens, gen_tokens;
    int64_t batch; /* prefill chunk rows; 0: the state's default */
    int64_t attn_block; /* prefill attention rows per block; 0: the state's default */
    int64_t repeat;     /* timed requests; the figures are the medians */
    int64_t parallel;   /* requests in flight (one state, vl_seq_add) */
    int64_t pages;      /* 0: --parallel identical requests; else a workload of this many */
    int threads;
    struct dp_gen_opts wf; /* only .weights and .vision_weights (dp_cli_gen_opt parses them) */
    bool verbose, warmup;
    const char *schema; /* --schema: also time constrained decoding's mask for it */
};

json_t *dp__bench_constrain(const struct vl_model *m, const char *schema_name,
                            struct dp_err *err); /* cmd_bench_constrain.c */

static void print_help(void) {
    printf("usage: docproc bench --model DIR [options]\n\n"
           "Times Qwen2.5-VL inference on a synthetic page: vision encode, prefill and decode.\n"
           "Prints one JSON object on stdout. Use a checkpoint from `docproc model synth`.\n\n"
           "  --model DIR            checkpoint directory, or llama.cpp GGUF files: a text\n"
           "                         model (+ --mmproj) or a directory of both (or $DOCPROC_MODEL)\n"
           "  --image-size WxH       synthetic page image, before smart_resize [%dx%d]\n"
           "  --no-image             text-only prompt (no vision encode)\n"
           "  --prompt-tokens N      text tokens after the image in the prompt [%d]\n"
           "  --gen-tokens N         tokens to generate (greedy, EOS ignored) [%d]\n"
           "  --batch N              prefill chunk rows [%d, the library default]\n"
           "  --attn-block N         prefill attention query rows per block [%d]\n"
           "  --repeat N             time N requests and report the median of each stage [1]\n"
           "  --parallel N           N identical requests in flight, decoded together: adds\n"
           "                         parallel and decode_aggregate_tokens_per_s [1]\n"
           "  --pages P              time a workload of P pages (each: vision, prefill, decode)\n"
           "                         with --parallel in flight; adds pages_per_hour\n"
           "  --threads N            threads for OpenBLAS and the kernels [online CPUs: %d]\n"
           "  --weights F            bf16 (exact), q8 or q4: LLM weights quantized at load\n"
           "                         [bf16; a quantized checkpoint: its own]\n"
           "  --vision-weights F     bf16 (exact) or q8: vision tower weights [likewise]\n"
           "  --mmproj FILE          llama.cpp vision projector GGUF for a GGUF --model\n"
           "                         [the --model directory's, else none]\n"
           "  --no-warmup            time the first request too (incl. mapping the weights)\n"
           "  --schema NAME|FILE     also report constrained decoding for the schema under\n"
           "                         \"constrain\": vocabulary index and compile time, CPU time\n"
           "                         per mask (median, p99) over hostile sampled answers\n"
           "  -v, --verbose          libvl log lines on stderr\n"
           "  -h, --help             this text\n"
           "\n"
           "environment (speed only, never results; reported under \"config\"):\n"
           "  VL_SIMD=off|avx2         cap our kernel table [the widest the CPU has]\n"
           "  VL_GEMV_PREFETCH=BYTES   decode GEMV prefetch distance, 0..%d [%d]\n"
           "  VL_QGEMV_PREFETCH=BYTES  q8/q4 decode prefetch distance, 0..%d [%d]\n"
           "  VL_GEMV_PAGE_AHEAD=BYTES decode GEMV page-ahead (address translation) distance,\n"
           "                           0..%d [%d]\n"
           "  OPENBLAS_CORETYPE=NAME   OpenBLAS kernel family [docproc picks the widest]\n\n"
           "examples:\n"
           "  docproc bench --model qwen25vl-3b\n"
           "  docproc bench --model qwen25vl-3b --weights q8 --parallel 4\n",
           BENCH_DEFAULT_W, BENCH_DEFAULT_H, BENCH_DEFAULT_PROMPT_TOKENS,
           BENCH_DEFAULT_GEN_TOKENS, VL_STATE_DEFAULT_BATCH, VL_STATE_DEFAULT_ATTN_BLOCK,
           (int)dp_cli_default_threads(), VL_GEMV_PREFETCH_MAX_BYTES,
           VL_GEMV_PREFETCH_DEFAULT_BYTES, VL_GEMV_PREFETCH_MAX_BYTES,
           VL_QGEMV_PREFETCH_DEFAULT_BYTES, VL_GEMV_PAGE_AHEAD_MAX_BYTES,
           VL_GEMV_PAGE_AHEAD_DEFAULT_BYTES);
}

enum {
    OPT_MODEL = 256, OPT_SIZE, OPT_NO_IMAGE, OPT_PROMPT, OPT_GEN, OPT_BATCH, OPT_ATTN_BLOCK,
    OPT_REPEAT, OPT_NO_WARMUP, OPT_PARALLEL, OPT_PAGES, OPT_SCHEMA
};

static const struct option bench_longopts[] = {
    {"model", required_argument, NULL, OPT_MODEL},
    {"image-size", required_argument, NULL, OPT_SIZE},
    {"no-image", no_argument, NULL, OPT_NO_IMAGE},
    {"prompt-tokens", required_argument, NULL, OPT_PROMPT},
    {"gen-tokens", required_argument, NULL, OPT_GEN},
    {"batch", required_argument, NULL, OPT_BATCH},
    {"attn-block", required_argument, NULL, OPT_ATTN_BLOCK},
    {"repeat", required_argument, NULL, OPT_REPEAT},
    {"parallel", required_argument, NULL, OPT_PARALLEL},
    {"pages", required_argument, NULL, OPT_PAGES},
    DP_CLI_LONGOPT_THREADS,
    DP_CLI_LONGOPTS_WEIGHTS,
    {"no-warmup", no_argument, NULL, OPT_NO_WARMUP},
    {"schema", required_argument, NULL, OPT_SCHEMA},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* A whole-number option (optarg) in [lo, hi] into *dst; false after printing the usage error,
 * which names the option by its long name. */
static bool count_opt(int opt, int64_t lo, int64_t hi, int64_t *dst) {
    if (dp_cli_parse_i64(optarg, lo, hi, dst))
        return true;
    const char *name = "?";
    for (const struct option *lop = bench_longopts; lop->name; lop++)
        if (lop->val == opt)
            name = lop->name;
    dp_cli_usage_error(CMD, "--%s: expected %lld..%lld, got '%s'", name, (long long)lo,
                       (long long)hi, optarg);
    return false;
}

static int parse_opts(struct bench_opts *o, int argc, char **argv) {
    memset(o, 0, sizeof *o);
    o->model_dir = dp_cli_model_env();
    o->width = BENCH_DEFAULT_W;
    o->height = BENCH_DEFAULT_H;
    o->prompt_tokens = BENCH_DEFAULT_PROMPT_TOKENS;
    o->gen_tokens = BENCH_DEFAULT_GEN_TOKENS;
    o->threads = (int)dp_cli_default_threads();
    o->warmup = true;
    o->repeat = 1;
    dp_cli_gen_init_model(&o->wf);
    o->parallel = 1;
    optind = 1;
    opterr = 0;
    int c;
    long v;
    while ((c = getopt_long(argc, argv, ":vh", bench_longopts, NULL)) != -1) {
        bool ok = true;
        switch (c) {
        case OPT_MODEL: o->model_dir = optarg; break;
        case OPT_SIZE:
            if (!dp_cli_parse_size(optarg, BENCH_MAX_SIDE, &o->width, &o->height))
                return dp_cli_usage_error(CMD, "--image-size: expected WxH with sides in 1..%d, "
                                               "got '%s'", BENCH_MAX_SIDE, optarg);
            break;
        case OPT_NO_IMAGE: o->width = o->height = 0; break;
        case OPT_PROMPT: ok = count_opt(c, 0, BENCH_MAX_TOKENS, &o->prompt_tokens); break;
        case OPT_GEN: ok = count_opt(c, 1, BENCH_MAX_TOKENS, &o->gen_tokens); break;
        case OPT_BATCH: ok = count_opt(c, 1, BENCH_MAX_TOKENS, &o->batch); break;
        case OPT_REPEAT: ok = count_opt(c, 1, BENCH_MAX_REPEAT, &o->repeat); break;
        case OPT_ATTN_BLOCK: ok = count_opt(c, 1, BENCH_MAX_TOKENS, &o->attn_block); break;
        case OPT_PARALLEL: ok = count_opt(c, 1, VL_STATE_MAX_SEQS, &o->parallel); break;
        case OPT_PAGES: ok = count_opt(c, 1, BENCH_MAX_PAGES, &o->pages); break;
        case DP_CLI_OPT_THREADS:
            if (!dp_cli_parse_long(optarg, 1, DP_MAX_THREADS, &v))
                return dp_cli_usage_error(CMD, "--threads: expected 1..%d, got '%s'",
                                          DP_MAX_THREADS, optarg);
            o->threads = (int)v;
            break;
        case DP_CLI_OPT_WEIGHTS:
        case DP_CLI_OPT_VISION_WEIGHTS:
        case DP_CLI_OPT_MMPROJ: {
            struct dp_err e = {0};
            if (dp_cli_gen_opt(&o->wf, c, optarg, &e) != DP_CLI_OPT_TAKEN)
                return dp_cli_usage_error(CMD, "%s", e.msg);
            break;
        }
        case OPT_NO_WARMUP: o->warmup = false; break;
        case OPT_SCHEMA: o->schema = optarg; break;
        case 'v': o->verbose = true; break;
        case 'h': print_help(); return -1;
        default: return dp_cli_getopt_error(CMD, c, argc, argv);
        }
        if (!ok)
            return DP_EXIT_USAGE;
    }
    if (optind != argc)
        return dp_cli_usage_error(CMD, "unexpected argument '%s'", argv[optind]);
    if (!o->model_dir || !*o->model_dir)
        return dp_cli_usage_error(CMD, "--model DIR is required (or set DOCPROC_MODEL)");
    if ((o->parallel > 1 || o->pages > 0) && o->repeat > 1)
        return dp_cli_usage_error(CMD, "--repeat applies to single requests, not with --parallel "
                                       "or --pages");
    if (o->width == 0 && o->prompt_tokens == 0)
        return dp_cli_usage_error(CMD, "--no-image needs --prompt-tokens >= 1");
    return DP_EXIT_OK;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* A deterministic page-like RGB8 image (w, h, 3): light background, dark text-like strokes and
 * noise, so preprocessing does real work and the pixel values are not constant. */
static uint8_t *synthetic_page(long w, long h) {
    size_t n = (size_t)w * (size_t)h * 3;
    uint8_t *px = malloc(n);
    if (!px)
        return NULL;
    uint64_t s = BENCH_NOISE_SEED;
    for (long y = 0; y < h; y++)
        for (long x = 0; x < w; x++) {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            bool ink = (y / 6) % 3 == 0 && (x / 9) % 7 != 0 && (s & 3) != 0;
            uint8_t v = ink ? (uint8_t)(s >> 56 & 0x3f) : (uint8_t)(0xe0 | (s >> 59));
            uint8_t *p = px + ((size_t)y * (size_t)w + (size_t)x) * 3;
            p[0] = v;
            p[1] = v;
            p[2] = (uint8_t)(v ^ (s >> 61));
        }
    return px;
}

static void cpu_name(char *out, size_t cap) {
    snprintf(out, cap, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[BENCH_CPU_NAME_MAX];
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "model name", strlen("model name"))) {
            const char *p = strchr(line, ':');
            if (p) {
                p++;
                while (*p == ' ' || *p == '\t')
                    p++;
                snprintf(out, cap, "%.*s", (int)strcspn(p, "\n"), p);
            }
            break;
        }
    }
    fclose(f);
}

static double cpu_time_s(void) { /* user + system time of the process, all threads */
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0.0;
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

static double peak_rss_mib(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return -1.0;
    return (double)ru.ru_maxrss * BENCH_KIB / BENCH_MIB; /* ru_maxrss is in KiB on Linux */
}

/* Prints "docproc bench: WHAT: <libvl's message>"; the exit code by the docproc status. */
static int fail(const char *what, const struct vl_error *verr) {
    struct dp_err err = {0};
    enum dp_status st = dp_vl_err(&err, verr, DP_OK, "%s", what);
    fprintf(stderr, "docproc %s: %s\n", CMD, err.msg);
    switch (st) {
    case DP_ERR_MODEL:
    case DP_ERR_UNSUPPORTED:
    case DP_ERR_FORMAT:
    case DP_ERR_IO: return DP_EXIT_LOAD;
    case DP_ERR_CANCELLED: return DP_EXIT_INTERRUPTED;
    case DP_ERR_LIMIT: return DP_EXIT_USAGE;
    default: return DP_EXIT_INTERNAL;
    }
}

/* The preprocessed synthetic page of w x h (pixel budget widened so smart_resize keeps it). */
static int make_image(struct vl_vision_input *out, long w, long h, const char *model_dir) {
    struct vl_error err = {0};
    struct vl_image_params ip;
    char path[BENCH_PATH_MAX];
    snprintf(path, sizeof path, "%s/preprocessor_config.json", model_dir);
    vl_image_params_default(&ip);
    if (access(path, R_OK) == 0 && vl_image_params_load(&ip, path, &err) != VL_OK)
        return fail(path, &err);
    int64_t px = (int64_t)w * h;
    if (ip.max_pixels < px)
        ip.max_pixels = px;
    if (ip.min_pixels > px)
        ip.min_pixels = px;
    uint8_t *rgb = synthetic_page(w, h);
    if (!rgb) {
        fprintf(stderr, "docproc %s: out of memory for a %ldx%ld image\n", CMD, w, h);
        return DP_EXIT_INTERNAL;
    }
    enum vl_status vs = vl_image_preprocess(out, rgb, w, h, &ip, &err);
    free(rgb);
    return vs == VL_OK ? DP_EXIT_OK : fail("synthetic image", &err);
}

/* One small request (a BENCH_WARMUP_SIDE page if the benchmark has an image, one text token, two
 * generated tokens) so every weight page is mapped and the pool is running before timing: the
 * figures are then the steady state of a batch, not first-touch page faults. */
static int warm_up(struct vl_state *st, const struct vl_model *m, const struct bench_opts *o,
                   bool have_image, double *secs) {
    struct vl_vision_input vis = {0};
    int32_t *ids = NULL;
    int64_t n_ids = 0;
    struct vl_error err = {0};
    double t0 = now_s();
    int rc = have_image ? make_image(&vis, BENCH_WARMUP_SIDE, BENCH_WARMUP_SIDE, o->model_dir)
                        : DP_EXIT_OK;
    if (rc == DP_EXIT_OK && vl_prompt_synthetic(&ids, &n_ids, m, have_image ? &vis : NULL,
                                                have_image ? 1 : 0, 1, &err) != VL_OK)
        rc = fail("warm-up prompt", &err);
    if (rc == DP_EXIT_OK) {
        struct vl_gen_params gp = vl_gen_default_params();
        gp.max_new_tokens = BENCH_WARMUP_GEN;
        gp.temperature = 0.0f;
        gp.ignore_eos = true;
        gp.reuse_prefix = false;
        struct vl_request rq = {.ids = ids, .n_ids = n_ids, .vision = have_image ? &vis : NULL,
                                .n_vision = have_image};
        struct vl_result res;
        if (vl_generate(st, &rq, &gp, &res, &err) != VL_OK)
            rc = fail("warm-up", &err);
    }
    vl_state_reset(st);
    free(ids);
    vl_vision_input_free(&vis);
    *secs = now_s() - t0;
    return rc;
}

/* The median of v[0..n), 1 <= n <= BENCH_MAX_REPEAT (v is left as is). */
static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(const double *v, int64_t n) {
    double s[BENCH_MAX_REPEAT];
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    return n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

/* Share of the weight files mapped with 2 MiB pages after the run (null where unknown): decode
 * streams every weight per token, and 4 KB mappings cost it ~6-15 % (docs/performance.md). */
static json_t *huge_page_share(const struct vl_model *m, const struct vl_model_summary *sm) {
    int64_t huge = vl_model_huge_mapped_bytes(m);
    return huge >= 0 && sm->bytes_files > 0 ? json_real((double)huge / (double)sm->bytes_files)
                                            : json_null();
}

static json_t *config_json(const struct bench_opts *o, const struct vl_model_summary *sm,
                           const struct vl_state_params *sp, const struct vl_vision_input *vis) {
    char cpu[BENCH_CPU_NAME_MAX];
    cpu_name(cpu, sizeof cpu);
    json_t *c = json_object();
    json_object_set_new(c, "model_dir", json_string(o->model_dir));
    json_object_set_new(c, "model_type", json_string(sm->model_type));
    json_object_set_new(c, "params_total", json_integer(sm->params_total));
    json_object_set_new(c, "hidden_size", json_integer(sm->hidden_size));
    json_object_set_new(c, "n_layers", json_integer(sm->n_layers));
    json_object_set_new(c, "vit_depth", json_integer(sm->vit_depth));
    json_object_set_new(c, "vit_hidden", json_integer(sm->vit_hidden));
    json_object_set_new(c, "weights_bytes", json_integer((json_int_t)sm->bytes_tensors));
    json_object_set_new(c, "decode_step_weight_bytes",
                        json_integer((json_int_t)sm->bytes_decode_step));
    json_object_set_new(c, "threads", json_integer(o->threads));
    json_object_set_new(c, "weights", json_string(vl_wformat_name(sm->weights)));
    json_object_set_new(c, "vision_weights", json_string(vl_wformat_name(sm->vision_weights)));
    json_object_set_new(c, "n_batch", json_integer(sp->n_batch));
    json_object_set_new(c, "attn_block", json_integer(sp->attn_block));
    json_object_set_new(c, "image_size", o->width ? json_sprintf("%ldx%ld", o->width, o->height)
                                                  : json_null());
    json_object_set_new(c, "grid_thw",
                        vis ? json_pack("[III]", (json_int_t)vis->grid_t, (json_int_t)vis->grid_h,
                                        (json_int_t)vis->grid_w)
                            : json_null());
    json_object_set_new(c, "n_patches", json_integer(vis ? vis->n_patches : 0));
    json_object_set_new(c, "prompt_text_tokens", json_integer(o->prompt_tokens));
    json_object_set_new(c, "gen_tokens", json_integer(o->gen_tokens));
    json_object_set_new(c, "cpu", json_string(cpu));
    json_object_set_new(c, "blas_core", json_string(vl_blas_core()));
    json_object_set_new(c, "simd", json_string(vl_simd_name()));
    json_object_set_new(c, "integer_kernels", json_string(vl_qsimd_name()));
    json_object_set_new(c, "gemv_prefetch_bytes", json_integer(vl_gemv_prefetch_bytes()));
    json_object_set_new(c, "qgemv_prefetch_bytes", json_integer(vl_qgemv_prefetch_bytes()));
    json_object_set_new(c, "gemv_page_ahead_bytes", json_integer(vl_gemv_page_ahead_bytes()));
    json_object_set_new(c, "cpus_online", json_integer((int)dp_cli_default_threads()));
    return c;
}

/* --parallel / --pages: the requests go through one state's scheduler. --pages alone keeps
 * the slots full (a finished page's slot takes the next); --parallel alone adds N requests that
 * are all prefilled first (join_first) and then decode together. Fills the per-sequence medians
 * of one request's stages and the state's step totals; *wall_s the whole run. */
static int run_parallel(struct vl_state *st, const struct vl_request *rq,
                        const struct vl_gen_params *gp, int64_t total, struct vl_result *last,
                        double *vis, double *pre, double *dec, double *wall_s) {
    struct vl_error err = {0};
    int64_t added = 0, done = 0;
    int slot_req[VL_STATE_MAX_SEQS];
    for (int k = 0; k < VL_STATE_MAX_SEQS; k++)
        slot_req[k] = -1;
    for (int k = 0; k < vl_state_params_get(st)->max_seqs; k++) /* the warm-up's result */
        if (vl_seq_done(st, k, NULL, NULL, NULL))
            vl_seq_release(st, k);
    double t0 = now_s();
    while (done < total) {
        while (added < total && vl_state_busy(st) < vl_state_params_get(st)->max_seqs) {
            int id = -1;
            if (vl_seq_add(st, &id, rq, gp, &err) != VL_OK)
                return fail("add", &err);
            slot_req[id] = (int)added++;
        }
        if (vl_step(st, &err) != VL_OK)
            return fail("step", &err);
        for (int k = 0; k < vl_state_params_get(st)->max_seqs; k++) {
            enum vl_status s;
            struct vl_result r;
            if (slot_req[k] < 0 || !vl_seq_done(st, k, &r, &s, &err))
                continue;
            if (s != VL_OK)
                return fail("generate", &err);
            vis[done] = r.t.vision_s;
            pre[done] = r.t.prefill_s;
            dec[done] = r.t.decode_s;
            *last = r;
            done++;
            vl_seq_release(st, k);
            slot_req[k] = -1;
        }
    }
    *wall_s = now_s() - t0;
    return DP_EXIT_OK;
}

int dp_cmd_bench(int argc, char **argv) {
    struct bench_opts o;
    int rc = parse_opts(&o, argc, argv);
    if (rc != DP_EXIT_OK)
        return rc < 0 ? DP_EXIT_OK : rc;
    if (o.verbose)
        dp_log_set_level(DP_LOG_DEBUG);
    dp_vl_log_route();

    struct vl_error err = {0};
    struct vl_model *m = NULL;
    double t0 = now_s();
    if (vl_model_load_with_projector(&m, o.model_dir, o.wf.mmproj, &err) != VL_OK)
        return fail(o.model_dir, &err);
    if (o.width > 0 && !vl_model_has_vision(m)) {
        fprintf(stderr,
                "docproc %s: %s: a GGUF text model without its vision projector: give the "
                "projector with --mmproj, or time text only with --no-image\n",
                CMD, o.model_dir);
        vl_model_free(m);
        return DP_EXIT_LOAD;
    }
    double load_s = now_s() - t0;
    o.wf.threads = o.threads;
    struct dp_err derr = {0};
    t0 = now_s();
    if (dp_cli_model_weights(m, &o.wf, &derr) != DP_OK) {
        fprintf(stderr, "docproc %s: %s: %s\n", CMD, o.model_dir, derr.msg);
        vl_model_free(m);
        return DP_EXIT_LOAD;
    }
    double quantize_s = now_s() - t0;

    struct vl_vision_input vis = {0};
    bool have_image = o.width > 0;
    struct vl_state *st = NULL;
    int32_t *ids = NULL;
    int64_t n_ids = 0;
    rc = DP_EXIT_OK;
    if (have_image) {
        rc = make_image(&vis, o.width, o.height, o.model_dir);
        if (rc != DP_EXIT_OK)
            goto out;
    }
    if (vl_prompt_synthetic(&ids, &n_ids, m, have_image ? &vis : NULL, have_image ? 1 : 0,
                            o.prompt_tokens, &err) != VL_OK) {
        rc = fail("prompt", &err);
        goto out;
    }

    struct vl_state_params sp = vl_state_default_params();
    sp.n_threads = o.threads;
    sp.n_ctx = n_ids + o.gen_tokens;
    if (sp.n_ctx < BENCH_WARMUP_MIN_CTX)
        sp.n_ctx = BENCH_WARMUP_MIN_CTX;
    sp.max_vision_patches = have_image ? vis.n_patches : 0;
    if (have_image && o.warmup && sp.max_vision_patches < BENCH_WARMUP_PATCHES)
        sp.max_vision_patches = BENCH_WARMUP_PATCHES;
    if (o.batch > 0)
        sp.n_batch = o.batch;
    if (o.attn_block > 0)
        sp.attn_block = o.attn_block;
    sp.max_seqs = (int)o.parallel;
    sp.join_first = o.pages == 0; /* --parallel alone: prefill all, then decode together */
    if (vl_state_new(&st, m, &sp, &err) != VL_OK) {
        rc = fail("state", &err);
        goto out;
    }
    double warmup_s = 0.0;
    if (o.warmup) {
        rc = warm_up(st, m, &o, have_image, &warmup_s);
        if (rc != DP_EXIT_OK)
            goto out;
    }
    struct vl_gen_params gp = vl_gen_default_params();
    gp.max_new_tokens = o.gen_tokens;
    gp.temperature = 0.0f;
    gp.repetition_penalty = 1.0f;
    gp.ignore_eos = true;
    gp.reuse_prefix = false;
    struct vl_request rq = {
        .ids = ids, .n_ids = n_ids, .vision = have_image ? &vis : NULL, .n_vision = have_image};
    struct vl_result res;
    const bool par = o.parallel > 1 || o.pages > 0;
    const int64_t n_runs = o.pages > 0 ? o.pages : par ? o.parallel : o.repeat;
    double *vis_s = calloc((size_t)n_runs, sizeof(double));
    double *pre_s = calloc((size_t)n_runs, sizeof(double));
    double *dec_s = calloc((size_t)n_runs, sizeof(double));
    double total_s = 0.0, total_cpu_s = 0.0, wall_s = 0.0;
    struct vl_state_stats s0, s1;
    vl_state_stats_get(st, &s0);
    if (!vis_s || !pre_s || !dec_s) {
        rc = fail("timings", &(struct vl_error){VL_ERR_NOMEM, "out of memory"});
        goto out_t;
    }
    if (par) {
        vl_state_reset(st);
        double c1 = cpu_time_s();
        rc = run_parallel(st, &rq, &gp, n_runs, &res, vis_s, pre_s, dec_s, &wall_s);
        if (rc != DP_EXIT_OK)
            goto out_t;
        total_s = wall_s;
        total_cpu_s = cpu_time_s() - c1;
    }
    for (int64_t r = 0; !par && r < o.repeat; r++) {
        vl_state_reset(st); /* every request pays its full prefill */
        double t1 = now_s(), c1 = cpu_time_s();
        if (vl_generate(st, &rq, &gp, &res, &err) != VL_OK) {
            rc = fail("generate", &err);
            goto out_t;
        }
        total_s += now_s() - t1;
        total_cpu_s += cpu_time_s() - c1;
        vis_s[r] = res.t.vision_s;
        pre_s[r] = res.t.prefill_s;
        dec_s[r] = res.t.decode_s;
    }

    vl_state_stats_get(st, &s1);
    const struct vl_timings *t = &res.t;
    const double vision_s = median(vis_s, n_runs), prefill_s = median(pre_s, n_runs);
    const double decode_s = median(dec_s, n_runs);
    int64_t n_prefilled = t->n_prompt - t->n_reused;
    struct vl_model_summary sm;
    vl_model_summary(m, &sm);
    json_t *j = json_object();
    json_object_set_new(j, "vision_encode_s", json_real(vision_s));
    json_object_set_new(j, "n_vision_tokens", json_integer(t->n_vision_tokens));
    json_object_set_new(j, "prefill_s", json_real(prefill_s));
    json_object_set_new(j, "prefill_tokens", json_integer(n_prefilled));
    json_object_set_new(j, "prefill_tokens_per_s",
                        json_real(prefill_s > 0 ? (double)n_prefilled / prefill_s : 0.0));
    json_object_set_new(j, "decode_s", json_real(decode_s));
    json_object_set_new(j, "decode_tokens", json_integer(t->n_decoded));
    json_object_set_new(j, "decode_tokens_per_s",
                        json_real(decode_s > 0 ? (double)t->n_decoded / decode_s : 0.0));
    /* the weight stream decode sustained: compare with the machine's read bandwidth */
    json_object_set_new(j, "decode_weight_gb_per_s",
                        json_real(decode_s > 0 ? (double)sm.bytes_decode_step *
                                                     (double)t->n_decoded / decode_s / BENCH_GB
                                               : 0.0));
    json_object_set_new(j, "generated_tokens", json_integer(res.n));
    json_object_set_new(j, "repeat", json_integer(o.repeat));
    json_object_set_new(j, "parallel", json_integer(o.parallel));
    /* every sequence's decoded tokens per second of decode steps (the weights read once a step) */
    double agg_s = s1.decode_s - s0.decode_s;
    json_object_set_new(j, "decode_aggregate_tokens_per_s",
                        json_real(agg_s > 0 ? (double)(s1.decode_rows - s0.decode_rows) / agg_s
                                            : 0.0));
    json_object_set_new(j, "decode_steps", json_integer(s1.decode_steps - s0.decode_steps));
    if (o.pages > 0) {
        json_object_set_new(j, "pages", json_integer(o.pages));
        json_object_set_new(j, "workload_s", json_real(wall_s));
        json_object_set_new(j, "pages_per_hour",
                            json_real(wall_s > 0 ? (double)o.pages * BENCH_S_PER_HOUR / wall_s
                                                 : 0.0));
    }
    json_t *runs = json_array();
    for (int64_t r = 0; r < n_runs; r++)
        json_array_append_new(runs, json_pack("{s:f, s:f, s:f}", "vision_encode_s", vis_s[r],
                                              "prefill_s", pre_s[r], "decode_s", dec_s[r]));
    json_object_set_new(j, "runs", runs);
    const double per = par ? 1.0 : (double)o.repeat;
    json_object_set_new(j, "generate_total_s", json_real(total_s / per));
    /* CPU seconds over threads x wall: below ~0.9 the cores were shared with other processes */
    json_object_set_new(j, "generate_cpu_s", json_real(total_cpu_s / per));
    json_object_set_new(j, "cpu_share", json_real(total_s > 0 ? total_cpu_s /
                                                  ((double)o.threads * total_s) : 0.0));
    json_object_set_new(j, "load_s", json_real(load_s));
    json_object_set_new(j, "quantize_s", json_real(quantize_s));
    json_object_set_new(j, "warmup_s", json_real(warmup_s));
    json_object_set_new(j, "peak_rss_mib", json_real(peak_rss_mib()));
    json_object_set_new(j, "weights_huge_page_share", huge_page_share(m, &sm));
    json_object_set_new(j, "config",
                        config_json(&o, &sm, vl_state_params_get(st), have_image ? &vis : NULL));
    if (o.schema) {
        struct dp_err cerr = {0};
        json_t *cj = dp__bench_constrain(m, o.schema, &cerr);
        if (!cj) {
            fprintf(stderr, "docproc %s: --schema %s: %s\n", CMD, o.schema, cerr.msg);
            json_decref(j);
            rc = dp_cli_exit_for(cerr.code == DP_ERR_IO ? DP_ERR_SCHEMA : cerr.code);
            goto out;
        }
        json_object_set_new(j, "constrain", cj);
    }
    if (json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6)) != 0)
        rc = DP_EXIT_OUTPUT;
    fputc('\n', stdout);
    json_decref(j);

out_t:
    free(vis_s);
    free(pre_s);
    free(dec_s);
out:
    vl_state_free(st);
    free(ids);
    vl_vision_input_free(&vis);
    vl_model_free(m);
    return rc;
}
