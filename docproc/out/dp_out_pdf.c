/* Searchable PDF writer (dp_out_pdf.h): catalog, page tree, the glyph-less Type0/CIDFontType2
 * font (dp_pdf_font.c) with CIDToGIDMap -> glyph 1 and an identity ToUnicode CMap, and per page
 * the image XObject (JPEG passed through, else Flate: 1-bit, gray or RGB), and a content stream
 * that draws the image over the whole page and sets every word of the lines model in text
 * render mode 3 (invisible), scaled to its box. Classic xref table; /ID from an MD5 of the body.
 * PDF/A-2b extras (XMP, output intent) in dp_pdf_pdfa.c. Thread-safe per call. */
#include "dp_out_pdf.h"
#include "dp_alloc.h"
#include "dp_pdf_impl.h"

#include <glib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#define PT_PER_INCH 72.0
#define NUM_MAX 48
#define CID_RANGE 65536
#define REPLACEMENT_CHAR 0xFFFDu
#define MIN_FONT_PT 0.5

/* ---- object writer -------------------------------------------------------------------------- */

enum dp_status dp__pdf_obj_begin(struct dp__pdf *w, int id) {
    DP_ASSERT(id > 0 && id < w->n_ids);
    w->offs[id] = w->b->len;
    return dp_buf_appendf(w->b, "%d 0 obj\n", id);
}

void dp__pdf_stream(struct dp__pdf *w, int id, const char *dict_extra, const void *data,
                    size_t len) {
    dp__pdf_obj_begin(w, id);
    dp_buf_appendf(w->b, "<< /Length %zu%s >>\nstream\n", len, dict_extra ? dict_extra : "");
    dp_buf_append(w->b, data, len);
    dp_buf_puts(w->b, "\nendstream\nendobj\n");
}

enum dp_status dp__pdf_flate(const void *data, size_t len, uint8_t **out, size_t *out_len) {
    uLongf n = compressBound((uLong)len);
    uint8_t *z = dp_malloc(n ? n : 1);
    if (!z)
        return DP_ERR_NOMEM;
    if (compress2(z, &n, data, (uLong)len, Z_BEST_COMPRESSION) != Z_OK) {
        dp_free(z);
        return DP_ERR_NOMEM;
    }
    *out = z;
    *out_len = n;
    return DP_OK;
}

const char *dp__pdf_num(char *b, double v) {
    g_ascii_formatd(b, NUM_MAX, "%.3f", v);
    size_t n = strlen(b);
    while (n > 1 && b[n - 1] == '0')
        b[--n] = '\0';
    if (b[n - 1] == '.')
        b[--n] = '\0';
    if (!strcmp(b, "-0"))
        strcpy(b, "0");
    return b;
}

void dp__pdf_text_string(struct dp_buf *b, const char *utf8) {
    dp_buf_puts(b, "<FEFF");
    for (const unsigned char *p = (const unsigned char *)(utf8 ? utf8 : ""); *p;) {
        uint32_t cp = 0;
        int k = *p < 0x80 ? 1 : *p < 0xE0 ? 2 : *p < 0xF0 ? 3 : 4;
        cp = k == 1 ? *p : k == 2 ? *p & 0x1Fu : k == 3 ? *p & 0x0Fu : *p & 0x07u;
        p++;
        for (int i = 1; i < k && (*p & 0xC0) == 0x80; i++, p++)
            cp = cp << 6 | (*p & 0x3Fu);
        if (cp >= 0x10000) {
            cp -= 0x10000;
            dp_buf_appendf(b, "%04X%04X", 0xD800u + (cp >> 10), 0xDC00u + (cp & 0x3FFu));
        } else {
            dp_buf_appendf(b, "%04X", cp);
        }
    }
    dp_buf_putc(b, '>');
}

/* ---- JPEG ------------------------------------------------------------------------------------ */

bool dp_pdf_jpeg_info(const uint8_t *d, size_t len, int *w, int *h, int *components) {
    if (len < 4 || d[0] != 0xFF || d[1] != 0xD8)
        return false;
    size_t i = 2;
    while (i + 4 <= len) {
        if (d[i] != 0xFF)
            return false;
        uint8_t m = d[i + 1];
        if (m == 0xFF) { /* fill byte */
            i++;
            continue;
        }
        if (m == 0xD8 || (m >= 0xD0 && m <= 0xD7) || m == 0x01) {
            i += 2;
            continue;
        }
        size_t seg = (size_t)d[i + 2] << 8 | d[i + 3];
        bool sof = m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
        if (sof) {
            if (i + 10 > len || seg < 8)
                return false;
            *h = d[i + 5] << 8 | d[i + 6];
            *w = d[i + 7] << 8 | d[i + 8];
            *components = d[i + 9];
            return *w > 0 && *h > 0 && *components > 0;
        }
        if (m == 0xD9 || m == 0xDA)
            return false;
        i += 2 + seg;
    }
    return false;
}

/* ---- images ---------------------------------------------------------------------------------- */

/* Writes the image XObject of one page (object id). */
static enum dp_status write_image(struct dp__pdf *w, int id, const struct dp_pdf_image *im) {
    if (im->jpeg) {
        const char *cs = im->jpeg_components == 1   ? "/DeviceGray"
                         : im->jpeg_components == 4 ? "/DeviceCMYK /Decode [1 0 1 0 1 0 1 0]"
                                                    : "/DeviceRGB";
        char dict[256];
        snprintf(dict, sizeof dict,
                 " /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace %s"
                 " /BitsPerComponent 8 /Filter /DCTDecode",
                 im->width, im->height, cs);
        dp__pdf_stream(w, id, dict, im->jpeg, im->jpeg_len);
        return DP_OK;
    }
    size_t n = (size_t)im->width * (size_t)im->height;
    bool gray = true, bilevel = true;
    for (size_t i = 0; i < n && gray; i++) {
        const uint8_t *p = im->rgb + 3 * i;
        gray = p[0] == p[1] && p[1] == p[2];
        bilevel = bilevel && (p[0] == 0 || p[0] == 255);
    }
    int bpc = 8, comps = 3;
    size_t row = (size_t)im->width * 3, len;
    if (gray && bilevel) {
        bpc = 1;
        comps = 1;
        row = ((size_t)im->width + 7) / 8;
    } else if (gray) {
        comps = 1;
        row = (size_t)im->width;
    }
    len = row * (size_t)im->height;
    uint8_t *px = comps == 3 ? NULL : dp_calloc(len ? len : 1, 1);
    if (comps != 3 && !px)
        return DP_ERR_NOMEM;
    for (int y = 0; comps != 3 && y < im->height; y++)
        for (int x = 0; x < im->width; x++) {
            uint8_t v = im->rgb[3 * ((size_t)y * (size_t)im->width + (size_t)x)];
            if (bpc == 8)
                px[(size_t)y * row + (size_t)x] = v;
            else if (v)
                px[(size_t)y * row + (size_t)x / 8] |= (uint8_t)(0x80u >> (x % 8));
        }
    uint8_t *z = NULL;
    size_t zl = 0;
    enum dp_status st = dp__pdf_flate(comps == 3 ? im->rgb : px, len, &z, &zl);
    dp_free(px);
    if (st != DP_OK)
        return st;
    char dict[256];
    snprintf(dict, sizeof dict,
             " /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace %s"
             " /BitsPerComponent %d /Filter /FlateDecode",
             im->width, im->height, comps == 3 ? "/DeviceRGB" : "/DeviceGray", bpc);
    dp__pdf_stream(w, id, dict, z, zl);
    dp_free(z);
    return DP_OK;
}

/* ---- font ------------------------------------------------------------------------------------ */

const char dp__pdf_to_unicode[] =
    "/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n"
    "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n"
    "/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n"
    "1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n"
    "1 beginbfrange\n<0000> <FFFF> <0000>\nendbfrange\n"
    "endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n";

enum dp_status dp__pdf_font_data(struct dp__pdf_font_data *out) {
    memset(out, 0, sizeof *out);
    uint8_t *ttf = dp_pdf_glyphless_ttf(&out->ttf_len);
    enum dp_status st = ttf ? dp__pdf_flate(ttf, out->ttf_len, &out->ttf_z, &out->ttf_z_len)
                            : DP_ERR_NOMEM;
    dp_free(ttf);
    /* every CID -> glyph 1: 65536 big-endian 0x0001 */
    uint8_t *map = st == DP_OK ? dp_malloc(2 * CID_RANGE) : NULL;
    if (st == DP_OK && !map)
        st = DP_ERR_NOMEM;
    for (size_t i = 0; map && i < CID_RANGE; i++) {
        map[2 * i] = 0;
        map[2 * i + 1] = 1;
    }
    if (st == DP_OK)
        st = dp__pdf_flate(map, 2 * CID_RANGE, &out->map_z, &out->map_z_len);
    dp_free(map);
    if (st != DP_OK)
        dp__pdf_font_data_free(out);
    return st;
}

void dp__pdf_font_data_free(struct dp__pdf_font_data *f) {
    DP_FREE(f->ttf_z);
    DP_FREE(f->map_z);
}

static enum dp_status write_font(struct dp__pdf *w) {
    dp__pdf_obj_begin(w, DP_PDF_OBJ_FONT);
    dp_buf_appendf(w->b,
                   "<< " DP_PDF_TYPE0_KEYS " /DescendantFonts [%d 0 R] /ToUnicode %d 0 R >>"
                   "\nendobj\n",
                   DP_PDF_OBJ_CIDFONT, DP_PDF_OBJ_TOUNICODE);
    dp__pdf_obj_begin(w, DP_PDF_OBJ_CIDFONT);
    dp_buf_appendf(w->b,
                   "<< " DP_PDF_CIDFONT_KEYS " /FontDescriptor %d 0 R /CIDToGIDMap %d 0 R >>"
                   "\nendobj\n",
                   DP_PDF_GLYPH_WIDTH, DP_PDF_OBJ_DESCRIPTOR, DP_PDF_OBJ_CIDTOGID);
    dp__pdf_obj_begin(w, DP_PDF_OBJ_DESCRIPTOR);
    dp_buf_appendf(w->b, "<< " DP_PDF_DESCRIPTOR_KEYS " /FontFile2 %d 0 R >>\nendobj\n",
                   DP_PDF_GLYPH_WIDTH, DP_PDF_OBJ_FONTFILE);
    struct dp__pdf_font_data f;
    enum dp_status st = dp__pdf_font_data(&f);
    if (st != DP_OK)
        return st;
    char extra[64];
    snprintf(extra, sizeof extra, " /Length1 %zu /Filter /FlateDecode", f.ttf_len);
    dp__pdf_stream(w, DP_PDF_OBJ_FONTFILE, extra, f.ttf_z, f.ttf_z_len);
    dp__pdf_stream(w, DP_PDF_OBJ_CIDTOGID, " /Filter /FlateDecode", f.map_z, f.map_z_len);
    dp__pdf_font_data_free(&f);
    dp__pdf_stream(w, DP_PDF_OBJ_TOUNICODE, NULL, dp__pdf_to_unicode,
                   strlen(dp__pdf_to_unicode));
    return DP_OK;
}

/* ---- text layer ------------------------------------------------------------------------------ */

/* UTF-16 code units of a word as hex (each unit is one CID); returns the unit count. Code points
 * beyond the BMP become U+FFFD: the identity ToUnicode maps single units only. */
static size_t hex_units(struct dp_buf *b, const char *s) {
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        int k = *p < 0x80 ? 1 : *p < 0xE0 ? 2 : *p < 0xF0 ? 3 : 4;
        uint32_t cp = k == 1 ? *p : k == 2 ? *p & 0x1Fu : k == 3 ? *p & 0x0Fu : *p & 0x07u;
        p++;
        for (int i = 1; i < k && (*p & 0xC0) == 0x80; i++, p++)
            cp = cp << 6 | (*p & 0x3Fu);
        if (cp >= 0x10000)
            cp = REPLACEMENT_CHAR;
        dp_buf_appendf(b, "%04X", cp);
        n++;
    }
    return n;
}

void dp__pdf_text_layer(struct dp_buf *c, const struct ex_lines *L, double sx, double sy,
                        double page_h_pt, const char *font) {
    char a[NUM_MAX], bb[NUM_MAX], x[NUM_MAX], y[NUM_MAX];
    dp_buf_puts(c, "BT\n3 Tr\n");
    for (size_t r = 0; r < L->n_regions; r++)
        for (size_t i = 0; i < L->regions[r].n_lines; i++) {
            const struct ex_line *l = &L->regions[r].lines[i];
            if (!l->has_box)
                continue;
            double size = (l->box.y2 - l->box.y1) * sy;
            if (size < MIN_FONT_PT)
                continue;
            for (size_t k = 0; k < l->n_words; k++) {
                const struct ex_word *wd = &l->words[k];
                struct dp_buf hex;
                dp_buf_init(&hex, DP_PDF_MAX_BYTES);
                size_t n = hex_units(&hex, wd->text);
                double width = (wd->box.x2 - wd->box.x1) * sx;
                if (n && width > 0 && hex.status == DP_OK) {
                    double scale = width / ((double)n * DP_PDF_GLYPH_WIDTH / 1000.0 * size);
                    dp_buf_appendf(c, "/%s %s Tf %s 0 0 1 %s %s Tm <%s> Tj\n", font,
                                   dp__pdf_num(a, size),
                                   dp__pdf_num(bb, scale), dp__pdf_num(x, wd->box.x1 * sx),
                                   dp__pdf_num(y, page_h_pt - l->box.y2 * sy), hex.data);
                }
                dp_buf_free(&hex);
            }
        }
    dp_buf_puts(c, "ET\n");
}

static enum dp_status write_page(struct dp__pdf *w, int id, const struct ex_page *pg,
                                 const struct dp_pdf_image *im, const struct ex_tokconf *tc,
                                 int *no_text, struct dp_err *err) {
    struct ex_lines *L = NULL;
    enum dp_status st = ex_lines_build(&L, pg, tc, err);
    if (st != DP_OK)
        return st;
    double dpi = im->dpi > 0 ? im->dpi : DP_PDF_DEFAULT_DPI;
    double wpt = im->width * PT_PER_INCH / dpi, hpt = im->height * PT_PER_INCH / dpi;
    /* the lines model's pixels may differ from the image's (geometry of another render) */
    double sx = wpt / (L->width > 0 ? L->width : im->width);
    double sy = hpt / (L->height > 0 ? L->height : im->height);
    char a[NUM_MAX], b[NUM_MAX];
    dp__pdf_obj_begin(w, id);
    dp_buf_appendf(w->b,
                   "<< /Type /Page /Parent %d 0 R /MediaBox [0 0 %s %s] /Resources << /XObject"
                   " << /Im0 %d 0 R >> /Font << /F0 %d 0 R >> >> /Contents %d 0 R >>\nendobj\n",
                   DP_PDF_OBJ_PAGES, dp__pdf_num(a, wpt), dp__pdf_num(b, hpt), id + 2,
                   DP_PDF_OBJ_FONT, id + 1);
    struct dp_buf c;
    dp_buf_init(&c, DP_PDF_MAX_BYTES);
    dp_buf_appendf(&c, "q\n%s 0 0 %s 0 0 cm\n/Im0 Do\nQ\n", a, b);
    if (L->n_boxed_lines)
        dp__pdf_text_layer(&c, L, sx, sy, hpt, "F0");
    else
        (*no_text)++;
    ex_lines_free(L);
    st = c.status;
    uint8_t *z = NULL;
    size_t zl = 0;
    if (st == DP_OK)
        st = dp__pdf_flate(c.data, c.len, &z, &zl);
    dp_buf_free(&c);
    if (st == DP_OK)
        dp__pdf_stream(w, id + 1, " /Filter /FlateDecode", z, zl);
    dp_free(z);
    if (st == DP_OK)
        st = write_image(w, id + 2, im);
    if (st != DP_OK)
        return dp_err_set(err, st, "page %d: %s writing the PDF page", pg->number,
                          dp_status_str(st));
    return DP_OK;
}

/* ---- document -------------------------------------------------------------------------------- */

enum dp_status dp_out_pdf(const struct ex_doc *doc, const struct dp_pdf_image *images, size_t n,
                          const struct ex_tokconf *conf, const struct dp_pdf_opts *opts,
                          struct dp_buf *out, int *pages_without_text, struct dp_err *err) {
    *pages_without_text = 0;
    if (n != doc->n_pages || n == 0)
        return dp_err_set(err, DP_ERR_FORMAT, "%s: %zu page images for %zu pages", doc->source, n,
                          doc->n_pages);
    for (size_t i = 0; i < n; i++)
        if (images[i].width <= 0 || images[i].height <= 0 || (!images[i].jpeg && !images[i].rgb))
            return dp_err_set(err, DP_ERR_FORMAT, "%s: page %zu: no image", doc->source, i + 1);
    struct dp__pdf w = {.b = out, .pdfa = opts && opts->pdfa};
    w.n_ids = DP_PDF_OBJ_FIRST_PAGE + 3 * (int)n;
    w.offs = dp_calloc((size_t)w.n_ids, sizeof *w.offs);
    if (!w.offs)
        return dp_err_set(err, DP_ERR_NOMEM, "%s: out of memory", doc->source);
    size_t start = out->len;
    w.base = start;
    dp_buf_puts(out, "%PDF-1.7\n%\xE2\xE3\xCF\xD3\n");
    dp__pdf_obj_begin(&w, DP_PDF_OBJ_CATALOG);
    dp_buf_appendf(out, "<< /Type /Catalog /Pages %d 0 R", DP_PDF_OBJ_PAGES);
    if (w.pdfa)
        dp_buf_appendf(out, " /Metadata %d 0 R /OutputIntents [%d 0 R]", DP_PDF_OBJ_XMP,
                       DP_PDF_OBJ_INTENT);
    dp_buf_puts(out, " >>\nendobj\n");
    dp__pdf_obj_begin(&w, DP_PDF_OBJ_PAGES);
    dp_buf_puts(out, "<< /Type /Pages /Kids [");
    for (size_t i = 0; i < n; i++)
        dp_buf_appendf(out, "%s%d 0 R", i ? " " : "", DP_PDF_OBJ_FIRST_PAGE + 3 * (int)i);
    dp_buf_appendf(out, "] /Count %zu >>\nendobj\n", n);
    enum dp_status st = write_font(&w);
    char when[32];
    dp__pdf_date(when, sizeof when);
    const char *title = opts && opts->title ? opts->title : doc->source;
    if (st == DP_OK) {
        dp__pdf_obj_begin(&w, DP_PDF_OBJ_INFO);
        dp_buf_puts(out, "<< /Producer ");
        char prod[128];
        snprintf(prod, sizeof prod, "docproc %s",
                 doc->stamp.docproc_version ? doc->stamp.docproc_version : "");
        dp__pdf_text_string(out, prod);
        dp_buf_puts(out, " /Title ");
        dp__pdf_text_string(out, title);
        dp_buf_appendf(out, " /CreationDate (D:%s) /ModDate (D:%s) >>\nendobj\n", when, when);
    }
    if (st == DP_OK && w.pdfa)
        st = dp__pdf_pdfa(&w, title, doc->stamp.docproc_version, when);
    for (size_t i = 0; i < n && st == DP_OK; i++)
        st = write_page(&w, DP_PDF_OBJ_FIRST_PAGE + 3 * (int)i, doc->pages[i], &images[i],
                        conf ? &conf[i] : NULL, pages_without_text, err);
    if (st == DP_OK && out->status == DP_OK) {
        size_t xref = out->len - start;
        dp_buf_appendf(out, "xref\n0 %d\n0000000000 65535 f \n", w.n_ids);
        for (int i = 1; i < w.n_ids; i++) {
            if (w.offs[i])
                dp_buf_appendf(out, "%010zu 00000 n \n", w.offs[i] - start);
            else
                dp_buf_puts(out, "0000000000 65535 f \n");
        }
        char *md5 = g_compute_checksum_for_data(G_CHECKSUM_MD5,
                                                (const guchar *)out->data + start, xref);
        dp_buf_appendf(out,
                       "trailer\n<< /Size %d /Root %d 0 R /Info %d 0 R /ID [<%s> <%s>] >>\n"
                       "startxref\n%zu\n%%%%EOF\n",
                       w.n_ids, DP_PDF_OBJ_CATALOG, DP_PDF_OBJ_INFO, md5 ? md5 : "00", md5 ? md5 : "00",
                       xref);
        g_free(md5);
    }
    dp_free(w.offs);
    if (st == DP_OK && out->status != DP_OK)
        st = dp_err_set(err, out->status, "%s: PDF: %s", doc->source, dp_status_str(out->status));
    else if (st != DP_OK && err && err->code == DP_OK)
        dp_err_set(err, st, "%s: PDF: %s", doc->source, dp_status_str(st));
    return st;
}
