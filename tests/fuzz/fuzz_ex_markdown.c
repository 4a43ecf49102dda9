/* Fuzz target: markdown / plain-text answers (pipe tables, HTML tables inside markdown, headings,
 * list items, key: value lines). */
#include "dp_limits.h"
#include "ex.h"
#include "fuzz_common_schema.h"

#include <libxml/parser.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_MAX_BYTES ((size_t)1 << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static struct sc_schema *table, *form;
    if (!table) {
        xmlInitParser();
        table = fuzz_schema(FUZZ_TABLE_SCHEMA);
        form = fuzz_schema("{\"x-name\": \"form\", \"x-task\": \"kie\"}");
    }
    if (size > FUZZ_MAX_BYTES)
        return 0;
    struct sc_schema *schemas[2] = {table, form};
    for (int k = 0; k < 2; k++) {
        struct ex_page *p = NULL;
        struct dp_err err = {0};
        if (ex_page_parse(&p, schemas[k], (const char *)data, size, NULL, 1, false, &err) == DP_OK) {
            for (size_t i = 0; i < p->n_blocks; i++)
                if (p->blocks[i].prov.span_off + p->blocks[i].prov.span_len > size)
                    __builtin_trap();
            ex_page_free(p);
        }
    }
    return 0;
}
