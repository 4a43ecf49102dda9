/* The Qwen2.5-VL chat template (processor chat_template.json, spec §5.1) and placeholder
 * expansion (§5.2): render messages to the prompt string, tokenise it (special-token strings in
 * it become their ids), then replace the k-th <|image_pad|> / <|video_pad|> id by as many copies
 * as the k-th image / video yields LLM tokens (grid_t * grid_h * grid_w / merge^2).
 * The marker strings are read from the tokenizer by the ids in config.json where a model is
 * given; the render-only function uses the published spellings.
 * Thread-safety: pure functions; vl_chat_build only reads the model. */
#include "vl_impl.h"

#include <glib.h>
#include <stdlib.h>
#include <string.h>

#define IM_START "<|im_start|>"
#define IM_END "<|im_end|>"
#define VISION_START "<|vision_start|>"
#define VISION_END "<|vision_end|>"
#define IMAGE_PAD "<|image_pad|>"
#define VIDEO_PAD "<|video_pad|>"
#define ROLE_SYSTEM "system"
#define ROLE_USER "user"
#define ROLE_ASSISTANT "assistant"

struct markers {
    const char *im_start, *im_end, *vision_start, *vision_end, *image_pad, *video_pad;
};

static const struct markers published = {IM_START, IM_END, VISION_START, VISION_END, IMAGE_PAD,
                                         VIDEO_PAD};

static void render_msg(GString *s, const struct markers *mk, const struct vl_chat_msg *m,
                       bool vision_id, int *n_img, int *n_vid) {
    g_string_append_printf(s, "%s%s\n", mk->im_start, m->role);
    if (!m->parts) {
        g_string_append(s, m->text ? m->text : "");
    } else {
        for (int i = 0; i < m->n_parts; i++) {
            const struct vl_chat_part *p = &m->parts[i];
            if (p->type == VL_CHAT_IMAGE) {
                if (vision_id)
                    g_string_append_printf(s, "Picture %d: ", ++*n_img);
                g_string_append_printf(s, "%s%s%s", mk->vision_start, mk->image_pad,
                                       mk->vision_end);
            } else if (p->type == VL_CHAT_VIDEO) {
                if (vision_id)
                    g_string_append_printf(s, "Video %d: ", ++*n_vid);
                g_string_append_printf(s, "%s%s%s", mk->vision_start, mk->video_pad,
                                       mk->vision_end);
            } else {
                g_string_append(s, p->text ? p->text : "");
            }
        }
    }
    g_string_append_printf(s, "%s\n", mk->im_end);
}

static enum vl_status render(char **out, const struct markers *mk, const struct vl_chat_msg *msgs,
                             int n, bool add_generation_prompt, bool add_vision_id,
                             struct vl_error *err) {
    *out = NULL;
    for (int i = 0; i < n; i++)
        if (!msgs[i].role || !msgs[i].role[0] || (msgs[i].n_parts < 0) ||
            (msgs[i].n_parts > 0 && !msgs[i].parts))
            return vl__err(err, VL_ERR_INVALID, "chat message %d: needs a role and content", i);
    GString *s = g_string_new(NULL);
    int n_img = 0, n_vid = 0;
    if (n == 0 || strcmp(msgs[0].role, ROLE_SYSTEM)) {
        struct vl_chat_msg sys = {ROLE_SYSTEM, VL_CHAT_DEFAULT_SYSTEM, NULL, 0};
        render_msg(s, mk, &sys, false, &n_img, &n_vid);
    }
    for (int i = 0; i < n; i++)
        render_msg(s, mk, &msgs[i], add_vision_id, &n_img, &n_vid);
    if (add_generation_prompt)
        g_string_append_printf(s, "%s%s\n", mk->im_start, ROLE_ASSISTANT);
    *out = g_string_free(s, FALSE);
    return VL_OK;
}

enum vl_status vl_chat_render(char **out, const struct vl_chat_msg *msgs, int n,
                              bool add_generation_prompt, bool add_vision_id,
                              struct vl_error *err) {
    char *g = NULL;
    enum vl_status st = render(&g, &published, msgs, n, add_generation_prompt, add_vision_id, err);
    if (st != VL_OK)
        return st;
    *out = vl__strdup(g); /* documented as free()-able */
    g_free(g);
    return *out ? VL_OK : vl__err(err, VL_ERR_NOMEM, "out of memory");
}

int64_t vl_chat_tokens_for_grid(int64_t grid_t, int64_t grid_h, int64_t grid_w, int64_t merge) {
    if (grid_t <= 0 || grid_h <= 0 || grid_w <= 0 || merge <= 0 || grid_h % merge ||
        grid_w % merge)
        return -1;
    return grid_t * (grid_h / merge) * (grid_w / merge);
}

enum vl_status vl_chat_expand(int32_t *out, size_t cap, size_t *n_out, const int32_t *ids,
                              size_t n, int32_t pad_id, const int64_t *counts, int n_items,
                              struct vl_error *err) {
    size_t o = 0;
    int k = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] != pad_id) {
            if (o < cap)
                out[o] = ids[i];
            o++;
            continue;
        }
        if (k >= n_items)
            return vl__err(err, VL_ERR_INVALID,
                           "prompt has more placeholders (id %d) than the %d inputs given",
                           (int)pad_id, n_items);
        if (counts[k] < 0 || (uint64_t)counts[k] > SIZE_MAX - o)
            return vl__err(err, VL_ERR_INVALID, "input %d: bad token count %lld", k,
                           (long long)counts[k]);
        for (int64_t c = 0; c < counts[k]; c++, o++)
            if (o < cap)
                out[o] = pad_id;
        k++;
    }
    *n_out = o;
    if (k != n_items)
        return vl__err(err, VL_ERR_INVALID, "prompt has %d placeholders (id %d) for %d inputs", k,
                       (int)pad_id, n_items);
    if (o > cap)
        return vl__err(err, VL_ERR_LIMIT, "expanded prompt needs %zu tokens, capacity %zu", o,
                       cap);
    return VL_OK;
}

/* Marker strings as the tokenizer spells the ids of config.json. */
static enum vl_status model_markers(const struct vl_model *m, struct markers *mk, char **own,
                                    struct vl_error *err) {
    const struct vl_tokenizer *t = m->tok;
    *mk = published;
    const int32_t ids[] = {m->cfg.vision_start_token_id, m->cfg.vision_end_token_id,
                           m->cfg.image_token_id, m->cfg.video_token_id};
    const char **dst[] = {&mk->vision_start, &mk->vision_end, &mk->image_pad, &mk->video_pad};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        size_t len;
        const char *b = vl_tokenizer_token_bytes(t, ids[i], &len);
        if (!b || !vl_tokenizer_is_special(t, ids[i]))
            return vl__err(err, VL_ERR_MODEL, "tokenizer has no special token for id %d",
                           (int)ids[i]);
        own[i] = vl__strndup(b, len);
        if (!own[i])
            return vl__err(err, VL_ERR_NOMEM, "out of memory");
        *dst[i] = own[i];
    }
    if (vl_tokenizer_token_id(t, IM_START) < 0 || vl_tokenizer_token_id(t, IM_END) < 0)
        return vl__err(err, VL_ERR_MODEL, "tokenizer lacks %s / %s", IM_START, IM_END);
    return VL_OK;
}

enum vl_status vl_chat_build(const struct vl_model *m, const char *system, const char *user_text,
                             const struct vl_vision_input *vis, int n_vis, int32_t **out_ids,
                             size_t *n_out, struct vl_error *err) {
    *out_ids = NULL;
    *n_out = 0;
    if (!m->tok)
        return vl__err(err, VL_ERR_MODEL, "%s: the model has no tokenizer.json", m->dir);
    if (n_vis < 0 || n_vis > VL_CHAT_MAX_INPUTS)
        return vl__err(err, VL_ERR_INVALID, "%d visual inputs, max %d", n_vis, VL_CHAT_MAX_INPUTS);
    struct markers mk;
    char *own[4] = {0};
    enum vl_status st = model_markers(m, &mk, own, err);
    struct vl_chat_part parts[VL_CHAT_MAX_INPUTS + 1];
    int64_t img_counts[VL_CHAT_MAX_INPUTS], vid_counts[VL_CHAT_MAX_INPUTS];
    int n_img = 0, n_vid = 0;
    for (int i = 0; i < n_vis && st == VL_OK; i++) {
        int64_t c = vl_chat_tokens_for_grid(vis[i].grid_t, vis[i].grid_h, vis[i].grid_w,
                                            m->cfg.vision.spatial_merge_size);
        if (c < 0)
            st = vl__err(err, VL_ERR_INVALID, "input %d: grid %lldx%lldx%lld not mergeable", i,
                         (long long)vis[i].grid_t, (long long)vis[i].grid_h,
                         (long long)vis[i].grid_w);
        parts[i].type = vis[i].is_video ? VL_CHAT_VIDEO : VL_CHAT_IMAGE;
        parts[i].text = NULL;
        if (vis[i].is_video)
            vid_counts[n_vid++] = c;
        else
            img_counts[n_img++] = c;
    }
    parts[n_vis] = (struct vl_chat_part){VL_CHAT_TEXT, user_text ? user_text : ""};
    struct vl_chat_msg msgs[2] = {{ROLE_SYSTEM, system, NULL, 0},
                                  {ROLE_USER, NULL, parts, n_vis + 1}};
    int first = system ? 0 : 1;
    char *prompt = NULL;
    if (st == VL_OK)
        st = render(&prompt, &mk, msgs + first, 2 - first, true, false, err);
    int32_t *ids = NULL, *a = NULL, *b = NULL;
    size_t n = 0, na = 0, nb = 0;
    if (st == VL_OK) {
        size_t len = strlen(prompt), cap = len + 1; /* at most one id per byte */
        ids = vl__malloc(cap * sizeof *ids);
        st = ids ? vl_tokenizer_encode(m->tok, prompt, len, ids, cap, &n, err)
                 : vl__err(err, VL_ERR_NOMEM, "out of memory");
    }
    /* images, then videos; every expansion fits n + all counts */
    size_t cap = n;
    for (int i = 0; i < n_img; i++)
        cap += (size_t)img_counts[i];
    for (int i = 0; i < n_vid; i++)
        cap += (size_t)vid_counts[i];
    if (st == VL_OK) {
        a = vl__malloc((cap ? cap : 1) * sizeof *a);
        b = vl__malloc((cap ? cap : 1) * sizeof *b);
        if (!a || !b)
            st = vl__err(err, VL_ERR_NOMEM, "out of memory for %zu tokens", cap);
    }
    if (st == VL_OK)
        st = vl_chat_expand(a, cap, &na, ids, n, m->cfg.image_token_id, img_counts, n_img, err);
    if (st == VL_OK)
        st = vl_chat_expand(b, cap, &nb, a, na, m->cfg.video_token_id, vid_counts, n_vid, err);
    g_free(prompt);
    vl__free(ids);
    vl__free(a);
    for (int i = 0; i < 4; i++)
        vl__free(own[i]);
    if (st != VL_OK) {
        vl__free(b);
        return st;
    }
    *out_ids = b;
    *n_out = nb;
    return VL_OK;
}
