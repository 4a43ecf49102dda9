/* docproc: the command-line entry point. Dispatches to one subcommand per file (cmd_*.c);
 * the only place in the tree that may call exit(). */
#include "dp_cli.h"
#include "dp_cli_opts.h"
#include "dp_log.h"

#include "vl_tools.h"

#include <cblas.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

struct dp_cmd {
    const char *name;
    dp_cmd_fn run;
    const char *summary;
};

/* Helpers add their command here (one line each), keeping this order. */
static const struct dp_cmd commands[] = {
    /* CMD-TABLE-BEGIN */
    {"version", dp_cmd_version, "print the version"},
    {"rasterize", dp_cmd_rasterize, "render/decode pages to the PNGs the model sees"},
    {"preprocess", dp_cmd_preprocess, "write the model's pixel_values/image_grid_thw"},
    {"bench-render", dp_cmd_bench_render, "PDF rasterisation speed vs pdftoppm"},
    {"ask", dp_cmd_ask, "ask Qwen2.5-VL about images or a video (answer streamed)"},
    {"tokenize", dp_cmd_tokenize, "text -> token ids with the model's tokenizer"},
    {"detokenize", dp_cmd_detokenize, "token ids -> text"},
    {"model", dp_cmd_model, "checkpoint info (validates every tensor) / synth random weights"},
    {"parse", dp_cmd_parse, "parse one raw model answer against a schema (json/xml/csv)"},
    {"extract", dp_cmd_extract, "schema fields/tables from documents (JSON Lines, files, zip)"},
    {"batch", dp_cmd_batch, "document tree -> outputs + manifest; --resume, --shard K/N"},
    {"tables", dp_cmd_tables, "every table as CSV + JSON with cell boxes, stitched across pages"},
    {"bench", dp_cmd_bench, "inference speed: vision encode, prefill, decode tok/s, peak RSS"},
    /* CMD-TABLE-END */
};

#define N_COMMANDS (sizeof commands / sizeof commands[0])
#define DP_BLAS_CORE_ENV "OPENBLAS_CORETYPE"
#define DP_SELF_EXE "/proc/self/exe"

static void print_help(FILE *fp) {
    fprintf(fp, "usage: docproc [--version] [--help] COMMAND [ARGS]\n\n"
                "Qwen2.5-VL document extraction in one native binary.\n\ncommands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(fp, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(fp, "\nexamples:\n"
                "  docproc extract --schema invoice --model qwen25vl-3b scan.pdf > scan.jsonl\n"
                "  docproc batch --schema invoice --input /archive -o /results --resume\n"
                "  docproc help extract\n"
                "\n'docproc COMMAND --help' (or 'docproc help COMMAND') describes one command; exit\n"
                "codes are in docs/cli.md and 'man docproc'.\n");
}

int dp_cmd_version(int argc, char **argv) {
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: docproc version   (or docproc --version)\n\n"
               "Prints the version of docproc, how it was built, the OpenBLAS configuration and\n"
               "the default --threads.\n\n"
               "examples:\n"
               "  docproc version\n"
               "  docproc --version\n");
        return DP_EXIT_OK;
    }
    if (argc > 1 && argv[1][0] == '-')
        return dp_cli_usage_error("version", "unknown option '%s'", argv[1]);
    if (argc > 1)
        return dp_cli_usage_error("version", "unexpected argument '%s'", argv[1]);
    printf("docproc %s\nbuild: %s\nopenblas: %s (kernels %s)\nthreads: %ld by default (online "
           "CPUs)\n",
           DP_VERSION, DP_BUILD_INFO, openblas_get_config(), vl_blas_core(),
           dp_cli_default_threads());
    return DP_EXIT_OK;
}

/* OpenBLAS chose its kernels when it was loaded, before main. If it fell back to a narrower
 * family than this CPU runs (an OpenBLAS older than the CPU), run again with OPENBLAS_CORETYPE
 * naming the widest: GEMMs ~4x faster on Sapphire Rapids with Debian 12's OpenBLAS. A value the
 * user set is kept silently (that is the opt-out). On failure docproc runs on as is. */
static void blas_core_check(char **argv) {
    const char *want = vl_blas_core_upgrade();
    if (!want)
        return;
    const char *set = getenv(DP_BLAS_CORE_ENV);
    if (set && !strcasecmp(set, want)) { /* ours, from the exec below: OpenBLAS ignored it */
        fprintf(stderr, "docproc: warning: OpenBLAS ignores %s=%s (not a DYNAMIC_ARCH build?) "
                        "and runs its %s kernels\n", DP_BLAS_CORE_ENV, set, vl_blas_core());
        return;
    }
    if (set) /* the user's choice (some machines set it because an old OpenBLAS miscomputes or
              * crashes with the wider kernels there): kept silently; `docproc --version` and
              * `docproc bench` show the kernels in use */
        return;
    if (setenv(DP_BLAS_CORE_ENV, want, 1) == 0)
        execv(DP_SELF_EXE, argv);
    unsetenv(DP_BLAS_CORE_ENV);
    fprintf(stderr, "docproc: warning: OpenBLAS runs %s kernels; set %s=%s for faster GEMMs\n",
            vl_blas_core(), DP_BLAS_CORE_ENV, want);
}

int main(int argc, char **argv) {
    blas_core_check(argv);
    if (argc < 2) {
        print_help(stderr);
        return DP_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "help") && argc >= 3) { /* docproc help COMMAND = docproc COMMAND --help */
        for (size_t i = 0; i < N_COMMANDS; i++)
            if (!strcmp(argv[2], commands[i].name)) {
                char *hargv[] = {argv[2], "--help", NULL};
                return commands[i].run(2, hargv);
            }
        fprintf(stderr, "docproc: unknown command '%s'\ntry 'docproc --help'\n", argv[2]);
        return DP_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        print_help(stdout);
        return DP_EXIT_OK;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V"))
        return dp_cmd_version(argc - 1, argv + 1);
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "docproc: unknown command '%s'\ntry 'docproc --help'\n", argv[1]);
    return DP_EXIT_USAGE;
}
