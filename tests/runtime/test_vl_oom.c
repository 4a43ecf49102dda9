/* OOM torture of libvl through its one allocation wrapper (vl__malloc and friends, the
 * vl__alloc_fail_after hook): for each step below, the N-th allocation is made to fail for
 * N = 1, 2, ... (strided when there are many) until a run needs no failure. Every failing run
 * must return VL_ERR_NOMEM (never crash, never succeed with a half-built object, never leave
 * *out set), and ASan/LSan (the sanitizer build) prove the error paths free what they took.
 * Steps: vl_model_load of the fixture; vl_tokenizer_load + encode; vl_state_new + a short
 * vl_generate on the fixture's model. */
#include "t.h"
#include "vl_tools.h"
#include "vl_impl.h"

#include <string.h>

/* Failure points after the first `full` ones are strided to at most this many runs, so the test
 * stays well under a minute under ASan: a run that gets as far as the tokenizer parses its
 * 151k-entry JSON (~0.4 s there). vl_model_load tries every point before its tokenizer load
 * (cheap: config, safetensors headers, weight binding); the tokenizer's own points are
 * covered by the tokenizer step. */
#define OOM_MAX_RUNS 16
#define OOM_TAIL_RUNS 4 /* vl_model_load points inside its tokenizer load */
#define GEN_TOKENS   4
#define PROMPT_CAP   64

static char model_dir[1024];
static char tok_path[1024];

typedef enum vl_status (*step_fn)(struct vl_error *err);

/* Allocations one successful run of step makes (hook armed but never firing). */
static int64_t count_allocs(step_fn step) {
    struct vl_error err = {0};
    vl__alloc_fail_after(0);
    enum vl_status st = step(&err);
    int64_t n = vl__alloc_fail_after(0);
    T_CHECK_MSG(st == VL_OK, "unhooked run failed: %s", err.msg);
    return n;
}

/* Fails allocation k for every k <= full, then about max_tail more up to the last, expecting
 * VL_ERR_NOMEM each time. */
static void torture(const char *name, step_fn step, int64_t full, int64_t max_tail) {
    int64_t n = count_allocs(step);
    int64_t rest = n > full ? n - full : 0;
    int64_t stride = rest > max_tail ? rest / max_tail : 1;
    int runs = 0, bad = 0;
    for (int64_t k = 1; n > 0; k += k < full ? 1 : stride) {
        if (k > n)
            k = n; /* always try the very last allocation too */
        struct vl_error err = {0};
        vl__alloc_fail_after(k);
        enum vl_status st = step(&err);
        vl__alloc_fail_after(0);
        runs++;
        if (st != VL_ERR_NOMEM) {
            bad++;
            T_CHECK_MSG(st == VL_ERR_NOMEM, "%s: allocation %lld of %lld failed: got %s (%s)",
                        name, (long long)k, (long long)n, vl_status_str(st), err.msg);
        }
        if (k == n)
            break;
    }
    printf("%s: %lld allocations, %d failure points tried (stride %lld), %d bad\n", name,
           (long long)n, runs, (long long)stride, bad);
}

static enum vl_status step_model_load(struct vl_error *err) {
    struct vl_model *m = NULL;
    enum vl_status st = vl_model_load(&m, model_dir, err);
    if (st != VL_OK && m != NULL)
        return VL_ERR_INTERNAL; /* *out must stay NULL on failure */
    vl_model_free(m);
    return st;
}

static enum vl_status step_tokenizer_load(struct vl_error *err) {
    struct vl_tokenizer *t = NULL;
    enum vl_status st = vl_tokenizer_load(&t, tok_path, err);
    vl_tokenizer_free(t);
    return st;
}

static enum vl_status step_tokenizer(struct vl_error *err) {
    struct vl_tokenizer *t = NULL;
    enum vl_status st = vl_tokenizer_load(&t, tok_path, err);
    if (st != VL_OK)
        return t ? VL_ERR_INTERNAL : st;
    static const char text[] = "<|im_start|>user\nInvoice INV-2024/17, total 1 234,56 EUR "
                               "\xe2\x82\xac \xe6\x97\xa5\xe6\x9c\xac<|im_end|>\n";
    int32_t ids[PROMPT_CAP];
    size_t n = 0;
    st = vl_tokenizer_encode(t, text, sizeof text - 1, ids, PROMPT_CAP, &n, err);
    char *back = NULL;
    size_t len = 0;
    if (st == VL_OK)
        st = vl_tokenizer_decode(t, ids, n, false, &back, &len, err);
    free(back); /* documented as free()-able */
    vl_tokenizer_free(t);
    return st;
}

static struct vl_model *gen_model;
static int32_t gen_ids[PROMPT_CAP];
static size_t gen_n;

static enum vl_status step_generate(struct vl_error *err) {
    struct vl_state_params sp = vl_state_default_params();
    sp.n_ctx = (int64_t)gen_n + GEN_TOKENS;
    sp.n_batch = 8;
    struct vl_state *s = NULL;
    enum vl_status st = vl_state_new(&s, gen_model, &sp, err);
    if (st != VL_OK)
        return s ? VL_ERR_INTERNAL : st;
    struct vl_gen_params p = vl_gen_default_params();
    p.max_new_tokens = GEN_TOKENS;
    p.ignore_eos = true;
    struct vl_request rq = {gen_ids, (int64_t)gen_n, NULL, 0};
    struct vl_result r;
    st = vl_generate(s, &rq, &p, &r, err);
    if (st == VL_OK && r.n != GEN_TOKENS)
        st = vl__err(err, VL_ERR_INTERNAL, "generated %lld tokens", (long long)r.n);
    vl_state_free(s);
    return st;
}

int main(void) {
    t_path(model_dir, sizeof model_dir, "DP_FIXTURES", "qwen25vl-tiny/model");
    t_path(tok_path, sizeof tok_path, "DP_FIXTURES", "qwen25vl-tiny/model/tokenizer.json");
    int64_t n_tok = count_allocs(step_tokenizer_load);
    int64_t n_model = count_allocs(step_model_load);
    torture("vl_model_load", step_model_load, n_model - n_tok, OOM_TAIL_RUNS);
    torture("vl_tokenizer_load+encode+decode", step_tokenizer, 0, OOM_MAX_RUNS);

    struct vl_error err = {0};
    T_CHECK_MSG(vl_model_load(&gen_model, model_dir, &err) == VL_OK, "load: %s", err.msg);
    if (!gen_model)
        return t_done();
    static const char prompt[] = "<|im_start|>user\nTotal?<|im_end|>\n<|im_start|>assistant\n";
    T_CHECK(vl_tokenizer_encode(vl_model_tokenizer(gen_model), prompt, sizeof prompt - 1, gen_ids,
                                PROMPT_CAP, &gen_n, &err) == VL_OK);
    torture("vl_state_new+vl_generate", step_generate, OOM_MAX_RUNS, OOM_MAX_RUNS);
    vl_model_free(gen_model);
    return t_done();
}
