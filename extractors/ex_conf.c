/* Confidence of a generated value from the model's own token probabilities (docs/constrain.md):
 * the geometric mean of the probabilities of the tokens that produced the value, taken under the
 * model's unconstrained distribution; a token appended without sampling (jump-forward, or the
 * only token the budget left) counts as EX_CONF_FORCED_P; a value cut short by the budget is
 * halved. The same formula for table cells, over the tokens overlapping the cell's text
 * (ex_conf_span). Pure functions; thread-safe. */
#include "ex.h"
#include "ex_cons.h"
#include "ex_lines.h"

#include <math.h>
#include <string.h>

/* One token's term of the mean: its log p (<= 0), a forced token's log EX_CONF_FORCED_P. */
static double term(float raw_lp) {
    double lp = isnan(raw_lp) ? log(EX_CONF_FORCED_P) : (double)raw_lp;
    return lp > 0.0 ? 0.0 : lp;
}

static double finish(double sum, int64_t n, bool truncated) {
    double c = exp(sum / (double)n);
    if (truncated)
        c *= EX_CONF_TRUNCATED_FACTOR;
    return c < 0.0 ? 0.0 : c > 1.0 ? 1.0 : c;
}

double ex_conf_value(const float *raw_lp, const float *masked_lp, int64_t n, bool truncated) {
    (void)masked_lp; /* reported next to it, not used: see docs/constrain.md */
    if (n <= 0)
        return 0.0;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++)
        sum += term(raw_lp[i]);
    return finish(sum, n, truncated);
}

double ex_conf_span(const struct ex_tokconf *tc, size_t raw_len, size_t off, size_t len) {
    if (!tc || !tc->n || !len)
        return -1;
    /* the first token ending after off: tokens are contiguous and ascending */
    size_t lo = 0, hi = tc->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        size_t end = mid + 1 < tc->n ? tc->off[mid + 1] : raw_len;
        if (end <= off)
            lo = mid + 1;
        else
            hi = mid;
    }
    double sum = 0.0;
    int64_t k = 0;
    for (size_t i = lo; i < tc->n && tc->off[i] < off + len; i++) {
        size_t end = i + 1 < tc->n ? tc->off[i + 1] : raw_len;
        if (end <= tc->off[i]) /* a token without bytes (none in a byte-level vocabulary) */
            continue;
        sum += term(tc->logprob[i]);
        k++;
    }
    return k ? finish(sum, k, false) : -1;
}

/* The text of an HTML cell's span "<td ...>text</td>": [after the start tag, before the end
 * tag); other spans (JSON, Markdown) unchanged. */
static void cell_text_span(const char *raw, size_t *off, size_t *len) {
    const char *s = raw + *off;
    size_t n = *len;
    if (!n || s[0] != '<')
        return;
    const char *gt = memchr(s, '>', n);
    if (!gt) {
        *len = 0;
        return;
    }
    size_t b = (size_t)(gt - s) + 1, e = n;
    for (size_t i = n; i > b + 1; i--)
        if (s[i - 2] == '<' && s[i - 1] == '/') {
            e = i - 2;
            break;
        }
    *off += b;
    *len = e > b ? e - b : 0;
}

void ex_page_apply_cell_conf(struct ex_page *pg, const struct ex_tokconf *tc) {
    if (!tc || !tc->n)
        return;
    for (size_t t = 0; t < pg->n_tables; t++) {
        struct ex_table *tb = &pg->tables[t];
        for (int r = 0; r < tb->n_rows; r++)
            for (int c = 0; c < tb->n_cols; c++) {
                struct ex_cell *x = &tb->cells[(size_t)r * (size_t)tb->n_cols + (size_t)c];
                if (x->orow != r || x->ocol != c || !x->prov.span_len ||
                    x->prov.span_off + x->prov.span_len > pg->raw_len)
                    continue;
                size_t off = x->prov.span_off, len = x->prov.span_len;
                cell_text_span(pg->raw, &off, &len);
                double conf = ex_conf_span(tc, pg->raw_len, off, len);
                x->has_conf = conf >= 0;
                x->conf = conf >= 0 ? conf : 0.0;
            }
    }
}

static void apply(struct ex_field *f, size_t n_f, const struct ex_value_conf *v, size_t n) {
    for (size_t i = 0; i < n_f; i++) {
        struct ex_field *x = &f[i];
        if (x->n_children) {
            apply(x->children, x->n_children, v, n);
            continue;
        }
        if (!x->prov.span_len)
            continue;
        size_t lo = x->prov.span_off, hi = lo + x->prov.span_len;
        for (size_t k = 0; k < n; k++)
            if (v[k].byte_begin >= lo && v[k].byte_end <= hi && v[k].byte_end > v[k].byte_begin) {
                x->has_conf = true;
                x->conf = v[k].conf;
                x->value_truncated = v[k].truncated;
                break;
            }
    }
}

void ex_page_apply_conf(struct ex_page *pg, const struct ex_value_conf *v, size_t n) {
    apply(pg->fields, pg->n_fields, v, n);
}
