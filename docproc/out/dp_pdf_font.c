/* The glyph-less TrueType font of the searchable PDF (dp_out_pdf.h), assembled from the tables
 * a PDF-embedded TrueType program needs (head, hhea, maxp, hmtx, loca, glyf; PDF 32000-1
 * 9.9): two glyphs, .notdef and one empty glyph, both DP_PDF_GLYPH_WIDTH wide, 1000 units per em,
 * ascent 1000 and descent 0, so a word's extent is its text box. The PDF maps every CID to glyph
 * 1 (CIDToGIDMap) and every code to itself (ToUnicode). Pure function, thread-safe. */
#include "dp_alloc.h"
#include "dp_out_pdf.h"

#include <string.h>

#define N_TABLES 6
#define UNITS_PER_EM 1000
#define ASCENT 1000
#define HEAD_MAGIC 0x5F0F3CF5u
#define CHECKSUM_MAGIC 0xB1B0AFBAu

struct tbl {
    char tag[5];
    uint8_t data[64];
    size_t len;
};

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

static uint32_t checksum(const uint8_t *p, size_t len) {
    uint32_t s = 0;
    for (size_t i = 0; i < len; i += 4) {
        uint8_t w[4] = {0};
        memcpy(w, p + i, len - i < 4 ? len - i : 4);
        s += (uint32_t)w[0] << 24 | (uint32_t)w[1] << 16 | (uint32_t)w[2] << 8 | w[3];
    }
    return s;
}

uint8_t *dp_pdf_glyphless_ttf(size_t *len) {
    struct tbl t[N_TABLES] = {{"glyf", {0}, 0}, {"head", {0}, 54}, {"hhea", {0}, 36},
                              {"hmtx", {0}, 8}, {"loca", {0}, 6},  {"maxp", {0}, 32}};
    /* head */
    uint8_t *h = t[1].data;
    be32(h, 0x00010000);          /* version */
    be32(h + 4, 0x00010000);      /* fontRevision */
    be32(h + 12, HEAD_MAGIC);     /* magicNumber (checkSumAdjustment at 8 filled below) */
    be16(h + 16, 0x000B);         /* flags: baseline at 0, lsb at 0, integer ppem */
    be16(h + 18, UNITS_PER_EM);
    /* created, modified (20..35) = 0; xMin yMin xMax yMax */
    be16(h + 40, DP_PDF_GLYPH_WIDTH);
    be16(h + 42, ASCENT);
    be16(h + 48, 8);              /* lowestRecPPEM */
    be16(h + 50, 2);              /* fontDirectionHint */
    /* indexToLocFormat 0 (short), glyphDataFormat 0 */
    /* hhea */
    uint8_t *e = t[2].data;
    be32(e, 0x00010000);
    be16(e + 4, ASCENT);          /* ascender; descender, lineGap 0 */
    be16(e + 10, DP_PDF_GLYPH_WIDTH); /* advanceWidthMax */
    be16(e + 16, DP_PDF_GLYPH_WIDTH); /* xMaxExtent */
    be16(e + 18, 1);              /* caretSlopeRise */
    be16(e + 34, 2);              /* numberOfHMetrics */
    /* hmtx: two (advance, lsb) pairs */
    be16(t[3].data, DP_PDF_GLYPH_WIDTH);
    be16(t[3].data + 4, DP_PDF_GLYPH_WIDTH);
    /* loca: three zero offsets (both glyphs empty) */
    /* maxp 1.0 */
    uint8_t *m = t[5].data;
    be32(m, 0x00010000);
    be16(m + 4, 2);               /* numGlyphs */
    be16(m + 14, 2);              /* maxZones */
    size_t dir = 12 + 16 * N_TABLES, total = dir;
    for (int i = 0; i < N_TABLES; i++)
        total += (t[i].len + 3) & ~(size_t)3;
    uint8_t *f = dp_calloc(1, total);
    if (!f)
        return NULL;
    be32(f, 0x00010000);
    be16(f + 4, N_TABLES);
    be16(f + 6, 64);              /* searchRange: 16 * 2^floor(log2 6) */
    be16(f + 8, 2);               /* entrySelector */
    be16(f + 10, 16 * N_TABLES - 64); /* rangeShift */
    size_t off = dir;
    for (int i = 0; i < N_TABLES; i++) {
        uint8_t *d = f + 12 + 16 * i;
        memcpy(d, t[i].tag, 4);
        be32(d + 4, checksum(t[i].data, t[i].len));
        be32(d + 8, (uint32_t)off);
        be32(d + 12, (uint32_t)t[i].len);
        memcpy(f + off, t[i].data, t[i].len);
        if (i == 1)
            h = f + off;
        off += (t[i].len + 3) & ~(size_t)3;
    }
    be32(h + 8, CHECKSUM_MAGIC - checksum(f, total));
    *len = total;
    return f;
}
