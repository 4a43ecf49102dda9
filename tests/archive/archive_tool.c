/* Checks for the searchable-PDF tests (tests/archive/test_archive_pdf.sh; the CI machine has no
 * python): compares images, and compares poppler's view of a PDF's text layer with the lines
 * model of the raw answers it was made from.
 *
 *   archive_tool size IMAGE             prints the first page's decoded width and height
 *   archive_tool imgcmp A B TOL         same pixel size, every channel within TOL
 *   archive_tool words BBOX.html RAWDIR SCHEMA [W_PT H_PT]
 *                                       pdftotext -bbox-layout: every word lies inside the box
 *                                       (mapped to points, +-1 pt) of a line holding that word,
 *                                       and there are as many words as the lines model has;
 *                                       W_PT H_PT: the displayed page size (a /Rotate page, for
 *                                       which poppler gives the unrotated size but rotated words)
 *   archive_tool text RAW.txt RAWDIR SCHEMA
 *                                       pdftotext -raw text equals the boxed lines' text in
 *                                       order (white space ignored)
 * Exit 0 when the check passes, 1 with a message when not. */
#include "dp_alloc.h"
#include "dp_buf.h"
#include "dp_fs.h"
#include "dp_ingest.h"
#include "dp_limits.h"
#include "dp_out.h"
#include "ex.h"
#include "ex_lines.h"
#include "sc.h"

#include <libxml/parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOL_PT 1.0

static int imgcmp(const char *a, const char *b, int tol) {
    struct dp_ingest_opts o;
    dp_ingest_opts_init(&o);
    struct dp_doc *da = NULL, *db = NULL;
    struct dp_err err = {0};
    struct dp_page pa = {0}, pb = {0};
    if (dp_doc_open(&da, a, &o, &err) != DP_OK || dp_doc_render(&pa, da, 0, &err) != DP_OK ||
        dp_doc_open(&db, b, &o, &err) != DP_OK || dp_doc_render(&pb, db, 0, &err) != DP_OK) {
        fprintf(stderr, "imgcmp: %s\n", err.msg);
        return 1;
    }
    int rc = 0;
    if (pa.width != pb.width || pa.height != pb.height) {
        fprintf(stderr, "imgcmp: %dx%d vs %dx%d\n", pa.width, pa.height, pb.width, pb.height);
        rc = 1;
    } else {
        int worst = 0;
        size_t n = (size_t)pa.width * (size_t)pa.height * 3, bad = 0;
        for (size_t i = 0; i < n; i++) {
            int d = abs((int)pa.rgb[i] - (int)pb.rgb[i]);
            worst = d > worst ? d : worst;
            bad += d > tol;
        }
        if (bad) {
            fprintf(stderr, "imgcmp: %zu of %zu samples differ by more than %d (max %d)\n", bad, n,
                    tol, worst);
            rc = 1;
        }
    }
    dp_page_free(&pa);
    dp_page_free(&pb);
    dp_doc_close(da);
    dp_doc_close(db);
    return rc;
}

static int size(const char *path) {
    struct dp_ingest_opts o;
    dp_ingest_opts_init(&o);
    struct dp_doc *d = NULL;
    struct dp_err err = {0};
    struct dp_page p = {0};
    if (dp_doc_open(&d, path, &o, &err) != DP_OK || dp_doc_render(&p, d, 0, &err) != DP_OK) {
        fprintf(stderr, "size: %s\n", err.msg);
        dp_doc_close(d);
        return 1;
    }
    printf("%d %d\n", p.width, p.height);
    dp_page_free(&p);
    dp_doc_close(d);
    return 0;
}

/* The lines models of the only document of a raw bundle. */
static struct ex_lines **load_lines(const char *rawdir, const char *schema, size_t *n) {
    struct dp_err err = {0};
    struct dp_raw_set *rs = NULL;
    struct sc_schema *s = NULL;
    if (dp_raw_read(&rs, rawdir, &err) != DP_OK || rs->n_docs != 1 ||
        sc_schema_load(&s, schema, &err) != DP_OK) {
        fprintf(stderr, "%s: cannot read one document's answers: %s\n", rawdir, err.msg);
        return NULL;
    }
    const struct dp_raw_doc *rd = &rs->docs[0];
    struct ex_lines **v = calloc(rd->n_pages, sizeof *v);
    for (size_t i = 0; i < rd->n_pages; i++) {
        struct ex_page *p = NULL;
        ex_page_parse(&p, s, rd->pages[i].text, rd->pages[i].len, &rd->pages[i].geom,
                      rd->pages[i].number, false, &err);
        ex_lines_build(&v[i], p, NULL, &err);
        ex_page_free(p);
    }
    *n = rd->n_pages;
    dp_raw_set_free(rs);
    sc_schema_free(s);
    return v;
}

static double attr_num(xmlNodePtr n, const char *name) {
    xmlChar *v = xmlGetProp(n, (const xmlChar *)name);
    double d = v ? strtod((const char *)v, NULL) : -1;
    xmlFree(v);
    return d;
}

static bool line_has_word(const struct ex_line *l, const char *w) {
    for (size_t k = 0; k < l->n_words; k++)
        if (!strcmp(l->words[k].text, w))
            return true;
    return false;
}

static void collect(xmlNodePtr n, const char *name, xmlNodePtr *out, size_t *k, size_t max) {
    for (; n; n = n->next) {
        if (n->type == XML_ELEMENT_NODE && !xmlStrcmp(n->name, (const xmlChar *)name) && *k < max)
            out[(*k)++] = n;
        collect(n->children, name, out, k, max);
    }
}

#define MAX_NODES 100000

static int words(const char *bbox, const char *rawdir, const char *schema, double w_pt,
                 double h_pt) {
    size_t np = 0;
    struct ex_lines **L = load_lines(rawdir, schema, &np);
    xmlDocPtr d = L ? xmlReadFile(bbox, NULL, XML_PARSE_NONET | XML_PARSE_RECOVER) : NULL;
    if (!d)
        return 1;
    static xmlNodePtr pages[MAX_NODES], ws[MAX_NODES];
    size_t n_pages = 0, bad = 0, total = 0;
    collect(xmlDocGetRootElement(d), "page", pages, &n_pages, MAX_NODES);
    if (n_pages != np) {
        fprintf(stderr, "words: %zu pages in the PDF, %zu answered\n", n_pages, np);
        return 1;
    }
    for (size_t p = 0; p < n_pages; p++) {
        double s = (w_pt > 0 ? w_pt : attr_num(pages[p], "width")) / L[p]->width;
        double sy = (h_pt > 0 ? h_pt : attr_num(pages[p], "height")) / L[p]->height;
        size_t nw = 0, want = 0;
        collect(pages[p]->children, "word", ws, &nw, MAX_NODES);
        for (size_t r = 0; r < L[p]->n_regions; r++)
            for (size_t i = 0; i < L[p]->regions[r].n_lines; i++)
                want += L[p]->regions[r].lines[i].has_box ? L[p]->regions[r].lines[i].n_words : 0;
        if (nw != want) {
            fprintf(stderr, "words: page %zu: %zu words in the PDF, %zu in the answer\n", p + 1,
                    nw, want);
            bad++;
        }
        for (size_t k = 0; k < nw; k++) {
            xmlChar *t = xmlNodeGetContent(ws[k]);
            double x1 = attr_num(ws[k], "xMin"), y1 = attr_num(ws[k], "yMin");
            double x2 = attr_num(ws[k], "xMax"), y2 = attr_num(ws[k], "yMax");
            bool ok = false;
            for (size_t r = 0; r < L[p]->n_regions && !ok; r++)
                for (size_t i = 0; i < L[p]->regions[r].n_lines && !ok; i++) {
                    const struct ex_line *l = &L[p]->regions[r].lines[i];
                    ok = l->has_box && line_has_word(l, (const char *)t) &&
                         x1 >= l->box.x1 * s - TOL_PT && x2 <= l->box.x2 * s + TOL_PT &&
                         y1 >= l->box.y1 * sy - TOL_PT && y2 <= l->box.y2 * sy + TOL_PT;
                }
            if (!ok) {
                fprintf(stderr, "words: page %zu: '%s' [%.1f %.1f %.1f %.1f] in no line box\n",
                        p + 1, (const char *)t, x1, y1, x2, y2);
                bad++;
            }
            total++;
            xmlFree(t);
        }
    }
    xmlFreeDoc(d);
    for (size_t p = 0; p < np; p++)
        ex_lines_free(L[p]);
    free(L);
    if (!bad)
        printf("%zu words inside their lines' boxes\n", total);
    return bad ? 1 : 0;
}

static void append_nows(struct dp_buf *b, const char *s) {
    for (; *s; s++)
        if (*s != ' ' && *s != '\n' && *s != '\t' && *s != '\r' && *s != '\f')
            dp_buf_putc(b, *s);
}

static int text(const char *txt, const char *rawdir, const char *schema) {
    size_t np = 0;
    struct ex_lines **L = load_lines(rawdir, schema, &np);
    char *data = NULL;
    size_t len = 0;
    struct dp_err err = {0};
    if (!L || dp_file_read(txt, DP_MAX_TEXT_BYTES, &data, &len, &err) != DP_OK)
        return 1;
    struct dp_buf want, got;
    dp_buf_init(&want, DP_MAX_TEXT_BYTES);
    dp_buf_init(&got, DP_MAX_TEXT_BYTES);
    append_nows(&got, data);
    for (size_t p = 0; p < np; p++) {
        for (size_t r = 0; r < L[p]->n_regions; r++)
            for (size_t i = 0; i < L[p]->regions[r].n_lines; i++)
                if (L[p]->regions[r].lines[i].has_box)
                    append_nows(&want, L[p]->regions[r].lines[i].text);
        ex_lines_free(L[p]);
    }
    free(L);
    int rc = want.len && got.len == want.len && !memcmp(got.data, want.data, got.len) ? 0 : 1;
    if (rc)
        fprintf(stderr, "text: pdftotext gives\n%.*s\nthe answer's lines are\n%.*s\n",
                (int)got.len, got.data ? got.data : "", (int)want.len,
                want.data ? want.data : "");
    dp_buf_free(&want);
    dp_buf_free(&got);
    dp_free(data);
    return rc;
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "size"))
        return size(argv[2]);
    if (argc == 5 && !strcmp(argv[1], "imgcmp"))
        return imgcmp(argv[2], argv[3], (int)strtol(argv[4], NULL, 10));
    if (argc == 5 && !strcmp(argv[1], "words"))
        return words(argv[2], argv[3], argv[4], 0, 0);
    if (argc == 7 && !strcmp(argv[1], "words"))
        return words(argv[2], argv[3], argv[4], strtod(argv[5], NULL), strtod(argv[6], NULL));
    if (argc == 5 && !strcmp(argv[1], "text"))
        return text(argv[2], argv[3], argv[4]);
    fprintf(stderr, "usage: archive_tool imgcmp A B TOL | words BBOX RAWDIR SCHEMA | "
                    "text TXT RAWDIR SCHEMA\n");
    return 2;
}
