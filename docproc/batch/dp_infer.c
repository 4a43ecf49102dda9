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
 * vl_state belong to the calling thread.
 * Files: this one opens (model, prompt, state, ingest thread) and closes; the ingest thread and
 * the queue are in dp_infer_ingest.c, pages in flight in dp_infer_pages.c (dp_infer_impl.h). */
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

#define DP_RGB_CHANNELS 3
#define DP_MEMORY_LIMIT_ENV "DOCPROC_MEMORY_LIMIT" /* pixel_values rows hold C * T * P * P values */

#define DEFAULT_SYSTEM "You are a helpful assistant."
#define PROMPT_MAX_IDS ((size_t)1 << 16)

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
enum dp_status dp__infer_from_vl(const struct vl_error *ve, enum dp_status fallback,
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
    if (st == DP_OK)
        st = dp_vl_model_load(&inf->model, o->model_dir, o->gen.mmproj, err);
    if (st == DP_OK && !vl_model_has_vision(inf->model))
        st = dp_err_set(err, DP_ERR_MODEL,
                        "%s: a GGUF text model without its vision projector cannot read pages: "
                        "give the projector with --mmproj (or put it in the model directory)",
                        o->model_dir);
    if (st == DP_OK)
        st = dp_vl_model_weights(inf->model, o->gen.weights, o->gen.vision_weights,
                                     (int)o->gen.threads, err);
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
    if (st == DP_OK && !vl_model_is_gguf(inf->model) &&
        vl_image_params_load(&inf->ip, path, &ve) != VL_OK)
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
            st = dp__infer_from_vl(&ve, DP_ERR_MODEL, err, "inference state");
        else
            DP_LOG_INFO("model: %d page%s in flight%s", inf->parallel,
                        inf->parallel == 1 ? "" : "s", o->parallel > 0 ? "" : " (--parallel auto)");
    }
    if (st == DP_OK) {
        /* the ingest side renders PDFs straight to the model's grid */
        inf->io = o->ingest;
        inf->io.factor = inf->ip.patch_size * inf->ip.merge_size;
        if (pthread_create(&inf->thread, NULL, dp__infer_ingest_main, inf) != 0)
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
            dp__infer_item_free(&inf->ring[(inf->head + i) % DP_BATCH_QUEUE_PAGES]);
    }
    for (int k = 0; inf->jobs && k < inf->parallel; k++)
        dp__infer_job_clear(&inf->jobs[k]);
    dp_free(inf->jobs);
    while (inf->n_accs > 0)
        dp__infer_acc_remove(inf, &inf->accs[inf->n_accs - 1]);
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
