/* llama.cpp's vision projector (mmproj) and k-quant tensors, written by gguf_writer.c:
 *  - the fixture's vision tower as an mmproj GGUF (F32 / F16 / BF16, and Q8_0 from the vision
 *    tower quantized at load) with the text model as a GGUF: teacher-forced logits of image
 *    requests equal the safetensors checkpoint's (BF16 and Q8_0 bit for bit, F32 / F16 within
 *    round-off); the same from a directory holding both files;
 *  - projectors that do not fit (projection_dim, merge size, projector type, architecture, a
 *    missing Conv3d half, another image normalisation), a text model given as the projector, a
 *    projector with a checkpoint directory: refused with a message; every truncation and a sweep
 *    of header corruptions of an mmproj: refused with a message or loaded, never a crash;
 *  - Q4_K / Q6_K: hand-made blocks decode to the values their layout defines; our encoder's
 *    blocks decode (libvl) to the values the encoder computed before packing; a Q4_K_M-like and an
 *    all-Q6_K text model (random weights, hidden 256: k-quants need rows of 256) give logits
 *    within Q8_REL_MAX of the exact path on the same (dequantized) weights, each converted weight
 *    within half a q8 step of its k-quant value; other types (Q5_K) refused naming the type. */
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gguf_writer.h"
#include "llm_golden.h"
#include "t.h"
#include "vl_quant_impl.h"

#define STEPS 3
#define F32_REL_MAX 1e-5 /* same values, f32 instead of bf16 kernels: summation order only */
#define F16_REL_MAX 1e-5 /* bf16 values in f16's normal range convert exactly */
/* k-quant files run as q8 (each weight requantized onto a grid of step amax/127 within its 32,
 * activations per 32 to int8): the q8 error model of docs/quantization.md (~0.8 % per Linear,
 * ~1 % relative on the logits of this 1-layer model); 5 % is the fixture's q8 bound. */
#define Q8_REL_MAX 0.05
#define K_H 256 /* the random k-quant model: hidden, MLP width, vocabulary, one layer */
#define K_I 512
#define K_V 512
#define K_HEADS 4
#define K_KV_HEADS 2
#define CORRUPT_STRIDE 7

static char tmpdir[LG_PATH_MAX];

static void path_of(char *buf, size_t n, const char *name) {
    snprintf(buf, n, "%s/%s", tmpdir, name);
}

static struct vl_model *load_st(enum vl_wformat vision) {
    char dir[LG_PATH_MAX];
    struct vl_model *m = NULL;
    struct vl_error err = {0};
    T_CHECK_MSG(vl_model_load(&m, lg_model_dir(dir, sizeof dir), &err) == VL_OK, "load: %s",
                err.msg);
    if (m)
        T_CHECK_MSG(vl_model_quantize(m, VL_WFORMAT_BF16, vision, 2, &err) == VL_OK,
                    "quantize: %s", err.msg);
    return m;
}

/* load text (+ projector); want: the expected status (refusals need a message) */
static struct vl_model *load_pair(const char *text, const char *proj, enum vl_status want,
                                  const char *needle) {
    struct vl_model *m = NULL;
    struct vl_error err = {0};
    enum vl_status st = vl_model_load_with_projector(&m, text, proj, &err);
    T_CHECK_MSG(st == want, "%s + %s: status %d (want %d): %s", text, proj ? proj : "-", st,
                want, err.msg);
    if (st != VL_OK) {
        T_CHECK_MSG(err.msg[0] != 0, "%s: refusal without a message", proj ? proj : text);
        if (needle)
            T_CHECK_MSG(strstr(err.msg, needle) != NULL, "message '%s' lacks '%s'", err.msg,
                        needle);
        vl_model_free(m);
        return NULL;
    }
    return m;
}

static void compare(const struct vl_model *ref, const struct vl_model *g, const struct lg_req *r,
                    double max_rel, const char *what) {
    struct vl_request rq = {.ids = r->ids, .n_ids = r->n_ids, .vision = r->vis,
                            .n_vision = r->n_vis};
    struct vl_compare_stats s;
    struct vl_error err = {0};
    T_CHECK_MSG(vl_compare_run(ref, g, &rq, STEPS, 1, &s, &err) == VL_OK, "%s: %s", what, err.msg);
    fprintf(stderr, "%s: rel err %.3g top1 %lld/%lld\n", what, s.logits_rel_err,
            (long long)s.top1_agree, (long long)s.steps);
    T_EQ_I64(s.steps, STEPS);
    if (max_rel == 0)
        T_CHECK_MSG(s.sq_err == 0, "%s: logits differ (rel %g)", what, s.logits_rel_err);
    else
        T_CHECK_MSG(s.logits_rel_err <= max_rel, "%s: rel err %g > %g", what, s.logits_rel_err,
                    max_rel);
}

/* ---- the projector ------------------------------------------------------------------------- */

/* hostile variants of a valid mmproj through the full load: refused with a message or loaded */
static void hostile_proj(const char *text, const char *good) {
    size_t n;
    unsigned char *b = gw_read_file(good, &n);
    T_CHECK(b != NULL);
    if (!b)
        return;
    struct vl_gguf *g = NULL;
    struct vl_error err = {0};
    T_CHECK(vl__gguf_open_mem(&g, b, n, &err) == VL_OK);
    size_t data_off = g ? g->data_off : n;
    vl__gguf_close(g);
    char p[LG_PATH_MAX + 32];
    path_of(p, sizeof p, "hostile-mmproj.gguf");
    int refused = 0, loaded = 0;
    for (size_t cut = 0; cut < n; cut += cut < data_off ? 13 : 8191) {
        T_CHECK(gw_write_file(p, b, cut) == 0);
        struct vl_model *m = load_pair(text, p, VL_ERR_FORMAT, NULL);
        vl_model_free(m);
    }
    for (size_t i = 0; i < data_off; i += (i < 24 ? 1 : CORRUPT_STRIDE)) {
        const unsigned char vals[3] = {0xff, 0x00, (unsigned char)(b[i] ^ 0x41)};
        for (int k = 0; k < 3; k++) {
            unsigned char keep = b[i];
            b[i] = vals[k];
            T_CHECK(gw_write_file(p, b, n) == 0);
            b[i] = keep;
            struct vl_model *m = NULL;
            memset(&err, 0, sizeof err);
            if (vl_model_load_with_projector(&m, text, p, &err) == VL_OK) {
                loaded++;
            } else {
                refused++;
                T_CHECK_MSG(err.msg[0] != 0, "byte %zu = %u: refusal without a message", i,
                            vals[k]);
            }
            vl_model_free(m);
        }
    }
    fprintf(stderr, "corrupted mmproj headers: %d refused, %d loaded\n", refused, loaded);
    T_CHECK(refused > 0);
    unlink(p);
    free(b);
}

static void test_projector(void) {
    struct vl_model *bf = load_st(VL_WFORMAT_BF16), *v8 = load_st(VL_WFORMAT_Q8);
    struct lg_req r1, r2;
    T_CHECK(lg_req_load(&r1, "img_b_56x56"));
    T_CHECK(lg_req_load(&r2, "two_images"));
    if (!bf || !v8 || !r1.ids || !r2.ids)
        return;
    char text[LG_PATH_MAX + 32], p[LG_PATH_MAX + 32];
    path_of(text, sizeof text, "text-bf16.gguf");
    T_CHECK(gw_write(text, bf, VL_GGML_BF16, NULL, NULL) == 0);
    const struct {
        const char *file;
        uint32_t ftype;
        struct vl_model *src;
        enum vl_wformat vw;
        double max_rel;
    } cases[] = {
        {"mmproj-bf16.gguf", VL_GGML_BF16, bf, VL_WFORMAT_BF16, 0},
        {"mmproj-f32.gguf", VL_GGML_F32, bf, VL_WFORMAT_BF16, F32_REL_MAX},
        {"mmproj-f16.gguf", VL_GGML_F16, bf, VL_WFORMAT_BF16, F16_REL_MAX},
        {"mmproj-q8_0.gguf", VL_GGML_BF16, v8, VL_WFORMAT_Q8, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        path_of(p, sizeof p, cases[i].file);
        T_CHECK(gw_write_mmproj(p, cases[i].src, cases[i].ftype, NULL) == 0);
        struct vl_model *g = load_pair(text, p, VL_OK, NULL);
        if (!g)
            continue;
        T_CHECK(!g->text_only);
        T_EQ_I64(vl_model_wformat(g, true), cases[i].vw);
        struct vl_error err = {0};
        T_CHECK_MSG(vl_model_quantize(g, VL_WFORMAT_BF16, cases[i].vw, 1, &err) == VL_OK, "%s",
                    err.msg);
        if (cases[i].vw == VL_WFORMAT_Q8) { /* blocks bound in place, never requantized */
            T_EQ_I64(g->w.merger_fc1_w.dtype, VL_DTYPE_Q8_0);
            const size_t rb = vl__q_row_bytes(VL_DTYPE_Q8_0, v8->w.merger_fc1_w.ne[1]);
            uint8_t *ra = malloc(rb), *rb8 = malloc(rb);
            T_CHECK(ra && rb8 && memcmp(vl__qrow(&g->w.merger_fc1_w, 0, ra),
                                        vl__qrow(&v8->w.merger_fc1_w, 0, rb8), rb) == 0);
            free(ra);
            free(rb8);
            T_EQ_I64(vl_model_quantize(g, VL_WFORMAT_BF16, VL_WFORMAT_BF16, 1, &err),
                     VL_ERR_INVALID);
        }
        struct vl_model_summary sm, ss;
        vl_model_summary(g, &sm);
        vl_model_summary(cases[i].src, &ss);
        T_EQ_I64(sm.vit_depth, ss.vit_depth);
        T_EQ_I64(sm.params_vision, ss.params_vision);
        char what[96];
        snprintf(what, sizeof what, "%s one image", cases[i].file);
        compare(cases[i].src, g, &r1, cases[i].max_rel, what);
        snprintf(what, sizeof what, "%s two images", cases[i].file);
        compare(cases[i].src, g, &r2, cases[i].max_rel, what);
        vl_model_free(g);
        if (i == 0)
            hostile_proj(text, p);
        unlink(p);
    }
    /* a directory holding both (llama.cpp's layout) */
    char d[LG_PATH_MAX + 32], dt[LG_PATH_MAX + 64], dp[LG_PATH_MAX + 64];
    path_of(d, sizeof d, "pair");
    T_CHECK(mkdir(d, 0700) == 0);
    snprintf(dt, sizeof dt, "%s/Qwen2.5-VL-tiny-BF16.gguf", d);
    snprintf(dp, sizeof dp, "%s/mmproj-Qwen2.5-VL-tiny-F32.gguf", d);
    T_CHECK(gw_write(dt, bf, VL_GGML_BF16, NULL, NULL) == 0);
    T_CHECK(gw_write_mmproj(dp, bf, VL_GGML_F32, NULL) == 0);
    struct vl_model *dm = load_pair(d, NULL, VL_OK, NULL);
    if (dm) {
        T_CHECK(!dm->text_only);
        compare(bf, dm, &r1, F32_REL_MAX, "directory");
    }
    vl_model_free(dm);
    /* projectors that do not fit, or are not projectors */
    const struct {
        struct gw_proj_opts o;
        enum vl_status want;
        const char *needle;
    } bad[] = {
        {{.projection_dim = 128}, VL_ERR_MODEL, "does not match the text model"},
        {{.merge_size = 4}, VL_ERR_MODEL, NULL},
        {{.projector_type = "qwen2vl_merger"}, VL_ERR_MODEL, "qwen2vl_merger"},
        {{.arch = "llama"}, VL_ERR_MODEL, "architecture 'llama'"},
        {{.drop_patch_half = true}, VL_ERR_MODEL, "v.patch_embd.weight.1"},
        {{.mean_off = true}, VL_ERR_UNSUPPORTED, "image_mean"},
    };
    path_of(p, sizeof p, "bad-mmproj.gguf");
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        T_CHECK(gw_write_mmproj(p, bf, VL_GGML_BF16, &bad[i].o) == 0);
        load_pair(text, p, bad[i].want, bad[i].needle);
    }
    unlink(p);
    load_pair(text, text, VL_ERR_MODEL, "architecture 'qwen2vl'"); /* a text model as mmproj */
    load_pair(dp, NULL, VL_ERR_UNSUPPORTED, "vision projector");   /* mmproj as the model */
    char ck[LG_PATH_MAX];
    load_pair(lg_model_dir(ck, sizeof ck), dp, VL_ERR_INVALID, "--mmproj");
    /* an image request to the text model alone: refused */
    struct vl_model *to = load_pair(text, NULL, VL_OK, NULL);
    if (to) {
        struct vl_request rq = {.ids = r1.ids, .n_ids = r1.n_ids, .vision = r1.vis, .n_vision = 1};
        struct vl_compare_stats s;
        struct vl_error err = {0};
        T_CHECK(vl_compare_run(to, to, &rq, 1, 1, &s, &err) != VL_OK);
        T_CHECK_MSG(strstr(err.msg, "no vision tower") != NULL, "%s", err.msg);
    }
    vl_model_free(to);
    unlink(dt);
    unlink(dp);
    rmdir(d);
    unlink(text);
    lg_req_free(&r1);
    lg_req_free(&r2);
    vl_model_free(bf);
    vl_model_free(v8);
}

/* ---- k-quants ------------------------------------------------------------------------------ */

static void put_h(uint8_t *p, float f) {
    uint16_t h = vl__f32_to_f16(f);
    p[0] = (uint8_t)h;
    p[1] = (uint8_t)(h >> 8);
}

/* hand-made blocks: the values ggml-common.h's layouts define */
static void test_known_blocks(void) {
    uint8_t b4[VL_GGML_Q4_K_BYTES] = {0};
    put_h(b4, 0.5f);  /* d */
    put_h(b4 + 2, 0.25f); /* dmin */
    uint8_t *s = b4 + 4, *qs = b4 + 16;
    s[1] = 3;                 /* sub-block 1: scale 3 */
    s[5] = 2;                 /* its min 2 */
    s[10] = 5 | (1 << 4);     /* sub-block 6: scale low bits 5, min low bits 1 */
    s[2] |= (uint8_t)(1 << 6);/* sub-block 6: scale high bits 1 -> 21 */
    s[6] |= (uint8_t)(2 << 6);/* sub-block 6: min high bits 2 -> 33 */
    qs[32 + 7] = 0x90;        /* sub-block 3 (high nibbles of bytes 32..63) element 7 = 9 */
    qs[0 + 4] = 0x0c;         /* sub-block 0 element 4 = 12 (scale 0 -> 0) */
    qs[96 + 10] = 0x0f;       /* sub-block 6 (low nibbles of bytes 96..127) element 10 = 15 */
    qs[32 + 1] = 0x07;        /* sub-block 2 element 1 */
    float y[VL_GGML_QK_K];
    vl__dequantize_q4_k(y, b4, VL_GGML_QK_K);
    T_NEAR(y[32 + 5], 0.5f * 3 * 0 - 0.25f * 2, 1e-7);  /* sub-block 1: q 0 */
    T_NEAR(y[96 + 7], 0.0f, 1e-7);                       /* sub-block 3: scale 0, min 0 */
    T_NEAR(y[4], 0.0f, 1e-7);
    T_NEAR(y[192 + 10], 0.5f * 21 * 15 - 0.25f * 33, 1e-6);
    T_NEAR(y[192 + 11], -0.25f * 33, 1e-6);
    uint8_t b6[VL_GGML_Q6_K_BYTES] = {0};
    uint8_t *ql = b6, *qh = b6 + 128;
    int8_t *sc = (int8_t *)(b6 + 192);
    put_h(b6 + 208, 0.125f);
    for (int j = 0; j < 16; j++)
        sc[j] = (int8_t)(j - 8);
    /* element 64 + 5 (quarter 2 of half 0): ql[5] high nibble, qh[5] bits 4-5, scale sc[4] */
    ql[5] = 0xA0;
    qh[5] = 0x30;
    /* element 128 + 32 + 17 (half 1, quarter 1): ql[64 + 32 + 17] low, qh[32 + 17] bits 2-3,
     * scale sc[8 + 1 + 2] */
    ql[64 + 49] = 0x03;
    qh[32 + 17] = 0x04;
    float z[VL_GGML_QK_K];
    vl__dequantize_q6_k(z, b6, VL_GGML_QK_K);
    T_NEAR(z[69], 0.125f * (4 - 8) * ((0xA | 3 << 4) - 32), 1e-6);
    T_NEAR(z[128 + 32 + 17], 0.125f * (11 - 8) * ((3 | 1 << 4) - 32), 1e-6);
    T_NEAR(z[0], 0.125f * -8 * -32, 1e-6);
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float gauss(void) { /* sum of 4 uniforms: mean 0, var 1/3 -> scaled to 1 */
    float s = 0;
    for (int k = 0; k < 4; k++) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        s += (float)(rng >> 40) / (float)(1u << 24) - 0.5f;
    }
    return s * 1.7320508f;
}

/* our encoder's bytes, decoded by libvl, give the values the encoder computed before packing */
static void test_roundtrip(void) {
    enum { N = 4 * VL_GGML_QK_K };
    static float x[N], rec[N], y[N];
    static uint8_t blk[4 * VL_GGML_Q4_K_BYTES + 4 * VL_GGML_Q6_K_BYTES];
    for (int i = 0; i < N; i++)
        x[i] = 0.02f * gauss() + (i % 97 == 0 ? 0.1f : 0);
    gw_quantize_q4_k(blk, rec, x, N);
    vl__dequantize_q4_k(y, blk, N);
    int same = 0;
    double err = 0, amax = 0;
    for (int i = 0; i < N; i++) {
        same += y[i] == rec[i];
        err = fmax(err, fabs(y[i] - x[i]));
        amax = fmax(amax, fabs(x[i]));
    }
    T_EQ_I64(same, N);
    T_CHECK_MSG(err < amax / 15 * 1.5, "q4_k: max error %g for amax %g", err, amax);
    gw_quantize_q6_k(blk, rec, x, N);
    vl__dequantize_q6_k(y, blk, N);
    same = 0;
    err = 0;
    for (int i = 0; i < N; i++) {
        same += y[i] == rec[i];
        err = fmax(err, fabs(y[i] - x[i]));
    }
    T_EQ_I64(same, N);
    T_CHECK_MSG(err < amax / 31 * 1.5, "q6_k: max error %g for amax %g", err, amax);
}

/* a random text model of k-quant-friendly widths as a plain struct vl_model for the writer */
struct kmodel {
    struct vl_model m;
    struct vl_llm_layer layer;
    float *buf[16];
    int n;
};

static void ktensor(struct kmodel *k, struct vl_tensor *t, int64_t r, int64_t c, float scale,
                    float base) {
    int64_t n = r * (c ? c : 1);
    float *p = malloc((size_t)n * sizeof *p);
    for (int64_t i = 0; i < n; i++)
        p[i] = base + scale * gauss();
    k->buf[k->n++] = p;
    t->dtype = VL_DTYPE_F32;
    t->ndim = c ? 2 : 1;
    t->ne[0] = r;
    t->ne[1] = c;
    t->data = p;
}

static void kmodel_init(struct kmodel *k) {
    memset(k, 0, sizeof *k);
    struct vl_text_config *c = &k->m.cfg.text;
    c->hidden_size = K_H;
    c->intermediate_size = K_I;
    c->num_hidden_layers = 1;
    c->num_attention_heads = K_HEADS;
    c->num_key_value_heads = K_KV_HEADS;
    c->head_dim = K_H / K_HEADS;
    c->vocab_size = K_V;
    c->max_position_embeddings = 4096;
    c->rms_norm_eps = 1e-6;
    c->rope_theta = 1e6;
    c->mrope_section[0] = 8;
    c->mrope_section[1] = 12;
    c->mrope_section[2] = 12;
    k->m.w.layers = &k->layer;
    struct vl_llm_layer *l = &k->layer;
    const int64_t kvd = K_KV_HEADS * (K_H / K_HEADS);
    ktensor(k, &k->m.w.embed, K_V, K_H, 0.5f, 0);
    ktensor(k, &l->attn_norm, K_H, 0, 0.1f, 1);
    ktensor(k, &l->q_w, K_H, K_H, 0.06f, 0);
    ktensor(k, &l->q_b, K_H, 0, 0.02f, 0);
    ktensor(k, &l->k_w, kvd, K_H, 0.06f, 0);
    ktensor(k, &l->k_b, kvd, 0, 0.02f, 0);
    ktensor(k, &l->v_w, kvd, K_H, 0.06f, 0);
    ktensor(k, &l->v_b, kvd, 0, 0.02f, 0);
    ktensor(k, &l->o_w, K_H, K_H, 0.06f, 0);
    ktensor(k, &l->mlp_norm, K_H, 0, 0.1f, 1);
    ktensor(k, &l->gate_w, K_I, K_H, 0.06f, 0);
    ktensor(k, &l->up_w, K_I, K_H, 0.06f, 0);
    ktensor(k, &l->down_w, K_H, K_I, 0.05f, 0);
    ktensor(k, &k->m.w.final_norm, K_H, 0, 0.1f, 1);
    k->m.w.lm_head = k->m.w.embed; /* tied */
}

static void kmodel_free(struct kmodel *k) {
    for (int i = 0; i < k->n; i++)
        free(k->buf[i]);
}

/* each converted q8 weight within half a q8 step (+ f32 rounding) of its k-quant value */
static void check_converted(const struct vl_tensor *q8, const struct vl_tensor *ref) {
    T_EQ_I64(q8->dtype, VL_DTYPE_Q8_0);
    T_EQ_I64(ref->dtype, VL_DTYPE_F32);
    const int64_t in = q8->ne[1];
    float *row = malloc((size_t)in * sizeof *row);
    int64_t bad = 0;
    for (int64_t r = 0; row && r < q8->ne[0]; r++) {
        const uint8_t *blk = (const uint8_t *)q8->data + (size_t)r * vl__q_row_bytes(VL_DTYPE_Q8_0, in);
        vl__dequantize_row(row, VL_DTYPE_Q8_0, blk, in);
        for (int64_t b = 0; b < in / VL_QK; b++) {
            float d = vl__f16_to_f32((uint16_t)(blk[b * VL_Q8_0_BYTES] |
                                                blk[b * VL_Q8_0_BYTES + 1] << 8));
            for (int64_t i = b * VL_QK; i < (b + 1) * VL_QK; i++) {
                float want = ((const float *)ref->data)[r * in + i];
                bad += fabsf(row[i] - want) > d * 0.5f * 1.0001f + 1e-9f;
            }
        }
    }
    T_EQ_I64(bad, 0);
    free(row);
}

static void test_kquant_model(void) {
    struct kmodel k;
    kmodel_init(&k);
    int32_t ids[40];
    for (int i = 0; i < 40; i++)
        ids[i] = (int32_t)((i * 37 + 11) % K_V);
    struct lg_req r = {.ids = ids, .n_ids = 40};
    char pk[LG_PATH_MAX + 32], pr[LG_PATH_MAX + 32];
    const uint32_t kinds[] = {VL_GGML_Q4_K, VL_GGML_Q6_K};
    for (size_t i = 0; i < 2; i++) {
        path_of(pk, sizeof pk, "k.gguf");
        path_of(pr, sizeof pr, "k-ref.gguf");
        T_CHECK(gw_write_k(pk, &k.m, kinds[i], false) == 0);
        T_CHECK(gw_write_k(pr, &k.m, kinds[i], true) == 0);
        struct vl_model *km = load_pair(pk, NULL, VL_OK, NULL);
        struct vl_model *ref = load_pair(pr, NULL, VL_OK, NULL);
        if (km && ref) {
            T_EQ_I64(vl_model_wformat(km, false), VL_WFORMAT_Q8);
            check_converted(&km->w.layers[0].q_w, &ref->w.layers[0].q_w);
            check_converted(&km->w.layers[0].down_w, &ref->w.layers[0].down_w);
            /* the embedding (Q6_K) is dequantized exactly */
            T_CHECK(memcmp(km->w.embed.data, ref->w.embed.data, (size_t)K_V * K_H * 4) == 0);
            struct vl_error err = {0};
            T_EQ_I64(vl_model_quantize(km, VL_WFORMAT_Q4, VL_WFORMAT_BF16, 1, &err),
                     VL_ERR_INVALID);
            memset(&err, 0, sizeof err);
            T_CHECK_MSG(vl_model_quantize(km, VL_WFORMAT_Q8, VL_WFORMAT_BF16, 1, &err) == VL_OK,
                        "%s", err.msg);
            compare(ref, km, &r, Q8_REL_MAX, kinds[i] == VL_GGML_Q4_K ? "Q4_K_M-like" : "Q6_K");
        }
        vl_model_free(km);
        vl_model_free(ref);
        unlink(pk);
        unlink(pr);
    }
    /* another block type: refused naming it */
    path_of(pk, sizeof pk, "q5k.gguf");
    T_CHECK(gw_write_k(pk, &k.m, VL_GGML_Q5_K, false) == 0);
    load_pair(pk, NULL, VL_ERR_UNSUPPORTED, "Q5_K");
    unlink(pk);
    kmodel_free(&k);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "%s/gguf-proj-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    T_CHECK(mkdtemp(tmpdir) != NULL);
    test_known_blocks();
    test_roundtrip();
    test_kquant_model();
    test_projector();
    rmdir(tmpdir);
    return t_done();
}
