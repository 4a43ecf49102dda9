/* olmOCR-2 mode: the prompt and render size match olmOCR's (constants checked against the text
 * taken from the olmOCR repository, tests/archive/olmocr/PROVENANCE.md), pages render with the
 * longest side 1288 px; real olmOCR answers (olmOCR's own test data) parse into front-matter
 * fields and Markdown blocks/tables whose Markdown output keeps all the text in order;
 * malformed front matter (unclosed, ill-typed, missing and unknown keys, none at all) and
 * answers cut inside the front matter or inside a table become warnings, never failures. */
#include "dp_alloc.h"
#include "dp_buf.h"
#include "dp_fs.h"
#include "dp_ingest.h"
#include "dp_limits.h"
#include "dp_out_archive.h"
#include "ex.h"
#include "ex_olmocr.h"
#include "sc.h"
#include "t.h"
#include "vl.h"

#include <libxml/HTMLparser.h>
#include <libxml/parser.h>
#include <stdlib.h>

#define PATH_BYTES 2048

static char src_dir[PATH_BYTES / 2];
static struct sc_schema *olm;

static char *fixture(const char *name, size_t *len) {
    char p[PATH_BYTES];
    snprintf(p, sizeof p, "%s/tests/archive/olmocr/%s", src_dir, name);
    char *d = NULL;
    struct dp_err err = {0};
    if (dp_file_read(p, DP_MAX_TEXT_BYTES, &d, len, &err) != DP_OK)
        fprintf(stderr, "%s\n", err.msg);
    return d;
}

static struct ex_doc *doc_of(const char *raw, size_t len, bool model_truncated) {
    struct dp_err err = {0};
    struct ex_doc *d = NULL;
    struct ex_page *p = NULL;
    T_CHECK(ex_doc_new(&d, "olmocr.png", &err) == DP_OK);
    T_CHECK(ex_page_parse(&p, olm, raw, len, NULL, 1, model_truncated, &err) == DP_OK);
    T_CHECK(ex_doc_add_page(d, p, &err) == DP_OK);
    T_CHECK(ex_doc_finish(d, olm, &err) == DP_OK);
    return d;
}

static const struct ex_field *field(const struct ex_doc *d, const char *name) {
    for (size_t i = 0; i < d->n_fields; i++)
        if (!strcmp(d->fields[i].name, name))
            return &d->fields[i];
    return NULL;
}

static bool has_warning(const struct ex_doc *d, enum ex_warn_code c) {
    for (size_t i = 0; i < d->pages[0]->n_warnings; i++)
        if (d->pages[0]->warnings[i].code == c)
            return true;
    for (size_t i = 0; i < d->n_warnings; i++)
        if (d->warnings[i].code == c)
            return true;
    return false;
}

/* ---- text of Markdown / of an answer body, markup removed, white space ignored ------------- */

static void text_nodes(struct dp_buf *b, xmlNodePtr n) {
    for (; n; n = n->next) {
        if (n->type == XML_TEXT_NODE && n->content) {
            for (const char *s = (const char *)n->content; *s; s++) {
                if ((unsigned char)s[0] == 0xC2 && (unsigned char)s[1] == 0xA0) { /* nbsp */
                    s++;
                    continue;
                }
                if (*s != ' ' && *s != '\n' && *s != '\t' && *s != '\r')
                    dp_buf_putc(b, *s);
            }
        } else if (n->type == XML_ELEMENT_NODE) {
            text_nodes(b, n->children);
        }
    }
}

static char *norm(const char *md, size_t len) {
    struct dp_buf pre;
    dp_buf_init(&pre, DP_MAX_TEXT_BYTES);
    const char *p = md, *end = md + len;
    while (p < end) {
        const char *e = memchr(p, '\n', (size_t)(end - p));
        size_t n = e ? (size_t)(e - p) : (size_t)(end - p);
        char *line = dp_strndup(p, n);
        char *s = line;
        while (*s == ' ' || *s == '\t')
            s++;
        bool drop = !strcmp(s, "$$") || !strcmp(s, "\\[") || !strcmp(s, "\\]") ||
                    (s[0] == '|' && strstr(s, "---"));
        while (*s == '#')
            s++;
        if (s[0] == '-' && s[1] == ' ')
            s += 2;
        if (drop)
            s += strlen(s);
        for (; *s; s++) {
            if ((s[0] == '$' && s[1] == '$') ||
                (s[0] == '\\' && (s[1] == '[' || s[1] == ']'))) { /* display-math delimiters */
                s++;
                continue;
            }
            if (s[0] == '\\' && s[1] == '|') {
                dp_buf_putc(&pre, '|');
                s++;
            } else if (*s != '|') {
                dp_buf_putc(&pre, *s);
            }
        }
        dp_buf_putc(&pre, '\n');
        dp_free(line);
        p = e ? e + 1 : end;
    }
    struct dp_buf out;
    dp_buf_init(&out, DP_MAX_TEXT_BYTES);
    htmlDocPtr d = htmlReadMemory(pre.data ? pre.data : "", (int)pre.len, NULL, "UTF-8",
                                  HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING | HTML_PARSE_NONET);
    if (d)
        text_nodes(&out, xmlDocGetRootElement(d));
    xmlFreeDoc(d);
    dp_buf_free(&pre);
    dp_buf_putc(&out, '\0');
    return dp_buf_steal(&out, NULL);
}

static void md_keeps_text(const struct ex_doc *d, const char *raw, size_t len, const char *what) {
    struct ex_olmocr_fm fm;
    ex_olmocr_front_matter(raw, len, &fm);
    struct dp_buf md;
    dp_buf_init(&md, DP_MAX_TEXT_BYTES);
    struct dp_err err = {0};
    T_CHECK(dp_out_markdown(d, &md, &err) == DP_OK);
    char *want = norm(raw + fm.body_off, fm.body_len);
    char *got = norm(md.data ? md.data : "", md.len);
    bool same = want && got && !strcmp(want, got);
    T_CHECK_MSG(same, "%s: the Markdown keeps the answer's text in order", what);
    if (!same && want && got) {
        size_t k = 0;
        while (want[k] && want[k] == got[k])
            k++;
        fprintf(stderr, "  at %zu: want '%.50s' got '%.50s'\n", k, want + k, got + k);
    }
    dp_free(want);
    dp_free(got);
    dp_buf_free(&md);
}

/* ---- checks ------------------------------------------------------------------------------- */

static void prompt_and_size(void) {
    size_t n = 0;
    char *upstream = fixture("prompt_v4.txt", &n);
    T_CHECK(upstream && !strcmp(upstream, EX_OLMOCR_PROMPT));
    T_CHECK(olm && !strcmp(olm->prompt, EX_OLMOCR_PROMPT)); /* schemas/olmocr.json x-prompt */
    T_CHECK(olm && olm->task == SC_TASK_OLMOCR && !olm->system_prompt);
    dp_free(upstream);
    T_EQ_I64(EX_OLMOCR_LONGEST_SIDE, 1288);

    /* pages render with the longest side 1288 (a multiple of 28, so smart_resize keeps it) */
    struct dp_ingest_opts o;
    dp_ingest_opts_init(&o);
    o.long_side = EX_OLMOCR_LONGEST_SIDE;
    o.max_pixels = VL_IMAGE_DEFAULT_MAX_PIXELS; /* the side, not docproc's 1 Mpx budget, decides */
    const char *inputs[] = {"samples/invoice2data/oyo.pdf", "samples/qwen25vl_cookbooks/ocr_example3.jpg",
                            "samples/invoice2data/AmazonWebServices.png"};
    for (size_t i = 0; i < sizeof inputs / sizeof *inputs; i++) {
        char p[PATH_BYTES];
        snprintf(p, sizeof p, "%s/%s", src_dir, inputs[i]);
        struct dp_doc *doc = NULL;
        struct dp_err err = {0};
        struct dp_page pg = {0};
        T_CHECK(dp_doc_open(&doc, p, &o, &err) == DP_OK);
        T_CHECK(doc && dp_doc_render(&pg, doc, 0, &err) == DP_OK);
        T_CHECK(dp_page_fit(&pg, &o, &err) == DP_OK);
        int longest = pg.width > pg.height ? pg.width : pg.height;
        T_CHECK_MSG(longest == EX_OLMOCR_LONGEST_SIDE, "%s: longest side %d", inputs[i], longest);
        T_CHECK(pg.width % 28 == 0 && pg.height % 28 == 0);
        dp_page_free(&pg);
        dp_doc_close(doc);
    }
}

static void real_answers(void) {
    size_t n = 0;
    char *raw = fixture("blanktext.md", &n);
    struct ex_doc *d = doc_of(raw, n, false);
    struct ex_olmocr_fm fm;
    T_CHECK(ex_olmocr_front_matter(raw, n, &fm) && fm.valid && fm.closed);
    T_CHECK(!strcmp(fm.primary_language, "en") && fm.is_rotation_valid && !fm.is_table);
    T_EQ_I64(fm.body_len, 0);
    T_EQ_I64(d->n_fields, 5);
    T_CHECK(field(d, "is_rotation_valid") && field(d, "is_rotation_valid")->type == EX_V_BOOL &&
            field(d, "is_rotation_valid")->boolean);
    T_CHECK(field(d, "rotation_correction") &&
            field(d, "rotation_correction")->type == EX_V_INTEGER);
    T_EQ_I64(d->pages[0]->n_blocks, 0);
    T_EQ_I64(d->pages[0]->n_warnings + d->n_warnings, 0);
    ex_doc_free(d);
    dp_free(raw);

    raw = fixture("edgar.md", &n);
    d = doc_of(raw, n, false);
    T_CHECK(field(d, "is_table") && field(d, "is_table")->boolean);
    T_EQ_I64(d->pages[0]->n_blocks, 3); /* three paragraphs */
    T_EQ_I64(d->pages[0]->n_warnings + d->n_warnings, 0);
    md_keeps_text(d, raw, n, "edgar.md");
    ex_doc_free(d);
    dp_free(raw);

    raw = fixture("untable.md", &n);
    d = doc_of(raw, n, false);
    T_EQ_I64(d->pages[0]->n_tables, 1);
    const struct ex_table *t = d->pages[0]->n_tables ? &d->pages[0]->tables[0] : NULL;
    T_CHECK(t && t->n_cols == 11 && t->n_rows > 10);
    T_CHECK(t && t->cells[0].rowspan == 2);
    T_CHECK(!d->truncated);
    md_keeps_text(d, raw, n, "untable.md");
    struct dp_buf md;
    dp_buf_init(&md, DP_MAX_TEXT_BYTES);
    struct dp_err err = {0};
    T_CHECK(dp_out_markdown(d, &md, &err) == DP_OK);
    T_CHECK(md.data && strstr(md.data, "rowspan=\"2\"")); /* spans: an HTML table */
    dp_buf_free(&md);
    ex_doc_free(d);

    /* cut in the middle of the table: truncated, the complete rows kept */
    const char *cut = strstr(raw + n / 2, "<td class=\"data\">");
    size_t cn = cut ? (size_t)(cut - raw) + 20 : n / 2;
    d = doc_of(raw, cn, true);
    T_CHECK(d->truncated);
    T_CHECK(has_warning(d, EX_WARN_TRUNCATED));
    T_CHECK(d->pages[0]->n_tables == 1 && d->pages[0]->tables[0].n_rows > 5);
    T_EQ_I64(d->n_fields, 5);
    ex_doc_free(d);
    /* the same cut without the model's flag: the open table says it */
    d = doc_of(raw, cn, false);
    T_CHECK(d->truncated);
    ex_doc_free(d);
    dp_free(raw);
}

static void malformed(void) {
    static const char unclosed[] = "---\nprimary_language: en\nis_rotation_valid: True\n"
                                   "The body starts without a closing line.\n";
    struct ex_doc *d = doc_of(unclosed, strlen(unclosed), false);
    struct ex_olmocr_fm fm;
    T_CHECK(ex_olmocr_front_matter(unclosed, strlen(unclosed), &fm) && !fm.closed && !fm.valid);
    T_CHECK(has_warning(d, EX_WARN_SYNTAX));
    T_EQ_I64(d->pages[0]->n_blocks, 1);
    T_CHECK(d->pages[0]->n_blocks && strstr(d->pages[0]->blocks[0].text, "The body starts"));
    T_CHECK(field(d, "primary_language") != NULL);
    ex_doc_free(d);

    static const char cut_fm[] = "---\nprimary_language: en\nis_rotation_valid: Tr";
    d = doc_of(cut_fm, strlen(cut_fm), false);
    T_CHECK(d->truncated);
    T_CHECK(has_warning(d, EX_WARN_TRUNCATED));
    T_CHECK(has_warning(d, EX_WARN_TYPE)); /* "Tr" is not a boolean */
    T_EQ_I64(d->pages[0]->n_blocks, 0);
    ex_doc_free(d);

    static const char bad[] = "---\nprimary_language: null\nis_rotation_valid: maybe\n"
                              "rotation_correction: 45\nis_table: False\nfoo: bar\n---\nText\n";
    d = doc_of(bad, strlen(bad), false);
    T_CHECK(ex_olmocr_front_matter(bad, strlen(bad), &fm) && fm.closed && !fm.valid);
    T_CHECK(fm.primary_language[0] == '\0' && fm.rotation_correction == 0);
    T_CHECK(has_warning(d, EX_WARN_ENUM));        /* 45 */
    T_CHECK(has_warning(d, EX_WARN_TYPE));        /* maybe */
    T_CHECK(has_warning(d, EX_WARN_UNKNOWN_KEY)); /* foo */
    T_CHECK(has_warning(d, EX_WARN_REQUIRED));    /* is_diagram */
    T_CHECK(field(d, "primary_language") && field(d, "primary_language")->type == EX_V_NULL);
    ex_doc_free(d);

    static const char none[] = "# Just Markdown\n\nNo front matter at all.\n";
    d = doc_of(none, strlen(none), false);
    T_CHECK(!ex_olmocr_front_matter(none, strlen(none), &fm));
    T_CHECK(has_warning(d, EX_WARN_SYNTAX));
    T_EQ_I64(d->pages[0]->n_blocks, 2);
    T_CHECK(d->pages[0]->n_blocks && d->pages[0]->blocks[0].kind == EX_BLOCK_HEADING);
    ex_doc_free(d);

    static const char rotated[] = "---\nprimary_language: en\nis_rotation_valid: False\n"
                                  "rotation_correction: 90\nis_table: False\nis_diagram: False\n---\n";
    T_CHECK(ex_olmocr_front_matter(rotated, strlen(rotated), &fm) && fm.valid);
    T_CHECK(!fm.is_rotation_valid && fm.rotation_correction == 90);

    static const char math[] = "---\nprimary_language: en\nis_rotation_valid: True\n"
                               "rotation_correction: 0\nis_table: False\nis_diagram: False\n---\n"
                               "Before\n$$\nE = mc^2\n$$\n\\[ a + b \\] after\n";
    d = doc_of(math, strlen(math), false);
    T_EQ_I64(d->pages[0]->n_blocks, 4);
    T_CHECK(d->pages[0]->n_blocks > 2 && d->pages[0]->blocks[1].kind == EX_BLOCK_FORMULA &&
            !strcmp(d->pages[0]->blocks[1].text, "E = mc^2"));
    T_CHECK(d->pages[0]->n_blocks > 2 && d->pages[0]->blocks[2].kind == EX_BLOCK_FORMULA);
    md_keeps_text(d, math, strlen(math), "math");
    ex_doc_free(d);
}

int main(int argc, char **argv) {
    t_args(argc, argv);
    const char *src = getenv("DP_SOURCE_DIR");
    snprintf(src_dir, sizeof src_dir, "%s", src ? src : ".");
    struct dp_err err = {0};
    T_CHECK(sc_schema_load(&olm, "olmocr", &err) == DP_OK);
    if (!olm) {
        fprintf(stderr, "%s\n", err.msg);
        return t_done();
    }
    T_RUN(prompt_and_size);
    T_RUN(real_answers);
    T_RUN(malformed);
    sc_schema_free(olm);
    return t_done();
}
