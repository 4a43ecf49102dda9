/* Fuzz target config: the first byte picks the parser (config.json, preprocessor_config.json,
 * generation_config.json), the rest is the JSON text. Accepted configs must satisfy the
 * invariants the rest of libvl relies on (positive sizes, head_dim * heads == hidden, ...). */
#include "vl_impl.h"

#include <stddef.h>
#include <stdint.h>

#define FUZZ_MAX_BYTES ((size_t)1 << 16)
#define N_PARSERS 3

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size > FUZZ_MAX_BYTES)
        return 0;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    struct vl_error err = {0};
    struct vl_config c;
    switch (data[0] % N_PARSERS) {
    case 0:
        if (vl__config_parse(&c, text, len, "config.json", &err) == VL_OK) {
            if (c.text.head_dim * c.text.num_attention_heads != c.text.hidden_size ||
                c.text.num_attention_heads % c.text.num_key_value_heads || c.vision.depth < 1 ||
                c.vision.n_fullatt > VL_MAX_FULLATT_BLOCKS)
                __builtin_trap();
            for (int i = 0; i < c.vision.n_fullatt; i++)
                if (c.vision.fullatt_block_indexes[i] >= c.vision.depth)
                    __builtin_trap();
        }
        break;
    case 1: {
        struct vl_preproc_config p;
        if (vl__preproc_parse(&p, NULL, text, len, "preprocessor_config.json", &err) == VL_OK &&
            (p.min_pixels > p.max_pixels || !(p.image_std[0] > 0)))
            __builtin_trap();
        break;
    }
    default: {
        struct vl_gen_config g;
        if (vl__gen_parse(&g, text, len, "generation_config.json", &err) == VL_OK &&
            (g.n_eos < 0 || g.n_eos > VL_MAX_EOS_IDS))
            __builtin_trap();
        break;
    }
    }
    return 0;
}
