/* Confidence of a generated value from the model's own token probabilities (docs/constrain.md):
 * the geometric mean of the probabilities of the tokens that produced the value, taken under the
 * model's unconstrained distribution; a token appended without sampling (jump-forward, or the
 * only token the budget left) counts as EX_CONF_FORCED_P; a value cut short by the budget is
 * halved. Pure function; thread-safe. */
#include "ex.h"
#include "ex_cons.h"

#include <math.h>

double ex_conf_value(const float *raw_lp, const float *masked_lp, int64_t n, bool truncated) {
    (void)masked_lp; /* reported next to it, not used: see docs/constrain.md */
    if (n <= 0)
        return 0.0;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double lp = isnan(raw_lp[i]) ? log(EX_CONF_FORCED_P) : (double)raw_lp[i];
        sum += lp > 0.0 ? 0.0 : lp;
    }
    double c = exp(sum / (double)n);
    if (truncated)
        c *= EX_CONF_TRUNCATED_FACTOR;
    return c < 0.0 ? 0.0 : c > 1.0 ? 1.0 : c;
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
