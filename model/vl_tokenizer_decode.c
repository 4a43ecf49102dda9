/* Decoding ids to UTF-8 (spec §8.7): each id's bytes (ByteLevel decoder; ids without a token are
 * dropped, special added tokens optionally skipped), then lossy UTF-8 (maximal invalid subparts
 * -> U+FFFD, as Rust's from_utf8_lossy). The streaming decoder holds back an incomplete trailing
 * UTF-8 sequence until the next id completes it. Also id/token lookups for the chat template.
 * Thread-safety: read-only on the tokenizer; a vl_tok_stream belongs to one caller. */
#include "vl_tokenizer_impl.h"

#include <stdlib.h>
#include <string.h>

#define REPLACEMENT_UTF8 "\xEF\xBF\xBD" /* U+FFFD */
#define REPLACEMENT_LEN 3
#define UTF8_CONT_LO 0x80
#define UTF8_CONT_HI 0xBF

/* Length of the sequence a lead byte starts (0: invalid lead) and the range of its 2nd byte. */
static int utf8_lead(uint8_t b, uint8_t *lo, uint8_t *hi) {
    *lo = UTF8_CONT_LO;
    *hi = UTF8_CONT_HI;
    if (b >= 0xC2 && b <= 0xDF)
        return 2;
    if (b >= 0xE0 && b <= 0xEF) {
        if (b == 0xE0)
            *lo = 0xA0; /* no overlongs */
        if (b == 0xED)
            *hi = 0x9F; /* no surrogates */
        return 3;
    }
    if (b >= 0xF0 && b <= 0xF4) {
        if (b == 0xF0)
            *lo = 0x90;
        if (b == 0xF4)
            *hi = 0x8F; /* <= U+10FFFF */
        return 4;
    }
    return 0;
}

size_t vl__utf8_lossy(const uint8_t *in, size_t n, bool final, char *out, size_t *consumed) {
    size_t i = 0, o = 0;
    while (i < n) {
        uint8_t b = in[i];
        if (b < UTF8_CONT_LO) {
            out[o++] = (char)b;
            i++;
            continue;
        }
        uint8_t lo, hi;
        int len = utf8_lead(b, &lo, &hi);
        if (!len) {
            memcpy(out + o, REPLACEMENT_UTF8, REPLACEMENT_LEN);
            o += REPLACEMENT_LEN;
            i++;
            continue;
        }
        int j = 1;
        bool bad = false;
        for (; j < len; j++) {
            if (i + (size_t)j >= n) {
                if (!final) {
                    *consumed = i; /* valid so far: wait for more bytes */
                    return o;
                }
                bad = true;
                break;
            }
            uint8_t c = in[i + (size_t)j];
            if (c < (j == 1 ? lo : UTF8_CONT_LO) || c > (j == 1 ? hi : UTF8_CONT_HI)) {
                bad = true;
                break;
            }
        }
        if (bad) {
            memcpy(out + o, REPLACEMENT_UTF8, REPLACEMENT_LEN);
            o += REPLACEMENT_LEN;
            i += (size_t)j;
            continue;
        }
        memcpy(out + o, in + i, (size_t)len);
        o += (size_t)len;
        i += (size_t)len;
    }
    *consumed = i;
    return o;
}

bool vl__utf8_valid(const uint8_t *s, size_t n, size_t *bad) {
    size_t i = 0;
    while (i < n) {
        if (s[i] < UTF8_CONT_LO) {
            i++;
            continue;
        }
        uint8_t lo, hi;
        int len = utf8_lead(s[i], &lo, &hi);
        if (!len || i + (size_t)len > n)
            goto fail;
        for (int j = 1; j < len; j++) {
            uint8_t c = s[i + (size_t)j];
            if (c < (j == 1 ? lo : UTF8_CONT_LO) || c > (j == 1 ? hi : UTF8_CONT_HI))
                goto fail;
        }
        i += (size_t)len;
    }
    return true;
fail:
    *bad = i;
    return false;
}

/* ---- whole-sequence decode -------------------------------------------------------------- */

static bool token_bytes(const struct vl_tokenizer *t, int32_t id, bool skip_special,
                        const uint8_t **p, size_t *n) {
    if (id < 0 || id >= t->n_ids || !t->has_tok[id] || (skip_special && t->is_special[id]))
        return false;
    *p = t->tok_blob + t->tok_off[id];
    *n = t->tok_off[id + 1] - t->tok_off[id];
    return true;
}

enum vl_status vl_tokenizer_decode(const struct vl_tokenizer *t, const int32_t *ids, size_t n,
                                   bool skip_special, char **out, size_t *out_len,
                                   struct vl_error *err) {
    *out = NULL;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p;
        size_t k;
        if (token_bytes(t, ids[i], skip_special, &p, &k) && !vl__size_add(&total, total, k))
            return vl__err(err, VL_ERR_LIMIT, "tokenizer: decoded text too long");
    }
    size_t out_cap;
    uint8_t *raw = vl__malloc(total ? total : 1);
    if (!raw || !vl__size_mul(&out_cap, total, REPLACEMENT_LEN) ||
        !(*out = vl__malloc(out_cap + 1))) {
        vl__free(raw);
        return vl__err(err, VL_ERR_NOMEM, "tokenizer: out of memory decoding %zu ids", n);
    }
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p;
        size_t k;
        if (token_bytes(t, ids[i], skip_special, &p, &k)) {
            memcpy(raw + o, p, k);
            o += k;
        }
    }
    size_t used;
    size_t len = vl__utf8_lossy(raw, total, true, *out, &used);
    (*out)[len] = '\0';
    vl__free(raw);
    if (out_len)
        *out_len = len;
    return VL_OK;
}

/* ---- streaming -------------------------------------------------------------------------- */

void vl_tok_stream_init(struct vl_tok_stream *s, bool skip_special) {
    memset(s, 0, sizeof *s);
    s->skip_special = skip_special;
}

size_t vl_tok_stream_bound(const struct vl_tokenizer *t) {
    return (t->max_tok_bytes + VL_TOK_STREAM_PENDING_MAX) * REPLACEMENT_LEN + 1;
}

enum vl_status vl_tok_stream_push(const struct vl_tokenizer *t, struct vl_tok_stream *s,
                                  int32_t id, char *out, size_t cap, size_t *n_out,
                                  struct vl_error *err) {
    *n_out = 0;
    const uint8_t *p;
    size_t k;
    if (!token_bytes(t, id, s->skip_special, &p, &k))
        return VL_OK;
    if (cap < (k + (size_t)s->n_pending) * REPLACEMENT_LEN)
        return vl__err(err, VL_ERR_LIMIT, "tokenizer: stream buffer of %zu bytes, need %zu", cap,
                       (k + (size_t)s->n_pending) * REPLACEMENT_LEN);
    /* pending bytes + this token; small tokens go through a stack buffer */
    uint8_t stackbuf[256];
    uint8_t *buf = k + VL_TOK_STREAM_PENDING_MAX <= sizeof stackbuf
                       ? stackbuf
                       : vl__malloc(k + VL_TOK_STREAM_PENDING_MAX);
    if (!buf)
        return vl__err(err, VL_ERR_NOMEM, "tokenizer: out of memory");
    memcpy(buf, s->pending, (size_t)s->n_pending);
    memcpy(buf + s->n_pending, p, k);
    size_t n = (size_t)s->n_pending + k, used;
    *n_out = vl__utf8_lossy(buf, n, false, out, &used);
    s->n_pending = (int)(n - used); /* < 4: an incomplete but valid prefix */
    memcpy(s->pending, buf + used, (size_t)s->n_pending);
    if (buf != stackbuf)
        vl__free(buf);
    return VL_OK;
}

size_t vl_tok_stream_flush(struct vl_tok_stream *s, char *out, size_t cap) {
    if (cap < (size_t)s->n_pending * REPLACEMENT_LEN)
        return 0;
    size_t used, n = vl__utf8_lossy(s->pending, (size_t)s->n_pending, true, out, &used);
    s->n_pending = 0;
    return n;
}

/* ---- lookups ---------------------------------------------------------------------------- */

int32_t vl_tokenizer_n_ids(const struct vl_tokenizer *t) { return t->n_ids; }

bool vl_tokenizer_is_special(const struct vl_tokenizer *t, int32_t id) {
    return id >= 0 && id < t->n_ids && t->is_special[id];
}

const char *vl_tokenizer_token_bytes(const struct vl_tokenizer *t, int32_t id, size_t *len) {
    const uint8_t *p;
    if (!token_bytes(t, id, false, &p, len))
        return NULL;
    return (const char *)p;
}

int32_t vl_tokenizer_token_id(const struct vl_tokenizer *t, const char *content) {
    size_t n = strlen(content);
    for (int i = 0; i < t->n_added; i++)
        if (t->added[i].len == n && !memcmp(t->added[i].content, content, n))
            return t->added[i].id;
    for (int32_t id = 0; id < t->n_ids; id++) { /* plain vocab token, by its decoded bytes */
        if (t->has_tok[id] && !t->is_added[id] && t->tok_off[id + 1] - t->tok_off[id] == n &&
            !memcmp(t->tok_blob + t->tok_off[id], content, n))
            return id;
    }
    return -1;
}
