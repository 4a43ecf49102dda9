/* The crash-safe journal (append-only JSON Lines, one write()+fsync per document), the resume
 * logic built on it, and the manifest (one JSON file per run or shard, written atomically) with
 * the merge of shard manifests. Exactly-once: a document's outputs are renamed into place before
 * its journal record is appended, so after kill -9 a document is either recorded (and skipped by
 * --resume) or not recorded (and redone, its outputs atomically replaced).
 * Not thread-safe: one owner per journal. */
#include "dp_manifest.h"
#include "dp_batch_impl.h"
#include "dp_alloc.h"
#include "dp_buf.h"
#include "dp_fs.h"
#include "dp_limits.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define JOURNAL_VERSION 1
#define MANIFEST_VERSION 1
#define PATH_MAX_BYTES 4096

const char *dp_input_state_str(enum dp_input_state s) {
    switch (s) {
    case DP_INPUT_PENDING: return "pending";
    case DP_INPUT_OK: return "ok";
    case DP_INPUT_FAILED: return "failed";
    case DP_INPUT_REUSED: return "ok";
    case DP_INPUT_SKIPPED: return "skipped";
    }
    return "unknown";
}

const char *dp_redo_str(enum dp_redo r) {
    switch (r) {
    case DP_REDO_NONE: return "";
    case DP_REDO_NEW: return "new";
    case DP_REDO_FAILED: return "failed before";
    case DP_REDO_INPUT: return "input changed";
    case DP_REDO_SETTINGS: return "settings changed";
    case DP_REDO_OUTPUTS: return "formats or schema changed";
    case DP_REDO_MISSING: return "outputs missing";
    case DP_REDO_N_REASONS: break;
    }
    return "?";
}

/* ---- records --------------------------------------------------------------------------- */

static json_t *record_new(const struct dp_input *d) {
    json_t *r = json_object();
    json_t *outs = json_array();
    json_t *t = json_object();
    if (!r || !outs || !t) {
        json_decref(r);
        json_decref(outs);
        json_decref(t);
        return NULL;
    }
    for (int i = 0; i < d->n_outputs; i++)
        json_array_append_new(outs, json_string(d->outputs[i]));
    json_object_set_new(t, "rasterize", json_real(d->t.rasterize));
    json_object_set_new(t, "vision", json_real(d->t.vision));
    json_object_set_new(t, "prefill", json_real(d->t.prefill));
    json_object_set_new(t, "decode", json_real(d->t.decode));
    json_object_set_new(t, "extract", json_real(d->t.extract));
    json_object_set_new(t, "write", json_real(d->t.write));
    json_object_set_new(t, "total", json_real(d->t.total));
    json_object_set_new(r, "v", json_integer(JOURNAL_VERSION));
    json_object_set_new(r, "name", json_string(d->rel));
    json_object_set_new(r, "path", json_string(d->path));
    if (d->stem)
        json_object_set_new(r, "stem", json_string(d->stem));
    json_object_set_new(r, "sha256", json_string(d->sha256));
    json_object_set_new(r, "bytes", json_integer(d->size));
    json_object_set_new(r, "kind", json_string(d->kind ? d->kind : "unknown"));
    json_object_set_new(r, "status", json_string(dp_input_state_str(d->state)));
    if (d->state == DP_INPUT_FAILED) {
        json_object_set_new(r, "code", json_string(dp_status_str(d->code)));
        json_object_set_new(r, "error", json_string(d->error ? d->error : ""));
    }
    if (d->state == DP_INPUT_SKIPPED)
        json_object_set_new(r, "reason", json_string(d->error ? d->error : ""));
    if (d->state == DP_INPUT_REUSED)
        json_object_set_new(r, "reused", json_true());
    if (d->redo > DP_REDO_NEW && d->state != DP_INPUT_REUSED)
        json_object_set_new(r, "redone", json_string(dp_redo_str(d->redo)));
    if (d->fp_model[0] && (d->state == DP_INPUT_OK || d->state == DP_INPUT_REUSED)) {
        json_object_set_new(r, "fingerprint", json_pack("{ssss}", "model", d->fp_model,
                                                        "output", d->fp_output));
    }
    json_object_set_new(r, "pages", json_integer(d->pages));
    json_object_set_new(r, "pages_blank", json_integer(d->pages_blank));
    json_object_set_new(r, "pages_truncated", json_integer(d->pages_truncated));
    json_object_set_new(r, "pages_repetition", json_integer(d->pages_repetition));
    json_object_set_new(r, "tokens", json_integer(d->tokens_generated));
    json_object_set_new(r, "timings", t);
    json_object_set_new(r, "outputs", outs);
    return r;
}

static double num_or0(json_t *o, const char *k) {
    json_t *v = json_object_get(o, k);
    return json_is_number(v) ? json_number_value(v) : 0.0;
}

static int int_or0(json_t *o, const char *k) {
    json_t *v = json_object_get(o, k);
    json_int_t x = json_is_integer(v) ? json_integer_value(v) : 0;
    return x < 0 || x > DP_MAX_PAGES ? 0 : (int)x;
}

/* Copies a successful record's figures and outputs into d. */
static enum dp_status record_load(struct dp_input *d, json_t *r, struct dp_err *err) {
    d->pages = int_or0(r, "pages");
    d->pages_blank = int_or0(r, "pages_blank");
    d->pages_truncated = int_or0(r, "pages_truncated");
    d->pages_repetition = int_or0(r, "pages_repetition");
    json_t *tok = json_object_get(r, "tokens");
    d->tokens_generated = json_is_integer(tok) ? (int64_t)json_integer_value(tok) : 0;
    json_t *t = json_object_get(r, "timings");
    d->t.rasterize = num_or0(t, "rasterize");
    d->t.vision = num_or0(t, "vision");
    d->t.prefill = num_or0(t, "prefill");
    d->t.decode = num_or0(t, "decode");
    d->t.extract = num_or0(t, "extract");
    d->t.write = num_or0(t, "write");
    d->t.total = num_or0(t, "total");
    json_t *outs = json_object_get(r, "outputs");
    size_t i;
    json_t *o;
    json_array_foreach(outs, i, o) {
        if (json_is_string(o) && dp_input_add_output(d, json_string_value(o), err) != DP_OK)
            return err ? err->code : DP_ERR_NOMEM;
    }
    return DP_OK;
}

/* ---- journal --------------------------------------------------------------------------- */

static enum dp_status mkdirs_for(const char *path, struct dp_err *err) {
    const char *base = dp_path_basename(path);
    if (base == path)
        return DP_OK;
    char *dir = dp_strndup(path, (size_t)(base - path - 1));
    if (!dir)
        return dp_err_set(err, DP_ERR_NOMEM, "%s: out of memory", path);
    enum dp_status st = *dir ? dp_mkdirs(dir, err) : DP_OK;
    dp_free(dir);
    return st;
}

enum dp_status dp_journal_open(struct dp_journal *j, const char *path, struct dp_err *err) {
    j->fd = -1;
    j->path = NULL;
    enum dp_status st = mkdirs_for(path, err);
    if (st != DP_OK)
        return st;
    int fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return dp_err_set_errno(err, DP_ERR_IO, errno, "%s: cannot open journal", path);
    /* A record torn by kill -9 lacks its newline: terminate it so the next record stays whole. */
    off_t end = lseek(fd, 0, SEEK_END);
    char last = '\n';
    if (end > 0 && pread(fd, &last, 1, end - 1) == 1 && last != '\n') {
        if (write(fd, "\n", 1) != 1) {
            int e = errno;
            close(fd);
            return dp_err_set_errno(err, DP_ERR_IO, e, "%s: cannot repair journal", path);
        }
    }
    j->path = dp_strdup(path);
    if (!j->path) {
        close(fd);
        return dp_err_set(err, DP_ERR_NOMEM, "%s: out of memory", path);
    }
    j->fd = fd;
    return DP_OK;
}

enum dp_status dp_journal_append(struct dp_journal *j, const struct dp_input *d,
                                 struct dp_err *err) {
    json_t *r = record_new(d);
    char *line = r ? json_dumps(r, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    json_decref(r);
    if (!line)
        return dp_err_set(err, DP_ERR_NOMEM, "%s: out of memory writing the journal", d->rel);
    size_t len = strlen(line);
    struct dp_buf b;
    dp_buf_init(&b, DP_MAX_TEXT_BYTES);
    dp_buf_append(&b, line, len);
    dp_buf_putc(&b, '\n');
    free(line); /* jansson's allocator */
    if (b.status != DP_OK) {
        dp_buf_free(&b);
        return dp_err_set(err, DP_ERR_NOMEM, "%s: out of memory writing the journal", d->rel);
    }
    /* One write() of the whole line on an O_APPEND descriptor: concurrent appenders (other
     * processes of other shards use their own files) never interleave inside a record. */
    ssize_t w = write(j->fd, b.data, b.len);
    int e = errno;
    size_t want = b.len;
    dp_buf_free(&b);
    if (w < 0 || (size_t)w != want)
        return dp_err_set_errno(err, DP_ERR_IO, w < 0 ? e : EIO, "%s: journal write failed",
                                j->path);
    if (fsync(j->fd) != 0)
        return dp_err_set_errno(err, DP_ERR_IO, errno, "%s: journal fsync failed", j->path);
    return DP_OK;
}

void dp_journal_close(struct dp_journal *j) {
    if (j->fd >= 0)
        close(j->fd);
    j->fd = -1;
    DP_FREE(j->path);
}

static bool outputs_exist(const struct dp_input *d, const char *out_dir) {
    struct dp_buf b;
    dp_buf_init(&b, PATH_MAX_BYTES);
    bool ok = true;
    for (int i = 0; i < d->n_outputs && ok; i++) {
        dp_buf_reset(&b);
        dp_buf_appendf(&b, "%s/%s", out_dir, d->outputs[i]);
        struct stat sb;
        ok = b.status == DP_OK && stat(b.data, &sb) == 0;
    }
    dp_buf_free(&b);
    return ok;
}

/* Whether the document's raw answers are kept in its output folder (<stem>/raw/pages.json). */
static bool raw_kept(const struct dp_input *d, const char *out_dir) {
    struct dp_buf b;
    dp_buf_init(&b, PATH_MAX_BYTES);
    dp_buf_appendf(&b, "%s/%s/raw/pages.json", out_dir, d->stem ? d->stem : "");
    struct stat sb;
    bool ok = b.status == DP_OK && d->stem && stat(b.data, &sb) == 0 && S_ISREG(sb.st_mode);
    dp_buf_free(&b);
    return ok;
}

enum dp_status dp_journal_resume(struct dp_inputs *docs, const char *path, const char *out_dir,
                                 int *n_reused, struct dp_err *err) {
    *n_reused = 0;
    struct stat sb;
    if (stat(path, &sb) != 0)
        return DP_OK; /* first run */
    char *text = NULL;
    size_t len = 0;
    enum dp_status st = dp_file_read(path, DP_MAX_JOURNAL_BYTES, &text, &len, err);
    if (st != DP_OK)
        return st;
    /* name -> last record (later records win: a redone document supersedes its old record). */
    json_t *last = json_object();
    if (!last) {
        dp_free(text);
        return dp_err_set(err, DP_ERR_NOMEM, "%s: out of memory", path);
    }
    char *p = text;
    while (p < text + len) {
        char *nl = memchr(p, '\n', (size_t)(text + len - p));
        if (!nl)
            break; /* torn last record: the document was not finished */
        json_t *r = json_loadb(p, (size_t)(nl - p), 0, NULL);
        p = nl + 1;
        json_t *name = json_object_get(r, "name");
        if (json_is_object(r) && json_is_string(name))
            json_object_set(last, json_string_value(name), r);
        json_decref(r);
    }
    dp_free(text);
    for (int i = 0; i < docs->n && st == DP_OK; i++) {
        struct dp_input *d = &docs->items[i];
        if (d->state != DP_INPUT_PENDING || !d->sha256[0])
            continue;
        json_t *r = json_object_get(last, d->rel);
        if (!r) {
            d->redo = DP_REDO_NEW;
            continue;
        }
        json_t *sha = json_object_get(r, "sha256");
        json_t *status = json_object_get(r, "status");
        if (!json_is_string(status) || strcmp(json_string_value(status), "ok")) {
            d->redo = DP_REDO_FAILED;
            continue;
        }
        if (!json_is_string(sha) || strcmp(json_string_value(sha), d->sha256)) {
            d->redo = DP_REDO_INPUT;
            continue;
        }
        json_t *stem = json_object_get(r, "stem");
        if (d->stem && json_is_string(stem) && strcmp(json_string_value(stem), d->stem)) {
            d->redo = DP_REDO_MISSING; /* named differently now: redo */
            continue;
        }
        /* Everything that determines the outputs must be the same; a record without
         * fingerprints (an older docproc) matches nothing. */
        json_t *fp = json_object_get(r, "fingerprint");
        const char *fm = json_string_value(json_object_get(fp, "model"));
        const char *fo = json_string_value(json_object_get(fp, "output"));
        if (!fm || strcmp(fm, d->fp_model)) {
            d->redo = DP_REDO_SETTINGS;
            continue;
        }
        struct dp_input probe = *d;
        probe.outputs = NULL;
        probe.n_outputs = 0;
        st = record_load(&probe, r, err);
        bool have = st == DP_OK && outputs_exist(&probe, out_dir);
        bool same_out = fo && !strcmp(fo, d->fp_output);
        if (have && same_out) {
            *d = probe;
            d->state = DP_INPUT_REUSED;
            d->redo = DP_REDO_NONE;
            (*n_reused)++;
            continue;
        }
        for (int k = 0; k < probe.n_outputs; k++)
            dp_free(probe.outputs[k]);
        dp_free(probe.outputs);
        if (!same_out && raw_kept(d, out_dir)) {
            d->redo = DP_REDO_OUTPUTS;
            d->from_kept_raw = true;
        } else {
            d->redo = DP_REDO_MISSING;
        }
    }
    json_decref(last);
    return st;
}

/* ---- manifest -------------------------------------------------------------------------- */

/* "created": now, or $SOURCE_DATE_EPOCH like the stamps (reproducible manifests) */
static void iso_now(char out[32]) { dp__created_now(out, 32); }

static json_t *counts_new(json_t *docs) {
    json_int_t ok = 0, failed = 0, reused = 0, pending = 0, skipped = 0;
    size_t i;
    json_t *d;
    json_array_foreach(docs, i, d) {
        const char *s = json_string_value(json_object_get(d, "status"));
        if (s && !strcmp(s, "ok")) {
            ok++;
            if (json_is_true(json_object_get(d, "reused")))
                reused++;
        } else if (s && !strcmp(s, "failed")) {
            failed++;
        } else if (s && !strcmp(s, "skipped")) {
            skipped++;
        } else {
            pending++;
        }
    }
    return json_pack("{sIsIsIsIsIsI}", "total", (json_int_t)json_array_size(docs), "ok", ok,
                     "failed", failed, "skipped", skipped, "reused", reused, "pending", pending);
}

static enum dp_status dump_atomic(const char *path, json_t *m, struct dp_err *err) {
    enum dp_status st = mkdirs_for(path, err);
    if (st != DP_OK)
        return st;
    char *s = json_dumps(m, JSON_INDENT(2) | JSON_ENSURE_ASCII);
    if (!s)
        return dp_err_set(err, DP_ERR_NOMEM, "%s: out of memory", path);
    size_t n = strlen(s);
    st = dp_file_write_atomic(path, s, n, true, err);
    free(s); /* jansson's allocator */
    return st;
}

/* Takes ownership of docs. */
static json_t *manifest_new(const char *command, const char *schema, const char *model, int k,
                            int n, double wall_s, json_t *docs) {
    char now[32];
    iso_now(now);
    json_t *m = json_object();
    json_t *shard = json_object();
    json_t *counts = counts_new(docs);
    if (!m || !shard || !counts) {
        json_decref(m);
        json_decref(shard);
        json_decref(counts);
        json_decref(docs);
        return NULL;
    }
    json_object_set_new(shard, "k", json_integer(k));
    json_object_set_new(shard, "n", json_integer(n));
    json_object_set_new(m, "manifest_version", json_integer(MANIFEST_VERSION));
    json_object_set_new(m, "docproc_version", json_string(DP_VERSION));
    json_object_set_new(m, "created", json_string(now));
    json_object_set_new(m, "command", json_string(command ? command : ""));
    json_object_set_new(m, "schema", json_string(schema ? schema : ""));
    json_object_set_new(m, "model", json_string(model ? model : ""));
    json_object_set_new(m, "shard", shard);
    json_object_set_new(m, "wall_s", json_real(wall_s));
    json_object_set_new(m, "counts", counts);
    json_object_set_new(m, "documents", docs);
    return m;
}

enum dp_status dp_manifest_write(const char *path, const struct dp_inputs *docs,
                                 const struct dp_manifest_info *info, struct dp_err *err) {
    json_t *arr = json_array();
    if (!arr)
        return dp_err_set(err, DP_ERR_NOMEM, "%s: out of memory", path);
    for (int i = 0; i < docs->n; i++) {
        json_t *r = record_new(&docs->items[i]);
        if (!r || json_array_append_new(arr, r) != 0) {
            json_decref(arr);
            return dp_err_set(err, DP_ERR_NOMEM, "%s: out of memory", path);
        }
    }
    json_t *m = manifest_new(info->command, info->schema, info->model, info->shard_k,
                             info->shard_n, info->wall_s, arr);
    if (!m)
        return dp_err_set(err, DP_ERR_NOMEM, "%s: out of memory", path);
    enum dp_status st = dump_atomic(path, m, err);
    json_decref(m);
    return st;
}

/* ---- merge ----------------------------------------------------------------------------- */

static int cmp_doc_name(const void *a, const void *b) {
    const char *x = json_string_value(json_object_get(*(json_t *const *)a, "name"));
    const char *y = json_string_value(json_object_get(*(json_t *const *)b, "name"));
    return strcmp(x ? x : "", y ? y : "");
}

enum dp_status dp_manifest_merge(const char *out, char *const *inputs, int n_inputs,
                                 char **summary, struct dp_err *err) {
    *summary = NULL;
    json_t *all = json_array();
    json_t *seen = json_object(); /* name -> manifest file */
    bool *have = NULL;
    int shard_n = 0;
    double wall = 0;
    enum dp_status st = DP_OK;
    json_t *first = NULL;
    if (!all || !seen)
        st = dp_err_set(err, DP_ERR_NOMEM, "out of memory merging manifests");
    for (int i = 0; i < n_inputs && st == DP_OK; i++) {
        json_error_t je;
        json_t *m = json_load_file(inputs[i], 0, &je);
        if (!json_is_object(m)) {
            json_decref(m);
            st = dp_err_set(err, DP_ERR_FORMAT, "%s: not a manifest: %s (line %d)", inputs[i],
                            je.text, je.line);
            break;
        }
        json_t *sh = json_object_get(m, "shard");
        json_int_t k = json_integer_value(json_object_get(sh, "k"));
        json_int_t n = json_integer_value(json_object_get(sh, "n"));
        if (n < 1 || n > DP_MAX_SHARDS || k < 1 || k > n || (shard_n && n != shard_n)) {
            st = dp_err_set(err, DP_ERR_FORMAT, "%s: shard %lld/%lld does not match %d shards",
                            inputs[i], (long long)k, (long long)n, shard_n);
        } else if (!shard_n) {
            shard_n = (int)n;
            have = dp_calloc((size_t)n, sizeof *have);
            if (!have)
                st = dp_err_set(err, DP_ERR_NOMEM, "out of memory merging manifests");
        }
        if (st == DP_OK && have[k - 1])
            st = dp_err_set(err, DP_ERR_FORMAT, "%s: shard %lld/%d given twice", inputs[i],
                            (long long)k, shard_n);
        if (st == DP_OK) {
            have[k - 1] = true;
            double w = json_number_value(json_object_get(m, "wall_s"));
            wall = w > wall ? w : wall;
        }
        size_t j;
        json_t *d;
        json_array_foreach(json_object_get(m, "documents"), j, d) {
            if (st != DP_OK)
                break;
            const char *name = json_string_value(json_object_get(d, "name"));
            if (!name) {
                st = dp_err_set(err, DP_ERR_FORMAT, "%s: document %zu has no name", inputs[i], j);
            } else if (json_object_get(seen, name)) {
                st = dp_err_set(err, DP_ERR_FORMAT, "%s: document '%s' also in %s", inputs[i],
                                name, json_string_value(json_object_get(seen, name)));
            } else {
                json_object_set_new(seen, name, json_string(inputs[i]));
                json_array_append(all, d);
            }
        }
        if (st == DP_OK && !first)
            first = json_incref(m);
        json_decref(m);
    }
    for (int k = 0; st == DP_OK && k < shard_n; k++)
        if (!have[k])
            st = dp_err_set(err, DP_ERR_FORMAT, "shard %d/%d is missing", k + 1, shard_n);
    if (st == DP_OK && !shard_n)
        st = dp_err_set(err, DP_ERR_USAGE, "no manifests to merge");
    if (st == DP_OK) {
        size_t nd = json_array_size(all);
        json_t **v = dp_reallocarray(NULL, nd ? nd : 1, sizeof *v);
        json_t *sorted = json_array();
        if (!v || !sorted) {
            st = dp_err_set(err, DP_ERR_NOMEM, "out of memory merging manifests");
        } else {
            for (size_t j = 0; j < nd; j++)
                v[j] = json_array_get(all, j);
            qsort(v, nd, sizeof *v, cmp_doc_name);
            for (size_t j = 0; j < nd; j++)
                json_array_append(sorted, v[j]);
        }
        dp_free(v);
        json_t *m = sorted ? manifest_new(json_string_value(json_object_get(first, "command")),
                                          json_string_value(json_object_get(first, "schema")),
                                          json_string_value(json_object_get(first, "model")), 1,
                                          1, wall, sorted)
                           : NULL;
        if (st == DP_OK && !m)
            st = dp_err_set(err, DP_ERR_NOMEM, "out of memory merging manifests");
        if (st == DP_OK) {
            json_object_set_new(m, "merged_shards", json_integer(shard_n));
            st = dump_atomic(out, m, err);
        }
        if (st == DP_OK) {
            json_t *c = json_object_get(m, "counts");
            struct dp_buf b;
            dp_buf_init(&b, PATH_MAX_BYTES);
            dp_buf_appendf(&b, "merged %d shards: %lld documents, %lld ok, %lld failed, %lld pending",
                           shard_n, (long long)json_integer_value(json_object_get(c, "total")),
                           (long long)json_integer_value(json_object_get(c, "ok")),
                           (long long)json_integer_value(json_object_get(c, "failed")),
                           (long long)json_integer_value(json_object_get(c, "pending")));
            *summary = dp_buf_steal(&b, NULL);
        }
        json_decref(m);
    }
    json_decref(first);
    json_decref(all);
    json_decref(seen);
    dp_free(have);
    return st;
}
