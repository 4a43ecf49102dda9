/* Generation-loop behaviour on the tiny fixture model (text_only golden case): stop on an EOS id
 * from the config, max_new_tokens and context truncation flags, the per-token callback stopping
 * early, the abort callback (VL_ERR_CANCELLED with the tokens so far), a prompt longer than the
 * context, tiny prefill chunks (n_batch 7) giving the golden tokens, seeded sampling being
 * reproducible, vl_prompt_expand / vl_prompt_synthetic, and state parameter errors. */
#include "t.h"
#include "llm_golden.h"
#include "vl_llm_impl.h"

#define GEN 24

static struct vl_model *m;
static int32_t *ids;
static int64_t n_ids;
static int64_t want[GEN];

static struct vl_state *state(int64_t n_ctx, int64_t n_batch) {
    struct vl_state_params sp = vl_state_default_params();
    sp.n_ctx = n_ctx;
    sp.n_batch = n_batch;
    struct vl_state *s = NULL;
    struct vl_error err = {0};
    T_CHECK_MSG(vl_state_new(&s, m, &sp, &err) == VL_OK, "state: %s", err.msg);
    return s;
}

static struct vl_gen_params greedy(void) {
    struct vl_gen_params p = vl_gen_default_params();
    p.repetition_penalty = 1.0f;
    p.max_new_tokens = GEN;
    p.ignore_eos = true;
    return p;
}

static bool stop_at_5(int32_t id, float lp, void *user) {
    (void)id;
    T_CHECK(lp <= 0.0f);
    return ++*(int *)user < 5;
}

static bool abort_after_2(void *user) {
    return ++*(int *)user > 2;
}

static void loop_behaviour(void) {
    struct vl_state *s = state(n_ids + GEN, 7);
    if (!s)
        return;
    struct vl_request rq = {ids, n_ids, NULL, 0};
    struct vl_result r;
    struct vl_error err = {0};
    /* chunks of 7 rows reproduce the golden tokens */
    struct vl_gen_params p = greedy();
    T_CHECK(vl_generate(s, &rq, &p, &r, &err) == VL_OK);
    int bad = r.n != GEN;
    for (int i = 0; !bad && i < GEN; i++)
        bad += r.ids[i] != want[i];
    T_CHECK_MSG(!bad, "n_batch 7: tokens differ");
    T_CHECK(r.truncated && r.stop == VL_STOP_MAX_TOKENS && r.t.n_prompt == n_ids);
    T_EQ_I64(r.t.n_decoded, GEN - 1);
    /* EOS: make the 4th golden token an EOS id of the config */
    struct vl_config *cfg = (struct vl_config *)&m->cfg;
    struct vl_gen_config saved = cfg->gen;
    cfg->gen.n_eos = 1;
    cfg->gen.eos_token_ids[0] = (int32_t)want[3];
    p.ignore_eos = false;
    p.reuse_prefix = false;
    T_CHECK(vl_generate(s, &rq, &p, &r, &err) == VL_OK);
    int first = 0;
    while (first < GEN && want[first] != want[3])
        first++;
    T_EQ_I64(r.n, first + 1);
    T_CHECK(!r.truncated && r.stop == VL_STOP_EOS && r.ids[r.n - 1] == want[3]);
    /* ignore_eos excludes it from the choice: the 4th token can no longer be want[3] */
    p.ignore_eos = true;
    T_CHECK(vl_generate(s, &rq, &p, &r, &err) == VL_OK);
    bool never = true;
    for (int64_t i = 0; i < r.n; i++)
        never &= r.ids[i] != want[3];
    T_CHECK(never && r.n == GEN);
    cfg->gen = saved;
    /* callback stop */
    int calls = 0;
    p = greedy();
    p.on_token = stop_at_5;
    p.token_user = &calls;
    T_CHECK(vl_generate(s, &rq, &p, &r, &err) == VL_OK);
    T_CHECK(r.n == 5 && r.stop == VL_STOP_CALLBACK && !r.truncated);
    /* abort: polled once per prefill chunk and decode step */
    int polls = 0;
    p = greedy();
    p.reuse_prefix = false;
    p.should_abort = abort_after_2;
    p.abort_user = &polls;
    T_EQ_I64(vl_generate(s, &rq, &p, &r, &err), VL_ERR_CANCELLED);
    printf("abort: %s\n", err.msg);
    /* the state is usable afterwards and reuses what is cached */
    memset(&err, 0, sizeof err);
    p = greedy();
    T_CHECK(vl_generate(s, &rq, &p, &r, &err) == VL_OK && r.n == GEN && r.ids[GEN - 1] == want[GEN - 1]);
    /* a text-only prompt has no segment before a vision token: nothing is reused (a partial
     * prefix computed inside another prompt's chunk would not be bit-identical, vl_seq.c) */
    T_EQ_I64(r.t.n_reused, 0);
    vl_state_free(s);
    /* context end */
    s = state(n_ids + 3, 0);
    p = greedy();
    T_CHECK(s && vl_generate(s, &rq, &p, &r, &err) == VL_OK);
    T_CHECK(r.n == 4 && r.truncated && r.stop == VL_STOP_CONTEXT && r.ids[3] == want[3]);
    vl_state_free(s);
    /* prompt longer than the context */
    s = state(n_ids - 1, 0);
    memset(&err, 0, sizeof err);
    T_CHECK(s && vl_generate(s, &rq, &p, &r, &err) == VL_ERR_LIMIT);
    printf("long prompt: %s\n", err.msg);
    vl_state_free(s);
}

static void sampling_repro(void) {
    struct vl_state *s = state(n_ids + GEN, 0);
    if (!s)
        return;
    struct vl_request rq = {ids, n_ids, NULL, 0};
    struct vl_result r;
    struct vl_error err = {0};
    struct vl_gen_params p = greedy();
    p.temperature = 1.5f;
    p.top_k = 40;
    p.top_p = 0.9f;
    p.seed = 7;
    int32_t a[GEN];
    T_CHECK(vl_generate(s, &rq, &p, &r, &err) == VL_OK && r.n == GEN);
    memcpy(a, r.ids, sizeof a);
    T_CHECK(vl_generate(s, &rq, &p, &r, &err) == VL_OK && r.n == GEN);
    T_CHECK(!memcmp(a, r.ids, sizeof a));
    p.seed = 8;
    T_CHECK(vl_generate(s, &rq, &p, &r, &err) == VL_OK);
    T_CHECK(memcmp(a, r.ids, sizeof a) != 0);
    /* the published defaults (penalty 1.05, greedy) run and differ from the plain argmax run */
    p = vl_gen_default_params();
    p.max_new_tokens = GEN;
    p.ignore_eos = true;
    T_CHECK(vl_generate(s, &rq, &p, &r, &err) == VL_OK && r.n == GEN);
    vl_state_free(s);
}

static void prompts(void) {
    const struct vl_config *cfg = &m->cfg;
    struct vl_vision_input vis[2] = {{.grid_t = 1, .grid_h = 4, .grid_w = 6},
                                     {.grid_t = 2, .grid_h = 4, .grid_w = 4, .is_video = true,
                                      .second_per_grid_t = 1.0}};
    int32_t p[] = {1, cfg->vision_start_token_id, cfg->video_token_id, cfg->vision_end_token_id,
                   2, cfg->vision_start_token_id, cfg->image_token_id, cfg->vision_end_token_id};
    int32_t *out = NULL;
    int64_t n = 0;
    struct vl_error err = {0};
    T_CHECK(vl_prompt_expand(&out, &n, m, p, 8, vis, 2, &err) == VL_OK);
    T_EQ_I64(n, 8 - 2 + 6 + 8);
    T_CHECK(out && out[2] == cfg->video_token_id && out[9] == cfg->video_token_id &&
            out[10] == cfg->vision_end_token_id && out[13] == cfg->image_token_id);
    free(out);
    T_EQ_I64(vl_prompt_expand(&out, &n, m, p, 8, vis, 1, &err), VL_ERR_INVALID);
    printf("expand mismatch: %s\n", err.msg);
    T_EQ_I64(vl_vision_tokens(m, &vis[0]), 6);
    T_CHECK(vl_prompt_synthetic(&out, &n, m, vis, 2, 10, &err) == VL_OK);
    T_EQ_I64(n, 10 + 2 + 6 + 2 + 8);
    int64_t pos[3 * 64], delta;
    memset(&err, 0, sizeof err);
    T_CHECK(out && vl__rope_index(pos, &delta, out, n, cfg, vis, 2, &err) == VL_OK);
    for (int64_t i = 0; out && i < n; i++)
        T_CHECK(out[i] >= 0 && out[i] < cfg->text.vocab_size);
    free(out);
}

static void bad_params(void) {
    struct vl_state_params sp = vl_state_default_params();
    struct vl_state *s = NULL;
    struct vl_error err = {0};
    sp.n_threads = 0;
    T_EQ_I64(vl_state_new(&s, m, &sp, &err), VL_ERR_INVALID);
    sp = vl_state_default_params();
    sp.n_ctx = INT64_MAX / 2;
    sp.max_vision_patches = 16;
    memset(&err, 0, sizeof err);
    T_CHECK(vl_state_new(&s, m, &sp, &err) == VL_OK); /* capped by max_position_embeddings */
    T_CHECK(s && vl_state_params_get(s)->n_ctx == m->cfg.text.max_position_embeddings);
    vl_state_free(s);
    s = state(64, 0);
    struct vl_gen_params p = greedy();
    int32_t bad_id = (int32_t)m->cfg.text.vocab_size;
    struct vl_request rq = {&bad_id, 1, NULL, 0};
    struct vl_result r;
    T_EQ_I64(vl_generate(s, &rq, &p, &r, &err), VL_ERR_INVALID);
    vl_state_free(s);
}

int main(void) {
    char dir[LG_PATH_MAX];
    struct vl_error err = {0};
    T_CHECK_MSG(vl_model_load(&m, lg_model_dir(dir, sizeof dir), &err) == VL_OK, "model: %s",
                err.msg);
    struct vl_st_file *f = lg_open("text_only");
    size_t n = 0, nw = 0;
    int64_t *ids64 = f ? lg_i64(f, "input_ids", &n) : NULL;
    int64_t *w = f ? lg_i64(f, "gen.decode_ids", &nw) : NULL;
    T_CHECK(m && ids64 && w && nw == GEN);
    if (!m || !ids64 || !w || nw != GEN)
        return t_done();
    ids = malloc(n * sizeof *ids);
    for (size_t i = 0; i < n; i++)
        ids[i] = (int32_t)ids64[i];
    n_ids = (int64_t)n;
    memcpy(want, w, sizeof want);
    loop_behaviour();
    sampling_repro();
    prompts();
    bad_params();
    free(ids);
    free(ids64);
    free(w);
    vl_st_close(f);
    vl_model_free(m);
    return t_done();
}
