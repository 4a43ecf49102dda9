/* Shared command-line options (dp_cli_opts.h): the ingestion options and the generation options
 * are parsed, range-checked and described here once, so every command that takes them accepts
 * the same values, rejects the same mistakes with the same message and prints the same help
 * line. The bounds are named limits in dp_limits.h. Thread-safe (no state). */
#include "dp_cli_opts.h"
#include "dp_cli.h"

#include "dp_limits.h"
#include "dp_vl.h"
#include "vl_tools.h"

#include <stdbool.h>
#include <stdio.h>
#include <unistd.h>

#define DFLT_LEN 64
#define DP_CLI_PATH_MAX 4096
#define HELP_OPT_WIDTH 22 /* "--repetition-penalty R", the longest shared option */

long dp_cli_default_threads(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > DP_MAX_THREADS ? DP_MAX_THREADS : n;
}

void dp_cli_gen_init_model(struct dp_gen_opts *g) {
    g->max_new_tokens = VL_GEN_DEFAULT_MAX_NEW_TOKENS;
    g->temperature = g->top_p = g->repetition_penalty = -1.0;
    g->top_k = -1;
    g->seed = 0;
    g->threads = dp_cli_default_threads();
    g->weights = g->vision_weights = -1;
    g->mmproj = NULL;
}

enum dp_status dp_cli_model_load(struct vl_model **out, const char *dir, const char *mmproj,
                                 struct dp_err *err) {
    return dp_vl_model_load(out, dir, mmproj, err);
}

enum dp_status dp_cli_model_weights(struct vl_model *m, const struct dp_gen_opts *g,
                                    struct dp_err *err) {
    return dp_vl_model_weights(m, g->weights, g->vision_weights, (int)g->threads, err);
}

#define PREPROC_JSON "preprocessor_config.json"

enum dp_status dp_cli_image_params_load(struct vl_image_params *out, const char *model_dir,
                                        bool optional, struct dp_err *err) {
    vl_image_params_default(out);
    if (!model_dir)
        return DP_OK;
    char path[DP_CLI_PATH_MAX];
    int k = snprintf(path, sizeof path, "%s/" PREPROC_JSON, model_dir);
    if (k < 0 || (size_t)k >= sizeof path)
        return dp_err_set(err, DP_ERR_USAGE, "%s: model directory path too long", model_dir);
    if (optional && access(path, F_OK) != 0)
        return DP_OK;
    struct vl_error verr = {0};
    if (vl_image_params_load(out, path, &verr) != VL_OK)
        return dp_vl_err(err, &verr, DP_ERR_MODEL, NULL);
    return DP_OK;
}

#define BAD(...) (dp_err_set(err, DP_ERR_USAGE, __VA_ARGS__), DP_CLI_OPT_BAD)

enum dp_cli_opt_rc dp_cli_ingest_opt(struct dp_ingest_opts *ing, const char **pages, int c,
                                     const char *arg, struct dp_err *err) {
    int64_t v = 0;
    switch (c) {
    case DP_CLI_OPT_DPI:
        if (!dp_cli_parse_double(arg, DP_MIN_DPI, DP_MAX_DPI, &ing->dpi))
            return BAD("--dpi: expected a number in [%d, %d], got '%s'", DP_MIN_DPI, DP_MAX_DPI,
                       arg);
        return DP_CLI_OPT_TAKEN;
    case DP_CLI_OPT_MIN_PIXELS:
    case DP_CLI_OPT_MAX_PIXELS:
        if (!dp_cli_parse_i64(arg, 1, DP_MAX_BUDGET_PIXELS, &v))
            return BAD("--%s: expected an integer in [1, %lld], got '%s'",
                       c == DP_CLI_OPT_MIN_PIXELS ? "min-pixels" : "max-pixels",
                       (long long)DP_MAX_BUDGET_PIXELS, arg);
        *(c == DP_CLI_OPT_MIN_PIXELS ? &ing->min_pixels : &ing->max_pixels) = v;
        return DP_CLI_OPT_TAKEN;
    case DP_CLI_OPT_PAGES:
        if (!pages)
            return DP_CLI_OPT_NOT_MINE;
        *pages = arg;
        return DP_CLI_OPT_TAKEN;
    case DP_CLI_OPT_PASSWORD: ing->password = arg; return DP_CLI_OPT_TAKEN;
    case DP_CLI_OPT_MAX_DECODE_PIXELS:
        if (!dp_cli_parse_i64(arg, 1, DP_MAX_BUDGET_PIXELS, &v))
            return BAD("--max-decode-pixels: expected an integer in [1, %lld], got '%s'",
                       (long long)DP_MAX_BUDGET_PIXELS, arg);
        ing->max_decode_pixels = (size_t)v;
        return DP_CLI_OPT_TAKEN;
    default: return DP_CLI_OPT_NOT_MINE;
    }
}

enum dp_cli_opt_rc dp_cli_gen_opt(struct dp_gen_opts *g, int c, const char *arg,
                                  struct dp_err *err) {
    int64_t v = 0;
    switch (c) {
    case DP_CLI_OPT_MAX_NEW_TOKENS:
        if (!dp_cli_parse_i64(arg, 1, DP_MAX_NEW_TOKENS, &v))
            return BAD("--max-new-tokens: expected an integer in [1, %d], got '%s'",
                       DP_MAX_NEW_TOKENS, arg);
        g->max_new_tokens = (long)v;
        return DP_CLI_OPT_TAKEN;
    case DP_CLI_OPT_TEMPERATURE:
        if (!dp_cli_parse_double(arg, 0, DP_MAX_TEMPERATURE, &g->temperature))
            return BAD("--temperature: expected a number in [0, %g], got '%s'",
                       DP_MAX_TEMPERATURE, arg);
        return DP_CLI_OPT_TAKEN;
    case DP_CLI_OPT_TOP_K:
        if (!dp_cli_parse_i64(arg, 0, DP_MAX_TOP_K, &v))
            return BAD("--top-k: expected an integer in [0, %d], got '%s'", DP_MAX_TOP_K, arg);
        g->top_k = (long)v;
        return DP_CLI_OPT_TAKEN;
    case DP_CLI_OPT_TOP_P:
        if (!dp_cli_parse_double(arg, 0, 1, &g->top_p) || g->top_p <= 0)
            return BAD("--top-p: expected a number in (0, 1], got '%s'", arg);
        return DP_CLI_OPT_TAKEN;
    case DP_CLI_OPT_REP_PENALTY:
        if (!dp_cli_parse_double(arg, 0, DP_MAX_REP_PENALTY, &g->repetition_penalty) ||
            g->repetition_penalty <= 0)
            return BAD("--repetition-penalty: expected a number in (0, %g], got '%s'",
                       DP_MAX_REP_PENALTY, arg);
        return DP_CLI_OPT_TAKEN;
    case DP_CLI_OPT_SEED:
        if (!dp_cli_parse_i64(arg, 0, INT64_MAX, &v))
            return BAD("--seed: expected a non-negative integer, got '%s'", arg);
        g->seed = (uint64_t)v;
        return DP_CLI_OPT_TAKEN;
    case DP_CLI_OPT_THREADS:
        if (!dp_cli_parse_i64(arg, 1, DP_MAX_THREADS, &v))
            return BAD("--threads: expected an integer in [1, %d], got '%s'", DP_MAX_THREADS,
                       arg);
        g->threads = (long)v;
        return DP_CLI_OPT_TAKEN;
    case DP_CLI_OPT_WEIGHTS:
    case DP_CLI_OPT_VISION_WEIGHTS: {
        bool vis = c == DP_CLI_OPT_VISION_WEIGHTS;
        enum vl_wformat f;
        if (!vl_wformat_parse(arg, &f) || (vis && f == VL_WFORMAT_Q4))
            return BAD("--%sweights: expected %s, got '%s'", vis ? "vision-" : "",
                       vis ? "bf16 or q8" : "bf16, q8 or q4", arg);
        *(vis ? &g->vision_weights : &g->weights) = (int)f;
        return DP_CLI_OPT_TAKEN;
    }
    case DP_CLI_OPT_MMPROJ:
        if (!*arg)
            return BAD("--mmproj: expected a file name");
        g->mmproj = arg;
        return DP_CLI_OPT_TAKEN;
    default: return DP_CLI_OPT_NOT_MINE;
    }
}
#undef BAD

/* ---- help ------------------------------------------------------------------------------ */

void dp_cli_print_buf(struct dp_buf *b) {
    if (b->data)
        fwrite(b->data, 1, b->len, stdout);
    dp_buf_free(b);
}

void dp_cli_help_line(struct dp_buf *b, const char *opt, const char *text, const char *dflt) {
    dp_buf_appendf(b, "      %-*s %s", HELP_OPT_WIDTH, opt, text);
    if (dflt)
        dp_buf_appendf(b, "%s[%s]", *text ? " " : "", dflt);
    dp_buf_putc(b, '\n');
}

static const char *pixels_dflt(char *d, int64_t px) {
    if (px <= 0)
        return "model's preprocessor";
    snprintf(d, DFLT_LEN, "%lld", (long long)px);
    return d;
}

void dp_cli_ingest_help(struct dp_buf *b, unsigned mask, const struct dp_ingest_opts *ing) {
    char d[DFLT_LEN];
    if (mask & DP_CLI_ING_DPI) {
        snprintf(d, sizeof d, "%g", ing->dpi);
        dp_cli_help_line(b, "--dpi N", "PDF render resolution before the pixel budget", d);
    }
    if (mask & DP_CLI_ING_PIXELS) {
        dp_cli_help_line(b, "--min-pixels N", "smallest image sent to the model (smart_resize)",
                         pixels_dflt(d, ing->min_pixels));
        dp_cli_help_line(b, "--max-pixels N", "largest image sent to the model (pixel budget)",
                         pixels_dflt(d, ing->max_pixels));
    }
    if (mask & DP_CLI_ING_PAGES)
        dp_cli_help_line(b, "--pages LIST", "pages to process, e.g. 1-3,7 or 5-; pages beyond the end are "
                         "ignored with a warning, none left fails the document", "all");
    if (mask & DP_CLI_ING_PASSWORD)
        dp_cli_help_line(b, "--password P", "PDF password for every input", "none");
    if (mask & DP_CLI_ING_MAX_DECODE) {
        snprintf(d, sizeof d, "%zu", ing->max_decode_pixels);
        dp_cli_help_line(b, "--max-decode-pixels N", "refuse larger bitmaps before allocating", d);
    }
}

/* "[value]" for a setting, or the model's file when it is negative (not given). */
static const char *gen_dflt(char *d, double v, bool integer) {
    if (v < 0)
        return "model";
    if (integer)
        snprintf(d, DFLT_LEN, "%lld", (long long)v);
    else
        snprintf(d, DFLT_LEN, "%g", v);
    return d;
}

void dp_cli_gen_help(struct dp_buf *b, unsigned mask, const struct dp_gen_opts *g) {
    char d[DFLT_LEN];
    if (mask & DP_CLI_GEN_SAMPLING) {
        dp_cli_help_line(b, "--max-new-tokens N", "answer length limit (per page)",
                         gen_dflt(d, (double)g->max_new_tokens, true));
        dp_cli_help_line(b, "--temperature T", "0 = greedy", gen_dflt(d, g->temperature, false));
        dp_cli_help_line(b, "--top-k K", "0 = off", gen_dflt(d, (double)g->top_k, true));
        dp_cli_help_line(b, "--top-p P", "1 = off", gen_dflt(d, g->top_p, false));
        dp_cli_help_line(b, "--repetition-penalty R", "1 = off",
                         gen_dflt(d, g->repetition_penalty, false));
        snprintf(d, sizeof d, "%llu", (unsigned long long)g->seed);
        dp_cli_help_line(b, "--seed S", "sampling seed", d);
    }
    if (mask & DP_CLI_GEN_THREADS) {
        if (g->threads == dp_cli_default_threads())
            snprintf(d, sizeof d, "online CPUs: %ld", g->threads);
        else
            snprintf(d, sizeof d, "%ld", g->threads);
        dp_cli_help_line(b, "--threads N", "threads for OpenBLAS and the kernels", d);
        dp_cli_help_line(b, "--weights F", "bf16 (exact), q8 or q4: LLM weights quantized at load",
                         g->weights >= 0 ? vl_wformat_name((enum vl_wformat)g->weights)
                                         : "bf16; a quantized checkpoint: its own");
        dp_cli_help_line(b, "--vision-weights F", "bf16 (exact) or q8: vision tower weights",
                         g->vision_weights >= 0
                             ? vl_wformat_name((enum vl_wformat)g->vision_weights)
                             : "bf16; a quantized checkpoint: its own");
        dp_cli_help_line(b, "--mmproj FILE", "llama.cpp vision projector GGUF (GGUF --model)",
                         g->mmproj ? g->mmproj : "the --model directory's, else none");
    }
}
