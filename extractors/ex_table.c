/* Table grids of libex: expands source cells with rowspan/colspan into a rectangular grid that
 * keeps the span information (every covered position points at its origin cell). Spans that
 * overflow the table are clipped, spans that would overlap an occupied position are cut, both with
 * a warning; short rows are padded with empty cells. Used by the HTML and markdown parsers.
 * Thread-safe: no shared state. */
#include "ex_impl.h"
#include "dp_alloc.h"
#include "dp_limits.h"

#include <string.h>

void ex__table_free(struct ex_table *t) {
    if (!t)
        return;
    size_t n = (size_t)t->n_rows * (size_t)t->n_cols;
    for (size_t i = 0; t->cells && i < n; i++)
        dp_free(t->cells[i].text);
    dp_free(t->cells);
    dp_free(t->caption);
    memset(t, 0, sizeof *t);
}

struct placed {
    int row, col, rowspan, colspan;
};

struct occ {
    int *owner; /* (n_rows, cap_cols) source index or -1 */
    int n_rows, cap_cols;
};

static enum dp_status occ_cols(struct occ *o, int need) {
    if (need <= o->cap_cols)
        return DP_OK;
    int nc = o->cap_cols ? o->cap_cols : 8;
    while (nc < need)
        nc *= 2;
    size_t total;
    if (!dp_size_mul(&total, (size_t)o->n_rows, (size_t)nc) || total > EX_TABLE_MAX_CELLS * 2)
        return DP_ERR_LIMIT;
    int *p = dp_malloc(total * sizeof *p);
    if (!p)
        return DP_ERR_NOMEM;
    for (int r = 0; r < o->n_rows; r++)
        for (int c = 0; c < nc; c++)
            p[(size_t)r * (size_t)nc + (size_t)c] =
                c < o->cap_cols ? o->owner[(size_t)r * (size_t)o->cap_cols + (size_t)c] : -1;
    dp_free(o->owner);
    o->owner = p;
    o->cap_cols = nc;
    return DP_OK;
}

static int *at(struct occ *o, int r, int c) {
    return &o->owner[(size_t)r * (size_t)o->cap_cols + (size_t)c];
}

enum dp_status ex__table_build(struct ex_table *out, struct ex__tcell *src, size_t n_src,
                               int n_rows, const struct ex_geom *g, int page,
                               struct ex__wsink *ws) {
    memset(out, 0, sizeof *out);
    enum dp_status st = DP_OK;
    struct occ o = {.n_rows = n_rows};
    struct placed *pl = n_src ? dp_calloc(n_src, sizeof *pl) : NULL;
    int *cursor = n_rows > 0 ? dp_calloc((size_t)n_rows, sizeof *cursor) : NULL;
    int n_cols = 0;
    if ((n_src && !pl) || (n_rows > 0 && !cursor))
        st = DP_ERR_NOMEM;
    for (size_t i = 0; i < n_src && st == DP_OK; i++) {
        struct ex__tcell *s = &src[i];
        pl[i].row = -1;
        if (s->row < 0 || s->row >= n_rows)
            continue;
        long rs = s->rowspan, cs = s->colspan;
        int r = s->row;
        if (rs == 0 || rs > n_rows - r) {
            if (rs != 0)
                ex__warn(ws, EX_WARN_SYNTAX, s->off, s->len, NULL,
                         "rowspan %ld overflows the table at row %d: clipped to %d", rs, r + 1,
                         n_rows - r);
            rs = n_rows - r;
        }
        if (rs < 0)
            rs = 1;
        if (cs < 1)
            cs = 1;
        if (cs > EX_TABLE_MAX_SPAN) {
            ex__warn(ws, EX_WARN_LIMIT, s->off, s->len, NULL, "colspan %ld clipped to %d", cs,
                     EX_TABLE_MAX_SPAN);
            cs = EX_TABLE_MAX_SPAN;
        }
        int c = cursor[r];
        for (;;) {
            st = occ_cols(&o, c + 1);
            if (st != DP_OK || *at(&o, r, c) < 0)
                break;
            c++;
        }
        if (st == DP_OK)
            st = occ_cols(&o, c + (int)cs);
        if (st == DP_ERR_NOMEM)
            break;
        if (st != DP_OK) {
            ex__warn(ws, EX_WARN_LIMIT, s->off, s->len, NULL,
                     "table wider than %d cells: rest of the row dropped", EX_TABLE_MAX_CELLS);
            st = DP_OK;
            break;
        }
        /* Cut the colspan at the first position already covered by a rowspan from above. */
        for (int k = 1; k < cs; k++) {
            if (*at(&o, r, c + k) >= 0) {
                ex__warn(ws, EX_WARN_SYNTAX, s->off, s->len, NULL,
                         "colspan %ld at row %d overlaps another cell: cut to %d", cs, r + 1, k);
                cs = k;
                break;
            }
        }
        for (int rr = 1; rr < rs; rr++) {
            bool clash = false;
            for (int k = 0; k < cs && !clash; k++)
                clash = *at(&o, r + rr, c + k) >= 0;
            if (clash) {
                ex__warn(ws, EX_WARN_SYNTAX, s->off, s->len, NULL,
                         "rowspan %ld at row %d overlaps another cell: cut to %d", rs, r + 1, rr);
                rs = rr;
                break;
            }
        }
        for (int rr = 0; rr < rs; rr++)
            for (int k = 0; k < cs; k++)
                *at(&o, r + rr, c + k) = (int)i;
        pl[i] = (struct placed){r, c, (int)rs, (int)cs};
        cursor[r] = c + (int)cs;
        if (c + (int)cs > n_cols)
            n_cols = c + (int)cs;
    }
    size_t total = 0;
    if (st == DP_OK && (!dp_size_mul(&total, (size_t)n_rows, (size_t)n_cols) ||
                        total > EX_TABLE_MAX_CELLS)) {
        ex__warn(ws, EX_WARN_LIMIT, 0, 0, NULL, "table of %d x %d cells exceeds %d: dropped",
                 n_rows, n_cols, EX_TABLE_MAX_CELLS);
        n_cols = 0;
        total = 0;
    }
    if (st == DP_OK && total) {
        out->cells = dp_calloc(total, sizeof *out->cells);
        if (!out->cells)
            st = DP_ERR_NOMEM;
    }
    if (st == DP_OK && total) {
        out->n_rows = n_rows;
        out->n_cols = n_cols;
        for (int r = 0; r < n_rows; r++) {
            for (int c = 0; c < n_cols; c++) {
                struct ex_cell *cell = &out->cells[(size_t)r * (size_t)n_cols + (size_t)c];
                int owner = *at(&o, r, c);
                cell->row = r;
                cell->col = c;
                if (owner < 0) { /* padding of a short row */
                    cell->rowspan = cell->colspan = 1;
                    cell->orow = r;
                    cell->ocol = c;
                    cell->text = dp_strdup("");
                    cell->prov.page = page;
                    if (!cell->text)
                        st = DP_ERR_NOMEM;
                    continue;
                }
                struct placed *p = &pl[owner];
                struct ex__tcell *s = &src[owner];
                cell->rowspan = p->rowspan;
                cell->colspan = p->colspan;
                cell->orow = p->row;
                cell->ocol = p->col;
                cell->header = s->header;
                ex__prov_set(&cell->prov, g, page, s->has_box ? &s->box : NULL, s->off, s->len);
                if (p->row == r && p->col == c) {
                    cell->text = s->text ? s->text : dp_strdup("");
                    s->text = NULL;
                    if (!cell->text)
                        st = DP_ERR_NOMEM;
                }
            }
        }
    }
    for (size_t i = 0; i < n_src; i++)
        DP_FREE(src[i].text);
    dp_free(o.owner);
    dp_free(pl);
    dp_free(cursor);
    if (st != DP_OK)
        ex__table_free(out);
    return st;
}
