/* End-to-end golden test of the LLM half on every case of the tiny fixture, at the thread count
 * given by --threads N: the golden pixel_values go through the vision tower, then the hook's
 * position_ids / rope_deltas (exact), lm.inputs_embeds, every lm.layerN.out, lm.final_norm and
 * logits.last are compared with the reference (relative L2 near f32 round-off; the worst per
 * checkpoint is printed), the top-5 ids at every prompt position must be identical, and the 24
 * greedy tokens with EOS masked (gen.decode_ids) plus the top-5 ids of every decode step too.
 * A second pass on one shared state with prefix reuse must give the same tokens. */
#include "t.h"
#include "llm_golden.h"
#include "vl_llm_impl.h"

#define MAX_HOOKED 64
#define TOPK 5
#define TOP_ROWS 32 /* prompt rows whose logits are computed at once for the top-5 check */
#define GEN_TOKENS LG_GEN_TOKENS
#define GOLDEN_ATTN_BLOCK 48 /* prefill attention rows per block (the cases have S 30..244) */
/* Relative L2 bound for f32 activations vs the f32 reference (spec §10.3 measured <= 1.1e-6). */
#define REL_TOL 1e-5
/* Two logits closer than this are a tie at f32 round-off of logits of magnitude ~10 (spec §10.3:
 * the reference's own re-implementation saw a 2e-6 near-tie flip the 5th-ranked id once). A
 * top-5 id that differs only by such a swap is reported, not failed. */
#define NEAR_TIE 2e-5

struct hooked {
    char name[64];
    float *data;
    size_t numel;
};
static struct hooked hk[MAX_HOOKED];
static int n_hk;

static void collect(const char *name, const float *data, int ndim, const int64_t *shape,
                    void *user) {
    (void)user;
    size_t numel = 1;
    for (int i = 0; i < ndim; i++)
        numel *= (size_t)shape[i];
    struct hooked *h = NULL;
    for (int i = 0; i < n_hk; i++)
        if (!strcmp(hk[i].name, name))
            h = &hk[i];
    if (!h) {
        if (n_hk == MAX_HOOKED)
            return;
        h = &hk[n_hk++];
        snprintf(h->name, sizeof h->name, "%s", name);
        h->data = NULL;
        h->numel = 0;
    }
    h->data = realloc(h->data, (h->numel + numel) * sizeof(float));
    memcpy(h->data + h->numel, data, numel * sizeof(float));
    h->numel += numel;
}

static void clear_hooks(void) {
    for (int i = 0; i < n_hk; i++)
        free(hk[i].data);
    n_hk = 0;
}

static const struct hooked *got(const char *name) {
    for (int i = 0; i < n_hk; i++)
        if (!strcmp(hk[i].name, name))
            return &hk[i];
    return NULL;
}

/* worst relative L2 per checkpoint over all cases */
struct worst {
    char name[64];
    double rel, abs;
    char where[LG_PATH_MAX];
};
static struct worst worst[MAX_HOOKED];
static int n_worst;

static void note_worst(const char *name, double rel, double abs_err, const char *id) {
    struct worst *w = NULL;
    for (int i = 0; i < n_worst; i++)
        if (!strcmp(worst[i].name, name))
            w = &worst[i];
    if (!w && n_worst < MAX_HOOKED) {
        w = &worst[n_worst++];
        snprintf(w->name, sizeof w->name, "%s", name);
        w->rel = -1;
    }
    if (w && rel > w->rel) {
        w->rel = rel;
        w->abs = abs_err;
        snprintf(w->where, sizeof w->where, "%s", id);
    }
}

static void compare(const struct vl_st_file *f, const char *name, const char *id) {
    size_t n;
    float *want = lg_f32(f, name, &n);
    if (!want)
        return; /* not stored for this case */
    const struct hooked *h = got(name);
    T_CHECK_MSG(h && h->numel == n, "%s: %s missing or %zu values, want %zu", id, name,
                h ? h->numel : 0, n);
    if (h && h->numel == n) {
        double mx, rel = lg_rel_l2(h->data, want, n, &mx);
        T_CHECK_MSG(rel <= REL_TOL, "%s: %s rel L2 %.3g (max abs %.3g)", id, name, rel, mx);
        note_worst(name, rel, mx, id);
    }
    free(want);
}

/* top-k ids of z (n), best first, ties to the lower id; one pass with insertion */
static void topk(int64_t *out, const float *z, int64_t n) {
    int k = 0;
    for (int64_t i = 0; i < n; i++) {
        if (k == TOPK && !(z[i] > z[out[TOPK - 1]]))
            continue;
        int j = k < TOPK ? k++ : TOPK - 1;
        while (j > 0 && z[i] > z[out[j - 1]]) {
            out[j] = out[j - 1];
            j--;
        }
        out[j] = i;
    }
}

struct decode_check {
    const struct vl_state *s;
    const int64_t *want_top5; /* (24, 5) */
    int step;
    int bad;
};

static bool on_token(int32_t id, float lp, void *user) {
    struct decode_check *d = user;
    (void)id;
    (void)lp;
    if (d->want_top5 && d->step < GEN_TOKENS) {
        int64_t t[TOPK];
        topk(t, d->s->logits, d->s->m->cfg.text.vocab_size);
        for (int k = 0; k < TOPK; k++)
            d->bad += t[k] != d->want_top5[d->step * TOPK + k];
    }
    d->step++;
    return true;
}

static struct vl_gen_params golden_params(void) {
    struct vl_gen_params p = vl_gen_default_params();
    p.temperature = 0.0f;
    p.repetition_penalty = 1.0f; /* fixture generation_config.json */
    p.ignore_eos = true;         /* min_new_tokens = 24 masks the EOS ids */
    p.max_new_tokens = GEN_TOKENS;
    p.reuse_prefix = false;
    return p;
}

static void run_case(const struct vl_model *m, struct vl_compute *comp, const char *id,
                     int threads) {
    struct vl_st_file *f = lg_open(id);
    struct lg_case c;
    T_CHECK_MSG(f && lg_case_load(&c, f), "%s: load", id);
    if (!f)
        return;
    struct vl_state_params sp = vl_state_default_params();
    sp.n_threads = threads;
    sp.n_ctx = c.n_ids + GEN_TOKENS;
    sp.attn_block = GOLDEN_ATTN_BLOCK; /* several causal blocks per prompt, a partial last one */
    struct vl_state *s = NULL;
    struct vl_error err = {0};
    T_CHECK_MSG(vl_state_new(&s, m, &sp, &err) == VL_OK, "%s: state: %s", id, err.msg);
    if (!s) {
        lg_case_free(&c);
        vl_st_close(f);
        return;
    }
    vl_set_hook(s, collect, NULL);
    size_t nt;
    int64_t *want_top5 = lg_i64(f, "gen.decode_top5_ids", &nt);
    struct decode_check dc = {.s = s, .want_top5 = want_top5};
    struct vl_gen_params p = golden_params();
    p.on_token = on_token;
    p.token_user = &dc;
    struct vl_request rq = {.ids = c.ids, .n_ids = c.n_ids, .vision = c.vis, .n_vision = c.n_vis};
    struct vl_result res;
    enum vl_status st = vl_generate(s, &rq, &p, &res, &err);
    T_CHECK_MSG(st == VL_OK, "%s: generate: %s", id, err.msg);
    /* positions */
    size_t n;
    int64_t *wpos = lg_i64(f, "position_ids", &n);
    const struct hooked *hp = got("position_ids");
    int bad = !hp || hp->numel != n;
    for (size_t i = 0; !bad && i < n; i++)
        bad += (int64_t)hp->data[i] != wpos[i];
    T_CHECK_MSG(!bad, "%s: position_ids differ", id);
    int64_t *wd = lg_i64(f, "rope_deltas", &n);
    const struct hooked *hd = got("rope_deltas");
    T_CHECK_MSG(hd && wd && (int64_t)hd->data[0] == wd[0], "%s: rope_deltas", id);
    free(wpos);
    free(wd);
    /* activations */
    compare(f, "lm.inputs_embeds", id);
    char name[64];
    for (int64_t l = 0; l < m->cfg.text.num_hidden_layers; l++) {
        snprintf(name, sizeof name, "lm.layer%lld.out", (long long)l);
        compare(f, name, id);
    }
    compare(f, "lm.final_norm", id);
    compare(f, "logits.last", id);
    /* top-5 at every prompt position, from our final norm through the lm_head */
    const struct hooked *fn = got("lm.final_norm");
    int64_t *w5 = lg_i64(f, "logits.top5_ids", &n);
    const int64_t V = m->cfg.text.vocab_size, H = m->cfg.text.hidden_size;
    int top_bad = 0;
    if (fn && w5 && n == (size_t)c.n_ids * TOPK) {
        float *zb = malloc((size_t)(TOP_ROWS * V) * sizeof *zb); /* (TOP_ROWS, V) */
        for (int64_t i = 0; i < c.n_ids; i++) {
            int64_t t[TOPK];
            if (i % TOP_ROWS == 0)
                vl__linear(comp, zb, fn->data + i * H,
                           c.n_ids - i < TOP_ROWS ? c.n_ids - i : TOP_ROWS, &m->w.lm_head, NULL);
            const float *z = zb + (i % TOP_ROWS) * V;
            topk(t, z, V);
            for (int k = 0; k < TOPK; k++) {
                int64_t w = w5[i * TOPK + k];
                if (t[k] == w)
                    continue;
                double gap = fabs((double)z[t[k]] - (double)z[w]);
                printf("%s: position %lld rank %d: id %lld vs reference %lld, logit gap %.2g%s\n",
                       id, (long long)i, k + 1, (long long)t[k], (long long)w, gap,
                       gap <= NEAR_TIE ? " (near-tie swap)" : "");
                top_bad += gap > NEAR_TIE;
            }
        }
        free(zb);
    } else {
        top_bad = -1;
    }
    T_CHECK_MSG(top_bad == 0, "%s: %d prompt top-5 ids differ", id, top_bad);
    free(w5);
    /* greedy tokens */
    int gen_bad = res.n != GEN_TOKENS;
    for (int64_t i = 0; !gen_bad && i < GEN_TOKENS; i++)
        gen_bad += res.ids[i] != c.want_ids[i];
    T_CHECK_MSG(!gen_bad, "%s: greedy tokens differ", id);
    T_CHECK_MSG(want_top5 && dc.bad == 0, "%s: %d decode top-5 ids differ", id, dc.bad);
    T_CHECK(res.truncated && res.stop == VL_STOP_MAX_TOKENS);
    printf("%-24s threads %d: S=%4lld, 24 greedy tokens %s, prompt top-5 %s, vision %.3fs "
           "prefill %.3fs decode %.3fs\n",
           id, threads, (long long)c.n_ids, gen_bad ? "DIFFER" : "identical",
           top_bad ? "DIFFER" : "identical", res.t.vision_s, res.t.prefill_s, res.t.decode_s);
    free(want_top5);
    clear_hooks();
    vl_state_free(s);
    lg_case_free(&c);
    vl_st_close(f);
}

/* The prompt segment a sequence's prefix cache covers: ids before the first vision pad (0 for
 * text-only prompts). */
static int64_t first_segment(const struct vl_model *m, const int32_t *ids, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (ids[i] == m->cfg.image_token_id || ids[i] == m->cfg.video_token_id)
            return i;
    return 0;
}

/* All cases on one state with prefix reuse: tokens must not change, and a case whose segment
 * before the first vision token equals the previous request's takes exactly that from the
 * cache (text-only prompts and other segments take nothing). */
static void reuse_pass(const struct vl_model *m, char cases[][LG_PATH_MAX], int n_cases,
                       int threads) {
    struct vl_state_params sp = vl_state_default_params();
    sp.n_threads = threads;
    sp.n_ctx = 512;
    sp.n_batch = 64; /* several prefill chunks */
    struct vl_state *s = NULL;
    struct vl_error err = {0};
    T_CHECK(vl_state_new(&s, m, &sp, &err) == VL_OK);
    if (!s)
        return;
    int64_t reused = 0;
    int32_t *prev = NULL;
    int64_t prev_seg = 0;
    for (int r = 0; r < 2; r++)
        for (int i = 0; i < n_cases; i++) {
            struct vl_st_file *f = lg_open(cases[i]);
            struct lg_case c;
            if (!f || !lg_case_load(&c, f)) {
                T_CHECK(0);
                continue;
            }
            struct vl_gen_params p = golden_params();
            p.reuse_prefix = true;
            struct vl_request rq = {c.ids, c.n_ids, c.vis, c.n_vis};
            struct vl_result res;
            T_CHECK_MSG(vl_generate(s, &rq, &p, &res, &err) == VL_OK, "%s", err.msg);
            int bad = res.n != GEN_TOKENS;
            for (int64_t k = 0; !bad && k < GEN_TOKENS; k++)
                bad += res.ids[k] != c.want_ids[k];
            T_CHECK_MSG(!bad, "%s: tokens differ with prefix reuse (%lld reused)", cases[i],
                        (long long)res.t.n_reused);
            int64_t seg = first_segment(m, c.ids, c.n_ids);
            bool same = seg > 0 && seg == prev_seg &&
                        !memcmp(prev, c.ids, (size_t)seg * sizeof *c.ids);
            T_CHECK_MSG(res.t.n_reused == (same ? seg : 0), "%s: %lld reused, want %lld",
                        cases[i], (long long)res.t.n_reused, (long long)(same ? seg : 0));
            reused += res.t.n_reused;
            if (seg > 0) { /* the cache now holds this segment */
                free(prev);
                prev = malloc((size_t)seg * sizeof *prev);
                if (prev)
                    memcpy(prev, c.ids, (size_t)seg * sizeof *prev);
                prev_seg = prev ? seg : 0;
            }
            lg_case_free(&c);
            vl_st_close(f);
        }
    free(prev);
    T_CHECK_MSG(reused > 0, "no case reused the cached prefix");
    printf("prefix reuse, threads %d: %lld prompt tokens taken from the cache, tokens identical\n",
           threads, (long long)reused);
    vl_state_free(s);
}

int main(int argc, char **argv) {
    int threads = 1;
    if (argc == 3 && !strcmp(argv[1], "--threads"))
        threads = (int)strtol(argv[2], NULL, 10);
    char dir[LG_PATH_MAX];
    struct vl_error err = {0};
    struct vl_model *m = NULL;
    T_CHECK_MSG(vl_model_load(&m, lg_model_dir(dir, sizeof dir), &err) == VL_OK, "model: %s",
                err.msg);
    if (!m)
        return t_done();
    struct vl_compute comp;
    T_CHECK(vl__compute_init(&comp, threads, m->cfg.text.vocab_size, m->cfg.text.hidden_size,
                             &err) == VL_OK);
    static char cases[LG_MAX_CASES][LG_PATH_MAX];
    int n = lg_cases(cases, LG_MAX_CASES);
    T_CHECK_MSG(n >= 7, "found %d golden cases", n);
    for (int i = 0; i < n; i++)
        run_case(m, &comp, cases[i], threads);
    for (int i = 0; i < n_worst; i++)
        printf("worst %-18s rel L2 %.3g (max abs %.3g) in %s\n", worst[i].name, worst[i].rel,
               worst[i].abs, worst[i].where);
    reuse_pass(m, cases, n, threads);
    vl__compute_free(&comp);
    vl_model_free(m);
    return t_done();
}
