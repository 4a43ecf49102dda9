/* The lines model (ex_lines.h): turns a parsed page's blocks and tables into regions -> lines ->
 * words with page-pixel boxes for the archive writers. Text-spotting elements are lines as the
 * model gave them; other blocks are spread over an estimated number of lines; words split a line
 * box in proportion to their characters. Optional token log-probabilities give confidences.
 * Thread-safe: all state lives in the object being built. */
#include "ex_lines.h"
#include "dp_alloc.h"

#include <math.h>
#include <string.h>

/* Words of a line split on ASCII white space. */
struct wspan {
    const char *s;
    size_t n;     /* bytes */
    size_t chars; /* code points */
};

static size_t utf8_chars(const char *s, size_t n) {
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

static bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* Splits text into words; *out is caller-freed (dp_free). DP_ERR_NOMEM only. */
static enum dp_status split_words(const char *text, struct wspan **out, size_t *n_out) {
    size_t n = 0, cap = 0;
    struct wspan *v = NULL;
    for (const char *p = text; *p;) {
        while (*p && is_space(*p))
            p++;
        const char *s = p;
        while (*p && !is_space(*p))
            p++;
        if (p == s)
            break;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            struct wspan *g = dp_reallocarray(v, nc, sizeof *g);
            if (!g) {
                dp_free(v);
                return DP_ERR_NOMEM;
            }
            v = g;
            cap = nc;
        }
        v[n].s = s;
        v[n].n = (size_t)(p - s);
        v[n].chars = utf8_chars(s, v[n].n);
        n++;
    }
    *out = v;
    *n_out = n;
    return DP_OK;
}

int ex_lines_estimate_count(double box_w, double box_h, size_t n_chars) {
    if (!(box_w > 0) || !(box_h > 0) || n_chars == 0)
        return 1;
    /* n lines of height h/n hold n * w / (aspect * h/n) = n^2 w / (aspect h) characters */
    double n = sqrt((double)n_chars * EX_LINES_GLYPH_ASPECT * box_h / box_w);
    long k = lround(n);
    if (k < 1)
        k = 1;
    if ((size_t)k > n_chars)
        k = (long)n_chars;
    return (int)k;
}

static double span_conf(const struct ex_tokconf *tc, const struct ex_prov *p) {
    if (!tc || !tc->n || !p->span_len)
        return -1;
    double sum = 0;
    size_t k = 0;
    for (size_t i = 0; i < tc->n; i++)
        if (tc->off[i] >= p->span_off && tc->off[i] < p->span_off + p->span_len) {
            sum += tc->logprob[i];
            k++;
        }
    if (!k)
        return -1;
    double c = exp(sum / (double)k);
    return c < 0 ? 0 : c > 1 ? 1 : c;
}

static void line_free(struct ex_line *l) {
    for (size_t i = 0; i < l->n_words; i++)
        dp_free(l->words[i].text);
    dp_free(l->words);
    dp_free(l->text);
}

void ex_lines_free(struct ex_lines *L) {
    if (!L)
        return;
    for (size_t r = 0; r < L->n_regions; r++) {
        for (size_t i = 0; i < L->regions[r].n_lines; i++)
            line_free(&L->regions[r].lines[i]);
        dp_free(L->regions[r].lines);
    }
    dp_free(L->regions);
    dp_free(L);
}

/* Appends a line made of words w[0..n) to region g; box (may be NULL) is the line box. */
static enum dp_status add_line(struct ex_region *g, const struct wspan *w, size_t n,
                               const struct ex_box *box, bool estimated, double conf) {
    if (!n)
        return DP_OK;
    struct ex_line *v = dp_reallocarray(g->lines, g->n_lines + 1, sizeof *v);
    if (!v)
        return DP_ERR_NOMEM;
    g->lines = v;
    struct ex_line *l = &v[g->n_lines];
    memset(l, 0, sizeof *l);
    l->conf = conf;
    l->has_box = box != NULL;
    l->box_estimated = estimated;
    if (box)
        l->box = *box;
    size_t bytes = 0, units = 0;
    for (size_t i = 0; i < n; i++) {
        bytes += w[i].n + 1;
        units += w[i].chars + (i > 0);
    }
    l->text = dp_malloc(bytes);
    l->words = dp_calloc(n, sizeof *l->words);
    if (!l->text || !l->words) {
        line_free(l);
        return DP_ERR_NOMEM;
    }
    g->n_lines++; /* from here on freed with the region */
    size_t o = 0, u = 0;
    double bw = box ? box->x2 - box->x1 : 0;
    for (size_t i = 0; i < n; i++) {
        if (i) {
            l->text[o++] = ' ';
            u++;
        }
        memcpy(l->text + o, w[i].s, w[i].n);
        o += w[i].n;
        struct ex_word *wd = &l->words[i];
        wd->text = dp_strndup(w[i].s, w[i].n);
        if (!wd->text)
            return DP_ERR_NOMEM;
        l->n_words = i + 1;
        wd->conf = conf;
        if (box) {
            wd->box.y1 = box->y1;
            wd->box.y2 = box->y2;
            wd->box.x1 = box->x1 + bw * (double)u / (double)units;
            wd->box.x2 = box->x1 + bw * (double)(u + w[i].chars) / (double)units;
        }
        u += w[i].chars;
    }
    l->text[o] = '\0';
    return DP_OK;
}

/* Spreads text over n_lines slices of box (or one unboxed line when box is NULL). */
static enum dp_status add_text(struct ex_region *g, const char *text, const struct ex_box *box,
                               int n_lines, bool estimated, double conf) {
    struct wspan *w = NULL;
    size_t n = 0;
    if (split_words(text ? text : "", &w, &n) != DP_OK)
        return DP_ERR_NOMEM;
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += w[i].chars + (i > 0);
    if (n_lines < 1 || !box)
        n_lines = 1;
    if ((size_t)n_lines > n)
        n_lines = n ? (int)n : 1;
    enum dp_status st = DP_OK;
    size_t i = 0, done = 0;
    for (int k = 0; k < n_lines && st == DP_OK; k++) {
        /* greedy: fill line k up to its share of the characters, at least one word each */
        double target = (double)total * (k + 1) / n_lines;
        size_t j = i;
        size_t left = (size_t)(n_lines - k - 1); /* lines still to fill after this one */
        while (j < n && (j == i || (double)(done + w[j].chars + 1) <= target + 0.5) &&
               n - (j + 1) >= left) {
            done += w[j].chars + (j > 0);
            j++;
        }
        if (k == n_lines - 1)
            j = n;
        struct ex_box lb;
        if (box) {
            double h = (box->y2 - box->y1) / n_lines;
            lb = (struct ex_box){box->x1, box->y1 + h * k, box->x2, box->y1 + h * (k + 1)};
        }
        st = add_line(g, w + i, j - i, box ? &lb : NULL, estimated || n_lines > 1, conf);
        i = j;
    }
    dp_free(w);
    return st;
}

/* One line per table row: the row's cell texts (origin cells only) in column order. */
static enum dp_status add_table(struct ex_region *g, const struct ex_table *t, double conf) {
    enum dp_status st = DP_OK;
    for (int r = 0; r < t->n_rows && st == DP_OK; r++) {
        size_t len = 1;
        for (int c = 0; c < t->n_cols; c++) {
            const struct ex_cell *cl = &t->cells[(size_t)r * (size_t)t->n_cols + (size_t)c];
            if (cl->text && cl->orow == r && cl->ocol == c)
                len += strlen(cl->text) + 1;
        }
        char *row = dp_malloc(len);
        if (!row)
            return DP_ERR_NOMEM;
        size_t o = 0;
        for (int c = 0; c < t->n_cols; c++) {
            const struct ex_cell *cl = &t->cells[(size_t)r * (size_t)t->n_cols + (size_t)c];
            if (!cl->text || cl->orow != r || cl->ocol != c)
                continue;
            size_t n = strlen(cl->text);
            memcpy(row + o, cl->text, n);
            o += n;
            row[o++] = ' ';
        }
        row[o] = '\0';
        struct ex_box lb;
        if (g->has_box) {
            double h = (g->box.y2 - g->box.y1) / t->n_rows;
            lb = (struct ex_box){g->box.x1, g->box.y1 + h * r, g->box.x2, g->box.y1 + h * (r + 1)};
        }
        st = add_text(g, row, g->has_box ? &lb : NULL, 1, true, conf);
        dp_free(row);
    }
    return st;
}

static void extent(const struct ex_page *p, int *w, int *h) {
    double mx = 0, my = 0;
    for (size_t i = 0; i < p->n_blocks; i++)
        if (p->blocks[i].prov.has_box) {
            mx = fmax(mx, p->blocks[i].prov.page_px.x2);
            my = fmax(my, p->blocks[i].prov.page_px.y2);
        }
    *w = (int)ceil(mx);
    *h = (int)ceil(my);
}

enum dp_status ex_lines_build(struct ex_lines **out, const struct ex_page *page,
                              const struct ex_tokconf *tc, struct dp_err *err) {
    *out = NULL;
    struct ex_lines *L = dp_calloc(1, sizeof *L);
    if (!L || (page->n_blocks && !(L->regions = dp_calloc(page->n_blocks, sizeof *L->regions)))) {
        dp_free(L);
        return dp_err_set(err, DP_ERR_NOMEM, "page %d: out of memory building lines", page->number);
    }
    L->page = page->number;
    const struct ex_geom *g = &page->geom;
    L->width = g->page_w > 0 ? g->page_w : g->model_w;
    L->height = g->page_h > 0 ? g->page_h : g->model_h;
    if (L->width <= 0 || L->height <= 0)
        extent(page, &L->width, &L->height);
    enum dp_status st = DP_OK;
    for (size_t i = 0; i < page->n_blocks && st == DP_OK; i++) {
        const struct ex_block *b = &page->blocks[i];
        struct ex_region *r = &L->regions[L->n_regions];
        r->kind = b->kind;
        r->level = b->level;
        r->table = b->table;
        r->has_box = b->prov.has_box;
        if (r->has_box)
            r->box = b->prov.page_px;
        double conf = span_conf(tc, &b->prov);
        const struct ex_box *box = r->has_box ? &r->box : NULL;
        if (b->kind == EX_BLOCK_TABLE && b->table >= 0 && (size_t)b->table < page->n_tables) {
            st = add_table(r, &page->tables[b->table], conf);
        } else if (b->tag && (!strcmp(b->tag, "json") || !strcmp(b->tag, "line"))) {
            st = add_text(r, b->text, box, 1, false, conf); /* a text-spotting line */
        } else {
            int n = 1;
            if (box && b->text)
                n = ex_lines_estimate_count(box->x2 - box->x1, box->y2 - box->y1,
                                            utf8_chars(b->text, strlen(b->text)));
            st = add_text(r, b->text, box, n, true, conf);
        }
        for (size_t k = 0; k < r->n_lines; k++)
            L->n_boxed_lines += r->lines[k].has_box;
        if (r->n_lines) {
            L->n_regions++; /* regions without text (images, empty blocks) are left out */
        } else {
            DP_FREE(r->lines);
        }
    }
    if (st != DP_OK) {
        if (L->n_regions < page->n_blocks && L->regions[L->n_regions].n_lines)
            L->n_regions++; /* free the partly built region too */
        ex_lines_free(L);
        return dp_err_set(err, st, "page %d: out of memory building lines", page->number);
    }
    *out = L;
    return DP_OK;
}
