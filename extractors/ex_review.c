/* Cross-checks beyond the arithmetic (date plausibility: not in the future beyond a tolerance,
 * due date not before the issue date; currency consistency: every amount in one currency, the
 * currency field's) and the review decision of a document (ex_doc_review): needs_review with
 * one reason line per failed check or per value below the confidence threshold.
 * Thread-safe: no shared state; "today" is read from the clock per call. */
#include "ex_impl.h"
#include "dp_alloc.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define EX_DATE_FUTURE_DAYS 1     /* an issue date may be tomorrow somewhere on Earth */
#define EX_DUE_FUTURE_DAYS  3660  /* a due date within ten years */
#define EX_REVIEW_LINE_MAX  512
#define EX_REVIEW_MAX       256   /* reasons kept per document */

/* Days since 1970-01-01 of an ISO date "YYYY-MM-DD"; false if not one. */
static bool iso_days(const char *v, long *out) {
    int y, m, d;
    if (!v || sscanf(v, "%4d-%2d-%2d", &y, &m, &d) != 3 || m < 1 || m > 12 || d < 1 || d > 31)
        return false;
    /* days from civil (H. Hinnant's algorithm) */
    y -= m <= 2;
    long era = (y >= 0 ? y : y - 399) / 400;
    long yoe = y - era * 400;
    long doy = (153L * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    *out = era * 146097 + doe - 719468;
    return true;
}

static bool is_due(const char *name) {
    return strstr(name, "due") || strstr(name, "expir") || strstr(name, "valid");
}

static const struct ex_field *find_date(const struct ex_field *f, size_t n, bool due) {
    for (size_t i = 0; i < n; i++)
        if (f[i].type == EX_V_DATE && (bool)is_due(f[i].name) == due)
            return &f[i];
    return NULL;
}

void ex__check_dates_currency(const struct ex_field *f, size_t n, struct ex__wsink *ws) {
    long today = (long)(time(NULL) / 86400);
    for (size_t i = 0; i < n; i++) {
        const struct ex_field *x = &f[i];
        long d;
        if (x->type != EX_V_DATE || !iso_days(x->value, &d))
            continue;
        long tol = is_due(x->name) ? EX_DUE_FUTURE_DAYS : EX_DATE_FUTURE_DAYS;
        ws->page = x->prov.page;
        if (d > today + tol)
            ex__warn(ws, EX_WARN_DATE, x->prov.span_off, x->prov.span_len, x->name,
                     "%s %s is %ld days in the future", x->name, x->value, d - today);
    }
    const struct ex_field *issue = find_date(f, n, false), *due = find_date(f, n, true);
    long di, dd;
    if (issue && due && iso_days(issue->value, &di) && iso_days(due->value, &dd) && dd < di) {
        ws->page = due->prov.page;
        ex__warn(ws, EX_WARN_DATE, due->prov.span_off, due->prov.span_len, due->name,
                 "%s %s is before %s %s", due->name, due->value, issue->name, issue->value);
    }
    /* currency: the currency field, else the first amount's, against every amount */
    const char *cur = NULL, *cur_from = NULL;
    for (size_t i = 0; i < n && !cur; i++)
        if (!strcmp(f[i].name, "currency") && f[i].value && strlen(f[i].value) == 3)
            cur = f[i].value, cur_from = f[i].name;
    for (size_t i = 0; i < n; i++) {
        const struct ex_field *x = &f[i];
        const struct ex_field *list = x->type == EX_V_ARRAY ? x : NULL;
        size_t m = list ? list->n_children : 1;
        for (size_t k = 0; k < m; k++) {
            const struct ex_field *it = list ? &list->children[k] : x;
            size_t nc = list ? it->n_children : 1;
            for (size_t c = 0; c < nc; c++) {
                const struct ex_field *a = list ? &it->children[c] : it;
                if (a->type != EX_V_AMOUNT || !a->currency[0])
                    continue;
                if (!cur) {
                    cur = a->currency;
                    cur_from = a->name;
                    continue;
                }
                if (strcmp(cur, a->currency)) {
                    ws->page = a->prov.page;
                    ex__warn(ws, EX_WARN_CURRENCY, a->prov.span_off, a->prov.span_len, a->name,
                             "%s is in %s but %s says %s", a->name, a->currency, cur_from, cur);
                }
            }
        }
    }
    ws->page = 0;
}

bool ex_warn_needs_review(enum ex_warn_code c) {
    switch (c) {
    case EX_WARN_REQUIRED:
    case EX_WARN_TYPE:
    case EX_WARN_ENUM:
    case EX_WARN_PATTERN:
    case EX_WARN_ARITHMETIC:
    case EX_WARN_DATE:
    case EX_WARN_CURRENCY:
    case EX_WARN_TRUNCATED: return true;
    default: return false;
    }
}

static bool add_reason(struct ex_doc *d, size_t *cap, const char *line) {
    if (d->n_review_reasons >= EX_REVIEW_MAX)
        return true;
    if (!ex__grow((void **)&d->review_reasons, cap, d->n_review_reasons + 1,
                  sizeof *d->review_reasons))
        return false;
    char *s = dp_strdup(line);
    if (!s)
        return false;
    d->review_reasons[d->n_review_reasons++] = s;
    return true;
}

static bool low_conf(struct ex_doc *d, size_t *cap, const struct ex_field *f, size_t n,
                     const char *path, double threshold) {
    for (size_t i = 0; i < n; i++) {
        char p[EX_REVIEW_LINE_MAX / 2];
        snprintf(p, sizeof p, "%s%s%s", path, *path ? "." : "", f[i].name);
        if (f[i].n_children && !low_conf(d, cap, f[i].children, f[i].n_children, p, threshold))
            return false;
        if (f[i].has_conf && f[i].conf < threshold) {
            char line[EX_REVIEW_LINE_MAX];
            snprintf(line, sizeof line, "low_confidence: %s %.3f < %.3f%s", p, f[i].conf, threshold,
                     f[i].value_truncated ? " (truncated)" : "");
            if (!add_reason(d, cap, line))
                return false;
        }
    }
    return true;
}

enum dp_status ex_doc_review(struct ex_doc *d, double threshold, struct dp_err *err) {
    for (size_t i = 0; i < d->n_review_reasons; i++)
        dp_free(d->review_reasons[i]);
    DP_FREE(d->review_reasons);
    d->n_review_reasons = 0;
    size_t cap = 0;
    bool ok = true;
    for (size_t i = 0; ok && i < d->n_warnings; i++) {
        const struct ex_warning *w = &d->warnings[i];
        if (!ex_warn_needs_review(w->code))
            continue;
        char line[EX_REVIEW_LINE_MAX];
        snprintf(line, sizeof line, "%s: %s", ex_warn_code_name(w->code), w->msg ? w->msg : "");
        ok = add_reason(d, &cap, line);
    }
    if (ok && d->truncated)
        ok = add_reason(d, &cap, "truncated: an answer was cut by the token budget");
    if (ok)
        ok = low_conf(d, &cap, d->fields, d->n_fields, "", threshold);
    d->needs_review = d->n_review_reasons > 0;
    return ok ? DP_OK : dp_err_set(err, DP_ERR_NOMEM, "out of memory");
}
