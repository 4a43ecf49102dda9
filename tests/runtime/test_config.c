/* config.json / preprocessor_config.json / generation_config.json parsing: the flat published
 * layout, the text_config-nested layout of newer transformers (with rope_scaling rewritten and
 * vision fields dropped: published fallbacks, not class defaults), Qwen2-VL and unknown
 * architectures refused, bad values refused with the field named, and the preprocessor /
 * generation files in their variants. Uses the private vl_impl.h structs (module test). */
#include "t.h"
#include "vl_impl.h"

static enum vl_status parse(struct vl_config *c, const char *json, struct vl_error *err) {
    memset(err, 0, sizeof *err);
    return vl__config_parse(c, json, strlen(json), "config.json", err);
}

#define TEXT_3B                                                                                    \
    "\"hidden_size\":2048,\"intermediate_size\":11008,\"num_hidden_layers\":36,"               \
    "\"num_attention_heads\":16,\"num_key_value_heads\":2,\"vocab_size\":151936"

static void test_flat_and_nested(void) {
    struct vl_config c;
    struct vl_error err;
    /* flat, vision_config absent entirely: every vision field from the published values */
    const char *flat = "{\"model_type\":\"qwen2_5_vl\"," TEXT_3B ",\"tie_word_embeddings\":true,"
                       "\"rope_scaling\":{\"type\":\"mrope\",\"mrope_section\":[16,24,24]}}";
    T_CHECK_MSG(parse(&c, flat, &err) == VL_OK, "%s", err.msg);
    T_EQ_I64(c.text.head_dim, 128);
    T_EQ_I64(c.vision.hidden_size, 1280); /* published, not the class default 3584 */
    T_EQ_I64(c.vision.depth, 32);
    T_EQ_I64(c.vision.out_hidden_size, 2048);
    T_NEAR(c.vision.tokens_per_second, 2.0, 0); /* class default would be 4 */
    T_EQ_I64(c.vision.n_fullatt, 4);
    T_EQ_I64(c.vision.fullatt_block_indexes[3], 31);
    T_NEAR(c.text.rope_theta, 1e6, 0);
    T_NEAR(c.text.rms_norm_eps, 1e-6, 0);
    T_CHECK(c.text.tie_word_embeddings && c.text.tie_word_embeddings_given);
    T_EQ_I64(c.image_token_id, 151655);
    T_EQ_I64(c.preproc.max_pixels, 12845056);
    T_EQ_I64(c.gen.n_eos, 2);
    /* nested under text_config, transformers-5 style rope */
    const char *nested =
        "{\"architectures\":[\"Qwen2_5_VLForConditionalGeneration\"],\"model_type\":"
        "\"qwen2_5_vl\",\"text_config\":{" TEXT_3B ",\"rope_theta\":500000.0,"
        "\"rope_scaling\":{\"mrope_section\":[16,24,24],\"rope_type\":\"default\","
        "\"type\":\"default\"}},\"vision_config\":{\"out_hidden_size\":2048,"
        "\"intermediate_size\":3456,\"fullatt_block_indexes\":[3,7]}}";
    T_CHECK_MSG(parse(&c, nested, &err) == VL_OK, "%s", err.msg);
    T_EQ_I64(c.text.hidden_size, 2048);
    T_NEAR(c.text.rope_theta, 500000.0, 0);
    T_EQ_I64(c.vision.intermediate_size, 3456);
    T_EQ_I64(c.vision.n_fullatt, 2);
    T_CHECK(!c.text.tie_word_embeddings_given);
    /* rope_parameters (transformers 5) */
    const char *rp = "{\"model_type\":\"qwen2_5_vl\"," TEXT_3B
                     ",\"rope_parameters\":{\"rope_type\":\"default\",\"rope_theta\":1000.0,"
                     "\"mrope_section\":[16,24,24]}}";
    T_CHECK_MSG(parse(&c, rp, &err) == VL_OK, "%s", err.msg);
    T_NEAR(c.text.rope_theta, 1000.0, 0);
}

static void expect(const char *json, enum vl_status want, const char *needle) {
    struct vl_config c;
    struct vl_error err;
    enum vl_status st = parse(&c, json, &err);
    T_CHECK_MSG(st == want, "status %d (want %d) for %s: %s", st, want, json, err.msg);
    T_CHECK_MSG(strstr(err.msg, needle) != NULL, "message '%s' lacks '%s'", err.msg, needle);
}

static void test_refusals(void) {
    expect("{\"model_type\":\"qwen2_vl\"," TEXT_3B "}", VL_ERR_UNSUPPORTED,
           "Qwen2-VL checkpoints");
    expect("{\"architectures\":[\"Qwen2VLForConditionalGeneration\"]," TEXT_3B "}",
           VL_ERR_UNSUPPORTED, "not yet supported");
    expect("{\"model_type\":\"llama\"," TEXT_3B "}", VL_ERR_UNSUPPORTED, "unknown architecture");
    expect("{" TEXT_3B "}", VL_ERR_UNSUPPORTED, "unknown architecture");
    expect("{\"model_type\":\"qwen2_5_vl\",\"hidden_size\":2048}", VL_ERR_MODEL,
           "missing required field 'intermediate_size'");
    expect("{\"model_type\":\"qwen2_5_vl\"," TEXT_3B ",\"rms_norm_eps\":\"x\"}", VL_ERR_MODEL,
           "'rms_norm_eps'");
    expect("{\"model_type\":\"qwen2_5_vl\",\"hidden_size\":2001,\"intermediate_size\":1,"
           "\"num_hidden_layers\":1,\"num_attention_heads\":16,\"num_key_value_heads\":2,"
           "\"vocab_size\":10}",
           VL_ERR_MODEL, "not divisible");
    expect("{\"model_type\":\"qwen2_5_vl\"," TEXT_3B
           ",\"rope_scaling\":{\"type\":\"mrope\",\"mrope_section\":[16,24,16]}}",
           VL_ERR_MODEL, "mrope_section sums to 56");
    expect("{\"model_type\":\"qwen2_5_vl\"," TEXT_3B ",\"rope_scaling\":{\"type\":\"yarn\"}}",
           VL_ERR_UNSUPPORTED, "yarn");
    expect("{\"model_type\":\"qwen2_5_vl\"," TEXT_3B ",\"hidden_act\":\"gelu\"}",
           VL_ERR_UNSUPPORTED, "hidden_act");
    expect("{\"model_type\":\"qwen2_5_vl\"," TEXT_3B ",\"vision_config\":{\"depth\":4}}",
           VL_ERR_MODEL, "do not fit depth 4");
    expect("{\"model_type\":\"qwen2_5_vl\"," TEXT_3B
           ",\"vision_config\":{\"fullatt_block_indexes\":[40]}}",
           VL_ERR_MODEL, "fullatt_block_indexes");
    expect("{\"model_type\":\"qwen2_5_vl\"," TEXT_3B ",\"num_hidden_layers\":1}", VL_ERR_MODEL,
           "duplicate");
    expect("{\"model_type\":\"qwen2_5_vl\"," TEXT_3B ",\"vision_config\":{\"out_hidden_size\":7}}",
           VL_ERR_MODEL, "out_hidden_size 7");
    expect("[]", VL_ERR_MODEL, "not a JSON object");
    expect("{", VL_ERR_MODEL, "invalid JSON");
}

static void test_preproc_and_gen(void) {
    struct vl_config c;
    struct vl_error err;
    T_CHECK(parse(&c, "{\"model_type\":\"qwen2_5_vl\"," TEXT_3B "}", &err) == VL_OK);
    struct vl_preproc_config p;
    const char *size_form = "{\"size\":{\"shortest_edge\":6272,\"longest_edge\":1003520},"
                            "\"image_mean\":[0.5,0.5,0.5]}";
    T_CHECK(vl__preproc_parse(&p, &c.vision, size_form, strlen(size_form), "pp", &err) == VL_OK);
    T_EQ_I64(p.min_pixels, 6272);
    T_EQ_I64(p.max_pixels, 1003520);
    T_NEAR(p.image_mean[1], 0.5, 0);
    T_NEAR(p.image_std[0], 0.26862954, 0);
    T_NEAR(p.rescale_factor, 1.0 / 255.0, 1e-15);
    const char *bad = "{\"patch_size\":16}";
    memset(&err, 0, sizeof err);
    T_EQ_I64(vl__preproc_parse(&p, &c.vision, bad, strlen(bad), "pp", &err), VL_ERR_MODEL);
    T_CHECK(strstr(err.msg, "disagree") != NULL);
    struct vl_gen_config g;
    const char *gen = "{\"eos_token_id\":151645,\"do_sample\":true,\"temperature\":0.1}";
    memset(&err, 0, sizeof err);
    T_CHECK(vl__gen_parse(&g, gen, strlen(gen), "gen", &err) == VL_OK);
    T_EQ_I64(g.n_eos, 1);
    T_EQ_I64(g.eos_token_ids[0], 151645);
    T_CHECK(g.do_sample);
    T_NEAR(g.temperature, 0.1, 0);
    T_EQ_I64(g.top_k, 50); /* present file: transformers' class default */
    T_NEAR(g.repetition_penalty, 1.0, 0);
    vl__gen_defaults(&g); /* absent file: published behaviour */
    T_NEAR(g.repetition_penalty, 1.05, 0);
    T_EQ_I64(g.n_eos, 2);
    const char *many = "{\"eos_token_id\":[1,2,3,4,5,6,7,8,9]}";
    memset(&err, 0, sizeof err);
    T_EQ_I64(vl__gen_parse(&g, many, strlen(many), "gen", &err), VL_ERR_MODEL);
}

static void test_fixture(void) {
    char path[1024];
    struct vl_config c;
    struct vl_error err = {0};
    t_path(path, sizeof path, "DP_FIXTURES", "qwen25vl-tiny/model");
    T_CHECK_MSG(vl__config_load_dir(&c, path, &err) == VL_OK, "%s", err.msg);
    T_EQ_I64(c.text.hidden_size, 64);
    T_EQ_I64(c.text.head_dim, 16);
    T_EQ_I64(c.text.mrope_section[0], 2);
    T_NEAR(c.text.rope_theta, 1000.0, 0);
    T_EQ_I64(c.vision.depth, 4);
    T_EQ_I64(c.vision.n_fullatt, 2);
    T_EQ_I64(c.vision.fullatt_block_indexes[1], 3);
    T_CHECK(!c.gen.do_sample);
    T_NEAR(c.gen.repetition_penalty, 1.0, 0);
    T_EQ_I64(c.gen.eos_token_ids[1], 151643);
    T_EQ_I64(c.preproc.min_pixels, 3136);
}

int main(int argc, char **argv) {
    t_args(argc, argv);
    T_RUN(test_flat_and_nested);
    T_RUN(test_refusals);
    T_RUN(test_preproc_and_gen);
    T_RUN(test_fixture);
    return t_done();
}
