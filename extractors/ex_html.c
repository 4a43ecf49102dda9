/* HTML answers (QwenVL HTML with data-bbox, and ordinary HTML) through libxml2's recovering HTML
 * parser: headings, paragraphs, list items, images, formulas, captions and loose text become
 * blocks with their boxes; <table> becomes a grid (ex_table.c) with rowspan/colspan. Byte spans
 * are found by scanning the answer for each element's start tag in document order.
 * Thread-safe: libxml2 is initialised once through ex_xml_init (GOnce). */
#include "ex_impl.h"
#include "dp_alloc.h"
#include "dp_limits.h"

#include <glib.h>
#include <libxml/HTMLparser.h>
#include <libxml/tree.h>
#include <math.h>
#include <string.h>

#define HTML_PARSE_FLAGS                                                                           \
    (HTML_PARSE_RECOVER | HTML_PARSE_NONET | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING |          \
     HTML_PARSE_COMPACT)
#define BBOX_NUMBERS 4
#define TAG_MAX 32
/* Span search looks this far ahead of the cursor (keeps the scan linear on huge answers). */
#define SPAN_WINDOW ((size_t)1 << 16)

struct hctx {
    struct ex__pagebuild *pb;
    const char *text;  /* the cleaned fragment handed to libxml2 */
    size_t text_len;
    size_t base;       /* offset of the fragment in the raw answer */
    bool spans;        /* cleaned text has the raw's byte offsets */
    size_t cursor;     /* span search position in text */
    enum dp_status st;
};

static const char *attr(xmlNodePtr n, const char *name) {
    for (xmlAttrPtr a = n->properties; a; a = a->next)
        if (a->name && !g_ascii_strcasecmp((const char *)a->name, name) && a->children &&
            a->children->content)
            return (const char *)a->children->content;
    return NULL;
}

/* "x1 y1 x2 y2" (spaces or commas) -> box. */
static bool parse_bbox(const char *s, struct ex_box *out) {
    double v[BBOX_NUMBERS];
    for (int i = 0; i < BBOX_NUMBERS; i++) {
        while (*s == ' ' || *s == ',' || *s == '[' || *s == '\t')
            s++;
        char *e;
        v[i] = g_ascii_strtod(s, &e);
        if (e == s || !(v[i] == v[i]) || fabs(v[i]) > EX_BOX_MAX_ABS)
            return false;
        s = e;
    }
    while (*s == ' ' || *s == ']' || *s == '\t')
        s++;
    if (*s)
        return false;
    out->x1 = v[0] < v[2] ? v[0] : v[2];
    out->x2 = v[0] < v[2] ? v[2] : v[0];
    out->y1 = v[1] < v[3] ? v[1] : v[3];
    out->y2 = v[1] < v[3] ? v[3] : v[1];
    return true;
}

/* Span of the element: from "<name" at or after the cursor to the end of its closing tag
 * (or of its start tag when unclosed). */
static void find_span(struct hctx *h, const char *name, size_t *off, size_t *len) {
    *off = *len = 0;
    if (!h->spans)
        return;
    char open[TAG_MAX + 2], close[TAG_MAX + 4];
    size_t nl = strlen(name);
    if (nl > TAG_MAX)
        return;
    open[0] = '<';
    memcpy(open + 1, name, nl + 1);
    close[0] = '<', close[1] = '/';
    memcpy(close + 2, name, nl + 1);
    const char *s = h->text;
    size_t limit = h->text_len - h->cursor > SPAN_WINDOW ? h->cursor + SPAN_WINDOW : h->text_len;
    for (size_t i = h->cursor; i + nl + 1 <= limit; i++) {
        if (g_ascii_strncasecmp(s + i, open, nl + 1))
            continue;
        char after = i + nl + 1 < h->text_len ? s[i + nl + 1] : '>';
        if (after != ' ' && after != '>' && after != '/' && after != '\t' && after != '\n')
            continue;
        size_t end = h->text_len;
        bool closed = false;
        size_t klim = h->text_len - i > SPAN_WINDOW ? i + SPAN_WINDOW : h->text_len;
        for (size_t k = i + 1; k + nl + 2 <= klim; k++) {
            if (!g_ascii_strncasecmp(s + k, close, nl + 2)) {
                const char *gt = memchr(s + k, '>', h->text_len - k);
                end = gt ? (size_t)(gt - s) + 1 : h->text_len;
                closed = true;
                break;
            }
            if (s[k] == '<' && !g_ascii_strncasecmp(s + k + 1, name, nl) && k > i)
                break; /* next element of the same name: unclosed */
        }
        if (!closed) {
            const char *gt = memchr(s + i, '>', h->text_len - i);
            end = gt ? (size_t)(gt - s) + 1 : h->text_len;
        }
        *off = h->base + i;
        *len = end - i;
        h->cursor = i + 1;
        return;
    }
}

static char *node_text(xmlNodePtr n) {
    xmlChar *c = xmlNodeGetContent(n);
    char *t = ex__clean_collapse(c ? (const char *)c : "", c ? strlen((const char *)c) : 0);
    xmlFree(c);
    return t;
}

static bool is_tag(const xmlNode *n, const char *name) {
    return n->type == XML_ELEMENT_NODE && n->name && !g_ascii_strcasecmp((const char *)n->name, name);
}

/* Block kind of an element, or -1 when it is a container to descend into. */
static int block_kind(const char *tag, const char *cls, int *level) {
    *level = 0;
    if (cls) {
        if (strstr(cls, "caption"))
            return EX_BLOCK_CAPTION;
        if (strstr(cls, "formula"))
            return EX_BLOCK_FORMULA;
        if (strstr(cls, "chart"))
            return EX_BLOCK_CHART;
        if (strstr(cls, "image"))
            return EX_BLOCK_IMAGE;
        if (strstr(cls, "music"))
            return EX_BLOCK_OTHER;
    }
    if (tag[0] == 'h' && tag[1] >= '1' && tag[1] <= '6' && !tag[2]) {
        *level = tag[1] - '0';
        return EX_BLOCK_HEADING;
    }
    static const char *const text_tags[] = {"p", "pre", "blockquote", "address", "dt", "dd",
                                            "title", "summary", "label", "legend", "option"};
    for (size_t i = 0; i < sizeof text_tags / sizeof *text_tags; i++)
        if (!strcmp(tag, text_tags[i]))
            return EX_BLOCK_TEXT;
    if (!strcmp(tag, "li"))
        return EX_BLOCK_LIST_ITEM;
    if (!strcmp(tag, "img"))
        return EX_BLOCK_IMAGE;
    if (!strcmp(tag, "figcaption") || !strcmp(tag, "caption"))
        return EX_BLOCK_CAPTION;
    if (!strcmp(tag, "math"))
        return EX_BLOCK_FORMULA;
    return -1;
}

static void lower(char *dst, const char *src) {
    size_t i = 0;
    for (; src[i] && i < TAG_MAX; i++)
        dst[i] = g_ascii_tolower(src[i]);
    dst[i] = '\0';
}

/* ---- tables -------------------------------------------------------------------------------- */

static long span_attr(struct hctx *h, xmlNodePtr cell, const char *name, size_t off, size_t len) {
    const char *v = attr(cell, name);
    if (!v)
        return 1;
    char *e;
    long n = strtol(v, &e, 10);
    while (*e == ' ')
        e++;
    if (e == v || *e || n < 0) {
        ex__warn(&h->pb->ws, EX_WARN_SYNTAX, off, len, NULL, "bad %s=\"%.20s\": 1 used", name, v);
        return 1;
    }
    if (n > EX_TABLE_MAX_SPAN) {
        ex__warn(&h->pb->ws, EX_WARN_LIMIT, off, len, NULL, "%s %ld clipped to %d", name, n,
                 EX_TABLE_MAX_SPAN);
        n = EX_TABLE_MAX_SPAN;
    }
    return n;
}

struct tbuild {
    struct ex__tcell *cells;
    size_t n, cap;
    int rows;
    char *caption;
};

static void table_rows(struct hctx *h, xmlNodePtr parent, struct tbuild *tb, int depth) {
    for (xmlNodePtr n = parent->children; n && h->st == DP_OK; n = n->next) {
        if (n->type != XML_ELEMENT_NODE)
            continue;
        if (is_tag(n, "caption") && !tb->caption) {
            tb->caption = node_text(n);
            if (!tb->caption)
                h->st = DP_ERR_NOMEM;
        } else if (is_tag(n, "tr")) {
            size_t ro, rl;
            find_span(h, "tr", &ro, &rl);
            int row = tb->rows++;
            for (xmlNodePtr c = n->children; c && h->st == DP_OK; c = c->next) {
                bool th = is_tag(c, "th");
                if (!th && !is_tag(c, "td"))
                    continue;
                if (!ex__grow((void **)&tb->cells, &tb->cap, tb->n, sizeof *tb->cells)) {
                    h->st = DP_ERR_NOMEM;
                    return;
                }
                struct ex__tcell *tc = &tb->cells[tb->n];
                memset(tc, 0, sizeof *tc);
                find_span(h, th ? "th" : "td", &tc->off, &tc->len);
                tc->row = row;
                tc->header = th;
                tc->rowspan = span_attr(h, c, "rowspan", tc->off, tc->len);
                tc->colspan = span_attr(h, c, "colspan", tc->off, tc->len);
                const char *bb = attr(c, "data-bbox");
                tc->has_box = bb && parse_bbox(bb, &tc->box);
                tc->text = node_text(c);
                if (!tc->text) {
                    h->st = DP_ERR_NOMEM;
                    return;
                }
                tb->n++;
            }
        } else if ((is_tag(n, "thead") || is_tag(n, "tbody") || is_tag(n, "tfoot")) &&
                   depth < EX_HTML_MAX_DEPTH) {
            table_rows(h, n, tb, depth + 1);
        }
    }
}

static void table(struct hctx *h, xmlNodePtr n, const struct ex_box *box, size_t off, size_t len) {
    struct tbuild tb = {0};
    table_rows(h, n, &tb, 0);
    struct ex__pagebuild *pb = h->pb;
    if (h->st == DP_OK &&
        !ex__grow((void **)&pb->tables, &pb->cap_tables, pb->n_tables, sizeof *pb->tables))
        h->st = DP_ERR_NOMEM;
    if (h->st != DP_OK) {
        for (size_t i = 0; i < tb.n; i++)
            dp_free(tb.cells[i].text);
        dp_free(tb.cells);
        dp_free(tb.caption);
        return;
    }
    struct ex_table *t = &pb->tables[pb->n_tables];
    h->st = ex__table_build(t, tb.cells, tb.n, tb.rows, pb->geom, pb->page, &pb->ws);
    dp_free(tb.cells);
    if (h->st != DP_OK) {
        dp_free(tb.caption);
        return;
    }
    t->caption = tb.caption;
    ex__prov_set(&t->prov, pb->geom, pb->page, box, off, len);
    pb->n_tables++;
    char *cap = tb.caption ? dp_strdup(tb.caption) : NULL;
    if (tb.caption && !cap) {
        h->st = DP_ERR_NOMEM;
        return;
    }
    struct ex_block *b = ex__pb_block(pb, EX_BLOCK_TABLE, "table", attr(n, "class"), cap, box, off, len);
    if (!b)
        h->st = DP_ERR_NOMEM;
    else
        b->table = (int)pb->n_tables - 1;
}

/* ---- grounding points ---------------------------------------------------------------------- */

#define POINTS_MAX 64

/* The bounding box of the points x1/y1 ... xN/yN (spec 9.2), as a block of the phrase. */
static void points(struct hctx *h, xmlNodePtr n, size_t off, size_t len) {
    struct ex_box box = {0};
    int k = 0;
    for (int i = 1; i <= POINTS_MAX; i++) {
        char xn[16], yn[16];
        snprintf(xn, sizeof xn, "x%d", i);
        snprintf(yn, sizeof yn, "y%d", i);
        const char *xs = attr(n, xn), *ys = attr(n, yn);
        if (!xs || !ys)
            break;
        char *ex, *ey;
        double x = g_ascii_strtod(xs, &ex), y = g_ascii_strtod(ys, &ey);
        if (ex == xs || ey == ys || !(x == x) || !(y == y) || fabs(x) > EX_BOX_MAX_ABS ||
            fabs(y) > EX_BOX_MAX_ABS)
            break;
        if (k++ == 0) {
            box = (struct ex_box){x, y, x, y};
        } else {
            box.x1 = x < box.x1 ? x : box.x1;
            box.y1 = y < box.y1 ? y : box.y1;
            box.x2 = x > box.x2 ? x : box.x2;
            box.y2 = y > box.y2 ? y : box.y2;
        }
    }
    char *t = node_text(n);
    if (!t) {
        h->st = DP_ERR_NOMEM;
        return;
    }
    const char *alt = attr(n, "alt");
    if (!ex__pb_block(h->pb, EX_BLOCK_TEXT, "points", alt, t, k ? &box : NULL, off, len))
        h->st = DP_ERR_NOMEM;
    else if (!k)
        ex__warn(&h->pb->ws, EX_WARN_BBOX, off, len, NULL, "<points> without x1/y1 coordinates");
}

/* ---- walk ---------------------------------------------------------------------------------- */

void ex_xml_init(void) {
    static gsize once;
    if (g_once_init_enter(&once)) {
        xmlInitParser(); /* not safe to race in libxml2 2.9: serialised here */
        g_once_init_leave(&once, 1);
    }
}

static void walk(struct hctx *h, xmlNodePtr parent, int depth) {
    if (depth > EX_HTML_MAX_DEPTH) {
        ex__warn(&h->pb->ws, EX_WARN_LIMIT, 0, 0, NULL, "HTML nesting deeper than %d: not read",
                 EX_HTML_MAX_DEPTH);
        return;
    }
    char ptag[TAG_MAX + 1] = "text";
    if (parent->type == XML_ELEMENT_NODE && parent->name)
        lower(ptag, (const char *)parent->name);
    const char *pbb = parent->type == XML_ELEMENT_NODE ? attr(parent, "data-bbox") : NULL;
    struct ex_box pbox;
    bool has_pbox = pbb && parse_bbox(pbb, &pbox);
    for (xmlNodePtr n = parent->children; n && h->st == DP_OK; n = n->next) {
        if (n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE) {
            const char *c = (const char *)n->content;
            char *t = c ? ex__clean_collapse(c, strlen(c)) : NULL;
            if (c && !t) {
                h->st = DP_ERR_NOMEM;
                return;
            }
            if (t && *t) {
                if (!ex__pb_block(h->pb, EX_BLOCK_TEXT, ptag, NULL, t, has_pbox ? &pbox : NULL, 0, 0))
                    h->st = DP_ERR_NOMEM;
            } else {
                dp_free(t);
            }
            continue;
        }
        if (n->type != XML_ELEMENT_NODE || !n->name)
            continue;
        char tag[TAG_MAX + 1];
        lower(tag, (const char *)n->name);
        if (!strcmp(tag, "script") || !strcmp(tag, "style") || !strcmp(tag, "meta") ||
            !strcmp(tag, "link") || !strcmp(tag, "br") || !strcmp(tag, "hr"))
            continue;
        const char *cls = attr(n, "class");
        const char *bb = attr(n, "data-bbox");
        struct ex_box box;
        bool has_box = false;
        size_t off, len;
        find_span(h, tag, &off, &len);
        if (bb) {
            has_box = parse_bbox(bb, &box);
            if (!has_box)
                ex__warn(&h->pb->ws, EX_WARN_BBOX, off, len, NULL, "bad data-bbox \"%.40s\"", bb);
        }
        if (!strcmp(tag, "table")) {
            table(h, n, has_box ? &box : NULL, off, len);
            continue;
        }
        if (!strcmp(tag, "points")) { /* <points x1="" y1="" x2="" ... alt="">phrase</points> */
            points(h, n, off, len);
            continue;
        }
        int level;
        int kind = block_kind(tag, cls, &level);
        if (kind < 0) {
            walk(h, n, depth + 1);
            continue;
        }
        char *t;
        if (kind == EX_BLOCK_IMAGE && !strcmp(tag, "img")) {
            const char *alt = attr(n, "alt");
            t = dp_strdup(alt ? alt : "");
            if (t) {
                char *c = ex__clean_collapse(t, strlen(t));
                dp_free(t);
                t = c;
            }
        } else {
            t = node_text(n);
        }
        if (!t) {
            h->st = DP_ERR_NOMEM;
            return;
        }
        struct ex_block *b = ex__pb_block(h->pb, (enum ex_block_kind)kind, tag, cls, t,
                                          has_box ? &box : NULL, off, len);
        if (!b) {
            h->st = DP_ERR_NOMEM;
            return;
        }
        b->level = level;
        /* Skip the span scan past this block's descendants (a div.image's inner img). */
        for (xmlNodePtr d = n->children; d; d = d->next)
            if (d->type == XML_ELEMENT_NODE && d->name) {
                char dt[TAG_MAX + 1];
                size_t o2, l2;
                lower(dt, (const char *)d->name);
                find_span(h, dt, &o2, &l2);
            }
    }
}

enum dp_status ex__html_parse(struct ex__pagebuild *pb, size_t off, size_t len) {
    if (len > INT32_MAX)
        return DP_ERR_LIMIT;
    char *clean = ex__clean(pb->raw + off, len);
    if (!clean)
        return DP_ERR_NOMEM;
    size_t clen = strlen(clean);
    ex_xml_init();
    htmlDocPtr doc = htmlReadMemory(clean, (int)clen, NULL, "UTF-8", HTML_PARSE_FLAGS);
    struct hctx h = {.pb = pb, .text = clean, .text_len = clen, .base = off,
                     .spans = clen == len && !memchr(pb->raw + off, '\0', len)};
    if (!doc) {
        ex__warn(&pb->ws, EX_WARN_SYNTAX, off, len, NULL, "HTML could not be parsed");
    } else {
        xmlNodePtr root = xmlDocGetRootElement(doc);
        if (root) {
            /* Walk <html> itself so <head><title> and <body> are both visited. */
            xmlNode fake = {0};
            fake.type = XML_DOCUMENT_FRAG_NODE;
            fake.children = root;
            walk(&h, &fake, 0);
        }
        xmlFreeDoc(doc);
    }
    dp_free(clean);
    return h.st;
}
