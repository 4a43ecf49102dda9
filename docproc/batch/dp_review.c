/* The review queue of `batch` (docs/constrain.md): per document, one JSON line per field whose
 * confidence is below --review-threshold or that failed a check (document, page, field path,
 * box in page pixels, value, confidence, reason), written as <stem>/review.jsonl inside the
 * document's staged output (so it appears atomically with the document and survives --resume);
 * at the end of the run OUT/review.jsonl is rewritten atomically from every document's lines.
 * Not thread-safe per run (called under the run's lock or from the main thread). */
#include "dp_batch_impl.h"
#include "dp_alloc.h"
#include "dp_buf.h"
#include "dp_fs.h"
#include "dp_limits.h"
#include "dp_jw.h"

#include <stdio.h>
#include <string.h>

#define REVIEW_FILE "review.jsonl"
#define REVIEW_PATH_MAX 4096
#define REVIEW_FIELD_PATH_MAX 512
#define REVIEW_MAX_BYTES ((size_t)64 << 20)

static const char *reason_for(const struct ex_doc *doc, const char *path, double thr,
                              const struct ex_field *f) {
    for (size_t i = 0; i < doc->n_warnings; i++) {
        const struct ex_warning *w = &doc->warnings[i];
        if (w->path && !strcmp(w->path, path) && ex_warn_needs_review(w->code))
            return ex_warn_code_name(w->code);
    }
    if (f->has_conf && f->conf < thr)
        return f->value_truncated ? "low_confidence_truncated" : "low_confidence";
    return NULL;
}

static void line(struct dp_buf *b, const char *doc_name, const char *path, const struct ex_field *f,
                 const char *reason) {
    struct dp_jw w;
    dp_jw_init(&w, b, false);
    dp_jw_obj(&w);
    dp_jw_key(&w, "document");
    dp_jw_str(&w, doc_name);
    dp_jw_key(&w, "page");
    dp_jw_int(&w, f->prov.page);
    dp_jw_key(&w, "field");
    dp_jw_str(&w, path);
    dp_jw_key(&w, "box");
    if (f->prov.has_box) {
        dp_jw_arr_inline(&w);
        dp_jw_num(&w, f->prov.page_px.x1);
        dp_jw_num(&w, f->prov.page_px.y1);
        dp_jw_num(&w, f->prov.page_px.x2);
        dp_jw_num(&w, f->prov.page_px.y2);
        dp_jw_end(&w);
    } else {
        dp_jw_null(&w);
    }
    dp_jw_key(&w, "value");
    if (f->value)
        dp_jw_str(&w, f->value);
    else
        dp_jw_null(&w);
    dp_jw_key(&w, "confidence");
    if (f->has_conf)
        dp_jw_num(&w, f->conf);
    else
        dp_jw_null(&w);
    dp_jw_key(&w, "reason");
    dp_jw_str(&w, reason);
    dp_jw_end(&w);
    dp_buf_putc(b, '\n');
}

static void walk(struct dp_buf *b, const struct ex_doc *doc, const char *doc_name,
                 const struct ex_field *f, size_t n, const char *prefix, double thr, bool items) {
    for (size_t i = 0; i < n; i++) {
        char p[REVIEW_FIELD_PATH_MAX];
        if (items)
            snprintf(p, sizeof p, "%s[%zu]", prefix, i);
        else
            snprintf(p, sizeof p, "%s%s%s", prefix, *prefix ? "." : "", f[i].name);
        if (f[i].n_children) {
            walk(b, doc, doc_name, f[i].children, f[i].n_children, p, thr,
                 f[i].type == EX_V_ARRAY);
            continue;
        }
        const char *reason = reason_for(doc, p, thr, &f[i]);
        if (reason)
            line(b, doc_name, p, &f[i], reason);
    }
}

enum dp_status dp__review_write_doc(const struct ex_doc *doc, const char *doc_name,
                                    const char *dir, double threshold, struct dp_err *err) {
    struct dp_buf b;
    dp_buf_init(&b, REVIEW_MAX_BYTES);
    walk(&b, doc, doc_name, doc->fields, doc->n_fields, "", threshold, false);
    /* a required field that is missing has no field to walk: its warning is the line */
    for (size_t i = 0; i < doc->n_warnings; i++) {
        const struct ex_warning *w = &doc->warnings[i];
        if (w->code != EX_WARN_REQUIRED)
            continue;
        struct ex_field missing = {.name = w->path, .prov = {.page = w->page}};
        line(&b, doc_name, w->path ? w->path : "", &missing, "required");
    }
    enum dp_status st = b.status;
    char path[REVIEW_PATH_MAX];
    if (st == DP_OK && (size_t)snprintf(path, sizeof path, "%s/%s", dir, REVIEW_FILE) >= sizeof path)
        st = dp_err_set(err, DP_ERR_LIMIT, "%s: path too long", dir);
    else if (st != DP_OK)
        st = dp_err_set(err, st, "%s: review lines too long", doc_name);
    if (st == DP_OK)
        st = dp_file_write_atomic(path, b.data ? b.data : "", b.len, true, err);
    dp_buf_free(&b);
    return st;
}

enum dp_status dp__review_merge(const char *out_dir, const struct dp_inputs *docs,
                                struct dp_err *err) {
    struct dp_buf all;
    dp_buf_init(&all, REVIEW_MAX_BYTES);
    enum dp_status st = DP_OK;
    for (int i = 0; i < docs->n && st == DP_OK; i++) {
        char path[REVIEW_PATH_MAX];
        if ((size_t)snprintf(path, sizeof path, "%s/%s/%s", out_dir, docs->items[i].stem,
                             REVIEW_FILE) >= sizeof path)
            continue;
        char *data = NULL;
        size_t len = 0;
        struct dp_err ignore = {0};
        if (dp_file_read(path, REVIEW_MAX_BYTES, &data, &len, &ignore) != DP_OK)
            continue; /* not done (failed, other shard) or not a kie document */
        dp_buf_append(&all, data, len);
        dp_free(data);
        st = all.status;
    }
    char path[REVIEW_PATH_MAX];
    if (st == DP_OK &&
        (size_t)snprintf(path, sizeof path, "%s/%s", out_dir, REVIEW_FILE) >= sizeof path)
        st = DP_ERR_LIMIT;
    if (st == DP_OK)
        st = dp_file_write_atomic(path, all.data ? all.data : "", all.len, true, err);
    else
        st = dp_err_set(err, st, "%s/%s: cannot build the review queue", out_dir, REVIEW_FILE);
    dp_buf_free(&all);
    return st;
}
