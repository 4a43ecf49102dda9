/* Markdown and plain-text answers: pipe tables (header row, separator row, body rows) become
 * tables, HTML <table> fragments inside markdown go through the HTML parser, every other
 * non-empty line becomes a block (heading for '#', list item for '-', '*', '1.', text otherwise)
 * with its byte span. Thread-safe: no shared state. */
#include "ex_impl.h"
#include "dp_alloc.h"
#include "dp_limits.h"

#include <glib.h>
#include <string.h>

#define MD_MAX_HEADING 6

struct line {
    size_t off, len; /* without the line end */
};

static bool next_line(const char *s, size_t end, size_t *pos, struct line *ln) {
    if (*pos >= end)
        return false;
    ln->off = *pos;
    const char *nl = memchr(s + *pos, '\n', end - *pos);
    size_t e = nl ? (size_t)(nl - s) : end;
    ln->len = e - *pos;
    if (ln->len && s[e - 1] == '\r')
        ln->len--;
    *pos = nl ? e + 1 : end;
    return true;
}

static void trim(const char *s, size_t *off, size_t *len) {
    while (*len && (s[*off] == ' ' || s[*off] == '\t')) {
        (*off)++;
        (*len)--;
    }
    while (*len && (s[*off + *len - 1] == ' ' || s[*off + *len - 1] == '\t'))
        (*len)--;
}

static bool is_pipe_row(const char *s, struct line ln) {
    size_t o = ln.off, l = ln.len;
    trim(s, &o, &l);
    return l >= 2 && memchr(s + o, '|', l) != NULL && (s[o] == '|' || s[o + l - 1] == '|');
}

/* "|---|:---:|" */
static bool is_separator(const char *s, struct line ln) {
    size_t o = ln.off, l = ln.len;
    trim(s, &o, &l);
    bool dash = false;
    for (size_t i = 0; i < l; i++) {
        char c = s[o + i];
        if (c == '-')
            dash = true;
        else if (c != '|' && c != ':' && c != ' ' && c != '\t')
            return false;
    }
    return dash && memchr(s + o, '|', l) != NULL;
}

/* Splits one pipe row into cells (escaped \| kept in the text). A table stops taking cells at
 * EX_TABLE_MAX_CELLS (*capped set; the rest of the row is dropped), so a hostile row of
 * millions of pipes costs no more memory than the largest grid ex__table_build accepts. */
static enum dp_status split_row(const char *s, struct line ln, int row, bool header,
                                struct ex__tcell **cells, size_t *n, size_t *cap, bool *capped) {
    size_t o = ln.off, l = ln.len;
    trim(s, &o, &l);
    size_t e = o + l;
    if (o < e && s[o] == '|')
        o++;
    if (e > o && s[e - 1] == '|' && !(e - 1 > o && s[e - 2] == '\\'))
        e--;
    size_t start = o;
    for (size_t i = o; i <= e; i++) {
        if (i < e && !(s[i] == '|' && !(i > o && s[i - 1] == '\\')))
            continue;
        if (*n >= EX_TABLE_MAX_CELLS) {
            *capped = true;
            break;
        }
        if (!ex__grow((void **)cells, cap, *n, sizeof **cells))
            return DP_ERR_NOMEM;
        size_t co = start, cl = i - start;
        struct ex__tcell *c = &(*cells)[*n];
        memset(c, 0, sizeof *c);
        c->row = row;
        c->rowspan = c->colspan = 1;
        c->header = header;
        c->off = co;
        c->len = cl;
        trim(s, &co, &cl);
        char *raw = dp_strndup(s + co, cl);
        if (!raw)
            return DP_ERR_NOMEM;
        /* Unescape "\|" and decode entities, then clean. */
        char *w = raw;
        for (char *r = raw; *r; r++)
            if (!(*r == '\\' && r[1] == '|'))
                *w++ = *r;
        *w = '\0';
        ex__entities_decode(raw);
        c->text = ex__clean_collapse(raw, strlen(raw));
        dp_free(raw);
        if (!c->text)
            return DP_ERR_NOMEM;
        (*n)++;
        start = i + 1;
    }
    return DP_OK;
}

static enum dp_status add_table(struct ex__pagebuild *pb, struct ex__tcell *cells, size_t n,
                                int rows, size_t off, size_t len) {
    if (!ex__grow((void **)&pb->tables, &pb->cap_tables, pb->n_tables, sizeof *pb->tables)) {
        for (size_t i = 0; i < n; i++)
            dp_free(cells[i].text);
        return DP_ERR_NOMEM;
    }
    struct ex_table *t = &pb->tables[pb->n_tables];
    enum dp_status st = ex__table_build(t, cells, n, rows, pb->geom, pb->page, &pb->ws);
    if (st != DP_OK)
        return st;
    ex__prov_set(&t->prov, pb->geom, pb->page, NULL, off, len);
    pb->n_tables++;
    struct ex_block *b = ex__pb_block(pb, EX_BLOCK_TABLE, "table", NULL, NULL, NULL, off, len);
    if (!b)
        return DP_ERR_NOMEM;
    b->table = (int)pb->n_tables - 1;
    return DP_OK;
}

static enum dp_status text_line(struct ex__pagebuild *pb, struct line ln) {
    size_t o = ln.off, l = ln.len;
    trim(pb->raw, &o, &l);
    if (!l)
        return DP_OK;
    enum ex_block_kind kind = EX_BLOCK_TEXT;
    const char *tag = "line";
    int level = 0;
    size_t to = o, tl = l;
    const char *s = pb->raw;
    while (level < MD_MAX_HEADING && level < (int)l && s[o + (size_t)level] == '#')
        level++;
    if (level > 0 && (size_t)level < l && s[o + (size_t)level] == ' ') {
        kind = EX_BLOCK_HEADING;
        tag = "h";
        to += (size_t)level + 1, tl -= (size_t)level + 1;
    } else {
        level = 0;
        size_t k = 0;
        while (k < l && g_ascii_isdigit(s[o + k]))
            k++;
        if (l > 2 && (s[o] == '-' || s[o] == '*' || s[o] == '+') && s[o + 1] == ' ') {
            kind = EX_BLOCK_LIST_ITEM, tag = "li", to += 2, tl -= 2;
        } else if (k > 0 && k + 1 < l && (s[o + k] == '.' || s[o + k] == ')') && s[o + k + 1] == ' ') {
            kind = EX_BLOCK_LIST_ITEM, tag = "li", to += k + 2, tl -= k + 2;
        }
    }
    char *text = ex__clean_collapse(s + to, tl);
    if (!text)
        return DP_ERR_NOMEM;
    struct ex_block *b = ex__pb_block(pb, kind, tag, NULL, text, NULL, o, l);
    if (!b)
        return DP_ERR_NOMEM;
    b->level = level;
    return DP_OK;
}

static const char *find_ci(const char *s, size_t from, size_t end, const char *needle) {
    size_t nl = strlen(needle);
    for (size_t i = from; i + nl <= end; i++)
        if (!g_ascii_strncasecmp(s + i, needle, nl))
            return s + i;
    return NULL;
}

enum dp_status ex__markdown_parse(struct ex__pagebuild *pb, size_t off, size_t len) {
    const char *s = pb->raw;
    size_t end = off + len, pos = off;
    struct line ln;
    enum dp_status st = DP_OK;
    while (st == DP_OK && next_line(s, end, &pos, &ln)) {
        const char *tab = find_ci(s, ln.off, ln.off + ln.len, "<table");
        if (tab) {
            size_t t0 = (size_t)(tab - s);
            const char *close = find_ci(s, t0, end, "</table>");
            size_t t1 = close ? (size_t)(close - s) + strlen("</table>") : end;
            if (t0 > ln.off) {
                struct line pre = {ln.off, t0 - ln.off};
                st = text_line(pb, pre);
            }
            if (st == DP_OK)
                st = ex__html_parse(pb, t0, t1 - t0);
            pos = t1;
            continue;
        }
        struct line sep;
        size_t p2 = pos;
        if (is_pipe_row(s, ln) && next_line(s, end, &p2, &sep) && is_separator(s, sep)) {
            struct ex__tcell *cells = NULL;
            size_t n = 0, cap = 0;
            int rows = 0;
            bool capped = false;
            size_t t0 = ln.off, t1 = ln.off + ln.len;
            st = split_row(s, ln, rows++, true, &cells, &n, &cap, &capped);
            pos = p2;
            size_t p3 = pos;
            struct line body;
            while (st == DP_OK && next_line(s, end, &p3, &body) && is_pipe_row(s, body)) {
                if (!is_separator(s, body))
                    st = split_row(s, body, rows++, false, &cells, &n, &cap, &capped);
                t1 = body.off + body.len;
                pos = p3;
            }
            if (capped)
                ex__warn(&pb->ws, EX_WARN_LIMIT, t0, t1 - t0, NULL,
                         "markdown table of more than %d cells: the rest dropped",
                         EX_TABLE_MAX_CELLS);
            if (st == DP_OK)
                st = add_table(pb, cells, n, rows, t0, t1 - t0);
            else
                for (size_t i = 0; i < n; i++)
                    dp_free(cells[i].text);
            dp_free(cells);
            continue;
        }
        st = text_line(pb, ln);
    }
    return st;
}
