/* The inference state: one arena pre-sized from the config and the state parameters (KV cache,
 * prefill-chunk activations, vision scratch, sampler buffers, result arrays), the compute
 * context (thread pool + OpenBLAS thread count) and the sampler RNG. Nothing is allocated after
 * vl_state_new (ggml's measure-then-allocate). A state is used by one thread at a time.
 *
 * Sizing (f32): KV cache 2 * layers * n_kv_heads * n_ctx * head_dim; chunk buffers n_batch rows
 * of H, nQ*hd, 2 nKV*hd, I (x2); one head's scores attn_block * n_ctx; vision scratch from the
 * vision tower for max_vision_patches; vision embeddings n_ctx * H; logits and sampler V each. */
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
    };
    return p;
}

struct vl_gen_params vl_gen_default_params(void) {
    struct vl_gen_params p = {
        .max_new_tokens = VL_GEN_DEFAULT_MAX_NEW_TOKENS,
        .temperature = 0.0f,
        .top_k = 0,
        .top_p = 1.0f,
        .repetition_penalty = VL_GEN_DEFAULT_REPETITION_PENALTY,
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

#define MAX_PIECES 32

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
    int64_t m2 = cfg->vision.spatial_merge_size * cfg->vision.spatial_merge_size;
    if (out->max_vision_patches <= 0)
        out->max_vision_patches = out->n_ctx * m2;
    return VL_OK;
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
    const size_t H = (size_t)tc->hidden_size, hd = (size_t)tc->head_dim;
    const size_t nq = (size_t)tc->num_attention_heads, nkv = (size_t)tc->num_key_value_heads;
    const size_t I = (size_t)tc->intermediate_size, V = (size_t)tc->vocab_size;
    const size_t L = (size_t)tc->num_hidden_layers;
    const size_t ctx = (size_t)s->params.n_ctx, nb = (size_t)s->params.n_batch;
    if (!H || !hd || !nq || !nkv || !I || !V || !L || nq % nkv || hd % 2) {
        st = vl__err(err, VL_ERR_MODEL, "state: unusable text config");
        goto fail;
    }
    s->vis_scratch_floats = vl__vision_scratch_floats(cfg, s->params.max_vision_patches);
    if (!s->vis_scratch_floats) {
        st = vl__err(err, VL_ERR_LIMIT, "state: vision scratch for %lld patches overflows",
                     (long long)s->params.max_vision_patches);
        goto fail;
    }

    bool ovf = false;
    size_t kv = mul3(L * nkv, ctx, hd, &ovf);
    struct plan pl = {0};
    plan_add(&pl, &s->k_cache, kv, sizeof(float));
    plan_add(&pl, &s->v_cache, kv, sizeof(float));
    plan_add(&pl, &s->kv_ids, ctx, sizeof(int32_t));
    plan_add(&pl, &s->x, mul3(nb, H, 1, &ovf), sizeof(float));
    plan_add(&pl, &s->xn, mul3(nb, H, 1, &ovf), sizeof(float));
    plan_add(&pl, &s->q, mul3(nb, nq, hd, &ovf), sizeof(float));
    plan_add(&pl, &s->k, mul3(nb, nkv, hd, &ovf), sizeof(float));
    plan_add(&pl, &s->v, mul3(nb, nkv, hd, &ovf), sizeof(float));
    plan_add(&pl, &s->att, mul3(nb, nq, hd, &ovf), sizeof(float));
    plan_add(&pl, &s->gate, mul3(nb, I, 1, &ovf), sizeof(float));
    plan_add(&pl, &s->up, mul3(nb, I, 1, &ovf), sizeof(float));
    /* one head's scores for a block of prefill rows; in decode one KV group's per thread */
    size_t score_rows = (size_t)s->params.attn_block;
    size_t decode_rows = mul3(nq / nkv, (size_t)s->params.n_threads, 1, &ovf);
    score_rows = score_rows > decode_rows ? score_rows : decode_rows;
    plan_add(&pl, &s->scores, mul3(score_rows, ctx, 1, &ovf), sizeof(float));
    plan_add(&pl, &s->rope_cos, mul3(nb, hd, 1, &ovf), sizeof(float));
    plan_add(&pl, &s->rope_sin, mul3(nb, hd, 1, &ovf), sizeof(float));
    plan_add(&pl, &s->inv_freq, hd / 2, sizeof(float));
    plan_add(&pl, &s->logits, V, sizeof(float));
    plan_add(&pl, &s->pos, mul3(VL_ROPE_AXES, ctx, 1, &ovf), sizeof(int64_t));
    plan_add(&pl, &s->vis_embeds, mul3(ctx, H, 1, &ovf), sizeof(float));
    plan_add(&pl, &s->vis_scratch, s->vis_scratch_floats, sizeof(float));
    plan_add(&pl, &s->sampler.seen, V, 1);
    plan_add(&pl, &s->sampler.work, V, sizeof(float));
    plan_add(&pl, &s->sampler.cand, V, sizeof(int32_t));
    plan_add(&pl, &s->out_ids, ctx, sizeof(int32_t));
    plan_add(&pl, &s->out_logprobs, ctx, sizeof(float));
    size_t total = 0;
    for (int i = 0; i < pl.n && !ovf && !pl.overflow; i++) {
        size_t b = (pl.p[i].bytes + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
        if (b < pl.p[i].bytes || __builtin_add_overflow(total, b, &total))
            ovf = true;
    }
    if (ovf || pl.overflow) {
        st = vl__err(err, VL_ERR_LIMIT, "state: buffer sizes overflow (n_ctx %lld)",
                     (long long)ctx);
        goto fail;
    }
    s->arena = vl__aligned_alloc(ARENA_ALIGN, total ? total : ARENA_ALIGN);
    if (!s->arena) {
        st = vl__err(err, VL_ERR_NOMEM, "state: cannot allocate %zu MiB (n_ctx %lld)",
                     total >> 20, (long long)ctx);
        goto fail;
    }
    s->arena_bytes = total;
    size_t off = 0;
    for (int i = 0; i < pl.n; i++) {
        *pl.p[i].dst = (char *)s->arena + off;
        off += (pl.p[i].bytes + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
    }
    s->sampler.n_vocab = (int64_t)V;
    vl__rope_inv_freq(s->inv_freq, (int64_t)hd, tc->rope_theta);

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
    vl__log(VL_LOG_INFO, "state: %zu MiB arena (n_ctx %lld, n_batch %lld, KV %zu MiB), %d threads",
            total >> 20, (long long)ctx, (long long)nb, (2 * kv * sizeof(float)) >> 20,
            s->params.n_threads);
    *out = s;
    return VL_OK;
fail:
    vl_state_free(s);
    return st;
}

void vl_state_free(struct vl_state *s) {
    if (!s)
        return;
    vl__compute_free(&s->comp);
    vl__free(s->arena);
    vl__free(s);
}

void vl_state_reset(struct vl_state *s) {
    s->n_kv = 0;
    s->kv_rope_delta = 0;
}

void vl_set_hook(struct vl_state *s, vl_hook_fn fn, void *user) {
    s->hook = fn;
    s->hook_user = user;
}

const struct vl_state_params *vl_state_params_get(const struct vl_state *s) {
    return &s->params;
}
