/* Model loading end to end: the fixture checkpoint loads and binds every tensor; a synthesised
 * tiny checkpoint (sharded, with index) loads; corrupted copies made here at run time fail with a
 * clear error (missing shard, tensor missing from the index, index naming a tensor its shard
 * lacks, missing tensor, unexpected tensor, wrong shape, untied config without lm_head, Qwen2-VL
 * config); renamed tensors of newer transformers (model.language_model.*, model.visual.*) load;
 * the chat template reproduces the prompts and golden input_ids of every fixture case. */
#include "t.h"
#include "vl_impl.h"

#include <jansson.h>
#include <stdarg.h>
#include <unistd.h>

static char tmp[256];
static char fixture_model[1024];

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...) {
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    if (system(cmd) != 0)
        fprintf(stderr, "command failed: %s\n", cmd);
}

static enum vl_status load(const char *dir, struct vl_error *err) {
    struct vl_model *m = NULL;
    memset(err, 0, sizeof *err);
    enum vl_status st = vl_model_load(&m, dir, err);
    vl_model_free(m);
    return st;
}

static void expect_fail(const char *what, const char *dir, enum vl_status want,
                        const char *needle) {
    struct vl_error err;
    enum vl_status st = load(dir, &err);
    T_CHECK_MSG(st == want, "%s: status %d, want %d (%s)", what, st, want, err.msg);
    T_CHECK_MSG(strstr(err.msg, needle) != NULL, "%s: message '%s' lacks '%s'", what, err.msg,
                needle);
}

static void test_fixture(void) {
    struct vl_model *m = NULL;
    struct vl_error err = {0};
    T_CHECK_MSG(vl_model_load(&m, fixture_model, &err) == VL_OK, "%s", err.msg);
    if (!m)
        return;
    T_CHECK(m->tok != NULL);
    T_CHECK(m->w.lm_head.data == m->w.embed.data); /* tied */
    T_EQ_I64(m->w.layers[1].k_w.ne[0], 32);        /* KVD = 2 heads x 16 */
    T_EQ_I64(m->w.vblocks[3].qkv_w.ne[0], 192);
    T_EQ_I64(m->w.patch_embed.ndim, 5);
    T_EQ_I64(m->w.merger_fc1_w.ne[1], 256);        /* 4 x D */
    T_CHECK(m->w.embed.dtype == VL_DTYPE_BF16);
    struct vl_model_summary s;
    vl_model_summary(m, &s);
    T_EQ_I64(s.n_tensors, 80);
    T_EQ_I64(s.n_tensors_by_dtype[VL_DTYPE_BF16], 80);
    T_EQ_I64(s.params_embed, 151936 * 64);
    T_EQ_I64(s.params_lm_head, 0);
    T_EQ_I64(s.params_total, s.params_vision + s.params_merger + s.params_embed +
                                 s.params_layers);
    T_EQ_I64((int64_t)s.bytes_tensors, s.params_total * 2);
    /* vision: patch 64*3*2*14*14 + 4 blocks of 12 tensors */
    int64_t block = 64 + 192 * 64 + 192 + 64 * 64 + 64 + 64 + 3 * 96 * 64 + 2 * 96 + 64;
    T_EQ_I64(s.params_vision, 64 * 3 * 2 * 14 * 14 + 4 * block);
    int64_t bad = -1;
    char first[128];
    T_CHECK(vl_model_scan(m, &bad, first, sizeof first, &err) == VL_OK);
    T_EQ_I64(bad, 0);
    vl_model_free(m);
}

/* A sharded synthetic copy in dir. */
static void synth(const char *dir, size_t shard) {
    char tp[1100];
    snprintf(tp, sizeof tp, "%s/tokenizer.json", fixture_model);
    sh("rm -rf '%s' && mkdir -p '%s'", dir, dir);
    struct vl_synth_opts o = {.dir = dir, .shape = "tiny", .seed = 7, .shard_bytes = shard,
                              .tokenizer_path = tp};
    struct vl_synth_result r;
    struct vl_error err = {0};
    T_CHECK_MSG(vl_synth_write(&o, &r, &err) == VL_OK, "synth: %s", err.msg);
    T_EQ_I64(r.n_tensors, 80);
}

/* Rewrites a JSON file through jansson with a transformation. */
static void edit_json(const char *path, void (*fn)(json_t *root)) {
    json_t *root = json_load_file(path, 0, NULL);
    T_CHECK_MSG(root != NULL, "cannot read %s", path);
    if (!root)
        return;
    fn(root);
    json_dump_file(root, path, JSON_INDENT(1));
    json_decref(root);
}

static void drop_index_entry(json_t *root) {
    json_object_del(json_object_get(root, "weight_map"), "model.norm.weight");
}
static void add_index_entry(json_t *root) {
    json_t *wm = json_object_get(root, "weight_map");
    json_object_set(wm, "model.extra.weight", json_object_get(wm, "model.norm.weight"));
}
static void more_layers(json_t *root) { json_object_set_new(root, "num_hidden_layers", json_integer(3)); }
static void fewer_layers(json_t *root) { json_object_set_new(root, "num_hidden_layers", json_integer(1)); }
static void wider_mlp(json_t *root) { json_object_set_new(root, "intermediate_size", json_integer(128)); }
static void untied(json_t *root) { json_object_set_new(root, "tie_word_embeddings", json_false()); }
static void qwen2vl(json_t *root) { json_object_set_new(root, "model_type", json_string("qwen2_vl")); }
static void nest_text(json_t *root) {
    static const char *keys[] = {"hidden_size", "intermediate_size", "num_hidden_layers",
                                 "num_attention_heads", "num_key_value_heads", "vocab_size",
                                 "rope_theta", "rope_scaling", "rms_norm_eps"};
    json_t *tc = json_object();
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        json_object_set(tc, keys[i], json_object_get(root, keys[i]));
        json_object_del(root, keys[i]);
    }
    json_object_set_new(root, "text_config", tc);
}

/* A --model (or --mmproj) path that does not exist is named as given, never as DIR/config.json
 * (which read as if a checkpoint directory had been found without its config). */
static void test_missing(void) {
    char p[1200], want[1300];
    snprintf(p, sizeof p, "%s/no-such-model.gguf", tmp);
    snprintf(want, sizeof want, "%s: No such file or directory", p);
    struct vl_error err;
    enum vl_status st = load(p, &err);
    T_CHECK_MSG(st == VL_ERR_IO && strcmp(err.msg, want) == 0, "missing path: %d '%s'", st,
                err.msg);
    snprintf(p, sizeof p, "%s/no-such-dir", tmp);
    snprintf(want, sizeof want, "%s: No such file or directory", p);
    st = load(p, &err);
    T_CHECK_MSG(st == VL_ERR_IO && strcmp(err.msg, want) == 0, "missing dir: %d '%s'", st,
                err.msg);
    struct vl_model *m = NULL;
    memset(&err, 0, sizeof err);
    st = vl_model_load_with_projector(&m, fixture_model, p, &err);
    T_CHECK_MSG(st == VL_ERR_IO && !m && strcmp(err.msg, want) == 0, "missing mmproj: %d '%s'",
                st, err.msg);
}

static void test_sharded(void) {
    char dir[512], path[600], cfg[600], idx[600];
    snprintf(dir, sizeof dir, "%s/sharded", tmp);
    synth(dir, 4000000);
    snprintf(idx, sizeof idx, "%s/model.safetensors.index.json", dir);
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    struct vl_model *m = NULL;
    struct vl_error err = {0};
    T_CHECK_MSG(vl_model_load(&m, dir, &err) == VL_OK, "%s", err.msg);
    T_EQ_I64(m ? m->n_files : 0, 3);
    vl_model_free(m);

    /* tensor missing from the index */
    sh("cp '%s' '%s.orig'", idx, idx);
    edit_json(idx, drop_index_entry);
    expect_fail("tensor missing from index", dir, VL_ERR_MODEL,
                "tensor 'model.norm.weight' of model-00003-of-00003.safetensors is missing from "
                "the index");
    sh("cp '%s.orig' '%s'", idx, idx);
    /* index names a tensor its shard does not hold */
    edit_json(idx, add_index_entry);
    expect_fail("index entry not in shard", dir, VL_ERR_MODEL,
                "tensor 'model.extra.weight' is listed for");
    sh("cp '%s.orig' '%s'", idx, idx);
    /* a missing shard */
    snprintf(path, sizeof path, "%s/model-00002-of-00003.safetensors", dir);
    sh("mv '%s' '%s.away'", path, path);
    expect_fail("missing shard", dir, VL_ERR_IO, "model-00002-of-00003.safetensors");
    sh("mv '%s.away' '%s'", path, path);
    /* a truncated shard */
    sh("cp '%s' '%s.orig' && truncate -s 100000 '%s.orig'", path, path, path);
    sh("mv '%s' '%s.full'", path, path);
    sh("mv '%s.orig' '%s'", path, path);
    expect_fail("truncated shard", dir, VL_ERR_FORMAT, "beyond the data section");
    sh("mv '%s.full' '%s'", path, path);
    /* config / tensor mismatches */
    sh("cp '%s' '%s.orig'", cfg, cfg);
    edit_json(cfg, more_layers);
    expect_fail("missing tensor", dir, VL_ERR_MODEL, "missing tensor 'model.layers.2.");
    sh("cp '%s.orig' '%s'", cfg, cfg);
    edit_json(cfg, fewer_layers);
    expect_fail("unexpected tensor", dir, VL_ERR_MODEL, "unexpected tensor 'model.layers.1.");
    sh("cp '%s.orig' '%s'", cfg, cfg);
    edit_json(cfg, wider_mlp);
    expect_fail("wrong shape", dir, VL_ERR_MODEL, "has wrong shape: got [96, 64] expected [128, 64]");
    sh("cp '%s.orig' '%s'", cfg, cfg);
    edit_json(cfg, untied);
    expect_fail("untied without lm_head", dir, VL_ERR_MODEL, "missing tensor 'lm_head.weight'");
    sh("cp '%s.orig' '%s'", cfg, cfg);
    edit_json(cfg, qwen2vl);
    expect_fail("qwen2-vl", dir, VL_ERR_UNSUPPORTED, "Qwen2-VL");
    sh("cp '%s.orig' '%s'", cfg, cfg);
    edit_json(cfg, nest_text);
    T_CHECK_MSG(load(dir, &err) == VL_OK, "text_config layout: %s", err.msg);
    sh("cp '%s.orig' '%s'", cfg, cfg);
    /* no weights at all */
    sh("rm -f '%s'/*.safetensors '%s'", dir, idx);
    expect_fail("no weights", dir, VL_ERR_MODEL, "neither model.safetensors");
}

/* Newer transformers save model.language_model.* / model.visual.*: canonicalised at load. */
static void test_renamed(void) {
    char dir[512], src[1100], dst[600];
    snprintf(dir, sizeof dir, "%s/renamed", tmp);
    sh("mkdir -p '%s'", dir);
    sh("cp '%s'/*.json '%s'/", fixture_model, dir);
    snprintf(src, sizeof src, "%s/model.safetensors", fixture_model);
    snprintf(dst, sizeof dst, "%s/model.safetensors", dir);
    struct vl_st_file *f = NULL;
    struct vl_error err = {0};
    T_CHECK(vl_st_open(&f, src, &err) == VL_OK);
    int n = vl_st_count(f);
    struct vl_st_entry *e = calloc((size_t)n, sizeof *e);
    char (*names)[128] = calloc((size_t)n, sizeof *names);
    for (int i = 0; i < n; i++) {
        e[i] = *vl_st_get(f, i);
        if (!strncmp(e[i].name, "visual.", 7))
            snprintf(names[i], sizeof names[i], "model.%s", e[i].name);
        else
            snprintf(names[i], sizeof names[i], "model.language_model.%s", e[i].name + 6);
        e[i].name = names[i];
    }
    T_CHECK(vl_st_write(dst, e, n, &err) == VL_OK);
    vl_st_close(f);
    free(e);
    free(names);
    T_CHECK_MSG(load(dir, &err) == VL_OK, "renamed: %s", err.msg);
}

/* An untied checkpoint (7B-style): lm_head.weight stored and bound separately. */
static void test_untied(void) {
    char dir[512], src[1100], dst[600], cfg[600];
    snprintf(dir, sizeof dir, "%s/untied", tmp);
    sh("mkdir -p '%s'", dir);
    sh("cp '%s'/*.json '%s'/", fixture_model, dir);
    snprintf(src, sizeof src, "%s/model.safetensors", fixture_model);
    snprintf(dst, sizeof dst, "%s/model.safetensors", dir);
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    struct vl_st_file *f = NULL;
    struct vl_error err = {0};
    T_CHECK(vl_st_open(&f, src, &err) == VL_OK);
    int n = vl_st_count(f);
    struct vl_st_entry *e = calloc((size_t)n + 1, sizeof *e);
    for (int i = 0; i < n; i++)
        e[i] = *vl_st_get(f, i);
    e[n] = *vl_st_find(f, "model.embed_tokens.weight");
    e[n].name = "lm_head.weight";
    T_CHECK(vl_st_write(dst, e, n + 1, &err) == VL_OK);
    vl_st_close(f);
    free(e);
    /* config.json says untied: the stored lm_head is bound */
    edit_json(cfg, untied);
    struct vl_model *m = NULL;
    T_CHECK_MSG(vl_model_load(&m, dir, &err) == VL_OK, "untied: %s", err.msg);
    if (m) {
        T_CHECK(!m->cfg.text.tie_word_embeddings);
        T_CHECK(m->w.lm_head.data && m->w.lm_head.data != m->w.embed.data);
        struct vl_model_summary s;
        vl_model_summary(m, &s);
        T_EQ_I64(s.params_lm_head, 151936 * 64);
        T_EQ_I64(s.n_tensors, 81);
    }
    vl_model_free(m);
}

/* Chat template + expansion reproduce every fixture prompt and its golden input_ids. */
static void test_chat_goldens(void) {
    char path[1024];
    json_t *man = json_load_file(t_path(path, sizeof path, "DP_FIXTURES",
                                        "qwen25vl-tiny/manifest.json"), 0, NULL);
    T_CHECK(man != NULL);
    struct vl_model *m = NULL;
    struct vl_error err = {0};
    if (!man || vl_model_load(&m, fixture_model, &err) != VL_OK) {
        json_decref(man);
        return;
    }
    size_t i;
    json_t *cs;
    json_array_foreach(json_object_get(man, "cases"), i, cs) {
        const char *prompt = json_string_value(json_object_get(cs, "prompt"));
        /* rebuild the user turn's parts from the prompt text */
        const char *u = strstr(prompt, "<|im_start|>user\n");
        const char *end = u ? strstr(u, "<|im_end|>") : NULL;
        T_CHECK(u && end);
        if (!u || !end)
            continue;
        u += strlen("<|im_start|>user\n");
        struct vl_chat_part parts[16];
        char texts[16][512];
        int np = 0;
        static const char *img = "<|vision_start|><|image_pad|><|vision_end|>";
        static const char *vid = "<|vision_start|><|video_pad|><|vision_end|>";
        while (u < end && np < 16) {
            if (!strncmp(u, img, strlen(img)) || !strncmp(u, vid, strlen(vid))) {
                parts[np].type = !strncmp(u, img, strlen(img)) ? VL_CHAT_IMAGE : VL_CHAT_VIDEO;
                parts[np].text = NULL;
                np++;
                u += strlen(img); /* both markers have the same length */
                continue;
            }
            const char *next = strstr(u, "<|vision_start|>");
            if (!next || next > end)
                next = end;
            snprintf(texts[np], sizeof texts[np], "%.*s", (int)(next - u), u);
            parts[np] = (struct vl_chat_part){VL_CHAT_TEXT, texts[np]};
            np++;
            u = next;
        }
        struct vl_chat_msg msg = {"user", NULL, parts, np};
        char *rendered = NULL;
        T_CHECK(vl_chat_render(&rendered, &msg, 1, true, false, &err) == VL_OK);
        T_EQ_STR(rendered, prompt);
        free(rendered);
        /* tokenise + expand with the case's token counts; compare with the golden ids */
        int32_t ids[4096], e1[8192], e2[8192];
        size_t n, n1, n2;
        T_CHECK(vl_tokenizer_encode(m->tok, prompt, strlen(prompt), ids, 4096, &n, &err) == VL_OK);
        int64_t ic[16], vc[16];
        int ni = 0, nv = 0;
        size_t k;
        json_t *v;
        json_array_foreach(json_object_get(cs, "n_image_tokens"), k, v) ic[ni++] = json_integer_value(v);
        json_array_foreach(json_object_get(cs, "n_video_tokens"), k, v) vc[nv++] = json_integer_value(v);
        T_CHECK(vl_chat_expand(e1, 8192, &n1, ids, n, m->cfg.image_token_id, ic, ni, &err) == VL_OK);
        T_CHECK(vl_chat_expand(e2, 8192, &n2, e1, n1, m->cfg.video_token_id, vc, nv, &err) == VL_OK);
        char gp[512];
        snprintf(gp, sizeof gp, "qwen25vl-tiny/%s",
                 json_string_value(json_object_get(cs, "goldens_file")));
        struct vl_st_file *g = NULL;
        T_CHECK(vl_st_open(&g, t_path(path, sizeof path, "DP_FIXTURES", gp), &err) == VL_OK);
        const struct vl_st_entry *gi = vl_st_find(g, "input_ids");
        bool same = gi && gi->nbytes == n2 * sizeof(int64_t);
        for (size_t j = 0; same && j < n2; j++) {
            int64_t want;
            memcpy(&want, (const char *)gi->data + j * sizeof want, sizeof want);
            same = want == e2[j];
        }
        T_CHECK_MSG(same, "case %s: input_ids differ (%zu ids)",
                    json_string_value(json_object_get(cs, "id")), n2);
        vl_st_close(g);
        /* vl_chat_build gives the same ids when the visual inputs come first */
        if (np >= 1 && parts[np - 1].type == VL_CHAT_TEXT && ni + nv == np - 1 && ni <= 1 &&
            nv == 0) {
            struct vl_vision_input vis = {0};
            json_t *grid = json_array_get(json_object_get(cs, "image_grid_thw"), 0);
            vis.grid_t = json_integer_value(json_array_get(grid, 0));
            vis.grid_h = json_integer_value(json_array_get(grid, 1));
            vis.grid_w = json_integer_value(json_array_get(grid, 2));
            int32_t *b = NULL;
            size_t nb = 0;
            T_CHECK(vl_chat_build(m, NULL, parts[np - 1].text, &vis, ni, &b, &nb, &err) == VL_OK);
            T_CHECK_MSG(nb == n2 && b && !memcmp(b, e2, nb * sizeof *b), "vl_chat_build %s",
                        json_string_value(json_object_get(cs, "id")));
            free(b);
        }
    }
    /* count mismatch is an error */
    int32_t one[3] = {1, m->cfg.image_token_id, 2}, out[8];
    size_t no;
    int64_t cnt[2] = {2, 2};
    struct vl_error e2 = {0};
    T_EQ_I64(vl_chat_expand(out, 8, &no, one, 3, m->cfg.image_token_id, cnt, 2, &e2),
             VL_ERR_INVALID);
    struct vl_error e3 = {0};
    T_EQ_I64(vl_chat_expand(out, 2, &no, one, 3, m->cfg.image_token_id, cnt, 1, &e3),
             VL_ERR_LIMIT);
    T_EQ_I64(no, 4);
    vl_model_free(m);
    json_decref(man);
}

int main(int argc, char **argv) {
    t_args(argc, argv);
    t_path(fixture_model, sizeof fixture_model, "DP_FIXTURES", "qwen25vl-tiny/model");
    snprintf(tmp, sizeof tmp, "/tmp/dp_test_model_XXXXXX");
    if (!mkdtemp(tmp)) {
        perror("mkdtemp");
        return 1;
    }
    T_RUN(test_fixture);
    T_RUN(test_missing);
    T_RUN(test_sharded);
    T_RUN(test_renamed);
    T_RUN(test_untied);
    T_RUN(test_chat_goldens);
    sh("rm -rf '%s'", tmp);
    return t_done();
}
