/* safetensors files: open (mmap, read-only) with full validation of the untrusted header, and
 * atomic writing. Format (spec §1.5): 8-byte little-endian header length N, N bytes of JSON
 * {name: {dtype, shape, data_offsets:[begin,end]}, "__metadata__": {...}}, then the data section.
 * Validation: N against the file size and VL_ST_MAX_HEADER_BYTES, strict JSON with duplicate keys
 * rejected, every dtype known, dims >= 0 with overflow-checked products, offsets inside the data
 * section, end - begin == numel * dtype size, no two tensors overlapping. Alignment policy: the
 * format does not align tensors (the Python writer packs them; the reference goldens hold int64
 * tensors at odd offsets), so unaligned data is accepted here and readers must not cast it to
 * typed pointers blindly: vl_weights copies any misaligned weight into an aligned buffer.
 * Errors name the file and tensor.
 * Thread-safety: an open file is immutable; concurrent readers are fine. */
#include "vl_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define ST_LEN_BYTES 8                /* the little-endian u64 header length */
#define ST_METADATA_KEY "__metadata__"
#define ST_FILE_MODE 0644             /* written files: rw-r--r-- */
#define ST_TMP_SUFFIX ".tmp.XXXXXX"   /* mkstemp template appended to the target path */

struct vl_st_file {
    char *path;                 /* for messages; "<memory>" for vl_st_open_mem */
    void *map;                  /* mmap base (NULL for memory buffers) */
    size_t map_size;
    const uint8_t *base;        /* whole file */
    size_t size;
    struct vl_st_entry *entries; /* [n] */
    char **names;               /* [n] owned copies */
    int n;
    GHashTable *index;          /* name -> GINT_TO_POINTER(i + 1) */
};

/* ---- validation ------------------------------------------------------------------------ */

static uint64_t read_le64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = ST_LEN_BYTES - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

struct span {
    size_t begin, end;
    int idx;
};

static int span_cmp(const void *a, const void *b) {
    const struct span *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return 0;
}

/* Reads a non-negative JSON integer. */
static bool get_nonneg(json_t *v, int64_t *out) {
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return false;
    *out = (int64_t)json_integer_value(v);
    return true;
}

static enum vl_status parse_entry(struct vl_st_file *f, int i, const char *name, json_t *info,
                                  const uint8_t *data, size_t data_size, struct vl_error *err) {
    const char *path = f->path;
    if (!json_is_object(info))
        return vl__err(err, VL_ERR_FORMAT, "%s: tensor '%s': header entry is not an object", path,
                       name);
    const char *key;
    json_t *val;
    json_object_foreach(info, key, val) {
        if (strcmp(key, "dtype") && strcmp(key, "shape") && strcmp(key, "data_offsets"))
            return vl__err(err, VL_ERR_FORMAT, "%s: tensor '%s': unknown header field '%s'", path,
                           name, key);
    }
    json_t *jd = json_object_get(info, "dtype");
    json_t *js = json_object_get(info, "shape");
    json_t *jo = json_object_get(info, "data_offsets");
    if (!json_is_string(jd) || !json_is_array(js) || !json_is_array(jo))
        return vl__err(err, VL_ERR_FORMAT,
                       "%s: tensor '%s': needs string dtype, array shape and array data_offsets",
                       path, name);
    enum vl_dtype dt;
    if (!vl__dtype_from_name(json_string_value(jd), &dt))
        return vl__err(err, VL_ERR_FORMAT, "%s: tensor '%s': unknown dtype '%.32s'", path, name,
                       json_string_value(jd));
    size_t ndim = json_array_size(js);
    if (ndim > VL_ST_MAX_DIMS)
        return vl__err(err, VL_ERR_FORMAT, "%s: tensor '%s': %zu dimensions, max %d", path, name,
                       ndim, VL_ST_MAX_DIMS);
    struct vl_st_entry *e = &f->entries[i];
    e->name = f->names[i];
    e->dtype = vl__dtype_name(dt);
    e->ndim = (int)ndim;
    size_t numel = 1;
    for (size_t d = 0; d < ndim; d++) {
        int64_t dim;
        if (!get_nonneg(json_array_get(js, d), &dim))
            return vl__err(err, VL_ERR_FORMAT,
                           "%s: tensor '%s': shape[%zu] is not a non-negative integer", path, name,
                           d);
        e->shape[d] = dim;
        if ((uint64_t)dim > SIZE_MAX || !vl__size_mul(&numel, numel, (size_t)dim))
            return vl__err(err, VL_ERR_FORMAT, "%s: tensor '%s': element count overflows", path,
                           name);
    }
    size_t nbytes;
    if (!vl__size_mul(&nbytes, numel, vl__dtype_size(dt)))
        return vl__err(err, VL_ERR_FORMAT, "%s: tensor '%s': byte size overflows", path, name);
    int64_t begin, end;
    if (json_array_size(jo) != 2 || !get_nonneg(json_array_get(jo, 0), &begin) ||
        !get_nonneg(json_array_get(jo, 1), &end) || begin > end)
        return vl__err(err, VL_ERR_FORMAT,
                       "%s: tensor '%s': data_offsets must be [begin, end] with 0 <= begin <= end",
                       path, name);
    if ((uint64_t)end > data_size)
        return vl__err(err, VL_ERR_FORMAT,
                       "%s: tensor '%s': data_offsets [%lld, %lld] beyond the data section of %zu "
                       "bytes",
                       path, name, (long long)begin, (long long)end, data_size);
    if ((uint64_t)(end - begin) != nbytes)
        return vl__err(err, VL_ERR_FORMAT,
                       "%s: tensor '%s': %lld data bytes but shape x %s needs %zu", path, name,
                       (long long)(end - begin), e->dtype, nbytes);
    e->data = data + begin;
    e->nbytes = nbytes;
    return VL_OK;
}

static enum vl_status check_overlaps(const struct vl_st_file *f, struct vl_error *err) {
    if (f->n == 0)
        return VL_OK;
    struct span *s = vl__calloc((size_t)f->n, sizeof *s);
    if (!s)
        return vl__err(err, VL_ERR_NOMEM, "%s: out of memory", f->path);
    int m = 0;
    for (int i = 0; i < f->n; i++) {
        if (!f->entries[i].nbytes)
            continue; /* empty tensors occupy no bytes */
        s[m].begin = (size_t)((const uint8_t *)f->entries[i].data - f->base);
        s[m].end = s[m].begin + f->entries[i].nbytes;
        s[m].idx = i;
        m++;
    }
    qsort(s, (size_t)m, sizeof *s, span_cmp);
    enum vl_status st = VL_OK;
    for (int i = 1; i < m; i++) {
        if (s[i].begin < s[i - 1].end) {
            st = vl__err(err, VL_ERR_FORMAT, "%s: tensors '%s' and '%s' overlap in the data section",
                         f->path, f->entries[s[i - 1].idx].name, f->entries[s[i].idx].name);
            break;
        }
    }
    vl__free(s);
    return st;
}

static enum vl_status parse_header(struct vl_st_file *f, struct vl_error *err) {
    if (f->size < ST_LEN_BYTES)
        return vl__err(err, VL_ERR_FORMAT, "%s: %zu bytes, too short for a safetensors file",
                       f->path, f->size);
    uint64_t hlen = read_le64(f->base);
    if (hlen > VL_ST_MAX_HEADER_BYTES)
        return vl__err(err, VL_ERR_FORMAT, "%s: header length %llu exceeds the maximum %llu",
                       f->path, (unsigned long long)hlen,
                       (unsigned long long)VL_ST_MAX_HEADER_BYTES);
    if (hlen > f->size - ST_LEN_BYTES)
        return vl__err(err, VL_ERR_FORMAT, "%s: header length %llu beyond the file size %zu",
                       f->path, (unsigned long long)hlen, f->size);
    if (hlen < 2 || f->base[ST_LEN_BYTES] != '{')
        return vl__err(err, VL_ERR_FORMAT, "%s: header is not a JSON object", f->path);
    const uint8_t *data = f->base + ST_LEN_BYTES + hlen;
    size_t data_size = f->size - ST_LEN_BYTES - (size_t)hlen;

    json_error_t jerr;
    json_t *root = json_loadb((const char *)f->base + ST_LEN_BYTES, (size_t)hlen,
                              JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return vl__err(err, VL_ERR_FORMAT, "%s: header JSON: %s (at byte %d)", f->path, jerr.text,
                       jerr.position);
    enum vl_status st = VL_OK;
    if (!json_is_object(root)) {
        st = vl__err(err, VL_ERR_FORMAT, "%s: header is not a JSON object", f->path);
        goto done;
    }
    size_t n = json_object_size(root);
    json_t *meta = json_object_get(root, ST_METADATA_KEY);
    if (meta) {
        if (!json_is_object(meta)) {
            st = vl__err(err, VL_ERR_FORMAT, "%s: %s is not an object", f->path, ST_METADATA_KEY);
            goto done;
        }
        n--;
    }
    if (n > VL_ST_MAX_TENSORS) {
        st = vl__err(err, VL_ERR_LIMIT, "%s: %zu tensors, max %d", f->path, n, VL_ST_MAX_TENSORS);
        goto done;
    }
    f->entries = vl__calloc(n ? n : 1, sizeof *f->entries);
    f->names = vl__calloc(n ? n : 1, sizeof *f->names);
    f->index = g_hash_table_new(g_str_hash, g_str_equal);
    if (!f->entries || !f->names) {
        st = vl__err(err, VL_ERR_NOMEM, "%s: out of memory for %zu tensors", f->path, n);
        goto done;
    }
    const char *key;
    json_t *val;
    int i = 0;
    json_object_foreach(root, key, val) {
        if (!strcmp(key, ST_METADATA_KEY))
            continue;
        if (!key[0]) {
            st = vl__err(err, VL_ERR_FORMAT, "%s: a tensor has an empty name", f->path);
            goto done;
        }
        f->names[i] = vl__strdup(key);
        if (!f->names[i]) {
            st = vl__err(err, VL_ERR_NOMEM, "%s: out of memory", f->path);
            goto done;
        }
        f->n = i + 1; /* names[0..n) are owned from here on */
        st = parse_entry(f, i, f->names[i], val, data, data_size, err);
        if (st != VL_OK)
            goto done;
        g_hash_table_insert(f->index, f->names[i], GINT_TO_POINTER(i + 1));
        i++;
    }
    st = check_overlaps(f, err);
done:
    json_decref(root);
    return st;
}

/* ---- open / close / lookup ------------------------------------------------------------- */

void vl_st_close(struct vl_st_file *f) {
    if (!f)
        return;
    if (f->index)
        g_hash_table_destroy(f->index);
    for (int i = 0; i < f->n; i++)
        vl__free(f->names[i]);
    vl__free(f->names);
    vl__free(f->entries);
    if (f->map)
        munmap(f->map, f->map_size);
    vl__free(f->path);
    vl__free(f);
}

static enum vl_status finish_open(struct vl_st_file *f, struct vl_st_file **out,
                                  struct vl_error *err) {
    enum vl_status st = parse_header(f, err);
    if (st != VL_OK) {
        vl_st_close(f);
        return st;
    }
    *out = f;
    return VL_OK;
}

/* Maps the file read-only and asks for huge pages. Where the page cache can hold 2 MiB folios
 * (recent Linux on ext4 or XFS), cold faults then read whole 2 MiB folios even with a small
 * read-ahead, and the kernel (which aligns such mappings to 2 MiB itself) maps each with one
 * PMD entry: decode streams the weights with 1/512 of the page walks (docs/performance.md, "Huge
 * pages for the weights"). The advice is a hint; without THP the mapping works as it is. */
static void *map_file(int fd, size_t size) {
    void *m = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m != MAP_FAILED)
        vl__advise_huge(m, size);
    return m;
}

enum vl_status vl_st_open(struct vl_st_file **out, const char *path, struct vl_error *err) {
    *out = NULL;
    struct vl_st_file *f = vl__calloc(1, sizeof *f);
    if (!f || !(f->path = vl__strdup(path))) {
        vl__free(f);
        return vl__err(err, VL_ERR_NOMEM, "%s: out of memory", path);
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        vl_st_close(f);
        return vl__err(err, VL_ERR_IO, "%s: %s", path, strerror(e));
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        vl_st_close(f);
        return vl__err(err, VL_ERR_IO, "%s: not a regular file", path);
    }
    f->size = (size_t)sb.st_size;
    if (f->size >= ST_LEN_BYTES) {
        void *m = map_file(fd, f->size);
        if (m == MAP_FAILED) {
            int e = errno;
            close(fd);
            vl_st_close(f);
            return vl__err(err, VL_ERR_IO, "%s: mmap of %zu bytes: %s", path, (size_t)sb.st_size,
                           strerror(e));
        }
        f->map = m;
        f->map_size = f->size;
        f->base = m;
    }
    close(fd);
    return finish_open(f, out, err);
}

/* ---- huge-page residency --------------------------------------------------------------- */

#define ST_SMAPS_PATH "/proc/self/smaps"
#define ST_SMAPS_PMD_FIELD "FilePmdMapped:" /* kB of the mapping held by PMD entries */
#define ST_KIB 1024

static bool maps_any(const struct vl_st_file *const *files, int n, uintptr_t lo, uintptr_t hi) {
    for (int i = 0; i < n; i++) {
        uintptr_t a = (uintptr_t)files[i]->map;
        if (files[i]->map && lo < a + files[i]->map_size && a < hi)
            return true;
    }
    return false;
}

int64_t vl_st_huge_mapped_bytes(const struct vl_st_file *const *files, int n) {
    FILE *fp = fopen(ST_SMAPS_PATH, "r");
    if (!fp)
        return -1;
    char *line = NULL;
    size_t cap = 0;
    bool ours = false, seen = false;
    int64_t total = 0;
    /* a mapping's header line "lo-hi perms ..." is followed by its "Field: value" lines */
    while (getline(&line, &cap, fp) > 0) {
        unsigned long lo, hi;
        long long kib;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2)
            ours = maps_any(files, n, lo, hi);
        else if (ours && sscanf(line, ST_SMAPS_PMD_FIELD " %lld kB", &kib) == 1 && kib >= 0) {
            total += (int64_t)kib * ST_KIB;
            seen = true;
        }
    }
    free(line); /* getline's buffer comes from malloc */
    fclose(fp);
    return seen ? total : -1;
}

enum vl_status vl_st_open_mem(struct vl_st_file **out, const void *data, size_t size,
                              struct vl_error *err) {
    *out = NULL;
    struct vl_st_file *f = vl__calloc(1, sizeof *f);
    if (!f || !(f->path = vl__strdup("<memory>"))) {
        vl__free(f);
        return vl__err(err, VL_ERR_NOMEM, "out of memory");
    }
    f->base = data;
    f->size = size;
    return finish_open(f, out, err);
}

enum vl_status vl__st_from_entries(struct vl_st_file **out, const char *path, size_t file_size,
                                   const struct vl_st_entry *e, int n, struct vl_error *err) {
    *out = NULL;
    struct vl_st_file *f = vl__calloc(1, sizeof *f);
    if (!f || !(f->path = vl__strdup(path))) {
        vl__free(f);
        return vl__err(err, VL_ERR_NOMEM, "out of memory");
    }
    f->size = file_size;
    f->entries = vl__calloc((size_t)n + 1, sizeof *f->entries);
    f->names = vl__calloc((size_t)n + 1, sizeof *f->names);
    f->index = g_hash_table_new(g_str_hash, g_str_equal);
    if (!f->entries || !f->names) {
        vl_st_close(f);
        return vl__err(err, VL_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < n; i++) {
        f->entries[i] = e[i];
        if (!(f->names[i] = vl__strdup(e[i].name))) {
            vl_st_close(f);
            return vl__err(err, VL_ERR_NOMEM, "out of memory");
        }
        f->n = i + 1;
        f->entries[i].name = f->names[i];
        if (g_hash_table_contains(f->index, f->names[i])) {
            vl__err(err, VL_ERR_MODEL, "%s: tensor '%s' appears twice", path, f->names[i]);
            vl_st_close(f);
            return VL_ERR_MODEL;
        }
        g_hash_table_insert(f->index, f->names[i], GINT_TO_POINTER(i + 1));
    }
    *out = f;
    return VL_OK;
}

int vl_st_count(const struct vl_st_file *f) { return f ? f->n : 0; }

const struct vl_st_entry *vl_st_get(const struct vl_st_file *f, int i) {
    if (!f || i < 0 || i >= f->n)
        return NULL;
    return &f->entries[i];
}

const struct vl_st_entry *vl_st_find(const struct vl_st_file *f, const char *name) {
    if (!f || !name)
        return NULL;
    int i = GPOINTER_TO_INT(g_hash_table_lookup(f->index, name));
    return i ? &f->entries[i - 1] : NULL;
}

size_t vl_st_file_size(const struct vl_st_file *f) { return f ? f->size : 0; }
const char *vl_st_path(const struct vl_st_file *f) { return f ? f->path : NULL; }

/* ---- writing --------------------------------------------------------------------------- */

enum vl_status vl__atomic_open(struct vl_atomic_file *af, const char *path, struct vl_error *err) {
    memset(af, 0, sizeof *af);
    size_t n = strlen(path), tmp_bytes;
    af->path = vl__strdup(path);
    if (!__builtin_add_overflow(n, sizeof ST_TMP_SUFFIX, &tmp_bytes))
        af->tmp = vl__malloc(tmp_bytes);
    if (!af->path || !af->tmp) {
        vl__atomic_abort(af);
        return vl__err(err, VL_ERR_NOMEM, "%s: out of memory", path);
    }
    memcpy(af->tmp, path, n);
    memcpy(af->tmp + n, ST_TMP_SUFFIX, sizeof ST_TMP_SUFFIX);
    int fd = mkstemp(af->tmp);
    if (fd < 0) {
        int e = errno;
        vl__free(af->tmp);
        af->tmp = NULL;
        vl__atomic_abort(af);
        return vl__err(err, VL_ERR_IO, "%s: cannot create a temporary file: %s", path,
                       strerror(e));
    }
    if (fchmod(fd, ST_FILE_MODE) != 0) { /* mkstemp creates 0600 */
        int e = errno;
        close(fd);
        vl__atomic_abort(af);
        return vl__err(err, VL_ERR_IO, "%s: cannot set the file mode: %s", path, strerror(e));
    }
    af->fp = fdopen(fd, "wb");
    if (!af->fp) {
        close(fd);
        vl__atomic_abort(af);
        return vl__err(err, VL_ERR_IO, "%s: fdopen failed", path);
    }
    return VL_OK;
}

enum vl_status vl__atomic_commit(struct vl_atomic_file *af, struct vl_error *err) {
    enum vl_status st = VL_OK;
    if (fflush(af->fp) != 0 || fsync(fileno(af->fp)) != 0)
        st = vl__err(err, VL_ERR_IO, "%s: write failed: %s", af->path, strerror(errno));
    if (fclose(af->fp) != 0 && st == VL_OK)
        st = vl__err(err, VL_ERR_IO, "%s: close failed: %s", af->path, strerror(errno));
    af->fp = NULL;
    if (st == VL_OK && rename(af->tmp, af->path) != 0)
        st = vl__err(err, VL_ERR_IO, "%s: rename failed: %s", af->path, strerror(errno));
    if (st == VL_OK) {
        vl__free(af->tmp);
        af->tmp = NULL;
    }
    vl__atomic_abort(af);
    return st;
}

void vl__atomic_abort(struct vl_atomic_file *af) {
    if (af->fp)
        fclose(af->fp);
    if (af->tmp)
        unlink(af->tmp);
    vl__free(af->tmp);
    vl__free(af->path);
    memset(af, 0, sizeof *af);
}

static size_t align_up(size_t x, size_t a) { return (x + a - 1) / a * a; }

enum vl_status vl__st_header(char **out, size_t *out_len, size_t *out_data_bytes,
                             const struct vl_st_entry *e, int n, struct vl_error *err) {
    *out = NULL;
    json_t *root = json_object();
    json_t *meta = json_pack("{s:s}", "format", "pt");
    if (!root || !meta || json_object_set_new(root, ST_METADATA_KEY, meta)) {
        json_decref(root);
        return vl__err(err, VL_ERR_NOMEM, "out of memory building a safetensors header");
    }
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        enum vl_dtype dt;
        if (!vl__dtype_from_name(e[i].dtype, &dt)) {
            json_decref(root);
            return vl__err(err, VL_ERR_INVALID, "tensor '%s': unknown dtype '%s'", e[i].name,
                           e[i].dtype);
        }
        size_t numel = 1;
        json_t *shape = json_array();
        for (int d = 0; d < e[i].ndim && shape; d++) {
            if (e[i].shape[d] < 0 || !vl__size_mul(&numel, numel, (size_t)e[i].shape[d]))
                numel = SIZE_MAX;
            json_array_append_new(shape, json_integer(e[i].shape[d]));
        }
        size_t need;
        if (e[i].ndim < 0 || e[i].ndim > VL_ST_MAX_DIMS || numel == SIZE_MAX ||
            !vl__size_mul(&need, numel, vl__dtype_size(dt)) || need != e[i].nbytes) {
            json_decref(shape);
            json_decref(root);
            return vl__err(err, VL_ERR_INVALID, "tensor '%s': %zu bytes do not match its shape",
                           e[i].name, e[i].nbytes);
        }
        off = align_up(off, VL_ST_WRITE_ALIGN);
        json_t *info = json_pack("{s:s, s:o, s:[I, I]}", "dtype", e[i].dtype, "shape", shape,
                                 "data_offsets", (json_int_t)off, (json_int_t)(off + need));
        if (!info || json_object_set_new(root, e[i].name, info)) {
            json_decref(root);
            return vl__err(err, VL_ERR_INVALID, "tensor '%s': cannot add to header (duplicate?)",
                           e[i].name);
        }
        off += need;
    }
    char *js = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!js)
        return vl__err(err, VL_ERR_NOMEM, "out of memory serialising a safetensors header");
    size_t len = strlen(js);
    size_t padded = align_up(ST_LEN_BYTES + len, VL_ST_WRITE_ALIGN) - ST_LEN_BYTES;
    char *buf = vl__malloc(ST_LEN_BYTES + padded);
    if (!buf) {
        vl__free(js);
        return vl__err(err, VL_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < ST_LEN_BYTES; i++)
        buf[i] = (char)(((uint64_t)padded >> (8 * i)) & 0xff);
    memcpy(buf + ST_LEN_BYTES, js, len);
    memset(buf + ST_LEN_BYTES + len, ' ', padded - len);
    vl__free(js);
    *out = buf;
    *out_len = ST_LEN_BYTES + padded;
    *out_data_bytes = off;
    return VL_OK;
}

enum vl_status vl__write_all(FILE *fp, const void *p, size_t n, const char *path,
                             struct vl_error *err) {
    if (n && fwrite(p, 1, n, fp) != n)
        return vl__err(err, VL_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    return VL_OK;
}

enum vl_status vl_st_write(const char *path, const struct vl_st_entry *entries, int n,
                           struct vl_error *err) {
    char *hdr;
    size_t hdr_len, data_bytes;
    enum vl_status st = vl__st_header(&hdr, &hdr_len, &data_bytes, entries, n, err);
    if (st != VL_OK)
        return st;
    struct vl_atomic_file af;
    st = vl__atomic_open(&af, path, err);
    if (st == VL_OK)
        st = vl__write_all(af.fp, hdr, hdr_len, path, err);
    static const uint8_t zeros[VL_ST_WRITE_ALIGN];
    size_t off = 0;
    for (int i = 0; i < n && st == VL_OK; i++) {
        size_t a = align_up(off, VL_ST_WRITE_ALIGN);
        st = vl__write_all(af.fp, zeros, a - off, path, err);
        if (st == VL_OK)
            st = vl__write_all(af.fp, entries[i].data, entries[i].nbytes, path, err);
        off = a + entries[i].nbytes;
    }
    vl__free(hdr);
    if (st == VL_OK)
        return vl__atomic_commit(&af, err);
    vl__atomic_abort(&af);
    return st;
}
