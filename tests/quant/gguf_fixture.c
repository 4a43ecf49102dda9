/* Test helper for cli_gguf.sh: writes the tiny fixture as llama.cpp GGUF files into OUT_DIR:
 *   text-bf16.gguf   text model (BF16, tokenizer from tokenizer.json)
 *   text-q8_0.gguf   text model with Q8_0 Linear weights (quantized at load, then written)
 *   text-llama.gguf  the text model under general.architecture llama
 *   mmproj-bf16.gguf the vision tower as llama.cpp's projector (BF16: exact)
 *   mmproj-bad.gguf  a projector whose projection_dim does not fit the text model
 *   pair/            text-bf16 and mmproj-bf16 side by side (llama.cpp's download layout)
 * usage: gguf_fixture MODEL_DIR OUT_DIR; exit 0 on success. */
#include "gguf_writer.h"

#include <stdio.h>
#include <sys/stat.h>

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: gguf_fixture MODEL_DIR OUT_DIR\n");
        return 2;
    }
    struct vl_model *m = NULL, *q8 = NULL;
    struct vl_error err = {0};
    if (vl_model_load(&m, argv[1], &err) != VL_OK || vl_model_load(&q8, argv[1], &err) != VL_OK ||
        vl_model_quantize(q8, VL_WFORMAT_Q8, VL_WFORMAT_BF16, 1, &err) != VL_OK) {
        fprintf(stderr, "gguf_fixture: %s\n", err.msg);
        return 1;
    }
    char p[4096], tj[4096];
    snprintf(tj, sizeof tj, "%s/tokenizer.json", argv[1]);
    int rc = 0;
#define OUT(name) (snprintf(p, sizeof p, "%s/%s", argv[2], name), p)
    rc |= gw_write(OUT("text-bf16.gguf"), m, VL_GGML_BF16, NULL, tj);
    rc |= gw_write(OUT("text-q8_0.gguf"), q8, VL_GGML_BF16, NULL, tj);
    rc |= gw_write(OUT("text-llama.gguf"), m, VL_GGML_BF16, "llama", tj);
    rc |= gw_write_mmproj(OUT("mmproj-bf16.gguf"), m, VL_GGML_BF16, NULL);
    struct gw_proj_opts bad = {.projection_dim = 2 * m->cfg.text.hidden_size};
    rc |= gw_write_mmproj(OUT("mmproj-bad.gguf"), m, VL_GGML_F16, &bad);
    mkdir(OUT("pair"), 0700);
    rc |= gw_write(OUT("pair/model-bf16.gguf"), m, VL_GGML_BF16, NULL, tj);
    rc |= gw_write_mmproj(OUT("pair/mmproj-model-bf16.gguf"), m, VL_GGML_BF16, NULL);
#undef OUT
    vl_model_free(m);
    vl_model_free(q8);
    if (rc)
        fprintf(stderr, "gguf_fixture: write failed\n");
    return rc ? 1 : 0;
}
