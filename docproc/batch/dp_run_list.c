/* The document list of a batch run: documents from a raw bundle (--from-raw), the output stem
 * of every document, and what an interrupted earlier run left behind in the output folder.
 * Called by dp_run.c before the documents are processed; not thread-safe. */
#include "dp_run_impl.h"
#include "ex_cons.h"
#include "dp_alloc.h"
#include "dp_buf.h"
#include "dp_fs.h"
#include "dp_limits.h"
#include "dp_log.h"
#include "dp_out.h"
#include "dp_out_pdf.h"
#include "ex_olmocr.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum dp_status dp__run_docs_from_raw(struct dp_run *r, struct dp_err *err) {
    enum dp_status st = dp_raw_read(&r->raw, r->o->from_raw, err);
    if (st != DP_OK)
        return st;
    if (!r->raw->n_docs)
        return dp_err_set(err, DP_ERR_FORMAT, "%s: no raw answers found (expected <stem>/raw/)",
                          r->o->from_raw);
    for (size_t i = 0; i < r->raw->n_docs && st == DP_OK; i++) {
        const struct dp_raw_doc *rd = &r->raw->docs[i];
        st = dp_inputs_add(&r->docs, rd->source ? rd->source : rd->stem, rd->stem, err);
        if (st != DP_OK)
            break;
        struct dp_input *d = &r->docs.items[r->docs.n - 1];
        d->kind = "raw";
        d->src_index = (long)i;
        if (rd->err.code != DP_OK) { /* broken pages.json or answers: this document fails */
            dp_input_fail(d, rd->err.code, rd->err.msg);
            continue;
        }
        /* The input of a re-extraction is the set of answers: hash them in page order. */
        struct dp_buf b;
        dp_buf_init(&b, DP_MAX_TEXT_BYTES);
        for (size_t p = 0; p < rd->n_pages; p++) {
            dp_buf_appendf(&b, "page %d %zu\n", rd->pages[p].number, rd->pages[p].len);
            dp_buf_append(&b, rd->pages[p].text, rd->pages[p].len);
        }
        if (b.status != DP_OK)
            dp_input_fail(d, b.status, "raw answers too large to hash");
        else
            dp_sha256_hex(d->sha256, b.data ? b.data : "", b.len);
        d->size = (int64_t)b.len;
        dp_buf_free(&b);
    }
    return st;
}

static int cmp_stem(const void *a, const void *b) {
    const struct dp_input *x = *(const struct dp_input *const *)a;
    const struct dp_input *y = *(const struct dp_input *const *)b;
    int c = strcmp(x->stem, y->stem);
    return c ? c : (x > y) - (x < y);
}

/* Top-level names of the output directory that are not a document's (a stem whose first
 * component is one of them is renamed, see first_component_free). */
static const char *const RESERVED_TOP[] = {"review", "review.jsonl", "manifest.json"};

/* stem with suffix "-<8 hex of SHA-256(key)>" appended to its first component (whole = false)
 * or to the whole stem; NULL when out of memory. */
static char *suffixed(const char *stem, const char *key, bool whole) {
    char h[DP_SHA256_HEX_LEN + 1];
    dp_sha256_hex(h, key, strlen(key));
    const char *slash = whole ? NULL : strchr(stem, '/');
    size_t head = slash ? (size_t)(slash - stem) : strlen(stem);
    struct dp_buf b;
    dp_buf_init(&b, PATH_BYTES);
    dp_buf_appendf(&b, "%.*s-%.*s%s", (int)head, stem, STEM_HASH_CHARS, h, stem + head);
    if (b.status != DP_OK) {
        dp_buf_free(&b);
        return NULL;
    }
    return dp_buf_steal(&b, NULL);
}

static enum dp_status replace_stem(struct dp_input *d, char *s, struct dp_err *err) {
    if (!s)
        return dp_err_set(err, DP_ERR_NOMEM, "%s: out of memory", d->rel);
    dp_free(d->stem);
    d->stem = s;
    return DP_OK;
}

/* The stem of a name: the name's path sanitised per component, the input tree kept
 * ("sub/x.pdf"); a path too long for a bundle is flattened ("sub_x.pdf"); a first component
 * that names one of the run's own top-level files gets a suffix. */
static char *stem_of(const char *rel) {
    char *s = dp_out_sanitize_path(rel);
    if (s && strlen(s) > DP_OUT_MAX_STEM - STEM_HASH_CHARS - 2) {
        dp_free(s);
        s = dp_out_sanitize_name(rel);
    }
    for (size_t k = 0; s && k < sizeof RESERVED_TOP / sizeof *RESERVED_TOP; k++) {
        size_t n = strlen(RESERVED_TOP[k]);
        if (!strncmp(s, RESERVED_TOP[k], n) && (s[n] == '/' || !s[n])) {
            char *r = suffixed(s, RESERVED_TOP[k], false);
            dp_free(s);
            s = r;
            break;
        }
    }
    return s;
}

static int cmp_stem_str(const void *key, const void *elem) {
    return strcmp((const char *)key, (*(const struct dp_input *const *)elem)->stem);
}

/* Unique output stems (the input tree kept under OUT): the sanitised path, plus a hash of the
 * name when two collide, or when a document's folder would hold another's ("a.pdf" and
 * "a.pdf/b.png": the outer one is renamed). Computed before sharding so every worker names
 * every document alike. */
enum dp_status dp__run_assign_stems(struct dp_inputs *l, struct dp_err *err) {
    for (int i = 0; i < l->n; i++) {
        l->items[i].stem = stem_of(l->items[i].rel);
        if (!l->items[i].stem)
            return dp_err_set(err, DP_ERR_NOMEM, "%s: out of memory", l->items[i].rel);
    }
    /* sort by stem; within a run of equal stems every differently named entry gets a suffix */
    struct dp_input **v = dp_reallocarray(NULL, (size_t)(l->n ? l->n : 1), sizeof *v);
    if (!v)
        return dp_err_set(err, DP_ERR_NOMEM, "out of memory naming outputs");
    for (int i = 0; i < l->n; i++)
        v[i] = &l->items[i];
    qsort(v, (size_t)l->n, sizeof *v, cmp_stem);
    enum dp_status st = DP_OK;
    for (int i = 0; i < l->n && st == DP_OK;) {
        int j = i + 1;
        while (j < l->n && !strcmp(v[j]->stem, v[i]->stem))
            j++;
        for (int k = i; j - i > 1 && k < j && st == DP_OK; k++)
            st = replace_stem(v[k], suffixed(v[k]->stem, v[k]->rel, true), err);
        i = j;
    }
    /* a stem that is a folder of another stem: the outer document is renamed */
    if (st == DP_OK)
        qsort(v, (size_t)l->n, sizeof *v, cmp_stem);
    bool *outer = st == DP_OK ? dp_calloc((size_t)(l->n ? l->n : 1), sizeof *outer) : NULL;
    if (st == DP_OK && !outer)
        st = dp_err_set(err, DP_ERR_NOMEM, "out of memory naming outputs");
    char dir[PATH_BYTES];
    for (int i = 0; i < l->n && st == DP_OK; i++) {
        const char *s = v[i]->stem;
        for (const char *p = strchr(s, '/'); p; p = strchr(p + 1, '/')) {
            snprintf(dir, sizeof dir, "%.*s", (int)(p - s), s);
            struct dp_input **hit = bsearch(dir, v, (size_t)l->n, sizeof *v, cmp_stem_str);
            if (hit)
                outer[hit - v] = true;
        }
    }
    for (int i = 0; i < l->n && st == DP_OK; i++)
        if (outer[i])
            st = replace_stem(v[i], suffixed(v[i]->stem, v[i]->rel, true), err);
    dp_free(outer);
    dp_free(v);
    return st;
}

/* Whether name (len bytes) is stem flattened as dp__stage_name writes it ('/' -> '+'). */
static bool flat_eq(const char *stem, const char *name, size_t len) {
    if (strlen(stem) != len)
        return false;
    for (size_t i = 0; i < len; i++)
        if (name[i] != (stem[i] == '/' ? '+' : stem[i]))
            return false;
    return true;
}

void dp__stage_name(char *out, size_t cap, const char *what, const char *stem) {
    int k = snprintf(out, cap, ".%s-%ld-", what, (long)getpid());
    for (size_t i = 0; k >= 0 && (size_t)k + 1 < cap && stem[i]; i++)
        out[k++] = stem[i] == '/' ? '+' : stem[i]; /* '+' is never in a sanitised component */
    if (k >= 0 && (size_t)k < cap)
        out[k] = '\0';
}

/* The document of this run whose stem is the first len bytes of name (flattened), or -1. */
static int doc_by_stem(const struct dp_run *r, const char *name, size_t len) {
    for (int i = 0; i < r->docs.n; i++)
        if (flat_eq(r->docs.items[i].stem, name, len))
            return i;
    return -1;
}

/* Whether a top-level entry of the output directory is what a killed run of this one left:
 * staging (".stage-PID-STEM", ".old-PID-STEM") of its documents, a temporary of its manifest
 * (dp_atomic_is_stale_tmp) or of a document's zip (dp_bundle_zip_tmp_len). Entries of a
 * process that is still running are never leftovers. */
static bool is_leftover(const struct dp_run *r, const char *n) {
    const char *rest = !strncmp(n, ".stage-", 7) ? n + 7 : !strncmp(n, ".old-", 5) ? n + 5 : NULL;
    if (rest) {
        char *dash;
        long pid = strtol(rest, &dash, 10);
        return *dash == '-' &&
               (doc_by_stem(r, dash + 1, strlen(dash + 1)) >= 0 ||
                !strcmp(dash + 1, "review")) && /* OUT/review's staging (dp_review.c) */
               !dp_pid_running_other(pid);
    }
    if (dp_atomic_is_stale_tmp(n, dp_path_basename(r->manifest_path)))
        return true;
    size_t zl = dp_bundle_zip_tmp_len(n);
    return zl > strlen(".zip") && doc_by_stem(r, n, zl - strlen(".zip")) >= 0;
}

/* Removes what an interrupted run left in the output directory (is_leftover). */
void dp__run_clean_stale(struct dp_run *r) {
    DIR *dh = opendir(r->out_dir);
    if (!dh)
        return;
    char path[PATH_BYTES];
    for (struct dirent *de = readdir(dh); de; de = readdir(dh)) {
        struct dp_err e = {0};
        if (!is_leftover(r, de->d_name) ||
            dp__path_join(path, sizeof path, r->out_dir, de->d_name, &e) != DP_OK)
            continue;
        DP_LOG_INFO("%s: removing an unfinished output from an interrupted run", path);
        dp__rmtree(path, &e);
    }
    closedir(dh);
}

