/* dp_batch_run: the per-run driver. Builds the document list (discovery or a raw bundle), names,
 * shards, hashes and resumes it, then for each document gets the page answers (model pipeline
 * or --from-raw), extracts, writes the outputs atomically (a staged folder renamed into place,
 * zips via libzip's temporary + rename), appends the journal record, and finally writes the
 * manifest. A failed document is recorded and the run goes on. The document list is built in
 * dp_run_list.c, one document is processed in dp_run_doc.c (state shared in dp_run_impl.h).
 * Not thread-safe: one run per call; the model pipeline's threads live in dp_infer.c. */
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
        dp_free(a->pages[i].tok_off);
        dp_free(a->pages[i].tok_logprob);
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
            dp_free(p->confs);
            dp_free(p->tok_off);
            dp_free(p->tok_logprob);
            return dp_err_set(err, DP_ERR_NOMEM, "out of memory keeping page answers");
        }
        a->pages = v;
        a->cap = cap;
    }
    a->pages[a->n++] = *p;
    return DP_OK;
}

enum dp_status dp__path_join(char *out, size_t n, const char *a, const char *b,
                             struct dp_err *err) {
    int w = snprintf(out, n, "%s/%s", a, b);
    if (w < 0 || (size_t)w >= n)
        return dp_err_set(err, DP_ERR_LIMIT, "%s/%s: path longer than %zu bytes", a, b, n - 1);
    return DP_OK;
}

/* ---- the run -------------------------------------------------------------------------------- */

/* The output paths of the run; nothing is created yet (create_output does, once the run can
 * start: a run that cannot start leaves no trace). */
static enum dp_status plan_output(struct dp_run *r, struct dp_err *err) {
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
    enum dp_status st =
        dp__path_join(r->journal_path, sizeof r->journal_path, r->out_dir, jname, err);
    if (st == DP_OK)
        st = dp__path_join(r->manifest_path, sizeof r->manifest_path, r->out_dir, mname, err);
    if (st == DP_OK)
        st = dp__path_join(r->digest_path, sizeof r->digest_path, r->out_dir,
                           ".docproc/model-digest.json", err);
    return st;
}

/* Before any model work: the output can be written, and no pending document would overwrite
 * an existing output unless --force or --resume allow it. */
static enum dp_status preflight_output(struct dp_run *r, struct dp_err *err) {
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
        st = dp__path_join(path, sizeof path, r->out_dir, d->stem, err);
        if (st == DP_OK && lstat(path, &sb) == 0)
            st = dp_err_set(err, DP_ERR_IO,
                            "%s: already exists (use --force to overwrite, --resume to continue)",
                            path);
        if (st == DP_OK && o->zip_per_doc) {
            snprintf(zname, sizeof zname, "%s.zip", d->stem);
            st = dp__path_join(path, sizeof path, r->out_dir, zname, err);
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
static enum dp_status create_output(struct dp_run *r, struct dp_err *err) {
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

static enum dp_status hash_inputs(struct dp_run *r) {
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

static void summarize(const struct dp_run *r, struct dp_batch_summary *sum) {
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
static enum dp_status visit_doc(struct dp_run *r, int i, struct dp_err *err) {
    const struct dp_batch_opts *o = r->o;
    struct dp_input *d = &r->docs.items[i];
    if (o->cancel && *o->cancel)
        return dp_err_set(err, DP_ERR_CANCELLED, "interrupted before %s", d->path);
    if (d->state == DP_INPUT_PENDING) {
        dp__run_doc(r, i);
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
            dp__run_status_line(r, d);
    } else if (d->state == DP_INPUT_SKIPPED) {
        if (o->verbosity > 0)
            DP_LOG_INFO("%s: skipped: %s", d->path, d->error ? d->error : "");
        if (o->json_stdout)
            dp__run_status_line(r, d);
    }
    dp__progress_doc(&r->prog, d);
    pthread_mutex_unlock(&r->mu);
    return DP_OK;
}

struct worker_arg {
    struct dp_run *r;
    struct dp_err err;
    enum dp_status st;
};

static void *worker_main(void *p) {
    struct worker_arg *w = p;
    struct dp_run *r = w->r;
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
static enum dp_status run_workers(struct dp_run *r, struct dp_err *err) {
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
static enum dp_status resume_docs(struct dp_run *r, struct dp_err *err) {
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

static enum dp_status run_docs(struct dp_run *r, bool *input_failed, struct dp_err *err) {
    const struct dp_batch_opts *o = r->o;
    enum dp_status st = o->from_raw ? dp__run_docs_from_raw(r, err)
                                    : dp_discover(&r->docs, o->inputs, o->n_inputs, err);
    *input_failed = st != DP_OK;
    if (st == DP_OK && !o->from_raw && count_documents(&r->docs) == 0) {
        *input_failed = true;
        st = dp_err_set(err, DP_ERR_IO, "no document found in %s%s (%d other files)",
                        o->inputs[0], o->n_inputs > 1 ? " and the other inputs" : "", r->docs.n);
    }
    if (st == DP_OK)
        st = dp__run_assign_stems(&r->docs, err);
    if (st != DP_OK)
        return st;
    int n_all = r->docs.n;
    if (o->shard_n > 1)
        dp_inputs_shard(&r->docs, o->shard_k, o->shard_n);
    if (o->verbosity >= 0 && o->shard_n > 1)
        DP_LOG_INFO("shard %d/%d: %d of %d documents", o->shard_k, o->shard_n, r->docs.n, n_all);
    st = plan_output(r, err);
    /* an output an earlier run made: held before its journal is read (a new one: once made) */
    if (st == DP_OK && r->out_dir && dp__outlock_dir_exists(r->out_dir))
        st = dp__outlock_take(&r->lock, r->out_dir, o->shard_k, o->shard_n, err);
    if (st == DP_OK && !o->from_raw)
        st = hash_inputs(r);
    if (st == DP_OK && !o->from_raw)
        st = dp__model_digest(r->model_digest, o->model_dir, o->gen.mmproj,
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
    if (r->out_dir && (st = dp__outlock_take(&r->lock, r->out_dir, o->shard_k, o->shard_n,
                                             err)) != DP_OK)
        return st;
    if (r->out_dir) {
        dp__run_clean_stale(r);
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

/* --merge: the shard manifests into one, and the review queue (OUT/review.jsonl, OUT/review/)
 * rebuilt from every shard's documents; OUT (the merged manifest's folder) held alone. */
static enum dp_status merge_shards(const struct dp_batch_opts *o, struct dp_batch_summary *sum,
                                   struct dp_err *err) {
    char dir[PATH_BYTES];
    snprintf(dir, sizeof dir, "%s", o->merge_out);
    char *slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else
        slash[slash == dir] = '\0'; /* "/manifest.json" -> "/" */
    struct dp_outlock lock = DP_OUTLOCK_INIT;
    enum dp_status st = DP_OK;
    if (dp__outlock_dir_exists(dir)) /* a batch output: no shard may still be writing it */
        st = dp__outlock_take(&lock, dir, 0, 1, err);
    char *summary = NULL;
    if (st == DP_OK) {
        st = dp_manifest_merge(o->merge_out, o->inputs, o->n_inputs, &summary, err);
        sum->input_failed = st == DP_ERR_FORMAT;
    }
    if (st == DP_OK)
        st = dp__review_merge_manifest(dir, o->merge_out, err);
    if (st == DP_OK && o->verbosity >= 0)
        DP_LOG_INFO("%s: %s", o->merge_out, summary);
    dp_free(summary);
    dp__outlock_release(&lock);
    return st;
}

enum dp_status dp_batch_run(const struct dp_batch_opts *o, struct dp_batch_summary *sum,
                            struct dp_err *err) {
    memset(sum, 0, sizeof *sum);
    if (o->merge_out)
        return merge_shards(o, sum, err);
    double t0 = dp__now();
    struct dp_run r;
    memset(&r, 0, sizeof r);
    r.o = o;
    r.journal.fd = -1;
    r.lock = (struct dp_outlock)DP_OUTLOCK_INIT;
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
    if (st != DP_OK && st != DP_ERR_NOMEM) {
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
        dp__run_emit_line(&r, line);
    }
    sum->tables = o->cmd == DP_BATCH_CMD_TABLES;
    sum->n_tables = r.n_tables;
    sum->n_docs_no_table = r.n_docs_no_table;
    if (r.have_journal)
        dp_journal_close(&r.journal);
    dp__outlock_release(&r.lock);
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
