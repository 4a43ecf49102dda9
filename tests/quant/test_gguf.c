/* llama.cpp GGUF files of the tiny fixture's text model (written by gguf_writer.c): F32 / F16 /
 * BF16 give the safetensors checkpoint's logits (BF16 bit for bit, F32 within round-off, F16
 * within its rounding of the BF16 weights); Q8_0 / Q4_0 give exactly the logits of the checkpoint
 * quantized at load (--weights q8|q4), their blocks bound in place; refusals (other architecture,
 * other weight format, image requests without a projector); every truncation and a sweep of
 * byte corruptions of a real file load or fail with a message, never crash. */
#include <math.h>
#include <jansson.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gguf_writer.h"
#include "llm_golden.h"
#include "t.h"
#include "vl_quant_impl.h"

#define STEPS 4
#define CORRUPT_STRIDE 5  /* header bytes after the fixed 24 tried (all values of 3 kinds) */
#define F32_REL_MAX 1e-5  /* same values, f32 instead of bf16 kernels: summation order only */
#define F16_REL_MAX 1e-5  /* bf16 values in f16's normal range convert exactly (11 >= 8 bits) */

static struct vl_model *load_st(enum vl_wformat f) {
    char dir[LG_PATH_MAX];
    struct vl_model *m = NULL;
    struct vl_error err = {0};
    T_CHECK_MSG(vl_model_load(&m, lg_model_dir(dir, sizeof dir), &err) == VL_OK, "load: %s",
                err.msg);
    if (m)
        T_CHECK_MSG(vl_model_quantize(m, f, VL_WFORMAT_BF16, 2, &err) == VL_OK, "quantize: %s",
                    err.msg);
    return m;
}

static char tmpdir[LG_PATH_MAX];

static void path_of(char *buf, size_t n, const char *name) {
    snprintf(buf, n, "%s/%s", tmpdir, name);
}

static struct vl_model *load_gguf(const char *path, enum vl_wformat f, enum vl_status want) {
    struct vl_model *m = NULL;
    struct vl_error err = {0};
    enum vl_status st = vl_model_load(&m, path, &err);
    if (st == VL_OK && f != VL_WFORMAT_BF16)
        st = vl_model_quantize(m, f, VL_WFORMAT_BF16, 2, &err);
    T_CHECK_MSG(st == want, "%s: status %d (want %d): %s", path, st, want, err.msg);
    if (st != VL_OK) {
        T_CHECK_MSG(err.msg[0] != 0, "%s: refusal without a message", path);
        vl_model_free(m);
        return NULL;
    }
    return m;
}

static void compare(struct vl_model *ref, struct vl_model *g, const int32_t *ids, int64_t n,
                    double max_rel, const char *what) {
    struct vl_request rq = {.ids = ids, .n_ids = n};
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

/* hostile variants of a valid file: loads fail with a message or succeed, never crash */
static void hostile(const char *good) {
    size_t n;
    unsigned char *b = gw_read_file(good, &n);
    T_CHECK(b != NULL);
    if (!b)
        return;
    char p[LG_PATH_MAX + 32];
    path_of(p, sizeof p, "hostile.gguf");
    struct vl_gguf *g;
    struct vl_error err = {0};
    T_CHECK(vl__gguf_open_mem(&g, b, n, &err) == VL_OK);
    size_t data_off = g ? g->data_off : n;
    vl__gguf_close(g);
    /* every truncation of the header and tensor infos, then some of the data */
    for (size_t cut = 0; cut < n; cut += cut < data_off + 64 ? 1 : 4099) {
        memset(&err, 0, sizeof err);
        enum vl_status st = vl__gguf_open_mem(&g, b, cut, &err);
        T_CHECK_MSG(st != VL_OK && err.msg[0], "truncated at %zu of %zu: accepted", cut, n);
        if (st == VL_OK)
            vl__gguf_close(g);
    }
    /* every header byte set to 0xff, 0x00 and flipped (metadata counts, lengths, types, dims,
     * offsets): through the full model load */
    unsigned char *c = malloc(n);
    int loaded = 0, refused = 0;
    T_CHECK(gw_write_file(p, b, n) == 0);
    FILE *hf = fopen(p, "r+b");
    T_CHECK(hf != NULL);
    for (size_t i = 0; c && hf && i < data_off; i += (i < 24 ? 1 : CORRUPT_STRIDE)) {
        const unsigned char vals[3] = {0xff, 0x00, (unsigned char)(b[i] ^ 0x41)};
        for (int k = 0; k < 3; k++) {
            fseek(hf, (long)i, SEEK_SET);
            fputc(vals[k], hf);
            fflush(hf);
            struct vl_model *m = NULL;
            memset(&err, 0, sizeof err);
            enum vl_status st = vl_model_load(&m, p, &err);
            if (st == VL_OK)
                loaded++;
            else {
                refused++;
                T_CHECK_MSG(err.msg[0] != 0, "byte %zu = %u: refusal without a message", i,
                            vals[k]);
            }
            vl_model_free(m);
        }
        fseek(hf, (long)i, SEEK_SET);
        fputc(b[i], hf);
        fflush(hf);
    }
    if (hf)
        fclose(hf);
    fprintf(stderr, "corrupted headers: %d refused, %d loaded\n", refused, loaded);
    T_CHECK(refused > 0);
    /* a hostile tensor count and an over-long string length: refused, nothing allocated */
    if (c) {
        memcpy(c, b, n);
        memset(c + 8, 0xff, 8); /* tensor_count */
        T_CHECK(vl__gguf_open_mem(&g, c, n, &err) == VL_ERR_FORMAT);
        T_CHECK(strstr(err.msg, "tensor_count") != NULL);
        memset(&err, 0, sizeof err);
        memcpy(c, b, n);
        memset(c + 24, 0xff, 8); /* first key's length */
        T_CHECK(vl__gguf_open_mem(&g, c, n, &err) == VL_ERR_FORMAT);
        T_CHECK(strstr(err.msg, "metadata key") != NULL);
        memset(&err, 0, sizeof err);
        memcpy(c, b, n);
        c[0] = 'X';
        T_CHECK(vl__gguf_open_mem(&g, c, n, &err) == VL_ERR_FORMAT);
        T_CHECK(strstr(err.msg, "magic") != NULL);
    }
    free(c);
    free(b);
    unlink(p);
}

/* the tokenizer from tokenizer.ggml.*: the same ids as tokenizer.json on every golden row */
static void test_tokenizer(struct vl_model *bf) {
    char dir[LG_PATH_MAX], tj[LG_PATH_MAX + 32], gold[LG_PATH_MAX + 32], p[LG_PATH_MAX + 32];
    lg_model_dir(dir, sizeof dir);
    snprintf(tj, sizeof tj, "%s/tokenizer.json", dir);
    snprintf(gold, sizeof gold, "%s/../tokenizer_goldens.json", dir);
    path_of(p, sizeof p, "tok.gguf");
    T_CHECK(gw_write(p, bf, VL_GGML_BF16, NULL, tj) == 0);
    struct vl_model *g = load_gguf(p, VL_WFORMAT_BF16, VL_OK);
    json_error_t je;
    json_t *root = json_load_file(gold, 0, &je);
    T_CHECK_MSG(root != NULL, "%s: %s", gold, je.text);
    const struct vl_tokenizer *gt = g ? vl_model_tokenizer(g) : NULL, *rt = vl_model_tokenizer(bf);
    T_CHECK(gt != NULL && rt != NULL);
    json_t *rows = json_object_get(root, "rows");
    size_t i, compared = 0;
    json_t *row;
    json_array_foreach(rows, i, row) {
        if (!gt || !rt)
            break;
        const char *text = json_string_value(json_object_get(row, "text"));
        json_t *jids = json_object_get(row, "ids");
        static int32_t a[8192], b[8192];
        size_t na = 0, nb = 0;
        struct vl_error err = {0};
        T_CHECK_MSG(vl_tokenizer_encode(gt, text, strlen(text), a, 8192, &na, &err) == VL_OK,
                    "%s", err.msg);
        T_CHECK(vl_tokenizer_encode(rt, text, strlen(text), b, 8192, &nb, &err) == VL_OK);
        bool same = na == nb && na == json_array_size(jids);
        for (size_t k = 0; same && k < na; k++)
            same = a[k] == b[k] && a[k] == json_integer_value(json_array_get(jids, k));
        T_CHECK_MSG(same, "row %zu: GGUF tokenizer gives other ids (%zu vs %zu)", i, na, nb);
        compared++;
    }
    fprintf(stderr, "tokenizer goldens: %zu rows identical\n", compared);
    T_CHECK(compared >= 50);
    json_decref(root);
    vl_model_free(g);
    /* a GGUF vocabulary with another pre-tokenizer: refused */
    unlink(p);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "%s/gguf-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    T_CHECK(mkdtemp(tmpdir) != NULL);
    struct vl_model *bf = load_st(VL_WFORMAT_BF16);
    struct vl_model *q8 = load_st(VL_WFORMAT_Q8);
    struct vl_model *q4 = load_st(VL_WFORMAT_Q4);
    if (!bf || !q8 || !q4)
        return t_done();
    struct vl_st_file *f = lg_open("text_only");
    size_t nid = 0;
    int64_t *ids64 = f ? lg_i64(f, "input_ids", &nid) : NULL;
    T_CHECK(ids64 != NULL);
    if (!ids64)
        return t_done();
    int32_t *ids = malloc(nid * sizeof *ids);
    for (size_t i = 0; i < nid; i++)
        ids[i] = (int32_t)ids64[i];
    char p[LG_PATH_MAX + 32];
    const struct {
        const char *file;
        struct vl_model *src;
        uint32_t ftype;
        enum vl_wformat w;
        double max_rel;
    } cases[] = {
        {"bf16.gguf", NULL, VL_GGML_BF16, VL_WFORMAT_BF16, 0},
        {"f32.gguf", NULL, VL_GGML_F32, VL_WFORMAT_BF16, F32_REL_MAX},
        {"f16.gguf", NULL, VL_GGML_F16, VL_WFORMAT_BF16, F16_REL_MAX},
        {"q8.gguf", NULL, VL_GGML_BF16, VL_WFORMAT_Q8, 0},
        {"q4.gguf", NULL, VL_GGML_BF16, VL_WFORMAT_Q4, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct vl_model *src = cases[i].w == VL_WFORMAT_Q8   ? q8
                               : cases[i].w == VL_WFORMAT_Q4 ? q4
                                                             : bf;
        path_of(p, sizeof p, cases[i].file);
        T_CHECK(gw_write(p, src, cases[i].ftype, NULL, NULL) == 0);
        struct vl_model *g = load_gguf(p, cases[i].w, VL_OK);
        if (!g)
            continue;
        T_CHECK(g->text_only);
        struct vl_model_summary sm;
        vl_model_summary(g, &sm);
        T_EQ_I64(sm.vit_depth, 0); /* model info: "vision: none" */
        T_EQ_I64(sm.params_vision, 0);
        if (cases[i].w != VL_WFORMAT_BF16) {
            /* blocks bound in place: the Linear weights point into the mapping */
            T_EQ_I64(g->w.layers[0].q_w.dtype, src->w.layers[0].q_w.dtype);
            T_CHECK(g->w.layers[0].q_w.data != src->w.layers[0].q_w.data);
            T_EQ_I64(vl_model_wformat(g, false), cases[i].w);
            /* the mapping asks for huge pages, as the safetensors one (where the kernel has THP) */
            char flags[512];
            t_vma_flags(g->w.layers[0].q_w.data, flags, sizeof flags);
            if (flags[0] && access("/sys/kernel/mm/transparent_hugepage", F_OK) == 0)
                T_CHECK_MSG(strstr(flags, " hg"), "GGUF mapping without MADV_HUGEPAGE: %s", flags);
            /* another weight format than the file's: refused */
            struct vl_error err = {0};
            enum vl_wformat other = cases[i].w == VL_WFORMAT_Q8 ? VL_WFORMAT_Q4 : VL_WFORMAT_Q8;
            T_EQ_I64(vl_model_quantize(g, other, VL_WFORMAT_BF16, 1, &err), VL_ERR_INVALID);
        }
        compare(src, g, ids, (int64_t)nid, cases[i].max_rel, cases[i].file);
        /* an image request on a text-only model: a clear refusal */
        if (i == 0) {
            struct vl_vision_input vi = {.grid_t = 1, .grid_h = 2, .grid_w = 2, .n_patches = 4,
                                         .patch_dim = 1};
            struct vl_request rq = {.ids = ids, .n_ids = (int64_t)nid, .vision = &vi,
                                    .n_vision = 1};
            struct vl_compare_stats s;
            struct vl_error err = {0};
            T_CHECK(vl_compare_run(g, g, &rq, 1, 1, &s, &err) != VL_OK);
            T_CHECK_MSG(strstr(err.msg, "no vision tower") != NULL, "%s", err.msg);
        }
        vl_model_free(g);
        if (i == 0)
            hostile(p);
        unlink(p);
    }
    /* a Q8_0 file asked for with the default format, and a GGUF of another architecture */
    path_of(p, sizeof p, "q8b.gguf");
    T_CHECK(gw_write(p, q8, VL_GGML_BF16, NULL, NULL) == 0);
    load_gguf(p, VL_WFORMAT_Q4, VL_ERR_INVALID);
    unlink(p);
    path_of(p, sizeof p, "llama.gguf");
    T_CHECK(gw_write(p, bf, VL_GGML_BF16, "llama", NULL) == 0);
    load_gguf(p, VL_WFORMAT_BF16, VL_ERR_UNSUPPORTED);
    unlink(p);
    /* a directory holding the file (llama.cpp's layout); two text models in it: refused */
    char d[LG_PATH_MAX + 32], p2[LG_PATH_MAX + 64], pd[LG_PATH_MAX + 64];
    path_of(d, sizeof d, "dir");
    T_CHECK(mkdir(d, 0700) == 0);
    snprintf(pd, sizeof pd, "%s/model-q8_0.gguf", d);
    T_CHECK(gw_write(pd, q8, VL_GGML_BF16, NULL, NULL) == 0);
    struct vl_model *dm = load_gguf(d, VL_WFORMAT_Q8, VL_OK);
    if (dm)
        compare(q8, dm, ids, (int64_t)nid, 0, "directory");
    vl_model_free(dm);
    snprintf(p2, sizeof p2, "%s/other.gguf", d);
    T_CHECK(gw_write(p2, bf, VL_GGML_BF16, NULL, NULL) == 0);
    load_gguf(d, VL_WFORMAT_BF16, VL_ERR_MODEL);
    unlink(p2);
    unlink(pd);
    rmdir(d);
    test_tokenizer(bf);
    rmdir(tmpdir);
    free(ids);
    free(ids64);
    vl_st_close(f);
    vl_model_free(bf);
    vl_model_free(q8);
    vl_model_free(q4);
    return t_done();
}
