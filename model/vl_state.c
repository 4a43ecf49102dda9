/* The inference state: one arena pre-sized from the config and the state parameters (chunk
 * activations, vision scratch, sampler scratch, the sequence slots), the compute context (thread
 * pool + OpenBLAS thread count) and the sequences' KV caches, which are allocated per slot and
 * grown on demand (doubling, up to what the request can use), so N sequences cost what they
 * hold, not N times the largest context. A state is used by one thread at a time.
 *
 * Sizing (f32): chunk buffers n_batch rows of H, nQ*hd, 2 nKV*hd, I (x2); one head's scores
 * attn_block * n_ctx; vision scratch for max_vision_patches; vision embeddings n_ctx * H;
 * logits max_seqs * V. Per sequence: KV 2 * layers * n_kv_heads * positions * head_dim. */
#include "vl_llm_impl.h"

#include <stdlib.h>
#include <string.h>

#define ARENA_ALIGN 64 /* cache line; also satisfies every SIMD load */

struct vl_state_params vl_state_default_params(void) {
    struct vl_state_params p = {
        .n_threads = 1,
        .n_ctx = VL_STATE_DEFAULT_CTX,
        .n_batch = VL_STATE_DEFAULT_BATCH,
        .attn_block = VL_STATE_DEFAULT_ATTN_BLOCK,
        .max_vision_patches = 0,
        .max_seqs = 1,
    };
    return p;
}

struct vl_gen_params vl_gen_default_params(void) {
    struct vl_gen_params p = {
        .max_new_tokens = VL_GEN_DEFAULT_MAX_NEW_TOKENS,
        .temperature = 0.0f,
        .top_k = 0,
        .top_p = 1.0f,
        .repetition_penalty = (float)VL_GEN_DEFAULT_REPETITION_PENALTY,
        .seed = 0,
        .ignore_eos = false,
        .reuse_prefix = true,
    };
    return p;
}

/* One arena piece: where to store the pointer and how many bytes. */
struct piece {
    void **dst;
    size_t bytes;
};

#define MAX_PIECES 40
/* A sequence's first KV allocation covers its prompt and this many new tokens; it then doubles. */
#define SEQ_KV_FIRST_NEW 256

struct plan {
    struct piece p[MAX_PIECES];
    int n;
    bool overflow;
};

/* Adds count * elem bytes (checked). */
static void plan_add(struct plan *pl, void *dst, size_t count, size_t elem) {
    size_t b;
    if (pl->n >= MAX_PIECES || __builtin_mul_overflow(count, elem, &b)) {
        pl->overflow = true;
        return;
    }
    pl->p[pl->n].dst = (void **)dst;
    pl->p[pl->n].bytes = b;
    pl->n++;
}

static size_t mul3(size_t a, size_t b, size_t c, bool *ovf) {
    size_t r;
    if (__builtin_mul_overflow(a, b, &r) || __builtin_mul_overflow(r, c, &r)) {
        *ovf = true;
        return 0;
    }
    return r;
}

static int64_t max64(int64_t a, int64_t b) {
    return a > b ? a : b;
}

static enum vl_status resolve_params(struct vl_state_params *out, const struct vl_config *cfg,
                                     const struct vl_state_params *in, struct vl_error *err) {
    *out = in ? *in : vl_state_default_params();
    if (out->n_threads < 1)
        return vl__err(err, VL_ERR_INVALID, "state: n_threads %d must be >= 1", out->n_threads);
    if (out->n_ctx <= 0)
        out->n_ctx = VL_STATE_DEFAULT_CTX;
    if (cfg->text.max_position_embeddings > 0 && out->n_ctx > cfg->text.max_position_embeddings)
        out->n_ctx = cfg->text.max_position_embeddings;
    if (out->n_ctx < 2)
        return vl__err(err, VL_ERR_INVALID, "state: n_ctx %lld must be >= 2",
                       (long long)out->n_ctx);
    if (out->n_batch <= 0)
        out->n_batch = VL_STATE_DEFAULT_BATCH;
    if (out->n_batch > out->n_ctx)
        out->n_batch = out->n_ctx;
    if (out->attn_block <= 0)
        out->attn_block = VL_STATE_DEFAULT_ATTN_BLOCK;
    if (out->attn_block > out->n_batch)
        out->attn_block = out->n_batch;
    if (out->max_seqs <= 0)
        out->max_seqs = 1;
    if (out->max_seqs > VL_STATE_MAX_SEQS)
        return vl__err(err, VL_ERR_INVALID, "state: max_seqs %d exceeds %d", out->max_seqs,
                       VL_STATE_MAX_SEQS);
    if (out->max_seqs > out->n_batch)
        out->max_seqs = (int)out->n_batch;
    int64_t m2 = cfg->vision.spatial_merge_size * cfg->vision.spatial_merge_size;
    if (out->max_vision_patches <= 0)
        out->max_vision_patches = out->n_ctx * m2;
    return VL_OK;
}

/* Lays out the arena of a state with resolved params (pointers into s when s->arena is set);
 * returns its bytes, 0 on overflow. */
static size_t arena_plan(struct vl_state *s, struct plan *pl) {
    const struct vl_config *cfg = &s->m->cfg;
    const struct vl_text_config *tc = &cfg->text;
    const size_t H = (size_t)tc->hidden_size, hd = (size_t)tc->head_dim;
    const size_t nq = (size_t)tc->num_attention_heads, nkv = (size_t)tc->num_key_value_heads;
    const size_t I = (size_t)tc->intermediate_size, V = (size_t)tc->vocab_size;
    const size_t ctx = (size_t)s->params.n_ctx, nb = (size_t)s->params.n_batch;
    const size_t ns = (size_t)s->params.max_seqs;
    bool ovf = false;
    memset(pl, 0, sizeof *pl);
    plan_add(pl, &s->seqs, ns, sizeof(struct vl_seq));
    plan_add(pl, &s->x, mul3(nb, H, 1, &ovf), sizeof(float));
    plan_add(pl, &s->xn, mul3(nb, H, 1, &ovf), sizeof(float));
    plan_add(pl, &s->q, mul3(nb, nq, hd, &ovf), sizeof(float));
    plan_add(pl, &s->k, mul3(nb, nkv, hd, &ovf), sizeof(float));
    plan_add(pl, &s->v, mul3(nb, nkv, hd, &ovf), sizeof(float));
    plan_add(pl, &s->att, mul3(nb, nq, hd, &ovf), sizeof(float));
    plan_add(pl, &s->gate, mul3(nb, I, 1, &ovf), sizeof(float));
    plan_add(pl, &s->up, mul3(nb, I, 1, &ovf), sizeof(float));
    /* one head's scores for a block of prefill rows; in decode one KV group's per thread */
    size_t score_rows = (size_t)s->params.attn_block;
    size_t decode_rows = mul3(nkv ? nq / nkv : 0, (size_t)s->params.n_threads, 1, &ovf);
    score_rows = score_rows > decode_rows ? score_rows : decode_rows;
    plan_add(pl, &s->scores, mul3(score_rows, ctx, 1, &ovf), sizeof(float));
    plan_add(pl, &s->rope_cos, mul3(nb, hd, 1, &ovf), sizeof(float));
    plan_add(pl, &s->rope_sin, mul3(nb, hd, 1, &ovf), sizeof(float));
    plan_add(pl, &s->inv_freq, hd / 2, sizeof(float));
    plan_add(pl, &s->logits, mul3(ns, V, 1, &ovf), sizeof(float));
    plan_add(pl, &s->dpos, mul3(VL_ROPE_AXES, ns, 1, &ovf), sizeof(int64_t));
    plan_add(pl, &s->pos, mul3(VL_ROPE_AXES, ctx, 1, &ovf), sizeof(int64_t));
    plan_add(pl, &s->vis_embeds, mul3(ctx, H, 1, &ovf), sizeof(float));
    plan_add(pl, &s->vis_scratch, s->vis_scratch_floats, sizeof(float));
    /* one sampler scratch per slice of the decode step's parallel pick (vl_seq.c) */
    s->n_samp = s->params.n_threads < s->params.max_seqs ? s->params.n_threads : s->params.max_seqs;
    plan_add(pl, &s->samp_work, mul3(V, (size_t)s->n_samp, 1, &ovf), sizeof(float));
    plan_add(pl, &s->samp_cand, mul3(V, (size_t)s->n_samp, 1, &ovf), sizeof(int32_t));
    size_t total = 0;
    for (int i = 0; i < pl->n && !ovf && !pl->overflow; i++) {
        size_t b = (pl->p[i].bytes + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
        if (b < pl->p[i].bytes || __builtin_add_overflow(total, b, &total))
            ovf = true;
    }
    return ovf || pl->overflow ? 0 : total;
}

static bool text_config_ok(const struct vl_text_config *tc) {
    return tc->hidden_size > 0 && tc->head_dim > 0 && tc->num_attention_heads > 0 &&
           tc->num_key_value_heads > 0 && tc->intermediate_size > 0 && tc->vocab_size > 0 &&
           tc->num_hidden_layers > 0 && tc->num_attention_heads % tc->num_key_value_heads == 0 &&
           tc->head_dim % 2 == 0;
}

size_t vl_state_bytes(const struct vl_model *model, const struct vl_state_params *params) {
    struct vl_state s = {.m = model};
    struct vl_error err = {0};
    if (!text_config_ok(&model->cfg.text) ||
        resolve_params(&s.params, &model->cfg, params, &err) != VL_OK)
        return 0;
    s.vis_scratch_floats = vl__vision_scratch_floats(&model->cfg, s.params.max_vision_patches);
    struct plan pl;
    return s.vis_scratch_floats ? arena_plan(&s, &pl) : 0;
}

size_t vl_seq_bytes(const struct vl_model *model, int64_t n_tokens) {
    const struct vl_text_config *tc = &model->cfg.text;
    bool ovf = false;
    size_t n = n_tokens > 0 ? (size_t)n_tokens : 0;
    size_t kv = mul3((size_t)tc->num_hidden_layers * (size_t)tc->num_key_value_heads, n,
                     (size_t)tc->head_dim, &ovf);
    /* K and V, the cached ids, the result arrays, the sampler's seen set */
    size_t b = 0;
    if (__builtin_mul_overflow(kv, 2 * sizeof(float), &b) ||
        __builtin_add_overflow(b, n * (2 * sizeof(int32_t) + sizeof(float)), &b) ||
        __builtin_add_overflow(b, (size_t)tc->vocab_size, &b) || ovf)
        return SIZE_MAX;
    return b;
}

enum vl_status vl_state_new(struct vl_state **out, const struct vl_model *model,
                            const struct vl_state_params *params, struct vl_error *err) {
    *out = NULL;
    const struct vl_config *cfg = &model->cfg;
    const struct vl_text_config *tc = &cfg->text;
    const struct vl_vision_config *vc = &cfg->vision;
    struct vl_state *s = vl__calloc(1, sizeof *s);
    if (!s)
        return vl__err(err, VL_ERR_NOMEM, "state: out of memory");
    s->m = model;
    enum vl_status st = resolve_params(&s->params, cfg, params, err);
    if (st != VL_OK) {
        vl__free(s);
        return st;
    }
    if (!text_config_ok(tc)) {
        st = vl__err(err, VL_ERR_MODEL, "state: unusable text config");
        goto fail;
    }
    s->vis_scratch_floats = vl__vision_scratch_floats(cfg, s->params.max_vision_patches);
    if (!s->vis_scratch_floats) {
        st = vl__err(err, VL_ERR_LIMIT, "state: vision scratch for %lld patches overflows",
                     (long long)s->params.max_vision_patches);
        goto fail;
    }
    struct plan pl;
    size_t total = arena_plan(s, &pl);
    if (!total) {
        st = vl__err(err, VL_ERR_LIMIT, "state: buffer sizes overflow (n_ctx %lld)",
                     (long long)s->params.n_ctx);
        goto fail;
    }
    s->arena = vl__aligned_alloc(ARENA_ALIGN, total);
    if (!s->arena) {
        st = vl__err(err, VL_ERR_NOMEM, "state: cannot allocate %zu MiB (n_ctx %lld)",
                     total >> 20, (long long)s->params.n_ctx);
        goto fail;
    }
    memset(s->arena, 0, total);
    s->arena_bytes = total;
    size_t off = 0;
    for (int i = 0; i < pl.n; i++) {
        *pl.p[i].dst = (char *)s->arena + off;
        off += (pl.p[i].bytes + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
    }
    vl__rope_inv_freq(s->inv_freq, tc->head_dim, tc->rope_theta);

    int64_t patch_dim = vc->in_chans * vc->temporal_patch_size * vc->patch_size * vc->patch_size;
    int64_t m2 = vc->spatial_merge_size * vc->spatial_merge_size;
    int64_t max_out = max64(max64(tc->vocab_size, tc->intermediate_size),
                            max64(tc->num_attention_heads * tc->head_dim, tc->hidden_size));
    max_out = max64(max_out, max64(vc->intermediate_size, 3 * vc->hidden_size));
    max_out = max64(max_out, max64(m2 * vc->hidden_size, vc->out_hidden_size));
    int64_t max_in = max64(max64(tc->hidden_size, tc->intermediate_size),
                           max64(tc->num_attention_heads * tc->head_dim, vc->intermediate_size));
    max_in = max64(max_in, max64(m2 * vc->hidden_size, max64(patch_dim, vc->hidden_size)));
    st = vl__compute_init(&s->comp, s->params.n_threads, max_out, max_in, err);
    if (st != VL_OK)
        goto fail;
    vl_state_reset(s);
    vl__log(VL_LOG_INFO, "state: %zu MiB arena (n_ctx %lld, n_batch %lld, %d sequences), %d threads",
            total >> 20, (long long)s->params.n_ctx, (long long)s->params.n_batch,
            s->params.max_seqs, s->params.n_threads);
    *out = s;
    return VL_OK;
fail:
    vl_state_free(s);
    return st;
}

void vl__seq_free_buffers(struct vl_seq *q) {
    vl__free(q->k_cache);
    vl__free(q->v_cache);
    vl__free(q->kv_ids);
    vl__free(q->ids);
    vl__free(q->out_ids);
    vl__free(q->out_logprobs);
    vl__free(q->out_masked_logprobs);
    vl__free(q->sampler.seen);
    memset(q, 0, sizeof *q);
}

/* Grows one (layers * heads) blocked cache from cap to ncap positions, keeping n of each block. */
static float *grow_blocks(float *old, int64_t blocks, int64_t cap, int64_t ncap, int64_t n,
                          int64_t hd) {
    size_t bytes;
    if (__builtin_mul_overflow((size_t)(blocks * hd), (size_t)ncap * sizeof(float), &bytes))
        return NULL;
    float *nw = vl__aligned_alloc(ARENA_ALIGN, bytes);
    if (!nw)
        return NULL;
    for (int64_t b = 0; b < blocks && old && n > 0; b++)
        memcpy(nw + b * ncap * hd, old + b * cap * hd, (size_t)(n * hd) * sizeof(float));
    return nw;
}

enum vl_status vl__seq_reserve(struct vl_state *s, struct vl_seq *q, int64_t n,
                               struct vl_error *err) {
    if (n <= q->cap)
        return VL_OK;
    const struct vl_text_config *tc = &s->m->cfg.text;
    int64_t ncap = q->cap > 0 ? q->cap : n;
    while (ncap < n)
        ncap = ncap > INT64_MAX / 2 ? n : 2 * ncap;
    if (ncap > q->need && q->need >= n)
        ncap = q->need; /* never more than the request can use */
    if (ncap > s->params.n_ctx)
        ncap = s->params.n_ctx;
    if (ncap < n)
        return vl__err(err, VL_ERR_LIMIT, "sequence needs %lld positions, context is %lld",
                       (long long)n, (long long)s->params.n_ctx);
    const int64_t blocks = tc->num_hidden_layers * tc->num_key_value_heads, hd = tc->head_dim;
    float *k = grow_blocks(q->k_cache, blocks, q->cap, ncap, q->n_kv, hd);
    float *v = k ? grow_blocks(q->v_cache, blocks, q->cap, ncap, q->n_kv, hd) : NULL;
    int32_t *ids = v ? vl__malloc((size_t)ncap * sizeof *ids) : NULL;
    if (!ids) {
        vl__free(k);
        vl__free(v);
        return vl__err(err, VL_ERR_NOMEM, "KV cache of %lld positions: out of memory",
                       (long long)ncap);
    }
    if (q->kv_ids && q->n_kv > 0)
        memcpy(ids, q->kv_ids, (size_t)q->n_kv * sizeof *ids);
    vl__free(q->k_cache);
    vl__free(q->v_cache);
    vl__free(q->kv_ids);
    q->k_cache = k;
    q->v_cache = v;
    q->kv_ids = ids;
    q->cap = ncap;
    return VL_OK;
}

int64_t vl__seq_first_cap(const struct vl_seq *q) {
    int64_t want = q->n_ids + SEQ_KV_FIRST_NEW;
    return want < q->need ? want : q->need;
}

void vl_state_free(struct vl_state *s) {
    if (!s)
        return;
    for (int i = 0; s->seqs && i < s->params.max_seqs; i++)
        vl__seq_free_buffers(&s->seqs[i]);
    vl__free(s->pfx_ids);
    vl__free(s->pfx_k);
    vl__free(s->pfx_v);
    vl__compute_free(&s->comp);
    vl__free(s->arena);
    vl__free(s);
}

void vl_state_reset(struct vl_state *s) {
    s->pfx_n = 0;
}

void vl_set_hook(struct vl_state *s, vl_hook_fn fn, void *user) {
    s->hook = fn;
    s->hook_user = user;
}

const struct vl_state_params *vl_state_params_get(const struct vl_state *s) {
    return &s->params;
}
