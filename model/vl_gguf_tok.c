/* The tokenizer of a llama.cpp GGUF (tokenizer.ggml.model "gpt2", pre "qwen2"): the metadata's
 * tokens, token types and merges are turned back into the tokenizer.json they were converted
 * from and loaded by the ordinary loader (vl_tokenizer.c), so encoding is the same code:
 *   token type 1 NORMAL (2 UNKNOWN, 6 BYTE) -> model.vocab
 *   token type 3 CONTROL                    -> added_tokens, special
 *   token type 4 USER_DEFINED               -> added_tokens, not special
 *   token type 5 UNUSED                     -> left out (llama.cpp's [PADn] fillers)
 * Qwen2's normalizer (NFC) and pre-tokenizer (Split by its regex, ByteLevel) are what
 * pre "qwen2" names; other pre-tokenizers and models are refused. Untrusted: token strings must
 * be valid UTF-8 without NUL, ids are bounded by the token count, lengths by the reader. */
#include "vl_gguf_impl.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define TOK_TYPE_NORMAL 1
#define TOK_TYPE_CONTROL 3
#define TOK_TYPE_USER_DEFINED 4
#define TOK_TYPE_UNUSED 5
/* Qwen2's pre-tokenizer regex, as its tokenizer.json holds it (the fact pre "qwen2" names). */
#define QWEN2_SPLIT_REGEX                                                                        \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|" \
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

static bool str_is(const struct vl_gguf *g, const char *key, const char *want) {
    const struct vl_gguf_kv *kv = vl__gguf_find(g, key);
    const char *s;
    size_t n;
    return kv && kv->type == VL_GGUF_STRING && vl__gguf_str(kv, 0, &s, &n) &&
           n == strlen(want) && !memcmp(s, want, n);
}

static json_t *pretokenizer(void) {
    return json_pack("{s:s, s:[{s:s, s:{s:s}, s:s, s:b}, {s:s, s:b, s:b, s:b}]}", "type",
                     "Sequence", "pretokenizers", "type", "Split", "pattern", "Regex",
                     QWEN2_SPLIT_REGEX, "behavior", "Isolated", "invert", 0, "type", "ByteLevel",
                     "add_prefix_space", 0, "trim_offsets", 0, "use_regex", 0);
}

enum vl_status vl__gguf_tokenizer(struct vl_tokenizer **out, const struct vl_gguf *g,
                                  struct vl_error *err) {
    *out = NULL;
    if (!str_is(g, "tokenizer.ggml.model", "gpt2"))
        return vl__err(err, VL_ERR_UNSUPPORTED,
                       "%s: tokenizer.ggml.model is not 'gpt2' (byte-level BPE)", g->path);
    if (!str_is(g, "tokenizer.ggml.pre", "qwen2"))
        return vl__err(err, VL_ERR_UNSUPPORTED,
                       "%s: tokenizer.ggml.pre is not 'qwen2' (Qwen2's pre-tokenizer)", g->path);
    const struct vl_gguf_kv *toks = vl__gguf_find(g, "tokenizer.ggml.tokens");
    const struct vl_gguf_kv *types = vl__gguf_find(g, "tokenizer.ggml.token_type");
    const struct vl_gguf_kv *merges = vl__gguf_find(g, "tokenizer.ggml.merges");
    if (!toks || toks->type != VL_GGUF_ARRAY || toks->arr_type != VL_GGUF_STRING || !toks->n)
        return vl__err(err, VL_ERR_MODEL, "%s: tokenizer.ggml.tokens is not a string array",
                       g->path);
    if (!merges || merges->type != VL_GGUF_ARRAY || merges->arr_type != VL_GGUF_STRING)
        return vl__err(err, VL_ERR_MODEL, "%s: tokenizer.ggml.merges is not a string array",
                       g->path);
    if (types && (types->type != VL_GGUF_ARRAY || types->n != toks->n))
        return vl__err(err, VL_ERR_MODEL,
                       "%s: tokenizer.ggml.token_type is not an array of one type per token",
                       g->path);
    json_t *vocab = json_object(), *added = json_array(), *ml = json_array();
    enum vl_status st = VL_OK;
    for (uint64_t i = 0; i < toks->n && st == VL_OK; i++) {
        const char *s;
        size_t n;
        int64_t ty = TOK_TYPE_NORMAL;
        vl__gguf_str(toks, i, &s, &n);
        if (types && !vl__gguf_arr_int(types, i, &ty)) {
            st = vl__err(err, VL_ERR_MODEL, "%s: tokenizer.ggml.token_type[%llu] not an integer",
                         g->path, (unsigned long long)i);
            break;
        }
        if (ty == TOK_TYPE_UNUSED)
            continue;
        json_t *js = n && !memchr(s, 0, n) ? json_stringn(s, n) : NULL;
        if (!js) {
            st = vl__err(err, VL_ERR_MODEL,
                         "%s: tokenizer.ggml.tokens[%llu] is empty, holds NUL or is not UTF-8",
                         g->path, (unsigned long long)i);
            break;
        }
        if (ty == TOK_TYPE_CONTROL || ty == TOK_TYPE_USER_DEFINED) {
            json_array_append_new(added, json_pack("{s:I, s:o, s:b, s:b, s:b, s:b, s:b}", "id",
                                                   (json_int_t)i, "content", js, "special",
                                                   ty == TOK_TYPE_CONTROL, "normalized", 0,
                                                   "single_word", 0, "lstrip", 0, "rstrip", 0));
            continue;
        }
        if (json_object_get(vocab, json_string_value(js))) {
            json_decref(js);
            st = vl__err(err, VL_ERR_MODEL, "%s: tokenizer.ggml.tokens[%llu] appears twice",
                         g->path, (unsigned long long)i);
            break;
        }
        json_object_set_new(vocab, json_string_value(js), json_integer((json_int_t)i));
        json_decref(js);
    }
    for (uint64_t i = 0; i < merges->n && st == VL_OK; i++) {
        const char *s;
        size_t n;
        vl__gguf_str(merges, i, &s, &n);
        json_t *js = !memchr(s, 0, n) ? json_stringn(s, n) : NULL;
        if (!js)
            st = vl__err(err, VL_ERR_MODEL, "%s: tokenizer.ggml.merges[%llu] is not UTF-8 text",
                         g->path, (unsigned long long)i);
        else
            json_array_append_new(ml, js);
    }
    char *text = NULL;
    if (st == VL_OK) {
        json_t *root = json_pack("{s:{s:s}, s:o, s:o, s:{s:s, s:n, s:o, s:o}}", "normalizer",
                                 "type", "NFC", "pre_tokenizer", pretokenizer(), "added_tokens",
                                 added, "model", "type", "BPE", "dropout", "vocab", vocab,
                                 "merges", ml);
        vocab = added = ml = NULL; /* stolen by the pack */
        text = root ? json_dumps(root, JSON_COMPACT) : NULL;
        json_decref(root);
        if (!text)
            st = vl__err(err, VL_ERR_NOMEM, "%s: tokenizer: out of memory", g->path);
    }
    json_decref(vocab);
    json_decref(added);
    json_decref(ml);
    if (st == VL_OK)
        st = vl_tokenizer_load_mem(out, text, strlen(text), err);
    free(text);
    return st;
}
