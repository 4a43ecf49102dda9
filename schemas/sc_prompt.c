/* Builds the user prompt of a schema (sc.h): the schema's x-prompt, then, for key-value and chart
 * schemas, one line per field (name, type/format, description; nested item fields listed), then
 * the answer contract: one JSON object in a ```json block, each field as
 * {"value": ..., "bbox_2d": [x1, y1, x2, y2]} (grounded answers). A new field in the schema file is
 * a new line of the prompt. Layout and table schemas send x-prompt verbatim ("QwenVL HTML ").
 * Thread-safe: pure function of the schema. */
#include "sc.h"
#include "sc_impl.h"
#include "dp_alloc.h"
#include "dp_buf.h"

#include <string.h>

#define SC_PROMPT_MAX_BYTES ((size_t)64 << 10)

static const char DEFAULT_KIE_PROMPT[] = "Extract the key-value information from this document image.";

static const char KIE_CONTRACT[] =
    "Answer with one JSON object in a ```json code block, using exactly these keys. Give every "
    "field as {\"value\": ..., \"bbox_2d\": [x1, y1, x2, y2]} where bbox_2d is the box of the text "
    "in pixels of this image; use null when the field is not in the document. Give list fields as "
    "a list of objects whose members have the same form. Copy numbers and dates as printed.";

static void type_text(struct dp_buf *b, const struct sc_field *f) {
    if (f->format != SC_FORMAT_NONE) {
        dp_buf_puts(b, sc_format_name(f->format));
        if (f->format == SC_FORMAT_DATE)
            dp_buf_puts(b, ", as printed");
    } else if (f->type == SC_TYPE_ARRAY && f->item_type == SC_TYPE_OBJECT) {
        dp_buf_puts(b, "list of objects");
    } else if (f->type == SC_TYPE_ARRAY) {
        dp_buf_appendf(b, "list of %s", sc_type_name(f->item_type));
    } else {
        dp_buf_puts(b, sc_type_name(f->type));
    }
    if (f->n_enum) {
        dp_buf_puts(b, ", one of");
        for (size_t i = 0; i < f->n_enum; i++)
            dp_buf_appendf(b, "%s \"%s\"", i ? "," : "", f->enum_vals[i]);
    }
}

static void field_lines(struct dp_buf *b, const struct sc_field *fields, size_t n, int indent) {
    for (size_t i = 0; i < n; i++) {
        const struct sc_field *f = &fields[i];
        for (int k = 0; k < indent; k++)
            dp_buf_puts(b, "  ");
        dp_buf_appendf(b, "- %s (", f->name);
        type_text(b, f);
        dp_buf_puts(b, f->required ? ", required)" : ")");
        if (f->description)
            dp_buf_appendf(b, ": %s", f->description);
        dp_buf_putc(b, '\n');
        if (f->n_children)
            field_lines(b, f->children, f->n_children, indent + 1);
    }
}

enum dp_status sc__prompt_build(struct sc_schema *s, const char *x_prompt, struct dp_err *err) {
    struct dp_buf b;
    dp_buf_init(&b, SC_PROMPT_MAX_BYTES);
    bool listed = s->task == SC_TASK_KIE || s->task == SC_TASK_CHART;
    if (x_prompt)
        dp_buf_puts(&b, x_prompt);
    else if (listed)
        dp_buf_puts(&b, DEFAULT_KIE_PROMPT);
    if (listed && s->n_fields) {
        dp_buf_puts(&b, "\nFields:\n");
        field_lines(&b, s->fields, s->n_fields, 0);
        dp_buf_puts(&b, s->task == SC_TASK_KIE ? KIE_CONTRACT
                                               : "Answer with one JSON object with these keys in a "
                                                 "```json code block; give numbers as numbers.");
    }
    if (b.status == DP_OK && b.len == 0)
        return dp_err_set(err, DP_ERR_SCHEMA, "%s: no x-prompt and no fields to build a prompt from",
                          s->path);
    if (b.status != DP_OK) {
        enum dp_status st = b.status;
        dp_buf_free(&b);
        return dp_err_set(err, st, "%s: prompt too long (max %zu bytes)", s->path,
                          SC_PROMPT_MAX_BYTES);
    }
    s->prompt = dp_buf_steal(&b, NULL);
    return s->prompt ? DP_OK : dp_err_set(err, DP_ERR_NOMEM, "out of memory");
}
