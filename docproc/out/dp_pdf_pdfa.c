/* PDF/A-2b pieces of the searchable PDF (dp_pdf_impl.h): the XMP metadata packet (pdfaid part 2,
 * conformance B, title, producer, dates equal to the Info dictionary's) and the output intent
 * with an sRGB ICC profile built here from the sRGB definition (IEC 61966-2-1: D50-adapted
 * primaries, the piecewise sRGB transfer curve sampled at 1024 points; ICC.1 version 2 display
 * profile). Thread-safe. */
#include "dp_alloc.h"
#include "dp_archive_impl.h"
#include "dp_pdf_impl.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define ICC_HEADER 128
#define ICC_TAGS 9
#define ICC_CURVE_POINTS 1024
#define TIME_BYTES 32

static void be16(uint8_t *p, unsigned v) {
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void s15(uint8_t *p, double v) {
    be32(p, (uint32_t)(int32_t)lround(v * 65536.0));
}

static size_t xyz(uint8_t *p, double x, double y, double z) {
    memcpy(p, "XYZ ", 4);
    s15(p + 8, x);
    s15(p + 12, y);
    s15(p + 16, z);
    return 20;
}

static size_t align4(size_t n) {
    return (n + 3) & ~(size_t)3;
}

size_t dp__pdf_srgb_icc(uint8_t *p) {
    static const char desc[] = "sRGB IEC61966-2.1 (docproc)";
    static const char cprt[] = "No copyright, use freely";
    static const char *const sigs[ICC_TAGS] = {"desc", "cprt", "wtpt", "rXYZ", "gXYZ",
                                               "bXYZ", "rTRC", "gTRC", "bTRC"};
    size_t off[ICC_TAGS], len[ICC_TAGS];
    size_t o = ICC_HEADER + 4 + 12 * ICC_TAGS;
    /* desc: textDescriptionType */
    uint8_t *d = p + o;
    memcpy(d, "desc", 4);
    be32(d + 8, (uint32_t)sizeof desc);
    memcpy(d + 12, desc, sizeof desc);
    len[0] = 12 + sizeof desc + 4 + 4 + 2 + 1 + 67;
    off[0] = o;
    o = align4(o + len[0]);
    d = p + o; /* cprt: textType */
    memcpy(d, "text", 4);
    memcpy(d + 8, cprt, sizeof cprt);
    len[1] = 8 + sizeof cprt;
    off[1] = o;
    o = align4(o + len[1]);
    static const double v[4][3] = {{0.9642, 1.0, 0.8249},
                                   {0.4360747, 0.2225045, 0.0139322},
                                   {0.3850649, 0.7168786, 0.0971045},
                                   {0.1430804, 0.0606169, 0.7141733}};
    for (int i = 0; i < 4; i++) {
        off[2 + i] = o;
        len[2 + i] = xyz(p + o, v[i][0], v[i][1], v[i][2]);
        o = align4(o + len[2 + i]);
    }
    d = p + o; /* one curve shared by the three TRC tags */
    memcpy(d, "curv", 4);
    be32(d + 8, ICC_CURVE_POINTS);
    for (int i = 0; i < ICC_CURVE_POINTS; i++) {
        double x = i / (double)(ICC_CURVE_POINTS - 1);
        double y = x <= 0.04045 ? x / 12.92 : pow((x + 0.055) / 1.055, 2.4);
        be16(d + 12 + 2 * i, (unsigned)lround(y * 65535.0));
    }
    for (int i = 6; i < ICC_TAGS; i++) {
        off[i] = o;
        len[i] = 12 + 2 * ICC_CURVE_POINTS;
    }
    o = align4(o + len[6]);
    /* header */
    be32(p, (uint32_t)o);
    be32(p + 8, 0x02100000);
    memcpy(p + 12, "mntr", 4);
    memcpy(p + 16, "RGB ", 4);
    memcpy(p + 20, "XYZ ", 4);
    be16(p + 24, 2000); /* creation date 2000-01-01 00:00:00: the profile is fixed data */
    be16(p + 26, 1);
    be16(p + 28, 1);
    memcpy(p + 36, "acsp", 4);
    s15(p + 68, v[0][0]);
    s15(p + 72, v[0][1]);
    s15(p + 76, v[0][2]);
    be32(p + ICC_HEADER, ICC_TAGS);
    for (int i = 0; i < ICC_TAGS; i++) {
        uint8_t *t = p + ICC_HEADER + 4 + 12 * i;
        memcpy(t, sigs[i], 4);
        be32(t + 4, (uint32_t)off[i]);
        be32(t + 8, (uint32_t)len[i]);
    }
    return o;
}

void dp__pdf_date(char *b, size_t n) {
    char iso[TIME_BYTES];
    dp__archive_time(iso, sizeof iso); /* YYYY-MM-DDTHH:MM:SSZ */
    snprintf(b, n, "%.4s%.2s%.2s%.2s%.2s%.2sZ", iso, iso + 5, iso + 8, iso + 11, iso + 14,
             iso + 17);
}

static void xml_escaped(struct dp_buf *b, const char *s) {
    for (; s && *s; s++) {
        if (*s == '<')
            dp_buf_puts(b, "&lt;");
        else if (*s == '>')
            dp_buf_puts(b, "&gt;");
        else if (*s == '&')
            dp_buf_puts(b, "&amp;");
        else
            dp_buf_putc(b, *s);
    }
}

void dp__pdf_xmp(struct dp_buf *x, const char *title, const char *version,
                 const char *pdf_date) {
    char iso[TIME_BYTES];
    snprintf(iso, sizeof iso, "%.4s-%.2s-%.2sT%.2s:%.2s:%.2sZ", pdf_date, pdf_date + 4,
             pdf_date + 6, pdf_date + 8, pdf_date + 10, pdf_date + 12);
    dp_buf_puts(x, "<?xpacket begin=\"\xEF\xBB\xBF\" id=\"W5M0MpCehiHzreSzNTczkc9d\"?>\n"
                    "<x:xmpmeta xmlns:x=\"adobe:ns:meta/\">\n"
                    "<rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\">\n"
                    "<rdf:Description rdf:about=\"\""
                    " xmlns:pdfaid=\"http://www.aiim.org/pdfa/ns/id/\""
                    " xmlns:dc=\"http://purl.org/dc/elements/1.1/\""
                    " xmlns:xmp=\"http://ns.adobe.com/xap/1.0/\""
                    " xmlns:pdf=\"http://ns.adobe.com/pdf/1.3/\">\n"
                    "<pdfaid:part>2</pdfaid:part>\n<pdfaid:conformance>B</pdfaid:conformance>\n"
                    "<dc:format>application/pdf</dc:format>\n"
                    "<dc:title><rdf:Alt><rdf:li xml:lang=\"x-default\">");
    xml_escaped(x, title);
    dp_buf_appendf(x, "</rdf:li></rdf:Alt></dc:title>\n<xmp:CreateDate>%s</xmp:CreateDate>\n"
                       "<xmp:ModifyDate>%s</xmp:ModifyDate>\n<pdf:Producer>docproc ",
                   iso, iso);
    xml_escaped(x, version);
    dp_buf_puts(x, "</pdf:Producer>\n</rdf:Description>\n</rdf:RDF>\n</x:xmpmeta>\n"
                   "<?xpacket end=\"w\"?>");
}

enum dp_status dp__pdf_pdfa(struct dp__pdf *w, const char *title, const char *version,
                            const char *pdf_date) {
    struct dp_buf x;
    dp_buf_init(&x, DP_PDF_MAX_BYTES);
    dp__pdf_xmp(&x, title, version, pdf_date);
    enum dp_status st = x.status;
    if (st == DP_OK)
        dp__pdf_stream(w, DP_PDF_OBJ_XMP, " /Type /Metadata /Subtype /XML", x.data, x.len);
    dp_buf_free(&x);
    if (st != DP_OK)
        return st;
    dp__pdf_obj_begin(w, DP_PDF_OBJ_INTENT);
    dp_buf_appendf(w->b, "<< " DP_PDF_INTENT_KEYS " /DestOutputProfile %d 0 R >>\nendobj\n",
                   DP_PDF_OBJ_ICC);
    uint8_t *icc = dp_calloc(1, DP_PDF_ICC_BYTES);
    if (!icc)
        return DP_ERR_NOMEM;
    size_t n = dp__pdf_srgb_icc(icc);
    dp__pdf_stream(w, DP_PDF_OBJ_ICC, " /N 3", icc, n);
    dp_free(icc);
    return DP_OK;
}
