/* Fuzz target: HTML answers (QwenVL HTML with data-bbox, ordinary HTML, tables with spans) through
 * libxml2's recovering parser into blocks and table grids. */
#include "dp_limits.h"
#include "ex.h"
#include "fuzz_common_schema.h"

#include <libxml/parser.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_MAX_BYTES ((size_t)1 << 20)
#define FUZZ_PREFIX "```html\n"

static void check_tables(const struct ex_page *p) {
    for (size_t i = 0; i < p->n_tables; i++) {
        const struct ex_table *t = &p->tables[i];
        for (int r = 0; r < t->n_rows; r++)
            for (int c = 0; c < t->n_cols; c++) {
                const struct ex_cell *x = &t->cells[(size_t)r * (size_t)t->n_cols + (size_t)c];
                const struct ex_cell *o = &t->cells[(size_t)x->orow * (size_t)t->n_cols + (size_t)x->ocol];
                /* every position points at an origin that covers it */
                if (x->orow > r || x->ocol > c || !o->text || r >= x->orow + o->rowspan ||
                    c >= x->ocol + o->colspan)
                    __builtin_trap();
            }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static struct sc_schema *layout;
    if (!layout) {
        xmlInitParser();
        layout = fuzz_schema(FUZZ_LAYOUT_SCHEMA);
    }
    if (size > FUZZ_MAX_BYTES)
        return 0;
    size_t pl = strlen(FUZZ_PREFIX);
    char *buf = malloc(size + pl);
    if (!buf)
        return 0;
    memcpy(buf, FUZZ_PREFIX, pl);
    memcpy(buf + pl, data, size);
    struct ex_geom g = {.model_w = 1008, .model_h = 1540, .page_w = 1014, .page_h = 1532,
                        .pdf_w_pt = 612, .pdf_h_pt = 792};
    for (int k = 0; k < 2; k++) { /* fenced and bare */
        struct ex_page *p = NULL;
        struct dp_err err = {0};
        const char *in = k ? (const char *)data : buf;
        size_t n = k ? size : size + pl;
        if (ex_page_parse(&p, layout, in, n, &g, 1, k == 1, &err) == DP_OK) {
            check_tables(p);
            ex_page_free(p);
        }
    }
    free(buf);
    return 0;
}
