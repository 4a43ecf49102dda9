/* Input discovery: files, recursive directories (content sniffing, sorted, hidden entries
 * skipped) and @LIST files, into a list of named inputs. Also owns the dp_inputs container.
 * A document's name (rel) is its path relative to the directory it was found in, or the base
 * name of a file given directly (its normalised path when two given files share a base name);
 * names key the outputs, the journal and the shard assignment.
 * Not thread-safe: one owner per list. */
#include "dp_manifest.h"
#include "dp_alloc.h"
#include "dp_buf.h"
#include "dp_fs.h"
#include "dp_limits.h"
#include "dp_log.h"
#include "dp_ingest.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define PATH_MAX_BYTES 4096
#define STDIN_NAME     "stdin"  /* the document name (and output folder) of "-" */
#define STDIN_CHUNK    (1 << 16)

void dp_input_clear(struct dp_input *d) {
    if (d->path_is_tmp && d->path)
        unlink(d->path);
    DP_FREE(d->path);
    DP_FREE(d->rel);
    DP_FREE(d->stem);
    DP_FREE(d->error);
    for (int i = 0; i < d->n_outputs; i++)
        dp_free(d->outputs[i]);
    DP_FREE(d->outputs);
    memset(d, 0, sizeof *d);
}

const char *dp_input_shown(const struct dp_input *d) {
    return d->path_is_tmp ? "-" : d->path;
}

void dp_inputs_free(struct dp_inputs *l) {
    for (int i = 0; i < l->n; i++)
        dp_input_clear(&l->items[i]);
    DP_FREE(l->items);
    l->n = l->cap = 0;
}

void dp_input_fail(struct dp_input *d, enum dp_status code, const char *msg) {
    if (d->state == DP_INPUT_FAILED)
        return;
    d->state = DP_INPUT_FAILED;
    d->code = code == DP_OK ? DP_ERR_INTERNAL : code;
    DP_FREE(d->error);
    d->error = dp_strdup(msg && *msg ? msg : dp_status_str(d->code)); /* NULL on OOM is tolerated */
}

enum dp_status dp_input_add_output(struct dp_input *d, const char *rel_out, struct dp_err *err) {
    char *s = dp_strdup(rel_out);
    char **o = s ? dp_reallocarray(d->outputs, (size_t)d->n_outputs + 1, sizeof *o) : NULL;
    if (!o) {
        dp_free(s);
        return dp_err_set(err, DP_ERR_NOMEM, "%s: out of memory", rel_out);
    }
    d->outputs = o;
    d->outputs[d->n_outputs++] = s;
    return DP_OK;
}

enum dp_status dp_inputs_add(struct dp_inputs *l, const char *path, const char *rel,
                             struct dp_err *err) {
    if (l->n >= DP_MAX_INPUTS)
        return dp_err_set(err, DP_ERR_LIMIT, "too many inputs: more than %d", DP_MAX_INPUTS);
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 64;
        struct dp_input *it = dp_reallocarray(l->items, (size_t)cap, sizeof *it);
        if (!it)
            return dp_err_set(err, DP_ERR_NOMEM, "out of memory listing inputs");
        l->items = it;
        l->cap = cap;
    }
    struct dp_input *d = &l->items[l->n];
    memset(d, 0, sizeof *d);
    d->path = dp_strdup(path);
    d->rel = dp_strdup(rel);
    if (!d->path || !d->rel) {
        dp_input_clear(d);
        return dp_err_set(err, DP_ERR_NOMEM, "out of memory listing inputs");
    }
    d->kind = "unknown";
    l->n++;
    return DP_OK;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_document(const char *path, const char **kind) {
    enum dp_format f = DP_FORMAT_UNKNOWN;
    struct dp_err e = {0};
    if (dp_format_sniff_file(&f, path, &e) != DP_OK || f == DP_FORMAT_UNKNOWN)
        return false;
    *kind = dp_format_name(f);
    return true;
}

/* Whether the name's extension says document (.pdf .tif .tiff .png .jpg .jpeg, any case). */
static bool named_document(const char *name) {
    static const char *const exts[] = {".pdf", ".tif", ".tiff", ".png", ".jpg", ".jpeg"};
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof exts / sizeof *exts; i++) {
        size_t e = strlen(exts[i]);
        if (n > e && !strcasecmp(name + n - e, exts[i]))
            return true;
    }
    return false;
}

/* What a file that is not a document looks like, for the manifest's reason. */
static const char *what_file(const char *path, int64_t size) {
    if (size == 0)
        return "empty file";
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return "unreadable file";
    unsigned char buf[512];
    size_t n = fread(buf, 1, sizeof buf, fp);
    fclose(fp);
    for (size_t i = 0; i < n; i++)
        if (buf[i] < 0x20 && buf[i] != '\n' && buf[i] != '\r' && buf[i] != '\t' && buf[i] != '\f')
            return "unknown format";
    return "text file";
}

/* Adds a file found under a directory that is not processed: skipped with its reason. */
static enum dp_status add_skipped(struct dp_inputs *l, const char *path, const char *rel,
                                  const char *reason, struct dp_err *err) {
    enum dp_status st = dp_inputs_add(l, path, rel, err);
    if (st != DP_OK)
        return st;
    struct dp_input *d = &l->items[l->n - 1];
    d->state = DP_INPUT_SKIPPED;
    d->error = dp_strdup(reason);
    if (!d->error)
        return dp_err_set(err, DP_ERR_NOMEM, "%s: out of memory", path);
    return DP_OK;
}

/* Walks dir (path on disk) whose documents are named prefix/NAME. */
static enum dp_status walk(struct dp_inputs *l, const char *dir, const char *prefix, int depth,
                           struct dp_err *err) {
    if (depth > DP_MAX_DIR_DEPTH)
        return dp_err_set(err, DP_ERR_LIMIT, "%s: directories nested deeper than %d (a link loop?)",
                          dir, DP_MAX_DIR_DEPTH);
    DIR *dh = opendir(dir);
    if (!dh)
        return dp_err_set_errno(err, DP_ERR_IO, errno, "%s: cannot open directory", dir);
    char **names = NULL;
    size_t n = 0, cap = 0;
    enum dp_status st = DP_OK;
    for (struct dirent *de = readdir(dh); de; de = readdir(dh)) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 32;
            char **nn = dp_reallocarray(names, nc, sizeof *nn);
            if (!nn) {
                st = dp_err_set(err, DP_ERR_NOMEM, "%s: out of memory", dir);
                break;
            }
            names = nn;
            cap = nc;
        }
        names[n] = dp_strdup(de->d_name);
        if (!names[n]) {
            st = dp_err_set(err, DP_ERR_NOMEM, "%s: out of memory", dir);
            break;
        }
        n++;
    }
    closedir(dh);
    if (st == DP_OK && n)
        qsort(names, n, sizeof *names, cmp_str);
    struct dp_buf full, rel;
    dp_buf_init(&full, PATH_MAX_BYTES);
    dp_buf_init(&rel, PATH_MAX_BYTES);
    for (size_t i = 0; i < n && st == DP_OK; i++) {
        dp_buf_reset(&full);
        dp_buf_reset(&rel);
        dp_buf_appendf(&full, "%s/%s", dir, names[i]);
        if (*prefix)
            dp_buf_appendf(&rel, "%s/%s", prefix, names[i]);
        else
            dp_buf_puts(&rel, names[i]);
        if (full.status != DP_OK || rel.status != DP_OK) {
            st = dp_err_set(err, DP_ERR_LIMIT, "%s/%s: path longer than %d bytes", dir, names[i],
                            PATH_MAX_BYTES);
            break;
        }
        /* Every entry gets a line in the manifest: a document, or skipped with the reason. */
        struct stat sb;
        const char *kind;
        bool hidden = names[i][0] == '.';
        if (stat(full.data, &sb) != 0) {
            st = add_skipped(l, full.data, rel.data, "dangling link or vanished file", err);
        } else if (S_ISDIR(sb.st_mode)) {
            if (hidden)
                st = add_skipped(l, full.data, rel.data, "hidden directory (not walked)", err);
            else
                st = walk(l, full.data, rel.data, depth + 1, err);
        } else if (!S_ISREG(sb.st_mode)) {
            st = add_skipped(l, full.data, rel.data, "not a regular file", err);
        } else if (hidden) {
            st = add_skipped(l, full.data, rel.data, "hidden file", err);
        } else if (is_document(full.data, &kind)) {
            st = dp_inputs_add(l, full.data, rel.data, err);
            if (st == DP_OK)
                l->items[l->n - 1].kind = kind;
        } else if (named_document(names[i])) {
            /* the name says document, the bytes do not: a damaged file, a failure */
            st = dp_inputs_add(l, full.data, rel.data, err);
            if (st == DP_OK) {
                char msg[DP_ERR_MSG_MAX];
                snprintf(msg, sizeof msg,
                         "damaged document: the name says %s but the bytes are not a PDF, TIFF, "
                         "PNG or JPEG (%s)",
                         strrchr(names[i], '.'), what_file(full.data, (int64_t)sb.st_size));
                dp_input_fail(&l->items[l->n - 1], DP_ERR_UNSUPPORTED, msg);
            }
        } else {
            char msg[128];
            snprintf(msg, sizeof msg, "not a document: %s",
                     what_file(full.data, (int64_t)sb.st_size));
            st = add_skipped(l, full.data, rel.data, msg, err);
        }
    }
    dp_buf_free(&full);
    dp_buf_free(&rel);
    for (size_t i = 0; i < n; i++)
        dp_free(names[i]);
    dp_free(names);
    return st;
}

/* A given file's name: its path without "./" and leading "/" and with ".." made harmless. */
static char *normalised_name(const char *path) {
    struct dp_buf b;
    dp_buf_init(&b, PATH_MAX_BYTES);
    const char *p = path;
    while (*p) {
        while (*p == '/')
            p++;
        const char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == 0)
            break;
        if (!(len == 1 && p[0] == '.')) {
            if (b.len)
                dp_buf_putc(&b, '/');
            if (len == 2 && p[0] == '.' && p[1] == '.')
                dp_buf_puts(&b, "_up_");
            else
                dp_buf_append(&b, p, len);
        }
        p += len;
    }
    if (b.status != DP_OK || !b.len) {
        dp_buf_free(&b);
        return NULL;
    }
    return dp_buf_steal(&b, NULL);
}

static enum dp_status add_one(struct dp_inputs *l, const char *arg, int depth, struct dp_err *err);

static enum dp_status add_list(struct dp_inputs *l, const char *list_path, int depth,
                               struct dp_err *err) {
    char *text = NULL;
    size_t len = 0;
    enum dp_status st = dp_file_read(list_path, DP_MAX_FILE_BYTES, &text, &len, err);
    if (st != DP_OK)
        return st;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line && st == DP_OK;
         line = strtok_r(NULL, "\n", &save)) {
        size_t ll = strlen(line);
        while (ll && (line[ll - 1] == '\r' || line[ll - 1] == ' ' || line[ll - 1] == '\t'))
            line[--ll] = '\0';
        while (*line == ' ' || *line == '\t')
            line++;
        if (!*line || *line == '#')
            continue;
        st = add_one(l, line, depth + 1, err);
    }
    dp_free(text);
    return st;
}

/* "-": copies stdin (a file or a pipe) into a temporary file, since PDF readers seek and the
 * document is read twice (SHA-256, then pages); at most DP_MAX_FILE_BYTES. */
static enum dp_status add_stdin(struct dp_inputs *l, struct dp_err *err) {
    for (int i = 0; i < l->n; i++)
        if (l->items[i].path_is_tmp)
            return dp_err_set(err, DP_ERR_USAGE, "-: stdin given twice");
    if (isatty(STDIN_FILENO))
        return dp_err_set(err, DP_ERR_USAGE,
                          "-: reads the document from stdin, which is a terminal (try - < FILE)");
    const char *tmpdir = getenv("TMPDIR");
    struct dp_buf path;
    dp_buf_init(&path, PATH_MAX_BYTES);
    dp_buf_appendf(&path, "%s/docproc-stdin-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
    if (path.status != DP_OK) {
        dp_buf_free(&path);
        return dp_err_set(err, DP_ERR_USAGE, "-: $TMPDIR too long");
    }
    int fd = mkstemp(path.data);
    if (fd < 0) {
        enum dp_status st =
            dp_err_set_errno(err, DP_ERR_IO, errno, "-: cannot create %s for stdin", path.data);
        dp_buf_free(&path);
        return st;
    }
    enum dp_status st = DP_OK;
    char *buf = dp_malloc(STDIN_CHUNK);
    size_t total = 0;
    if (!buf)
        st = dp_err_set(err, DP_ERR_NOMEM, "-: out of memory reading stdin");
    while (st == DP_OK) {
        ssize_t n = read(STDIN_FILENO, buf, STDIN_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            st = dp_err_set_errno(err, DP_ERR_IO, errno, "-: cannot read stdin");
            break;
        }
        if (n == 0)
            break;
        total += (size_t)n;
        if (total > DP_MAX_FILE_BYTES) {
            st = dp_err_set(err, DP_ERR_LIMIT, "-: stdin holds more than %zu bytes",
                            (size_t)DP_MAX_FILE_BYTES);
            break;
        }
        for (ssize_t off = 0; off < n && st == DP_OK;) {
            ssize_t w = write(fd, buf + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0)
                st = dp_err_set_errno(err, DP_ERR_IO, errno, "-: cannot write %s", path.data);
            else
                off += w;
        }
    }
    dp_free(buf);
    if (close(fd) != 0 && st == DP_OK)
        st = dp_err_set_errno(err, DP_ERR_IO, errno, "-: cannot write %s", path.data);
    if (st == DP_OK && total == 0)
        st = dp_err_set(err, DP_ERR_IO, "-: stdin is empty");
    if (st == DP_OK)
        st = dp_inputs_add(l, path.data, STDIN_NAME, err);
    if (st != DP_OK) {
        unlink(path.data);
        dp_buf_free(&path);
        return st;
    }
    struct dp_input *d = &l->items[l->n - 1];
    d->path_is_tmp = true;
    const char *kind;
    if (is_document(d->path, &kind))
        d->kind = kind;
    dp_buf_free(&path);
    return DP_OK;
}

static enum dp_status add_one(struct dp_inputs *l, const char *arg, int depth, struct dp_err *err) {
    if (!strcmp(arg, "-")) {
        if (depth > 0)
            return dp_err_set(err, DP_ERR_USAGE, "-: stdin cannot be named in an @LIST");
        return add_stdin(l, err);
    }
    if (depth > DP_MAX_DIR_DEPTH)
        return dp_err_set(err, DP_ERR_LIMIT, "%s: @lists nested deeper than %d", arg,
                          DP_MAX_DIR_DEPTH);
    if (arg[0] == '@')
        return add_list(l, arg + 1, depth, err);
    struct stat sb;
    if (stat(arg, &sb) != 0) /* a wrong path or mount point is the run's error, not a document's */
        return dp_err_set_errno(err, DP_ERR_IO, errno, "%s: cannot read input", arg);
    if (S_ISDIR(sb.st_mode)) {
        int before = l->n;
        enum dp_status st = walk(l, arg, "", depth, err);
        int docs = 0;
        for (int i = before; i < l->n; i++)
            docs += l->items[i].state != DP_INPUT_SKIPPED;
        if (st == DP_OK && docs == 0) /* an empty or wrong mount must not look green */
            st = dp_err_set(err, DP_ERR_IO,
                            "%s: directory holds no PDF, TIFF, PNG or JPEG document (%d other "
                            "files)",
                            arg, l->n - before);
        return st;
    }
    const char *base = dp_path_basename(arg);
    enum dp_status st = dp_inputs_add(l, arg, *base ? base : arg, err);
    if (st == DP_OK) {
        const char *kind;
        if (is_document(arg, &kind))
            l->items[l->n - 1].kind = kind;
    }
    return st;
}

static int cmp_rel_ptr(const void *a, const void *b) {
    const struct dp_input *x = *(const struct dp_input *const *)a;
    const struct dp_input *y = *(const struct dp_input *const *)b;
    int c = strcmp(x->rel, y->rel);
    return c ? c : (x > y) - (x < y);
}

/* Sorted pointers to the entries (caller frees), NULL on OOM. */
static struct dp_input **sorted_by_rel(struct dp_inputs *l) {
    struct dp_input **v = dp_reallocarray(NULL, (size_t)l->n, sizeof *v);
    if (!v)
        return NULL;
    for (int i = 0; i < l->n; i++)
        v[i] = &l->items[i];
    qsort(v, (size_t)l->n, sizeof *v, cmp_rel_ptr);
    return v;
}

/* Given files that share a base name are renamed to their normalised paths; any remaining
 * duplicate name is an error (e.g. the same file given twice). */
static enum dp_status make_unique(struct dp_inputs *l, struct dp_err *err) {
    if (l->n < 2)
        return DP_OK;
    for (int pass = 0; pass < 2; pass++) {
        struct dp_input **v = sorted_by_rel(l);
        bool *dup = dp_calloc((size_t)l->n, sizeof *dup);
        if (!v || !dup) {
            dp_free(v);
            dp_free(dup);
            return dp_err_set(err, DP_ERR_NOMEM, "out of memory listing inputs");
        }
        int n_dup = 0;
        for (int i = 0; i + 1 < l->n; i++) {
            if (strcmp(v[i]->rel, v[i + 1]->rel))
                continue;
            if (pass == 1) {
                enum dp_status st = dp_err_set(err, DP_ERR_USAGE,
                                               "input named '%s' twice (%s and %s)", v[i]->rel,
                                               v[i]->path, v[i + 1]->path);
                dp_free(v);
                dp_free(dup);
                return st;
            }
            dup[i] = dup[i + 1] = true;
            n_dup++;
        }
        for (int i = 0; i < l->n; i++) {
            char *nn = dup[i] ? normalised_name(v[i]->path) : NULL;
            if (nn) {
                dp_free(v[i]->rel);
                v[i]->rel = nn;
            }
        }
        dp_free(v);
        dp_free(dup);
        if (!n_dup)
            break;
    }
    return DP_OK;
}

enum dp_status dp_discover(struct dp_inputs *out, char *const *inputs, int n_inputs,
                           struct dp_err *err) {
    memset(out, 0, sizeof *out);
    enum dp_status st = DP_OK;
    for (int i = 0; i < n_inputs && st == DP_OK; i++)
        st = add_one(out, inputs[i], 0, err);
    if (st == DP_OK)
        st = make_unique(out, err);
    if (st != DP_OK)
        dp_inputs_free(out);
    return st;
}
