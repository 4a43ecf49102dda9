/* Fuzz target tokenizer: encode arbitrary bytes, then decode. Uses $DP_FUZZ_TOKENIZER (a
 * tokenizer.json, e.g. the fixture's real Qwen2.5 one) if set, else a small built-in byte-level
 * BPE with Qwen2's regex, a few merges and added tokens, so the target needs no files.
 * Checks: encode never writes past the capacity; on success every id decodes and, for text
 * without added-token markers, decode(encode(x)) == NFC(x) (byte-level BPE is lossless).
 * Added tokens are ASCII, as Qwen's are: the ByteLevel decoder maps a non-ASCII added token's
 * characters through the byte table too (HF does the same), which is not a round trip. */
#include "vl_tools.h"

#include <glib.h>
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_MAX_BYTES ((size_t)1 << 16)
#define FUZZ_CANARY INT32_MIN
#define QWEN2_SPLIT                                                                                \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|" \
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* GPT-2 byte -> code point (spec §8.5), as UTF-8. */
static void byte_sym(int b, char out[8]) {
    int n = 0, cp = -1;
    for (int x = 0; x < 256; x++) {
        bool printable = (x >= '!' && x <= '~') || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE);
        int c = printable ? x : 256 + n++;
        if (x == b)
            cp = c;
    }
    int len = g_unichar_to_utf8((gunichar)cp, out);
    out[len] = '\0';
}

static char *mini_tokenizer_json(void) {
    json_t *vocab = json_object(), *merges = json_array();
    char sym[8];
    int id = 0;
    for (int b = 0; b < 256; b++) {
        byte_sym(b, sym);
        json_object_set_new(vocab, sym, json_integer(id++));
    }
    /* merges over byte-level strings: "Ġ" is space, "Ã" "©" are the bytes of "é" */
    static const char *pairs[][2] = {{"t", "h"}, {"h", "e"}, {"t", "he"}, {"Ġ", "t"},
                                     {"Ġt", "he"}, {"i", "n"}, {"e", "r"}, {"Ġ", "Ġ"},
                                     {"Ã", "©"},  {"Ċ", "Ċ"},  {"a", "n"}, {"an", "d"}};
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        char cat[32];
        snprintf(cat, sizeof cat, "%s%s", pairs[i][0], pairs[i][1]);
        if (!json_object_get(vocab, cat))
            json_object_set_new(vocab, cat, json_integer(id++));
        json_array_append_new(merges, json_pack("[s, s]", pairs[i][0], pairs[i][1]));
    }
    json_t *added = json_pack("[{s:i, s:s, s:b, s:b, s:b, s:b, s:b}, {s:i, s:s, s:b, s:b, s:b, "
                              "s:b, s:b}, {s:i, s:s, s:b, s:b, s:b, s:b, s:b}]",
                              "id", id, "content", "<|im_end|>", "single_word", 0, "lstrip", 0,
                              "rstrip", 0, "normalized", 0, "special", 1, "id", id + 1, "content",
                              "<|im", "single_word", 0, "lstrip", 0, "rstrip", 0, "normalized", 0,
                              "special", 0, "id", id + 2, "content", "Ohm", "single_word", 0,
                              "lstrip", 0, "rstrip", 0, "normalized", 1, "special", 0);
    json_t *root = json_pack(
        "{s:o, s:{s:s}, s:{s:s, s:[{s:s, s:{s:s}, s:s, s:b}, {s:s, s:b, s:b, s:b}]}, "
        "s:{s:s, s:o, s:o}}",
        "added_tokens", added, "normalizer", "type", "NFC", "pre_tokenizer", "type", "Sequence",
        "pretokenizers", "type", "Split", "pattern", "Regex", QWEN2_SPLIT, "behavior", "Isolated",
        "invert", 0, "type", "ByteLevel", "add_prefix_space", 0, "trim_offsets", 0, "use_regex",
        0, "model", "type", "BPE", "vocab", vocab, "merges", merges);
    char *s = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return s;
}

static struct vl_tokenizer *get_tokenizer(void) {
    static struct vl_tokenizer *tok;
    static bool tried;
    if (tried)
        return tok;
    tried = true;
    struct vl_error err = {0};
    const char *path = getenv("DP_FUZZ_TOKENIZER");
    if (path) {
        vl_tokenizer_load(&tok, path, &err);
    } else {
        char *js = mini_tokenizer_json();
        if (js)
            vl_tokenizer_load_mem(&tok, js, strlen(js), &err);
        free(js);
    }
    if (!tok)
        __builtin_trap(); /* the target itself is broken */
    return tok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > FUZZ_MAX_BYTES)
        return 0;
    struct vl_tokenizer *tok = get_tokenizer();
    size_t cap = size / 2 + 1; /* sometimes too small: must give VL_ERR_LIMIT, not overflow */
    int32_t *ids = malloc((cap + 1) * sizeof *ids);
    if (!ids)
        return 0;
    ids[cap] = FUZZ_CANARY;
    size_t n = 0;
    struct vl_error err = {0};
    enum vl_status st = vl_tokenizer_encode(tok, (const char *)data, size, ids, cap, &n, &err);
    if (ids[cap] != FUZZ_CANARY)
        __builtin_trap();
    if (st == VL_OK) {
        char *text = NULL;
        size_t len = 0;
        if (vl_tokenizer_decode(tok, ids, n, false, &text, &len, &err) != VL_OK)
            __builtin_trap();
        bool plain = !memchr(data, '\0', size) && !g_strstr_len((const char *)data,
                                                                (gssize)size, "<|");
        if (plain && size) {
            gchar *nfc = g_utf8_normalize((const char *)data, (gssize)size, G_NORMALIZE_NFC);
            if (nfc && (strlen(nfc) != len || memcmp(nfc, text, len)))
                __builtin_trap(); /* lossless round trip broken */
            g_free(nfc);
        }
        free(text);
    }
    free(ids);
    return 0;
}
