/* `docproc detokenize`: Qwen2.5 token ids -> text with the model's tokenizer.json.
 * Ids may be separate arguments or comma/space separated, with optional brackets, so the output
 * of `docproc tokenize --json` can be passed back. Invalid UTF-8 produced by the ids becomes
 * U+FFFD, ids without a token are dropped (as HF `tokenizers` does). */
#include "dp_cli.h"
#include "dp_alloc.h"
#include "vl_tools.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CMD "detokenize"
#define DETOK_MAX_IDS ((size_t)1 << 24)
#define ID_SEPARATORS " ,[]\t\n"

static void print_help(void) {
    printf("usage: docproc detokenize --model DIR [--skip-special] [-n] ID...\n\n"
           "Decodes token ids to text with the model's tokenizer.json.\n\n"
           "  --model DIR       checkpoint directory holding tokenizer.json, or a tokenizer.json\n"
           "                    file (or $DOCPROC_MODEL)\n"
           "  --skip-special    drop special tokens such as <|im_end|> [off]\n"
           "  -n, --no-newline  do not print a newline after the text [prints one]\n"
           "  --help            this text\n\n"
           "IDs may be separate arguments or one list like \"[1, 2, 3]\" (max %zu ids).\n\n"
           "examples:\n"
           "  docproc detokenize --model qwen25vl-3b 7595 25 220 16 17 13 20 15\n"
           "  docproc detokenize --model qwen25vl-3b --skip-special '[151644, 872, 198]'\n",
           DETOK_MAX_IDS);
}

int dp_cmd_detokenize(int argc, char **argv) {
    static const struct option longopts[] = {{"model", required_argument, NULL, 'm'},
                                             {"skip-special", no_argument, NULL, 's'},
                                             {"no-newline", no_argument, NULL, 'n'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    const char *model = dp_cli_model_env();
    bool skip = false, newline = true;
    optind = 0; /* GNU: full re-initialisation */
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":m:snh", longopts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 's': skip = true; break;
        case 'n': newline = false; break;
        case 'h': print_help(); return DP_EXIT_OK;
        default: return dp_cli_getopt_error(CMD, c, argc, argv);
        }
    }
    if (!model)
        return dp_cli_usage_error(CMD, "--model DIR is required (or set DOCPROC_MODEL)");
    size_t cap = 0;
    for (int i = optind; i < argc; i++)
        cap += strlen(argv[i]) / 2 + 1; /* an id and a separator take at least 2 chars */
    int32_t *ids = dp_reallocarray(NULL, cap ? cap : 1, sizeof *ids);
    if (!ids)
        return DP_EXIT_INTERNAL;
    size_t n = 0;
    for (int i = optind; i < argc; i++) {
        char *copy = dp_strdup(argv[i]), *save = NULL;
        if (!copy) {
            dp_free(ids);
            return DP_EXIT_INTERNAL;
        }
        for (char *tok = strtok_r(copy, ID_SEPARATORS, &save); tok;
             tok = strtok_r(NULL, ID_SEPARATORS, &save)) {
            int64_t v;
            if (!dp_cli_parse_i64(tok, 0, INT32_MAX, &v) || n >= DETOK_MAX_IDS) {
                int rc = dp_cli_usage_error(CMD, "'%s' is not a token id in [0, %d]", tok,
                                            INT32_MAX);
                dp_free(copy);
                dp_free(ids);
                return rc;
            }
            ids[n++] = (int32_t)v;
        }
        dp_free(copy);
    }
    if (n == 0) {
        dp_free(ids);
        return dp_cli_usage_error(CMD, "give at least one ID");
    }
    struct vl_tokenizer *tok = NULL;
    int rc = dp_cli_load_tokenizer(CMD, model, &tok);
    char *text = NULL;
    size_t len = 0;
    struct vl_error err = {0};
    for (size_t i = 0; rc == DP_EXIT_OK && i < n; i++) {
        int32_t n_ids = vl_tokenizer_n_ids(tok);
        if (ids[i] >= n_ids) { /* not in the vocabulary: an error, not an empty line */
            rc = dp_cli_usage_error(CMD, "token id %ld is not in the vocabulary: valid ids are 0 to %ld",
                                    (long)ids[i], (long)n_ids - 1);
        }
    }
    if (rc == DP_EXIT_OK && vl_tokenizer_decode(tok, ids, n, skip, &text, &len, &err) != VL_OK) {
        fprintf(stderr, "docproc %s: %s\n", CMD, err.msg);
        rc = DP_EXIT_INTERNAL;
    }
    if (rc == DP_EXIT_OK) {
        fwrite(text, 1, len, stdout);
        if (newline)
            fputc('\n', stdout);
        if (fflush(stdout) != 0)
            rc = DP_EXIT_OUTPUT;
    }
    free(text);
    dp_free(ids);
    vl_tokenizer_free(tok);
    return rc;
}
