/* Loading a Hugging Face tokenizer.json (byte-level BPE as Qwen2.5 uses it, spec §8.1-8.2):
 * the vocab is stored as decoded bytes per id, merges as a hash (left id, right id) -> (rank,
 * merged id), added tokens sorted for leftmost-longest matching, and the Split regex compiled
 * with PCRE2 (UTF + UCP, JIT). Configurations other than Qwen2's (other normalizers,
 * pre-tokenizers or BPE options) are refused rather than approximated.
 * Thread-safety: a loaded tokenizer is read-only except for its internally locked word cache. */
#include "vl_tokenizer_impl.h"

#include <glib.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* tokenizer.json of Qwen2.5 is 11 MB; refuse anything far larger. */
#define TOK_MAX_FILE_BYTES ((size_t)256 << 20)
#define TOK_MAX_IDS (1 << 24)
#define TOK_MAX_REGEX_BYTES 4096
#define UTF8_MAX_SEQ 4
#define ONIG_NEL "\\x{85}" /* Oniguruma's \s includes U+0085 NEL; PCRE2's UCP \s does not */

/* ---- byte-level alphabet ------------------------------------------------------------------ */

static bool byte_is_printable(int b) {
    return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

/* cp_to_byte[cp] = byte for the 256 code points of the alphabet, -1 elsewhere. */
static void byte_tables(int16_t cp_to_byte[VL_TOK_BYTE_CP_END]) {
    for (int i = 0; i < VL_TOK_BYTE_CP_END; i++)
        cp_to_byte[i] = -1;
    int n = 0;
    for (int b = 0; b < 256; b++) {
        if (byte_is_printable(b))
            cp_to_byte[b] = (int16_t)b;
        else
            cp_to_byte[256 + n++] = (int16_t)b;
    }
}

/* Decodes a byte-level token string to bytes into out (>= len bytes); false if some character
 * is outside the alphabet (the ByteLevel decoder then keeps the token's own UTF-8). */
static bool bytelevel_decode(const int16_t *cp_to_byte, const char *s, size_t len, uint8_t *out,
                             size_t *n_out) {
    size_t n = 0;
    const char *p = s, *end = s + len;
    while (p < end) {
        gunichar c = g_utf8_get_char_validated(p, end - p);
        if (c == (gunichar)-1 || c == (gunichar)-2 || c >= VL_TOK_BYTE_CP_END ||
            cp_to_byte[c] < 0)
            return false;
        out[n++] = (uint8_t)cp_to_byte[c];
        p = g_utf8_next_char(p);
    }
    *n_out = n;
    return true;
}

/* ---- merge hash --------------------------------------------------------------------------- */

static uint64_t mix64(uint64_t x) { /* splitmix64 finaliser */
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static uint64_t merge_key(int32_t a, int32_t b) { return (uint64_t)(uint32_t)a << 32 | (uint32_t)b; }

bool vl__tok_merge_get(const struct vl_tokenizer *t, int32_t a, int32_t b, uint32_t *rank,
                       int32_t *new_id) {
    uint64_t key = merge_key(a, b);
    for (size_t i = mix64(key) & t->merge_mask;; i = (i + 1) & t->merge_mask) {
        const struct vl_tok_merge_slot *s = &t->merges[i];
        if (s->key == VL_TOK_EMPTY_KEY)
            return false;
        if (s->key == key) {
            *rank = s->rank;
            *new_id = s->new_id;
            return true;
        }
    }
}

/* Later duplicates overwrite earlier ones (as HF's HashMap collect does). */
static void merge_put(struct vl_tokenizer *t, int32_t a, int32_t b, uint32_t rank, int32_t id) {
    uint64_t key = merge_key(a, b);
    size_t i = mix64(key) & t->merge_mask;
    while (t->merges[i].key != VL_TOK_EMPTY_KEY && t->merges[i].key != key)
        i = (i + 1) & t->merge_mask;
    if (t->merges[i].key == VL_TOK_EMPTY_KEY)
        t->n_merges++;
    t->merges[i] = (struct vl_tok_merge_slot){key, rank, id};
}

/* ---- pieces of tokenizer.json ------------------------------------------------------------- */

static const char *jstr(json_t *o, const char *key) {
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static bool jflag(json_t *o, const char *key) { return json_is_true(json_object_get(o, key)); }

static enum vl_status check_normalizer(struct vl_tokenizer *t, json_t *nz, struct vl_error *err) {
    if (!nz || json_is_null(nz))
        return VL_OK;
    const char *ty = jstr(nz, "type");
    if (ty && !strcmp(ty, "NFC")) {
        t->nfc = true;
        return VL_OK;
    }
    if (ty && !strcmp(ty, "Sequence")) {
        json_t *arr = json_object_get(nz, "normalizers");
        size_t i;
        json_t *v;
        json_array_foreach(arr, i, v) {
            enum vl_status st = check_normalizer(t, v, err);
            if (st != VL_OK)
                return st;
        }
        return VL_OK;
    }
    return vl__err(err, VL_ERR_UNSUPPORTED, "tokenizer.json: normalizer '%.32s' not supported",
                   ty ? ty : "?");
}

/* Oniguruma-compatible \s / \S for PCRE2: add NEL inside and outside classes. */
static char *adapt_regex(const char *re) {
    size_t n = strlen(re);
    /* each \s or \S grows by at most the bracket pair plus ONIG_NEL */
    char *out = vl__malloc(n * (sizeof ONIG_NEL + 4) + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    bool in_class = false;
    for (size_t i = 0; i < n; i++) {
        char c = re[i];
        if (c == '\\' && i + 1 < n) {
            char d = re[i + 1];
            i++;
            if (d == 's' || d == 'S') {
                if (in_class && d == 's') {
                    o += (size_t)snprintf(out + o, 8 + sizeof ONIG_NEL, "\\s%s", ONIG_NEL);
                } else if (!in_class) {
                    o += (size_t)snprintf(out + o, 8 + sizeof ONIG_NEL, "[%s\\s%s]",
                                          d == 'S' ? "^" : "", ONIG_NEL);
                } else {
                    out[o++] = '\\'; /* \S inside a class: keep (not in the Qwen pattern) */
                    out[o++] = d;
                }
            } else {
                out[o++] = '\\';
                out[o++] = d;
            }
            continue;
        }
        if (c == '[' && !in_class)
            in_class = true;
        else if (c == ']' && in_class && i > 0 && re[i - 1] != '[' && re[i - 1] != '^')
            in_class = false;
        out[o++] = c;
    }
    out[o] = '\0';
    return out;
}

static enum vl_status compile_regex(struct vl_tokenizer *t, const char *pat, struct vl_error *err) {
    if (strlen(pat) > TOK_MAX_REGEX_BYTES)
        return vl__err(err, VL_ERR_LIMIT, "tokenizer.json: Split regex longer than %d bytes",
                       TOK_MAX_REGEX_BYTES);
    char *adapted = adapt_regex(pat);
    if (!adapted)
        return vl__err(err, VL_ERR_NOMEM, "out of memory");
    int ec;
    PCRE2_SIZE eo;
    t->re = pcre2_compile((PCRE2_SPTR)adapted, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &ec,
                          &eo, NULL);
    vl__free(adapted);
    if (!t->re) {
        PCRE2_UCHAR msg[128];
        pcre2_get_error_message(ec, msg, sizeof msg);
        return vl__err(err, VL_ERR_FORMAT, "tokenizer.json: Split regex: %s at offset %zu",
                       (const char *)msg, (size_t)eo);
    }
    if (pcre2_jit_compile(t->re, PCRE2_JIT_COMPLETE) != 0)
        vl__log(VL_LOG_INFO, "tokenizer: PCRE2 JIT unavailable; using the interpreter");
    return VL_OK;
}

static enum vl_status check_pretokenizer(struct vl_tokenizer *t, json_t *pt,
                                         struct vl_error *err) {
    const char *ty = pt ? jstr(pt, "type") : NULL;
    json_t *list = ty && !strcmp(ty, "Sequence") ? json_object_get(pt, "pretokenizers") : NULL;
    json_t *split = json_array_get(list, 0), *bl = json_array_get(list, 1);
    const char *sty = split ? jstr(split, "type") : NULL, *bty = bl ? jstr(bl, "type") : NULL;
    json_t *pattern = split ? json_object_get(split, "pattern") : NULL;
    const char *re = pattern ? jstr(pattern, "Regex") : NULL;
    const char *beh = split ? jstr(split, "behavior") : NULL;
    if (json_array_size(list) != 2 || !sty || strcmp(sty, "Split") || !re || !beh ||
        strcmp(beh, "Isolated") || jflag(split, "invert") || !bty || strcmp(bty, "ByteLevel") ||
        jflag(bl, "add_prefix_space") || jflag(bl, "use_regex"))
        return vl__err(err, VL_ERR_UNSUPPORTED,
                       "tokenizer.json: pre_tokenizer is not Qwen2's Sequence[Split(Regex, "
                       "Isolated), ByteLevel(no prefix space, no regex)]");
    return compile_regex(t, re, err);
}

static enum vl_status check_model(json_t *model, struct vl_error *err) {
    const char *ty = jstr(model, "type");
    if (!json_is_object(model) || (ty && strcmp(ty, "BPE")))
        return vl__err(err, VL_ERR_UNSUPPORTED, "tokenizer.json: model type '%.32s' is not BPE",
                       ty ? ty : "?");
    const char *csp = jstr(model, "continuing_subword_prefix");
    const char *eow = jstr(model, "end_of_word_suffix");
    json_t *dropout = json_object_get(model, "dropout");
    if ((csp && csp[0]) || (eow && eow[0]) || jflag(model, "byte_fallback") ||
        jflag(model, "ignore_merges") || (dropout && !json_is_null(dropout)))
        return vl__err(err, VL_ERR_UNSUPPORTED,
                       "tokenizer.json: BPE options (subword prefix/suffix, byte_fallback, "
                       "ignore_merges, dropout) other than Qwen2's are not supported");
    return VL_OK;
}

static int added_cmp(const void *a, const void *b) {
    const struct vl_tok_added *x = a, *y = b;
    if (x->len != y->len)
        return x->len > y->len ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* ---- load --------------------------------------------------------------------------------- */

struct tok_build {
    GHashTable *vocab; /* byte-level string (borrowed from the JSON) -> id + 1 */
    int16_t cp_to_byte[VL_TOK_BYTE_CP_END];
};

static enum vl_status set_token(struct vl_tokenizer *t, int32_t id, const uint8_t *bytes,
                                size_t len, size_t *blob_len, size_t *blob_cap,
                                struct vl_error *err) {
    (void)id;
    while (*blob_len + len > *blob_cap) {
        size_t ncap = *blob_cap ? *blob_cap * 2 : 1 << 20;
        uint8_t *nb = vl__realloc(t->tok_blob, ncap);
        if (!nb)
            return vl__err(err, VL_ERR_NOMEM, "tokenizer: out of memory");
        t->tok_blob = nb;
        *blob_cap = ncap;
    }
    memcpy(t->tok_blob + *blob_len, bytes, len);
    *blob_len += len;
    if (len > t->max_tok_bytes)
        t->max_tok_bytes = len;
    return VL_OK;
}

static enum vl_status load_vocab_and_added(struct vl_tokenizer *t, struct tok_build *b,
                                           json_t *vocab, json_t *added, struct vl_error *err) {
    const char *key;
    json_t *val;
    int64_t max_id = -1;
    json_object_foreach(vocab, key, val) {
        if (!json_is_integer(val) || json_integer_value(val) < 0 ||
            json_integer_value(val) >= TOK_MAX_IDS)
            return vl__err(err, VL_ERR_FORMAT, "tokenizer.json: vocab id of '%.40s' invalid", key);
        if (json_integer_value(val) > max_id)
            max_id = json_integer_value(val);
    }
    size_t i;
    json_array_foreach(added, i, val) {
        json_t *id = json_object_get(val, "id");
        if (!json_is_integer(id) || json_integer_value(id) < 0 ||
            json_integer_value(id) >= TOK_MAX_IDS || !jstr(val, "content") ||
            !jstr(val, "content")[0])
            return vl__err(err, VL_ERR_FORMAT, "tokenizer.json: added_tokens[%zu] invalid", i);
        if (json_integer_value(id) < VL_TOK_QWEN25_ADDED_END && json_integer_value(id) > max_id)
            max_id = json_integer_value(id);
    }
    t->n_ids = (int32_t)(max_id + 1);
    t->n_vocab = (int32_t)json_object_size(vocab);
    size_t n = (size_t)t->n_ids;
    t->tok_off = vl__calloc(n + 1, sizeof *t->tok_off);
    t->has_tok = vl__calloc(n ? n : 1, sizeof *t->has_tok);
    t->is_special = vl__calloc(n ? n : 1, sizeof *t->is_special);
    t->is_added = vl__calloc(n ? n : 1, sizeof *t->is_added);
    t->added = vl__calloc(json_array_size(added) + 1, sizeof *t->added);
    const char **src = vl__calloc(n ? n : 1, sizeof *src); /* id -> (string, is_added) */
    bool *src_added = vl__calloc(n ? n : 1, sizeof *src_added);
    enum vl_status st = VL_OK;
    if (!t->tok_off || !t->has_tok || !t->is_special || !t->is_added || !t->added || !src ||
        !src_added) {
        st = vl__err(err, VL_ERR_NOMEM, "tokenizer: out of memory");
        goto done;
    }
    json_object_foreach(vocab, key, val) {
        int32_t id = (int32_t)json_integer_value(val);
        if (src[id]) {
            st = vl__err(err, VL_ERR_FORMAT, "tokenizer.json: vocab id %d used twice", (int)id);
            goto done;
        }
        src[id] = key;
        g_hash_table_insert(b->vocab, (gpointer)key, GINT_TO_POINTER(id + 1));
    }
    json_array_foreach(added, i, val) {
        int32_t id = (int32_t)json_integer_value(json_object_get(val, "id"));
        if (id >= VL_TOK_QWEN25_ADDED_END)
            continue; /* Qwen3-only: plain text for Qwen2.5-VL */
        if (jflag(val, "single_word") || jflag(val, "lstrip") || jflag(val, "rstrip")) {
            st = vl__err(err, VL_ERR_UNSUPPORTED,
                         "tokenizer.json: added token %d uses single_word/lstrip/rstrip", (int)id);
            goto done;
        }
        struct vl_tok_added *a = &t->added[t->n_added];
        const char *c = jstr(val, "content");
        a->len = strlen(c);
        a->content = vl__strdup(c);
        if (!a->content) {
            st = vl__err(err, VL_ERR_NOMEM, "tokenizer: out of memory");
            goto done;
        }
        a->id = id;
        a->special = jflag(val, "special");
        a->normalized = jflag(val, "normalized");
        t->n_added++;
        src[id] = a->content;
        src_added[id] = true;
        t->is_added[id] = true;
        t->is_special[id] = a->special;
        t->added_first[(uint8_t)c[0]] |= a->normalized ? 2 : 1;
    }
    qsort(t->added, (size_t)t->n_added, sizeof *t->added, added_cmp);
    /* decoded bytes per id (ByteLevel decoder rule, spec §8.7) */
    size_t blob_len = 0, blob_cap = 0;
    uint8_t *tmp = NULL;
    size_t tmp_cap = 0;
    for (size_t id = 0; id < n && st == VL_OK; id++) {
        t->tok_off[id] = (uint32_t)blob_len;
        if (!src[id])
            continue;
        size_t len = strlen(src[id]), dn;
        if (len > tmp_cap) {
            uint8_t *nt = vl__realloc(tmp, len);
            if (!nt) {
                st = vl__err(err, VL_ERR_NOMEM, "tokenizer: out of memory");
                break;
            }
            tmp = nt;
            tmp_cap = len;
        }
        if (bytelevel_decode(b->cp_to_byte, src[id], len, tmp, &dn))
            st = set_token(t, (int32_t)id, tmp, dn, &blob_len, &blob_cap, err);
        else
            st = set_token(t, (int32_t)id, (const uint8_t *)src[id], len, &blob_len, &blob_cap,
                           err);
        t->has_tok[id] = true;
        if (blob_len > UINT32_MAX)
            st = vl__err(err, VL_ERR_LIMIT, "tokenizer.json: vocabulary text over 4 GB");
    }
    t->tok_off[n] = (uint32_t)blob_len;
    vl__free(tmp);
    /* single-byte symbols: every byte must have one (no unknown tokens can occur) */
    for (int byte = 0; byte < 256 && st == VL_OK; byte++) {
        char s[UTF8_MAX_SEQ + 1] = {0};
        gunichar cp = 0;
        for (int c = 0; c < VL_TOK_BYTE_CP_END; c++)
            if (b->cp_to_byte[c] == byte)
                cp = (gunichar)c;
        g_unichar_to_utf8(cp, s);
        gpointer v = g_hash_table_lookup(b->vocab, s);
        if (!v)
            st = vl__err(err, VL_ERR_FORMAT,
                         "tokenizer.json: vocab lacks the byte-level symbol of byte 0x%02x", byte);
        else
            t->byte_id[byte] = GPOINTER_TO_INT(v) - 1;
    }
done:
    vl__free(src);
    vl__free(src_added);
    return st;
}

static enum vl_status load_merges(struct vl_tokenizer *t, struct tok_build *b, json_t *merges,
                                  struct vl_error *err) {
    size_t n = json_array_size(merges), cap = 16;
    while (cap < 2 * n + 16)
        cap *= 2;
    t->merges = vl__malloc(cap * sizeof *t->merges);
    if (!t->merges)
        return vl__err(err, VL_ERR_NOMEM, "tokenizer: out of memory for %zu merges", n);
    memset(t->merges, 0xff, cap * sizeof *t->merges); /* key = VL_TOK_EMPTY_KEY */
    t->merge_mask = cap - 1;
    GString *cat = g_string_new(NULL);
    enum vl_status st = VL_OK;
    for (size_t r = 0; r < n && st == VL_OK; r++) {
        json_t *m = json_array_get(merges, r);
        const char *a = NULL, *bb = NULL;
        char *owned = NULL;
        if (json_is_array(m) && json_array_size(m) == 2) {
            a = json_string_value(json_array_get(m, 0));
            bb = json_string_value(json_array_get(m, 1));
        } else if (json_is_string(m)) {
            const char *s = json_string_value(m);
            const char *sp = strchr(s, ' ');
            if (sp && !strchr(sp + 1, ' ') && (owned = vl__strdup(s))) {
                owned[sp - s] = '\0';
                a = owned;
                bb = owned + (sp - s) + 1;
            }
        }
        if (!a || !bb) {
            st = vl__err(err, VL_ERR_FORMAT, "tokenizer.json: merges[%zu] is not a pair", r);
        } else {
            gpointer ia = g_hash_table_lookup(b->vocab, a), ib = g_hash_table_lookup(b->vocab, bb);
            g_string_assign(cat, a);
            g_string_append(cat, bb);
            gpointer ic = g_hash_table_lookup(b->vocab, cat->str);
            if (!ia || !ib || !ic)
                st = vl__err(err, VL_ERR_FORMAT,
                             "tokenizer.json: merges[%zu] '%.40s' + '%.40s' not in the vocab", r,
                             a, bb);
            else
                merge_put(t, GPOINTER_TO_INT(ia) - 1, GPOINTER_TO_INT(ib) - 1, (uint32_t)r,
                          GPOINTER_TO_INT(ic) - 1);
        }
        vl__free(owned);
    }
    g_string_free(cat, TRUE);
    return st;
}

static enum vl_status init_cache(struct vl_tok_cache *c, struct vl_error *err) {
    pthread_mutex_init(&c->mu, NULL);
    c->mu_init = true;
    c->slots = vl__calloc(VL_TOK_CACHE_SLOTS, sizeof *c->slots);
    c->keys = vl__malloc(VL_TOK_CACHE_KEY_BYTES);
    c->ids = vl__malloc(VL_TOK_CACHE_IDS * sizeof *c->ids);
    if (!c->slots || !c->keys || !c->ids)
        return vl__err(err, VL_ERR_NOMEM, "tokenizer: out of memory for the cache");
    return VL_OK;
}

enum vl_status vl_tokenizer_load_mem(struct vl_tokenizer **out, const char *json, size_t len,
                                     struct vl_error *err) {
    *out = NULL;
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return vl__err(err, VL_ERR_FORMAT, "tokenizer.json: invalid JSON: %s (line %d)", jerr.text,
                       jerr.line);
    struct vl_tokenizer *t = vl__calloc(1, sizeof *t);
    struct tok_build b = {0};
    b.vocab = g_hash_table_new(g_str_hash, g_str_equal);
    byte_tables(b.cp_to_byte);
    enum vl_status st = VL_OK;
    json_t *model = json_object_get(root, "model");
    json_t *added = json_object_get(root, "added_tokens");
    if (!t)
        st = vl__err(err, VL_ERR_NOMEM, "tokenizer: out of memory");
    if (st == VL_OK)
        st = check_model(model, err);
    if (st == VL_OK && (!json_is_object(json_object_get(model, "vocab")) ||
                        !json_is_array(json_object_get(model, "merges")) ||
                        (added && !json_is_array(added))))
        st = vl__err(err, VL_ERR_FORMAT,
                     "tokenizer.json: needs model.vocab (object), model.merges (array) and "
                     "added_tokens (array)");
    if (st == VL_OK)
        st = check_normalizer(t, json_object_get(root, "normalizer"), err);
    if (st == VL_OK)
        st = check_pretokenizer(t, json_object_get(root, "pre_tokenizer"), err);
    if (st == VL_OK)
        st = load_vocab_and_added(t, &b, json_object_get(model, "vocab"), added, err);
    if (st == VL_OK)
        st = load_merges(t, &b, json_object_get(model, "merges"), err);
    if (st == VL_OK)
        st = init_cache(&t->cache, err);
    g_hash_table_destroy(b.vocab);
    json_decref(root);
    if (st != VL_OK) {
        vl_tokenizer_free(t);
        return st;
    }
    *out = t;
    return VL_OK;
}

enum vl_status vl_tokenizer_load(struct vl_tokenizer **out, const char *path,
                                 struct vl_error *err) {
    *out = NULL;
    char *text;
    size_t len;
    enum vl_status st = vl__read_file(path, TOK_MAX_FILE_BYTES, &text, &len, err);
    if (st != VL_OK)
        return st;
    st = vl_tokenizer_load_mem(out, text, len, err);
    vl__free(text);
    /* Messages from memory say "tokenizer.json: ..."; name the real file instead. */
    static const char generic[] = "tokenizer.json: ";
    if (st != VL_OK && err && !strncmp(err->msg, generic, sizeof generic - 1)) {
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s: %s", path, err->msg + sizeof generic - 1);
        memcpy(err->msg, msg, sizeof msg);
    }
    return st;
}

void vl_tokenizer_free(struct vl_tokenizer *t) {
    if (!t)
        return;
    if (t->cache.mu_init)
        pthread_mutex_destroy(&t->cache.mu);
    vl__free(t->cache.slots);
    vl__free(t->cache.keys);
    vl__free(t->cache.ids);
    pcre2_code_free(t->re);
    for (int i = 0; i < t->n_added; i++)
        vl__free(t->added[i].content);
    vl__free(t->added);
    vl__free(t->merges);
    vl__free(t->tok_off);
    vl__free(t->tok_blob);
    vl__free(t->has_tok);
    vl__free(t->is_special);
    vl__free(t->is_added);
    vl__free(t);
}
