/* Writers and bundles: zip bundles reopen with libzip and hold exactly the JSON, XML, CSVs and
 * byte-exact raw answers; entry names are sanitised; existing outputs are refused without
 * overwrite; raw answers read back (zip and directory) re-parse to the same result; every XML
 * validates against the XSD; name sanitising and format lists. */
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
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>

static const char HTML[] =
    "```html\n<html><body>\n<h1 data-bbox=\"10 10 200 40\">Title &amp; more</h1>\n"
    "<table data-bbox=\"10 50 400 300\"><tr><th>a</th><th>b</th></tr>"
    "<tr><td rowspan=\"2\">x</td><td>1</td></tr><tr><td>2</td></tr></table>\n</body></html>\n```";
static const char KIE[] = "Here:\n```json\n{\"invoice_id\": \"7\", \"invoice_total\": \"\xe2\x82\xac 5,00\","
                          " \"bad\xff\": \"\x01\"}\n```";

static xmlSchemaPtr xsd;

static struct ex_doc *make_doc(const char *src, struct sc_schema *s) {
    struct dp_err err = {0};
    struct ex_doc *d = NULL;
    T_CHECK(ex_doc_new(&d, src, &err) == DP_OK);
    struct ex_stamp st = {.docproc_version = "test", .model_id = "Qwen/Qwen2.5-VL-7B-Instruct",
                          .model_hash = "abc", .schema_name = s->name, .schema_version = s->version,
                          .schema_hash = s->hash, .prompt = s->prompt, .dpi = 150, .seed = UINT64_MAX,
                          .max_new_tokens = 1024};
    T_CHECK(ex_doc_set_stamp(d, &st, &err) == DP_OK);
    T_CHECK(ex_doc_set_source_hash(d, "0123", &err) == DP_OK);
    const char *pages[2] = {HTML, KIE};
    struct ex_geom g = {.model_w = 1008, .model_h = 1540, .page_w = 1014, .page_h = 1532,
                        .pdf_w_pt = 612, .pdf_h_pt = 792};
    for (int i = 0; i < 2; i++) {
        struct ex_page *p = NULL;
        T_CHECK(ex_page_parse(&p, s, pages[i], strlen(pages[i]), &g, i + 1, i == 1, &err) == DP_OK);
        T_CHECK(ex_doc_add_page(d, p, &err) == DP_OK);
    }
    T_CHECK(ex_doc_finish(d, s, &err) == DP_OK);
    return d;
}

static char *zip_entry(zip_t *za, const char *name, size_t *len) {
    zip_stat_t st;
    if (zip_stat(za, name, 0, &st) < 0)
        return NULL;
    char *b = malloc(st.size + 1);
    zip_file_t *f = zip_fopen(za, name, 0);
    zip_int64_t n = f ? zip_fread(f, b, st.size) : -1;
    if (f)
        zip_fclose(f);
    if (n < 0) {
        free(b);
        return NULL;
    }
    b[n] = '\0';
    *len = (size_t)n;
    return b;
}

static int valid_xml(const char *x, size_t n) {
    xmlDocPtr d = xmlReadMemory(x, (int)n, "r.xml", NULL, XML_PARSE_NONET);
    if (!d)
        return 0;
    xmlSchemaValidCtxtPtr vc = xmlSchemaNewValidCtxt(xsd);
    int rc = xmlSchemaValidateDoc(vc, d);
    xmlSchemaFreeValidCtxt(vc);
    xmlFreeDoc(d);
    return rc == 0;
}

static void check_raw(const struct dp_raw_set *rs, const struct ex_doc *d, const char *stem) {
    T_EQ_I64(rs->n_docs, 1);
    if (rs->n_docs != 1)
        return;
    T_EQ_STR(rs->docs[0].stem, stem);
    T_EQ_STR(rs->docs[0].source, d->source);
    T_EQ_STR(rs->docs[0].schema_name, "invoice");
    T_EQ_I64(rs->docs[0].n_pages, 2);
    for (size_t i = 0; i < rs->docs[0].n_pages && i < 2; i++) {
        const struct dp_raw_page *p = &rs->docs[0].pages[i];
        T_CHECK(p->len == d->pages[i]->raw_len && !memcmp(p->text, d->pages[i]->raw, p->len));
        T_CHECK(p->geom.model_w == 1008 && p->geom.page_h == 1532 && p->geom.pdf_w_pt == 612);
        T_CHECK(p->truncated == (i == 1));
        T_EQ_I64(p->number, (int64_t)i + 1);
    }
}

/* Re-parsing the raw answers gives the same JSON. */
static void reparse_same(const struct dp_raw_doc *rd, struct sc_schema *s, const struct ex_doc *orig) {
    struct dp_err err = {0};
    struct ex_doc *d = NULL;
    T_CHECK(ex_doc_new(&d, rd->source, &err) == DP_OK);
    T_CHECK(ex_doc_set_stamp(d, &orig->stamp, &err) == DP_OK);
    T_CHECK(ex_doc_set_source_hash(d, orig->source_sha256, &err) == DP_OK);
    for (size_t i = 0; i < rd->n_pages; i++) {
        struct ex_page *p = NULL;
        T_CHECK(ex_page_parse(&p, s, rd->pages[i].text, rd->pages[i].len, &rd->pages[i].geom,
                              rd->pages[i].number, rd->pages[i].truncated, &err) == DP_OK);
        T_CHECK(ex_doc_add_page(d, p, &err) == DP_OK);
    }
    T_CHECK(ex_doc_finish(d, s, &err) == DP_OK);
    struct dp_buf a, b;
    dp_buf_init(&a, DP_MAX_TEXT_BYTES);
    dp_buf_init(&b, DP_MAX_TEXT_BYTES);
    dp_out_json(orig, &a, &err);
    dp_out_json(d, &b, &err);
    T_CHECK(a.len == b.len && !memcmp(a.data, b.data, a.len));
    dp_buf_free(&a);
    dp_buf_free(&b);
    ex_doc_free(d);
}

/* What the cases share: the invoice schema, a two-page document, the temporary directory with
 * the zip (g_zpath) and directory (g_dpath) bundles. */
static struct sc_schema *g_schema;
static struct ex_doc *g_doc;
static char *g_dir;
static char g_zpath[512], g_dpath[512];

static void zip_bundle(void) {
    struct dp_err err = {0};
    /* zip bundle */
    struct dp_bundle *b = NULL;
    T_CHECK(dp_bundle_open(&b, g_zpath, false, &err) == DP_OK);
    T_CHECK(dp_bundle_add_doc(b, g_doc, "../evil/doc", DP_OUT_ALL, &err) == DP_OK);
    T_CHECK(dp_bundle_add_doc(b, g_doc, "second", DP_OUT_JSON, &err) == DP_OK);
    T_CHECK(dp_bundle_add_doc(b, g_doc, "second", DP_OUT_JSON, &err) == DP_OK);
    T_CHECK(dp_bundle_add_file(b, "../../manifest.json", "{}", 2, &err) == DP_OK);
    T_CHECK(access(g_zpath, F_OK) != 0); /* nothing visible before commit */
    T_CHECK(dp_bundle_commit(b, &err) == DP_OK);
    int ze = 0;
    zip_t *za = zip_open(g_zpath, ZIP_RDONLY, &ze);
    T_CHECK(za != NULL);
    const char *want[] = {"_./evil/doc/result.json", "_./evil/doc/result.xml",
                          "_./evil/doc/tables/p0001-t01.csv", "_./evil/doc/raw/page-0001.txt",
                          "_./evil/doc/raw/page-0002.txt", "_./evil/doc/raw/pages.json",
                          "second/result.json", "second-2/result.json", "_./_./manifest.json"};
    T_EQ_I64(zip_get_num_entries(za, 0), (int64_t)(sizeof want / sizeof *want));
    for (zip_int64_t i = 0; za && i < zip_get_num_entries(za, 0); i++) {
        const char *n = zip_get_name(za, (zip_uint64_t)i, 0);
        T_CHECK_MSG(n[0] != '/' && !strstr(n, "/../") && strncmp(n, "../", 3), "unsafe entry %s", n);
    }
    for (size_t i = 0; za && i < sizeof want / sizeof *want; i++) {
        size_t n = 0;
        char *e = zip_entry(za, want[i], &n);
        T_CHECK_MSG(e != NULL, "entry %s missing", want[i]);
        if (e && strstr(want[i], "result.xml"))
            T_CHECK(valid_xml(e, n));
        if (e && strstr(want[i], "result.json")) {
            json_error_t je;
            json_t *j = json_loadb(e, n, 0, &je);
            T_CHECK_MSG(j != NULL, "%s: %s", want[i], je.text);
            T_CHECK(json_is_true(json_object_get(j, "truncated")));
            T_EQ_I64(json_integer_value(json_object_get(json_object_get(json_object_get(j, "stamp"), "render"), "dpi")), 150);
            json_decref(j);
        }
        if (e && strstr(want[i], "page-0002.txt"))
            T_CHECK(n == strlen(KIE) && !memcmp(e, KIE, n));
        if (e && strstr(want[i], ".csv"))
            T_EQ_STR(e, "a,b\r\nx,1\r\nx,2\r\n");
        free(e);
    }
    zip_discard(za);

    struct dp_raw_set *rs = NULL;
    T_CHECK(dp_raw_read(&rs, g_zpath, &err) == DP_OK);
    if (rs) {
        check_raw(rs, g_doc, "_./evil/doc");
        reparse_same(&rs->docs[0], g_schema, g_doc);
    }
    dp_raw_set_free(rs);
}

static void zip_tmp_names(void) {
    /* libzip's temporary names, as a killed commit leaves them */
    T_EQ_I64(dp_bundle_zip_tmp_len("doc.zip.Ab12Cd"), 7);
    T_EQ_I64(dp_bundle_zip_tmp_len("doc.ZIP.Ab12Cd"), 7);
    T_EQ_I64(dp_bundle_zip_tmp_len("doc.zip"), 0);
    T_EQ_I64(dp_bundle_zip_tmp_len("doc.zip.Ab12C"), 0);
    T_EQ_I64(dp_bundle_zip_tmp_len("doc.json.Ab12Cd"), 0);
    T_EQ_I64(dp_bundle_zip_tmp_len(".zip.Ab12Cd"), 0);
}

static void existing_output(void) {
    struct dp_err err = {0};
    struct dp_bundle *b = NULL;
    struct dp_raw_set *rs = NULL;
    if (access(g_zpath, F_OK) != 0) /* run alone: the bundle zip_bundle writes */
        zip_bundle();
    /* existing output: refused, then overwritten with overwrite */
    struct dp_err e2 = {0};
    T_CHECK(dp_bundle_open(&b, g_zpath, false, &e2) == DP_ERR_IO && strstr(e2.msg, "exists"));
    T_CHECK(dp_bundle_open(&b, g_zpath, true, &err) == DP_OK);
    T_CHECK(dp_bundle_add_doc(b, g_doc, "again", DP_OUT_RAW, &err) == DP_OK);
    T_CHECK(dp_bundle_commit(b, &err) == DP_OK);
    T_CHECK(dp_raw_read(&rs, g_zpath, &err) == DP_OK && rs->n_docs == 1 && !strcmp(rs->docs[0].stem, "again"));
    dp_raw_set_free(rs);
}

static void aborted_zip(void) {
    struct dp_err err = {0};
    struct dp_bundle *b = NULL;
    /* aborted zip leaves nothing */
    char apath[600];
    snprintf(apath, sizeof apath, "%s/aborted.zip", g_dir);
    T_CHECK(dp_bundle_open(&b, apath, false, &err) == DP_OK);
    T_CHECK(dp_bundle_add_doc(b, g_doc, "x", DP_OUT_ALL, &err) == DP_OK);
    dp_bundle_abort(b);
    T_CHECK(access(apath, F_OK) != 0);
}

static void directory_bundle(void) {
    struct dp_err err = {0};
    struct dp_bundle *b = NULL;
    struct dp_raw_set *rs = NULL;
    /* directory bundle */
    T_CHECK(dp_bundle_open(&b, g_dpath, false, &err) == DP_OK);
    T_CHECK(dp_bundle_add_doc(b, g_doc, "doc", DP_OUT_ALL, &err) == DP_OK);
    T_CHECK(dp_bundle_commit(b, &err) == DP_OK);
    char f[700];
    snprintf(f, sizeof f, "%s/doc/result.xml", g_dpath);
    char *x = NULL;
    size_t xl = 0;
    T_CHECK(dp_file_read(f, DP_MAX_FILE_BYTES, &x, &xl, &err) == DP_OK && valid_xml(x, xl));
    dp_free(x);
    T_CHECK(dp_raw_read(&rs, g_dpath, &err) == DP_OK);
    if (rs)
        check_raw(rs, g_doc, "doc");
    dp_raw_set_free(rs);
    snprintf(f, sizeof f, "%s/doc", g_dpath);
    T_CHECK(dp_raw_read(&rs, f, &err) == DP_OK); /* one document's folder */
    if (rs)
        check_raw(rs, g_doc, "doc");
    dp_raw_set_free(rs);
    struct dp_err e3 = {0};
    T_CHECK(dp_bundle_open(&b, g_dpath, false, &err) == DP_OK);
    T_CHECK(dp_bundle_add_doc(b, g_doc, "doc", DP_OUT_JSON, &e3) == DP_ERR_IO); /* no --force */
    dp_bundle_abort(b);
    struct dp_err e4 = {0};
    /* a bundle folder keeps the input tree: documents are found below the top level too */
    T_CHECK(dp_raw_read(&rs, g_dir, &e4) == DP_OK && rs->n_docs == 1 &&
            !strcmp(rs->docs[0].stem, "outdir/doc"));
    dp_raw_set_free(rs);
    char nodocs[600];
    snprintf(nodocs, sizeof nodocs, "%s/nodocs", g_dir);
    T_CHECK(mkdir(nodocs, 0755) == 0);
    T_CHECK(dp_raw_read(&rs, nodocs, &e4) == DP_ERR_FORMAT); /* no document anywhere */
}

static void names_and_formats(void) {
    /* sanitising and format lists */
    const char *names[][2] = {{"..", "_."}, {"a/b\\c", "a_b_c"}, {".hidden", "_hidden"}, {"", "_"},
                              {"\xe5\x8f\x91\xe7\xa5\xa8 1.pdf", "\xe5\x8f\x91\xe7\xa5\xa8_1.pdf"},
                              {"x\xff", "x\xef\xbf\xbd"}};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char *sn = dp_out_sanitize_name(names[i][0]);
        T_EQ_STR(sn, names[i][1]);
        dp_free(sn);
    }
    char longname[400];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    char *ln = dp_out_sanitize_name(longname);
    T_EQ_I64(strlen(ln), DP_OUT_MAX_NAME);
    dp_free(ln);
    unsigned fm;
    T_CHECK(dp_out_parse_formats("json,xml", &fm) && fm == (DP_OUT_JSON | DP_OUT_XML));
    T_CHECK(dp_out_parse_formats("all", &fm) && fm == DP_OUT_ALL);
    T_CHECK(!dp_out_parse_formats("json,djvu", &fm));
    T_CHECK(dp_out_parse_formats("pdf,alto,hocr,page,md,txt", &fm) &&
            fm == (DP_OUT_PDF | DP_OUT_ALTO | DP_OUT_HOCR | DP_OUT_PAGE | DP_OUT_MD | DP_OUT_TXT));
    T_CHECK(!dp_out_parse_formats("", &fm));
}

static void empty_xml(void) {
    struct dp_err err = {0};
    /* the XML of an empty document and of a document without pages validate too */
    struct ex_doc *empty = NULL;
    T_CHECK(ex_doc_new(&empty, "", &err) == DP_OK);
    T_CHECK(ex_doc_finish(empty, NULL, &err) == DP_OK);
    struct dp_buf xb;
    dp_buf_init(&xb, DP_MAX_TEXT_BYTES);
    T_CHECK(dp_out_xml(empty, &xb, &err) == DP_OK && valid_xml(xb.data, xb.len));
    dp_buf_free(&xb);
    ex_doc_free(empty);
}

int main(int argc, char **argv) {
    t_args(argc, argv);
    xmlInitParser();
    char p[1024];
    snprintf(p, sizeof p, "%s/schemas/docproc-result.xsd", getenv("DP_SOURCE_DIR") ? getenv("DP_SOURCE_DIR") : ".");
    xmlSchemaParserCtxtPtr pc = xmlSchemaNewParserCtxt(p);
    xsd = xmlSchemaParse(pc);
    xmlSchemaFreeParserCtxt(pc);
    T_CHECK(xsd != NULL);
    struct dp_err err = {0};
    T_CHECK(sc_schema_load(&g_schema, "invoice", &err) == DP_OK);
    g_doc = make_doc("in/scan \"1\".pdf", g_schema);
    T_CHECK(g_doc->truncated);
    T_EQ_I64(g_doc->pages[0]->n_tables, 1);
    /* its own stamp: no use after free */
    T_CHECK(ex_doc_set_stamp(g_doc, &g_doc->stamp, &err) == DP_OK);
    T_EQ_STR(g_doc->stamp.model_id, "Qwen/Qwen2.5-VL-7B-Instruct");

    char tmpl[] = "/tmp/dp_writers_XXXXXX";
    g_dir = mkdtemp(tmpl);
    T_CHECK(g_dir != NULL);
    snprintf(g_zpath, sizeof g_zpath, "%s/sub/dir/out.zip", g_dir);
    snprintf(g_dpath, sizeof g_dpath, "%s/outdir", g_dir);
    T_RUN(zip_bundle);
    T_RUN(zip_tmp_names);
    T_RUN(existing_output);
    T_RUN(aborted_zip);
    T_RUN(directory_bundle);
    T_RUN(names_and_formats);
    T_RUN(empty_xml);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    T_CHECK(system(cmd) == 0);
    ex_doc_free(g_doc);
    sc_schema_free(g_schema);
    xmlSchemaFree(xsd);
    return t_done();
}
