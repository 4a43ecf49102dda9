/* Validation of a document's merged fields against its schema (required fields, types, enums,
 * patterns via GLib's PCRE-based GRegex) and the invoice/receipt arithmetic cross-checks
 * (quantity x unit price = line amount, sum of lines = subtotal, subtotal + tax = total), each
 * failure a warning that names the field path and the numbers involved.
 * Thread-safe: no shared state (regexes are compiled per call). */
#include "ex_impl.h"

#include <glib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define EX_ARITH_TOL_ABS 0.01   /* one cent: printed amounts are rounded to cents */
#define EX_ARITH_TOL_REL 1e-6   /* and floating-point noise on large totals */
#define EX_VPATH_MAX 256

static const struct ex_field *find(const struct ex_field *f, size_t n, const char *name) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(f[i].name, name))
            return &f[i];
    return NULL;
}

static bool numeric(const struct ex_field *f) {
    return f && (f->type == EX_V_NUMBER || f->type == EX_V_INTEGER || f->type == EX_V_AMOUNT ||
                 f->type == EX_V_PERCENT);
}

static size_t span_len(const struct ex_field *f) {
    return f->prov.span_len;
}

static void validate_level(const struct sc_field *sfs, size_t n_sf, const struct ex_field *fs,
                           size_t n, const char *path, struct ex__wsink *ws, int page) {
    for (size_t i = 0; i < n_sf; i++) {
        const struct sc_field *sf = &sfs[i];
        const struct ex_field *f = find(fs, n, sf->name);
        char p[EX_VPATH_MAX];
        snprintf(p, sizeof p, "%s%s%s", path, *path ? "." : "", sf->name);
        int saved = ws->page;
        ws->page = f ? f->prov.page : page;
        if (!f || f->type == EX_V_NULL) {
            if (sf->required)
                ex__warn(ws, EX_WARN_REQUIRED, 0, 0, p, "required field '%s' is missing", p);
            ws->page = saved;
            continue;
        }
        size_t so = f->prov.span_off, sl = span_len(f);
        if (sf->n_enum && f->value) {
            bool ok = false;
            for (size_t k = 0; k < sf->n_enum && !ok; k++)
                ok = !g_ascii_strcasecmp(sf->enum_vals[k], f->value);
            if (!ok)
                ex__warn(ws, EX_WARN_ENUM, so, sl, p, "'%.40s' is not one of the %zu allowed values",
                         f->value, sf->n_enum);
        }
        if (sf->pattern && f->value) {
            GRegex *re = g_regex_new(sf->pattern, 0, 0, NULL);
            if (re && !g_regex_match(re, f->value, 0, NULL))
                ex__warn(ws, EX_WARN_PATTERN, so, sl, p, "'%.40s' does not match /%.60s/", f->value,
                         sf->pattern);
            if (re)
                g_regex_unref(re);
        }
        if (sf->type == SC_TYPE_OBJECT && f->type == EX_V_OBJECT) {
            validate_level(sf->children, sf->n_children, f->children, f->n_children, p, ws, page);
        } else if (sf->type == SC_TYPE_ARRAY && f->type == EX_V_ARRAY) {
            for (size_t k = 0; k < f->n_children; k++) {
                const struct ex_field *it = &f->children[k];
                char ip[EX_VPATH_MAX + 32];
                snprintf(ip, sizeof ip, "%s[%zu]", p, k);
                if (sf->item_type == SC_TYPE_OBJECT && it->type == EX_V_OBJECT)
                    validate_level(sf->children, sf->n_children, it->children, it->n_children, ip,
                                   ws, it->prov.page);
                else if (sf->item_type == SC_TYPE_OBJECT && it->type != EX_V_NULL)
                    ex__warn(ws, EX_WARN_TYPE, it->prov.span_off, it->prov.span_len, ip,
                             "expected an object in '%s'", p);
            }
        } else if (sf->type == SC_TYPE_ARRAY && f->type != EX_V_ARRAY) {
            ex__warn(ws, EX_WARN_TYPE, so, sl, p, "expected a list for '%s'", p);
        }
        ws->page = saved;
    }
}

void ex__validate(const struct sc_schema *s, const struct ex_field *fields, size_t n,
                  struct ex__wsink *ws) {
    if (s)
        validate_level(s->fields, s->n_fields, fields, n, "", ws, 0);
}

static bool close_enough(double a, double b) {
    double tol = EX_ARITH_TOL_ABS + EX_ARITH_TOL_REL * fmax(fabs(a), fabs(b));
    return fabs(a - b) <= tol + 1e-9;
}

static const struct ex_field *num_field(const struct ex_field *f, size_t n, const char *const *names,
                                        size_t nn) {
    for (size_t i = 0; i < nn; i++) {
        const struct ex_field *x = find(f, n, names[i]);
        if (numeric(x))
            return x;
    }
    return NULL;
}

void ex__check_arithmetic(const struct sc_schema *s, const struct ex_field *fields, size_t n,
                          struct ex__wsink *ws) {
    if (!s || !(s->checks & SC_CHECK_INVOICE_ARITHMETIC))
        return;
    static const char *const items_n[] = {"line_items", "items"};
    static const char *const sub_n[] = {"subtotal"};
    static const char *const tax_n[] = {"total_tax", "tax"};
    static const char *const tot_n[] = {"invoice_total", "total"};
    const struct ex_field *items = NULL;
    for (size_t i = 0; i < 2 && !items; i++) {
        items = find(fields, n, items_n[i]);
        if (items && items->type != EX_V_ARRAY)
            items = NULL;
    }
    double sum = 0;
    bool all_amounts = items && items->n_children > 0;
    for (size_t k = 0; items && k < items->n_children; k++) {
        const struct ex_field *it = &items->children[k];
        const struct ex_field *q = find(it->children, it->n_children, "quantity");
        const struct ex_field *p = find(it->children, it->n_children, "unit_price");
        const struct ex_field *a = find(it->children, it->n_children, "amount");
        if (!numeric(a)) {
            all_amounts = false;
            continue;
        }
        sum += a->num;
        if (numeric(q) && numeric(p) && !close_enough(q->num * p->num, a->num)) {
            char path[EX_VPATH_MAX];
            snprintf(path, sizeof path, "%s[%zu].amount", items->name, k);
            ws->page = a->prov.page;
            ex__warn(ws, EX_WARN_ARITHMETIC, a->prov.span_off, a->prov.span_len, path,
                     "%s: quantity %g x unit_price %g = %g, but amount is %g", path, q->num, p->num,
                     q->num * p->num, a->num);
        }
    }
    ws->page = 0;
    const struct ex_field *sub = num_field(fields, n, sub_n, 1);
    const struct ex_field *tax = num_field(fields, n, tax_n, 2);
    const struct ex_field *tot = num_field(fields, n, tot_n, 2);
    if (all_amounts && sub && !close_enough(sum, sub->num))
        ex__warn(ws, EX_WARN_ARITHMETIC, 0, 0, sub->name,
                 "sum of %zu line amounts is %g, but %s is %g (difference %g)", items->n_children,
                 sum, sub->name, sub->num, sub->num - sum);
    if (sub && tax && tot && !close_enough(sub->num + tax->num, tot->num))
        ex__warn(ws, EX_WARN_ARITHMETIC, 0, 0, tot->name,
                 "%s %g + %s %g = %g, but %s is %g (difference %g)", sub->name, sub->num, tax->name,
                 tax->num, sub->num + tax->num, tot->name, tot->num, tot->num - sub->num - tax->num);
}

bool ex_warn_is_validation(enum ex_warn_code code) {
    return code == EX_WARN_REQUIRED || code == EX_WARN_TYPE || code == EX_WARN_ENUM ||
           code == EX_WARN_PATTERN || code == EX_WARN_ARITHMETIC;
}

bool ex_doc_valid(const struct ex_doc *doc, const struct ex_warning **first) {
    if (first)
        *first = NULL;
    for (size_t i = 0; i < doc->n_warnings; i++)
        if (ex_warn_is_validation(doc->warnings[i].code)) {
            if (first)
                *first = &doc->warnings[i];
            return false;
        }
    return true;
}
