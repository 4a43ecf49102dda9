/* Command-line options of extract, batch and tables: one getopt_long table, one struct
 * (struct dp_batch_opts) that is the single source of truth for parsing and for --help, which
 * prints the live defaults. Usage errors come back as DP_ERR_USAGE with a one-line message.
 * Not thread-safe (getopt's globals); called once from main's thread. */
#include "dp_batch_opts.h"
#include "dp_cli_opts.h"
#include "dp_cli.h"
#include "dp_alloc.h"
#include "dp_buf.h"
#include "dp_limits.h"
#include "dp_out.h"
#include "sc.h"
#include "vl.h"
#include "dp_manifest.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#define MAX_TIMEOUT_S (7.0 * 24 * 3600)

enum {
    OPT_FROM_RAW = 256, OPT_FORMAT, OPT_FORCE, OPT_JSON, OPT_PASSWORD_FILE, OPT_DOC_TIMEOUT, OPT_PAGE_TIMEOUT, OPT_PARALLEL, OPT_KEEP_BLANK,
    OPT_PROGRESS, OPT_SHARD, OPT_RESUME, OPT_INPUT, OPT_MERGE, OPT_NO_PREFIX_CACHE, OPT_STRICT,
    OPT_CSV_SPANS, OPT_CSV_SAFE, OPT_CSV_BOM,
    OPT_PDFA, OPT_CONSTRAIN, OPT_REVIEW_THRESHOLD,
};

static const struct option long_opts[] = {
    {"schema", required_argument, NULL, 's'},
    {"model", required_argument, NULL, 'm'},
    {"from-raw", required_argument, NULL, OPT_FROM_RAW},
    {"output", required_argument, NULL, 'o'},
    {"format", required_argument, NULL, OPT_FORMAT},
    {"pdfa", no_argument, NULL, OPT_PDFA},
    {"force", no_argument, NULL, OPT_FORCE},
    {"strict", no_argument, NULL, OPT_STRICT},
    {"csv-spans", required_argument, NULL, OPT_CSV_SPANS},
    {"csv-safe", optional_argument, NULL, OPT_CSV_SAFE},
    {"csv-bom", no_argument, NULL, OPT_CSV_BOM},
    {"json", no_argument, NULL, OPT_JSON},
    {"jobs", required_argument, NULL, 'j'},
    DP_CLI_LONGOPTS_INGEST,
    {"password-file", required_argument, NULL, OPT_PASSWORD_FILE},
    DP_CLI_LONGOPTS_GEN,
    {"doc-timeout", required_argument, NULL, OPT_DOC_TIMEOUT},
    {"page-timeout", required_argument, NULL, OPT_PAGE_TIMEOUT},
    {"parallel", required_argument, NULL, OPT_PARALLEL},
    {"keep-blank", no_argument, NULL, OPT_KEEP_BLANK},
    {"constrain", required_argument, NULL, OPT_CONSTRAIN},
    {"review-threshold", required_argument, NULL, OPT_REVIEW_THRESHOLD},
    {"no-prefix-cache", no_argument, NULL, OPT_NO_PREFIX_CACHE},
    {"progress", optional_argument, NULL, OPT_PROGRESS},
    {"quiet", no_argument, NULL, 'q'},
    {"verbose", no_argument, NULL, 'v'},
    {"shard", required_argument, NULL, OPT_SHARD},
    {"resume", no_argument, NULL, OPT_RESUME},
    {"input", required_argument, NULL, OPT_INPUT},
    {"merge", required_argument, NULL, OPT_MERGE},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static const char *cmd_name(enum dp_batch_cmd c) {
    return c == DP_BATCH_CMD_EXTRACT ? "extract" : c == DP_BATCH_CMD_BATCH ? "batch" : "tables";
}

void dp_batch_opts_init(struct dp_batch_opts *o, enum dp_batch_cmd cmd) {
    memset(o, 0, sizeof *o);
    o->cmd = cmd;
    o->schema = cmd == DP_BATCH_CMD_TABLES ? "table" : NULL;
    o->model_dir = dp_cli_model_env();
    o->formats = cmd == DP_BATCH_CMD_EXTRACT ? DP_OUT_JSON : DP_OUT_JSON | DP_OUT_CSV;
    o->shard_k = o->shard_n = 1;
    o->review_threshold = DP_BATCH_DEFAULT_REVIEW_THRESHOLD;
    o->jobs = 1;
    o->csv = dp_csv_opts_default();
    dp_ingest_opts_init(&o->ingest);
    o->gen.max_new_tokens = DP_BATCH_DEFAULT_MAX_NEW_TOKENS;
    o->gen.temperature = DP_BATCH_DEFAULT_TEMPERATURE;
    o->gen.top_k = DP_BATCH_DEFAULT_TOP_K;
    o->gen.top_p = DP_BATCH_DEFAULT_TOP_P;
    o->gen.repetition_penalty = VL_GEN_DEFAULT_REPETITION_PENALTY; /* published */
    o->gen.seed = DP_BATCH_DEFAULT_SEED;
    o->gen.threads = dp_cli_default_threads();
    o->gen.weights = o->gen.vision_weights = -1;
}

void dp_batch_opts_free(struct dp_batch_opts *o) {
    DP_FREE(o->inputs);
    o->n_inputs = 0;
}

/* The names --format takes (dp_out_parse_formats plus zip). */
#define FORMATS "json,xml,csv,pdf,alto,hocr,page,md,txt,zip"

static enum dp_status parse_formats(struct dp_batch_opts *o, const char *list, struct dp_err *err) {
    unsigned f = 0;
    bool zip = false;
    const char *p = list;
    while (*p) {
        const char *c = strchr(p, ',');
        size_t n = c ? (size_t)(c - p) : strlen(p);
        char tok[16];
        if (n == 0 || n >= sizeof tok)
            return dp_err_set(err, DP_ERR_USAGE, "--format: bad list '%s' (%s)", list, FORMATS);
        memcpy(tok, p, n);
        tok[n] = '\0';
        unsigned one = 0;
        if (!strcmp(tok, "zip"))
            zip = true;
        else if (dp_out_parse_formats(tok, &one))
            f |= one;
        else
            return dp_err_set(err, DP_ERR_USAGE, "--format: unknown format '%s' (%s)", tok, FORMATS);
        p += n;
        if (*p == ',')
            p++;
    }
    if (!f && !zip)
        return dp_err_set(err, DP_ERR_USAGE, "--format: empty list");
    o->formats = f;
    o->zip_per_doc = zip;
    return DP_OK;
}

static enum dp_status add_input(struct dp_batch_opts *o, char *s, struct dp_err *err) {
    char **v = dp_reallocarray(o->inputs, (size_t)o->n_inputs + 1, sizeof *v);
    if (!v)
        return dp_err_set(err, DP_ERR_NOMEM, "out of memory");
    o->inputs = v;
    o->inputs[o->n_inputs++] = s;
    return DP_OK;
}

#define BAD(...) return dp_err_set(err, DP_ERR_USAGE, __VA_ARGS__)

enum dp_status dp_batch_opts_parse(struct dp_batch_opts *o, int argc, char **argv, bool *help_out,
                                   struct dp_err *err) {
    *help_out = false;
    optind = 0; /* GNU: full re-initialisation */
    opterr = 0;
    int c;
    int64_t i64;
    double d;
    int n_input_opts = 0;
    bool model_given = false, quiet = false, verbose = false, zip_alone = false;
    while ((c = getopt_long(argc, argv, ":s:m:o:j:qvh", long_opts, NULL)) != -1) {
        const char *a = optarg;
        enum dp_cli_opt_rc r = dp_cli_ingest_opt(&o->ingest, &o->pages, c, a, err);
        if (r == DP_CLI_OPT_NOT_MINE)
            r = dp_cli_gen_opt(&o->gen, c, a, err);
        if (r == DP_CLI_OPT_BAD)
            return DP_ERR_USAGE;
        if (r == DP_CLI_OPT_TAKEN)
            continue;
        switch (c) {
        case 's': o->schema = a; break;
        case 'm':
            o->model_dir = a;
            model_given = true;
            break;
        case OPT_FROM_RAW: o->from_raw = a; break;
        case 'o': o->output = a; break;
        case OPT_FORMAT:
            if (parse_formats(o, a, err) != DP_OK)
                return DP_ERR_USAGE;
            zip_alone = o->zip_per_doc && !o->formats;
            break;
        case OPT_FORCE: o->force = true; break;
        case OPT_PDFA: o->pdfa = true; break;
        case OPT_STRICT: o->strict = true; break;
        case OPT_CSV_SPANS:
            if (!strcmp(a, "repeat"))
                o->csv.span = DP_CSV_SPAN_REPEAT;
            else if (!strcmp(a, "empty"))
                o->csv.span = DP_CSV_SPAN_EMPTY;
            else
                BAD("--csv-spans: expected repeat or empty, got '%s'", a);
            break;
        case OPT_CSV_SAFE:
            if (!a || !strcmp(a, "yes"))
                o->csv.formula_safe = true;
            else if (!strcmp(a, "no"))
                o->csv.formula_safe = false;
            else
                BAD("--csv-safe: expected yes or no, got '%s'", a);
            break;
        case OPT_CSV_BOM: o->csv.bom = true; break;
        case OPT_JSON: o->json_stdout = true; break;
        case 'j':
            if (!dp_cli_parse_i64(a, 1, DP_BATCH_MAX_JOBS, &i64))
                BAD("--jobs: expected an integer in [1, %d], got '%s'", DP_BATCH_MAX_JOBS, a);
            o->jobs = (int)i64;
            break;
        case OPT_PARALLEL:
            if (!strcmp(a, "auto"))
                o->parallel = 0;
            else if (dp_cli_parse_i64(a, 1, DP_BATCH_MAX_PARALLEL, &i64))
                o->parallel = (int)i64;
            else
                BAD("--parallel: expected auto or an integer in [1, %d], got '%s'",
                    DP_BATCH_MAX_PARALLEL, a);
            break;
        case OPT_PASSWORD_FILE: o->password_file = a; break;
        case OPT_DOC_TIMEOUT:
        case OPT_PAGE_TIMEOUT:
            if (!dp_cli_parse_double(a, 0, MAX_TIMEOUT_S, &d))
                BAD("--%s: expected seconds in [0, %g], got '%s'",
                    c == OPT_DOC_TIMEOUT ? "doc-timeout" : "page-timeout", MAX_TIMEOUT_S, a);
            *(c == OPT_DOC_TIMEOUT ? &o->doc_timeout_s : &o->page_timeout_s) = d;
            break;
        case OPT_KEEP_BLANK: o->keep_blank = true; break;
        case OPT_REVIEW_THRESHOLD:
            if (!dp_cli_parse_double(a, 0, 1, &d))
                BAD("--review-threshold: expected a confidence in [0, 1], got '%s'", a);
            o->review_threshold = d;
            break;
        case OPT_CONSTRAIN:
            if (!dp_constrain_parse(a, &o->constrain))
                BAD("--constrain: expected on or off, got '%s'", a);
            break;
        case OPT_NO_PREFIX_CACHE: o->no_prefix_cache = true; break;
        case OPT_PROGRESS:
            if (!a || !strcmp(a, "tty"))
                o->progress = DP_PROGRESS_TTY;
            else if (!strcmp(a, "json"))
                o->progress = DP_PROGRESS_JSON;
            else if (!strcmp(a, "off"))
                o->progress = DP_PROGRESS_OFF;
            else
                BAD("--progress: expected tty, json or off, got '%s'", a);
            break;
        case 'q':
            o->verbosity = -1;
            quiet = true;
            break;
        case 'v':
            o->verbosity = o->verbosity < 0 ? 1 : o->verbosity + 1;
            verbose = true;
            break;
        case OPT_SHARD:
        case OPT_RESUME:
        case OPT_INPUT:
        case OPT_MERGE:
            if (o->cmd != DP_BATCH_CMD_BATCH)
                BAD("%s is an option of 'docproc batch'", argv[optind - 1]);
            if (c == OPT_SHARD && !dp_shard_parse(a, &o->shard_k, &o->shard_n))
                BAD("--shard: expected K/N with 1 <= K <= N <= %d, got '%s'", DP_MAX_SHARDS, a);
            if (c == OPT_RESUME)
                o->resume = true;
            if (c == OPT_INPUT && add_input(o, optarg, err) != DP_OK)
                return DP_ERR_NOMEM;
            n_input_opts += c == OPT_INPUT;
            if (c == OPT_MERGE)
                o->merge_out = a;
            break;
        case 'h': *help_out = true; return DP_OK;
        case ':': BAD("%s: missing value", argv[optind - 1]);
        default: BAD("unknown option '%s'", argv[optind - 1]);
        }
    }
    for (int i = optind; i < argc; i++)
        if (add_input(o, argv[i], err) != DP_OK)
            return DP_ERR_NOMEM;
    if (o->ingest.min_pixels > o->ingest.max_pixels)
        BAD("--min-pixels %lld is larger than --max-pixels %lld",
            (long long)o->ingest.min_pixels, (long long)o->ingest.max_pixels);
    /* contradictory or ignored options are usage errors, never silence */
    if (quiet && verbose)
        BAD("-q and -v contradict each other: give one");
    if (o->merge_out) {
        if (!o->n_inputs)
            BAD("--merge OUT needs the shard manifests to merge");
        if (n_input_opts)
            BAD("--merge OUT merges the manifests given as arguments; --input is not used");
        return DP_OK;
    }
    if (o->from_raw && model_given)
        BAD("--from-raw re-extracts saved answers without the model; --model is not used");
    if (o->from_raw && o->pages)
        BAD("--from-raw re-extracts every saved page; --pages is not used");
    if (zip_alone)
        BAD("--format zip bundles the other formats: name them too (e.g. --format json,zip)");
    if (!o->schema)
        BAD("--schema NAME|FILE is required (built-in: invoice, receipt, form, table, chart, "
            "layout, ocr, olmocr)");
    if (o->pdfa && !(o->formats & DP_OUT_PDF))
        BAD("--pdfa applies to the searchable PDF: add pdf to --format");
    if (o->from_raw && o->n_inputs)
        BAD("--from-raw reads its documents from %s; no other inputs may be given", o->from_raw);
    if (!o->from_raw && !o->n_inputs)
        BAD(o->cmd == DP_BATCH_CMD_BATCH ? "no input: give --input DIR|@LIST" : "no input given");
    if (o->cmd != DP_BATCH_CMD_EXTRACT && !o->output)
        BAD("--output DIR is required");
    if (o->output && o->cmd != DP_BATCH_CMD_EXTRACT) {
        size_t n = strlen(o->output);
        if (n >= 4 && !strcmp(o->output + n - 4, ".zip"))
            BAD("--output must be a directory for '%s' (use --format ...,zip for bundles)",
                cmd_name(o->cmd));
    }
    if (o->resume && !o->output)
        BAD("--resume needs --output DIR");
    return DP_OK;
}
#undef BAD

static void fmt_list(const struct dp_batch_opts *o, char *buf, size_t n) {
    snprintf(buf, n, "%s%s%s%s", o->formats & DP_OUT_JSON ? "json," : "",
             o->formats & DP_OUT_XML ? "xml," : "", o->formats & DP_OUT_CSV ? "csv," : "",
             o->zip_per_doc ? "zip," : "");
    size_t l = strlen(buf);
    if (l)
        buf[l - 1] = '\0';
}

char *dp_batch_opts_help(const struct dp_batch_opts *o) {
    struct dp_buf bb;
    struct dp_buf *b = &bb;
    dp_buf_init(b, DP_MAX_TEXT_BYTES);
    char fmts[64];
    fmt_list(o, fmts, sizeof fmts);
    switch (o->cmd) {
    case DP_BATCH_CMD_EXTRACT:
        dp_buf_appendf(b, "usage: docproc extract --schema NAME|FILE [--model DIR] [options] INPUT... "
                    "[-o DIR | -o BUNDLE.zip]\n"
                    "       docproc extract --schema NAME|FILE --from-raw BUNDLE_OR_DIR [-o ...]\n\n"
                    "Runs every page of every input through the model and the schema's extractor;\n"
                    "one JSON Lines record per document on stdout, files with -o. INPUT '-' reads\n"
                    "one document from stdin (named 'stdin').\n");
        break;
    case DP_BATCH_CMD_BATCH:
        dp_buf_appendf(b, "usage: docproc batch --schema NAME|FILE [--model DIR] --input DIR|@LIST... "
                    "--output DIR [options]\n"
                    "       docproc batch --merge OUT.json MANIFEST...\n\n"
                    "Processes a tree of documents unattended: manifest with SHA-256, status and\n"
                    "timings; crash-safe and resumable; sharded by hash across workers.\n");
        break;
    case DP_BATCH_CMD_TABLES:
        dp_buf_appendf(b, "usage: docproc tables [--model DIR] INPUT... -o DIR [options]\n\n"
                    "Every table on every page as CSV and JSON (cell boxes); tables continuing\n"
                    "across pages are stitched into one with their parts recorded.\n");
        break;
    }
    char *names = sc_schema_names();
    dp_buf_appendf(b, "\ninput:\n"
                "  -s, --schema NAME|FILE     built-in schema name or a schema file [%s]\n"
                "                             built-in: %s\n",
            o->schema ? o->schema : "required", names ? names : "none found");
    dp_free(names);
    dp_cli_ingest_help(b, DP_CLI_ING_ALL, &o->ingest);
    dp_buf_puts(b, "      --password-file F      lines NAME=PASSWORD (NAME: file name or '*')\n"
                "      --from-raw PATH        re-extract the raw answers of a bundle or directory\n");
    if (o->cmd == DP_BATCH_CMD_BATCH)
        dp_buf_appendf(b, "      --input DIR|@LIST      inputs (repeatable; directories are walked)\n"
                    "      --shard K/N            process only shard K of N (by name hash)\n"
                    "      --resume               skip documents already done with the same SHA-256\n"
                    "      --merge OUT            merge shard manifests given as arguments\n");
    dp_buf_appendf(b, "\nmodel:\n"
                "  -m, --model DIR            Qwen2.5-VL checkpoint [$DOCPROC_MODEL: %s]\n",
            o->model_dir ? o->model_dir : "unset");
    dp_cli_gen_help(b, DP_CLI_GEN_SAMPLING, &o->gen);
    dp_buf_appendf(b, "      --constrain on|off     schema-constrained decoding: every answer a valid\n"
                "                             instance of the schema [%s]\n",
            o->constrain == DP_CONSTRAIN_ON    ? "on"
            : o->constrain == DP_CONSTRAIN_OFF ? "off"
                                               : "on for kie and chart schemas");
    dp_buf_appendf(b, "      --review-threshold C   a value whose confidence is below C puts the\n"
                "                             document up for review (batch: OUT/review.jsonl) [%g]\n",
            o->review_threshold);
    dp_buf_appendf(b, "      --page-timeout S       stop a page's answer after S seconds (0 = none) [%g]\n"
                "      --doc-timeout S        fail a document after S seconds (0 = none) [%g]\n"
                "      --keep-blank           send blank pages to the model too [%s]\n"
                "      --no-prefix-cache      recompute the instruction's KV cache for every page\n",
            o->page_timeout_s, o->doc_timeout_s, o->keep_blank ? "yes" : "no");
    dp_buf_appendf(b, "\noutput:\n"
                "  -o, --output PATH          output directory%s [%s]\n"
                "      --format LIST          json,xml,csv,zip and archive formats pdf (searchable; a\n"
                "                             PDF input keeps its pages, text added where a page has\n"
                "                             none), alto (ALTO 4.4), hocr, page (PAGE XML), md, txt\n"
                "                             (raw answers always kept; docs/archive.md) [%s]\n"
                "      --pdfa                 pdf: PDF/A-2b (XMP metadata, sRGB output intent)\n"
                "      --force                overwrite existing outputs\n"
                "      --csv-spans MODE       repeat or empty: CSV text in positions covered by a span\n"
                "                             [%s]\n"
                "      --csv-safe[=yes|no]    prefix CSV cells starting with = + - @ TAB CR with '\n"
                "                             (formula injection, OWASP; numbers stay) [%s]\n"
                "      --csv-bom              start CSV files with a UTF-8 BOM (Excel) [%s]\n"
                "      --strict               a failed validation or cross-check fails the document\n"
                "                             (default: ok, with \"valid\": false and the reasons)\n"
                "      --json                 JSON Lines on stdout (extract: always without -o)\n",
            o->cmd == DP_BATCH_CMD_EXTRACT ? " or BUNDLE.zip" : "",
            o->output ? o->output : o->cmd == DP_BATCH_CMD_EXTRACT ? "stdout only" : "required",
            fmts, o->csv.span == DP_CSV_SPAN_EMPTY ? "empty" : "repeat",
            o->csv.formula_safe ? "yes" : "no", o->csv.bom ? "yes" : "no");
    char par[64];
    if (o->parallel > 0)
        snprintf(par, sizeof par, "%d", o->parallel);
    else
        snprintf(par, sizeof par, "auto: what memory allows, at most %d", DP_BATCH_AUTO_PARALLEL);
    dp_buf_appendf(b, "\nperformance:\n"
                "      --parallel N|auto      pages in flight through the model, decoded together\n"
                "                             (one read of the weights per step for all; results\n"
                "                             identical to --parallel 1) [%s]\n"
                "  -j, --jobs N               --from-raw: documents re-extracted in parallel [%d]\n",
            par, o->jobs);
    dp_cli_gen_help(b, DP_CLI_GEN_THREADS, &o->gen);
    dp_buf_puts(b, "\ndiagnostics:\n"
                "      --progress[=tty|json|off]  progress on stderr [auto: on a TTY]\n"
                "  -q, --quiet                errors only\n"
                "  -v, --verbose              per-document timing summary (-vv: debug)\n"
                "  -h, --help                 this help\n");
    switch (o->cmd) {
    case DP_BATCH_CMD_EXTRACT:
        dp_buf_puts(b, "\nexamples:\n"
                    "  docproc extract --schema invoice --model qwen25vl-3b scan.pdf > scan.jsonl\n"
                    "  docproc extract --schema receipt --format json,xml -o out/ photo.jpg a.pdf\n"
                    "  docproc extract --schema invoice - < page.png\n"
                    "  docproc extract --schema receipt --from-raw out/ -o out2/  # no model\n");
        break;
    case DP_BATCH_CMD_BATCH:
        dp_buf_puts(b, "\nexamples:\n"
                    "  docproc batch --schema invoice --input /archive -o /results\n"
                    "  docproc batch --schema invoice --input /archive -o /results --resume\n"
                    "  docproc batch --schema invoice --input /archive -o /r/1 --shard 1/4\n"
                    "  docproc batch --merge /results/manifest.json /r/*/manifest.json\n");
        break;
    case DP_BATCH_CMD_TABLES:
        dp_buf_puts(b, "\nexamples:\n"
                    "  docproc tables --model qwen25vl-3b report.pdf -o tables/\n"
                    "  docproc tables --from-raw out/ -o tables/ --csv-bom  # no model\n");
        break;
    }
    dp_buf_puts(b, "\nexit: 0 all ok, 1 some documents failed (the rest written), 2 usage, 3 model or\n"
                "schema load, 4 output not writable (or in use by another run), 5 interrupted,\n"
                "6 inputs unreadable (--from-raw, @LIST, --merge), 70 internal (docs/cli.md,\n"
                "docs/batch.md).\n");
    return dp_buf_steal(b, NULL);
}
