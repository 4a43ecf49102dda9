/* Fuzz target image: arbitrary bytes through dpingest's PNG and JPEG back ends (libpng,
 * libjpeg + libexif orientation), then, for small images, the model's preprocessing
 * (smart_resize, PIL bicubic, normalise, patchify). Inputs are capped early. */
#include "dp_ingest.h"
#include "vl.h"

#include <stddef.h>
#include <stdint.h>

#define FUZZ_MAX_BYTES ((size_t)1 << 20)
#define FUZZ_MAX_PIXELS ((size_t)1 << 22)
#define FUZZ_PREPROC_PIXELS (1 << 16)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    enum dp_format f = dp_format_sniff(data, size);
    if (size > FUZZ_MAX_BYTES || (f != DP_FORMAT_PNG && f != DP_FORMAT_JPEG))
        return 0;
    struct dp_ingest_opts o;
    dp_ingest_opts_init(&o);
    o.max_decode_pixels = FUZZ_MAX_PIXELS;
    struct dp_doc *d = NULL;
    struct dp_err err = {0};
    if (dp_doc_open_mem(&d, data, size, "fuzz.img", &o, &err) != DP_OK)
        return 0;
    struct dp_page pg;
    if (dp_doc_render(&pg, d, 0, &err) == DP_OK && pg.width * pg.height <= FUZZ_PREPROC_PIXELS) {
        struct vl_image_params p;
        vl_image_params_default(&p);
        p.max_pixels = FUZZ_PREPROC_PIXELS;
        struct vl_vision_input in;
        struct vl_error verr = {0};
        if (vl_image_preprocess(&in, pg.rgb, pg.width, pg.height, &p, &verr) == VL_OK)
            vl_vision_input_free(&in);
    }
    dp_page_free(&pg);
    dp_doc_close(d);
    return 0;
}
