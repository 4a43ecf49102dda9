/* Next-token choice: HF's repetition penalty, EOS exclusion (ignore-eos, as min_new_tokens does
 * in the reference), greedy argmax, or temperature -> top-k -> top-p sampling with an explicit
 * seeded xorshift64* RNG kept in the state (llama2.c style; no global RNG).
 * Works on buffers owned by struct vl_sampler (sized n_vocab by vl_state); not thread-safe per
 * sampler, independent samplers may run concurrently. */
#include "vl_llm_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* splitmix64 constants (Steele et al.), used to spread the user seed over the state. */
#define SPLITMIX_GAMMA 0x9E3779B97F4A7C15ULL
#define SPLITMIX_M1    0xBF58476D1CE4E5B9ULL
#define SPLITMIX_M2    0x94D049BB133111EBULL
/* xorshift64* multiplier (Vigna 2014). */
#define XORSHIFT_MULT 0x2545F4914F6CDD1DULL
/* 53 random bits give a uniform double in [0, 1). */
#define RNG_DOUBLE_BITS 53

void vl__sampler_seed(struct vl_sampler *s, uint64_t seed) {
    uint64_t z = seed + SPLITMIX_GAMMA;
    z = (z ^ (z >> 30)) * SPLITMIX_M1;
    z = (z ^ (z >> 27)) * SPLITMIX_M2;
    z ^= z >> 31;
    s->rng = z ? z : SPLITMIX_GAMMA;
}

uint64_t vl__rng_next(uint64_t *state) {
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * XORSHIFT_MULT;
}

double vl__rng_uniform(uint64_t *state) {
    return (double)(vl__rng_next(state) >> (64 - RNG_DOUBLE_BITS)) /
           (double)(1ULL << RNG_DOUBLE_BITS);
}

void vl__sampler_begin(struct vl_sampler *s, const int32_t *ids, int64_t n) {
    memset(s->seen, 0, (size_t)s->n_vocab);
    for (int64_t i = 0; i < n; i++)
        vl__sampler_mark(s, ids[i]);
}

void vl__sampler_mark(struct vl_sampler *s, int32_t id) {
    if (id >= 0 && id < s->n_vocab)
        s->seen[id] = 1;
}

bool vl__is_eos(const struct vl_config *cfg, int32_t id) {
    for (int i = 0; i < cfg->gen.n_eos; i++)
        if (cfg->gen.eos_token_ids[i] == id)
            return true;
    return false;
}

/* log softmax(z)[id], with the sum in double. */
static float log_prob(const float *z, int64_t n, int32_t id) {
    float mx = -INFINITY;
    for (int64_t i = 0; i < n; i++)
        mx = z[i] > mx ? z[i] : mx;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++)
        sum += exp((double)z[i] - (double)mx);
    return (float)((double)z[id] - (double)mx - log(sum));
}

/* Candidates are ranked with a heap over ids keyed by z (qsort has no context argument and a
 * static pointer would be global state). */
static void sift_down(int32_t *h, int64_t n, int64_t i, const float *z) {
    /* min-heap on z (ties: larger id is "smaller" so that lower ids win, as argmax does) */
    for (;;) {
        int64_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && (z[h[l]] < z[h[m]] || (z[h[l]] == z[h[m]] && h[l] > h[m])))
            m = l;
        if (r < n && (z[h[r]] < z[h[m]] || (z[h[r]] == z[h[m]] && h[r] > h[m])))
            m = r;
        if (m == i)
            return;
        int32_t t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

/* The k best ids of z (finite values only) into cand[0..k), sorted best first; returns k'. */
static int64_t top_k_ids(int32_t *cand, const float *z, int64_t n, int64_t k) {
    int64_t len = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(z[i]))
            continue;
        if (len < k) {
            cand[len++] = (int32_t)i;
            if (len == k)
                for (int64_t j = k / 2; j-- > 0;)
                    sift_down(cand, len, j, z);
        } else if (z[i] > z[cand[0]]) {
            cand[0] = (int32_t)i;
            sift_down(cand, len, 0, z);
        }
    }
    if (len < k)
        for (int64_t j = len / 2; j-- > 0;)
            sift_down(cand, len, j, z);
    /* heap sort: repeatedly move the worst to the end -> best first */
    for (int64_t end = len; end > 1; end--) {
        int32_t t = cand[0];
        cand[0] = cand[end - 1];
        cand[end - 1] = t;
        sift_down(cand, end - 1, 0, z);
    }
    return len;
}

static int32_t argmax(const float *z, int64_t n) {
    int64_t best = 0;
    for (int64_t i = 1; i < n; i++)
        if (z[i] > z[best])
            best = i;
    return (int32_t)best;
}

int32_t vl__sampler_pick(struct vl_sampler *s, const float *logits, const struct vl_gen_params *p,
                         const struct vl_config *cfg, float *out_logprob) {
    const int64_t n = s->n_vocab;
    float *z = s->work;
    memcpy(z, logits, (size_t)n * sizeof *z);
    if (p->repetition_penalty != 1.0f) {
        const float pen = p->repetition_penalty;
        for (int64_t i = 0; i < n; i++)
            if (s->seen[i])
                z[i] = z[i] < 0.0f ? z[i] * pen : z[i] / pen;
    }
    if (p->ignore_eos)
        for (int i = 0; i < cfg->gen.n_eos; i++) {
            int32_t e = cfg->gen.eos_token_ids[i];
            if (e >= 0 && e < n)
                z[e] = -INFINITY;
        }
    int32_t id;
    if (p->temperature <= 0.0f || p->top_k == 1) {
        id = argmax(z, n);
    } else {
        for (int64_t i = 0; i < n; i++)
            z[i] /= p->temperature;
        int64_t k = p->top_k > 0 && p->top_k < n ? p->top_k : n;
        int64_t nc = top_k_ids(s->cand, z, n, k);
        if (nc == 0) {
            id = argmax(z, n);
        } else {
            /* softmax over the candidates (best first), then the top-p prefix */
            double mx = z[s->cand[0]], sum = 0.0;
            for (int64_t i = 0; i < nc; i++)
                sum += exp((double)z[s->cand[i]] - mx);
            int64_t keep = nc;
            if (p->top_p < 1.0f) {
                double cum = 0.0;
                for (int64_t i = 0; i < nc; i++) {
                    cum += exp((double)z[s->cand[i]] - mx) / sum;
                    if (cum >= (double)p->top_p) {
                        keep = i + 1;
                        break;
                    }
                }
            }
            double kept = 0.0;
            for (int64_t i = 0; i < keep; i++)
                kept += exp((double)z[s->cand[i]] - mx);
            double r = vl__rng_uniform(&s->rng) * kept, acc = 0.0;
            id = s->cand[keep - 1];
            for (int64_t i = 0; i < keep; i++) {
                acc += exp((double)z[s->cand[i]] - mx);
                if (r < acc) {
                    id = s->cand[i];
                    break;
                }
            }
        }
    }
    if (out_logprob)
        *out_logprob = log_prob(logits, n, id);
    return id;
}

