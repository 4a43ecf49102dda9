/* model/ private declarations of the inference state, MRoPE, the Qwen2 decoder, the sampler and
 * the generation loop (vl_state.c, vl_rope.c, vl_llm.c, vl_sampler.c, vl_generate.c,
 * vl_debug.c). Never included by a public header or by code outside model/ (tests may).
 *
 * Ownership: struct vl_state owns one arena (every activation buffer, the KV cache, sampler
 * scratch and the result arrays) and the compute context; it borrows the model, which must
 * outlive it. A state is used by one thread at a time. */
#ifndef VL_LLM_IMPL_H
#define VL_LLM_IMPL_H

#include "vl_impl.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- MRoPE (vl_rope.c) -------------------------------------------------------------------- */

#define VL_ROPE_AXES 3 /* (t, h, w) */

/* get_rope_index for one unpadded sequence (spec §6.1): pos is (3, n) row-major (t row, h row,
 * w row), *out_delta the rope_delta used for decoding. vis lists the request's images and
 * videos in prompt order; the k-th run of image (video) pad tokens is filled by the k-th image
 * (video) input. VL_ERR_INVALID when the pad runs do not match the inputs' token counts. */
enum vl_status vl__rope_index(int64_t *pos, int64_t *out_delta, const int32_t *ids, int64_t n,
                              const struct vl_config *cfg, const struct vl_vision_input *vis,
                              int n_vis, struct vl_error *err);
/* Tokens the merger produces for one input: grid_t * grid_h * grid_w / merge^2. */
int64_t vl__vision_tokens(const struct vl_config *cfg, const struct vl_vision_input *in);
/* inv_freq[j] = 1 / theta^(2j / hd), j < hd/2, in float as the reference computes it. */
void vl__rope_inv_freq(float *inv_freq, int64_t hd, double theta);
/* Section-selected tables (spec §6.6): cos/sin (n, hd) for tokens whose positions are
 * pos[a * pos_stride + i] (a = axis, i < n). */
void vl__mrope_tables(float *cos_t, float *sin_t, const int64_t *pos, int64_t pos_stride,
                      int64_t n, const float *inv_freq, int64_t hd, const int64_t *section);
/* Rotate-half RoPE in place on x (n, n_heads * hd) with the tables of vl__mrope_tables. */
void vl__mrope_apply(float *x, int64_t n, int64_t n_heads, int64_t hd, const float *cos_t,
                     const float *sin_t);

/* ---- sampler (vl_sampler.c) ---------------------------------------------------------------- */

struct vl_sampler {
    int64_t n_vocab;
    uint64_t rng;        /* xorshift64* state, never 0 */
    uint8_t *seen;       /* (n_vocab) ids in prompt or output, for the repetition penalty */
    float *work;         /* (n_vocab) processed logits */
    int32_t *cand;       /* (n_vocab) candidate ids for top-k / top-p */
};
void vl__sampler_seed(struct vl_sampler *s, uint64_t seed);
/* Clears the seen set and marks ids (the prompt). */
void vl__sampler_begin(struct vl_sampler *s, const int32_t *ids, int64_t n);
void vl__sampler_mark(struct vl_sampler *s, int32_t id);
/* Picks the next id from raw logits (n_vocab, not modified): repetition penalty over seen ids,
 * EOS ids masked when p->ignore_eos, then greedy (temperature <= 0) or temperature / top-k /
 * top-p sampling (HF order). *out_logprob is log softmax(raw logits)[id]. */
int32_t vl__sampler_pick(struct vl_sampler *s, const float *logits, const struct vl_gen_params *p,
                         const struct vl_config *cfg, float *out_logprob);
/* id is one of the config's EOS ids (generation_config.json eos_token_id). */
bool vl__is_eos(const struct vl_config *cfg, int32_t id);
uint64_t vl__rng_next(uint64_t *state);
/* Uniform in [0, 1). */
double vl__rng_uniform(uint64_t *state);

/* ---- sequences and the inference state (vl_state.c, vl_seq.c) ------------------------------- */

enum vl_seq_phase {
    VL_SEQ_FREE = 0, /* slot unused */
    VL_SEQ_PENDING,  /* added; vision and prefill not started */
    VL_SEQ_PREFILL,  /* vision done; prompt chunks left (pf_at < n_ids) */
    VL_SEQ_DECODE,   /* in the decode steps: last_id is the next input */
    VL_SEQ_DONE,     /* finished (status says how); result kept until released */
};

/* One sequence in flight: its own KV cache (grown on demand), positions, sampler and result.
 * The request's ids are copied; its vision inputs are borrowed until vl_seq_release. */
struct vl_seq {
    enum vl_seq_phase phase;
    int64_t cap;                   /* KV positions allocated */
    float *k_cache, *v_cache;      /* (layers, n_kv_heads, cap, head_dim) each, keys after RoPE */
    int32_t *kv_ids;               /* (cap) token of each cached position (-1 = vision) */
    int64_t n_kv;                  /* cached positions */
    int64_t need;                  /* most positions it can use: n_ids + max_new_tokens, <= n_ctx */
    int64_t rope_delta;

    int32_t *ids;                  /* (ids_cap) the prompt, copied */
    int64_t n_ids, ids_cap;
    const struct vl_vision_input *vision; /* borrowed */
    int n_vision;
    struct vl_gen_params p;
    int64_t seg;                   /* prompt segment boundary: the first pad token (0: none) */
    int64_t pf_at;                 /* next prompt position to prefill */
    int32_t last_id;

    struct vl_sampler sampler;     /* seen is the slot's own; work/cand are the state's */
    int32_t *out_ids;              /* (out_cap) generated ids */
    float *out_logprobs;           /* (out_cap) */
    float *out_masked_logprobs;    /* (out_cap) [constraint hook, issue #17] */
    int64_t out_cap;
    int32_t forced[VL_GEN_MAX_FORCED]; /* [constraint hook] ids to feed as one chunk */
    int n_forced;                  /* > 0: fed by feed_forced, not by the decode step */
    const float *logits;           /* (V) the logits the last id was picked from (valid in the
                                    * per-token callback) */

    struct vl_result res;
    enum vl_status status;
    struct vl_error err;
};

struct vl_state {
    const struct vl_model *m;
    struct vl_state_params params; /* resolved: no zeros left */
    struct vl_compute comp;

    void *arena;                   /* one allocation, carved below */
    size_t arena_bytes;

    struct vl_seq *seqs;           /* (params.max_seqs) slots */
    int last_unit;                 /* scheduler: 1 when the last vl_step was a decode step */
    struct vl_state_stats stats;

    /* prefix cache: the KV of the last prompt segment before the first vision token */
    int32_t *pfx_ids;              /* (pfx_cap) */
    float *pfx_k, *pfx_v;          /* (layers, n_kv_heads, pfx_cap, head_dim) */
    int64_t pfx_n, pfx_cap;

    /* chunk buffers, n_batch rows (a decode step uses one row per sequence) */
    float *x;                      /* (n_batch, H) residual stream */
    float *xn;                     /* (n_batch, H) normed input / projection output */
    float *q;                      /* (n_batch, nQ * hd) */
    float *k, *v;                  /* (n_batch, nKV * hd) */
    float *att;                    /* (n_batch, nQ * hd) */
    float *gate, *up;              /* (n_batch, I) */
    float *scores;                 /* (max(attn_block, nQ/nKV * n_threads), n_ctx) */
    float *rope_cos, *rope_sin;    /* (n_batch, hd) */
    float *inv_freq;               /* (hd / 2) */
    float *logits;                 /* (max_seqs, V) one row per sequence of a step */
    int64_t *dpos;                 /* (3, max_seqs) decode-step positions */

    int64_t *pos;                  /* (3, n_ctx) positions of the sequence in prefill */
    float *vis_embeds;             /* (n_ctx, H) its vision tokens, prompt order */
    float *vis_scratch;            /* vl__vision_scratch_floats(max_vision_patches) */
    size_t vis_scratch_floats;
    float *samp_work;              /* (n_samp, V) sampler scratch shared by the slots: row 0 */
    int32_t *samp_cand;            /* (n_samp, V)   for choose, row i for slice i of the pick */
    int n_samp;                    /* min(n_threads, max_seqs) */

    vl_hook_fn hook;
    void *hook_user;
};

/* Makes room for n positions in q's KV cache (keeps what is cached). */
enum vl_status vl__seq_reserve(struct vl_state *s, struct vl_seq *q, int64_t n,
                               struct vl_error *err);
void vl__seq_free_buffers(struct vl_seq *q);
/* The first KV allocation of a sequence: its prompt and a first share of its new tokens. */
int64_t vl__seq_first_cap(const struct vl_seq *q);

/* ---- decoder (vl_llm.c) ---------------------------------------------------------------------- */

/* Embedding rows of ids into x (n, H), f32. */
void vl__llm_embed(struct vl_state *s, float *x, const int32_t *ids, int64_t n);

/* One sequence's rows in a forward pass: rows [row0, row0 + n) of the state's buffers are its
 * tokens at cache positions [start, start + n), MRoPE positions pos[a * pos_stride + i]. */
struct vl_fwd_seg {
    struct vl_seq *q;
    int64_t row0, start, n;
    const int64_t *pos;
    int64_t pos_stride;
};

/* Runs the decoder over the segments' rows (embeddings in s->x, rows of the segments in order),
 * appending each segment's K/V to its own cache. Linear layers run once over all rows; attention
 * per segment against its own cache. want_logits: s->logits row k = logits of the last row of
 * segment k. hooks: the lm.* checkpoints (one segment only). Rows <= n_batch. */
enum vl_status vl__llm_forward(struct vl_state *s, const struct vl_fwd_seg *segs, int n_seg,
                               bool want_logits, bool hooks, struct vl_error *err);

/* ---- debug hook helpers (vl_debug.c) ------------------------------------------------------- */

/* Calls the state's hook if set (name is printf-formatted only then). */
void vl__hook(const struct vl_state *s, const float *data, int ndim, const int64_t *shape,
              const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#endif
