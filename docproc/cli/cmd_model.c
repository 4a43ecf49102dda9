/* `docproc model info DIR`: loads and validates a checkpoint (every header, every tensor's
 * shape/dtype binding, and a scan of every float value for NaN/Inf) and prints the architecture,
 * sizes, parameter counts per component, dtypes, files and the memory needed.
 * `docproc model synth --shape 3b|7b|tiny -o DIR`: writes a random-weight checkpoint in the
 * published layout (streamed, sharded like the real ones) for tests and benchmarks. */
#include "dp_cli.h"
#include "dp_fs.h"
#include "dp_vl.h"
#include "vl_tools.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CMD "model"
#define CMD_INFO "model info"
#define CMD_SYNTH "model synth"
#define KIB 1024.0
#define MIB (1024.0 * 1024.0)
#define GIB (1024.0 * 1024.0 * 1024.0)
#define INFO_CONTEXT_TOKENS 32768 /* context length the KV-cache estimate is quoted for */
#define STATUS_LINE_MAX 256

static void print_help(void) {
    printf("usage: docproc model info [--json] [--no-scan] [--mmproj FILE] DIR\n"
           "       docproc model synth --shape 3b|7b|tiny -o DIR [options]\n"
           "       docproc model quantize DIR --to q8|q4 -o OUT [options]\n"
           "       docproc model compare --model DIR --weights q8|q4 --against bf16|DIR [options]\n"
           "(quantize and compare: docproc model quantize --help, docproc model compare --help)\n\n"
           "info: load and validate a checkpoint (or llama.cpp GGUF files) and describe it.\n"
           "  --json            one JSON object instead of text\n"
           "  --no-scan         skip reading every weight for NaN/Inf [scan]\n"
           "  --mmproj FILE     llama.cpp vision projector GGUF for a GGUF text model DIR\n\n"
           "synth: write a random-weight checkpoint in the published layout. It has no tokenizer\n"
           "unless --from or --tokenizer gives one: extract, ask and tokenize refuse it without.\n"
           "  --shape S         3b, 7b (published configs) or tiny (the test fixture's shape)\n"
           "  -o, --output DIR  output directory (created if missing)\n"
           "  --seed N          random seed [1]\n"
           "  --tokenizer FILE  tokenizer.json to copy into DIR [none: no tokenizer]\n"
           "  --from DIR        copy tokenizer.json (+ tokenizer_config.json) from a checkpoint\n"
           "  --shard-size N    max bytes per safetensors shard [%zu]\n"
           "  --force           overwrite an existing checkpoint in DIR\n\n"
           "examples:\n"
           "  docproc model info qwen25vl-3b\n"
           "  docproc model synth --shape 3b --from qwen25vl-3b -o synth-3b  # with its tokenizer\n",
           (size_t)VL_SYNTH_SHARD_BYTES);
}

/* Prints "docproc model: <what>: <libvl's message>"; exit code: out of memory and internal
 * errors are internal, anything else failed to load. */
static int fail_load(const char *what, const struct vl_error *verr) {
    struct dp_err err = {0};
    enum dp_status st = dp_vl_err(&err, verr, DP_OK, "%s", what);
    fprintf(stderr, "docproc %s: %s\n", CMD, err.msg);
    return st == DP_ERR_NOMEM || st == DP_ERR_INTERNAL ? DP_EXIT_INTERNAL : DP_EXIT_LOAD;
}

/* Resident memory of this process from /proc (Linux); 0 when unavailable. */
static size_t resident_bytes(void) {
    FILE *fp = fopen("/proc/self/status", "r");
    char line[STATUS_LINE_MAX];
    size_t kb = 0;
    while (fp && fgets(line, sizeof line, fp))
        if (!strncmp(line, "VmRSS:", 6))
            kb = (size_t)strtoull(line + 6, NULL, 10);
    if (fp)
        fclose(fp);
    return kb * (size_t)KIB;
}

static const char *human(char *buf, size_t n, double bytes) {
    if (bytes >= GIB)
        snprintf(buf, n, "%.2f GiB", bytes / GIB);
    else if (bytes >= MIB)
        snprintf(buf, n, "%.1f MiB", bytes / MIB);
    else
        snprintf(buf, n, "%.1f KiB", bytes / KIB);
    return buf;
}

static json_t *int_array(const int64_t *v, int n) {
    json_t *a = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(a, json_integer(v[i]));
    return a;
}

static void print_json(const struct vl_model *m, const struct vl_model_summary *s, const char *dir,
                       size_t rss, bool scanned, int64_t bad) {
    json_t *files = json_array(), *dtypes = json_object();
    for (int i = 0; i < vl_model_n_files(m); i++)
        json_array_append_new(files, json_pack("{s:s, s:I}", "path", vl_model_file_path(m, i),
                                               "bytes", (json_int_t)vl_model_file_size(m, i)));
    for (int d = 0; d < VL_SUMMARY_MAX_DTYPES; d++)
        if (s->n_tensors_by_dtype[d])
            json_object_set_new(dtypes, vl_dtype_str(d), json_integer(s->n_tensors_by_dtype[d]));
    const struct vl_tokenizer *tok = vl_model_tokenizer(m);
    json_t *o = json_pack(
        "{s:s, s:s, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:o, s:b}, "
        "s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o}, s:{s:I, s:I}, s:I, "
        "s:{s:I, s:I, s:I, s:I, s:I, s:I}, s:I, s:o, s:o, s:{s:I, s:I, s:I, s:I, s:I, s:I}, "
        "s:{s:b, s:I}}",
        "model", dir, "architecture", s->model_type, "llm", "hidden_size",
        (json_int_t)s->hidden_size, "intermediate_size", (json_int_t)s->intermediate_size,
        "layers", (json_int_t)s->n_layers, "heads", (json_int_t)s->n_heads, "kv_heads",
        (json_int_t)s->n_kv_heads, "head_dim", (json_int_t)s->head_dim, "vocab_size",
        (json_int_t)s->vocab_size, "max_positions", (json_int_t)s->max_positions, "rope_theta",
        s->rope_theta, "rms_norm_eps", s->rms_norm_eps, "mrope_section",
        int_array(s->mrope_section, 3), "tied_embeddings", s->tied_embeddings, "vision", "depth",
        (json_int_t)s->vit_depth, "hidden_size", (json_int_t)s->vit_hidden, "heads",
        (json_int_t)s->vit_heads, "intermediate_size", (json_int_t)s->vit_intermediate,
        "patch_size", (json_int_t)s->patch_size, "temporal_patch_size",
        (json_int_t)s->temporal_patch_size, "merge_size", (json_int_t)s->merge_size,
        "window_size", (json_int_t)s->window_size, "fullatt_blocks",
        int_array(s->fullatt, s->n_fullatt), "preprocessor", "min_pixels",
        (json_int_t)s->min_pixels, "max_pixels", (json_int_t)s->max_pixels, "tokenizer_ids",
        (json_int_t)(tok ? vl_tokenizer_n_ids(tok) : 0), "parameters", "vision",
        (json_int_t)s->params_vision, "merger", (json_int_t)s->params_merger, "embed",
        (json_int_t)s->params_embed, "llm_layers", (json_int_t)s->params_layers, "lm_head",
        (json_int_t)s->params_lm_head, "total", (json_int_t)s->params_total, "tensors",
        (json_int_t)s->n_tensors, "dtypes", dtypes, "files", files, "memory", "weights_bytes",
        (json_int_t)s->bytes_tensors, "files_bytes", (json_int_t)s->bytes_files,
        "kv_bytes_per_token", (json_int_t)s->kv_bytes_per_token, "decode_step_weight_bytes",
        (json_int_t)s->bytes_decode_step, "owned_bytes", (json_int_t)s->bytes_owned,
        "resident_after_load_bytes",
        (json_int_t)rss, "check", "scanned", scanned, "nonfinite_values", (json_int_t)bad);
    if (o)
        json_object_set_new(o, "weights",
                            json_pack("{s:s, s:s}", "text",
                                      vl_wformat_name((enum vl_wformat)s->weights), "vision",
                                      vl_wformat_name((enum vl_wformat)s->vision_weights)));
    char *text = o ? json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    if (text)
        puts(text);
    free(text);
    json_decref(o);
}

static void print_text(const struct vl_model *m, const struct vl_model_summary *s,
                       const char *dir, size_t rss, bool scanned, int64_t bad) {
    char b1[32], b2[32], b3[32], b4[32];
    const struct vl_tokenizer *tok = vl_model_tokenizer(m);
    printf("model: %s\narchitecture: %s\n", dir, s->model_type);
    printf("llm: hidden %lld, layers %lld, heads %lld (kv %lld, head_dim %lld), intermediate "
           "%lld, vocab %lld\n     rope_theta %g, mrope_section [%lld, %lld, %lld], rms_norm_eps "
           "%g, max_positions %lld, tied embeddings %s\n",
           (long long)s->hidden_size, (long long)s->n_layers, (long long)s->n_heads,
           (long long)s->n_kv_heads, (long long)s->head_dim, (long long)s->intermediate_size,
           (long long)s->vocab_size, s->rope_theta, (long long)s->mrope_section[0],
           (long long)s->mrope_section[1], (long long)s->mrope_section[2], s->rms_norm_eps,
           (long long)s->max_positions, s->tied_embeddings ? "yes" : "no");
    if (!s->vit_depth) {
        printf("vision: none (a GGUF text model without its projector: text-only requests)\n");
    } else {
        printf("vision: depth %lld, hidden %lld, heads %lld, intermediate %lld, patch %lld, "
               "temporal %lld, merge %lld, window %lld, full attention blocks [",
               (long long)s->vit_depth, (long long)s->vit_hidden, (long long)s->vit_heads,
               (long long)s->vit_intermediate, (long long)s->patch_size,
               (long long)s->temporal_patch_size, (long long)s->merge_size,
               (long long)s->window_size);
        for (int i = 0; i < s->n_fullatt; i++)
            printf("%s%lld", i ? ", " : "", (long long)s->fullatt[i]);
        printf("]\n");
    }
    printf("preprocessor: min_pixels %lld, max_pixels %lld\n", (long long)s->min_pixels,
           (long long)s->max_pixels);
    if (tok)
        printf("tokenizer: %d ids\n", (int)vl_tokenizer_n_ids(tok));
    else
        printf("tokenizer: none (no tokenizer.json)\n");
    printf("parameters: vision %lld, merger %lld, embed %lld, llm layers+norm %lld, lm_head %lld%s, "
           "total %lld (%.3f B)\n",
           (long long)s->params_vision, (long long)s->params_merger, (long long)s->params_embed,
           (long long)s->params_layers, (long long)s->params_lm_head,
           s->tied_embeddings ? " (tied)" : "", (long long)s->params_total,
           (double)s->params_total / 1e9);
    printf("tensors: %d (", s->n_tensors);
    bool first = true;
    for (int d = 0; d < VL_SUMMARY_MAX_DTYPES; d++) {
        if (s->n_tensors_by_dtype[d]) {
            printf("%s%s %lld", first ? "" : ", ", vl_dtype_str(d),
                   (long long)s->n_tensors_by_dtype[d]);
            first = false;
        }
    }
    printf(")\nweights: text %s, vision %s\n", vl_wformat_name((enum vl_wformat)s->weights),
           vl_wformat_name((enum vl_wformat)s->vision_weights));
    printf("files: %d, %s\n", s->n_files, human(b1, sizeof b1, (double)s->bytes_files));
    for (int i = 0; i < vl_model_n_files(m); i++)
        printf("  %s  %s\n", vl_model_file_path(m, i),
               human(b1, sizeof b1, (double)vl_model_file_size(m, i)));
    char b5[32];
    printf("memory: weights %s mmapped in their stored dtype, plus %s model-owned (the integer "
           "kernels' packed copies of quantized weights not stored packed, conversions); KV "
           "cache %s per token (f32), %s at %d tokens; resident after load %s\n",
           human(b1, sizeof b1, (double)s->bytes_tensors),
           human(b5, sizeof b5, (double)s->bytes_owned),
           human(b2, sizeof b2, (double)s->kv_bytes_per_token),
           human(b3, sizeof b3, (double)s->kv_bytes_per_token * INFO_CONTEXT_TOKENS),
           INFO_CONTEXT_TOKENS, rss ? human(b4, sizeof b4, (double)rss) : "unknown");
    printf("decode: %s of weights read per generated token (tokens/s <= read bandwidth / this)\n",
           human(b1, sizeof b1, (double)s->bytes_decode_step));
    if (scanned)
        printf("check: %d tensors valid, %lld non-finite values\n", s->n_tensors, (long long)bad);
    else
        printf("check: %d tensors valid (value scan skipped)\n", s->n_tensors);
}

static int cmd_info(int argc, char **argv) {
    static const struct option longopts[] = {{"json", no_argument, NULL, 'j'},
                                             {"no-scan", no_argument, NULL, 'n'},
                                             {"mmproj", required_argument, NULL, 'p'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    bool json = false, scan = true;
    const char *mmproj = NULL;
    optind = 0; /* GNU: full re-initialisation */
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":jnh", longopts, NULL)) != -1) {
        switch (c) {
        case 'j': json = true; break;
        case 'p': mmproj = optarg; break;
        case 'n': scan = false; break;
        case 'h': print_help(); return DP_EXIT_OK;
        default: return dp_cli_getopt_error(CMD_INFO, c, argc, argv);
        }
    }
    if (optind + 1 != argc)
        return dp_cli_usage_error(CMD_INFO, "needs exactly one checkpoint DIR");
    const char *dir = argv[optind];
    dp_vl_log_route();
    struct vl_error err = {0};
    struct vl_model *m = NULL;
    if (vl_model_load_with_projector(&m, dir, mmproj, &err) != VL_OK)
        return fail_load(dir, &err);
    size_t rss = resident_bytes();
    struct vl_model_summary s;
    vl_model_summary(m, &s);
    int64_t bad = 0;
    char first[256] = "";
    int rc = DP_EXIT_OK;
    if (scan && vl_model_scan(m, &bad, first, sizeof first, &err) != VL_OK)
        rc = fail_load(dir, &err);
    if (rc == DP_EXIT_OK) {
        if (json)
            print_json(m, &s, dir, rss, scan, bad);
        else
            print_text(m, &s, dir, rss, scan, bad);
        if (bad) {
            fprintf(stderr, "docproc %s: %s: %lld NaN/Inf weight values (first in '%s')\n", CMD,
                    dir, (long long)bad, first);
            rc = DP_EXIT_LOAD;
        }
    }
    if (fflush(stdout) != 0)
        rc = DP_EXIT_OUTPUT;
    vl_model_free(m);
    return rc;
}

static int cmd_synth(int argc, char **argv) {
    static const struct option longopts[] = {
        {"shape", required_argument, NULL, 's'},     {"output", required_argument, NULL, 'o'},
        {"seed", required_argument, NULL, 'S'},      {"tokenizer", required_argument, NULL, 't'},
        {"from", required_argument, NULL, 'f'},      {"shard-size", required_argument, NULL, 'z'},
        {"force", no_argument, NULL, 'F'},           {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    struct vl_synth_opts o = {.seed = 1};
    const char *from = NULL;
    char *tok_path = NULL, *tcfg_path = NULL;
    optind = 0; /* GNU: full re-initialisation */
    opterr = 0;
    int c;
    int64_t v;
    while ((c = getopt_long(argc, argv, ":s:o:S:t:f:z:Fh", longopts, NULL)) != -1) {
        switch (c) {
        case 's': o.shape = optarg; break;
        case 'o': o.dir = optarg; break;
        case 'S':
            if (!dp_cli_parse_i64(optarg, 0, INT64_MAX, &v))
                return dp_cli_usage_error(CMD_SYNTH, "--seed: expected an integer >= 0, got '%s'",
                                          optarg);
            o.seed = (uint64_t)v;
            break;
        case 't': o.tokenizer_path = optarg; break;
        case 'f': from = optarg; break;
        case 'z':
            if (!dp_cli_parse_i64(optarg, 1, INT64_MAX, &v))
                return dp_cli_usage_error(CMD_SYNTH, "--shard-size: expected bytes >= 1, got '%s'",
                                          optarg);
            o.shard_bytes = (size_t)v;
            break;
        case 'F': o.force = true; break;
        case 'h': print_help(); return DP_EXIT_OK;
        default: return dp_cli_getopt_error(CMD_SYNTH, c, argc, argv);
        }
    }
    if (!o.shape || !o.dir)
        return dp_cli_usage_error(CMD_SYNTH, "needs --shape 3b|7b|tiny and -o DIR");
    if (optind != argc)
        return dp_cli_usage_error(CMD_SYNTH, "unexpected argument '%s'", argv[optind]);
    if (from && o.tokenizer_path)
        return dp_cli_usage_error(CMD_SYNTH, "give --tokenizer or --from, not both");
    if (from) {
        size_t n = strlen(from) + sizeof "/tokenizer_config.json";
        tok_path = malloc(n);
        tcfg_path = malloc(n);
        if (!tok_path || !tcfg_path) {
            free(tok_path);
            free(tcfg_path);
            return DP_EXIT_INTERNAL;
        }
        snprintf(tok_path, n, "%s/tokenizer.json", from);
        snprintf(tcfg_path, n, "%s/tokenizer_config.json", from);
        struct stat sb;
        o.tokenizer_path = tok_path;
        o.tokenizer_config_path = stat(tcfg_path, &sb) == 0 ? tcfg_path : NULL;
    }
    struct dp_err derr = {0};
    int rc = DP_EXIT_OK;
    if (dp_mkdirs(o.dir, &derr) != DP_OK) {
        fprintf(stderr, "docproc %s: %s\n", CMD, derr.msg);
        rc = DP_EXIT_OUTPUT;
    }
    dp_vl_log_route();
    struct vl_synth_result res;
    struct vl_error err = {0};
    if (rc == DP_EXIT_OK && vl_synth_write(&o, &res, &err) != VL_OK) {
        /* a bad --shape is the request's fault (VL_ERR_INVALID, mapped to DP_ERR_FORMAT) */
        struct dp_err e = {0};
        enum dp_status st = dp_vl_err(&e, &err, DP_OK, "synth %s", o.dir);
        fprintf(stderr, "docproc %s: %s\n", CMD, e.msg);
        rc = st == DP_ERR_FORMAT ? DP_EXIT_USAGE : DP_EXIT_OUTPUT;
    }
    if (rc == DP_EXIT_OK)
        printf("%s: %s checkpoint, %d tensors, %.3f GB of BF16 weights in %d file%s\n", o.dir,
               o.shape, res.n_tensors, (double)res.total_bytes / 1e9, res.n_shards,
               res.n_shards == 1 ? "" : "s");
    if (rc == DP_EXIT_OK && !o.tokenizer_path)
        fprintf(stderr, "docproc %s: %s: %s\n", CMD_SYNTH, o.dir, DP_VL_NO_TOKENIZER_HINT);
    free(tok_path);
    free(tcfg_path);
    return rc;
}

int dp_cmd_model(int argc, char **argv) {
    if (argc < 2)
        return dp_cli_usage_error(CMD, "needs a subcommand: info, synth, quantize or compare");
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        print_help();
        return DP_EXIT_OK;
    }
    if (!strcmp(argv[1], "info"))
        return cmd_info(argc - 1, argv + 1);
    if (!strcmp(argv[1], "synth"))
        return cmd_synth(argc - 1, argv + 1);
    if (!strcmp(argv[1], "quantize"))
        return dp_cmd_model_quantize(argc - 1, argv + 1);
    if (!strcmp(argv[1], "compare"))
        return dp_cmd_model_compare(argc - 1, argv + 1);
    return dp_cli_usage_error(CMD, "unknown subcommand '%s' (info, synth, quantize or compare)",
                              argv[1]);
}
