/* vl_model_load / vl_model_free and the read-only accessors the CLI uses (summary, files).
 * A model is a checkpoint directory: config.json (+ optional preprocessor/generation configs),
 * model.safetensors or model-*-of-*.safetensors listed by model.safetensors.index.json
 * (weight_map), and tokenizer.json. The index is cross-checked both ways against the shards.
 * Weights stay mmapped in their stored dtype (no copy; RSS grows only with the pages touched).
 * Thread-safety: a loaded model is immutable and may be shared by threads. */
#include "vl_impl.h"
#include "vl_gguf_impl.h"
#include "vl_quant_impl.h"

#include <errno.h>
#include <glib.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SINGLE_FILE "model.safetensors"
#define INDEX_FILE "model.safetensors.index.json"
#define TOKENIZER_FILE "tokenizer.json"

/* *out = whether dir/name exists; VL_ERR_NOMEM when the path cannot be built (an allocation
 * failure must not read as "file absent": that silently dropped the tokenizer once). */
static enum vl_status exists(bool *out, const char *dir, const char *name, struct vl_error *err) {
    char *p = vl__path_join(dir, name);
    if (!p)
        return vl__err(err, VL_ERR_NOMEM, "out of memory");
    *out = access(p, F_OK) == 0;
    vl__free(p);
    return VL_OK;
}

static enum vl_status add_file(struct vl_model *m, const char *dir, const char *name,
                               struct vl_error *err) {
    char *path = vl__path_join(dir, name);
    struct vl_st_file **files = vl__realloc(m->files, (size_t)(m->n_files + 1) * sizeof *files);
    if (!path || !files) {
        vl__free(path);
        if (files)
            m->files = files;
        return vl__err(err, VL_ERR_NOMEM, "out of memory");
    }
    m->files = files;
    struct vl_st_file *f;
    enum vl_status st = vl_st_open(&f, path, err);
    vl__free(path);
    if (st != VL_OK)
        return st;
    m->files[m->n_files++] = f;
    return VL_OK;
}

/* A shard name from the index must be a plain file name inside the directory. */
static bool safe_shard_name(const char *s) {
    return s[0] && s[0] != '.' && !strchr(s, '/') && !strchr(s, '\\');
}

static enum vl_status load_sharded(struct vl_model *m, const char *dir, struct vl_error *err) {
    char *path = vl__path_join(dir, INDEX_FILE);
    if (!path)
        return vl__err(err, VL_ERR_NOMEM, "out of memory");
    char *text;
    size_t len;
    enum vl_status st = vl__read_file(path, VL_CONFIG_MAX_BYTES, &text, &len, err);
    json_t *root = NULL;
    if (st == VL_OK) {
        json_error_t jerr;
        root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
        vl__free(text);
        if (!root)
            st = vl__err(err, VL_ERR_MODEL, "%s: invalid JSON: %s (line %d)", path, jerr.text,
                         jerr.line);
    }
    json_t *wm = root ? json_object_get(root, "weight_map") : NULL;
    if (st == VL_OK && !json_is_object(wm))
        st = vl__err(err, VL_ERR_MODEL, "%s: no \"weight_map\" object", path);
    /* open each distinct shard once, in order of first mention */
    GHashTable *shard_idx = g_hash_table_new(g_str_hash, g_str_equal);
    const char *key;
    json_t *val;
    if (st == VL_OK) {
        json_object_foreach(wm, key, val) {
            if (!json_is_string(val) || !safe_shard_name(json_string_value(val))) {
                st = vl__err(err, VL_ERR_MODEL,
                             "%s: weight_map entry '%s' is not a plain shard file name", path,
                             key);
                break;
            }
            const char *shard = json_string_value(val);
            if (g_hash_table_contains(shard_idx, shard))
                continue;
            st = add_file(m, dir, shard, err);
            if (st != VL_OK) {
                if (err)
                    vl__log(VL_LOG_DEBUG, "shard listed in %s failed: %s", path, err->msg);
                break;
            }
            g_hash_table_insert(shard_idx, (gpointer)shard, GINT_TO_POINTER(m->n_files));
        }
    }
    if (st == VL_OK && m->n_files == 0)
        st = vl__err(err, VL_ERR_MODEL, "%s: weight_map lists no tensors", path);
    /* every index entry is in its shard, and every shard tensor is in the index */
    if (st == VL_OK) {
        json_object_foreach(wm, key, val) {
            int fi = GPOINTER_TO_INT(g_hash_table_lookup(shard_idx, json_string_value(val))) - 1;
            if (!vl_st_find(m->files[fi], key)) {
                st = vl__err(err, VL_ERR_MODEL, "%s: tensor '%s' is listed for %s but not in it",
                             path, key, json_string_value(val));
                break;
            }
        }
    }
    for (int fi = 0; fi < m->n_files && st == VL_OK; fi++) {
        for (int i = 0; i < vl_st_count(m->files[fi]); i++) {
            const char *name = vl_st_get(m->files[fi], i)->name;
            json_t *s = json_object_get(wm, name);
            const char *base = strrchr(vl_st_path(m->files[fi]), '/');
            base = base ? base + 1 : vl_st_path(m->files[fi]);
            if (!s || strcmp(json_string_value(s), base)) {
                st = vl__err(err, VL_ERR_MODEL, "%s: tensor '%s' of %s is missing from the index",
                             path, name, base);
                break;
            }
        }
    }
    g_hash_table_destroy(shard_idx);
    json_decref(root);
    vl__free(path);
    return st;
}

enum vl_status vl__model_own(struct vl_model *m, void *p, size_t bytes, struct vl_error *err) {
    void **owned = vl__realloc(m->owned, (size_t)(m->n_owned + 1) * sizeof *owned);
    if (!owned) {
        vl__free(p);
        return vl__err(err, VL_ERR_NOMEM, "out of memory");
    }
    m->owned = owned;
    m->owned[m->n_owned++] = p;
    m->owned_bytes += bytes;
    return VL_OK;
}

void vl_model_free(struct vl_model *m) {
    if (!m)
        return;
    for (int i = 0; i < m->n_files; i++)
        vl_st_close(m->files[i]);
    vl__free(m->files);
    for (int i = 0; i < m->n_owned; i++)
        vl__free(m->owned[i]);
    vl__free(m->owned);
    vl__weights_free(&m->w);
    vl__quant_desc_free(m);
    vl__gguf_close(m->gguf);
    vl__gguf_close(m->gguf_proj);
    vl_tokenizer_free(m->tok);
    vl__free(m->dir);
    vl__free(m);
}

enum vl_status vl_model_load(struct vl_model **out, const char *dir, struct vl_error *err) {
    return vl_model_load_with_projector(out, dir, NULL, err);
}

enum vl_status vl_model_load_with_projector(struct vl_model **out, const char *dir,
                                            const char *mmproj, struct vl_error *err) {
    *out = NULL;
    struct vl_model *m = vl__calloc(1, sizeof *m);
    if (!m || !(m->dir = vl__strdup(dir))) {
        vl__free(m);
        return vl__err(err, VL_ERR_NOMEM, "out of memory");
    }
    /* a path that is not there is named as it was given, whatever it was meant to be (before,
     * the message spoke of DIR/config.json, as if a checkpoint directory had been found) */
    const char *missing = access(dir, F_OK) != 0                 ? dir
                          : mmproj && access(mmproj, F_OK) != 0 ? mmproj
                                                                 : NULL;
    if (missing) {
        enum vl_status st = vl__err(err, VL_ERR_IO, "%s: %s", missing, strerror(errno));
        vl_model_free(m);
        return st;
    }
    char *gtext = NULL, *gproj = NULL;
    bool has_cfg = false, is_file = vl__is_gguf_file(dir);
    enum vl_status gst = exists(&has_cfg, dir, "config.json", err);
    if (gst == VL_OK && !has_cfg && !is_file)
        gst = vl__gguf_dir(dir, &gtext, &gproj, err);
    if (gst == VL_OK && mmproj && !is_file && !gtext)
        gst = vl__err(err, VL_ERR_INVALID,
                      "%s: --mmproj goes with a llama.cpp GGUF text model (a .gguf file or a "
                      "directory holding one); a checkpoint directory has its own vision tower",
                      dir);
    if (gst != VL_OK) {
        vl__free(gtext);
        vl__free(gproj);
        vl_model_free(m);
        return gst;
    }
    if (is_file || gtext) { /* llama.cpp's files (vl_gguf_model.c, vl_gguf_proj.c) */
        const char *proj = mmproj ? mmproj : gproj;
        enum vl_status st = vl__gguf_model_load(m, gtext ? gtext : dir, proj, err);
        vl__free(gtext);
        vl__free(gproj);
        if (st != VL_OK) {
            vl_model_free(m);
            return st;
        }
        st = vl__quant_pack_model(m, err);
        if (st == VL_OK && vl__gguf_find(m->gguf, "tokenizer.ggml.tokens"))
            st = vl__gguf_tokenizer(&m->tok, m->gguf, err);
        else if (st == VL_OK)
            vl__log(VL_LOG_WARN, "%s: no tokenizer.ggml.tokens; text cannot be tokenized", dir);
        if (st != VL_OK) {
            vl_model_free(m);
            return st;
        }
        *out = m;
        return VL_OK;
    }
    enum vl_status st = vl__config_load_dir(&m->cfg, dir, err);
    bool sharded = false, single = false, has_tok = false;
    if (st == VL_OK)
        st = exists(&sharded, dir, INDEX_FILE, err);
    if (st == VL_OK && !sharded)
        st = exists(&single, dir, SINGLE_FILE, err);
    if (st == VL_OK) {
        if (sharded)
            st = load_sharded(m, dir, err);
        else if (single)
            st = add_file(m, dir, SINGLE_FILE, err);
        else
            st = vl__err(err, VL_ERR_MODEL, "%s: neither %s nor %s found", dir, SINGLE_FILE,
                         INDEX_FILE);
    }
    if (st == VL_OK)
        st = vl__quant_desc_load(m, dir, err);
    if (st == VL_OK)
        st = vl__weights_bind(m, err);
    if (st == VL_OK)
        st = vl__quant_desc_check(m, err);
    if (st == VL_OK)
        st = vl__quant_pack_model(m, err);
    if (st == VL_OK)
        st = exists(&has_tok, dir, TOKENIZER_FILE, err);
    if (st == VL_OK && has_tok) {
        char *tp = vl__path_join(dir, TOKENIZER_FILE);
        st = tp ? vl_tokenizer_load(&m->tok, tp, err) : vl__err(err, VL_ERR_NOMEM, "out of memory");
        vl__free(tp);
    } else if (st == VL_OK) {
        vl__log(VL_LOG_WARN, "%s: no %s; text cannot be tokenized", dir, TOKENIZER_FILE);
    }
    if (st != VL_OK) {
        vl_model_free(m);
        return st;
    }
    *out = m;
    return VL_OK;
}

/* ---- accessors -------------------------------------------------------------------------- */

const struct vl_tokenizer *vl_model_tokenizer(const struct vl_model *m) { return m->tok; }
bool vl_model_has_vision(const struct vl_model *m) { return !m->text_only; }
bool vl_model_is_gguf(const struct vl_model *m) { return m->gguf != NULL; }
int vl_model_n_files(const struct vl_model *m) { return m->n_files; }
const char *vl_model_file_path(const struct vl_model *m, int i) {
    return i >= 0 && i < m->n_files ? vl_st_path(m->files[i]) : NULL;
}
size_t vl_model_file_size(const struct vl_model *m, int i) {
    return i >= 0 && i < m->n_files ? vl_st_file_size(m->files[i]) : 0;
}

int64_t vl_model_huge_mapped_bytes(const struct vl_model *m) {
    return vl_st_huge_mapped_bytes((const struct vl_st_file *const *)m->files, m->n_files);
}

/* A quantized Linear weight may have only its packed blocks (vl_impl.h, struct vl_tensor). */
static bool present(const struct vl_tensor *t) { return t->data || t->pack; }

static int64_t numel(const struct vl_tensor *t) { return present(t) ? vl__tensor_numel(t) : 0; }

static int64_t block_params(const struct vl_vision_block *b) {
    return numel(&b->norm1) + numel(&b->qkv_w) + numel(&b->qkv_b) + numel(&b->proj_w) +
           numel(&b->proj_b) + numel(&b->norm2) + numel(&b->gate_w) + numel(&b->gate_b) +
           numel(&b->up_w) + numel(&b->up_b) + numel(&b->down_w) + numel(&b->down_b);
}

/* The bytes the kernels stream: a quantized weight's packed blocks (rows padded to 16). */
static size_t nbytes(const struct vl_tensor *t) {
    if (t->pack)
        return vl__qpack_bytes(t->dtype, t->ne[0], vl__q_blocks(t->ne[1]));
    return t->data ? vl__tensor_nbytes(t) : 0;
}

/* A decoder layer's parameters and stored bytes, from one list of its tensors. */
static void layer_size(const struct vl_llm_layer *l, int64_t *params, size_t *bytes) {
    const struct vl_tensor *t[] = {&l->attn_norm, &l->q_w, &l->q_b,  &l->k_w,    &l->k_b,
                                   &l->v_w,       &l->v_b, &l->o_w,  &l->mlp_norm,
                                   &l->gate_w,    &l->up_w, &l->down_w};
    for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
        *params += numel(t[i]);
        *bytes += nbytes(t[i]);
    }
}

void vl_model_summary(const struct vl_model *m, struct vl_model_summary *s) {
    memset(s, 0, sizeof *s);
    const struct vl_config *c = &m->cfg;
    const struct vl_weights *w = &m->w;
    snprintf(s->model_type, sizeof s->model_type, "%s", c->model_type);
    s->hidden_size = c->text.hidden_size;
    s->intermediate_size = c->text.intermediate_size;
    s->n_layers = c->text.num_hidden_layers;
    s->n_heads = c->text.num_attention_heads;
    s->n_kv_heads = c->text.num_key_value_heads;
    s->head_dim = c->text.head_dim;
    s->vocab_size = c->text.vocab_size;
    s->max_positions = c->text.max_position_embeddings;
    s->rope_theta = c->text.rope_theta;
    s->rms_norm_eps = c->text.rms_norm_eps;
    memcpy(s->mrope_section, c->text.mrope_section, sizeof s->mrope_section);
    s->tied_embeddings = c->text.tie_word_embeddings;
    s->vit_depth = c->vision.depth;
    s->vit_hidden = c->vision.hidden_size;
    s->vit_heads = c->vision.num_heads;
    s->vit_intermediate = c->vision.intermediate_size;
    s->patch_size = c->vision.patch_size;
    s->temporal_patch_size = c->vision.temporal_patch_size;
    s->merge_size = c->vision.spatial_merge_size;
    s->window_size = c->vision.window_size;
    s->n_fullatt = (int)c->vision.n_fullatt;
    for (int i = 0; i < s->n_fullatt && i < VL_SUMMARY_MAX_FULLATT; i++)
        s->fullatt[i] = c->vision.fullatt_block_indexes[i];
    if (m->text_only) { /* a GGUF text model: no vision tower to describe */
        s->vit_depth = s->vit_hidden = s->vit_heads = s->vit_intermediate = 0;
        s->n_fullatt = 0;
    }
    s->min_pixels = c->preproc.min_pixels;
    s->max_pixels = c->preproc.max_pixels;

    s->params_vision = numel(&w->patch_embed);
    for (int64_t b = 0; b < c->vision.depth; b++)
        s->params_vision += block_params(&w->vblocks[b]);
    s->params_merger = numel(&w->merger_norm) + numel(&w->merger_fc1_w) +
                       numel(&w->merger_fc1_b) + numel(&w->merger_fc2_w) + numel(&w->merger_fc2_b);
    s->params_embed = numel(&w->embed);
    for (int64_t l = 0; l < c->text.num_hidden_layers; l++)
        layer_size(&w->layers[l], &s->params_layers, &s->bytes_decode_step);
    s->params_layers += numel(&w->final_norm);
    s->params_lm_head = c->text.tie_word_embeddings ? 0 : numel(&w->lm_head);
    s->params_total = s->params_vision + s->params_merger + s->params_embed + s->params_layers +
                      s->params_lm_head;

    s->n_files = m->n_files;
    for (int fi = 0; fi < m->n_files; fi++) {
        s->bytes_files += vl_st_file_size(m->files[fi]);
        for (int i = 0; i < vl_st_count(m->files[fi]); i++) {
            const struct vl_st_entry *e = vl_st_get(m->files[fi], i);
            s->n_tensors++;
            s->bytes_tensors += e->nbytes;
            enum vl_dtype dt;
            if (vl__dtype_from_name(e->dtype, &dt) && dt < VL_SUMMARY_MAX_DTYPES)
                s->n_tensors_by_dtype[dt]++;
        }
    }
    s->bytes_decode_step += nbytes(&w->final_norm) + nbytes(&w->lm_head); /* embed if tied */
    if (w->embed.data) /* the new token's row */
        s->bytes_decode_step += (size_t)c->text.hidden_size * vl__dtype_size(w->embed.dtype);
    s->bytes_owned = m->owned_bytes;
    s->weights = (int)vl_model_wformat(m, false);
    s->vision_weights = (int)vl_model_wformat(m, true);
    /* K and V per layer per token in f32, as the inference state keeps them */
    s->kv_bytes_per_token = (size_t)(2 * c->text.num_hidden_layers * c->text.num_key_value_heads *
                                     c->text.head_dim) *
                            sizeof(float);
}

const char *vl_dtype_str(int dtype) {
    return dtype >= 0 && dtype < VL_DTYPE_COUNT ? vl__dtype_name((enum vl_dtype)dtype) : "?";
}

#define F32_EXP_MASK 0x7f800000u  /* exponent all ones: Inf or NaN */
#define BF16_EXP_MASK 0x7f80u
#define F16_EXP_MASK 0x7c00u

static bool nonfinite(enum vl_dtype dt, const uint8_t *p) {
    if (dt == VL_DTYPE_F32) {
        uint32_t u;
        memcpy(&u, p, sizeof u);
        return (u & F32_EXP_MASK) == F32_EXP_MASK;
    }
    uint16_t h;
    memcpy(&h, p, sizeof h);
    uint16_t mask = dt == VL_DTYPE_BF16 ? BF16_EXP_MASK : F16_EXP_MASK;
    return (h & mask) == mask;
}

enum vl_status vl_model_scan(const struct vl_model *m, int64_t *n_nonfinite, char *first,
                             size_t first_cap, struct vl_error *err) {
    *n_nonfinite = 0;
    if (first_cap)
        first[0] = '\0';
    for (int fi = 0; fi < m->n_files; fi++) {
        for (int i = 0; i < vl_st_count(m->files[fi]); i++) {
            struct vl_tensor t;
            if (vl__tensor_from_st(&t, vl_st_get(m->files[fi], i), err) != VL_OK)
                return err ? err->code : VL_ERR_FORMAT;
            if (!vl__dtype_is_float(t.dtype))
                continue;
            size_t es = vl__dtype_size(t.dtype), nb = vl__tensor_nbytes(&t);
            const uint8_t *p = t.data;
            int64_t bad = 0;
            for (size_t off = 0; off < nb; off += es)
                bad += nonfinite(t.dtype, p + off);
            if (bad && first_cap && !first[0])
                snprintf(first, first_cap, "%s", t.name);
            *n_nonfinite += bad;
        }
    }
    return VL_OK;
}
