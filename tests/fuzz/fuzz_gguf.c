/* Fuzz target gguf: arbitrary bytes as a GGUF file (counts, string lengths, value types, arrays,
 * alignment, tensor dims, types, offsets) through vl__gguf_open_mem; every accepted string,
 * array element and tensor byte is read so out-of-range views show up under ASan/UBSan. */
#include "vl_gguf_impl.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define FUZZ_MAX_BYTES ((size_t)1 << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > FUZZ_MAX_BYTES)
        return 0;
    struct vl_gguf *g = NULL;
    struct vl_error err = {0};
    if (vl__gguf_open_mem(&g, data, size, &err) != VL_OK) {
        if (!err.msg[0])
            __builtin_trap(); /* every refusal says why */
        return 0;
    }
    volatile uint8_t sink = 0;
    for (int64_t i = 0; i < g->n_kv; i++) {
        const struct vl_gguf_kv *kv = &g->kv[i];
        if (vl__gguf_find(g, kv->key) != kv)
            __builtin_trap();
        const char *s;
        size_t len;
        int64_t v;
        double d;
        for (uint64_t k = 0; vl__gguf_str(kv, k, &s, &len); k++)
            for (size_t j = 0; j < len; j++)
                sink ^= (uint8_t)s[j];
        for (uint64_t k = 0; vl__gguf_arr_int(kv, k, &v); k++)
            sink ^= (uint8_t)v;
        if (vl__gguf_int(g, kv->key, &v))
            sink ^= (uint8_t)v;
        if (vl__gguf_float(g, kv->key, &d))
            sink ^= (uint8_t)(d != d);
    }
    for (int64_t i = 0; i < g->n_tensors; i++) {
        const struct vl_gguf_tensor *t = &g->tensors[i];
        const uint8_t *p = t->data;
        for (size_t k = 0; k < t->nbytes; k++)
            sink ^= p[k];
        if (vl__gguf_tensor(g, t->name) != t)
            __builtin_trap(); /* names are unique and findable */
    }
    (void)sink;
    vl__gguf_close(g);
    return 0;
}
