/* llama.cpp's Qwen2.5-VL vision projector ("mmproj": general.architecture clip, projector type
 * qwen2.5vl_merger) as libvl's vision tower (docs/quantization.md, "GGUF"). Facts from
 * llama.cpp's converter (convert_hf_to_gguf.py, Qwen2VLVisionModel) and tools/mtmd (clip-impl.h
 * key and tensor names, clip.cpp hparams, models/qwen2vl.cpp graph); no code taken from there.
 *   config      clip.vision.{embedding_length, feed_forward_length, block_count,
 *               attention.head_count, projection_dim, patch_size, attention.layer_norm_epsilon,
 *               n_wa_pattern (full attention in blocks b with (b+1) % n == 0; 0: every block),
 *               spatial_merge_size (absent: 2), window_size (absent: 112), image_mean/std}
 *   tensors     v.patch_embd.weight and .weight.1: the Conv3d kernel's two temporal halves as
 *               Conv2d kernels [P, P, C, D] -> interleaved back into [D, C, 2, P, P];
 *               v.blk.N.attn_q/k/v (weight, bias): split rows of the fused qkv -> concatenated;
 *               attn_out, ln1/ln2 (RMSNorm weights), ffn_gate/up/down (+bias), v.post_ln (the
 *               merger's ln_q), mm.0 / mm.2 (the merger MLP) -> renamed.
 * The concatenations are model-owned copies (~3.1 % of the 3B projector's bytes for the patch
 * embedding, qkv = 28 % of it); everything else is a view of the mapping (Q8_0 as block views;
 * other block types converted to Q8_0, see vl__gguf_entry). Runs once at load; not shared. */
#include "vl_gguf_impl.h"
#include "vl_quant_impl.h"

#include <glib.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define PROJ_ARCH "clip"
#define PROJ_TYPE "qwen2.5vl_merger"
#define PROJ_KEY "clip.vision."
#define PROJ_DEFAULT_MERGE 2    /* llama.cpp's graph merges 2 x 2 patches when the key is absent */
#define PROJ_DEFAULT_WINDOW 112 /* the published window_size llama.cpp assumes */
#define PROJ_TEMPORAL 2         /* the converter splits a Conv3d of temporal size 2 */
#define PROJ_CHANNELS 3
#define PROJ_MEAN_STD_TOL 1e-6  /* stored as f32: ~1e-8 from the published decimals */
#define PROJ_NAME_CAP 256
#define PROJ_QKV 3

/* ---- metadata -------------------------------------------------------------------------- */

static bool str_is(const struct vl_gguf *p, const char *key, const char *want, char *got,
                   size_t cap) {
    const struct vl_gguf_kv *kv = vl__gguf_find(p, key);
    const char *s;
    size_t n;
    got[0] = '\0';
    if (!kv || kv->type != VL_GGUF_STRING || !vl__gguf_str(kv, 0, &s, &n))
        return false;
    snprintf(got, cap, "%.*s", (int)(n < cap ? n : cap - 1), s);
    return n == strlen(want) && !memcmp(s, want, n);
}

/* a bool key: *out = its value; false when absent or not a bool */
static bool bool_of(const struct vl_gguf *p, const char *key, bool *out) {
    const struct vl_gguf_kv *kv = vl__gguf_find(p, key);
    if (!kv || kv->type != VL_GGUF_BOOL)
        return false;
    *out = kv->val[0] != 0;
    return true;
}

static bool f32_elem(const struct vl_gguf_kv *kv, uint64_t i, double *out) {
    if (!kv || kv->type != VL_GGUF_ARRAY || kv->arr_type != VL_GGUF_F32 || i >= kv->n)
        return false;
    const uint8_t *b = kv->val + 4 * i;
    uint32_t u = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    float f;
    memcpy(&f, &u, sizeof f);
    *out = f;
    return true;
}

/* image_mean / image_std: the published values (docproc's preprocessing uses those) */
static enum vl_status check_norm(const struct vl_gguf *p, const char *key, const double *want,
                                 struct vl_error *err) {
    const struct vl_gguf_kv *kv = vl__gguf_find(p, key);
    if (!kv)
        return VL_OK; /* llama.cpp requires them; absent: nothing to disagree with */
    for (uint64_t i = 0; i < PROJ_CHANNELS; i++) {
        double v;
        if (!f32_elem(kv, i, &v) || kv->n != PROJ_CHANNELS)
            return vl__err(err, VL_ERR_MODEL, "%s: metadata '%s' must be 3 float32 values",
                           p->path, key);
        if (fabs(v - want[i]) > PROJ_MEAN_STD_TOL)
            return vl__err(err, VL_ERR_UNSUPPORTED,
                           "%s: %s[%llu] = %g, but docproc normalises images with Qwen2.5-VL's "
                           "published %g",
                           p->path, key, (unsigned long long)i, v, want[i]);
    }
    return VL_OK;
}

enum vl_status vl__gguf_proj_config(void *rootp, const struct vl_gguf *p, int64_t text_hidden,
                                    double *eps, struct vl_error *err) {
    json_t *root = rootp;
    char got[64];
    if (!str_is(p, "general.architecture", PROJ_ARCH, got, sizeof got))
        return vl__err(err, VL_ERR_MODEL,
                       "%s: GGUF of architecture '%s' given as the vision projector (--mmproj); "
                       "llama.cpp's projector files have architecture '%s'",
                       p->path, got, PROJ_ARCH);
    bool b;
    if (bool_of(p, "clip.has_vision_encoder", &b) && !b)
        return vl__err(err, VL_ERR_MODEL, "%s: projector without a vision encoder", p->path);
    const char *tkey = vl__gguf_find(p, "clip.projector_type") ? "clip.projector_type"
                                                                 : PROJ_KEY "projector_type";
    if (!str_is(p, tkey, PROJ_TYPE, got, sizeof got))
        return vl__err(err, VL_ERR_MODEL,
                       "%s: projector type '%s'; docproc reads '%s' (Qwen2.5-VL's vision tower)",
                       p->path, got, PROJ_TYPE);
    if ((bool_of(p, "clip.use_gelu", &b) && b) || !bool_of(p, "clip.use_silu", &b) || !b)
        return vl__err(err, VL_ERR_MODEL,
                       "%s: clip.use_silu must be true (Qwen2.5-VL's vision MLP is SiLU-gated)",
                       p->path);
    static const struct {
        const char *key, *json;
        bool required;
        int64_t dflt;
    } ints[] = {
        {PROJ_KEY "embedding_length", "hidden_size", true, 0},
        {PROJ_KEY "feed_forward_length", "intermediate_size", true, 0},
        {PROJ_KEY "block_count", "depth", true, 0},
        {PROJ_KEY "attention.head_count", "num_heads", true, 0},
        {PROJ_KEY "projection_dim", "out_hidden_size", true, 0},
        {PROJ_KEY "patch_size", "patch_size", true, 0},
        {PROJ_KEY "spatial_merge_size", "spatial_merge_size", false, PROJ_DEFAULT_MERGE},
        {PROJ_KEY "window_size", "window_size", false, PROJ_DEFAULT_WINDOW},
    };
    json_t *vc = json_object();
    int64_t depth = 0, proj_dim = 0;
    enum vl_status st = VL_OK;
    for (size_t i = 0; i < sizeof ints / sizeof *ints && st == VL_OK; i++) {
        int64_t v = ints[i].dflt;
        if (!vl__gguf_int(p, ints[i].key, &v) && (ints[i].required || vl__gguf_find(p, ints[i].key)))
            st = vl__err(err, VL_ERR_MODEL, "%s: metadata '%s' missing or not an integer",
                         p->path, ints[i].key);
        else if (v < 1 || v > INT32_MAX)
            st = vl__err(err, VL_ERR_MODEL, "%s: metadata '%s' = %lld out of range", p->path,
                         ints[i].key, (long long)v);
        else
            json_object_set_new(vc, ints[i].json, json_integer(v));
        if (!strcmp(ints[i].json, "depth"))
            depth = v;
        if (!strcmp(ints[i].json, "out_hidden_size"))
            proj_dim = v;
    }
    if (st == VL_OK && proj_dim != text_hidden)
        st = vl__err(err, VL_ERR_MODEL,
                     "%s: the projector's projection_dim %lld does not match the text model's "
                     "hidden size %lld (a projector for another model?)",
                     p->path, (long long)proj_dim, (long long)text_hidden);
    int64_t wa = 0;
    if (st == VL_OK && !vl__gguf_int(p, PROJ_KEY "n_wa_pattern", &wa))
        st = vl__err(err, VL_ERR_MODEL, "%s: metadata '%s' missing or not an integer", p->path,
                     PROJ_KEY "n_wa_pattern");
    if (st == VL_OK && (wa < 0 || wa > depth))
        st = vl__err(err, VL_ERR_MODEL, "%s: n_wa_pattern %lld outside [0, depth %lld]", p->path,
                     (long long)wa, (long long)depth);
    json_t *fa = json_array();
    for (int64_t b2 = 0; st == VL_OK && b2 < depth; b2++)
        if (wa == 0 || (b2 + 1) % wa == 0)
            json_array_append_new(fa, json_integer(b2));
    json_object_set_new(vc, "fullatt_block_indexes", fa);
    json_object_set_new(vc, "temporal_patch_size", json_integer(PROJ_TEMPORAL));
    json_object_set_new(vc, "in_chans", json_integer(PROJ_CHANNELS));
    if (st == VL_OK && !vl__gguf_float(p, PROJ_KEY "attention.layer_norm_epsilon", eps))
        st = vl__err(err, VL_ERR_MODEL, "%s: metadata '%s' missing or not a float", p->path,
                     PROJ_KEY "attention.layer_norm_epsilon");
    if (st == VL_OK && !(*eps > 0 && *eps < 1))
        st = vl__err(err, VL_ERR_MODEL, "%s: layer_norm_epsilon %g outside (0, 1)", p->path, *eps);
    if (st == VL_OK)
        st = check_norm(p, PROJ_KEY "image_mean", vl_image_default_mean, err);
    if (st == VL_OK)
        st = check_norm(p, PROJ_KEY "image_std", vl_image_default_std, err);
    if (st == VL_OK)
        json_object_set_new(root, "vision_config", vc);
    else
        json_decref(vc);
    return st;
}

/* ---- tensors --------------------------------------------------------------------------- */

static const struct vl_gguf_name proj_names[] = {
    {"v.blk.%d.ln1.weight", "visual.blocks.%d.norm1.weight"},
    {"v.blk.%d.ln2.weight", "visual.blocks.%d.norm2.weight"},
    {"v.blk.%d.attn_out.weight", "visual.blocks.%d.attn.proj.weight"},
    {"v.blk.%d.attn_out.bias", "visual.blocks.%d.attn.proj.bias"},
    {"v.blk.%d.ffn_gate.weight", "visual.blocks.%d.mlp.gate_proj.weight"},
    {"v.blk.%d.ffn_gate.bias", "visual.blocks.%d.mlp.gate_proj.bias"},
    {"v.blk.%d.ffn_up.weight", "visual.blocks.%d.mlp.up_proj.weight"},
    {"v.blk.%d.ffn_up.bias", "visual.blocks.%d.mlp.up_proj.bias"},
    {"v.blk.%d.ffn_down.weight", "visual.blocks.%d.mlp.down_proj.weight"},
    {"v.blk.%d.ffn_down.bias", "visual.blocks.%d.mlp.down_proj.bias"},
    {"v.post_ln.weight", "visual.merger.ln_q.weight"},
    {"mm.0.weight", "visual.merger.mlp.0.weight"},
    {"mm.0.bias", "visual.merger.mlp.0.bias"},
    {"mm.2.weight", "visual.merger.mlp.2.weight"},
    {"mm.2.bias", "visual.merger.mlp.2.bias"},
    {"v.blk.%d.attn_q.weight", "visual.blocks.%d.attn.qkv.weight"},
    {"v.blk.%d.attn_q.bias", "visual.blocks.%d.attn.qkv.bias"},
};
#define N_PROJ_NAMES (sizeof proj_names / sizeof *proj_names)

static bool ends_with(const char *s, const char *sfx) {
    size_t n = strlen(s), k = strlen(sfx);
    return n >= k && !strcmp(s + n - k, sfx);
}

/* The parts of one fused tensor, each converted as vl__gguf_entry does, concatenated along
 * dim 0 into a model-owned copy (qkv rows; the Conv3d's temporal halves: interleave). */
static enum vl_status fuse(struct vl_model *m, const struct vl_gguf *p,
                           const struct vl_gguf_tensor *const *parts, int np, bool linear,
                           bool interleave, struct vl_st_entry *e, char *name,
                           enum vl_dtype *block, struct vl_error *err) {
    struct vl_st_entry pe[PROJ_QKV];
    enum vl_dtype pb[PROJ_QKV];
    enum vl_status st = VL_OK;
    for (int k = 0; k < np && st == VL_OK; k++)
        st = vl__gguf_entry(m, p, parts[k], linear, true, &pe[k], name, &pb[k], err);
    for (int k = 1; k < np && st == VL_OK; k++) {
        bool same = pb[k] == pb[0] && !strcmp(pe[k].dtype, pe[0].dtype) &&
                    pe[k].ndim == pe[0].ndim && pe[k].nbytes == pe[0].nbytes;
        for (int d = 1; same && d < pe[0].ndim; d++)
            same = pe[k].shape[d] == pe[0].shape[d];
        if (!same)
            st = vl__err(err, VL_ERR_MODEL, "%s: tensors '%s' and '%s' differ in type or shape",
                         p->path, parts[0]->name, parts[k]->name);
    }
    if (st != VL_OK)
        return st;
    *e = pe[0];
    *block = pb[0];
    size_t total;
    if (!vl__size_mul(&total, pe[0].nbytes, (size_t)np))
        return vl__err(err, VL_ERR_MODEL, "%s: tensor '%s' too large", p->path, parts[0]->name);
    uint8_t *dst = vl__gguf_owned(m, total, name, err);
    if (!dst)
        return VL_ERR_NOMEM;
    if (!interleave) { /* rows of part 0, then of part 1, ... */
        for (int k = 0; k < np; k++)
            memcpy(dst + (size_t)k * pe[0].nbytes, pe[k].data, pe[k].nbytes);
        e->shape[0] = pe[0].shape[0] * np;
    } else { /* [D, C, P, P] x np -> [D, C, np, P, P]: each (d, c) plane of every part in turn */
        if (pe[0].ndim != 4)
            return vl__err(err, VL_ERR_MODEL, "%s: tensor '%s' must be 4-D [P, P, C, D]",
                           p->path, parts[0]->name);
        size_t planes = (size_t)(pe[0].shape[0] * pe[0].shape[1]);
        size_t plane = pe[0].nbytes / planes;
        for (size_t q = 0; q < planes; q++)
            for (int k = 0; k < np; k++)
                memcpy(dst + (q * (size_t)np + (size_t)k) * plane,
                       (const uint8_t *)pe[k].data + q * plane, plane);
        e->ndim = 5;
        e->shape[4] = pe[0].shape[3];
        e->shape[3] = pe[0].shape[2];
        e->shape[2] = np;
    }
    e->data = dst;
    e->nbytes = total;
    return VL_OK;
}

/* "v.blk.N.attn_q.weight" -> the same name with attn_k / attn_v */
static const struct vl_gguf_tensor *sibling(const struct vl_gguf *p, const char *q_name,
                                            char which) {
    char buf[PROJ_NAME_CAP];
    snprintf(buf, sizeof buf, "%s", q_name);
    char *at = strstr(buf, ".attn_q.");
    if (!at)
        return NULL;
    at[6] = which;
    return vl__gguf_tensor(p, buf);
}

enum vl_status vl__gguf_proj_entries(struct vl_model *m, const struct vl_gguf *p,
                                     struct vl_st_entry **out, int *n_out, void *descp,
                                     struct vl_error *err) {
    GHashTable *desc = descp;
    *n_out = 0;
    *out = vl__calloc((size_t)p->n_tensors + 1, sizeof **out);
    if (!*out)
        return vl__err(err, VL_ERR_NOMEM, "out of memory");
    enum vl_status st = VL_OK;
    char name[PROJ_NAME_CAP];
    for (int64_t i = 0; i < p->n_tensors && st == VL_OK; i++) {
        const struct vl_gguf_tensor *t = &p->tensors[i];
        const char *g = t->name;
        bool is_k = strstr(g, ".attn_k.") != NULL, is_v = strstr(g, ".attn_v.") != NULL;
        if (!strcmp(g, "v.patch_embd.weight.1"))
            continue; /* taken with v.patch_embd.weight */
        if ((is_k || is_v) && !strncmp(g, "v.blk.", 6)) {
            char qn[PROJ_NAME_CAP];
            snprintf(qn, sizeof qn, "%s", g);
            char *at = strstr(qn, is_k ? ".attn_k." : ".attn_v.");
            at[6] = 'q';
            if (vl__gguf_tensor(p, qn))
                continue; /* taken with attn_q */
        }
        bool known = vl__gguf_rename(name, sizeof name, g, proj_names, N_PROJ_NAMES);
        bool linear = known && ends_with(g, ".weight") && strcmp(g, "v.post_ln.weight") &&
                      !strstr(g, ".ln1.") && !strstr(g, ".ln2.");
        struct vl_st_entry *e = &(*out)[*n_out];
        enum vl_dtype block = VL_DTYPE_COUNT;
        if (!strcmp(g, "v.patch_embd.weight")) {
            const struct vl_gguf_tensor *parts[2] = {t, vl__gguf_tensor(p, "v.patch_embd.weight.1")};
            snprintf(name, sizeof name, "visual.patch_embed.proj.weight");
            if (!parts[1])
                st = vl__err(err, VL_ERR_MODEL,
                             "%s: missing tensor 'v.patch_embd.weight.1' (the second temporal "
                             "half of the patch embedding)",
                             p->path);
            else
                st = fuse(m, p, parts, 2, false, true, e, name, &block, err);
        } else if (known && strstr(g, ".attn_q.")) {
            const struct vl_gguf_tensor *parts[PROJ_QKV] = {t, sibling(p, g, 'k'),
                                                            sibling(p, g, 'v')};
            if (!parts[1] || !parts[2])
                st = vl__err(err, VL_ERR_MODEL, "%s: '%s' without its attn_k / attn_v", p->path,
                             g);
            else
                st = fuse(m, p, parts, PROJ_QKV, linear, false, e, name, &block, err);
        } else {
            st = vl__gguf_entry(m, p, t, linear, true, e, name, &block, err);
        }
        if (st == VL_OK && !(e->name = vl__strdup(name)))
            st = vl__err(err, VL_ERR_NOMEM, "out of memory");
        if (st == VL_OK) {
            (*n_out)++;
            if (block != VL_DTYPE_COUNT)
                vl__quant_desc_add(desc, name, block);
        }
    }
    return st;
}
