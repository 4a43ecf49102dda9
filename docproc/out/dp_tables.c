/* `docproc tables` output: every table of a document as CSV (via the dpout CSV writer) and JSON
 * with cell boxes in model, page and PDF coordinates; a table that continues on the next page
 * (the last table of page p and the first of page p+1 have the same column count, and the
 * second has no header row or repeats the first's header rows, of any depth) is stitched into
 * one, its parts recorded. Written into a bundle, so a directory and a zip hold the same files.
 * Not thread-safe per document; no global state. */
#include "dp_out.h"
#include "dp_alloc.h"
#include "dp_buf.h"
#include "dp_fs.h"
#include "dp_limits.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PATH_BYTES 4096

struct part {
    int page, index;          /* 1-based page, 0-based table index on that page */
    const struct ex_table *t;
    int skip_rows;            /* repeated header rows dropped when stitching */
};

static bool row_is_header(const struct ex_table *t, int r) {
    for (int c = 0; c < t->n_cols; c++)
        if (!t->cells[(size_t)r * (size_t)t->n_cols + (size_t)c].header)
            return false;
    return t->n_cols > 0;
}

static bool rows_equal(const struct ex_table *a, int ra, const struct ex_table *b, int rb) {
    for (int c = 0; c < a->n_cols; c++) {
        const char *x = a->cells[(size_t)ra * (size_t)a->n_cols + (size_t)c].text;
        const char *y = b->cells[(size_t)rb * (size_t)b->n_cols + (size_t)c].text;
        if (strcmp(x ? x : "", y ? y : ""))
            return false;
    }
    return true;
}

/* How many leading rows of next to drop when it continues prev, or -1 if it does not: next
 * starts without a header row (0), or repeats prev's header rows, of any depth (a header of
 * two rows with a rowspan/colspan is two rows: both dropped, none left as data). A header that
 * differs from prev's starts another table. */
static int continues(const struct ex_table *prev, const struct ex_table *next) {
    if (prev->n_cols != next->n_cols || next->n_rows == 0 || prev->n_rows == 0)
        return -1;
    if (!row_is_header(next, 0))
        return 0;
    int depth = 0; /* prev's header rows */
    while (depth < prev->n_rows && row_is_header(prev, depth))
        depth++;
    int k = 0;
    while (k < depth && k < next->n_rows && rows_equal(prev, k, next, k))
        k++;
    if (k == 0 || (k < next->n_rows && row_is_header(next, k)))
        return -1; /* another header, or one only partly the same */
    return k;
}

static json_t *box_json(const struct ex_box *b) {
    return json_pack("[ffff]", b->x1, b->y1, b->x2, b->y2);
}

static void prov_json(json_t *o, const struct ex_prov *p) {
    json_object_set_new(o, "page", json_integer(p->page));
    if (!p->has_box)
        return;
    json_object_set_new(o, "bbox_model", box_json(&p->model));
    json_object_set_new(o, "bbox_page", box_json(&p->page_px));
    if (p->has_pdf)
        json_object_set_new(o, "bbox_pdf", box_json(&p->pdf_pt));
}

/* Adds one stitched table (parts[0..n)) as <prefix>/table-<id>.csv and .json to b. */
static enum dp_status write_one(const struct part *parts, int n, int id, struct dp_bundle *b,
                                const char *prefix, const struct dp_csv_opts *csv_opts,
                                struct dp_err *err) {
    int cols = parts[0].t->n_cols, rows = 0;
    for (int i = 0; i < n; i++)
        rows += parts[i].t->n_rows - parts[i].skip_rows;
    size_t ncell;
    if (!dp_size_mul(&ncell, (size_t)rows, (size_t)cols))
        return dp_err_set(err, DP_ERR_LIMIT, "table %d: %d x %d cells", id, rows, cols);
    struct ex_cell *cells = dp_calloc(ncell ? ncell : 1, sizeof *cells); /* (rows, cols) */
    json_t *j = json_object(), *jparts = json_array(), *jcells = json_array();
    if (!cells || !j || !jparts || !jcells) {
        dp_free(cells);
        json_decref(j);
        json_decref(jparts);
        json_decref(jcells);
        return dp_err_set(err, DP_ERR_NOMEM, "table %d: out of memory", id);
    }
    int r0 = 0;
    for (int i = 0; i < n; i++) {
        const struct ex_table *t = parts[i].t;
        int kept = t->n_rows - parts[i].skip_rows;
        json_t *jp = json_pack("{sisisisi}", "page", parts[i].page, "table", parts[i].index,
                               "first_row", r0, "rows", kept);
        if (jp) {
            prov_json(jp, &t->prov); /* the part's box (the model boxes tables, not cells) */
            json_object_set_new(jp, "page", json_integer(parts[i].page));
            json_array_append_new(jparts, jp);
        }
        for (int r = parts[i].skip_rows; r < t->n_rows; r++)
            for (int c = 0; c < cols; c++) {
                const struct ex_cell *src = &t->cells[(size_t)r * (size_t)cols + (size_t)c];
                struct ex_cell *dst = &cells[(size_t)(r0 + r - parts[i].skip_rows) * (size_t)cols +
                                             (size_t)c];
                *dst = *src; /* shallow: text stays owned by the page */
                dst->row = r0 + r - parts[i].skip_rows;
                dst->orow = src->orow - parts[i].skip_rows + r0;
                if (dst->orow < r0)
                    dst->orow = r0; /* span from a dropped header row */
                if (!src->text)
                    continue;
                json_t *jc = json_pack("{sisisisiss}", "row", dst->row, "col", c, "rowspan",
                                       src->rowspan, "colspan", src->colspan, "text", src->text);
                if (jc) {
                    json_object_set_new(jc, "header", json_boolean(src->header));
                    if (src->has_conf) /* from the cell's tokens (docs/constrain.md) */
                        json_object_set_new(jc, "confidence", json_real(src->conf));
                    prov_json(jc, &src->prov);
                    json_array_append_new(jcells, jc);
                }
            }
        r0 += kept;
    }
    struct ex_table merged = *parts[0].t;
    merged.n_rows = rows;
    merged.cells = cells;
    json_object_set_new(j, "id", json_integer(id));
    json_object_set_new(j, "n_rows", json_integer(rows));
    json_object_set_new(j, "n_cols", json_integer(cols));
    if (parts[0].t->caption)
        json_object_set_new(j, "caption", json_string(parts[0].t->caption));
    json_object_set_new(j, "stitched", json_boolean(n > 1));
    json_object_set_new(j, "parts", jparts);
    json_object_set_new(j, "cells", jcells);
    struct dp_buf csv;
    dp_buf_init(&csv, DP_MAX_TEXT_BYTES);
    enum dp_status st = dp_out_csv_table_opts(&merged, csv_opts, &csv, err);
    char path[PATH_BYTES];
    if (st == DP_OK && csv.status != DP_OK)
        st = dp_err_set(err, csv.status, "table %d: CSV too large", id);
    if (st == DP_OK) {
        snprintf(path, sizeof path, "%s/table-%03d.csv", prefix, id);
        st = dp_bundle_add_file(b, path, csv.data ? csv.data : "", csv.len, err);
    }
    char *js = st == DP_OK ? json_dumps(j, JSON_INDENT(1) | JSON_ENSURE_ASCII) : NULL;
    if (st == DP_OK && !js)
        st = dp_err_set(err, DP_ERR_NOMEM, "table %d: out of memory", id);
    if (st == DP_OK) {
        snprintf(path, sizeof path, "%s/table-%03d.json", prefix, id);
        st = dp_bundle_add_file(b, path, js, strlen(js), err);
    }
    free(js);
    dp_buf_free(&csv);
    json_decref(j);
    dp_free(cells);
    return st;
}

enum dp_status dp_tables_add(struct dp_bundle *b, const struct ex_doc *doc, const char *prefix,
                             const struct dp_csv_opts *csv_opts, int *n_tables,
                             struct dp_err *err) {
    *n_tables = 0;
    enum dp_status st = DP_OK;
    int total = 0;
    for (size_t p = 0; p < doc->n_pages; p++)
        total += (int)doc->pages[p]->n_tables;
    if (st != DP_OK || total == 0)
        return st;
    struct part *parts = dp_reallocarray(NULL, (size_t)total, sizeof *parts);
    if (!parts)
        return dp_err_set(err, DP_ERR_NOMEM, "out of memory listing tables");
    int n = 0;
    for (size_t p = 0; p < doc->n_pages; p++)
        for (size_t k = 0; k < doc->pages[p]->n_tables; k++)
            parts[n++] = (struct part){.page = doc->pages[p]->number, .index = (int)k,
                                       .t = &doc->pages[p]->tables[k]};
    int start = 0, id = 0;
    for (int i = 1; i <= n && st == DP_OK; i++) {
        bool joins = false;
        if (i < n) {
            const struct ex_page *prev_pg = NULL;
            for (size_t p = 0; p < doc->n_pages; p++)
                if (doc->pages[p]->number == parts[i - 1].page)
                    prev_pg = doc->pages[p];
            bool last_on_page = prev_pg && (size_t)parts[i - 1].index + 1 == prev_pg->n_tables;
            int skip = continues(parts[i - 1].t, parts[i].t);
            joins = parts[i].page == parts[i - 1].page + 1 && parts[i].index == 0 &&
                    last_on_page && skip >= 0;
            if (joins)
                parts[i].skip_rows = skip;
        }
        if (!joins) {
            st = write_one(parts + start, i - start, ++id, b, prefix, csv_opts, err);
            start = i;
        }
    }
    dp_free(parts);
    *n_tables = id;
    return st;
}
