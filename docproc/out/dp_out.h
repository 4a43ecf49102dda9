/* libdpout: writers for extraction results (JSON, XML, CSV per table) and zip bundles / output
 * directories that also keep the raw model answers so they can be re-parsed later.
 *
 *   struct dp_buf b; dp_buf_init(&b, DP_MAX_TEXT_BYTES);
 *   dp_out_json(doc, &b, &err);                         // or dp_out_xml / dp_out_csv_table
 *
 *   struct dp_bundle *bz = NULL;                        // a .zip file or a directory
 *   dp_bundle_open(&bz, "out.zip", true, &err);         // overwrite = --force
 *   dp_bundle_add_doc(bz, doc, "invoice-17", DP_OUT_ALL, &err);
 *   dp_bundle_commit(bz, &err);                         // atomic; or dp_bundle_abort(bz)
 *
 *   struct dp_raw_set *rs = NULL;                       // extract --from-raw BUNDLE_OR_DIR
 *   dp_raw_read(&rs, "out.zip", &err);
 *   for (size_t i = 0; i < rs->n_docs; i++) ... rs->docs[i].pages[j].text ...
 *   dp_raw_set_free(rs);
 *
 * Layout of a bundle (zip or directory), one folder per document (stem sanitised):
 *   <stem>/result.json  <stem>/result.xml  <stem>/tables/p<page>-t<k>.csv
 *   <stem>/result.alto.xml  <stem>/result.hocr  <stem>/page/page-<NNNN>.xml  <stem>/result.md
 *   <stem>/result.txt  <stem>/result.pdf (archive formats, when asked for)
 *   <stem>/raw/page-<NNNN>.txt (the model's answer, byte-exact)  <stem>/raw/pages.json (geometry,
 *   truncation flags, source, stamp: what dp_raw_read needs to re-parse)
 * Writers have sticky errors (check once at the end). Not thread-safe per object. */
#ifndef DP_OUT_H
#define DP_OUT_H

#include "dp_buf.h"
#include "dp_status.h"
#include "ex.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum dp_out_format {
    DP_OUT_JSON = 1u << 0,
    DP_OUT_XML  = 1u << 1,
    DP_OUT_CSV  = 1u << 2,
    DP_OUT_RAW  = 1u << 3, /* raw answers + pages.json (needed for --from-raw) */
    DP_OUT_ALL  = DP_OUT_JSON | DP_OUT_XML | DP_OUT_CSV | DP_OUT_RAW,
    /* archive formats (dp_out_archive.h, docs/archive.md); not part of "all" */
    DP_OUT_PDF  = 1u << 4, /* searchable PDF: written by the batch, which has the page images */
    DP_OUT_ALTO = 1u << 5,
    DP_OUT_HOCR = 1u << 6,
    DP_OUT_PAGE = 1u << 7,
    DP_OUT_MD   = 1u << 8,
    DP_OUT_TXT  = 1u << 9,
};

/* How CSV renders positions covered by a rowspan/colspan. */
enum dp_csv_span {
    DP_CSV_SPAN_REPEAT = 0, /* repeat the origin cell's text (default: every row self-contained) */
    DP_CSV_SPAN_EMPTY,      /* leave covered positions empty */
};

/* Parses "json,xml,csv,alto,..." into an OR of enum dp_out_format; false on an unknown name. */
bool dp_out_parse_formats(const char *list, unsigned *out);

/* The result JSON (documented by schemas/result.schema.json), appended to out. */
enum dp_status dp_out_json(const struct ex_doc *doc, struct dp_buf *out, struct dp_err *err);
/* The result XML (validates against schemas/docproc-result.xsd), appended to out. */
enum dp_status dp_out_xml(const struct ex_doc *doc, struct dp_buf *out, struct dp_err *err);
/* How CSV files are written (--csv-spans, --csv-safe, --csv-bom). Zeroed = the defaults
 * except safety: use dp_csv_opts_default(). */
struct dp_csv_opts {
    enum dp_csv_span span;
    bool formula_safe; /* a cell starting with = + - @ TAB CR (and not a plain number) gets a
                        * leading ' so spreadsheets do not run it as a formula (OWASP) */
    bool bom;          /* start each file with the UTF-8 byte order mark (Excel) */
};
struct dp_csv_opts dp_csv_opts_default(void); /* repeat spans, formula-safe, no BOM */
/* One table as RFC 4180 CSV (UTF-8, CRLF line ends, quotes doubled), appended to out: one file.
 * dp_out_csv_table uses dp_csv_opts_default() with the given span mode. */
enum dp_status dp_out_csv_table(const struct ex_table *t, enum dp_csv_span span,
                                struct dp_buf *out, struct dp_err *err);
enum dp_status dp_out_csv_table_opts(const struct ex_table *t, const struct dp_csv_opts *o,
                                     struct dp_buf *out, struct dp_err *err);
/* Parses RFC 4180 CSV (for tests and round trips): *out is (rows, cols) strings, row-major,
 * rows padded to the widest row with "". Caller frees with dp_csv_free. */
enum dp_status dp_csv_parse(const char *data, size_t len, char ***out, int *rows, int *cols,
                            struct dp_err *err);
void dp_csv_free(char **cells, int rows, int cols);

/* A zip or directory name component made safe: no '/', '\\', "..", leading '.', control or
 * reserved characters; non-empty; at most DP_OUT_MAX_NAME bytes. Caller frees with dp_free. */
char *dp_out_sanitize_name(const char *name);
/* A relative path made safe component by component (dp_out_sanitize_name each; empty
 * components and a leading '/' dropped): "sub/x.pdf" stays, "a/../b" becomes "a/_./b", never a
 * traversal. Non-empty ("_" for a path with no component). NULL when out of memory. */
char *dp_out_sanitize_path(const char *path);

/* ---- bundles: a .zip (by extension) or a directory ----------------------------------------- */

struct dp_bundle;

/* Opens path for writing (parent directories are created). For a zip nothing is visible until
 * dp_bundle_commit (libzip writes a temporary and renames it); an existing zip is refused unless
 * overwrite. For a directory each file is written atomically and an existing file is refused
 * unless overwrite (the directory itself may exist). */
enum dp_status dp_bundle_open(struct dp_bundle **out, const char *path, bool overwrite,
                              struct dp_err *err);
/* Adds one document's outputs under <stem>/ (stem sanitised, made unique on collision). */
/* How the bundle writes CSV files (default: dp_csv_opts_default()). */
void dp_bundle_set_csv(struct dp_bundle *b, const struct dp_csv_opts *o);
enum dp_status dp_bundle_add_doc(struct dp_bundle *b, const struct ex_doc *doc, const char *stem,
                                 unsigned formats, struct dp_err *err);
/* Adds an arbitrary file (e.g. the batch manifest); name components are sanitised. Copies data. */
enum dp_status dp_bundle_add_file(struct dp_bundle *b, const char *name, const void *data,
                                  size_t len, struct dp_err *err);
/* Finishes and frees b (also on failure). */
enum dp_status dp_bundle_commit(struct dp_bundle *b, struct dp_err *err);
/* Discards a zip's pending content (a directory keeps the files already written); frees b. */
void dp_bundle_abort(struct dp_bundle *b);
/* If the directory entry name is the temporary libzip writes a zip as before renaming it
 * ("NAME.zip" + "." + 6 mkstemp characters), the length of "NAME.zip"; else 0. What is left of
 * a writer killed in dp_bundle_commit. */
size_t dp_bundle_zip_tmp_len(const char *name);

/* ---- reading raw answers back -------------------------------------------------------------- */

struct dp_raw_page {
    int number;
    char *text; /* NUL-terminated, byte-exact answer */
    size_t len;
    bool truncated; /* the model was stopped before the end of its answer */
    enum ex_stop stop; /* why it stopped (pages.json "stop") */
    struct ex_geom geom;
};

struct dp_raw_doc {
    struct dp_err err; /* DP_OK, or why this document's answers could not be read (then
                        * n_pages is 0): one broken document does not fail the set */
    char *stem;
    char *source;      /* original input path, or NULL */
    char *schema_name; /* or NULL */
    /* The stamp recorded with the answers (pages.json "stamp"): model id and hash, prompt,
     * render and generation settings of the run that produced them. Fields absent from the
     * file are NULL / 0. Strings are owned (stamp_strings), freed by dp_raw_set_free. */
    struct ex_stamp stamp;
    char *stamp_strings[8];
    struct dp_raw_page *pages; /* (n_pages) in page order */
    size_t n_pages;
    int source_pages; /* pages of the input document ("source_pages"), 0 = not recorded */
};

struct dp_raw_set {
    struct dp_raw_doc *docs; /* (n_docs) in stem order */
    size_t n_docs;
};

/* Reads every <stem>/raw/ of a bundle zip or output directory. Fails as a whole only when the
 * bundle or directory cannot be opened, holds no raw answers, or memory runs out; a document
 * whose pages.json or answers are broken is kept with its error in docs[i].err. */
enum dp_status dp_raw_read(struct dp_raw_set **out, const char *bundle_or_dir, struct dp_err *err);
void dp_raw_set_free(struct dp_raw_set *s);

/* ---- tables and page images --------------------------------------------------------------- */

/* `docproc tables` (dp_tables.c): adds every table of doc to bundle b (a directory or a zip,
 * the same files) as <prefix>/table-NNN.csv and <prefix>/table-NNN.json (cells with boxes in the
 * three coordinate spaces, parts when stitched across pages); nothing for a document without a
 * table. *n_tables gets the number of (stitched) tables. */
enum dp_status dp_tables_add(struct dp_bundle *b, const struct ex_doc *doc, const char *prefix,
                             const struct dp_csv_opts *csv_opts, int *n_tables,
                             struct dp_err *err);

/* Page images (dp_png_write.c): rgb (h, w, 3) as an 8-bit RGB PNG at path, atomically (temporary
 * + rename; an existing file is replaced). dpi > 0 is recorded in pHYs. */
enum dp_status dp_png_write(const char *path, const uint8_t *rgb, int w, int h, double dpi,
                            struct dp_err *err);

#endif
