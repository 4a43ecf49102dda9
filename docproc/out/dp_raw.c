/* Raw answers kept in bundles: <stem>/raw/pages.json (what re-parsing needs: page numbers,
 * answer files, the model's truncation flags, geometry, source, schema, stamp) and dp_raw_read,
 * which lists and reads every document's raw answers back from a zip bundle or an output
 * directory (docproc extract --from-raw). Entry names read back are checked (no '/' or '..'),
 * sizes capped. Thread-safe: no shared state. */
#include "dp_out.h"
#include "dp_out_impl.h"
#include "dp_alloc.h"
#include "dp_fs.h"
#include "dp_limits.h"

#include <errno.h>
#include <glib.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <zip.h>

#define RAW_FORMAT "docproc-raw/1"
#define PAGES_JSON "raw/pages.json"
#define PAGES_JSON_MAX ((size_t)16 << 20)
#define RAW_PATH_MAX 4096

enum dp_status dp__out_pages_json(const struct ex_doc *doc, struct dp_buf *out) {
    struct dp_jw w;
    dp_jw_init(&w, out, true);
    dp_jw_obj(&w);
    dp_jw_key(&w, "format");
    dp_jw_str(&w, RAW_FORMAT);
    dp_jw_key(&w, "source");
    dp_jw_str(&w, doc->source);
    dp_jw_key(&w, "schema");
    dp_jw_str(&w, doc->stamp.schema_name);
    dp__out_stamp_json(&w, &doc->stamp);
    if (doc->source_pages > 0) { /* the --pages note of a re-extraction needs it */
        dp_jw_key(&w, "source_pages");
        dp_jw_int(&w, doc->source_pages);
    }
    dp_jw_key(&w, "pages");
    dp_jw_arr(&w);
    for (size_t i = 0; i < doc->n_pages; i++) {
        const struct ex_page *p = doc->pages[i];
        char file[32];
        snprintf(file, sizeof file, "page-%04d.txt", p->number);
        dp_jw_obj(&w);
        dp_jw_key(&w, "number");
        dp_jw_int(&w, p->number);
        dp_jw_key(&w, "file");
        dp_jw_str(&w, file);
        dp_jw_key(&w, "model_truncated");
        dp_jw_bool(&w, p->model_truncated);
        dp_jw_key(&w, "stop");
        dp_jw_str(&w, ex_stop_name(p->stop));
        dp__out_geom_json(&w, &p->geom);
        dp_jw_end(&w);
    }
    dp_jw_end(&w);
    dp_jw_end(&w);
    dp_buf_putc(out, '\n');
    enum dp_status st = dp_jw_status(&w);
    return st != DP_OK ? st : out->status;
}

/* ---- reading ------------------------------------------------------------------------------- */

void dp_raw_set_free(struct dp_raw_set *s) {
    if (!s)
        return;
    for (size_t i = 0; i < s->n_docs; i++) {
        struct dp_raw_doc *d = &s->docs[i];
        for (size_t k = 0; k < d->n_pages; k++)
            dp_free(d->pages[k].text);
        dp_free(d->pages);
        dp_free(d->stem);
        dp_free(d->source);
        dp_free(d->schema_name);
        for (size_t k = 0; k < sizeof d->stamp_strings / sizeof *d->stamp_strings; k++)
            dp_free(d->stamp_strings[k]);
    }
    dp_free(s->docs);
    dp_free(s);
}

/* Reads one named member of a document (zip entry or file). */
typedef enum dp_status (*read_fn)(void *ctx, const char *name, size_t max, char **out, size_t *len,
                                  struct dp_err *err);

struct zip_ctx {
    zip_t *za;
    const char *path;
};

static enum dp_status zip_read(void *vctx, const char *name, size_t max, char **out, size_t *len,
                               struct dp_err *err) {
    struct zip_ctx *c = vctx;
    zip_stat_t st;
    zip_stat_init(&st);
    if (zip_stat(c->za, name, 0, &st) < 0 || !(st.valid & ZIP_STAT_SIZE))
        return dp_err_set(err, DP_ERR_FORMAT, "%s: missing entry %s", c->path, name);
    if (st.size > max)
        return dp_err_set(err, DP_ERR_LIMIT, "%s: %s is %llu bytes, max %zu", c->path, name,
                          (unsigned long long)st.size, max);
    char *buf = dp_malloc((size_t)st.size + 1);
    if (!buf)
        return dp_err_set(err, DP_ERR_NOMEM, "out of memory");
    zip_file_t *f = zip_fopen(c->za, name, 0);
    zip_int64_t n = f ? zip_fread(f, buf, st.size) : -1;
    if (f)
        zip_fclose(f);
    if (n < 0 || (zip_uint64_t)n != st.size) {
        dp_free(buf);
        return dp_err_set(err, DP_ERR_IO, "%s: reading %s failed", c->path, name);
    }
    buf[n] = '\0';
    *out = buf;
    *len = (size_t)n;
    return DP_OK;
}

static enum dp_status dir_read(void *vctx, const char *name, size_t max, char **out, size_t *len,
                               struct dp_err *err) {
    char full[RAW_PATH_MAX];
    int k = snprintf(full, sizeof full, "%s/%s", (const char *)vctx, name);
    if (k < 0 || (size_t)k >= sizeof full)
        return dp_err_set(err, DP_ERR_LIMIT, "%s: path too long", name);
    return dp_file_read(full, max, out, len, err);
}

static bool safe_file(const char *f) {
    return *f && !strchr(f, '/') && !strchr(f, '\\') && f[0] != '.';
}

/* A relative path whose every component is a safe_file (the stems keep the input tree). */
static bool safe_path(const char *p) {
    char buf[RAW_PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", p) >= (int)sizeof buf)
        return false;
    char *save = NULL;
    if (!*buf || buf[0] == '/' || strstr(buf, "//") || buf[strlen(buf) - 1] == '/')
        return false;
    for (char *c = strtok_r(buf, "/", &save); c; c = strtok_r(NULL, "/", &save))
        if (!safe_file(c))
            return false;
    return true;
}

static int geom_int(json_t *g, const char *k) {
    json_t *v = json_object_get(g, k);
    json_int_t i = json_is_integer(v) ? json_integer_value(v) : 0;
    return i > 0 && i < INT32_MAX ? (int)i : 0;
}

static double geom_num(json_t *g, const char *k) {
    json_t *v = json_object_get(g, k);
    double d = json_is_number(v) ? json_number_value(v) : 0;
    return d > 0 && d < 1e9 ? d : 0;
}

static json_int_t stamp_int(json_t *o, const char *k) {
    json_t *v = json_object_get(o, k);
    json_int_t i = json_is_integer(v) ? json_integer_value(v) : 0;
    return i > 0 ? i : 0;
}

/* Copies a string member of o into the next owned slot; false only when out of memory. */
static bool stamp_str(struct dp_raw_doc *d, size_t *slot, json_t *o, const char *k,
                      const char **out) {
    json_t *v = json_object_get(o, k);
    if (!json_is_string(v))
        return true;
    DP_ASSERT(*slot < sizeof d->stamp_strings / sizeof *d->stamp_strings);
    char *c = dp_strndup(json_string_value(v), json_string_length(v));
    if (!c)
        return false;
    d->stamp_strings[(*slot)++] = c;
    *out = c;
    return true;
}

/* pages.json "stamp" (dp__out_stamp_json's layout) into d->stamp; a missing or odd stamp
 * leaves fields empty (older bundles, hand-made inputs). */
static enum dp_status read_stamp(struct dp_raw_doc *d, json_t *root, struct dp_err *err) {
    json_t *s = json_object_get(root, "stamp");
    if (!json_is_object(s))
        return DP_OK;
    json_t *model = json_object_get(s, "model"), *schema = json_object_get(s, "schema");
    json_t *render = json_object_get(s, "render");
    struct ex_stamp *t = &d->stamp;
    size_t slot = 0;
    bool ok = stamp_str(d, &slot, s, "docproc_version", &t->docproc_version) &&
              stamp_str(d, &slot, model, "id", &t->model_id) &&
              stamp_str(d, &slot, model, "sha256", &t->model_hash) &&
              stamp_str(d, &slot, schema, "name", &t->schema_name) &&
              stamp_str(d, &slot, schema, "version", &t->schema_version) &&
              stamp_str(d, &slot, schema, "sha256", &t->schema_hash) &&
              stamp_str(d, &slot, s, "prompt", &t->prompt) &&
              stamp_str(d, &slot, s, "created", &t->created);
    if (!ok)
        return dp_err_set(err, DP_ERR_NOMEM, "out of memory");
    json_int_t dpi = stamp_int(render, "dpi"), threads = stamp_int(s, "threads");
    t->dpi = dpi < INT32_MAX ? (int)dpi : 0;
    t->max_pixels = (long)stamp_int(render, "max_pixels");
    t->max_new_tokens = (long)stamp_int(s, "max_new_tokens");
    json_t *seed = json_object_get(s, "seed"); /* written as int64: a u64 seed round-trips */
    t->seed = json_is_integer(seed) ? (uint64_t)json_integer_value(seed) : 0;
    t->threads = threads < INT32_MAX ? (int)threads : 0;
    return DP_OK;
}

/* Reads the document whose pages.json is "<prefix>raw/pages.json" (prefix "" or "stem/"). */
static enum dp_status read_doc(struct dp_raw_doc *d, read_fn rd, void *ctx, const char *prefix,
                               const char *where, struct dp_err *err) {
    char name[RAW_PATH_MAX];
    snprintf(name, sizeof name, "%s%s", prefix, PAGES_JSON);
    char *data = NULL;
    size_t len = 0;
    enum dp_status st = rd(ctx, name, PAGES_JSON_MAX, &data, &len, err);
    if (st != DP_OK)
        return st;
    json_error_t je;
    json_t *root = json_loadb(data, len, 0, &je);
    dp_free(data);
    json_t *pages = root ? json_object_get(root, "pages") : NULL;
    if (!json_is_array(pages)) {
        json_decref(root);
        return dp_err_set(err, DP_ERR_FORMAT, "%s: %s: not a docproc pages.json", where, name);
    }
    json_t *src = json_object_get(root, "source"), *sch = json_object_get(root, "schema");
    d->source = json_is_string(src) ? dp_strdup(json_string_value(src)) : NULL;
    d->schema_name = json_is_string(sch) ? dp_strdup(json_string_value(sch)) : NULL;
    json_t *sp = json_object_get(root, "source_pages");
    if (json_is_integer(sp) && json_integer_value(sp) > 0 && json_integer_value(sp) <= DP_MAX_PAGES)
        d->source_pages = (int)json_integer_value(sp);
    size_t n = json_array_size(pages);
    if (n > DP_MAX_PAGES) {
        json_decref(root);
        return dp_err_set(err, DP_ERR_LIMIT, "%s: %zu pages, max %d", where, n, DP_MAX_PAGES);
    }
    d->pages = dp_calloc(n ? n : 1, sizeof *d->pages);
    if (!d->pages || (json_is_string(src) && !d->source) || (json_is_string(sch) && !d->schema_name))
        st = dp_err_set(err, DP_ERR_NOMEM, "out of memory");
    if (st == DP_OK)
        st = read_stamp(d, root, err);
    for (size_t i = 0; st == DP_OK && i < n; i++) {
        json_t *p = json_array_get(pages, i);
        json_t *num = json_object_get(p, "number"), *file = json_object_get(p, "file");
        if (!json_is_integer(num) || !json_is_string(file) || !safe_file(json_string_value(file)) ||
            json_integer_value(num) < 1 || json_integer_value(num) > DP_MAX_PAGES) {
            st = dp_err_set(err, DP_ERR_FORMAT, "%s: %s: bad page entry %zu", where, name, i);
            break;
        }
        struct dp_raw_page *rp = &d->pages[i];
        rp->number = (int)json_integer_value(num);
        if (i > 0 && rp->number <= d->pages[i - 1].number) { /* written in page order, once each */
            st = dp_err_set(err, DP_ERR_FORMAT, "%s: %s: page %d listed after page %d", where,
                            name, rp->number, d->pages[i - 1].number);
            break;
        }
        rp->truncated = json_is_true(json_object_get(p, "model_truncated"));
        /* bundles before the stop cause was recorded: max-new-tokens was the only one known */
        if (!ex_stop_parse(json_string_value(json_object_get(p, "stop")), &rp->stop))
            rp->stop = rp->truncated ? EX_STOP_MAX_NEW_TOKENS : EX_STOP_EOS;
        json_t *g = json_object_get(p, "geometry");
        rp->geom.model_w = geom_int(g, "model_w");
        rp->geom.model_h = geom_int(g, "model_h");
        rp->geom.page_w = geom_int(g, "page_w");
        rp->geom.page_h = geom_int(g, "page_h");
        rp->geom.pdf_w_pt = geom_num(g, "pdf_w_pt");
        rp->geom.pdf_h_pt = geom_num(g, "pdf_h_pt");
        char pname[RAW_PATH_MAX];
        snprintf(pname, sizeof pname, "%sraw/%s", prefix, json_string_value(file));
        st = rd(ctx, pname, DP_MAX_TEXT_BYTES, &rp->text, &rp->len, err);
        if (st == DP_OK)
            d->n_pages = i + 1;
    }
    json_decref(root);
    return st;
}

static bool add_doc(struct dp_raw_set *s, size_t *cap) {
    if (s->n_docs < *cap)
        return true;
    size_t nc = *cap ? *cap * 2 : 8;
    struct dp_raw_doc *p = dp_reallocarray(s->docs, nc, sizeof *p);
    if (!p)
        return false;
    s->docs = p;
    *cap = nc;
    return true;
}

static int cmp_doc(const void *a, const void *b) {
    return strcmp(((const struct dp_raw_doc *)a)->stem, ((const struct dp_raw_doc *)b)->stem);
}

static enum dp_status read_one(struct dp_raw_set *s, size_t *cap, const char *stem, read_fn rd,
                               void *ctx, const char *prefix, const char *where,
                               struct dp_err *err) {
    if (!add_doc(s, cap))
        return dp_err_set(err, DP_ERR_NOMEM, "out of memory");
    struct dp_raw_doc *d = &s->docs[s->n_docs++];
    memset(d, 0, sizeof *d);
    d->stem = dp_strdup(stem);
    if (!d->stem)
        return dp_err_set(err, DP_ERR_NOMEM, "out of memory");
    enum dp_status st = read_doc(d, rd, ctx, prefix, where, &d->err);
    if (st == DP_ERR_NOMEM)
        return dp_err_set(err, DP_ERR_NOMEM, "%s", d->err.msg);
    if (st != DP_OK) { /* this document fails alone: keep no partial pages */
        for (size_t k = 0; k < d->n_pages; k++)
            dp_free(d->pages[k].text);
        DP_FREE(d->pages);
        d->n_pages = 0;
    }
    return DP_OK;
}

static enum dp_status read_zip(struct dp_raw_set *s, const char *path, struct dp_err *err) {
    int ze = 0;
    zip_t *za = zip_open(path, ZIP_RDONLY, &ze);
    if (!za) {
        zip_error_t e;
        zip_error_init_with_code(&e, ze);
        dp_err_set(err, DP_ERR_IO, "%s: cannot open zip: %s", path, zip_error_strerror(&e));
        zip_error_fini(&e);
        return DP_ERR_IO;
    }
    struct zip_ctx ctx = {za, path};
    zip_int64_t n = zip_get_num_entries(za, 0);
    enum dp_status st = DP_OK;
    size_t cap = 0;
    if (n > DP_OUT_MAX_ENTRIES)
        st = dp_err_set(err, DP_ERR_LIMIT, "%s: %lld entries, max %d", path, (long long)n,
                        DP_OUT_MAX_ENTRIES);
    size_t tail = strlen("/" PAGES_JSON);
    for (zip_int64_t i = 0; st == DP_OK && i < n; i++) {
        const char *name = zip_get_name(za, (zip_uint64_t)i, 0);
        size_t nl = name ? strlen(name) : 0;
        if (nl <= tail || strcmp(name + nl - tail, "/" PAGES_JSON))
            continue;
        char stem[RAW_PATH_MAX];
        if (nl - tail >= sizeof stem)
            continue;
        memcpy(stem, name, nl - tail);
        stem[nl - tail] = '\0';
        if (!safe_path(stem))
            continue; /* <stem>/raw/pages.json, the stem a relative path of plain names */
        char prefix[RAW_PATH_MAX + 2];
        snprintf(prefix, sizeof prefix, "%s/", stem);
        st = read_one(s, &cap, stem, zip_read, &ctx, prefix, path, err);
    }
    zip_discard(za);
    return st;
}

static bool has_pages(const char *dir) {
    char p[RAW_PATH_MAX];
    struct stat st;
    int k = snprintf(p, sizeof p, "%s/%s", dir, PAGES_JSON);
    return k > 0 && (size_t)k < sizeof p && stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* Every folder under root/rel (rel "" or "sub/") holding raw/pages.json is a document whose
 * stem is its path under root (the input tree kept: "sub/x.pdf"); hidden entries are not
 * walked, nor a document's own folder, nor deeper than DP_MAX_DIR_DEPTH. */
static enum dp_status walk_dir(struct dp_raw_set *s, size_t *cap, const char *root,
                               const char *rel, int depth, struct dp_err *err) {
    char here[RAW_PATH_MAX];
    int k = snprintf(here, sizeof here, "%s/%s", root, rel);
    if (k < 0 || (size_t)k >= sizeof here || depth > DP_MAX_DIR_DEPTH)
        return DP_OK;
    GDir *d = g_dir_open(here, 0, NULL);
    if (!d)
        return DP_OK; /* a folder that vanished or cannot be read holds no answers for us */
    enum dp_status st = DP_OK;
    const char *e;
    while (st == DP_OK && (e = g_dir_read_name(d)) != NULL) {
        char sub[RAW_PATH_MAX], stem[RAW_PATH_MAX];
        struct stat sb;
        int a = snprintf(stem, sizeof stem, "%s%s", rel, e);
        int b = snprintf(sub, sizeof sub, "%s/%s", root, stem);
        if (e[0] == '.' || a < 0 || (size_t)a + 2 >= sizeof stem || b < 0 ||
            (size_t)b >= sizeof sub || lstat(sub, &sb) != 0 || !S_ISDIR(sb.st_mode))
            continue;
        char prefix[RAW_PATH_MAX + 2]; /* "stem/" */
        memcpy(prefix, stem, (size_t)a);
        prefix[a] = '/';
        prefix[a + 1] = '\0';
        if (has_pages(sub))
            st = read_one(s, cap, stem, dir_read, (void *)root, prefix, root, err);
        else
            st = walk_dir(s, cap, root, prefix, depth + 1, err);
    }
    g_dir_close(d);
    return st;
}

static enum dp_status read_dir(struct dp_raw_set *s, const char *path, struct dp_err *err) {
    size_t cap = 0;
    if (has_pages(path))
        return read_one(s, &cap, dp_path_basename(path), dir_read, (void *)path, "", path, err);
    GError *ge = NULL;
    GDir *d = g_dir_open(path, 0, &ge);
    if (!d) {
        dp_err_set(err, DP_ERR_IO, "%s: %s", path, ge ? ge->message : "cannot open");
        g_clear_error(&ge);
        return DP_ERR_IO;
    }
    g_dir_close(d);
    return walk_dir(s, &cap, path, "", 0, err);
}

enum dp_status dp_raw_read(struct dp_raw_set **out, const char *path, struct dp_err *err) {
    *out = NULL;
    struct dp_raw_set *s = dp_calloc(1, sizeof *s);
    if (!s)
        return dp_err_set(err, DP_ERR_NOMEM, "out of memory");
    struct stat st;
    enum dp_status r;
    if (stat(path, &st) != 0)
        r = dp_err_set_errno(err, DP_ERR_IO, errno, "%s", path);
    else if (S_ISDIR(st.st_mode))
        r = read_dir(s, path, err);
    else
        r = read_zip(s, path, err);
    if (r == DP_OK && s->n_docs == 0)
        r = dp_err_set(err, DP_ERR_FORMAT, "%s: no raw model answers (no */raw/pages.json)", path);
    if (r != DP_OK) {
        dp_raw_set_free(s);
        return r;
    }
    qsort(s->docs, s->n_docs, sizeof *s->docs, cmp_doc);
    *out = s;
    return DP_OK;
}
