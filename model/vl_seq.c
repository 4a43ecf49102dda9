/* The sequence scheduler (spec §12.1 per sequence): up to max_seqs requests in one state, each
 * with its own KV cache, MRoPE offset, sampler and stop conditions. vl_step does one unit of
 * work: the vision tower of one new sequence, one prefill chunk of it, or one decode step of
 * every decoding sequence (their rows share each weight pass); decode steps alternate with the
 * other units so running sequences keep producing tokens while a new one joins.
 * Batch invariance (docs/model-llm.md): a sequence's rows never share a reduction with another
 * sequence's, and its prompt is always cut the same way: a segment [0, seg) up to its first
 * vision token, then chunks of n_batch. So the prefix cache — the KV of the last segment — holds
 * what the sequence would compute itself, and is reused only on an exact match.
 * One state, one thread. */
#include "vl_llm_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static bool is_pad(const struct vl_config *cfg, int32_t id) {
    return id == cfg->image_token_id || id == cfg->video_token_id;
}

/* ---- admission ---------------------------------------------------------------------------- */

#define TEXT_ONLY_MSG                                                                         \
    "this model has no vision tower (a GGUF text model without its projector): text-only "      \
    "requests only"

static enum vl_status check_request(const struct vl_state *s, const struct vl_request *rq,
                                    const struct vl_gen_params *p, struct vl_error *err) {
    const struct vl_config *cfg = &s->m->cfg;
    if (rq->n_ids < 1 || !rq->ids)
        return vl__err(err, VL_ERR_INVALID, "empty prompt");
    if (rq->n_vision && s->m->text_only)
        return vl__err(err, VL_ERR_INVALID, TEXT_ONLY_MSG);
    if (rq->n_ids > s->params.n_ctx)
        return vl__err(err, VL_ERR_LIMIT, "prompt has %lld tokens, the context holds %lld",
                       (long long)rq->n_ids, (long long)s->params.n_ctx);
    if (p->max_new_tokens < 1)
        return vl__err(err, VL_ERR_INVALID, "max_new_tokens %lld must be >= 1",
                       (long long)p->max_new_tokens);
    if (p->temperature > 0.0f && (p->top_p <= 0.0f || p->top_p > 1.0f))
        return vl__err(err, VL_ERR_INVALID, "top_p %g must be in (0, 1]", (double)p->top_p);
    if (p->repetition_penalty <= 0.0f || p->top_k < 0)
        return vl__err(err, VL_ERR_INVALID, "repetition_penalty %g must be > 0, top_k >= 0",
                       (double)p->repetition_penalty);
    for (int64_t i = 0; i < rq->n_ids; i++)
        if (rq->ids[i] < 0 || rq->ids[i] >= cfg->text.vocab_size)
            return vl__err(err, VL_ERR_INVALID, "token %lld: id %d outside the vocabulary (%lld)",
                           (long long)i, rq->ids[i], (long long)cfg->text.vocab_size);
    if (rq->n_vision < 0 || (rq->n_vision > 0 && !rq->vision))
        return vl__err(err, VL_ERR_INVALID, "bad vision list");
    for (int k = 0; k < rq->n_vision; k++)
        if (rq->vision[k].n_patches > s->params.max_vision_patches)
            return vl__err(err, VL_ERR_LIMIT,
                           "%s %d has %lld patches, the state holds at most %lld",
                           rq->vision[k].is_video ? "video" : "image", k + 1,
                           (long long)rq->vision[k].n_patches,
                           (long long)s->params.max_vision_patches);
    return VL_OK;
}

enum vl_status vl_seq_add(struct vl_state *s, int *out_seq, const struct vl_request *rq,
                          const struct vl_gen_params *p, struct vl_error *err) {
    *out_seq = -1;
    enum vl_status st = check_request(s, rq, p, err);
    if (st != VL_OK)
        return st;
    int slot = -1;
    for (int i = 0; i < s->params.max_seqs && slot < 0; i++)
        if (s->seqs[i].phase == VL_SEQ_FREE)
            slot = i;
    if (slot < 0)
        return vl__err(err, VL_ERR_LIMIT, "all %d sequence slots are in use", s->params.max_seqs);
    struct vl_seq *q = &s->seqs[slot];
    const int64_t V = s->m->cfg.text.vocab_size;
    int64_t need = rq->n_ids + p->max_new_tokens;
    if (need > s->params.n_ctx || need < rq->n_ids)
        need = s->params.n_ctx;
    /* the prompt copy and the result arrays are kept across uses of the slot */
    if (q->ids_cap < rq->n_ids) {
        int32_t *ids = vl__malloc((size_t)rq->n_ids * sizeof *ids);
        if (!ids)
            return vl__err(err, VL_ERR_NOMEM, "prompt of %lld tokens: out of memory",
                           (long long)rq->n_ids);
        vl__free(q->ids);
        q->ids = ids;
        q->ids_cap = rq->n_ids;
    }
    int64_t n_out = need - rq->n_ids + 1;
    if (q->out_cap < n_out) {
        void *p3[3];
        const size_t b3[3] = {(size_t)n_out * sizeof *q->out_ids,
                              (size_t)n_out * sizeof *q->out_logprobs,
                              (size_t)n_out * sizeof *q->out_masked_logprobs};
        if (!vl__malloc_all(p3, b3, 3))
            return vl__err(err, VL_ERR_NOMEM, "result of %lld tokens: out of memory",
                           (long long)n_out);
        vl__free(q->out_ids);
        vl__free(q->out_logprobs);
        vl__free(q->out_masked_logprobs);
        q->out_ids = p3[0];
        q->out_logprobs = p3[1];
        q->out_masked_logprobs = p3[2];
        q->out_cap = n_out;
    }
    if (!q->sampler.seen) {
        q->sampler.seen = vl__malloc((size_t)V);
        if (!q->sampler.seen)
            return vl__err(err, VL_ERR_NOMEM, "sampler: out of memory");
    }
    memcpy(q->ids, rq->ids, (size_t)rq->n_ids * sizeof *q->ids);
    q->n_ids = rq->n_ids;
    q->vision = rq->vision;
    q->n_vision = rq->n_vision;
    q->p = *p;
    q->need = need;
    q->n_kv = 0;
    q->rope_delta = 0;
    q->seg = 0;
    for (int64_t i = 0; i < rq->n_ids && !q->seg; i++)
        if (is_pad(&s->m->cfg, rq->ids[i]))
            q->seg = i;
    q->pf_at = 0;
    q->last_id = -1;
    q->sampler.n_vocab = V;
    q->sampler.work = s->samp_work;
    q->sampler.cand = s->samp_cand;
    q->logits = NULL;
    memset(&q->res, 0, sizeof q->res);
    q->res.ids = q->out_ids;
    q->res.logprobs = q->out_logprobs;
    q->res.masked_logprobs = q->out_masked_logprobs;
    q->n_forced = 0;
    q->res.stop = VL_STOP_MAX_TOKENS;
    q->res.t.n_prompt = rq->n_ids;
    q->status = VL_OK;
    memset(&q->err, 0, sizeof q->err);
    q->phase = VL_SEQ_PENDING;
    *out_seq = slot;
    return VL_OK;
}

/* ---- results ------------------------------------------------------------------------------- */

static void finish(struct vl_seq *q, enum vl_status st) {
    q->status = st;
    q->phase = VL_SEQ_DONE;
}

/* Records a failure of q alone (the error message goes to the sequence). */
static void fail(struct vl_seq *q, enum vl_status st) {
    finish(q, st);
}

int vl_state_busy(const struct vl_state *s) {
    int n = 0;
    for (int i = 0; i < s->params.max_seqs; i++)
        n += s->seqs[i].phase != VL_SEQ_FREE && s->seqs[i].phase != VL_SEQ_DONE;
    return n;
}

bool vl_seq_done(const struct vl_state *s, int seq, struct vl_result *out,
                 enum vl_status *status, struct vl_error *seq_err) {
    if (seq < 0 || seq >= s->params.max_seqs || s->seqs[seq].phase != VL_SEQ_DONE)
        return false;
    const struct vl_seq *q = &s->seqs[seq];
    if (out)
        *out = q->res;
    if (status)
        *status = q->status;
    if (seq_err && q->status != VL_OK && seq_err->code == VL_OK)
        *seq_err = q->err;
    return true;
}

void vl_seq_cancel(struct vl_state *s, int seq) {
    if (seq < 0 || seq >= s->params.max_seqs)
        return;
    struct vl_seq *q = &s->seqs[seq];
    if (q->phase == VL_SEQ_FREE || q->phase == VL_SEQ_DONE)
        return;
    vl__err(&q->err, VL_ERR_CANCELLED, "cancelled after %lld tokens", (long long)q->res.n);
    fail(q, VL_ERR_CANCELLED);
}

void vl_seq_release(struct vl_state *s, int seq) {
    if (seq < 0 || seq >= s->params.max_seqs)
        return;
    struct vl_seq *q = &s->seqs[seq];
    q->phase = VL_SEQ_FREE;
    q->vision = NULL;
    q->n_vision = 0;
}

/* ---- vision and positions ------------------------------------------------------------------ */

/* Walks the vision rows of one kind (images or videos) in input order. */
struct scatter_cursor {
    int input;    /* index into the request's vision list */
    int64_t used; /* tokens of that input already placed */
};

static int64_t take_row(struct scatter_cursor *c, const struct vl_config *cfg,
                        const struct vl_seq *q, bool video) {
    while (c->input < q->n_vision &&
           (q->vision[c->input].is_video != video ||
            c->used >= vl__vision_tokens(cfg, &q->vision[c->input]))) {
        c->input++;
        c->used = 0;
    }
    int64_t row = 0;
    for (int k = 0; k < c->input; k++)
        row += vl__vision_tokens(cfg, &q->vision[k]);
    return row + c->used++;
}

static void hook_positions(struct vl_state *s, int64_t n, int64_t delta) {
    if (!s->hook)
        return;
    /* vis_embeds (n_ctx * H floats) is free until the vision tower runs */
    float *tmp = s->vis_embeds;
    for (int64_t i = 0; i < VL_ROPE_AXES * n; i++)
        tmp[i] = (float)s->pos[i];
    int64_t shape[2] = {VL_ROPE_AXES, n};
    vl__hook(s, tmp, 2, shape, "position_ids");
    float d = (float)delta;
    int64_t one = 1;
    vl__hook(s, &d, 1, &one, "rope_deltas");
}

static enum vl_status run_vision(struct vl_state *s, struct vl_seq *q, struct vl_error *err) {
    const struct vl_config *cfg = &s->m->cfg;
    const int64_t H = cfg->text.hidden_size;
    int64_t row = 0;
    if (q->n_vision && s->m->text_only)
        return vl__err(err, VL_ERR_INVALID, TEXT_ONLY_MSG);
    for (int k = 0; k < q->n_vision; k++) {
        const struct vl_vision_input *in = &q->vision[k];
        int64_t nt = vl__vision_tokens(cfg, in);
        if (row + nt > s->params.n_ctx)
            return vl__err(err, VL_ERR_LIMIT, "vision inputs need %lld tokens, context is %lld",
                           (long long)(row + nt), (long long)s->params.n_ctx);
        enum vl_status st = vl__vision_encode(&s->comp, s->m, in, s->vis_scratch,
                                              s->vis_embeds + row * H, s->hook, s->hook_user, err);
        if (st != VL_OK)
            return st;
        row += nt;
    }
    q->res.t.n_vision_tokens = row;
    return VL_OK;
}

/* Takes the cached prefix when it is exactly q's first segment (same ids, same length). */
static enum vl_status reuse_prefix(struct vl_state *s, struct vl_seq *q, struct vl_error *err) {
    if (!q->p.reuse_prefix || q->seg <= 0 || s->pfx_n != q->seg ||
        memcmp(s->pfx_ids, q->ids, (size_t)q->seg * sizeof *q->ids) != 0)
        return VL_OK;
    enum vl_status st = vl__seq_reserve(s, q, vl__seq_first_cap(q), err);
    if (st != VL_OK)
        return st;
    const struct vl_text_config *tc = &s->m->cfg.text;
    const int64_t blocks = tc->num_hidden_layers * tc->num_key_value_heads, hd = tc->head_dim;
    for (int64_t b = 0; b < blocks; b++) {
        memcpy(q->k_cache + b * q->cap * hd, s->pfx_k + b * s->pfx_cap * hd,
               (size_t)(q->seg * hd) * sizeof(float));
        memcpy(q->v_cache + b * q->cap * hd, s->pfx_v + b * s->pfx_cap * hd,
               (size_t)(q->seg * hd) * sizeof(float));
    }
    memcpy(q->kv_ids, q->ids, (size_t)q->seg * sizeof *q->ids);
    q->n_kv = q->pf_at = q->seg;
    q->res.t.n_reused = q->seg;
    return VL_OK;
}

/* Keeps q's first segment as the prefix cache (after it was computed). A failure to allocate
 * only loses the cache. */
static void keep_prefix(struct vl_state *s, const struct vl_seq *q) {
    const struct vl_text_config *tc = &s->m->cfg.text;
    const int64_t blocks = tc->num_hidden_layers * tc->num_key_value_heads, hd = tc->head_dim;
    const int64_t n = q->seg;
    s->pfx_n = 0;
    if (n > s->pfx_cap) {
        size_t fl;
        if (__builtin_mul_overflow((size_t)(blocks * hd), (size_t)n, &fl) ||
            fl > SIZE_MAX / sizeof(float))
            return;
        void *p3[3];
        const size_t b3[3] = {fl * sizeof(float), fl * sizeof(float), (size_t)n * sizeof(int32_t)};
        if (!vl__malloc_all(p3, b3, 3)) {
            vl__log(VL_LOG_WARN, "prefix cache of %lld tokens: out of memory", (long long)n);
            return;
        }
        vl__free(s->pfx_k);
        vl__free(s->pfx_v);
        vl__free(s->pfx_ids);
        s->pfx_k = p3[0];
        s->pfx_v = p3[1];
        s->pfx_ids = p3[2];
        s->pfx_cap = n;
    }
    for (int64_t b = 0; b < blocks; b++) {
        memcpy(s->pfx_k + b * s->pfx_cap * hd, q->k_cache + b * q->cap * hd,
               (size_t)(n * hd) * sizeof(float));
        memcpy(s->pfx_v + b * s->pfx_cap * hd, q->v_cache + b * q->cap * hd,
               (size_t)(n * hd) * sizeof(float));
    }
    memcpy(s->pfx_ids, q->ids, (size_t)n * sizeof *q->ids);
    s->pfx_n = n;
}

/* PENDING -> PREFILL: positions, the prefix, the vision tower. The shared pos / vis_embeds
 * buffers hold this sequence's until its prefill ends (one sequence prefills at a time). */
static enum vl_status start_seq(struct vl_state *s, struct vl_seq *q, struct vl_error *err) {
    const struct vl_config *cfg = &s->m->cfg;
    int64_t delta = 0;
    enum vl_status st = vl__rope_index(s->pos, &delta, q->ids, q->n_ids, cfg, q->vision,
                                       q->n_vision, err);
    if (st != VL_OK)
        return st;
    q->rope_delta = delta;
    st = reuse_prefix(s, q, err);
    if (st != VL_OK)
        return st;
    hook_positions(s, q->n_ids, delta);
    double t0 = vl__now_s();
    st = run_vision(s, q, err);
    q->res.t.vision_s = vl__now_s() - t0;
    if (st != VL_OK)
        return st;
    q->phase = VL_SEQ_PREFILL;
    return VL_OK;
}

/* ---- sampling and stops -------------------------------------------------------------------- */

/* Appends one id to q's result and applies the stop rules; true when q ended (DONE). */
static bool append_id(struct vl_state *s, struct vl_seq *q, int32_t id, float lp, float masked_lp) {
    const struct vl_config *cfg = &s->m->cfg;
    const struct vl_gen_params *p = &q->p;
    struct vl_result *out = &q->res;
    q->out_ids[out->n] = id;
    q->out_logprobs[out->n] = lp;
    q->out_masked_logprobs[out->n] = masked_lp;
    out->n++;
    vl__sampler_mark(&q->sampler, id);
    q->last_id = id;
    q->phase = VL_SEQ_DECODE;
    if (p->accept)
        p->accept(id, p->constrain_user);
    if (p->on_token && !p->on_token(id, lp, p->token_user)) {
        out->stop = VL_STOP_CALLBACK;
        finish(q, VL_OK);
    } else if (!p->ignore_eos && vl__is_eos(cfg, id)) {
        out->stop = VL_STOP_EOS;
        finish(q, VL_OK);
    } else if (out->n >= p->max_new_tokens) {
        out->stop = VL_STOP_MAX_TOKENS;
        out->truncated = true;
        finish(q, VL_OK);
    } else if (q->n_kv >= s->params.n_ctx) {
        out->stop = VL_STOP_CONTEXT;
        out->truncated = true;
        finish(q, VL_OK);
    }
    return q->phase == VL_SEQ_DONE;
}

/* ---- constraint hook (issue #17): generic; costs nothing when p->constrain is NULL ---------
 * Before each choice the hook may mask the sequence's logits row or return forced ids; forced
 * ids are appended without sampling and fed as one chunk by feed_forced. */

/* log-sum-exp of the raw logits, in double (the raw log p of a sampled id is z[id] - lse). */
static double logsumexp(const float *z, int64_t n) {
    float mx = -INFINITY;
    for (int64_t i = 0; i < n; i++)
        mx = z[i] > mx ? z[i] : mx;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++)
        sum += exp((double)z[i] - (double)mx);
    return (double)mx + log(sum);
}

/* Calls the hook on q's logits row; returns the forced count (> 0: appended, q->n_forced set),
 * 0 to sample, -1 when q failed. */
static int constrain(struct vl_state *s, struct vl_seq *q, float *logits, double *lse) {
    const struct vl_gen_params *p = &q->p;
    const int64_t V = s->m->cfg.text.vocab_size;
    *lse = logsumexp(logits, V);
    int64_t cap = VL_GEN_MAX_FORCED;
    cap = cap < s->params.n_batch ? cap : s->params.n_batch;
    cap = cap < p->max_new_tokens - q->res.n ? cap : p->max_new_tokens - q->res.n;
    cap = cap < q->need - q->n_kv ? cap : q->need - q->n_kv;
    cap = cap > 0 ? cap : 0;
    int nf = p->constrain(logits, V, q->forced, (int)cap, p->constrain_user);
    if (nf < 0 || nf > cap) {
        vl__err(&q->err, VL_ERR_INVALID, "constraint allows no token after %lld tokens",
                (long long)q->res.n);
        fail(q, VL_ERR_INVALID);
        return -1;
    }
    if (nf == 0)
        return 0;
    int k = 0;
    bool done = false;
    while (k < nf && !done)
        done = append_id(s, q, q->forced[k++], NAN, 0.0f);
    q->res.n_forced += k;
    q->res.n_forced_chunks++;
    q->n_forced = done ? 0 : nf;
    return nf;
}

/* Picks q's next id from logits (q's row, which the constrain hook may mask) and applies the
 * stop rules; q ends (DONE) or stays DECODE with last_id (or forced ids) to feed. */
static void choose(struct vl_state *s, struct vl_seq *q, float *logits) {
    const struct vl_config *cfg = &s->m->cfg;
    const struct vl_gen_params *p = &q->p;
    float lp = 0.0f;
    double lse = 0.0;
    q->logits = logits;
    if (p->constrain && constrain(s, q, logits, &lse) != 0)
        return; /* forced ids appended (or failed) */
    int32_t id = vl__sampler_pick(&q->sampler, logits, p, cfg, &lp);
    float raw = p->constrain ? (float)((double)logits[id] - lse) : lp;
    append_id(s, q, id, raw, lp);
}

/* [constraint hook] Feeds q's forced ids as one chunk at the end of its cache, then chooses. */
static enum vl_status feed_forced(struct vl_state *s, struct vl_seq *q, struct vl_error *err) {
    const int64_t nf = q->n_forced;
    double t0 = vl__now_s();
    enum vl_status st = vl__seq_reserve(s, q, q->n_kv + nf, err);
    if (st != VL_OK)
        return st;
    const int64_t at = q->n_kv;
    int64_t pos[VL_ROPE_AXES * VL_GEN_MAX_FORCED];
    for (int a = 0; a < VL_ROPE_AXES; a++)
        for (int64_t i = 0; i < nf; i++)
            pos[a * nf + i] = at + i + q->rope_delta;
    vl__llm_embed(s, s->x, q->forced, nf);
    struct vl_fwd_seg g = {.q = q, .row0 = 0, .start = at, .n = nf, .pos = pos, .pos_stride = nf};
    st = vl__llm_forward(s, &g, 1, true, false, err);
    if (st != VL_OK)
        return st;
    for (int64_t i = 0; i < nf; i++)
        q->kv_ids[at + i] = q->forced[i];
    q->n_kv = at + nf;
    q->res.t.n_decoded += nf;
    q->n_forced = 0;
    choose(s, q, s->logits);
    q->res.t.decode_s += vl__now_s() - t0;
    return VL_OK;
}

/* ---- prefill ------------------------------------------------------------------------------- */

/* One chunk of q's prompt: [pf_at, end) where end is the segment boundary or n_batch further. */
static enum vl_status prefill_chunk(struct vl_state *s, struct vl_seq *q, struct vl_error *err) {
    const struct vl_config *cfg = &s->m->cfg;
    const int64_t H = cfg->text.hidden_size;
    if (q->p.should_abort && q->p.should_abort(q->p.abort_user))
        return vl__err(err, VL_ERR_CANCELLED, "cancelled during prefill");
    const int64_t c = q->pf_at;
    int64_t end = c + s->params.n_batch;
    if (c < q->seg && end > q->seg)
        end = q->seg;
    if (end > q->n_ids)
        end = q->n_ids;
    const int64_t n = end - c;
    enum vl_status st = vl__seq_reserve(s, q, c == 0 ? vl__seq_first_cap(q) : end, err);
    if (st != VL_OK)
        return st;
    double t0 = vl__now_s();
    /* image / video rows placed before c: count them so the cursors resume at the right row */
    struct scatter_cursor img = {0, 0}, vid = {0, 0};
    for (int64_t i = 0; i < c; i++)
        if (is_pad(cfg, q->ids[i])) {
            bool video = q->ids[i] == cfg->video_token_id;
            (void)take_row(video ? &vid : &img, cfg, q, video);
        }
    vl__llm_embed(s, s->x, q->ids + c, n);
    for (int64_t i = 0; i < n; i++) {
        int32_t id = q->ids[c + i];
        if (is_pad(cfg, id)) {
            bool video = id == cfg->video_token_id;
            int64_t row = take_row(video ? &vid : &img, cfg, q, video);
            memcpy(s->x + i * H, s->vis_embeds + row * H, (size_t)H * sizeof(float));
        }
        q->kv_ids[c + i] = is_pad(cfg, id) ? -1 : id;
    }
    const bool last = end == q->n_ids;
    struct vl_fwd_seg g = {
        .q = q, .row0 = 0, .start = c, .n = n, .pos = s->pos + c, .pos_stride = q->n_ids};
    q->n_kv = c; /* positions beyond c are being rewritten */
    st = vl__llm_forward(s, &g, 1, last, true, err);
    if (st != VL_OK)
        return st;
    q->n_kv = end;
    q->pf_at = end;
    if (end == q->seg && q->p.reuse_prefix)
        keep_prefix(s, q);
    q->res.t.prefill_s += vl__now_s() - t0;
    if (last) {
        vl__sampler_seed(&q->sampler, q->p.seed);
        vl__sampler_begin(&q->sampler, q->ids, q->n_ids);
        double t1 = vl__now_s();
        choose(s, q, s->logits);
        q->res.t.decode_s += vl__now_s() - t1;
    }
    return VL_OK;
}

/* ---- decode step --------------------------------------------------------------------------- */

/* The step's sampling work (a copy of the row, the pick, the log-prob over the vocabulary: a
 * few ms a row) for the sequences without a constraint hook, spread over the pool: each
 * sequence has its own sampler state and the code is the one choose runs, so ids and log-probs
 * are the same bits on any thread. Stop rules and callbacks stay on the caller's thread. */
struct pick_task {
    struct vl_state *s;
    struct vl_seq *const *qs;
    int n;
    int32_t *ids;
    float *lps;
};

/* Sequence k's pick with slice ith's scratch rows (each slice runs on one thread at a time). */
static void pick_one(const struct pick_task *t, int k, int ith) {
    struct vl_seq *q = t->qs[k];
    const int64_t V = t->s->m->cfg.text.vocab_size;
    if (q->p.constrain)
        return;
    struct vl_sampler sm = q->sampler;
    sm.work = t->s->samp_work + ith * V;
    sm.cand = t->s->samp_cand + ith * V;
    t->ids[k] = vl__sampler_pick(&sm, t->s->logits + k * V, &q->p, &t->s->m->cfg, &t->lps[k]);
    q->sampler.rng = sm.rng;
}

static void pick_task_run(void *arg, int ith, int nth) {
    const struct pick_task *t = arg;
    if (nth == 1) {
        for (int k = 0; k < t->n; k++)
            pick_one(t, k, 0);
        return;
    }
    if (ith >= t->s->n_samp) /* no scratch of its own: the other slices claim everything */
        return;
    for (int64_t k = vl__pool_next_chunk(t->s->comp.pool); k < t->n;
         k = vl__pool_next_chunk(t->s->comp.pool))
        pick_one(t, (int)k, ith);
}

static enum vl_status decode_step(struct vl_state *s, struct vl_error *err) {
    struct vl_fwd_seg segs[VL_STATE_MAX_SEQS];
    struct vl_seq *qs[VL_STATE_MAX_SEQS];
    const int ns = s->params.max_seqs;
    int n = 0;
    double t0 = vl__now_s();
    for (int i = 0; i < ns; i++) {
        struct vl_seq *q = &s->seqs[i];
        if (q->phase != VL_SEQ_DECODE || q->n_forced > 0) /* forced ids: feed_forced */
            continue;
        if (q->p.should_abort && q->p.should_abort(q->p.abort_user)) {
            vl__err(&q->err, VL_ERR_CANCELLED, "cancelled after %lld tokens", (long long)q->res.n);
            fail(q, VL_ERR_CANCELLED);
            continue;
        }
        if (vl__seq_reserve(s, q, q->n_kv + 1, &q->err) != VL_OK) {
            fail(q, q->err.code);
            continue;
        }
        const int64_t at = q->n_kv;
        for (int a = 0; a < VL_ROPE_AXES; a++)
            s->dpos[a * ns + n] = at + q->rope_delta;
        segs[n] = (struct vl_fwd_seg){
            .q = q, .row0 = n, .start = at, .n = 1, .pos = s->dpos + n, .pos_stride = ns};
        qs[n] = q;
        vl__llm_embed(s, s->x + (int64_t)n * s->m->cfg.text.hidden_size, &q->last_id, 1);
        n++;
    }
    if (n == 0)
        return VL_OK;
    enum vl_status st = vl__llm_forward(s, segs, n, true, false, err);
    if (st != VL_OK)
        return st;
    const int64_t V = s->m->cfg.text.vocab_size;
    int32_t ids[VL_STATE_MAX_SEQS];
    float lps[VL_STATE_MAX_SEQS];
    struct pick_task pt = {.s = s, .qs = qs, .n = n, .ids = ids, .lps = lps};
    vl__pool_run(n > 1 ? s->comp.pool : NULL, pick_task_run, &pt);
    for (int k = 0; k < n; k++) {
        struct vl_seq *q = qs[k];
        q->kv_ids[q->n_kv] = q->last_id;
        q->n_kv++;
        q->res.t.n_decoded++;
        if (q->p.constrain) {
            choose(s, q, s->logits + k * V);
        } else { /* choose without a hook: the pick made above */
            q->logits = s->logits + k * V;
            append_id(s, q, ids[k], lps[k], lps[k]);
        }
    }
    /* every sequence of the step waited for the whole step */
    double dt = vl__now_s() - t0;
    for (int k = 0; k < n; k++)
        qs[k]->res.t.decode_s += dt;
    return VL_OK;
}

/* ---- the step ------------------------------------------------------------------------------ */

/* The outcome of one sequence's unit of work (forced chunk, vision, prefill chunk): a failure
 * ends that sequence only; VL_ERR_INTERNAL (a broken invariant) also ends the step, with the
 * sequence's message in err. */
static enum vl_status end_unit(struct vl_seq *q, enum vl_status st, struct vl_error *err) {
    if (st == VL_OK)
        return VL_OK;
    if (st == VL_ERR_INTERNAL && err && err->code == VL_OK)
        *err = q->err;
    fail(q, st);
    return st == VL_ERR_INTERNAL ? st : VL_OK;
}

enum vl_status vl_step(struct vl_state *s, struct vl_error *err) {
    for (int i = 0; i < s->params.max_seqs; i++) { /* [constraint hook] forced chunks first */
        struct vl_seq *q = &s->seqs[i];
        if (q->phase != VL_SEQ_DECODE || q->n_forced == 0)
            continue;
        enum vl_status st = VL_OK;
        if (q->p.should_abort && q->p.should_abort(q->p.abort_user))
            st = vl__err(&q->err, VL_ERR_CANCELLED, "cancelled after %lld tokens",
                         (long long)q->res.n);
        else
            st = feed_forced(s, q, &q->err);
        return end_unit(q, st, err);
    }
    struct vl_seq *pre = NULL, *pend = NULL;
    bool decoding = false;
    for (int i = 0; i < s->params.max_seqs; i++) {
        struct vl_seq *q = &s->seqs[i];
        if (q->phase == VL_SEQ_PREFILL && !pre)
            pre = q;
        else if (q->phase == VL_SEQ_PENDING && !pend)
            pend = q;
        decoding |= q->phase == VL_SEQ_DECODE;
    }
    struct vl_seq *join = pre ? pre : pend;
    double t0 = vl__now_s();
    if (decoding && (!join || (!s->last_unit && !s->params.join_first))) {
        s->last_unit = 1;
        int64_t rows = 0;
        for (int i = 0; i < s->params.max_seqs; i++)
            rows += s->seqs[i].phase == VL_SEQ_DECODE;
        enum vl_status st = decode_step(s, err);
        s->stats.decode_steps++;
        s->stats.decode_rows += rows;
        s->stats.decode_s += vl__now_s() - t0;
        return st;
    }
    s->last_unit = 0;
    if (!join)
        return VL_OK;
    bool vision = join->phase == VL_SEQ_PENDING;
    enum vl_status st = vision ? start_seq(s, join, &join->err) : prefill_chunk(s, join, &join->err);
    if (vision) {
        s->stats.visions++;
        s->stats.vision_s += vl__now_s() - t0;
    } else {
        s->stats.prefill_chunks++;
        s->stats.prefill_s += vl__now_s() - t0;
    }
    return end_unit(join, st, err);
}

void vl_state_stats_get(const struct vl_state *s, struct vl_state_stats *out) {
    *out = s->stats;
}
