/* Vocabulary side of constrained decoding: every plain token's byte string, a trie over them
 * (children contiguous and sorted by byte, so a walk prunes a whole subtree at the first byte the
 * grammar refuses), the JSON-string classes (for each string-lexer substate, where each token
 * ends: still inside the string, at its closing quote after k bytes, or dead), the string
 * lexer itself, and greedy longest-match tokenization for forced stretches.
 * Built once per model; immutable afterwards and shareable between threads. */
#include "ex_cons_impl.h"
#include "dp_alloc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- string lexer ------------------------------------------------------------------------------ */

uint8_t ex__str_step(uint8_t q, uint8_t b) {
    bool cont = b >= 0x80 && b <= 0xBF;
    switch (q) {
    case EX_STR_NORMAL:
        if (b == '"')
            return EX_STR_CLOSE;
        if (b == '\\')
            return EX_STR_ESC;
        if (b < 0x20)
            return EX_STR_DEAD;
        if (b < 0x80)
            return EX_STR_NORMAL;
        if (b >= 0xC2 && b <= 0xDF)
            return EX_STR_C1;
        if (b == 0xE0)
            return EX_STR_E0;
        if (b == 0xED)
            return EX_STR_ED;
        if (b >= 0xE1 && b <= 0xEF)
            return EX_STR_C2;
        if (b == 0xF0)
            return EX_STR_F0;
        if (b >= 0xF1 && b <= 0xF3)
            return EX_STR_C3;
        if (b == 0xF4)
            return EX_STR_F4;
        return EX_STR_DEAD;
    case EX_STR_ESC:
        return strchr("\"\\/bfnrt", b) && b ? EX_STR_NORMAL : EX_STR_DEAD;
    case EX_STR_C1: return cont ? EX_STR_NORMAL : EX_STR_DEAD;
    case EX_STR_C2: return cont ? EX_STR_C1 : EX_STR_DEAD;
    case EX_STR_C3: return cont ? EX_STR_C2 : EX_STR_DEAD;
    case EX_STR_E0: return b >= 0xA0 && b <= 0xBF ? EX_STR_C1 : EX_STR_DEAD;
    case EX_STR_ED: return b >= 0x80 && b <= 0x9F ? EX_STR_C1 : EX_STR_DEAD;
    case EX_STR_F0: return b >= 0x90 && b <= 0xBF ? EX_STR_C2 : EX_STR_DEAD;
    case EX_STR_F4: return b >= 0x80 && b <= 0x8F ? EX_STR_C2 : EX_STR_DEAD;
    default: return EX_STR_DEAD;
    }
}

int ex__str_rest(uint8_t q) {
    static const int rest[EX_STR_NSUB] = {1, 2, 2, 3, 4, 3, 3, 4, 4};
    return q < EX_STR_NSUB ? rest[q] : 1;
}

uint8_t ex__str_fill(uint8_t q) {
    switch (q) {
    case EX_STR_NORMAL: return '"';
    case EX_STR_ESC: return '/';
    case EX_STR_E0: return 0xA0;
    case EX_STR_F0: return 0x90;
    default: return 0x80;
    }
}

/* ---- trie ---------------------------------------------------------------------------------------- */

/* Sort key: the token's bytes (qsort has no context argument). */
struct key {
    const uint8_t *p;
    uint32_t len;
    int32_t id;
};

static int cmp_key(const void *a, const void *b) {
    const struct key *x = a, *y = b;
    int c = memcmp(x->p, y->p, x->len < y->len ? x->len : y->len);
    if (c)
        return c;
    return x->len < y->len ? -1 : x->len > y->len;
}

/* Tokens ids[lo, hi) share their first `depth` bytes (the path to node). Children are placed as
 * one block, then each built in turn. Returns false when out of memory. */
static bool build(struct ex_vocab *v, int32_t node, const int32_t *ids, int64_t lo, int64_t hi,
                  int32_t depth, int64_t *cap) {
    while (lo < hi && (int32_t)(v->off[ids[lo] + 1] - v->off[ids[lo]]) == depth) {
        if (v->trie[node].tok < 0)
            v->trie[node].tok = ids[lo];
        lo++;
    }
    int n_groups = 0;
    for (int64_t i = lo; i < hi;) {
        uint8_t b = v->bytes[v->off[ids[i]] + (uint32_t)depth];
        while (i < hi && v->bytes[v->off[ids[i]] + (uint32_t)depth] == b)
            i++;
        n_groups++;
    }
    if (!n_groups)
        return true;
    if (v->n_trie + n_groups > *cap) {
        int64_t nc = (*cap) * 2 + n_groups;
        struct ex_tnode *t = dp_reallocarray(v->trie, (size_t)nc, sizeof *t);
        if (!t)
            return false;
        v->trie = t;
        *cap = nc;
    }
    int32_t first = v->n_trie;
    v->n_trie += n_groups;
    v->trie[node].first = first;
    v->trie[node].n_kids = (uint16_t)n_groups;
    int g = 0;
    for (int64_t i = lo; i < hi; g++) {
        uint8_t b = v->bytes[v->off[ids[i]] + (uint32_t)depth];
        int64_t j = i;
        while (j < hi && v->bytes[v->off[ids[j]] + (uint32_t)depth] == b)
            j++;
        struct ex_tnode *c = &v->trie[first + g];
        c->first = -1;
        c->tok = -1;
        c->n_kids = 0;
        c->byte = b;
        if (!build(v, first + g, ids, i, j, depth + 1, cap))
            return false;
        i = j;
    }
    return true;
}

/* ---- string classes ------------------------------------------------------------------------------- */

/* Sorts the exit ids of substate q by what follows their quote and marks the runs, so that a
 * mask parses each distinct suffix once. */
static bool group_exits(struct ex_vocab *v, int q) {
    int32_t n = v->n_exit[q];
    struct key *k = dp_calloc((size_t)(n ? n : 1), sizeof *k);
    v->grp[q] = dp_calloc((size_t)n + 1, sizeof(int32_t));
    if (!k || !v->grp[q]) {
        dp_free(k);
        return false;
    }
    for (int32_t i = 0; i < n; i++) {
        int32_t id = v->exit_ids[q][i];
        uint32_t at = v->exit_at[q][i];
        k[i] = (struct key){v->bytes + v->off[id] + at, v->off[id + 1] - v->off[id] - at, id};
    }
    qsort(k, (size_t)n, sizeof *k, cmp_key);
    int32_t g = 0;
    for (int32_t i = 0; i < n; i++) {
        int32_t id = k[i].id;
        v->exit_ids[q][i] = id;
        v->exit_at[q][i] = (uint8_t)(v->off[id + 1] - v->off[id] - k[i].len);
        if (i == 0 || cmp_key(&k[i - 1], &k[i]))
            v->grp[q][g++] = i;
    }
    v->grp[q][g] = n;
    v->n_grp[q] = g;
    dp_free(k);
    return true;
}

static bool classes(struct ex_vocab *v) {
    for (int q = 0; q < EX_STR_NSUB; q++) {
        v->str_end[q] = dp_malloc((size_t)v->n_logits);
        if (!v->str_end[q])
            return false;
        memset(v->str_end[q], EX_STR_DEAD, (size_t)v->n_logits);
        int32_t n_exit = 0;
        for (int pass = 0; pass < 2; pass++) {
            if (pass) {
                v->exit_ids[q] = dp_calloc((size_t)(n_exit ? n_exit : 1), sizeof(int32_t));
                v->exit_at[q] = dp_calloc((size_t)(n_exit ? n_exit : 1), 1);
                if (!v->exit_ids[q] || !v->exit_at[q])
                    return false;
                n_exit = 0;
            }
            for (int32_t id = 0; id < v->n_tokens; id++) {
                uint32_t len = v->off[id + 1] - v->off[id];
                const uint8_t *b = v->bytes + v->off[id];
                if (!len)
                    continue;
                uint8_t s = (uint8_t)q;
                uint32_t k = 0;
                while (k < len && s < EX_STR_NSUB)
                    s = ex__str_step(s, b[k++]);
                if (s == EX_STR_CLOSE && k <= 255) {
                    if (pass) {
                        v->exit_ids[q][n_exit] = id;
                        v->exit_at[q][n_exit] = (uint8_t)k;
                    }
                    n_exit++;
                    s = EX_STR_CLOSE;
                } else if (s == EX_STR_CLOSE) {
                    s = EX_STR_DEAD;
                }
                if (pass)
                    v->str_end[q][id] = s;
            }
        }
        v->n_exit[q] = n_exit;
        if (!group_exits(v, q))
            return false;
        v->stay_add[q] = dp_malloc((size_t)v->n_logits * sizeof(float));
        if (!v->stay_add[q])
            return false;
        for (int32_t id = 0; id < v->n_logits; id++) {
            bool stay = v->str_end[q][id] < EX_STR_NSUB;
            v->stay_add[q][id] = stay ? 0.0f : -INFINITY;
            v->n_stay[q] += stay;
        }
    }
    return true;
}

/* ---- public ------------------------------------------------------------------------------------- */

void ex_vocab_free(struct ex_vocab *v) {
    if (!v)
        return;
    for (int q = 0; q < EX_STR_NSUB; q++) {
        dp_free(v->str_end[q]);
        dp_free(v->exit_ids[q]);
        dp_free(v->exit_at[q]);
        dp_free(v->grp[q]);
        dp_free(v->stay_add[q]);
    }
    dp_free(v->off);
    dp_free(v->bytes);
    dp_free(v->trie);
    dp_free(v);
}

enum dp_status ex_vocab_new(struct ex_vocab **out, const struct ex_vocab_src *src,
                            struct dp_err *err) {
    *out = NULL;
    if (src->n_tokens < 256 || src->n_logits < src->n_tokens || src->eos_id < 0 ||
        src->eos_id >= src->n_logits)
        return dp_err_set(err, DP_ERR_FORMAT, "constrained decoding: bad vocabulary sizes");
    struct ex_vocab *v = dp_calloc(1, sizeof *v);
    if (!v)
        return dp_err_set(err, DP_ERR_NOMEM, "out of memory");
    v->n_logits = src->n_logits;
    v->n_tokens = src->n_tokens;
    v->eos_id = src->eos_id;
    enum dp_status st = DP_OK;
    v->off = dp_calloc((size_t)src->n_tokens + 1, sizeof *v->off);
    size_t total = 0;
    for (int32_t id = 0; v->off && id < src->n_tokens; id++) {
        size_t len = 0;
        const char *b = src->bytes(src->user, id, &len);
        total += b ? len : 0;
    }
    v->bytes = dp_malloc(total ? total : 1);
    if (!v->off || !v->bytes || total > UINT32_MAX)
        st = dp_err_set(err, DP_ERR_NOMEM, "out of memory");
    uint32_t at = 0;
    bool single[256] = {false};
    for (int32_t id = 0; st == DP_OK && id < src->n_tokens; id++) {
        size_t len = 0;
        const char *b = src->bytes(src->user, id, &len);
        v->off[id] = at;
        if (b && len && id != src->eos_id) {
            memcpy(v->bytes + at, b, len);
            at += (uint32_t)len;
            if (len == 1)
                single[(uint8_t)b[0]] = true;
            if ((int32_t)len > v->max_len)
                v->max_len = (int32_t)len;
        }
    }
    if (st == DP_OK)
        v->off[src->n_tokens] = at;
    for (int b = 0; st == DP_OK && b < 256; b++)
        if (!single[b])
            st = dp_err_set(err, DP_ERR_FORMAT,
                            "constrained decoding: the vocabulary has no token for byte 0x%02x "
                            "(not a byte-level BPE vocabulary)", b);
    int32_t *ids = st == DP_OK ? dp_calloc((size_t)src->n_tokens, sizeof *ids) : NULL;
    struct key *keys = st == DP_OK ? dp_calloc((size_t)src->n_tokens, sizeof *keys) : NULL;
    if (st == DP_OK && (!ids || !keys))
        st = dp_err_set(err, DP_ERR_NOMEM, "out of memory");
    int64_t n_ids = 0;
    for (int32_t id = 0; st == DP_OK && id < src->n_tokens; id++)
        if (v->off[id + 1] > v->off[id])
            keys[n_ids++] = (struct key){v->bytes + v->off[id], v->off[id + 1] - v->off[id], id};
    if (st == DP_OK) {
        qsort(keys, (size_t)n_ids, sizeof *keys, cmp_key);
        for (int64_t i = 0; i < n_ids; i++)
            ids[i] = keys[i].id;
        int64_t cap = 1 << 16;
        v->trie = dp_calloc((size_t)cap, sizeof *v->trie);
        if (!v->trie)
            st = dp_err_set(err, DP_ERR_NOMEM, "out of memory");
        if (st == DP_OK) {
            v->n_trie = 1;
            v->trie[0].first = -1;
            v->trie[0].tok = -1;
            if (!build(v, 0, ids, 0, n_ids, 0, &cap))
                st = dp_err_set(err, DP_ERR_NOMEM, "out of memory");
        }
    }
    dp_free(ids);
    dp_free(keys);
    if (st == DP_OK && !classes(v))
        st = dp_err_set(err, DP_ERR_NOMEM, "out of memory");
    if (st != DP_OK) {
        ex_vocab_free(v);
        return st;
    }
    *out = v;
    return DP_OK;
}

const char *ex_vocab_bytes(const struct ex_vocab *v, int32_t id, size_t *len) {
    if (id < 0 || id >= v->n_tokens || v->off[id + 1] == v->off[id]) {
        *len = 0;
        return NULL;
    }
    *len = v->off[id + 1] - v->off[id];
    return (const char *)v->bytes + v->off[id];
}

int64_t ex_vocab_tokenize(const struct ex_vocab *v, const char *s, size_t len, int32_t *out,
                          int64_t cap) {
    int64_t n = 0;
    size_t i = 0;
    while (i < len) {
        int32_t node = 0, best = -1;
        size_t best_len = 0;
        for (size_t k = i; k < len; k++) {
            const struct ex_tnode *t = &v->trie[node];
            int32_t next = -1;
            for (int c = 0; c < t->n_kids; c++)
                if (v->trie[t->first + c].byte == (uint8_t)s[k]) {
                    next = t->first + c;
                    break;
                }
            if (next < 0)
                break;
            node = next;
            if (v->trie[node].tok >= 0) {
                best = v->trie[node].tok;
                best_len = k - i + 1;
            }
        }
        if (best < 0) /* cannot happen: every byte is a token */
            return -1;
        if (n < cap)
            out[n] = best;
        n++;
        i += best_len;
    }
    return n;
}
