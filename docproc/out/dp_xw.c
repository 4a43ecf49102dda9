/* Sticky-error xmlTextWriter wrapper (dp_xw.h) shared by the ALTO, hOCR and PAGE XML writers.
 * Owns its libxml2 buffer and writer until dp_xw_finish. Thread-safe per object. */
#include "dp_xw.h"
#include "ex.h"

#include <glib.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define X(s) ((const xmlChar *)(s))
#define ATTR_MAX 512

static void check(struct dp_xw *x, int rc) {
    if (rc < 0 && x->st == DP_OK)
        x->st = DP_ERR_IO;
}

enum dp_status dp_xw_open(struct dp_xw *x, const char *doctype_root, const char *pubid,
                          const char *sysid) {
    ex_xml_init();
    x->st = DP_OK;
    x->buf = xmlBufferCreate();
    x->w = x->buf ? xmlNewTextWriterMemory(x->buf, 0) : NULL;
    if (!x->w) {
        if (x->buf)
            xmlBufferFree(x->buf);
        x->buf = NULL;
        return x->st = DP_ERR_NOMEM;
    }
    check(x, xmlTextWriterSetIndent(x->w, 1));
    check(x, xmlTextWriterSetIndentString(x->w, X("  ")));
    check(x, xmlTextWriterStartDocument(x->w, "1.0", "UTF-8", NULL));
    if (doctype_root && x->st == DP_OK)
        check(x, xmlTextWriterWriteDTD(x->w, X(doctype_root), X(pubid), X(sysid), NULL));
    return x->st;
}

void dp_xw_start(struct dp_xw *x, const char *name) {
    if (x->st == DP_OK)
        check(x, xmlTextWriterStartElement(x->w, X(name)));
}

void dp_xw_end(struct dp_xw *x) {
    if (x->st == DP_OK)
        check(x, xmlTextWriterEndElement(x->w));
}

void dp_xw_attr(struct dp_xw *x, const char *name, const char *v) {
    if (x->st == DP_OK && v)
        check(x, xmlTextWriterWriteAttribute(x->w, X(name), X(v)));
}

void dp_xw_attrf(struct dp_xw *x, const char *name, const char *fmt, ...) {
    char b[ATTR_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b, sizeof b, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof b) {
        if (x->st == DP_OK)
            x->st = DP_ERR_LIMIT;
        return;
    }
    dp_xw_attr(x, name, b);
}

const char *dp_xw_num(char *b, double v, int decimals) {
    char fmt[16];
    snprintf(fmt, sizeof fmt, "%%.%df", decimals);
    g_ascii_formatd(b, DP_XW_NUM_MAX, fmt, v);
    if (strchr(b, '.')) {
        size_t n = strlen(b);
        while (n > 1 && b[n - 1] == '0')
            b[--n] = '\0';
        if (b[n - 1] == '.')
            b[--n] = '\0';
    }
    if (!strcmp(b, "-0"))
        strcpy(b, "0");
    return b;
}

void dp_xw_attr_num(struct dp_xw *x, const char *name, double v, int decimals) {
    char b[DP_XW_NUM_MAX];
    dp_xw_attr(x, name, dp_xw_num(b, v, decimals));
}

void dp_xw_text(struct dp_xw *x, const char *text) {
    if (x->st == DP_OK && text)
        check(x, xmlTextWriterWriteString(x->w, X(text)));
}

void dp_xw_text_el(struct dp_xw *x, const char *name, const char *text) {
    dp_xw_start(x, name);
    dp_xw_text(x, text);
    dp_xw_end(x);
}

enum dp_status dp_xw_finish(struct dp_xw *x, struct dp_buf *out) {
    if (x->st == DP_OK)
        check(x, xmlTextWriterEndDocument(x->w));
    xmlFreeTextWriter(x->w); /* flushes into buf */
    if (x->st == DP_OK)
        dp_buf_append(out, xmlBufferContent(x->buf), (size_t)xmlBufferLength(x->buf));
    xmlBufferFree(x->buf);
    x->w = NULL;
    x->buf = NULL;
    return x->st != DP_OK ? x->st : out->status;
}
