/* `docproc batch`: unattended processing of a document tree with a manifest, --resume and
 * --shard (docs/batch.md). Also holds the CLI glue shared with `extract` and `tables`
 * (dp_cmd_batch_common): option parsing, signal handling, output sinks and the exit code.
 * Not thread-safe (signal flag and getopt globals); runs on main's thread. */
#include "dp_cli.h"
#include "dp_batch_opts.h"
#include "dp_alloc.h"
#include "dp_log.h"
#include "dp_batch.h"
#include "dp_vl.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

static volatile sig_atomic_t g_cancel;

static void on_signal(int sig) {
    (void)sig;
    g_cancel = 1;
}

static void emit(enum dp_batch_stream s, const char *text, void *user) {
    (void)user;
    FILE *fp = s == DP_BATCH_STDOUT ? stdout : stderr;
    if (s == DP_BATCH_PROGRESS) {
        flockfile(stderr); /* the progress line and dp_log's clearing of it stay in order */
        fputs(text, fp);
        fflush(fp);
        size_t n = strlen(text);
        dp_log_progress_line(n > 0 && text[n - 1] != '\n');
        funlockfile(stderr);
        return;
    }
    fputs(text, fp);
    fflush(fp);
}

/* "docproc batch: 3 documents: 2 ok (1 reused; 1 recomputed: settings changed), 1 failed;
 * 2 files skipped; 9 pages (...)" */
static void print_summary(const char *name, const struct dp_batch_summary *s) {
    char redo[256] = "";
    size_t n = 0;
    if (s->n_redone) {
        n += (size_t)snprintf(redo, sizeof redo, "; %d recomputed:", s->n_redone);
        const char *sep = " ";
        for (int r = DP_REDO_INPUT; r < DP_REDO_N_REASONS && n < sizeof redo; r++) {
            if (!s->n_redo[r])
                continue;
            n += (size_t)snprintf(redo + n, sizeof redo - n, "%s%d %s", sep, s->n_redo[r],
                                  dp_redo_str((enum dp_redo)r));
            sep = ", ";
        }
    }
    char skipped[64] = "";
    if (s->n_skipped)
        snprintf(skipped, sizeof skipped, "; %d file%s skipped (not documents)", s->n_skipped,
                 s->n_skipped == 1 ? "" : "s");
    char tables[96] = "";
    if (s->tables)
        snprintf(tables, sizeof tables, "; %d table%s found, %d document%s without a table",
                 s->n_tables, s->n_tables == 1 ? "" : "s", s->n_docs_no_table,
                 s->n_docs_no_table == 1 ? "" : "s");
    fprintf(stderr,
            "docproc %s: %d document%s: %d ok (%d reused%s), %d failed%s; %lld page%s (%lld "
            "blank, %lld truncated)%s in %.1fs\n",
            name, s->n_total, s->n_total == 1 ? "" : "s", s->n_ok, s->n_reused, redo, s->n_failed,
            skipped, (long long)s->pages, s->pages == 1 ? "" : "s", (long long)s->pages_blank,
            (long long)s->pages_truncated, tables, s->wall_s);
}

int dp_cmd_batch_common(enum dp_batch_cmd cmd, int argc, char **argv) {
    const char *name = argv[0];
    struct dp_batch_opts o;
    dp_batch_opts_init(&o, cmd);
    struct dp_err err = {0};
    bool help = false;
    if (dp_batch_opts_parse(&o, argc, argv, &help, &err) != DP_OK) {
        dp_batch_opts_free(&o);
        if (err.code == DP_ERR_NOMEM) {
            fprintf(stderr, "docproc %s: %s\n", name, err.msg);
            return DP_EXIT_INTERNAL;
        }
        return dp_cli_usage_error(name, "%s", err.msg);
    }
    if (help) {
        char *h = dp_batch_opts_help(&o);
        if (h)
            fputs(h, stdout);
        dp_free(h);
        dp_batch_opts_free(&o);
        return DP_EXIT_OK;
    }
    static const enum dp_log_level levels[] = {DP_LOG_ERROR, DP_LOG_WARN, DP_LOG_INFO,
                                               DP_LOG_DEBUG};
    int lv = o.verbosity + 1; /* -q: errors only; default: warnings; -v: info; -vv: debug */
    dp_log_set_level(levels[lv < 0 ? 0 : lv > 3 ? 3 : lv]);
    dp_vl_log_route(); /* libvl's lines: same sink and -q/-v as ours (STYLE 2.6) */
    o.cancel = &g_cancel;
    o.emit = emit;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    struct dp_batch_summary sum;
    enum dp_status st = dp_batch_run(&o, &sum, &err);
    int rc;
    if (st == DP_OK) {
        if (!o.merge_out && o.verbosity >= 0)
            print_summary(name, &sum);
        rc = sum.n_failed ? DP_EXIT_SOME_FAILED : DP_EXIT_OK;
    } else {
        fprintf(stderr, "docproc %s: %s\n", name, err.msg[0] ? err.msg : dp_status_str(st));
        switch (st) {
        case DP_ERR_USAGE: rc = DP_EXIT_USAGE; break;
        case DP_ERR_MODEL:
        case DP_ERR_SCHEMA: rc = DP_EXIT_LOAD; break;
        case DP_ERR_CANCELLED: rc = DP_EXIT_INTERRUPTED; break;
        case DP_ERR_INTERNAL: rc = DP_EXIT_INTERNAL; break;
        default: rc = sum.input_failed ? DP_EXIT_INPUT : DP_EXIT_OUTPUT; break;
        }
    }
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    dp_batch_opts_free(&o);
    return rc;
}

int dp_cmd_batch(int argc, char **argv) {
    return dp_cmd_batch_common(DP_BATCH_CMD_BATCH, argc, argv);
}
