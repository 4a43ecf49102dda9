/* llama.cpp's Qwen2.5-VL text model as a libvl model (docs/quantization.md, "GGUF").
 * The config comes from the qwen2vl.* metadata (written as a config.json text and parsed by the
 * same validating parser as a checkpoint's); the tensors are renamed from llama.cpp's names to
 * the checkpoint's canonical names (ggml's innermost-first dims reversed to [out, in]) and bound
 * by the ordinary binding table through a file view (vl__st_from_entries):
 *   F32 / F16 / BF16   views of the mapping
 *   Q8_0 / Q4_0        block views of the mapping (same byte layout as libvl's q8/q4) for the
 *                      Linear weights; other tensors in those types are dequantized to F32
 *   Q4_K / Q6_K        converted to q8 blocks (Linear weights) or f32 at load (vl_gguf_kquant.c)
 *   anything else      a clear error naming the type
 * llama.cpp stores qwen2's q/k weights unpermuted (its converter permutes llama's only), so the
 * rows are in the checkpoint's order. A tied embedding stored as blocks also serves as the
 * lm_head in place. The vision tower comes from the projector (vl_gguf_proj.c) as a second file
 * view; without one the model is text-only (m->text_only). */
#include "vl_gguf_impl.h"
#include "vl_quant_impl.h"

#include <glib.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GGUF_ARCH "qwen2vl"
#define NAME_CAP 256
#define FLOAT_DIGITS_MAX 9 /* %.9g round-trips any f32 */
#define OWNED_ALIGN 64      /* converted tensors: cache-line aligned for the kernels */

static const struct vl_gguf_name names[] = {
    {"token_embd.weight", "model.embed_tokens.weight"},
    {"output_norm.weight", "model.norm.weight"},
    {"output.weight", "lm_head.weight"},
    {"blk.%d.attn_norm.weight", "model.layers.%d.input_layernorm.weight"},
    {"blk.%d.attn_q.weight", "model.layers.%d.self_attn.q_proj.weight"},
    {"blk.%d.attn_q.bias", "model.layers.%d.self_attn.q_proj.bias"},
    {"blk.%d.attn_k.weight", "model.layers.%d.self_attn.k_proj.weight"},
    {"blk.%d.attn_k.bias", "model.layers.%d.self_attn.k_proj.bias"},
    {"blk.%d.attn_v.weight", "model.layers.%d.self_attn.v_proj.weight"},
    {"blk.%d.attn_v.bias", "model.layers.%d.self_attn.v_proj.bias"},
    {"blk.%d.attn_output.weight", "model.layers.%d.self_attn.o_proj.weight"},
    {"blk.%d.ffn_norm.weight", "model.layers.%d.post_attention_layernorm.weight"},
    {"blk.%d.ffn_gate.weight", "model.layers.%d.mlp.gate_proj.weight"},
    {"blk.%d.ffn_up.weight", "model.layers.%d.mlp.up_proj.weight"},
    {"blk.%d.ffn_down.weight", "model.layers.%d.mlp.down_proj.weight"},
};

/* The Linear weights that may stay blocks (what vl__quant_targets covers, lm_head included). */
static bool is_linear(const char *gguf_name) {
    static const char *const sfx[] = {".attn_q.weight", ".attn_k.weight", ".attn_v.weight",
                                      ".attn_output.weight", ".ffn_gate.weight",
                                      ".ffn_up.weight", ".ffn_down.weight"};
    if (!strcmp(gguf_name, "output.weight"))
        return true;
    size_t n = strlen(gguf_name);
    for (size_t i = 0; i < sizeof sfx / sizeof *sfx; i++) {
        size_t k = strlen(sfx[i]);
        if (n > k && !strcmp(gguf_name + n - k, sfx[i]) && !strncmp(gguf_name, "blk.", 4))
            return true;
    }
    return false;
}

bool vl__gguf_rename(char *buf, size_t cap, const char *g, const struct vl_gguf_name *tab,
                     size_t n) {
    for (size_t i = 0; i < n; i++) {
        const char *pct = strstr(tab[i].gguf, "%d");
        if (!pct) {
            if (!strcmp(g, tab[i].gguf)) {
                snprintf(buf, cap, "%s", tab[i].hf);
                return true;
            }
            continue;
        }
        size_t pre = (size_t)(pct - tab[i].gguf);
        if (strncmp(g, tab[i].gguf, pre) || g[pre] < '0' || g[pre] > '9')
            continue;
        char *end;
        long layer = strtol(g + pre, &end, 10);
        if (end == g + pre || layer < 0 || layer > 1000000 || strcmp(end, pct + 2))
            continue;
        const char *hp = strstr(tab[i].hf, "%d");
        snprintf(buf, cap, "%.*s%ld%s", (int)(hp - tab[i].hf), tab[i].hf, layer, hp + 2);
        return true;
    }
    snprintf(buf, cap, "%s", g); /* unknown names kept, so binding reports them */
    return false;
}

static enum vl_status need_int(const struct vl_gguf *g, const char *key, int64_t *out,
                               struct vl_error *err) {
    if (!vl__gguf_int(g, key, out))
        return vl__err(err, VL_ERR_MODEL, "%s: metadata '%s' missing or not an integer", g->path,
                       key);
    return VL_OK;
}

/* The shortest decimal that gives back the stored f32 (1e-06, not 9.99999997e-07): the value
 * the checkpoint's config.json held before conversion. */
static double f32_decimal(double v) {
    char buf[64];
    for (int p = 1; p <= FLOAT_DIGITS_MAX; p++) {
        snprintf(buf, sizeof buf, "%.*g", p, v);
        double d = strtod(buf, NULL);
        if ((float)d == (float)v)
            return d;
    }
    return v;
}

/* config.json text from the metadata; parsed by vl__config_parse (all range checks there). */
static enum vl_status config_from(struct vl_model *m, const struct vl_gguf *g,
                                  const struct vl_gguf *proj, struct vl_error *err) {
    const struct vl_gguf_kv *arch = vl__gguf_find(g, "general.architecture");
    const char *a;
    size_t alen;
    if (!vl__gguf_str(arch, 0, &a, &alen) || arch->type != VL_GGUF_STRING)
        return vl__err(err, VL_ERR_MODEL, "%s: no general.architecture string", g->path);
    if (alen != strlen(GGUF_ARCH) || memcmp(a, GGUF_ARCH, alen))
        return vl__err(err, VL_ERR_UNSUPPORTED,
                       "%s: GGUF of architecture '%.*s'; docproc reads '%s' (Qwen2.5-VL's text "
                       "model)%s",
                       g->path, (int)(alen > 64 ? 64 : alen), a, GGUF_ARCH,
                       alen == 4 && !memcmp(a, "clip", 4) ? ": this is a vision projector, give "
                                                            "the text model as --model"
                                                          : "");
    static const struct {
        const char *key, *json;
    } ints[] = {
        {GGUF_ARCH ".embedding_length", "hidden_size"},
        {GGUF_ARCH ".feed_forward_length", "intermediate_size"},
        {GGUF_ARCH ".block_count", "num_hidden_layers"},
        {GGUF_ARCH ".attention.head_count", "num_attention_heads"},
        {GGUF_ARCH ".attention.head_count_kv", "num_key_value_heads"},
        {GGUF_ARCH ".context_length", "max_position_embeddings"},
    };
    json_t *root = json_object();
    json_object_set_new(root, "model_type", json_string("qwen2_5_vl"));
    enum vl_status st = VL_OK;
    for (size_t i = 0; i < sizeof ints / sizeof *ints && st == VL_OK; i++) {
        int64_t v;
        if ((st = need_int(g, ints[i].key, &v, err)) == VL_OK)
            json_object_set_new(root, ints[i].json, json_integer(v));
    }
    double eps, theta;
    if (st == VL_OK && !vl__gguf_float(g, GGUF_ARCH ".attention.layer_norm_rms_epsilon", &eps))
        st = vl__err(err, VL_ERR_MODEL, "%s: metadata '%s' missing or not a float", g->path,
                     GGUF_ARCH ".attention.layer_norm_rms_epsilon");
    if (st == VL_OK && !vl__gguf_float(g, GGUF_ARCH ".rope.freq_base", &theta))
        st = vl__err(err, VL_ERR_MODEL, "%s: metadata '%s' missing or not a float", g->path,
                     GGUF_ARCH ".rope.freq_base");
    const struct vl_gguf_kv *sec = vl__gguf_find(g, GGUF_ARCH ".rope.dimension_sections");
    json_t *ms = json_array();
    for (uint64_t i = 0; st == VL_OK && i < VL_MROPE_SECTIONS; i++) {
        int64_t v;
        if (!sec || sec->n < VL_MROPE_SECTIONS || !vl__gguf_arr_int(sec, i, &v))
            st = vl__err(err, VL_ERR_MODEL,
                         "%s: metadata '%s' must be an integer array of at least %d sections",
                         g->path, GGUF_ARCH ".rope.dimension_sections", VL_MROPE_SECTIONS);
        else
            json_array_append_new(ms, json_integer(v));
    }
    for (uint64_t i = VL_MROPE_SECTIONS; st == VL_OK && i < sec->n; i++) {
        int64_t v;
        if (!vl__gguf_arr_int(sec, i, &v) || v != 0)
            st = vl__err(err, VL_ERR_UNSUPPORTED, "%s: rope section %llu is not 0", g->path,
                         (unsigned long long)i);
    }
    const struct vl_gguf_tensor *emb = vl__gguf_tensor(g, "token_embd.weight");
    if (st == VL_OK && (!emb || emb->ndim != 2))
        st = vl__err(err, VL_ERR_MODEL, "%s: no 2-D tensor 'token_embd.weight'", g->path);
    if (st == VL_OK) {
        json_object_set_new(root, "vocab_size", json_integer(emb->ne[1]));
        json_object_set_new(root, "rms_norm_eps", json_real(f32_decimal(eps)));
        json_object_set_new(root, "rope_theta", json_real(f32_decimal(theta)));
        json_t *rs = json_object();
        json_object_set_new(rs, "type", json_string("mrope"));
        json_object_set(rs, "mrope_section", ms);
        json_object_set_new(root, "rope_scaling", rs);
    }
    double veps = 0;
    int64_t hidden = 0;
    if (st == VL_OK && proj && (st = need_int(g, GGUF_ARCH ".embedding_length", &hidden, err)) == VL_OK)
        st = vl__gguf_proj_config(root, proj, hidden, &veps, err);
    if (st == VL_OK) {
        char *text = json_dumps(root, JSON_COMPACT);
        st = text ? vl__config_parse(&m->cfg, text, strlen(text), g->path, err)
                  : vl__err(err, VL_ERR_NOMEM, "out of memory");
        free(text);
        if (st == VL_OK && proj)
            m->cfg.vision.rms_norm_eps = veps;
    }
    json_decref(ms);
    json_decref(root);
    return st;
}

static const char *st_dtype(uint32_t t) {
    return t == VL_GGML_F32 ? "F32" : t == VL_GGML_F16 ? "F16" : t == VL_GGML_BF16 ? "BF16" : NULL;
}

void *vl__gguf_owned(struct vl_model *m, size_t n, const char *what, struct vl_error *err) {
    void *p = vl__aligned_alloc(OWNED_ALIGN, n ? n : 1);
    if (!p) {
        vl__err(err, VL_ERR_NOMEM, "%s: out of memory (%zu bytes)", what, n);
        return NULL;
    }
    return vl__model_own(m, p, n, err) == VL_OK ? p : NULL; /* frees p on failure */
}

enum vl_status vl__gguf_entry(struct vl_model *m, const struct vl_gguf *g,
                              const struct vl_gguf_tensor *t, bool linear, bool to_q8,
                              struct vl_st_entry *e, char *name, enum vl_dtype *block,
                              struct vl_error *err) {
    memset(e, 0, sizeof *e);
    *block = VL_DTYPE_COUNT;
    e->name = name;
    e->ndim = t->ndim;
    for (int d = 0; d < t->ndim; d++)
        e->shape[d] = t->ne[t->ndim - 1 - d];
    e->data = t->data;
    e->nbytes = t->nbytes;
    if ((e->dtype = st_dtype(t->type)))
        return VL_OK;
    if (!vl__ggml_row_bytes(t->type, t->ne[0]))
        return vl__err(err, VL_ERR_UNSUPPORTED,
                       "%s: tensor '%s' has type %s; docproc reads GGUF tensors of types F32, "
                       "F16, BF16, Q8_0, Q4_0, Q4_K and Q6_K",
                       g->path, t->name, vl__ggml_type_name(t->type));
    if (t->ndim != 2)
        return vl__err(err, VL_ERR_MODEL, "%s: tensor '%s' (%s) must be 2-D", g->path, t->name,
                       vl__ggml_type_name(t->type));
    const int64_t in = t->ne[0], rows = t->ne[1];
    const size_t src_rb = vl__ggml_row_bytes(t->type, in);
    bool in_place = t->type == VL_GGML_Q8_0 || (t->type == VL_GGML_Q4_0 && !to_q8);
    if (linear && in_place) { /* a block view: U8 [out, row bytes], listed as blocks */
        *block = t->type == VL_GGML_Q8_0 ? VL_DTYPE_Q8_0 : VL_DTYPE_Q4_0;
        e->dtype = "U8";
        e->shape[1] = (int64_t)src_rb;
        return VL_OK;
    }
    /* converted at load: q8 blocks (Linear weights) or f32 (the embedding lookup reads floats) */
    size_t dst_rb = linear ? vl__q_row_bytes(VL_DTYPE_Q8_0, in) : 0, n;
    if (!linear && !vl__size_mul(&dst_rb, (size_t)in, sizeof(float)))
        return vl__err(err, VL_ERR_MODEL, "%s: tensor '%s' too large", g->path, t->name);
    if (!vl__size_mul(&n, dst_rb, (size_t)rows))
        return vl__err(err, VL_ERR_MODEL, "%s: tensor '%s' too large", g->path, t->name);
    uint8_t *dst = vl__gguf_owned(m, n, t->name, err);
    float *row = linear ? vl__malloc((size_t)in * sizeof *row) : NULL;
    if (!dst || (linear && !row)) {
        vl__free(row);
        return dst ? vl__err(err, VL_ERR_NOMEM, "tensor '%s': out of memory", t->name)
                   : VL_ERR_NOMEM;
    }
    const uint8_t *src = t->data;
    for (int64_t r = 0; r < rows; r++) {
        float *f = linear ? row : (float *)(void *)(dst + (size_t)r * dst_rb);
        vl__ggml_dequantize_row(f, t->type, src + (size_t)r * src_rb, in);
        if (linear)
            vl__quantize_row(dst + (size_t)r * dst_rb, VL_DTYPE_Q8_0, f, in);
    }
    vl__free(row);
    e->data = dst;
    e->nbytes = n;
    if (linear) {
        *block = VL_DTYPE_Q8_0;
        e->dtype = "U8";
        e->shape[1] = (int64_t)dst_rb;
    } else {
        e->dtype = "F32";
    }
    return VL_OK;
}

enum vl_status vl__gguf_model_load(struct vl_model *m, const char *path, const char *mmproj,
                                   struct vl_error *err) {
    enum vl_status st = vl__gguf_open(&m->gguf, path, err);
    if (st == VL_OK && mmproj)
        st = vl__gguf_open(&m->gguf_proj, mmproj, err);
    if (st != VL_OK)
        return st;
    const struct vl_gguf *g = m->gguf;
    if ((st = config_from(m, g, m->gguf_proj, err)) != VL_OK)
        return st;
    m->text_only = !mmproj;
    int64_t n = g->n_tensors;
    /* tied embeddings stored as blocks (llama.cpp's Q8_0 / Q4_0 / Q4_K_M files): the lm_head
     * reads the embedding's blocks (in place; k-quants converted), as llama.cpp's output does,
     * while the embedding lookup gets f32 rows */
    const struct vl_gguf_tensor *emb = vl__gguf_tensor(g, "token_embd.weight");
    bool head_of_emb = emb && !vl__gguf_tensor(g, "output.weight") && !st_dtype(emb->type);
    struct vl_st_entry *es = vl__calloc((size_t)n + 2, sizeof *es), *pes = NULL;
    int n_proj = 0;
    char *nm = vl__calloc((size_t)n + 1, NAME_CAP);
    GHashTable *desc = vl__quant_desc_new();
    m->files = vl__calloc(2, sizeof *m->files);
    if (!es || !nm || !m->files)
        st = vl__err(err, VL_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < n && st == VL_OK; i++) {
        const struct vl_gguf_tensor *t = &g->tensors[i];
        char *name = nm + i * NAME_CAP;
        enum vl_dtype block;
        vl__gguf_rename(name, NAME_CAP, t->name, names, sizeof names / sizeof *names);
        st = vl__gguf_entry(m, g, t, is_linear(t->name), false, &es[i], name, &block, err);
        if (st == VL_OK && block != VL_DTYPE_COUNT)
            vl__quant_desc_add(desc, name, block);
    }
    char head_name[] = VL_LM_HEAD_NAME;
    if (st == VL_OK && head_of_emb) {
        enum vl_dtype block;
        st = vl__gguf_entry(m, g, emb, true, false, &es[n], head_name, &block, err);
        if (st == VL_OK && block != VL_DTYPE_COUNT)
            vl__quant_desc_add(desc, head_name, block);
    }
    if (st == VL_OK && n > INT32_MAX / 2)
        st = vl__err(err, VL_ERR_MODEL, "%s: too many tensors", path);
    if (st == VL_OK)
        st = vl__st_from_entries(&m->files[0], path, g->size, es, (int)n + head_of_emb, err);
    if (st == VL_OK)
        m->n_files = 1;
    if (st == VL_OK && m->gguf_proj)
        st = vl__gguf_proj_entries(m, m->gguf_proj, &pes, &n_proj, desc, err);
    if (st == VL_OK && m->gguf_proj)
        st = vl__st_from_entries(&m->files[1], mmproj, m->gguf_proj->size, pes, n_proj, err);
    if (st == VL_OK && m->gguf_proj)
        m->n_files = 2;
    if (pes)
        for (int i = 0; i < n_proj; i++)
            vl__free((char *)pes[i].name);
    vl__free(pes);
    vl__free(es);
    vl__free(nm);
    if (st == VL_OK && g_hash_table_size(desc)) {
        m->quant_desc = desc;
        desc = NULL;
    }
    if (desc)
        g_hash_table_destroy(desc);
    if (st == VL_OK)
        st = vl__weights_bind(m, err);
    if (st == VL_OK)
        st = vl__quant_desc_check(m, err);
    if (st == VL_OK && head_of_emb)
        m->cfg.text.tie_word_embeddings = true; /* the head is the embedding's own blocks */
    return st;
}

/* general.architecture of a GGUF file ("" when unreadable), into buf */
static void arch_of(const char *path, char *buf, size_t cap) {
    struct vl_gguf *g = NULL;
    struct vl_error err = {0};
    buf[0] = '\0';
    if (vl__gguf_open(&g, path, &err) != VL_OK)
        return;
    const char *s;
    size_t n;
    const struct vl_gguf_kv *kv = vl__gguf_find(g, "general.architecture");
    if (kv && kv->type == VL_GGUF_STRING && vl__gguf_str(kv, 0, &s, &n))
        snprintf(buf, cap, "%.*s", (int)(n < cap ? n : cap - 1), s);
    vl__gguf_close(g);
}

enum vl_status vl__gguf_dir(const char *dir, char **text, char **mmproj, struct vl_error *err) {
    *text = *mmproj = NULL;
    GDir *d = g_dir_open(dir, 0, NULL);
    if (!d)
        return VL_OK;
    const char *name;
    enum vl_status st = VL_OK;
    while (st == VL_OK && (name = g_dir_read_name(d))) {
        size_t n = strlen(name);
        if (n < 5 || strcmp(name + n - 5, ".gguf"))
            continue;
        char *p = vl__path_join(dir, name);
        if (!p) {
            st = vl__err(err, VL_ERR_NOMEM, "out of memory");
            break;
        }
        char arch[64];
        arch_of(p, arch, sizeof arch);
        char **slot = !strcmp(arch, GGUF_ARCH) ? text : !strcmp(arch, "clip") ? mmproj : NULL;
        if (slot && *slot)
            st = vl__err(err, VL_ERR_MODEL, "%s: two GGUF files of architecture '%s' (%s, %s)",
                         dir, arch, *slot, name);
        if (slot && !*slot) {
            *slot = p;
            p = NULL;
        }
        vl__free(p);
    }
    g_dir_close(d);
    if (st != VL_OK) {
        vl__free(*text);
        vl__free(*mmproj);
        *text = *mmproj = NULL;
    }
    return st;
}
