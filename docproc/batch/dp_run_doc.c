/* One document of a batch run: its page answers (the model pipeline, dp_infer.c, or raw
 * answers), extraction, the outputs written atomically (a staged folder renamed into place, or
 * the shared zip), its stdout line and its journal record. Called by dp_run.c, from several
 * workers with --from-raw --jobs N: shared state is taken under r->mu. */
#include "dp_run_impl.h"
#include "ex_cons.h"
#include "ex_lines.h"
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

/* The raw answers a document is re-extracted from (--from-raw, or kept by an earlier run in its
 * output folder), or NULL when it goes through the model. */
static const struct dp_raw_doc *raw_doc_of(const struct dp_run *r, const struct dp_input *d) {
    const struct dp_raw_set *set = r->raw ? r->raw : d->from_kept_raw ? r->kept : NULL;
    if (!set)
        return NULL;
    DP_ASSERT(d->src_index >= 0 && (size_t)d->src_index < set->n_docs);
    return &set->docs[d->src_index];
}

static enum dp_status raw_answers(struct dp_run *r, int index, struct dp_answers *out,
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

/* --pages beyond the document's end: ignored, said in the result (a "pages" warning) and on
 * stderr. The same for the model's run and a re-extraction of its kept answers. */
static enum dp_status pages_note(struct dp_run *r, const struct dp_input *d, struct ex_doc *doc,
                                 struct dp_err *err) {
    if (!r->o->pages || !*r->o->pages || doc->source_pages <= 0)
        return DP_OK;
    struct dp_page_sel sel;
    enum dp_status st = dp_page_sel_parse(&sel, r->o->pages, err);
    char note[DP_ERR_MSG_MAX];
    if (st == DP_OK && dp_page_sel_beyond(&sel, doc->source_pages, note, sizeof note)) {
        DP_LOG_WARN("%s: %s", d->rel, note);
        st = ex_doc_set_pages_note(doc, note, err);
    }
    dp_page_sel_free(&sel);
    return st;
}

static enum dp_status build_doc(struct dp_run *r, struct dp_input *d, const struct dp_answers *a,
                                struct ex_doc **out, struct dp_err *err) {
    struct ex_doc *doc = NULL;
    enum dp_status st = ex_doc_new(&doc, dp_input_shown(d), err);
    if (st != DP_OK)
        return st;
    const struct dp_batch_opts *o = r->o;
    char created[DP_CREATED_LEN];
    dp__created_now(created, sizeof created); /* when these answers were made */
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
        .created = created,
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
        s.created = rs->created; /* the answers' time (NULL when the bundle does not say) */
    }
    st = ex_doc_set_stamp(doc, &s, err);
    doc->source_pages = rd ? rd->source_pages : a->doc_pages;
    if (st == DP_OK)
        st = pages_note(r, d, doc, err);
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
        if (st == DP_OK && p->n_tok) { /* table cells: the tokens of their text */
            struct ex_tokconf tc = {p->tok_off, p->tok_logprob, p->n_tok};
            ex_page_apply_cell_conf(pg, &tc);
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

/* The formats of a document's bundle: `tables` replaces the per-page CSVs by its stitched
 * tables (add_tables), in a directory and a zip alike. */
static unsigned bundle_formats(const struct dp_run *r) {
    unsigned formats = r->o->formats | DP_OUT_RAW;
    if (r->o->cmd == DP_BATCH_CMD_TABLES)
        formats &= ~(unsigned)DP_OUT_CSV;
    return formats;
}

/* `tables`: <stem>/stitched/table-NNN.{csv,json} into b (nothing when the document has no
 * table); *n gets the number of tables. */
static enum dp_status add_tables(struct dp_run *r, struct dp_bundle *b, const struct dp_input *d,
                                 const struct ex_doc *doc, int *n, struct dp_err *err) {
    *n = 0;
    if (r->o->cmd != DP_BATCH_CMD_TABLES)
        return DP_OK;
    char prefix[PATH_BYTES];
    snprintf(prefix, sizeof prefix, "%s/stitched", d->stem);
    return dp_tables_add(b, doc, prefix, &r->o->csv, n, err);
}

/* The summary's count of tables found (once per document), and a warning for none. */
static void count_tables(struct dp_run *r, const struct dp_input *d, int n) {
    if (r->o->cmd != DP_BATCH_CMD_TABLES)
        return;
    if (n == 0)
        DP_LOG_WARN("%s: no table found", dp_input_shown(d));
    pthread_mutex_lock(&r->mu);
    r->n_tables += n;
    r->n_docs_no_table += n == 0;
    pthread_mutex_unlock(&r->mu);
}

static enum dp_status write_dir(struct dp_run *r, struct dp_input *d, const struct ex_doc *doc,
                                const struct dp_buf *pdf, struct dp_err *err) {
    char stage[PATH_BYTES], staged[PATH_BYTES], target[PATH_BYTES], old[PATH_BYTES], name[PATH_BYTES];
    dp__stage_name(name, sizeof name, "stage", d->stem);
    enum dp_status st = dp__path_join(stage, sizeof stage, r->out_dir, name, err);
    if (st == DP_OK)
        st = dp__path_join(staged, sizeof staged, stage, d->stem, err);
    if (st == DP_OK)
        st = dp__path_join(target, sizeof target, r->out_dir, d->stem, err);
    dp__stage_name(name, sizeof name, "old", d->stem);
    if (st == DP_OK)
        st = dp__path_join(old, sizeof old, r->out_dir, name, err);
    if (st != DP_OK)
        return st;
    struct stat sb;
    bool exists = lstat(target, &sb) == 0;
    if (exists && !r->o->force && !r->o->resume)
        return dp_err_set(err, DP_ERR_IO, "%s: already exists (use --force to overwrite)", target);
    dp__rmtree(stage, NULL);
    struct dp_bundle *b = NULL;
    st = dp_bundle_open(&b, stage, true, err);
    if (st == DP_OK)
        dp_bundle_set_csv(b, &r->o->csv);
    if (st == DP_OK)
        st = dp_bundle_add_doc(b, doc, d->stem, bundle_formats(r), err);
    if (st == DP_OK)
        st = add_pdf(b, d->stem, pdf, err);
    int n_tables = 0;
    if (st == DP_OK)
        st = add_tables(r, b, d, doc, &n_tables, err);
    if (st == DP_OK)
        st = dp_bundle_commit(b, err);
    else if (b)
        dp_bundle_abort(b);
    if (st == DP_OK)
        count_tables(r, d, n_tables);
    if (st == DP_OK && r->o->cmd == DP_BATCH_CMD_BATCH) /* appears atomically with the doc */
        st = dp__review_write_doc(r->o, doc, d->rel, d->stem, staged, err);
    if (st == DP_OK && !exists && strchr(d->stem, '/')) { /* the input tree: sub/ of sub/x.pdf */
        char parent[PATH_BYTES];
        snprintf(parent, sizeof parent, "%s", target);
        *strrchr(parent, '/') = '\0';
        st = dp_mkdirs(parent, err);
    }
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

static enum dp_status write_outputs(struct dp_run *r, struct dp_input *d, const struct ex_doc *doc,
                                    struct dp_err *err) {
    struct dp_buf pdf;
    dp_buf_init(&pdf, DP_PDF_MAX_BYTES);
    enum dp_status st = DP_OK;
    if ((r->o->formats & DP_OUT_PDF) && (r->out_dir || r->zip_all))
        st = dp__archive_pdf(r->o, doc, &pdf, err);
    if (st == DP_OK && r->out_dir && r->o->zip_per_doc) {
        char zpath[PATH_BYTES], zname[PATH_BYTES];
        snprintf(zname, sizeof zname, "%s.zip", d->stem);
        st = dp__path_join(zpath, sizeof zpath, r->out_dir, zname, err);
        struct dp_bundle *b = NULL;
        if (st == DP_OK)
            st = dp_bundle_open(&b, zpath, r->o->force || r->o->resume, err);
        if (st == DP_OK)
            dp_bundle_set_csv(b, &r->o->csv);
        if (st == DP_OK)
            st = dp_bundle_add_doc(b, doc, d->stem, bundle_formats(r), err);
        if (st == DP_OK)
            st = add_pdf(b, d->stem, &pdf, err);
        int n_tables = 0;
        if (st == DP_OK)
            st = add_tables(r, b, d, doc, &n_tables, err);
        if (st == DP_OK)
            st = dp_bundle_commit(b, err);
        else if (b)
            dp_bundle_abort(b);
        if (st == DP_OK && !(r->o->formats || !r->o->zip_per_doc)) /* else the folder counts */
            count_tables(r, d, n_tables);
        if (st == DP_OK)
            st = dp_input_add_output(d, zname, err);
    }
    if (st == DP_OK && r->out_dir && (r->o->formats || !r->o->zip_per_doc))
        st = write_dir(r, d, doc, &pdf, err);
    if (st == DP_OK && r->zip_all) {
        pthread_mutex_lock(&r->mu);
        st = dp_bundle_add_doc(r->zip_all, doc, d->stem, bundle_formats(r), err);
        if (st == DP_OK)
            st = add_pdf(r->zip_all, d->stem, &pdf, err);
        int n_tables = 0;
        if (st == DP_OK)
            st = add_tables(r, r->zip_all, d, doc, &n_tables, err);
        pthread_mutex_unlock(&r->mu);
        if (st == DP_OK)
            count_tables(r, d, n_tables);
    }
    dp_buf_free(&pdf);
    return st;
}

/* One JSON Lines record on stdout: the compact result (extract) or the manifest record. */
void dp__run_emit_line(const struct dp_run *r, const char *s) {
    if (r->o->emit)
        r->o->emit(DP_BATCH_STDOUT, s, r->o->emit_user);
}

/* A record that cannot be made (out of memory) fails its document: never a silently missing line. */
static enum dp_status print_result_line(const struct dp_run *r, const struct ex_doc *doc,
                                        struct dp_err *err) {
    struct dp_buf b;
    dp_buf_init(&b, DP_MAX_TEXT_BYTES);
    enum dp_status st = dp_out_json(doc, &b, err);
    if (st == DP_OK && b.status != DP_OK)
        st = dp_err_set(err, b.status, "result record: %s", dp_status_str(b.status));
    json_t *j = NULL;
    char *s = NULL;
    if (st == DP_OK) {
        j = json_loadb(b.data, b.len, 0, NULL);
        s = j ? json_dumps(j, JSON_COMPACT) : NULL;
        if (!s)
            st = dp_err_set(err, DP_ERR_NOMEM, "result record: out of memory");
    }
    if (s) {
        dp__run_emit_line(r, s);
        dp__run_emit_line(r, "\n");
    }
    free(s);
    json_decref(j);
    dp_buf_free(&b);
    return st;
}

void dp__run_status_line(const struct dp_run *r, const struct dp_input *d) {
    json_t *j = json_pack("{sssssssi}", "name", d->rel, "path", dp_input_shown(d), "status",
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
        dp__run_emit_line(r, s);
        dp__run_emit_line(r, "\n");
    }
    free(s);
    json_decref(j);
}

void dp__run_doc(struct dp_run *r, int index) {
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
        /* token confidences where the model ran (none for --from-raw): page i of doc is
         * answer i */
        struct ex_tokconf *tc = NULL;
        bool any = false;
        for (int i = 0; i < a.n; i++)
            any = any || a.pages[i].n_tok > 0;
        if (st == DP_OK && any && (size_t)a.n == doc->n_pages) {
            tc = dp_calloc((size_t)a.n, sizeof *tc);
            if (!tc)
                st = dp_err_set(&err, DP_ERR_NOMEM, "out of memory");
            for (int i = 0; tc && i < a.n; i++)
                tc[i] = dp__answer_conf(&a.pages[i]);
            if (doc)
                doc->tokconf = tc;
        }
        if (st == DP_OK)
            st = write_outputs(r, d, doc, &err);
        if (doc)
            doc->tokconf = NULL;
        dp_free(tc);
        d->t.write += dp__now() - t2;
    }
    pthread_mutex_lock(&r->mu); /* publish: stdout, journal, log, progress */
    /* with -o the files are the output: stdout stays quiet */
    if (st == DP_OK && r->o->cmd == DP_BATCH_CMD_EXTRACT && (!r->o->output || r->o->json_stdout))
        st = print_result_line(r, doc, &err);
    if (st == DP_OK) {
        d->state = DP_INPUT_OK;
    } else {
        if (st == DP_ERR_CANCELLED)
            d->state = DP_INPUT_PENDING;
        else {
            dp__err_name_once(&err, d);
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
        dp__run_status_line(r, d);
    else if (r->o->cmd == DP_BATCH_CMD_EXTRACT && d->state == DP_INPUT_FAILED &&
             (!r->o->output || r->o->json_stdout))
        dp__run_status_line(r, d);
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

