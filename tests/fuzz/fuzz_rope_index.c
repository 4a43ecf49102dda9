/* Fuzz target for the LLM-side handling of untrusted prompts: a `--raw` prompt may place any
 * number of image/video pad tokens anywhere. Bytes become a small vision list (grids) and a
 * token sequence over a tiny id space in which ids 3 and 4 are the image and video pads; then
 * vl_prompt_expand and vl__rope_index run on it (and on the expanded ids), and the sampler picks
 * from byte-derived logits with byte-derived parameters. Input capped early; single-threaded. */
#include "vl_llm_impl.h"

#include <stdlib.h>
#include <string.h>

#define MAX_INPUT 4096
#define MAX_VIS 4
#define N_VOCAB 16
#define ID_IMAGE 3
#define ID_VIDEO 4

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2 || size > MAX_INPUT)
        return 0;
    struct vl_model m;
    memset(&m, 0, sizeof m);
    m.cfg.image_token_id = ID_IMAGE;
    m.cfg.video_token_id = ID_VIDEO;
    m.cfg.vision_start_token_id = 5;
    m.cfg.vision_end_token_id = 6;
    m.cfg.vision.spatial_merge_size = 2;
    m.cfg.vision.tokens_per_second = 2;
    m.cfg.text.vocab_size = N_VOCAB;
    m.cfg.gen.n_eos = 1;
    m.cfg.gen.eos_token_ids[0] = 7;
    int n_vis = data[0] % (MAX_VIS + 1);
    struct vl_vision_input vis[MAX_VIS];
    memset(vis, 0, sizeof vis);
    size_t at = 1;
    for (int k = 0; k < n_vis && at < size; k++, at++) {
        uint8_t b = data[at];
        vis[k].grid_t = 1 + (b & 1);
        vis[k].grid_h = 2 * (1 + ((b >> 1) & 3)); /* merge-aligned */
        vis[k].grid_w = 2 * (1 + ((b >> 3) & 3));
        vis[k].is_video = (b >> 5) & 1;
        vis[k].second_per_grid_t = (double)((b >> 6) & 3) * 0.5;
        vis[k].n_patches = vis[k].grid_t * vis[k].grid_h * vis[k].grid_w;
    }
    int64_t n = (int64_t)(size - at);
    int32_t *ids = malloc((size_t)(n + 1) * sizeof *ids);
    int64_t *pos = malloc((size_t)(3 * (n + 1)) * sizeof *pos);
    if (!ids || !pos) {
        free(ids);
        free(pos);
        return 0;
    }
    for (int64_t i = 0; i < n; i++)
        ids[i] = data[at + (size_t)i] % N_VOCAB;
    int64_t delta;
    struct vl_error err = {0};
    (void)vl__rope_index(pos, &delta, ids, n, &m.cfg, vis, n_vis, &err);
    int32_t *ex = NULL;
    int64_t n_ex = 0;
    memset(&err, 0, sizeof err);
    if (vl_prompt_expand(&ex, &n_ex, &m, ids, n, vis, n_vis, &err) == VL_OK) {
        int64_t *pos2 = malloc((size_t)(3 * (n_ex + 1)) * sizeof *pos2);
        memset(&err, 0, sizeof err);
        /* every expanded prompt is consistent with its inputs by construction */
        if (pos2 && vl__rope_index(pos2, &delta, ex, n_ex, &m.cfg, vis, n_vis, &err) != VL_OK)
            abort(); /* check_style: allow (fuzz oracle) */
        free(pos2);
    }
    free(ex);
    /* sampler on byte-derived logits */
    uint8_t seen[N_VOCAB];
    float work[N_VOCAB], z[N_VOCAB];
    int32_t cand[N_VOCAB];
    struct vl_sampler s = {.n_vocab = N_VOCAB, .seen = seen, .work = work, .cand = cand};
    for (int i = 0; i < N_VOCAB; i++)
        z[i] = (float)data[((size_t)i * 7) % size] / 16.0f - 8.0f;
    struct vl_gen_params p = vl_gen_default_params();
    p.temperature = (float)(data[size - 1] % 4) * 0.5f;
    p.top_k = data[size - 2] % 5;
    p.top_p = (float)(1 + data[size - 1] % 10) / 10.0f;
    p.ignore_eos = data[size - 2] & 8;
    vl__sampler_seed(&s, data[0]);
    vl__sampler_begin(&s, ids, n);
    float lp;
    int32_t id = vl__sampler_pick(&s, z, &p, &m.cfg, &lp);
    if (id < 0 || id >= N_VOCAB || (p.ignore_eos && id == 7))
        abort(); /* check_style: allow (fuzz oracle) */
    free(ids);
    free(pos);
    return 0;
}
