/* Generates the synthetic part of the fuzz seed corpora (tests/fuzz/corpus/{tiff,image}/):
 * small TIFFs in many photometrics/compressions/orientations and PNG/JPEG variants.
 * Not part of the build; run by hand:
 *   cc -std=c11 tests/ingest/gen_corpus.c -ltiff -lpng -ljpeg -o /tmp/gen && /tmp/gen tests/fuzz/corpus */
#include <png.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>
#include <tiffio.h>

#define W 24
#define H 16

static uint8_t px(int x, int y, int c) { return (uint8_t)((x * 10 + y * 7 + c * 80) & 255); }

static void tiff(const char *dir, const char *name, int spp, int bps, int photo, int comp,
                 int orient, int extra_alpha) {
    char p[512];
    snprintf(p, sizeof p, "%s/tiff/%s", dir, name);
    TIFF *t = TIFFOpen(p, "w");
    if (!t)
        return;
    TIFFSetField(t, TIFFTAG_IMAGEWIDTH, W);
    TIFFSetField(t, TIFFTAG_IMAGELENGTH, H);
    TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, spp);
    TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, bps);
    TIFFSetField(t, TIFFTAG_PHOTOMETRIC, photo);
    TIFFSetField(t, TIFFTAG_COMPRESSION, comp);
    TIFFSetField(t, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
    TIFFSetField(t, TIFFTAG_ORIENTATION, orient);
    TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, comp == COMPRESSION_JPEG ? 16 : 4);
    TIFFSetField(t, TIFFTAG_XRESOLUTION, 300.0f);
    TIFFSetField(t, TIFFTAG_YRESOLUTION, 300.0f);
    TIFFSetField(t, TIFFTAG_RESOLUTIONUNIT, RESUNIT_INCH);
    if (extra_alpha) {
        uint16_t ex = EXTRASAMPLE_UNASSALPHA;
        TIFFSetField(t, TIFFTAG_EXTRASAMPLES, 1, &ex);
    }
    if (comp == COMPRESSION_JPEG && photo == PHOTOMETRIC_YCBCR)
        TIFFSetField(t, TIFFTAG_JPEGCOLORMODE, JPEGCOLORMODE_RGB);
    if (photo == PHOTOMETRIC_PALETTE) {
        uint16_t r[256], g[256], b[256];
        for (int i = 0; i < 256; i++)
            r[i] = (uint16_t)(i * 257), g[i] = (uint16_t)((255 - i) * 257), b[i] = 32768;
        TIFFSetField(t, TIFFTAG_COLORMAP, r, g, b);
    }
    size_t row = (size_t)(W * spp * bps + 7) / 8;
    uint8_t buf[W * 4 * 2];
    for (int y = 0; y < H; y++) {
        for (size_t i = 0; i < row; i++)
            buf[i] = px((int)i, y, 0);
        TIFFWriteScanline(t, buf, (uint32_t)y, 0);
    }
    TIFFClose(t);
}

static void png(const char *dir, const char *name, int color, int depth, int interlace) {
    char p[512];
    snprintf(p, sizeof p, "%s/image/%s", dir, name);
    FILE *fp = fopen(p, "wb");
    png_structp s = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop i = png_create_info_struct(s);
    png_init_io(s, fp);
    png_set_IHDR(s, i, W, H, depth, color, interlace, 0, 0);
    if (color == PNG_COLOR_TYPE_PALETTE) {
        png_color pal[4] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {9, 9, 9}};
        png_byte trns[2] = {0, 128};
        png_set_PLTE(s, i, pal, 4);
        png_set_tRNS(s, i, trns, 2, NULL);
    }
    png_write_info(s, i);
    int passes = png_set_interlace_handling(s);
    size_t row = png_get_rowbytes(s, i);
    uint8_t buf[W * 8];
    for (int pass = 0; pass < passes; pass++)
        for (int y = 0; y < H; y++) {
            for (size_t k = 0; k < row; k++)
                buf[k] = color == PNG_COLOR_TYPE_PALETTE ? (uint8_t)((k + (size_t)y) % 4 * 0x55 & (depth == 2 ? 0xff : 0x03)) : px((int)k, y, 1);
            png_write_row(s, buf);
        }
    png_write_end(s, i);
    png_destroy_write_struct(&s, &i);
    fclose(fp);
}

static void jpeg(const char *dir, const char *name, J_COLOR_SPACE cs, int comps, int progressive,
                 int orient) {
    char p[512];
    snprintf(p, sizeof p, "%s/image/%s", dir, name);
    FILE *fp = fopen(p, "wb");
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    jpeg_stdio_dest(&c, fp);
    c.image_width = W;
    c.image_height = H;
    c.input_components = comps;
    c.in_color_space = cs;
    jpeg_set_defaults(&c);
    if (progressive)
        jpeg_simple_progression(&c);
    jpeg_start_compress(&c, TRUE);
    if (orient) {
        uint8_t exif[] = {'E', 'x', 'i', 'f', 0, 0, 'I', 'I', 42, 0, 8, 0, 0, 0, 1, 0,
                          0x12, 0x01, 3, 0, 1, 0, 0, 0, (uint8_t)orient, 0, 0, 0, 0, 0, 0, 0};
        jpeg_write_marker(&c, JPEG_APP0 + 1, exif, sizeof exif);
    }
    uint8_t buf[W * 4];
    for (int y = 0; y < H; y++) {
        for (int k = 0; k < W * comps; k++)
            buf[k] = px(k, y, 2);
        JSAMPROW r = buf;
        jpeg_write_scanlines(&c, &r, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    fclose(fp);
}

/* A bilevel TIFF header claiming 35000x35000 pixels (pixel-cap regression seed). */
static void huge_tiff(const char *dir) {
    static const uint16_t tags[8][2] = {{256, 4}, {257, 4}, {258, 3}, {259, 3},
                                        {262, 3}, {273, 4}, {278, 4}, {279, 4}};
    const uint32_t vals[8] = {35000, 35000, 1, 1, 1, 8, 35000, 1};
    uint8_t b[128] = {'I', 'I', 42, 0, 8, 0, 0, 0, 8, 0};
    for (int i = 0; i < 8; i++) {
        uint8_t *e = b + 10 + 12 * i;
        e[0] = (uint8_t)tags[i][0], e[1] = (uint8_t)(tags[i][0] >> 8), e[2] = (uint8_t)tags[i][1];
        e[4] = 1;
        for (int k = 0; k < 4; k++)
            e[8 + k] = (uint8_t)(vals[i] >> (8 * k));
    }
    char p[512];
    snprintf(p, sizeof p, "%s/tiff/huge-header.tif", dir);
    FILE *fp = fopen(p, "wb");
    fwrite(b, 1, 10 + 12 * 8 + 4, fp);
    fclose(fp);
}

int main(int argc, char **argv) {
    const char *d = argc > 1 ? argv[1] : ".";
    huge_tiff(d);
    tiff(d, "rgb8-lzw-orient6.tif", 3, 8, PHOTOMETRIC_RGB, COMPRESSION_LZW, ORIENTATION_RIGHTTOP, 0);
    tiff(d, "rgba8-deflate-orient3.tif", 4, 8, PHOTOMETRIC_RGB, COMPRESSION_ADOBE_DEFLATE, ORIENTATION_BOTRIGHT, 1);
    tiff(d, "cmyk8.tif", 4, 8, PHOTOMETRIC_SEPARATED, COMPRESSION_NONE, ORIENTATION_TOPLEFT, 0);
    tiff(d, "grey16-packbits-orient8.tif", 1, 16, PHOTOMETRIC_MINISBLACK, COMPRESSION_PACKBITS, ORIENTATION_LEFTBOT, 0);
    tiff(d, "bilevel-g4.tif", 1, 1, PHOTOMETRIC_MINISWHITE, COMPRESSION_CCITTFAX4, ORIENTATION_TOPLEFT, 0);
    tiff(d, "bilevel-g3.tif", 1, 1, PHOTOMETRIC_MINISBLACK, COMPRESSION_CCITTFAX3, ORIENTATION_TOPLEFT, 0);
    tiff(d, "palette8-lzw.tif", 1, 8, PHOTOMETRIC_PALETTE, COMPRESSION_LZW, ORIENTATION_TOPLEFT, 0);
    tiff(d, "ycbcr-jpeg.tif", 3, 8, PHOTOMETRIC_YCBCR, COMPRESSION_JPEG, ORIENTATION_TOPLEFT, 0);
    png(d, "rgb16.png", PNG_COLOR_TYPE_RGB, 16, PNG_INTERLACE_NONE);
    png(d, "rgba8-interlaced.png", PNG_COLOR_TYPE_RGB_ALPHA, 8, PNG_INTERLACE_ADAM7);
    png(d, "grey-alpha16.png", PNG_COLOR_TYPE_GRAY_ALPHA, 16, PNG_INTERLACE_NONE);
    png(d, "palette2-trns.png", PNG_COLOR_TYPE_PALETTE, 2, PNG_INTERLACE_NONE);
    png(d, "grey1.png", PNG_COLOR_TYPE_GRAY, 1, PNG_INTERLACE_NONE);
    jpeg(d, "rgb-orient6.jpg", JCS_RGB, 3, 0, 6);
    jpeg(d, "rgb-progressive-orient3.jpg", JCS_RGB, 3, 1, 3);
    jpeg(d, "grey.jpg", JCS_GRAYSCALE, 1, 0, 0);
    jpeg(d, "cmyk.jpg", JCS_CMYK, 4, 0, 0);
    return 0;
}
