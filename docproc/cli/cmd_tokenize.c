/* `docproc tokenize`: text -> Qwen2.5 token ids with the model's tokenizer.json (HF-exact).
 * Special-token strings written in the text (e.g. <|im_start|>) become their ids. Prints the ids
 * space-separated, or one JSON array with --json. --bench measures encode speed (MB/s) over the
 * input: one cold pass (empty word cache) and warm passes. Loads only the tokenizer. */
#include "dp_cli.h"
#include "dp_alloc.h"
#include "dp_fs.h"
#include "dp_limits.h"
#include "dp_vl.h"
#include "vl_tools.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define CMD "tokenize"
#define TOK_BENCH_MIN_SECONDS 1.0 /* warm passes repeat until this much time has passed */
#define TOK_BENCH_MAX_PASSES 1000
#define BYTES_PER_MB 1e6

static void print_help(void) {
    printf("usage: docproc tokenize --model DIR [--json] [--bench] (TEXT... | --file FILE)\n\n"
           "Encodes text with the model's tokenizer.json and prints the token ids.\n\n"
           "  --model DIR     checkpoint directory holding tokenizer.json, or a tokenizer.json\n"
           "                  file (or $DOCPROC_MODEL)\n"
           "  --file FILE     read the text from FILE ('-' = stdin) instead of arguments\n"
           "  --json          print one JSON array instead of space-separated ids\n"
           "  --bench         print encode speed (MB/s, tokens/s) instead of the ids\n"
           "  --help          this text\n\n"
           "Several TEXT arguments are joined with single spaces. Text must be UTF-8 (max %zu "
           "bytes).\nOptions come before TEXT: everything from the first TEXT on is text, even "
           "if it\nstarts with '-'.\n\n"
           "examples:\n"
           "  docproc tokenize --model qwen25vl-3b 'Total: 12.50 EUR'\n"
           "  docproc tokenize --model qwen25vl-3b --json --file page.txt\n",
           DP_MAX_TEXT_BYTES);
}

static double clock_s(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
static double now_s(void) { return clock_s(CLOCK_MONOTONIC); }
/* CPU time of this process: on a shared machine wall time also measures the neighbours. */
static double cpu_s(void) { return clock_s(CLOCK_PROCESS_CPUTIME_ID); }

/* Tokenizer of DIR/tokenizer.json, or DIR itself when it is a file (only the tokenizer: no
 * weights are mapped). */
int dp_cli_load_tokenizer(const char *cmd, const char *dir, struct vl_tokenizer **out) {
    size_t n = strlen(dir) + sizeof "/tokenizer.json";
    char *path = dp_malloc(n);
    if (!path) {
        fprintf(stderr, "docproc %s: out of memory\n", cmd);
        return DP_EXIT_INTERNAL;
    }
    struct stat sb;
    if (stat(dir, &sb) == 0 && S_ISREG(sb.st_mode))
        snprintf(path, n, "%s", dir);
    else
        snprintf(path, n, "%s/tokenizer.json", dir);
    struct vl_error err = {0};
    enum vl_status st = vl_tokenizer_load(out, path, &err);
    dp_free(path);
    if (st != VL_OK) {
        fprintf(stderr, "docproc %s: %s\n", cmd, err.msg);
        return DP_EXIT_LOAD;
    }
    return DP_EXIT_OK;
}

/* source names the text's origin in messages ("FILE" or "the arguments"). */
static int encode_all(const struct vl_tokenizer *tok, const char *source, const char *text,
                      size_t len, int32_t **ids, size_t *n) {
    size_t cap = len + 16;
    for (int attempt = 0; attempt < 2; attempt++) {
        *ids = dp_reallocarray(NULL, cap, sizeof **ids);
        if (!*ids) {
            fprintf(stderr, "docproc %s: out of memory for %zu ids\n", CMD, cap);
            return DP_EXIT_INTERNAL;
        }
        struct vl_error err = {0};
        enum vl_status st = vl_tokenizer_encode(tok, text, len, *ids, cap, n, &err);
        if (st == VL_OK)
            return DP_EXIT_OK;
        DP_FREE(*ids);
        if (st != VL_ERR_LIMIT) {
            struct dp_err e = {0};
            /* invalid UTF-8 (VL_ERR_INVALID) is the input's fault, anything else ours */
            enum dp_status ds = dp_vl_err(&e, &err, DP_OK, "%s", source);
            fprintf(stderr, "docproc %s: %s\n", CMD, e.msg);
            return ds == DP_ERR_FORMAT ? DP_EXIT_INPUT : DP_EXIT_INTERNAL;
        }
        cap = *n; /* NFC may lengthen text: retry with the exact count */
    }
    fprintf(stderr, "docproc %s: token count changed between passes\n", CMD);
    return DP_EXIT_INTERNAL;
}

static int bench(const struct vl_tokenizer *tok, const char *source, const char *text,
                 size_t len) {
    int32_t *ids = NULL;
    size_t n = 0;
    double t0 = now_s(), c0 = cpu_s();
    int rc = encode_all(tok, source, text, len, &ids, &n); /* cold: empty word cache */
    double cold = now_s() - t0, cold_cpu = cpu_s() - c0;
    int passes = 0;
    double t1 = now_s(), c1 = cpu_s(), warm = 0;
    while (rc == DP_EXIT_OK && passes < TOK_BENCH_MAX_PASSES &&
           (warm = now_s() - t1) < TOK_BENCH_MIN_SECONDS) {
        size_t m;
        struct vl_error err = {0};
        if (vl_tokenizer_encode(tok, text, len, ids, n, &m, &err) != VL_OK) {
            fprintf(stderr, "docproc %s: %s\n", CMD, err.msg);
            rc = DP_EXIT_INTERNAL;
        }
        passes++;
    }
    double warm_cpu = cpu_s() - c1;
    if (rc == DP_EXIT_OK) {
        double mb = (double)len / BYTES_PER_MB;
        printf("input: %zu bytes, %zu tokens (%.2f bytes/token)\n", len, n,
               n ? (double)len / (double)n : 0.0);
        printf("cold pass: wall %.3f s, cpu %.3f s: %.2f MB/s, %.0f tokens/s (cpu time)\n", cold,
               cold_cpu, mb / cold_cpu, (double)n / cold_cpu);
        if (passes)
            printf("warm passes: %d, wall %.3f s, cpu %.3f s: %.2f MB/s, %.0f tokens/s (cpu "
                   "time)\n",
                   passes, warm, warm_cpu, mb * passes / warm_cpu,
                   (double)n * passes / warm_cpu);
    }
    dp_free(ids);
    return rc;
}

int dp_cmd_tokenize(int argc, char **argv) {
    static const struct option longopts[] = {
        {"model", required_argument, NULL, 'm'}, {"file", required_argument, NULL, 'f'},
        {"json", no_argument, NULL, 'j'},        {"bench", no_argument, NULL, 'b'},
        {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0}};
    const char *model = dp_cli_model_env(), *file = NULL;
    bool json = false, do_bench = false;
    optind = 0; /* GNU: full re-initialisation */
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "+:m:f:jbh", longopts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'f': file = optarg; break;
        case 'j': json = true; break;
        case 'b': do_bench = true; break;
        case 'h': print_help(); return DP_EXIT_OK;
        default: return dp_cli_getopt_error(CMD, c, argc, argv);
        }
    }
    if (!model)
        return dp_cli_usage_error(CMD, "--model DIR is required (or set DOCPROC_MODEL)");
    if (!file && optind >= argc)
        return dp_cli_usage_error(CMD, "give TEXT or --file FILE");
    if (file && optind < argc)
        return dp_cli_usage_error(CMD, "give TEXT or --file FILE, not both");
    char *text = NULL;
    size_t len = 0;
    if (file) {
        struct dp_err derr = {0};
        if (dp_file_read(strcmp(file, "-") ? file : "/dev/stdin", DP_MAX_TEXT_BYTES, &text, &len,
                         &derr) != DP_OK) {
            fprintf(stderr, "docproc %s: %s\n", CMD, derr.msg);
            return DP_EXIT_INPUT;
        }
    } else {
        for (int i = optind; i < argc; i++)
            len += strlen(argv[i]) + 1;
        text = dp_malloc(len + 1);
        if (!text)
            return DP_EXIT_INTERNAL;
        len = 0;
        for (int i = optind; i < argc; i++) {
            size_t k = strlen(argv[i]);
            if (i > optind)
                text[len++] = ' ';
            memcpy(text + len, argv[i], k);
            len += k;
        }
        text[len] = '\0';
    }
    const char *source = file ? (strcmp(file, "-") ? file : "stdin") : "the arguments";
    struct vl_tokenizer *tok = NULL;
    int rc = dp_cli_load_tokenizer(CMD, model, &tok);
    int32_t *ids = NULL;
    size_t n = 0;
    if (rc == DP_EXIT_OK && do_bench)
        rc = bench(tok, source, text, len);
    else if (rc == DP_EXIT_OK)
        rc = encode_all(tok, source, text, len, &ids, &n);
    if (rc == DP_EXIT_OK && !do_bench) {
        fputs(json ? "[" : "", stdout);
        for (size_t i = 0; i < n; i++)
            printf("%s%d", i ? (json ? ", " : " ") : "", (int)ids[i]);
        fputs(json ? "]\n" : "\n", stdout);
        if (fflush(stdout) != 0)
            rc = DP_EXIT_OUTPUT;
    }
    dp_free(ids);
    dp_free(text);
    vl_tokenizer_free(tok);
    return rc;
}
