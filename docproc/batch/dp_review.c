/* The review queue of `batch` (docs/constrain.md): per document, one JSON line per field whose
 * confidence is below --review-threshold or that failed a check (document, page, field path,
 * box in page pixels, value, confidence, reason, crop), written as <stem>/review.jsonl inside the
 * document's staged output together with a PNG crop of each line's box (<stem>/review/<field>.png,
 * the page decoded again from the source document), so both appear atomically with the document
 * and survive --resume; at the end of the run OUT/review.jsonl is rewritten atomically from every
 * document's lines and OUT/review/<stem>/<field>.png rebuilt (hard links to the documents' crops)
 * and swapped into place. Thread-safe per document (one dp_doc per call); dp__review_merge runs
 * on the main thread. */
#include "dp_batch_impl.h"
#include "dp_alloc.h"
#include "dp_buf.h"
#include "dp_fs.h"
#include "dp_limits.h"
#include "dp_jw.h"
#include "dp_out.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define REVIEW_FILE "review.jsonl"
#define REVIEW_DIR "review"   /* crops: <stem>/review/ and OUT/review/<stem>/ */
#define REVIEW_PATH_MAX 4096
#define REVIEW_FIELD_PATH_MAX 512
#define REVIEW_MAX_BYTES ((size_t)64 << 20)
#define REVIEW_CROP_NAME_MAX 200  /* bytes of a crop's file name before ".png" */
#define REVIEW_SWAP_TRIES 8       /* OUT/review swaps raced by other shards' runs */

/* One line of the queue: the field (or a missing required one), its reason and its crop. */
struct entry {
    char path[REVIEW_FIELD_PATH_MAX];
    struct ex_field f;       /* shallow copy (borrowed strings) */
    const char *reason;
    char crop[REVIEW_CROP_NAME_MAX + 16]; /* under review/: base "-N.png" (N up to 10 digits) */
    const char *no_crop;     /* why there is no crop */
};

struct entries {
    struct entry *e; /* (n) */
    size_t n, cap;
    enum dp_status st;
};

static void add(struct entries *l, const char *path, const struct ex_field *f, const char *reason) {
    if (l->st != DP_OK)
        return;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        struct entry *e = dp_reallocarray(l->e, cap, sizeof *e);
        if (!e) {
            l->st = DP_ERR_NOMEM;
            return;
        }
        l->e = e;
        l->cap = cap;
    }
    struct entry *x = &l->e[l->n++];
    memset(x, 0, sizeof *x);
    snprintf(x->path, sizeof x->path, "%s", path);
    x->f = *f;
    x->reason = reason;
}

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

static void line(struct dp_buf *b, const char *doc_name, const char *stem,
                 const struct entry *e) {
    const char *path = e->path, *reason = e->reason;
    const struct ex_field *f = &e->f;
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
    dp_jw_key(&w, "crop"); /* relative to OUT */
    if (e->crop[0]) {
        char c[REVIEW_PATH_MAX];
        snprintf(c, sizeof c, "%s/%s/%s", REVIEW_DIR, stem, e->crop);
        dp_jw_str(&w, c);
    } else {
        dp_jw_null(&w);
        dp_jw_key(&w, "no_crop");
        dp_jw_str(&w, e->no_crop ? e->no_crop : "not written");
    }
    dp_jw_end(&w);
    dp_buf_putc(b, '\n');
}

static void walk(struct entries *b, const struct ex_doc *doc, const struct ex_field *f, size_t n,
                 const char *prefix, double thr, bool items) {
    for (size_t i = 0; i < n; i++) {
        char p[REVIEW_FIELD_PATH_MAX];
        if (items)
            snprintf(p, sizeof p, "%s[%zu]", prefix, i);
        else
            snprintf(p, sizeof p, "%s%s%s", prefix, *prefix ? "." : "", f[i].name);
        if (f[i].n_children) {
            walk(b, doc, f[i].children, f[i].n_children, p, thr, f[i].type == EX_V_ARRAY);
            continue;
        }
        const char *reason = reason_for(doc, p, thr, &f[i]);
        if (reason)
            add(b, p, &f[i], reason);
    }
}

static bool listed(const struct entries *l, const char *path) {
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->e[i].path, path))
            return true;
    return false;
}

/* ---- crops ------------------------------------------------------------------------------- */

/* A file name for a field path: [A-Za-z0-9._-] and brackets kept, the rest '_', unique among
 * the names of e[0..k) (a "-N" suffix), ".png" appended. */
static void crop_name(struct entry *e, size_t k) {
    char base[REVIEW_CROP_NAME_MAX + 1];
    size_t n = 0;
    for (const char *p = e[k].path; *p && n < REVIEW_CROP_NAME_MAX; p++) {
        char c = *p;
        bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-' || c == '[' || c == ']';
        base[n++] = keep ? c : '_';
    }
    base[n] = 0;
    if (!n || base[0] == '.')
        base[0] = '_'; /* never hidden, never "." or ".." */
    if (!n)
        base[1] = 0;
    for (int dup = 1;; dup++) {
        if (dup == 1)
            snprintf(e[k].crop, sizeof e[k].crop, "%s.png", base);
        else
            snprintf(e[k].crop, sizeof e[k].crop, "%s-%d.png", base, dup);
        bool taken = false;
        for (size_t i = 0; i < k && !taken; i++)
            taken = !strcmp(e[i].crop, e[k].crop);
        if (!taken)
            return;
    }
}

/* The pixel rectangle [x0, x1) x [y0, y1) of a page-pixel box on a raster of w x h that the
 * page geometry calls page_w x page_h (the same unless the page was decoded at another size),
 * clipped to the raster; NULL, else the reason there is none. */
static const char *crop_rect(const struct ex_box *b, int w, int h, int page_w, int page_h,
                             int r[4]) {
    if (!isfinite(b->x1) || !isfinite(b->y1) || !isfinite(b->x2) || !isfinite(b->y2) ||
        b->x2 < b->x1 || b->y2 < b->y1)
        return "bad box";
    double sx = page_w > 0 ? (double)w / page_w : 1.0, sy = page_h > 0 ? (double)h / page_h : 1.0;
    double x0 = floor(b->x1 * sx), y0 = floor(b->y1 * sy);
    double x1 = ceil(b->x2 * sx), y1 = ceil(b->y2 * sy);
    x0 = x0 < 0 ? 0 : x0;
    y0 = y0 < 0 ? 0 : y0;
    x1 = x1 > w ? w : x1;
    y1 = y1 > h ? h : y1;
    if (x1 - x0 < 1 || y1 - y0 < 1)
        return "box outside the page or empty";
    r[0] = (int)x0, r[1] = (int)y0, r[2] = (int)x1, r[3] = (int)y1;
    return NULL;
}

static const struct ex_page *page_of(const struct ex_doc *doc, int number) {
    for (size_t i = 0; i < doc->n_pages; i++)
        if (doc->pages[i]->number == number)
            return doc->pages[i];
    return NULL;
}

/* Writes the crop of entry e from page pg (decoded raster) into dir/<e->crop>. */
static enum dp_status crop_write(struct entry *e, const struct dp_page *pg,
                                 const struct ex_page *ep, const char *dir, struct dp_err *err) {
    int r[4];
    e->no_crop = crop_rect(&e->f.prov.page_px, pg->width, pg->height,
                           ep ? ep->geom.page_w : 0, ep ? ep->geom.page_h : 0, r);
    if (e->no_crop) {
        e->crop[0] = 0;
        return DP_OK;
    }
    size_t cw = (size_t)(r[2] - r[0]), ch = (size_t)(r[3] - r[1]);
    uint8_t *px = dp_reallocarray(NULL, cw * ch, 3); /* (ch, cw, 3) */
    if (!px)
        return dp_err_set(err, DP_ERR_NOMEM, "review crop: out of memory");
    for (size_t y = 0; y < ch; y++)
        memcpy(px + y * cw * 3, pg->rgb + (((size_t)r[1] + y) * (size_t)pg->width + (size_t)r[0]) * 3,
               cw * 3);
    char path[REVIEW_PATH_MAX];
    enum dp_status st = DP_OK;
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, e->crop) >= sizeof path)
        st = dp_err_set(err, DP_ERR_LIMIT, "%s: path too long", dir);
    if (st == DP_OK)
        st = dp_png_write(path, px, (int)cw, (int)ch, pg->dpi, err);
    dp_free(px);
    return st;
}

/* The crops of every entry with a box: each page needed is decoded once from the source
 * document (the ingest options of the run). A source that cannot be read again gives no crops
 * (a reason on each line), not a failed document; a crop that cannot be written fails it. */
static enum dp_status crops(const struct dp_batch_opts *o, const struct ex_doc *doc,
                            struct entries *l, const char *dir, struct dp_err *err) {
    bool any = false;
    for (size_t i = 0; i < l->n; i++) {
        struct entry *e = &l->e[i];
        e->no_crop = !e->f.prov.has_box ? "no box" : NULL;
        if (e->f.prov.has_box) {
            crop_name(l->e, i);
            any = true;
        }
    }
    if (!any)
        return DP_OK;
    char cdir[REVIEW_PATH_MAX];
    if ((size_t)snprintf(cdir, sizeof cdir, "%s/%s", dir, REVIEW_DIR) >= sizeof cdir)
        return dp_err_set(err, DP_ERR_LIMIT, "%s: path too long", dir);
    enum dp_status st = dp_mkdirs(cdir, err);
    struct dp_doc *src = NULL;
    struct dp_err oe = {0};
    const char *no_source = NULL;
    if (st == DP_OK && dp_doc_open(&src, doc->source, &o->ingest, &oe) != DP_OK)
        no_source = "source document not readable";
    for (size_t i = 0; i < l->n && st == DP_OK; i++) {
        struct entry *e = &l->e[i];
        if (!e->crop[0] || e->no_crop)
            continue; /* no box, or done with an earlier entry's page */
        int number = e->f.prov.page;
        struct dp_page pg = {0};
        const char *why = no_source;
        if (!why && (number < 1 || number > dp_doc_page_count(src)))
            why = "page not in the source document";
        if (!why && dp_doc_render(&pg, src, number - 1, &oe) != DP_OK)
            why = "page could not be decoded again";
        /* every entry of this page, from this one on */
        for (size_t k = i; k < l->n && st == DP_OK; k++) {
            struct entry *x = &l->e[k];
            if (!x->crop[0] || x->no_crop || x->f.prov.page != number)
                continue;
            if (why) {
                x->no_crop = why;
                x->crop[0] = 0;
            } else {
                st = crop_write(x, &pg, page_of(doc, number), cdir, err);
                if (!x->no_crop)
                    x->no_crop = "written"; /* marks it done; the line shows the crop */
            }
        }
        dp_page_free(&pg);
    }
    dp_doc_close(src);
    return st;
}

enum dp_status dp__review_write_doc(const struct dp_batch_opts *o, const struct ex_doc *doc,
                                    const char *doc_name, const char *stem, const char *dir,
                                    struct dp_err *err) {
    struct entries l = {0};
    walk(&l, doc, doc->fields, doc->n_fields, "", o->review_threshold, false);
    /* a required field that is missing has no field to walk: its warning is the line */
    for (size_t i = 0; i < doc->n_warnings; i++) {
        const struct ex_warning *w = &doc->warnings[i];
        if (w->code != EX_WARN_REQUIRED || listed(&l, w->path ? w->path : ""))
            continue;
        struct ex_field missing = {.name = w->path, .prov = {.page = w->page}};
        add(&l, w->path ? w->path : "", &missing, "required");
    }
    enum dp_status st = l.st == DP_OK ? crops(o, doc, &l, dir, err)
                                      : dp_err_set(err, l.st, "%s: out of memory", doc_name);
    struct dp_buf b;
    dp_buf_init(&b, REVIEW_MAX_BYTES);
    for (size_t i = 0; i < l.n && st == DP_OK; i++) {
        if (l.e[i].crop[0])
            l.e[i].no_crop = NULL;
        line(&b, doc_name, stem, &l.e[i]);
    }
    dp_free(l.e);
    char path[REVIEW_PATH_MAX];
    if (st != DP_OK)
        ;
    else if (b.status != DP_OK)
        st = dp_err_set(err, b.status, "%s: review lines too long", doc_name);
    else if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, REVIEW_FILE) >= sizeof path)
        st = dp_err_set(err, DP_ERR_LIMIT, "%s: path too long", dir);
    if (st == DP_OK)
        st = dp_file_write_atomic(path, b.data ? b.data : "", b.len, true, err);
    dp_buf_free(&b);
    return st;
}

/* Links (else copies) every crop of src into dst (created). */
static enum dp_status link_crops(const char *src, const char *dst, struct dp_err *err) {
    DIR *dh = opendir(src);
    if (!dh)
        return DP_OK; /* no crops for this document */
    enum dp_status st = dp_mkdirs(dst, err);
    struct dirent *de;
    while (st == DP_OK && (de = readdir(dh)) != NULL) {
        size_t n = strlen(de->d_name);
        if (de->d_name[0] == '.' || n < 5 || strcmp(de->d_name + n - 4, ".png"))
            continue;
        char a[REVIEW_PATH_MAX], b[REVIEW_PATH_MAX];
        if ((size_t)snprintf(a, sizeof a, "%s/%s", src, de->d_name) >= sizeof a ||
            (size_t)snprintf(b, sizeof b, "%s/%s", dst, de->d_name) >= sizeof b) {
            st = dp_err_set(err, DP_ERR_LIMIT, "%s: path too long", src);
            break;
        }
        if (link(a, b) == 0)
            continue;
        char *data = NULL; /* a file system without hard links: a copy */
        size_t len = 0;
        st = dp_file_read(a, DP_MAX_IMAGE_FILE_BYTES, &data, &len, err);
        if (st == DP_OK)
            st = dp_file_write_atomic(b, data, len, true, err);
        dp_free(data);
    }
    closedir(dh);
    return st;
}

/* OUT/review/<stem>/<field>.png rebuilt from the crops of every document in docs that has
 * them (done in this run or kept by --resume), staged as OUT/.stage-<pid>-review and swapped in:
 * a document redone replaces its crops, none is lost or left from an older run. */
static enum dp_status crops_merge(const char *out_dir, const struct dp_inputs *docs,
                                  struct dp_err *err) {
    for (int i = 0; i < docs->n; i++)
        if (!strcmp(docs->items[i].stem, REVIEW_DIR))
            return dp_err_set(err, DP_ERR_IO, "%s/%s: a document's output directory has the "
                              "name of the review crops' directory; crops not collected",
                              out_dir, REVIEW_DIR);
    char stage[REVIEW_PATH_MAX], old[REVIEW_PATH_MAX], target[REVIEW_PATH_MAX];
    long pid = (long)getpid();
    if ((size_t)snprintf(stage, sizeof stage, "%s/.stage-%ld-%s", out_dir, pid, REVIEW_DIR) >=
            sizeof stage ||
        (size_t)snprintf(old, sizeof old, "%s/.old-%ld-%s", out_dir, pid, REVIEW_DIR) >=
            sizeof old ||
        (size_t)snprintf(target, sizeof target, "%s/%s", out_dir, REVIEW_DIR) >= sizeof target)
        return dp_err_set(err, DP_ERR_LIMIT, "%s: path too long", out_dir);
    dp__rmtree(stage, NULL);
    enum dp_status st = DP_OK;
    bool any = false;
    for (int i = 0; i < docs->n && st == DP_OK; i++) {
        char src[REVIEW_PATH_MAX], dst[REVIEW_PATH_MAX];
        const char *stem = docs->items[i].stem;
        if ((size_t)snprintf(src, sizeof src, "%s/%s/%s", out_dir, stem, REVIEW_DIR) >=
                sizeof src ||
            (size_t)snprintf(dst, sizeof dst, "%s/%s", stage, stem) >= sizeof dst)
            continue;
        struct stat sb;
        if (stat(src, &sb) != 0 || !S_ISDIR(sb.st_mode))
            continue;
        any = true;
        st = link_crops(src, dst, err);
    }
    /* swap: the old folder aside, the new one in (again when another shard's run put its own
     * in between: the last run to finish leaves its view, as with OUT/review.jsonl) */
    for (int tries = 0; st == DP_OK && tries < REVIEW_SWAP_TRIES; tries++) {
        struct stat sb;
        if (lstat(target, &sb) == 0) {
            dp__rmtree(old, NULL);
            if (rename(target, old) != 0 && errno != ENOENT) {
                st = dp_err_set_errno(err, DP_ERR_IO, errno, "%s: cannot move the old crops "
                                      "aside", target);
                break;
            }
            dp__rmtree(old, NULL);
        }
        if (!any || rename(stage, target) == 0)
            break;
        if ((errno != ENOTEMPTY && errno != EEXIST) || tries + 1 == REVIEW_SWAP_TRIES)
            st = dp_err_set_errno(err, DP_ERR_IO, errno, "%s: cannot rename into place", target);
    }
    dp__rmtree(stage, NULL);
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
    if (st == DP_OK)
        st = crops_merge(out_dir, docs, err);
    return st;
}

enum dp_status dp__review_merge_manifest(const char *out_dir, const char *manifest,
                                         struct dp_err *err) {
    json_error_t je;
    json_t *m = json_load_file(manifest, 0, &je);
    if (!json_is_object(m)) {
        json_decref(m);
        return dp_err_set(err, DP_ERR_FORMAT, "%s: not a manifest: %s", manifest, je.text);
    }
    const char *cmd = json_string_value(json_object_get(m, "command"));
    enum dp_status st = DP_OK;
    struct dp_inputs docs;
    memset(&docs, 0, sizeof docs);
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(m, "documents"), i, d) {
        const char *name = json_string_value(json_object_get(d, "name"));
        const char *stem = json_string_value(json_object_get(d, "stem"));
        const char *status = json_string_value(json_object_get(d, "status"));
        if (st != DP_OK || !name || !stem || !status || strcmp(status, "ok"))
            continue; /* only finished documents have a review file */
        st = dp_inputs_add(&docs, name, name, err);
        if (st == DP_OK && !(docs.items[docs.n - 1].stem = dp_strdup(stem)))
            st = dp_err_set(err, DP_ERR_NOMEM, "out of memory");
    }
    if (st == DP_OK && cmd && !strcmp(cmd, "batch")) /* the review queue is batch's */
        st = dp__review_merge(out_dir, &docs, err);
    dp_inputs_free(&docs);
    json_decref(m);
    return st;
}
