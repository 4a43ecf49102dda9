/* Typed configuration from a published checkpoint directory: config.json (flat, or with the LLM
 * fields nested under "text_config" as newer transformers write it), preprocessor_config.json and
 * generation_config.json (spec §1.2-1.4). Every hyperparameter is named in struct vl_config; a
 * field absent from the file falls back to the PUBLISHED Qwen2.5-VL value (the table below), never
 * to transformers' class defaults, and size fields that differ between model sizes are required.
 * Qwen2-VL is recognised and refused as not yet supported; other architectures are refused.
 * Thread-safe: pure functions over caller-owned structs. */
#include "vl_impl.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- published values (spec §1.2-1.4), used when a field is absent -------------------------- */

#define PUB_MODEL_TYPE "qwen2_5_vl"
#define PUB_ARCH "Qwen2_5_VLForConditionalGeneration"
#define QWEN2VL_MODEL_TYPE "qwen2_vl"
#define QWEN2VL_ARCH "Qwen2VLForConditionalGeneration"

#define PUB_VIT_DEPTH 32
#define PUB_VIT_HIDDEN 1280
#define PUB_VIT_HEADS 16
#define PUB_VIT_INTERMEDIATE 3420 /* 3B and 7B (32B/72B publish 3456 explicitly) */
#define PUB_VIT_PATCH 14
#define PUB_VIT_TEMPORAL_PATCH 2
#define PUB_VIT_MERGE 2
#define PUB_VIT_WINDOW 112
#define PUB_VIT_IN_CHANS 3
#define PUB_VIT_TOKENS_PER_SECOND 2.0
#define PUB_VIT_RMS_EPS 1e-6 /* hard-coded in the reference ViT (not in config.json) */
static const int64_t pub_fullatt[] = {7, 15, 23, 31};

#define PUB_RMS_EPS 1e-6
#define PUB_ROPE_THETA 1000000.0
#define PUB_MAX_POSITIONS 128000
static const int64_t pub_mrope[VL_MROPE_SECTIONS] = {16, 24, 24};

#define PUB_BOS_ID VL_PUB_BOS_ID
#define PUB_EOS_ID VL_PUB_EOS_ID
#define PUB_PAD_ID VL_PUB_BOS_ID
#define PUB_VISION_START_ID VL_PUB_VISION_START_ID
#define PUB_VISION_END_ID VL_PUB_VISION_END_ID
#define PUB_VISION_PAD_ID VL_PUB_VISION_PAD_ID
#define PUB_IMAGE_PAD_ID VL_PUB_IMAGE_PAD_ID
#define PUB_VIDEO_PAD_ID VL_PUB_VIDEO_PAD_ID

/* Pixel budget and mean/std: the published values of vl.h (VL_IMAGE_DEFAULT_*). */
#define PUB_RESCALE (1.0 / 255.0)

/* generation_config.json absent: the published behaviour, effectively greedy with a 1.05
 * repetition penalty (spec §1.4, §7.4). Present but a field missing: transformers'
 * GenerationConfig class defaults, which is what the reference does with such a file. */
#define HF_GEN_TEMPERATURE 1.0
#define HF_GEN_TOP_P 1.0
#define HF_GEN_TOP_K 50
#define HF_GEN_REPETITION_PENALTY 1.0

/* Sanity bounds on sizes read from files (far above the 72B model; keep products in range). */
#define CFG_MAX_WIDTH ((int64_t)1 << 17)
#define CFG_MAX_LAYERS 1024
#define CFG_MAX_VOCAB ((int64_t)1 << 22)
#define CFG_MAX_POSITIONS ((int64_t)1 << 24)
#define CFG_MAX_PATCH 1024
#define CFG_MAX_PIXELS ((int64_t)1 << 40)
#define CFG_MAX_TOKEN_ID ((int64_t)INT32_MAX)

/* ---- JSON helpers: look a key up in the primary object, then the fallback -------------------- */

struct src {
    const char *file;  /* for messages */
    json_t *primary;   /* text_config or the root */
    json_t *fallback;  /* the root, or NULL */
};

static json_t *lookup(const struct src *s, const char *key) {
    json_t *v = s->primary ? json_object_get(s->primary, key) : NULL;
    if ((!v || json_is_null(v)) && s->fallback)
        v = json_object_get(s->fallback, key);
    return json_is_null(v) ? NULL : v;
}

static enum vl_status get_int(const struct src *s, const char *key, bool required, int64_t def,
                              int64_t min, int64_t max, int64_t *out, struct vl_error *err) {
    json_t *v = lookup(s, key);
    if (!v) {
        if (required)
            return vl__err(err, VL_ERR_MODEL, "%s: missing required field '%s'", s->file, key);
        *out = def;
        return VL_OK;
    }
    if (!json_is_integer(v))
        return vl__err(err, VL_ERR_MODEL, "%s: field '%s' must be an integer", s->file, key);
    json_int_t x = json_integer_value(v);
    if (x < min || x > max)
        return vl__err(err, VL_ERR_MODEL, "%s: field '%s' = %lld out of range [%lld, %lld]",
                       s->file, key, (long long)x, (long long)min, (long long)max);
    *out = (int64_t)x;
    return VL_OK;
}

static enum vl_status get_num(const struct src *s, const char *key, double def, double min,
                              double max, double *out, struct vl_error *err) {
    json_t *v = lookup(s, key);
    if (!v) {
        *out = def;
        return VL_OK;
    }
    if (!json_is_number(v))
        return vl__err(err, VL_ERR_MODEL, "%s: field '%s' must be a number", s->file, key);
    double x = json_number_value(v);
    if (!(x >= min && x <= max))
        return vl__err(err, VL_ERR_MODEL, "%s: field '%s' = %g out of range [%g, %g]", s->file,
                       key, x, min, max);
    *out = x;
    return VL_OK;
}

static enum vl_status get_bool(const struct src *s, const char *key, bool def, bool *out,
                               bool *present, struct vl_error *err) {
    json_t *v = lookup(s, key);
    if (present)
        *present = v != NULL;
    if (!v) {
        *out = def;
        return VL_OK;
    }
    if (!json_is_boolean(v))
        return vl__err(err, VL_ERR_MODEL, "%s: field '%s' must be true or false", s->file, key);
    *out = json_is_true(v);
    return VL_OK;
}

/* An integer array of exactly n (n_out NULL) or at most n (*n_out set) elements. */
static enum vl_status get_int_array(const struct src *s, json_t *v, const char *key, int64_t *dst,
                                    int n, int *n_out, int64_t min, int64_t max,
                                    struct vl_error *err) {
    size_t len = json_is_array(v) ? json_array_size(v) : 0;
    if (!json_is_array(v) || (n_out ? len > (size_t)n : len != (size_t)n))
        return vl__err(err, VL_ERR_MODEL, "%s: field '%s' must be an array of %s%d integers",
                       s->file, key, n_out ? "at most " : "", n);
    for (size_t i = 0; i < len; i++) {
        json_t *x = json_array_get(v, i);
        if (!json_is_integer(x) || json_integer_value(x) < min || json_integer_value(x) > max)
            return vl__err(err, VL_ERR_MODEL, "%s: field '%s'[%zu] is not an integer in [%lld, %lld]",
                           s->file, key, i, (long long)min, (long long)max);
        dst[i] = (int64_t)json_integer_value(x);
    }
    if (n_out)
        *n_out = (int)len;
    return VL_OK;
}

static enum vl_status get_token_id(const struct src *s, const char *key, int32_t def, int32_t *out,
                                   struct vl_error *err) {
    int64_t v;
    enum vl_status st = get_int(s, key, false, def, 0, CFG_MAX_TOKEN_ID, &v, err);
    *out = (int32_t)v;
    return st;
}

enum vl_status vl__read_file(const char *path, size_t max, char **out, size_t *out_len,
                             struct vl_error *err) {
    *out = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return vl__err(err, VL_ERR_IO, "%s: %s", path, strerror(errno));
    char *buf = NULL;
    size_t len = 0, cap = 0;
    enum vl_status st = VL_OK;
    for (;;) {
        if (len == cap) {
            size_t ncap = cap ? cap * 2 : 65536;
            if (ncap > max + 1)
                ncap = max + 1;
            if (ncap <= len) {
                st = vl__err(err, VL_ERR_LIMIT, "%s: larger than the limit of %zu bytes", path,
                             max);
                break;
            }
            char *nb = vl__realloc(buf, ncap + 1);
            if (!nb) {
                st = vl__err(err, VL_ERR_NOMEM, "%s: out of memory", path);
                break;
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + len, 1, cap - len, fp);
        len += got;
        if (got == 0) {
            if (ferror(fp))
                st = vl__err(err, VL_ERR_IO, "%s: read error", path);
            break;
        }
    }
    fclose(fp);
    if (st != VL_OK) {
        vl__free(buf);
        return st;
    }
    if (!buf && !(buf = vl__malloc(1)))
        return vl__err(err, VL_ERR_NOMEM, "%s: out of memory", path);
    buf[len] = '\0';
    *out = buf;
    *out_len = len;
    return VL_OK;
}

static json_t *parse_json(const char *text, size_t len, const char *file, struct vl_error *err) {
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        vl__err(err, VL_ERR_MODEL, "%s: invalid JSON: %s (line %d)", file, jerr.text, jerr.line);
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        vl__err(err, VL_ERR_MODEL, "%s: not a JSON object", file);
        return NULL;
    }
    return root;
}

/* ---- config.json ----------------------------------------------------------------------- */

static enum vl_status check_architecture(json_t *root, const char *file, char *model_type,
                                         size_t cap, struct vl_error *err) {
    json_t *mt = json_object_get(root, "model_type");
    json_t *arch = json_object_get(root, "architectures");
    const char *a0 = json_is_array(arch) && json_is_string(json_array_get(arch, 0))
                         ? json_string_value(json_array_get(arch, 0))
                         : NULL;
    const char *t = json_is_string(mt) ? json_string_value(mt) : NULL;
    if (!t && a0 && !strcmp(a0, PUB_ARCH))
        t = PUB_MODEL_TYPE;
    if ((t && !strcmp(t, QWEN2VL_MODEL_TYPE)) || (a0 && !strcmp(a0, QWEN2VL_ARCH)))
        return vl__err(err, VL_ERR_UNSUPPORTED,
                       "%s: Qwen2-VL checkpoints (model_type '%s') are recognised but not yet "
                       "supported; use a Qwen2.5-VL checkpoint",
                       file, QWEN2VL_MODEL_TYPE);
    if (!t || strcmp(t, PUB_MODEL_TYPE))
        return vl__err(err, VL_ERR_UNSUPPORTED,
                       "%s: unknown architecture (model_type '%.64s', architectures[0] '%.64s'); "
                       "only '%s' is supported",
                       file, t ? t : "(none)", a0 ? a0 : "(none)", PUB_MODEL_TYPE);
    snprintf(model_type, cap, "%s", t);
    return VL_OK;
}

static enum vl_status check_act(const struct src *s, const char *key, struct vl_error *err) {
    json_t *v = lookup(s, key);
    if (v && (!json_is_string(v) || strcmp(json_string_value(v), "silu")))
        return vl__err(err, VL_ERR_UNSUPPORTED, "%s: %s '%.32s' is not supported (only silu)",
                       s->file, key, json_is_string(v) ? json_string_value(v) : "?");
    return VL_OK;
}

/* rope_scaling {type|rope_type: mrope|default, mrope_section} or (transformers 5) rope_parameters
 * {rope_type, rope_theta, mrope_section}. */
static enum vl_status parse_rope(const struct src *s, struct vl_text_config *t,
                                 struct vl_error *err) {
    memcpy(t->mrope_section, pub_mrope, sizeof pub_mrope);
    json_t *rp = lookup(s, "rope_parameters");
    json_t *rs = lookup(s, "rope_scaling");
    const char *names[2] = {"rope_scaling", "rope_parameters"};
    json_t *objs[2] = {rs, rp};
    for (int i = 0; i < 2; i++) {
        json_t *o = objs[i];
        if (!o)
            continue;
        if (!json_is_object(o))
            return vl__err(err, VL_ERR_MODEL, "%s: %s must be an object", s->file, names[i]);
        const char *keys[2] = {"type", "rope_type"};
        for (int k = 0; k < 2; k++) {
            json_t *ty = json_object_get(o, keys[k]);
            if (ty && (!json_is_string(ty) || (strcmp(json_string_value(ty), "mrope") &&
                                               strcmp(json_string_value(ty), "default"))))
                return vl__err(err, VL_ERR_UNSUPPORTED,
                               "%s: %s.%s '%.32s' is not supported (only mrope/default)", s->file,
                               names[i], keys[k], json_is_string(ty) ? json_string_value(ty) : "?");
        }
        json_t *ms = json_object_get(o, "mrope_section");
        if (ms) {
            enum vl_status st = get_int_array(s, ms, "mrope_section", t->mrope_section,
                                              VL_MROPE_SECTIONS, NULL, 0, CFG_MAX_WIDTH, err);
            if (st != VL_OK)
                return st;
        }
        json_t *th = json_object_get(o, "rope_theta");
        if (th) {
            if (!json_is_number(th) || !(json_number_value(th) > 1.0))
                return vl__err(err, VL_ERR_MODEL, "%s: %s.rope_theta must be a number > 1",
                               s->file, names[i]);
            t->rope_theta = json_number_value(th);
        }
    }
    return VL_OK;
}

static enum vl_status parse_text(const struct src *s, struct vl_text_config *t,
                                 struct vl_error *err) {
    enum vl_status st;
#define INT_REQ(key, field, min, max)                                                              \
    if ((st = get_int(s, key, true, 0, min, max, &t->field, err)) != VL_OK)                        \
        return st;
    INT_REQ("hidden_size", hidden_size, 1, CFG_MAX_WIDTH);
    INT_REQ("intermediate_size", intermediate_size, 1, CFG_MAX_WIDTH * 8);
    INT_REQ("num_hidden_layers", num_hidden_layers, 1, CFG_MAX_LAYERS);
    INT_REQ("num_attention_heads", num_attention_heads, 1, CFG_MAX_WIDTH);
    INT_REQ("num_key_value_heads", num_key_value_heads, 1, CFG_MAX_WIDTH);
    INT_REQ("vocab_size", vocab_size, 1, CFG_MAX_VOCAB);
#undef INT_REQ
    if ((st = get_int(s, "max_position_embeddings", false, PUB_MAX_POSITIONS, 1, CFG_MAX_POSITIONS,
                      &t->max_position_embeddings, err)) != VL_OK)
        return st;
    if ((st = get_num(s, "rms_norm_eps", PUB_RMS_EPS, 0.0, 1.0, &t->rms_norm_eps, err)) != VL_OK)
        return st;
    if ((st = get_num(s, "rope_theta", PUB_ROPE_THETA, 1.0, 1e12, &t->rope_theta, err)) != VL_OK)
        return st;
    if ((st = get_bool(s, "tie_word_embeddings", false, &t->tie_word_embeddings,
                       &t->tie_word_embeddings_given, err)) != VL_OK)
        return st;
    if ((st = check_act(s, "hidden_act", err)) != VL_OK)
        return st;
    return parse_rope(s, t, err);
}

static enum vl_status parse_vision(const char *file, json_t *vc, int64_t text_hidden,
                                   struct vl_vision_config *v, struct vl_error *err) {
    if (vc && !json_is_object(vc))
        return vl__err(err, VL_ERR_MODEL, "%s: vision_config must be an object", file);
    json_t *empty = json_object();
    struct src s = {file, vc ? vc : empty, NULL};
    enum vl_status st = VL_OK;
    int64_t spatial_patch;
#define INT_OPT(key, field, def, min, max)                                                         \
    if (st == VL_OK)                                                                               \
        st = get_int(&s, key, false, def, min, max, &v->field, err);
    INT_OPT("depth", depth, PUB_VIT_DEPTH, 1, CFG_MAX_LAYERS);
    INT_OPT("hidden_size", hidden_size, PUB_VIT_HIDDEN, 1, CFG_MAX_WIDTH);
    INT_OPT("num_heads", num_heads, PUB_VIT_HEADS, 1, CFG_MAX_WIDTH);
    INT_OPT("intermediate_size", intermediate_size, PUB_VIT_INTERMEDIATE, 1, CFG_MAX_WIDTH * 8);
    INT_OPT("out_hidden_size", out_hidden_size, text_hidden, 1, CFG_MAX_WIDTH);
    INT_OPT("patch_size", patch_size, PUB_VIT_PATCH, 1, CFG_MAX_PATCH);
    INT_OPT("temporal_patch_size", temporal_patch_size, PUB_VIT_TEMPORAL_PATCH, 1, CFG_MAX_PATCH);
    INT_OPT("spatial_merge_size", spatial_merge_size, PUB_VIT_MERGE, 1, CFG_MAX_PATCH);
    INT_OPT("window_size", window_size, PUB_VIT_WINDOW, 1, CFG_MAX_PATCH * CFG_MAX_PATCH);
    INT_OPT("in_chans", in_chans, PUB_VIT_IN_CHANS, 1, 16);
#undef INT_OPT
    if (st == VL_OK)
        st = get_int(&s, "spatial_patch_size", false, v->patch_size, 1, CFG_MAX_PATCH,
                     &spatial_patch, err);
    if (st == VL_OK && spatial_patch != v->patch_size)
        st = vl__err(err, VL_ERR_MODEL, "%s: vision spatial_patch_size %lld != patch_size %lld",
                     file, (long long)spatial_patch, (long long)v->patch_size);
    if (st == VL_OK)
        st = get_num(&s, "tokens_per_second", PUB_VIT_TOKENS_PER_SECOND, 0.0, 1e6,
                     &v->tokens_per_second, err);
    if (st == VL_OK)
        st = check_act(&s, "hidden_act", err);
    v->rms_norm_eps = PUB_VIT_RMS_EPS;
    json_t *fa = lookup(&s, "fullatt_block_indexes");
    if (st == VL_OK && fa) {
        int n;
        st = get_int_array(&s, fa, "fullatt_block_indexes", v->fullatt_block_indexes,
                           VL_MAX_FULLATT_BLOCKS, &n, 0, v->depth - 1, err);
        v->n_fullatt = n;
    } else if (st == VL_OK) {
        v->n_fullatt = (int64_t)(sizeof pub_fullatt / sizeof pub_fullatt[0]);
        memcpy(v->fullatt_block_indexes, pub_fullatt, sizeof pub_fullatt);
        for (int i = 0; i < v->n_fullatt && st == VL_OK; i++)
            if (pub_fullatt[i] >= v->depth)
                st = vl__err(err, VL_ERR_MODEL,
                             "%s: fullatt_block_indexes absent and the published [7,15,23,31] do "
                             "not fit depth %lld",
                             file, (long long)v->depth);
    }
    json_decref(empty);
    return st;
}

/* Consistency of the derived sizes (spec §1.2 "General sizes"). */
static enum vl_status validate(const struct vl_config *c, const char *file, struct vl_error *err) {
    const struct vl_text_config *t = &c->text;
    const struct vl_vision_config *v = &c->vision;
    if (t->hidden_size % t->num_attention_heads)
        return vl__err(err, VL_ERR_MODEL, "%s: hidden_size %lld not divisible by %lld heads", file,
                       (long long)t->hidden_size, (long long)t->num_attention_heads);
    if (t->num_attention_heads % t->num_key_value_heads)
        return vl__err(err, VL_ERR_MODEL,
                       "%s: num_attention_heads %lld not a multiple of num_key_value_heads %lld",
                       file, (long long)t->num_attention_heads, (long long)t->num_key_value_heads);
    int64_t msum = 0;
    for (int i = 0; i < VL_MROPE_SECTIONS; i++)
        msum += t->mrope_section[i];
    if (msum * 2 != t->head_dim)
        return vl__err(err, VL_ERR_MODEL,
                       "%s: mrope_section sums to %lld but head_dim %lld needs %lld frequency slots",
                       file, (long long)msum, (long long)t->head_dim, (long long)(t->head_dim / 2));
    if (v->hidden_size % v->num_heads || (v->hidden_size / v->num_heads) % 4)
        return vl__err(err, VL_ERR_MODEL,
                       "%s: vision hidden_size %lld / %lld heads must give a head dim divisible "
                       "by 4",
                       file, (long long)v->hidden_size, (long long)v->num_heads);
    if (v->out_hidden_size != t->hidden_size)
        return vl__err(err, VL_ERR_MODEL, "%s: vision out_hidden_size %lld != hidden_size %lld",
                       file, (long long)v->out_hidden_size, (long long)t->hidden_size);
    if (v->window_size % (v->spatial_merge_size * v->patch_size))
        return vl__err(err, VL_ERR_MODEL,
                       "%s: vision window_size %lld not a multiple of merge %lld x patch %lld",
                       file, (long long)v->window_size, (long long)v->spatial_merge_size,
                       (long long)v->patch_size);
    return VL_OK;
}

enum vl_status vl__config_parse(struct vl_config *c, const char *text, size_t len,
                                const char *file, struct vl_error *err) {
    memset(c, 0, sizeof *c);
    json_t *root = parse_json(text, len, file, err);
    if (!root)
        return err ? err->code : VL_ERR_MODEL;
    enum vl_status st = check_architecture(root, file, c->model_type, sizeof c->model_type, err);
    json_t *tc = json_object_get(root, "text_config");
    if (st == VL_OK && tc && !json_is_object(tc))
        st = vl__err(err, VL_ERR_MODEL, "%s: text_config must be an object", file);
    struct src s = {file, tc ? tc : root, tc ? root : NULL};
    if (st == VL_OK)
        st = parse_text(&s, &c->text, err);
    if (st == VL_OK) {
        c->text.head_dim = c->text.hidden_size / c->text.num_attention_heads;
        st = parse_vision(file, json_object_get(root, "vision_config"), c->text.hidden_size,
                          &c->vision, err);
    }
    /* token ids: top level (published) or text_config */
    struct src ids = {file, root, tc};
    if (st == VL_OK)
        st = get_token_id(&ids, "image_token_id", PUB_IMAGE_PAD_ID, &c->image_token_id, err);
    if (st == VL_OK)
        st = get_token_id(&ids, "video_token_id", PUB_VIDEO_PAD_ID, &c->video_token_id, err);
    if (st == VL_OK)
        st = get_token_id(&ids, "vision_start_token_id", PUB_VISION_START_ID,
                          &c->vision_start_token_id, err);
    if (st == VL_OK)
        st = get_token_id(&ids, "vision_end_token_id", PUB_VISION_END_ID, &c->vision_end_token_id,
                          err);
    if (st == VL_OK)
        st = get_token_id(&ids, "vision_token_id", PUB_VISION_PAD_ID, &c->vision_token_id, err);
    if (st == VL_OK)
        st = validate(c, file, err);
    json_decref(root);
    if (st == VL_OK) {
        vl__preproc_defaults(&c->preproc, &c->vision);
        vl__gen_defaults(&c->gen);
    }
    return st;
}

/* ---- preprocessor_config.json ----------------------------------------------------------- */

void vl__preproc_defaults(struct vl_preproc_config *p, const struct vl_vision_config *v) {
    p->min_pixels = VL_IMAGE_DEFAULT_MIN_PIXELS;
    p->max_pixels = VL_IMAGE_DEFAULT_MAX_PIXELS;
    p->patch_size = v ? v->patch_size : PUB_VIT_PATCH;
    p->temporal_patch_size = v ? v->temporal_patch_size : PUB_VIT_TEMPORAL_PATCH;
    p->merge_size = v ? v->spatial_merge_size : PUB_VIT_MERGE;
    memcpy(p->image_mean, vl_image_default_mean, sizeof vl_image_default_mean);
    memcpy(p->image_std, vl_image_default_std, sizeof vl_image_default_std);
    p->rescale_factor = PUB_RESCALE;
}

static enum vl_status get_triple(const struct src *s, const char *key, double *dst,
                                 struct vl_error *err) {
    json_t *v = lookup(s, key);
    if (!v)
        return VL_OK;
    if (!json_is_array(v) || json_array_size(v) != 3)
        return vl__err(err, VL_ERR_MODEL, "%s: '%s' must be an array of 3 numbers", s->file, key);
    for (size_t i = 0; i < 3; i++) {
        json_t *x = json_array_get(v, i);
        if (!json_is_number(x) || !isfinite(json_number_value(x)))
            return vl__err(err, VL_ERR_MODEL, "%s: '%s'[%zu] is not a number", s->file, key, i);
        dst[i] = json_number_value(x);
    }
    return VL_OK;
}

enum vl_status vl__preproc_parse(struct vl_preproc_config *p, const struct vl_vision_config *v,
                                 const char *text, size_t len, const char *file,
                                 struct vl_error *err) {
    vl__preproc_defaults(p, v);
    json_t *root = parse_json(text, len, file, err);
    if (!root)
        return err ? err->code : VL_ERR_MODEL;
    struct src s = {file, root, NULL};
    enum vl_status st = VL_OK;
    /* newer processors write size {shortest_edge, longest_edge} instead of min/max_pixels */
    json_t *size = json_object_get(root, "size");
    struct src ss = {file, json_is_object(size) ? size : NULL, NULL};
    if (ss.primary) {
        if (st == VL_OK)
            st = get_int(&ss, "shortest_edge", false, p->min_pixels, 1, CFG_MAX_PIXELS,
                         &p->min_pixels, err);
        if (st == VL_OK)
            st = get_int(&ss, "longest_edge", false, p->max_pixels, 1, CFG_MAX_PIXELS,
                         &p->max_pixels, err);
    }
    if (st == VL_OK)
        st = get_int(&s, "min_pixels", false, p->min_pixels, 1, CFG_MAX_PIXELS, &p->min_pixels,
                     err);
    if (st == VL_OK)
        st = get_int(&s, "max_pixels", false, p->max_pixels, 1, CFG_MAX_PIXELS, &p->max_pixels,
                     err);
    if (st == VL_OK)
        st = get_int(&s, "patch_size", false, p->patch_size, 1, CFG_MAX_PATCH, &p->patch_size,
                     err);
    if (st == VL_OK)
        st = get_int(&s, "temporal_patch_size", false, p->temporal_patch_size, 1, CFG_MAX_PATCH,
                     &p->temporal_patch_size, err);
    if (st == VL_OK)
        st = get_int(&s, "merge_size", false, p->merge_size, 1, CFG_MAX_PATCH, &p->merge_size,
                     err);
    if (st == VL_OK)
        st = get_num(&s, "rescale_factor", p->rescale_factor, 1e-12, 1.0, &p->rescale_factor, err);
    if (st == VL_OK)
        st = get_triple(&s, "image_mean", p->image_mean, err);
    if (st == VL_OK)
        st = get_triple(&s, "image_std", p->image_std, err);
    for (int i = 0; i < 3 && st == VL_OK; i++)
        if (!(p->image_std[i] > 0))
            st = vl__err(err, VL_ERR_MODEL, "%s: image_std[%d] must be > 0", file, i);
    if (st == VL_OK && p->min_pixels > p->max_pixels)
        st = vl__err(err, VL_ERR_MODEL, "%s: min_pixels %lld > max_pixels %lld", file,
                     (long long)p->min_pixels, (long long)p->max_pixels);
    if (st == VL_OK && v &&
        (p->patch_size != v->patch_size || p->temporal_patch_size != v->temporal_patch_size ||
         p->merge_size != v->spatial_merge_size))
        st = vl__err(err, VL_ERR_MODEL,
                     "%s: patch %lld / temporal %lld / merge %lld disagree with config.json's "
                     "vision_config (%lld / %lld / %lld)",
                     file, (long long)p->patch_size, (long long)p->temporal_patch_size,
                     (long long)p->merge_size, (long long)v->patch_size,
                     (long long)v->temporal_patch_size, (long long)v->spatial_merge_size);
    json_decref(root);
    return st;
}

/* ---- generation_config.json ------------------------------------------------------------- */

void vl__gen_defaults(struct vl_gen_config *g) {
    memset(g, 0, sizeof *g);
    g->bos_token_id = PUB_BOS_ID;
    g->pad_token_id = PUB_PAD_ID;
    g->n_eos = 2;
    g->eos_token_ids[0] = PUB_EOS_ID;
    g->eos_token_ids[1] = PUB_BOS_ID; /* <|endoftext|> also stops */
    g->do_sample = false;
    g->temperature = HF_GEN_TEMPERATURE;
    g->top_p = HF_GEN_TOP_P;
    g->top_k = 0;
    g->repetition_penalty = VL_GEN_DEFAULT_REPETITION_PENALTY;
}

enum vl_status vl__gen_parse(struct vl_gen_config *g, const char *text, size_t len,
                             const char *file, struct vl_error *err) {
    vl__gen_defaults(g);
    json_t *root = parse_json(text, len, file, err);
    if (!root)
        return err ? err->code : VL_ERR_MODEL;
    struct src s = {file, root, NULL};
    enum vl_status st = get_token_id(&s, "bos_token_id", PUB_BOS_ID, &g->bos_token_id, err);
    if (st == VL_OK)
        st = get_token_id(&s, "pad_token_id", PUB_PAD_ID, &g->pad_token_id, err);
    json_t *eos = json_object_get(root, "eos_token_id");
    if (st == VL_OK && eos) {
        int64_t ids[VL_MAX_EOS_IDS];
        int n = 1;
        if (json_is_integer(eos)) {
            st = get_int(&s, "eos_token_id", true, 0, 0, CFG_MAX_TOKEN_ID, &ids[0], err);
        } else {
            st = get_int_array(&s, eos, "eos_token_id", ids, VL_MAX_EOS_IDS, &n, 0,
                               CFG_MAX_TOKEN_ID, err);
        }
        g->n_eos = n;
        for (int i = 0; i < n; i++)
            g->eos_token_ids[i] = (int32_t)ids[i];
    }
    /* a present file: absent sampling fields take transformers' GenerationConfig defaults */
    if (st == VL_OK)
        st = get_bool(&s, "do_sample", false, &g->do_sample, NULL, err);
    if (st == VL_OK)
        st = get_num(&s, "temperature", HF_GEN_TEMPERATURE, 0.0, 1e6, &g->temperature, err);
    if (st == VL_OK)
        st = get_num(&s, "top_p", HF_GEN_TOP_P, 0.0, 1.0, &g->top_p, err);
    if (st == VL_OK)
        st = get_int(&s, "top_k", false, HF_GEN_TOP_K, 0, CFG_MAX_VOCAB, &g->top_k, err);
    if (st == VL_OK)
        st = get_num(&s, "repetition_penalty", HF_GEN_REPETITION_PENALTY, 1e-6, 1e6,
                     &g->repetition_penalty, err);
    json_decref(root);
    return st;
}

/* ---- a checkpoint directory ------------------------------------------------------------- */

static char *join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = vl__malloc(a + b + 2);
    if (p) {
        memcpy(p, dir, a);
        p[a] = '/';
        memcpy(p + a + 1, name, b + 1);
    }
    return p;
}

char *vl__path_join(const char *dir, const char *name) { return join(dir, name); }

/* Reads dir/name; *out NULL (and VL_OK) when the file does not exist and !required. */
static enum vl_status read_opt(const char *dir, const char *name, bool required, char **out,
                               size_t *len, char **path_out, struct vl_error *err) {
    *out = NULL;
    char *path = join(dir, name);
    if (!path)
        return vl__err(err, VL_ERR_NOMEM, "out of memory");
    FILE *probe = fopen(path, "rb");
    if (!probe && errno == ENOENT && !required) {
        vl__free(path);
        return VL_OK;
    }
    if (probe)
        fclose(probe);
    enum vl_status st = vl__read_file(path, VL_CONFIG_MAX_BYTES, out, len, err);
    if (st == VL_OK && path_out)
        *path_out = path;
    else
        vl__free(path);
    return st;
}

enum vl_status vl__config_load_dir(struct vl_config *c, const char *dir, struct vl_error *err) {
    char *text, *path = NULL;
    size_t len;
    enum vl_status st = read_opt(dir, "config.json", true, &text, &len, &path, err);
    if (st != VL_OK)
        return st;
    st = vl__config_parse(c, text, len, path, err);
    vl__free(text);
    vl__free(path);
    if (st != VL_OK)
        return st;
    path = NULL;
    st = read_opt(dir, "preprocessor_config.json", false, &text, &len, &path, err);
    if (st == VL_OK && text)
        st = vl__preproc_parse(&c->preproc, &c->vision, text, len, path, err);
    vl__free(text);
    vl__free(path);
    if (st != VL_OK)
        return st;
    path = NULL;
    st = read_opt(dir, "generation_config.json", false, &text, &len, &path, err);
    if (st == VL_OK && text)
        st = vl__gen_parse(&c->gen, text, len, path, err);
    vl__free(text);
    vl__free(path);
    return st;
}
