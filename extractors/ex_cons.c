/* The constrained-decoding matcher (ex_cons.h): a byte-level pushdown parser over the grammar of
 * ex_cons_gram.c whose state is a small stack of frames (copied, never allocated, while walking),
 * the token mask (the vocabulary trie walked against the parser state with whole subtrees pruned
 * at the first refused byte; inside free strings the precomputed string classes of
 * ex_cons_vocab.c and only the quote-holding tokens parsed), the budget rule (a token is allowed
 * only if the shortest completion after it, counted in tokens, still fits the remaining
 * --max-new-tokens), jump-forward of forced stretches and the value spans used for confidence.
 * One ex_cons per answer being generated; not thread-safe. */
#include "ex_cons_impl.h"
#include "dp_alloc.h"
#include "dp_buf.h"

#include <math.h>
#include <string.h>
#include <time.h>

#define CONS_TEXT_MAX ((size_t)64 << 20)

enum rep_phase { REP_OPEN = 0, REP_FIRST, REP_AFTER, REP_SEP, REP_ITEM };
enum num_phase { NUM_START = 0, NUM_MINUS, NUM_ZERO, NUM_INT, NUM_DOT, NUM_FRAC };

struct frame {
    int32_t node;
    int32_t phase;
    uint64_t aux;
};

struct pstate {
    int32_t depth;
    int32_t pushed_field; /* set by push() of a node with a field slot (span tracking) */
    int32_t popped_field; /* set by pop() of such a node */
    bool popped_ahead;    /* that pop happened before consuming the byte (lookahead) */
    struct frame f[EX_CONS_MAX_FRAMES];
};

struct ex_cons {
    const struct ex_gram *g;
    const struct ex_vocab *v;
    int64_t max_tokens, n_out;
    struct pstate st;
    bool jump, failed, done;
    struct pstate *wstk; /* (v->max_len + 1) walk states */
    int32_t *ids;        /* (n_logits) allowed ids of a walk */
    float *saved;        /* (n_logits) their logits */
    int64_t n_ids;
    int64_t cut;
    struct dp_buf text;  /* answer bytes */
    size_t *tok_off;     /* (max_tokens + 1) byte offset where each token starts */
    struct ex_cons_span *spans;
    size_t n_spans, cap_spans;
    int64_t open_span;   /* index of the value being generated, -1 */
    struct ex_cons_stats stats;
    double *times;
    int64_t times_cap, times_n;
};

/* ---- parser ------------------------------------------------------------------------------------- */

static bool has_byte(const uint64_t *set, uint8_t b) {
    return (set[b >> 6] >> (b & 63)) & 1;
}

static bool push(const struct ex_gram *g, struct pstate *s, int32_t node) {
    if (s->depth >= EX_CONS_MAX_FRAMES)
        return false;
    struct frame *f = &s->f[s->depth++];
    f->node = node;
    f->phase = 0;
    f->aux = 0;
    const struct ex_gnode *n = &g->nodes[node];
    if (n->kind == EX_GK_ENUM)
        f->phase = n->a;
    if (n->field >= 0)
        s->pushed_field = n->field;
    return true;
}

static void pop(const struct ex_gram *g, struct pstate *s, bool ahead) {
    const struct ex_gnode *n = &g->nodes[s->f[s->depth - 1].node];
    if (n->field >= 0) {
        s->popped_field = n->field;
        s->popped_ahead = ahead;
    }
    s->depth--;
}

/* Drops finished sequences so that an empty stack means "answer complete". */
static void settle(const struct ex_gram *g, struct pstate *s) {
    while (s->depth > 0) {
        const struct frame *f = &s->f[s->depth - 1];
        const struct ex_gnode *n = &g->nodes[f->node];
        if (n->kind != EX_GK_SEQ || f->phase < n->n)
            return;
        s->depth--;
    }
}

static bool num_can_end(int32_t phase) {
    return phase == NUM_ZERO || phase == NUM_INT || phase == NUM_FRAC;
}

/* 1 consumed, 0 refused, -1 the number ended before b (b goes to the parent). */
static int num_step(const struct ex_gnode *n, struct frame *f, uint8_t b) {
    bool digit = b >= '0' && b <= '9';
    bool frac = n->flags & EX_NUM_FRAC;
    switch (f->phase) {
    case NUM_START:
        if (b == '-' && (n->flags & EX_NUM_SIGNED)) {
            f->phase = NUM_MINUS;
            return 1;
        }
        /* fall through */
    case NUM_MINUS:
        if (!digit)
            return 0;
        f->phase = b == '0' ? NUM_ZERO : NUM_INT;
        f->aux = 1;
        return 1;
    case NUM_ZERO:
        if (b == '.' && frac) {
            f->phase = NUM_DOT;
            return 1;
        }
        return -1;
    case NUM_INT:
        if (digit && f->aux < n->max_int) {
            f->aux++;
            return 1;
        }
        if (b == '.' && frac) {
            f->phase = NUM_DOT;
            return 1;
        }
        return -1;
    case NUM_DOT:
        if (!digit)
            return 0;
        f->phase = NUM_FRAC;
        f->aux = 1;
        return 1;
    case NUM_FRAC:
        if (digit && f->aux < EX_CONS_MAX_FRAC_DIGITS) {
            f->aux++;
            return 1;
        }
        return -1;
    default: return 0;
    }
}

static bool step(const struct ex_gram *g, struct pstate *s, uint8_t b) {
    for (;;) {
        if (s->depth == 0)
            return false;
        struct frame *f = &s->f[s->depth - 1];
        const struct ex_gnode *n = &g->nodes[f->node];
        switch (n->kind) {
        case EX_GK_LIT:
            if ((uint8_t)g->bytes[n->a + f->phase] != b)
                return false;
            if (++f->phase == n->n) {
                pop(g, s, false);
                settle(g, s);
            }
            return true;
        case EX_GK_SEQ:
            if (f->phase >= n->n) {
                pop(g, s, true);
                continue;
            }
            if (!push(g, s, g->kids[n->a + f->phase++]))
                return false;
            continue;
        case EX_GK_NULL: {
            int32_t to = b == 'n' ? g->null_lit : has_byte(g->nodes[n->a].first, b) ? n->a : -1;
            if (to < 0)
                return false;
            s->depth--;
            if (!push(g, s, to))
                return false;
            continue;
        }
        case EX_GK_ENUM: {
            int32_t k = g->enodes[f->phase].first_kid;
            while (k >= 0 && g->enodes[k].byte != b)
                k = g->enodes[k].next_sib;
            if (k >= 0) {
                f->phase = k;
                if (g->enodes[k].term && g->enodes[k].first_kid < 0) {
                    pop(g, s, false);
                    settle(g, s);
                }
                return true;
            }
            if (!g->enodes[f->phase].term)
                return false;
            pop(g, s, true);
            continue;
        }
        case EX_GK_STRING: {
            if (f->phase == 0) {
                if (b != '"')
                    return false;
                f->phase = 1;
                return true;
            }
            uint8_t q = ex__str_step((uint8_t)(f->phase - 1), b);
            if (q == EX_STR_DEAD)
                return false;
            if (q == EX_STR_CLOSE) {
                pop(g, s, false);
                settle(g, s);
            } else {
                f->phase = q + 1;
            }
            return true;
        }
        case EX_GK_PATTERN: {
            const struct ex_re *re = &g->res[n->a];
            if (f->phase == 0) {
                if (b != '"')
                    return false;
                f->phase = 1;
                f->aux = EX_RE_START;
                return true;
            }
            if (b == '"') {
                if (!ex__re_accepts(re, f->aux))
                    return false;
                pop(g, s, false);
                settle(g, s);
                return true;
            }
            if (b < 0x20 || b >= 0x7f || b == '\\')
                return false;
            uint64_t next = ex__re_step(re, f->aux, b);
            if (!next)
                return false;
            f->aux = next;
            return true;
        }
        case EX_GK_NUMBER: {
            int r = num_step(n, f, b);
            if (r > 0)
                return true;
            if (r == 0)
                return false;
            pop(g, s, true);
            settle(g, s);
            continue;
        }
        case EX_GK_REP:
            switch (f->phase) {
            case REP_OPEN:
                if (b != n->open)
                    return false;
                f->phase = REP_FIRST;
                return true;
            case REP_FIRST:
            case REP_ITEM:
                if (f->phase == REP_FIRST && b == n->close) {
                    pop(g, s, false);
                    settle(g, s);
                    return true;
                }
                if (!has_byte(g->nodes[n->a].first, b))
                    return false;
                f->phase = REP_AFTER;
                f->aux++;
                if (!push(g, s, n->a))
                    return false;
                continue;
            case REP_AFTER:
                if (b == ',') {
                    f->phase = REP_SEP;
                    return true;
                }
                if (b != n->close)
                    return false;
                pop(g, s, false);
                settle(g, s);
                return true;
            case REP_SEP:
                if (b != ' ')
                    return false;
                f->phase = REP_ITEM;
                return true;
            default: return false;
            }
        default: return false;
        }
    }
}

/* Tokens of the shortest completion from s (piece by piece; EOS not counted). */
static int64_t cost(const struct ex_gram *g, const struct pstate *s) {
    int64_t t = 0;
    for (int32_t i = s->depth; i-- > 0;) {
        const struct frame *f = &s->f[i];
        const struct ex_gnode *n = &g->nodes[f->node];
        switch (n->kind) {
        case EX_GK_LIT: t += g->lit_tok[n->a + f->phase]; break;
        case EX_GK_SEQ: t += f->phase < n->n ? g->seq_rest[n->a + f->phase] : 0; break;
        case EX_GK_NULL: t += n->min_tok; break;
        case EX_GK_ENUM: t += g->enodes[f->phase].rest_tok; break;
        case EX_GK_STRING: t += f->phase ? ex__str_rest((uint8_t)(f->phase - 1)) : 2; break;
        case EX_GK_PATTERN:
            t += f->phase ? 1 + ex__re_dist(&g->res[n->a], f->aux)
                          : 2 + ex__re_dist(&g->res[n->a], EX_RE_START);
            break;
        case EX_GK_NUMBER: t += num_can_end(f->phase) ? 0 : 1; break;
        case EX_GK_REP:
            switch (f->phase) {
            case REP_OPEN: t += 2; break;
            case REP_FIRST:
            case REP_AFTER: t += 1; break;
            case REP_SEP: t += 2 + g->nodes[n->a].min_tok; break;
            default: t += 1 + g->nodes[n->a].min_tok; break;
            }
            break;
        default: break;
        }
    }
    return t;
}

static void copy_state(struct pstate *dst, const struct pstate *src) {
    dst->depth = src->depth;
    dst->pushed_field = dst->popped_field = -1;
    dst->popped_ahead = false;
    memcpy(dst->f, src->f, (size_t)src->depth * sizeof *src->f);
}

static bool step_bytes(const struct ex_gram *g, struct pstate *s, const uint8_t *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!step(g, s, b[i]))
            return false;
    return true;
}

/* ---- mask ------------------------------------------------------------------------------------------ */

/* The thread's CPU time: the mask's own cost, without the time other processes held the core
 * (the machines are shared; docs/constrain.md). */
static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void allow(struct ex_cons *c, int32_t id) {
    if (c->n_ids < c->v->n_logits)
        c->ids[c->n_ids++] = id;
}

/* Trie walk below node; c->wstk[d] is the state after the d bytes leading to it. */
static void walk(struct ex_cons *c, int32_t node, int32_t d, int64_t budget) {
    const struct ex_vocab *v = c->v;
    const struct ex_tnode *t = &v->trie[node];
    for (int k = 0; k < t->n_kids; k++) {
        const struct ex_tnode *kid = &v->trie[t->first + k];
        struct pstate *s = &c->wstk[d + 1];
        copy_state(s, &c->wstk[d]);
        if (!step(c->g, s, kid->byte))
            continue;
        if (kid->tok >= 0) {
            if (cost(c->g, s) <= budget)
                allow(c, kid->tok);
            else
                c->cut++;
        }
        if (kid->n_kids)
            walk(c, t->first + k, d + 1, budget);
    }
}

/* Inside a free string: the string classes decide every token that stays inside; only the
 * tokens holding the closing quote are parsed. Masks z directly; returns the allowed count. */
static int64_t string_mask(struct ex_cons *c, float *z, int64_t n, int64_t budget) {
    const struct ex_vocab *v = c->v;
    const struct pstate *s = &c->st;
    uint8_t q = (uint8_t)(s->f[s->depth - 1].phase - 1);
    int64_t base = cost(c->g, s) - ex__str_rest(q);
    bool ok[256] = {false};
    bool all = true;
    for (int e = 0; e < EX_STR_NSUB; e++) {
        ok[e] = base + ex__str_rest((uint8_t)e) <= budget;
        all = all && ok[e];
    }
    c->n_ids = 0;
    struct pstate *w = &c->wstk[0];
    for (int32_t gi = 0; gi < v->n_grp[q]; gi++) { /* one parse per distinct suffix */
        int32_t i0 = v->grp[q][gi], i1 = v->grp[q][gi + 1];
        size_t len;
        const uint8_t *b = (const uint8_t *)ex_vocab_bytes(v, v->exit_ids[q][i0], &len);
        copy_state(w, s);
        w->f[w->depth - 1].phase = 1 + EX_STR_NORMAL; /* the byte before the quote left it so */
        size_t at = v->exit_at[q][i0] - 1;
        if (!step_bytes(c->g, w, b + at, len - at))
            continue;
        if (cost(c->g, w) > budget) {
            c->cut += i1 - i0;
            continue;
        }
        for (int32_t i = i0; i < i1; i++) {
            c->saved[c->n_ids] = z[v->exit_ids[q][i]];
            allow(c, v->exit_ids[q][i]);
        }
    }
    const uint8_t *end = v->str_end[q];
    int64_t count = 0;
    if (all) {
        const float *add = v->stay_add[q];
        for (int64_t i = 0; i < n; i++)
            z[i] += add[i];
        count = v->n_stay[q];
    } else {
        for (int64_t i = 0; i < n; i++) {
            bool keep = ok[end[i]];
            z[i] = keep ? z[i] : -INFINITY;
            count += keep;
            c->cut += !keep && end[i] < EX_STR_NSUB;
        }
    }
    for (int64_t i = 0; i < c->n_ids; i++)
        z[c->ids[i]] = c->saved[i];
    return count + c->n_ids;
}

/* Allowed ids by a full walk (every state but free strings) into c->ids. */
static void walk_allowed(struct ex_cons *c, int64_t budget) {
    c->n_ids = 0;
    if (c->st.depth == 0) {
        allow(c, c->v->eos_id);
        return;
    }
    copy_state(&c->wstk[0], &c->st);
    walk(c, 0, 0, budget);
}

static bool in_free_string(const struct ex_cons *c) {
    if (c->st.depth == 0)
        return false;
    const struct frame *f = &c->st.f[c->st.depth - 1];
    return c->g->nodes[f->node].kind == EX_GK_STRING && f->phase > 0;
}

/* ---- jump-forward --------------------------------------------------------------------------------- */

/* The only byte s accepts next, or -1. */
static int unique_next(const struct ex_gram *g, const struct pstate *s, struct pstate *tmp) {
    if (s->depth == 0)
        return -1;
    const struct frame *f = &s->f[s->depth - 1];
    const struct ex_gnode *n = &g->nodes[f->node];
    if (n->kind == EX_GK_LIT)
        return (uint8_t)g->bytes[n->a + f->phase];
    if (n->kind == EX_GK_STRING && f->phase > 0)
        return -1;
    int found = -1;
    for (int b = 0; b < 256; b++) {
        copy_state(tmp, s);
        if (!step(g, tmp, (uint8_t)b))
            continue;
        if (found >= 0)
            return -1;
        found = b;
    }
    return found;
}

/* Forced ids from the current state (<= cap), each within the budget; 0 if none. */
static int forced_stretch(struct ex_cons *c, int32_t *forced, int cap) {
    char buf[EX_CONS_MAX_FORCED_BYTES];
    size_t len = 0;
    struct pstate *s = &c->wstk[0], *tmp = &c->wstk[1];
    copy_state(s, &c->st);
    while (len < sizeof buf) {
        int b = unique_next(c->g, s, tmp);
        if (b < 0)
            break;
        step(c->g, s, (uint8_t)b);
        buf[len++] = (char)b;
        if (s->depth == 0)
            break;
    }
    bool final = s->depth == 0;
    if (!final) /* leave the spaces before a choice to the model (" null", " {") */
        while (len && buf[len - 1] == ' ')
            len--;
    if (!len)
        return 0;
    int64_t nt = ex_vocab_tokenize(c->v, buf, len, forced, cap);
    if (nt < 0)
        return 0;
    int k = (int)(nt < cap ? nt : cap);
    /* budget check, token by token */
    copy_state(s, &c->st);
    int ok = 0;
    for (; ok < k; ok++) {
        size_t tl;
        const uint8_t *tb = (const uint8_t *)ex_vocab_bytes(c->v, forced[ok], &tl);
        if (!step_bytes(c->g, s, tb, tl))
            break;
        if (cost(c->g, s) + 1 > c->max_tokens - c->n_out - ok - 1)
            break;
    }
    if (ok == k && final && nt <= k && ok < cap)
        forced[ok++] = c->v->eos_id;
    return ok;
}

/* ---- hooks ------------------------------------------------------------------------------------------ */

static void mask_list(struct ex_cons *c, float *z, int64_t n) {
    for (int64_t i = 0; i < c->n_ids; i++)
        c->saved[i] = z[c->ids[i]];
    for (int64_t i = 0; i < n; i++)
        z[i] = -INFINITY;
    for (int64_t i = 0; i < c->n_ids; i++)
        z[c->ids[i]] = c->saved[i];
}

static void note_time(struct ex_cons *c, double t0) {
    double dt = now_s() - t0;
    c->stats.mask_s += dt;
    if (c->times_cap)
        c->times[c->times_n++ % c->times_cap] = dt;
}

int ex_cons_before(struct ex_cons *c, float *z, int64_t n, int32_t *forced, int cap) {
    double t0 = now_s();
    if (c->failed || n != c->v->n_logits)
        return -1;
    int64_t remaining = c->max_tokens - c->n_out; /* including the one chosen now */
    int64_t budget = remaining - 2;                /* cost after it + EOS must fit */
    if (c->jump && cap > 0) {
        int nf = forced_stretch(c, forced, cap);
        if (nf > 0) {
            c->stats.n_forced += nf;
            c->stats.n_jumps++;
            note_time(c, t0);
            return nf;
        }
    }
    c->cut = 0;
    int64_t count;
    if (in_free_string(c)) {
        count = string_mask(c, z, n, budget);
    } else {
        walk_allowed(c, budget);
        count = c->n_ids;
        if (count == 1 && c->jump && cap > 0) {
            forced[0] = c->ids[0];
            c->stats.n_forced++;
            c->stats.n_jumps++;
            note_time(c, t0);
            return 1;
        }
        mask_list(c, z, n);
    }
    if (c->cut) {
        c->stats.n_budget_cut++;
        if (c->open_span >= 0)
            c->spans[c->open_span].truncated = true;
    }
    c->stats.n_masks++;
    note_time(c, t0);
    if (count == 0) {
        c->failed = true;
        return -1;
    }
    return 0;
}

static bool span_open(struct ex_cons *c, int32_t field, size_t at) {
    if (c->n_spans == c->cap_spans) {
        size_t nc = c->cap_spans ? c->cap_spans * 2 : 32;
        struct ex_cons_span *p = dp_reallocarray(c->spans, nc, sizeof *p);
        if (!p)
            return false;
        c->spans = p;
        c->cap_spans = nc;
    }
    struct ex_cons_span *sp = &c->spans[c->n_spans];
    memset(sp, 0, sizeof *sp);
    sp->field = field;
    sp->byte_begin = at;
    sp->tok_begin = c->n_out;
    c->open_span = (int64_t)c->n_spans++;
    return true;
}

static void span_close(struct ex_cons *c, size_t end) {
    struct ex_cons_span *sp = &c->spans[c->open_span];
    sp->byte_end = end;
    /* the tokens whose bytes overlap [begin, end) */
    int64_t last = c->n_out;
    while (last > sp->tok_begin && c->tok_off[last] >= end)
        last--;
    sp->tok_end = last + 1;
    c->open_span = -1;
}

void ex_cons_accept(struct ex_cons *c, int32_t id) {
    if (c->failed || c->n_out >= c->max_tokens) {
        c->failed = true;
        return;
    }
    c->tok_off[c->n_out] = c->text.len;
    if (id == c->v->eos_id) {
        if (c->st.depth != 0)
            c->failed = true;
        c->done = true;
        c->n_out++;
        c->tok_off[c->n_out] = c->text.len;
        return;
    }
    size_t len;
    const uint8_t *b = (const uint8_t *)ex_vocab_bytes(c->v, id, &len);
    if (!b) {
        c->failed = true;
        return;
    }
    for (size_t i = 0; i < len && !c->failed; i++) {
        size_t at = c->text.len;
        c->st.pushed_field = c->st.popped_field = -1;
        if (!step(c->g, &c->st, b[i])) {
            c->failed = true;
            break;
        }
        if (dp_buf_putc(&c->text, (char)b[i]) != DP_OK)
            c->failed = true;
        if (c->st.popped_field >= 0 && c->open_span >= 0)
            span_close(c, c->st.popped_ahead ? at : at + 1);
        if (c->st.pushed_field >= 0 && !span_open(c, c->st.pushed_field, at))
            c->failed = true;
        /* a one-byte value (a digit) can open and close on the same byte only by lookahead,
         * which the next byte reports */
    }
    c->n_out++;
    c->tok_off[c->n_out] = c->text.len;
}

/* ---- lifetime --------------------------------------------------------------------------------------- */

void ex_cons_free(struct ex_cons *c) {
    if (!c)
        return;
    dp_free(c->wstk);
    dp_free(c->ids);
    dp_free(c->saved);
    dp_free(c->tok_off);
    dp_free(c->spans);
    dp_free(c->times);
    dp_buf_free(&c->text);
    dp_free(c);
}

void ex_cons_reset(struct ex_cons *c) {
    c->n_out = 0;
    c->failed = c->done = false;
    c->st.depth = 0;
    c->st.pushed_field = c->st.popped_field = -1;
    push(c->g, &c->st, c->g->root);
    c->st.pushed_field = -1;
    dp_buf_reset(&c->text);
    c->n_spans = 0;
    c->open_span = -1;
    memset(&c->stats, 0, sizeof c->stats);
    c->times_n = 0;
}

enum dp_status ex_cons_new(struct ex_cons **out, const struct ex_gram *g,
                           const struct ex_vocab *v, int64_t max_tokens, struct dp_err *err) {
    *out = NULL;
    if (g->bound != v)
        return dp_err_set(err, DP_ERR_INTERNAL, "constrained decoding: grammar not bound");
    if (max_tokens < ex_gram_min_tokens(g))
        return dp_err_set(err, DP_ERR_USAGE,
                          "--max-new-tokens %lld is too small for the shortest valid answer of "
                          "this schema (%lld tokens)",
                          (long long)max_tokens, (long long)ex_gram_min_tokens(g));
    struct ex_cons *c = dp_calloc(1, sizeof *c);
    if (!c)
        return dp_err_set(err, DP_ERR_NOMEM, "out of memory");
    c->g = g;
    c->v = v;
    c->max_tokens = max_tokens;
    c->jump = true;
    dp_buf_init(&c->text, CONS_TEXT_MAX);
    c->wstk = dp_calloc((size_t)v->max_len + 2, sizeof *c->wstk);
    c->ids = dp_calloc((size_t)v->n_logits, sizeof *c->ids);
    c->saved = dp_calloc((size_t)v->n_logits, sizeof *c->saved);
    c->tok_off = dp_calloc((size_t)max_tokens + 2, sizeof *c->tok_off);
    if (!c->wstk || !c->ids || !c->saved || !c->tok_off) {
        ex_cons_free(c);
        return dp_err_set(err, DP_ERR_NOMEM, "out of memory");
    }
    ex_cons_reset(c);
    *out = c;
    return DP_OK;
}

int64_t ex_cons_allowed(struct ex_cons *c, int32_t *out, int64_t cap) {
    int64_t budget = c->max_tokens - c->n_out - 2;
    int64_t n = 0;
    if (in_free_string(c)) {
        /* rebuild the list the slow way: every token checked by the parser */
        c->n_ids = 0;
        copy_state(&c->wstk[0], &c->st);
        walk(c, 0, 0, budget);
    } else {
        walk_allowed(c, budget);
    }
    for (int64_t i = 0; i < c->n_ids; i++) {
        if (n < cap)
            out[n] = c->ids[i];
        n++;
    }
    return n;
}

void ex_cons_finish(struct ex_cons *c) {
    int64_t m = c->n_out + cost(c->g, &c->st) + 1;
    if (m < c->max_tokens)
        c->max_tokens = m;
    if (c->open_span >= 0)
        c->spans[c->open_span].truncated = true;
}

void ex_cons_set_jump(struct ex_cons *c, bool on) {
    c->jump = on;
}

enum dp_status ex_cons_keep_times(struct ex_cons *c, int64_t cap) {
    dp_free(c->times);
    c->times = cap > 0 ? dp_calloc((size_t)cap, sizeof *c->times) : NULL;
    c->times_cap = c->times ? cap : 0;
    c->times_n = 0;
    return cap > 0 && !c->times ? DP_ERR_NOMEM : DP_OK;
}

const double *ex_cons_times(const struct ex_cons *c, int64_t *n) {
    *n = c->times_n < c->times_cap ? c->times_n : c->times_cap;
    return c->times;
}

bool ex_cons_complete(const struct ex_cons *c) {
    return c->st.depth == 0 && !c->failed;
}

bool ex_cons_failed(const struct ex_cons *c) {
    return c->failed;
}

const char *ex_cons_text(const struct ex_cons *c, size_t *len) {
    *len = c->text.len;
    return c->text.data ? c->text.data : "";
}

const struct ex_cons_span *ex_cons_spans(const struct ex_cons *c, size_t *n) {
    *n = c->n_spans;
    return c->spans;
}

struct ex_cons_stats ex_cons_stats_get(const struct ex_cons *c) {
    return c->stats;
}
