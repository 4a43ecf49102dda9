/* Constrained decoding (extractors/ex_cons*.c) against the real Qwen2.5 vocabulary of the tiny
 * fixture (151,665 byte-level BPE tokens): hostile sampling (random logits, seeds 1..50) under
 * every built-in kie schema, the chart schema and a test schema with enums, integers, booleans,
 * nested arrays and optional fields must always give a valid instance of the answer contract,
 * checked by an independent validator (jansson + GRegex) — and the same sampling without the
 * mask must not; budgets down to the minimum still end in a valid instance; a teacher-forced
 * valid answer passes through unchanged; every unsupported keyword is a load error naming the
 * keyword and its path; pattern features likewise. */
#include "dp_buf.h"
#include "ex.h"
#include "ex_cons.h"
#include "sc.h"
#include "t.h"
#include "t_answer.h"
#include "vl_tools.h"

#include <glib.h>
#include <jansson.h>

/* seeds 1..SEEDS (argv[1] overrides: the quick variant under sanitizers) */
static int SEEDS = 50;

static const struct vl_tokenizer *g_tok;
static int32_t g_eos;
static double g_times[200000];
static int64_t g_nt;

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static const char *tok_bytes(void *user, int32_t id, size_t *len) {
    (void)user;
    if (vl_tokenizer_is_special(g_tok, id))
        return NULL;
    return vl_tokenizer_token_bytes(g_tok, id, len);
}

/* ---- hostile sampling ------------------------------------------------------------------------------ */

static uint64_t rng_next(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static double rng_unit(uint64_t *s) {
    return (double)(rng_next(s) >> 11) / 9007199254740992.0;
}

#define SPIKES 256

/* Samples at temperature 1 from the (masked) softmax of noise(): most logits are 0 (weight 1),
 * SPIKES random ones up to 8. */
static int32_t sample(const float *z, int64_t n, uint64_t *rng) {
    double sum = 0;
    for (int64_t i = 0; i < n; i++)
        sum += z[i] == 0.0f ? 1.0 : isinf(z[i]) ? 0.0 : exp((double)z[i]);
    double r = rng_unit(rng) * sum, acc = 0;
    for (int64_t i = 0; i < n; i++) {
        acc += z[i] == 0.0f ? 1.0 : isinf(z[i]) ? 0.0 : exp((double)z[i]);
        if (r < acc)
            return (int32_t)i;
    }
    return (int32_t)(n - 1);
}

/* The most hostile model: nearly uniform over the whole vocabulary, with random spikes. */
static void noise(float *z, int64_t n, int32_t n_tok, uint64_t *rng) {
    for (int64_t i = 0; i < n; i++)
        z[i] = i < n_tok ? 0.0f : -INFINITY;
    for (int k = 0; k < SPIKES; k++)
        z[rng_next(rng) % (uint64_t)n_tok] = (float)(rng_unit(rng) * 8.0);
}

/* One answer; returns true when it is valid. constrain false: the same sampling, no mask. */
static bool run_one(const struct ex_gram *g, const struct ex_vocab *v, json_t *sch, bool plain,
                    int64_t budget, uint64_t seed, bool constrain, int32_t n_tok, int64_t n_logits,
                    float *z, struct ex_cons_stats *st_out) {
    struct dp_err err = {0};
    struct ex_cons *c = NULL;
    if (ex_cons_new(&c, g, v, budget, &err) != DP_OK) {
        T_FAIL_AT("ex_cons_new: %s", err.msg);
        return false;
    }
    uint64_t rng = seed * 0x9E3779B97F4A7C15ULL + 1;
    ex_cons_keep_times(c, 4096);
    struct dp_buf text;
    dp_buf_init(&text, (size_t)1 << 24);
    int32_t forced[64];
    int64_t n = 0;
    bool ok = true;
    while (n < budget) {
        noise(z, n_logits, n_tok, &rng);
        int nf = constrain ? ex_cons_before(c, z, n_logits, forced, 64) : 0;
        if (nf < 0) {
            T_FAIL_AT("no token allowed at %lld (seed %llu)", (long long)n, (unsigned long long)seed);
            ok = false;
            break;
        }
        int32_t ids[64];
        int k = nf;
        if (nf > 0)
            memcpy(ids, forced, (size_t)nf * sizeof *ids);
        else
            ids[k++] = sample(z, n_logits, &rng);
        bool stop = false;
        for (int i = 0; i < k && !stop; i++) {
            if (constrain)
                ex_cons_accept(c, ids[i]);
            n++;
            if (ids[i] == g_eos) {
                stop = true;
                break;
            }
            size_t len;
            const char *b = ex_vocab_bytes(v, ids[i], &len);
            if (b)
                dp_buf_append(&text, b, len);
            stop = n >= budget;
        }
        if (stop)
            break;
    }
    if (constrain) {
        T_CHECK_MSG(!ex_cons_failed(c), "automaton failed (seed %llu)", (unsigned long long)seed);
        T_CHECK_MSG(ex_cons_complete(c), "answer incomplete (seed %llu)", (unsigned long long)seed);
        if (st_out) {
            int64_t nt = 0;
            const double *tt = ex_cons_times(c, &nt);
            for (int64_t i = 0; i < nt && g_nt < 200000; i++)
                g_times[g_nt++] = tt[i];
            struct ex_cons_stats s = ex_cons_stats_get(c);
            st_out->n_forced += s.n_forced;
            st_out->n_jumps += s.n_jumps;
            st_out->n_masks += s.n_masks;
            st_out->n_budget_cut += s.n_budget_cut;
        }
    }
    ok = ok && valid_answer(text.data ? text.data : "", text.len, sch, plain);
    if (constrain && !ok)
        fprintf(stderr, "invalid answer (seed %llu, budget %lld): %.*s\n",
                (unsigned long long)seed, (long long)budget, (int)text.len, text.data);
    dp_buf_free(&text);
    ex_cons_free(c);
    return ok;
}

/* ---- schemas ------------------------------------------------------------------------------------ */

static bool load(struct sc_schema **s, json_t **j, const char *name_or_text, bool text) {
    struct dp_err err = {0};
    enum dp_status st = text ? sc_schema_parse(s, name_or_text, strlen(name_or_text), "t.json", &err)
                             : sc_schema_load(s, name_or_text, &err);
    if (st != DP_OK) {
        T_FAIL_AT("schema %s: %s", text ? "t" : name_or_text, err.msg);
        return false;
    }
    json_error_t je;
    *j = json_loadb((*s)->source, (*s)->source_len, 0, &je);
    return *j != NULL;
}

static void hostile(const struct ex_vocab *v, const char *name, const char *text, float *z,
                    int32_t n_tok, int64_t n_logits) {
    struct sc_schema *s = NULL;
    json_t *j = NULL;
    if (!load(&s, &j, text ? text : name, text != NULL))
        return;
    struct dp_err err = {0};
    struct ex_gram *g = NULL;
    T_CHECK_MSG(ex_gram_compile(&g, s, &err) == DP_OK, "%s: %s", name, err.msg);
    if (g && ex_gram_bind(g, v, &err) == DP_OK) {
        bool plain = s->task == SC_TASK_CHART;
        int64_t min = ex_gram_min_tokens(g);
        int valid_on = 0, valid_off = 0;
        struct ex_cons_stats st = {0};
        for (uint64_t seed = 1; seed <= (uint64_t)SEEDS; seed++) {
            /* budgets from generous to the minimum */
            int64_t budget = seed % 5 == 0 ? min : seed % 5 == 1 ? min + 3 : 400 + (int64_t)seed;
            valid_on += run_one(g, v, j, plain, budget, seed, true, n_tok, n_logits, z, &st);
            valid_off += run_one(g, v, j, plain, budget, seed, false, n_tok, n_logits, z, NULL);
        }
        qsort(g_times, (size_t)g_nt, sizeof *g_times, cmp_d);
        printf("%s: hook time per call: median %.1f us, p99 %.1f us, max %.1f us (%lld calls)\n",
               name, g_nt ? 1e6 * g_times[g_nt / 2] : 0.0, g_nt ? 1e6 * g_times[g_nt * 99 / 100] : 0.0,
               g_nt ? 1e6 * g_times[g_nt - 1] : 0.0, (long long)g_nt);
        g_nt = 0;
        printf("%s: min answer %lld tokens; valid %d/%d constrained, %d/%d unconstrained; "
               "%lld forced ids in %lld jumps, %lld masks, %lld budget cuts\n",
               name, (long long)min, valid_on, SEEDS, valid_off, SEEDS, (long long)st.n_forced,
               (long long)st.n_jumps, (long long)st.n_masks, (long long)st.n_budget_cut);
        T_CHECK_MSG(valid_on == SEEDS, "%s: %d of %d constrained answers valid", name, valid_on,
                    SEEDS);
        T_CHECK_MSG(valid_off <= SEEDS / 10, "%s: %d unconstrained answers valid", name, valid_off);
        T_CHECK(st.n_jumps > 0 && st.n_forced > st.n_jumps); /* jump-forward did happen */
        /* a budget below the minimum is refused */
        struct ex_cons *c = NULL;
        struct dp_err e2 = {0};
        T_CHECK(ex_cons_new(&c, g, v, min - 1, &e2) == DP_ERR_USAGE);
        T_CHECK(strstr(e2.msg, "too small") != NULL);
    }
    ex_gram_free(g);
    json_decref(j);
    sc_schema_free(s);
}

/* ---- teacher forcing ------------------------------------------------------------------------------ */

/* The "model" always prefers the next token of the canonical tokenization of what remains of
 * answer; with the mask and jump-forward the result must be answer itself. */
static void teacher(const struct ex_vocab *v, const char *schema_text, const char *answer,
                    float *z, int64_t n_logits) {
    struct sc_schema *s = NULL;
    json_t *j = NULL;
    if (!load(&s, &j, schema_text, true))
        return;
    struct dp_err err = {0};
    struct ex_gram *g = NULL;
    struct ex_cons *c = NULL;
    T_CHECK(ex_gram_compile(&g, s, &err) == DP_OK);
    T_CHECK(g && ex_gram_bind(g, v, &err) == DP_OK);
    T_CHECK(valid_answer(answer, strlen(answer), j, false));
    T_CHECK(g && ex_cons_new(&c, g, v, 1000, &err) == DP_OK);
    size_t at = 0, alen = strlen(answer);
    int32_t forced[64], ids[4096];
    size_t offs[4097], n_ids = 0, base = 0; /* canonical tokens of answer[base..], their offsets */
    int guard = 0;
    while (c && !ex_cons_complete(c) && guard++ < 2000) {
        size_t k0 = 0;
        while (k0 < n_ids && offs[k0] < at)
            k0++;
        if (k0 >= n_ids || offs[k0] != at) { /* a forced stretch moved off the canonical split */
            struct vl_error ve = {0};
            vl_tokenizer_encode(g_tok, answer + at, alen - at, ids, 4096, &n_ids, &ve);
            base = at;
            offs[0] = base;
            for (size_t i = 0; i < n_ids; i++) {
                size_t l;
                ex_vocab_bytes(v, ids[i], &l);
                offs[i + 1] = offs[i] + l;
            }
            k0 = 0;
        }
        for (int64_t i = 0; i < n_logits; i++)
            z[i] = 0.0f;
        if (k0 < n_ids)
            z[ids[k0]] = 50.0f; /* greedy choice of the "model" */
        int nf = ex_cons_before(c, z, n_logits, forced, 64);
        T_CHECK(nf >= 0);
        T_CHECK_MSG(nf > 0 || k0 >= n_ids || !isinf(z[ids[k0]]),
                    "the valid answer's token %d at byte %zu was masked", ids[k0], at);
        if (nf < 0)
            break;
        int32_t pick[64];
        int k = nf;
        if (nf)
            memcpy(pick, forced, (size_t)nf * sizeof *pick);
        else {
            int32_t best = 0;
            for (int64_t i = 1; i < n_logits; i++)
                if (z[i] > z[best])
                    best = (int32_t)i;
            pick[k++] = best;
        }
        for (int i = 0; i < k; i++) {
            ex_cons_accept(c, pick[i]);
            size_t len;
            if (ex_vocab_bytes(v, pick[i], &len))
                at += len;
        }
    }
    size_t len;
    const char *out = c ? ex_cons_text(c, &len) : "";
    T_CHECK_MSG(c && len == alen && !memcmp(out, answer, alen), "teacher-forced answer changed: %.*s",
                (int)len, out);
    ex_cons_free(c);
    ex_gram_free(g);
    json_decref(j);
    sc_schema_free(s);
}

/* ---- fail closed ------------------------------------------------------------------------------------ */

static void unsupported(const char *kw, const char *json_value, const char *want) {
    char buf[2048];
    snprintf(buf, sizeof buf,
             "{\"x-task\": \"kie\", \"type\": \"object\", \"properties\": {\"a\": {\"type\": \"array\","
             " \"items\": {\"type\": \"object\", \"properties\": {\"b\": {\"type\": \"string\", "
             "\"%s\": %s}}}}}}", kw, json_value);
    struct sc_schema *s = NULL;
    struct dp_err err = {0};
    if (sc_schema_parse(&s, buf, strlen(buf), "u.json", &err) != DP_OK) {
        T_FAIL_AT("%s: schema itself refused: %s", kw, err.msg);
        return;
    }
    struct ex_gram *g = NULL;
    enum dp_status st = ex_gram_compile(&g, s, &err);
    T_CHECK_MSG(st == DP_ERR_SCHEMA, "%s: compiled (%d)", kw, (int)st);
    char want_kw[128];
    snprintf(want_kw, sizeof want_kw, "keyword '%s'", want ? want : kw);
    T_CHECK_MSG(strstr(err.msg, want_kw) != NULL, "%s: message lacks the keyword: %s", kw, err.msg);
    T_CHECK_MSG(strstr(err.msg, "/properties/a/items/properties/b") != NULL,
                "%s: message lacks the path: %s", kw, err.msg);
    ex_gram_free(g);
    sc_schema_free(s);
}

static void pattern_feature(const char *pattern, const char *feature) {
    char buf[1024];
    snprintf(buf, sizeof buf,
             "{\"type\": \"object\", \"properties\": {\"p\": {\"type\": \"string\", \"pattern\": \"%s\"}}}",
             pattern);
    struct sc_schema *s = NULL;
    struct dp_err err = {0};
    if (sc_schema_parse(&s, buf, strlen(buf), "p.json", &err) != DP_OK) {
        T_FAIL_AT("%s: schema refused: %s", pattern, err.msg);
        return;
    }
    struct ex_gram *g = NULL;
    T_CHECK_MSG(ex_gram_compile(&g, s, &err) == DP_ERR_SCHEMA, "pattern %s compiled", pattern);
    T_CHECK_MSG(strstr(err.msg, "keyword 'pattern' at /properties/p") && strstr(err.msg, feature),
                "pattern %s: %s", pattern, err.msg);
    ex_gram_free(g);
    sc_schema_free(s);
}

/* Hand-made probability sequences: sampled at high probability > forced > low probability;
 * the masked probability does not raise a value the model did not want; truncation lowers. */
static void confidence(void) {
    const float hi[] = {logf(0.95f), logf(0.9f), logf(0.97f)};
    const float lo[] = {logf(0.95f), logf(0.05f), logf(0.97f)};
    const float fo[] = {logf(0.95f), NAN, NAN};
    const float masked_one[] = {0.0f, 0.0f, 0.0f}; /* certain within the allowed set */
    double c_hi = ex_conf_value(hi, masked_one, 3, false);
    double c_lo = ex_conf_value(lo, masked_one, 3, false);
    double c_fo = ex_conf_value(fo, masked_one, 3, false);
    T_NEAR(c_hi, cbrt(0.95 * 0.9 * 0.97), 1e-6);
    T_NEAR(c_fo, cbrt(0.95 * EX_CONF_FORCED_P * EX_CONF_FORCED_P), 1e-6);
    T_CHECK(c_hi > c_fo && c_fo > c_lo);
    T_CHECK(c_lo > 0.0 && c_hi <= 1.0);
    T_NEAR(ex_conf_value(hi, masked_one, 3, true), c_hi * EX_CONF_TRUNCATED_FACTOR, 1e-9);
    T_CHECK(ex_conf_value(hi, masked_one, 0, false) == 0.0);
    const float all_forced[] = {NAN};
    T_NEAR(ex_conf_value(all_forced, masked_one, 1, false), EX_CONF_FORCED_P, 1e-9);
}

/* Confidences reach the parsed fields through their provenance spans (top level and list items). */
static void conf_to_fields(void) {
    struct sc_schema *s = NULL;
    struct dp_err err = {0};
    if (sc_schema_load(&s, "receipt", &err) != DP_OK) {
        T_FAIL_AT("receipt: %s", err.msg);
        return;
    }
    const char *a = "```json\n{\"merchant_name\": {\"value\": \"ACME\", \"bbox_2d\": [1, 2, 3, 4]}, "
                    "\"total\": {\"value\": 12.5, \"bbox_2d\": [5, 6, 7, 8]}, \"items\": "
                    "[{\"description\": {\"value\": \"Tea\", \"bbox_2d\": [1, 1, 2, 2]}}]}\n```";
    struct ex_geom geom = {.model_w = 100, .model_h = 100, .page_w = 100, .page_h = 100};
    struct ex_page *pg = NULL;
    T_CHECK(ex_page_parse(&pg, s, a, strlen(a), &geom, 1, false, &err) == DP_OK);
    const char *acme = strstr(a, "\"ACME\""), *num = strstr(a, "12.5"), *tea = strstr(a, "\"Tea\"");
    struct ex_value_conf v[] = {
        {(size_t)(acme - a), (size_t)(acme - a) + 6, 0.8, false},
        {(size_t)(num - a), (size_t)(num - a) + 4, 0.3, true},
        {(size_t)(tea - a), (size_t)(tea - a) + 5, 0.6, false},
    };
    if (pg)
        ex_page_apply_conf(pg, v, 3);
    const struct ex_field *m = NULL, *t = NULL, *d = NULL;
    for (size_t i = 0; pg && i < pg->n_fields; i++) {
        if (!strcmp(pg->fields[i].name, "merchant_name"))
            m = &pg->fields[i];
        if (!strcmp(pg->fields[i].name, "total"))
            t = &pg->fields[i];
        if (!strcmp(pg->fields[i].name, "items") && pg->fields[i].n_children &&
            pg->fields[i].children[0].n_children)
            d = &pg->fields[i].children[0].children[0];
    }
    T_CHECK(m && m->has_conf && m->conf == 0.8 && !m->value_truncated);
    T_CHECK(t && t->has_conf && t->conf == 0.3 && t->value_truncated);
    T_CHECK_MSG(d && d->has_conf && d->conf == 0.6, "list item field has no confidence");
    ex_page_free(pg);
    sc_schema_free(s);
}

/* Every unsupported keyword is a load error naming the keyword and its path. */
static void unsupported_keywords(void) {
    static const char *const kws[][2] = {
        {"oneOf", "[{\"type\": \"string\"}]"}, {"anyOf", "[{\"type\": \"string\"}]"},
        {"allOf", "[{\"type\": \"string\"}]"}, {"not", "{\"type\": \"number\"}"},
        {"$ref", "\"#/$defs/x\""},           {"$defs", "{}"},
        {"const", "\"x\""},                  {"minLength", "2"},
        {"maxLength", "9"},                  {"if", "{}"},
        {"minimum", "0"},                    {"maximum", "9"},
        {"exclusiveMinimum", "0"},           {"multipleOf", "2"},
        {"minItems", "1"},                   {"maxItems", "3"},
        {"uniqueItems", "true"},             {"contains", "{}"},
        {"prefixItems", "[]"},               {"patternProperties", "{}"},
        {"propertyNames", "{}"},             {"minProperties", "1"},
        {"dependentRequired", "{}"},         {"unevaluatedProperties", "false"},
        {"contentEncoding", "\"base64\""},
    };
    for (size_t i = 0; i < sizeof kws / sizeof *kws; i++)
        unsupported(kws[i][0], kws[i][1], NULL);
}

/* Pattern features the automaton cannot honour are load errors too. */
static void pattern_features(void) {
    pattern_feature("(a)\\\\1", "backreference");
    pattern_feature("a(?=b)", "lookaround");
    pattern_feature("\\\\bword", "word boundary");
    pattern_feature("a^b", "anchor");
    pattern_feature("\\\\p{L}+", "Unicode property");
    pattern_feature("[[:alpha:]]", "POSIX class");
}

int main(int argc, char **argv) {
    argc = t_args(argc, argv);
    T_RUN(confidence);
    T_RUN(conf_to_fields);
    if (argc > 1)
        SEEDS = atoi(argv[1]);
    const char *fx = getenv("DP_FIXTURES");
    char path[1024];
    snprintf(path, sizeof path, "%s/qwen25vl-tiny/model/tokenizer.json", fx ? fx : ".");
    struct vl_tokenizer *tok = NULL;
    struct vl_error ve = {0};
    if (vl_tokenizer_load(&tok, path, &ve) != VL_OK) {
        T_FAIL_AT("tokenizer %s: %s", path, ve.msg);
        return t_done();
    }
    g_tok = tok;
    g_eos = vl_tokenizer_token_id(tok, "<|im_end|>");
    int32_t n_tok = vl_tokenizer_n_ids(tok);
    int64_t n_logits = 151936; /* Qwen2.5-VL's vocab_size: the rows past the tokenizer are padding */
    struct ex_vocab_src src = {.n_logits = (int32_t)n_logits, .n_tokens = n_tok,
                               .bytes = tok_bytes, .eos_id = g_eos};
    struct ex_vocab *v = NULL;
    struct dp_err err = {0};
    T_CHECK(n_tok == 151665);
    T_CHECK(ex_vocab_new(&v, &src, &err) == DP_OK);
    float *z = calloc((size_t)n_logits, sizeof *z);
    if (v && z) {
        T_RUN_AS(hostile_invoice, hostile(v, "invoice", NULL, z, n_tok, n_logits));
        T_RUN_AS(hostile_receipt, hostile(v, "receipt", NULL, z, n_tok, n_logits));
        T_RUN_AS(hostile_form, hostile(v, "form", NULL, z, n_tok, n_logits));
        T_RUN_AS(hostile_chart, hostile(v, "chart", NULL, z, n_tok, n_logits));
        T_RUN_AS(hostile_test_schema,
                 hostile(v, "test-schema", T_ANSWER_TEST_SCHEMA, z, n_tok, n_logits));
        T_RUN_AS(teacher_forced,
          teacher(v, T_ANSWER_TEST_SCHEMA,
                  "```json\n{\"kind\": {\"value\": \"cr\", \"bbox_2d\": [1, 2, 30, 40]}, "
                  "\"level\": {\"value\": 12, \"bbox_2d\": [0, 0, 5, 5]}, "
                  "\"count\": {\"value\": -7, \"bbox_2d\": [1, 1, 2, 2]}, "
                  "\"paid\": {\"value\": false, \"bbox_2d\": [3, 4, 5, 6]}, "
                  "\"ratio\": {\"value\": 0.25, \"bbox_2d\": [7, 8, 9, 10]}, "
                  "\"code\": {\"value\": \"AB-123\", \"bbox_2d\": [11, 12, 13, 14]}, "
                  "\"tags\": [{\"value\": \"Straße \\\"x\\\" 東京\", \"bbox_2d\": [1, 2, 3, 4]}], "
                  "\"party\": null, "
                  "\"groups\": [{\"label\": null, \"rows\": [{\"qty\": {\"value\": 3, \"bbox_2d\": "
                  "[5, 6, 7, 8]}, \"ok\": {\"value\": true, \"bbox_2d\": [9, 9, 9, 9]}}]}, "
                  "{\"label\": {\"value\": \"g2\", \"bbox_2d\": [1, 1, 1, 1]}, \"rows\": []}]}\n```",
                  z, n_logits));
    }
    T_RUN(unsupported_keywords);
    T_RUN(pattern_features);
    free(z);
    ex_vocab_free(v);
    vl_tokenizer_free(tok);
    return t_done();
}
