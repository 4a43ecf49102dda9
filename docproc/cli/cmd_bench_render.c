/* `docproc bench-render`: rasterisation benchmark. Renders the pages of a PDF with docproc's
 * pipeline (poppler+cairo at the smart_resize target for --dpi, flattening, PNG encoding)
 * and runs `pdftoppm -r DPI -png` on the same pages, printing pages/s for both in one run.
 * Output PNGs go to a temporary directory that is removed afterwards. Not a test (timing
 * depends on the machine); figures are recorded in docs/ingestion.md. Single-threaded. */
#include "dp_cli.h"
#include "dp_cli_opts.h"

#include "dp_alloc.h"
#include "dp_fs.h"
#include "dp_limits.h"
#include "dp_log.h"
#include "dp_ingest.h"
#include "dp_out.h"

#include <errno.h>
#include <getopt.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CMD "bench-render"
/* The default PDF: installed beside the binary (<exe>/../share/docproc/samples/, by
 * `cmake --install`), else the source tree's copy for an uninstalled build; never the working
 * directory. */
#define DEFAULT_INPUT_NAME "WARN-Report-for-7-1-2015-to-03-25-2016.pdf"
#define DEFAULT_INPUT_INSTALLED "../share/docproc/samples/" DEFAULT_INPUT_NAME
#ifndef DP_SOURCE_SAMPLES_DIR
#define DP_SOURCE_SAMPLES_DIR ""
#endif
#define DEFAULT_INPUT_SOURCE DP_SOURCE_SAMPLES_DIR "/pdfplumber/" DEFAULT_INPUT_NAME
#define DEFAULT_RUNS 1
#define MAX_RUNS 100
#define PATH_MAX_LEN 4096
#define NUM_LEN 32

extern char **environ;

enum { OPT_PAGES = 256, OPT_RUNS, OPT_NO_PDFTOPPM };

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* One docproc pass over pages 1..n: seconds, or < 0 on error (logged). */
static double run_docproc(const char *input, const struct dp_ingest_opts *o, int n,
                          const char *dir, bool write_png, long long *px) {
    struct dp_err err = {0};
    struct dp_doc *doc = NULL;
    double t0 = now_s();
    if (dp_doc_open(&doc, input, o, &err) != DP_OK) {
        DP_LOG_ERROR("%s", err.msg);
        return -1;
    }
    *px = 0;
    for (int i = 0; i < n; i++) {
        struct dp_page pg;
        char path[PATH_MAX_LEN];
        enum dp_status st = dp_doc_render(&pg, doc, i, &err);
        if (st == DP_OK && write_png) {
            snprintf(path, sizeof path, "%s/page-%04d.png", dir, i + 1);
            st = dp_png_write(path, pg.rgb, pg.width, pg.height, pg.dpi, &err);
        }
        *px += (long long)pg.width * pg.height;
        dp_page_free(&pg);
        if (st != DP_OK) {
            DP_LOG_ERROR("%s", err.msg);
            dp_doc_close(doc);
            return -1;
        }
    }
    dp_doc_close(doc);
    return now_s() - t0;
}

/* pdftoppm -r dpi -png -f 1 -l n input dir/p: seconds, or < 0 if it could not run. */
static double run_pdftoppm(const char *input, double dpi, int n, const char *dir) {
    char r[NUM_LEN], l[NUM_LEN], prefix[PATH_MAX_LEN];
    snprintf(r, sizeof r, "%g", dpi);
    snprintf(l, sizeof l, "%d", n);
    snprintf(prefix, sizeof prefix, "%s/p", dir);
    char *args[] = {"pdftoppm", "-r", r, "-png", "-f", "1", "-l", l, (char *)input, prefix, NULL};
    pid_t pid;
    double t0 = now_s();
    if (posix_spawnp(&pid, "pdftoppm", NULL, NULL, args, environ) != 0)
        return -1;
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    double t = now_s() - t0;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? t : -1;
}

/* The default PDF's path into out[n]; false when neither copy exists. */
static bool default_input(char *out, size_t n) {
    struct stat sb;
    char *p = dp_exe_relative(DEFAULT_INPUT_INSTALLED);
    bool found = p && stat(p, &sb) == 0 && (size_t)snprintf(out, n, "%s", p) < n;
    dp_free(p);
    if (!found && DP_SOURCE_SAMPLES_DIR[0] && stat(DEFAULT_INPUT_SOURCE, &sb) == 0)
        found = (size_t)snprintf(out, n, "%s", DEFAULT_INPUT_SOURCE) < n;
    return found;
}

int dp_cmd_bench_render(int argc, char **argv) {
    struct dp_ingest_opts o;
    dp_ingest_opts_init(&o);
    static const struct option longopts[] = {
        DP_CLI_LONGOPT_DPI,
        {"pages", required_argument, NULL, OPT_PAGES},
        {"runs", required_argument, NULL, OPT_RUNS},
        {"no-pdftoppm", no_argument, NULL, OPT_NO_PDFTOPPM},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    long max_pages = 0, runs = DEFAULT_RUNS;
    bool with_pdftoppm = true;
    struct dp_err err = {0};
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        enum dp_cli_opt_rc r = dp_cli_ingest_opt(&o, NULL, c, optarg, &err);
        if (r == DP_CLI_OPT_BAD)
            return dp_cli_usage_error(CMD, "%s", err.msg);
        if (r == DP_CLI_OPT_TAKEN)
            continue;
        switch (c) {
        case OPT_PAGES:
            if (!dp_cli_parse_long(optarg, 1, DP_MAX_PAGES, &max_pages))
                return dp_cli_usage_error(CMD, "--pages: expected a page count, got '%s'", optarg);
            break;
        case OPT_RUNS:
            if (!dp_cli_parse_long(optarg, 1, MAX_RUNS, &runs))
                return dp_cli_usage_error(CMD, "--runs: expected 1..%d, got '%s'", MAX_RUNS,
                                          optarg);
            break;
        case OPT_NO_PDFTOPPM: with_pdftoppm = false; break;
        case 'h':
            printf("usage: docproc bench-render [--dpi N] [--pages N] [--runs N] [--no-pdftoppm] "
                   "[PDF]\n\n"
                   "Renders the first N pages [all] of PDF [%s] at --dpi [%g] (then the model's\n"
                   "pixel budget, %lld..%lld pixels) to PNG, and the same pages with\n"
                   "`pdftoppm -r DPI -png`; prints pages/s of both (best of --runs [%d]).\n"
                   "Without PDF, the sample installed with docproc (found from the executable).\n\n"
                   "examples:\n"
                   "  docproc bench-render --runs 3\n"
                   "  docproc bench-render --dpi 300 --pages 5 --no-pdftoppm report.pdf\n",
                   "<exe>/" DEFAULT_INPUT_INSTALLED, o.dpi, (long long)o.min_pixels, (long long)o.max_pixels,
                   DEFAULT_RUNS);
            return DP_EXIT_OK;
        default: return dp_cli_getopt_error(CMD, c, argc, argv);
        }
    }
    if (argc - optind > 1)
        return dp_cli_usage_error(CMD, "expected at most one PDF");
    char dflt[PATH_MAX_LEN];
    if (optind >= argc && !default_input(dflt, sizeof dflt)) {
        DP_LOG_ERROR("no PDF given and the default sample is not installed (<exe>/%s)",
                     DEFAULT_INPUT_INSTALLED);
        return DP_EXIT_INPUT;
    }
    const char *input = optind < argc ? argv[optind] : dflt;
    struct dp_doc *doc = NULL;
    if (dp_doc_open(&doc, input, &o, &err) != DP_OK) {
        DP_LOG_ERROR("%s", err.msg);
        return DP_EXIT_INPUT;
    }
    bool is_pdf = dp_doc_format(doc) == DP_FORMAT_PDF;
    int n = dp_doc_page_count(doc);
    dp_doc_close(doc);
    if (!is_pdf) {
        DP_LOG_ERROR("%s: bench-render needs a PDF", input);
        return DP_EXIT_INPUT;
    }
    if (max_pages && max_pages < n)
        n = (int)max_pages;
    char dir[] = "/tmp/docproc-bench-XXXXXX";
    if (!mkdtemp(dir)) {
        DP_LOG_ERROR("cannot create a temporary directory: %s", strerror(errno));
        return DP_EXIT_OUTPUT;
    }
    double best_ours = -1, best_render = -1, best_ppm = -1;
    long long px = 0;
    int rc = DP_EXIT_OK;
    for (long r = 0; r < runs && rc == DP_EXIT_OK; r++) {
        double t = run_docproc(input, &o, n, dir, false, &px);
        double u = t < 0 ? -1 : run_docproc(input, &o, n, dir, true, &px);
        dp_cli_remove_flat_dir(dir);
        if (t < 0 || u < 0 || mkdir(dir, 0700) != 0) {
            rc = DP_EXIT_INPUT;
            break;
        }
        best_render = best_render < 0 || t < best_render ? t : best_render;
        best_ours = best_ours < 0 || u < best_ours ? u : best_ours;
        if (with_pdftoppm) {
            double p = run_pdftoppm(input, o.dpi, n, dir);
            dp_cli_remove_flat_dir(dir);
            mkdir(dir, 0700);
            if (p >= 0)
                best_ppm = best_ppm < 0 || p < best_ppm ? p : best_ppm;
        }
    }
    dp_cli_remove_flat_dir(dir);
    if (rc != DP_EXIT_OK)
        return rc;
    printf("input      %s (%d pages, dpi %g, budget %lld..%lld px, best of %ld)\n", input, n,
           o.dpi, (long long)o.min_pixels, (long long)o.max_pixels, runs);
    printf("docproc    render only   %8.2f pages/s  (%.1f Mpx/page)\n", n / best_render,
           (double)px / n / 1e6);
    printf("docproc    render + png  %8.2f pages/s\n", n / best_ours);
    if (best_ppm > 0)
        printf("pdftoppm   -r %g -png    %8.2f pages/s\n", o.dpi, n / best_ppm);
    else
        printf("pdftoppm   not available\n");
    return DP_EXIT_OK;
}
