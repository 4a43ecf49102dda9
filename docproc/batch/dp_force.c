/* Test hook: teacher-forced answers (docs/testing.md). With DOCPROC_TEST_ANSWERS=DIR, the model's
 * answer to page N at attempt A (1 = the first ask, 2 = olmOCR's rotation retry) is the text of
 * DIR/pN-aA.txt when that file exists: before each token choice every logit but the answer's next
 * token is masked (then every one but EOS), so the model still runs on the page and the recorded
 * log-probabilities are the model's own for that answer. Lets tests drive what the pipeline does
 * with an answer (the rotation retry, token confidences) with a random-weight checkpoint. Pages
 * without a file are answered freely. Thread-safe (one struct per sequence). */
#include "dp_alloc.h"
#include "dp_batch_impl.h"
#include "dp_fs.h"
#include "dp_limits.h"
#include "dp_vl.h"
#include "vl.h"
#include "vl_tools.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define FORCE_PATH_MAX 4096

struct dp_force {
    int32_t *ids; /* (n) the answer's tokens */
    size_t n, pos;
    int32_t eos;
};

enum dp_status dp__force_open(struct dp_force **out, const struct vl_model *m, int page_no,
                              int attempt, struct dp_err *err) {
    *out = NULL;
    const char *dir = getenv("DOCPROC_TEST_ANSWERS");
    if (!dir || !*dir)
        return DP_OK;
    char path[FORCE_PATH_MAX];
    snprintf(path, sizeof path, "%s/p%d-a%d.txt", dir, page_no, attempt);
    if (access(path, F_OK) != 0)
        return DP_OK;
    char *text = NULL;
    size_t len = 0;
    enum dp_status st = dp_file_read(path, DP_MAX_TEXT_BYTES, &text, &len, err);
    if (st != DP_OK)
        return st;
    const struct vl_tokenizer *t = vl_model_tokenizer(m);
    struct dp_force *f = dp_calloc(1, sizeof *f);
    size_t n = 0;
    struct vl_error ve = {0};
    if (!f) {
        st = dp_err_set(err, DP_ERR_NOMEM, "out of memory");
    } else if (!t) {
        st = dp_err_set(err, DP_ERR_MODEL, "%s: the model has no tokenizer", path);
    } else {
        f->ids = dp_calloc(len + 1, sizeof *f->ids); /* (len + 1): never more ids than bytes */
        if (!f->ids)
            st = dp_err_set(err, DP_ERR_NOMEM, "out of memory");
        else if (vl_tokenizer_encode(t, text, len, f->ids, len + 1, &n, &ve) != VL_OK)
            st = dp_vl_err(err, &ve, DP_ERR_FORMAT, "%s", path);
        f->n = n;
        f->eos = vl_tokenizer_token_id(t, "<|im_end|>");
    }
    dp_free(text);
    if (st != DP_OK) {
        dp__force_free(f);
        return st;
    }
    *out = f;
    return DP_OK;
}

int dp__force_constrain(float *logits, int64_t n_vocab, int32_t *forced, int cap, void *user) {
    (void)forced;
    (void)cap;
    struct dp_force *f = user;
    int32_t want = f->pos < f->n ? f->ids[f->pos] : f->eos;
    f->pos++;
    if (want < 0 || want >= n_vocab)
        return -1;
    for (int64_t i = 0; i < n_vocab; i++)
        if (i != want)
            logits[i] = -INFINITY;
    return 0;
}

void dp__force_free(struct dp_force *f) {
    if (!f)
        return;
    dp_free(f->ids);
    dp_free(f);
}
