/* What determines a document's outputs, as two fingerprints that --resume compares with the
 * journal: the model fingerprint (model files, weights, prompt, render, page selection and
 * sampling settings: whatever changes the raw answers) and the output fingerprint (schema,
 * formats, command, docproc's output version: whatever changes the files made from the
 * answers). Also the checkpoint digest behind the stamp's model.sha256, hashed once and cached
 * beside the journal per file by size and mtime.
 * Thread-safe: no shared state. */
#include "dp_batch_impl.h"
#include "dp_alloc.h"
#include "dp_buf.h"
#include "dp_fs.h"
#include "dp_limits.h"
#include "dp_out.h"
#include "vl_tools.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define FP_PATH_BYTES 4096
#define FP_MAX_MODEL_FILES 256
#define FP_CACHE_MAX_BYTES ((size_t)1 << 20)
/* Bump when docproc's outputs change for the same answers and settings (forces re-extraction). */
#define FP_OUTPUT_VERSION 1
/* The weights variant when --weights is not given: the stored bf16 tensors. */
#define FP_DEFAULT_WEIGHTS "bf16"

static const char *weights_name(int w) {
    return w < 0 ? FP_DEFAULT_WEIGHTS : vl_wformat_name((enum vl_wformat)w);
}

static int64_t mtime_ns(const struct stat *sb) {
    return (int64_t)sb->st_mtim.tv_sec * 1000000000 + (int64_t)sb->st_mtim.tv_nsec;
}

/* One model file to hash: key (the name in the digest list and the cache) and its path. */
static enum dp_status add_file(char **keys, char **paths, size_t *n, const char *key,
                               const char *path, const char *what, struct dp_err *err) {
    if (*n == FP_MAX_MODEL_FILES)
        return dp_err_set(err, DP_ERR_LIMIT, "%s: more than %d files", what, FP_MAX_MODEL_FILES);
    keys[*n] = dp_strdup(key);
    paths[*n] = dp_strdup(path);
    if (!keys[*n] || !paths[*n]) {
        dp_free(keys[*n]);
        dp_free(paths[*n]);
        return dp_err_set(err, DP_ERR_NOMEM, "%s: out of memory", what);
    }
    (*n)++;
    return DP_OK;
}

/* Sorts keys (and paths with them) by key. */
static void sort_files(char **keys, char **paths, size_t n) {
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && strcmp(keys[j - 1], keys[j]) > 0; j--) {
            char *k = keys[j], *p = paths[j];
            keys[j] = keys[j - 1];
            paths[j] = paths[j - 1];
            keys[j - 1] = k;
            paths[j - 1] = p;
        }
}

enum dp_status dp__model_digest(char out[DP_SHA256_HEX_LEN + 1], const char *model_dir,
                                const char *mmproj, const char *cache_path, char **cache_out,
                                struct dp_err *err) {
    out[0] = '\0';
    if (cache_out)
        *cache_out = NULL;
    char *names[FP_MAX_MODEL_FILES], *paths[FP_MAX_MODEL_FILES];
    size_t n = 0;
    enum dp_status st = DP_OK;
    struct stat msb;
    struct dp_buf path;
    dp_buf_init(&path, FP_PATH_BYTES);
    if (stat(model_dir, &msb) == 0 && S_ISREG(msb.st_mode)) { /* a GGUF file */
        st = add_file(names, paths, &n, dp_path_basename(model_dir), model_dir, model_dir, err);
    } else {
        DIR *dh = opendir(model_dir);
        if (!dh) {
            dp_buf_free(&path);
            return dp_err_set_errno(err, DP_ERR_MODEL, errno,
                                    "%s: cannot open the model directory", model_dir);
        }
        for (struct dirent *de = readdir(dh); de && st == DP_OK; de = readdir(dh)) {
            if (de->d_name[0] == '.')
                continue;
            dp_buf_reset(&path);
            dp_buf_appendf(&path, "%s/%s", model_dir, de->d_name);
            st = path.status != DP_OK
                     ? dp_err_set(err, DP_ERR_NOMEM, "%s: out of memory", model_dir)
                     : add_file(names, paths, &n, de->d_name, path.data, model_dir, err);
        }
        closedir(dh);
    }
    if (st == DP_OK && mmproj) { /* --mmproj: part of the model wherever it lives */
        dp_buf_reset(&path);
        dp_buf_appendf(&path, "mmproj:%s", dp_path_basename(mmproj));
        st = path.status != DP_OK ? dp_err_set(err, DP_ERR_NOMEM, "%s: out of memory", mmproj)
                                  : add_file(names, paths, &n, path.data, mmproj, mmproj, err);
    }
    if (st == DP_OK)
        sort_files(names, paths, n);
    json_t *old = NULL;
    if (cache_path) {
        json_t *c = json_load_file(cache_path, 0, NULL);
        json_t *files = json_object_get(c, "files");
        const char *dir = json_string_value(json_object_get(c, "model_dir"));
        if (json_is_object(files) && dir && !strcmp(dir, model_dir))
            old = json_incref(files);
        json_decref(c);
    }
    json_t *files = json_object();
    struct dp_buf list;
    dp_buf_init(&list, DP_MAX_TEXT_BYTES);
    for (size_t i = 0; i < n && st == DP_OK; i++) {
        struct stat sb;
        if (stat(paths[i], &sb) != 0 || !S_ISREG(sb.st_mode))
            continue;
        char hex[DP_SHA256_HEX_LEN + 1] = "";
        json_t *o = json_object_get(old, names[i]);
        const char *h = json_string_value(json_object_get(o, "sha256"));
        if (h && strlen(h) == DP_SHA256_HEX_LEN &&
            json_integer_value(json_object_get(o, "size")) == (json_int_t)sb.st_size &&
            json_integer_value(json_object_get(o, "mtime_ns")) == (json_int_t)mtime_ns(&sb)) {
            memcpy(hex, h, sizeof hex);
        } else {
            st = dp_sha256_file(hex, NULL, paths[i], err);
            if (st != DP_OK) {
                err->code = st = DP_ERR_MODEL;
                break;
            }
        }
        dp_buf_appendf(&list, "%s %lld %s\n", names[i], (long long)sb.st_size, hex);
        json_object_set_new(files, names[i],
                            json_pack("{sIsIss}", "size", (json_int_t)sb.st_size, "mtime_ns",
                                      (json_int_t)mtime_ns(&sb), "sha256", hex));
    }
    if (st == DP_OK && list.status != DP_OK)
        st = dp_err_set(err, DP_ERR_NOMEM, "%s: out of memory hashing the model", model_dir);
    if (st == DP_OK)
        dp_sha256_hex(out, list.data ? list.data : "", list.len);
    if (st == DP_OK && cache_out) {
        json_t *c = json_pack("{sssO}", "model_dir", model_dir, "files", files);
        char *s = c ? json_dumps(c, JSON_INDENT(1) | JSON_SORT_KEYS) : NULL;
        json_decref(c);
        *cache_out = s ? dp_strdup(s) : NULL;
        free(s); /* jansson's allocator */
    }
    dp_buf_free(&list);
    dp_buf_free(&path);
    json_decref(files);
    json_decref(old);
    for (size_t i = 0; i < n; i++) {
        dp_free(names[i]);
        dp_free(paths[i]);
    }
    return st;
}

void dp__fingerprints(char model_fp[DP_SHA256_HEX_LEN + 1], char out_fp[DP_SHA256_HEX_LEN + 1],
                      const struct dp_batch_opts *o, const struct sc_schema *schema,
                      const char *model_digest) {
    struct dp_buf b;
    dp_buf_init(&b, DP_MAX_TEXT_BYTES);
    /* the answers: model files, the prompt, the pixels and the generation settings */
    dp_buf_appendf(&b, "model=%s\nweights=%s\nvision_weights=%s\n",
                   o->from_raw ? "from-raw" : model_digest, weights_name(o->gen.weights),
                   weights_name(o->gen.vision_weights));
    dp_buf_appendf(&b, "prompt=%zu:", strlen(schema->prompt ? schema->prompt : ""));
    dp_buf_puts(&b, schema->prompt ? schema->prompt : "");
    dp_buf_appendf(&b, "\nsystem=%zu:", strlen(schema->system_prompt ? schema->system_prompt : ""));
    dp_buf_puts(&b, schema->system_prompt ? schema->system_prompt : "");
    dp_buf_appendf(&b, "\ndpi=%.17g\nmin_pixels=%lld\nmax_pixels=%lld\nmax_decode_pixels=%lld\n",
                   (double)o->ingest.dpi, (long long)o->ingest.min_pixels,
                   (long long)o->ingest.max_pixels, (long long)o->ingest.max_decode_pixels);
    dp_buf_appendf(&b, "pages=%s\nkeep_blank=%d\npage_timeout=%.17g\n", o->pages ? o->pages : "",
                   (int)o->keep_blank, o->page_timeout_s);
    dp_buf_appendf(&b, "max_new_tokens=%ld\ntemperature=%.17g\ntop_k=%ld\ntop_p=%.17g\n"
                       "repetition_penalty=%.17g\nseed=%llu\n",
                   o->gen.max_new_tokens, o->gen.temperature, o->gen.top_k, o->gen.top_p,
                   o->gen.repetition_penalty, (unsigned long long)o->gen.seed);
    dp_sha256_hex(model_fp, b.data ? b.data : "", b.len);
    /* the files made from the answers */
    dp_buf_reset(&b);
    dp_buf_appendf(&b, "docproc_output=%d\nversion=%s\ncommand=%d\nschema=%s\nformats=%u\nzip=%d\n"
                       "strict=%d\ncsv=%d,%d,%d\npdfa=%d\n",
                   FP_OUTPUT_VERSION, DP_VERSION, (int)o->cmd, schema->hash,
                   o->formats, (int)o->zip_per_doc, (int)o->strict, (int)o->csv.span,
                   (int)o->csv.formula_safe, (int)o->csv.bom, (int)o->pdfa);
    dp_sha256_hex(out_fp, b.data ? b.data : "", b.len);
    dp_buf_free(&b);
}
