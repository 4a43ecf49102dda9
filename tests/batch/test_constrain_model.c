/* Constrained decoding with the tiny fixture checkpoint (random weights: its answers are noise,
 * the most hostile model there is), sampling at temperature 1 with seeds 1..50 (top-k 50, so the
 * sampler does not sort the whole vocabulary each step), through libvl's real generate loop and
 * constrain hook: under every built-in kie schema, the chart schema and the test schema (enums,
 * integers, booleans, nested arrays, optional fields) every answer, decoded from the generated
 * ids, must be a valid instance (independent validator, t_answer.h); the same runs with the
 * constraint off must mostly not be. Budgets are the schema's minimum answer plus a margin, so
 * the budget completion is exercised on most runs. Labelled slow (Release only). */
#include "dp_batch.h"
#include "ex_cons.h"
#include "sc.h"
#include "t.h"
#include "t_answer.h"
#include "vl.h"

#define SEEDS 50
#define MARGIN 24 /* tokens above the schema's shortest answer */

static int valid_run(struct vl_state *st, const struct vl_model *m, const int32_t *ids, int64_t n,
                     struct dp_constrain *dc, int64_t budget, uint64_t seed, json_t *schema,
                     bool plain, int64_t *forced) {
    struct vl_gen_params gp = vl_gen_default_params();
    gp.max_new_tokens = budget;
    gp.temperature = 1.0f;
    gp.top_k = 50;
    gp.repetition_penalty = 1.0f;
    gp.seed = seed;
    if (dc)
        dp_constrain_attach(dc, 0, &gp);
    struct vl_request rq = {.ids = ids, .n_ids = n};
    struct vl_result res;
    struct vl_error ve = {0};
    if (vl_generate(st, &rq, &gp, &res, &ve) != VL_OK) {
        T_FAIL_AT("generate (seed %llu, %s): %s", (unsigned long long)seed,
                  dc ? "constrained" : "free", ve.msg);
        return 0;
    }
    int64_t keep = res.n && res.stop == VL_STOP_EOS ? res.n - 1 : res.n;
    char *text = NULL;
    size_t len = 0;
    if (vl_tokenizer_decode(vl_model_tokenizer(m), res.ids, (size_t)keep, false, &text, &len,
                            &ve) != VL_OK)
        return 0;
    bool ok = valid_answer(text, len, schema, plain);
    if (dc) {
        *forced += res.n_forced;
        if (!ok)
            fprintf(stderr, "seed %llu: invalid constrained answer: %.*s\n",
                    (unsigned long long)seed, (int)len, text);
        T_CHECK(res.stop == VL_STOP_EOS);
        T_CHECK(ex_cons_complete(dp_constrain_cons(dc, 0)));
    }
    free(text);
    return ok;
}

static void one_schema(struct vl_state *st, const struct vl_model *m, const char *name,
                       const char *text) {
    struct sc_schema *s = NULL;
    struct dp_err err = {0};
    enum dp_status ss = text ? sc_schema_parse(&s, text, strlen(text), "test.json", &err)
                             : sc_schema_load(&s, name, &err);
    if (ss != DP_OK) {
        T_FAIL_AT("%s: %s", name, err.msg);
        return;
    }
    json_error_t je;
    json_t *schema = json_loadb(s->source, s->source_len, 0, &je);
    struct ex_gram *g = NULL;
    struct dp_constrain *dc = NULL;
    /* once with room to spare to learn the shortest answer, then with the budget of every run */
    T_CHECK(dp_constrain_compile(&g, s, DP_CONSTRAIN_AUTO, &err) == DP_OK && g);
    T_CHECK(g && dp_constrain_new(&dc, g, m, 4096, &err) == DP_OK);
    int64_t min = dc ? ex_gram_min_tokens(dp_constrain_gram(dc)) : 0;
    dp_constrain_free(dc);
    dc = NULL;
    int64_t budget = min + MARGIN;
    T_CHECK(dp_constrain_compile(&g, s, DP_CONSTRAIN_AUTO, &err) == DP_OK && g);
    T_CHECK(g && dp_constrain_new(&dc, g, m, budget, &err) == DP_OK);
    struct dp_constrain *small = NULL;
    T_CHECK(dp_constrain_compile(&g, s, DP_CONSTRAIN_AUTO, &err) == DP_OK && g);
    T_CHECK(g && dp_constrain_new(&small, g, m, min - 1, &err) == DP_ERR_USAGE);
    int32_t *ids = NULL;
    size_t n = 0;
    struct vl_error ve = {0};
    T_CHECK(vl_chat_build(m, NULL, s->prompt, NULL, 0, &ids, &n, &ve) == VL_OK);
    int on = 0, off = 0;
    int64_t forced = 0;
    for (uint64_t seed = 1; dc && ids && seed <= SEEDS; seed++) {
        on += valid_run(st, m, ids, (int64_t)n, dc, budget, seed, schema,
                        s->task == SC_TASK_CHART, &forced);
        off += valid_run(st, m, ids, (int64_t)n, NULL, budget, seed, schema,
                         s->task == SC_TASK_CHART, &forced);
    }
    printf("%s: budget %lld tokens (shortest answer %lld); valid: %d/%d constrained, %d/%d with "
           "--constrain off; %lld ids jump-forwarded\n",
           name, (long long)budget, (long long)min, on, SEEDS, off, SEEDS, (long long)forced);
    T_CHECK_MSG(on == SEEDS, "%s: %d/%d constrained answers valid", name, on, SEEDS);
    T_CHECK_MSG(off <= SEEDS / 10, "%s: %d/%d unconstrained answers valid", name, off, SEEDS);
    T_CHECK(forced > 0);
    free(ids);
    dp_constrain_free(dc);
    json_decref(schema);
    sc_schema_free(s);
}

int main(void) {
    const char *fx = getenv("DP_FIXTURES");
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/qwen25vl-tiny/model", fx ? fx : ".");
    struct vl_model *m = NULL;
    struct vl_error ve = {0};
    if (vl_model_load(&m, dir, &ve) != VL_OK) {
        T_FAIL_AT("%s: %s", dir, ve.msg);
        return t_done();
    }
    struct vl_state_params sp = vl_state_default_params();
    sp.n_threads = 1;
    sp.n_ctx = 2048;
    sp.max_vision_patches = 4;
    struct vl_state *st = NULL;
    T_CHECK(vl_state_new(&st, m, &sp, &ve) == VL_OK);
    if (st) {
        one_schema(st, m, "invoice", NULL);
        one_schema(st, m, "receipt", NULL);
        one_schema(st, m, "form", NULL);
        one_schema(st, m, "chart", NULL);
        one_schema(st, m, "test-schema", T_ANSWER_TEST_SCHEMA);
    }
    vl_state_free(st);
    vl_model_free(m);
    return t_done();
}
