/* Schemas (built-ins found at run time, user files, prompts built from fields, errors) and the
 * document level: merging pages, validation (required, enum, pattern, types), invoice arithmetic
 * cross-checks with the numbers in the message, charts, grounded fields mapped to PDF points. */
#include "dp_alloc.h"
#include "ex.h"
#include "sc.h"
#include "t.h"

#include <stdlib.h>

static struct ex_doc *doc_of(const struct sc_schema *s, const char *const *pages, int n,
                             const struct ex_geom *g) {
    struct dp_err err = {0};
    struct ex_doc *d = NULL;
    T_CHECK(ex_doc_new(&d, "test.pdf", &err) == DP_OK);
    for (int i = 0; i < n; i++) {
        struct ex_page *p = NULL;
        T_CHECK(ex_page_parse(&p, s, pages[i], strlen(pages[i]), g, i + 1, false, &err) == DP_OK);
        T_CHECK(ex_doc_add_page(d, p, &err) == DP_OK);
    }
    T_CHECK(ex_doc_finish(d, s, &err) == DP_OK);
    return d;
}

static const struct ex_field *fld(const struct ex_field *f, size_t n, const char *name) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(f[i].name, name))
            return &f[i];
    return NULL;
}

static const struct ex_warning *warn_with(const struct ex_warning *w, size_t n, enum ex_warn_code c,
                                          const char *needle) {
    for (size_t i = 0; i < n; i++)
        if (w[i].code == c && (!needle || strstr(w[i].msg, needle)))
            return &w[i];
    return NULL;
}

static enum dp_status parse_schema(const char *json, struct dp_err *err) {
    struct sc_schema *s = NULL;
    enum dp_status st = sc_schema_parse(&s, json, strlen(json), "mem.json", err);
    sc_schema_free(s);
    return st;
}

static void builtin(void) {
    struct dp_err err = {0};
    const char *names[] = {"invoice", "receipt", "form", "table", "chart", "layout"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        struct sc_schema *s = NULL;
        T_CHECK_MSG(sc_schema_load(&s, names[i], &err) == DP_OK, "%s: %s", names[i], err.msg);
        if (s) {
            T_EQ_STR(s->name, names[i]);
            T_CHECK(strlen(s->hash) == 64 && s->prompt && *s->prompt);
        }
        sc_schema_free(s);
    }
    char **list = NULL;
    size_t nl = 0;
    T_CHECK(sc_schema_list(&list, &nl, &err) == DP_OK);
    T_CHECK(nl >= 6);
    for (size_t i = 0; i < nl; i++)
        dp_free(list[i]);
    dp_free(list);
}

static void invoice_prompt(void) {
    struct dp_err err = {0};
    struct sc_schema *inv = NULL;
    T_CHECK(sc_schema_load(&inv, "invoice", &err) == DP_OK);
    /* one field = one prompt line; grounded answers requested */
    T_CHECK(strstr(inv->prompt, "\n- invoice_id (string, required): invoice number as printed\n") != NULL);
    T_CHECK(strstr(inv->prompt, "\n- line_items (list of objects): one entry per invoice line\n") != NULL);
    T_CHECK(strstr(inv->prompt, "\n  - unit_price (amount): price of one unit\n") != NULL);
    T_CHECK(strstr(inv->prompt, "bbox_2d") != NULL);
    T_CHECK(sc_field_find(inv->fields, inv->n_fields, "Invoice Number") ==
            sc_field_find(inv->fields, inv->n_fields, "invoice_id"));
    T_CHECK(sc_field_find(inv->fields, inv->n_fields, "nothing") == NULL);
    struct sc_schema *lay = NULL;
    T_CHECK(sc_schema_load(&lay, "layout", &err) == DP_OK);
    T_EQ_STR(lay->prompt, "QwenVL HTML ");
    T_CHECK(lay->task == SC_TASK_LAYOUT && lay->system_prompt != NULL);
    sc_schema_free(lay);
    sc_schema_free(inv);
}

static void user_schema(void) {
    struct dp_err err = {0};
    /* user schema through $DOCPROC_SCHEMAS, no recompiling */
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/tests/extract/schemas", getenv("DP_SOURCE_DIR") ? getenv("DP_SOURCE_DIR") : ".");
    setenv("DOCPROC_SCHEMAS", dir, 1);
    struct sc_schema *sroie = NULL;
    T_CHECK(sc_schema_load(&sroie, "sroie", &err) == DP_OK);
    T_CHECK(sroie && sroie->n_fields == 4 && sroie->fields[1].format == SC_FORMAT_DATE);
    sc_schema_free(sroie);
    unsetenv("DOCPROC_SCHEMAS");
}

static void schema_errors(void) {
    struct sc_schema *sroie = NULL;
    /* errors name the file and the key */
    struct dp_err e1 = {0};
    T_CHECK(parse_schema("{\"properties\": {\"a\": {\"type\": \"strin\"}}}", &e1) == DP_ERR_SCHEMA);
    T_CHECK(strstr(e1.msg, "mem.json") && strstr(e1.msg, "'a'"));
    struct dp_err e2 = {0};
    T_CHECK(parse_schema("{\"properties\": {\"a\": {\"pattern\": \"([\"}}}", &e2) == DP_ERR_SCHEMA);
    struct dp_err e3 = {0};
    T_CHECK(parse_schema("{\"properties\": {}, \"required\": [\"zz\"]}", &e3) == DP_ERR_SCHEMA);
    struct dp_err e4 = {0};
    T_CHECK(parse_schema("{\"properties\": ", &e4) == DP_ERR_SCHEMA);
    struct dp_err e5 = {0};
    T_CHECK(parse_schema("{\"x-task\": \"kie\"}", &e5) == DP_OK); /* default prompt */
    struct dp_err e6 = {0};
    T_CHECK(sc_schema_load(&sroie, "no-such-schema", &e6) == DP_ERR_IO && strstr(e6.msg, "searched"));
    struct dp_err e7 = {0};
    T_CHECK(sc_schema_load(&sroie, "../etc/passwd", &e7) != DP_OK);
}

static void invoice_fields(void) {
    struct dp_err err = {0};
    struct sc_schema *inv = NULL;
    T_CHECK(sc_schema_load(&inv, "invoice", &err) == DP_OK);
    if (!inv)
        return;
    /* invoice: grounded fields, European numbers, ambiguous date, arithmetic */
    const char *p1 =
        "```json\n{\"invoice_id\": {\"value\": \"INV-1\", \"bbox_2d\": [100, 50, 300, 80]},\n"
        " \"invoice_date\": {\"value\": \"03/04/2024\", \"bbox_2d\": [400, 50, 500, 80]},\n"
        " \"currency\": \"\xe2\x82\xac\", \"subtotal\": \"1.234,50 \xe2\x82\xac\",\n"
        " \"total_tax\": \"\xe2\x82\xac 234,55\", \"invoice_total\": \"1.469,05\",\n"
        " \"line_items\": [{\"description\": \"A\", \"quantity\": 2, \"unit_price\": \"500,00\", \"amount\": \"1.000,00\"},\n"
        "   {\"description\": \"B\", \"quantity\": \"3\", \"unit_price\": \"78,00\", \"amount\": \"234,50\"}],\n"
        " \"notes\": \"thanks\"}\n```";
    struct ex_geom g = {.model_w = 1000, .model_h = 1400, .page_w = 2000, .page_h = 2800,
                        .pdf_w_pt = 595, .pdf_h_pt = 842};
    struct ex_doc *d = doc_of(inv, &p1, 1, &g);
    const struct ex_field *id = fld(d->fields, d->n_fields, "invoice_id");
    T_CHECK(id && !strcmp(id->value, "INV-1") && id->prov.has_box && id->prov.has_pdf);
    T_NEAR(id->prov.page_px.x1, 200, 1e-9);
    T_NEAR(id->prov.pdf_pt.x2, 300.0 * 2000 / 1000 * 595 / 2000, 1e-9);
    T_NEAR(id->prov.pdf_pt.y2, 80.0 * 842 / 1400, 1e-9);
    const struct ex_field *dt = fld(d->fields, d->n_fields, "invoice_date");
    T_CHECK(dt && dt->type == EX_V_DATE && dt->ambiguous && !strcmp(dt->value, "2024-03-04") &&
            !strcmp(dt->alt, "2024-04-03"));
    T_CHECK(warn_with(d->pages[0]->warnings, d->pages[0]->n_warnings, EX_WARN_AMBIGUOUS, "2024-04-03"));
    const struct ex_field *cur = fld(d->fields, d->n_fields, "currency");
    T_CHECK(cur && !strcmp(cur->value, "EUR"));
    const struct ex_field *sub = fld(d->fields, d->n_fields, "subtotal");
    T_CHECK(sub && sub->type == EX_V_AMOUNT && sub->num == 1234.5 && !strcmp(sub->currency, "EUR"));
    const struct ex_field *items = fld(d->fields, d->n_fields, "line_items");
    T_CHECK(items && items->type == EX_V_ARRAY && items->n_children == 2);
    T_CHECK(warn_with(d->warnings, d->n_warnings, EX_WARN_ARITHMETIC,
                      "quantity 3 x unit_price 78 = 234, but amount is 234.5"));
    T_CHECK(!warn_with(d->warnings, d->n_warnings, EX_WARN_ARITHMETIC, "sum of"));
    T_CHECK(!warn_with(d->warnings, d->n_warnings, EX_WARN_ARITHMETIC, "subtotal 1234.5 +"));
    T_CHECK(warn_with(d->pages[0]->warnings, d->pages[0]->n_warnings, EX_WARN_UNKNOWN_KEY, "notes"));
    T_CHECK(fld(d->fields, d->n_fields, "notes") && !fld(d->fields, d->n_fields, "notes")->in_schema);
    /* schema order first */
    T_EQ_STR(d->pages[0]->fields[0].name, "invoice_id");
    ex_doc_free(d);
    sc_schema_free(inv);
}

static void invoice_checks(void) {
    struct dp_err err = {0};
    struct sc_schema *inv = NULL;
    T_CHECK(sc_schema_load(&inv, "invoice", &err) == DP_OK);
    if (!inv)
        return;
    struct ex_doc *d;
    const struct ex_field *items;
    /* totals that do not add up; required missing; multi-page merge */
    const char *pages[2] = {
        "{\"invoice_id\": \"A-1\", \"subtotal\": 10, \"total_tax\": 2,"
        " \"line_items\": [{\"description\": \"x\", \"amount\": 4}]}",
        "{\"invoice_id\": \"B-2\", \"invoice_total\": \"13.00\","
        " \"line_items\": [{\"description\": \"y\", \"amount\": 5}]}",
    };
    d = doc_of(inv, pages, 2, NULL);
    T_EQ_STR(fld(d->fields, d->n_fields, "invoice_id")->value, "A-1");
    items = fld(d->fields, d->n_fields, "line_items");
    T_CHECK(items && items->n_children == 2 && !strcmp(items->children[1].name, "1") &&
            items->children[1].prov.page == 2);
    T_CHECK(warn_with(d->warnings, d->n_warnings, EX_WARN_ARITHMETIC, "sum of 2 line amounts is 9, but subtotal is 10"));
    T_CHECK(warn_with(d->warnings, d->n_warnings, EX_WARN_ARITHMETIC, "subtotal 10 + total_tax 2 = 12, but invoice_total is 13"));
    ex_doc_free(d);
    const char *only_total = "{\"invoice_total\": 5}";
    d = doc_of(inv, &only_total, 1, NULL);
    T_CHECK(warn_with(d->warnings, d->n_warnings, EX_WARN_REQUIRED, "invoice_id"));
    ex_doc_free(d);
    const char *bad = "{\"invoice_id\": \"1\", \"invoice_total\": \"lots\", \"currency\": \"dollars\","
                      " \"line_items\": \"none\"}";
    d = doc_of(inv, &bad, 1, NULL);
    T_CHECK(warn_with(d->pages[0]->warnings, d->pages[0]->n_warnings, EX_WARN_TYPE, "not an amount"));
    T_CHECK(warn_with(d->pages[0]->warnings, d->pages[0]->n_warnings, EX_WARN_TYPE, "currency"));
    T_CHECK(warn_with(d->warnings, d->n_warnings, EX_WARN_PATTERN, "dollars"));
    T_CHECK(warn_with(d->warnings, d->n_warnings, EX_WARN_TYPE, "expected a list"));
    ex_doc_free(d);
    sc_schema_free(inv);
}

static void receipt_text(void) {
    struct dp_err err = {0};
    struct ex_doc *d;
    /* key: value pairs in a plain-text receipt, two on one line, typed through the aliases */
    struct sc_schema *rc = NULL;
    T_CHECK(sc_schema_load(&rc, "receipt", &err) == DP_OK);
    const char *txt = "BAR WANG RICE\nDate: 01 Jun 2018 Time: 18:41\nTotal: RM8.75\n12:30 pickup\nNotes: none\n";
    d = doc_of(rc, &txt, 1, NULL);
    const struct ex_field *rd = fld(d->fields, d->n_fields, "transaction_date");
    const struct ex_field *rt = fld(d->fields, d->n_fields, "transaction_time");
    const struct ex_field *rtot = fld(d->fields, d->n_fields, "total");
    T_CHECK(rd && !strcmp(rd->value, "2018-06-01") && rd->type == EX_V_DATE);
    T_CHECK(rt && !strcmp(rt->value, "18:41"));
    T_CHECK(rt && !strncmp(d->pages[0]->raw + rt->prov.span_off, "Time: 18:41", rt->prov.span_len));
    T_CHECK(rtot && rtot->num == 8.75 && !strcmp(rtot->currency, "MYR"));
    T_EQ_I64(d->n_fields, 3); /* "Notes" is not a receipt field, "12:30" is not a key */
    T_CHECK(!warn_with(d->warnings, d->n_warnings, EX_WARN_PATTERN, NULL));
    ex_doc_free(d);
    sc_schema_free(rc);
}

static void charts(void) {
    struct dp_err err = {0};
    struct ex_doc *d;
    /* charts, and enum validation */
    struct sc_schema *ch = NULL;
    T_CHECK(sc_schema_load(&ch, "chart", &err) == DP_OK);
    const char *c1 = "```json\n{\"chart_type\": \"donut\", \"title\": \"Sales\", \"x_axis\": \"Year\","
                     " \"y_axis\": \"USD\", \"series\": [{\"name\": \"A\", \"points\": [{\"x\": \"2020\", \"y\": 1.5},"
                     " {\"x\": \"2021\", \"y\": \"2,5\"}, {\"x\": \"2022\", \"y\": \"n/a\"}]},"
                     " {\"name\": \"B\", \"data\": [[2020, 3], [2021, 4]]}]}\n```";
    d = doc_of(ch, &c1, 1, NULL);
    T_EQ_I64(d->pages[0]->n_charts, 1);
    const struct ex_chart *c = &d->pages[0]->charts[0];
    T_CHECK(c->n_series == 2 && c->series[0].n_points == 3 && c->series[1].n_points == 2);
    T_CHECK(c->series[0].points[1].has_y && c->series[0].points[1].y == 2.5);
    T_CHECK(!c->series[0].points[2].has_y && !strcmp(c->series[0].points[2].y_raw, "n/a"));
    T_EQ_STR(c->series[1].points[1].x, "2021");
    T_EQ_STR(c->title, "Sales");
    T_CHECK(warn_with(d->warnings, d->n_warnings, EX_WARN_ENUM, "donut"));
    ex_doc_free(d);
    const char *c2 = "{\"type\": \"bar\", \"data\": {\"labels\": [\"Q1\", \"Q2\"],"
                     " \"datasets\": [{\"label\": \"rev\", \"data\": [1, 2]}]}}";
    d = doc_of(ch, &c2, 1, NULL);
    T_CHECK(d->pages[0]->n_charts == 1 && d->pages[0]->charts[0].n_series == 1);
    T_EQ_STR(d->pages[0]->charts[0].series[0].points[1].x, "Q2");
    ex_doc_free(d);
    sc_schema_free(ch);
}

int main(int argc, char **argv) {
    t_args(argc, argv);
    T_RUN(builtin);
    T_RUN(invoice_prompt);
    T_RUN(user_schema);
    T_RUN(schema_errors);
    T_RUN(invoice_fields);
    T_RUN(invoice_checks);
    T_RUN(receipt_text);
    T_RUN(charts);
    return t_done();
}
