/* Token confidences of an answer for the archive writers (ALTO WC, hOCR x_wconf, PAGE conf;
 * docs/archive.md): the byte offset in the decoded answer at which each generated token's text
 * starts, and the token's log-probability under the model's raw logits. Offsets come from
 * libvl's streaming decoder, which emits exactly the bytes vl_tokenizer_decode gives (held-back
 * partial UTF-8 is attributed to the token that completes it). Special tokens (no text) and
 * forced tokens (--constrain jump-forward: no probability) are left out. Thread-safe. */
#include "dp_alloc.h"
#include "dp_batch_impl.h"
#include "dp_log.h"
#include "vl.h"
#include "vl_tools.h"

#include <math.h>

enum dp_status dp__answer_tokconf(struct dp_page_answer *pa, const struct vl_tokenizer *t,
                                  const int32_t *ids, const float *logprobs, int64_t n,
                                  struct dp_err *err) {
    pa->tok_off = NULL;
    pa->tok_logprob = NULL;
    pa->n_tok = 0;
    if (n <= 0 || !t)
        return DP_OK;
    size_t cap = vl_tok_stream_bound(t);
    char *buf = dp_malloc(cap ? cap : 1);
    size_t *off = dp_calloc((size_t)n, sizeof *off);      /* (n) */
    float *lp = dp_calloc((size_t)n, sizeof *lp);         /* (n) */
    if (!buf || !off || !lp) {
        dp_free(buf);
        dp_free(off);
        dp_free(lp);
        return dp_err_set(err, DP_ERR_NOMEM, "page %d: out of memory", pa->number);
    }
    struct vl_tok_stream s;
    vl_tok_stream_init(&s, true);
    size_t total = 0, k = 0;
    bool ok = true;
    for (int64_t i = 0; i < n && ok; i++) {
        size_t start = total, got = 0;
        struct vl_error ve = {0};
        ok = vl_tok_stream_push(t, &s, ids[i], buf, cap, &got, &ve) == VL_OK;
        total += got;
        if (ok && !vl_tokenizer_is_special(t, ids[i]) && isfinite(logprobs[i])) {
            off[k] = start;
            lp[k] = logprobs[i];
            k++;
        }
    }
    if (ok)
        total += vl_tok_stream_flush(&s, buf, cap);
    dp_free(buf);
    if (!ok || total != pa->len) { /* never attach offsets that do not match the text */
        DP_LOG_DEBUG("page %d: token offsets do not match the answer (%zu vs %zu bytes): no "
                     "token confidences", pa->number, total, pa->len);
        dp_free(off);
        dp_free(lp);
        return DP_OK;
    }
    pa->tok_off = off;
    pa->tok_logprob = lp;
    pa->n_tok = k;
    return DP_OK;
}

struct ex_tokconf dp__answer_conf(const struct dp_page_answer *pa) {
    struct ex_tokconf c = {.off = pa->tok_off, .logprob = pa->tok_logprob, .n = pa->n_tok};
    return c;
}
