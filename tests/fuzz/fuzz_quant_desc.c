/* Fuzz target quant_desc: the input is a quantized checkpoint's quantization.json
 * (vl__quant_desc_parse, model/vl_quant_ckpt.c). An accepted description must hold only what
 * the binding relies on: version 1 or 2, every entry a Q8_0 / Q4_0 type with a name below the
 * name limit, and (version 2: always) a shape of two dimensions in [1, VL_QUANT_DIM_MAX]. */
#include "vl_quant_impl.h"

#include <glib.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define FUZZ_MAX_BYTES ((size_t)1 << 16)
#define FUZZ_NAME_MAX 256 /* vl_quant_ckpt.c's NAME_MAX_LEN */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > FUZZ_MAX_BYTES)
        return 0;
    void *h = NULL;
    int version = 0;
    struct vl_error err = {0};
    if (vl__quant_desc_parse(&h, &version, (const char *)data, size, "quantization.json", &err) !=
        VL_OK) {
        if (h || !err.msg[0])
            __builtin_trap();
        return 0;
    }
    if (!h || (version != VL_QUANT_DESC_V1 && version != VL_QUANT_DESC_VERSION))
        __builtin_trap();
    GHashTableIter it;
    gpointer key, val;
    g_hash_table_iter_init(&it, h);
    while (g_hash_table_iter_next(&it, &key, &val)) {
        const struct vl_quant_entry *e = val;
        if (!vl__dtype_is_quant(e->t) || strlen(key) >= FUZZ_NAME_MAX ||
            (version == VL_QUANT_DESC_VERSION && !e->has_shape))
            __builtin_trap();
        for (int d = 0; e->has_shape && d < 2; d++)
            if (e->shape[d] < 1 || e->shape[d] > VL_QUANT_DIM_MAX)
                __builtin_trap();
    }
    g_hash_table_destroy(h);
    return 0;
}
