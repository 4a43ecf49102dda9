/* `docproc ask`: one question to Qwen2.5-VL about images / a video, answer streamed to stdout.
 * Builds the chat prompt (--prompt) or takes a templated one (--raw), decodes images with dpingest
 * and preprocesses them with libvl, sizes an inference state for exactly this request, runs
 * vl_generate with a streaming UTF-8 decoder, optionally prints the ids (--print-ids) and dumps
 * the hook tensors (--dump DIR). Single-threaded control flow; SIGINT aborts generation (exit 5).
 * Generation defaults come from the model's generation_config.json (published Qwen2.5-VL:
 * repetition penalty 1.05, effectively greedy); every flag overrides them. */
#include "dp_cli.h"
#include "../base/dp_fs.h"
#include "../base/dp_limits.h"
#include "../base/dp_log.h"
#include "../ingest/dp_ingest.h"
#include "vl.h"

#include <dirent.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CMD "ask"
#define ASK_DEFAULT_SYSTEM VL_CHAT_DEFAULT_SYSTEM /* chat template default (spec §5.1) */

struct ask_opts {
    const char *model_dir;
    const char *images[DP_ASK_MAX_INPUTS];
    int n_images;
    const char *videos[DP_ASK_MAX_INPUTS];
    int n_videos;
    double fps;
    const char *prompt, *raw, *system;
    int64_t min_pixels, max_pixels; /* 0: the model's preprocessor_config.json */
    int64_t max_new_tokens;
    double temperature, top_p, repetition_penalty; /* < 0: from the model */
    int64_t top_k;                                 /* < 0: from the model */
    uint64_t seed;
    bool ignore_eos, print_ids, verbose, system_given;
    int threads;
    const char *dump_dir;
};

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig) {
    (void)sig;
    interrupted = 1;
}

static bool should_abort(void *user) {
    (void)user;
    return interrupted != 0;
}

static void print_help(void) {
    printf("usage: docproc ask --model DIR [--image FILE]... [--video FRAMES --fps F]\n"
           "                   (--prompt TEXT | --raw TEXT) [options]\n\n"
           "Asks Qwen2.5-VL one question and streams the answer to stdout.\n\n"
           "input:\n"
           "  --model DIR              checkpoint directory (or $DOCPROC_MODEL)\n"
           "  --image FILE             PNG/JPEG/TIFF/PDF (first page); repeatable, in order\n"
           "  --video FRAMES           directory of frame images (sorted by name) or a\n"
           "                           comma-separated list of files; repeatable\n"
           "  --fps F                  frame rate of the --video frames [%.1f]\n"
           "  --prompt TEXT            user text; the chat holds the images, then the videos,\n"
           "                           then TEXT in one user turn\n"
           "  --raw TEXT               a fully templated prompt whose\n"
           "                           <|vision_start|><|image_pad|><|vision_end|> /\n"
           "                           <|video_pad|> placeholders are filled in order\n"
           "  --system TEXT            system prompt for --prompt [\"%s\"]\n"
           "  --min-pixels N           smallest image size in pixels [model's preprocessor]\n"
           "  --max-pixels N           largest image size in pixels [model's preprocessor]\n"
           "generation (defaults: the model's generation_config.json; published Qwen2.5-VL:\n"
           "repetition penalty %.2f, effectively greedy):\n"
           "  --max-new-tokens N       [%d]\n"
           "  --temperature T          0 = greedy\n"
           "  --top-k K                0 = off\n"
           "  --top-p P                1 = off\n"
           "  --repetition-penalty R   1 = off\n"
           "  --seed S                 sampling seed [0]\n"
           "  --ignore-eos             never stop at EOS (EOS ids are excluded from the choice)\n"
           "output:\n"
           "  --print-ids              print the generated ids as a JSON array on the last line\n"
           "  --dump DIR               write the hook tensors as DIR/<name>.safetensors\n"
           "performance and diagnostics:\n"
           "  --threads N              threads for OpenBLAS and the kernels [1]\n"
           "  -v, --verbose            timings and sizes on stderr\n",
           DP_ASK_DEFAULT_FPS, ASK_DEFAULT_SYSTEM, (double)VL_GEN_DEFAULT_REPETITION_PENALTY,
           VL_GEN_DEFAULT_MAX_NEW_TOKENS);
}

enum {
    OPT_MODEL = 256, OPT_IMAGE, OPT_VIDEO, OPT_FPS, OPT_PROMPT, OPT_RAW, OPT_SYSTEM,
    OPT_MIN_PIXELS, OPT_MAX_PIXELS, OPT_MAX_NEW, OPT_TEMP, OPT_TOP_K, OPT_TOP_P, OPT_REP,
    OPT_SEED, OPT_IGNORE_EOS, OPT_PRINT_IDS, OPT_THREADS, OPT_DUMP, OPT_HELP,
};

static int parse_opts(struct ask_opts *o, int argc, char **argv) {
    static const struct option longopts[] = {
        {"model", required_argument, NULL, OPT_MODEL},
        {"image", required_argument, NULL, OPT_IMAGE},
        {"video", required_argument, NULL, OPT_VIDEO},
        {"fps", required_argument, NULL, OPT_FPS},
        {"prompt", required_argument, NULL, OPT_PROMPT},
        {"raw", required_argument, NULL, OPT_RAW},
        {"system", required_argument, NULL, OPT_SYSTEM},
        {"min-pixels", required_argument, NULL, OPT_MIN_PIXELS},
        {"max-pixels", required_argument, NULL, OPT_MAX_PIXELS},
        {"max-new-tokens", required_argument, NULL, OPT_MAX_NEW},
        {"temperature", required_argument, NULL, OPT_TEMP},
        {"top-k", required_argument, NULL, OPT_TOP_K},
        {"top-p", required_argument, NULL, OPT_TOP_P},
        {"repetition-penalty", required_argument, NULL, OPT_REP},
        {"seed", required_argument, NULL, OPT_SEED},
        {"ignore-eos", no_argument, NULL, OPT_IGNORE_EOS},
        {"print-ids", no_argument, NULL, OPT_PRINT_IDS},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"dump", required_argument, NULL, OPT_DUMP},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    o->fps = DP_ASK_DEFAULT_FPS;
    o->system = ASK_DEFAULT_SYSTEM;
    o->max_new_tokens = VL_GEN_DEFAULT_MAX_NEW_TOKENS;
    o->temperature = o->top_p = o->repetition_penalty = -1.0;
    o->top_k = -1;
    o->threads = 1;
    o->model_dir = getenv("DOCPROC_MODEL");
    optind = 1;
    opterr = 0;
    int c;
    int64_t v;
    while ((c = getopt_long(argc, argv, ":v", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_MODEL: o->model_dir = optarg; break;
        case OPT_IMAGE:
        case OPT_VIDEO: {
            bool img = c == OPT_IMAGE;
            int *n = img ? &o->n_images : &o->n_videos;
            if (*n == DP_ASK_MAX_INPUTS)
                return dp_cli_usage_error(CMD, "at most %d --%s options", DP_ASK_MAX_INPUTS,
                                          img ? "image" : "video");
            (img ? o->images : o->videos)[(*n)++] = optarg;
            break;
        }
        case OPT_FPS:
            if (!dp_cli_parse_double(optarg, 1e-3, DP_ASK_MAX_FPS, &o->fps))
                return dp_cli_usage_error(CMD, "--fps: expected a number in (0, %g], got '%s'",
                                          DP_ASK_MAX_FPS, optarg);
            break;
        case OPT_PROMPT: o->prompt = optarg; break;
        case OPT_RAW: o->raw = optarg; break;
        case OPT_SYSTEM:
            o->system = optarg;
            o->system_given = true;
            break;
        case OPT_MIN_PIXELS:
        case OPT_MAX_PIXELS:
            if (!dp_cli_parse_i64(optarg, 1, INT64_MAX / 4, &v))
                return dp_cli_usage_error(CMD, "--%s: expected a positive integer, got '%s'",
                                          c == OPT_MIN_PIXELS ? "min-pixels" : "max-pixels",
                                          optarg);
            *(c == OPT_MIN_PIXELS ? &o->min_pixels : &o->max_pixels) = v;
            break;
        case OPT_MAX_NEW:
            if (!dp_cli_parse_i64(optarg, 1, DP_ASK_MAX_NEW_TOKENS, &o->max_new_tokens))
                return dp_cli_usage_error(CMD, "--max-new-tokens: expected 1..%d, got '%s'",
                                          DP_ASK_MAX_NEW_TOKENS, optarg);
            break;
        case OPT_TEMP:
            if (!dp_cli_parse_double(optarg, 0.0, 1e6, &o->temperature))
                return dp_cli_usage_error(CMD, "--temperature: expected >= 0, got '%s'", optarg);
            break;
        case OPT_TOP_K:
            if (!dp_cli_parse_i64(optarg, 0, INT32_MAX, &o->top_k))
                return dp_cli_usage_error(CMD, "--top-k: expected >= 0, got '%s'", optarg);
            break;
        case OPT_TOP_P:
            if (!dp_cli_parse_double(optarg, 1e-9, 1.0, &o->top_p))
                return dp_cli_usage_error(CMD, "--top-p: expected a number in (0, 1], got '%s'",
                                          optarg);
            break;
        case OPT_REP:
            if (!dp_cli_parse_double(optarg, 1e-6, 1e6, &o->repetition_penalty))
                return dp_cli_usage_error(CMD, "--repetition-penalty: expected > 0, got '%s'",
                                          optarg);
            break;
        case OPT_SEED:
            if (!dp_cli_parse_i64(optarg, 0, INT64_MAX, &v))
                return dp_cli_usage_error(CMD, "--seed: expected an integer >= 0, got '%s'",
                                          optarg);
            o->seed = (uint64_t)v;
            break;
        case OPT_IGNORE_EOS: o->ignore_eos = true; break;
        case OPT_PRINT_IDS: o->print_ids = true; break;
        case OPT_THREADS:
            if (!dp_cli_parse_i64(optarg, 1, DP_ASK_MAX_THREADS, &v))
                return dp_cli_usage_error(CMD, "--threads: expected 1..%d, got '%s'",
                                          DP_ASK_MAX_THREADS, optarg);
            o->threads = (int)v;
            break;
        case OPT_DUMP: o->dump_dir = optarg; break;
        case 'v': o->verbose = true; break;
        case OPT_HELP: print_help(); return -1;
        case ':': return dp_cli_usage_error(CMD, "option '%s' needs a value", argv[optind - 1]);
        default: return dp_cli_usage_error(CMD, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return dp_cli_usage_error(CMD, "unexpected argument '%s'", argv[optind]);
    if (!o->model_dir)
        return dp_cli_usage_error(CMD, "--model DIR is required (or set DOCPROC_MODEL)");
    if (!o->prompt == !o->raw)
        return dp_cli_usage_error(CMD, "give exactly one of --prompt and --raw");
    if (o->raw && o->system_given)
        return dp_cli_usage_error(CMD, "--system applies to --prompt (a --raw prompt is complete)");
    if (o->min_pixels && o->max_pixels && o->min_pixels > o->max_pixels)
        return dp_cli_usage_error(CMD, "--min-pixels %lld is above --max-pixels %lld",
                                  (long long)o->min_pixels, (long long)o->max_pixels);
    return DP_EXIT_OK;
}

/* ---- inputs ------------------------------------------------------------------------------ */

/* Decodes the first page of path to RGB8 (raster at native size; PDF at the model's budget). */
static enum dp_status load_page(struct dp_page *pg, const char *path,
                                const struct dp_ingest_opts *io, struct dp_err *err) {
    struct dp_doc *doc = NULL;
    enum dp_status st = dp_doc_open(&doc, path, io, err);
    if (st == DP_OK)
        st = dp_doc_render(pg, doc, 0, err);
    dp_doc_close(doc);
    if (st != DP_OK)
        dp_err_prefix(err, "%s", path);
    return st;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Frame paths of FRAMES: a directory (its regular entries, sorted by name, dot-files skipped)
 * or a comma-separated list. *out (strings and array) freed with free_list. */
static void free_list(char **list, int n) {
    for (int i = 0; list && i < n; i++)
        free(list[i]);
    free(list);
}

static enum dp_status frame_list(char ***out, int *n_out, const char *spec, struct dp_err *err) {
    char **list = calloc(DP_ASK_MAX_FRAMES, sizeof *list);
    int n = 0;
    *out = NULL;
    *n_out = 0;
    if (!list)
        return dp_err_set(err, DP_ERR_NOMEM, "out of memory");
    DIR *d = opendir(spec);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.')
                continue;
            if (n == DP_ASK_MAX_FRAMES) {
                closedir(d);
                free_list(list, n);
                return dp_err_set(err, DP_ERR_LIMIT, "%s: more than %d frames", spec,
                                  DP_ASK_MAX_FRAMES);
            }
            size_t len = strlen(spec) + strlen(e->d_name) + 2;
            list[n] = malloc(len);
            if (!list[n])
                break;
            snprintf(list[n], len, "%s/%s", spec, e->d_name);
            n++;
        }
        closedir(d);
        qsort(list, (size_t)n, sizeof *list, cmp_str);
    } else {
        const char *p = spec;
        while (*p) {
            const char *q = strchr(p, ',');
            size_t len = q ? (size_t)(q - p) : strlen(p);
            if (len) {
                if (n == DP_ASK_MAX_FRAMES) {
                    free_list(list, n);
                    return dp_err_set(err, DP_ERR_LIMIT, "more than %d frames in '%s'",
                                      DP_ASK_MAX_FRAMES, spec);
                }
                list[n] = malloc(len + 1);
                if (!list[n])
                    break;
                memcpy(list[n], p, len);
                list[n][len] = 0;
                n++;
            }
            p += len + (q ? 1 : 0);
        }
    }
    if (n == 0) {
        free_list(list, n);
        return dp_err_set(err, DP_ERR_IO, "%s: no frames", spec);
    }
    *out = list;
    *n_out = n;
    return DP_OK;
}

static enum dp_status vl_to_dp(enum vl_status st) {
    switch (st) {
    case VL_OK: return DP_OK;
    case VL_ERR_NOMEM: return DP_ERR_NOMEM;
    case VL_ERR_IO: return DP_ERR_IO;
    case VL_ERR_FORMAT: return DP_ERR_FORMAT;
    case VL_ERR_LIMIT: return DP_ERR_LIMIT;
    case VL_ERR_UNSUPPORTED: return DP_ERR_UNSUPPORTED;
    case VL_ERR_MODEL: return DP_ERR_MODEL;
    case VL_ERR_INVALID: return DP_ERR_FORMAT;
    case VL_ERR_CANCELLED: return DP_ERR_CANCELLED;
    case VL_ERR_INTERNAL: return DP_ERR_INTERNAL;
    }
    return DP_ERR_INTERNAL;
}

static enum dp_status from_vl(struct dp_err *err, const struct vl_error *verr, const char *what) {
    return dp_err_set(err, vl_to_dp(verr->code), "%s: %s", what, verr->msg);
}

static enum dp_status load_image(struct vl_vision_input *out, const char *path,
                                 const struct dp_ingest_opts *io,
                                 const struct vl_image_params *ip, struct dp_err *err) {
    struct dp_page pg = {0};
    enum dp_status st = load_page(&pg, path, io, err);
    if (st != DP_OK)
        return st;
    struct vl_error verr = {0};
    if (vl_image_preprocess(out, pg.rgb, pg.width, pg.height, ip, &verr) != VL_OK)
        st = from_vl(err, &verr, path);
    dp_page_free(&pg);
    return st;
}

static enum dp_status load_video(struct vl_vision_input *out, const char *spec, double fps,
                                 const struct dp_ingest_opts *io,
                                 const struct vl_image_params *ip, struct dp_err *err) {
    char **paths = NULL;
    int n = 0;
    enum dp_status st = frame_list(&paths, &n, spec, err);
    if (st != DP_OK)
        return st;
    struct dp_page *pages = calloc((size_t)n, sizeof *pages);
    const uint8_t **rgb = calloc((size_t)n, sizeof *rgb);
    if (!pages || !rgb)
        st = dp_err_set(err, DP_ERR_NOMEM, "out of memory");
    for (int i = 0; st == DP_OK && i < n; i++) {
        st = load_page(&pages[i], paths[i], io, err);
        if (st == DP_OK && (pages[i].width != pages[0].width ||
                            pages[i].height != pages[0].height))
            st = dp_err_set(err, DP_ERR_FORMAT, "%s: frame is %dx%d, the first frame %dx%d",
                            paths[i], pages[i].width, pages[i].height, pages[0].width,
                            pages[0].height);
        if (st == DP_OK)
            rgb[i] = pages[i].rgb;
    }
    if (st == DP_OK) {
        struct vl_error verr = {0};
        if (vl_video_preprocess(out, rgb, n, pages[0].width, pages[0].height, fps, ip, &verr) !=
            VL_OK)
            st = from_vl(err, &verr, spec);
    }
    for (int i = 0; pages && i < n; i++)
        dp_page_free(&pages[i]);
    free(pages);
    free(rgb);
    free_list(paths, n);
    return st;
}

/* ---- prompt ------------------------------------------------------------------------------ */

static enum dp_status tokenize(int32_t **out, int64_t *n_out, const struct vl_tokenizer *tok,
                               const char *text, struct dp_err *err) {
    size_t len = strlen(text), n = 0;
    int32_t *ids = malloc((len + 1) * sizeof *ids); /* every token covers >= 1 byte */
    if (!ids)
        return dp_err_set(err, DP_ERR_NOMEM, "out of memory");
    struct vl_error verr = {0};
    if (vl_tokenizer_encode(tok, text, len, ids, len + 1, &n, &verr) != VL_OK) {
        free(ids);
        return from_vl(err, &verr, "prompt");
    }
    *out = ids;
    *n_out = (int64_t)n;
    return DP_OK;
}

/* ---- generation -------------------------------------------------------------------------- */

struct stream {
    const struct vl_tokenizer *tok;
    struct vl_tok_stream ts;
    char *buf;
    size_t cap;
    bool ends_with_newline;
};

static void emit(struct stream *s, const char *p, size_t n) {
    if (!n)
        return;
    fwrite(p, 1, n, stdout);
    fflush(stdout);
    s->ends_with_newline = p[n - 1] == '\n';
}

static bool on_token(int32_t id, float logprob, void *user) {
    struct stream *s = user;
    (void)logprob;
    size_t n = 0;
    struct vl_error verr = {0};
    if (vl_tok_stream_push(s->tok, &s->ts, id, s->buf, s->cap, &n, &verr) == VL_OK)
        emit(s, s->buf, n);
    return true;
}

static void print_ids(const struct vl_result *res) {
    fputc('[', stdout);
    for (int64_t i = 0; i < res->n; i++)
        printf("%s%d", i ? ", " : "", res->ids[i]);
    fputs("]\n", stdout);
}

static void print_timings(const struct vl_result *r) {
    double pre = r->t.prefill_s > 0 ? (double)(r->t.n_prompt - r->t.n_reused) / r->t.prefill_s : 0;
    double dec = r->t.decode_s > 0 ? (double)r->t.n_decoded / r->t.decode_s : 0;
    fprintf(stderr,
            "docproc ask: vision %.3f s (%lld tokens), prefill %.3f s (%lld tokens, %.1f tok/s), "
            "decode %.3f s (%lld tokens, %.2f tok/s), %s\n",
            r->t.vision_s, (long long)r->t.n_vision_tokens, r->t.prefill_s,
            (long long)r->t.n_prompt, pre, r->t.decode_s, (long long)r->n, dec,
            r->truncated ? "truncated" : "stopped");
}

struct ask_run {
    struct vl_model *m;
    struct vl_vision_input vis[2 * DP_ASK_MAX_INPUTS];
    int n_vis;
    int32_t *ids0, *ids;
    int64_t n_ids0, n_ids;
    struct vl_state *st;
    struct vl_dump *dump;
    char *sbuf;
};

static void run_free(struct ask_run *r) {
    for (int i = 0; i < r->n_vis; i++)
        vl_vision_input_free(&r->vis[i]);
    free(r->ids0);
    free(r->ids);
    free(r->sbuf);
    vl_dump_free(r->dump);
    vl_state_free(r->st);
    vl_model_free(r->m);
}

static int fail(const struct dp_err *err) {
    fprintf(stderr, "docproc ask: %s\n", err->msg);
    return dp_cli_exit_for(err->code);
}

static enum dp_status prepare_inputs(struct ask_run *r, const struct ask_opts *o,
                                     struct dp_err *err) {
    struct vl_image_params ip;
    struct vl_error verr = {0};
    vl_image_params_default(&ip);
    size_t dl = strlen(o->model_dir);
    char *pp = malloc(dl + sizeof "/preprocessor_config.json");
    if (!pp)
        return dp_err_set(err, DP_ERR_NOMEM, "out of memory");
    memcpy(pp, o->model_dir, dl);
    memcpy(pp + dl, "/preprocessor_config.json", sizeof "/preprocessor_config.json");
    FILE *fp = fopen(pp, "rb");
    enum vl_status vs = VL_OK;
    if (fp) {
        fclose(fp);
        vs = vl_image_params_load(&ip, pp, &verr);
    }
    free(pp);
    if (vs != VL_OK)
        return dp_err_set(err, DP_ERR_MODEL, "%s", verr.msg);
    if (o->min_pixels)
        ip.min_pixels = o->min_pixels;
    if (o->max_pixels)
        ip.max_pixels = o->max_pixels;
    /* smart_resize never goes below one merge unit, so a smaller budget cannot be honoured */
    int64_t unit = ip.patch_size * ip.merge_size * ip.patch_size * ip.merge_size;
    if (ip.max_pixels < unit)
        return dp_err_set(err, DP_ERR_USAGE,
                          "max-pixels %lld is below one %lldx%lld merge unit (%lld pixels)",
                          (long long)ip.max_pixels, (long long)(ip.patch_size * ip.merge_size),
                          (long long)(ip.patch_size * ip.merge_size), (long long)unit);
    if (ip.min_pixels > ip.max_pixels)
        return dp_err_set(err, DP_ERR_USAGE, "min-pixels %lld is above max-pixels %lld",
                          (long long)ip.min_pixels, (long long)ip.max_pixels);
    struct dp_ingest_opts io;
    dp_ingest_opts_init(&io);
    io.min_pixels = ip.min_pixels;
    io.max_pixels = ip.max_pixels;
    io.factor = ip.patch_size * ip.merge_size;
    enum dp_status st = DP_OK;
    for (int i = 0; st == DP_OK && i < o->n_images; i++, r->n_vis++)
        st = load_image(&r->vis[r->n_vis], o->images[i], &io, &ip, err);
    for (int i = 0; st == DP_OK && i < o->n_videos; i++, r->n_vis++)
        st = load_video(&r->vis[r->n_vis], o->videos[i], o->fps, &io, &ip, err);
    return st;
}

static struct vl_gen_params gen_params(const struct ask_opts *o, const struct vl_model *m) {
    struct vl_gen_params p = vl_gen_model_params(m);
    p.max_new_tokens = o->max_new_tokens;
    if (o->temperature >= 0)
        p.temperature = (float)o->temperature;
    if (o->top_k >= 0)
        p.top_k = o->top_k;
    if (o->top_p >= 0)
        p.top_p = (float)o->top_p;
    if (o->repetition_penalty >= 0)
        p.repetition_penalty = (float)o->repetition_penalty;
    p.seed = o->seed;
    p.ignore_eos = o->ignore_eos;
    p.should_abort = should_abort;
    return p;
}

int dp_cmd_ask(int argc, char **argv) {
    struct ask_opts o;
    int rc = parse_opts(&o, argc, argv);
    if (rc != DP_EXIT_OK)
        return rc < 0 ? DP_EXIT_OK : rc;
    struct ask_run r;
    memset(&r, 0, sizeof r);
    struct vl_error verr = {0};
    struct dp_err err = {0};
    if (vl_model_load(&r.m, o.model_dir, &verr) != VL_OK) {
        fprintf(stderr, "docproc ask: %s: %s\n", o.model_dir, verr.msg);
        return DP_EXIT_LOAD;
    }
    const struct vl_tokenizer *tok = vl_model_tokenizer(r.m);
    if (!tok) {
        fprintf(stderr, "docproc ask: %s: no tokenizer.json\n", o.model_dir);
        run_free(&r);
        return DP_EXIT_LOAD;
    }
    enum dp_status st = prepare_inputs(&r, &o, &err);
    if (st == DP_OK && o.raw) {
        st = tokenize(&r.ids0, &r.n_ids0, tok, o.raw, &err);
        if (st == DP_OK && vl_prompt_expand(&r.ids, &r.n_ids, r.m, r.ids0, r.n_ids0, r.vis,
                                            r.n_vis, &verr) != VL_OK)
            st = from_vl(&err, &verr, "--raw");
    } else if (st == DP_OK) {
        size_t n = 0;
        if (vl_chat_build(r.m, o.system, o.prompt, r.vis, r.n_vis, &r.ids, &n, &verr) != VL_OK)
            st = from_vl(&err, &verr, "prompt");
        r.n_ids = (int64_t)n;
    }
    struct vl_model_summary sum;
    vl_model_summary(r.m, &sum);
    if (st == DP_OK && r.n_ids >= sum.max_positions)
        st = dp_err_set(&err, DP_ERR_LIMIT, "prompt has %lld tokens, the model's context is %lld",
                        (long long)r.n_ids, (long long)sum.max_positions);
    if (st != DP_OK) {
        run_free(&r);
        return fail(&err);
    }
    struct vl_state_params sp = vl_state_default_params();
    sp.n_threads = o.threads;
    sp.n_ctx = r.n_ids + o.max_new_tokens < sum.max_positions ? r.n_ids + o.max_new_tokens
                                                                : sum.max_positions;
    sp.max_vision_patches = 1;
    for (int i = 0; i < r.n_vis; i++)
        if (r.vis[i].n_patches > sp.max_vision_patches)
            sp.max_vision_patches = r.vis[i].n_patches;
    if (vl_state_new(&r.st, r.m, &sp, &verr) != VL_OK) {
        from_vl(&err, &verr, "inference state");
        run_free(&r);
        return fail(&err);
    }
    if (o.dump_dir) {
        st = dp_mkdirs(o.dump_dir, &err);
        if (st == DP_OK && vl_dump_new(&r.dump, o.dump_dir, &verr) != VL_OK)
            st = from_vl(&err, &verr, "--dump");
        if (st != DP_OK) {
            run_free(&r);
            return fail(&err);
        }
        vl_set_hook(r.st, vl_dump_hook, r.dump);
    }
    struct stream s = {.tok = tok, .cap = vl_tok_stream_bound(tok), .ends_with_newline = true};
    r.sbuf = malloc(s.cap ? s.cap : 1);
    s.buf = r.sbuf;
    if (!s.buf) {
        dp_err_set(&err, DP_ERR_NOMEM, "out of memory");
        run_free(&r);
        return fail(&err);
    }
    vl_tok_stream_init(&s.ts, true);
    struct vl_gen_params p = gen_params(&o, r.m);
    p.on_token = on_token;
    p.token_user = &s;
    struct sigaction sa, old_sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, &old_sa);
    struct vl_request rq = {r.ids, r.n_ids, r.vis, r.n_vis};
    struct vl_result res;
    enum vl_status vs = vl_generate(r.st, &rq, &p, &res, &verr);
    sigaction(SIGINT, &old_sa, NULL);
    emit(&s, s.buf, vl_tok_stream_flush(&s.ts, s.buf, s.cap));
    if (!s.ends_with_newline)
        emit(&s, "\n", 1);
    if (o.print_ids)
        print_ids(&res);
    fflush(stdout);
    if (vs != VL_OK)
        from_vl(&err, &verr, "generate");
    if (o.verbose)
        print_timings(&res);
    if (r.dump && vl_dump_finish(r.dump, &verr) != VL_OK)
        from_vl(&err, &verr, "--dump");
    run_free(&r);
    if (err.code == DP_ERR_IO) {
        fprintf(stderr, "docproc ask: %s\n", err.msg);
        return DP_EXIT_OUTPUT;
    }
    return err.code != DP_OK ? fail(&err) : DP_EXIT_OK;
}
