/* Shared pieces of the docproc command-line interface: exit codes, the command table entry,
 * and strict number parsing for options (no atoi: curl bans it).
 *
 *   long n;
 *   if (!dp_cli_parse_long(optarg, 1, 600, &n))
 *       return dp_cli_usage_error("rasterize", "--dpi: expected an integer in [1, 600], got '%s'", optarg);
 *
 * Every exit code is documented in docs/cli.md. */
#ifndef DP_CLI_H
#define DP_CLI_H

#include "dp_batch.h"
#include "dp_status.h"

#include <stdbool.h>
#include <stdint.h>

enum dp_exit {
    DP_EXIT_OK          = 0,  /* every document succeeded */
    DP_EXIT_SOME_FAILED = 1,  /* at least one document failed; the rest were written */
    DP_EXIT_USAGE       = 2,  /* bad command line */
    DP_EXIT_LOAD        = 3,  /* model, schema or tokenizer failed to load */
    DP_EXIT_OUTPUT      = 4,  /* output not writable or bundle write failed */
    DP_EXIT_INTERRUPTED = 5,  /* interrupted by a signal */
    DP_EXIT_INPUT       = 6,  /* the (single) input could not be read or decoded */
    DP_EXIT_INTERNAL    = 70, /* internal error (EX_SOFTWARE) */
};

/* A subcommand: argv[0] is the subcommand name; returns an enum dp_exit value. */
typedef int (*dp_cmd_fn)(int argc, char **argv);

/* The subcommands, one cmd_*.c file each; main.c's table dispatches to them. */
int dp_cmd_version(int argc, char **argv);   /* main.c */
int dp_cmd_parse(int argc, char **argv);
int dp_cmd_tokenize(int argc, char **argv);
int dp_cmd_detokenize(int argc, char **argv);
int dp_cmd_model(int argc, char **argv);
int dp_cmd_model_quantize(int argc, char **argv); /* `model quantize` (cmd_model_quant.c) */
int dp_cmd_model_compare(int argc, char **argv);  /* `model compare` (cmd_model_quant.c) */
int dp_cmd_ask(int argc, char **argv);
int dp_cmd_rasterize(int argc, char **argv);
int dp_cmd_preprocess(int argc, char **argv);
int dp_cmd_bench_render(int argc, char **argv);
int dp_cmd_extract(int argc, char **argv);
int dp_cmd_batch(int argc, char **argv);
int dp_cmd_tables(int argc, char **argv);
int dp_cmd_bench(int argc, char **argv);
/* extract, batch and tables share one implementation (cmd_batch.c). */
int dp_cmd_batch_common(enum dp_batch_cmd cmd, int argc, char **argv);

/* Prints "docproc CMD: message" and "try 'docproc CMD --help'" to stderr; returns DP_EXIT_USAGE. */
int dp_cli_usage_error(const char *cmd, const char *fmt, ...) DP_PRINTF(2, 3);
/* The default case of a getopt_long loop run with opterr = 0 and ':' first in the optstring:
 * "option 'X' needs a value" for ':', else "unknown option 'X'"; returns DP_EXIT_USAGE. */
int dp_cli_getopt_error(const char *cmd, int c, int argc, char **argv);
/* $DOCPROC_MODEL, or NULL when unset or empty (the default of every --model). */
const char *dp_cli_model_env(void);
/* Removes the regular files of a flat directory this process created, then the directory. */
void dp_cli_remove_flat_dir(const char *dir);
struct vl_tokenizer;
/* The tokenizer of a checkpoint DIR (DIR/tokenizer.json) or of a tokenizer.json file given as
 * DIR, without mapping any weights (cmd_tokenize.c). Prints the error as "docproc CMD: ..." and
 * returns an enum dp_exit (DP_EXIT_LOAD when it cannot be loaded). */
int dp_cli_load_tokenizer(const char *cmd, const char *dir, struct vl_tokenizer **out);
/* Maps a library status to the exit code of a single-input command. */
int dp_cli_exit_for(enum dp_status st);

bool dp_cli_parse_long(const char *s, long min, long max, long *out);
bool dp_cli_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);
bool dp_cli_parse_double(const char *s, double min, double max, double *out);
/* "WxH" with both in [1, max]. */
bool dp_cli_parse_size(const char *s, long max, long *w, long *h);

#endif
