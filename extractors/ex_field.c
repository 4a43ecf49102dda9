/* Fields of a result (ex.h): typing one value against its schema entry (date, amount, currency,
 * percent, number, integer, boolean, string), deep copy and free, and the name tables of the
 * public enums. Thread-safe: no shared state. */
#include "ex_impl.h"
#include "dp_alloc.h"

#include <glib.h>
#include <math.h>
#include <string.h>

#define EX_NUM_TEXT_MAX 40

static const char *const VTYPE_NAMES[] = {"null", "string", "number", "integer", "boolean",
                                          "date", "amount", "percent", "object", "array"};
static const char *const BLOCK_NAMES[] = {"text",    "heading", "list_item", "image", "formula",
                                          "table",   "caption", "chart",     "other"};
static const char *const WARN_NAMES[] = {"?",          "syntax",     "truncated", "duplicate",
                                         "unknown_key", "required",  "type",      "enum",
                                         "pattern",    "ambiguous",  "arithmetic", "bbox",
                                         "limit",      "extra_text", "date", "currency",
                                         "pages"};
static const char *const SRC_NAMES[] = {"empty", "json", "html", "markdown", "text"};

#define NAME_OF(tab, i) ((size_t)(i) < sizeof tab / sizeof *tab ? tab[i] : "?")
const char *ex_vtype_name(enum ex_vtype t) { return NAME_OF(VTYPE_NAMES, t); }
const char *ex_block_kind_name(enum ex_block_kind k) { return NAME_OF(BLOCK_NAMES, k); }
const char *ex_warn_code_name(enum ex_warn_code c) { return NAME_OF(WARN_NAMES, c); }
const char *ex_source_kind_name(enum ex_source_kind k) { return NAME_OF(SRC_NAMES, k); }

void ex__field_free(struct ex_field *f) {
    if (!f)
        return;
    for (size_t i = 0; i < f->n_children; i++)
        ex__field_free(&f->children[i]);
    dp_free(f->children);
    dp_free(f->name);
    dp_free(f->key);
    dp_free(f->raw);
    dp_free(f->value);
    dp_free(f->alt);
    memset(f, 0, sizeof *f);
}

static bool dup_opt(char **dst, const char *src) {
    *dst = src ? dp_strdup(src) : NULL;
    return !src || *dst;
}

enum dp_status ex__field_copy(struct ex_field *dst, const struct ex_field *src) {
    *dst = *src;
    dst->name = dst->key = dst->raw = dst->value = dst->alt = NULL;
    dst->children = NULL;
    dst->n_children = 0;
    bool ok = dup_opt(&dst->name, src->name) && dup_opt(&dst->key, src->key) &&
              dup_opt(&dst->raw, src->raw) && dup_opt(&dst->value, src->value) &&
              dup_opt(&dst->alt, src->alt);
    if (ok && src->n_children) {
        dst->children = dp_calloc(src->n_children, sizeof *dst->children);
        ok = dst->children != NULL;
        for (size_t i = 0; ok && i < src->n_children; i++) {
            ok = ex__field_copy(&dst->children[i], &src->children[i]) == DP_OK;
            dst->n_children = i + 1;
        }
    }
    if (!ok) {
        ex__field_free(dst);
        return DP_ERR_NOMEM;
    }
    return DP_OK;
}

/* Both setters record NOMEM in the sink (sticky), so no branch can lose a value silently. */
static void set_value_num(struct ex_field *f, double v, struct ex__wsink *ws) {
    char buf[EX_NUM_TEXT_MAX];
    g_ascii_formatd(buf, sizeof buf, "%.15g", v);
    dp_free(f->value);
    f->value = dp_strdup(buf);
    f->num = v;
    if (!f->value)
        ws->status = DP_ERR_NOMEM;
}

static bool set_value_str(struct ex_field *f, const char *s, struct ex__wsink *ws) {
    dp_free(f->value);
    f->value = dp_strdup(s);
    if (!f->value)
        ws->status = DP_ERR_NOMEM;
    return f->value != NULL;
}

static bool word_is(const char *s, const char *const *words, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!g_ascii_strcasecmp(s, words[i]))
            return true;
    return false;
}

void ex__field_type(struct ex_field *f, const struct sc_field *sf, struct ex__wsink *ws,
                    const char *path) {
    if (f->type == EX_V_OBJECT || f->type == EX_V_ARRAY)
        return;
    const char *raw = f->raw ? f->raw : "";
    size_t off = f->prov.span_off, len = f->prov.span_len;
    if (f->type == EX_V_NULL || !*raw) {
        f->type = EX_V_NULL;
        return;
    }
    if (!f->value && !set_value_str(f, raw, ws)) {
        ws->status = DP_ERR_NOMEM;
        return;
    }
    if (!sf)
        return;
    double v;
    char cur[4] = "";
    switch (sf->format) {
    case SC_FORMAT_DATE: {
        char iso[11], alt[11];
        bool amb;
        if (!ex_norm_date(raw, iso, alt, &amb)) {
            ex__warn(ws, EX_WARN_TYPE, off, len, path, "'%.60s' is not a date", raw);
            return;
        }
        f->type = EX_V_DATE;
        if (!set_value_str(f, iso, ws)) {
            ws->status = DP_ERR_NOMEM;
            return;
        }
        if (amb) {
            f->ambiguous = true;
            f->alt = dp_strdup(alt);
            if (!f->alt)
                ws->status = DP_ERR_NOMEM;
            ex__warn(ws, EX_WARN_AMBIGUOUS, off, len, path,
                     "date '%.40s' is ambiguous: %s or %s (first reading stored)", raw, iso, alt);
        }
        return;
    }
    case SC_FORMAT_AMOUNT:
        if (f->type == EX_V_NUMBER || ex_norm_amount(raw, &v, cur)) {
            if (f->type == EX_V_NUMBER)
                v = f->num;
            f->type = EX_V_AMOUNT;
            memcpy(f->currency, cur, sizeof cur);
            set_value_num(f, v, ws);
        } else {
            ex__warn(ws, EX_WARN_TYPE, off, len, path, "'%.60s' is not an amount", raw);
        }
        return;
    case SC_FORMAT_CURRENCY:
        if (ex_norm_currency(raw, cur)) {
            f->type = EX_V_STRING;
            set_value_str(f, cur, ws);
        } else {
            ex__warn(ws, EX_WARN_TYPE, off, len, path, "'%.60s' is not a known currency", raw);
        }
        return;
    case SC_FORMAT_PERCENT:
        if (ex_norm_percent(raw, &v) || ex_norm_number(raw, &v)) {
            f->type = EX_V_PERCENT;
            set_value_num(f, v, ws);
        } else {
            ex__warn(ws, EX_WARN_TYPE, off, len, path, "'%.60s' is not a percentage", raw);
        }
        return;
    case SC_FORMAT_NONE:
        break;
    }
    static const char *const yes[] = {"true", "yes", "y", "x", "checked", "1", "on"};
    static const char *const no[] = {"false", "no", "n", "unchecked", "0", "off"};
    switch (sf->type) {
    case SC_TYPE_NUMBER:
    case SC_TYPE_INTEGER:
        if (f->type == EX_V_NUMBER || ex_norm_number(raw, &v) || ex_norm_amount(raw, &v, cur)) {
            if (f->type == EX_V_NUMBER)
                v = f->num;
            if (sf->type == SC_TYPE_INTEGER && v != floor(v)) {
                ex__warn(ws, EX_WARN_TYPE, off, len, path, "'%.60s' is not an integer", raw);
                f->type = EX_V_NUMBER;
            } else {
                f->type = sf->type == SC_TYPE_INTEGER ? EX_V_INTEGER : EX_V_NUMBER;
            }
            set_value_num(f, v, ws);
        } else {
            ex__warn(ws, EX_WARN_TYPE, off, len, path, "'%.60s' is not a number", raw);
            f->type = EX_V_STRING;
        }
        break;
    case SC_TYPE_BOOLEAN:
        if (f->type == EX_V_BOOL)
            break;
        if (word_is(raw, yes, sizeof yes / sizeof *yes) || word_is(raw, no, sizeof no / sizeof *no)) {
            f->boolean = word_is(raw, yes, sizeof yes / sizeof *yes);
            f->type = EX_V_BOOL;
            set_value_str(f, f->boolean ? "true" : "false", ws);
        } else {
            ex__warn(ws, EX_WARN_TYPE, off, len, path, "'%.60s' is not a boolean", raw);
            f->type = EX_V_STRING;
        }
        break;
    default:
        f->type = EX_V_STRING; /* numbers the model wrote for a string field stay as written */
        break;
    }
    if (!f->value)
        ws->status = DP_ERR_NOMEM;
}
