/* dp_batch_run: the per-run driver. Builds the document list (discovery or a raw bundle), names,
 * shards, hashes and resumes it, then for each document gets the page answers (model pipeline
 * or --from-raw), extracts, writes the outputs atomically (a staged folder renamed into place,
 * zips via libzip's temporary + rename), appends the journal record, and finally writes the
 * manifest. A failed document is recorded and the run goes on.
 * Not thread-safe: one run per call; the model pipeline's threads live in dp_infer.c. */
#include "dp_batch_impl.h"
#include "ex_cons.h"
#include "../base/dp_alloc.h"
#include "../base/dp_buf.h"
#include "../base/dp_fs.h"
#include "../base/dp_limits.h"
#include "../base/dp_log.h"
#include "../out/dp_out.h"
#include "../out/dp_out_pdf.h"
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

#define PATH_BYTES 4096
#define STEM_HASH_CHARS 8

struct run {
    const struct dp_batch_opts *o;
    struct sc_schema *schema;
    struct ex_gram *gram;      /* --constrain: compiled answer contract, until the model takes it */
    struct dp_inputs docs;
    struct dp_raw_set *raw;
    struct dp_infer *inf;
    struct dp_pwfile pw;
    struct dp_journal journal;
    bool have_journal;
    struct dp_bundle *zip_all; /* extract -o BUNDLE.zip */
    const char *out_dir;       /* directory output or NULL */
    char journal_path[PATH_BYTES], manifest_path[PATH_BYTES], digest_path[PATH_BYTES];
    bool out_created;          /* the output directory exists (made or found by this run) */
    char model_digest[DP_SHA256_HEX_LEN + 1]; /* of the checkpoint's files; "" for --from-raw */
    char *digest_cache;        /* the per-file digests to keep beside the journal */
    struct dp_raw_set *kept;   /* raw answers kept in the output directory (from_kept_raw) */
    struct dp_progress prog;
    const char *model_id;
    int n_tables;
    /* --from-raw with --jobs N: workers share the list; mu guards the journal, stdout,
     * progress, the shared zip and n_tables */
    pthread_mutex_t mu;
    atomic_int next;
    atomic_int worker_status; /* enum dp_status of the first failed worker */
};

const char *dp_batch_no_model_help(void) {
    return "no model configured: give --model DIR or set DOCPROC_MODEL=DIR. Download the published "
           "checkpoint with 'huggingface-cli download Qwen/Qwen2.5-VL-3B-Instruct --local-dir "
           "models/Qwen2.5-VL-3B-Instruct' (or -7B-Instruct; see docs/models.md), or re-extract "
           "saved answers without a model with --from-raw BUNDLE_OR_DIR";
}

char *dp__answer_dup(const char *s, size_t n) {
    size_t sz = 0;
    char *d = dp_size_add(&sz, n, 1) ? dp_malloc(sz) : NULL;
    if (!d)
        return NULL;
    if (n)
        memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

void dp__answers_free(struct dp_answers *a) {
    for (int i = 0; i < a->n; i++) {
        dp_free(a->pages[i].text);
        dp_free(a->pages[i].confs);
    }
    DP_FREE(a->pages);
    a->n = a->cap = 0;
}

enum dp_status dp__answers_add(struct dp_answers *a, const struct dp_page_answer *p,
                               struct dp_err *err) {
    if (a->n == a->cap) {
        int cap = a->cap ? a->cap * 2 : 8;
        struct dp_page_answer *v = dp_reallocarray(a->pages, (size_t)cap, sizeof *v);
        if (!v) {
            dp_free(p->text);
            return dp_err_set(err, DP_ERR_NOMEM, "out of memory keeping page answers");
        }
        a->pages = v;
        a->cap = cap;
    }
    a->pages[a->n++] = *p;
    return DP_OK;
}

static enum dp_status path_join(char *out, size_t n, const char *a, const char *b,
                                struct dp_err *err) {
    int w = snprintf(out, n, "%s/%s", a, b);
    if (w < 0 || (size_t)w >= n)
        return dp_err_set(err, DP_ERR_LIMIT, "%s/%s: path longer than %zu bytes", a, b, n - 1);
    return DP_OK;
}

/* ---- document list ------------------------------------------------------------------------ */

static enum dp_status docs_from_raw(struct run *r, struct dp_err *err) {
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

/* Unique output stems: the sanitised name, plus a hash of the name when two collide. Computed
 * before sharding so every worker names every document alike. */
static enum dp_status assign_stems(struct dp_inputs *l, struct dp_err *err) {
    for (int i = 0; i < l->n; i++) {
        l->items[i].stem = dp_out_sanitize_name(l->items[i].rel);
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
        for (int k = i; j - i > 1 && k < j && st == DP_OK; k++) {
            char h[DP_SHA256_HEX_LEN + 1];
            dp_sha256_hex(h, v[k]->rel, strlen(v[k]->rel));
            struct dp_buf b;
            dp_buf_init(&b, PATH_BYTES);
            dp_buf_appendf(&b, "%s-%.*s", v[k]->stem, STEM_HASH_CHARS, h);
            if (b.status != DP_OK) {
                dp_buf_free(&b);
                st = dp_err_set(err, DP_ERR_NOMEM, "%s: out of memory", v[k]->rel);
                break;
            }
            dp_free(v[k]->stem);
            v[k]->stem = dp_buf_steal(&b, NULL);
        }
        i = j;
    }
    dp_free(v);
    return st;
}

/* The document of this run whose stem is the first len bytes of name, or -1. */
static int doc_by_stem(const struct run *r, const char *name, size_t len) {
    for (int i = 0; i < r->docs.n; i++)
        if (strlen(r->docs.items[i].stem) == len && !strncmp(name, r->docs.items[i].stem, len))
            return i;
    return -1;
}

/* Whether a top-level entry of the output directory is what a killed run of this one left:
 * staging (".stage-PID-STEM", ".old-PID-STEM") of its documents, a temporary of its manifest
 * (dp_atomic_is_stale_tmp) or of a document's zip (dp_bundle_zip_tmp_len). Entries of a
 * process that is still running are never leftovers. */
static bool is_leftover(const struct run *r, const char *n) {
    const char *rest = !strncmp(n, ".stage-", 7) ? n + 7 : !strncmp(n, ".old-", 5) ? n + 5 : NULL;
    if (rest) {
        char *dash;
        long pid = strtol(rest, &dash, 10);
        return *dash == '-' && doc_by_stem(r, dash + 1, strlen(dash + 1)) >= 0 &&
               !dp_pid_running_other(pid);
    }
    if (dp_atomic_is_stale_tmp(n, dp_path_basename(r->manifest_path)))
        return true;
    size_t zl = dp_bundle_zip_tmp_len(n);
    return zl > strlen(".zip") && doc_by_stem(r, n, zl - strlen(".zip")) >= 0;
}

/* Removes what an interrupted run left in the output directory (is_leftover). */
static void clean_stale(struct run *r) {
    DIR *dh = opendir(r->out_dir);
    if (!dh)
        return;
    char path[PATH_BYTES];
    for (struct dirent *de = readdir(dh); de; de = readdir(dh)) {
        struct dp_err e = {0};
        if (!is_leftover(r, de->d_name) ||
            path_join(path, sizeof path, r->out_dir, de->d_name, &e) != DP_OK)
            continue;
        DP_LOG_INFO("%s: removing an unfinished output from an interrupted run", path);
        dp__rmtree(path, &e);
    }
    closedir(dh);
}

/* ---- one document --------------------------------------------------------------------------- */

/* The raw answers a document is re-extracted from (--from-raw, or kept by an earlier run in its
 * output folder), or NULL when it goes through the model. */
static const struct dp_raw_doc *raw_doc_of(const struct run *r, const struct dp_input *d) {
    const struct dp_raw_set *set = r->raw ? r->raw : d->from_kept_raw ? r->kept : NULL;
    if (!set)
        return NULL;
    DP_ASSERT(d->src_index >= 0 && (size_t)d->src_index < set->n_docs);
    return &set->docs[d->src_index];
}

static enum dp_status raw_answers(struct run *r, int index, struct dp_answers *out,
                                  struct dp_err *err) {
    const struct dp_input *d = &r->docs.items[index];
    const struct dp_raw_doc *rd = raw_doc_of(r, d);
    for (size_t p = 0; p < rd->n_pages; p++) {
        struct dp_page_answer a = {0};
        a.number = rd->pages[p].number;
        a.text = dp__answer_dup(rd->pages[p].text, rd->pages[p].len);
        if (!a.text)
            return dp_err_set(err, DP_ERR_NOMEM, "%s: out of memory", d->rel);
        a.len = rd->pages[p].len;
        a.truncated = rd->pages[p].truncated;
        a.stop = rd->pages[p].stop;
        a.blank = a.len == 0;
        a.geom = rd->pages[p].geom;
        if (dp__answers_add(out, &a, err) != DP_OK)
            return DP_ERR_NOMEM;
    }
    return DP_OK;
}

static enum dp_status build_doc(struct run *r, struct dp_input *d, const struct dp_answers *a,
                                struct ex_doc **out, struct dp_err *err) {
    struct ex_doc *doc = NULL;
    enum dp_status st = ex_doc_new(&doc, d->path, err);
    if (st != DP_OK)
        return st;
    const struct dp_batch_opts *o = r->o;
    struct ex_stamp s = {
        .docproc_version = DP_VERSION,
        .model_id = r->model_id,
        .schema_name = r->schema->name,
        .schema_version = r->schema->version,
        .schema_hash = r->schema->hash,
        .prompt = r->schema->prompt,
        .dpi = (int)o->ingest.dpi,
        .max_pixels = (long)o->ingest.max_pixels,
        .max_new_tokens = o->gen.max_new_tokens,
        .seed = o->gen.seed,
        .threads = (int)o->gen.threads,
        .model_hash = r->model_digest[0] ? r->model_digest : NULL,
    };
    const struct dp_raw_doc *rd = raw_doc_of(r, d);
    if (rd) {
        /* Re-extraction: the answers were made by the model, prompt and settings recorded in
         * their pages.json stamp (left empty when the bundle has none); the schema and the
         * docproc version are this run's, which parse them. */
        const struct ex_stamp *rs = &rd->stamp;
        s.model_id = rs->model_id ? rs->model_id : r->model_id;
        s.model_hash = rs->model_hash;
        s.prompt = rs->prompt;
        s.dpi = rs->dpi;
        s.max_pixels = rs->max_pixels;
        s.max_new_tokens = rs->max_new_tokens;
        s.seed = rs->seed;
        s.threads = rs->threads;
    }
    st = ex_doc_set_stamp(doc, &s, err);
    if (st == DP_OK && d->sha256[0] && !r->raw) /* raw: the hash is of the answers, not a file */
        st = ex_doc_set_source_hash(doc, d->sha256, err);
    for (int i = 0; i < a->n && st == DP_OK; i++) {
        const struct dp_page_answer *p = &a->pages[i];
        struct ex_page *pg = NULL;
        enum ex_stop stop = p->blank && p->stop == EX_STOP_EOS ? EX_STOP_BLANK : p->stop;
        st = ex_page_parse(&pg, r->schema, p->text ? p->text : "", p->len, &p->geom, p->number,
                           stop, err);
        if (st == DP_OK && p->constrained) {
            pg->constrained = true;
            pg->n_forced = p->n_forced;
            pg->n_jumps = p->n_jumps;
            ex_page_apply_conf(pg, p->confs, p->n_confs);
        }
        if (st == DP_OK)
            st = ex_doc_add_page(doc, pg, err);
    }
    if (st == DP_OK)
        st = ex_doc_finish(doc, r->schema, err);
    if (st == DP_OK)
        st = ex_doc_review(doc, o->review_threshold, err);
    if (st != DP_OK) {
        ex_doc_free(doc);
        return st;
    }
    *out = doc;
    return DP_OK;
}

/* Stages <stem> in a hidden folder, then renames it into place (replacing an older copy). */
/* Adds <stem>/result.pdf when the PDF was made (pdf->len > 0). */
static enum dp_status add_pdf(struct dp_bundle *b, const char *stem, const struct dp_buf *pdf,
                              struct dp_err *err) {
    if (!pdf->len)
        return DP_OK;
    char name[PATH_BYTES];
    snprintf(name, sizeof name, "%s/result.pdf", stem);
    return dp_bundle_add_file(b, name, pdf->data, pdf->len, err);
}

static enum dp_status write_dir(struct run *r, struct dp_input *d, const struct ex_doc *doc,
                                const struct dp_buf *pdf, struct dp_err *err) {
    char stage[PATH_BYTES], staged[PATH_BYTES], target[PATH_BYTES], old[PATH_BYTES], name[PATH_BYTES];
    snprintf(name, sizeof name, ".stage-%ld-%s", (long)getpid(), d->stem);
    enum dp_status st = path_join(stage, sizeof stage, r->out_dir, name, err);
    if (st == DP_OK)
        st = path_join(staged, sizeof staged, stage, d->stem, err);
    if (st == DP_OK)
        st = path_join(target, sizeof target, r->out_dir, d->stem, err);
    snprintf(name, sizeof name, ".old-%ld-%s", (long)getpid(), d->stem);
    if (st == DP_OK)
        st = path_join(old, sizeof old, r->out_dir, name, err);
    if (st != DP_OK)
        return st;
    struct stat sb;
    bool exists = lstat(target, &sb) == 0;
    if (exists && !r->o->force && !r->o->resume)
        return dp_err_set(err, DP_ERR_IO, "%s: already exists (use --force to overwrite)", target);
    dp__rmtree(stage, NULL);
    unsigned formats = r->o->formats | DP_OUT_RAW;
    if (r->o->cmd == DP_BATCH_CMD_TABLES)
        formats &= ~(unsigned)DP_OUT_CSV; /* per-page CSVs replaced by the stitched tables */
    struct dp_bundle *b = NULL;
    st = dp_bundle_open(&b, stage, true, err);
    if (st == DP_OK)
        dp_bundle_set_csv(b, &r->o->csv);
    if (st == DP_OK)
        st = dp_bundle_add_doc(b, doc, d->stem, formats, err);
    if (st == DP_OK)
        st = add_pdf(b, d->stem, pdf, err);
    if (st == DP_OK)
        st = dp_bundle_commit(b, err);
    else if (b)
        dp_bundle_abort(b);
    if (st == DP_OK && r->o->cmd == DP_BATCH_CMD_TABLES) {
        char tdir[PATH_BYTES];
        int n = 0;
        st = path_join(tdir, sizeof tdir, staged, "stitched", err);
        if (st == DP_OK)
            st = dp_tables_write(doc, tdir, &r->o->csv, &n, err);
        pthread_mutex_lock(&r->mu);
        r->n_tables += n;
        pthread_mutex_unlock(&r->mu);
    }
    if (st == DP_OK && r->o->cmd == DP_BATCH_CMD_BATCH) /* appears atomically with the doc */
        st = dp__review_write_doc(doc, d->rel, staged, r->o->review_threshold, err);
    if (st == DP_OK && exists && rename(target, old) != 0)
        st = dp_err_set_errno(err, DP_ERR_IO, errno, "%s: cannot move the old output aside",
                              target);
    if (st == DP_OK && rename(staged, target) != 0)
        st = dp_err_set_errno(err, DP_ERR_IO, errno, "%s: cannot rename into place", target);
    if (exists)
        dp__rmtree(old, NULL);
    dp__rmtree(stage, NULL);
    if (st == DP_OK)
        st = dp_input_add_output(d, d->stem, err);
    return st;
}

static enum dp_status write_outputs(struct run *r, struct dp_input *d, const struct ex_doc *doc,
                                    struct dp_err *err) {
    struct dp_buf pdf;
    dp_buf_init(&pdf, DP_PDF_MAX_BYTES);
    enum dp_status st = DP_OK;
    if ((r->o->formats & DP_OUT_PDF) && (r->out_dir || r->zip_all))
        st = dp__archive_pdf(r->o, doc, &pdf, err);
    if (st == DP_OK && r->out_dir && r->o->zip_per_doc) {
        char zpath[PATH_BYTES], zname[PATH_BYTES];
        snprintf(zname, sizeof zname, "%s.zip", d->stem);
        st = path_join(zpath, sizeof zpath, r->out_dir, zname, err);
        struct dp_bundle *b = NULL;
        if (st == DP_OK)
            st = dp_bundle_open(&b, zpath, r->o->force || r->o->resume, err);
        if (st == DP_OK)
            dp_bundle_set_csv(b, &r->o->csv);
        if (st == DP_OK)
            st = dp_bundle_add_doc(b, doc, d->stem, r->o->formats | DP_OUT_RAW, err);
        if (st == DP_OK)
            st = add_pdf(b, d->stem, &pdf, err);
        if (st == DP_OK)
            st = dp_bundle_commit(b, err);
        else if (b)
            dp_bundle_abort(b);
        if (st == DP_OK)
            st = dp_input_add_output(d, zname, err);
    }
    if (st == DP_OK && r->out_dir && (r->o->formats || !r->o->zip_per_doc))
        st = write_dir(r, d, doc, &pdf, err);
    if (st == DP_OK && r->zip_all) {
        pthread_mutex_lock(&r->mu);
        st = dp_bundle_add_doc(r->zip_all, doc, d->stem, r->o->formats | DP_OUT_RAW, err);
        if (st == DP_OK)
            st = add_pdf(r->zip_all, d->stem, &pdf, err);
        pthread_mutex_unlock(&r->mu);
    }
    dp_buf_free(&pdf);
    return st;
}

/* One JSON Lines record on stdout: the compact result (extract) or the manifest record. */
static void emit_line(const struct run *r, const char *s) {
    if (r->o->emit)
        r->o->emit(DP_BATCH_STDOUT, s, r->o->emit_user);
}

static void print_result_line(const struct run *r, const struct ex_doc *doc) {
    struct dp_buf b;
    dp_buf_init(&b, DP_MAX_TEXT_BYTES);
    struct dp_err e = {0};
    if (dp_out_json(doc, &b, &e) == DP_OK && b.status == DP_OK) {
        json_t *j = json_loadb(b.data, b.len, 0, NULL);
        char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
        if (s) {
            emit_line(r, s);
            emit_line(r, "\n");
        }
        free(s);
        json_decref(j);
    }
    dp_buf_free(&b);
}

static void print_status_line(const struct run *r, const struct dp_input *d) {
    json_t *j = json_pack("{sssssssi}", "name", d->rel, "path", d->path, "status",
                          dp_input_state_str(d->state), "pages", d->pages);
    if (!j)
        return;
    if (d->state == DP_INPUT_FAILED) {
        json_object_set_new(j, "code", json_string(dp_status_str(d->code)));
        json_object_set_new(j, "error", json_string(d->error ? d->error : ""));
    }
    if (d->state == DP_INPUT_SKIPPED)
        json_object_set_new(j, "reason", json_string(d->error ? d->error : ""));
    char *s = json_dumps(j, JSON_COMPACT);
    if (s) {
        emit_line(r, s);
        emit_line(r, "\n");
    }
    free(s);
    json_decref(j);
}

static void process_doc(struct run *r, int index) {
    struct dp_input *d = &r->docs.items[index];
    double t0 = dp__now();
    struct dp_err err = {0};
    struct dp_answers a = {0};
    enum dp_status st = raw_doc_of(r, d) ? raw_answers(r, index, &a, &err)
                                          : dp__infer_doc(r->inf, index, &a, &r->prog, &err);
    struct ex_doc *doc = NULL;
    if (st == DP_OK) {
        d->pages = a.n;
        for (int i = 0; i < a.n; i++) {
            d->pages_blank += a.pages[i].blank;
            d->pages_truncated += a.pages[i].truncated;
            d->pages_repetition += a.pages[i].repetition;
            d->tokens_generated += a.pages[i].n_tokens;
        }
        double t1 = dp__now();
        st = build_doc(r, d, &a, &doc, &err);
        const struct ex_warning *bad = NULL;
        if (st == DP_OK && r->o->strict && !ex_doc_valid(doc, &bad))
            st = dp_err_set(&err, DP_ERR_INVALID, "--strict: %s%s%s", bad->path ? bad->path : "",
                            bad->path ? ": " : "", bad->msg);
        double t2 = dp__now();
        d->t.extract += t2 - t1;
        if (st == DP_OK)
            st = write_outputs(r, d, doc, &err);
        d->t.write += dp__now() - t2;
    }
    pthread_mutex_lock(&r->mu); /* publish: stdout, journal, log, progress */
    if (st == DP_OK) {
        d->state = DP_INPUT_OK;
        if (r->o->cmd == DP_BATCH_CMD_EXTRACT && (!r->o->output || r->o->json_stdout))
            print_result_line(r, doc); /* with -o the files are the output: stdout stays quiet */
    } else {
        if (st == DP_ERR_CANCELLED)
            d->state = DP_INPUT_PENDING;
        else {
            dp_err_prefix(&err, "%s", d->path);
            dp_input_fail(d, st, err.msg);
            DP_LOG_ERROR("%s", err.msg);
        }
    }
    d->t.total = dp__now() - t0;
    ex_doc_free(doc);
    dp__answers_free(&a);
    if (d->state == DP_INPUT_PENDING) {
        pthread_mutex_unlock(&r->mu);
        return;
    }
    if (r->o->json_stdout && r->o->cmd != DP_BATCH_CMD_EXTRACT)
        print_status_line(r, d);
    else if (r->o->cmd == DP_BATCH_CMD_EXTRACT && d->state == DP_INPUT_FAILED &&
             (!r->o->output || r->o->json_stdout))
        print_status_line(r, d);
    if (r->have_journal) {
        struct dp_err je = {0};
        if (dp_journal_append(&r->journal, d, &je) != DP_OK)
            DP_LOG_ERROR("%s", je.msg);
    }
    if (r->o->verbosity > 0)
        DP_LOG_INFO("%s: %d pages (%d blank, %d truncated), %lld tokens; rasterize %.2fs vision "
                    "%.2fs prefill %.2fs decode %.2fs extract %.3fs write %.3fs total %.2fs",
                    d->rel, d->pages, d->pages_blank, d->pages_truncated,
                    (long long)d->tokens_generated, d->t.rasterize, d->t.vision, d->t.prefill,
                    d->t.decode, d->t.extract, d->t.write, d->t.total);
    dp__progress_doc(&r->prog, d);
    pthread_mutex_unlock(&r->mu);
}

/* ---- the run -------------------------------------------------------------------------------- */

/* The output paths of the run; nothing is created yet (create_output does, once the run can
 * start: a run that cannot start leaves no trace). */
static enum dp_status plan_output(struct run *r, struct dp_err *err) {
    const struct dp_batch_opts *o = r->o;
    if (!o->output)
        return DP_OK;
    size_t n = strlen(o->output);
    if (o->cmd == DP_BATCH_CMD_EXTRACT && n >= 4 && !strcmp(o->output + n - 4, ".zip")) {
        struct stat sb;
        if (!o->force && stat(o->output, &sb) == 0)
            return dp_err_set(err, DP_ERR_IO, "%s: already exists (use --force to overwrite)",
                              o->output);
        return DP_OK;
    }
    r->out_dir = o->output;
    char jname[64], mname[64];
    if (o->shard_n > 1) {
        snprintf(jname, sizeof jname, ".docproc/journal-%d-of-%d.jsonl", o->shard_k, o->shard_n);
        snprintf(mname, sizeof mname, "manifest-%d-of-%d.json", o->shard_k, o->shard_n);
    } else {
        snprintf(jname, sizeof jname, ".docproc/journal.jsonl");
        snprintf(mname, sizeof mname, "manifest.json");
    }
    enum dp_status st = path_join(r->journal_path, sizeof r->journal_path, r->out_dir, jname, err);
    if (st == DP_OK)
        st = path_join(r->manifest_path, sizeof r->manifest_path, r->out_dir, mname, err);
    if (st == DP_OK)
        st = path_join(r->digest_path, sizeof r->digest_path, r->out_dir,
                       ".docproc/model-digest.json", err);
    return st;
}

/* Before any model work: the output can be written, and no pending document would overwrite
 * an existing output unless --force or --resume allow it. */
static enum dp_status preflight_output(struct run *r, struct dp_err *err) {
    const struct dp_batch_opts *o = r->o;
    if (!o->output)
        return DP_OK;
    enum dp_status st = dp_dir_writable(r->out_dir ? r->out_dir : o->output, err);
    if (st != DP_OK || !r->out_dir || o->force || o->resume)
        return st;
    char path[PATH_BYTES], zname[PATH_BYTES];
    for (int i = 0; i < r->docs.n && st == DP_OK; i++) {
        const struct dp_input *d = &r->docs.items[i];
        if (d->state != DP_INPUT_PENDING)
            continue;
        struct stat sb;
        st = path_join(path, sizeof path, r->out_dir, d->stem, err);
        if (st == DP_OK && lstat(path, &sb) == 0)
            st = dp_err_set(err, DP_ERR_IO,
                            "%s: already exists (use --force to overwrite, --resume to continue)",
                            path);
        if (st == DP_OK && o->zip_per_doc) {
            snprintf(zname, sizeof zname, "%s.zip", d->stem);
            st = path_join(path, sizeof path, r->out_dir, zname, err);
            if (st == DP_OK && lstat(path, &sb) == 0)
                st = dp_err_set(err, DP_ERR_IO,
                                "%s: already exists (use --force to overwrite, --resume to "
                                "continue)",
                                path);
        }
    }
    return st;
}

/* Creates the output (directory or bundle) once the run can start. */
static enum dp_status create_output(struct run *r, struct dp_err *err) {
    const struct dp_batch_opts *o = r->o;
    if (!o->output)
        return DP_OK;
    if (!r->out_dir) {
        enum dp_status st = dp_bundle_open(&r->zip_all, o->output, o->force, err);
        if (st == DP_OK)
            dp_bundle_set_csv(r->zip_all, &o->csv);
        return st;
    }
    enum dp_status st = dp_mkdirs(r->out_dir, err);
    if (st == DP_OK)
        r->out_created = true;
    return st;
}

static enum dp_status hash_inputs(struct run *r) {
    for (int i = 0; i < r->docs.n; i++) {
        struct dp_input *d = &r->docs.items[i];
        if (d->state != DP_INPUT_PENDING || d->sha256[0])
            continue;
        struct dp_err e = {0};
        if (dp_sha256_file(d->sha256, &d->size, d->path, &e) != DP_OK)
            dp_input_fail(d, e.code, e.msg);
        if (r->o->cancel && *r->o->cancel)
            return DP_ERR_CANCELLED;
    }
    return DP_OK;
}

static void summarize(const struct run *r, struct dp_batch_summary *sum) {
    memset(sum, 0, sizeof *sum);
    for (int i = 0; i < r->docs.n; i++) {
        const struct dp_input *d = &r->docs.items[i];
        if (d->state == DP_INPUT_SKIPPED) {
            sum->n_skipped++;
            continue;
        }
        sum->n_total++;
        if (d->state != DP_INPUT_REUSED && d->redo > DP_REDO_FAILED) { /* finished work */
            sum->n_redone++;
            sum->n_redo[d->redo]++;
        }
        sum->n_ok += d->state == DP_INPUT_OK || d->state == DP_INPUT_REUSED;
        sum->n_reused += d->state == DP_INPUT_REUSED;
        sum->n_failed += d->state == DP_INPUT_FAILED;
        sum->pages += d->pages;
        sum->pages_blank += d->pages_blank;
        sum->pages_truncated += d->pages_truncated;
    }
}

/* Processes (pending) or reports (failed at discovery, reused) document i. */
static enum dp_status visit_doc(struct run *r, int i, struct dp_err *err) {
    const struct dp_batch_opts *o = r->o;
    struct dp_input *d = &r->docs.items[i];
    if (o->cancel && *o->cancel)
        return dp_err_set(err, DP_ERR_CANCELLED, "interrupted before %s", d->path);
    if (d->state == DP_INPUT_PENDING) {
        process_doc(r, i);
        if (d->state == DP_INPUT_PENDING) /* cancelled inside */
            return dp_err_set(err, DP_ERR_CANCELLED, "interrupted in %s", d->path);
        return DP_OK;
    }
    pthread_mutex_lock(&r->mu);
    if (d->state == DP_INPUT_FAILED) {
        DP_LOG_ERROR("%s: %s", d->path, d->error ? d->error : dp_status_str(d->code));
        if (r->have_journal) {
            struct dp_err je = {0};
            if (dp_journal_append(&r->journal, d, &je) != DP_OK)
                DP_LOG_ERROR("%s", je.msg);
        }
        if (o->json_stdout || (o->cmd == DP_BATCH_CMD_EXTRACT && !o->output))
            print_status_line(r, d);
    } else if (d->state == DP_INPUT_SKIPPED) {
        if (o->verbosity > 0)
            DP_LOG_INFO("%s: skipped: %s", d->path, d->error ? d->error : "");
        if (o->json_stdout)
            print_status_line(r, d);
    }
    dp__progress_doc(&r->prog, d);
    pthread_mutex_unlock(&r->mu);
    return DP_OK;
}

struct worker_arg {
    struct run *r;
    struct dp_err err;
    enum dp_status st;
};

static void *worker_main(void *p) {
    struct worker_arg *w = p;
    struct run *r = w->r;
    for (;;) {
        if (atomic_load(&r->worker_status) != DP_OK)
            break; /* another worker was cancelled */
        int i = atomic_fetch_add(&r->next, 1);
        if (i >= r->docs.n)
            break;
        w->st = visit_doc(r, i, &w->err);
        if (w->st != DP_OK) {
            atomic_store(&r->worker_status, (int)w->st);
            break;
        }
    }
    return NULL;
}

/* --from-raw --jobs N: N threads take the next document in turn (stdout order then varies). */
static enum dp_status run_workers(struct run *r, struct dp_err *err) {
    int n = r->o->jobs;
    pthread_t *th = dp_calloc((size_t)n, sizeof *th);
    struct worker_arg *args = dp_calloc((size_t)n, sizeof *args);
    if (!th || !args) {
        dp_free(th);
        dp_free(args);
        return dp_err_set(err, DP_ERR_NOMEM, "out of memory starting %d workers", n);
    }
    int started = 0;
    for (int k = 0; k < n; k++) {
        args[k].r = r;
        if (pthread_create(&th[k], NULL, worker_main, &args[k]) != 0)
            break;
        started++;
    }
    if (!started) /* no thread: do the work here */
        worker_main(&args[0]);
    for (int k = 0; k < started; k++)
        pthread_join(th[k], NULL);
    enum dp_status st = DP_OK;
    for (int k = 0; k < n && st == DP_OK; k++)
        if (args[k].st != DP_OK) {
            st = args[k].st;
            dp_err_set(err, st, "%s", args[k].err.msg);
        }
    dp_free(th);
    dp_free(args);
    return st;
}

/* Documents (not skipped files) in the list. */
static int count_documents(const struct dp_inputs *l) {
    int n = 0;
    for (int i = 0; i < l->n; i++)
        n += l->items[i].state != DP_INPUT_SKIPPED;
    return n;
}

/* --resume: which finished documents are reused, which are redone and why (counts in r). */
static enum dp_status resume_docs(struct run *r, struct dp_err *err) {
    const struct dp_batch_opts *o = r->o;
    int reused = 0;
    enum dp_status st = dp_journal_resume(&r->docs, r->journal_path, r->out_dir, &reused, err);
    if (st != DP_OK)
        return st;
    bool any_kept = false;
    for (int i = 0; i < r->docs.n; i++) {
        struct dp_input *d = &r->docs.items[i];
        if (o->from_raw)
            d->from_kept_raw = false; /* the answers come from --from-raw anyway */
        any_kept |= d->from_kept_raw;
    }
    if (any_kept) {
        /* the raw answers the earlier run kept: re-extract those documents without the model */
        struct dp_err e = {0};
        if (dp_raw_read(&r->kept, r->out_dir, &e) != DP_OK)
            r->kept = NULL;
        for (int i = 0; i < r->docs.n; i++) {
            struct dp_input *d = &r->docs.items[i];
            if (!d->from_kept_raw)
                continue;
            d->src_index = -1;
            for (size_t k = 0; r->kept && k < r->kept->n_docs; k++)
                if (!strcmp(r->kept->docs[k].stem, d->stem) && r->kept->docs[k].err.code == DP_OK)
                    d->src_index = (long)k;
            if (d->src_index < 0) {
                d->from_kept_raw = false;
                d->redo = DP_REDO_MISSING;
            }
        }
    }
    if (o->verbosity >= 0)
        DP_LOG_INFO("resume: %d of %d documents already done", reused, r->docs.n);
    return DP_OK;
}

static enum dp_status run_docs(struct run *r, bool *input_failed, struct dp_err *err) {
    const struct dp_batch_opts *o = r->o;
    enum dp_status st = o->from_raw ? docs_from_raw(r, err)
                                    : dp_discover(&r->docs, o->inputs, o->n_inputs, err);
    *input_failed = st != DP_OK;
    if (st == DP_OK && !o->from_raw && count_documents(&r->docs) == 0) {
        *input_failed = true;
        st = dp_err_set(err, DP_ERR_IO, "no document found in %s%s (%d other files)",
                        o->inputs[0], o->n_inputs > 1 ? " and the other inputs" : "", r->docs.n);
    }
    if (st == DP_OK)
        st = assign_stems(&r->docs, err);
    if (st != DP_OK)
        return st;
    int n_all = r->docs.n;
    if (o->shard_n > 1)
        dp_inputs_shard(&r->docs, o->shard_k, o->shard_n);
    if (o->verbosity >= 0 && o->shard_n > 1)
        DP_LOG_INFO("shard %d/%d: %d of %d documents", o->shard_k, o->shard_n, r->docs.n, n_all);
    st = plan_output(r, err);
    if (st == DP_OK && !o->from_raw)
        st = hash_inputs(r);
    if (st == DP_OK && !o->from_raw)
        st = dp__model_digest(r->model_digest, o->model_dir,
                              r->out_dir ? r->digest_path : NULL, &r->digest_cache, err);
    if (st != DP_OK)
        return st;
    char fp_model[DP_SHA256_HEX_LEN + 1], fp_output[DP_SHA256_HEX_LEN + 1];
    dp__fingerprints(fp_model, fp_output, o, r->schema, r->model_digest);
    for (int i = 0; i < r->docs.n; i++) {
        memcpy(r->docs.items[i].fp_model, fp_model, sizeof fp_model);
        memcpy(r->docs.items[i].fp_output, fp_output, sizeof fp_output);
    }
    if (r->out_dir && o->resume && (st = resume_docs(r, err)) != DP_OK)
        return st;
    if ((st = preflight_output(r, err)) != DP_OK)
        return st;
    if (o->password_file && (st = dp__pwfile_load(&r->pw, o->password_file, err)) != DP_OK)
        return st;
    int pending = 0;
    for (int i = 0; i < r->docs.n; i++)
        pending += r->docs.items[i].state == DP_INPUT_PENDING && !r->docs.items[i].from_kept_raw;
    if (!o->from_raw && pending) {
        struct ex_gram *gram = r->gram;
        r->gram = NULL; /* dp__infer_open takes it over */
        st = dp__infer_open(&r->inf, o, r->schema, gram, &r->docs, &r->pw, err);
        if (st != DP_OK)
            return st;
        r->model_id = dp__infer_model_id(r->inf);
    }
    /* The run can start: from here on it leaves a record. */
    if ((st = create_output(r, err)) != DP_OK)
        return st;
    if (r->out_dir) {
        clean_stale(r);
        st = dp_journal_open(&r->journal, r->journal_path, err);
        if (st != DP_OK)
            return st;
        r->have_journal = true;
        if (r->digest_cache) {
            struct dp_err e = {0};
            if (dp_file_write_atomic(r->digest_path, r->digest_cache, strlen(r->digest_cache),
                                     true, &e) != DP_OK)
                DP_LOG_WARN("%s", e.msg);
        }
    }
    dp__progress_init(&r->prog, o, r->docs.n);
    if (o->from_raw && o->jobs > 1) {
        st = run_workers(r, err);
    } else {
        for (int i = 0; i < r->docs.n && st == DP_OK; i++)
            st = visit_doc(r, i, err);
    }
    dp__progress_end(&r->prog);
    if (st == DP_OK && r->out_dir && o->cmd == DP_BATCH_CMD_BATCH)
        st = dp__review_merge(r->out_dir, &r->docs, err);
    if (r->inf && o->verbosity > 0) {
        struct dp_infer_stats is;
        dp__infer_stats(r->inf, &is);
        DP_LOG_INFO("prompt prefix cache: %lld tokens reused on %d pages; prefill %.2fs per page "
                    "in full (%d pages), %.2fs per page with the cached prefix",
                    (long long)is.prefix_tokens, is.pages_reused,
                    is.pages_full ? is.prefill_full_s / is.pages_full : 0.0, is.pages_full,
                    is.pages_reused ? is.prefill_reused_s / is.pages_reused : 0.0);
    }
    return st;
}

enum dp_status dp_batch_run(const struct dp_batch_opts *o, struct dp_batch_summary *sum,
                            struct dp_err *err) {
    memset(sum, 0, sizeof *sum);
    if (o->merge_out) {
        char *summary = NULL;
        enum dp_status st = dp_manifest_merge(o->merge_out, o->inputs, o->n_inputs, &summary, err);
        sum->input_failed = st == DP_ERR_FORMAT;
        if (st == DP_OK && o->verbosity >= 0)
            DP_LOG_INFO("%s: %s", o->merge_out, summary);
        dp_free(summary);
        return st;
    }
    double t0 = dp__now();
    struct run r;
    memset(&r, 0, sizeof r);
    r.o = o;
    r.journal.fd = -1;
    pthread_mutex_init(&r.mu, NULL);
    atomic_init(&r.next, 0);
    atomic_init(&r.worker_status, DP_OK);
    r.model_id = o->from_raw ? "from-raw" : o->model_dir;
    if (!o->from_raw && !o->model_dir)
        return dp_err_set(err, DP_ERR_MODEL, "%s", dp_batch_no_model_help());
    if (!o->from_raw && o->jobs > 1)
        DP_LOG_WARN("--jobs %d: with a model one inference thread runs (pages are rendered ahead "
                    "by the ingest thread); --jobs parallelises --from-raw", o->jobs);
    enum dp_status st = sc_schema_load(&r.schema, o->schema, err);
    if (st != DP_OK) {
        if (err)
            err->code = DP_ERR_SCHEMA; /* a schema that does not load is a load failure (exit 3) */
        st = DP_ERR_SCHEMA;
    }
    struct dp_batch_opts olm;
    if (st == DP_OK && r.schema->task == SC_TASK_OLMOCR && o->ingest.long_side <= 0) {
        olm = *o; /* olmOCR-2 reads pages rendered with the longest side 1288 px */
        olm.ingest.long_side = EX_OLMOCR_LONGEST_SIDE;
        r.o = &olm;
    }
    /* fail closed before any page: a schema the constraint cannot enforce is a load error */
    if (st == DP_OK && !o->from_raw)
        st = dp_constrain_compile(&r.gram, r.schema, o->constrain, err);
    bool input_failed = false;
    if (st == DP_OK)
        st = run_docs(&r, &input_failed, err);
    summarize(&r, sum);
    sum->input_failed = input_failed;
    sum->wall_s = dp__now() - t0;
    if (r.out_created && (st == DP_OK || st == DP_ERR_CANCELLED)) {
        struct dp_manifest_info info = {
            .command = o->cmd == DP_BATCH_CMD_EXTRACT ? "extract"
                       : o->cmd == DP_BATCH_CMD_BATCH ? "batch" : "tables",
            .schema = o->schema,
            .model = o->from_raw ? o->from_raw : o->model_dir,
            .shard_k = o->shard_k,
            .shard_n = o->shard_n,
            .wall_s = sum->wall_s,
        };
        enum dp_status ms = dp_manifest_write(r.manifest_path, &r.docs, &info, err);
        if (st == DP_OK)
            st = ms;
    }
    if (r.zip_all) {
        enum dp_status zs = st == DP_OK ? dp_bundle_commit(r.zip_all, err) : DP_OK;
        if (st != DP_OK)
            dp_bundle_abort(r.zip_all);
        if (st == DP_OK)
            st = zs;
    }
    if (o->json_stdout && o->cmd != DP_BATCH_CMD_EXTRACT && st == DP_OK) {
        char line[512];
        snprintf(line, sizeof line,
                 "{\"summary\":{\"total\":%d,\"ok\":%d,\"failed\":%d,\"reused\":%d,"
                 "\"pages\":%lld,\"pages_blank\":%lld,\"pages_truncated\":%lld,\"wall_s\":%.3f}}\n",
                 sum->n_total, sum->n_ok, sum->n_failed, sum->n_reused, (long long)sum->pages,
                 (long long)sum->pages_blank, (long long)sum->pages_truncated, sum->wall_s);
        emit_line(&r, line);
    }
    if (o->cmd == DP_BATCH_CMD_TABLES && o->verbosity >= 0 && st == DP_OK)
        DP_LOG_INFO("%d tables written", r.n_tables);
    if (r.have_journal)
        dp_journal_close(&r.journal);
    dp__infer_close(r.inf);
    dp__pwfile_free(&r.pw);
    dp_raw_set_free(r.raw);
    dp_raw_set_free(r.kept);
    dp_free(r.digest_cache);
    dp_inputs_free(&r.docs);
    sc_schema_free(r.schema);
    ex_gram_free(r.gram);
    pthread_mutex_destroy(&r.mu);
    return st;
}
