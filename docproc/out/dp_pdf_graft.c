/* Searchable PDF of a born-digital PDF (dp_out_pdf.h, docs/archive.md): the original document is
 * opened with libqpdf's C API and written back with every page, object and stream as it was
 * (streams are copied, not decoded); only pages that have no text of their own and whose answer
 * has boxed lines get an invisible text layer, like OCRmyPDF's --skip-text. The text layer is
 * one content stream appended to the page: the original content is fenced in q ... Q (a stream
 * "q" before it), then a cm maps the displayed page (crop box, /Rotate applied, as the page was
 * rendered for the model) to user space and the words are set in render mode 3 in the same
 * glyph-less font as the scan path (one shared copy per document). Thread-safe per call (one
 * qpdf object per call). */
#include "dp_alloc.h"
#include "dp_out_pdf.h"
#include "dp_pdf_impl.h"

#include <math.h>
#include <qpdf/qpdf-c.h>
#include <stdio.h>
#include <string.h>

#define NUM_MAX 48
#define DICT_MAX 512
#define FONT_NAME_MAX 32
/* Tried font resource names before giving up: /DpOcr0 ... (a page may already use /DpOcr0). */
#define FONT_NAME_TRIES 100

struct graft {
    qpdf_data q;
    int font_id;  /* indirect Type0 font, 0 until the first page needs it */
    int fence_id; /* indirect stream "q\n" shared by the pages given a text layer */
};

/* Indirect dictionary "<< keys >>" (keys hold no references) plus n reference entries
 * (name, object number); an array entry when the name ends in "[]". Returns its object number. */
static int make_dict(qpdf_data q, const char *keys, int n, const char *const *names,
                     const int *ids) {
    char text[DICT_MAX];
    snprintf(text, sizeof text, "<< %s >>", keys);
    qpdf_oh d = qpdf_oh_parse(q, text);
    for (int i = 0; i < n; i++) {
        char name[FONT_NAME_MAX];
        snprintf(name, sizeof name, "%s", names[i]);
        size_t len = strlen(name);
        bool array = len > 2 && !strcmp(name + len - 2, "[]");
        if (array)
            name[len - 2] = '\0';
        qpdf_oh v = qpdf_get_object_by_id(q, ids[i], 0);
        qpdf_oh_replace_key(q, d, name, array ? qpdf_oh_wrap_in_array(q, v) : v);
    }
    return qpdf_oh_get_object_id(q, qpdf_make_indirect_object(q, d));
}

/* New indirect stream with data (already compressed when flate) and extra dict entries (a
 * dictionary's text, or NULL); returns its object number. */
static int new_stream(qpdf_data q, const void *data, size_t len, bool flate, const char *extra) {
    qpdf_oh s = qpdf_oh_new_stream(q);
    qpdf_oh filter = flate ? qpdf_oh_new_name(q, "/FlateDecode") : qpdf_oh_new_null(q);
    qpdf_oh_replace_stream_data(q, s, data, len, filter, qpdf_oh_new_null(q));
    if (extra) {
        qpdf_oh add = qpdf_oh_parse(q, extra);
        qpdf_oh dict = qpdf_oh_get_dict(q, s);
        qpdf_oh_begin_dict_key_iter(q, add);
        while (qpdf_oh_dict_more_keys(q)) {
            const char *k = qpdf_oh_dict_next_key(q);
            qpdf_oh_replace_key(q, dict, k, qpdf_oh_get_key(q, add, k));
        }
    }
    return qpdf_oh_get_object_id(q, s);
}

static enum dp_status add_font(struct graft *g) {
    struct dp__pdf_font_data f;
    enum dp_status st = dp__pdf_font_data(&f);
    if (st != DP_OK)
        return st;
    char d[DICT_MAX];
    snprintf(d, sizeof d, "<< /Length1 %zu >>", f.ttf_len);
    int file = new_stream(g->q, f.ttf_z, f.ttf_z_len, true, d);
    int map = new_stream(g->q, f.map_z, f.map_z_len, true, NULL);
    dp__pdf_font_data_free(&f);
    int tou = new_stream(g->q, dp__pdf_to_unicode, strlen(dp__pdf_to_unicode), false, NULL);
    snprintf(d, sizeof d, DP_PDF_DESCRIPTOR_KEYS, DP_PDF_GLYPH_WIDTH);
    int desc = make_dict(g->q, d, 1, (const char *const[]){"/FontFile2"}, (const int[]){file});
    snprintf(d, sizeof d, DP_PDF_CIDFONT_KEYS, DP_PDF_GLYPH_WIDTH);
    int cid = make_dict(g->q, d, 2, (const char *const[]){"/FontDescriptor", "/CIDToGIDMap"},
                        (const int[]){desc, map});
    g->font_id = make_dict(g->q, DP_PDF_TYPE0_KEYS, 2,
                           (const char *const[]){"/DescendantFonts[]", "/ToUnicode"},
                           (const int[]){cid, tou});
    static const char fence[] = "q\n";
    g->fence_id = new_stream(g->q, fence, sizeof fence - 1, false, NULL);
    return qpdf_has_error(g->q) ? DP_ERR_FORMAT : DP_OK;
}

/* A box (array of 4 numbers) as x0 y0 x1 y1 with x0 < x1, y0 < y1; false if not one. */
static bool get_box(qpdf_data q, qpdf_oh page, const char *key, double b[4]) {
    qpdf_oh a = qpdf_oh_get_key(q, page, key);
    if (!qpdf_oh_is_array(q, a) || qpdf_oh_get_array_n_items(q, a) != 4)
        return false;
    for (int i = 0; i < 4; i++) {
        qpdf_oh v = qpdf_oh_get_array_item(q, a, i);
        if (!qpdf_oh_is_number(q, v))
            return false;
        b[i] = qpdf_oh_get_numeric_value(q, v);
    }
    double t;
    if (b[0] > b[2]) {
        t = b[0];
        b[0] = b[2];
        b[2] = t;
    }
    if (b[1] > b[3]) {
        t = b[1];
        b[1] = b[3];
        b[3] = t;
    }
    return b[2] > b[0] && b[3] > b[1];
}

/* A font resource name not used in the page's /Font dictionary. */
static bool free_font_name(qpdf_data q, qpdf_oh fonts, char *name, size_t n) {
    for (int i = 0; i < FONT_NAME_TRIES; i++) {
        snprintf(name, n, "/DpOcr%d", i);
        if (!qpdf_oh_has_key(q, fonts, name))
            return true;
    }
    return false;
}

/* Adds the text layer of lines L to page (qpdf handle); *added set when a layer was written. */
static enum dp_status graft_page(struct graft *g, qpdf_oh page, const struct ex_lines *L,
                                 struct dp_err *err) {
    qpdf_data q = g->q;
    double box[4];
    if (!get_box(q, page, "/CropBox", box) && !get_box(q, page, "/MediaBox", box))
        return dp_err_set(err, DP_ERR_FORMAT, "page %d: no usable /MediaBox", L->page);
    int rot = 0;
    qpdf_oh r = qpdf_oh_get_key(q, page, "/Rotate");
    if (qpdf_oh_is_integer(q, r))
        rot = (int)(((qpdf_oh_get_int_value(q, r) % 360) + 360) % 360);
    if (rot % 90)
        rot = 0; /* as poppler: only quarter turns */
    double w = box[2] - box[0], h = box[3] - box[1];
    bool quarter = rot == 90 || rot == 270;
    double dw = quarter ? h : w, dh = quarter ? w : h; /* displayed size, points */
    /* displayed space (origin bottom left of the page as shown) -> user space */
    double m[6];
    if (rot == 90)
        m[0] = 0, m[1] = 1, m[2] = -1, m[3] = 0, m[4] = box[0] + w, m[5] = box[1];
    else if (rot == 180)
        m[0] = -1, m[1] = 0, m[2] = 0, m[3] = -1, m[4] = box[0] + w, m[5] = box[1] + h;
    else if (rot == 270)
        m[0] = 0, m[1] = -1, m[2] = 1, m[3] = 0, m[4] = box[0], m[5] = box[1] + h;
    else
        m[0] = 1, m[1] = 0, m[2] = 0, m[3] = 1, m[4] = box[0], m[5] = box[1];
    if (!g->font_id) {
        enum dp_status st = add_font(g);
        if (st != DP_OK)
            return dp_err_set(err, st, "page %d: cannot add the text layer's font", L->page);
    }
    /* resources: the page's own after qpdf_push_inherited_attributes_to_page */
    qpdf_oh res = qpdf_oh_get_key(q, page, "/Resources");
    if (!qpdf_oh_is_dictionary(q, res)) {
        res = qpdf_oh_new_dictionary(q);
        qpdf_oh_replace_key(q, page, "/Resources", res);
    }
    qpdf_oh fonts = qpdf_oh_get_key(q, res, "/Font");
    if (!qpdf_oh_is_dictionary(q, fonts)) {
        fonts = qpdf_oh_new_dictionary(q);
        qpdf_oh_replace_key(q, res, "/Font", fonts);
    }
    char name[FONT_NAME_MAX];
    if (!free_font_name(q, fonts, name, sizeof name))
        return dp_err_set(err, DP_ERR_FORMAT, "page %d: no free font resource name", L->page);
    qpdf_oh_replace_key(q, fonts, name, qpdf_get_object_by_id(q, g->font_id, 0));
    /* content: Q (the original's q ... Q fence), the displayed-space matrix, the words */
    struct dp_buf c;
    dp_buf_init(&c, DP_PDF_MAX_BYTES);
    char a[6][NUM_MAX];
    dp_buf_appendf(&c, "\nQ\nq\n%s %s %s %s %s %s cm\n", dp__pdf_num(a[0], m[0]),
                   dp__pdf_num(a[1], m[1]), dp__pdf_num(a[2], m[2]), dp__pdf_num(a[3], m[3]),
                   dp__pdf_num(a[4], m[4]), dp__pdf_num(a[5], m[5]));
    dp__pdf_text_layer(&c, L, dw / L->width, dh / L->height, dh, name + 1);
    dp_buf_puts(&c, "Q\n");
    enum dp_status st = c.status;
    uint8_t *z = NULL;
    size_t zl = 0;
    if (st == DP_OK)
        st = dp__pdf_flate(c.data, c.len, &z, &zl);
    dp_buf_free(&c);
    if (st != DP_OK)
        return dp_err_set(err, st, "page %d: %s building the text layer", L->page,
                          dp_status_str(st));
    int layer = new_stream(q, z, zl, true, NULL);
    dp_free(z);
    qpdf_oh contents = qpdf_oh_get_key(q, page, "/Contents");
    qpdf_oh arr = qpdf_oh_new_array(q);
    qpdf_oh_append_item(q, arr, qpdf_get_object_by_id(q, g->fence_id, 0));
    if (qpdf_oh_is_array(q, contents)) {
        int n = qpdf_oh_get_array_n_items(q, contents);
        for (int i = 0; i < n; i++)
            qpdf_oh_append_item(q, arr, qpdf_oh_get_array_item(q, contents, i));
    } else if (qpdf_oh_is_stream(q, contents)) {
        qpdf_oh_append_item(q, arr, contents);
    }
    qpdf_oh_append_item(q, arr, qpdf_get_object_by_id(q, layer, 0));
    qpdf_oh_replace_key(q, page, "/Contents", arr);
    return DP_OK;
}

/* PDF/A-2b structure: XMP metadata and the sRGB output intent in the catalog, Info keys equal
 * to the XMP (keys without an XMP counterpart written here are removed); the caller writes the
 * file without encryption. */
static enum dp_status graft_pdfa(qpdf_data q, const struct ex_doc *doc, const char *title) {
    char when[32];
    dp__pdf_date(when, sizeof when);
    const char *version = doc->stamp.docproc_version ? doc->stamp.docproc_version : "";
    struct dp_buf x;
    dp_buf_init(&x, DP_PDF_MAX_BYTES);
    dp__pdf_xmp(&x, title, version, when);
    enum dp_status st = x.status;
    qpdf_oh root = qpdf_get_root(q);
    if (st == DP_OK) {
        int id = new_stream(q, x.data, x.len, false, "<< /Type /Metadata /Subtype /XML >>");
        qpdf_oh_replace_key(q, root, "/Metadata", qpdf_get_object_by_id(q, id, 0));
    }
    dp_buf_free(&x);
    uint8_t *icc = st == DP_OK ? dp_calloc(1, DP_PDF_ICC_BYTES) : NULL;
    if (st == DP_OK && !icc)
        st = DP_ERR_NOMEM;
    if (st != DP_OK)
        return st;
    size_t n = dp__pdf_srgb_icc(icc);
    int prof = new_stream(q, icc, n, false, "<< /N 3 >>");
    dp_free(icc);
    int intent = make_dict(q, DP_PDF_INTENT_KEYS, 1, (const char *const[]){"/DestOutputProfile"},
                           (const int[]){prof});
    qpdf_oh intents = qpdf_oh_new_array(q);
    qpdf_oh_append_item(q, intents, qpdf_get_object_by_id(q, intent, 0));
    qpdf_oh_replace_key(q, root, "/OutputIntents", intents);
    static const char *const drop[] = {"/Author", "/Subject", "/Keywords", "/Creator",
                                       "/Trapped"};
    qpdf_oh info = qpdf_oh_get_key(q, qpdf_get_trailer(q), "/Info");
    for (size_t i = 0; qpdf_oh_is_dictionary(q, info) && i < sizeof drop / sizeof *drop; i++)
        qpdf_oh_remove_key(q, info, drop[i]);
    char prod[128];
    snprintf(prod, sizeof prod, "docproc %s", version);
    char date[40];
    snprintf(date, sizeof date, "D:%s", when);
    qpdf_set_info_key(q, "/Producer", prod);
    qpdf_set_info_key(q, "/Title", title);
    qpdf_set_info_key(q, "/CreationDate", date);
    qpdf_set_info_key(q, "/ModDate", date);
    return DP_OK;
}

/* The first qpdf error's text as the message of st. */
static enum dp_status qpdf_fail(qpdf_data q, enum dp_status st, const char *path,
                                struct dp_err *err) {
    qpdf_error e = qpdf_has_error(q) ? qpdf_get_error(q) : NULL;
    return dp_err_set(err, st, "%s: searchable PDF: %s", path,
                      e ? qpdf_get_error_full_text(q, e) : "qpdf failed");
}

enum dp_status dp_out_pdf_graft(const struct ex_doc *doc, const char *path, const char *password,
                                const bool *has_text, const struct ex_tokconf *conf,
                                const struct dp_pdf_opts *opts, struct dp_buf *out,
                                struct dp_pdf_graft_stats *stats, struct dp_err *err) {
    memset(stats, 0, sizeof *stats);
    struct graft g = {.q = qpdf_init()};
    qpdf_data q = g.q;
    if (!q)
        return dp_err_set(err, DP_ERR_NOMEM, "%s: out of memory", path);
    qpdf_silence_errors(q);
    qpdf_set_suppress_warnings(q, QPDF_TRUE);
    enum dp_status st = DP_OK;
    if (qpdf_read(q, path, password ? password : "") & QPDF_ERRORS)
        st = qpdf_fail(q, DP_ERR_FORMAT, path, err);
    if (st == DP_OK && (qpdf_push_inherited_attributes_to_page(q) & QPDF_ERRORS))
        st = qpdf_fail(q, DP_ERR_FORMAT, path, err);
    int n_pages = st == DP_OK ? qpdf_get_num_pages(q) : 0;
    if (st == DP_OK && n_pages <= 0)
        st = qpdf_fail(q, DP_ERR_FORMAT, path, err);
    for (size_t i = 0; i < doc->n_pages && st == DP_OK; i++) {
        const struct ex_page *pg = doc->pages[i];
        if (pg->number < 1 || pg->number > n_pages) {
            st = dp_err_set(err, DP_ERR_FORMAT, "%s: page %d of the answers is not in the document",
                            path, pg->number);
            break;
        }
        if (has_text[i]) {
            stats->pages_kept_text++;
            continue;
        }
        struct ex_lines *L = NULL;
        st = ex_lines_build(&L, pg, conf ? &conf[i] : NULL, err);
        if (st != DP_OK)
            break;
        if (L->n_boxed_lines && L->width > 0 && L->height > 0) {
            qpdf_oh page = qpdf_get_page_n(q, (size_t)(pg->number - 1));
            st = graft_page(&g, page, L, err);
            if (st == DP_OK)
                stats->pages_text_added++;
            else
                dp_err_prefix(err, "%s", path);
        } else {
            stats->pages_without_text++;
        }
        ex_lines_free(L);
    }
    const char *title = opts && opts->title ? opts->title : doc->source;
    if (st == DP_OK && opts && opts->pdfa)
        st = graft_pdfa(q, doc, title);
    if (st == DP_OK && qpdf_has_error(q))
        st = qpdf_fail(q, DP_ERR_FORMAT, path, err);
    if (st == DP_OK && (qpdf_init_write_memory(q) & QPDF_ERRORS))
        st = qpdf_fail(q, DP_ERR_FORMAT, path, err);
    if (st == DP_OK) {
        /* keep every original stream as stored; compress only our new, unfiltered ones */
        qpdf_set_stream_data_mode(q, qpdf_s_preserve);
        qpdf_set_decode_level(q, qpdf_dl_none);
        qpdf_set_object_stream_mode(q, qpdf_o_preserve);
        if (opts && opts->pdfa)
            qpdf_set_preserve_encryption(q, QPDF_FALSE);
        if (!qpdf_is_encrypted(q) || (opts && opts->pdfa))
            qpdf_set_deterministic_ID(q, QPDF_TRUE);
        if (qpdf_write(q) & QPDF_ERRORS)
            st = qpdf_fail(q, DP_ERR_FORMAT, path, err);
    }
    if (st == DP_OK) {
        size_t len = qpdf_get_buffer_length(q);
        if (len > DP_PDF_MAX_BYTES)
            st = dp_err_set(err, DP_ERR_LIMIT, "%s: searchable PDF larger than %zu bytes", path,
                            DP_PDF_MAX_BYTES);
        else
            dp_buf_append(out, qpdf_get_buffer(q), len);
        if (st == DP_OK && out->status != DP_OK)
            st = dp_err_set(err, out->status, "%s: PDF: %s", path, dp_status_str(out->status));
    }
    qpdf_cleanup(&q);
    return st;
}
