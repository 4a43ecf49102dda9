/* Multimodal rotary positions (MRoPE) of Qwen2.5-VL: get_rope_index (spec §6.1: text, images,
 * several images, videos with absolute-time temporal ids), rope_deltas, the section-selected
 * cos/sin tables and their rotate-half application to q/k heads (spec §6.6).
 * Pure functions on caller buffers; thread-safe.
 *
 * Rules chosen where reference versions differ (spec §3.5, §6.3): second_per_grid_t is
 * truncated to an integer before scaling (later 4.x and 5.x, the golden's transformers 5.17), and
 * text after a video continues at 1 + the maximum position so far (the original Qwen rule, equal
 * to 5.x's base + max(LH, LW) for images and for the fixture video). */
#include "vl_llm_impl.h"

#include <math.h>
#include <string.h>

int64_t vl__vision_tokens(const struct vl_config *cfg, const struct vl_vision_input *in) {
    int64_t m = cfg->vision.spatial_merge_size;
    if (m <= 0 || in->grid_t <= 0 || in->grid_h <= 0 || in->grid_w <= 0)
        return 0;
    return in->grid_t * (in->grid_h / m) * (in->grid_w / m);
}

int64_t vl_vision_tokens(const struct vl_model *model, const struct vl_vision_input *in) {
    return vl__vision_tokens(&model->cfg, in);
}

/* Next input of the wanted kind at or after *cursor, advancing the cursor; NULL when none. */
static const struct vl_vision_input *next_input(const struct vl_vision_input *vis, int n_vis,
                                                int *cursor, bool video) {
    while (*cursor < n_vis) {
        const struct vl_vision_input *in = &vis[(*cursor)++];
        if (in->is_video == video)
            return in;
    }
    return NULL;
}

static int64_t first_of(const int32_t *ids, int64_t n, int64_t from, int32_t tok) {
    for (int64_t i = from; i < n; i++)
        if (ids[i] == tok)
            return i;
    return -1;
}

/* Temporal id of frame-pair g: g * trunc(second_per_grid_t) * tokens_per_second (spec §3.5). */
static int64_t temporal_id(int64_t g, double sgt, double tokens_per_second) {
    double whole = trunc(sgt);
    return (int64_t)((double)g * whole * tokens_per_second);
}

enum vl_status vl__rope_index(int64_t *pos, int64_t *out_delta, const int32_t *ids, int64_t n,
                              const struct vl_config *cfg, const struct vl_vision_input *vis,
                              int n_vis, struct vl_error *err) {
    int64_t *pt = pos, *ph = pos + n, *pw = pos + 2 * n;
    const int64_t merge = cfg->vision.spatial_merge_size;
    int64_t st = 0;      /* next unprocessed sequence index */
    int64_t next = 0;    /* 1 + max position so far (0 when empty) */
    int img_cur = 0, vid_cur = 0, n_img = 0, n_vid = 0;
    if (merge <= 0)
        return vl__err(err, VL_ERR_MODEL, "config: spatial_merge_size %lld must be >= 1",
                       (long long)merge);
    for (;;) {
        int64_t e_img = first_of(ids, n, st, cfg->image_token_id);
        int64_t e_vid = first_of(ids, n, st, cfg->video_token_id);
        if (e_img < 0 && e_vid < 0)
            break;
        bool video = e_img < 0 || (e_vid >= 0 && e_vid < e_img);
        int64_t ed = video ? e_vid : e_img;
        const struct vl_vision_input *in =
            next_input(vis, n_vis, video ? &vid_cur : &img_cur, video);
        int k = video ? n_vid++ : n_img++;
        if (!in)
            return vl__err(err, VL_ERR_INVALID,
                           "prompt has more %s placeholders than inputs: %s block %d at token "
                           "%lld has no %s",
                           video ? "video" : "image", video ? "video" : "image", k + 1,
                           (long long)ed, video ? "video" : "image");
        int64_t lt = in->grid_t, lh = in->grid_h / merge, lw = in->grid_w / merge;
        int64_t n_tok = vl__vision_tokens(cfg, in);
        int32_t pad = video ? cfg->video_token_id : cfg->image_token_id;
        int64_t run = 0; /* pads available for this input (adjacent blocks are allowed, as in
                          * the reference: a longer run continues with the next input) */
        while (ed + run < n && run < n_tok && ids[ed + run] == pad)
            run++;
        if (n_tok <= 0 || run != n_tok)
            return vl__err(err, VL_ERR_INVALID,
                           "%s %d needs %lld placeholder tokens (grid %lldx%lldx%lld), the prompt "
                           "has only %lld at token %lld",
                           video ? "video" : "image", k + 1, (long long)n_tok,
                           (long long)in->grid_t, (long long)in->grid_h, (long long)in->grid_w,
                           (long long)run, (long long)ed);
        for (int64_t i = st; i < ed; i++) {
            pt[i] = ph[i] = pw[i] = next + (i - st);
        }
        int64_t base = next + (ed - st);
        int64_t maxp = base - 1, s = ed;
        for (int64_t g = 0; g < lt; g++) {
            int64_t tid = video ? temporal_id(g, in->second_per_grid_t,
                                              cfg->vision.tokens_per_second)
                                : 0;
            for (int64_t y = 0; y < lh; y++)
                for (int64_t x = 0; x < lw; x++, s++) {
                    pt[s] = base + tid;
                    ph[s] = base + y;
                    pw[s] = base + x;
                    int64_t mx = pt[s] > ph[s] ? pt[s] : ph[s];
                    mx = mx > pw[s] ? mx : pw[s];
                    maxp = mx > maxp ? mx : maxp;
                }
        }
        next = maxp + 1;
        st = ed + n_tok;
    }
    for (int64_t i = st; i < n; i++)
        pt[i] = ph[i] = pw[i] = next + (i - st);
    if (n > st)
        next += n - st;
    /* inputs left over: fewer placeholders than inputs */
    const struct vl_vision_input *left_img = next_input(vis, n_vis, &img_cur, false);
    const struct vl_vision_input *left_vid = next_input(vis, n_vis, &vid_cur, true);
    if (left_img || left_vid)
        return vl__err(err, VL_ERR_INVALID,
                       "prompt has fewer %s placeholders than inputs (%d found)",
                       left_img ? "image" : "video", left_img ? n_img : n_vid);
    *out_delta = next - n;
    return VL_OK;
}

void vl__rope_inv_freq(float *inv_freq, int64_t hd, double theta) {
    for (int64_t j = 0; j < hd / 2; j++)
        inv_freq[j] = 1.0f / powf((float)theta, (float)(2 * j) / (float)hd);
}

void vl__mrope_tables(float *cos_t, float *sin_t, const int64_t *pos, int64_t pos_stride,
                      int64_t n, const float *inv_freq, int64_t hd, const int64_t *section) {
    const int64_t half = hd / 2;
    for (int64_t i = 0; i < n; i++) {
        float *c = cos_t + i * hd, *sn = sin_t + i * hd;
        int axis = 0;
        int64_t bound = section[0];
        for (int64_t j = 0; j < half; j++) {
            while (j >= bound && axis < VL_ROPE_AXES - 1)
                bound += section[++axis];
            float ang = (float)pos[axis * pos_stride + i] * inv_freq[j];
            c[j] = c[j + half] = (float)cos((double)ang);
            sn[j] = sn[j + half] = (float)sin((double)ang);
        }
    }
}

void vl__mrope_apply(float *x, int64_t n, int64_t n_heads, int64_t hd, const float *cos_t,
                     const float *sin_t) {
    const int64_t half = hd / 2;
    for (int64_t i = 0; i < n; i++) {
        const float *c = cos_t + i * hd, *sn = sin_t + i * hd;
        for (int64_t h = 0; h < n_heads; h++) {
            float *v = x + (i * n_heads + h) * hd;
            for (int64_t j = 0; j < half; j++) {
                float a = v[j], b = v[j + half];
                v[j] = a * c[j] - b * sn[j];
                v[j + half] = b * c[j + half] + a * sn[j + half];
            }
        }
    }
}
