/* Fuzz target: the tolerant JSON parser (ex__json_parse) and the page built from a JSON answer. */
#include "dp_limits.h"
#include "ex_impl.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_MAX_BYTES ((size_t)1 << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > FUZZ_MAX_BYTES)
        return 0;
    struct ex__wsink ws = {0};
    struct ex_jdoc jd;
    if (ex__json_parse(&jd, (const char *)data, 0, size, &ws) == DP_OK) {
        /* Every warning span lies inside the input. */
        for (size_t i = 0; i < ws.n; i++)
            if (ws.w[i].span_off > size || ws.w[i].span_len > size - ws.w[i].span_off)
                __builtin_trap();
        ex__json_free(&jd);
    }
    for (size_t i = 0; i < ws.n; i++)
        ex__warning_free(&ws.w[i]);
    free(ws.w);
    struct ex_page *p = NULL;
    struct dp_err err = {0};
    struct ex_geom g = {.model_w = 868, .model_h = 1400, .page_w = 870, .page_h = 1398};
    if (ex_page_parse(&p, NULL, (const char *)data, size, &g, 1, false, &err) == DP_OK)
        ex_page_free(p);
    return 0;
}
