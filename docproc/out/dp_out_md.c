/* Markdown and plain-text writers (dp_out_archive.h): the page's blocks in reading order (the
 * answer's order). Markdown: headings as '#', list items as '-', formulas as $$ LaTeX $$, tables
 * as pipe tables or, when a cell spans rows or columns, as an HTML table; a comment marks each
 * page break. Text: one block per line, table rows tab-separated, a form feed between pages.
 * Block text is written as the model gave it (no Markdown escaping outside table cells), so the
 * concatenated text equals the answer's. Thread-safe per call. */
#include "dp_archive_impl.h"
#include "dp_out.h"

#include <string.h>

static bool spans(const struct ex_table *t) {
    for (size_t i = 0; i < (size_t)t->n_rows * (size_t)t->n_cols; i++)
        if (t->cells[i].rowspan > 1 || t->cells[i].colspan > 1)
            return true;
    return false;
}

static void html_escaped(struct dp_buf *b, const char *s) {
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

static void html_table(struct dp_buf *b, const struct ex_table *t) {
    dp_buf_puts(b, "<table>\n");
    for (int r = 0; r < t->n_rows; r++) {
        dp_buf_puts(b, "<tr>");
        for (int c = 0; c < t->n_cols; c++) {
            const struct ex_cell *cl = &t->cells[(size_t)r * (size_t)t->n_cols + (size_t)c];
            if (cl->orow != r || cl->ocol != c)
                continue;
            const char *tag = cl->header ? "th" : "td";
            dp_buf_appendf(b, "<%s", tag);
            if (cl->rowspan > 1)
                dp_buf_appendf(b, " rowspan=\"%d\"", cl->rowspan);
            if (cl->colspan > 1)
                dp_buf_appendf(b, " colspan=\"%d\"", cl->colspan);
            dp_buf_putc(b, '>');
            html_escaped(b, cl->text);
            dp_buf_appendf(b, "</%s>", tag);
        }
        dp_buf_puts(b, "</tr>\n");
    }
    dp_buf_puts(b, "</table>\n");
}

static void pipe_cell(struct dp_buf *b, const char *s) {
    dp_buf_putc(b, ' ');
    for (; s && *s; s++) {
        if (*s == '|')
            dp_buf_puts(b, "\\|");
        else if (*s == '\n' || *s == '\r')
            dp_buf_putc(b, ' ');
        else
            dp_buf_putc(b, *s);
    }
    dp_buf_puts(b, " |");
}

static void pipe_table(struct dp_buf *b, const struct ex_table *t) {
    for (int r = 0; r < t->n_rows; r++) {
        dp_buf_putc(b, '|');
        for (int c = 0; c < t->n_cols; c++)
            pipe_cell(b, t->cells[(size_t)r * (size_t)t->n_cols + (size_t)c].text);
        dp_buf_putc(b, '\n');
        if (r == 0) { /* a pipe table needs a header row: the first row serves */
            dp_buf_putc(b, '|');
            for (int c = 0; c < t->n_cols; c++)
                dp_buf_puts(b, " --- |");
            dp_buf_putc(b, '\n');
        }
    }
}

static void md_block(struct dp_buf *b, const struct ex_page *p, const struct ex_block *k) {
    if (k->kind == EX_BLOCK_TABLE && k->table >= 0 && (size_t)k->table < p->n_tables) {
        const struct ex_table *t = &p->tables[k->table];
        if (t->caption)
            dp_buf_appendf(b, "%s\n\n", t->caption);
        if (t->n_rows > 0 && t->n_cols > 0) {
            if (spans(t))
                html_table(b, t);
            else
                pipe_table(b, t);
        }
        dp_buf_putc(b, '\n');
        return;
    }
    if (!k->text || !*k->text)
        return;
    switch (k->kind) {
    case EX_BLOCK_HEADING: {
        int lv = k->level >= 1 && k->level <= 6 ? k->level : 1;
        for (int i = 0; i < lv; i++)
            dp_buf_putc(b, '#');
        dp_buf_appendf(b, " %s\n\n", k->text);
        break;
    }
    case EX_BLOCK_LIST_ITEM: dp_buf_appendf(b, "- %s\n\n", k->text); break;
    case EX_BLOCK_FORMULA: dp_buf_appendf(b, "$$\n%s\n$$\n\n", k->text); break;
    default: dp_buf_appendf(b, "%s\n\n", k->text); break;
    }
}

enum dp_status dp_out_markdown(const struct ex_doc *doc, struct dp_buf *out, struct dp_err *err) {
    for (size_t i = 0; i < doc->n_pages; i++) {
        const struct ex_page *p = doc->pages[i];
        if (i)
            dp_buf_appendf(out, DP_MD_PAGE_BREAK "%d -->\n\n", p->number);
        for (size_t k = 0; k < p->n_blocks; k++)
            md_block(out, p, &p->blocks[k]);
    }
    if (out->status != DP_OK)
        return dp_err_set(err, out->status, "%s: writing Markdown: %s", doc->source,
                          dp_status_str(out->status));
    return DP_OK;
}

enum dp_status dp_out_text(const struct ex_doc *doc, struct dp_buf *out, struct dp_err *err) {
    for (size_t i = 0; i < doc->n_pages; i++) {
        const struct ex_page *p = doc->pages[i];
        if (i)
            dp_buf_putc(out, '\f');
        for (size_t k = 0; k < p->n_blocks; k++) {
            const struct ex_block *bk = &p->blocks[k];
            if (bk->kind == EX_BLOCK_TABLE && bk->table >= 0 && (size_t)bk->table < p->n_tables) {
                const struct ex_table *t = &p->tables[bk->table];
                for (int r = 0; r < t->n_rows; r++) {
                    for (int c = 0; c < t->n_cols; c++) {
                        const char *s = t->cells[(size_t)r * (size_t)t->n_cols + (size_t)c].text;
                        dp_buf_appendf(out, "%s%s", c ? "\t" : "", s ? s : "");
                    }
                    dp_buf_putc(out, '\n');
                }
            } else if (bk->text && *bk->text) {
                dp_buf_appendf(out, "%s\n", bk->text);
            }
        }
    }
    if (out->status != DP_OK)
        return dp_err_set(err, out->status, "%s: writing text: %s", doc->source,
                          dp_status_str(out->status));
    return DP_OK;
}
