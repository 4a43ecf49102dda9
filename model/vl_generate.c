/* vl_generate, one request end to end on top of the sequence scheduler (vl_seq.c): add it, step
 * until it is done, hand back its result (borrowed from the state until the next vl_generate).
 * Also the prompt helpers: the synthetic benchmark prompt and pad expansion (spec §5.2).
 * One state, one thread. */
#include "vl_llm_impl.h"

#include <stdlib.h>
#include <string.h>

/* Synthetic text ids: i * SYNTH_STRIDE + SYNTH_OFFSET modulo the plain-token range (a prime
 * stride visits varied ids, so the benchmark does not run on one repeated token). */
#define SYNTH_STRIDE 7919
#define SYNTH_OFFSET 1000

enum vl_status vl_generate(struct vl_state *s, const struct vl_request *rq,
                           const struct vl_gen_params *p, struct vl_result *out,
                           struct vl_error *err) {
    memset(out, 0, sizeof *out);
    out->stop = VL_STOP_MAX_TOKENS;
    /* the previous vl_generate's sequence was kept for its result: free it now */
    for (int i = 0; i < s->params.max_seqs; i++)
        if (s->seqs[i].phase == VL_SEQ_DONE)
            vl_seq_release(s, i);
    if (vl_state_busy(s) > 0)
        return vl__err(err, VL_ERR_INVALID, "vl_generate: sequences added with vl_seq_add are "
                                            "still running on this state");
    int id = -1;
    enum vl_status st = vl_seq_add(s, &id, rq, p, err);
    if (st != VL_OK)
        return st;
    enum vl_status seq_st = VL_OK;
    while (!vl_seq_done(s, id, out, &seq_st, err)) {
        st = vl_step(s, err);
        if (st != VL_OK) {
            vl_seq_cancel(s, id);
            (void)vl_seq_done(s, id, out, &seq_st, NULL);
            return st;
        }
    }
    return seq_st;
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
