/* Private pieces of the searchable PDF writer shared by dp_out_pdf.c and dp_pdf_pdfa.c. */
#ifndef DP_PDF_IMPL_H
#define DP_PDF_IMPL_H

#include "dp_out_pdf.h"

/* Fixed object numbers; page i uses FIRST_PAGE + 3i (page), +1 (content), +2 (image). */
enum {
    DP_PDF_OBJ_CATALOG = 1,
    DP_PDF_OBJ_PAGES,
    DP_PDF_OBJ_FONT,
    DP_PDF_OBJ_CIDFONT,
    DP_PDF_OBJ_DESCRIPTOR,
    DP_PDF_OBJ_FONTFILE,
    DP_PDF_OBJ_CIDTOGID,
    DP_PDF_OBJ_TOUNICODE,
    DP_PDF_OBJ_INFO,
    DP_PDF_OBJ_XMP,     /* PDF/A only */
    DP_PDF_OBJ_INTENT,  /* PDF/A only */
    DP_PDF_OBJ_ICC,     /* PDF/A only */
    DP_PDF_OBJ_FIRST_PAGE,
};

struct dp__pdf {
    struct dp_buf *b;
    size_t *offs; /* (n_ids) absolute offset in b of each object, 0 = not written */
    int n_ids;
    size_t base;
    bool pdfa;
};

enum dp_status dp__pdf_obj_begin(struct dp__pdf *w, int id);
/* A whole stream object: dict_extra (may be NULL) goes after /Length. */
void dp__pdf_stream(struct dp__pdf *w, int id, const char *dict_extra, const void *data,
                    size_t len);
enum dp_status dp__pdf_flate(const void *data, size_t len, uint8_t **out, size_t *out_len);
/* A number with up to 3 decimals, C locale, into b (>= 48 bytes). */
const char *dp__pdf_num(char *b, double v);
/* A PDF text string as UTF-16BE hex with BOM. */
void dp__pdf_text_string(struct dp_buf *b, const char *utf8);
/* "YYYYMMDDHHMMSSZ" (PDF date without "D:"), from dp__archive_time's clock. */
void dp__pdf_date(char *b, size_t n);
/* The glyph-less font's dictionaries without their references (dp_out_pdf.c, dp_pdf_graft.c):
 * Type0 (+ /DescendantFonts [CIDFont], /ToUnicode), CIDFont (%d: DW; + /FontDescriptor,
 * /CIDToGIDMap), descriptor (%d: glyph width; + /FontFile2), and the output intent
 * (+ /DestOutputProfile). */
#define DP_PDF_TYPE0_KEYS                                                                        \
    "/Type /Font /Subtype /Type0 /BaseFont /GlyphLessFont /Encoding /Identity-H"
#define DP_PDF_CIDFONT_KEYS                                                                      \
    "/Type /Font /Subtype /CIDFontType2 /BaseFont /GlyphLessFont"                                \
    " /CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> /DW %d"
#define DP_PDF_DESCRIPTOR_KEYS                                                                   \
    "/Type /FontDescriptor /FontName /GlyphLessFont /Flags 5"                                    \
    " /FontBBox [0 -1 %d 1000] /ItalicAngle 0 /Ascent 1000 /Descent -1 /CapHeight 1000 /StemV 80"
#define DP_PDF_INTENT_KEYS                                                                       \
    "/Type /OutputIntent /S /GTS_PDFA1 /OutputConditionIdentifier (sRGB IEC61966-2.1)"           \
    " /Info (sRGB IEC61966-2.1) /RegistryName (http://www.color.org)"
/* Room for the sRGB profile dp__pdf_srgb_icc writes. */
#define DP_PDF_ICC_BYTES 4096

/* The identity ToUnicode CMap (every 2-byte code is its own UTF-16 unit). */
extern const char dp__pdf_to_unicode[];

/* The font's stream data, Flate-compressed: the TrueType program (ttf_len bytes unpacked) and
 * the CIDToGIDMap sending every CID to glyph 1. Free with dp__pdf_font_data_free. */
struct dp__pdf_font_data {
    uint8_t *ttf_z;
    size_t ttf_z_len, ttf_len;
    uint8_t *map_z;
    size_t map_z_len;
};
enum dp_status dp__pdf_font_data(struct dp__pdf_font_data *out);
void dp__pdf_font_data_free(struct dp__pdf_font_data *f);

/* Appends "BT 3 Tr ... ET": the invisible words of one page's lines in font resource `font`;
 * sx, sy: lines-model pixels -> points; y is flipped with page_h_pt (origin bottom left). */
void dp__pdf_text_layer(struct dp_buf *c, const struct ex_lines *L, double sx, double sy,
                        double page_h_pt, const char *font);

/* The XMP packet (PDF/A-2b identification, title, producer, dates from pdf_date) into x. */
void dp__pdf_xmp(struct dp_buf *x, const char *title, const char *version, const char *pdf_date);
/* Writes the sRGB ICC profile into p (DP_PDF_ICC_BYTES, zeroed); returns its size. */
size_t dp__pdf_srgb_icc(uint8_t *p);

/* XMP metadata (PDF/A-2b identification, title, producer, dates) and the sRGB output intent. */
enum dp_status dp__pdf_pdfa(struct dp__pdf *w, const char *title, const char *version,
                            const char *pdf_date);

#endif
