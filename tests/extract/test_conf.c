/* Confidence per table cell and per field in the results (docs/constrain.md): ex_conf_span over
 * hand-made token sequences (overlap, forced tokens, no token), cells of an HTML table and of a
 * JSON rows table getting the confidence of the tokens of their text (a low-probability token in
 * one cell lowers that cell only; the cell's tags do not count), and the JSON and XML results
 * carrying cell and field confidences (the XML valid against the XSD). */
#include "dp_buf.h"
#include "dp_limits.h"
#include "dp_out.h"
#include "ex.h"
#include "ex_cons.h"
#include "ex_lines.h"
#include "sc.h"
#include "t.h"

#include <jansson.h>
#include <libxml/parser.h>
#include <libxml/xmlschemas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char HTML[] =
    "```html\n<table data-bbox=\"10 50 400 300\"><tr><th>a</th><th>b</th></tr>"
    "<tr><td>xyz</td><td>1</td></tr></table>\n```";

#define MAX_TOK 512

/* A page tokenized in 2-byte tokens, each log p = base; tokens overlapping [lo_off, lo_off + 1)
 * get log p = low instead. */
struct toks {
    size_t off[MAX_TOK];
    float lp[MAX_TOK];
    struct ex_tokconf tc;
};

static void tokenize2(struct toks *t, size_t len, float base, size_t lo_off, float low) {
    size_t n = 0;
    for (size_t o = 0; o < len && n < MAX_TOK; o += 2, n++) {
        t->off[n] = o;
        t->lp[n] = (lo_off >= o && lo_off < o + 2) ? low : base;
    }
    t->tc.off = t->off;
    t->tc.logprob = t->lp;
    t->tc.n = n;
}

static void span(void) {
    size_t off[] = {0, 3, 5, 9};
    float lp[] = {logf(0.9f), logf(0.1f), NAN, logf(0.8f)};
    struct ex_tokconf tc = {off, lp, 4};
    /* bytes [3, 5): token 1 only */
    T_NEAR(ex_conf_span(&tc, 12, 3, 2), 0.1, 1e-6);
    /* bytes [4, 6): tokens 1 and 2 (forced: EX_CONF_FORCED_P), the formula of ex_conf_value */
    float both[] = {logf(0.1f), NAN};
    T_NEAR(ex_conf_span(&tc, 12, 4, 2), sqrt(0.1 * EX_CONF_FORCED_P), 1e-6);
    T_NEAR(ex_conf_span(&tc, 12, 4, 2), ex_conf_value(both, both, 2, false), 1e-9);
    /* the last token runs to the end of the answer */
    T_NEAR(ex_conf_span(&tc, 12, 11, 1), 0.8, 1e-6);
    T_NEAR(ex_conf_span(&tc, 12, 0, 12), pow(0.9 * 0.1 * EX_CONF_FORCED_P * 0.8, 0.25), 1e-6);
    T_CHECK(ex_conf_span(&tc, 12, 5, 0) < 0);  /* empty span */
    T_CHECK(ex_conf_span(NULL, 12, 0, 3) < 0); /* no token log-probs */
    struct ex_tokconf none = {off, lp, 0};
    T_CHECK(ex_conf_span(&none, 12, 0, 3) < 0);
}

static const struct ex_cell *cell(const struct ex_table *t, int r, int c) {
    return &t->cells[(size_t)r * (size_t)t->n_cols + (size_t)c];
}

static void cells(void) {
    struct dp_err err = {0};
    struct ex_page *pg = NULL;
    size_t len = strlen(HTML);
    T_CHECK(ex_page_parse(&pg, NULL, HTML, len, NULL, 1, EX_STOP_EOS, &err) == DP_OK);
    if (!pg || pg->n_tables != 1 || pg->tables[0].n_rows != 2 || pg->tables[0].n_cols != 2) {
        T_FAIL_AT("the HTML table did not parse");
        ex_page_free(pg);
        return;
    }
    const struct ex_table *t = &pg->tables[0];
    T_EQ_STR(cell(t, 1, 0)->text, "xyz");
    /* one unlikely token inside "xyz"; the cell's "<td>" next to it must not count */
    size_t x = (size_t)(strstr(HTML, "xyz") - HTML) + 1;
    struct toks k;
    tokenize2(&k, len, logf(0.9f), x, logf(0.01f));
    ex_page_apply_cell_conf(pg, &k.tc);
    const struct ex_cell *lo = cell(t, 1, 0), *hi = cell(t, 1, 1), *h = cell(t, 0, 0);
    T_CHECK(lo->has_conf && hi->has_conf && h->has_conf);
    T_CHECK_MSG(lo->conf < 0.2 && hi->conf > 0.85, "xyz %.3f, 1 %.3f", lo->conf, hi->conf);
    T_NEAR(hi->conf, 0.9, 1e-5);
    /* "xyz" spans tokens [x-1, x+1) and [x+1, x+3) (or starts one token earlier): the low
     * token is one of two, the exact value follows from the formula */
    size_t b = (size_t)(strstr(HTML, "xyz") - HTML);
    T_NEAR(lo->conf, ex_conf_span(&k.tc, len, b, 3), 1e-9);
    ex_page_free(pg);

    /* JSON rows (a chart's data table): the cells' value spans */
    const char *rows = "```json\n[[\"year\", \"sales\"], [\"2020\", 12], [\"2021\", 15]]\n```";
    len = strlen(rows);
    T_CHECK(ex_page_parse(&pg, NULL, rows, len, NULL, 1, EX_STOP_EOS, &err) == DP_OK);
    if (!pg || pg->n_tables != 1) {
        T_FAIL_AT("the JSON rows table did not parse");
        ex_page_free(pg);
        return;
    }
    size_t at15 = (size_t)(strstr(rows, "15") - rows);
    tokenize2(&k, len, logf(0.95f), at15, logf(0.02f));
    ex_page_apply_cell_conf(pg, &k.tc);
    t = &pg->tables[0];
    T_CHECK(cell(t, 2, 1)->has_conf && cell(t, 1, 1)->has_conf);
    T_CHECK_MSG(cell(t, 2, 1)->conf < cell(t, 1, 1)->conf, "15: %.3f, 12: %.3f",
                cell(t, 2, 1)->conf, cell(t, 1, 1)->conf);
    ex_page_free(pg);
}

/* A document whose page 1 holds a table with cell confidences and page 2 fields with
 * confidences, written as JSON and XML. */
static void results(void) {
    struct dp_err err = {0};
    struct sc_schema *s = NULL;
    if (sc_schema_load(&s, "receipt", &err) != DP_OK) {
        T_FAIL_AT("receipt: %s", err.msg);
        return;
    }
    struct ex_doc *d = NULL;
    T_CHECK(ex_doc_new(&d, "r.png", &err) == DP_OK);
    struct ex_geom g = {.model_w = 1008, .model_h = 1540, .page_w = 1014, .page_h = 1532};
    struct ex_page *p1 = NULL, *p2 = NULL;
    T_CHECK(ex_page_parse(&p1, s, HTML, strlen(HTML), &g, 1, EX_STOP_EOS, &err) == DP_OK);
    struct toks k;
    tokenize2(&k, strlen(HTML), logf(0.9f), 0, logf(0.9f));
    if (p1)
        ex_page_apply_cell_conf(p1, &k.tc);
    const char *a = "```json\n{\"merchant_name\": {\"value\": \"ACME\", \"bbox_2d\": [1, 2, 3, 4]}}"
                    "\n```";
    T_CHECK(ex_page_parse(&p2, s, a, strlen(a), &g, 2, EX_STOP_EOS, &err) == DP_OK);
    const char *acme = strstr(a, "\"ACME\"");
    struct ex_value_conf v = {(size_t)(acme - a), (size_t)(acme - a) + 6, 0.25, false};
    if (p2)
        ex_page_apply_conf(p2, &v, 1);
    T_CHECK(ex_doc_add_page(d, p1, &err) == DP_OK);
    T_CHECK(ex_doc_add_page(d, p2, &err) == DP_OK);
    T_CHECK(ex_doc_finish(d, s, &err) == DP_OK);
    struct dp_buf jb, xb;
    dp_buf_init(&jb, DP_MAX_TEXT_BYTES);
    dp_buf_init(&xb, DP_MAX_TEXT_BYTES);
    T_CHECK(dp_out_json(d, &jb, &err) == DP_OK);
    T_CHECK(dp_out_xml(d, &xb, &err) == DP_OK);
    json_error_t je;
    json_t *j = json_loadb(jb.data, jb.len, 0, &je);
    T_CHECK_MSG(j != NULL, "result JSON: %s", je.text);
    json_t *c0 = json_array_get(
        json_object_get(json_array_get(json_object_get(json_array_get(json_object_get(j, "pages"),
                                                                      0), "tables"), 0), "cells"),
        0);
    T_NEAR(json_number_value(json_object_get(c0, "confidence")), 0.9, 1e-4);
    json_t *f = json_array_get(json_object_get(j, "fields"), 0);
    T_EQ_STR(json_string_value(json_object_get(f, "name")), "merchant_name");
    T_NEAR(json_number_value(json_object_get(f, "confidence")), 0.25, 1e-9);
    json_decref(j);
    /* XML: a confidence attribute on the cells and on the field, valid against the XSD */
    const char *x = xb.data;
    T_CHECK_MSG(x && strstr(x, "<cell row=\"0\" col=\"0\" rowspan=\"1\" colspan=\"1\" "
                               "header=\"true\" confidence=\"0.9000\""), "XML cell confidence");
    T_CHECK_MSG(x && strstr(x, "name=\"merchant_name\"") &&
                    strstr(strstr(x, "name=\"merchant_name\""), "confidence=\"0.2500\""),
                "XML field confidence");
    char p[1024];
    snprintf(p, sizeof p, "%s/schemas/docproc-result.xsd",
             getenv("DP_SOURCE_DIR") ? getenv("DP_SOURCE_DIR") : ".");
    xmlSchemaParserCtxtPtr pc = xmlSchemaNewParserCtxt(p);
    xmlSchemaPtr xsd = xmlSchemaParse(pc);
    xmlSchemaFreeParserCtxt(pc);
    T_CHECK(xsd != NULL);
    xmlDocPtr xd = xmlReadMemory(xb.data, (int)xb.len, "r.xml", NULL, XML_PARSE_NONET);
    T_CHECK(xd != NULL);
    if (xsd && xd) {
        xmlSchemaValidCtxtPtr vc = xmlSchemaNewValidCtxt(xsd);
        T_CHECK_MSG(xmlSchemaValidateDoc(vc, xd) == 0, "the XML is not valid against the XSD");
        xmlSchemaFreeValidCtxt(vc);
    }
    xmlFreeDoc(xd);
    xmlSchemaFree(xsd);
    dp_buf_free(&jb);
    dp_buf_free(&xb);
    ex_doc_free(d);
    sc_schema_free(s);
}

int main(int argc, char **argv) {
    t_args(argc, argv);
    xmlInitParser();
    T_RUN(span);
    T_RUN(cells);
    T_RUN(results);
    xmlCleanupParser();
    return t_done();
}
