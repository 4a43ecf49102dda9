/* Encoding text to ids exactly as HF `tokenizers` does for Qwen2.5 (spec §8.3-8.6):
 * added tokens split out first (leftmost-longest, on the raw text), NFC of each gap (GLib), the
 * Split regex (PCRE2, "Isolated": matches and gaps are pieces), byte-level symbols, and BPE by
 * merge rank with HF's priority queue (lowest rank, then leftmost; stale entries checked by the
 * merged id, as HF does). Words of up to VL_TOK_CACHE_MAX_WORD bytes are cached.
 * Thread-safety: encode may run on several threads at once (per-call scratch; the shared word
 * cache takes a mutex). */
#include "vl_tokenizer_impl.h"

#include <glib.h>
#include <stdlib.h>
#include <string.h>

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL
#define ASCII_MAX 0x7f

struct sym {
    int32_t id;   /* -1: merged into its left neighbour */
    int32_t prev; /* index, -1 at the start */
    int32_t next; /* index, -1 at the end */
};

struct hent {
    uint32_t rank;
    uint32_t pos;
    int32_t new_id;
};

struct enc {
    const struct vl_tokenizer *t;
    int32_t *ids;
    size_t cap, n; /* n counts every id; only the first cap are stored */
    pcre2_match_data *md;
    struct sym *sym;
    size_t sym_cap;
    struct hent *heap;
    size_t heap_cap, heap_n;
    int32_t *word;
    size_t word_cap;
    struct vl_error *err;
};

static void emit(struct enc *e, int32_t id) {
    if (e->n < e->cap)
        e->ids[e->n] = id;
    e->n++;
}

static bool reserve(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap)
        return true;
    size_t n = *cap ? *cap : 64;
    while (n < need)
        n *= 2;
    void *q = vl__realloc(*p, n * elem);
    if (!q)
        return false;
    *p = q;
    *cap = n;
    return true;
}

/* ---- word cache ------------------------------------------------------------------------- */

static uint64_t fnv1a(const uint8_t *s, size_t n) {
    uint64_t h = FNV_OFFSET;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * FNV_PRIME;
    return h;
}

static struct vl_tok_cache *cache_of(const struct vl_tokenizer *t) {
    return (struct vl_tok_cache *)&t->cache; /* the only mutable part; locked */
}

static bool cache_get(struct enc *e, const uint8_t *w, size_t n, uint64_t h) {
    struct vl_tok_cache *c = cache_of(e->t);
    bool hit = false;
    pthread_mutex_lock(&c->mu);
    for (size_t i = h & (VL_TOK_CACHE_SLOTS - 1);; i = (i + 1) & (VL_TOK_CACHE_SLOTS - 1)) {
        const struct vl_tok_cache_slot *s = &c->slots[i];
        if (!s->key_len)
            break;
        if (s->hash == h && s->key_len == n && !memcmp(c->keys + s->key_off, w, n)) {
            for (uint32_t k = 0; k < s->ids_len; k++)
                emit(e, c->ids[s->ids_off + k]);
            hit = true;
            break;
        }
    }
    pthread_mutex_unlock(&c->mu);
    return hit;
}

static void cache_put(struct enc *e, const uint8_t *w, size_t n, uint64_t h, const int32_t *ids,
                      size_t n_ids) {
    struct vl_tok_cache *c = cache_of(e->t);
    pthread_mutex_lock(&c->mu);
    if (c->n_used >= VL_TOK_CACHE_MAX_USED || c->keys_len + n > VL_TOK_CACHE_KEY_BYTES ||
        c->ids_len + n_ids > VL_TOK_CACHE_IDS) {
        memset(c->slots, 0, VL_TOK_CACHE_SLOTS * sizeof *c->slots); /* full: start over */
        c->n_used = c->keys_len = c->ids_len = 0;
    }
    size_t i = h & (VL_TOK_CACHE_SLOTS - 1);
    while (c->slots[i].key_len) {
        if (c->slots[i].hash == h && c->slots[i].key_len == n &&
            !memcmp(c->keys + c->slots[i].key_off, w, n)) {
            pthread_mutex_unlock(&c->mu); /* another thread cached it meanwhile */
            return;
        }
        i = (i + 1) & (VL_TOK_CACHE_SLOTS - 1);
    }
    memcpy(c->keys + c->keys_len, w, n);
    memcpy(c->ids + c->ids_len, ids, n_ids * sizeof *ids);
    c->slots[i] = (struct vl_tok_cache_slot){h, (uint32_t)c->keys_len, (uint32_t)n,
                                             (uint32_t)c->ids_len, (uint32_t)n_ids};
    c->keys_len += n;
    c->ids_len += n_ids;
    c->n_used++;
    pthread_mutex_unlock(&c->mu);
}

/* ---- BPE -------------------------------------------------------------------------------- */

static bool hent_less(const struct hent *a, const struct hent *b) {
    return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

static bool heap_push(struct enc *e, struct hent h) {
    if (!reserve((void **)&e->heap, &e->heap_cap, e->heap_n + 1, sizeof *e->heap))
        return false;
    size_t i = e->heap_n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!hent_less(&h, &e->heap[p]))
            break;
        e->heap[i] = e->heap[p];
        i = p;
    }
    e->heap[i] = h;
    return true;
}

static struct hent heap_pop(struct enc *e) {
    struct hent top = e->heap[0], last = e->heap[--e->heap_n];
    size_t i = 0, n = e->heap_n;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const struct hent *best = &last;
        if (l < n && hent_less(&e->heap[l], best)) {
            m = l;
            best = &e->heap[l];
        }
        if (r < n && hent_less(&e->heap[r], best))
            m = r;
        if (m == i)
            break;
        e->heap[i] = e->heap[m];
        i = m;
    }
    if (n)
        e->heap[i] = last;
    return top;
}

static bool push_pair(struct enc *e, int32_t left) {
    int32_t right = e->sym[left].next;
    uint32_t rank;
    int32_t nid;
    if (right < 0 || !vl__tok_merge_get(e->t, e->sym[left].id, e->sym[right].id, &rank, &nid))
        return true;
    return heap_push(e, (struct hent){rank, (uint32_t)left, nid});
}

/* BPE of one piece (raw bytes); appends ids to e->word[0..*n_word). */
static enum vl_status bpe(struct enc *e, const uint8_t *w, size_t n, size_t *n_word) {
    if (n > INT32_MAX)
        return vl__err(e->err, VL_ERR_LIMIT, "tokenizer: a %zu-byte word is too long", n);
    if (!reserve((void **)&e->sym, &e->sym_cap, n, sizeof *e->sym) ||
        !reserve((void **)&e->word, &e->word_cap, n, sizeof *e->word))
        return vl__err(e->err, VL_ERR_NOMEM, "tokenizer: out of memory");
    for (size_t i = 0; i < n; i++)
        e->sym[i] = (struct sym){e->t->byte_id[w[i]], (int32_t)i - 1,
                                 i + 1 < n ? (int32_t)i + 1 : -1};
    e->heap_n = 0;
    for (size_t i = 0; i + 1 < n; i++)
        if (!push_pair(e, (int32_t)i))
            return vl__err(e->err, VL_ERR_NOMEM, "tokenizer: out of memory");
    while (e->heap_n) {
        struct hent top = heap_pop(e);
        struct sym *s = &e->sym[top.pos];
        if (s->id < 0 || s->next < 0)
            continue;
        uint32_t rank;
        int32_t nid;
        if (!vl__tok_merge_get(e->t, s->id, e->sym[s->next].id, &rank, &nid) ||
            nid != top.new_id)
            continue; /* stale */
        int32_t right = s->next;
        s->id = nid;
        s->next = e->sym[right].next;
        if (s->next >= 0)
            e->sym[s->next].prev = (int32_t)top.pos;
        e->sym[right].id = -1;
        if ((s->prev >= 0 && !push_pair(e, s->prev)) || !push_pair(e, (int32_t)top.pos))
            return vl__err(e->err, VL_ERR_NOMEM, "tokenizer: out of memory");
    }
    size_t k = 0;
    for (int32_t i = n ? 0 : -1; i >= 0; i = e->sym[i].next)
        e->word[k++] = e->sym[i].id;
    *n_word = k;
    return VL_OK;
}

static enum vl_status piece(struct enc *e, const char *s, size_t n) {
    const uint8_t *w = (const uint8_t *)s;
    if (!n)
        return VL_OK;
    bool cacheable = n <= VL_TOK_CACHE_MAX_WORD;
    uint64_t h = cacheable ? fnv1a(w, n) : 0;
    if (cacheable && cache_get(e, w, n, h))
        return VL_OK;
    size_t k = 0;
    enum vl_status st = bpe(e, w, n, &k);
    if (st != VL_OK)
        return st;
    for (size_t i = 0; i < k; i++)
        emit(e, e->word[i]);
    if (cacheable)
        cache_put(e, w, n, h, e->word, k);
    return VL_OK;
}

/* ---- pre-tokenisation and normalisation ------------------------------------------------- */

static enum vl_status split(struct enc *e, const char *s, size_t n) {
    size_t last = 0, pos = 0;
    while (pos < n) {
        int rc = pcre2_match(e->t->re, (PCRE2_SPTR)s, n, pos, PCRE2_NO_UTF_CHECK, e->md, NULL);
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
            rc = pcre2_match(e->t->re, (PCRE2_SPTR)s, n, pos, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT,
                             e->md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH)
            break;
        if (rc < 0)
            return vl__err(e->err, VL_ERR_LIMIT, "tokenizer: regex match failed (PCRE2 error %d)",
                           rc);
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(e->md);
        size_t b = ov[0], end = ov[1];
        if (end == b) { /* empty match: no piece; step one character */
            pos = end + 1;
            while (pos < n && ((uint8_t)s[pos] & 0xC0) == 0x80)
                pos++;
            continue;
        }
        enum vl_status st = b > last ? piece(e, s + last, b - last) : VL_OK;
        if (st == VL_OK)
            st = piece(e, s + b, end - b);
        if (st != VL_OK)
            return st;
        last = pos = end;
    }
    return last < n ? piece(e, s + last, n - last) : VL_OK;
}

static enum vl_status added_pass(struct enc *e, const char *s, size_t n, int bit,
                                 enum vl_status (*gap)(struct enc *, const char *, size_t));

static enum vl_status after_nfc(struct enc *e, const char *s, size_t n) {
    return added_pass(e, s, n, 2, split);
}

/* True if NFC never combines across a cut just before c (preceded by p): c is a starter that
 * cannot compose with p. Composition only joins a starter with a following character, and a
 * starter c is blocked from every starter but its immediate predecessor, so checking the pair
 * (p, and the last char of p's canonical decomposition) is exact. */
static bool nfc_safe_cut(gunichar p, gunichar c) {
    if (c <= ASCII_MAX)
        return true; /* no canonical composition has an ASCII second character */
    if (g_unichar_combining_class(c) != 0)
        return false;
    gunichar x, a, b;
    if (g_unichar_compose(p, c, &x))
        return false;
    if (g_unichar_decompose(p, &a, &b) && b && g_unichar_compose(b, c, &x))
        return false;
    return true;
}

/* NFC of one chunk (no NUL inside), appended to out. */
static bool nfc_append(GString *out, const char *s, size_t n) {
    bool ascii = true;
    for (size_t i = 0; i < n && ascii; i++)
        ascii = (uint8_t)s[i] <= ASCII_MAX;
    if (ascii) {
        g_string_append_len(out, s, (gssize)n);
        return true;
    }
    gchar *nf = g_utf8_normalize(s, (gssize)n, G_NORMALIZE_NFC);
    if (!nf)
        return false;
    g_string_append(out, nf);
    g_free(nf);
    return true;
}

/* NFC of a gap (identity for ASCII). GLib's composition step shifts the rest of its buffer on
 * every composition (quadratic in the run length, e.g. Hangul), so the text is normalised in
 * chunks of about VL_TOK_NFC_CHUNK bytes cut where NFC cannot combine across the cut (exact).
 * Only a run with no such cut for VL_TOK_NFC_MAX_RUN bytes (thousands of combining marks) is cut
 * anyway. NUL bytes are cuts too (GLib stops at NUL; NUL never composes). */
static enum vl_status normalize(struct enc *e, const char *s, size_t n) {
    bool ascii = true;
    for (size_t i = 0; i < n && ascii; i++)
        ascii = (uint8_t)s[i] <= ASCII_MAX;
    if (ascii || !e->t->nfc)
        return after_nfc(e, s, n);
    GString *out = g_string_sized_new(n + n / 4);
    size_t start = 0, i = 0;
    gunichar prev = 0;
    bool ok = true;
    while (i < n && ok) {
        gunichar c = g_utf8_get_char(s + i); /* valid: checked on entry */
        size_t next = (size_t)(g_utf8_next_char(s + i) - s);
        if (c == 0) {
            ok = nfc_append(out, s + start, i - start);
            g_string_append_c(out, '\0');
            start = next;
        } else if (i - start >= VL_TOK_NFC_CHUNK &&
                   (nfc_safe_cut(prev, c) || i - start >= VL_TOK_NFC_MAX_RUN)) {
            ok = nfc_append(out, s + start, i - start);
            start = i;
        }
        prev = c;
        i = next;
    }
    if (ok && start < n)
        ok = nfc_append(out, s + start, n - start);
    enum vl_status st = ok ? after_nfc(e, out->str, out->len)
                           : vl__err(e->err, VL_ERR_INVALID, "tokenizer: NFC failed");
    g_string_free(out, TRUE);
    return st;
}

/* Splits s at added tokens of the given kind (bit 1 raw, 2 normalized), leftmost-longest. */
static enum vl_status added_pass(struct enc *e, const char *s, size_t n, int bit,
                                 enum vl_status (*gap)(struct enc *, const char *, size_t)) {
    const struct vl_tokenizer *t = e->t;
    size_t start = 0;
    for (size_t p = 0; p < n; p++) {
        if (!(t->added_first[(uint8_t)s[p]] & bit))
            continue;
        for (int k = 0; k < t->n_added; k++) { /* sorted longest first */
            const struct vl_tok_added *a = &t->added[k];
            if ((a->normalized ? 2 : 1) != bit || a->len > n - p || a->content[0] != s[p] ||
                memcmp(a->content, s + p, a->len))
                continue;
            enum vl_status st = p > start ? gap(e, s + start, p - start) : VL_OK;
            if (st != VL_OK)
                return st;
            emit(e, a->id);
            p += a->len - 1;
            start = p + 1;
            break;
        }
    }
    return start < n ? gap(e, s + start, n - start) : VL_OK;
}

enum vl_status vl_tokenizer_encode(const struct vl_tokenizer *t, const char *text, size_t len,
                                   int32_t *ids, size_t cap, size_t *n_out,
                                   struct vl_error *err) {
    *n_out = 0;
    size_t bad;
    if (!vl__utf8_valid((const uint8_t *)text, len, &bad))
        return vl__err(err, VL_ERR_INVALID, "tokenizer: text is not valid UTF-8 (byte %zu)", bad);
    struct enc e = {.t = t, .ids = ids, .cap = cap, .err = err};
    e.md = pcre2_match_data_create_from_pattern(t->re, NULL);
    if (!e.md)
        return vl__err(err, VL_ERR_NOMEM, "tokenizer: out of memory");
    enum vl_status st = added_pass(&e, text, len, 1, normalize);
    pcre2_match_data_free(e.md);
    vl__free(e.sym);
    vl__free(e.heap);
    vl__free(e.word);
    *n_out = e.n;
    if (st == VL_OK && e.n > cap)
        st = vl__err(err, VL_ERR_LIMIT, "tokenizer: text needs %zu tokens, capacity %zu", e.n,
                     cap);
    return st;
}
