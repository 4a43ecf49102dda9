/* OOM torture (curl -t / SQLite style): allocation N fails, for every N, while a small document
 * (HTML with a spanned table, grounded invoice JSON with line items, truncated spotting JSON,
 * markdown) is parsed, merged, validated and written as JSON, XML and CSV. Each run must end with
 * a clean status (DP_ERR_NOMEM reported, never a crash); ASan/LSan catch leaks. The loop ends when
 * a run's output equals the reference, i.e. when N exceeds the allocations made. */
#include "dp_alloc.h"
#include "dp_buf.h"
#include "dp_limits.h"
#include "dp_out.h"
#include "ex.h"
#include "sc.h"
#include "t.h"

#include <libxml/parser.h>

#define OOM_MAX_RUNS 20000

static const char *const PAGES[] = {
    "```html\n<h1 data-bbox=\"1 2 30 40\">T</h1><table><tr><td rowspan=\"2\">a</td><td>b</td></tr>"
    "<tr><td>c</td></tr></table><p>x</p>\n```",
    "Sure:\n```json\n{\"invoice_id\": {\"value\": \"A-1\", \"bbox_2d\": [1, 2, 3, 4]}, \"invoice_date\": \"03/04/2024\","
    " \"invoice_total\": \"RM 9,50\", \"subtotal\": 9, \"total_tax\": 1, 'x': [1, 2,],"
    " \"line_items\": [{\"quantity\": 2, \"unit_price\": 3, \"amount\": 7}], \"x\": 2}\n```",
    "[{\"bbox_2d\": [1, 2, 3, 4], \"text_content\": \"a\"}, {\"bbox_2d\": [5, 6, 7, 8], \"text_content\": \"b",
    "| h | i |\n|---|---|\n| 1 | 2 |\nKey: value\n",
};

/* Runs the whole pipeline; returns the status and fills out (JSON + XML + CSV) on success. */
static enum dp_status run(const struct sc_schema *s, struct dp_buf *out) {
    struct dp_err err = {0};
    struct ex_doc *d = NULL;
    enum dp_status st = ex_doc_new(&d, "oom.pdf", &err);
    struct ex_stamp stamp = {.docproc_version = "t", .schema_name = s->name, .prompt = s->prompt};
    if (st == DP_OK)
        st = ex_doc_set_stamp(d, &stamp, &err);
    struct ex_geom g = {.model_w = 100, .model_h = 100, .page_w = 200, .page_h = 200,
                        .pdf_w_pt = 100, .pdf_h_pt = 100};
    for (size_t i = 0; st == DP_OK && i < sizeof PAGES / sizeof *PAGES; i++) {
        struct ex_page *p = NULL;
        st = ex_page_parse(&p, s, PAGES[i], strlen(PAGES[i]), &g, (int)i + 1, false, &err);
        if (st == DP_OK)
            st = ex_doc_add_page(d, p, &err);
    }
    if (st == DP_OK)
        st = ex_doc_finish(d, s, &err);
    if (st == DP_OK)
        st = dp_out_json(d, out, &err);
    if (st == DP_OK)
        st = dp_out_xml(d, out, &err);
    for (size_t i = 0; st == DP_OK && i < d->n_pages; i++)
        for (size_t k = 0; st == DP_OK && k < d->pages[i]->n_tables; k++)
            st = dp_out_csv_table(&d->pages[i]->tables[k], DP_CSV_SPAN_REPEAT, out, &err);
    if (st != DP_OK && err.code == DP_OK)
        T_FAIL_AT("status %d without an error message", st);
    ex_doc_free(d);
    return st;
}

int main(void) {
    xmlInitParser();
    struct dp_err err = {0};
    struct sc_schema *s = NULL;
    T_CHECK(sc_schema_load(&s, "invoice", &err) == DP_OK);
    if (!s)
        return t_done();
    struct dp_buf ref;
    dp_buf_init(&ref, DP_MAX_TEXT_BYTES);
    T_CHECK(run(s, &ref) == DP_OK && ref.len > 0);
    int runs = 0, nomem = 0;
    for (long n = 1; n <= OOM_MAX_RUNS; n++) {
        struct dp_buf out;
        dp_buf_init(&out, DP_MAX_TEXT_BYTES);
        dp_alloc_fail_after(n);
        enum dp_status st = run(s, &out);
        dp_alloc_fail_after(0);
        runs++;
        bool same = st == DP_OK && out.len == ref.len && !memcmp(out.data, ref.data, ref.len);
        dp_buf_free(&out);
        if (same)
            break;
        if (st == DP_OK) {
            T_FAIL_AT("allocation %ld failed silently: output differs from the reference", n);
            break;
        }
        if (st != DP_ERR_NOMEM && st != DP_ERR_LIMIT) {
            T_FAIL_AT("allocation %ld: status %d, expected NOMEM", n, st);
            break;
        }
        nomem++;
    }
    T_CHECK_MSG(runs < OOM_MAX_RUNS, "pipeline did not finish within %d failing allocations", OOM_MAX_RUNS);
    T_CHECK(nomem > 100);
    printf("%d failing allocations exercised\n", nomem);
    dp_buf_free(&ref);
    sc_schema_free(s);
    return t_done();
}
