/* The token log-probs of a page's answer as the batch keeps them (dp__answer_tokconf, the
 * fixture's Qwen2.5 tokenizer): every token's byte offset in the answer text, its log-prob kept;
 * a text that is not the tokens' bytes end to end gives none; through ex_page_apply_cell_conf the
 * cells of an HTML table answer get confidences, one unlikely token lowering its own cell only. */
#include "dp_batch_impl.h"
#include "ex_lines.h"
#include "t.h"
#include "dp_alloc.h"
#include "vl_tools.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char HTML[] = "```html\n<table><tr><th>Item</th><th>Price</th></tr>"
                           "<tr><td>Green tea</td><td>12.50</td></tr></table>\n```";

static const struct ex_cell *cell(const struct ex_table *t, int r, int c) {
    return &t->cells[(size_t)r * (size_t)t->n_cols + (size_t)c];
}

int main(void) {
    const char *fx = getenv("DP_FIXTURES");
    char path[1024];
    snprintf(path, sizeof path, "%s/qwen25vl-tiny/model/tokenizer.json", fx ? fx : ".");
    struct vl_tokenizer *tok = NULL;
    struct vl_error ve = {0};
    if (vl_tokenizer_load(&tok, path, &ve) != VL_OK) {
        T_FAIL_AT("tokenizer %s: %s", path, ve.msg);
        return t_done();
    }
    size_t len = strlen(HTML), n = 0;
    int32_t ids[sizeof HTML];
    T_CHECK(vl_tokenizer_encode(tok, HTML, len, ids, sizeof HTML, &n, &ve) == VL_OK);
    T_CHECK(n > 10 && n < len);
    /* every token likely, but the one holding "Green" unlikely */
    size_t green = (size_t)(strstr(HTML, "Green") - HTML);
    float lp[sizeof HTML];
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        size_t tl = 0;
        (void)vl_tokenizer_token_bytes(tok, ids[i], &tl);
        lp[i] = (green >= at && green < at + tl) ? logf(0.01f) : logf(0.9f);
        at += tl;
    }
    struct dp_err err = {0};
    struct dp_page_answer a = {.number = 1, .text = (char *)HTML, .len = len};
    T_CHECK(dp__answer_tokconf(&a, tok, ids, lp, (int64_t)n, &err) == DP_OK);
    T_EQ_I64((int64_t)a.n_tok, (int64_t)n);
    for (size_t i = 1; i < a.n_tok; i++)
        T_CHECK(a.tok_off[i] > a.tok_off[i - 1]);
    T_CHECK(a.n_tok && a.tok_off[0] == 0 && a.tok_logprob[n - 1] == lp[n - 1]);
    struct ex_page *pg = NULL;
    T_CHECK(ex_page_parse(&pg, NULL, HTML, len, NULL, 1, EX_STOP_EOS, &err) == DP_OK);
    if (pg && pg->n_tables == 1 && pg->tables[0].n_rows == 2 && a.n_tok) {
        struct ex_tokconf tc = {a.tok_off, a.tok_logprob, a.n_tok};
        ex_page_apply_cell_conf(pg, &tc);
        const struct ex_table *t = &pg->tables[0];
        T_EQ_STR(cell(t, 1, 0)->text, "Green tea");
        T_CHECK(cell(t, 1, 0)->has_conf && cell(t, 1, 1)->has_conf && cell(t, 0, 0)->has_conf);
        T_CHECK_MSG(cell(t, 1, 0)->conf < 0.5 && cell(t, 1, 1)->conf > 0.85,
                    "Green tea %.3f, 12.50 %.3f", cell(t, 1, 0)->conf, cell(t, 1, 1)->conf);
    } else {
        T_FAIL_AT("the HTML table did not parse or no token offsets");
    }
    ex_page_free(pg);
    dp_free(a.tok_off);
    dp_free(a.tok_logprob);
    /* a text that is not the tokens' bytes (a decoder replacement): no offsets */
    struct dp_page_answer b = {.number = 1, .text = (char *)"```html\n<x>", .len = 11};
    T_CHECK(dp__answer_tokconf(&b, tok, ids, lp, (int64_t)n, &err) == DP_OK);
    T_EQ_I64((int64_t)b.n_tok, 0);
    T_CHECK(b.tok_off == NULL && b.tok_logprob == NULL);
    vl_tokenizer_free(tok);
    return t_done();
}
