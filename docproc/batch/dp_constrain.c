/* --constrain for extract, batch and ask --schema: resolves the mode (on by default for kie and
 * chart schemas), compiles the schema's answer contract before anything else runs (fail closed:
 * a construct it cannot enforce is a schema load error, exit 3), builds the vocabulary index from
 * the model's tokenizer, checks --max-new-tokens against the shortest valid answer (usage error),
 * and plugs the matcher into libvl's generic constrain hook. One dp_constrain per inference
 * thread. */
#include "dp_batch.h"
#include "dp_alloc.h"
#include "ex_cons.h"
#include "vl_tools.h"

#include <string.h>

struct dp_constrain {
    struct ex_gram *gram; /* owned */
    struct ex_vocab *vocab;
    struct ex_cons **cons; /* (n_cons) one matcher per page in flight */
    int n_cons;
    int64_t max_new_tokens;
    const struct vl_tokenizer *tok;
};

bool dp_constrain_parse(const char *arg, enum dp_constrain_mode *out) {
    if (!strcmp(arg, "on"))
        *out = DP_CONSTRAIN_ON;
    else if (!strcmp(arg, "off"))
        *out = DP_CONSTRAIN_OFF;
    else
        return false;
    return true;
}

enum dp_status dp_constrain_compile(struct ex_gram **out, const struct sc_schema *s,
                                    enum dp_constrain_mode mode, struct dp_err *err) {
    *out = NULL;
    bool structured = s->task == SC_TASK_KIE || s->task == SC_TASK_CHART;
    if (mode == DP_CONSTRAIN_OFF || (mode == DP_CONSTRAIN_AUTO && !structured))
        return DP_OK;
    if (!structured)
        return dp_err_set(err, DP_ERR_USAGE,
                          "--constrain on: schema %s is a %s schema; constrained decoding applies "
                          "to kie and chart schemas", s->name, sc_task_name(s->task));
    return ex_gram_compile(out, s, err);
}

static const char *tok_bytes(void *user, int32_t id, size_t *len) {
    const struct vl_tokenizer *t = user;
    if (vl_tokenizer_is_special(t, id))
        return NULL;
    return vl_tokenizer_token_bytes(t, id, len);
}

enum dp_status dp_constrain_new(struct dp_constrain **out, struct ex_gram *gram,
                                const struct vl_model *m, int64_t max_new_tokens,
                                struct dp_err *err) {
    *out = NULL;
    struct dp_constrain *c = dp_calloc(1, sizeof *c);
    if (!c) {
        ex_gram_free(gram);
        return dp_err_set(err, DP_ERR_NOMEM, "out of memory");
    }
    c->gram = gram;
    c->tok = vl_model_tokenizer(m);
    struct vl_model_summary sum;
    vl_model_summary(m, &sum);
    enum dp_status st = c->tok ? DP_OK : dp_err_set(err, DP_ERR_MODEL, "no tokenizer");
    if (st == DP_OK) {
        struct ex_vocab_src src = {
            .n_logits = (int32_t)sum.vocab_size,
            .n_tokens = vl_tokenizer_n_ids(c->tok),
            .bytes = tok_bytes,
            .user = (void *)c->tok,
            .eos_id = vl_tokenizer_token_id(c->tok, "<|im_end|>"),
        };
        st = ex_vocab_new(&c->vocab, &src, err);
    }
    if (st == DP_OK)
        st = ex_gram_bind(c->gram, c->vocab, err);
    c->max_new_tokens = max_new_tokens;
    if (st == DP_OK)
        st = dp_constrain_reserve(c, 1, err);
    if (st != DP_OK) {
        dp_constrain_free(c);
        return st;
    }
    *out = c;
    return DP_OK;
}

static int before(float *logits, int64_t n, int32_t *forced, int cap, void *user) {
    return ex_cons_before(user, logits, n, forced, cap);
}

static void accept(int32_t id, void *user) {
    ex_cons_accept(user, id);
}

enum dp_status dp_constrain_reserve(struct dp_constrain *c, int n, struct dp_err *err) {
    if (n <= c->n_cons)
        return DP_OK;
    struct ex_cons **m = dp_reallocarray(c->cons, (size_t)n, sizeof *m);
    if (!m)
        return dp_err_set(err, DP_ERR_NOMEM, "out of memory");
    c->cons = m;
    for (; c->n_cons < n; c->n_cons++) {
        enum dp_status st = ex_cons_new(&c->cons[c->n_cons], c->gram, c->vocab, c->max_new_tokens,
                                        err);
        if (st != DP_OK)
            return st;
    }
    return DP_OK;
}

void dp_constrain_attach(struct dp_constrain *c, int k, struct vl_gen_params *p) {
    DP_ASSERT(k >= 0 && k < c->n_cons);
    ex_cons_reset(c->cons[k]);
    p->constrain = before;
    p->accept = accept;
    p->constrain_user = c->cons[k];
}

struct ex_cons *dp_constrain_cons(struct dp_constrain *c, int k) {
    DP_ASSERT(k >= 0 && k < c->n_cons);
    return c->cons[k];
}

const struct ex_gram *dp_constrain_gram(const struct dp_constrain *c) {
    return c->gram;
}

void dp_constrain_free(struct dp_constrain *c) {
    if (!c)
        return;
    for (int k = 0; k < c->n_cons; k++)
        ex_cons_free(c->cons[k]);
    dp_free(c->cons);
    ex_vocab_free(c->vocab);
    ex_gram_free(c->gram);
    dp_free(c);
}
