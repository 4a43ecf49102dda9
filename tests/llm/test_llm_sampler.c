/* Sampler unit tests: greedy argmax with first-index ties, HF repetition penalty (each distinct id
 * once, sign-dependent), EOS exclusion for ignore-eos, temperature/top-k/top-p behaviour, seeded
 * determinism, and log-probabilities. */
#include "t.h"
#include "vl_llm_impl.h"

#define NV 16

static struct vl_config cfg;
static uint8_t seen[NV];
static float work[NV];
static int32_t cand[NV];

static struct vl_sampler make(void) {
    struct vl_sampler s = {.n_vocab = NV, .seen = seen, .work = work, .cand = cand};
    vl__sampler_seed(&s, 0);
    vl__sampler_begin(&s, NULL, 0);
    return s;
}

static void greedy(void) {
    struct vl_sampler s = make();
    struct vl_gen_params p = vl_gen_default_params();
    p.repetition_penalty = 1.0f;
    float z[NV] = {0};
    z[3] = 2.0f;
    z[7] = 2.0f; /* tie: first index wins */
    z[9] = 1.0f;
    float lp;
    T_EQ_I64(vl__sampler_pick(&s, z, &p, &cfg, &lp), 3);
    double sum = 2 * exp(2.0) + exp(1.0) + 13;
    T_NEAR(lp, 2.0 - log(sum), 1e-5);
    /* logits are not modified */
    T_NEAR(z[3], 2.0, 0);
}

static void penalty(void) {
    struct vl_sampler s = make();
    struct vl_gen_params p = vl_gen_default_params();
    p.repetition_penalty = 2.0f;
    float z[NV];
    for (int i = 0; i < NV; i++)
        z[i] = -1.0f;
    z[1] = 3.0f;  /* seen: 3 / 2 = 1.5 */
    z[2] = 1.6f;  /* unseen: stays 1.6 -> wins */
    z[4] = -0.1f; /* seen negative: -0.2 */
    int32_t prompt[] = {1, 1, 4, 1};
    vl__sampler_begin(&s, prompt, 4);
    T_EQ_I64(vl__sampler_pick(&s, z, &p, &cfg, NULL), 2);
    T_NEAR(s.work[1], 1.5, 1e-6);  /* penalised once despite three occurrences */
    T_NEAR(s.work[4], -0.2, 1e-6);
    p.repetition_penalty = 1.05f; /* published default: 3/1.05 > 1.6 */
    T_EQ_I64(vl__sampler_pick(&s, z, &p, &cfg, NULL), 1);
    vl__sampler_mark(&s, 2);
    T_CHECK(s.seen[2] == 1);
}

static void eos(void) {
    struct vl_sampler s = make();
    struct vl_gen_params p = vl_gen_default_params();
    p.repetition_penalty = 1.0f;
    float z[NV] = {0};
    z[5] = 9.0f;
    z[6] = 8.0f;
    z[0] = 1.0f;
    T_EQ_I64(vl__sampler_pick(&s, z, &p, &cfg, NULL), 5);
    p.ignore_eos = true;
    T_EQ_I64(vl__sampler_pick(&s, z, &p, &cfg, NULL), 0); /* 5 and 6 are EOS */
    T_CHECK(vl__is_eos(&cfg, 5) && vl__is_eos(&cfg, 6) && !vl__is_eos(&cfg, 0));
}

static void sampling(void) {
    struct vl_sampler s = make();
    struct vl_gen_params p = vl_gen_default_params();
    p.repetition_penalty = 1.0f;
    p.temperature = 1.0f;
    float z[NV];
    for (int i = 0; i < NV; i++)
        z[i] = (float)i * 0.1f;
    /* top_k 1 == greedy */
    p.top_k = 1;
    T_EQ_I64(vl__sampler_pick(&s, z, &p, &cfg, NULL), NV - 1);
    /* top_k 3: only the three best ever come out */
    p.top_k = 3;
    int counts[NV] = {0};
    for (int i = 0; i < 3000; i++)
        counts[vl__sampler_pick(&s, z, &p, &cfg, NULL)]++;
    int outside = 0;
    for (int i = 0; i < NV - 3; i++)
        outside += counts[i];
    T_EQ_I64(outside, 0);
    T_CHECK(counts[NV - 1] > counts[NV - 3] && counts[NV - 3] > 700);
    /* top_p: a dominant token with p > top_p is the only candidate */
    p.top_k = 0;
    p.top_p = 0.5f;
    z[2] = 10.0f;
    for (int i = 0; i < 200; i++)
        T_EQ_I64(vl__sampler_pick(&s, z, &p, &cfg, NULL), 2);
    /* seeded determinism */
    z[2] = 0.2f;
    p.top_p = 1.0f;
    p.temperature = 2.0f;
    struct vl_sampler a = make(), b = make();
    vl__sampler_seed(&a, 42);
    int32_t seq_a[50], seq_b[50];
    for (int i = 0; i < 50; i++)
        seq_a[i] = vl__sampler_pick(&a, z, &p, &cfg, NULL);
    vl__sampler_seed(&b, 42);
    int same = 1, varied = 0;
    for (int i = 0; i < 50; i++) {
        seq_b[i] = vl__sampler_pick(&b, z, &p, &cfg, NULL);
        same &= seq_a[i] == seq_b[i];
        varied |= seq_a[i] != seq_a[0];
    }
    T_CHECK(same && varied);
    /* uniform in [0, 1) */
    uint64_t r = 1;
    double mn = 1, mx = 0;
    for (int i = 0; i < 10000; i++) {
        double u = vl__rng_uniform(&r);
        mn = u < mn ? u : mn;
        mx = u > mx ? u : mx;
    }
    T_CHECK(mn >= 0 && mn < 0.01 && mx < 1 && mx > 0.99);
}

int main(void) {
    cfg.text.vocab_size = NV;
    cfg.gen.n_eos = 2;
    cfg.gen.eos_token_ids[0] = 5;
    cfg.gen.eos_token_ids[1] = 6;
    greedy();
    penalty();
    eos();
    sampling();
    return t_done();
}
