/* Fuzz target tiff_mem: arbitrary bytes through dpingest's TIFF back end (libtiff from memory
 * with the per-handle error handler), every page decoded, orientation applied, then fitted
 * to the model size for small pages. Inputs are capped early; only TIFF-sniffed data is used. */
#include "dp_ingest.h"

#include <stddef.h>
#include <stdint.h>

#define FUZZ_MAX_BYTES ((size_t)1 << 20)
#define FUZZ_MAX_PIXELS ((size_t)1 << 22)
#define FUZZ_MAX_PAGES 8
#define FUZZ_FIT_PIXELS (1 << 18)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > FUZZ_MAX_BYTES || dp_format_sniff(data, size) != DP_FORMAT_TIFF)
        return 0;
    struct dp_ingest_opts o;
    dp_ingest_opts_init(&o);
    o.max_decode_pixels = FUZZ_MAX_PIXELS;
    struct dp_doc *d = NULL;
    struct dp_err err = {0};
    if (dp_doc_open_mem(&d, data, size, "fuzz.tif", &o, &err) != DP_OK)
        return 0;
    for (int i = 0; i < dp_doc_page_count(d) && i < FUZZ_MAX_PAGES; i++) {
        struct dp_page pg;
        struct dp_err e = {0};
        if (dp_doc_render(&pg, d, i, &e) == DP_OK && pg.width * pg.height <= FUZZ_FIT_PIXELS)
            dp_page_fit(&pg, &o, &e);
        dp_page_free(&pg);
    }
    dp_doc_close(d);
    return 0;
}
