/* Tables: HTML rowspan/colspan expanded into a rectangular grid keeping span info (including
 * spans that overlap or overflow), markdown pipe tables, and CSV round trips in both span modes. */
#include "dp_alloc.h"
#include "dp_limits.h"
#include "dp_out.h"
#include "ex.h"
#include "ex_impl.h"
#include "sc.h"
#include "t.h"

static struct sc_schema *schema;

static struct ex_page *parse(const char *s) {
    struct ex_page *p = NULL;
    struct dp_err err = {0};
    T_CHECK(ex_page_parse(&p, schema, s, strlen(s), NULL, 1, false, &err) == DP_OK);
    return p;
}

static const struct ex_cell *cell(const struct ex_table *t, int r, int c) {
    return &t->cells[(size_t)r * (size_t)t->n_cols + (size_t)c];
}

static int count(const struct ex_page *p, enum ex_warn_code c) {
    int n = 0;
    for (size_t i = 0; i < p->n_warnings; i++)
        n += p->warnings[i].code == c;
    return n;
}

/* The CSV of t parses back to the grid (covered positions: origin text or ""). */
static void roundtrip(const struct ex_table *t) {
    for (int mode = 0; mode < 2; mode++) {
        struct dp_buf b;
        dp_buf_init(&b, DP_MAX_TEXT_BYTES);
        struct dp_err err = {0};
        T_CHECK(dp_out_csv_table(t, mode ? DP_CSV_SPAN_EMPTY : DP_CSV_SPAN_REPEAT, &b, &err) == DP_OK);
        char **cells = NULL;
        int rows = 0, cols = 0;
        T_CHECK(dp_csv_parse(b.data ? b.data : "", b.len, &cells, &rows, &cols, &err) == DP_OK);
        T_EQ_I64(rows, t->n_rows);
        T_EQ_I64(cols, t->n_cols);
        for (int r = 0; r < rows && r < t->n_rows; r++)
            for (int c = 0; c < cols && c < t->n_cols; c++) {
                const struct ex_cell *x = cell(t, r, c);
                const char *want = x->text ? x->text : mode ? "" : cell(t, x->orow, x->ocol)->text;
                T_EQ_STR(cells[(size_t)r * (size_t)cols + (size_t)c], want);
            }
        dp_csv_free(cells, rows, cols);
        dp_buf_free(&b);
    }
}

static void spans(void) {
    /* rowspan + colspan */
    struct ex_page *p = parse("```html\n<table data-bbox=\"10 20 300 400\"><tr><th rowspan=\"2\">A</th>"
                              "<th colspan=\"2\">B</th></tr><tr><td>b1</td><td>b2</td></tr>"
                              "<tr><td>x</td><td>y, \"z\"</td><td>z</td></tr></table>\n```");
    T_EQ_I64(p->n_tables, 1);
    const struct ex_table *t = &p->tables[0];
    T_EQ_I64(t->n_rows, 3);
    T_EQ_I64(t->n_cols, 3);
    T_EQ_STR(cell(t, 0, 0)->text, "A");
    T_CHECK(cell(t, 0, 0)->rowspan == 2 && cell(t, 0, 0)->header);
    T_CHECK(cell(t, 1, 0)->text == NULL && cell(t, 1, 0)->orow == 0 && cell(t, 1, 0)->ocol == 0);
    T_CHECK(cell(t, 0, 1)->colspan == 2 && cell(t, 0, 2)->text == NULL && cell(t, 0, 2)->ocol == 1);
    T_EQ_STR(cell(t, 1, 1)->text, "b1");
    T_EQ_STR(cell(t, 1, 2)->text, "b2");
    T_EQ_STR(cell(t, 2, 1)->text, "y, \"z\"");
    T_CHECK(t->prov.has_box && t->prov.model.x2 == 300);
    T_EQ_I64(p->n_blocks, 1);
    T_CHECK(p->blocks[0].kind == EX_BLOCK_TABLE && p->blocks[0].table == 0);
    T_EQ_I64(p->n_warnings, 0);
    roundtrip(t);
    ex_page_free(p);
}

static void rowspan_clipped(void) {
    struct ex_page *p;
    const struct ex_table *t;
    /* rowspan overflowing the table is clipped (warned) */
    p = parse("<table><tr><td rowspan=\"5\">A</td><td>1</td></tr><tr><td>2</td></tr></table>");
    t = &p->tables[0];
    T_CHECK(t->n_rows == 2 && t->n_cols == 2 && cell(t, 0, 0)->rowspan == 2);
    T_EQ_STR(cell(t, 1, 1)->text, "2");
    T_EQ_I64(count(p, EX_WARN_SYNTAX), 1);
    roundtrip(t);
    ex_page_free(p);
}

static void colspan_cut(void) {
    struct ex_page *p;
    const struct ex_table *t;
    /* colspan overlapping a rowspan from above is cut (warned) */
    p = parse("<table><tr><td>a</td><td rowspan=\"2\">b</td></tr><tr><td colspan=\"3\">c</td></tr></table>");
    t = &p->tables[0];
    T_CHECK(t->n_rows == 2 && t->n_cols == 2);
    T_CHECK(cell(t, 1, 0)->colspan == 1 && !strcmp(cell(t, 1, 0)->text, "c"));
    T_CHECK(cell(t, 1, 1)->text == NULL && cell(t, 1, 1)->orow == 0);
    T_EQ_I64(count(p, EX_WARN_SYNTAX), 1);
    roundtrip(t);
    ex_page_free(p);
}

static void rowspan_cut(void) {
    struct ex_page *p;
    const struct ex_table *t;
    /* rowspan overlapping a later cell's position is cut: rowspan=3 meets a colspan row */
    p = parse("<table><tr><td rowspan=\"3\">L</td><td>1</td></tr><tr><td>2</td></tr>"
              "<tr><td>3</td></tr></table>");
    t = &p->tables[0];
    T_CHECK(t->n_rows == 3 && t->n_cols == 2 && cell(t, 2, 0)->orow == 0);
    ex_page_free(p);
}

static void span_values(void) {
    struct ex_page *p;
    /* rowspan=0 spans to the end silently; bad and huge spans are clipped with warnings */
    p = parse("<table><tr><td rowspan=\"0\">R</td><td colspan=\"abc\">x</td></tr><tr><td>y</td></tr></table>"
              "<table><tr><td colspan=\"99999\">wide</td></tr></table>");
    T_EQ_I64(p->n_tables, 2);
    T_CHECK(p->tables[0].n_rows == 2 && cell(&p->tables[0], 1, 0)->orow == 0);
    T_EQ_I64(p->tables[1].n_cols, EX_TABLE_MAX_SPAN);
    T_EQ_I64(count(p, EX_WARN_SYNTAX), 1);
    T_EQ_I64(count(p, EX_WARN_LIMIT), 1);
    roundtrip(&p->tables[0]);
    ex_page_free(p);
}

static void short_rows(void) {
    struct ex_page *p;
    const struct ex_table *t;
    /* short rows are padded with empty cells */
    p = parse("<table><tr><td>1</td><td>2</td><td>3</td></tr><tr><td>4</td></tr></table>");
    t = &p->tables[0];
    T_CHECK(t->n_cols == 3 && !strcmp(cell(t, 1, 2)->text, "") && cell(t, 1, 2)->orow == 1);
    ex_page_free(p);
}

static void markdown(void) {
    struct ex_page *p;
    const struct ex_table *t;
    /* markdown */
    p = parse("Here is the table:\n\n| Item | Qty | Price |\n|------|----:|------:|\n| Tea | 2 | 3.50 |\n"
              "| Cake \\| pie | 1 | 4,00 \"EUR\" |\n| short |\n\nThat is all.");
    T_EQ_I64(p->n_tables, 1);
    t = &p->tables[0];
    T_CHECK(t->n_rows == 4 && t->n_cols == 3);
    T_CHECK(cell(t, 0, 0)->header && !cell(t, 1, 0)->header);
    T_EQ_STR(cell(t, 2, 0)->text, "Cake | pie");
    T_EQ_STR(cell(t, 2, 2)->text, "4,00 \"EUR\"");
    T_EQ_STR(cell(t, 3, 1)->text, "");
    T_EQ_I64(p->n_blocks, 3); /* prose line, table, prose line */
    T_CHECK(t->prov.span_len > 0 && !strncmp(p->raw + t->prov.span_off, "| Item", 6));
    roundtrip(t);
    ex_page_free(p);
}

static void markdown_html(void) {
    struct ex_page *p;
    /* markdown with an HTML table inside */
    p = parse("Result:\n<table><tr><td>a</td><td>b</td></tr></table>\nend");
    T_EQ_I64(p->n_tables, 1);
    ex_page_free(p);
}

static void csv_quoting(void) {
    /* a table built directly with text CSV must quote: newline, CR, quotes, commas, spaces */
    struct ex__wsink ws = {0};
    struct ex__tcell src[4] = {
        {.row = 0, .rowspan = 1, .colspan = 1, .text = dp_strdup("line1\nline2")},
        {.row = 0, .rowspan = 1, .colspan = 1, .text = dp_strdup(" padded ")},
        {.row = 1, .rowspan = 1, .colspan = 1, .text = dp_strdup("\"q\",r\r")},
        {.row = 1, .rowspan = 1, .colspan = 1, .text = dp_strdup("")},
    };
    struct ex_table tt;
    T_CHECK(ex__table_build(&tt, src, 4, 2, NULL, 1, &ws) == DP_OK);
    roundtrip(&tt);
    ex__table_free(&tt);
    dp_free(ws.w);
}

static void json_rows(void) {
    struct ex_page *p;
    /* JSON rows answer */
    p = parse("```json\n[[\"Year\", \"Sales\"], [2020, 1.5], [2021, \"2,5\"]]\n```");
    T_EQ_I64(p->n_tables, 1);
    T_CHECK(p->tables[0].n_rows == 3 && p->tables[0].n_cols == 2);
    ex_page_free(p);
}

static void closing_span(void) {
    struct ex_page *p;
    /* the span of an element that ends the answer covers its closing tag */
    const char *last = "<p data-bbox=\"1 2 3 4\">the rolling pin</p>";
    p = parse(last);
    T_CHECK(p->n_blocks == 1 && p->blocks[0].prov.span_off == 0 && p->blocks[0].prov.span_len == strlen(last));
    ex_page_free(p);
}

static void grounding_points(void) {
    struct ex_page *p;
    /* grounding points (spec 9.2): the bounding box of x1/y1 ... xN/yN, phrase as text */
    p = parse("<points x1=\"100\" y1=\"200\" x2=\"150\" y2=\"220\" alt=\"pin\">the rolling pin</points>");
    T_CHECK(p->n_blocks == 1 && p->blocks[0].prov.has_box && p->blocks[0].prov.model.x2 == 150 &&
            p->blocks[0].prov.model.y1 == 200 && !strcmp(p->blocks[0].text, "the rolling pin"));
    ex_page_free(p);
}

static void chart_table(void) {
    struct dp_err err = {0};
    /* a chart given as a table */
    struct sc_schema *chart = NULL;
    T_CHECK(sc_schema_load(&chart, "chart", &err) == DP_OK);
    const char *ct = "| Year | Sales | Cost |\n|---|---|---|\n| 2020 | 1,5 | 3 |\n| 2021 | 2.5 | n/a |\n";
    struct ex_page *cp = NULL;
    T_CHECK(ex_page_parse(&cp, chart, ct, strlen(ct), NULL, 1, false, &err) == DP_OK);
    T_CHECK(cp && cp->n_charts == 1 && cp->charts[0].n_series == 2);
    if (cp && cp->n_charts == 1 && cp->charts[0].n_series == 2) {
        const struct ex_chart *c = &cp->charts[0];
        T_EQ_STR(c->x_label, "Year");
        T_EQ_STR(c->series[1].name, "Cost");
        T_CHECK(c->series[0].points[0].has_y && c->series[0].points[0].y == 1.5);
        T_CHECK(!c->series[1].points[1].has_y && !strcmp(c->series[1].points[1].y_raw, "n/a"));
        T_EQ_STR(c->series[0].points[1].x, "2021");
    }
    ex_page_free(cp);
    sc_schema_free(chart);
}

static void hostile_pipes(void) {
    /* hostile-input sweep: a markdown row of millions of pipes took 1.3 GB for a 10 MB answer;
     * the cells stop at EX_TABLE_MAX_CELLS with a limit warning */
    {
        size_t n_pipes = (size_t)EX_TABLE_MAX_CELLS + 1000;
        const char *head = "|a|b|\n|-|-|\n";
        size_t hl = strlen(head);
        char *md = dp_malloc(hl + n_pipes + 1);
        T_CHECK(md != NULL);
        if (md) {
            memcpy(md, head, hl);
            memset(md + hl, '|', n_pipes);
            md[hl + n_pipes] = '\0';
            struct ex_page *mp = parse(md);
            T_CHECK(mp && count(mp, EX_WARN_LIMIT) >= 1);
            ex_page_free(mp);
            dp_free(md);
        }
    }
}

int main(int argc, char **argv) {
    t_args(argc, argv);
    struct dp_err err = {0};
    T_CHECK(sc_schema_load(&schema, "table", &err) == DP_OK);
    T_RUN(spans);
    T_RUN(rowspan_clipped);
    T_RUN(colspan_cut);
    T_RUN(rowspan_cut);
    T_RUN(span_values);
    T_RUN(short_rows);
    T_RUN(markdown);
    T_RUN(markdown_html);
    T_RUN(csv_quoting);
    T_RUN(json_rows);
    T_RUN(closing_span);
    T_RUN(grounding_points);
    T_RUN(chart_table);
    T_RUN(hostile_pipes);
    sc_schema_free(schema);
    return t_done();
}
