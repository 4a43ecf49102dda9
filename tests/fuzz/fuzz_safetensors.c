/* Fuzz target safetensors: arbitrary bytes as a safetensors file (header length, JSON header,
 * dtypes, shapes, offsets, overlaps) through vl_st_open_mem; every accepted tensor's bytes are
 * read in full so out-of-range views show up under ASan. Inputs are capped early. */
#include "vl_tools.h"

#include <stddef.h>
#include <stdint.h>

#define FUZZ_MAX_BYTES ((size_t)1 << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > FUZZ_MAX_BYTES)
        return 0;
    struct vl_st_file *f = NULL;
    struct vl_error err = {0};
    if (vl_st_open_mem(&f, data, size, &err) != VL_OK)
        return 0;
    volatile uint8_t sink = 0;
    for (int i = 0; i < vl_st_count(f); i++) {
        const struct vl_st_entry *e = vl_st_get(f, i);
        const uint8_t *p = e->data;
        for (size_t k = 0; k < e->nbytes; k++)
            sink ^= p[k];
        if (vl_st_find(f, e->name) != e)
            __builtin_trap(); /* names are unique and findable */
    }
    (void)sink;
    vl_st_close(f);
    return 0;
}
