/* Teacher-forced comparison of two models on one request (`docproc model compare`, the
 * quantization accuracy tests): the reference model's greedy tokens are fed to both models, and
 * at every step the next-token distributions are compared (top-1 agreement, KL(ref || cand),
 * relative L2 error of the logits). Built only on the public generation API: each step is one
 * vl_generate of prompt + the reference tokens so far (max_new_tokens 1, the cached text prefix
 * reused) with the named-tensor hook catching "logits.last".
 * Thread-safety: uses two states of its own; the models are only read. */
#include "vl_impl.h"

#include <math.h>
#include <string.h>

struct catch_logits {
    float *z; /* (V) */
    int64_t v;
    bool got;
};

static void catch_hook(const char *name, const float *data, int ndim, const int64_t *shape,
                       void *user) {
    struct catch_logits *c = user;
    if (strcmp(name, "logits.last") || ndim != 1 || shape[0] != c->v)
        return;
    memcpy(c->z, data, (size_t)c->v * sizeof *c->z);
    c->got = true;
}

/* The logits after prompt ids[0..n) on state s. */
static enum vl_status step_logits(struct vl_state *s, struct catch_logits *c, const int32_t *ids,
                                  int64_t n, const struct vl_request *req,
                                  struct vl_error *err) {
    struct vl_gen_params p = vl_gen_default_params();
    p.temperature = 0.0f;
    p.repetition_penalty = 1.0f;
    p.max_new_tokens = 1;
    p.ignore_eos = true;
    p.reuse_prefix = true;
    struct vl_request rq = *req;
    rq.ids = ids;
    rq.n_ids = n;
    struct vl_result res;
    c->got = false;
    enum vl_status st = vl_generate(s, &rq, &p, &res, err);
    if (st == VL_OK && !c->got)
        st = vl__err(err, VL_ERR_INTERNAL, "compare: no logits from the prefill");
    return st;
}

static int64_t argmax(const float *z, int64_t n) {
    int64_t best = 0;
    for (int64_t i = 1; i < n; i++)
        if (z[i] > z[best])
            best = i;
    return best;
}

/* KL(softmax(a) || softmax(b)) in double. */
static double kl_div(const float *a, const float *b, int64_t n) {
    double ma = a[argmax(a, n)], mb = b[argmax(b, n)], sa = 0, sb = 0;
    for (int64_t i = 0; i < n; i++) {
        sa += exp((double)a[i] - ma);
        sb += exp((double)b[i] - mb);
    }
    double la = ma + log(sa), lb = mb + log(sb), kl = 0;
    for (int64_t i = 0; i < n; i++) {
        double lpa = (double)a[i] - la, lpb = (double)b[i] - lb;
        kl += exp(lpa) * (lpa - lpb);
    }
    return kl > 0 ? kl : 0;
}

enum vl_status vl_compare_run(const struct vl_model *ref, const struct vl_model *cand,
                              const struct vl_request *req, int64_t steps, int n_threads,
                              struct vl_compare_stats *out, struct vl_error *err) {
    memset(out, 0, sizeof *out);
    const int64_t v = ref->cfg.text.vocab_size;
    if (cand->cfg.text.vocab_size != v)
        return vl__err(err, VL_ERR_INVALID, "compare: vocabularies differ (%lld vs %lld)",
                       (long long)v, (long long)cand->cfg.text.vocab_size);
    if (steps < 1 || req->n_ids < 1)
        return vl__err(err, VL_ERR_INVALID, "compare: need at least one step and one prompt id");
    struct vl_state_params sp = vl_state_default_params();
    sp.n_threads = n_threads;
    sp.n_ctx = req->n_ids + steps;
    struct vl_state *sr = NULL, *sc = NULL;
    int32_t *ids = vl__malloc((size_t)(req->n_ids + steps) * sizeof *ids);
    float *zr = vl__malloc((size_t)v * sizeof *zr), *zc = vl__malloc((size_t)v * sizeof *zc);
    enum vl_status st = ids && zr && zc ? VL_OK : vl__err(err, VL_ERR_NOMEM, "out of memory");
    if (st == VL_OK)
        st = vl_state_new(&sr, ref, &sp, err);
    if (st == VL_OK)
        st = vl_state_new(&sc, cand, &sp, err);
    struct catch_logits cr = {.z = zr, .v = v}, cc = {.z = zc, .v = v};
    if (st == VL_OK) {
        vl_set_hook(sr, catch_hook, &cr);
        vl_set_hook(sc, catch_hook, &cc);
        memcpy(ids, req->ids, (size_t)req->n_ids * sizeof *ids);
    }
    double num = 0, den = 0;
    for (int64_t k = 0; k < steps && st == VL_OK; k++) {
        st = step_logits(sr, &cr, ids, req->n_ids + k, req, err);
        if (st == VL_OK)
            st = step_logits(sc, &cc, ids, req->n_ids + k, req, err);
        if (st != VL_OK)
            break;
        int64_t t = argmax(zr, v);
        out->top1_agree += argmax(zc, v) == t;
        double kl = kl_div(zr, zc, v);
        out->kl_mean += kl;
        out->kl_max = kl > out->kl_max ? kl : out->kl_max;
        for (int64_t i = 0; i < v; i++) {
            double d = (double)zc[i] - (double)zr[i];
            num += d * d;
            den += (double)zr[i] * (double)zr[i];
        }
        ids[req->n_ids + k] = (int32_t)t; /* teacher forcing: the reference's token */
        out->steps++;
    }
    if (out->steps) {
        out->kl_mean /= (double)out->steps;
        out->sq_err = num;
        out->sq_ref = den;
        out->logits_rel_err = den > 0 ? sqrt(num / den) : sqrt(num);
    }
    vl_state_free(sr);
    vl_state_free(sc);
    vl__free(ids);
    vl__free(zr);
    vl__free(zc);
    return st;
}
