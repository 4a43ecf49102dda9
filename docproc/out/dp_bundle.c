/* Output bundles (dp_out.h): a zip file through libzip or a directory, one folder per document
 * holding result.json, result.xml, tables/p<N>-t<K>.csv and raw/ (the model's answers byte-exact plus
 * pages.json, what dp_raw_read needs). Entry names are sanitised (no traversal). A zip is atomic
 * (libzip writes a temporary and renames it in zip_close); in a directory each file is written
 * atomically. Buffers handed to libzip stay owned by the bundle until zip_close/zip_discard, as
 * its deferred write requires. Not thread-safe per bundle. */
#include "dp_out.h"
#include "dp_out_impl.h"
#include "dp_alloc.h"
#include "dp_fs.h"
#include "dp_limits.h"

#include <glib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <zip.h>

#define NAME_MAX_BYTES 1024
#define UNIQUE_MAX 100000

struct dp_bundle {
    bool is_zip;
    bool overwrite;
    char *path;
    zip_t *za;
    void **bufs; /* (n_bufs) data owned until zip_close */
    size_t n_bufs, cap_bufs;
    char **stems; /* (n_stems) used document folders */
    size_t n_stems, cap_stems;
    struct dp_csv_opts csv;
};

/* libzip's zip_close writes "NAME.XXXXXX" (mkstemp) beside NAME and renames it: the X count */
#define LIBZIP_TMP_CHARS 6

/* Whether the first n bytes of s end with suffix (ASCII case-insensitive). */
static bool ends_with_ci_n(const char *s, size_t n, const char *suffix) {
    size_t k = strlen(suffix);
    return n >= k && !g_ascii_strncasecmp(s + n - k, suffix, k);
}

static bool ends_with_ci(const char *s, const char *suffix) {
    return ends_with_ci_n(s, strlen(s), suffix);
}

static void bundle_free(struct dp_bundle *b) {
    for (size_t i = 0; i < b->n_bufs; i++)
        dp_free(b->bufs[i]);
    dp_free(b->bufs);
    for (size_t i = 0; i < b->n_stems; i++)
        dp_free(b->stems[i]);
    dp_free(b->stems);
    dp_free(b->path);
    dp_free(b);
}

static bool grow(void **arr, size_t *cap, size_t n, size_t elem) {
    if (n < *cap)
        return true;
    size_t nc = *cap ? *cap * 2 : 16;
    void *p = dp_reallocarray(*arr, nc, elem);
    if (!p)
        return false;
    *arr = p;
    *cap = nc;
    return true;
}

size_t dp_bundle_zip_tmp_len(const char *name) {
    const char *dot = strrchr(name, '.');
    size_t len = dot ? (size_t)(dot - name) : 0;
    if (!dot || strlen(dot + 1) != LIBZIP_TMP_CHARS || len <= strlen(".zip") ||
        !ends_with_ci_n(name, len, ".zip"))
        return 0;
    return len;
}

enum dp_status dp_bundle_open(struct dp_bundle **out, const char *path, bool overwrite,
                              struct dp_err *err) {
    *out = NULL;
    struct dp_bundle *b = dp_calloc(1, sizeof *b);
    if (!b || !(b->path = dp_strdup(path))) {
        dp_free(b);
        return dp_err_set(err, DP_ERR_NOMEM, "%s: out of memory", path);
    }
    b->overwrite = overwrite;
    b->csv = dp_csv_opts_default();
    b->is_zip = ends_with_ci(path, ".zip");
    struct stat st;
    bool exists = stat(path, &st) == 0;
    if (b->is_zip) {
        if (exists && !overwrite) {
            bundle_free(b);
            return dp_err_set(err, DP_ERR_IO, "%s: already exists (use --force to overwrite)", path);
        }
        const char *base = dp_path_basename(path);
        if (base > path + 1) { /* create the parent directory, as for directory bundles */
            char *parent = dp_strndup(path, (size_t)(base - path - 1));
            enum dp_status ps = parent ? dp_mkdirs(parent, err) : DP_ERR_NOMEM;
            dp_free(parent);
            if (ps != DP_OK) {
                bundle_free(b);
                return ps == DP_ERR_NOMEM ? dp_err_set(err, ps, "%s: out of memory", path) : ps;
            }
        }
        int ze = 0;
        b->za = zip_open(path, ZIP_CREATE | (exists ? ZIP_TRUNCATE : ZIP_EXCL), &ze);
        if (!b->za) {
            zip_error_t e;
            zip_error_init_with_code(&e, ze);
            dp_err_set(err, DP_ERR_IO, "%s: cannot create zip: %s", path, zip_error_strerror(&e));
            zip_error_fini(&e);
            bundle_free(b);
            return DP_ERR_IO;
        }
    } else {
        enum dp_status s = dp_mkdirs(path, err);
        if (s != DP_OK) {
            bundle_free(b);
            return s;
        }
    }
    *out = b;
    return DP_OK;
}

/* Adds one file; name is already sanitised per component. */
static enum dp_status add_entry(struct dp_bundle *b, const char *name, const void *data, size_t len,
                                struct dp_err *err) {
    if (b->is_zip) {
        void *copy = dp_malloc(len ? len : 1);
        if (!copy || !grow((void **)&b->bufs, &b->cap_bufs, b->n_bufs, sizeof *b->bufs)) {
            dp_free(copy);
            return dp_err_set(err, DP_ERR_NOMEM, "%s: out of memory", b->path);
        }
        if (len)
            memcpy(copy, data, len);
        b->bufs[b->n_bufs++] = copy;
        zip_source_t *src = zip_source_buffer(b->za, copy, len, 0);
        if (!src || zip_file_add(b->za, name, src, ZIP_FL_ENC_UTF_8 | ZIP_FL_OVERWRITE) < 0) {
            if (src)
                zip_source_free(src);
            return dp_err_set(err, DP_ERR_IO, "%s: adding %s: %s", b->path, name,
                              zip_strerror(b->za));
        }
        return DP_OK;
    }
    char full[NAME_MAX_BYTES * 2];
    int k = snprintf(full, sizeof full, "%s/%s", b->path, name);
    if (k < 0 || (size_t)k >= sizeof full)
        return dp_err_set(err, DP_ERR_LIMIT, "%s/%s: path too long", b->path, name);
    char *slash = strrchr(full, '/');
    *slash = '\0';
    enum dp_status st = dp_mkdirs(full, err);
    *slash = '/';
    if (st != DP_OK)
        return st;
    return dp_file_write_atomic(full, data, len, b->overwrite, err);
}

enum dp_status dp_bundle_add_file(struct dp_bundle *b, const char *name, const void *data,
                                  size_t len, struct dp_err *err) {
    /* Sanitise each component: "a/../b" becomes "a/_./b", never a traversal. */
    if (!name[strspn(name, "/")])
        return dp_err_set(err, DP_ERR_FORMAT, "%s: empty entry name", b->path);
    char *clean = dp_out_sanitize_path(name);
    if (!clean)
        return dp_err_set(err, DP_ERR_NOMEM, "out of memory");
    enum dp_status st = strlen(clean) < NAME_MAX_BYTES
                            ? add_entry(b, clean, data, len, err)
                            : dp_err_set(err, DP_ERR_LIMIT, "%s: entry name too long", b->path);
    dp_free(clean);
    return st;
}

static enum dp_status unique_stem(struct dp_bundle *b, const char *stem, char **out,
                                  struct dp_err *err) {
    /* the batch's stems keep the input tree ("sub/x.pdf"): sanitised per component */
    char *s = dp_out_sanitize_path(stem && *stem ? stem : "document");
    if (!s)
        return dp_err_set(err, DP_ERR_NOMEM, "out of memory");
    if (strlen(s) > DP_OUT_MAX_STEM) {
        dp_free(s);
        return dp_err_set(err, DP_ERR_LIMIT, "%s: output name longer than %d bytes", b->path,
                          DP_OUT_MAX_STEM);
    }
    char cand[DP_OUT_MAX_STEM + 16];
    snprintf(cand, sizeof cand, "%s", s);
    for (int k = 2; k < UNIQUE_MAX; k++) {
        bool used = false;
        for (size_t i = 0; i < b->n_stems && !used; i++)
            used = !strcmp(b->stems[i], cand);
        if (!used)
            break;
        snprintf(cand, sizeof cand, "%s-%d", s, k);
    }
    dp_free(s);
    char *c = dp_strdup(cand);
    if (!c || !grow((void **)&b->stems, &b->cap_stems, b->n_stems, sizeof *b->stems)) {
        dp_free(c);
        return dp_err_set(err, DP_ERR_NOMEM, "out of memory");
    }
    b->stems[b->n_stems++] = c;
    *out = c;
    return DP_OK;
}

static enum dp_status add_buf(struct dp_bundle *b, const char *name, struct dp_buf *buf,
                              struct dp_err *err) {
    enum dp_status st = buf->status;
    if (st != DP_OK)
        return dp_err_set(err, st, "%s: %s: %s", b->path, name, dp_status_str(st));
    return add_entry(b, name, buf->data ? buf->data : "", buf->len, err);
}

void dp_bundle_set_csv(struct dp_bundle *b, const struct dp_csv_opts *o) {
    b->csv = *o;
}

enum dp_status dp_bundle_add_doc(struct dp_bundle *b, const struct ex_doc *doc, const char *stem,
                                 unsigned formats, struct dp_err *err) {
    char *s = NULL;
    enum dp_status st = unique_stem(b, stem, &s, err);
    char name[DP_OUT_MAX_STEM + 64];
    struct dp_buf buf;
    dp_buf_init(&buf, DP_MAX_TEXT_BYTES);
    if (st == DP_OK && (formats & DP_OUT_JSON)) {
        st = dp_out_json(doc, &buf, err);
        snprintf(name, sizeof name, "%s/result.json", s);
        if (st == DP_OK)
            st = add_buf(b, name, &buf, err);
        dp_buf_reset(&buf);
    }
    if (st == DP_OK && (formats & DP_OUT_XML)) {
        st = dp_out_xml(doc, &buf, err);
        snprintf(name, sizeof name, "%s/result.xml", s);
        if (st == DP_OK)
            st = add_buf(b, name, &buf, err);
        dp_buf_reset(&buf);
    }
    for (size_t p = 0; st == DP_OK && (formats & DP_OUT_CSV) && p < doc->n_pages; p++) {
        for (size_t t = 0; st == DP_OK && t < doc->pages[p]->n_tables; t++) {
            st = dp_out_csv_table_opts(&doc->pages[p]->tables[t], &b->csv, &buf, err);
            snprintf(name, sizeof name, "%s/tables/p%04d-t%02zu.csv", s, doc->pages[p]->number,
                     t + 1);
            if (st == DP_OK)
                st = add_buf(b, name, &buf, err);
            dp_buf_reset(&buf);
        }
    }
    if (st == DP_OK)
        st = dp__bundle_add_archive(b, doc, s, formats, err);
    for (size_t p = 0; st == DP_OK && (formats & DP_OUT_RAW) && p < doc->n_pages; p++) {
        snprintf(name, sizeof name, "%s/raw/page-%04d.txt", s, doc->pages[p]->number);
        st = add_entry(b, name, doc->pages[p]->raw, doc->pages[p]->raw_len, err);
    }
    if (st == DP_OK && (formats & DP_OUT_RAW)) {
        st = dp__out_pages_json(doc, &buf);
        snprintf(name, sizeof name, "%s/raw/pages.json", s);
        if (st == DP_OK)
            st = add_buf(b, name, &buf, err);
        else
            dp_err_set(err, st, "%s: pages.json: %s", b->path, dp_status_str(st));
    }
    dp_buf_free(&buf);
    return st;
}

enum dp_status dp_bundle_commit(struct dp_bundle *b, struct dp_err *err) {
    enum dp_status st = DP_OK;
    if (b->is_zip && zip_close(b->za) < 0) {
        st = dp_err_set(err, DP_ERR_IO, "%s: writing zip: %s", b->path, zip_strerror(b->za));
        zip_discard(b->za); /* zip_close frees the archive only on success */
    }
    bundle_free(b);
    return st;
}

void dp_bundle_abort(struct dp_bundle *b) {
    if (!b)
        return;
    if (b->is_zip && b->za)
        zip_discard(b->za);
    bundle_free(b);
}
