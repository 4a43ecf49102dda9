/* `docproc bench --schema NAME`: the cost of schema-constrained decoding for one schema with the
 * checkpoint's vocabulary, independent of the model's speed: time to build the vocabulary index
 * (once per model) and to compile + bind the schema (once per run), then per-call CPU time of the constrain hook (mask or
 * jump-forward) over hostile answers (near-uniform logits with random spikes, sampled at
 * temperature 1, as the tests do), reported as median / p99 / max with the forced-id counts.
 * Single-threaded; called by cmd_bench.c. */
#include "dp_cli.h"
#include "dp_alloc.h"
#include "dp_batch.h"
#include "ex_cons.h"
#include "sc.h"
#include "vl_tools.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BC_ANSWERS 20          /* hostile answers timed */
#define BC_BUDGET_OVER_MIN 400 /* tokens of budget above the shortest answer */
#define BC_SPIKES 256          /* random high logits per step */
#define BC_SPIKE_MAX 8.0
#define BC_SEED 0x9E3779B97F4A7C15ULL
#define BC_MAX_TIMES 65536

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t rng_next(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static double rng_unit(uint64_t *s) {
    return (double)(rng_next(s) >> 11) / 9007199254740992.0;
}

static int32_t sample(const float *z, int64_t n, uint64_t *rng) {
    double sum = 0;
    for (int64_t i = 0; i < n; i++)
        sum += isinf(z[i]) ? 0.0 : exp((double)z[i]);
    double r = rng_unit(rng) * sum, acc = 0;
    for (int64_t i = 0; i < n; i++) {
        acc += isinf(z[i]) ? 0.0 : exp((double)z[i]);
        if (r < acc)
            return (int32_t)i;
    }
    return (int32_t)(n - 1);
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static const char *tok_bytes(void *user, int32_t id, size_t *len) {
    const struct vl_tokenizer *t = user;
    return vl_tokenizer_is_special(t, id) ? NULL : vl_tokenizer_token_bytes(t, id, len);
}

json_t *dp__bench_constrain(const struct vl_model *m, const char *schema_name,
                            struct dp_err *err) {
    struct sc_schema *s = NULL;
    struct ex_gram *g = NULL;
    struct ex_vocab *v = NULL;
    struct ex_cons *c = NULL;
    if (sc_schema_load(&s, schema_name, err) != DP_OK)
        return NULL;
    const struct vl_tokenizer *tok = vl_model_tokenizer(m);
    struct vl_model_summary sum;
    vl_model_summary(m, &sum);
    enum dp_status st = tok ? DP_OK : dp_err_set(err, DP_ERR_MODEL, "no tokenizer");
    double t0 = now_s();
    struct ex_vocab_src src = {.n_logits = (int32_t)sum.vocab_size,
                               .n_tokens = tok ? vl_tokenizer_n_ids(tok) : 0,
                               .bytes = tok_bytes,
                               .user = (void *)tok,
                               .eos_id = tok ? vl_tokenizer_token_id(tok, "<|im_end|>") : 0};
    if (st == DP_OK)
        st = ex_vocab_new(&v, &src, err);
    double index_s = now_s() - t0; /* once per model */
    t0 = now_s();
    if (st == DP_OK)
        st = dp_constrain_compile(&g, s, DP_CONSTRAIN_ON, err);
    if (st == DP_OK)
        st = ex_gram_bind(g, v, err);
    double compile_s = now_s() - t0; /* once per schema and run */
    int64_t min = st == DP_OK ? ex_gram_min_tokens(g) : 0;
    if (st == DP_OK)
        st = ex_cons_new(&c, g, v, min + BC_BUDGET_OVER_MIN, err);
    float *z = st == DP_OK ? dp_malloc((size_t)sum.vocab_size * sizeof *z) : NULL;
    double *times = st == DP_OK ? dp_calloc(BC_MAX_TIMES, sizeof *times) : NULL;
    if (st == DP_OK && (!z || !times))
        st = dp_err_set(err, DP_ERR_NOMEM, "out of memory");
    int64_t n_times = 0, forced = 0, jumps = 0, masks = 0, tokens = 0, complete = 0;
    int32_t n_tok = vl_tokenizer_n_ids(vl_model_tokenizer(m));
    uint64_t rng = BC_SEED;
    for (int a = 0; st == DP_OK && a < BC_ANSWERS; a++) {
        ex_cons_reset(c);
        ex_cons_keep_times(c, BC_MAX_TIMES);
        while (!ex_cons_complete(c) && !ex_cons_failed(c)) {
            for (int64_t i = 0; i < sum.vocab_size; i++)
                z[i] = i < n_tok ? 0.0f : -INFINITY;
            for (int k = 0; k < BC_SPIKES; k++)
                z[rng_next(&rng) % (uint64_t)n_tok] = (float)(rng_unit(&rng) * BC_SPIKE_MAX);
            int32_t ids[VL_GEN_MAX_FORCED];
            int nf = ex_cons_before(c, z, sum.vocab_size, ids, VL_GEN_MAX_FORCED);
            if (nf < 0)
                break;
            if (nf == 0)
                ids[nf++] = sample(z, sum.vocab_size, &rng);
            for (int i = 0; i < nf; i++)
                ex_cons_accept(c, ids[i]);
            tokens += nf;
        }
        complete += ex_cons_complete(c);
        int64_t nt = 0;
        const double *tt = ex_cons_times(c, &nt);
        for (int64_t i = 0; i < nt && n_times < BC_MAX_TIMES; i++)
            times[n_times++] = tt[i];
        struct ex_cons_stats cs = ex_cons_stats_get(c);
        forced += cs.n_forced;
        jumps += cs.n_jumps;
        masks += cs.n_masks;
    }
    json_t *j = NULL;
    if (st == DP_OK) {
        qsort(times, (size_t)n_times, sizeof *times, cmp_d);
        double med = n_times ? times[n_times / 2] : 0, p99 = n_times ? times[n_times * 99 / 100] : 0;
        double mx = n_times ? times[n_times - 1] : 0;
        j = json_pack("{s:s, s:I, s:f, s:f, s:i, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:f, "
                      "s:s}",
                      "schema", s->name, "min_answer_tokens", (json_int_t)min,
                      "compile_s", compile_s, "vocab_index_s", index_s, "answers", BC_ANSWERS,
                      "answers_complete", (json_int_t)complete, "tokens", (json_int_t)tokens,
                      "hook_calls", (json_int_t)n_times, "masks", (json_int_t)masks,
                      "forced_ids", (json_int_t)forced, "jumps", (json_int_t)jumps,
                      "mask_cpu_us_median", 1e6 * med, "mask_cpu_us_p99", 1e6 * p99,
                      "mask_cpu_us_max", 1e6 * mx,
                      "timing", "thread CPU time per hook call (mask or jump-forward), hostile "
                                "sampling at temperature 1");
    }
    if (!j && st == DP_OK)
        dp_err_set(err, DP_ERR_NOMEM, "out of memory");
    dp_free(z);
    dp_free(times);
    ex_cons_free(c);
    ex_gram_free(g);
    ex_vocab_free(v);
    sc_schema_free(s);
    return j;
}
