/* `docproc ask`: one question to Qwen2.5-VL about images / a video, answer streamed to stdout.
 * Builds the chat prompt (--prompt) or takes a templated one (--raw), decodes images with dpingest
 * and preprocesses them with libvl, sizes an inference state for exactly this request, runs
 * vl_generate with a streaming UTF-8 decoder, optionally prints the ids (--print-ids) and dumps
 * the hook tensors (--dump DIR). --schema asks the schema's prompt (or each --prompt) and, with
 * --constrain (default on for kie and chart schemas), decodes every answer under the schema's
 * automaton (docproc/batch/dp_constrain.c, one matcher per prompt in flight).
 * Single-threaded control flow; SIGINT aborts generation (exit 5).
 * Generation defaults come from the model's generation_config.json (published Qwen2.5-VL:
 * repetition penalty 1.05, effectively greedy); every flag overrides them. */
#include "dp_cli.h"
#include "dp_cli_opts.h"
#include "dp_alloc.h"
#include "dp_buf.h"
#include "dp_fs.h"
#include "dp_limits.h"
#include "dp_log.h"
#include "dp_ingest.h"
#include "dp_vl.h"
#include "dp_batch.h"
#include "ex_cons.h"
#include "sc.h"
#include "vl_tools.h"

#include <jansson.h>

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
    const char *prompts[DP_ASK_MAX_PROMPTS]; /* every --prompt, in order (prompt: the first) */
    int n_prompts;
    const char *prompts_file;  /* --prompts FILE: one prompt per line */
    int parallel;              /* prompts in flight [min(prompts, DP_BATCH_AUTO_PARALLEL)] */
    struct dp_ingest_opts ing; /* pixel budget: DP_DEFAULT_MAX_PIXELS unless given */
    struct dp_gen_opts gen;    /* negative sampling values: the model's generation_config.json */
    bool ignore_eos, print_ids, verbose, system_given;
    const char *dump_dir;
    const char *schema;                  /* --schema NAME|FILE */
    enum dp_constrain_mode constrain;    /* --constrain on|off [on for kie and chart schemas] */
    bool constrain_given;
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

static void print_help(const struct ask_opts *o) {
    struct dp_buf b;
    dp_buf_init(&b, DP_MAX_TEXT_BYTES);
    dp_buf_appendf(
        &b,
        "usage: docproc ask --model DIR [--image FILE]... [--video FRAMES --fps F]\n"
        "                   (--prompt TEXT... | --prompts FILE | --raw TEXT) [options]\n"
        "       docproc ask --model DIR --image FILE --schema NAME|FILE [--prompt TEXT...]\n"
        "                   [--constrain on|off] [options]\n\n"
        "Asks Qwen2.5-VL one question and streams the answer to stdout. Several prompts\n"
        "(--prompt repeated, or --prompts FILE) about the same images are answered together\n"
        "(decoded in one pass over the weights per step) and printed as JSON Lines in\n"
        "prompt order: {\"prompt\", \"answer\", \"tokens\", \"stop\"}; each answer is the\n"
        "one the prompt gets alone.\n\n"
        "--schema asks the schema's prompt (each --prompt / --prompts line instead, when\n"
        "given) and, with the constraint on, every answer is a valid instance of the\n"
        "schema's answer contract (docs/constrain.md); several prompts are each\n"
        "constrained. The same output as without --schema: the answer (one prompt) or\n"
        "JSON Lines (several prompts, with \"decoding\": forced ids and jumps).\n\n"
        "input:\n"
        "  -m, --model DIR            checkpoint directory [$DOCPROC_MODEL: %s]\n"
        "      --image FILE           PNG/JPEG/TIFF/PDF (first page); repeatable, in order\n"
        "      --video FRAMES         directory of frame images (sorted by name) or a\n"
        "                             comma-separated list of files; repeatable\n"
        "      --fps F                frame rate of the --video frames [%.1f]\n"
        "      --prompt TEXT          user text; the chat holds the images, then the videos,\n"
        "                             then TEXT in one user turn; repeatable\n"
        "      --prompts FILE         one prompt per line (empty lines skipped)\n"
        "      --raw TEXT             a fully templated prompt whose\n"
        "                             <|vision_start|><|image_pad|><|vision_end|> /\n"
        "                             <|video_pad|> placeholders are filled in order\n"
        "      --system TEXT          system prompt for --prompt [the schema's, else\n"
        "                             \"%s\"]\n"
        "      --schema NAME|FILE     built-in schema name or schema file: its prompt and\n"
        "                             answer contract (not with --raw)\n"
        "      --constrain on|off     decode under the schema's automaton [on for kie and\n"
        "                             chart schemas, off for the others]; a construct it\n"
        "                             cannot enforce is a load error (exit 3)\n",
        o->model_dir ? o->model_dir : "unset", o->fps, ASK_DEFAULT_SYSTEM);
    dp_cli_ingest_help(&b, DP_CLI_ING_PIXELS, &o->ing);
    dp_buf_appendf(&b,
                   "\ngeneration ([model]: the model's generation_config.json; published "
                   "Qwen2.5-VL:\nrepetition penalty %.2f, effectively greedy):\n",
                   (double)VL_GEN_DEFAULT_REPETITION_PENALTY);
    dp_cli_gen_help(&b, DP_CLI_GEN_SAMPLING, &o->gen);
    dp_buf_puts(&b, "      --ignore-eos           never stop at EOS (EOS ids are excluded from "
                    "the choice)\n"
                    "\noutput:\n"
                    "      --print-ids            print the generated ids as a JSON array on the "
                    "last line\n"
                    "      --dump DIR             write the hook tensors as "
                    "DIR/<name>.safetensors\n"
                    "\nperformance and diagnostics:\n");
    dp_cli_gen_help(&b, DP_CLI_GEN_THREADS, &o->gen);
    dp_buf_appendf(&b, "      --parallel N           prompts in flight at once [all, at most %d]\n",
                   DP_BATCH_AUTO_PARALLEL);
    dp_buf_puts(&b, "  -v, --verbose              timings and sizes on stderr\n"
                    "  -h, --help                 this text\n\n"
                    "examples:\n"
                    "  docproc ask -m qwen25vl-3b --image receipt.jpg --prompt 'What is the total?'\n"
                    "  docproc ask -m qwen25vl-3b --image a.png --prompts questions.txt\n"
                    "  docproc ask -m qwen25vl-3b --video frames/ --fps 2 --prompt 'What happens?'\n\n"
                    "exit: 0 answered, 2 usage (also --max-new-tokens below the schema's shortest\n"
                    "answer), 3 model or schema failed to load, 4 --dump not writable,\n"
                    "5 interrupted, 6 an input could not be read, 70 internal.\n");
    dp_cli_print_buf(&b);
}

enum {
    OPT_MODEL = 256, OPT_IMAGE, OPT_VIDEO, OPT_FPS, OPT_PROMPT, OPT_PROMPTS, OPT_PARALLEL, OPT_RAW, OPT_SYSTEM,
    OPT_IGNORE_EOS, OPT_PRINT_IDS, OPT_DUMP, OPT_SCHEMA, OPT_CONSTRAIN,
};

static int parse_opts(struct ask_opts *o, int argc, char **argv) {
    static const struct option longopts[] = {
        {"model", required_argument, NULL, OPT_MODEL},
        {"image", required_argument, NULL, OPT_IMAGE},
        {"video", required_argument, NULL, OPT_VIDEO},
        {"fps", required_argument, NULL, OPT_FPS},
        {"prompt", required_argument, NULL, OPT_PROMPT},
        {"prompts", required_argument, NULL, OPT_PROMPTS},
        {"parallel", required_argument, NULL, OPT_PARALLEL},
        {"raw", required_argument, NULL, OPT_RAW},
        {"system", required_argument, NULL, OPT_SYSTEM},
        DP_CLI_LONGOPTS_PIXELS,
        DP_CLI_LONGOPTS_GEN,
        {"ignore-eos", no_argument, NULL, OPT_IGNORE_EOS},
        {"print-ids", no_argument, NULL, OPT_PRINT_IDS},
        {"dump", required_argument, NULL, OPT_DUMP},
        {"schema", required_argument, NULL, OPT_SCHEMA},
        {"constrain", required_argument, NULL, OPT_CONSTRAIN},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    o->fps = DP_ASK_DEFAULT_FPS;
    o->system = ASK_DEFAULT_SYSTEM;
    dp_ingest_opts_init(&o->ing); /* the pixel budget of every command (DP_DEFAULT_MAX_PIXELS) */
    dp_cli_gen_init_model(&o->gen);
    o->model_dir = dp_cli_model_env();
    struct dp_err err = {0};
    optind = 0; /* GNU: full re-initialisation */
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":m:vh", longopts, NULL)) != -1) {
        enum dp_cli_opt_rc r = dp_cli_ingest_opt(&o->ing, NULL, c, optarg, &err);
        if (r == DP_CLI_OPT_NOT_MINE)
            r = dp_cli_gen_opt(&o->gen, c, optarg, &err);
        if (r == DP_CLI_OPT_BAD)
            return dp_cli_usage_error(CMD, "%s", err.msg);
        if (r == DP_CLI_OPT_TAKEN)
            continue;
        switch (c) {
        case 'm': /* -m as in extract, batch and tables */
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
        case OPT_PROMPT:
            if (o->n_prompts == DP_ASK_MAX_PROMPTS)
                return dp_cli_usage_error(CMD, "at most %d --prompt options", DP_ASK_MAX_PROMPTS);
            o->prompts[o->n_prompts++] = optarg;
            o->prompt = o->prompts[0];
            break;
        case OPT_PROMPTS: o->prompts_file = optarg; break;
        case OPT_PARALLEL: {
            long v;
            if (!dp_cli_parse_long(optarg, 1, DP_BATCH_MAX_PARALLEL, &v))
                return dp_cli_usage_error(CMD, "--parallel: expected an integer in [1, %d], got "
                                               "'%s'", DP_BATCH_MAX_PARALLEL, optarg);
            o->parallel = (int)v;
            break;
        }
        case OPT_RAW: o->raw = optarg; break;
        case OPT_SYSTEM:
            o->system = optarg;
            o->system_given = true;
            break;
        case OPT_IGNORE_EOS: o->ignore_eos = true; break;
        case OPT_PRINT_IDS: o->print_ids = true; break;
        case OPT_DUMP: o->dump_dir = optarg; break;
        case OPT_SCHEMA: o->schema = optarg; break;
        case OPT_CONSTRAIN:
            if (!dp_constrain_parse(optarg, &o->constrain))
                return dp_cli_usage_error(CMD, "--constrain: expected on or off, got '%s'",
                                          optarg);
            o->constrain_given = true;
            break;
        case 'v': o->verbose = true; break;
        case 'h': print_help(o); return -1;
        default: return dp_cli_getopt_error(CMD, c, argc, argv);
        }
    }
    if (optind < argc)
        return dp_cli_usage_error(CMD, "unexpected argument '%s'", argv[optind]);
    if (!o->model_dir)
        return dp_cli_usage_error(CMD, "--model DIR is required (or set DOCPROC_MODEL)");
    if (o->schema && o->raw)
        return dp_cli_usage_error(CMD, "--schema builds the prompt; a --raw prompt is complete");
    if (o->constrain_given && !o->schema)
        return dp_cli_usage_error(CMD, "--constrain needs --schema");
    if (!o->schema && (o->prompt || o->prompts_file) == !!o->raw)
        return dp_cli_usage_error(CMD, "give --prompt (one or more) or --prompts FILE, or --raw");
    if (o->prompt && o->prompts_file)
        return dp_cli_usage_error(CMD, "give prompts with --prompt or in --prompts FILE, not both");
    if ((o->n_prompts > 1 || o->prompts_file) && o->dump_dir)
        return dp_cli_usage_error(CMD, "--dump takes one prompt");
    if (o->raw && o->system_given)
        return dp_cli_usage_error(CMD, "--system applies to --prompt (a --raw prompt is complete)");
    const long long unit = (long long)o->ing.factor * o->ing.factor; /* smart_resize's floor */
    if (o->ing.max_pixels && o->ing.max_pixels < unit)
        return dp_cli_usage_error(CMD, "--max-pixels %lld is below one %lldx%lld merge unit (%lld "
                                  "pixels)", (long long)o->ing.max_pixels, (long long)o->ing.factor,
                                  (long long)o->ing.factor, unit);
    if (o->ing.min_pixels && o->ing.max_pixels && o->ing.min_pixels > o->ing.max_pixels)
        return dp_cli_usage_error(CMD, "--min-pixels %lld is above --max-pixels %lld",
                                  (long long)o->ing.min_pixels, (long long)o->ing.max_pixels);
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
        dp_free(list[i]);
    dp_free(list);
}

static enum dp_status frame_list(char ***out, int *n_out, const char *spec, struct dp_err *err) {
    char **list = dp_calloc(DP_ASK_MAX_FRAMES, sizeof *list);
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
            list[n] = dp_malloc(len);
            if (!list[n]) {
                closedir(d);
                free_list(list, n);
                return dp_err_set(err, DP_ERR_NOMEM, "%s: out of memory listing frames", spec);
            }
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
                list[n] = dp_malloc(len + 1);
                if (!list[n]) {
                    free_list(list, n);
                    return dp_err_set(err, DP_ERR_NOMEM, "out of memory listing frames");
                }
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

/* "<what>: <libvl's message>" with the status of the one libvl mapping (dp_vl.h). */
static enum dp_status from_vl(struct dp_err *err, const struct vl_error *verr, const char *what) {
    return dp_vl_err(err, verr, DP_OK, "%s", what);
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
    struct dp_page *pages = dp_calloc((size_t)n, sizeof *pages);
    const uint8_t **rgb = dp_calloc((size_t)n, sizeof *rgb);
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
    dp_free(pages);
    dp_free(rgb);
    free_list(paths, n);
    return st;
}

/* ---- prompt ------------------------------------------------------------------------------ */

static enum dp_status tokenize(int32_t **out, int64_t *n_out, const struct vl_tokenizer *tok,
                               const char *text, struct dp_err *err) {
    size_t len = strlen(text), n = 0;
    int32_t *ids = dp_reallocarray(NULL, len + 1, sizeof *ids); /* a token covers >= 1 byte */
    if (!ids)
        return dp_err_set(err, DP_ERR_NOMEM, "out of memory");
    struct vl_error verr = {0};
    if (vl_tokenizer_encode(tok, text, len, ids, len + 1, &n, &verr) != VL_OK) {
        dp_free(ids);
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
    if (r->n_forced_chunks > 0 || r->n_forced > 0)
        fprintf(stderr, "docproc ask: constrained: %lld of %lld ids forced in %lld jump-forward "
                        "chunks\n", (long long)r->n_forced, (long long)r->n,
                (long long)r->n_forced_chunks);
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
    char *prompts_buf; /* --prompts FILE's text (the prompts point into it) */
    struct sc_schema *schema;  /* --schema */
    struct dp_constrain *cons; /* --constrain: one matcher per prompt in flight, else NULL */
};

static void run_free(struct ask_run *r) {
    for (int i = 0; i < r->n_vis; i++)
        vl_vision_input_free(&r->vis[i]);
    dp_free(r->ids0);
    free(r->ids); /* libvl's allocation (vl_chat_build, vl_prompt_expand) */
    dp_free(r->sbuf);
    dp_free(r->prompts_buf);
    vl_dump_free(r->dump);
    dp_constrain_free(r->cons);
    sc_schema_free(r->schema);
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
    if (dp_cli_image_params_load(&ip, o->model_dir, true, err) != DP_OK)
        return err->code;
    if (o->ing.min_pixels)
        ip.min_pixels = o->ing.min_pixels;
    if (o->ing.max_pixels)
        ip.max_pixels = o->ing.max_pixels;
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
    p.max_new_tokens = o->gen.max_new_tokens;
    if (o->gen.temperature >= 0)
        p.temperature = (float)o->gen.temperature;
    if (o->gen.top_k >= 0)
        p.top_k = o->gen.top_k;
    if (o->gen.top_p >= 0)
        p.top_p = (float)o->gen.top_p;
    if (o->gen.repetition_penalty >= 0)
        p.repetition_penalty = (float)o->gen.repetition_penalty;
    p.seed = o->gen.seed;
    p.ignore_eos = o->ignore_eos;
    p.should_abort = should_abort;
    return p;
}

/* ---- several prompts ---------------------------------------------------------------------- */

/* --prompts FILE: one prompt per line, empty lines skipped; the lines point into *buf. */
static enum dp_status read_prompts(struct ask_opts *o, char **buf, struct dp_err *err) {
    size_t len = 0;
    enum dp_status st = dp_file_read(o->prompts_file, DP_MAX_TEXT_BYTES, buf, &len, err);
    if (st != DP_OK)
        return st;
    for (char *line = *buf, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        size_t n = strlen(line);
        if (n && line[n - 1] == '\r')
            line[--n] = 0;
        if (!n)
            continue;
        if (o->n_prompts == DP_ASK_MAX_PROMPTS)
            return dp_err_set(err, DP_ERR_LIMIT, "%s: more than %d prompts", o->prompts_file,
                              DP_ASK_MAX_PROMPTS);
        o->prompts[o->n_prompts++] = line;
    }
    if (!o->n_prompts)
        return dp_err_set(err, DP_ERR_FORMAT, "%s: no prompt in the file", o->prompts_file);
    o->prompt = o->prompts[0];
    return DP_OK;
}

/* A constrained answer the automaton did not accept (never expected: an internal error; the
 * answer is not used). */
static bool cons_lost(const struct ex_cons *c, const struct vl_result *res, enum vl_status vs) {
    return c && (ex_cons_failed(c) || (vs == VL_OK && res->stop == VL_STOP_EOS &&
                                       !ex_cons_complete(c)));
}

#define LOST_MSG "constrained decoding lost the schema (internal error; the answer is not used)"

/* One answer as a JSON Lines record: {"prompt", "answer", "tokens", "stop"[, "decoding"]
 * [, "error"][, "ids"]}; error (may be NULL) makes stop "error". decoding: with --schema. */
static enum dp_status print_answer(const char *prompt, const struct vl_result *res,
                                   const char *error, const struct ask_run *r,
                                   bool with_ids, struct dp_err *err) {
    const struct vl_tokenizer *tok = vl_model_tokenizer(r->m);
    static const char *const stops[] = {"eos", "max_new_tokens", "context", "callback"};
    int64_t keep = res->n - (res->stop == VL_STOP_EOS && res->n > 0);
    char *text = NULL;
    size_t len = 0;
    struct vl_error de = {0};
    if (vl_tokenizer_decode(tok, res->ids, (size_t)keep, true, &text, &len, &de) != VL_OK)
        return from_vl(err, &de, "decode");
    json_t *ans = json_stringn(text, len); /* decoded with U+FFFD for broken UTF-8 */
    if (!ans) {
        free(text);
        return dp_err_set(err, DP_ERR_INTERNAL, "answer is not UTF-8");
    }
    json_t *j = json_object();
    json_object_set_new(j, "prompt", json_string(prompt));
    json_object_set_new(j, "answer", ans);
    json_object_set_new(j, "tokens", json_integer(res->n));
    json_object_set_new(j, "stop", json_string(error ? "error" : stops[res->stop]));
    if (r->schema) {
        json_t *d = json_object();
        json_object_set_new(d, "constrained", json_boolean(r->cons != NULL));
        json_object_set_new(d, "forced_ids", json_integer(res->n_forced));
        json_object_set_new(d, "jumps", json_integer(res->n_forced_chunks));
        json_object_set_new(j, "decoding", d);
    }
    if (error)
        json_object_set_new(j, "error", json_string(error));
    if (with_ids) {
        json_t *ids = json_array();
        for (int64_t i = 0; i < res->n; i++)
            json_array_append_new(ids, json_integer(res->ids[i]));
        json_object_set_new(j, "ids", ids);
    }
    free(text); /* libvl's allocator */
    int rc = json_dumpf(j, stdout, JSON_COMPACT);
    json_decref(j);
    if (rc != 0 || fputc('\n', stdout) == EOF)
        return dp_err_set(err, DP_ERR_IO, "stdout: write failed");
    return DP_OK;
}

/* Every prompt as a sequence of one state (r->st has max_seqs slots); answers printed in prompt
 * order as they become printable. A prompt's failure is its record's "error"; the first is
 * returned. */
static enum dp_status ask_many(struct ask_run *r, const struct ask_opts *o,
                               const struct vl_gen_params *p, int32_t **ids, const int64_t *n_ids,
                               struct dp_err *err) {
    const int slots = vl_state_params_get(r->st)->max_seqs;
    int seq_of[DP_ASK_MAX_PROMPTS], next = 0, printed = 0;
    bool done[DP_ASK_MAX_PROMPTS] = {false};
    int cons_of[DP_ASK_MAX_PROMPTS];          /* --constrain: the prompt's matcher */
    bool cons_busy[DP_BATCH_MAX_PARALLEL] = {false};
    enum dp_status first = DP_OK;
    struct vl_error verr = {0};
    for (int i = 0; i < o->n_prompts; i++)
        seq_of[i] = -1;
    while (printed < o->n_prompts) {
        /* a slot is held from the add until the answer is printed (in prompt order) */
        while (next < o->n_prompts && next - printed < slots) {
            struct vl_request rq = {ids[next], n_ids[next], r->vis, r->n_vis};
            struct vl_gen_params q = *p;
            cons_of[next] = -1;
            if (r->cons) { /* a free matcher: at most `slots` prompts hold one */
                int k = 0;
                while (cons_busy[k])
                    k++;
                DP_ASSERT(k < slots);
                dp_constrain_attach(r->cons, k, &q);
                cons_busy[k] = true;
                cons_of[next] = k;
            }
            if (vl_seq_add(r->st, &seq_of[next], &rq, &q, &verr) != VL_OK)
                return from_vl(err, &verr, "generate");
            next++;
        }
        if (vl_state_busy(r->st) > 0 && vl_step(r->st, &verr) != VL_OK)
            return from_vl(err, &verr, "generate");
        for (int i = printed; i < next; i++)
            done[i] = done[i] || vl_seq_done(r->st, seq_of[i], NULL, NULL, NULL);
        while (printed < next && done[printed]) {
            struct vl_result res;
            enum vl_status vs = VL_OK;
            struct vl_error se = {0};
            (void)vl_seq_done(r->st, seq_of[printed], &res, &vs, &se);
            int k = cons_of[printed];
            bool lost = k >= 0 && cons_lost(dp_constrain_cons(r->cons, k), &res, vs);
            const char *error = lost ? LOST_MSG : vs != VL_OK ? se.msg : NULL;
            enum dp_status st = print_answer(o->prompts[printed], &res, error, r, o->print_ids,
                                             err);
            if (st != DP_OK)
                return st;
            if (lost && first == DP_OK)
                first = dp_err_set(err, DP_ERR_INTERNAL, "%s: %s", o->prompts[printed], LOST_MSG);
            else if (vs != VL_OK && first == DP_OK)
                first = from_vl(err, &se, o->prompts[printed]);
            if (k >= 0)
                cons_busy[k] = false;
            if (o->verbose)
                print_timings(&res);
            vl_seq_release(r->st, seq_of[printed]);
            printed++;
        }
        if (interrupted)
            return dp_err_set(err, DP_ERR_CANCELLED, "interrupted");
    }
    fflush(stdout);
    return first;
}

/* Several prompts about the same inputs: each its chat prompt, all in one state. */
static enum dp_status ask_several(struct ask_run *r, const struct ask_opts *o, struct dp_err *err) {
    int32_t *ids[DP_ASK_MAX_PROMPTS] = {NULL};
    int64_t n_ids[DP_ASK_MAX_PROMPTS], longest = 0;
    struct vl_error verr = {0};
    struct vl_model_summary sum;
    vl_model_summary(r->m, &sum);
    enum dp_status st = DP_OK;
    for (int i = 0; i < o->n_prompts && st == DP_OK; i++) {
        size_t n = 0;
        if (vl_chat_build(r->m, o->system, o->prompts[i], r->vis, r->n_vis, &ids[i], &n, &verr) !=
            VL_OK)
            st = from_vl(err, &verr, "prompt");
        n_ids[i] = (int64_t)n;
        longest = n_ids[i] > longest ? n_ids[i] : longest;
    }
    if (st == DP_OK && longest >= sum.max_positions)
        st = dp_err_set(err, DP_ERR_LIMIT, "a prompt has %lld tokens, the model's context is %lld",
                        (long long)longest, (long long)sum.max_positions);
    struct vl_state_params sp = vl_state_default_params();
    sp.n_threads = (int)o->gen.threads;
    sp.n_ctx = longest + o->gen.max_new_tokens < sum.max_positions
                   ? longest + o->gen.max_new_tokens
                   : sum.max_positions;
    sp.max_seqs = o->parallel > 0 ? o->parallel
                  : o->n_prompts < DP_BATCH_AUTO_PARALLEL ? o->n_prompts
                                                          : DP_BATCH_AUTO_PARALLEL;
    sp.max_vision_patches = 1;
    for (int i = 0; i < r->n_vis; i++)
        if (r->vis[i].n_patches > sp.max_vision_patches)
            sp.max_vision_patches = r->vis[i].n_patches;
    if (st == DP_OK && vl_state_new(&r->st, r->m, &sp, &verr) != VL_OK)
        st = from_vl(err, &verr, "inference state");
    if (st == DP_OK && r->cons) /* one matcher per prompt in flight */
        st = dp_constrain_reserve(r->cons, sp.max_seqs, err);
    if (st == DP_OK) {
        struct vl_gen_params p = gen_params(o, r->m);
        struct sigaction sa, old_sa;
        memset(&sa, 0, sizeof sa);
        sigemptyset(&sa.sa_mask);
        sa.sa_handler = on_sigint;
        sigaction(SIGINT, &sa, &old_sa);
        st = ask_many(r, o, &p, ids, n_ids, err);
        sigaction(SIGINT, &old_sa, NULL);
    }
    for (int i = 0; i < o->n_prompts; i++)
        free(ids[i]); /* libvl's allocator */
    return st;
}

/* --schema: loads it, takes its prompt (unless prompts were given) and system prompt (unless
 * --system was), and compiles its answer contract when the constraint applies (fail closed:
 * DP_ERR_SCHEMA naming keyword and path), all before the model is loaded. */
static enum dp_status schema_prepare(struct ask_run *r, struct ask_opts *o, struct ex_gram **gram,
                                     struct dp_err *err) {
    *gram = NULL;
    if (!o->schema)
        return DP_OK;
    if (sc_schema_load(&r->schema, o->schema, err) != DP_OK) {
        err->code = DP_ERR_SCHEMA; /* a schema that does not load is a load failure: exit 3 */
        return DP_ERR_SCHEMA;
    }
    if (!o->prompt && !o->prompts_file) {
        o->prompts[o->n_prompts++] = r->schema->prompt ? r->schema->prompt : "";
        o->prompt = o->prompts[0];
    }
    if (!o->system_given && r->schema->system_prompt)
        o->system = r->schema->system_prompt;
    return dp_constrain_compile(gram, r->schema, o->constrain, err);
}

int dp_cmd_ask(int argc, char **argv) {
    struct ask_opts o;
    int rc = parse_opts(&o, argc, argv);
    if (rc != DP_EXIT_OK)
        return rc < 0 ? DP_EXIT_OK : rc;
    struct ask_run r;
    memset(&r, 0, sizeof r);
    dp_vl_log_route();
    struct vl_error verr = {0};
    struct dp_err err = {0};
    struct ex_gram *gram = NULL;
    if (schema_prepare(&r, &o, &gram, &err) != DP_OK) {
        run_free(&r);
        return fail(&err);
    }
    if (dp_cli_model_load(&r.m, o.model_dir, o.gen.mmproj, &err) != DP_OK) {
        fprintf(stderr, "docproc ask: %s\n", err.msg);
        ex_gram_free(gram);
        run_free(&r);
        return DP_EXIT_LOAD;
    }
    if ((o.n_images || o.n_videos) && !vl_model_has_vision(r.m)) {
        fprintf(stderr,
                "docproc ask: %s: a GGUF text model without its vision projector answers "
                "text-only questions; give the projector with --mmproj for images\n",
                o.model_dir);
        ex_gram_free(gram);
        run_free(&r);
        return DP_EXIT_LOAD;
    }
    if (dp_cli_model_weights(r.m, &o.gen, &err) != DP_OK) {
        fprintf(stderr, "docproc ask: %s: %s\n", o.model_dir, err.msg);
        ex_gram_free(gram);
        run_free(&r);
        return DP_EXIT_LOAD;
    }
    /* the vocabulary index, and the budget against the schema's shortest answer (exit 2) */
    if (gram && dp_constrain_new(&r.cons, gram, r.m, o.gen.max_new_tokens, &err) != DP_OK) {
        run_free(&r);
        return fail(&err);
    }
    const struct vl_tokenizer *tok = vl_model_tokenizer(r.m);
    if (!tok) {
        fprintf(stderr, "docproc ask: %s: %s\n", o.model_dir, DP_VL_NO_TOKENIZER_HINT);
        run_free(&r);
        return DP_EXIT_LOAD;
    }
    enum dp_status st = prepare_inputs(&r, &o, &err);
    if (st == DP_OK && o.prompts_file)
        st = read_prompts(&o, &r.prompts_buf, &err);
    if (st == DP_OK && o.n_prompts > 1) {
        st = ask_several(&r, &o, &err);
        run_free(&r);
        return st == DP_OK ? DP_EXIT_OK : fail(&err);
    }
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
    sp.n_threads = (int)o.gen.threads;
    sp.n_ctx = r.n_ids + o.gen.max_new_tokens < sum.max_positions ? r.n_ids + o.gen.max_new_tokens
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
    r.sbuf = dp_malloc(s.cap ? s.cap : 1);
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
    if (r.cons)
        dp_constrain_attach(r.cons, 0, &p);
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
    else if (r.cons && cons_lost(dp_constrain_cons(r.cons, 0), &res, vs))
        dp_err_set(&err, DP_ERR_INTERNAL, "%s", LOST_MSG);
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
