/* Fuzz target: olmOCR-2 answers (YAML front matter + Markdown body with HTML tables and display
 * math) through ex_page_parse with an `olmocr` schema, the front-matter reader alone, and the
 * lines model and Markdown/ALTO writers over the result. */
#include "dp_buf.h"
#include "dp_limits.h"
#include "dp_out_archive.h"
#include "ex.h"
#include "ex_olmocr.h"
#include "fuzz_common_schema.h"

#include <libxml/parser.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_MAX_BYTES ((size_t)1 << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static struct sc_schema *olm;
    if (!olm) {
        xmlInitParser();
        olm = fuzz_schema("{\"x-name\": \"olmocr\", \"x-task\": \"olmocr\", \"x-prompt\": \"p\","
                          " \"properties\": {\"rotation_correction\": {\"type\": \"integer\"},"
                          " \"is_table\": {\"type\": \"boolean\"}}}");
    }
    if (size > FUZZ_MAX_BYTES)
        return 0;
    struct ex_olmocr_fm fm;
    if (ex_olmocr_front_matter((const char *)data, size, &fm) &&
        (fm.body_off + fm.body_len > size || fm.fm_off + fm.fm_len > size))
        __builtin_trap();
    struct ex_doc *doc = NULL;
    struct ex_page *p = NULL;
    struct dp_err err = {0};
    if (ex_doc_new(&doc, "fuzz", &err) != DP_OK)
        return 0;
    if (ex_page_parse(&p, olm, (const char *)data, size, NULL, 1, false, &err) == DP_OK) {
        for (size_t i = 0; i < p->n_blocks; i++)
            if (p->blocks[i].prov.span_off + p->blocks[i].prov.span_len > size)
                __builtin_trap();
        if (ex_doc_add_page(doc, p, &err) == DP_OK && ex_doc_finish(doc, olm, &err) == DP_OK) {
            struct dp_buf b;
            dp_buf_init(&b, DP_MAX_TEXT_BYTES);
            dp_out_markdown(doc, &b, &err);
            dp_buf_reset(&b);
            dp_out_alto(doc, NULL, &b, &err);
            dp_buf_free(&b);
        }
    }
    ex_doc_free(doc);
    return 0;
}
