/* Pages in flight: the inference thread (the caller of dp__infer_doc) keeps up to --parallel
 * pages as sequences of one vl_state, starts a page when a slot is free (continuous batching),
 * steps all of them, applies the generation guards (repetition loops, page and document time
 * limits, signals) and collects answers per document; documents complete in input order,
 * answers of later documents wait here until the pipeline asks for them. Inference thread only. */
#include "dp_infer_impl.h"
#include "dp_alloc.h"
#include "dp_buf.h"
#include "dp_fs.h"
#include "dp_limits.h"
#include "dp_log.h"
#include "dp_vl.h"
#include "ex_cons.h"
#include "vl_tools.h"

#include <pthread.h>
#include <stdio.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>
/* ---- generation ---------------------------------------------------------------------------- */

static bool on_token(int32_t id, float logprob, void *user) {
    (void)logprob;
    struct gen_ctx *g = user;
    if (g->n < g->cap)
        g->ids[g->n++] = id;
    /* constrained: a guard ends the answer by its shortest completion instead of cutting it */
    struct ex_cons *c = g->cons;
    if (!g->repetition && dp__repetition_period(g->ids, g->n) > 0) {
        g->repetition = true;
        if (!c)
            return false;
        ex_cons_finish(c);
    }
    double ps = g->inf->o->page_timeout_s;
    if (!g->page_timeout && ps > 0 && dp__now() - g->t_page0 > ps) {
        g->page_timeout = true;
        if (!c)
            return false;
        ex_cons_finish(c);
    }
    return true;
}

static bool should_abort(void *user) {
    struct gen_ctx *g = user;
    const struct dp_batch_opts *o = g->inf->o;
    if (o->cancel && *o->cancel)
        return true;
    if (o->doc_timeout_s > 0 && dp__now() - g->t_doc0 > o->doc_timeout_s) {
        g->doc_timeout = true;
        return true;
    }
    return false;
}


static enum dp_status value_confs(struct dp_page_answer *a, const struct ex_cons *cons,
                                  const struct vl_result *res, int page_no, struct dp_err *err) {
    size_t n = 0;
    const struct ex_cons_span *sp = ex_cons_spans(cons, &n);
    a->confs = n ? dp_calloc(n, sizeof *a->confs) : NULL;
    if (n && !a->confs)
        return dp_err_set(err, DP_ERR_NOMEM, "page %d: out of memory", page_no);
    for (size_t i = 0; i < n; i++) {
        int64_t b = sp[i].tok_begin, e = sp[i].tok_end < res->n ? sp[i].tok_end : res->n;
        struct ex_value_conf *v = &a->confs[i];
        v->byte_begin = sp[i].byte_begin;
        v->byte_end = sp[i].byte_end;
        v->truncated = sp[i].truncated;
        v->conf = e > b ? ex_conf_value(res->logprobs + b, res->masked_logprobs + b, e - b,
                                        sp[i].truncated)
                        : 0.0;
    }
    a->n_confs = n;
    return DP_OK;
}


/* ---- pages in flight ------------------------------------------------------------------------ */

/* The recorded stop cause: a guard that stopped generation, else the token limit, else EOS. */
static enum ex_stop stop_cause(const struct vl_result *res, const struct gen_ctx *g) {
    if (g->repetition)
        return EX_STOP_REPETITION;
    if (g->page_timeout)
        return EX_STOP_TIMEOUT;
    return res->truncated ? EX_STOP_MAX_NEW_TOKENS : EX_STOP_EOS;
}

static struct doc_acc *acc_find(struct dp_infer *inf, int doc) {
    for (int i = 0; i < inf->n_accs; i++)
        if (inf->accs[i].doc == doc)
            return &inf->accs[i];
    return NULL;
}

static struct doc_acc *acc_get(struct dp_infer *inf, int doc, struct dp_err *err) {
    struct doc_acc *a = acc_find(inf, doc);
    if (a)
        return a;
    if (inf->n_accs == inf->cap_accs) {
        int cap = inf->cap_accs ? 2 * inf->cap_accs : 4;
        struct doc_acc *n = dp_reallocarray(inf->accs, (size_t)cap, sizeof *n);
        if (!n) {
            dp_err_set(err, DP_ERR_NOMEM, "out of memory");
            return NULL;
        }
        inf->accs = n;
        inf->cap_accs = cap;
    }
    a = &inf->accs[inf->n_accs++];
    memset(a, 0, sizeof *a);
    a->doc = doc;
    a->t_doc0 = dp__now();
    return a;
}

void dp__infer_acc_remove(struct dp_infer *inf, struct doc_acc *a) {
    dp__answers_free(&a->ans);
    *a = inf->accs[--inf->n_accs];
}

/* The first failure of a document: recorded once; its other pages are cancelled and the
 * producer stops rendering it. */
static void acc_fail(struct dp_infer *inf, struct doc_acc *a, enum dp_status st, const char *msg) {
    if (a->st != DP_OK)
        return;
    a->st = st;
    snprintf(a->msg, sizeof a->msg, "%s", msg);
    for (int k = 0; k < inf->parallel; k++)
        if (inf->jobs[k].active && inf->jobs[k].it.doc == a->doc)
            vl_seq_cancel(inf->state, inf->jobs[k].seq);
    pthread_mutex_lock(&inf->mu);
    inf->skip_doc = a->doc;
    pthread_mutex_unlock(&inf->mu);
}

void dp__infer_job_clear(struct job *j) {
    dp__infer_item_free(&j->it);
    dp_free(j->prompt);
    dp_free(j->g.ids);
    dp__force_free(j->force);
    memset(j, 0, sizeof *j);
}

/* Starts the model on a page: prompt ids, guards, vl_seq_add into a free slot. */
static enum dp_status job_start(struct dp_infer *inf, struct job *j, struct doc_acc *a,
                                struct dp_err *err) {
    const struct prompt *p = &inf->prompt;
    int64_t n_img = vl_vision_tokens(inf->model, &j->it.vin);
    size_t n = p->n_prefix + (size_t)n_img + p->n_suffix;
    j->prompt = dp_reallocarray(NULL, n, sizeof *j->prompt); /* (n) prompt ids */
    j->g.cap = inf->o->gen.max_new_tokens + 1;
    j->g.ids = dp_reallocarray(NULL, (size_t)j->g.cap, sizeof *j->g.ids);
    if (!j->prompt || !j->g.ids)
        return dp_err_set(err, DP_ERR_NOMEM, "page %d: out of memory", j->it.page_no);
    memcpy(j->prompt, p->prefix, p->n_prefix * sizeof *j->prompt);
    for (int64_t i = 0; i < n_img; i++)
        j->prompt[p->n_prefix + (size_t)i] = p->pad_id;
    memcpy(j->prompt + p->n_prefix + n_img, p->suffix, p->n_suffix * sizeof *j->prompt);
    j->g.inf = inf;
    j->g.doc = j->it.doc;
    j->g.t_page0 = dp__now();
    j->g.t_doc0 = a->t_doc0;
    struct vl_gen_params gp = vl_gen_default_params();
    gp.max_new_tokens = inf->o->gen.max_new_tokens;
    gp.temperature = (float)inf->o->gen.temperature;
    gp.top_k = inf->o->gen.top_k;
    gp.top_p = (float)inf->o->gen.top_p;
    gp.repetition_penalty = (float)inf->o->gen.repetition_penalty;
    gp.seed = inf->o->gen.seed;
    gp.reuse_prefix = !inf->o->no_prefix_cache;
    gp.on_token = on_token;
    gp.token_user = &j->g;
    gp.should_abort = should_abort;
    gp.abort_user = &j->g;
    if (inf->cons) {
        int k = (int)(j - inf->jobs);
        dp_constrain_attach(inf->cons, k, &gp);
        j->g.cons = dp_constrain_cons(inf->cons, k);
    }
    enum dp_status st = dp__force_open(&j->force, inf->model, j->it.page_no, j->attempt, err);
    if (st != DP_OK)
        return st;
    if (j->force) { /* test hook: teacher-forced answer (dp_force.c), instead of --constrain */
        gp.constrain = dp__force_constrain;
        gp.constrain_user = j->force;
        gp.accept = NULL;
        j->g.cons = NULL;
    }
    struct vl_request rq = {
        .ids = j->prompt, .n_ids = (int64_t)n, .vision = &j->it.vin, .n_vision = 1};
    struct vl_error ve = {0};
    if (vl_seq_add(inf->state, &j->seq, &rq, &gp, &ve) != VL_OK)
        return dp__infer_from_vl(&ve, DP_ERR_MODEL, err, "model");
    j->active = true;
    a->in_flight++;
    return DP_OK;
}

/* A finished sequence: its answer (text, flags, timings, token confidences) into the document's
 * answers; or, for an olmocr first answer whose front matter asks for a rotation, no answer and
 * *retry_angle set (the caller asks again about the turned page). */
static enum dp_status job_finish(struct dp_infer *inf, struct job *j, struct doc_acc *a,
                                 int *retry_angle, struct dp_err *err) {
    *retry_angle = 0;
    struct dp_input *d = &inf->docs->items[j->it.doc];
    struct vl_result res;
    enum vl_status vs = VL_OK;
    struct vl_error ve = {0};
    (void)vl_seq_done(inf->state, j->seq, &res, &vs, &ve);
    d->t.vision += res.t.vision_s;
    d->t.prefill += res.t.prefill_s;
    d->t.decode += res.t.decode_s;
    struct gen_ctx *g = &j->g;
    int page = j->it.page_no;
    struct ex_cons *cons = g->cons;
    if (cons && (ex_cons_failed(cons) || (vs == VL_OK && res.stop == VL_STOP_EOS &&
                                          !ex_cons_complete(cons))))
        return dp_err_set(err, DP_ERR_INTERNAL,
                          "page %d: constrained decoding lost the schema after %lld tokens "
                          "(internal error; the answer is not used)", page, (long long)res.n);
    if (vs != VL_OK) {
        if (a->st != DP_OK) /* cancelled because another page of the document failed */
            return a->st;
        if (vs == VL_ERR_CANCELLED && g->doc_timeout)
            return dp_err_set(err, DP_ERR_LIMIT, "page %d: document time limit of %gs reached",
                              page, inf->o->doc_timeout_s);
        return dp__infer_from_vl(&ve, DP_ERR_MODEL, err, "model");
    }
    inf->stats.prefix_tokens += res.t.n_reused;
    if (res.t.n_reused > 0) {
        inf->stats.pages_reused++;
        inf->stats.prefill_reused_s += res.t.prefill_s;
    } else {
        inf->stats.pages_full++;
        inf->stats.prefill_full_s += res.t.prefill_s;
    }
    int64_t keep = res.n;
    if (res.stop == VL_STOP_EOS && keep > 0)
        keep--; /* the EOS id itself */
    char *text = NULL;
    size_t len = 0;
    if (vl_tokenizer_decode(vl_model_tokenizer(inf->model), res.ids, (size_t)keep, true, &text,
                            &len, &ve) != VL_OK)
        return dp__infer_from_vl(&ve, DP_ERR_MODEL, err, "decode");
    if (j->it.rgb && inf->schema->task == SC_TASK_OLMOCR) {
        *retry_angle = dp__olmocr_retry_angle(text, len, j->attempt);
        if (*retry_angle) {
            free(text); /* libvl's allocator */
            return DP_OK;
        }
    }
    struct dp_page_answer pa = {.number = page, .geom = j->it.geom};
    pa.text = dp__answer_dup(text, len); /* into our allocator, byte-exact (NULs kept) */
    free(text);                          /* libvl's allocator */
    if (!pa.text)
        return dp_err_set(err, DP_ERR_NOMEM, "page %d: out of memory", page);
    pa.len = len;
    pa.n_tokens = res.n;
    pa.constrained = cons != NULL;
    pa.n_forced = res.n_forced;
    pa.n_jumps = res.n_forced_chunks;
    pa.repetition = g->repetition;
    pa.timed_out = g->page_timeout;
    pa.truncated = res.truncated || g->repetition || g->page_timeout;
    pa.stop = stop_cause(&res, g);
    if ((cons && value_confs(&pa, cons, &res, page, err) != DP_OK) ||
        dp__answer_tokconf(&pa, vl_model_tokenizer(inf->model), res.ids, res.logprobs, keep,
                           err) != DP_OK) {
        dp_free(pa.text);
        dp_free(pa.confs);
        return err->code;
    }
    if (g->repetition)
        DP_LOG_WARN("%s: page %d: repetition loop detected after %lld tokens; answer stopped "
                    "and flagged truncated", d->path, page, (long long)res.n);
    if (g->page_timeout)
        DP_LOG_WARN("%s: page %d: page time limit of %gs reached; answer flagged truncated",
                    d->path, page, inf->o->page_timeout_s);
    return dp__answers_add(&a->ans, &pa, err);
}

/* olmOCR's rotation retry: the page in slot j (its first sequence already released) turned
 * counter-clockwise by angle, preprocessed again and started once more as attempt 2. */
static enum dp_status job_retry(struct dp_infer *inf, struct job *j, struct doc_acc *a, int angle,
                                struct dp_err *err) {
    int page = j->it.page_no;
    DP_FREE(j->prompt);
    DP_FREE(j->g.ids);
    dp__force_free(j->force);
    j->force = NULL;
    memset(&j->g, 0, sizeof j->g);
    uint8_t *rot = NULL;
    int rw = 0, rh = 0;
    enum dp_status st = dp__rgb_rotate(&rot, &rw, &rh, j->it.rgb, j->it.rgb_w, j->it.rgb_h, angle);
    if (st != DP_OK)
        return dp_err_set(err, st, "page %d: turning the page by %d degrees: %s", page, angle,
                          dp_status_str(st));
    DP_LOG_INFO("%s: page %d: olmOCR front matter says rotation_correction %d: page turned "
                "(%dx%d -> %dx%d) and asked again", inf->docs->items[j->it.doc].rel, page, angle,
                j->it.rgb_w, j->it.rgb_h, rw, rh);
    dp_free(j->it.rgb);
    j->it.rgb = rot;
    j->it.rgb_w = rw;
    j->it.rgb_h = rh;
    vl_vision_input_free(&j->it.vin);
    struct vl_error ve = {0};
    if (vl_image_preprocess(&j->it.vin, rot, rw, rh, &inf->ip, &ve) != VL_OK)
        return dp_vl_err(err, &ve, DP_ERR_FORMAT, "page %d (turned)", page);
    j->attempt = 2;
    return job_start(inf, j, a, err);
}

/* One queue item: a document's end, a blank page (answered here) or a page for the model. */
static void take_item(struct dp_infer *inf, struct item *it, struct dp_progress *prog) {
    struct dp_err err = {0};
    struct doc_acc *a = acc_get(inf, it->doc, &err);
    struct dp_input *d = &inf->docs->items[it->doc];
    if (!a) { /* out of memory for the bookkeeping: the page is lost, the run goes on */
        DP_LOG_ERROR("%s: %s", d->rel, err.msg);
        dp__infer_item_free(it);
        return;
    }
    if (it->end) {
        a->end_seen = true;
        a->doc_pages = it->doc_pages;
        if (it->status != DP_OK)
            acc_fail(inf, a, it->status, it->msg);
        return;
    }
    d->t.rasterize += it->t_rasterize;
    if (a->st != DP_OK) {
        dp__infer_item_free(it);
        return;
    }
    if (it->blank) {
        struct dp_page_answer pa = {.number = it->page_no, .geom = it->geom, .blank = true};
        pa.text = dp_strdup("");
        DP_LOG_INFO("%s: page %d is blank; not sent to the model", d->rel, it->page_no);
        enum dp_status st = pa.text ? dp__answers_add(&a->ans, &pa, &err)
                                    : dp_err_set(&err, DP_ERR_NOMEM, "out of memory");
        if (st != DP_OK)
            acc_fail(inf, a, st, err.msg);
        dp__progress_page(prog, d->rel, it->page_no);
        return;
    }
    struct job *j = NULL;
    for (int k = 0; k < inf->parallel && !j; k++)
        if (!inf->jobs[k].active)
            j = &inf->jobs[k];
    DP_ASSERT(j); /* items are taken only while a slot is free */
    j->it = *it;
    j->attempt = 1;
    if (job_start(inf, j, a, &err) != DP_OK) {
        acc_fail(inf, a, err.code, err.msg);
        dp__infer_job_clear(j);
    }
}

/* Collects every finished sequence. */
static void collect(struct dp_infer *inf, struct dp_progress *prog) {
    for (int k = 0; k < inf->parallel; k++) {
        struct job *j = &inf->jobs[k];
        if (!j->active || !vl_seq_done(inf->state, j->seq, NULL, NULL, NULL))
            continue;
        struct dp_err err = {0};
        struct doc_acc *a = acc_find(inf, j->it.doc);
        DP_ASSERT(a);
        int angle = 0;
        enum dp_status st = job_finish(inf, j, a, &angle, &err);
        if (st == DP_OK && angle) { /* olmOCR: the same page, turned, goes in flight again */
            a->in_flight--;
            vl_seq_release(inf->state, j->seq);
            j->active = false;
            st = job_retry(inf, j, a, angle, &err);
            if (st == DP_OK)
                continue;
            acc_fail(inf, a, st, err.msg);
            dp__progress_page(prog, inf->docs->items[j->it.doc].rel, j->it.page_no);
            dp__infer_job_clear(j);
            continue;
        }
        if (st != DP_OK && a->st == DP_OK)
            acc_fail(inf, a, st, err.msg);
        dp__progress_page(prog, inf->docs->items[j->it.doc].rel, j->it.page_no);
        a->in_flight--;
        vl_seq_release(inf->state, j->seq);
        dp__infer_job_clear(j);
    }
}

static int cmp_page(const void *x, const void *y) {
    const struct dp_page_answer *a = x, *b = y;
    return (a->number > b->number) - (a->number < b->number);
}

enum dp_status dp__infer_doc(struct dp_infer *inf, int index, struct dp_answers *out,
                             struct dp_progress *prog, struct dp_err *err) {
    for (;;) {
        struct doc_acc *a = acc_find(inf, index);
        if (a && a->end_seen && a->in_flight == 0) {
            enum dp_status st = a->st;
            if (st != DP_OK) {
                dp_err_set(err, st, "%s", a->msg);
            } else { /* pages finish in any order: hand them over in page order */
                out->doc_pages = a->doc_pages;
                qsort(a->ans.pages, (size_t)a->ans.n, sizeof *a->ans.pages, cmp_page);
                for (int i = 0; i < a->ans.n && st == DP_OK; i++) {
                    st = dp__answers_add(out, &a->ans.pages[i], err);
                    /* owned by out now (or freed on failure): text, confs, token confidences */
                    memset(&a->ans.pages[i], 0, sizeof a->ans.pages[i]);
                }
            }
            dp__infer_acc_remove(inf, a);
            return st;
        }
        int busy = vl_state_busy(inf->state), free_slots = 0;
        for (int k = 0; k < inf->parallel; k++)
            free_slots += !inf->jobs[k].active;
        /* fill free slots from the queue; wait for an item only when the model is idle */
        bool took = false;
        while (free_slots > 0) {
            struct item it;
            if (!dp__infer_q_pop(inf, &it, busy == 0 && !took))
                break;
            took = true;
            bool page = !it.end && !it.blank;
            take_item(inf, &it, prog);
            if (page) {
                free_slots = 0;
                for (int k = 0; k < inf->parallel; k++)
                    free_slots += !inf->jobs[k].active;
            }
            busy = vl_state_busy(inf->state);
            if (it.end && it.doc == index)
                break; /* the document may be complete */
        }
        if (vl_state_busy(inf->state) > 0) {
            struct vl_error ve = {0};
            if (vl_step(inf->state, &ve) != VL_OK)
                return dp__infer_from_vl(&ve, DP_ERR_INTERNAL, err, "model");
        }
        collect(inf, prog);
    }
}

