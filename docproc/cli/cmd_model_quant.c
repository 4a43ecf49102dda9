/* `docproc model quantize DIR --to q8|q4 -o OUT`: a quantized checkpoint written once (mmapped
 * at load like the BF16 one; docs/quantization.md).
 * `docproc model compare --model DIR --weights q8|q4 --against bf16|OTHER_DIR ...`: the same
 * requests on two weight formats or two checkpoints, teacher-forced on the reference's tokens
 * (vl_compare_run): top-1 agreement, KL mean/max and relative logits error, per request and
 * overall, as text or JSON. Single control thread. */
#include "dp_cli.h"
#include "dp_cli_opts.h"
#include "dp_fs.h"
#include "dp_limits.h"
#include "dp_ingest.h"
#include "dp_vl.h"
#include "vl_tools.h"

#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define CMD_QUANT "model quantize"
#define CMD_COMPARE "model compare"
#define PATH_BYTES 4096
#define COMPARE_DEFAULT_STEPS 16
#define COMPARE_MAX_STEPS 4096
#define COMPARE_MAX_IMAGES 64
#define COMPARE_MAX_PROMPTS 256
#define COMPARE_PROMPT_MAX_BYTES ((size_t)1 << 20)
#define COMPARE_DEFAULT_TEXT_PROMPT "Write a short paragraph about the history of paper."
#define COMPARE_DEFAULT_IMAGE_PROMPT "Describe this document."

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int load_exit(const char *cmd, const char *what, const char *msg) {
    size_t n = strlen(what);
    if (strncmp(msg, what, n) == 0 && msg[n] == ':') /* the message names it already */
        fprintf(stderr, "docproc %s: %s\n", cmd, msg);
    else
        fprintf(stderr, "docproc %s: %s: %s\n", cmd, what, msg);
    return DP_EXIT_LOAD;
}

/* ---- quantize ---------------------------------------------------------------------------- */

static void quant_help(void) {
    printf("usage: docproc model quantize DIR --to q8|q4 -o OUT [--vision bf16|q8] [--threads N]\n"
           "\n"
           "Writes DIR's weights quantized as a checkpoint OUT (created if missing): config and\n"
           "tokenizer files copied, one model.safetensors, quantization.json describing the\n"
           "block tensors (format version 2: stored in the integer kernels' packed layout).\n"
           "Load it like any checkpoint; it is mapped and the kernels read the mapping: no\n"
           "quantization and no copy at load. DIR may itself be a quantized checkpoint (v1 or\n"
           "v2; --to must be its format): it is re-saved as version 2.\n\n"
           "  --to F             LLM Linear weights: q8 or q4\n"
           "  --vision F         vision tower Linear weights: bf16 (as stored) or q8 [bf16]\n"
           "  -o, --output OUT   output directory\n"
           "  --force            overwrite a checkpoint already in OUT\n"
           "  --threads N        threads quantizing [online CPUs: %ld]\n\n"
           "examples:\n"
           "  docproc model quantize qwen25vl-3b --to q8 -o qwen25vl-3b-q8\n"
           "  docproc model quantize qwen25vl-3b --to q4 --vision q8 -o qwen25vl-3b-q4\n",
           dp_cli_default_threads());
}

int dp_cmd_model_quantize(int argc, char **argv) {
    static const struct option longopts[] = {
        {"to", required_argument, NULL, 't'},     {"vision", required_argument, NULL, 'V'},
        {"output", required_argument, NULL, 'o'}, {"force", no_argument, NULL, 'F'},
        {"threads", required_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    enum vl_wformat text = VL_WFORMAT_BF16, vision = VL_WFORMAT_BF16;
    bool have_to = false, force = false;
    const char *out = NULL;
    long threads = dp_cli_default_threads();
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":o:h", longopts, NULL)) != -1) {
        switch (c) {
        case 't':
            if (!vl_wformat_parse(optarg, &text) || text == VL_WFORMAT_BF16)
                return dp_cli_usage_error(CMD_QUANT, "--to: expected q8 or q4, got '%s'", optarg);
            have_to = true;
            break;
        case 'V':
            if (!vl_wformat_parse(optarg, &vision) || vision == VL_WFORMAT_Q4)
                return dp_cli_usage_error(CMD_QUANT, "--vision: expected bf16 or q8, got '%s'",
                                          optarg);
            break;
        case 'o': out = optarg; break;
        case 'F': force = true; break;
        case 'j':
            if (!dp_cli_parse_long(optarg, 1, DP_MAX_THREADS, &threads))
                return dp_cli_usage_error(CMD_QUANT, "--threads: expected 1..%d, got '%s'",
                                          DP_MAX_THREADS, optarg);
            break;
        case 'h': quant_help(); return DP_EXIT_OK;
        default: return dp_cli_getopt_error(CMD_QUANT, c, argc, argv);
        }
    }
    if (optind + 1 != argc || !have_to || !out)
        return dp_cli_usage_error(CMD_QUANT, "needs DIR, --to q8|q4 and -o OUT");
    const char *dir = argv[optind];
    struct dp_err derr = {0};
    if (dp_mkdirs(out, &derr) != DP_OK) {
        fprintf(stderr, "docproc %s: %s\n", CMD_QUANT, derr.msg);
        return DP_EXIT_OUTPUT;
    }
    char probe[PATH_BYTES];
    snprintf(probe, sizeof probe, "%s/config.json", out);
    struct stat sb;
    if (!force && stat(probe, &sb) == 0) {
        fprintf(stderr, "docproc %s: %s already holds a checkpoint (config.json); use --force\n",
                CMD_QUANT, out);
        return DP_EXIT_OUTPUT;
    }
    struct vl_error err = {0};
    struct vl_model *m = NULL;
    if (vl_model_load(&m, dir, &err) != VL_OK)
        return load_exit(CMD_QUANT, dir, err.msg);
    double t0 = now_s();
    if (vl_model_quantize(m, text, vision, (int)threads, &err) != VL_OK) {
        vl_model_free(m);
        return load_exit(CMD_QUANT, dir, err.msg);
    }
    double tq = now_s() - t0;
    int rc = DP_EXIT_OK;
    if (vl_model_write_quantized(m, out, &err) != VL_OK) {
        fprintf(stderr, "docproc %s: %s: %s\n", CMD_QUANT, out, err.msg);
        rc = DP_EXIT_OUTPUT;
    } else {
        struct vl_model_summary s;
        vl_model_summary(m, &s);
        printf("%s: text %s, vision %s, quantized in %.1f s; decode step reads %.3f GB\n", out,
               vl_wformat_name(text), vl_wformat_name(vision), tq,
               (double)s.bytes_decode_step / 1e9);
    }
    vl_model_free(m);
    return rc;
}

/* ---- compare ----------------------------------------------------------------------------- */

struct compare_opts {
    const char *model_dir, *against;
    struct dp_gen_opts gen; /* threads, weights, vision_weights */
    const char *images[COMPARE_MAX_IMAGES];
    int n_images;
    const char *prompts_file;
    int64_t steps;
    bool json;
};

static void compare_help(void) {
    printf("usage: docproc model compare --model DIR --weights q8|q4 --against bf16|OTHER_DIR\n"
           "         [--vision-weights bf16|q8] [--mmproj FILE] [--images FILE...] [--prompts FILE]\n"
           "         [--steps N]\n"
           "         [--threads N] [--json]\n\n"
           "Runs the same requests on two weight formats of DIR (or on DIR and OTHER_DIR),\n"
           "teacher-forced on the reference's greedy tokens, and prints per request and overall\n"
           "the top-1 agreement, the mean/max KL divergence of the next-token distributions and\n"
           "the relative logits error. Requests: each prompt (one per line of --prompts, or a\n"
           "built-in one) with each image (--images, also as trailing arguments), or text-only.\n\n"
           "  --model DIR          the checkpoint, or llama.cpp GGUF files (or $DOCPROC_MODEL)\n"
           "  --mmproj FILE        llama.cpp vision projector GGUF for a GGUF --model\n"
           "  --weights F          candidate LLM weights: bf16, q8 or q4 [q8]\n"
           "  --vision-weights F   candidate vision weights: bf16 or q8 [bf16]\n"
           "  --against REF        bf16 (DIR as stored) or another checkpoint directory [bf16]\n"
           "  --images FILE...     images (first page of a PDF/TIFF) [none: text-only]\n"
           "  --prompts FILE       prompts, one per line [built-in]\n"
           "  --steps N            compared positions per request [%d]\n"
           "  --threads N          threads [online CPUs: %ld]\n"
           "  --json               one JSON object (overall.kl_mean, overall.kl_max,\n"
           "                       overall.top1_agreement, overall.logits_rel_err, requests[])\n\n"
           "examples:\n"
           "  docproc model compare --model qwen25vl-3b --weights q8 --against bf16\n"
           "  docproc model compare --model qwen25vl-3b --weights q4 --images page.png --json\n",
           COMPARE_DEFAULT_STEPS, dp_cli_default_threads());
}

enum { OPT_AGAINST = 0x2000, OPT_IMAGES, OPT_PROMPTS, OPT_STEPS, OPT_JSON, OPT_MODEL };

static int compare_parse(struct compare_opts *o, int argc, char **argv) {
    static const struct option longopts[] = {
        {"model", required_argument, NULL, OPT_MODEL},
        {"against", required_argument, NULL, OPT_AGAINST},
        {"images", required_argument, NULL, OPT_IMAGES},
        {"prompts", required_argument, NULL, OPT_PROMPTS},
        {"steps", required_argument, NULL, OPT_STEPS},
        {"json", no_argument, NULL, OPT_JSON},
        DP_CLI_LONGOPT_THREADS,
        DP_CLI_LONGOPTS_WEIGHTS,
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    memset(o, 0, sizeof *o);
    o->model_dir = dp_cli_model_env();
    o->against = "bf16";
    o->steps = COMPARE_DEFAULT_STEPS;
    dp_cli_gen_init_model(&o->gen);
    o->gen.weights = VL_WFORMAT_Q8;
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        struct dp_err e = {0};
        switch (c) {
        case OPT_MODEL: o->model_dir = optarg; break;
        case OPT_AGAINST: o->against = optarg; break;
        case OPT_IMAGES:
            if (o->n_images == COMPARE_MAX_IMAGES)
                return dp_cli_usage_error(CMD_COMPARE, "--images: at most %d", COMPARE_MAX_IMAGES);
            o->images[o->n_images++] = optarg;
            break;
        case OPT_PROMPTS: o->prompts_file = optarg; break;
        case OPT_STEPS:
            if (!dp_cli_parse_i64(optarg, 1, COMPARE_MAX_STEPS, &o->steps))
                return dp_cli_usage_error(CMD_COMPARE, "--steps: expected 1..%d, got '%s'",
                                          COMPARE_MAX_STEPS, optarg);
            break;
        case OPT_JSON: o->json = true; break;
        case 'h': compare_help(); return -1;
        default:
            if (dp_cli_gen_opt(&o->gen, c, optarg, &e) == DP_CLI_OPT_TAKEN)
                break;
            if (e.msg[0])
                return dp_cli_usage_error(CMD_COMPARE, "%s", e.msg);
            return dp_cli_getopt_error(CMD_COMPARE, c, argc, argv);
        }
    }
    for (; optind < argc; optind++) { /* --images a.png b.png: the list goes on */
        if (o->n_images == COMPARE_MAX_IMAGES)
            return dp_cli_usage_error(CMD_COMPARE, "--images: at most %d", COMPARE_MAX_IMAGES);
        o->images[o->n_images++] = argv[optind];
    }
    if (!o->model_dir || !*o->model_dir)
        return dp_cli_usage_error(CMD_COMPARE, "--model DIR is required (or set DOCPROC_MODEL)");
    return DP_EXIT_OK;
}

/* Prompts: the lines of the file (empty lines skipped), or the built-in one. */
static int read_prompts(char ***out, int *n, const struct compare_opts *o) {
    *out = NULL;
    *n = 0;
    const char *dflt = o->n_images ? COMPARE_DEFAULT_IMAGE_PROMPT : COMPARE_DEFAULT_TEXT_PROMPT;
    char *text = NULL;
    size_t len = 0;
    if (o->prompts_file) {
        struct dp_err e = {0};
        if (dp_file_read(o->prompts_file, COMPARE_PROMPT_MAX_BYTES, &text, &len, &e) != DP_OK) {
            fprintf(stderr, "docproc %s: %s\n", CMD_COMPARE, e.msg);
            return DP_EXIT_INPUT;
        }
    } else {
        text = strdup(dflt);
        if (!text)
            return DP_EXIT_INTERNAL;
        len = strlen(text);
    }
    char **list = calloc(COMPARE_MAX_PROMPTS, sizeof *list);
    if (!list) {
        free(text);
        return DP_EXIT_INTERNAL;
    }
    for (char *p = text, *save = NULL, *line = strtok_r(p, "\r\n", &save); line;
         line = strtok_r(NULL, "\r\n", &save)) {
        if (!*line)
            continue;
        if (*n == COMPARE_MAX_PROMPTS) {
            fprintf(stderr, "docproc %s: %s: more than %d prompts\n", CMD_COMPARE,
                    o->prompts_file, COMPARE_MAX_PROMPTS);
            break;
        }
        list[(*n)++] = strdup(line);
    }
    (void)len;
    free(text);
    *out = list;
    if (*n == 0) {
        fprintf(stderr, "docproc %s: %s: no prompts\n", CMD_COMPARE, o->prompts_file);
        return DP_EXIT_INPUT;
    }
    return DP_EXIT_OK;
}

static enum dp_status load_image(struct vl_vision_input *out, const char *path,
                                 const char *model_dir, struct dp_err *err) {
    struct vl_image_params ip;
    if (dp_cli_image_params_load(&ip, model_dir, true, err) != DP_OK)
        return err->code;
    struct dp_ingest_opts io;
    dp_ingest_opts_init(&io);
    io.min_pixels = ip.min_pixels;
    io.max_pixels = ip.max_pixels;
    io.factor = ip.patch_size * ip.merge_size;
    struct dp_doc *doc = NULL;
    struct dp_page pg = {0};
    enum dp_status st = dp_doc_open(&doc, path, &io, err);
    if (st == DP_OK)
        st = dp_doc_render(&pg, doc, 0, err);
    dp_doc_close(doc);
    struct vl_error verr = {0};
    if (st == DP_OK && vl_image_preprocess(out, pg.rgb, pg.width, pg.height, &ip, &verr) != VL_OK)
        st = dp_vl_err(err, &verr, DP_ERR_FORMAT, "%s", path);
    else if (st != DP_OK)
        dp_err_prefix(err, "%s", path);
    dp_page_free(&pg);
    return st;
}

static json_t *stats_json(const struct vl_compare_stats *s) {
    return json_pack("{s:I, s:f, s:f, s:f, s:f}", "steps", (json_int_t)s->steps,
                     "top1_agreement", s->steps ? (double)s->top1_agree / (double)s->steps : 0.0,
                     "kl_mean", s->kl_mean, "kl_max", s->kl_max, "logits_rel_err",
                     s->logits_rel_err);
}

static void print_stats(const char *label, const struct vl_compare_stats *s) {
    printf("%s: top1 %.1f %% (%lld/%lld), KL mean %.3e max %.3e, logits rel err %.4f\n",
           label, s->steps ? 100.0 * (double)s->top1_agree / (double)s->steps : 0.0,
           (long long)s->top1_agree, (long long)s->steps, s->kl_mean, s->kl_max,
           s->logits_rel_err);
}

int dp_cmd_model_compare(int argc, char **argv) {
    struct compare_opts o;
    int rc = compare_parse(&o, argc, argv);
    if (rc != DP_EXIT_OK)
        return rc < 0 ? DP_EXIT_OK : rc;
    bool ref_bf16 = !strcmp(o.against, "bf16");
    struct vl_error err = {0};
    struct vl_model *cand = NULL, *ref = NULL;
    if (vl_model_load_with_projector(&cand, o.model_dir, o.gen.mmproj, &err) != VL_OK)
        return load_exit(CMD_COMPARE, o.model_dir, err.msg);
    struct dp_err derr = {0};
    if (dp_cli_model_weights(cand, &o.gen, &derr) != DP_OK) {
        vl_model_free(cand);
        return load_exit(CMD_COMPARE, o.model_dir, derr.msg);
    }
    const char *ref_dir = ref_bf16 ? o.model_dir : o.against;
    if (vl_model_load_with_projector(&ref, ref_dir, ref_bf16 ? o.gen.mmproj : NULL, &err) !=
        VL_OK) {
        vl_model_free(cand);
        return load_exit(CMD_COMPARE, ref_dir, err.msg);
    }
    if (ref_bf16 && (vl_model_wformat(ref, false) != VL_WFORMAT_BF16 ||
                     vl_model_wformat(ref, true) != VL_WFORMAT_BF16)) {
        vl_model_free(cand);
        vl_model_free(ref);
        return load_exit(CMD_COMPARE, o.model_dir,
                         "--against bf16 needs a BF16 checkpoint (this one is quantized)");
    }
    char **prompts = NULL;
    int n_prompts = 0;
    rc = read_prompts(&prompts, &n_prompts, &o);
    struct vl_vision_input *vis = calloc((size_t)(o.n_images ? o.n_images : 1), sizeof *vis);
    if (!vis)
        rc = DP_EXIT_INTERNAL;
    for (int i = 0; rc == DP_EXIT_OK && i < o.n_images; i++)
        if (load_image(&vis[i], o.images[i], o.model_dir, &derr) != DP_OK) {
            fprintf(stderr, "docproc %s: %s\n", CMD_COMPARE, derr.msg);
            rc = DP_EXIT_INPUT;
        }
    json_t *jreqs = json_array();
    struct vl_compare_stats all = {0};
    double sq_err = 0, sq_ref = 0;
    const int n_img_slots = o.n_images ? o.n_images : 1;
    for (int p = 0; rc == DP_EXIT_OK && p < n_prompts; p++) {
        for (int k = 0; rc == DP_EXIT_OK && k < n_img_slots; k++) {
            int32_t *ids = NULL;
            size_t n_ids = 0;
            const struct vl_vision_input *v = o.n_images ? &vis[k] : NULL;
            if (vl_chat_build(ref, NULL, prompts[p], v, v ? 1 : 0, &ids, &n_ids, &err) != VL_OK) {
                fprintf(stderr, "docproc %s: prompt %d: %s\n", CMD_COMPARE, p + 1, err.msg);
                rc = DP_EXIT_INPUT;
                break;
            }
            struct vl_request rq = {.ids = ids, .n_ids = (int64_t)n_ids, .vision = v,
                                    .n_vision = v ? 1 : 0};
            struct vl_compare_stats s;
            if (vl_compare_run(ref, cand, &rq, o.steps, (int)o.gen.threads, &s, &err) != VL_OK) {
                fprintf(stderr, "docproc %s: %s\n", CMD_COMPARE, err.msg);
                rc = dp_vl_status(err.code, DP_OK) == DP_ERR_NOMEM ? DP_EXIT_INTERNAL : DP_EXIT_INPUT;
                free(ids);
                break;
            }
            free(ids);
            char label[PATH_BYTES];
            snprintf(label, sizeof label, "%s%s%s", o.n_images ? o.images[k] : "", o.n_images ? ": " : "",
                     prompts[p]);
            if (o.json) {
                json_t *r = stats_json(&s);
                json_object_set_new(r, "prompt", json_string(prompts[p]));
                json_object_set_new(r, "image", o.n_images ? json_string(o.images[k]) : json_null());
                json_array_append_new(jreqs, r);
            } else {
                print_stats(label, &s);
            }
            all.steps += s.steps;
            all.top1_agree += s.top1_agree;
            all.kl_mean += s.kl_mean * (double)s.steps;
            all.kl_max = s.kl_max > all.kl_max ? s.kl_max : all.kl_max;
            sq_err += s.sq_err;
            sq_ref += s.sq_ref;
        }
    }
    if (rc == DP_EXIT_OK) {
        all.kl_mean = all.steps ? all.kl_mean / (double)all.steps : 0.0;
        all.logits_rel_err = sq_ref > 0 ? sqrt(sq_err / sq_ref) : sqrt(sq_err);
        char cand_s[64];
        snprintf(cand_s, sizeof cand_s, "%s/%s", vl_wformat_name(vl_model_wformat(cand, false)),
                 vl_wformat_name(vl_model_wformat(cand, true)));
        if (o.json) {
            json_t *j = json_pack("{s:s, s:s, s:s, s:I, s:o, s:o}", "model", o.model_dir,
                                  "candidate", cand_s, "against", o.against, "steps",
                                  (json_int_t)o.steps, "overall", stats_json(&all), "requests",
                                  jreqs);
            jreqs = NULL;
            char *txt = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
            if (txt)
                printf("%s\n", txt);
            else
                rc = DP_EXIT_INTERNAL;
            free(txt);
            json_decref(j);
        } else {
            char label[128];
            snprintf(label, sizeof label, "overall (%s vs %s)", cand_s, o.against);
            print_stats(label, &all);
        }
    }
    json_decref(jreqs);
    for (int i = 0; i < o.n_images; i++)
        vl_vision_input_free(&vis[i]);
    free(vis);
    for (int i = 0; i < n_prompts; i++)
        free(prompts[i]);
    free(prompts);
    vl_model_free(cand);
    vl_model_free(ref);
    return rc;
}
