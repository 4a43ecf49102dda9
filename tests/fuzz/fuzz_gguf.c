/* Fuzz target gguf: arbitrary bytes as a GGUF file (counts, string lengths, value types, arrays,
 * alignment, tensor dims, types, offsets) through vl__gguf_open_mem; every accepted string,
 * array element and tensor byte is read so out-of-range views show up under ASan/UBSan. An
 * accepted file then goes through the vision projector's config and tensor mapping
 * (vl__gguf_proj_config / vl__gguf_proj_entries: q/k/v fusion, Conv3d interleave, k-quant and
 * block conversions), whose every produced byte is read too. */
#include "vl_gguf_impl.h"

#include <glib.h>
#include <jansson.h>

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
    /* the projector path (a text hidden size that fits the file's own claim) */
    int64_t hidden = 0;
    vl__gguf_int(g, "clip.vision.projection_dim", &hidden);
    json_t *root = json_object();
    double eps = 0;
    struct vl_error e2 = {0};
    if (vl__gguf_proj_config(root, g, hidden, &eps, &e2) != VL_OK && !e2.msg[0])
        __builtin_trap();
    json_decref(root);
    struct vl_model *m = vl__calloc(1, sizeof *m);
    GHashTable *desc = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    struct vl_st_entry *es = NULL;
    int n = 0;
    struct vl_error e3 = {0};
    if (m && vl__gguf_proj_entries(m, g, &es, &n, desc, &e3) != VL_OK && !e3.msg[0])
        __builtin_trap();
    for (int i = 0; i < n; i++) {
        const uint8_t *p = es[i].data;
        for (size_t k = 0; k < es[i].nbytes; k++)
            sink ^= p[k];
        vl__free((char *)es[i].name);
    }
    vl__free(es);
    g_hash_table_destroy(desc);
    vl_model_free(m);
    (void)sink;
    vl__gguf_close(g);
    return 0;
}
