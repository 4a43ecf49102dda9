/* OOM torture of dpbatch (as test_extract_oom does for the extractors and test_vl_oom for libvl):
 * runs of the batch engine in-process (dp_batch_run) with the N-th dp_ allocation failing, for
 * N = 1, 2, ... until a run needs no failure — `extract --from-raw` of one document (receipt
 * schema; JSON, XML and CSV files, JSON Lines on stdout) and `batch --merge` of two shard
 * manifests. A failing run must end cleanly: DP_ERR_NOMEM returned, or the document recorded as
 * failed with the out-of-memory code (a document's failure is counted, not returned); never a
 * crash, and never a run reported complete whose files or stdout differ from the reference run
 * (a record or file silently dropped). ASan/LSan (the sanitizer build) prove the error paths
 * free what they took. */
#include "t.h"

#include "dp_alloc.h"
#include "dp_batch.h"
#include "dp_buf.h"
#include "dp_fs.h"
#include "dp_limits.h"
#include "dp_log.h"
#include "dp_out.h"

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define OOM_MAX_RUNS 20000 /* more failure points than any run below makes */
#define ROOT_CAP     512  /* the temporary and source directories */
#define PATH_CAP     1024 /* a path below them */

static char tmp[ROOT_CAP];
static char src_dir[ROOT_CAP];

/* ---- helpers --------------------------------------------------------------------------------- */

static void rm_rf(const char *path) {
    struct stat sb;
    if (lstat(path, &sb) != 0)
        return;
    if (S_ISDIR(sb.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        while (d && (e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            char p[PATH_CAP];
            snprintf(p, sizeof p, "%s/%s", path, e->d_name);
            rm_rf(p);
        }
        if (d)
            closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Appends every regular file under dir (sorted by path; relative name, then contents) to out;
 * with outputs_only, not the run's own records (manifest.json, .docproc/: they hold timings). */
static void collect(struct dp_buf *out, const char *dir, const char *rel, bool outputs_only) {
    char path[PATH_CAP];
    snprintf(path, sizeof path, "%s%s%s", dir, *rel ? "/" : "", rel);
    DIR *d = opendir(path);
    if (!d)
        return;
    char *names[256];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 256)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
            !(outputs_only && (e->d_name[0] == '.' || !strcmp(e->d_name, "manifest.json"))))
            names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    for (int i = 0; i < n; i++) {
        char r[PATH_CAP], p[2 * PATH_CAP];
        snprintf(r, sizeof r, "%s%s%s", rel, *rel ? "/" : "", names[i]);
        snprintf(p, sizeof p, "%s/%s", dir, r);
        struct stat sb;
        if (stat(p, &sb) == 0 && S_ISDIR(sb.st_mode)) {
            collect(out, dir, r, outputs_only);
        } else {
            char *data = NULL;
            size_t len = 0;
            struct dp_err err = {0};
            dp_buf_appendf(out, "== %s\n", r);
            if (dp_file_read(p, DP_MAX_FILE_BYTES, &data, &len, &err) == DP_OK)
                dp_buf_append(out, data, len);
            dp_free(data);
        }
        free(names[i]);
    }
}

/* The stdout records of a run, kept with the C library's allocator: the hook fails dp_ allocations
 * only, so a failure point is always the code under test, never this capture. */
struct text {
    char *data;
    size_t len;
};

static void on_emit(enum dp_batch_stream s, const char *line, void *user) {
    struct text *t = user;
    size_t n = strlen(line);
    char *p = s == DP_BATCH_STDOUT ? realloc(t->data, t->len + n + 1) : NULL;
    if (!p)
        return;
    memcpy(p + t->len, line, n + 1);
    t->data = p;
    t->len += n;
}

/* What one run left: its status, summary, stdout records and the files under its directory. */
struct outcome {
    long left; /* the hook's countdown left after the run: > 0 = the failure never happened */
    enum dp_status st;
    struct dp_batch_summary sum;
    struct dp_err err;
    struct text stdout_text;
    struct dp_buf files;
};

typedef void (*run_fn)(struct outcome *out);

static void outcome_free(struct outcome *o) {
    free(o->stdout_text.data);
    dp_buf_free(&o->files);
}

static void batch_opts(struct dp_batch_opts *o, enum dp_batch_cmd cmd, struct text *stdout_text) {
    memset(o, 0, sizeof *o);
    o->cmd = cmd;
    o->shard_k = o->shard_n = 1;
    o->jobs = 1;
    o->csv = dp_csv_opts_default();
    o->review_threshold = DP_BATCH_DEFAULT_REVIEW_THRESHOLD;
    dp_ingest_opts_init(&o->ingest);
    o->gen.max_new_tokens = DP_BATCH_DEFAULT_MAX_NEW_TOKENS;
    o->gen.threads = 1;
    o->gen.weights = o->gen.vision_weights = -1;
    o->progress = DP_PROGRESS_OFF;
    o->verbosity = -1;
    o->emit = on_emit;
    o->emit_user = stdout_text;
}

/* ---- the runs -------------------------------------------------------------------------------- */

/* extract --from-raw samples/raw/ocr_example3-kie --schema receipt -o OUT --format json,xml,csv
 * --json */
static void run_extract(struct outcome *out) {
    char raw[PATH_CAP], dir[PATH_CAP];
    snprintf(raw, sizeof raw, "%s/samples/raw/ocr_example3-kie", src_dir);
    snprintf(dir, sizeof dir, "%s/extract", tmp);
    rm_rf(dir);
    struct dp_batch_opts o;
    batch_opts(&o, DP_BATCH_CMD_EXTRACT, &out->stdout_text);
    o.schema = "receipt";
    o.from_raw = raw;
    o.output = dir;
    o.formats = DP_OUT_JSON | DP_OUT_XML | DP_OUT_CSV;
    o.json_stdout = true;
    out->st = dp_batch_run(&o, &out->sum, &out->err);
    out->left = dp_alloc_fail_after(0);
    collect(&out->files, dir, "", true);
}

/* batch --merge OUT shard-1/manifest-1-of-2.json shard-2/manifest-2-of-2.json (made once, below) */
static void run_merge(struct outcome *out) {
    char m1[PATH_CAP], m2[PATH_CAP], dir[PATH_CAP], merged[2 * PATH_CAP];
    snprintf(m1, sizeof m1, "%s/shard-1/manifest-1-of-2.json", tmp);
    snprintf(m2, sizeof m2, "%s/shard-2/manifest-2-of-2.json", tmp);
    snprintf(dir, sizeof dir, "%s/merge", tmp);
    snprintf(merged, sizeof merged, "%s/manifest.json", dir);
    rm_rf(dir);
    mkdir(dir, 0755);
    char *inputs[2] = {m1, m2};
    struct dp_batch_opts o;
    batch_opts(&o, DP_BATCH_CMD_BATCH, &out->stdout_text);
    o.merge_out = merged;
    o.inputs = inputs;
    o.n_inputs = 2;
    out->st = dp_batch_run(&o, &out->sum, &out->err);
    out->left = dp_alloc_fail_after(0);
    collect(&out->files, dir, "", false);
}

/* batch --from-raw samples/raw --schema layout -o tmp/shard-K --shard K/2: the merge's inputs. */
static bool make_shards(void) {
    char raw[PATH_CAP];
    snprintf(raw, sizeof raw, "%s/samples/raw", src_dir);
    bool ok = true;
    for (int k = 1; k <= 2; k++) {
        char dir[PATH_CAP];
        snprintf(dir, sizeof dir, "%s/shard-%d", tmp, k);
        struct text text = {0};
        struct dp_batch_opts o;
        batch_opts(&o, DP_BATCH_CMD_BATCH, &text);
        o.schema = "layout";
        o.from_raw = raw;
        o.output = dir;
        o.formats = DP_OUT_JSON;
        o.shard_k = k;
        o.shard_n = 2;
        struct dp_batch_summary sum = {0};
        struct dp_err err = {0};
        enum dp_status st = dp_batch_run(&o, &sum, &err);
        T_CHECK_MSG(st == DP_OK && sum.n_ok > 0 && sum.n_failed == 0, "shard %d: %d %s", k, st,
                    err.msg);
        ok = ok && st == DP_OK;
        free(text.data);
    }
    return ok;
}

/* Fails allocation n = 1, 2, ... of run until a run needs no failure (its outcome equals the
 * reference); every other run must report the failure cleanly. */
static void torture(const char *name, run_fn run, int min_points) {
    struct outcome ref = {0};
    dp_buf_init(&ref.files, DP_MAX_TEXT_BYTES);
    run(&ref);
    T_CHECK_MSG(ref.st == DP_OK && ref.sum.n_failed == 0 && ref.files.len > 0,
                "%s: reference run: %d %s (%d failed)", name, ref.st, ref.err.msg,
                ref.sum.n_failed);
    int nomem = 0, doc_failed = 0;
    long n;
    for (n = 1; n <= OOM_MAX_RUNS; n++) {
        struct outcome o = {0};
        dp_buf_init(&o.files, DP_MAX_TEXT_BYTES);
        dp_alloc_fail_after(n);
        run(&o); /* disarms the hook before collecting */
        bool done = o.st == DP_OK && o.sum.n_failed == 0;
        bool same = done && o.stdout_text.len == ref.stdout_text.len &&
                    (!ref.stdout_text.len ||
                     !memcmp(o.stdout_text.data, ref.stdout_text.data, ref.stdout_text.len)) &&
                    o.files.len == ref.files.len &&
                    !memcmp(o.files.data, ref.files.data, ref.files.len);
        bool stop = false;
        if (o.left > 0) { /* n is past the run's last allocation: the run must be the reference */
            T_CHECK_MSG(same, "%s: a run with no failing allocation differs from the reference",
                        name);
            stop = true;
        } else if (same) {
            ; /* a failure the run recovers from without a trace: allowed */
        } else if (done) {
            T_FAIL_AT("%s: allocation %ld failed silently: the run completed with output that "
                      "differs from the reference", name, n);
            stop = true;
        } else if (o.st == DP_ERR_NOMEM) {
            nomem++;
        } else if (o.st == DP_OK && o.sum.n_failed > 0) {
            /* a document failed: its record must say why */
            if (!o.stdout_text.data || !strstr(o.stdout_text.data, "out of memory")) {
                T_FAIL_AT("%s: allocation %ld: a document failed without an out-of-memory "
                          "record:\n%s", name, n, o.stdout_text.data ? o.stdout_text.data : "");
                stop = true;
            }
            doc_failed++;
        } else {
            T_FAIL_AT("%s: allocation %ld: status %d (%s), expected out of memory", name, n, o.st,
                      o.err.msg);
            stop = true;
        }
        outcome_free(&o);
        if (stop)
            break;
    }
    T_CHECK_MSG(n <= OOM_MAX_RUNS, "%s: no run completed within %d failing allocations", name,
                OOM_MAX_RUNS);
    T_CHECK_MSG(nomem + doc_failed >= min_points, "%s: only %d failure points", name,
                nomem + doc_failed);
    printf("%s: %d failing allocations exercised (%d returned out of memory, %d failed the "
           "document)\n", name, nomem + doc_failed, nomem, doc_failed);
    outcome_free(&ref);
}

static void extract_from_raw(void) {
    torture("extract --from-raw", run_extract, 50);
}

static void merge_manifests(void) {
    if (make_shards())
        torture("batch --merge", run_merge, 3);
}

int main(int argc, char **argv) {
    t_args(argc, argv);
    const char *root = getenv("DP_SOURCE_DIR");
    snprintf(src_dir, sizeof src_dir, "%s", root ? root : ".");
    setenv("SOURCE_DATE_EPOCH", "1700000000", 1); /* the stamp's "created": equal across runs */
    dp_log_set_level(DP_LOG_ERROR);
    snprintf(tmp, sizeof tmp, "%s", "/tmp/dp_batch_oom_XXXXXX");
    if (!mkdtemp(tmp)) {
        T_FAIL_AT("mkdtemp failed");
        return t_done();
    }
    T_RUN(extract_from_raw);
    T_RUN(merge_manifests);
    rm_rf(tmp);
    return t_done();
}
