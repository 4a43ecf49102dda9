/* Archive formats over every real answer in samples/raw, parsed with the `ocr` and the `layout`
 * schema: ALTO and PAGE XML validate against the official XSDs (tests/archive/standards, loaded
 * offline through the catalog); hOCR parses as XML and every bbox lies inside its parent's;
 * Markdown keeps the answer's text in order (whitespace-free text of the Markdown, markup
 * removed, equals the answer's text content); text output keeps every line. Units of the lines
 * model: line-count estimate, word boxes inside their line, confidences from token
 * log-probabilities (WC / x_wconf), an answer without boxes gives no positioned text. */
#include "dp_alloc.h"
#include "dp_buf.h"
#include "dp_limits.h"
#include "dp_out.h"
#include "dp_out_archive.h"
#include "ex.h"
#include "ex_lines.h"
#include "sc.h"
#include "t.h"

#include <jansson.h>
#include <libxml/HTMLparser.h>
#include <libxml/catalog.h>
#include <libxml/parser.h>
#include <libxml/xmlschemas.h>
#include <stdlib.h>

#define PATH_BYTES 4096

static xmlSchemaPtr alto_xsd, page_xsd;
static char src_dir[PATH_BYTES / 2];

static xmlSchemaPtr load_xsd(const char *file) {
    char p[PATH_BYTES];
    snprintf(p, sizeof p, "%s/tests/archive/standards/%s", src_dir, file);
    xmlSchemaParserCtxtPtr pc = xmlSchemaNewParserCtxt(p);
    xmlSchemaPtr s = pc ? xmlSchemaParse(pc) : NULL;
    xmlSchemaFreeParserCtxt(pc);
    return s;
}

static bool validates(xmlSchemaPtr xsd, const struct dp_buf *b, const char *what) {
    xmlDocPtr d = xmlReadMemory(b->data, (int)b->len, what, NULL, XML_PARSE_NONET);
    if (!d)
        return false;
    xmlSchemaValidCtxtPtr vc = xmlSchemaNewValidCtxt(xsd);
    int rc = vc ? xmlSchemaValidateDoc(vc, d) : -1;
    xmlSchemaFreeValidCtxt(vc);
    xmlFreeDoc(d);
    if (rc != 0)
        fprintf(stderr, "%s: does not validate (%d)\n", what, rc);
    return rc == 0;
}

/* ---- hOCR ---------------------------------------------------------------------------------- */

static bool title_bbox(xmlNodePtr n, long b[4]) {
    xmlChar *t = xmlGetProp(n, (const xmlChar *)"title");
    const char *s = t ? strstr((const char *)t, "bbox ") : NULL;
    bool ok = s && sscanf(s, "bbox %ld %ld %ld %ld", &b[0], &b[1], &b[2], &b[3]) == 4;
    xmlFree(t);
    return ok;
}

struct hocr_stats {
    int boxes, outside, words, pages;
};

static void hocr_walk(xmlNodePtr n, const long *parent, struct hocr_stats *s) {
    for (; n; n = n->next) {
        if (n->type != XML_ELEMENT_NODE)
            continue;
        long b[4];
        const long *inner = parent;
        if (title_bbox(n, b)) {
            s->boxes++;
            if (b[0] > b[2] || b[1] > b[3] ||
                (parent && (b[0] < parent[0] || b[1] < parent[1] || b[2] > parent[2] ||
                            b[3] > parent[3]))) {
                s->outside++;
                fprintf(stderr, "hOCR bbox %ld %ld %ld %ld outside its parent's\n", b[0], b[1],
                        b[2], b[3]);
            }
            inner = b;
        }
        xmlChar *cls = xmlGetProp(n, (const xmlChar *)"class");
        if (cls && !strcmp((const char *)cls, "ocrx_word"))
            s->words++;
        if (cls && !strcmp((const char *)cls, "ocr_page"))
            s->pages++;
        xmlFree(cls);
        long copy[4];
        if (inner == b) {
            memcpy(copy, b, sizeof copy);
            inner = copy;
        }
        hocr_walk(n->children, inner, s);
    }
}

/* ---- answer text vs Markdown ----------------------------------------------------------------- */

static void append_nows(struct dp_buf *b, const char *s) {
    for (; *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r' && *s != '\f')
            dp_buf_putc(b, *s);
}

/* Text nodes and <img alt> in document order (the Markdown keeps an image's alt text). */
static void html_text(struct dp_buf *b, xmlNodePtr n) {
    for (; n; n = n->next) {
        if (n->type == XML_TEXT_NODE && n->content) {
            append_nows(b, (const char *)n->content);
        } else if (n->type == XML_ELEMENT_NODE) {
            xmlChar *alt = xmlStrcasecmp(n->name, (const xmlChar *)"img")
                               ? NULL
                               : xmlGetProp(n, (const xmlChar *)"alt");
            if (alt)
                append_nows(b, (const char *)alt);
            xmlFree(alt);
            html_text(b, n->children);
        }
    }
}

/* The answer's text: an HTML answer's text content, or a JSON answer's text_content strings. */
static char *answer_text(const char *raw, size_t len, bool html) {
    struct dp_buf b;
    dp_buf_init(&b, DP_MAX_TEXT_BYTES);
    if (html) {
        const char *s = strstr(raw, "<");
        size_t n = len - (size_t)(s - raw);
        const char *fence = strstr(s, "```"); /* closing fence, when there is one */
        if (fence)
            n = (size_t)(fence - s);
        htmlDocPtr d = htmlReadMemory(s, (int)n, NULL, "UTF-8",
                                      HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING | HTML_PARSE_NONET);
        if (d)
            html_text(&b, xmlDocGetRootElement(d));
        xmlFreeDoc(d);
    } else {
        for (const char *p = strstr(raw, "\"text_content\""); p;
             p = strstr(p + 1, "\"text_content\"")) {
            const char *q = strchr(p + 14, '"');
            if (!q)
                break;
            const char *e = q + 1;
            while (*e && *e != '"')
                e += *e == '\\' ? 2 : 1;
            json_t *j = json_loadb(q, (size_t)(e + 1 - q), JSON_DECODE_ANY, NULL);
            if (json_is_string(j))
                append_nows(&b, json_string_value(j));
            json_decref(j);
        }
    }
    return dp_buf_steal(&b, NULL);
}

/* Markdown without its markup (heading #, list -, $$, table pipes and rule rows, page breaks). */
static char *md_text(const char *md) {
    struct dp_buf b;
    dp_buf_init(&b, DP_MAX_TEXT_BYTES);
    const char *p = md;
    while (*p) {
        const char *e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        char *line = dp_strndup(p, n);
        const char *s = line;
        if (!strcmp(s, "$$") || !strncmp(s, DP_MD_PAGE_BREAK, strlen(DP_MD_PAGE_BREAK)) ||
            (s[0] == '|' && strstr(s, "---"))) {
            s = "";
        } else if (s[0] == '#') {
            while (*s == '#')
                s++;
        } else if (!strncmp(s, "- ", 2)) {
            s += 2;
        }
        if (line[0] == '|') { /* table row: drop unescaped pipes, unescape \| */
            for (const char *q = s; *q; q++) {
                if (q[0] == '\\' && q[1] == '|') {
                    dp_buf_putc(&b, '|');
                    q++;
                } else if (*q != '|' && *q != ' ') {
                    dp_buf_putc(&b, *q);
                }
            }
        } else {
            append_nows(&b, s);
        }
        dp_free(line);
        p = e ? e + 1 : p + n;
    }
    return dp_buf_steal(&b, NULL);
}

/* ---- one document per raw answer --------------------------------------------------------- */

static struct ex_doc *doc_of(const struct dp_raw_doc *rd, const struct sc_schema *s) {
    struct dp_err err = {0};
    struct ex_doc *d = NULL;
    T_CHECK(ex_doc_new(&d, rd->source ? rd->source : rd->stem, &err) == DP_OK);
    struct ex_stamp st = {.docproc_version = "test", .model_id = "Qwen/Qwen2.5-VL-7B-Instruct",
                          .model_hash = "abc", .schema_name = s->name, .schema_hash = s->hash};
    T_CHECK(ex_doc_set_stamp(d, &st, &err) == DP_OK);
    for (size_t i = 0; i < rd->n_pages; i++) {
        struct ex_page *p = NULL;
        T_CHECK(ex_page_parse(&p, s, rd->pages[i].text, rd->pages[i].len, &rd->pages[i].geom,
                              rd->pages[i].number, rd->pages[i].truncated, &err) == DP_OK);
        T_CHECK(ex_doc_add_page(d, p, &err) == DP_OK);
    }
    T_CHECK(ex_doc_finish(d, s, &err) == DP_OK);
    return d;
}

static void check_doc(const struct dp_raw_doc *rd, const struct sc_schema *s) {
    struct ex_doc *d = doc_of(rd, s);
    struct dp_err err = {0};
    struct dp_buf b;
    dp_buf_init(&b, DP_MAX_TEXT_BYTES);
    char what[512];
    snprintf(what, sizeof what, "%s (%s)", rd->stem, s->name);

    T_CHECK(dp_out_alto(d, NULL, &b, &err) == DP_OK);
    T_CHECK_MSG(validates(alto_xsd, &b, what), "ALTO of %s validates", what);
    T_CHECK_MSG(!strstr(b.data, " WC="), "%s: no WC without token probabilities", what);
    size_t n_lines = 0;
    for (size_t i = 0; i < d->n_pages; i++) {
        struct ex_lines *L = NULL;
        T_CHECK(ex_lines_build(&L, d->pages[i], NULL, &err) == DP_OK);
        n_lines += L ? L->n_boxed_lines : 0;
        ex_lines_free(L);
    }
    size_t n_textlines = 0;
    for (const char *p = strstr(b.data, "<TextLine "); p; p = strstr(p + 1, "<TextLine "))
        n_textlines++;
    T_CHECK_MSG(n_textlines == n_lines, "%s: %zu TextLines for %zu boxed lines", what, n_textlines,
                n_lines);
    dp_buf_reset(&b);

    for (size_t i = 0; i < d->n_pages; i++) {
        T_CHECK(dp_out_page_xml(d, d->pages[i], NULL, &b, &err) == DP_OK);
        T_CHECK_MSG(validates(page_xsd, &b, what), "PAGE of %s validates", what);
        dp_buf_reset(&b);
    }

    T_CHECK(dp_out_hocr(d, NULL, &b, &err) == DP_OK);
    xmlDocPtr x = xmlReadMemory(b.data, (int)b.len, what, NULL, XML_PARSE_NONET);
    T_CHECK_MSG(x != NULL, "hOCR of %s parses as XML", what);
    struct hocr_stats hs = {0};
    if (x)
        hocr_walk(xmlDocGetRootElement(x), NULL, &hs);
    xmlFreeDoc(x);
    T_CHECK_MSG(hs.outside == 0, "%s: %d of %d hOCR boxes outside their parent", what, hs.outside,
                hs.boxes);
    T_CHECK_MSG(hs.pages == (int)d->n_pages, "%s: one ocr_page per page", what);
    T_CHECK_MSG(n_lines == 0 || hs.words > 0, "%s: words in the hOCR", what);
    dp_buf_reset(&b);

    T_CHECK(dp_out_markdown(d, &b, &err) == DP_OK);
    bool html = d->pages[0]->source == EX_SRC_HTML;
    if (html || (d->pages[0]->source == EX_SRC_JSON && strstr(rd->pages[0].text, "text_content"))) {
        char *want = answer_text(rd->pages[0].text, rd->pages[0].len, html);
        char *got = md_text(b.data ? b.data : "");
        bool same = want && got && !strcmp(want, got);
        T_CHECK_MSG(same, "%s: Markdown text equals the answer's text", what);
        if (!same && want && got) {
            size_t k = 0;
            while (want[k] && want[k] == got[k])
                k++;
            fprintf(stderr, "  differs at %zu: want '%.60s' got '%.60s'\n", k, want + k, got + k);
        }
        dp_free(want);
        dp_free(got);
    }
    dp_buf_reset(&b);

    T_CHECK(dp_out_text(d, &b, &err) == DP_OK);
    const char *at = b.data ? b.data : "";
    bool in_order = true;
    for (size_t i = 0; i < d->n_pages; i++)
        for (size_t k = 0; k < d->pages[i]->n_blocks; k++) {
            const char *t = d->pages[i]->blocks[k].text;
            if (!t || !*t || d->pages[i]->blocks[k].kind == EX_BLOCK_TABLE)
                continue;
            const char *f = strstr(at, t);
            in_order = in_order && f;
            at = f ? f + strlen(t) : at;
        }
    T_CHECK_MSG(in_order, "%s: text output keeps every block in order", what);
    dp_buf_free(&b);
    ex_doc_free(d);
}

/* ---- units ---------------------------------------------------------------------------------- */

static void units(const struct sc_schema *ocr) {
    T_EQ_I64(ex_lines_estimate_count(600, 30, 40), 1);
    T_EQ_I64(ex_lines_estimate_count(600, 300, 400), 10); /* sqrt(400*0.5*300/600) = 10 */
    T_EQ_I64(ex_lines_estimate_count(0, 300, 400), 1);
    T_EQ_I64(ex_lines_estimate_count(10, 3000, 3), 3);   /* never more lines than characters */

    static const char ans[] = "```json\n[{\"bbox_2d\": [10, 20, 210, 40], \"text_content\": "
                              "\"ab cdef\"}, {\"bbox_2d\": [10, 50, 110, 70], \"text_content\": "
                              "\"\xe4\xb8\xad\xe6\x96\x87\"}]\n```";
    struct ex_geom g = {.model_w = 400, .model_h = 400, .page_w = 800, .page_h = 800};
    struct dp_err err = {0};
    struct ex_page *p = NULL;
    T_CHECK(ex_page_parse(&p, ocr, ans, strlen(ans), &g, 1, false, &err) == DP_OK);
    struct ex_lines *L = NULL;
    size_t off[3] = {20, 40, 400};
    float lp[3] = {-0.1f, -0.3f, -5.0f};
    struct ex_tokconf tc = {off, lp, 3};
    T_CHECK(ex_lines_build(&L, p, &tc, &err) == DP_OK);
    T_EQ_I64(L->n_regions, 2);
    T_EQ_I64(L->n_boxed_lines, 2);
    T_EQ_I64(L->width, 800);
    const struct ex_line *l = &L->regions[0].lines[0];
    T_CHECK(!l->box_estimated);
    T_NEAR(l->box.x1, 20, 1e-9); /* model pixels x2 */
    T_NEAR(l->box.x2, 420, 1e-9);
    T_EQ_I64(l->n_words, 2);
    /* "ab cdef": 7 units; "ab" gets 2/7 of the width, "cdef" starts after the space */
    T_NEAR(l->words[0].box.x2, 20 + 400.0 * 2 / 7, 1e-9);
    T_NEAR(l->words[1].box.x1, 20 + 400.0 * 3 / 7, 1e-9);
    T_NEAR(l->words[1].box.x2, 420, 1e-9);
    T_CHECK(strcmp(l->words[1].text, "cdef") == 0);
    /* tokens at 20 and 40 lie in the first element's span */
    T_NEAR(l->conf, exp((-0.1 - 0.3) / 2), 1e-6);
    T_CHECK(L->regions[1].lines[0].conf < 0 || L->regions[1].lines[0].conf != l->conf);
    T_EQ_I64(L->regions[1].lines[0].n_words, 1); /* CJK without spaces: one word */
    ex_lines_free(L);

    struct ex_doc *d = NULL;
    T_CHECK(ex_doc_new(&d, "x.png", &err) == DP_OK);
    T_CHECK(ex_doc_add_page(d, p, &err) == DP_OK);
    struct dp_buf b;
    dp_buf_init(&b, DP_MAX_TEXT_BYTES);
    T_CHECK(dp_out_alto(d, &tc, &b, &err) == DP_OK);
    T_CHECK(strstr(b.data, "WC=\"0.819\"") != NULL); /* exp(-0.2) */
    T_CHECK(validates(alto_xsd, &b, "alto with WC"));
    dp_buf_reset(&b);
    T_CHECK(dp_out_hocr(d, &tc, &b, &err) == DP_OK);
    T_CHECK(strstr(b.data, "x_wconf 82") != NULL);
    dp_buf_free(&b);
    ex_doc_free(d);

    /* an answer without boxes: regions kept for md/txt, nothing positioned */
    static const char nobox[] = "Just a line of text.\nAnother one.";
    T_CHECK(ex_page_parse(&p, ocr, nobox, strlen(nobox), &g, 1, false, &err) == DP_OK);
    T_CHECK(ex_lines_build(&L, p, NULL, &err) == DP_OK);
    T_EQ_I64(L->n_boxed_lines, 0);
    T_CHECK(L->n_regions > 0);
    ex_lines_free(L);
    T_CHECK(ex_doc_new(&d, "y.png", &err) == DP_OK);
    T_CHECK(ex_doc_add_page(d, p, &err) == DP_OK);
    dp_buf_init(&b, DP_MAX_TEXT_BYTES);
    T_CHECK(dp_out_alto(d, NULL, &b, &err) == DP_OK);
    T_CHECK(validates(alto_xsd, &b, "alto without boxes"));
    T_CHECK(!strstr(b.data, "<TextBlock"));
    dp_buf_reset(&b);
    T_CHECK(dp_out_page_xml(d, d->pages[0], NULL, &b, &err) == DP_OK);
    T_CHECK(validates(page_xsd, &b, "page without boxes"));
    dp_buf_reset(&b);
    T_CHECK(dp_out_text(d, &b, &err) == DP_OK);
    T_CHECK(strstr(b.data, "Another one.") != NULL);
    dp_buf_free(&b);
    ex_doc_free(d);
}

int main(void) {
    const char *src = getenv("DP_SOURCE_DIR");
    snprintf(src_dir, sizeof src_dir, "%s", src ? src : ".");
    char cat[PATH_BYTES];
    snprintf(cat, sizeof cat, "%s/tests/archive/standards/catalog.xml", src_dir);
    xmlInitParser();
    T_CHECK(xmlLoadCatalog(cat) == 0);
    alto_xsd = load_xsd("alto-4-4.xsd");
    page_xsd = load_xsd("pagecontent-2019-07-15.xsd");
    T_CHECK(alto_xsd != NULL);
    T_CHECK(page_xsd != NULL);
    if (!alto_xsd || !page_xsd)
        return t_done();
    struct dp_err err = {0};
    struct sc_schema *ocr = NULL, *layout = NULL;
    T_CHECK(sc_schema_load(&ocr, "ocr", &err) == DP_OK);
    T_CHECK(sc_schema_load(&layout, "layout", &err) == DP_OK);
    T_CHECK(ocr && ocr->task == SC_TASK_OCR);
    units(ocr);
    char raw[PATH_BYTES];
    snprintf(raw, sizeof raw, "%s/samples/raw", src_dir);
    struct dp_raw_set *rs = NULL;
    T_CHECK(dp_raw_read(&rs, raw, &err) == DP_OK);
    T_CHECK(rs && rs->n_docs >= 8);
    for (size_t i = 0; rs && i < rs->n_docs; i++) {
        check_doc(&rs->docs[i], ocr);
        check_doc(&rs->docs[i], layout);
    }
    dp_raw_set_free(rs);
    sc_schema_free(ocr);
    sc_schema_free(layout);
    xmlSchemaFree(alto_xsd);
    xmlSchemaFree(page_xsd);
    xmlCatalogCleanup();
    return t_done();
}
