/* Confidence of a generated value from the model's own token probabilities (docs/constrain.md):
 * the geometric mean of the probabilities of the tokens that produced the value, taken under the
 * model's unconstrained distribution; a token appended without sampling (jump-forward, or the
 * only token the budget left) counts as EX_CONF_FORCED_P; a value cut short by the budget is
 * halved. Pure function; thread-safe. */
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
