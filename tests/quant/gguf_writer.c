/* GGUF writer for tests (gguf_writer.h). Layout facts from llama.cpp's ggml/docs/gguf.md and
 * gguf-py/gguf/constants.py (names, keys); no code taken from there. */
#include "gguf_writer.h"

#include "vl_quant_impl.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GW_ALIGN 32
#define GW_MAX_TENSORS 512

struct gw_tensor {
    char name[96];
    const struct vl_tensor *t;
    uint32_t type;
    size_t nbytes;
    uint64_t offset;
};

static void put(FILE *fp, uint64_t v, int n) {
    for (int i = 0; i < n; i++)
        fputc((int)((v >> (8 * i)) & 0xff), fp);
}
static void put_str(FILE *fp, const char *s) {
    put(fp, strlen(s), 8);
    fwrite(s, 1, strlen(s), fp);
}
static void kv_u32(FILE *fp, const char *k, uint32_t v) {
    put_str(fp, k);
    put(fp, VL_GGUF_U32, 4);
    put(fp, v, 4);
}
static void kv_f32(FILE *fp, const char *k, float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    put_str(fp, k);
    put(fp, VL_GGUF_F32, 4);
    put(fp, u, 4);
}
static void kv_str(FILE *fp, const char *k, const char *v) {
    put_str(fp, k);
    put(fp, VL_GGUF_STRING, 4);
    put_str(fp, v);
}

static float elem(const struct vl_tensor *t, int64_t i) {
    const uint8_t *p = t->data;
    if (t->dtype == VL_DTYPE_F32) {
        float f;
        memcpy(&f, p + 4 * i, 4);
        return f;
    }
    uint16_t h;
    memcpy(&h, p + 2 * i, 2);
    if (t->dtype == VL_DTYPE_F16)
        return vl__f16_to_f32(h);
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static size_t tensor_bytes(const struct vl_tensor *t, uint32_t type) {
    if (vl__dtype_is_quant(t->dtype))
        return (size_t)t->ne[0] * vl__q_row_bytes(t->dtype, t->ne[1]);
    return (size_t)vl__tensor_numel(t) * (type == VL_GGML_F32 ? 4 : 2);
}

static void write_data(FILE *fp, const struct vl_tensor *t, uint32_t type) {
    if (vl__dtype_is_quant(t->dtype)) {
        fwrite(t->data, 1, tensor_bytes(t, type), fp);
        return;
    }
    int64_t n = vl__tensor_numel(t);
    for (int64_t i = 0; i < n; i++) {
        float f = elem(t, i);
        uint32_t u;
        memcpy(&u, &f, 4);
        if (type == VL_GGML_F32)
            put(fp, u, 4);
        else if (type == VL_GGML_F16)
            put(fp, vl__f32_to_f16(f), 2);
        else /* BF16: round to nearest even (exact for BF16 sources) */
            put(fp, (u + 0x7fffu + ((u >> 16) & 1u)) >> 16, 2);
    }
}

static void add(struct gw_tensor *ts, int *n, const char *name, const struct vl_tensor *t,
                uint32_t ftype) {
    struct gw_tensor *g = &ts[(*n)++];
    snprintf(g->name, sizeof g->name, "%s", name);
    g->t = t;
    g->type = t->dtype == VL_DTYPE_Q8_0 ? VL_GGML_Q8_0 : t->dtype == VL_DTYPE_Q4_0 ? VL_GGML_Q4_0
                                                                                     : ftype;
    g->nbytes = tensor_bytes(t, g->type);
}

static void arr_head(FILE *fp, const char *k, uint32_t et, uint64_t n) {
    put_str(fp, k);
    put(fp, VL_GGUF_ARRAY, 4);
    put(fp, et, 4);
    put(fp, n, 8);
}

/* tokenizer.ggml.* from tokenizer.json (7 keys); -1 when the file cannot be read */
static int write_tokenizer(FILE *fp, const char *tj, int64_t n_ids) {
    json_error_t je;
    json_t *root = json_load_file(tj, 0, &je);
    json_t *vocab = json_object_get(json_object_get(root, "model"), "vocab");
    json_t *merges = json_object_get(json_object_get(root, "model"), "merges");
    json_t *added = json_object_get(root, "added_tokens");
    if (!json_is_object(vocab) || !json_is_array(merges))
        return -1;
    const char **tok = calloc((size_t)n_ids, sizeof *tok);
    int *type = calloc((size_t)n_ids, sizeof *type);
    const char *key;
    json_t *v;
    json_object_foreach(vocab, key, v) {
        json_int_t id = json_integer_value(v);
        if (id >= 0 && id < n_ids) {
            tok[id] = key;
            type[id] = 1; /* NORMAL */
        }
    }
    size_t i;
    json_array_foreach(added, i, v) {
        json_int_t id = json_integer_value(json_object_get(v, "id"));
        if (id >= 0 && id < n_ids) {
            tok[id] = json_string_value(json_object_get(v, "content"));
            type[id] = json_is_true(json_object_get(v, "special")) ? 3 : 4; /* CONTROL, USER_DEF */
        }
    }
    kv_str(fp, "tokenizer.ggml.model", "gpt2");
    kv_str(fp, "tokenizer.ggml.pre", "qwen2");
    arr_head(fp, "tokenizer.ggml.tokens", VL_GGUF_STRING, (uint64_t)n_ids);
    char pad[32];
    for (int64_t k = 0; k < n_ids; k++) {
        snprintf(pad, sizeof pad, "[PAD%lld]", (long long)k);
        put_str(fp, tok[k] ? tok[k] : pad);
    }
    arr_head(fp, "tokenizer.ggml.token_type", VL_GGUF_I32, (uint64_t)n_ids);
    for (int64_t k = 0; k < n_ids; k++)
        put(fp, (uint64_t)(tok[k] ? type[k] : 5), 4); /* UNUSED */
    arr_head(fp, "tokenizer.ggml.merges", VL_GGUF_STRING, json_array_size(merges));
    json_array_foreach(merges, i, v) {
        char buf[1024];
        if (json_is_array(v))
            snprintf(buf, sizeof buf, "%s %s", json_string_value(json_array_get(v, 0)),
                     json_string_value(json_array_get(v, 1)));
        else
            snprintf(buf, sizeof buf, "%s", json_string_value(v));
        put_str(fp, buf);
    }
    kv_u32(fp, "tokenizer.ggml.bos_token_id", 151643);
    kv_u32(fp, "tokenizer.ggml.eos_token_id", 151645);
    free(tok);
    free(type);
    json_decref(root);
    return 0;
}

#define GW_TOKENIZER_KEYS 7

int gw_write(const char *path, const struct vl_model *m, uint32_t ftype, const char *arch,
             const char *tokenizer_json) {
    const struct vl_weights *w = &m->w;
    const struct vl_text_config *c = &m->cfg.text;
    static struct gw_tensor ts[GW_MAX_TENSORS];
    int n = 0;
    char nm[96];
    add(ts, &n, "token_embd.weight", &w->embed, ftype);
    for (int64_t l = 0; l < c->num_hidden_layers && n + 12 < GW_MAX_TENSORS; l++) {
        const struct vl_llm_layer *ly = &w->layers[l];
        const struct {
            const char *s;
            const struct vl_tensor *t;
        } parts[] = {{"attn_norm.weight", &ly->attn_norm}, {"attn_q.weight", &ly->q_w},
                     {"attn_q.bias", &ly->q_b},            {"attn_k.weight", &ly->k_w},
                     {"attn_k.bias", &ly->k_b},            {"attn_v.weight", &ly->v_w},
                     {"attn_v.bias", &ly->v_b},            {"attn_output.weight", &ly->o_w},
                     {"ffn_norm.weight", &ly->mlp_norm},   {"ffn_gate.weight", &ly->gate_w},
                     {"ffn_up.weight", &ly->up_w},         {"ffn_down.weight", &ly->down_w}};
        for (size_t k = 0; k < sizeof parts / sizeof *parts; k++) {
            snprintf(nm, sizeof nm, "blk.%lld.%s", (long long)l, parts[k].s);
            add(ts, &n, nm, parts[k].t, ftype);
        }
    }
    add(ts, &n, "output_norm.weight", &w->final_norm, ftype);
    if (w->lm_head.data != w->embed.data || w->lm_head.dtype != w->embed.dtype)
        add(ts, &n, "output.weight", &w->lm_head, ftype);
    FILE *fp = fopen(path, "wb");
    if (!fp)
        return -1;
    fwrite("GGUF", 1, 4, fp);
    put(fp, 3, 4);
    put(fp, (uint64_t)n, 8);
    put(fp, 12 + (tokenizer_json ? GW_TOKENIZER_KEYS : 0), 8); /* kv count */
    kv_str(fp, "general.architecture", arch ? arch : "qwen2vl");
    kv_str(fp, "general.name", "docproc test fixture");
    kv_u32(fp, "general.alignment", GW_ALIGN);
    kv_u32(fp, "qwen2vl.context_length", (uint32_t)c->max_position_embeddings);
    kv_u32(fp, "qwen2vl.embedding_length", (uint32_t)c->hidden_size);
    kv_u32(fp, "qwen2vl.block_count", (uint32_t)c->num_hidden_layers);
    kv_u32(fp, "qwen2vl.feed_forward_length", (uint32_t)c->intermediate_size);
    kv_u32(fp, "qwen2vl.attention.head_count", (uint32_t)c->num_attention_heads);
    kv_u32(fp, "qwen2vl.attention.head_count_kv", (uint32_t)c->num_key_value_heads);
    kv_f32(fp, "qwen2vl.attention.layer_norm_rms_epsilon", (float)c->rms_norm_eps);
    kv_f32(fp, "qwen2vl.rope.freq_base", (float)c->rope_theta);
    put_str(fp, "qwen2vl.rope.dimension_sections");
    put(fp, VL_GGUF_ARRAY, 4);
    put(fp, VL_GGUF_I32, 4);
    put(fp, 4, 8);
    for (int k = 0; k < 4; k++)
        put(fp, k < VL_MROPE_SECTIONS ? (uint64_t)c->mrope_section[k] : 0, 4);
    if (tokenizer_json && write_tokenizer(fp, tokenizer_json, c->vocab_size)) {
        fclose(fp);
        return -1;
    }
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        const struct vl_tensor *t = ts[i].t;
        put_str(fp, ts[i].name);
        put(fp, (uint64_t)t->ndim, 4);
        for (int d = t->ndim - 1; d >= 0; d--) /* ggml order: innermost first */
            put(fp, (uint64_t)t->ne[d], 8);
        put(fp, ts[i].type, 4);
        ts[i].offset = off;
        put(fp, off, 8);
        off += (ts[i].nbytes + GW_ALIGN - 1) / GW_ALIGN * GW_ALIGN;
    }
    long pos = ftell(fp);
    while (pos % GW_ALIGN) {
        fputc(0, fp);
        pos++;
    }
    for (int i = 0; i < n; i++) {
        write_data(fp, ts[i].t, ts[i].type);
        for (size_t p = ts[i].nbytes; p % GW_ALIGN; p++)
            fputc(0, fp);
    }
    return fclose(fp) ? -1 : 0;
}
