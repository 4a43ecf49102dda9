/* The Qwen2 decoder of Qwen2.5-VL (spec §7): token embeddings, pre-norm layers with GQA (q/k/v
 * biases, no o bias), MRoPE on q and k, causal attention against the KV cache with f32 softmax,
 * SwiGLU MLP, final RMSNorm and the (tied or separate) lm_head for the last row.
 * Operates on one struct vl_state's buffers; no allocation. Not thread-safe per state: GEMMs run
 * on OpenBLAS's threads and the softmax on the state's pool, one after the other. */
#include "vl_llm_impl.h"

#include <math.h>
#include <string.h>

void vl__llm_embed(struct vl_state *s, float *x, const int32_t *ids, int64_t n) {
    const struct vl_tensor *e = &s->m->w.embed;
    const int64_t H = s->m->cfg.text.hidden_size;
    for (int64_t i = 0; i < n; i++)
        vl__to_f32(x + i * H, e, (int64_t)ids[i] * H, H);
}

/* Softmax of the causal rows of one head's score matrix, split over the pool by rows. */
struct softmax_task {
    float *scores;  /* (n, ld) */
    int64_t n, ld;
    int64_t start;  /* row i may see keys [0, start + i] */
};

static void softmax_causal(void *arg, int ith, int nth) {
    const struct softmax_task *t = arg;
    for (int64_t i = ith; i < t->n; i += nth) {
        float *row = t->scores + i * t->ld;
        int64_t len = t->start + i + 1;
        vl__softmax_rows(row, 1, len);
        if (len < t->ld)
            memset(row + len, 0, (size_t)(t->ld - len) * sizeof *row);
    }
}

/* Decode rows (one row per sequence): the query heads sharing KV head j are contiguous rows
 * (group, hd) of q, so each KV head needs one product pair instead of one per query head,
 * through the attn_qk / attn_pv kernels (no packing of the cache, which OpenBLAS's sgemm does on
 * every call: a 3B step at 1,168 keys measured 11.0 ms against 15.7 ms, one thread,
 * `kernel_bench attn-decode`). Units (sequence, KV head) are taken by the pool's workers in a
 * fixed stride; worker ith keeps its scores in rows [ith * group, (ith + 1) * group) of
 * s->scores. Each unit's arithmetic depends only on its own sequence. */
struct decode_task {
    struct vl_state *s;
    const struct vl_fwd_seg *segs;
    const int *idx; /* (n_idx) segments with one row */
    int n_idx;
    int64_t l;
};

static void attention_decode_units(void *arg, int ith, int nth) {
    const struct decode_task *t = arg;
    struct vl_state *s = t->s;
    const struct vl_text_config *tc = &s->m->cfg.text;
    const int64_t hd = tc->head_dim, nq = tc->num_attention_heads;
    const int64_t nkv = tc->num_key_value_heads, group = nq / nkv;
    const float scale = (float)(1.0 / sqrt((double)hd));
    const struct vl_simd *simd = vl__simd();
    const int64_t units = (int64_t)t->n_idx * nkv;
    for (int64_t u = ith; u < units; u += nth) {
        const struct vl_fwd_seg *g = &t->segs[t->idx[u / nkv]];
        const int64_t j = u % nkv, cap = g->q->cap, n_keys = g->start + 1;
        /* (group, n_keys) in the worker's own rows: sequences of a step differ in n_keys */
        float *scores = s->scores + (int64_t)ith * group * s->params.n_ctx;
        const float *kc = g->q->k_cache + ((t->l * nkv + j) * cap) * hd; /* (n_keys, hd) */
        const float *vcache = g->q->v_cache + ((t->l * nkv + j) * cap) * hd;
        const int64_t qoff = g->row0 * nq * hd + j * group * hd;
        /* scores (group, n_keys) = Q_g (group, hd) . K_j^T * scale */
        simd->attn_qk(scores, s->q + qoff, group, kc, n_keys, hd, scale);
        vl__softmax_rows(scores, group, n_keys);
        /* att_g (group, hd) = P (group, n_keys) . V_j (n_keys, hd) */
        simd->attn_pv(s->att + qoff, scores, group, vcache, n_keys, hd);
    }
}

/* Causal GQA attention of a segment's n rows (q already rotated) against its cache positions
 * [0, start + n) of layer l; result in its rows of s->att. Rows go in blocks of attn_block:
 * block [r0, r1) needs keys [0, start + r1) only. */
static void attention_prefill(struct vl_state *s, int64_t l, const struct vl_fwd_seg *g) {
    const struct vl_text_config *tc = &s->m->cfg.text;
    const int64_t hd = tc->head_dim, nq = tc->num_attention_heads;
    const int64_t nkv = tc->num_key_value_heads, group = nq / nkv;
    const int64_t cap = g->q->cap, ldq = nq * hd, start = g->start, n = g->n;
    const int64_t blk = s->params.attn_block;
    const float scale = (float)(1.0 / sqrt((double)hd));
    float *q = s->q + g->row0 * ldq, *att = s->att + g->row0 * ldq;
    for (int64_t r0 = 0; r0 < n; r0 += blk) {
        const int64_t rows = n - r0 < blk ? n - r0 : blk;
        const int64_t n_keys = start + r0 + rows;
        for (int64_t h = 0; h < nq; h++) {
            const int64_t j = h / group;
            const float *kc = g->q->k_cache + ((l * nkv + j) * cap) * hd; /* (cap, hd) */
            const float *vcache = g->q->v_cache + ((l * nkv + j) * cap) * hd;
            /* scores (rows, n_keys) = q_h (rows, hd) . K_j^T * scale */
            vl__gemm_f32(&s->comp, false, true, rows, n_keys, hd, scale, q + r0 * ldq + h * hd,
                         ldq, kc, hd, 0.0f, s->scores, n_keys);
            struct softmax_task t = {
                .scores = s->scores, .n = rows, .ld = n_keys, .start = start + r0};
            vl__pool_run(s->comp.pool, softmax_causal, &t);
            /* att_h (rows, hd) = P (rows, n_keys) . V_j (n_keys, hd) */
            vl__gemm_f32(&s->comp, false, false, rows, hd, n_keys, 1.0f, s->scores, n_keys,
                         vcache, hd, 0.0f, att + r0 * ldq + h * hd, ldq);
        }
    }
}

static void attention(struct vl_state *s, int64_t l, const struct vl_fwd_seg *segs, int n_seg) {
    int idx[VL_STATE_MAX_SEQS];
    int n_idx = 0;
    for (int k = 0; k < n_seg; k++) {
        if (segs[k].n == 1 && n_idx < VL_STATE_MAX_SEQS)
            idx[n_idx++] = k;
        else
            attention_prefill(s, l, &segs[k]);
    }
    if (n_idx > 0) {
        struct decode_task t = {.s = s, .segs = segs, .idx = idx, .n_idx = n_idx, .l = l};
        vl__pool_run(s->comp.pool, attention_decode_units, &t);
    }
}

/* Copies the rotated keys and the values of a segment's rows into its cache of layer l. */
static void cache_store(struct vl_state *s, int64_t l, const struct vl_fwd_seg *g) {
    const struct vl_text_config *tc = &s->m->cfg.text;
    const int64_t hd = tc->head_dim, nkv = tc->num_key_value_heads, cap = g->q->cap;
    for (int64_t j = 0; j < nkv; j++) {
        float *kc = g->q->k_cache + ((l * nkv + j) * cap + g->start) * hd;
        float *vc = g->q->v_cache + ((l * nkv + j) * cap + g->start) * hd;
        for (int64_t i = 0; i < g->n; i++) {
            const int64_t r = g->row0 + i;
            memcpy(kc + i * hd, s->k + (r * nkv + j) * hd, (size_t)hd * sizeof(float));
            memcpy(vc + i * hd, s->v + (r * nkv + j) * hd, (size_t)hd * sizeof(float));
        }
    }
}

static void add_inplace(float *x, const float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        x[i] += y[i];
}

static void hook_rows(const struct vl_state *s, const float *data, int64_t n, int64_t d,
                      const char *name) {
    int64_t shape[2] = {n, d};
    vl__hook(s, data, 2, shape, "%s", name);
}

enum vl_status vl__llm_forward(struct vl_state *s, const struct vl_fwd_seg *segs, int n_seg,
                               bool want_logits, bool hooks, struct vl_error *err) {
    const struct vl_config *cfg = &s->m->cfg;
    const struct vl_text_config *tc = &cfg->text;
    const struct vl_weights *w = &s->m->w;
    const int64_t H = tc->hidden_size, hd = tc->head_dim, V = tc->vocab_size;
    const int64_t nq = tc->num_attention_heads, nkv = tc->num_key_value_heads;
    const float eps = (float)tc->rms_norm_eps;
    int64_t n = 0;
    for (int k = 0; k < n_seg; k++) {
        const struct vl_fwd_seg *g = &segs[k];
        if (g->n <= 0 || g->row0 != n || g->start < 0 || g->start + g->n > g->q->cap)
            return vl__err(err, VL_ERR_INTERNAL, "llm: segment [%lld, +%lld) outside its cache",
                           (long long)g->start, (long long)g->n);
        n += g->n;
    }
    if (n_seg < 1 || n_seg > s->params.max_seqs || n > s->params.n_batch)
        return vl__err(err, VL_ERR_INTERNAL, "llm: %lld rows in %d segments exceed the state",
                       (long long)n, n_seg);
    hooks = hooks && s->hook && n_seg == 1;
    if (hooks)
        hook_rows(s, s->x, n, H, "lm.inputs_embeds");
    for (int k = 0; k < n_seg; k++)
        vl__mrope_tables(s->rope_cos + segs[k].row0 * hd, s->rope_sin + segs[k].row0 * hd,
                         segs[k].pos, segs[k].pos_stride, segs[k].n, s->inv_freq, hd,
                         tc->mrope_section);
    if (hooks) {
        hook_rows(s, s->rope_cos, n, hd, "lm.rope_cos");
        hook_rows(s, s->rope_sin, n, hd, "lm.rope_sin");
    }
    for (int64_t l = 0; l < tc->num_hidden_layers; l++) {
        const struct vl_llm_layer *ly = &w->layers[l];
        vl__rmsnorm(&s->comp, s->xn, s->x, n, H, &ly->attn_norm, eps);
        const struct vl_linear_out qkv[3] = {{.y = s->q, .w = &ly->q_w, .b = &ly->q_b},
                                             {.y = s->k, .w = &ly->k_w, .b = &ly->k_b},
                                             {.y = s->v, .w = &ly->v_w, .b = &ly->v_b}};
        vl__linear_multi(&s->comp, s->xn, n, qkv, 3);
        vl__mrope_apply(s->q, n, nq, hd, s->rope_cos, s->rope_sin);
        vl__mrope_apply(s->k, n, nkv, hd, s->rope_cos, s->rope_sin);
        for (int k = 0; k < n_seg; k++)
            cache_store(s, l, &segs[k]);
        attention(s, l, segs, n_seg);
        vl__linear(&s->comp, s->xn, s->att, n, &ly->o_w, NULL);
        add_inplace(s->x, s->xn, n * H);
        vl__rmsnorm(&s->comp, s->xn, s->x, n, H, &ly->mlp_norm, eps);
        vl__linear_swiglu(&s->comp, s->gate, s->up, s->xn, n, &ly->gate_w, &ly->up_w);
        vl__linear(&s->comp, s->xn, s->gate, n, &ly->down_w, NULL);
        add_inplace(s->x, s->xn, n * H);
        if (hooks) {
            int64_t shape[2] = {n, H};
            vl__hook(s, s->x, 2, shape, "lm.layer%lld.out", (long long)l);
        }
    }
    if (!want_logits && !hooks)
        return VL_OK;
    if (hooks) { /* final norm of every row */
        vl__rmsnorm(&s->comp, s->xn, s->x, n, H, &w->final_norm, eps);
        hook_rows(s, s->xn, n, H, "lm.final_norm");
    }
    if (!want_logits)
        return VL_OK;
    /* the segments' last rows, normed, packed as rows 0..n_seg-1 of xn (row k-th last row is at
     * or after row k, so packing in order never overwrites a row still to be read) */
    for (int k = 0; k < n_seg; k++) {
        const int64_t last = segs[k].row0 + segs[k].n - 1;
        if (hooks)
            memmove(s->xn + k * H, s->xn + last * H, (size_t)H * sizeof(float));
        else
            vl__rmsnorm(&s->comp, s->xn + k * H, s->x + last * H, 1, H, &w->final_norm, eps);
    }
    vl__linear(&s->comp, s->logits, s->xn, n_seg, &w->lm_head, NULL);
    if (hooks) {
        int64_t shape[1] = {V};
        vl__hook(s, s->logits, 1, shape, "logits.last");
    }
    return VL_OK;
}
