/* Model inference for the batch: the model is loaded once; one ingest thread opens the pending
 * documents in order, renders each selected page, checks it for blankness and preprocesses it
 * into pixel_values, and hands pages to the inference thread (the caller) through a bounded
 * queue (DP_BATCH_QUEUE_PAGES), so rasterisation of the next pages overlaps model compute.
 * The prompt puts the schema's instruction text before the image, so the KV cache of that
 * prefix is computed once and reused for every page (vl_gen_params.reuse_prefix).
 * Guards during generation: repetition loops and the page time limit stop the answer (flagged
 * truncated); the document time limit and a signal abort it.
 * Threads: the ingest thread touches only ingest objects and the queue; the model and the
 * vl_state belong to the calling thread. */
#include "dp_batch_impl.h"
#include "../base/dp_alloc.h"
#include "../base/dp_buf.h"
#include "../base/dp_fs.h"
#include "../base/dp_limits.h"
#include "../base/dp_log.h"
#include "vl.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PATH_BYTES 4096

#define DEFAULT_SYSTEM "You are a helpful assistant."
#define PROMPT_MAX_IDS ((size_t)1 << 16)

struct prompt {
    int32_t *prefix; /* (n_prefix) system, user turn, instruction, <|vision_start|> */
    size_t n_prefix;
    int32_t *suffix; /* (n_suffix) <|vision_end|><|im_end|>\n<|im_start|>assistant\n */
    size_t n_suffix;
    int32_t pad_id;  /* <|image_pad|> */
};

/* One queue item: a page ready for the model, or the end (or failure) of a document. */
struct item {
    int doc;                     /* index in docs */
    bool end;                    /* last item of the document */
    enum dp_status status;       /* document-level failure (end items only) */
    char msg[DP_ERR_MSG_MAX];
    int page_no;
    bool blank;
    struct vl_vision_input vin;  /* owned; empty for blank pages */
    struct ex_geom geom;
    double t_rasterize;
};

struct dp_infer {
    const struct dp_batch_opts *o;
    const struct sc_schema *schema;
    struct dp_inputs *docs;
    const struct dp_pwfile *pw;
    struct vl_model *model;
    struct vl_state *state;
    struct vl_image_params ip;
    struct dp_ingest_opts io; /* the run's ingest options with the model's grid factor */
    struct dp_page_sel sel;
    char model_id[PATH_BYTES];
    struct prompt prompt;
    /* the queue: ring of DP_BATCH_QUEUE_PAGES items */
    pthread_mutex_t mu;
    pthread_cond_t not_empty, not_full;
    struct item ring[DP_BATCH_QUEUE_PAGES];
    int head, count;
    bool stop;      /* consumer asks the producer to finish */
    int skip_doc;   /* producer: abandon this document (timed out / failed) */
    pthread_t thread;
    bool thread_started;
    struct dp_infer_stats stats;
};

/* ---- queue ------------------------------------------------------------------------------- */

static bool q_push(struct dp_infer *inf, struct item *it) {
    pthread_mutex_lock(&inf->mu);
    while (inf->count == DP_BATCH_QUEUE_PAGES && !inf->stop)
        pthread_cond_wait(&inf->not_full, &inf->mu);
    bool ok = !inf->stop;
    if (ok) {
        inf->ring[(inf->head + inf->count) % DP_BATCH_QUEUE_PAGES] = *it;
        inf->count++;
        pthread_cond_signal(&inf->not_empty);
    }
    pthread_mutex_unlock(&inf->mu);
    if (!ok)
        vl_vision_input_free(&it->vin);
    return ok;
}

static void q_pop(struct dp_infer *inf, struct item *out) {
    pthread_mutex_lock(&inf->mu);
    while (inf->count == 0)
        pthread_cond_wait(&inf->not_empty, &inf->mu);
    *out = inf->ring[inf->head];
    inf->head = (inf->head + 1) % DP_BATCH_QUEUE_PAGES;
    inf->count--;
    pthread_cond_signal(&inf->not_full);
    pthread_mutex_unlock(&inf->mu);
}

static bool producer_should_skip(struct dp_infer *inf, int doc) {
    pthread_mutex_lock(&inf->mu);
    bool s = inf->stop || inf->skip_doc == doc;
    pthread_mutex_unlock(&inf->mu);
    return s;
}

/* ---- ingest thread ------------------------------------------------------------------------ */

static enum dp_status ingest_page(struct dp_infer *inf, struct dp_doc *doc, int index,
                                  struct item *it, struct dp_err *err) {
    double t0 = dp__now();
    struct dp_page pg;
    enum dp_status st = dp_doc_render(&pg, doc, index, err);
    if (st != DP_OK)
        return st;
    it->page_no = pg.page_no;
    it->geom.page_w = pg.src_width ? pg.src_width : pg.width;
    it->geom.page_h = pg.src_height ? pg.src_height : pg.height;
    it->geom.pdf_w_pt = pg.width_pt;
    it->geom.pdf_h_pt = pg.height_pt;
    it->blank = !inf->o->keep_blank && dp__page_is_blank(pg.rgb, pg.width, pg.height);
    if (!it->blank) {
        struct vl_error ve = {0};
        if (vl_image_preprocess(&it->vin, pg.rgb, pg.width, pg.height, &inf->ip, &ve) != VL_OK)
            st = dp_err_set(err, ve.code == VL_ERR_NOMEM ? DP_ERR_NOMEM : DP_ERR_FORMAT,
                            "page %d: %s", pg.page_no, ve.msg);
        it->geom.model_w = (int)(it->vin.grid_w * inf->ip.patch_size);
        it->geom.model_h = (int)(it->vin.grid_h * inf->ip.patch_size);
    }
    dp_page_free(&pg);
    it->t_rasterize = dp__now() - t0;
    return st;
}

static void ingest_doc(struct dp_infer *inf, int di) {
    struct dp_input *d = &inf->docs->items[di];
    struct item end = {.doc = di, .end = true, .status = DP_OK};
    struct dp_err err = {0};
    struct dp_ingest_opts io = inf->io;
    const char *pw = inf->pw ? dp__pwfile_lookup(inf->pw, d->rel) : NULL;
    if (pw)
        io.password = pw;
    struct dp_doc *doc = NULL;
    enum dp_status st = dp_doc_open(&doc, d->path, &io, &err);
    int n = st == DP_OK ? dp_doc_page_count(doc) : 0;
    if (st == DP_OK)
        st = dp_page_sel_check(&inf->sel, n, d->rel, &err);
    for (int i = 0; i < n && st == DP_OK; i++) {
        if (!dp_page_sel_has(&inf->sel, i + 1))
            continue;
        if (producer_should_skip(inf, di))
            break;
        struct item it = {.doc = di};
        st = ingest_page(inf, doc, i, &it, &err);
        if (st != DP_OK) {
            vl_vision_input_free(&it.vin);
            break;
        }
        if (!q_push(inf, &it))
            break;
    }
    dp_doc_close(doc);
    if (st != DP_OK) {
        end.status = st;
        snprintf(end.msg, sizeof end.msg, "%s", err.msg);
    }
    q_push(inf, &end);
}

static void *ingest_main(void *arg) {
    struct dp_infer *inf = arg;
    for (int i = 0; i < inf->docs->n; i++) {
        pthread_mutex_lock(&inf->mu);
        bool stop = inf->stop;
        pthread_mutex_unlock(&inf->mu);
        if (stop)
            break;
        if (inf->docs->items[i].state == DP_INPUT_PENDING && !inf->docs->items[i].from_kept_raw)
            ingest_doc(inf, i);
    }
    return NULL;
}

/* ---- generation ---------------------------------------------------------------------------- */

struct gen_ctx {
    struct dp_infer *inf;
    int32_t *ids; /* (cap) generated so far */
    int64_t n, cap;
    bool repetition, page_timeout, doc_timeout;
    double t_page0, t_doc0;
};

static bool on_token(int32_t id, float logprob, void *user) {
    (void)logprob;
    struct gen_ctx *g = user;
    if (g->n < g->cap)
        g->ids[g->n++] = id;
    if (dp__repetition_period(g->ids, g->n) > 0) {
        g->repetition = true;
        return false;
    }
    double ps = g->inf->o->page_timeout_s;
    if (ps > 0 && dp__now() - g->t_page0 > ps) {
        g->page_timeout = true;
        return false;
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

/* ---- prompt -------------------------------------------------------------------------------- */

static enum dp_status encode(const struct vl_tokenizer *tok, const char *text, int32_t **out,
                             size_t *n, struct dp_err *err) {
    int32_t *ids = dp_reallocarray(NULL, PROMPT_MAX_IDS, sizeof *ids);
    if (!ids)
        return dp_err_set(err, DP_ERR_NOMEM, "out of memory encoding the prompt");
    struct vl_error ve = {0};
    if (vl_tokenizer_encode(tok, text, strlen(text), ids, PROMPT_MAX_IDS, n, &ve) != VL_OK) {
        dp_free(ids);
        return dp_err_set(err, DP_ERR_SCHEMA, "schema prompt: %s", ve.msg);
    }
    *out = ids;
    return DP_OK;
}

static enum dp_status prompt_build(struct prompt *p, const struct vl_tokenizer *tok,
                                   const struct sc_schema *s, struct dp_err *err) {
    memset(p, 0, sizeof *p);
    struct dp_buf b;
    dp_buf_init(&b, DP_MAX_TEXT_BYTES);
    /* Instruction first, image last: the whole text before <|vision_start|> is identical for
     * every page, so its KV cache is computed once (spec §5.1 allows any order). */
    dp_buf_appendf(&b, "<|im_start|>system\n%s<|im_end|>\n<|im_start|>user\n%s<|vision_start|>",
                   s->system_prompt ? s->system_prompt : DEFAULT_SYSTEM, s->prompt ? s->prompt : "");
    enum dp_status st = b.status;
    if (st == DP_OK)
        st = encode(tok, b.data, &p->prefix, &p->n_prefix, err);
    dp_buf_free(&b);
    if (st == DP_OK)
        st = encode(tok, "<|vision_end|><|im_end|>\n<|im_start|>assistant\n", &p->suffix,
                    &p->n_suffix, err);
    p->pad_id = vl_tokenizer_token_id(tok, "<|image_pad|>");
    if (st == DP_OK && p->pad_id < 0)
        st = dp_err_set(err, DP_ERR_MODEL, "tokenizer has no <|image_pad|> token");
    return st;
}

static void prompt_free(struct prompt *p) {
    DP_FREE(p->prefix);
    DP_FREE(p->suffix);
}

/* ---- open / per document / close ----------------------------------------------------------- */

static enum dp_status from_vl(const struct vl_error *ve, enum dp_status fallback,
                              struct dp_err *err, const char *what) {
    enum dp_status c = ve->code == VL_ERR_NOMEM ? DP_ERR_NOMEM
                       : ve->code == VL_ERR_LIMIT ? DP_ERR_LIMIT
                       : ve->code == VL_ERR_CANCELLED ? DP_ERR_CANCELLED
                                                     : fallback;
    return dp_err_set(err, c, "%s: %s", what, ve->msg);
}

enum dp_status dp__infer_open(struct dp_infer **out, const struct dp_batch_opts *o,
                              const struct sc_schema *schema, struct dp_inputs *docs,
                              const struct dp_pwfile *pw, struct dp_err *err) {
    *out = NULL;
    struct dp_infer *inf = dp_calloc(1, sizeof *inf);
    if (!inf)
        return dp_err_set(err, DP_ERR_NOMEM, "out of memory");
    inf->o = o;
    inf->schema = schema;
    inf->docs = docs;
    inf->pw = pw;
    inf->skip_doc = -1;
    pthread_mutex_init(&inf->mu, NULL);
    pthread_cond_init(&inf->not_empty, NULL);
    pthread_cond_init(&inf->not_full, NULL);
    const char *base = dp_path_basename(o->model_dir);
    snprintf(inf->model_id, sizeof inf->model_id, "%s", *base ? base : o->model_dir);
    enum dp_status st = dp_page_sel_parse(&inf->sel, o->pages, err);
    struct vl_error ve = {0};
    if (st == DP_OK && vl_model_load(&inf->model, o->model_dir, &ve) != VL_OK)
        st = dp_err_set(err, DP_ERR_MODEL, "%s: %s", o->model_dir, ve.msg);
    if (st == DP_OK)
        st = dp_cli_model_weights(inf->model, &o->gen, err);
    const struct vl_tokenizer *tok = inf->model ? vl_model_tokenizer(inf->model) : NULL;
    if (st == DP_OK && !tok)
        st = dp_err_set(err, DP_ERR_MODEL, "%s: no tokenizer.json", o->model_dir);
    if (st == DP_OK)
        st = prompt_build(&inf->prompt, tok, schema, err);
    char path[PATH_BYTES];
    snprintf(path, sizeof path, "%s/preprocessor_config.json", o->model_dir);
    vl_image_params_default(&inf->ip);
    if (st == DP_OK && vl_image_params_load(&inf->ip, path, &ve) != VL_OK)
        st = dp_err_set(err, DP_ERR_MODEL, "%s: %s", path, ve.msg);
    inf->ip.min_pixels = o->ingest.min_pixels;
    inf->ip.max_pixels = o->ingest.max_pixels;
    if (st == DP_OK) {
        struct vl_state_params sp = vl_state_default_params();
        sp.n_threads = (int)o->gen.threads;
        int64_t merge2 = inf->ip.merge_size * inf->ip.merge_size;
        int64_t patch2 = inf->ip.patch_size * inf->ip.patch_size;
        int64_t max_patches = o->ingest.max_pixels / patch2 + 1;
        int64_t need = (int64_t)inf->prompt.n_prefix + (int64_t)inf->prompt.n_suffix +
                       max_patches / merge2 + o->gen.max_new_tokens;
        if (need > sp.n_ctx)
            sp.n_ctx = need;
        sp.max_vision_patches = max_patches;
        if (vl_state_new(&inf->state, inf->model, &sp, &ve) != VL_OK)
            st = from_vl(&ve, DP_ERR_MODEL, err, "inference state");
    }
    if (st == DP_OK) {
        /* the ingest side renders PDFs straight to the model's grid */
        inf->io = o->ingest;
        inf->io.factor = inf->ip.patch_size * inf->ip.merge_size;
        if (pthread_create(&inf->thread, NULL, ingest_main, inf) != 0)
            st = dp_err_set(err, DP_ERR_INTERNAL, "cannot start the ingest thread");
        else
            inf->thread_started = true;
    }
    if (st != DP_OK) {
        dp__infer_close(inf);
        return st;
    }
    *out = inf;
    return DP_OK;
}

const char *dp__infer_model_id(const struct dp_infer *inf) {
    return inf->model_id;
}

void dp__infer_stats(const struct dp_infer *inf, struct dp_infer_stats *out) {
    *out = inf->stats;
}

/* Runs the model on one page; fills a (text, flags, timings). */
/* The recorded stop cause: a guard that stopped generation, else the token limit, else EOS. */
static enum ex_stop stop_cause(const struct vl_result *res, const struct gen_ctx *g) {
    if (g->repetition)
        return EX_STOP_REPETITION;
    if (g->page_timeout)
        return EX_STOP_TIMEOUT;
    return res->truncated ? EX_STOP_MAX_NEW_TOKENS : EX_STOP_EOS;
}

static enum dp_status answer_page(struct dp_infer *inf, const char *doc, struct item *it,
                                  struct gen_ctx *g, struct dp_page_answer *a,
                                  struct dp_input_timings *t, struct dp_err *err) {
    const struct prompt *p = &inf->prompt;
    int64_t n_img = vl_vision_tokens(inf->model, &it->vin);
    size_t n = p->n_prefix + (size_t)n_img + p->n_suffix;
    int32_t *ids = dp_reallocarray(NULL, n, sizeof *ids); /* (n) prompt ids */
    if (!ids)
        return dp_err_set(err, DP_ERR_NOMEM, "page %d: out of memory", it->page_no);
    memcpy(ids, p->prefix, p->n_prefix * sizeof *ids);
    for (int64_t i = 0; i < n_img; i++)
        ids[p->n_prefix + (size_t)i] = p->pad_id;
    memcpy(ids + p->n_prefix + n_img, p->suffix, p->n_suffix * sizeof *ids);
    struct vl_gen_params gp = vl_gen_default_params();
    gp.max_new_tokens = inf->o->gen.max_new_tokens;
    gp.temperature = (float)inf->o->gen.temperature;
    gp.top_k = inf->o->gen.top_k;
    gp.top_p = (float)inf->o->gen.top_p;
    gp.repetition_penalty = (float)inf->o->gen.repetition_penalty;
    gp.seed = inf->o->gen.seed;
    gp.reuse_prefix = !inf->o->no_prefix_cache;
    gp.on_token = on_token;
    gp.token_user = g;
    gp.should_abort = should_abort;
    gp.abort_user = g;
    g->n = 0;
    g->repetition = g->page_timeout = false;
    g->t_page0 = dp__now();
    struct vl_request rq = {.ids = ids, .n_ids = (int64_t)n, .vision = &it->vin, .n_vision = 1};
    struct vl_result res;
    memset(&res, 0, sizeof res);
    struct vl_error ve = {0};
    enum vl_status vs = vl_generate(inf->state, &rq, &gp, &res, &ve);
    dp_free(ids);
    t->vision += res.t.vision_s;
    t->prefill += res.t.prefill_s;
    t->decode += res.t.decode_s;
    if (vs != VL_OK) {
        if (vs == VL_ERR_CANCELLED && g->doc_timeout)
            return dp_err_set(err, DP_ERR_LIMIT, "page %d: document time limit of %gs reached",
                              it->page_no, inf->o->doc_timeout_s);
        return from_vl(&ve, DP_ERR_MODEL, err, "model");
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
        return from_vl(&ve, DP_ERR_MODEL, err, "decode");
    a->text = dp__answer_dup(text, len); /* into our allocator, byte-exact (NULs kept) */
    free(text);                      /* libvl's allocator */
    if (!a->text)
        return dp_err_set(err, DP_ERR_NOMEM, "page %d: out of memory", it->page_no);
    a->len = len;
    a->n_tokens = res.n;
    a->repetition = g->repetition;
    a->timed_out = g->page_timeout;
    a->truncated = res.truncated || g->repetition || g->page_timeout;
    a->stop = stop_cause(&res, g);
    if (g->repetition)
        DP_LOG_WARN("%s: page %d: repetition loop detected after %lld tokens; answer stopped "
                    "and flagged truncated", doc, it->page_no, (long long)res.n);
    if (g->page_timeout)
        DP_LOG_WARN("%s: page %d: page time limit of %gs reached; answer flagged truncated",
                    doc, it->page_no, inf->o->page_timeout_s);
    return DP_OK;
}

enum dp_status dp__infer_doc(struct dp_infer *inf, int index, struct dp_answers *out,
                             struct dp_progress *prog, struct dp_err *err) {
    struct dp_input *d = &inf->docs->items[index];
    int32_t *gen_ids = dp_reallocarray(NULL, (size_t)inf->o->gen.max_new_tokens + 1,
                                       sizeof *gen_ids);
    struct gen_ctx g = {.inf = inf, .ids = gen_ids, .cap = inf->o->gen.max_new_tokens + 1,
                        .t_doc0 = dp__now()};
    enum dp_status st = gen_ids ? DP_OK : dp_err_set(err, DP_ERR_NOMEM, "out of memory");
    for (;;) {
        struct item it;
        q_pop(inf, &it);
        DP_ASSERT(it.doc == index); /* producer and consumer walk the pending docs in order */
        if (it.end) {
            if (st == DP_OK && it.status != DP_OK)
                st = dp_err_set(err, it.status, "%s", it.msg);
            break;
        }
        d->t.rasterize += it.t_rasterize;
        if (st == DP_OK) {
            struct dp_page_answer a = {.number = it.page_no, .geom = it.geom, .blank = it.blank};
            if (it.blank) {
                a.text = dp_strdup("");
                DP_LOG_INFO("%s: page %d is blank; not sent to the model", d->rel, it.page_no);
                st = a.text ? DP_OK : dp_err_set(err, DP_ERR_NOMEM, "out of memory");
            } else {
                st = answer_page(inf, d->path, &it, &g, &a, &d->t, err);
            }
            if (st == DP_OK)
                st = dp__answers_add(out, &a, err);
            else
                dp_free(a.text);
            dp__progress_page(prog, d->rel, it.page_no);
            if (st != DP_OK) { /* tell the producer to stop rendering this document */
                pthread_mutex_lock(&inf->mu);
                inf->skip_doc = index;
                pthread_mutex_unlock(&inf->mu);
            }
        }
        vl_vision_input_free(&it.vin);
    }
    dp_free(gen_ids);
    return st;
}

void dp__infer_close(struct dp_infer *inf) {
    if (!inf)
        return;
    if (inf->thread_started) {
        pthread_mutex_lock(&inf->mu);
        inf->stop = true;
        pthread_cond_broadcast(&inf->not_full);
        pthread_mutex_unlock(&inf->mu);
        pthread_join(inf->thread, NULL);
        for (int i = 0; i < inf->count; i++)
            vl_vision_input_free(&inf->ring[(inf->head + i) % DP_BATCH_QUEUE_PAGES].vin);
    }
    prompt_free(&inf->prompt);
    dp_page_sel_free(&inf->sel);
    vl_state_free(inf->state);
    vl_model_free(inf->model);
    pthread_mutex_destroy(&inf->mu);
    pthread_cond_destroy(&inf->not_empty);
    pthread_cond_destroy(&inf->not_full);
    dp_free(inf);
}
