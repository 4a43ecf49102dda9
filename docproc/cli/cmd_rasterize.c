/* `docproc rasterize`: every selected page of every input as the exact RGB pixels the model
 * will see (PDF rendered at the smart_resize target, scans resampled PIL-exactly), written
 * as DIR/<name>/page-NNNN.png plus pages.json, where <name> is the document name extract and
 * batch use (dp_discover: the file name with its extension, the path inside a directory
 * input, the normalised path when two inputs share a file name). Each input is built in a hidden temporary
 * directory and renamed into place only when complete, so a failure leaves nothing behind;
 * one failed input does not stop the others (exit 1). Single-threaded. */
#include "dp_cli.h"
#include "dp_cli_opts.h"

#include "dp_alloc.h"
#include "dp_buf.h"
#include "dp_fs.h"
#include "dp_limits.h"
#include "dp_log.h"
#include "dp_ingest.h"
#include "dp_manifest.h"
#include "dp_out.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CMD "rasterize"
#define PATH_MAX_LEN 4096
#define PAGE_FILE_FMT "page-%04d.png"
#define PAGES_JSON "pages.json"
#define JSON_FLAGS (JSON_INDENT(2) | JSON_REAL_PRECISION(10))

enum { OPT_FORCE = 256 };

struct rz_opts {
    struct dp_ingest_opts ing;
    struct dp_page_sel sel;
    const char *pages;
    const char *out_dir;
    bool force;
};

static void print_help(const struct rz_opts *o) {
    struct dp_buf b;
    dp_buf_init(&b, DP_MAX_TEXT_BYTES);
    dp_buf_puts(&b, "usage: docproc rasterize [OPTIONS] INPUT... -o DIR\n\n"
                    "Writes each page as the model will see it: DIR/<name>/page-0001.png ... "
                    "and\nDIR/<name>/pages.json, <name> as extract names documents (scan.pdf, "
                    "photo.jpg;\nsub/x.pdf inside a directory input). Inputs: PDF, TIFF, PNG, "
                    "JPEG (sniffed by\ncontent), directories (walked), '-' (stdin).\n\n"
                    "  -o, --output DIR           output directory (required)\n");
    dp_cli_ingest_help(&b, DP_CLI_ING_ALL, &o->ing);
    dp_buf_puts(&b, "      --force                replace existing DIR/<name>\n"
                    "  -h, --help                 this text\n\n"
                    "examples:\n"
                    "  docproc rasterize -o pages/ scan.pdf photo.jpg  # pages/scan.pdf/page-0001.png\n"
                    "  docproc rasterize --pages 1-2 --dpi 200 -o pages/ report.pdf\n\n"
                    "exit: 0 all inputs written, 1 some failed (the rest were written), 2 usage,\n"
                    "4 output directory not writable.\n");
    dp_cli_print_buf(&b);
}

static json_t *page_json(const struct dp_page *pg, const char *file) {
    json_t *j = json_object();
    json_object_set_new(j, "page", json_integer(pg->page_no));
    json_object_set_new(j, "file", json_string(file));
    json_object_set_new(j, "width", json_integer(pg->width));
    json_object_set_new(j, "height", json_integer(pg->height));
    json_object_set_new(j, "source_format", json_string(dp_format_name(pg->format)));
    json_object_set_new(j, "dpi", json_real(pg->dpi));
    if (pg->format == DP_FORMAT_PDF) {
        json_object_set_new(j, "width_pt", json_real(pg->width_pt));
        json_object_set_new(j, "height_pt", json_real(pg->height_pt));
        json_object_set_new(j, "rotation", json_integer(pg->rotation));
    } else {
        json_object_set_new(j, "source_width", json_integer(pg->src_width));
        json_object_set_new(j, "source_height", json_integer(pg->src_height));
        json_object_set_new(j, "orientation", json_integer(pg->orientation));
    }
    if (pg->format == DP_FORMAT_TIFF) {
        json_object_set_new(j, "x_resolution", json_real(pg->x_resolution));
        json_object_set_new(j, "y_resolution", json_real(pg->y_resolution));
        json_object_set_new(j, "resolution_unit", json_integer(pg->resolution_unit));
    }
    return j;
}

/* Renders the selected pages of doc into tmp/, plus pages.json. */
static enum dp_status write_pages(struct dp_doc *doc, const struct rz_opts *o, const char *tmp,
                                  const char *input, int *n_written, struct dp_err *err) {
    json_t *root = json_object(), *pages = json_array();
    json_object_set_new(root, "input", json_string(input));
    json_object_set_new(root, "format", json_string(dp_format_name(dp_doc_format(doc))));
    json_object_set_new(root, "page_count", json_integer(dp_doc_page_count(doc)));
    json_object_set_new(root, "min_pixels", json_integer(o->ing.min_pixels));
    json_object_set_new(root, "max_pixels", json_integer(o->ing.max_pixels));
    json_object_set_new(root, "render_dpi", json_real(o->ing.dpi));
    json_object_set_new(root, "pages", pages);
    enum dp_status st = DP_OK;
    char file[64], path[PATH_MAX_LEN];
    for (int i = 0; i < dp_doc_page_count(doc) && st == DP_OK; i++) {
        if (!dp_page_sel_has(&o->sel, i + 1))
            continue;
        struct dp_page pg;
        st = dp_doc_render(&pg, doc, i, err);
        if (st == DP_OK && (st = dp_page_fit(&pg, &o->ing, err)) != DP_OK)
            dp_err_prefix(err, "%s", input);
        if (st == DP_OK) {
            snprintf(file, sizeof file, PAGE_FILE_FMT, pg.page_no);
            int k = snprintf(path, sizeof path, "%s/%s", tmp, file);
            st = k < 0 || (size_t)k >= sizeof path
                     ? dp_err_set(err, DP_ERR_USAGE, "%s: output path too long", input)
                     : dp_png_write(path, pg.rgb, pg.width, pg.height, pg.dpi, err);
        }
        if (st == DP_OK) {
            json_array_append_new(pages, page_json(&pg, file));
            (*n_written)++;
            DP_LOG_INFO("%s: page %d: %dx%d", input, pg.page_no, pg.width, pg.height);
        }
        dp_page_free(&pg);
    }
    if (st == DP_OK) {
        char *text = json_dumps(root, JSON_FLAGS);
        int k = snprintf(path, sizeof path, "%s/%s", tmp, PAGES_JSON);
        if (k < 0 || (size_t)k >= sizeof path)
            st = dp_err_set(err, DP_ERR_USAGE, "%s: output path too long", input);
        else if (!text)
            st = dp_err_set(err, DP_ERR_NOMEM, "%s: out of memory for pages.json", input);
        else
            st = dp_file_write_atomic(path, text, strlen(text), true, err);
        free(text);
    }
    json_decref(root);
    return st;
}

/* One input named name: open, render into a temporary directory beside DIR/name, rename into
 * place. */
static enum dp_status rasterize_one(const struct dp_input *d, const struct rz_opts *o,
                                    struct dp_err *err) {
    const char *input = dp_input_shown(d), *name = d->rel;
    char final[PATH_MAX_LEN], tmp[PATH_MAX_LEN], old[PATH_MAX_LEN], parent[PATH_MAX_LEN];
    const char *base = dp_path_basename(name);
    int k1 = snprintf(final, sizeof final, "%s/%s", o->out_dir, name);
    int k3 = snprintf(parent, sizeof parent, "%s/%.*s", o->out_dir, (int)(base - name), name);
    int k2 = snprintf(tmp, sizeof tmp, "%s.%s.tmp-XXXXXX", parent, base);
    if (k1 < 0 || k2 < 0 || k3 < 0 || (size_t)k2 >= sizeof tmp)
        return dp_err_set(err, DP_ERR_USAGE, "%s: output path too long", input);
    struct stat sb;
    if (!o->force && stat(final, &sb) == 0)
        return dp_err_set(err, DP_ERR_IO, "%s: output %s exists (use --force to replace it)",
                          input, final);
    struct dp_doc *doc = NULL;
    enum dp_status st = dp_doc_open(&doc, d->path, &o->ing, err);
    if (st != DP_OK)
        return st;
    if ((st = dp_page_sel_check(&o->sel, dp_doc_page_count(doc), input, err)) != DP_OK) {
        dp_doc_close(doc);
        return st;
    }
    char note[DP_ERR_MSG_MAX];
    if (dp_page_sel_beyond(&o->sel, dp_doc_page_count(doc), note, sizeof note))
        DP_LOG_WARN("%s: %s", input, note);
    if ((st = dp_mkdirs(parent, err)) != DP_OK) { /* made only once a document renders */
        dp_doc_close(doc);
        return st;
    }
    if (!mkdtemp(tmp)) {
        dp_doc_close(doc);
        return dp_err_set_errno(err, DP_ERR_IO, errno, "%s: cannot create %s", input, tmp);
    }
    int n = 0;
    st = write_pages(doc, o, tmp, input, &n, err);
    dp_doc_close(doc);
    if (st != DP_OK) {
        dp_cli_remove_flat_dir(tmp);
        return st;
    }
    bool replaced = false;
    if (stat(final, &sb) == 0) { /* --force: move the old one aside first */
        int k4 = snprintf(old, sizeof old, "%s.%s.old-XXXXXX", parent, base);
        if (k4 < 0 || (size_t)k4 >= sizeof old) {
            dp_cli_remove_flat_dir(tmp);
            return dp_err_set(err, DP_ERR_USAGE, "%s: output path too long", input);
        }
        if (!mkdtemp(old) || rename(final, old) != 0) {
            int e = errno;
            dp_cli_remove_flat_dir(tmp);
            return dp_err_set_errno(err, DP_ERR_IO, e, "%s: cannot replace %s", input, final);
        }
        replaced = true;
    }
    if (rename(tmp, final) != 0) {
        int e = errno;
        dp_cli_remove_flat_dir(tmp);
        if (replaced)
            rename(old, final);
        return dp_err_set_errno(err, DP_ERR_IO, e, "%s: cannot rename into %s", input, final);
    }
    if (replaced)
        dp_cli_remove_flat_dir(old);
    printf("%s\t%s\t%d page(s)\n", input, final, n);
    return DP_OK;
}

int dp_cmd_rasterize(int argc, char **argv) {
    struct rz_opts o = {0};
    dp_ingest_opts_init(&o.ing);
    static const struct option longopts[] = {
        {"output", required_argument, NULL, 'o'},
        DP_CLI_LONGOPTS_INGEST,
        {"force", no_argument, NULL, OPT_FORCE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct dp_err err = {0};
    optind = 0; /* GNU: full re-initialisation (commands may run more than once per process) */
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":o:h", longopts, NULL)) != -1) {
        enum dp_cli_opt_rc r = dp_cli_ingest_opt(&o.ing, &o.pages, c, optarg, &err);
        if (r == DP_CLI_OPT_BAD)
            return dp_cli_usage_error(CMD, "%s", err.msg);
        if (r == DP_CLI_OPT_TAKEN)
            continue;
        switch (c) {
        case 'o': o.out_dir = optarg; break;
        case OPT_FORCE: o.force = true; break;
        case 'h': print_help(&o); return DP_EXIT_OK;
        default: return dp_cli_getopt_error(CMD, c, argc, argv);
        }
    }
    if (!o.out_dir)
        return dp_cli_usage_error(CMD, "missing -o DIR");
    if (optind >= argc)
        return dp_cli_usage_error(CMD, "no input files");
    if (o.ing.min_pixels > o.ing.max_pixels)
        return dp_cli_usage_error(CMD, "--min-pixels %lld > --max-pixels %lld",
                                  (long long)o.ing.min_pixels, (long long)o.ing.max_pixels);
    if (dp_page_sel_parse(&o.sel, o.pages, &err) != DP_OK)
        return dp_cli_usage_error(CMD, "%s", err.msg);
    if (dp_dir_writable(o.out_dir, &err) != DP_OK) { /* nothing is created before a page renders */
        DP_LOG_ERROR("%s: output directory not writable%s%s", o.out_dir, err.msg[0] ? ": " : "",
                     err.msg);
        dp_page_sel_free(&o.sel);
        return DP_EXIT_OUTPUT;
    }
    /* The documents and their names as extract and batch see them (a missing input or a
     * directory without documents is the run's error, before anything is written). */
    struct dp_inputs docs;
    if (dp_discover(&docs, argv + optind, argc - optind, &err) != DP_OK) {
        DP_LOG_ERROR("%s", err.msg);
        dp_page_sel_free(&o.sel);
        return err.code == DP_ERR_USAGE ? DP_EXIT_USAGE : DP_EXIT_INPUT;
    }
    int failed = 0;
    for (int i = 0; i < docs.n; i++) {
        const struct dp_input *d = &docs.items[i];
        if (d->state == DP_INPUT_SKIPPED) {
            DP_LOG_INFO("%s: skipped: %s", d->path, d->error ? d->error : "not a document");
            continue;
        }
        dp_err_clear(&err);
        enum dp_status st = d->state == DP_INPUT_FAILED
                                ? dp_err_set(&err, d->code, "%s", d->error ? d->error : d->path)
                                : rasterize_one(d, &o, &err);
        if (st != DP_OK) {
            DP_LOG_ERROR("%s", err.msg);
            failed++;
        }
    }
    dp_inputs_free(&docs);
    dp_page_sel_free(&o.sel);
    return failed ? DP_EXIT_SOME_FAILED : DP_EXIT_OK;
}
