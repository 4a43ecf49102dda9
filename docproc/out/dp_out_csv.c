/* CSV per table (RFC 4180: UTF-8, CRLF records, fields with comma/quote/CR/LF quoted and quotes
 * doubled), its parser for round trips, the output-format list parser and name sanitising for
 * bundle entries. Thread-safe: pure functions. */
#include "dp_out.h"
#include "dp_alloc.h"
#include "dp_buf.h"
#include "dp_limits.h"

#include <string.h>

#define CSV_MAX_ROWS 10000000
#define CSV_MAX_COLS 100000

/* A plain number ("-12.50", "+3", "1,234.5"): it cannot be a formula, so it stays as is. */
static bool plain_number(const char *s) {
    const char *p = s;
    if (*p == '-' || *p == '+')
        p++;
    bool digit = false;
    for (; *p; p++) {
        if (*p >= '0' && *p <= '9')
            digit = true;
        else if (*p != '.' && *p != ',')
            return false;
    }
    return digit;
}

/* OWASP CSV injection: cells starting with these are run as formulas by spreadsheets. */
static bool formula_like(const char *s) {
    return (s[0] == '=' || s[0] == '+' || s[0] == '-' || s[0] == '@' || s[0] == '\t' ||
            s[0] == '\r') &&
           !plain_number(s);
}

static void csv_field(struct dp_buf *b, const char *s, bool safe) {
    bool guard = safe && formula_like(s);
    bool quote = guard || s[0] == ' ' || (s[0] && s[strlen(s) - 1] == ' ') ||
                 strpbrk(s, ",\"\r\n") != NULL;
    if (!quote) {
        dp_buf_puts(b, s);
        return;
    }
    dp_buf_putc(b, '"');
    if (guard)
        dp_buf_putc(b, '\'');
    for (const char *p = s; *p; p++) {
        if (*p == '"')
            dp_buf_putc(b, '"');
        dp_buf_putc(b, *p);
    }
    dp_buf_putc(b, '"');
}

struct dp_csv_opts dp_csv_opts_default(void) {
    struct dp_csv_opts o = {.span = DP_CSV_SPAN_REPEAT, .formula_safe = true, .bom = false};
    return o;
}

enum dp_status dp_out_csv_table(const struct ex_table *t, enum dp_csv_span span,
                                struct dp_buf *out, struct dp_err *err) {
    struct dp_csv_opts o = dp_csv_opts_default();
    o.span = span;
    return dp_out_csv_table_opts(t, &o, out, err);
}

enum dp_status dp_out_csv_table_opts(const struct ex_table *t, const struct dp_csv_opts *o,
                                     struct dp_buf *out, struct dp_err *err) {
    enum dp_csv_span span = o->span;
    if (o->bom)
        dp_buf_puts(out, "\xEF\xBB\xBF");
    for (int r = 0; r < t->n_rows; r++) {
        for (int c = 0; c < t->n_cols; c++) {
            const struct ex_cell *x = &t->cells[(size_t)r * (size_t)t->n_cols + (size_t)c];
            const char *text = x->text;
            if (!text && span == DP_CSV_SPAN_REPEAT)
                text = t->cells[(size_t)x->orow * (size_t)t->n_cols + (size_t)x->ocol].text;
            if (c)
                dp_buf_putc(out, ',');
            csv_field(out, text ? text : "", o->formula_safe);
        }
        dp_buf_puts(out, "\r\n");
    }
    if (out->status != DP_OK)
        return dp_err_set(err, out->status, "writing CSV: %s", dp_status_str(out->status));
    return DP_OK;
}

void dp_csv_free(char **cells, int rows, int cols) {
    if (!cells)
        return;
    size_t n = (size_t)rows * (size_t)cols;
    for (size_t i = 0; i < n; i++)
        dp_free(cells[i]);
    dp_free(cells);
}

struct csv_row {
    char **f;
    size_t n, cap;
};

enum dp_status dp_csv_parse(const char *data, size_t len, char ***out, int *rows, int *cols,
                            struct dp_err *err) {
    *out = NULL;
    *rows = *cols = 0;
    struct csv_row *rv = NULL;
    size_t nr = 0, capr = 0, maxc = 0;
    enum dp_status st = DP_OK;
    size_t i = 0;
    while (i < len && st == DP_OK) {
        if (nr == capr) {
            size_t nc = capr ? capr * 2 : 16;
            struct csv_row *p = nr >= CSV_MAX_ROWS ? NULL : dp_reallocarray(rv, nc, sizeof *p);
            if (!p) {
                st = nr >= CSV_MAX_ROWS ? DP_ERR_LIMIT : DP_ERR_NOMEM;
                break;
            }
            rv = p;
            capr = nc;
        }
        struct csv_row *row = &rv[nr++];
        memset(row, 0, sizeof *row);
        for (;;) { /* one field */
            struct dp_buf f;
            dp_buf_init(&f, len + 1);
            if (i < len && data[i] == '"') {
                i++;
                while (i < len) {
                    if (data[i] == '"' && i + 1 < len && data[i + 1] == '"') {
                        dp_buf_putc(&f, '"');
                        i += 2;
                    } else if (data[i] == '"') {
                        i++;
                        break;
                    } else {
                        dp_buf_putc(&f, data[i++]);
                    }
                }
            }
            while (i < len && data[i] != ',' && data[i] != '\r' && data[i] != '\n')
                dp_buf_putc(&f, data[i++]);
            if (row->n == row->cap) {
                size_t nc = row->cap ? row->cap * 2 : 8;
                char **p = row->n >= CSV_MAX_COLS ? NULL : dp_reallocarray(row->f, nc, sizeof *p);
                if (!p) {
                    dp_buf_free(&f);
                    st = row->n >= CSV_MAX_COLS ? DP_ERR_LIMIT : DP_ERR_NOMEM;
                    break;
                }
                row->f = p;
                row->cap = nc;
            }
            if (f.status != DP_OK) {
                st = f.status;
                dp_buf_free(&f);
                break;
            }
            row->f[row->n] = f.data ? dp_buf_steal(&f, NULL) : dp_strdup("");
            if (!row->f[row->n]) {
                st = DP_ERR_NOMEM;
                break;
            }
            row->n++;
            if (i < len && data[i] == ',') {
                i++;
                continue;
            }
            if (i < len && data[i] == '\r')
                i++;
            if (i < len && data[i] == '\n')
                i++;
            break;
        }
        if (row->n > maxc)
            maxc = row->n;
    }
    size_t total = 0;
    if (st == DP_OK && (!dp_size_mul(&total, nr, maxc) || nr > INT32_MAX || maxc > INT32_MAX))
        st = DP_ERR_LIMIT;
    char **cells = NULL;
    if (st == DP_OK && total) {
        cells = dp_calloc(total, sizeof *cells);
        if (!cells)
            st = DP_ERR_NOMEM;
    }
    for (size_t r = 0; r < nr; r++) {
        for (size_t c = 0; c < maxc && st == DP_OK && cells; c++) {
            char **dst = &cells[r * maxc + c];
            if (c < rv[r].n) {
                *dst = rv[r].f[c];
                rv[r].f[c] = NULL;
            } else if (!(*dst = dp_strdup(""))) {
                st = DP_ERR_NOMEM;
            }
        }
        for (size_t c = 0; c < rv[r].n; c++)
            dp_free(rv[r].f[c]);
        dp_free(rv[r].f);
    }
    dp_free(rv);
    if (st != DP_OK) {
        dp_csv_free(cells, (int)nr, (int)maxc);
        return dp_err_set(err, st, "parsing CSV: %s", dp_status_str(st));
    }
    *out = cells;
    *rows = (int)nr;
    *cols = (int)maxc;
    return DP_OK;
}

bool dp_out_parse_formats(const char *list, unsigned *out) {
    static const struct {
        const char *name;
        unsigned bit;
    } names[] = {{"json", DP_OUT_JSON}, {"xml", DP_OUT_XML}, {"csv", DP_OUT_CSV},
                 {"raw", DP_OUT_RAW},   {"all", DP_OUT_ALL}, {"pdf", DP_OUT_PDF},
                 {"alto", DP_OUT_ALTO}, {"hocr", DP_OUT_HOCR}, {"page", DP_OUT_PAGE},
                 {"md", DP_OUT_MD},     {"txt", DP_OUT_TXT}};
    *out = 0;
    const char *p = list;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        bool ok = false;
        for (size_t i = 0; i < sizeof names / sizeof *names && !ok; i++)
            if (strlen(names[i].name) == n && !strncmp(p, names[i].name, n)) {
                *out |= names[i].bit;
                ok = true;
            }
        if (!ok)
            return false;
        p = e ? e + 1 : p + n;
    }
    return *out != 0;
}

char *dp_out_sanitize_name(const char *raw_name) {
    char *name = ex_text_clean(raw_name, strlen(raw_name)); /* valid UTF-8 from here on */
    if (!name)
        return NULL;
    size_t n = strlen(name);
    char *o = dp_malloc((n < DP_OUT_MAX_NAME ? n : DP_OUT_MAX_NAME) + 2);
    if (!o) {
        dp_free(name);
        return NULL;
    }
    size_t k = 0;
    for (size_t i = 0; i < n && k < DP_OUT_MAX_NAME; i++) {
        unsigned char c = (unsigned char)name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || c == '.' || c >= 0x80;
        if (c == '.' && (k == 0 || o[k - 1] == '.'))
            ok = false; /* no leading dot, no ".." */
        o[k++] = ok ? (char)c : '_';
    }
    /* Do not cut a UTF-8 sequence in half. */
    while (k > 0 && ((unsigned char)o[k - 1] & 0xC0) == 0x80) {
        size_t s = k - 1;
        while (s > 0 && ((unsigned char)o[s] & 0xC0) == 0x80)
            s--;
        unsigned char lead = (unsigned char)o[s];
        size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
        if (k - s == need)
            break;
        k = s;
    }
    if (k > 0 && ((unsigned char)o[k - 1] >= 0xC0))
        k--;
    if (k == 0)
        o[k++] = '_';
    o[k] = '\0';
    dp_free(name);
    return o;
}

char *dp_out_sanitize_path(const char *path) {
    struct dp_buf b;
    dp_buf_init(&b, strlen(path) * 2 + 16); /* a component grows by its '_' at most */
    const char *p = path;
    while (*p) {
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n) {
            char *comp = dp_strndup(p, n);
            char *s = comp ? dp_out_sanitize_name(comp) : NULL;
            dp_free(comp);
            if (!s) {
                dp_buf_free(&b);
                return NULL;
            }
            if (b.len)
                dp_buf_putc(&b, '/');
            dp_buf_puts(&b, s);
            dp_free(s);
        }
        p = e ? e + 1 : p + n;
    }
    if (!b.len)
        dp_buf_putc(&b, '_');
    if (b.status != DP_OK) {
        dp_buf_free(&b);
        return NULL;
    }
    return dp_buf_steal(&b, NULL);
}
