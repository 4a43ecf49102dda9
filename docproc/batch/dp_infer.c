/* Model inference for the batch: the model is loaded once; one ingest thread opens the pending
 * documents in order, renders each selected page, checks it for blankness and preprocesses it
 * into pixel_values, and hands pages to the inference thread (the caller) through a bounded
 * queue (DP_BATCH_QUEUE_PAGES), so rasterisation of the next pages overlaps model compute.
 * --parallel N pages are in flight at once as sequences of one vl_state (continuous batching:
 * a finished page's slot takes the next page, of the same or a later document); libvl decodes
 * them together with one pass over the weights per step, and each page's answer is
 * bit-identical to its answer alone. Documents still complete in input order: answers of later
 * documents wait here until the pipeline asks for them.
 * The prompt puts the schema's instruction text before the image, so the KV cache of that
 * prefix is computed once and reused for every page (vl_gen_params.reuse_prefix).
 * Guards during generation: repetition loops and the page time limit stop the answer (flagged
 * truncated); the document time limit and a signal abort it. Each ends its own page only.
 * Threads: the ingest thread touches only ingest objects and the queue; the model and the
 * vl_state belong to the calling thread. */
#include "dp_batch_impl.h"
#include "../base/dp_alloc.h"
#include "../base/dp_buf.h"
#include "../base/dp_fs.h"
#include "../base/dp_limits.h"
#include "../base/dp_log.h"
#include "dp_vl.h"
#include "ex_cons.h"
#include "vl_tools.h"

#include <pthread.h>
#include <stdio.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>

#define PATH_BYTES 4096
#define DP_RGB_CHANNELS 3
#define DP_MEMORY_LIMIT_ENV "DOCPROC_MEMORY_LIMIT" /* pixel_values rows hold C * T * P * P values */

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

/* Per-page generation guards (the vl_gen_params callbacks' user data). */
struct gen_ctx {
    struct dp_infer *inf;
    struct ex_cons *cons; /* the page's matcher (--constrain), else NULL */
    int doc;
    int32_t *ids; /* (cap) generated so far */
    int64_t n, cap;
    bool repetition, page_timeout, doc_timeout;
    double t_page0, t_doc0;
};

/* One page in flight: its queue item (owns the vision input), prompt and sequence. */
struct job {
    bool active;
    int seq;          /* vl_state slot */
    struct item it;
    int32_t *prompt;  /* (n_prompt) kept until the sequence ends */
    struct gen_ctx g;
};

/* A document whose pages are in flight or answered: answers in completion order. */
struct doc_acc {
    int doc;
    bool end_seen;    /* the producer's end item arrived: no more pages */
    int in_flight;
    enum dp_status st;
    char msg[DP_ERR_MSG_MAX];
    double t_doc0;
    struct dp_answers ans;
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
    /* pages in flight (one per vl_state sequence slot) and documents with pages in flight or
     * answered ahead of their turn */
    int parallel;
    struct job *jobs;  /* (parallel) */
    struct doc_acc *accs; /* (n_accs) */
    int n_accs, cap_accs;
    struct dp_constrain *cons; /* --constrain: the matcher, NULL when off (one page at a time) */
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

/* Takes the next item; waits for one when wait, else returns false when the queue is empty. */
static bool q_pop(struct dp_infer *inf, struct item *out, bool wait) {
    pthread_mutex_lock(&inf->mu);
    while (inf->count == 0 && wait)
        pthread_cond_wait(&inf->not_empty, &inf->mu);
    if (inf->count == 0) {
        pthread_mutex_unlock(&inf->mu);
        return false;
    }
    *out = inf->ring[inf->head];
    inf->head = (inf->head + 1) % DP_BATCH_QUEUE_PAGES;
    inf->count--;
    pthread_cond_signal(&inf->not_full);
    pthread_mutex_unlock(&inf->mu);
    return true;
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
            st = dp_vl_err(err, &ve, DP_ERR_FORMAT, "page %d", pg.page_no);
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

/* ---- prompt -------------------------------------------------------------------------------- */

static enum dp_status encode(const struct vl_tokenizer *tok, const char *text, int32_t **out,
                             size_t *n, struct dp_err *err) {
    int32_t *ids = dp_reallocarray(NULL, PROMPT_MAX_IDS, sizeof *ids);
    if (!ids)
        return dp_err_set(err, DP_ERR_NOMEM, "out of memory encoding the prompt");
    struct vl_error ve = {0};
    if (vl_tokenizer_encode(tok, text, strlen(text), ids, PROMPT_MAX_IDS, n, &ve) != VL_OK) {
        dp_free(ids);
        return dp_vl_err(err, &ve, DP_ERR_SCHEMA, "schema prompt");
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

/* "<what>: <libvl's message>" through the one libvl mapping (dp_vl.h); fallback names what
 * failed for the codes without a docproc twin. */
static enum dp_status from_vl(const struct vl_error *ve, enum dp_status fallback,
                              struct dp_err *err, const char *what) {
    return dp_vl_err(err, ve, fallback, "%s", what);
}

/* Bytes of memory this process may still take: MemAvailable, lowered by a cgroup v2 limit, by
 * RLIMIT_DATA (heap and anonymous memory; the mmapped weights do not count against it) and by
 * $DOCPROC_MEMORY_LIMIT (bytes; for containers whose limits /proc does not show, and tests).
 * 0 when nothing can be read. */
static uint64_t memory_available(void) {
    uint64_t avail = 0;
    const char *env = getenv(DP_MEMORY_LIMIT_ENV);
    if (env && *env) {
        char *end = NULL;
        unsigned long long v = strtoull(env, &end, 10);
        if (end && !*end && v > 0)
            avail = v;
        else
            DP_LOG_WARN("%s=%s is not a byte count; ignored", DP_MEMORY_LIMIT_ENV, env);
    }
    FILE *f = fopen("/proc/meminfo", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f)) {
        unsigned long long kb;
        if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1 &&
            (!avail || (uint64_t)kb * 1024 < avail))
            avail = (uint64_t)kb * 1024;
    }
    if (f)
        fclose(f);
    unsigned long long max = 0, cur = 0;
    f = fopen("/sys/fs/cgroup/memory.max", "r");
    bool limited = f && fscanf(f, "%llu", &max) == 1;
    if (f)
        fclose(f);
    f = fopen("/sys/fs/cgroup/memory.current", "r");
    if (limited && f && fscanf(f, "%llu", &cur) == 1) {
        uint64_t left = max > cur ? max - cur : 0;
        avail = avail && avail < left ? avail : left;
    }
    if (f)
        fclose(f);
    struct rlimit rl;
    if (getrlimit(RLIMIT_DATA, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        struct rusage ru;
        uint64_t used = getrusage(RUSAGE_SELF, &ru) == 0 ? (uint64_t)ru.ru_maxrss * 1024 : 0;
        uint64_t left = rl.rlim_cur > used ? (uint64_t)rl.rlim_cur - used : 0;
        avail = avail && avail < left ? avail : left;
    }
    return avail;
}

/* --parallel auto: as many pages as DP_BATCH_AUTO_MEM_SHARE of the available memory holds
 * (each: its KV cache for prompt + new tokens, its vision input, the state's scratch once),
 * at least 1, at most DP_BATCH_AUTO_PARALLEL. */
static int auto_parallel(const struct dp_infer *inf, const struct vl_state_params *sp,
                         int64_t need, int64_t max_patches) {
    uint64_t avail = memory_available();
    uint64_t base = vl_state_bytes(inf->model, sp);
    const struct vl_image_params *ip = &inf->ip;
    uint64_t patch_dim = (uint64_t)(DP_RGB_CHANNELS * ip->temporal_patch_size * ip->patch_size *
                                    ip->patch_size);
    uint64_t per = vl_seq_bytes(inf->model, need) +
                   (uint64_t)max_patches * patch_dim * sizeof(float);
    uint64_t budget = (uint64_t)((double)avail * DP_BATCH_AUTO_MEM_SHARE);
    int n = 1;
    while (n < DP_BATCH_AUTO_PARALLEL && budget > base && (uint64_t)(n + 1) * per <= budget - base)
        n++;
    DP_LOG_INFO("--parallel auto: %llu bytes available, %llu per page, %llu for the state: %d "
                "pages", (unsigned long long)avail, (unsigned long long)per,
                (unsigned long long)base, n);
    return n;
}

enum dp_status dp__infer_open(struct dp_infer **out, const struct dp_batch_opts *o,
                              const struct sc_schema *schema, struct ex_gram *gram,
                              struct dp_inputs *docs, const struct dp_pwfile *pw,
                              struct dp_err *err) {
    *out = NULL;
    struct dp_infer *inf = dp_calloc(1, sizeof *inf);
    if (!inf) {
        ex_gram_free(gram);
        return dp_err_set(err, DP_ERR_NOMEM, "out of memory");
    }
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
        st = dp_vl_err(err, &ve, DP_ERR_MODEL, "%s", o->model_dir);
    if (st == DP_OK)
        st = dp_cli_model_weights(inf->model, &o->gen, err);
    const struct vl_tokenizer *tok = inf->model ? vl_model_tokenizer(inf->model) : NULL;
    if (st == DP_OK && !tok)
        st = dp_err_set(err, DP_ERR_MODEL, "%s: no tokenizer.json", o->model_dir);
    if (st == DP_OK)
        st = prompt_build(&inf->prompt, tok, schema, err);
    if (st == DP_OK && gram) { /* budget checked here, before any page */
        st = dp_constrain_new(&inf->cons, gram, inf->model, o->gen.max_new_tokens, err);
        gram = NULL;
    }
    ex_gram_free(gram);
    char path[PATH_BYTES];
    snprintf(path, sizeof path, "%s/preprocessor_config.json", o->model_dir);
    vl_image_params_default(&inf->ip);
    if (st == DP_OK && vl_image_params_load(&inf->ip, path, &ve) != VL_OK)
        st = dp_vl_err(err, &ve, DP_ERR_MODEL, "%s", path);
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
        inf->parallel = o->parallel > 0 ? o->parallel : auto_parallel(inf, &sp, need, max_patches);
        sp.max_seqs = inf->parallel;
        inf->jobs = dp_calloc((size_t)inf->parallel, sizeof *inf->jobs);
        if (inf->jobs && inf->cons) /* one matcher per page in flight */
            st = dp_constrain_reserve(inf->cons, inf->parallel, err);
        if (st != DP_OK)
            ;
        else if (!inf->jobs)
            st = dp_err_set(err, DP_ERR_NOMEM, "out of memory");
        else if (vl_state_new(&inf->state, inf->model, &sp, &ve) != VL_OK)
            st = from_vl(&ve, DP_ERR_MODEL, err, "inference state");
        else
            DP_LOG_INFO("model: %d page%s in flight%s", inf->parallel,
                        inf->parallel == 1 ? "" : "s", o->parallel > 0 ? "" : " (--parallel auto)");
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

/* Confidence of every value of a constrained answer (ex_conf_value over its tokens). */
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

static void acc_remove(struct dp_infer *inf, struct doc_acc *a) {
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

static void job_clear(struct job *j) {
    vl_vision_input_free(&j->it.vin);
    dp_free(j->prompt);
    dp_free(j->g.ids);
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
    struct vl_request rq = {
        .ids = j->prompt, .n_ids = (int64_t)n, .vision = &j->it.vin, .n_vision = 1};
    struct vl_error ve = {0};
    if (vl_seq_add(inf->state, &j->seq, &rq, &gp, &ve) != VL_OK)
        return from_vl(&ve, DP_ERR_MODEL, err, "model");
    j->active = true;
    a->in_flight++;
    return DP_OK;
}

/* A finished sequence: its answer (text, flags, timings) into the document's answers. */
static enum dp_status job_finish(struct dp_infer *inf, struct job *j, struct doc_acc *a,
                                 struct dp_err *err) {
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
    if (cons && value_confs(&pa, cons, &res, page, err) != DP_OK) {
        dp_free(pa.text);
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

/* One queue item: a document's end, a blank page (answered here) or a page for the model. */
static void take_item(struct dp_infer *inf, struct item *it, struct dp_progress *prog) {
    struct dp_err err = {0};
    struct doc_acc *a = acc_get(inf, it->doc, &err);
    struct dp_input *d = &inf->docs->items[it->doc];
    if (!a) { /* out of memory for the bookkeeping: the page is lost, the run goes on */
        DP_LOG_ERROR("%s: %s", d->rel, err.msg);
        vl_vision_input_free(&it->vin);
        return;
    }
    if (it->end) {
        a->end_seen = true;
        if (it->status != DP_OK)
            acc_fail(inf, a, it->status, it->msg);
        return;
    }
    d->t.rasterize += it->t_rasterize;
    if (a->st != DP_OK) {
        vl_vision_input_free(&it->vin);
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
    if (job_start(inf, j, a, &err) != DP_OK) {
        acc_fail(inf, a, err.code, err.msg);
        job_clear(j);
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
        enum dp_status st = job_finish(inf, j, a, &err);
        if (st != DP_OK && a->st == DP_OK)
            acc_fail(inf, a, st, err.msg);
        dp__progress_page(prog, inf->docs->items[j->it.doc].rel, j->it.page_no);
        a->in_flight--;
        vl_seq_release(inf->state, j->seq);
        job_clear(j);
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
                qsort(a->ans.pages, (size_t)a->ans.n, sizeof *a->ans.pages, cmp_page);
                for (int i = 0; i < a->ans.n && st == DP_OK; i++) {
                    st = dp__answers_add(out, &a->ans.pages[i], err);
                    a->ans.pages[i].text = NULL; /* owned by out now (or freed on failure) */
                }
            }
            acc_remove(inf, a);
            return st;
        }
        int busy = vl_state_busy(inf->state), free_slots = 0;
        for (int k = 0; k < inf->parallel; k++)
            free_slots += !inf->jobs[k].active;
        /* fill free slots from the queue; wait for an item only when the model is idle */
        bool took = false;
        while (free_slots > 0) {
            struct item it;
            if (!q_pop(inf, &it, busy == 0 && !took))
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
                return from_vl(&ve, DP_ERR_INTERNAL, err, "model");
        }
        collect(inf, prog);
    }
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
    for (int k = 0; inf->jobs && k < inf->parallel; k++)
        job_clear(&inf->jobs[k]);
    dp_free(inf->jobs);
    while (inf->n_accs > 0)
        acc_remove(inf, &inf->accs[inf->n_accs - 1]);
    dp_free(inf->accs);
    prompt_free(&inf->prompt);
    dp_constrain_free(inf->cons);
    dp_page_sel_free(&inf->sel);
    vl_state_free(inf->state);
    vl_model_free(inf->model);
    pthread_mutex_destroy(&inf->mu);
    pthread_cond_destroy(&inf->not_empty);
    pthread_cond_destroy(&inf->not_full);
    dp_free(inf);
}
