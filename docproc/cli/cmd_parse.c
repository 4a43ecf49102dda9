/* docproc parse: parses one raw model answer (a file, or - for stdin) against a schema and prints
 * the result as JSON, XML or CSV (the page's tables) on stdout; the batch command runs the same
 * code (ex_page_parse, ex_doc_finish, dp_out_*) per page. Warnings go to stderr with -v. */
#include "dp_cli.h"
#include "dp_alloc.h"
#include "dp_buf.h"
#include "dp_fs.h"
#include "dp_limits.h"
#include "dp_log.h"
#include "dp_out.h"
#include "ex.h"
#include "sc.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#define CMD "parse"
#define PARSE_MAX_SIDE 100000    /* pixels of a model input or page side */
#define PARSE_MAX_PT   14400.0   /* PDF user-space limit (200 inches) */
#define PARSE_DEFAULT_FORMAT "json"

struct parse_opts {
    const char *schema;
    const char *format;
    const char *input;
    long model_w, model_h, page_w, page_h, page;
    double pdf_w, pdf_h;
    bool truncated, span_empty, verbose;
    bool csv_unsafe, csv_bom;
};

static void usage(FILE *fp) {
    fprintf(fp,
            "usage: docproc parse --schema NAME|FILE [OPTIONS] RAW.txt|-\n\n"
            "Parses one raw Qwen2.5-VL answer (QwenVL HTML, JSON, markdown or text) into fields,\n"
            "blocks, tables and charts, validated against the schema, and prints the result.\n\n"
            "  --schema NAME|FILE  built-in schema (invoice, receipt, form, table, chart, layout,\n"
            "                      ocr, olmocr)\n"
            "                      or a schema file; built-ins are searched in $DOCPROC_SCHEMAS,\n"
            "                      <exe>/../share/docproc/schemas, the source tree\n"
            "  --model-size WxH    resized model input the boxes refer to [unknown: boxes kept as given]\n"
            "  --page-size WxH     page / original image in pixels [same as model size]\n"
            "  --pdf-size WxH      PDF page size in points, adds pdf_pt boxes [none]\n"
            "  --page N            page number recorded in provenance [1]\n"
            "  --truncated         the model stopped at max-new-tokens [no]\n"
            "  --format F          json, xml or csv (the page's tables) [%s]\n"
            "  --csv-spans MODE    repeat or empty: text in positions covered by a span [repeat]\n"
            "  --csv-safe[=yes|no] prefix cells starting with = + - @ TAB CR with ' (formula\n"
            "                      injection, OWASP; plain numbers stay) [yes]\n"
            "  --csv-bom           start the CSV with a UTF-8 BOM (Excel) [no]\n"
            "  -v, --verbose       print warnings to stderr\n"
            "  -h, --help          this help\n\n"
            "examples:\n"
            "  docproc parse --schema invoice answer.txt\n"
            "  docproc parse --schema table --format csv - < answer.txt\n\n"
            "exit: 0 ok, 2 usage, 3 schema failed to load, 4 output failed, 6 input unreadable\n",
            PARSE_DEFAULT_FORMAT);
}

static int parse_args(int argc, char **argv, struct parse_opts *o) {
    enum { OPT_MODEL = 256, OPT_PAGE_SIZE, OPT_PDF, OPT_PAGE, OPT_TRUNC, OPT_FORMAT, OPT_SPANS,
           OPT_CSV_SAFE, OPT_CSV_BOM };
    static const struct option longs[] = {
        {"schema", required_argument, NULL, 's'},  {"model-size", required_argument, NULL, OPT_MODEL},
        {"page-size", required_argument, NULL, OPT_PAGE_SIZE},
        {"pdf-size", required_argument, NULL, OPT_PDF}, {"page", required_argument, NULL, OPT_PAGE},
        {"truncated", no_argument, NULL, OPT_TRUNC}, {"format", required_argument, NULL, OPT_FORMAT},
        {"csv-spans", required_argument, NULL, OPT_SPANS}, {"verbose", no_argument, NULL, 'v'},
        {"csv-safe", optional_argument, NULL, OPT_CSV_SAFE},
        {"csv-bom", no_argument, NULL, OPT_CSV_BOM},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0}};
    optind = 0; /* GNU: full re-initialisation */
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":s:vh", longs, NULL)) != -1) {
        switch (c) {
        case 's': o->schema = optarg; break;
        case OPT_MODEL:
            if (!dp_cli_parse_size(optarg, PARSE_MAX_SIDE, &o->model_w, &o->model_h))
                return dp_cli_usage_error(CMD, "--model-size: expected WxH, got '%s'", optarg);
            break;
        case OPT_PAGE_SIZE:
            if (!dp_cli_parse_size(optarg, PARSE_MAX_SIDE, &o->page_w, &o->page_h))
                return dp_cli_usage_error(CMD, "--page-size: expected WxH, got '%s'", optarg);
            break;
        case OPT_PDF: {
            const char *x = strchr(optarg, 'x');
            char wbuf[64];
            size_t wl = x ? (size_t)(x - optarg) : 0;
            if (!x || wl >= sizeof wbuf)
                return dp_cli_usage_error(CMD, "--pdf-size: expected WxH in points, got '%s'", optarg);
            memcpy(wbuf, optarg, wl);
            wbuf[wl] = '\0';
            if (!dp_cli_parse_double(wbuf, 1, PARSE_MAX_PT, &o->pdf_w) ||
                !dp_cli_parse_double(x + 1, 1, PARSE_MAX_PT, &o->pdf_h))
                return dp_cli_usage_error(CMD, "--pdf-size: expected WxH in points, got '%s'", optarg);
            break;
        }
        case OPT_PAGE:
            if (!dp_cli_parse_long(optarg, 1, DP_MAX_PAGES, &o->page))
                return dp_cli_usage_error(CMD, "--page: expected an integer in [1, %d], got '%s'",
                                          DP_MAX_PAGES, optarg);
            break;
        case OPT_TRUNC: o->truncated = true; break;
        case OPT_FORMAT:
            if (strcmp(optarg, "json") && strcmp(optarg, "xml") && strcmp(optarg, "csv"))
                return dp_cli_usage_error(CMD, "--format: expected json, xml or csv, got '%s'", optarg);
            o->format = optarg;
            break;
        case OPT_SPANS:
            if (strcmp(optarg, "repeat") && strcmp(optarg, "empty"))
                return dp_cli_usage_error(CMD, "--csv-spans: expected repeat or empty, got '%s'", optarg);
            o->span_empty = !strcmp(optarg, "empty");
            break;
        case OPT_CSV_SAFE:
            if (optarg && strcmp(optarg, "yes") && strcmp(optarg, "no"))
                return dp_cli_usage_error(CMD, "--csv-safe: expected yes or no, got '%s'", optarg);
            o->csv_unsafe = optarg && !strcmp(optarg, "no");
            break;
        case OPT_CSV_BOM: o->csv_bom = true; break;
        case 'v': o->verbose = true; break;
        case 'h': usage(stdout); return -1;
        default: return dp_cli_getopt_error(CMD, c, argc, argv);
        }
    }
    if (!o->schema)
        return dp_cli_usage_error(CMD, "--schema is required");
    if (optind != argc - 1)
        return dp_cli_usage_error(CMD, "expected exactly one RAW answer file (or -)");
    o->input = argv[optind];
    return DP_EXIT_OK;
}

static enum dp_status read_input(const char *path, char **out, size_t *len, struct dp_err *err) {
    if (strcmp(path, "-"))
        return dp_file_read(path, DP_MAX_TEXT_BYTES, out, len, err);
    struct dp_buf b;
    dp_buf_init(&b, DP_MAX_TEXT_BYTES);
    char chunk[1 << 14];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0)
        dp_buf_append(&b, chunk, n);
    if (b.status != DP_OK || ferror(stdin)) {
        dp_buf_free(&b);
        return dp_err_set(err, DP_ERR_IO, "stdin: read failed or larger than %zu bytes",
                          DP_MAX_TEXT_BYTES);
    }
    if (b.data) {
        *out = dp_buf_steal(&b, len);
    } else {
        *out = dp_strdup("");
        *len = 0;
    }
    return *out ? DP_OK : dp_err_set(err, DP_ERR_NOMEM, "out of memory");
}

static void log_warnings(const char *src, const struct ex_warning *w, size_t n) {
    for (size_t i = 0; i < n; i++)
        DP_LOG_WARN("%s: page %d: %s: %s", src, w[i].page, ex_warn_code_name(w[i].code), w[i].msg);
}

int dp_cmd_parse(int argc, char **argv) {
    struct parse_opts o = {.format = PARSE_DEFAULT_FORMAT, .page = 1};
    int rc = parse_args(argc, argv, &o);
    if (rc != DP_EXIT_OK)
        return rc < 0 ? DP_EXIT_OK : rc;
    struct dp_err err = {0};
    struct sc_schema *schema = NULL;
    if (sc_schema_load(&schema, o.schema, &err) != DP_OK) {
        fprintf(stderr, "docproc %s: %s\n", CMD, err.msg);
        return DP_EXIT_LOAD;
    }
    char *raw = NULL;
    size_t raw_len = 0;
    if (read_input(o.input, &raw, &raw_len, &err) != DP_OK) {
        fprintf(stderr, "docproc %s: %s\n", CMD, err.msg);
        sc_schema_free(schema);
        return DP_EXIT_INPUT;
    }
    struct ex_geom g = {
        .model_w = (int)o.model_w, .model_h = (int)o.model_h,
        .page_w = (int)(o.page_w ? o.page_w : o.model_w), .page_h = (int)(o.page_h ? o.page_h : o.model_h),
        .pdf_w_pt = o.pdf_w, .pdf_h_pt = o.pdf_h,
    };
    struct ex_doc *doc = NULL;
    struct ex_page *page = NULL;
    struct ex_stamp stamp = {.docproc_version = DP_VERSION, .schema_name = schema->name,
                             .schema_version = schema->version, .schema_hash = schema->hash,
                             .prompt = schema->prompt};
    enum dp_status st = ex_doc_new(&doc, o.input, &err);
    if (st == DP_OK)
        st = ex_doc_set_stamp(doc, &stamp, &err);
    if (st == DP_OK)
        st = ex_page_parse(&page, schema, raw, raw_len, &g, (int)o.page, o.truncated, &err);
    if (st == DP_OK)
        st = ex_doc_add_page(doc, page, &err);
    if (st == DP_OK)
        st = ex_doc_finish(doc, schema, &err);
    struct dp_buf out;
    dp_buf_init(&out, DP_MAX_TEXT_BYTES);
    if (st == DP_OK) {
        if (o.verbose) {
            log_warnings(o.input, doc->pages[0]->warnings, doc->pages[0]->n_warnings);
            log_warnings(o.input, doc->warnings, doc->n_warnings);
        }
        if (!strcmp(o.format, "json")) {
            st = dp_out_json(doc, &out, &err);
        } else if (!strcmp(o.format, "xml")) {
            st = dp_out_xml(doc, &out, &err);
        } else {
            const struct ex_page *p = doc->pages[0];
            struct dp_csv_opts co = dp_csv_opts_default();
            co.span = o.span_empty ? DP_CSV_SPAN_EMPTY : DP_CSV_SPAN_REPEAT;
            co.formula_safe = !o.csv_unsafe;
            for (size_t i = 0; i < p->n_tables && st == DP_OK; i++) {
                if (i)
                    dp_buf_puts(&out, "\r\n");
                co.bom = o.csv_bom && i == 0; /* one output: one BOM at its start */
                st = dp_out_csv_table_opts(&p->tables[i], &co, &out, &err);
            }
            if (st == DP_OK && p->n_tables == 0)
                DP_LOG_WARN("%s: the answer contains no table", o.input);
        }
        if (st != DP_OK)
            rc = DP_EXIT_OUTPUT;
        else if (out.len && fwrite(out.data, 1, out.len, stdout) != out.len)
            rc = DP_EXIT_OUTPUT;
        else if (fflush(stdout) != 0)
            rc = DP_EXIT_OUTPUT;
    } else {
        rc = dp_cli_exit_for(st);
    }
    if (st != DP_OK)
        fprintf(stderr, "docproc %s: %s\n", CMD, err.msg);
    else if (rc == DP_EXIT_OUTPUT)
        fprintf(stderr, "docproc %s: %s: writing stdout failed\n", CMD, o.input);
    dp_buf_free(&out);
    ex_doc_free(doc);
    dp_free(raw);
    sc_schema_free(schema);
    return rc;
}
