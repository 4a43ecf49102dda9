/* The options several commands share, parsed, bounded and described in ONE place: the ingestion
 * options of rasterize/preprocess/bench-render/extract/batch/tables (and --min/--max-pixels of
 * ask) and the generation options of ask/extract/batch/tables (and --threads of bench).
 *
 *   static const struct option longopts[] = { {"output", ...}, DP_CLI_LONGOPTS_INGEST, ... };
 *   struct dp_ingest_opts ing;   dp_ingest_opts_init(&ing);   const char *pages = NULL;
 *   while ((c = getopt_long(argc, argv, ":o:h", longopts, NULL)) != -1) {
 *       int r = dp_cli_ingest_opt(&ing, &pages, c, optarg, &err);
 *       if (r == DP_CLI_OPT_BAD) return dp_cli_usage_error(CMD, "%s", err.msg);
 *       if (r == DP_CLI_OPT_TAKEN) continue;
 *       switch (c) { ... default: return dp_cli_getopt_error(CMD, c, argc, argv); }
 *   }
 *   dp_cli_ingest_help(&buf, DP_CLI_ING_ALL, &ing, pages);   // help lines with live defaults
 *
 * Each command sets its own defaults in the structs before parsing (documents vs the model's
 * files); the help prints whatever they are. Not thread-safe only in that getopt is not. */
#ifndef DP_CLI_OPTS_H
#define DP_CLI_OPTS_H

#include "dp_batch.h"
#include "dp_buf.h"
#include "dp_status.h"
#include "dp_ingest.h"

#include <getopt.h>
#include <stdint.h>

/* getopt_long return values of the shared options (above any short option character). */
enum dp_cli_opt_id {
    DP_CLI_OPT_DPI = 0x1000,
    DP_CLI_OPT_MIN_PIXELS,
    DP_CLI_OPT_MAX_PIXELS,
    DP_CLI_OPT_PAGES,
    DP_CLI_OPT_PASSWORD,
    DP_CLI_OPT_MAX_DECODE_PIXELS,
    DP_CLI_OPT_MAX_NEW_TOKENS,
    DP_CLI_OPT_TEMPERATURE,
    DP_CLI_OPT_TOP_K,
    DP_CLI_OPT_TOP_P,
    DP_CLI_OPT_REP_PENALTY,
    DP_CLI_OPT_SEED,
    DP_CLI_OPT_THREADS,
    DP_CLI_OPT_WEIGHTS,
    DP_CLI_OPT_VISION_WEIGHTS,
    DP_CLI_OPT_MMPROJ,
};

/* struct option entries; a command lists the groups (or single entries) it takes. */
#define DP_CLI_LONGOPT_DPI {"dpi", required_argument, NULL, DP_CLI_OPT_DPI}
#define DP_CLI_LONGOPTS_PIXELS                                                                     \
    {"min-pixels", required_argument, NULL, DP_CLI_OPT_MIN_PIXELS},                                \
        {"max-pixels", required_argument, NULL, DP_CLI_OPT_MAX_PIXELS}
#define DP_CLI_LONGOPTS_INGEST                                                                     \
    DP_CLI_LONGOPT_DPI, DP_CLI_LONGOPTS_PIXELS, {"pages", required_argument, NULL, DP_CLI_OPT_PAGES}, \
        {"password", required_argument, NULL, DP_CLI_OPT_PASSWORD},                                \
        {"max-decode-pixels", required_argument, NULL, DP_CLI_OPT_MAX_DECODE_PIXELS}
#define DP_CLI_LONGOPT_THREADS {"threads", required_argument, NULL, DP_CLI_OPT_THREADS}
#define DP_CLI_LONGOPTS_WEIGHTS                                                                    \
    {"weights", required_argument, NULL, DP_CLI_OPT_WEIGHTS},                                      \
        {"vision-weights", required_argument, NULL, DP_CLI_OPT_VISION_WEIGHTS},                    \
        {"mmproj", required_argument, NULL, DP_CLI_OPT_MMPROJ}
#define DP_CLI_LONGOPTS_GEN                                                                        \
    {"max-new-tokens", required_argument, NULL, DP_CLI_OPT_MAX_NEW_TOKENS},                        \
        {"temperature", required_argument, NULL, DP_CLI_OPT_TEMPERATURE},                          \
        {"top-k", required_argument, NULL, DP_CLI_OPT_TOP_K},                                      \
        {"top-p", required_argument, NULL, DP_CLI_OPT_TOP_P},                                      \
        {"repetition-penalty", required_argument, NULL, DP_CLI_OPT_REP_PENALTY},                   \
        {"seed", required_argument, NULL, DP_CLI_OPT_SEED}, DP_CLI_LONGOPT_THREADS,               \
        DP_CLI_LONGOPTS_WEIGHTS

/* Result of offering one getopt_long return value to a shared handler. */
enum dp_cli_opt_rc {
    DP_CLI_OPT_BAD = -1,     /* a shared option with a bad value: err holds the one-line message */
    DP_CLI_OPT_NOT_MINE = 0, /* not a shared option: the command handles it */
    DP_CLI_OPT_TAKEN = 1,    /* parsed and stored */
};

/* --dpi, --min-pixels, --max-pixels, --pages (stored in *pages, parsed later by
 * dp_page_sel_parse), --password, --max-decode-pixels. */
enum dp_cli_opt_rc dp_cli_ingest_opt(struct dp_ingest_opts *ing, const char **pages, int c,
                                     const char *arg, struct dp_err *err);
/* --max-new-tokens, --temperature, --top-k, --top-p, --repetition-penalty, --seed, --threads,
 * --weights bf16|q8|q4, --vision-weights bf16|q8, --mmproj FILE. */
enum dp_cli_opt_rc dp_cli_gen_opt(struct dp_gen_opts *g, int c, const char *arg,
                                  struct dp_err *err);

/* The default of --threads everywhere: the number of online CPUs, within [1, DP_MAX_THREADS]. */
long dp_cli_default_threads(void);
/* All generation settings at "the model's generation_config.json" (negative), the published
 * max-new-tokens default, seed 0 and dp_cli_default_threads(). */
void dp_cli_gen_init_model(struct dp_gen_opts *g);
struct vl_model;
/* Applies --weights / --vision-weights to a freshly loaded model (vl_model_quantize with
 * g->threads; an option not given keeps what the checkpoint stores). DP_ERR_MODEL with the
 * library's message when the checkpoint cannot give the format (exit 3). */
enum dp_status dp_cli_model_weights(struct vl_model *m, const struct dp_gen_opts *g,
                                    struct dp_err *err);
/* Loads --model DIR (a checkpoint, a llama.cpp GGUF text model or a directory holding one) with
 * --mmproj if given (vl_model_load_with_projector); DP_ERR_MODEL with the library's message
 * naming dir (exit 3). */
enum dp_status dp_cli_model_load(struct vl_model **out, const char *dir, const char *mmproj,
                                 struct dp_err *err);

/* Help lines (one per option, with the current value as the default in brackets) for the options
 * in mask, in a fixed order. min/max_pixels 0 print as "model's preprocessor"
 * (its preprocessor_config.json); negative generation values as "model". */
enum {
    DP_CLI_ING_DPI = 1u << 0,
    DP_CLI_ING_PIXELS = 1u << 1,
    DP_CLI_ING_PAGES = 1u << 2,
    DP_CLI_ING_PASSWORD = 1u << 3,
    DP_CLI_ING_MAX_DECODE = 1u << 4,
    DP_CLI_ING_ALL = (1u << 5) - 1,
};
enum {
    DP_CLI_GEN_SAMPLING = 1u << 0, /* all but --threads */
    DP_CLI_GEN_THREADS = 1u << 1,  /* --threads, --weights, --vision-weights, --mmproj */
    DP_CLI_GEN_ALL = (1u << 2) - 1,
};
void dp_cli_ingest_help(struct dp_buf *b, unsigned mask, const struct dp_ingest_opts *ing);
void dp_cli_gen_help(struct dp_buf *b, unsigned mask, const struct dp_gen_opts *g);
struct vl_image_params;
/* The processor settings of a checkpoint: the published defaults overlaid with
 * MODEL_DIR/preprocessor_config.json (model_dir NULL: defaults only). With optional, a missing
 * file keeps the defaults; an unreadable or invalid one is DP_ERR_MODEL naming the file. */
enum dp_status dp_cli_image_params_load(struct vl_image_params *out, const char *model_dir,
                                        bool optional, struct dp_err *err);

/* Writes b's text to stdout (help output) and frees b. */
void dp_cli_print_buf(struct dp_buf *b);
/* One help line in the shared layout: "      --name ARG             text [default]". */
void dp_cli_help_line(struct dp_buf *b, const char *opt, const char *text, const char *dflt);

#endif
