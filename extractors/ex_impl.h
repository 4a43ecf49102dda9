/* Module-private declarations of libex (ex__*): the tolerant JSON tree, the HTML and markdown
 * parsers, the table grid builder, text cleaning and the warning sink. Tests and fuzz targets
 * include this header; other modules use ex.h only. */
#ifndef EX_IMPL_H
#define EX_IMPL_H

#include "ex.h"

#include <stdbool.h>
#include <stddef.h>

/* ---- growable arrays and warnings ---------------------------------------------------------- */

/* Makes room for one more element in *arr (n used, *cap allocated). false on overflow/NOMEM. */
bool ex__grow(void **arr, size_t *cap, size_t n, size_t elem);

/* Warnings go to a sink owned by the page being built. */
struct ex__wsink {
    struct ex_warning *w;
    size_t n, cap;
    size_t dropped; /* beyond EX_MAX_WARNINGS */
    int page;
    enum dp_status status; /* sticky NOMEM */
};
void ex__warn(struct ex__wsink *s, enum ex_warn_code code, size_t off, size_t len, const char *path,
              const char *fmt, ...) DP_PRINTF(6, 7);
void ex__warning_free(struct ex_warning *w);
/* Date plausibility and currency consistency over a document's fields (ex_review.c). */
void ex__check_dates_currency(const struct ex_field *f, size_t n, struct ex__wsink *ws);
/* Appends "(and N more)" when warnings were dropped. */
void ex__wsink_close(struct ex__wsink *s);

/* ---- text ---------------------------------------------------------------------------------- */

/* Copy of s[0..n) as valid UTF-8 (invalid bytes -> U+FFFD, C0 controls other than \t \n \r and
 * DEL -> space). NULL on NOMEM. */
char *ex__clean(const char *s, size_t n);
/* As ex__clean, also collapsing runs of whitespace to one space and trimming. */
char *ex__clean_collapse(const char *s, size_t n);
/* Appends code point cp as UTF-8 (cp invalid -> U+FFFD). Returns bytes written (<= 4). */
size_t ex__utf8_put(char *dst, unsigned long cp);
/* Decodes HTML entities (&amp; &lt; &gt; &quot; &apos; &#NN; &#xHH; &nbsp;) in place. */
void ex__entities_decode(char *s);
/* Answer body: strips a ```lang fence when present. *lang gets the fence language (or "").
 * Sets *unclosed when an opening fence has no closing one. Returns false when there is no fence
 * (then [*off, *off+*len) is the whole text). */
bool ex__fence_find(const char *s, size_t n, size_t *off, size_t *len, char lang[16],
                    bool *unclosed);

/* ---- tolerant JSON ------------------------------------------------------------------------- */

enum ex_jtype { EX_J_NULL = 0, EX_J_BOOL, EX_J_NUM, EX_J_STR, EX_J_ARR, EX_J_OBJ };

struct ex_jv {
    enum ex_jtype type;
    char *key;       /* member name when inside an object (cleaned UTF-8) */
    char *str;       /* EX_J_STR: decoded text; EX_J_NUM: the number as written */
    double num;      /* EX_J_NUM */
    bool b;          /* EX_J_BOOL */
    bool complete;   /* false when the answer ended inside this value */
    size_t off, len; /* span in the parsed text (absolute offsets) */
    size_t key_off;  /* where the key starts (objects) */
    struct ex_jv *items; /* (n) members / elements */
    size_t n, cap;
};

struct ex_jdoc {
    struct ex_jv root;
    bool found;     /* a JSON value was found at all */
    bool truncated; /* the text ended inside the value */
    size_t nodes;
};

/* Parses the first JSON value in text[off, off+len) (offsets in warnings are absolute in text).
 * Never fails on syntax: problems become warnings in ws. DP_ERR_NOMEM only. */
enum dp_status ex__json_parse(struct ex_jdoc *out, const char *text, size_t off, size_t len,
                              struct ex__wsink *ws);
void ex__json_free(struct ex_jdoc *d);
void ex__jv_free(struct ex_jv *v);
/* Member of an object by key (last one; ASCII case-insensitive) or NULL. */
const struct ex_jv *ex__jv_get(const struct ex_jv *obj, const char *key);
/* A 4-number array as a box (x1 y1 x2 y2, reordered). */
bool ex__jv_box(const struct ex_jv *v, struct ex_box *out);

/* ---- tables -------------------------------------------------------------------------------- */

/* One source cell before grid expansion. */
struct ex__tcell {
    int row;              /* source row index */
    long rowspan, colspan; /* as given (0 rowspan = to the end of the table) */
    char *text;           /* owned */
    bool header;
    bool has_box;
    struct ex_box box;    /* model space */
    size_t off, len;      /* span in the raw answer */
};

/* Expands cells (n_src, in row-major source order) of a table with n_rows rows into a
 * rectangular grid: spans overflowing the grid are clipped, spans overlapping an occupied
 * position are cut (both warned), short rows are padded with empty cells. Takes ownership of
 * every cell's text (also on failure). */
enum dp_status ex__table_build(struct ex_table *out, struct ex__tcell *src, size_t n_src,
                               int n_rows, const struct ex_geom *g, int page,
                               struct ex__wsink *ws);
void ex__table_free(struct ex_table *t);

/* ---- page building ------------------------------------------------------------------------- */

/* Collector the parsers write into; ex_parse.c turns it into a page. */
struct ex__pagebuild {
    const struct sc_schema *schema;
    const struct ex_geom *geom;
    const char *raw;
    size_t raw_len;
    int page;
    struct ex__wsink ws;
    struct ex_block *blocks; size_t n_blocks, cap_blocks;
    struct ex_table *tables; size_t n_tables, cap_tables;
    struct ex_chart *charts; size_t n_charts, cap_charts;
    struct ex_field *fields; size_t n_fields, cap_fields;
    size_t n_fields_dropped; /* beyond EX_MAX_FIELDS */
    bool truncated;
    enum dp_status status; /* sticky NOMEM */
};

/* Adds a block (takes ownership of text; may be NULL). Returns the block or NULL on NOMEM. */
struct ex_block *ex__pb_block(struct ex__pagebuild *pb, enum ex_block_kind kind, const char *tag,
                              const char *cls, char *text, const struct ex_box *box, size_t off,
                              size_t len);
/* Fills prov from a model box (may be NULL) and a span. */
void ex__prov_set(struct ex_prov *p, const struct ex_geom *g, int page, const struct ex_box *box,
                  size_t off, size_t len);

/* HTML answer (QwenVL HTML or ordinary HTML), text[off, off+len). */
enum dp_status ex__html_parse(struct ex__pagebuild *pb, size_t off, size_t len);
/* Markdown tables (and plain lines as text blocks) in text[off, off+len). */
enum dp_status ex__markdown_parse(struct ex__pagebuild *pb, size_t off, size_t len);
/* An olmOCR-2 answer (front matter -> fields, Markdown body -> blocks/tables), the whole of
 * pb->raw (ex_olmocr.c). */
enum dp_status ex__olmocr_parse(struct ex__pagebuild *pb);
/* A chart from a JSON object (ex_page.c). */
enum dp_status ex__chart_from_json(struct ex__pagebuild *pb, const struct ex_jv *obj);
/* Fields / blocks / charts from a parsed JSON answer. */
enum dp_status ex__json_to_page(struct ex__pagebuild *pb, const struct ex_jdoc *jd);

/* Typing of one field against its schema entry (ex_norm.c); f->raw set, f->type from JSON. */
void ex__field_type(struct ex_field *f, const struct sc_field *sf, struct ex__wsink *ws,
                    const char *path);
void ex__field_free(struct ex_field *f);
enum dp_status ex__field_copy(struct ex_field *dst, const struct ex_field *src);

/* Validation and cross-checks of the merged document fields (ex_validate.c). */
void ex__validate(const struct sc_schema *s, const struct ex_field *fields, size_t n,
                  struct ex__wsink *ws);
void ex__check_arithmetic(const struct sc_schema *s, const struct ex_field *fields, size_t n,
                          struct ex__wsink *ws);

/* ---- geometry and typed normalisation (ex_parse.c, ex_norm.c; tests call them directly) ---- */

/* Maps a model-space box to page pixels / PDF points; false if geometry is unknown. */
void ex_geom_map(const struct ex_geom *g, const struct ex_box *model, struct ex_prov *out);

/* Typed normalisation (ex_norm.c). Each returns true when text was understood. */
/* Numbers in any grouping: "1,234.56" "1.234,56" "1 234,56" "1'234.56" "-12" "(12.00)". */
bool ex_norm_number(const char *text, double *out);
/* Money: number plus optional symbol/ISO code before or after ("RM8.75", "€ 1.234,50", "USD 5").
 * currency gets the ISO 4217 code or "" when none given. */
bool ex_norm_amount(const char *text, double *out, char currency[4]);
/* Dates to ISO 8601. alt (may be NULL) receives the other reading when day/month order is
 * ambiguous (both <= 12 and different), and *ambiguous is set. iso and alt need 11 bytes. */
bool ex_norm_date(const char *text, char iso[11], char alt[11], bool *ambiguous);
bool ex_norm_percent(const char *text, double *out);
/* ISO 4217 code for a symbol or code found in text ("$" -> "USD", "RM" -> "MYR"); "" if none. */
bool ex_norm_currency(const char *text, char code[4]);

#endif
