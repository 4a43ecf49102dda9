/* GGUF writer for tests (gguf_writer.h). Layout facts from llama.cpp's ggml/docs/gguf.md,
 * gguf-py/gguf/constants.py (names, keys), convert_hf_to_gguf.py (the projector's splits) and
 * ggml-common.h (k-quant block layouts); no code taken from there. */
#include "gguf_writer.h"

#include "vl_quant_impl.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GW_ALIGN 32
#define GW_MAX_TENSORS 512
#define GW_QK_K 256

struct gw_tensor {
    char name[96];
    const struct vl_tensor *t;
    int ndim;
    int64_t ne[4];   /* ggml order as written */
    int64_t row0;    /* first row (2-D) or element (1-D) of t: q/k/v parts of the fused qkv */
    int tslice;      /* >= 0: this temporal half of the Conv3d patch embedding */
    uint32_t type;   /* written */
    uint32_t kq;     /* 0, or the k-quant the values pass through (written as F32 if type is) */
    size_t nbytes;
    uint64_t offset;
};

struct gw {
    struct gw_tensor ts[GW_MAX_TENSORS];
    int n;
    FILE *kv; /* memstream: the metadata, counted */
    char *kv_buf;
    size_t kv_len;
    uint64_t n_kv;
};

static void put(FILE *fp, uint64_t v, int n) {
    for (int i = 0; i < n; i++)
        fputc((int)((v >> (8 * i)) & 0xff), fp);
}
static void put_str(FILE *fp, const char *s) {
    put(fp, strlen(s), 8);
    fwrite(s, 1, strlen(s), fp);
}
static void kv_u32(struct gw *w, const char *k, uint32_t v) {
    put_str(w->kv, k);
    put(w->kv, VL_GGUF_U32, 4);
    put(w->kv, v, 4);
    w->n_kv++;
}
static void kv_bool(struct gw *w, const char *k, bool v) {
    put_str(w->kv, k);
    put(w->kv, VL_GGUF_BOOL, 4);
    put(w->kv, v, 1);
    w->n_kv++;
}
static void kv_f32(struct gw *w, const char *k, float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    put_str(w->kv, k);
    put(w->kv, VL_GGUF_F32, 4);
    put(w->kv, u, 4);
    w->n_kv++;
}
static void kv_str(struct gw *w, const char *k, const char *v) {
    put_str(w->kv, k);
    put(w->kv, VL_GGUF_STRING, 4);
    put_str(w->kv, v);
    w->n_kv++;
}
static void arr_head(struct gw *w, const char *k, uint32_t et, uint64_t n) {
    put_str(w->kv, k);
    put(w->kv, VL_GGUF_ARRAY, 4);
    put(w->kv, et, 4);
    put(w->kv, n, 8);
    w->n_kv++;
}
static void kv_f32_arr(struct gw *w, const char *k, const double *v, int n) {
    arr_head(w, k, VL_GGUF_F32, (uint64_t)n);
    for (int i = 0; i < n; i++) {
        float f = (float)v[i];
        uint32_t u;
        memcpy(&u, &f, 4);
        put(w->kv, u, 4);
    }
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

/* ---- k-quant encoders (our own, from the block layouts) ---------------------------------- */

static float f16r(float f) { return vl__f16_to_f32(vl__f32_to_f16(f)); }
static void put16(uint8_t *p, float f) {
    uint16_t h = vl__f32_to_f16(f);
    p[0] = (uint8_t)(h & 0xff);
    p[1] = (uint8_t)(h >> 8);
}
static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* Q4_K: per 32, x ~ scale * q - min with q in 0..15 (min >= 0, from the sub-block's minimum);
 * the 8 scales and mins as 6-bit multiples of the f16 super-scales d and dmin. */
void gw_quantize_q4_k(uint8_t *dst, float *recon, const float *x, int64_t n) {
    for (int64_t b = 0; b < n / GW_QK_K; b++, x += GW_QK_K, dst += VL_GGML_Q4_K_BYTES) {
        float scale[8], mn[8], smax = 0, mmax = 0;
        for (int j = 0; j < 8; j++) {
            float lo = 0, hi = 0;
            for (int l = 0; l < 32; l++) {
                lo = fminf(lo, x[32 * j + l]);
                hi = fmaxf(hi, x[32 * j + l]);
            }
            scale[j] = (hi - lo) / 15.0f;
            mn[j] = -lo;
            smax = fmaxf(smax, scale[j]);
            mmax = fmaxf(mmax, mn[j]);
        }
        float d = f16r(smax / 63.0f), dmin = f16r(mmax / 63.0f);
        int sc[8], mq[8];
        for (int j = 0; j < 8; j++) {
            sc[j] = d > 0 ? clampi((int)lrintf(scale[j] / d), 0, 63) : 0;
            mq[j] = dmin > 0 ? clampi((int)lrintf(mn[j] / dmin), 0, 63) : 0;
        }
        uint8_t *s = dst + 4, *qs = dst + 16;
        memset(dst, 0, VL_GGML_Q4_K_BYTES);
        put16(dst, d);
        put16(dst + 2, dmin);
        for (int j = 0; j < 4; j++) {
            s[j] = (uint8_t)((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
            s[j + 4] = (uint8_t)((mq[j] & 63) | ((mq[j + 4] >> 4) << 6));
            s[j + 8] = (uint8_t)((sc[j + 4] & 15) | ((mq[j + 4] & 15) << 4));
        }
        for (int j = 0; j < 8; j++) {
            float ds = d * (float)sc[j], dm = dmin * (float)mq[j];
            for (int l = 0; l < 32; l++) {
                int q = ds > 0 ? clampi((int)lrintf((x[32 * j + l] + dm) / ds), 0, 15) : 0;
                if (recon)
                    recon[b * GW_QK_K + 32 * j + l] = ds * (float)q - dm;
                qs[32 * (j / 2) + l] |= (uint8_t)(j % 2 ? q << 4 : q);
            }
        }
    }
}

/* Q6_K: per 16, x ~ d * sc * (q - 32) with q in 0..63 and sc an int8 multiple of d. */
void gw_quantize_q6_k(uint8_t *dst, float *recon, const float *x, int64_t n) {
    for (int64_t b = 0; b < n / GW_QK_K; b++, x += GW_QK_K, dst += VL_GGML_Q6_K_BYTES) {
        float scale[16], smax = 0;
        for (int j = 0; j < 16; j++) {
            float a = 0;
            for (int l = 0; l < 16; l++)
                a = fmaxf(a, fabsf(x[16 * j + l]));
            scale[j] = a / 31.0f;
            smax = fmaxf(smax, scale[j]);
        }
        float d = f16r(smax / 127.0f);
        int L[GW_QK_K];
        int8_t sc[16];
        for (int j = 0; j < 16; j++) {
            sc[j] = (int8_t)(d > 0 ? clampi((int)lrintf(scale[j] / d), -128, 127) : 0);
            float ds = d * (float)sc[j];
            for (int l = 0; l < 16; l++) {
                int q = ds > 0 ? clampi((int)lrintf(x[16 * j + l] / ds), -32, 31) : 0;
                L[16 * j + l] = q + 32;
                if (recon)
                    recon[b * GW_QK_K + 16 * j + l] = ds * (float)q;
            }
        }
        uint8_t *ql = dst, *qh = dst + 128;
        for (int h = 0; h < 2; h++) {
            const int *Lh = L + 128 * h;
            for (int l = 0; l < 32; l++) {
                ql[64 * h + l] = (uint8_t)((Lh[l] & 15) | ((Lh[l + 64] & 15) << 4));
                ql[64 * h + l + 32] = (uint8_t)((Lh[l + 32] & 15) | ((Lh[l + 96] & 15) << 4));
                qh[32 * h + l] = (uint8_t)((Lh[l] >> 4) | ((Lh[l + 32] >> 4) << 2) |
                                           ((Lh[l + 64] >> 4) << 4) | ((Lh[l + 96] >> 4) << 6));
            }
        }
        memcpy(dst + 192, sc, 16);
        put16(dst + 208, d);
    }
}

/* ---- tensors ------------------------------------------------------------------------------- */

static int64_t numel_of(const struct gw_tensor *g) {
    int64_t n = 1;
    for (int d = 0; d < g->ndim; d++)
        n *= g->ne[d];
    return n;
}

static size_t bytes_of(uint32_t type, int64_t in, int64_t rows) {
    switch (type) {
    case VL_GGML_F32: return (size_t)(in * rows) * 4;
    case VL_GGML_F16:
    case VL_GGML_BF16: return (size_t)(in * rows) * 2;
    case VL_GGML_Q8_0: return vl__q_row_bytes(VL_DTYPE_Q8_0, in) * (size_t)rows;
    case VL_GGML_Q4_0: return vl__q_row_bytes(VL_DTYPE_Q4_0, in) * (size_t)rows;
    case VL_GGML_Q4_K: return (size_t)(in / GW_QK_K * VL_GGML_Q4_K_BYTES * rows);
    case VL_GGML_Q6_K: return (size_t)(in / GW_QK_K * VL_GGML_Q6_K_BYTES * rows);
    case VL_GGML_Q5_K: return (size_t)(in / GW_QK_K * 176 * rows);
    default: return 0;
    }
}

/* t's element for the written element i */
static float value(const struct gw_tensor *g, int64_t i) {
    const struct vl_tensor *t = g->t;
    if (g->tslice >= 0) { /* [P, P, C, D] of [D, C, TP, P, P] */
        int64_t plane = g->ne[0] * g->ne[1], q = i / plane, yx = i % plane;
        return elem(t, (q * t->ne[2] + g->tslice) * plane + yx);
    }
    return elem(t, g->row0 * (t->ndim == 2 ? t->ne[1] : 1) + i);
}

static struct gw_tensor *add(struct gw *w, const char *name, const struct vl_tensor *t,
                             uint32_t ftype) {
    struct gw_tensor *g = &w->ts[w->n++];
    memset(g, 0, sizeof *g);
    snprintf(g->name, sizeof g->name, "%s", name);
    g->t = t;
    g->tslice = -1;
    g->ndim = t->ndim;
    /* ggml order: innermost first. A tensor of more dims than GGUF's 4 (the 5-D patch
     * embedding) is reshaped by the caller, which sets ne and ndim itself. */
    for (int d = 0; d < t->ndim && d < (int)(sizeof g->ne / sizeof *g->ne); d++)
        g->ne[d] = t->ne[t->ndim - 1 - d];
    g->type = t->dtype == VL_DTYPE_Q8_0   ? VL_GGML_Q8_0
              : t->dtype == VL_DTYPE_Q4_0 ? VL_GGML_Q4_0
                                          : ftype;
    return g;
}

static void finish_sizes(struct gw *w) {
    for (int i = 0; i < w->n; i++) {
        struct gw_tensor *g = &w->ts[i];
        g->nbytes = bytes_of(g->type, g->ne[0], numel_of(g) / g->ne[0]);
    }
}

static void write_data(FILE *fp, const struct gw_tensor *g) {
    const struct vl_tensor *t = g->t;
    if (vl__dtype_is_quant(t->dtype)) { /* the model's own blocks, rows row0.. */
        size_t rb = vl__q_row_bytes(t->dtype, t->ne[1]);
        uint8_t *buf = malloc(rb);
        for (int64_t r = g->row0; buf && (size_t)(r - g->row0) * rb < g->nbytes; r++)
            fwrite(vl__qrow(t, r, buf), 1, rb, fp); /* rows or unpacked from the packed copy */
        free(buf);
        return;
    }
    const int64_t in = g->ne[0], rows = numel_of(g) / in;
    float *row = malloc((size_t)in * sizeof *row), *rec = malloc((size_t)in * sizeof *rec);
    uint8_t *blk = calloc(1, bytes_of(VL_GGML_Q4_K, in, 1) + bytes_of(VL_GGML_Q6_K, in, 1) + 1024);
    for (int64_t r = 0; row && rec && blk && r < rows; r++) {
        for (int64_t c = 0; c < in; c++)
            row[c] = value(g, r * in + c);
        if (g->kq == VL_GGML_Q4_K || g->kq == VL_GGML_Q6_K) {
            (g->kq == VL_GGML_Q4_K ? gw_quantize_q4_k : gw_quantize_q6_k)(blk, rec, row, in);
            if (g->type == g->kq) {
                fwrite(blk, 1, bytes_of(g->kq, in, 1), fp);
                continue;
            }
            memcpy(row, rec, (size_t)in * sizeof *row); /* the reference: decoded values */
        } else if (g->kq) { /* another type: zero blocks (refusal tests) */
            memset(blk, 0, bytes_of(g->kq, in, 1));
            fwrite(blk, 1, bytes_of(g->kq, in, 1), fp);
            continue;
        }
        for (int64_t c = 0; c < in; c++) {
            uint32_t u;
            memcpy(&u, &row[c], 4);
            if (g->type == VL_GGML_F32)
                put(fp, u, 4);
            else if (g->type == VL_GGML_F16)
                put(fp, vl__f32_to_f16(row[c]), 2);
            else /* BF16: round to nearest even (exact for BF16 sources) */
                put(fp, (u + 0x7fffu + ((u >> 16) & 1u)) >> 16, 2);
        }
    }
    free(row);
    free(rec);
    free(blk);
}

static int emit(struct gw *w, const char *path) {
    fclose(w->kv);
    w->kv = NULL;
    finish_sizes(w);
    FILE *fp = fopen(path, "wb");
    if (!fp) {
        free(w->kv_buf);
        return -1;
    }
    fwrite("GGUF", 1, 4, fp);
    put(fp, 3, 4);
    put(fp, (uint64_t)w->n, 8);
    put(fp, w->n_kv, 8);
    fwrite(w->kv_buf, 1, w->kv_len, fp);
    free(w->kv_buf);
    uint64_t off = 0;
    for (int i = 0; i < w->n; i++) {
        struct gw_tensor *g = &w->ts[i];
        put_str(fp, g->name);
        put(fp, (uint64_t)g->ndim, 4);
        for (int d = 0; d < g->ndim; d++)
            put(fp, (uint64_t)g->ne[d], 8);
        put(fp, g->type, 4);
        g->offset = off;
        put(fp, off, 8);
        off += (g->nbytes + GW_ALIGN - 1) / GW_ALIGN * GW_ALIGN;
    }
    long pos = ftell(fp);
    while (pos % GW_ALIGN) {
        fputc(0, fp);
        pos++;
    }
    for (int i = 0; i < w->n; i++) {
        write_data(fp, &w->ts[i]);
        for (size_t p = w->ts[i].nbytes; p % GW_ALIGN; p++)
            fputc(0, fp);
    }
    return fclose(fp) ? -1 : 0;
}

static struct gw *gw_new(void) {
    struct gw *w = calloc(1, sizeof *w);
    if (w && !(w->kv = open_memstream(&w->kv_buf, &w->kv_len))) {
        free(w);
        w = NULL;
    }
    return w;
}

/* ---- text model ------------------------------------------------------------------------------ */

/* tokenizer.ggml.* from tokenizer.json (7 keys); -1 when the file cannot be read */
static int write_tokenizer(struct gw *w, const char *tj, int64_t n_ids) {
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
    kv_str(w, "tokenizer.ggml.model", "gpt2");
    kv_str(w, "tokenizer.ggml.pre", "qwen2");
    arr_head(w, "tokenizer.ggml.tokens", VL_GGUF_STRING, (uint64_t)n_ids);
    char pad[32];
    for (int64_t k = 0; k < n_ids; k++) {
        snprintf(pad, sizeof pad, "[PAD%lld]", (long long)k);
        put_str(w->kv, tok[k] ? tok[k] : pad);
    }
    arr_head(w, "tokenizer.ggml.token_type", VL_GGUF_I32, (uint64_t)n_ids);
    for (int64_t k = 0; k < n_ids; k++)
        put(w->kv, (uint64_t)(tok[k] ? type[k] : 5), 4); /* UNUSED */
    arr_head(w, "tokenizer.ggml.merges", VL_GGUF_STRING, json_array_size(merges));
    json_array_foreach(merges, i, v) {
        char buf[1024];
        if (json_is_array(v))
            snprintf(buf, sizeof buf, "%s %s", json_string_value(json_array_get(v, 0)),
                     json_string_value(json_array_get(v, 1)));
        else
            snprintf(buf, sizeof buf, "%s", json_string_value(v));
        put_str(w->kv, buf);
    }
    kv_u32(w, "tokenizer.ggml.bos_token_id", 151643);
    kv_u32(w, "tokenizer.ggml.eos_token_id", 151645);
    free(tok);
    free(type);
    json_decref(root);
    return 0;
}

/* kq: see gw_write_k (0: as stored) */
static int write_text(const char *path, const struct vl_model *m, uint32_t ftype,
                      const char *arch, const char *tokenizer_json, uint32_t kq, bool dequant) {
    const struct vl_weights *wt = &m->w;
    const struct vl_text_config *c = &m->cfg.text;
    struct gw *w = gw_new();
    if (!w)
        return -1;
    char nm[96];
    struct gw_tensor *g = add(w, "token_embd.weight", &wt->embed, ftype);
    if (kq == VL_GGML_Q4_K || kq == VL_GGML_Q6_K) {
        g->kq = VL_GGML_Q6_K;
        g->type = dequant ? VL_GGML_F32 : g->kq;
    }
    for (int64_t l = 0; l < c->num_hidden_layers && w->n + 12 < GW_MAX_TENSORS; l++) {
        const struct vl_llm_layer *ly = &wt->layers[l];
        const struct {
            const char *s;
            const struct vl_tensor *t;
            bool linear, q6; /* Q4_K_M: v and down in Q6_K */
        } parts[] = {{"attn_norm.weight", &ly->attn_norm, false, false},
                     {"attn_q.weight", &ly->q_w, true, false},
                     {"attn_q.bias", &ly->q_b, false, false},
                     {"attn_k.weight", &ly->k_w, true, false},
                     {"attn_k.bias", &ly->k_b, false, false},
                     {"attn_v.weight", &ly->v_w, true, true},
                     {"attn_v.bias", &ly->v_b, false, false},
                     {"attn_output.weight", &ly->o_w, true, false},
                     {"ffn_norm.weight", &ly->mlp_norm, false, false},
                     {"ffn_gate.weight", &ly->gate_w, true, false},
                     {"ffn_up.weight", &ly->up_w, true, false},
                     {"ffn_down.weight", &ly->down_w, true, true}};
        for (size_t k = 0; k < sizeof parts / sizeof *parts; k++) {
            snprintf(nm, sizeof nm, "blk.%lld.%s", (long long)l, parts[k].s);
            g = add(w, nm, parts[k].t, kq && !parts[k].linear ? VL_GGML_F32 : ftype);
            if (kq && parts[k].linear) {
                bool other = kq != VL_GGML_Q4_K && kq != VL_GGML_Q6_K;
                if (other && (l || strcmp(parts[k].s, "attn_q.weight")))
                    continue; /* another type: one tensor of it is enough */
                g->kq = kq == VL_GGML_Q4_K && parts[k].q6 ? VL_GGML_Q6_K : kq;
                g->type = dequant ? VL_GGML_F32 : g->kq;
            }
        }
    }
    add(w, "output_norm.weight", &wt->final_norm, kq ? VL_GGML_F32 : ftype);
    if (wt->lm_head.data != wt->embed.data || wt->lm_head.dtype != wt->embed.dtype)
        add(w, "output.weight", &wt->lm_head, ftype);
    kv_str(w, "general.architecture", arch ? arch : "qwen2vl");
    kv_str(w, "general.name", "docproc test fixture");
    kv_u32(w, "general.alignment", GW_ALIGN);
    kv_u32(w, "qwen2vl.context_length", (uint32_t)c->max_position_embeddings);
    kv_u32(w, "qwen2vl.embedding_length", (uint32_t)c->hidden_size);
    kv_u32(w, "qwen2vl.block_count", (uint32_t)c->num_hidden_layers);
    kv_u32(w, "qwen2vl.feed_forward_length", (uint32_t)c->intermediate_size);
    kv_u32(w, "qwen2vl.attention.head_count", (uint32_t)c->num_attention_heads);
    kv_u32(w, "qwen2vl.attention.head_count_kv", (uint32_t)c->num_key_value_heads);
    kv_f32(w, "qwen2vl.attention.layer_norm_rms_epsilon", (float)c->rms_norm_eps);
    kv_f32(w, "qwen2vl.rope.freq_base", (float)c->rope_theta);
    arr_head(w, "qwen2vl.rope.dimension_sections", VL_GGUF_I32, 4);
    for (int k = 0; k < 4; k++)
        put(w->kv, k < VL_MROPE_SECTIONS ? (uint64_t)c->mrope_section[k] : 0, 4);
    if (tokenizer_json && write_tokenizer(w, tokenizer_json, c->vocab_size)) {
        fclose(w->kv);
        free(w->kv_buf);
        free(w);
        return -1;
    }
    int rc = emit(w, path);
    free(w);
    return rc;
}

int gw_write(const char *path, const struct vl_model *m, uint32_t ftype, const char *arch,
             const char *tokenizer_json) {
    return write_text(path, m, ftype, arch, tokenizer_json, 0, false);
}

int gw_write_k(const char *path, const struct vl_model *m, uint32_t kq, bool dequant) {
    return write_text(path, m, VL_GGML_F32, NULL, NULL, kq, dequant);
}

/* ---- vision projector ------------------------------------------------------------------------ */

int gw_write_mmproj(const char *path, const struct vl_model *m, uint32_t ftype,
                    const struct gw_proj_opts *o) {
    static const struct gw_proj_opts none = {0};
    if (!o)
        o = &none;
    const struct vl_weights *wt = &m->w;
    const struct vl_vision_config *v = &m->cfg.vision;
    struct gw *w = gw_new();
    if (!w)
        return -1;
    char nm[96];
    for (int half = 0; half < 2 - o->drop_patch_half; half++) {
        struct gw_tensor *g = add(w, half ? "v.patch_embd.weight.1" : "v.patch_embd.weight",
                                  &wt->patch_embed, ftype);
        g->tslice = half;
        g->ndim = 4;
        g->ne[0] = g->ne[1] = v->patch_size;
        g->ne[2] = v->in_chans;
        g->ne[3] = v->hidden_size;
    }
    for (int64_t b = 0; b < v->depth && w->n + 16 < GW_MAX_TENSORS; b++) {
        const struct vl_vision_block *vb = &wt->vblocks[b];
        static const char *const qkv[3] = {"attn_q", "attn_k", "attn_v"};
        snprintf(nm, sizeof nm, "v.blk.%lld.ln1.weight", (long long)b);
        add(w, nm, &vb->norm1, VL_GGML_F32);
        for (int k = 0; k < 3; k++) {
            snprintf(nm, sizeof nm, "v.blk.%lld.%s.weight", (long long)b, qkv[k]);
            struct gw_tensor *g = add(w, nm, &vb->qkv_w, ftype);
            g->row0 = k * v->hidden_size;
            g->ne[1] = v->hidden_size;
            snprintf(nm, sizeof nm, "v.blk.%lld.%s.bias", (long long)b, qkv[k]);
            g = add(w, nm, &vb->qkv_b, VL_GGML_F32);
            g->row0 = k * v->hidden_size;
            g->ne[0] = v->hidden_size;
        }
        const struct {
            const char *s;
            const struct vl_tensor *t;
            bool f32;
        } parts[] = {{"attn_out.weight", &vb->proj_w, false}, {"attn_out.bias", &vb->proj_b, true},
                     {"ln2.weight", &vb->norm2, true},        {"ffn_gate.weight", &vb->gate_w, false},
                     {"ffn_gate.bias", &vb->gate_b, true},    {"ffn_up.weight", &vb->up_w, false},
                     {"ffn_up.bias", &vb->up_b, true},        {"ffn_down.weight", &vb->down_w, false},
                     {"ffn_down.bias", &vb->down_b, true}};
        for (size_t k = 0; k < sizeof parts / sizeof *parts; k++) {
            snprintf(nm, sizeof nm, "v.blk.%lld.%s", (long long)b, parts[k].s);
            add(w, nm, parts[k].t, parts[k].f32 ? VL_GGML_F32 : ftype);
        }
    }
    add(w, "v.post_ln.weight", &wt->merger_norm, VL_GGML_F32);
    add(w, "mm.0.weight", &wt->merger_fc1_w, ftype);
    add(w, "mm.0.bias", &wt->merger_fc1_b, VL_GGML_F32);
    add(w, "mm.2.weight", &wt->merger_fc2_w, ftype);
    add(w, "mm.2.bias", &wt->merger_fc2_b, VL_GGML_F32);
    kv_str(w, "general.architecture", o->arch ? o->arch : "clip");
    kv_str(w, "general.name", "docproc test fixture vision");
    kv_u32(w, "general.alignment", GW_ALIGN);
    kv_bool(w, "clip.has_vision_encoder", true);
    kv_bool(w, "clip.has_audio_encoder", false);
    kv_str(w, "clip.projector_type", o->projector_type ? o->projector_type : "qwen2.5vl_merger");
    kv_bool(w, "clip.use_silu", true);
    kv_u32(w, "clip.vision.image_size", 560);
    kv_u32(w, "clip.vision.patch_size", (uint32_t)v->patch_size);
    kv_u32(w, "clip.vision.embedding_length", (uint32_t)v->hidden_size);
    kv_u32(w, "clip.vision.feed_forward_length", (uint32_t)v->intermediate_size);
    kv_u32(w, "clip.vision.projection_dim",
           (uint32_t)(o->projection_dim ? o->projection_dim : v->out_hidden_size));
    kv_u32(w, "clip.vision.block_count", (uint32_t)v->depth);
    kv_u32(w, "clip.vision.attention.head_count", (uint32_t)v->num_heads);
    kv_f32(w, "clip.vision.attention.layer_norm_epsilon", (float)v->rms_norm_eps);
    double mean[3] = {vl_image_default_mean[0], vl_image_default_mean[1], vl_image_default_mean[2]};
    if (o->mean_off)
        mean[0] = mean[1] = mean[2] = 0.5;
    kv_f32_arr(w, "clip.vision.image_mean", mean, 3);
    kv_f32_arr(w, "clip.vision.image_std", vl_image_default_std, 3);
    kv_u32(w, "clip.vision.spatial_merge_size",
           (uint32_t)(o->merge_size ? o->merge_size : v->spatial_merge_size));
    kv_u32(w, "clip.vision.n_wa_pattern", (uint32_t)(v->fullatt_block_indexes[0] + 1));
    int rc = emit(w, path);
    free(w);
    return rc;
}

unsigned char *gw_read_file(const char *path, size_t *n) {
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    fseek(fp, 0, SEEK_END);
    long len = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    unsigned char *b = len >= 0 ? malloc(len ? (size_t)len : 1) : NULL;
    if (b && fread(b, 1, (size_t)len, fp) != (size_t)len) {
        free(b);
        b = NULL;
    }
    fclose(fp);
    if (b)
        *n = (size_t)len;
    return b;
}

int gw_write_file(const char *path, const unsigned char *b, size_t n) {
    FILE *fp = fopen(path, "wb");
    if (!fp)
        return -1;
    int bad = fwrite(b, 1, n, fp) != n;
    bad |= fclose(fp) != 0;
    return bad ? -1 : 0;
}
