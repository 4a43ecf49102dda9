/* `docproc ask`: one question to Qwen2.5-VL about images / a video, answer streamed to stdout.
 * Builds the chat prompt (--prompt) or takes a templated one (--raw), decodes images with dpingest
 * and preprocesses them with libvl, sizes an inference state for exactly this request, runs
 * vl_generate with a streaming UTF-8 decoder, optionally prints the ids (--print-ids) and dumps
 * the hook tensors (--dump DIR). --schema asks the schema's prompt (or each --prompt) and, with
 * --constrain (default on for kie and chart schemas), decodes every answer under the schema's
 * automaton (docproc/batch/dp_constrain.c, one matcher per prompt in flight).
 * Single-threaded control flow; SIGINT aborts generation (exit 5).
 * Generation defaults come from the model's generation_config.json (published Qwen2.5-VL:
 * repetition penalty 1.05, effectively greedy); every flag overrides them.
 * This file: options, help, the command's flow and one streamed answer; images, videos and the
 * --raw prompt in cmd_ask_input.c; several prompts in one state in cmd_ask_many.c. */
#include "cmd_ask_impl.h"
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

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CMD "ask"
#define ASK_DEFAULT_SYSTEM VL_CHAT_DEFAULT_SYSTEM /* chat template default (spec §5.1) */

volatile sig_atomic_t dp__ask_interrupted;

void dp__ask_on_sigint(int sig) {
    (void)sig;
    dp__ask_interrupted = 1;
}

static bool should_abort(void *user) {
    (void)user;
    return dp__ask_interrupted != 0;
}

static void print_help(const struct dp_ask_opts *o) {
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

static int parse_opts(struct dp_ask_opts *o, int argc, char **argv) {
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

enum dp_status dp__ask_from_vl(struct dp_err *err, const struct vl_error *verr,
                               const char *what) {
    return dp_vl_err(err, verr, DP_OK, "%s", what);
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

void dp__ask_print_timings(const struct vl_result *r) {
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

static void run_free(struct dp_ask_run *r) {
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

struct vl_gen_params dp__ask_gen_params(const struct dp_ask_opts *o,
                                        const struct vl_model *m) {
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

bool dp__ask_cons_lost(const struct ex_cons *c, const struct vl_result *res,
                       enum vl_status vs) {
    return c && (ex_cons_failed(c) || (vs == VL_OK && res->stop == VL_STOP_EOS &&
                                       !ex_cons_complete(c)));
}

/* --schema: loads it, takes its prompt (unless prompts were given) and system prompt (unless
 * --system was), and compiles its answer contract when the constraint applies (fail closed:
 * DP_ERR_SCHEMA naming keyword and path), all before the model is loaded. */
static enum dp_status schema_prepare(struct dp_ask_run *r, struct dp_ask_opts *o,
                                     struct ex_gram **gram, struct dp_err *err) {
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
    struct dp_ask_opts o;
    int rc = parse_opts(&o, argc, argv);
    if (rc != DP_EXIT_OK)
        return rc < 0 ? DP_EXIT_OK : rc;
    struct dp_ask_run r;
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
    enum dp_status st = dp__ask_prepare_inputs(&r, &o, &err);
    if (st == DP_OK && o.prompts_file)
        st = dp__ask_read_prompts(&o, &r.prompts_buf, &err);
    if (st == DP_OK && o.n_prompts > 1) {
        st = dp__ask_several(&r, &o, &err);
        run_free(&r);
        return st == DP_OK ? DP_EXIT_OK : fail(&err);
    }
    if (st == DP_OK && o.raw) {
        st = dp__ask_tokenize(&r.ids0, &r.n_ids0, tok, o.raw, &err);
        if (st == DP_OK && vl_prompt_expand(&r.ids, &r.n_ids, r.m, r.ids0, r.n_ids0, r.vis,
                                            r.n_vis, &verr) != VL_OK)
            st = dp__ask_from_vl(&err, &verr, "--raw");
    } else if (st == DP_OK) {
        size_t n = 0;
        if (vl_chat_build(r.m, o.system, o.prompt, r.vis, r.n_vis, &r.ids, &n, &verr) != VL_OK)
            st = dp__ask_from_vl(&err, &verr, "prompt");
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
        dp__ask_from_vl(&err, &verr, "inference state");
        run_free(&r);
        return fail(&err);
    }
    if (o.dump_dir) {
        st = dp_mkdirs(o.dump_dir, &err);
        if (st == DP_OK && vl_dump_new(&r.dump, o.dump_dir, &verr) != VL_OK)
            st = dp__ask_from_vl(&err, &verr, "--dump");
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
    struct vl_gen_params p = dp__ask_gen_params(&o, r.m);
    p.on_token = on_token;
    p.token_user = &s;
    if (r.cons)
        dp_constrain_attach(r.cons, 0, &p);
    struct sigaction sa, old_sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = dp__ask_on_sigint;
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
        dp__ask_from_vl(&err, &verr, "generate");
    else if (r.cons && dp__ask_cons_lost(dp_constrain_cons(r.cons, 0), &res, vs))
        dp_err_set(&err, DP_ERR_INTERNAL, "%s", DP_ASK_LOST_MSG);
    if (o.verbose)
        dp__ask_print_timings(&res);
    if (r.dump && vl_dump_finish(r.dump, &verr) != VL_OK)
        dp__ask_from_vl(&err, &verr, "--dump");
    run_free(&r);
    if (err.code == DP_ERR_IO) {
        fprintf(stderr, "docproc ask: %s\n", err.msg);
        return DP_EXIT_OUTPUT;
    }
    return err.code != DP_OK ? fail(&err) : DP_EXIT_OK;
}
