/* Page ingestion (dpingest): sniffing by magic bytes, --pages parsing, every file in samples/
 * opens and renders or fails with its specific error, TIFF decodes equal the libtiff
 * reference PNMs, passwords (needed vs wrong), PDF /Rotate, EXIF orientation, PDF pages at
 * the smart_resize target, pixel caps on synthetic huge PDF/TIFF/PNG headers (tiny on disk,
 * built here), and an allocation-failure loop (clean errors, no leaks under ASan). */
#include "t.h"

#include "dp_alloc.h"
#include "dp_ingest.h"
#include "dp_vl.h"

#include <dirent.h>
#include <jpeglib.h>
#include <pthread.h>
#include <sys/stat.h>

#define SRC(rel) t_path(pbuf, sizeof pbuf, "DP_SOURCE_DIR", rel)
static char pbuf[1024];

/* ---- helpers --------------------------------------------------------------------------- */

static enum dp_status open_render(const char *path, const struct dp_ingest_opts *o, int page,
                                  struct dp_page *pg, struct dp_err *e) {
    memset(pg, 0, sizeof *pg);
    struct dp_doc *d = NULL;
    enum dp_status st = dp_doc_open(&d, path, o, e);
    if (st == DP_OK)
        st = dp_doc_render(pg, d, page, e);
    dp_doc_close(d);
    return st;
}

static enum dp_status open_mem_render(const void *buf, size_t n, const struct dp_ingest_opts *o,
                                      struct dp_page *pg, struct dp_err *e) {
    memset(pg, 0, sizeof *pg);
    struct dp_doc *d = NULL;
    enum dp_status st = dp_doc_open_mem(&d, buf, n, "synthetic", o, e);
    if (st == DP_OK)
        st = dp_doc_render(pg, d, 0, e);
    dp_doc_close(d);
    return st;
}

/* A one-page PDF with correct xref offsets. */
static size_t make_pdf(char *out, size_t cap, double w, double h, int rotate, const char *content) {
    size_t off[5];
    int n = 0;
    n += snprintf(out + n, cap - (size_t)n, "%%PDF-1.4\n");
    off[1] = (size_t)n;
    n += snprintf(out + n, cap - (size_t)n, "1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n");
    off[2] = (size_t)n;
    n += snprintf(out + n, cap - (size_t)n,
                  "2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n");
    off[3] = (size_t)n;
    n += snprintf(out + n, cap - (size_t)n,
                  "3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 %g %g] /Rotate %d "
                  "/Contents 4 0 R >> endobj\n",
                  w, h, rotate);
    off[4] = (size_t)n;
    n += snprintf(out + n, cap - (size_t)n, "4 0 obj << /Length %zu >> stream\n%s\nendstream endobj\n",
                  strlen(content), content);
    size_t xref = (size_t)n;
    n += snprintf(out + n, cap - (size_t)n, "xref\n0 5\n0000000000 65535 f \n");
    for (int i = 1; i < 5; i++)
        n += snprintf(out + n, cap - (size_t)n, "%010zu 00000 n \n", off[i]);
    n += snprintf(out + n, cap - (size_t)n,
                  "trailer << /Size 5 /Root 1 0 R >>\nstartxref\n%zu\n%%%%EOF\n", xref);
    return (size_t)n;
}

static void put16(uint8_t *p, unsigned v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static void put32le(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static void put32be(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (24 - 8 * i));
}

/* Little-endian bilevel TIFF header claiming w x h pixels (no pixel data). */
static size_t make_tiff(uint8_t *b, uint32_t w, uint32_t h) {
    static const uint16_t tags[][2] = {{256, 4}, {257, 4}, {258, 3}, {259, 3},
                                       {262, 3}, {273, 4}, {278, 4}, {279, 4}};
    const uint32_t vals[] = {w, h, 1, 1, 1, 8, h, 1};
    const int n = 8;
    memcpy(b, "II*\0", 4);
    put32le(b + 4, 8);
    put16(b + 8, n);
    for (int i = 0; i < n; i++) {
        uint8_t *e = b + 10 + 12 * i;
        put16(e, tags[i][0]);
        put16(e + 2, tags[i][1]);
        put32le(e + 4, 1);
        put32le(e + 8, vals[i]);
    }
    put32le(b + 10 + 12 * n, 0);
    return 10 + 12 * (size_t)n + 4;
}

static uint32_t crc32_of(const uint8_t *p, size_t n) {
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
    }
    return c ^ 0xffffffffu;
}

/* PNG signature + IHDR (w x h RGB8) + an empty IDAT + IEND: a header, no image data. */
static size_t make_png(uint8_t *b, uint32_t w, uint32_t h) {
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    memcpy(b, sig, 8);
    put32be(b + 8, 13);
    memcpy(b + 12, "IHDR", 4);
    put32be(b + 16, w);
    put32be(b + 20, h);
    b[24] = 8, b[25] = 2, b[26] = 0, b[27] = 0, b[28] = 0;
    put32be(b + 29, crc32_of(b + 12, 17));
    for (int k = 0; k < 2; k++) {
        uint8_t *c = b + 33 + 12 * k;
        put32be(c, 0);
        memcpy(c + 4, k ? "IEND" : "IDAT", 4);
        put32be(c + 8, crc32_of(c + 4, 4));
    }
    return 57;
}

/* ---- tests ----------------------------------------------------------------------------- */

static void test_sniff(void) {
    const uint8_t pdf[] = "junk\n%PDF-1.7\n", tif_le[] = {'I', 'I', 42, 0},
                  tif_be[] = {'M', 'M', 0, 42}, big[] = {'I', 'I', 43, 0},
                  png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'}, jpg[] = {0xff, 0xd8, 0xff},
                  zip[] = {'P', 'K', 3, 4};
    T_EQ_I64(dp_format_sniff(pdf, sizeof pdf - 1), DP_FORMAT_PDF);
    T_EQ_I64(dp_format_sniff(tif_le, 4), DP_FORMAT_TIFF);
    T_EQ_I64(dp_format_sniff(tif_be, 4), DP_FORMAT_TIFF);
    T_EQ_I64(dp_format_sniff(big, 4), DP_FORMAT_TIFF);
    T_EQ_I64(dp_format_sniff(png, 8), DP_FORMAT_PNG);
    T_EQ_I64(dp_format_sniff(jpg, 3), DP_FORMAT_JPEG);
    T_EQ_I64(dp_format_sniff(zip, 4), DP_FORMAT_UNKNOWN);
    T_EQ_I64(dp_format_sniff(png, 0), DP_FORMAT_UNKNOWN);
    enum dp_format f = DP_FORMAT_UNKNOWN;
    struct dp_err e = {0};
    /* JPEG bytes named .png: the content decides */
    T_CHECK(dp_format_sniff_file(&f, SRC("samples/qwen25vl_cookbooks/docparsing_example6.png"), &e) ==
            DP_OK);
    T_EQ_I64(f, DP_FORMAT_JPEG);
    T_EQ_STR(dp_format_name(DP_FORMAT_TIFF), "tiff");
    /* a non-document (file or memory, empty or not) is DP_ERR_UNSUPPORTED, as dp_ingest.h says */
    struct dp_err e2 = {0};
    T_EQ_I64(dp_format_sniff_file(&f, SRC("samples/SOURCES.md"), &e2), DP_ERR_UNSUPPORTED);
    T_CHECK(strstr(e2.msg, "SOURCES.md: not a PDF, TIFF, PNG or JPEG") != NULL);
    struct dp_doc *d = NULL;
    struct dp_err e3 = {0};
    T_EQ_I64(dp_doc_open_mem(&d, zip, sizeof zip, "a.zip", NULL, &e3), DP_ERR_UNSUPPORTED);
    T_CHECK(d == NULL && strstr(e3.msg, "a.zip") != NULL);
    struct dp_err e4 = {0};
    T_EQ_I64(dp_doc_open_mem(&d, zip, 0, "empty.bin", NULL, &e4), DP_ERR_UNSUPPORTED);
    T_CHECK(strstr(e4.msg, "empty file") != NULL);
}

static void test_page_sel(void) {
    struct dp_page_sel s;
    struct dp_err e = {0};
    T_CHECK(dp_page_sel_parse(&s, "1-3,7", &e) == DP_OK);
    T_CHECK(dp_page_sel_has(&s, 1) && dp_page_sel_has(&s, 3) && dp_page_sel_has(&s, 7));
    T_CHECK(!dp_page_sel_has(&s, 4) && !dp_page_sel_has(&s, 8));
    T_CHECK(dp_page_sel_check(&s, 7, "x", &e) == DP_OK);
    char note[256] = "";
    T_CHECK(!dp_page_sel_beyond(&s, 7, note, sizeof note));
    /* one rule for every form (issue 15, item 9): pages beyond the end are ignored with a
     * warning; only a selection that keeps no page at all fails */
    T_CHECK(dp_page_sel_check(&s, 5, "x", &e) == DP_OK && dp_page_sel_count(&s, 5) == 3);
    T_CHECK(dp_page_sel_beyond(&s, 5, note, sizeof note));
    T_CHECK_MSG(strstr(note, "--pages 1-3,7: page 7 is beyond the end of the document (5 pages)"),
                "%s", note);
    T_CHECK(dp_page_sel_check(&s, 2, "x", &e) == DP_OK && dp_page_sel_count(&s, 2) == 2);
    T_CHECK(dp_page_sel_beyond(&s, 2, note, sizeof note));
    T_CHECK_MSG(strstr(note, "pages 3,7 are beyond the end of the document (2 pages)"), "%s", note);
    T_CHECK(dp_page_sel_check(&s, 1, "x", &e) == DP_OK && dp_page_sel_count(&s, 1) == 1);
    T_CHECK(dp_page_sel_beyond(&s, 1, note, sizeof note));
    T_CHECK_MSG(strstr(note, "pages 2-3,7 are beyond the end of the document (1 page)"), "%s", note);
    dp_page_sel_free(&s);
    T_CHECK(dp_page_sel_parse(&s, "5-", &e) == DP_OK);
    T_CHECK(dp_page_sel_has(&s, 5000) && !dp_page_sel_has(&s, 4));
    T_CHECK(dp_page_sel_check(&s, 5, "x", &e) == DP_OK && !dp_page_sel_beyond(&s, 5, note, 256));
    struct dp_err e2 = {0};
    T_CHECK(dp_page_sel_check(&s, 4, "x.pdf", &e2) == DP_ERR_USAGE);
    T_CHECK_MSG(strstr(e2.msg, "x.pdf: --pages 5- selects no page (the document has 4)"), "%s",
                e2.msg);
    dp_page_sel_free(&s);
    T_CHECK(dp_page_sel_parse(&s, "1,3", &e) == DP_OK);
    T_CHECK(dp_page_sel_check(&s, 1, "x", &e) == DP_OK && dp_page_sel_beyond(&s, 1, note, 256));
    T_CHECK_MSG(strstr(note, ": page 3 is beyond"), "%s", note);
    dp_page_sel_free(&s);
    T_CHECK(dp_page_sel_parse(&s, "2-", &e) == DP_OK);
    T_CHECK(dp_page_sel_check(&s, 1, "x", &e) == DP_ERR_USAGE);
    dp_page_sel_free(&s);
    T_CHECK(dp_page_sel_parse(&s, NULL, &e) == DP_OK && s.n == 0 && dp_page_sel_has(&s, 9));
    const char *bad[] = {"0", "3-1", "1,,2", "a", "1-2-3", "1,", "-2", "1 2", "99999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct dp_err be = {0};
        T_CHECK_MSG(dp_page_sel_parse(&s, bad[i], &be) == DP_ERR_USAGE && s.n == 0,
                    "'%s' should be refused", bad[i]);
    }
}

/* Expected failures among samples/; every other file in a supported format must render. */
static const struct {
    const char *file;
    enum dp_status code;
} expected_failures[] = {
    {"libtiff/test_float64_predictor2_le_lzw.tif", DP_ERR_UNSUPPORTED},
    {"libtiff/test_ifd_loop_to_first.tif", DP_ERR_FORMAT},
    {"libtiff/test_ifd_loop_to_self.tif", DP_ERR_FORMAT},
    {"libtiff/testfax3_bug_513.tiff", DP_ERR_FORMAT},
    {"pdfplumber/password-example.pdf", DP_ERR_PASSWORD},
    {"qpdf/encrypted-40-bit-R3.pdf", DP_ERR_PASSWORD},
};

static enum dp_status expected_code(const char *rel, const char *path) {
    for (size_t i = 0; i < sizeof expected_failures / sizeof expected_failures[0]; i++)
        if (!strcmp(rel, expected_failures[i].file))
            return expected_failures[i].code;
    enum dp_format f = DP_FORMAT_UNKNOWN;
    struct dp_err e = {0};
    return dp_format_sniff_file(&f, path, &e) == DP_OK ? DP_OK : DP_ERR_UNSUPPORTED;
}

static void sweep_file(const char *rel, const char *path, int *n_ok, int *n_fail) {
    struct dp_ingest_opts o;
    dp_ingest_opts_init(&o);
    o.max_pixels = 1 << 20; /* keep PDF renders small: this is about robustness */
    enum dp_status want = expected_code(rel, path);
    struct dp_err e = {0};
    struct dp_doc *d = NULL;
    enum dp_status st = dp_doc_open(&d, path, &o, &e);
    int n = st == DP_OK ? dp_doc_page_count(d) : 0;
    for (int i = 0; st == DP_OK && i < n; i++) {
        if (i >= 2 && i != n - 1)
            continue; /* first two and last pages */
        struct dp_page pg;
        st = dp_doc_render(&pg, d, i, &e);
        if (st == DP_OK) {
            T_CHECK_MSG(pg.rgb && pg.width > 0 && pg.height > 0 && pg.page_no == i + 1,
                        "%s page %d: empty page", rel, i + 1);
            if (pg.format == DP_FORMAT_PDF)
                T_CHECK_MSG(pg.width % 28 == 0 && pg.height % 28 == 0 && pg.at_target,
                            "%s: PDF page %dx%d not at a smart_resize size", rel, pg.width,
                            pg.height);
        }
        dp_page_free(&pg);
    }
    dp_doc_close(d);
    T_CHECK_MSG(st == want, "%s: got %d (%s), expected %d", rel, st, e.msg, want);
    if (st != DP_OK)
        T_CHECK_MSG(strstr(e.msg, path) != NULL, "%s: message does not name the file: %s", rel,
                    e.msg);
    *(st == DP_OK ? n_ok : n_fail) += 1;
}

static void test_samples(void) {
    const char *root = getenv("DP_SOURCE_DIR");
    char dir[1024], path[2048], rel[1024];
    snprintf(dir, sizeof dir, "%s/samples", root ? root : ".");
    DIR *top = opendir(dir);
    T_CHECK(top != NULL);
    if (!top)
        return;
    int n_ok = 0, n_fail = 0;
    struct dirent *a;
    while ((a = readdir(top)) != NULL) {
        if (a->d_name[0] == '.')
            continue;
        char sub[1536];
        snprintf(sub, sizeof sub, "%s/%s", dir, a->d_name);
        DIR *dh = opendir(sub);
        if (!dh)
            continue;
        struct dirent *b;
        while ((b = readdir(dh)) != NULL) {
            if (b->d_name[0] == '.')
                continue;
            snprintf(path, sizeof path, "%s/%s", sub, b->d_name);
            snprintf(rel, sizeof rel, "%s/%s", a->d_name, b->d_name);
            struct stat sb;
            if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode))
                sweep_file(rel, path, &n_ok, &n_fail);
        }
        closedir(dh);
    }
    closedir(top);
    printf("samples: %d rendered, %d refused\n", n_ok, n_fail);
    T_CHECK(n_ok >= 40);
}

/* libtiff's reference PNMs (P5/P6 8-bit or 16-bit, P4 bilevel) vs our decode. */
static void compare_pnm(const char *tif, const char *pnm, int tol) {
    char p1[1024], p2[1024];
    struct dp_page pg;
    struct dp_err e = {0};
    T_CHECK(open_render(t_path(p1, sizeof p1, "DP_SOURCE_DIR", tif), NULL, 0, &pg, &e) == DP_OK);
    FILE *fp = fopen(t_path(p2, sizeof p2, "DP_SOURCE_DIR", pnm), "rb");
    T_CHECK(fp != NULL);
    int w = 0, h = 0, maxv = 1;
    char magic[3] = "";
    if (fp && fscanf(fp, "%2s %d %d", magic, &w, &h) == 3 && (magic[1] == '4' || fscanf(fp, "%d", &maxv) == 1)) {
        fgetc(fp);
        T_EQ_I64(w, pg.width);
        T_EQ_I64(h, pg.height);
        int bad = 0, worst = 0;
        int rowbits = (w + 7) / 8;
        for (int y = 0; y < h && w == pg.width && h == pg.height; y++) {
            uint8_t bits[4096];
            if (magic[1] == '4' && fread(bits, 1, (size_t)rowbits, fp) != (size_t)rowbits)
                break;
            for (int x = 0; x < w; x++) {
                int want[3];
                if (magic[1] == '4') {
                    int v = (bits[x / 8] >> (7 - x % 8)) & 1 ? 0 : 255; /* 1 = black */
                    want[0] = want[1] = want[2] = v;
                } else {
                    int ch = magic[1] == '6' ? 3 : 1;
                    for (int c = 0; c < ch; c++) {
                        int v = fgetc(fp);
                        if (maxv > 255) /* PIL's ";16" unpackers keep the high byte */
                            v = (v << 8 | fgetc(fp)) >> 8;
                        want[c] = v;
                    }
                    if (ch == 1)
                        want[1] = want[2] = want[0];
                }
                for (int c = 0; c < 3; c++) {
                    int d = abs(want[c] - pg.rgb[((size_t)y * (size_t)w + (size_t)x) * 3 + (size_t)c]);
                    bad += d > tol;
                    worst = d > worst ? d : worst;
                }
            }
        }
        T_CHECK_MSG(bad == 0, "%s vs %s: %d samples differ (worst %d)", tif, pnm, bad, worst);
    }
    if (fp)
        fclose(fp);
    dp_page_free(&pg);
}

static void test_tiff_references(void) {
    compare_pnm("samples/libtiff/rgb-3c-8b.tiff", "samples/libtiff/rgb-3c-8b.ppm", 0);
    compare_pnm("samples/libtiff/minisblack-1c-8b.tiff", "samples/libtiff/minisblack-1c-8b.pgm", 0);
    compare_pnm("samples/libtiff/miniswhite-1c-1b.tiff", "samples/libtiff/miniswhite-1c-1b.pbm", 0);
    compare_pnm("samples/libtiff/rgb-3c-16b.tiff", "samples/libtiff/rgb-3c-16b.ppm", 0);
    /* Pillow's own decode (+ the processor's composite over white) of random samples: 16-bit,
     * byte orders, alpha unassociated and associated, grey + alpha, CMYK 8/16, min-is-white */
    static const char *const pil_cases[] = {"rgb16-be", "rgba16-le-lzw", "rgba8", "rgba8-assoc",
                                            "la8", "cmyk8", "cmyk16-be", "minwhite8"};
    for (size_t i = 0; i < sizeof pil_cases / sizeof *pil_cases; i++) {
        char tif[128], ppm[128];
        snprintf(tif, sizeof tif, "tests/ingest/pil/%s.tif", pil_cases[i]);
        snprintf(ppm, sizeof ppm, "tests/ingest/pil/%s.ppm", pil_cases[i]);
        compare_pnm(tif, ppm, 0);
    }
    /* multi-page */
    struct dp_doc *d = NULL;
    struct dp_err e = {0};
    T_CHECK(dp_doc_open(&d, SRC("samples/libtiff/test_two_ifds.tif"), NULL, &e) == DP_OK);
    T_EQ_I64(d ? dp_doc_page_count(d) : 0, 2);
    dp_doc_close(d);
    struct dp_err e2 = {0};
    T_CHECK(dp_doc_open(&d, SRC("samples/libtiff/test_ifd_loop_to_first.tif"), NULL, &e2) ==
            DP_ERR_FORMAT);
    T_CHECK(strstr(e2.msg, "IFD loop") != NULL);
}

/* tests/fuzz/corpus/tiff/rgb8-lzw-orient6.tif (tests/ingest/gen_corpus.c): 24x16 RGB, byte i
 * of row y is (10*i + 7*y) & 255, Orientation 6 (rotate 90 clockwise to display). */
static void test_tiff_orientation(void) {
    struct dp_page pg;
    struct dp_err e = {0};
    T_CHECK(open_render(SRC("tests/fuzz/corpus/tiff/rgb8-lzw-orient6.tif"), NULL, 0, &pg, &e) ==
            DP_OK);
    const int sw = 24, sh = 16;
    T_EQ_I64(pg.width, sh);
    T_EQ_I64(pg.height, sw);
    T_EQ_I64(pg.orientation, 6);
    T_NEAR(pg.x_resolution, 300, 1e-6);
    T_NEAR(pg.dpi, 300, 1e-6);
    int bad = 0;
    for (int y = 0; y < pg.height && pg.rgb && pg.width == sh; y++)
        for (int x = 0; x < pg.width; x++)
            for (int c = 0; c < 3; c++) {
                int sx = y, sy = sh - 1 - x; /* dst(x, y) = src(y, h-1-x) */
                int want = (10 * (3 * sx + c) + 7 * sy) & 255;
                bad += pg.rgb[((size_t)y * (size_t)pg.width + (size_t)x) * 3 + (size_t)c] != want;
            }
    T_CHECK_MSG(bad == 0, "orientation 6: %d samples differ", bad);
    dp_page_free(&pg);
}

static void test_passwords(void) {
    struct dp_ingest_opts o;
    dp_ingest_opts_init(&o);
    o.max_pixels = 1 << 18;
    struct dp_page pg;
    struct dp_err e1 = {0}, e2 = {0}, e3 = {0}, e4 = {0};
    const char *pw = SRC("samples/pdfplumber/password-example.pdf");
    T_CHECK(open_render(pw, &o, 0, &pg, &e1) == DP_ERR_PASSWORD);
    T_CHECK(strstr(e1.msg, "needs a password") != NULL);
    o.password = "not-it";
    T_CHECK(open_render(pw, &o, 0, &pg, &e2) == DP_ERR_PASSWORD);
    T_CHECK(strstr(e2.msg, "wrong password") != NULL);
    o.password = "test";
    T_CHECK(open_render(pw, &o, 0, &pg, &e3) == DP_OK);
    dp_page_free(&pg);
    o.password = "623";
    T_CHECK(open_render(SRC("samples/qpdf/encrypted-40-bit-R3.pdf"), &o, 0, &pg, &e4) == DP_OK);
    dp_page_free(&pg);
}

static void test_pdf_geometry(void) {
    static char buf[4096];
    const char *left_black = "0 0 0 rg 0 0 50 100 re f"; /* left quarter of a 200x100 page */
    struct dp_ingest_opts o;
    dp_ingest_opts_init(&o);
    struct dp_page pg;
    struct dp_err e = {0};
    size_t n = make_pdf(buf, sizeof buf, 200, 100, 0, left_black);
    T_CHECK(open_mem_render(buf, n, &o, &pg, &e) == DP_OK);
    /* 200x100 pt at 150 dpi = 417x208 px -> smart_resize (420, 224)... width > height */
    T_CHECK(pg.width > pg.height && pg.width % 28 == 0 && pg.height % 28 == 0);
    T_NEAR(pg.width_pt, 200, 1e-9);
    T_EQ_I64(pg.rotation, 0);
    if (pg.rgb) {
        T_EQ_I64(pg.rgb[((size_t)(pg.height / 2) * (size_t)pg.width + 5) * 3], 0);
        T_EQ_I64(pg.rgb[((size_t)(pg.height / 2) * (size_t)pg.width + (size_t)pg.width - 5) * 3], 255);
    }
    dp_page_free(&pg);
    /* /Rotate 90 (clockwise): the left edge becomes the top */
    n = make_pdf(buf, sizeof buf, 200, 100, 90, left_black);
    T_CHECK(open_mem_render(buf, n, &o, &pg, &e) == DP_OK);
    T_CHECK(pg.height > pg.width);
    T_NEAR(pg.width_pt, 100, 1e-9);
    T_EQ_I64(pg.rotation, 90);
    if (pg.rgb) {
        size_t top = ((size_t)5 * (size_t)pg.width + (size_t)pg.width / 2) * 3;
        size_t bottom = ((size_t)(pg.height - 5) * (size_t)pg.width + (size_t)pg.width / 2) * 3;
        T_EQ_I64(pg.rgb[top], 0);
        T_EQ_I64(pg.rgb[bottom], 255);
    }
    dp_page_free(&pg);
    /* transparent page: nothing drawn -> white after flattening */
    n = make_pdf(buf, sizeof buf, 100, 100, 0, "");
    T_CHECK(open_mem_render(buf, n, &o, &pg, &e) == DP_OK);
    T_EQ_I64(pg.rgb ? pg.rgb[0] + pg.rgb[1] + pg.rgb[2] : 0, 3 * 255);
    dp_page_free(&pg);
    /* letter at 150 dpi: 1275x1650 -> (1652, 1288) under the checkpoint's 12.8 Mpx budget (the
     * default budget of 1 Mpx would shrink it); dpi recorded from the real scale */
    o.max_pixels = VL_IMAGE_DEFAULT_MAX_PIXELS;
    n = make_pdf(buf, sizeof buf, 612, 792, 0, "");
    T_CHECK(open_mem_render(buf, n, &o, &pg, &e) == DP_OK);
    T_EQ_I64(pg.width, 1288);
    T_EQ_I64(pg.height, 1652);
    T_NEAR(pg.dpi, 1288.0 / 612.0 * 72.0, 1e-9);
    dp_page_free(&pg);
}

static void test_pixel_caps(void) {
    static char buf[4096];
    static uint8_t tb[256];
    struct dp_ingest_opts o;
    dp_ingest_opts_init(&o);
    o.dpi = 72;
    o.max_pixels = INT64_C(1) << 40; /* let the page size, not the budget, decide */
    struct dp_page pg;
    struct dp_err e1 = {0}, e2 = {0}, e3 = {0}, e4 = {0};
    size_t n = make_pdf(buf, sizeof buf, 35000, 35000, 0, "");
    T_CHECK(open_mem_render(buf, n, &o, &pg, &e1) == DP_ERR_LIMIT);
    T_CHECK(strstr(e1.msg, "pixel limit") && strstr(e1.msg, "page 1"));
    dp_ingest_opts_init(&o);
    n = make_tiff(tb, 35000, 35000);
    T_CHECK(open_mem_render(tb, n, &o, &pg, &e2) == DP_ERR_LIMIT);
    T_CHECK(strstr(e2.msg, "pixel limit") != NULL);
    n = make_png(tb, 35000, 35000);
    T_CHECK_MSG(open_mem_render(tb, n, &o, &pg, &e3) == DP_ERR_LIMIT, "png: %s", e3.msg);
    /* the real 7795x3122 single-strip TIFF against a configured 10 Mpx cap */
    o.max_decode_pixels = 10000000;
    T_CHECK(open_render(SRC("samples/libtiff/lzw-single-strip.tiff"), &o, 0, &pg, &e4) ==
            DP_ERR_LIMIT);
    T_CHECK(strstr(e4.msg, "7795x3122") != NULL);
}

/* JPEG with an EXIF Orientation of 6 (rotate 90 clockwise): left half red, right half blue. */
static void test_exif_orientation(void) {
    const int w = 64, h = 32;
    uint8_t img[64 * 32 * 3];
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = img + ((size_t)y * w + (size_t)x) * 3;
            p[0] = x < w / 2 ? 255 : 0;
            p[1] = 0;
            p[2] = x < w / 2 ? 0 : 255;
        }
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr jerr;
    c.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&c);
    unsigned char *mem = NULL;
    unsigned long len = 0;
    jpeg_mem_dest(&c, &mem, &len);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = 3;
    c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 95, TRUE);
    jpeg_start_compress(&c, TRUE);
    const uint8_t exif[] = {'E', 'x', 'i', 'f', 0, 0, 'M', 'M', 0, 42, 0, 0, 0, 8, 0, 1,
                            0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0};
    jpeg_write_marker(&c, JPEG_APP0 + 1, exif, sizeof exif);
    for (int y = 0; y < h; y++) {
        JSAMPROW r = img + (size_t)y * (size_t)w * 3;
        jpeg_write_scanlines(&c, &r, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    struct dp_page pg;
    struct dp_err e = {0};
    T_CHECK(open_mem_render(mem, len, NULL, &pg, &e) == DP_OK);
    T_EQ_I64(pg.width, h);
    T_EQ_I64(pg.height, w);
    T_EQ_I64(pg.orientation, 6);
    if (pg.rgb) {
        const uint8_t *top = pg.rgb + ((size_t)4 * (size_t)pg.width + (size_t)pg.width / 2) * 3;
        const uint8_t *bot = pg.rgb + ((size_t)(pg.height - 4) * (size_t)pg.width + 4) * 3;
        T_CHECK(top[0] > 200 && top[2] < 60);  /* red on top */
        T_CHECK(bot[2] > 200 && bot[0] < 60);  /* blue at the bottom */
    }
    T_CHECK(dp_page_fit(&pg, &(struct dp_ingest_opts){.factor = 28, .min_pixels = 3136,
                                                      .max_pixels = 12845056,
                                                      .max_decode_pixels = 1 << 24},
                        &e) == DP_OK);
    T_EQ_I64(pg.width, 56); /* smart_resize(64, 32): min branch -> (84, 56) */
    T_EQ_I64(pg.height, 84);
    dp_page_free(&pg);
    /* hostile-input sweep: a JPEG cut short is an error naming the page (libjpeg would pad it
     * with gray and only warn), at every cut point past the header */
    for (unsigned long cut = len / 4; cut < len - 2; cut += len / 4) {
        struct dp_err et = {0};
        T_CHECK_MSG(open_mem_render(mem, cut, NULL, &pg, &et) == DP_ERR_FORMAT, "cut %lu: %s", cut,
                    et.msg);
        T_CHECK_MSG(strstr(et.msg, "page 1") && strstr(et.msg, "JPEG"), "cut %lu: %s", cut, et.msg);
    }
    free(mem);
}

/* Degenerate raster headers from the hostile-input sweep: clear errors, no allocation. */
static void test_degenerate_headers(void) {
    static uint8_t tb[256];
    struct dp_page pg;
    struct dp_err e1 = {0}, e2 = {0}, e3 = {0};
    size_t n = make_tiff(tb, 0, 4); /* 0 width */
    T_EQ_I64(open_mem_render(tb, n, NULL, &pg, &e1), DP_ERR_FORMAT);
    T_CHECK_MSG(strstr(e1.msg, "synthetic") != NULL, "%s", e1.msg);
    n = make_png(tb, 0, 10); /* 0 width: libpng refuses the IHDR */
    T_EQ_I64(open_mem_render(tb, n, NULL, &pg, &e2), DP_ERR_FORMAT);
    n = make_png(tb, 100000, 100000); /* claims 10^10 pixels, has none */
    T_EQ_I64(open_mem_render(tb, n, NULL, &pg, &e3), DP_ERR_LIMIT);
    T_CHECK(strstr(e3.msg, "100000x100000") != NULL);
}

/* Checksum of a page's pixels and size (the reference a run under allocation failures must give). */
static uint64_t page_sum(const struct dp_page *pg) {
    uint64_t h = ((uint64_t)pg->width << 32) ^ (uint64_t)pg->height;
    for (size_t i = 0; pg->rgb && i < (size_t)pg->width * (size_t)pg->height * 3; i++)
        h = h * 1099511628211u + pg->rgb[i];
    return h;
}

/* One ingest run: open, render page 0 and fit it to the budget; a page selection parsed and
 * checked against the page count. *sum: the page's checksum (0 unless DP_OK). */
static enum dp_status ingest_run(const char *path, const struct dp_ingest_opts *o, uint64_t *sum,
                                 struct dp_err *e) {
    struct dp_page pg;
    struct dp_page_sel sel = {0};
    *sum = 0;
    enum dp_status st = open_render(path, o, 0, &pg, e);
    if (st == DP_OK)
        st = dp_page_fit(&pg, o, e);
    if (st == DP_OK)
        st = dp_page_sel_parse(&sel, "1,3-5,2", e);
    if (st == DP_OK)
        st = dp_page_sel_check(&sel, 5, path, e);
    if (st == DP_OK)
        *sum = page_sum(&pg);
    dp_page_sel_free(&sel);
    dp_page_free(&pg);
    return st;
}

/* Allocation-failure torture (as test_extract_oom and test_vl_oom): fail the Nth dp_ allocation
 * for N = 1.. until a run needs no failure, on a TIFF, a JPEG (EXIF), a PNG and a PDF. Every
 * failing run must end in DP_ERR_NOMEM with a message, the run that gets through must give the
 * reference page (a failed allocation never silently changes the pixels), and ASan's leak check
 * covers the error paths. */
static void test_alloc_failures(void) {
    const char *files[] = {"samples/libtiff/palette-1c-8b.tiff",
                           "samples/qwen25vl_cookbooks/ocr_example4.jpg",
                           "samples/invoice2data/AmazonWebServices.png",
                           "samples/invoice2data/oyo.pdf"};
    struct dp_ingest_opts o;
    dp_ingest_opts_init(&o);
    o.max_pixels = 1 << 18;
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        uint64_t ref = 0;
        struct dp_err re = {0};
        T_CHECK_MSG(ingest_run(SRC(files[f]), &o, &ref, &re) == DP_OK, "%s: %s", files[f], re.msg);
        int n;
        for (n = 1; n < 200; n++) {
            uint64_t sum = 0;
            struct dp_err e = {0};
            dp_alloc_fail_after(n);
            enum dp_status st = ingest_run(SRC(files[f]), &o, &sum, &e);
            dp_alloc_fail_after(0);
            if (st == DP_OK) {
                T_CHECK_MSG(sum == ref, "%s: allocation %d failed silently: the page differs",
                            files[f], n);
                break;
            }
            T_CHECK_MSG(st == DP_ERR_NOMEM && e.msg[0], "%s with allocation %d failing: %d %s",
                        files[f], n, st, e.msg);
        }
        T_CHECK_MSG(n > 1 && n < 200, "%s: %d allocation steps", files[f], n);
    }
}

/* Two threads render different documents at once; results equal the serial renders. */
struct render_job {
    const char *path;
    uint64_t sum;
    enum dp_status st;
};

static void *render_thread(void *arg) {
    struct render_job *j = arg;
    struct dp_ingest_opts o;
    dp_ingest_opts_init(&o);
    o.max_pixels = 1 << 18;
    j->sum = 0;
    for (int rep = 0; rep < 3; rep++) {
        struct dp_page pg;
        struct dp_err e = {0};
        j->st = open_render(j->path, &o, 0, &pg, &e);
        for (size_t i = 0; j->st == DP_OK && i < (size_t)pg.width * (size_t)pg.height * 3; i++)
            j->sum = j->sum * 31 + pg.rgb[i];
        dp_page_free(&pg);
    }
    return NULL;
}

static void test_threads(void) {
    char a[1024], b[1024];
    struct render_job serial[2] = {{t_path(a, sizeof a, "DP_SOURCE_DIR", "samples/invoice2data/oyo.pdf"), 0, 0},
                                   {t_path(b, sizeof b, "DP_SOURCE_DIR", "samples/invoice2data/AzureInterior.pdf"), 0, 0}};
    struct render_job par[2] = {serial[0], serial[1]};
    render_thread(&serial[0]);
    render_thread(&serial[1]);
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, render_thread, &par[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    T_CHECK(serial[0].st == DP_OK && serial[1].st == DP_OK);
    T_CHECK(par[0].st == DP_OK && par[1].st == DP_OK);
    T_CHECK(par[0].sum == serial[0].sum && par[1].sum == serial[1].sum);
}

/* The one libvl -> docproc boundary (dp_vl.h): twins kept, the caller's code for the rest. */
static void test_vl_boundary(void) {
    T_EQ_I64(dp_vl_status(VL_OK, DP_ERR_MODEL), DP_OK);
    T_EQ_I64(dp_vl_status(VL_ERR_NOMEM, DP_ERR_MODEL), DP_ERR_NOMEM);
    T_EQ_I64(dp_vl_status(VL_ERR_LIMIT, DP_ERR_FORMAT), DP_ERR_LIMIT);
    T_EQ_I64(dp_vl_status(VL_ERR_CANCELLED, DP_ERR_MODEL), DP_ERR_CANCELLED);
    T_EQ_I64(dp_vl_status(VL_ERR_IO, DP_ERR_MODEL), DP_ERR_MODEL);
    T_EQ_I64(dp_vl_status(VL_ERR_INTERNAL, DP_ERR_FORMAT), DP_ERR_FORMAT);
    T_EQ_I64(dp_vl_status(VL_ERR_IO, DP_OK), DP_ERR_IO);
    T_EQ_I64(dp_vl_status(VL_ERR_FORMAT, DP_OK), DP_ERR_FORMAT);
    T_EQ_I64(dp_vl_status(VL_ERR_UNSUPPORTED, DP_OK), DP_ERR_UNSUPPORTED);
    T_EQ_I64(dp_vl_status(VL_ERR_MODEL, DP_OK), DP_ERR_MODEL);
    T_EQ_I64(dp_vl_status(VL_ERR_INVALID, DP_OK), DP_ERR_FORMAT);
    T_EQ_I64(dp_vl_status(VL_ERR_INTERNAL, DP_OK), DP_ERR_INTERNAL);
    struct vl_error ve = {.code = VL_ERR_LIMIT, .msg = "prompt has 9 tokens, context is 8"};
    struct dp_err err = {0};
    T_EQ_I64(dp_vl_err(&err, &ve, DP_ERR_MODEL, "page %d", 3), DP_ERR_LIMIT);
    T_EQ_I64(err.code, DP_ERR_LIMIT);
    T_EQ_STR(err.msg, "page 3: prompt has 9 tokens, context is 8");
    struct dp_err e2 = {0};
    ve.code = VL_ERR_FORMAT;
    T_EQ_I64(dp_vl_err(&e2, &ve, DP_ERR_MODEL, NULL), DP_ERR_MODEL);
    T_EQ_STR(e2.msg, "prompt has 9 tokens, context is 8");
    /* a message that names the prefix already is not prefixed twice */
    struct vl_error vp = {.code = VL_ERR_IO, .msg = "/m/x.gguf: No such file or directory"};
    struct dp_err e3 = {0};
    T_EQ_I64(dp_vl_err(&e3, &vp, DP_ERR_MODEL, "%s", "/m/x.gguf"), DP_ERR_MODEL);
    T_EQ_STR(e3.msg, "/m/x.gguf: No such file or directory");
    struct dp_err e4 = {0};
    T_EQ_I64(dp_vl_err(&e4, &vp, DP_ERR_MODEL, "%s", "/m/x"), DP_ERR_MODEL);
    T_EQ_STR(e4.msg, "/m/x: /m/x.gguf: No such file or directory");
}

int main(int argc, char **argv) {
    t_args(argc, argv);
    T_RUN(test_vl_boundary);
    T_RUN(test_sniff);
    T_RUN(test_page_sel);
    T_RUN(test_samples);
    T_RUN(test_tiff_references);
    T_RUN(test_tiff_orientation);
    T_RUN(test_passwords);
    T_RUN(test_pdf_geometry);
    T_RUN(test_pixel_caps);
    T_RUN(test_exif_orientation);
    T_RUN(test_degenerate_headers);
    T_RUN(test_alloc_failures);
    T_RUN(test_threads);
    return t_done();
}
