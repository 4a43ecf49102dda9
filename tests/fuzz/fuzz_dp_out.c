/* Fuzz target: the writers. Any answer is parsed (typed fields, validation, arithmetic), then the
 * result is written and parsed back: the JSON must load with jansson, the XML must be well-formed
 * for libxml2, and each table's CSV must parse back to the grid. */
#include "dp_buf.h"
#include "dp_limits.h"
#include "dp_out.h"
#include "ex.h"
#include "fuzz_common_schema.h"

#include <jansson.h>
#include <libxml/parser.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_MAX_BYTES ((size_t)1 << 18)

static void csv_roundtrip(const struct ex_table *t) {
    struct dp_buf b;
    dp_buf_init(&b, DP_MAX_TEXT_BYTES);
    struct dp_err err = {0};
    if (dp_out_csv_table(t, DP_CSV_SPAN_REPEAT, &b, &err) != DP_OK)
        __builtin_trap();
    char **cells = NULL;
    int rows = 0, cols = 0;
    if (dp_csv_parse(b.data ? b.data : "", b.len, &cells, &rows, &cols, &err) != DP_OK)
        __builtin_trap();
    if (t->n_rows * t->n_cols > 0 && (rows != t->n_rows || cols != t->n_cols))
        __builtin_trap();
    for (int r = 0; r < rows && t->n_cols; r++)
        for (int c = 0; c < cols; c++) {
            const struct ex_cell *x = &t->cells[(size_t)r * (size_t)t->n_cols + (size_t)c];
            const char *want = t->cells[(size_t)x->orow * (size_t)t->n_cols + (size_t)x->ocol].text;
            if (strcmp(cells[(size_t)r * (size_t)cols + (size_t)c], want ? want : ""))
                __builtin_trap();
        }
    dp_csv_free(cells, rows, cols);
    dp_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static struct sc_schema *schemas[4];
    if (!schemas[0]) {
        xmlInitParser();
        schemas[0] = fuzz_schema(FUZZ_INVOICE_SCHEMA);
        schemas[1] = fuzz_schema(FUZZ_LAYOUT_SCHEMA);
        schemas[2] = fuzz_schema(FUZZ_TABLE_SCHEMA);
        schemas[3] = fuzz_schema(FUZZ_CHART_SCHEMA);
    }
    if (size > FUZZ_MAX_BYTES || size == 0)
        return 0;
    struct sc_schema *s = schemas[data[0] % 4];
    struct dp_err err = {0};
    struct ex_doc *d = NULL;
    if (ex_doc_new(&d, "fuzz\xff.pdf", &err) != DP_OK)
        return 0;
    struct ex_stamp st = {.docproc_version = "f", .schema_name = s->name, .prompt = "p\x01q"};
    struct ex_geom g = {.model_w = 100, .model_h = 100, .page_w = 200, .page_h = 300,
                        .pdf_w_pt = 595.5, .pdf_h_pt = 842};
    struct ex_page *p = NULL;
    if (ex_doc_set_stamp(d, &st, &err) == DP_OK &&
        ex_page_parse(&p, s, (const char *)data + 1, size - 1, &g, 1, false, &err) == DP_OK &&
        ex_doc_add_page(d, p, &err) == DP_OK && ex_doc_finish(d, s, &err) == DP_OK) {
        struct dp_buf b;
        dp_buf_init(&b, DP_MAX_TEXT_BYTES);
        if (dp_out_json(d, &b, &err) == DP_OK) {
            json_error_t je;
            json_t *j = json_loadb(b.data, b.len, 0, &je);
            if (!j)
                __builtin_trap();
            json_decref(j);
        }
        dp_buf_reset(&b);
        if (dp_out_xml(d, &b, &err) == DP_OK) {
            xmlDocPtr x = xmlReadMemory(b.data, (int)b.len, "f.xml", NULL, XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
            if (!x)
                __builtin_trap();
            xmlFreeDoc(x);
        }
        dp_buf_free(&b);
        for (size_t i = 0; i < d->pages[0]->n_tables; i++)
            csv_roundtrip(&d->pages[0]->tables[i]);
    }
    ex_doc_free(d);
    return 0;
}
