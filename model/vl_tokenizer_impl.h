/* Private layout of struct vl_tokenizer, shared by vl_tokenizer.c (load), vl_tokenizer_bpe.c
 * (encode) and vl_tokenizer_decode.c (decode, streaming). Not for use outside model/. */
#ifndef VL_TOKENIZER_IMPL_H
#define VL_TOKENIZER_IMPL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include "vl_impl.h"

#include <pcre2.h>
#include <pthread.h>

/* Byte-level alphabet (GPT-2 bytes_to_unicode, spec §8.5): 256 bytes map to code points < 324. */
#define VL_TOK_BYTE_CP_END 324

/* Added tokens at or above this id are Qwen3-only (<tool_response>, <think>, ...) and plain text
 * for Qwen2.5-VL (spec §8.1, §8.8): a Qwen3-style tokenizer.json is read with them ignored. */
#define VL_TOK_QWEN25_ADDED_END 151665

struct vl_tok_added {
    char *content;  /* UTF-8, owned */
    size_t len;
    int32_t id;
    bool special;
    bool normalized; /* matched after NFC (false for all Qwen tokens) */
};

struct vl_tok_merge_slot {
    uint64_t key;   /* (uint64)left id << 32 | right id; VL_TOK_EMPTY_KEY when empty */
    uint32_t rank;
    int32_t new_id;
};
#define VL_TOK_EMPTY_KEY UINT64_MAX

/* Word -> ids cache (bounded; cleared when full). Guarded by mu. */
struct vl_tok_cache_slot {
    uint64_t hash;
    uint32_t key_off, key_len; /* key_len 0: empty slot */
    uint32_t ids_off, ids_len;
};
struct vl_tok_cache {
    pthread_mutex_t mu;
    bool mu_init;
    struct vl_tok_cache_slot *slots; /* [VL_TOK_CACHE_SLOTS] */
    size_t n_used;
    uint8_t *keys;                   /* [VL_TOK_CACHE_KEY_BYTES] */
    size_t keys_len;
    int32_t *ids;                    /* [VL_TOK_CACHE_IDS] */
    size_t ids_len;
};
#define VL_TOK_CACHE_SLOTS ((size_t)1 << 16)
#define VL_TOK_CACHE_MAX_USED (VL_TOK_CACHE_SLOTS / 2)
#define VL_TOK_CACHE_KEY_BYTES ((size_t)1 << 20)
#define VL_TOK_CACHE_IDS ((size_t)1 << 18)
#define VL_TOK_CACHE_MAX_WORD 64 /* longer words are not cached */

/* NFC runs in chunks of about this many bytes (GLib's composition is quadratic per call); a run
 * without a safe cut is cut anyway at VL_TOK_NFC_MAX_RUN (only thousands of marks in a row). */
#define VL_TOK_NFC_CHUNK 256
#define VL_TOK_NFC_MAX_RUN 16384

struct vl_tokenizer {
    /* id -> decoded bytes: tok_off[id]..tok_off[id+1] in tok_blob; has_tok[id] false = no token */
    int32_t n_ids;       /* 1 + the largest id (vocab and added) */
    int32_t n_vocab;     /* entries of the BPE vocab */
    uint32_t *tok_off;   /* [n_ids + 1] */
    uint8_t *tok_blob;
    bool *has_tok;       /* [n_ids] */
    bool *is_special;    /* [n_ids] special added token */
    bool *is_added;      /* [n_ids] */
    size_t max_tok_bytes;

    int32_t byte_id[256]; /* id of each single-byte symbol */
    struct vl_tok_merge_slot *merges; /* open addressing, [merge_mask + 1] */
    size_t merge_mask;
    size_t n_merges;

    struct vl_tok_added *added; /* [n_added], sorted by length descending */
    int n_added;
    uint8_t added_first[256];   /* bit 0: some raw added token starts with this byte; bit 1: normalized */

    pcre2_code *re;       /* the Split pattern, UTF + UCP, JIT-compiled when available */
    bool nfc;             /* normalizer is NFC */

    struct vl_tok_cache cache;
};

/* Merge lookup: true and (rank, new id) when (a, b) merges. */
bool vl__tok_merge_get(const struct vl_tokenizer *t, int32_t a, int32_t b, uint32_t *rank,
                       int32_t *new_id);
/* Lossy UTF-8 (Rust from_utf8_lossy: maximal invalid subparts -> U+FFFD). Appends to out
 * (capacity cap; needs at most 3 bytes per input byte). With final false a trailing incomplete
 * but valid prefix is left unconsumed. Returns bytes written; *consumed = input bytes used. */
size_t vl__utf8_lossy(const uint8_t *in, size_t n, bool final, char *out, size_t *consumed);
/* True if s[0..n) is valid UTF-8 (NUL allowed); else *bad = offset of the first bad byte. */
bool vl__utf8_valid(const uint8_t *s, size_t n, size_t *bad);

#endif
