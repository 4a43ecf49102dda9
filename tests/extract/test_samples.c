/* Every real Qwen2.5-VL answer in samples/qwen_outputs.jsonl parses to what
 * tests/extract/expected/qwen_outputs.json (written by hand) says: blocks with their boxes mapped
 * to page pixels, the truncated answer's complete part plus the flag, every text-spotting line,
 * every key; and the JSON and XML written for each validate (XML against the shipped XSD). */
#include "dp_alloc.h"
#include "dp_buf.h"
#include "dp_fs.h"
#include "dp_limits.h"
#include "dp_out.h"
#include "ex.h"
#include "sc.h"
#include "t.h"

#include <jansson.h>
#include <libxml/parser.h>
#include <libxml/xmlschemas.h>

#define BOX_TOL 0.006

static char src_dir[512];

static const char *src_path(char *buf, size_t n, const char *rel) {
    snprintf(buf, n, "%s/%s", src_dir, rel);
    return buf;
}

static xmlSchemaPtr load_xsd(void) {
    char p[1024];
    xmlSchemaParserCtxtPtr pc = xmlSchemaNewParserCtxt(src_path(p, sizeof p, "schemas/docproc-result.xsd"));
    xmlSchemaPtr s = pc ? xmlSchemaParse(pc) : NULL;
    xmlSchemaFreeParserCtxt(pc);
    return s;
}

static int xsd_valid(xmlSchemaPtr xsd, const char *xml, size_t len) {
    xmlDocPtr d = xmlReadMemory(xml, (int)len, "result.xml", NULL, XML_PARSE_NONET);
    if (!d)
        return -1;
    xmlSchemaValidCtxtPtr vc = xmlSchemaNewValidCtxt(xsd);
    int rc = xmlSchemaValidateDoc(vc, d);
    xmlSchemaFreeValidCtxt(vc);
    xmlFreeDoc(d);
    return rc;
}

static int check_box(json_t *want, const struct ex_box *got) {
    double g[4] = {got->x1, got->y1, got->x2, got->y2};
    for (int i = 0; i < 4; i++)
        if (fabs(json_number_value(json_array_get(want, (size_t)i)) - g[i]) > BOX_TOL)
            return 0;
    return 1;
}

static const struct ex_field *find_field(const struct ex_doc *d, const char *name) {
    for (size_t i = 0; i < d->n_fields; i++)
        if (!strcmp(d->fields[i].name, name))
            return &d->fields[i];
    return NULL;
}

static int has_code(const struct ex_warning *w, size_t n, const char *code) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(ex_warn_code_name(w[i].code), code))
            return 1;
    return 0;
}

static int listed(json_t *arr, const char *code) {
    for (size_t i = 0; i < json_array_size(arr); i++)
        if (!strcmp(json_string_value(json_array_get(arr, i)), code))
            return 1;
    return 0;
}

#define SAMPLE_CASE_NAME_BYTES 128

static void check_case(json_t *c, json_t *lines, xmlSchemaPtr xsd) {
    int line = (int)json_integer_value(json_object_get(c, "line"));
    const char *schema_name = json_string_value(json_object_get(c, "schema"));
    char sp[1024];
    if (schema_name[0] == '@') {
        char rel[256];
        snprintf(rel, sizeof rel, "tests/extract/schemas/%s", schema_name + 1);
        schema_name = src_path(sp, sizeof sp, rel);
    }
    struct dp_err err = {0};
    struct sc_schema *s = NULL;
    T_CHECK_MSG(sc_schema_load(&s, schema_name, &err) == DP_OK, "schema %s: %s", schema_name, err.msg);
    if (!s)
        return;
    json_t *rec = json_array_get(lines, (size_t)line);
    const char *raw = json_string_value(json_object_get(rec, "output"));
    struct ex_geom g = {0};
    json_t *ms = json_object_get(c, "model_size"), *ps = json_object_get(c, "page_size");
    if (ms) {
        g.model_w = (int)json_integer_value(json_array_get(ms, 0));
        g.model_h = (int)json_integer_value(json_array_get(ms, 1));
        g.page_w = (int)json_integer_value(json_array_get(ps, 0));
        g.page_h = (int)json_integer_value(json_array_get(ps, 1));
    }
    struct ex_doc *doc = NULL;
    struct ex_page *pg = NULL;
    T_CHECK(ex_doc_new(&doc, "qwen_outputs.jsonl", &err) == DP_OK);
    T_CHECK(ex_page_parse(&pg, s, raw, strlen(raw), ms ? &g : NULL, 1, false, &err) == DP_OK);
    if (!pg) {
        ex_doc_free(doc);
        sc_schema_free(s);
        return;
    }
    T_CHECK(ex_doc_add_page(doc, pg, &err) == DP_OK);
    T_CHECK(ex_doc_finish(doc, s, &err) == DP_OK);
    T_EQ_STR(ex_source_kind_name(pg->source), json_string_value(json_object_get(c, "answer")));
    T_CHECK_MSG(pg->truncated == json_is_true(json_object_get(c, "truncated")), "line %d truncated", line);
    T_CHECK_MSG(doc->truncated == pg->truncated, "line %d doc truncated", line);
    T_EQ_I64(pg->n_blocks, json_integer_value(json_object_get(c, "n_blocks")));
    json_t *blocks = json_object_get(c, "blocks");
    for (size_t i = 0; i < json_array_size(blocks) && i < pg->n_blocks; i++) {
        json_t *b = json_array_get(blocks, i);
        const struct ex_block *got = &pg->blocks[i];
        T_EQ_STR(ex_block_kind_name(got->kind), json_string_value(json_object_get(b, "kind")));
        json_t *tag = json_object_get(b, "tag");
        if (tag)
            T_EQ_STR(got->tag, json_string_value(tag));
        json_t *t = json_object_get(b, "text"), *pre = json_object_get(b, "text_prefix"),
               *suf = json_object_get(b, "text_suffix");
        if (t)
            T_EQ_STR(got->text, json_string_value(t));
        if (pre)
            T_CHECK_MSG(!strncmp(got->text, json_string_value(pre), strlen(json_string_value(pre))),
                        "line %d block %zu starts '%.60s'", line, i, got->text);
        if (suf) {
            size_t gl = strlen(got->text), sl = strlen(json_string_value(suf));
            T_CHECK_MSG(gl >= sl && !strcmp(got->text + gl - sl, json_string_value(suf)),
                        "line %d block %zu ends '%s'", line, i, gl > 60 ? got->text + gl - 60 : got->text);
        }
        json_t *mb = json_object_get(b, "model"), *pb = json_object_get(b, "page_px");
        if (mb) {
            T_CHECK_MSG(got->prov.has_box && check_box(mb, &got->prov.model), "line %d block %zu model box", line, i);
            T_CHECK_MSG(got->prov.has_box && check_box(pb, &got->prov.page_px),
                        "line %d block %zu page box [%g %g %g %g]", line, i, got->prov.page_px.x1,
                        got->prov.page_px.y1, got->prov.page_px.x2, got->prov.page_px.y2);
        }
        T_CHECK_MSG(got->prov.page == 1, "provenance page");
    }
    json_t *fields = json_object_get(c, "fields");
    for (size_t i = 0; i < json_array_size(fields); i++) {
        json_t *f = json_array_get(fields, i);
        const char *name = json_string_value(json_object_get(f, "name"));
        const struct ex_field *got = find_field(doc, name);
        T_CHECK_MSG(got != NULL, "line %d: field %s missing", line, name);
        if (!got)
            continue;
        T_EQ_STR(ex_vtype_name(got->type), json_string_value(json_object_get(f, "type")));
        T_EQ_STR(got->value, json_string_value(json_object_get(f, "value")));
        json_t *key = json_object_get(f, "key"), *cur = json_object_get(f, "currency");
        if (key)
            T_EQ_STR(got->key, json_string_value(key));
        if (cur)
            T_EQ_STR(got->currency, json_string_value(cur));
        T_CHECK_MSG(got->prov.span_len > 0, "field %s has a raw span", name);
    }
    json_t *nf = json_object_get(c, "n_fields");
    if (nf)
        T_EQ_I64(doc->n_fields, json_integer_value(nf));
    if (fields && !nf)
        T_EQ_I64(doc->n_fields, json_array_size(fields));
    json_t *ws = json_object_get(c, "warnings");
    for (size_t i = 0; i < json_array_size(ws); i++)
        T_CHECK_MSG(has_code(pg->warnings, pg->n_warnings, json_string_value(json_array_get(ws, i))),
                    "line %d: warning %s expected", line, json_string_value(json_array_get(ws, i)));
    for (size_t i = 0; i < pg->n_warnings; i++)
        T_CHECK_MSG(listed(ws, ex_warn_code_name(pg->warnings[i].code)), "line %d: unexpected warning %s: %s",
                    line, ex_warn_code_name(pg->warnings[i].code), pg->warnings[i].msg);
    json_t *dws = json_object_get(c, "doc_warnings");
    for (size_t i = 0; i < doc->n_warnings; i++)
        T_CHECK_MSG(listed(dws, ex_warn_code_name(doc->warnings[i].code)), "line %d: unexpected doc warning %s",
                    line, doc->warnings[i].msg);
    for (size_t i = 0; i < json_array_size(dws); i++)
        T_CHECK(has_code(doc->warnings, doc->n_warnings, json_string_value(json_array_get(dws, i))));
    /* Both writers: JSON parses back, XML validates against the XSD. */
    struct dp_buf b;
    dp_buf_init(&b, DP_MAX_TEXT_BYTES);
    T_CHECK(dp_out_json(doc, &b, &err) == DP_OK);
    json_error_t je;
    json_t *back = json_loadb(b.data, b.len, 0, &je);
    T_CHECK_MSG(back != NULL, "line %d: result JSON does not parse: %s", line, je.text);
    T_EQ_I64(json_array_size(json_object_get(json_array_get(json_object_get(back, "pages"), 0), "blocks")),
             pg->n_blocks);
    json_decref(back);
    dp_buf_reset(&b);
    T_CHECK(dp_out_xml(doc, &b, &err) == DP_OK);
    T_CHECK_MSG(xsd_valid(xsd, b.data, b.len) == 0, "line %d: XML does not validate", line);
    dp_buf_free(&b);
    ex_doc_free(doc);
    sc_schema_free(s);
}

int main(int argc, char **argv) {
    t_args(argc, argv); /* --list, --case NAME: one sample answer at a time ("line3-receipt") */
    const char *root = getenv("DP_SOURCE_DIR");
    snprintf(src_dir, sizeof src_dir, "%s", root ? root : ".");
    xmlInitParser();
    char p[1024];
    char *data = NULL;
    size_t len = 0;
    struct dp_err err = {0};
    T_CHECK(dp_file_read(src_path(p, sizeof p, "samples/qwen_outputs.jsonl"), DP_MAX_FILE_BYTES, &data, &len, &err) == DP_OK);
    json_t *lines = json_array();
    for (char *s = data, *nl; s && *s; s = nl ? nl + 1 : NULL) {
        nl = strchr(s, '\n');
        size_t n = nl ? (size_t)(nl - s) : strlen(s);
        json_error_t je;
        json_t *rec = json_loadb(s, n, 0, &je);
        if (rec)
            json_array_append_new(lines, rec);
        if (!nl)
            break;
    }
    dp_free(data);
    T_EQ_I64(json_array_size(lines), 8);
    json_error_t je;
    json_t *exp = json_load_file(src_path(p, sizeof p, "tests/extract/expected/qwen_outputs.json"), 0, &je);
    T_CHECK_MSG(exp != NULL, "fixture: %s line %d", je.text, je.line);
    xmlSchemaPtr xsd = load_xsd();
    T_CHECK(xsd != NULL);
    json_t *cases = json_object_get(exp, "cases");
    int covered[8] = {0};
    for (size_t i = 0; xsd && i < json_array_size(cases); i++) {
        json_t *c = json_array_get(cases, i);
        int line = (int)json_integer_value(json_object_get(c, "line"));
        if (line >= 0 && line < 8)
            covered[line] = 1;
        const char *schema = json_string_value(json_object_get(c, "schema"));
        const char *base = schema ? strrchr(schema, '/') : NULL;
        char name[SAMPLE_CASE_NAME_BYTES];
        snprintf(name, sizeof name, "line%d-%s", line,
                 base ? base + 1 : schema ? schema + (schema[0] == '@') : "?");
        if (t_case(name))
            check_case(c, lines, xsd);
    }
    for (int i = 0; i < 8 && !t_n_selected && !t_listing; i++) /* the whole run: every line */
        T_CHECK_MSG(covered[i], "line %d of qwen_outputs.jsonl has no expected result", i);
    xmlSchemaFree(xsd);
    json_decref(exp);
    json_decref(lines);
    return t_done();
}
