/* Batch invariance of the sequence scheduler (vl_seq.c): every golden case, greedy and sampled,
 * is first run alone on a fresh state; then all of them run as N = 2..8 concurrent sequences on
 * one state, joining at different steps (continuous batching: a finished sequence's slot takes
 * the next request), mixed with each other (text only, images, video, different lengths and
 * sampling settings), with the shared prefix cache on. Each sequence's logits at every step must
 * be bit-identical to its run alone (FNV-1a hash of the V floats), its tokens equal, greedy
 * tokens equal to the goldens; a cancelled sequence ends alone. Usage: test_llm_batch
 * [--threads N] [--weights q8|q4] (quantized at load: the same invariance through the integer
 * kernels; the golden-token check is then skipped). */
#include "t.h"
#include "llm_golden.h"
#include "vl_llm_impl.h"

#define MAX_JOBS (2 * LG_MAX_CASES)
#define MAX_STEPS 64
#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull

struct trace {
    uint64_t h[MAX_STEPS]; /* hash of the logits each token was picked from */
    int32_t ids[MAX_STEPS];
    int n;
};

struct job {
    int c;                  /* golden case */
    struct vl_gen_params p;
    struct trace alone, got;
    struct vl_state *s;     /* during a run */
    int seq;
};

static struct lg_case cases[LG_MAX_CASES];
static int n_cases;
static struct job jobs[MAX_JOBS];
static int n_jobs;
static int threads = 1;
static const struct vl_model *model;

static uint64_t fnv(const void *p, size_t n) {
    const unsigned char *b = p;
    uint64_t h = FNV_OFFSET;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * FNV_PRIME;
    return h;
}

static bool on_token(int32_t id, float lp, void *user) {
    struct job *j = user;
    (void)lp;
    struct trace *t = &j->got;
    if (t->n < MAX_STEPS) {
        const float *z = j->s->seqs[j->seq].logits;
        t->h[t->n] = fnv(z, (size_t)model->cfg.text.vocab_size * sizeof *z);
        t->ids[t->n] = id;
        t->n++;
    }
    return true;
}

static struct vl_state *new_state(int max_seqs) {
    struct vl_state_params sp = vl_state_default_params();
    sp.n_threads = threads;
    sp.n_ctx = 1024;
    sp.n_batch = 64; /* several prefill chunks for the longer prompts */
    sp.max_seqs = max_seqs;
    struct vl_state *s = NULL;
    struct vl_error err = {0};
    T_CHECK_MSG(vl_state_new(&s, model, &sp, &err) == VL_OK, "state: %s", err.msg);
    return s;
}

static enum vl_status add(struct vl_state *s, struct job *j) {
    const struct lg_case *c = &cases[j->c];
    struct vl_request rq = {c->ids, c->n_ids, c->vis, c->n_vis};
    struct vl_error err = {0};
    memset(&j->got, 0, sizeof j->got);
    j->s = s;
    j->p.on_token = on_token;
    j->p.token_user = j;
    enum vl_status st = vl_seq_add(s, &j->seq, &rq, &j->p, &err);
    T_CHECK_MSG(st == VL_OK, "add job: %s", err.msg);
    return st;
}

/* Runs every job alone on a fresh state: the reference traces. */
static void run_alone(void) {
    for (int i = 0; i < n_jobs; i++) {
        struct vl_state *s = new_state(1);
        if (!s || add(s, &jobs[i]) != VL_OK) {
            vl_state_free(s);
            continue;
        }
        struct vl_error err = {0};
        while (vl_state_busy(s) > 0)
            T_CHECK(vl_step(s, &err) == VL_OK);
        enum vl_status st;
        T_CHECK(vl_seq_done(s, jobs[i].seq, NULL, &st, NULL) && st == VL_OK);
        jobs[i].alone = jobs[i].got;
        vl_state_free(s);
    }
}

/* All jobs through one state of n slots, starting at job `first`, a new one joining at most every
 * `gap` steps; returns how many jobs' traces differ from their runs alone. */
static int run_batched(int n, int first, int gap) {
    struct vl_state *s = new_state(n);
    if (!s)
        return n_jobs;
    int next = 0, finished = 0, bad = 0, max_busy = 0;
    int in_slot[VL_STATE_MAX_SEQS];
    for (int k = 0; k < n; k++)
        in_slot[k] = -1;
    struct vl_error err = {0};
    for (long step = 0; finished < n_jobs; step++) {
        if (next < n_jobs && step % gap == 0 && vl_state_busy(s) < n) {
            struct job *j = &jobs[(first + next) % n_jobs];
            if (add(s, j) == VL_OK)
                in_slot[j->seq] = (first + next) % n_jobs;
            next++;
        }
        int busy = vl_state_busy(s);
        max_busy = busy > max_busy ? busy : max_busy;
        if (vl_step(s, &err) != VL_OK) {
            T_CHECK_MSG(0, "step: %s", err.msg);
            break;
        }
        for (int k = 0; k < n; k++) {
            enum vl_status st;
            struct vl_result r;
            if (in_slot[k] < 0 || !vl_seq_done(s, k, &r, &st, NULL))
                continue;
            struct job *j = &jobs[in_slot[k]];
            bool same = st == VL_OK && j->got.n == j->alone.n && r.n == j->alone.n &&
                        !memcmp(j->got.h, j->alone.h, (size_t)j->got.n * sizeof *j->got.h) &&
                        !memcmp(j->got.ids, j->alone.ids, (size_t)j->got.n * sizeof *j->got.ids);
            bad += !same;
            vl_seq_release(s, k);
            in_slot[k] = -1;
            finished++;
        }
    }
    printf("N=%d first=%d gap=%d: %d jobs, at most %d in flight, %d differ\n", n, first, gap,
           n_jobs, max_busy, bad);
    T_CHECK_MSG(max_busy == n, "N=%d: only %d sequences were ever in flight", n, max_busy);
    vl_state_free(s);
    return bad;
}

/* A sequence cancelled mid-decode ends alone; the others finish as they do alone. */
static void cancel_one(void) {
    struct vl_state *s = new_state(3);
    if (!s)
        return;
    int idx[3] = {0, 1, 2};
    for (int k = 0; k < 3; k++)
        add(s, &jobs[idx[k] % n_jobs]);
    struct vl_error err = {0};
    int victim = jobs[idx[1] % n_jobs].seq;
    for (int step = 0; vl_state_busy(s) > 0; step++) {
        if (step == 12)
            vl_seq_cancel(s, victim);
        T_CHECK(vl_step(s, &err) == VL_OK);
    }
    for (int k = 0; k < 3; k++) {
        struct job *j = &jobs[idx[k] % n_jobs];
        enum vl_status st;
        struct vl_error se = {0};
        T_CHECK(vl_seq_done(s, j->seq, NULL, &st, &se));
        if (j->seq == victim) {
            T_CHECK_MSG(st == VL_ERR_CANCELLED && j->got.n < j->alone.n, "victim: %s", se.msg);
        } else {
            T_CHECK(st == VL_OK && j->got.n == j->alone.n &&
                    !memcmp(j->got.h, j->alone.h, (size_t)j->got.n * sizeof *j->got.h));
        }
    }
    /* all slots taken: the next add is refused, nothing changes */
    struct vl_request rq = {cases[0].ids, cases[0].n_ids, cases[0].vis, cases[0].n_vis};
    int id = 0;
    T_EQ_I64(vl_seq_add(s, &id, &rq, &jobs[0].p, &err), VL_ERR_LIMIT);
    vl_state_free(s);
}

int main(int argc, char **argv) {
    enum vl_wformat wf = VL_WFORMAT_BF16;
    for (int a = 1; a + 1 < argc; a += 2) {
        if (!strcmp(argv[a], "--threads"))
            threads = (int)strtol(argv[a + 1], NULL, 10);
        else if (!strcmp(argv[a], "--weights"))
            T_CHECK(vl_wformat_parse(argv[a + 1], &wf));
    }
    char dir[LG_PATH_MAX];
    struct vl_error err = {0};
    struct vl_model *m = NULL;
    T_CHECK_MSG(vl_model_load(&m, lg_model_dir(dir, sizeof dir), &err) == VL_OK, "model: %s",
                err.msg);
    if (!m)
        return t_done();
    if (wf != VL_WFORMAT_BF16)
        T_CHECK_MSG(vl_model_quantize(m, wf, wf == VL_WFORMAT_Q8 ? wf : VL_WFORMAT_BF16, threads,
                                      &err) == VL_OK,
                    "quantize: %s", err.msg);
    model = m;
    char names[LG_MAX_CASES][LG_PATH_MAX];
    int n = lg_cases(names, LG_MAX_CASES);
    T_CHECK(n >= 5);
    for (int i = 0; i < n; i++) {
        struct vl_st_file *f = lg_open(names[i]);
        if (f && lg_case_load(&cases[n_cases], f))
            n_cases++;
        else
            T_CHECK_MSG(0, "%s: load", names[i]);
        vl_st_close(f);
    }
    /* greedy 24 tokens as the goldens, then sampled with other lengths and penalties */
    for (int i = 0; i < n_cases; i++) {
        struct job *g = &jobs[n_jobs++], *t = &jobs[n_jobs++];
        g->c = t->c = i;
        g->p = vl_gen_default_params();
        g->p.repetition_penalty = 1.0f;
        g->p.ignore_eos = true;
        g->p.max_new_tokens = LG_GEN_TOKENS;
        t->p = vl_gen_default_params();
        t->p.temperature = 0.9f;
        t->p.top_k = 50;
        t->p.top_p = 0.95f;
        t->p.seed = (uint64_t)(i + 1);
        t->p.max_new_tokens = 5 + (i * 7) % 29;
    }
    run_alone();
    for (int i = 0; wf == VL_WFORMAT_BF16 && i < n_jobs; i += 2) { /* greedy == reference */
        const struct lg_case *c = &cases[jobs[i].c];
        bool eq = jobs[i].alone.n == LG_GEN_TOKENS;
        for (int k = 0; eq && k < LG_GEN_TOKENS; k++)
            eq = jobs[i].alone.ids[k] == c->want_ids[k];
        T_CHECK_MSG(eq, "%s: greedy tokens differ from the golden", names[jobs[i].c]);
    }
    int bad = 0;
    for (int slots = 2; slots <= 8; slots++)
        bad += run_batched(slots, slots % n_jobs, 1 + slots % 3);
    T_CHECK_MSG(bad == 0, "%d sequences' logits changed in a batch", bad);
    cancel_one();
    for (int i = 0; i < n_cases; i++)
        lg_case_free(&cases[i]);
    vl_model_free(m);
    return t_done();
}
