/* Binding of checkpoint tensors to struct vl_weights from one table: name pattern, struct field,
 * expected shape (symbolic dims resolved from the config). Names are canonicalised first (spec
 * §1.7: "model.visual." -> "visual.", "model.language_model." -> "model."). Every table entry must
 * be present with its exact shape and a float dtype; any tensor left over is an error ("unexpected
 * tensor"), as is a duplicate after canonicalisation. Views borrow the mapping (no copy); only a
 * tensor whose data is not aligned to its element size is copied into model-owned memory.
 * The same table enumerates tensors for `docproc model synth` (vl__weights_foreach).
 * Thread-safety: binding runs once at load; the result is read-only. */
#include "vl_impl.h"
#include "vl_quant_impl.h"

#include <glib.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME_MAX_LEN 256

enum scope { SCOPE_GLOBAL, SCOPE_VBLOCK, SCOPE_LAYER };

/* Symbolic dimensions, resolved by dim_value(). */
enum dim {
    DIM_END = 0,
    DIM_VD,   /* vision hidden D */
    DIM_VD3,  /* 3 D (fused qkv) */
    DIM_VI,   /* vision MLP intermediate */
    DIM_VC,   /* input channels */
    DIM_VTP,  /* temporal patch */
    DIM_VP,   /* patch */
    DIM_VM,   /* merged width D * M * M */
    DIM_H,    /* LLM hidden */
    DIM_HQ,   /* query width nQ * hd */
    DIM_KVD,  /* key/value width nKV * hd */
    DIM_I,    /* LLM MLP intermediate */
    DIM_V,    /* vocabulary rows */
};

struct binding {
    enum scope scope;
    const char *pattern;   /* %d = block / layer index */
    size_t offset;         /* of the struct vl_tensor in its struct */
    enum dim dims[VL_MAX_DIMS];
    enum vl_weight_init init;
};

#define VB(field) offsetof(struct vl_vision_block, field)
#define LL(field) offsetof(struct vl_llm_layer, field)
#define GW(field) offsetof(struct vl_weights, field)

static const struct binding table[] = {
    /* vision tower (spec §1.6) */
    {SCOPE_GLOBAL, "visual.patch_embed.proj.weight", GW(patch_embed),
     {DIM_VD, DIM_VC, DIM_VTP, DIM_VP, DIM_VP}, VL_INIT_WEIGHT},
    {SCOPE_VBLOCK, "visual.blocks.%d.norm1.weight", VB(norm1), {DIM_VD}, VL_INIT_NORM},
    {SCOPE_VBLOCK, "visual.blocks.%d.attn.qkv.weight", VB(qkv_w), {DIM_VD3, DIM_VD}, VL_INIT_WEIGHT},
    {SCOPE_VBLOCK, "visual.blocks.%d.attn.qkv.bias", VB(qkv_b), {DIM_VD3}, VL_INIT_BIAS},
    {SCOPE_VBLOCK, "visual.blocks.%d.attn.proj.weight", VB(proj_w), {DIM_VD, DIM_VD}, VL_INIT_WEIGHT},
    {SCOPE_VBLOCK, "visual.blocks.%d.attn.proj.bias", VB(proj_b), {DIM_VD}, VL_INIT_BIAS},
    {SCOPE_VBLOCK, "visual.blocks.%d.norm2.weight", VB(norm2), {DIM_VD}, VL_INIT_NORM},
    {SCOPE_VBLOCK, "visual.blocks.%d.mlp.gate_proj.weight", VB(gate_w), {DIM_VI, DIM_VD}, VL_INIT_WEIGHT},
    {SCOPE_VBLOCK, "visual.blocks.%d.mlp.gate_proj.bias", VB(gate_b), {DIM_VI}, VL_INIT_BIAS},
    {SCOPE_VBLOCK, "visual.blocks.%d.mlp.up_proj.weight", VB(up_w), {DIM_VI, DIM_VD}, VL_INIT_WEIGHT},
    {SCOPE_VBLOCK, "visual.blocks.%d.mlp.up_proj.bias", VB(up_b), {DIM_VI}, VL_INIT_BIAS},
    {SCOPE_VBLOCK, "visual.blocks.%d.mlp.down_proj.weight", VB(down_w), {DIM_VD, DIM_VI}, VL_INIT_WEIGHT},
    {SCOPE_VBLOCK, "visual.blocks.%d.mlp.down_proj.bias", VB(down_b), {DIM_VD}, VL_INIT_BIAS},
    {SCOPE_GLOBAL, "visual.merger.ln_q.weight", GW(merger_norm), {DIM_VD}, VL_INIT_NORM},
    {SCOPE_GLOBAL, "visual.merger.mlp.0.weight", GW(merger_fc1_w), {DIM_VM, DIM_VM}, VL_INIT_WEIGHT},
    {SCOPE_GLOBAL, "visual.merger.mlp.0.bias", GW(merger_fc1_b), {DIM_VM}, VL_INIT_BIAS},
    {SCOPE_GLOBAL, "visual.merger.mlp.2.weight", GW(merger_fc2_w), {DIM_H, DIM_VM}, VL_INIT_WEIGHT},
    {SCOPE_GLOBAL, "visual.merger.mlp.2.bias", GW(merger_fc2_b), {DIM_H}, VL_INIT_BIAS},
    /* language model */
    {SCOPE_GLOBAL, "model.embed_tokens.weight", GW(embed), {DIM_V, DIM_H}, VL_INIT_WEIGHT},
    {SCOPE_LAYER, "model.layers.%d.input_layernorm.weight", LL(attn_norm), {DIM_H}, VL_INIT_NORM},
    {SCOPE_LAYER, "model.layers.%d.self_attn.q_proj.weight", LL(q_w), {DIM_HQ, DIM_H}, VL_INIT_WEIGHT},
    {SCOPE_LAYER, "model.layers.%d.self_attn.q_proj.bias", LL(q_b), {DIM_HQ}, VL_INIT_BIAS},
    {SCOPE_LAYER, "model.layers.%d.self_attn.k_proj.weight", LL(k_w), {DIM_KVD, DIM_H}, VL_INIT_WEIGHT},
    {SCOPE_LAYER, "model.layers.%d.self_attn.k_proj.bias", LL(k_b), {DIM_KVD}, VL_INIT_BIAS},
    {SCOPE_LAYER, "model.layers.%d.self_attn.v_proj.weight", LL(v_w), {DIM_KVD, DIM_H}, VL_INIT_WEIGHT},
    {SCOPE_LAYER, "model.layers.%d.self_attn.v_proj.bias", LL(v_b), {DIM_KVD}, VL_INIT_BIAS},
    {SCOPE_LAYER, "model.layers.%d.self_attn.o_proj.weight", LL(o_w), {DIM_H, DIM_HQ}, VL_INIT_WEIGHT},
    {SCOPE_LAYER, "model.layers.%d.post_attention_layernorm.weight", LL(mlp_norm), {DIM_H}, VL_INIT_NORM},
    {SCOPE_LAYER, "model.layers.%d.mlp.gate_proj.weight", LL(gate_w), {DIM_I, DIM_H}, VL_INIT_WEIGHT},
    {SCOPE_LAYER, "model.layers.%d.mlp.up_proj.weight", LL(up_w), {DIM_I, DIM_H}, VL_INIT_WEIGHT},
    {SCOPE_LAYER, "model.layers.%d.mlp.down_proj.weight", LL(down_w), {DIM_H, DIM_I}, VL_INIT_WEIGHT},
    {SCOPE_GLOBAL, "model.norm.weight", GW(final_norm), {DIM_H}, VL_INIT_NORM},
    {SCOPE_GLOBAL, VL_LM_HEAD_NAME, GW(lm_head), {DIM_V, DIM_H}, VL_INIT_WEIGHT},
};
#define N_TABLE (sizeof table / sizeof table[0])

static int64_t dim_value(const struct vl_config *c, enum dim d) {
    const struct vl_vision_config *v = &c->vision;
    const struct vl_text_config *t = &c->text;
    switch (d) {
    case DIM_END: break;
    case DIM_VD: return v->hidden_size;
    case DIM_VD3: return 3 * v->hidden_size;
    case DIM_VI: return v->intermediate_size;
    case DIM_VC: return v->in_chans;
    case DIM_VTP: return v->temporal_patch_size;
    case DIM_VP: return v->patch_size;
    case DIM_VM: return v->hidden_size * v->spatial_merge_size * v->spatial_merge_size;
    case DIM_H: return t->hidden_size;
    case DIM_HQ: return t->num_attention_heads * t->head_dim;
    case DIM_KVD: return t->num_key_value_heads * t->head_dim;
    case DIM_I: return t->intermediate_size;
    case DIM_V: return t->vocab_size;
    }
    return 0;
}

static int64_t scope_count(const struct vl_config *c, enum scope s) {
    return s == SCOPE_VBLOCK ? c->vision.depth : s == SCOPE_LAYER ? c->text.num_hidden_layers : 1;
}

static void entry_name(char *buf, size_t n, const struct binding *b, int64_t i) {
    const char *pct = b->scope == SCOPE_GLOBAL ? NULL : strstr(b->pattern, "%d");
    if (!pct) {
        snprintf(buf, n, "%s", b->pattern);
        return;
    }
    snprintf(buf, n, "%.*s%lld%s", (int)(pct - b->pattern), b->pattern, (long long)i, pct + 2);
}

static int expected_shape(const struct vl_config *c, const struct binding *b, int64_t *ne) {
    int nd = 0;
    while (nd < VL_MAX_DIMS && b->dims[nd] != DIM_END) {
        ne[nd] = dim_value(c, b->dims[nd]);
        nd++;
    }
    return nd;
}

static struct vl_tensor *field_of(struct vl_weights *w, const struct binding *b, int64_t i) {
    char *base = (char *)w;
    if (b->scope == SCOPE_VBLOCK)
        base = (char *)&w->vblocks[i];
    else if (b->scope == SCOPE_LAYER)
        base = (char *)&w->layers[i];
    return (struct vl_tensor *)(void *)(base + b->offset);
}

static bool tied(const struct vl_config *c, bool has_lm_head) {
    return c->text.tie_word_embeddings_given ? c->text.tie_word_embeddings : !has_lm_head;
}

int vl__weights_foreach(const struct vl_config *c, bool with_lm_head,
                        int (*fn)(const char *name, int ndim, const int64_t *shape,
                                  enum vl_weight_init init, void *user),
                        void *user) {
    char name[NAME_MAX_LEN];
    int64_t ne[VL_MAX_DIMS];
    /* a run of consecutive per-block (per-layer) entries is emitted block by block, so the
     * order matches the published files (all tensors of block 0, then block 1, ...) */
    for (size_t k = 0; k < N_TABLE;) {
        size_t end = k + 1;
        while (end < N_TABLE && table[end].scope == table[k].scope && table[k].scope != SCOPE_GLOBAL)
            end++;
        for (int64_t i = 0; i < scope_count(c, table[k].scope); i++) {
            for (size_t j = k; j < end; j++) {
                const struct binding *b = &table[j];
                if (!with_lm_head && !strcmp(b->pattern, VL_LM_HEAD_NAME))
                    continue;
                entry_name(name, sizeof name, b, i);
                int nd = expected_shape(c, b, ne);
                int r = fn(name, nd, ne, b->init, user);
                if (r)
                    return r;
            }
        }
        k = end;
    }
    return 0;
}

/* ---- binding ---------------------------------------------------------------------------- */

struct found {
    const struct vl_st_entry *e;
    const char *file;
    bool used;
};

const char *vl__canonical_name(const char *name, char *buf, size_t n) {
    static const struct {
        const char *from, *to;
    } rules[] = {{"model.visual.", "visual."}, {"model.language_model.", "model."}};
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
        size_t fl = strlen(rules[i].from);
        if (!strncmp(name, rules[i].from, fl)) {
            snprintf(buf, n, "%s%s", rules[i].to, name + fl);
            return buf;
        }
    }
    return name;
}

static enum vl_status bind_one(struct vl_model *m, struct vl_tensor *dst, const struct found *f,
                               const char *name, const int64_t *want, int nd,
                               struct vl_error *err) {
    const struct vl_st_entry *e = f->e;
    enum vl_dtype qt;
    if (vl__quant_desc_type(m, name, &qt)) /* a `model quantize` checkpoint's block tensor */
        return vl__quant_bind(dst, m, e, f->file, name, want, nd, err);
    char got_s[128], want_s[128];
    bool same = e->ndim == nd;
    for (int d = 0; same && d < nd; d++)
        same = e->shape[d] == want[d];
    if (!same) {
        vl__shape_str(got_s, sizeof got_s, e->ndim, e->shape);
        vl__shape_str(want_s, sizeof want_s, nd, want);
        return vl__err(err, VL_ERR_MODEL, "%s: tensor '%s' has wrong shape: got %s expected %s",
                       f->file, e->name, got_s, want_s);
    }
    enum vl_status st = vl__tensor_from_st(dst, e, err);
    if (st != VL_OK)
        return st;
    if (!vl__dtype_is_float(dst->dtype))
        return vl__err(err, VL_ERR_UNSUPPORTED,
                       "%s: tensor '%s' has dtype %s; only F32, F16 and BF16 weights are supported",
                       f->file, e->name, e->dtype);
    (void)name;
    if ((uintptr_t)dst->data % vl__dtype_size(dst->dtype)) {
        /* packed file: give the kernels an aligned copy (rare; small cost) */
        void *copy = vl__malloc(e->nbytes ? e->nbytes : 1);
        if (!copy)
            return vl__err(err, VL_ERR_NOMEM, "tensor '%s': out of memory", e->name);
        memcpy(copy, e->data, e->nbytes);
        st = vl__model_own(m, copy, e->nbytes, err);
        if (st != VL_OK)
            return st;
        dst->data = copy;
        vl__log(VL_LOG_DEBUG, "tensor '%s' is unaligned in its file; copied", e->name);
    }
    return VL_OK;
}

static void free_found(gpointer p) { vl__free(p); }

enum vl_status vl__weights_bind(struct vl_model *m, struct vl_error *err) {
    const struct vl_config *c = &m->cfg;
    struct vl_weights *w = &m->w;
    w->vblocks = vl__calloc((size_t)c->vision.depth, sizeof *w->vblocks);
    w->layers = vl__calloc((size_t)c->text.num_hidden_layers, sizeof *w->layers);
    GHashTable *all = g_hash_table_new_full(g_str_hash, g_str_equal, free, free_found);
    if (!w->vblocks || !w->layers)
        return vl__err(err, VL_ERR_NOMEM, "out of memory for %lld layers",
                       (long long)c->text.num_hidden_layers);
    enum vl_status st = VL_OK;
    char buf[NAME_MAX_LEN];
    /* every tensor of every file, by canonical name */
    for (int fi = 0; fi < m->n_files && st == VL_OK; fi++) {
        for (int i = 0; i < vl_st_count(m->files[fi]) && st == VL_OK; i++) {
            const struct vl_st_entry *e = vl_st_get(m->files[fi], i);
            const char *cn = vl__canonical_name(e->name, buf, sizeof buf);
            struct found *fd = g_hash_table_lookup(all, cn);
            if (fd) {
                st = vl__err(err, VL_ERR_MODEL, "tensor '%s' appears twice (%s and %s)", e->name,
                             fd->file, vl_st_path(m->files[fi]));
                break;
            }
            char *key = vl__strdup(cn);
            fd = vl__calloc(1, sizeof *fd);
            if (!key || !fd) {
                vl__free(key);
                vl__free(fd);
                st = vl__err(err, VL_ERR_NOMEM, "out of memory");
                break;
            }
            fd->e = e;
            fd->file = vl_st_path(m->files[fi]);
            g_hash_table_insert(all, key, fd);
        }
    }
    bool has_lm_head = g_hash_table_lookup(all, VL_LM_HEAD_NAME) != NULL;
    bool is_tied = tied(c, has_lm_head);
    m->cfg.text.tie_word_embeddings = is_tied;
    int64_t ne[VL_MAX_DIMS];
    for (size_t k = 0; k < N_TABLE && st == VL_OK; k++) {
        const struct binding *b = &table[k];
        bool is_head = !strcmp(b->pattern, VL_LM_HEAD_NAME);
        if (m->text_only && !strncmp(b->pattern, "visual.", 7))
            continue; /* a GGUF text model without its projector */
        for (int64_t i = 0; i < scope_count(c, b->scope) && st == VL_OK; i++) {
            entry_name(buf, sizeof buf, b, i);
            int nd = expected_shape(c, b, ne);
            struct found *fd = g_hash_table_lookup(all, buf);
            if (is_head && is_tied && fd && vl__quant_desc_type(m, buf, &(enum vl_dtype){0})) {
                fd->used = true; /* a quantized checkpoint's own copy of the tied lm_head */
                st = bind_one(m, field_of(w, b, i), fd, buf, ne, nd, err);
                continue;
            }
            if (is_head && is_tied) {
                if (fd) {
                    fd->used = true; /* tied: the reference uses the embedding, not this copy */
                    vl__log(VL_LOG_INFO, "tied embeddings: ignoring the stored %s", buf);
                }
                w->lm_head = w->embed;
                continue;
            }
            if (!fd) {
                char shape[128];
                vl__shape_str(shape, sizeof shape, nd, ne);
                st = vl__err(err, VL_ERR_MODEL, "missing tensor '%s' (expected shape %s)%s", buf,
                             shape,
                             is_head ? "; config.json sets tie_word_embeddings false" : "");
                break;
            }
            fd->used = true;
            st = bind_one(m, field_of(w, b, i), fd, buf, ne, nd, err);
        }
    }
    if (st == VL_OK) {
        GHashTableIter it;
        gpointer key, val;
        g_hash_table_iter_init(&it, all);
        while (g_hash_table_iter_next(&it, &key, &val)) {
            const struct found *fd = val;
            if (!fd->used) {
                st = vl__err(err, VL_ERR_MODEL, "%s: unexpected tensor '%s' (not part of %s)",
                             fd->file, fd->e->name, c->model_type);
                break;
            }
        }
    }
    g_hash_table_destroy(all);
    return st;
}

void vl__weights_free(struct vl_weights *w) {
    vl__free(w->vblocks);
    vl__free(w->layers);
    memset(w, 0, sizeof *w);
}
