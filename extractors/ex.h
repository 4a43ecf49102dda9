/* libex: turns the text Qwen2.5-VL produced for a page into typed fields, blocks, tables and
 * charts with provenance, merges pages into a document, validates it against its schema.
 *
 *   struct ex_geom g = {.model_w = 1008, .model_h = 1540, .page_w = 1014, .page_h = 1532};
 *   struct ex_doc *doc = ex_doc_new("scan.png", &err);
 *   struct ex_page *pg = NULL;
 *   ex_page_parse(&pg, schema, raw, raw_len, &g, 1, EX_STOP_EOS, &err);  // page 1
 *   ex_doc_add_page(doc, pg, &err);                                          // takes ownership
 *   ex_doc_finish(doc, schema, &err);    // merge fields across pages, validate, cross-check
 *   dp_out_json(doc, &buf, &err);        // docproc/out/dp_out.h
 *   ex_doc_free(doc);
 *
 * Coordinates: the model answers in pixels of its resized input (model_w x model_h); every box is
 * also mapped to page pixels and, when pdf_w_pt > 0, to PDF points (origin top-left, y down).
 * All text stored in these structs is valid UTF-8 without XML-forbidden control characters
 * (invalid bytes become U+FFFD), so every writer can emit it as is.
 * Objects are owned by their parent; not thread-safe per object, no global state. */
#ifndef EX_H
#define EX_H

#include "dp_status.h"
#include "sc.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Page geometry, filled by ingestion. 0 = unknown (then only model-space boxes are valid,
 * or page-space boxes equal model-space ones when model_w/h are unknown too). */
struct ex_geom {
    int model_w, model_h;     /* resized model input in pixels (grid_w*14, grid_h*14) */
    int page_w, page_h;       /* rasterised page / original image in pixels */
    double pdf_w_pt, pdf_h_pt; /* PDF page size in points (0 for images) */
};

struct ex_box {
    double x1, y1, x2, y2; /* x1 <= x2, y1 <= y2 */
};

/* Where a value came from. */
struct ex_prov {
    int page;             /* 1-based page number */
    bool has_box;
    struct ex_box model;  /* as the model gave it (clamped to the model input) */
    struct ex_box page_px; /* in page pixels */
    bool has_pdf;
    struct ex_box pdf_pt; /* in PDF points, when the page came from a PDF */
    size_t span_off, span_len; /* byte span in the page's raw answer (span_len 0 = unknown) */
};

enum ex_vtype {
    EX_V_NULL = 0, /* absent / null / empty */
    EX_V_STRING,
    EX_V_NUMBER,
    EX_V_INTEGER,
    EX_V_BOOL,
    EX_V_DATE,    /* value = YYYY-MM-DD */
    EX_V_AMOUNT,  /* num + currency */
    EX_V_PERCENT, /* num is the percentage (12.5 for "12.5%") */
    EX_V_OBJECT,  /* children are the properties */
    EX_V_ARRAY,   /* children are the items (named "0", "1", ...) */
};

struct ex_field {
    char *name;          /* schema name when matched, else the key as the model wrote it */
    char *key;           /* the key as the model wrote it (may differ: alias, case) */
    char *raw;           /* the value text as the model wrote it (NULL for objects/arrays) */
    char *value;         /* normalised text: ISO date, plain decimal, trimmed string */
    enum ex_vtype type;
    double num;          /* EX_V_NUMBER/INTEGER/AMOUNT/PERCENT */
    bool boolean;        /* EX_V_BOOL */
    char currency[4];    /* ISO 4217 for amounts when known, else "" */
    bool ambiguous;      /* e.g. 03/04/2024: value is one reading, alt the other */
    char *alt;           /* the other reading of an ambiguous value, or NULL */
    bool in_schema;      /* matched a schema field */
    bool has_conf;       /* conf is known (generated under --constrain) */
    double conf;         /* [0, 1] from the model's token probabilities (ex_conf_value) */
    bool value_truncated; /* the token budget forced this value closed (--constrain) */
    struct ex_prov prov;
    struct ex_field *children; /* (n_children) */
    size_t n_children;
};

enum ex_block_kind {
    EX_BLOCK_TEXT = 0, /* paragraph or OCR line */
    EX_BLOCK_HEADING,
    EX_BLOCK_LIST_ITEM,
    EX_BLOCK_IMAGE,
    EX_BLOCK_FORMULA,
    EX_BLOCK_TABLE,
    EX_BLOCK_CAPTION,
    EX_BLOCK_CHART,
    EX_BLOCK_OTHER,
};

struct ex_block {
    enum ex_block_kind kind;
    char *tag;   /* HTML tag ("p", "h2", "div") or "line" / "json" for other sources */
    char *cls;   /* HTML class or NULL */
    int level;   /* heading level 1..6, else 0 */
    char *text;  /* text content, whitespace collapsed */
    int table;   /* index into page tables for EX_BLOCK_TABLE, else -1 */
    struct ex_prov prov;
};

struct ex_cell {
    char *text;         /* NULL for positions covered by another cell's span */
    int row, col;       /* position in the grid */
    int rowspan, colspan; /* as clipped to the grid (>= 1) */
    int orow, ocol;     /* origin cell of the span covering this position (itself if origin) */
    bool header;        /* <th> or a markdown header row */
    bool has_conf;      /* conf is known (the model's token log-probs were at hand) */
    double conf;        /* [0, 1] from the tokens of the cell's text (ex_page_apply_cell_conf) */
    struct ex_prov prov;
};

struct ex_table {
    int n_rows, n_cols;
    struct ex_cell *cells; /* (n_rows, n_cols) row-major; every position filled */
    char *caption;         /* or NULL */
    struct ex_prov prov;
};

struct ex_point {
    char *x;    /* category or x value as text */
    double y;
    bool has_y; /* false when the y text was not a number (then y_raw holds it) */
    char *y_raw;
};

struct ex_series {
    char *name;
    struct ex_point *points; /* (n_points) */
    size_t n_points;
};

struct ex_chart {
    char *type, *title, *x_label, *y_label; /* each may be NULL */
    struct ex_series *series;               /* (n_series) */
    size_t n_series;
    struct ex_prov prov;
};

enum ex_warn_code {
    EX_WARN_SYNTAX = 1,   /* text that could not be parsed (span = the offending text) */
    EX_WARN_TRUNCATED,    /* the answer ends mid-structure / hit max-new-tokens */
    EX_WARN_DUPLICATE,    /* duplicated key: the last value is kept */
    EX_WARN_UNKNOWN_KEY,  /* a key not in the schema (kept, in_schema = false) */
    EX_WARN_REQUIRED,     /* required field missing */
    EX_WARN_TYPE,         /* value not of the schema type / not normalisable */
    EX_WARN_ENUM,         /* value not in the schema enum */
    EX_WARN_PATTERN,      /* value does not match the schema pattern */
    EX_WARN_AMBIGUOUS,    /* ambiguous value (date 03/04/2024): both readings reported */
    EX_WARN_ARITHMETIC,   /* invoice/receipt cross-check failed (numbers in the message) */
    EX_WARN_BBOX,         /* malformed / out-of-range box (clamped or dropped) */
    EX_WARN_LIMIT,        /* a parser limit was hit (depth, size) */
    EX_WARN_EXTRA_TEXT,   /* text outside the answer (prose around a code fence) not used */
    EX_WARN_DATE,         /* implausible date: in the future beyond a tolerance, due < issue */
    EX_WARN_CURRENCY,     /* amounts in different currencies, or not the currency field's */
    EX_WARN_PAGES,        /* --pages asked for pages beyond the document's end (ignored) */
};

struct ex_warning {
    enum ex_warn_code code;
    char *msg;        /* one line: what, value vs bound */
    char *path;       /* field path ("line_items[2].amount") or NULL */
    int page;         /* 1-based, 0 = document level */
    size_t span_off, span_len; /* in that page's raw answer; span_len 0 = none */
};

/* What the answer looked like (which parser produced the page). */
enum ex_source_kind {
    EX_SRC_EMPTY = 0, EX_SRC_JSON, EX_SRC_HTML, EX_SRC_MARKDOWN, EX_SRC_TEXT,
};

/* Why the model stopped generating a page's answer (recorded in the result as "stop"). The first
 * two values keep the old boolean meaning of ex_page_parse's last argument (false/true). */
enum ex_stop {
    EX_STOP_EOS = 0,          /* the model ended its answer */
    EX_STOP_MAX_NEW_TOKENS,   /* the --max-new-tokens limit */
    EX_STOP_REPETITION,       /* the repetition-loop guard */
    EX_STOP_TIMEOUT,          /* the page time limit */
    EX_STOP_BLANK,            /* a blank page, not sent to the model */
};
/* "eos", "max_new_tokens", "repetition", "timeout", "blank". */
const char *ex_stop_name(enum ex_stop s);
/* The inverse of ex_stop_name; false for an unknown name. */
bool ex_stop_parse(const char *name, enum ex_stop *out);

struct ex_page {
    int number;             /* 1-based */
    struct ex_geom geom;
    char *raw;              /* the raw answer, as given (caller's bytes copied) */
    size_t raw_len;
    enum ex_source_kind source;
    bool truncated;         /* model hit max-new-tokens, or the answer ends mid-structure */
    bool model_truncated;   /* the model was stopped before its end (stop is not EOS or BLANK) */
    enum ex_stop stop;      /* as passed to ex_page_parse (kept for re-parsing raw answers) */
    struct ex_block *blocks;   size_t n_blocks;
    struct ex_field *fields;   size_t n_fields;   /* top-level fields (schema order first) */
    struct ex_table *tables;   size_t n_tables;
    struct ex_chart *charts;   size_t n_charts;
    struct ex_warning *warnings; size_t n_warnings;
    bool constrained;       /* generated under --constrain */
    int64_t n_forced, n_jumps; /* ids appended without sampling, in this many chunks */
};

/* Reproducibility stamp; the batch fills it (strings are copied by ex_doc_set_stamp). */
struct ex_stamp {
    const char *docproc_version;
    const char *model_id;     /* e.g. "Qwen/Qwen2.5-VL-7B-Instruct" or a directory name */
    const char *model_hash;   /* SHA-256 of the weights file(s) */
    const char *schema_name;
    const char *schema_version;
    const char *schema_hash;
    const char *prompt;       /* the prompt sent */
    int dpi;                  /* render dpi (0 for images) */
    long max_pixels;          /* smart_resize budget, 0 = unknown */
    long max_new_tokens;
    uint64_t seed;
    int threads;
    const char *created;      /* ISO 8601 time, or NULL (left out for reproducible output) */
};

struct ex_tokconf; /* ex_lines.h */

struct ex_doc {
    char *source;          /* input path */
    char *source_sha256;   /* or NULL */
    char *stamp_strings[8]; /* owned copies backing stamp's pointers */
    struct ex_stamp stamp;
    bool truncated;        /* any page truncated */
    struct ex_page **pages; size_t n_pages;
    struct ex_field *fields; size_t n_fields;          /* merged document-level fields */
    struct ex_warning *warnings; size_t n_warnings;    /* document-level (validation, checks) */
    int source_pages;      /* pages of the input document, 0 = unknown (kept in raw/pages.json) */
    char *pages_note;      /* ex_doc_set_pages_note, or NULL */
    bool needs_review;     /* ex_doc_review: a check failed or a value is below the threshold */
    char **review_reasons; size_t n_review_reasons;    /* one line each */
    /* (n_pages) per-page token log-probabilities where the model ran, for the archive writers'
     * confidences (ALTO WC, hOCR x_wconf, PAGE conf); NULL: none (--from-raw). Borrowed: set by
     * the batch while it writes the outputs, never freed by ex_doc_free. */
    const struct ex_tokconf *tokconf;
};

/* Review queue (ex_review.c, docs/constrain.md): sets needs_review and its reasons from the
 * document's check warnings (required, type, enum, pattern, arithmetic, date, currency,
 * truncated) and from every field whose confidence is below threshold. DP_ERR_NOMEM only. */
enum dp_status ex_doc_review(struct ex_doc *d, double threshold, struct dp_err *err);
/* Whether a warning code is a failed check that puts a document up for review. */
bool ex_warn_needs_review(enum ex_warn_code c);

/* ---- pages ------------------------------------------------------------------------------ */

/* Parses one raw answer. schema may be NULL (then every key is kept, no validation) and selects
 * the parser order (layout -> HTML first, kie/chart -> JSON first). geom may be NULL. Malformed
 * input never fails: it becomes warnings. Fails only on DP_ERR_NOMEM / DP_ERR_LIMIT (raw larger
 * than DP_MAX_TEXT_BYTES). Caller frees with ex_page_free (or hands it to ex_doc_add_page). */
enum dp_status ex_page_parse(struct ex_page **out, const struct sc_schema *schema, const char *raw,
                             size_t raw_len, const struct ex_geom *geom, int page_number,
                             enum ex_stop stop, struct dp_err *err);
void ex_page_free(struct ex_page *p);

/* ---- documents ---------------------------------------------------------------------------- */

enum dp_status ex_doc_new(struct ex_doc **out, const char *source, struct dp_err *err);
/* Copies every string of stamp. */
enum dp_status ex_doc_set_stamp(struct ex_doc *doc, const struct ex_stamp *stamp,
                                struct dp_err *err);
enum dp_status ex_doc_set_source_hash(struct ex_doc *doc, const char *sha256, struct dp_err *err);
/* A note about the page selection (pages asked for beyond the end, ignored): ex_doc_finish
 * makes it the first document-level warning, code "pages". NULL clears it. */
enum dp_status ex_doc_set_pages_note(struct ex_doc *doc, const char *note, struct dp_err *err);
/* Appends a page and takes ownership of it (also on failure). */
enum dp_status ex_doc_add_page(struct ex_doc *doc, struct ex_page *page, struct dp_err *err);
/* Merges page fields into document fields (first page with a value wins; arrays are
 * concatenated in page order), then validates against schema (may be NULL) and runs its
 * cross-checks. Call once after the last page. */
enum dp_status ex_doc_finish(struct ex_doc *doc, const struct sc_schema *schema,
                             struct dp_err *err);
void ex_doc_free(struct ex_doc *doc);
/* Whether a warning code is a failed validation or cross-check (required, type, enum, pattern,
 * arithmetic): what makes a document invalid. */
bool ex_warn_is_validation(enum ex_warn_code code);
/* A finished document passes its schema: no document-level validation warning. *first (may be
 * NULL) gets the first failing warning, or NULL. */
bool ex_doc_valid(const struct ex_doc *doc, const struct ex_warning **first);

/* ---- pieces other modules use (writers) --------------------------------------------------- */

/* Initialises libxml2 exactly once (thread-safe, GOnce). Called by the HTML parser and the XML
 * writer; a program that parses from several threads may also call it first on the main thread. */
void ex_xml_init(void);

/* Copy of s[0..n) as valid UTF-8 without XML-forbidden characters (invalid bytes -> U+FFFD).
 * For writers quoting raw spans. Caller frees with dp_free; NULL on NOMEM. */
char *ex_text_clean(const char *s, size_t n);

const char *ex_vtype_name(enum ex_vtype t);
const char *ex_block_kind_name(enum ex_block_kind k);
const char *ex_warn_code_name(enum ex_warn_code c);
const char *ex_source_kind_name(enum ex_source_kind k);

#endif
