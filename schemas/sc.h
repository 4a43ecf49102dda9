/* libsc: extraction schemas (a documented subset of JSON Schema 2020-12 plus x- extensions, see
 * docs/schemas.md) loaded at run time from data files, and the prompt built from each schema.
 *
 *   struct dp_err err = {0};
 *   struct sc_schema *s = NULL;
 *   if (sc_schema_load(&s, "invoice", &err) != DP_OK)      // a name or a path to a .json file
 *       DP_LOG_ERROR("schema: %s", err.msg);
 *   const char *prompt = s->prompt;                       // user text sent with the page image
 *   const struct sc_field *f = sc_field_find(s->fields, s->n_fields, "total");
 *   sc_schema_free(s);
 *
 * Built-in schemas are searched in $DOCPROC_SCHEMAS, then <exe>/../share/docproc/schemas, then the
 * source tree's schemas/ folder. A loaded schema is immutable and may be shared between threads. */
#ifndef SC_H
#define SC_H

#include "dp_status.h"

#include <stdbool.h>
#include <stddef.h>

/* JSON Schema "type" of a field. */
enum sc_type {
    SC_TYPE_STRING = 0,
    SC_TYPE_NUMBER,
    SC_TYPE_INTEGER,
    SC_TYPE_BOOLEAN,
    SC_TYPE_OBJECT,
    SC_TYPE_ARRAY,
};

/* JSON Schema "format" (annotation) that selects the typed normalisation of a value. */
enum sc_format {
    SC_FORMAT_NONE = 0,
    SC_FORMAT_DATE,     /* "date": normalised to ISO 8601 YYYY-MM-DD */
    SC_FORMAT_AMOUNT,   /* "amount": money, number with any grouping, optional currency */
    SC_FORMAT_CURRENCY, /* "currency": ISO 4217 code from a code or symbol */
    SC_FORMAT_PERCENT,  /* "percent": number followed by % */
};

/* What kind of answer the schema's prompt asks for, and so which parser runs first. */
enum sc_task {
    SC_TASK_KIE = 0, /* key-value JSON (fields, nested arrays of objects) */
    SC_TASK_LAYOUT,  /* QwenVL HTML document parsing (blocks with data-bbox) */
    SC_TASK_TABLE,   /* HTML / markdown tables */
    SC_TASK_CHART,   /* chart JSON (type, title, axes, series of points) */
    SC_TASK_OCR,     /* Qwen2.5-VL text spotting: JSON list of {bbox_2d, text_content} lines */
    SC_TASK_OLMOCR,  /* olmOCR-2: YAML front matter + Markdown body (ex_olmocr.c) */
};

/* Cross-checks run after validation (x-checks in the schema file). */
enum sc_check {
    SC_CHECK_INVOICE_ARITHMETIC = 1u << 0, /* qty*price = amount, sum lines = subtotal, +tax = total */
};

struct sc_field {
    char *name;        /* property name (key in the answer and in the outputs) */
    char *description; /* shown to the model in the prompt; may be NULL */
    enum sc_type type;
    enum sc_format format;
    bool required;
    char **enum_vals; /* (n_enum) allowed values, or NULL */
    size_t n_enum;
    char *pattern;  /* regular expression the (string) value must match, or NULL */
    char **aliases; /* (n_aliases) other keys that mean this field (x-aliases), any language */
    size_t n_aliases;
    /* type == SC_TYPE_ARRAY: item type; for arrays of objects the item properties are children. */
    enum sc_type item_type;
    struct sc_field *children; /* (n_children) properties of an object / of array items */
    size_t n_children;
};

struct sc_schema {
    char *name;          /* "invoice"; from x-name, else the file stem */
    char *title;         /* may be NULL */
    char *version;       /* x-version, "0" when absent */
    char *path;          /* file it was loaded from */
    char hash[65];       /* SHA-256 (hex) of the file bytes: stamped into every result */
    enum sc_task task;   /* x-task */
    unsigned checks;     /* OR of enum sc_check (x-checks) */
    char *prompt;        /* the user prompt, built from x-prompt and the fields (sc_prompt.c) */
    char *system_prompt; /* x-system-prompt or NULL (the model's default) */
    struct sc_field *fields; /* (n_fields) top-level properties in file order */
    size_t n_fields;
    char *source;        /* the schema file's bytes (NUL-terminated), for the constrained-decoding
                          * compiler, which checks every keyword (extractors/ex_cons_gram.c) */
    size_t source_len;
};

/* Loads a schema by built-in name ("invoice") or by path (anything containing '/' or ending in
 * ".json"). DP_ERR_SCHEMA with the file and the offending key on a malformed schema,
 * DP_ERR_IO when not found (message lists where it looked). Caller frees with sc_schema_free. */
enum dp_status sc_schema_load(struct sc_schema **out, const char *name_or_path, struct dp_err *err);
/* Parses a schema from memory; path is used for messages and the stem name. */
enum dp_status sc_schema_parse(struct sc_schema **out, const char *data, size_t len,
                               const char *path, struct dp_err *err);
void sc_schema_free(struct sc_schema *s);

/* Finds a field by name or alias (ASCII case-insensitive, ' ', '-' and '_' equivalent). NULL if
 * none. */
const struct sc_field *sc_field_find(const struct sc_field *fields, size_t n, const char *key);

/* Resolves a built-in schema name to a file path (caller frees with dp_free). */
enum dp_status sc_schema_find(char **out, const char *name, struct dp_err *err);
/* Names of the built-in schemas found in the search path, for --help (caller frees each and the
 * array with dp_free). */
enum dp_status sc_schema_list(char ***out, size_t *n_out, struct dp_err *err);
/* The same names joined as "chart, form, invoice, ..." (caller frees with dp_free), or NULL
 * when none is found or out of memory. */
char *sc_schema_names(void);

const char *sc_type_name(enum sc_type t);
const char *sc_format_name(enum sc_format f);
const char *sc_task_name(enum sc_task t);

#endif
