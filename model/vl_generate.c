/* One request end to end (spec §12.1): checks, MRoPE positions, the vision tower per input,
 * prefill in n_batch chunks with image/video embeddings scattered into the pad positions, then
 * the decode loop (stop on the config's EOS ids, max_new_tokens with a truncated flag, context
 * end, per-token callback, abort callback). Reuses the KV cache of the longest common text
 * prefix with the previous request of the same state (the batch processor puts the schema
 * instructions before the page image for this). One state, one thread. */
#include "vl_llm_impl.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Synthetic text ids: i * SYNTH_STRIDE + SYNTH_OFFSET modulo the plain-token range (a prime
 * stride visits varied ids, so the benchmark does not run on one repeated token). */
#define SYNTH_STRIDE 7919
#define SYNTH_OFFSET 1000

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static bool is_pad(const struct vl_config *cfg, int32_t id) {
    return id == cfg->image_token_id || id == cfg->video_token_id;
}

/* Walks the vision rows of one kind (images or videos) in input order. */
struct scatter_cursor {
    int input;       /* index into the request's vision list */
    int64_t used;    /* tokens of that input already placed */
};

static void cursor_settle(struct scatter_cursor *c, const struct vl_config *cfg,
                          const struct vl_request *rq, bool video) {
    while (c->input < rq->n_vision &&
           (rq->vision[c->input].is_video != video ||
            c->used >= vl__vision_tokens(cfg, &rq->vision[c->input]))) {
        c->input++;
        c->used = 0;
    }
}

static enum vl_status check_request(const struct vl_state *s, const struct vl_request *rq,
                                    const struct vl_gen_params *p, struct vl_error *err) {
    const struct vl_config *cfg = &s->m->cfg;
    if (rq->n_ids < 1 || !rq->ids)
        return vl__err(err, VL_ERR_INVALID, "empty prompt");
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

/* Cached positions usable for this prompt: common ids before the first vision token, leaving at
 * least the last prompt token to be computed (its logits are needed). */
static int64_t reusable_prefix(const struct vl_state *s, const struct vl_request *rq) {
    int64_t r = 0;
    while (r < s->n_kv && r < rq->n_ids - 1 && s->kv_ids[r] >= 0 && s->kv_ids[r] == rq->ids[r] &&
           !is_pad(&s->m->cfg, rq->ids[r]))
        r++;
    return r;
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

static enum vl_status run_vision(struct vl_state *s, const struct vl_request *rq,
                                 int64_t *out_rows, struct vl_error *err) {
    const struct vl_config *cfg = &s->m->cfg;
    const int64_t H = cfg->text.hidden_size;
    int64_t row = 0;
    for (int k = 0; k < rq->n_vision; k++) {
        const struct vl_vision_input *in = &rq->vision[k];
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
    *out_rows = row;
    return VL_OK;
}

/* Row of vis_embeds holding the next vision token of the wanted kind. */
static int64_t take_row(struct scatter_cursor *c, const struct vl_config *cfg,
                        const struct vl_request *rq, bool video) {
    cursor_settle(c, cfg, rq, video);
    int64_t row = 0;
    for (int k = 0; k < c->input; k++)
        row += vl__vision_tokens(cfg, &rq->vision[k]);
    return row + c->used++;
}

static enum vl_status prefill(struct vl_state *s, const struct vl_request *rq,
                              const struct vl_gen_params *p, int64_t reuse,
                              struct vl_error *err) {
    const struct vl_config *cfg = &s->m->cfg;
    const int64_t H = cfg->text.hidden_size, n_ids = rq->n_ids;
    struct scatter_cursor img = {0, 0}, vid = {0, 0};
    for (int64_t c = reuse; c < n_ids; c += s->params.n_batch) {
        if (p->should_abort && p->should_abort(p->abort_user))
            return vl__err(err, VL_ERR_CANCELLED, "cancelled during prefill");
        int64_t n = n_ids - c < s->params.n_batch ? n_ids - c : s->params.n_batch;
        vl__llm_embed(s, s->x, rq->ids + c, n);
        for (int64_t i = 0; i < n; i++) {
            int32_t id = rq->ids[c + i];
            if (is_pad(cfg, id)) {
                bool video = id == cfg->video_token_id;
                int64_t row = take_row(video ? &vid : &img, cfg, rq, video);
                memcpy(s->x + i * H, s->vis_embeds + row * H, (size_t)H * sizeof(float));
            }
            s->kv_ids[c + i] = is_pad(cfg, id) ? -1 : id;
        }
        bool last = c + n == n_ids;
        s->n_kv = c; /* positions beyond c are being rewritten */
        enum vl_status st = vl__llm_forward(s, c, n, s->pos + c, n_ids, last, true, err);
        if (st != VL_OK)
            return st;
        s->n_kv = c + n;
    }
    return VL_OK;
}

static enum vl_status decode(struct vl_state *s, const struct vl_request *rq,
                             const struct vl_gen_params *p, struct vl_result *out,
                             struct vl_error *err) {
    const struct vl_config *cfg = &s->m->cfg;
    (void)rq;
    for (;;) {
        float lp = 0.0f;
        int32_t id = vl__sampler_pick(&s->sampler, s->logits, p, cfg, &lp);
        s->out_ids[out->n] = id;
        s->out_logprobs[out->n] = lp;
        out->n++;
        vl__sampler_mark(&s->sampler, id);
        if (p->on_token && !p->on_token(id, lp, p->token_user)) {
            out->stop = VL_STOP_CALLBACK;
            return VL_OK;
        }
        if (!p->ignore_eos && vl__is_eos(cfg, id)) {
            out->stop = VL_STOP_EOS;
            return VL_OK;
        }
        if (out->n >= p->max_new_tokens) {
            out->stop = VL_STOP_MAX_TOKENS;
            out->truncated = true;
            return VL_OK;
        }
        if (s->n_kv >= s->params.n_ctx) {
            out->stop = VL_STOP_CONTEXT;
            out->truncated = true;
            return VL_OK;
        }
        if (p->should_abort && p->should_abort(p->abort_user))
            return vl__err(err, VL_ERR_CANCELLED, "cancelled after %lld tokens",
                           (long long)out->n);
        int64_t at = s->n_kv, pos[VL_ROPE_AXES];
        for (int a = 0; a < VL_ROPE_AXES; a++)
            pos[a] = at + s->kv_rope_delta;
        vl__llm_embed(s, s->x, &id, 1);
        enum vl_status st = vl__llm_forward(s, at, 1, pos, 1, true, false, err);
        if (st != VL_OK)
            return st;
        s->kv_ids[at] = id;
        s->n_kv = at + 1;
        out->t.n_decoded++;
    }
}

enum vl_status vl_generate(struct vl_state *s, const struct vl_request *rq,
                           const struct vl_gen_params *p, struct vl_result *out,
                           struct vl_error *err) {
    const struct vl_config *cfg = &s->m->cfg;
    memset(out, 0, sizeof *out);
    out->ids = s->out_ids;
    out->logprobs = s->out_logprobs;
    out->stop = VL_STOP_MAX_TOKENS;
    enum vl_status st = check_request(s, rq, p, err);
    if (st != VL_OK)
        return st;
    int64_t delta = 0;
    st = vl__rope_index(s->pos, &delta, rq->ids, rq->n_ids, cfg, rq->vision, rq->n_vision, err);
    if (st != VL_OK)
        return st;
    int64_t reuse = p->reuse_prefix ? reusable_prefix(s, rq) : 0;
    s->n_kv = reuse;
    out->t.n_prompt = rq->n_ids;
    out->t.n_reused = reuse;
    hook_positions(s, rq->n_ids, delta);

    double t0 = now_s();
    st = run_vision(s, rq, &out->t.n_vision_tokens, err);
    double t1 = now_s();
    out->t.vision_s = t1 - t0;
    if (st != VL_OK)
        return st;
    s->kv_rope_delta = delta;
    st = prefill(s, rq, p, reuse, err);
    double t2 = now_s();
    out->t.prefill_s = t2 - t1;
    if (st != VL_OK)
        return st; /* s->n_kv still marks the valid cached positions */
    vl__sampler_seed(&s->sampler, p->seed);
    vl__sampler_begin(&s->sampler, rq->ids, rq->n_ids);
    st = decode(s, rq, p, out, err);
    out->t.decode_s = now_s() - t2;
    return st;
}

enum vl_status vl_prompt_synthetic(int32_t **out_ids, int64_t *out_n, const struct vl_model *model,
                                   const struct vl_vision_input *vision, int n_vision,
                                   int64_t n_text, struct vl_error *err) {
    const struct vl_config *cfg = &model->cfg;
    *out_ids = NULL;
    *out_n = 0;
    int64_t n = n_text;
    for (int k = 0; k < n_vision; k++)
        n += 2 + vl__vision_tokens(cfg, &vision[k]);
    if (n < 1 || (size_t)n > SIZE_MAX / sizeof(int32_t))
        return vl__err(err, VL_ERR_INVALID, "synthetic prompt of %lld tokens", (long long)n);
    int32_t *ids = vl__malloc((size_t)n * sizeof *ids);
    if (!ids)
        return vl__err(err, VL_ERR_NOMEM, "synthetic prompt: out of memory");
    int64_t at = 0;
    for (int k = 0; k < n_vision; k++) {
        ids[at++] = cfg->vision_start_token_id;
        int64_t nt = vl__vision_tokens(cfg, &vision[k]);
        for (int64_t i = 0; i < nt; i++)
            ids[at++] = vision[k].is_video ? cfg->video_token_id : cfg->image_token_id;
        ids[at++] = cfg->vision_end_token_id;
    }
    /* ordinary text ids: below the first special id (bos), spread deterministically */
    int64_t n_plain = cfg->gen.bos_token_id > 0 ? cfg->gen.bos_token_id : cfg->text.vocab_size;
    for (int64_t i = 0; i < n_text; i++)
        ids[at++] = (int32_t)((i * SYNTH_STRIDE + SYNTH_OFFSET) % n_plain);
    *out_ids = ids;
    *out_n = n;
    return VL_OK;
}

static int count_kind(const struct vl_vision_input *vis, int n, bool video) {
    int c = 0;
    for (int k = 0; k < n; k++)
        c += vis[k].is_video == video;
    return c;
}

enum vl_status vl_prompt_expand(int32_t **out_ids, int64_t *out_n, const struct vl_model *model,
                                const int32_t *ids, int64_t n, const struct vl_vision_input *vision,
                                int n_vision, struct vl_error *err) {
    const struct vl_config *cfg = &model->cfg;
    *out_ids = NULL;
    *out_n = 0;
    int64_t total = 0, n_img = 0, n_vid = 0;
    int want_img = count_kind(vision, n_vision, false), want_vid = count_kind(vision, n_vision, true);
    for (int64_t i = 0; i < n; i++) {
        n_img += ids[i] == cfg->image_token_id;
        n_vid += ids[i] == cfg->video_token_id;
    }
    if (n_img != want_img || n_vid != want_vid)
        return vl__err(err, VL_ERR_INVALID,
                       "prompt has %lld image and %lld video placeholders, %d image(s) and %d "
                       "video(s) given",
                       (long long)n_img, (long long)n_vid, want_img, want_vid);
    int cur_img = 0, cur_vid = 0;
    for (int pass = 0; pass < 2; pass++) {
        int32_t *dst = pass ? *out_ids : NULL;
        int64_t at = 0;
        cur_img = cur_vid = 0;
        for (int64_t i = 0; i < n; i++) {
            bool img = ids[i] == cfg->image_token_id, vid = ids[i] == cfg->video_token_id;
            if (!img && !vid) {
                if (dst)
                    dst[at] = ids[i];
                at++;
                continue;
            }
            int *cur = img ? &cur_img : &cur_vid;
            const struct vl_vision_input *in = NULL;
            for (int seen = 0, k = 0; k < n_vision; k++)
                if (vision[k].is_video == vid && seen++ == *cur) {
                    in = &vision[k];
                    break;
                }
            (*cur)++;
            int64_t nt = in ? vl__vision_tokens(cfg, in) : 0;
            if (nt <= 0)
                return vl__err(err, VL_ERR_INVALID, "vision input with an empty grid");
            for (int64_t j = 0; j < nt && dst; j++)
                dst[at + j] = ids[i];
            at += nt;
        }
        if (!pass) {
            total = at;
            if ((size_t)total > SIZE_MAX / sizeof(int32_t))
                return vl__err(err, VL_ERR_LIMIT, "expanded prompt too long");
            *out_ids = vl__malloc((size_t)(total ? total : 1) * sizeof(int32_t));
            if (!*out_ids)
                return vl__err(err, VL_ERR_NOMEM, "expanded prompt: out of memory");
        }
    }
    *out_n = total;
    return VL_OK;
}

struct vl_gen_params vl_gen_model_params(const struct vl_model *model) {
    const struct vl_gen_config *g = &model->cfg.gen;
    struct vl_gen_params p = vl_gen_default_params();
    p.repetition_penalty = (float)g->repetition_penalty;
    if (g->do_sample) {
        p.temperature = (float)g->temperature;
        p.top_k = g->top_k;
        p.top_p = (float)g->top_p;
    }
    return p;
}
