/* GGUF v3 reader (vl_gguf_impl.h): header, metadata (every value type, arrays of scalars and
 * strings; nested arrays refused), tensor infos, general.alignment, data mapped read-only.
 * Untrusted input: a cursor never reads past the end; every count and length is bounded by the
 * bytes left and by a named limit before anything is allocated; tensor dimensions, sizes and
 * offsets are checked for overflow, alignment, bounds and overlap. */
#include "vl_gguf_impl.h"

#include <errno.h>
#include <glib.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct ggml_type_info {
    uint32_t id;
    const char *name;
    int64_t block;  /* elements per block (0: size unknown here) */
    size_t bytes;   /* per block */
};

static const struct ggml_type_info types[] = {
    {VL_GGML_F32, "F32", 1, 4},       {VL_GGML_F16, "F16", 1, 2},
    {VL_GGML_Q4_0, "Q4_0", 32, 18},   {VL_GGML_Q4_1, "Q4_1", 32, 20},
    {VL_GGML_Q5_0, "Q5_0", 32, 22},   {VL_GGML_Q5_1, "Q5_1", 32, 24},
    {VL_GGML_Q8_0, "Q8_0", 32, 34},   {VL_GGML_Q8_1, "Q8_1", 32, 36},
    {VL_GGML_Q2_K, "Q2_K", 256, 84},  {VL_GGML_Q3_K, "Q3_K", 256, 110},
    {VL_GGML_Q4_K, "Q4_K", 256, 144}, {VL_GGML_Q5_K, "Q5_K", 256, 176},
    {VL_GGML_Q6_K, "Q6_K", 256, 210}, {VL_GGML_Q8_K, "Q8_K", 256, 292},
    {16, "IQ2_XXS", 0, 0},            {17, "IQ2_XS", 0, 0},
    {18, "IQ3_XXS", 0, 0},            {19, "IQ1_S", 0, 0},
    {20, "IQ4_NL", 0, 0},             {21, "IQ3_S", 0, 0},
    {22, "IQ2_S", 0, 0},              {23, "IQ4_XS", 0, 0},
    {VL_GGML_I8, "I8", 1, 1},         {VL_GGML_I16, "I16", 1, 2},
    {VL_GGML_I32, "I32", 1, 4},       {VL_GGML_I64, "I64", 1, 8},
    {VL_GGML_F64, "F64", 1, 8},       {29, "IQ1_M", 0, 0},
    {VL_GGML_BF16, "BF16", 1, 2},     {34, "TQ1_0", 0, 0},
    {35, "TQ2_0", 0, 0},              {39, "MXFP4", 0, 0},
};

static const struct ggml_type_info *type_info(uint32_t t) {
    for (size_t i = 0; i < sizeof types / sizeof *types; i++)
        if (types[i].id == t)
            return &types[i];
    return NULL;
}

const char *vl__ggml_type_name(uint32_t t) {
    const struct ggml_type_info *ti = type_info(t);
    return ti ? ti->name : "?";
}

/* scalar value sizes by metadata type (STRING and ARRAY: variable) */
static const size_t vsize[VL_GGUF_VTYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
static const char *const vname[VL_GGUF_VTYPE_COUNT] = {
    "uint8", "int8", "uint16", "int16", "uint32", "int32", "float32",
    "bool",  "string", "array", "uint64", "int64", "float64"};

/* ---- cursor ------------------------------------------------------------------------------ */

struct cur {
    const uint8_t *p;
    size_t left;
    const char *file;
    struct vl_error *err;
};

static uint64_t le(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static enum vl_status need(struct cur *c, size_t n, const char *what) {
    if (c->left < n)
        return vl__err(c->err, VL_ERR_FORMAT, "%s: truncated GGUF: %s needs %zu bytes, %zu left",
                       c->file, what, n, c->left);
    return VL_OK;
}

static enum vl_status rd(struct cur *c, int n, uint64_t *v, const char *what) {
    enum vl_status st = need(c, (size_t)n, what);
    if (st != VL_OK)
        return st;
    *v = le(c->p, n);
    c->p += n;
    c->left -= (size_t)n;
    return VL_OK;
}

/* string at the cursor: *s points at its bytes, *len its length (checked against max). */
static enum vl_status rd_str(struct cur *c, uint64_t max, const uint8_t **s, size_t *len,
                             const char *what) {
    uint64_t n;
    enum vl_status st = rd(c, 8, &n, what);
    if (st != VL_OK)
        return st;
    if (n > max)
        return vl__err(c->err, VL_ERR_FORMAT, "%s: %s: string length %llu over the limit %llu",
                       c->file, what, (unsigned long long)n, (unsigned long long)max);
    if ((st = need(c, (size_t)n, what)) != VL_OK)
        return st;
    *s = c->p;
    *len = (size_t)n;
    c->p += n;
    c->left -= (size_t)n;
    return VL_OK;
}

static char *dup_n(const uint8_t *s, size_t n) {
    char *d = vl__malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

/* ---- metadata ---------------------------------------------------------------------------- */

static enum vl_status rd_value(struct cur *c, struct vl_gguf_kv *kv) {
    enum vl_status st;
    uint64_t t;
    if ((st = rd(c, 4, &t, kv->key)) != VL_OK)
        return st;
    if (t >= VL_GGUF_VTYPE_COUNT)
        return vl__err(c->err, VL_ERR_FORMAT, "%s: key '%.200s': unknown value type %llu",
                       c->file, kv->key, (unsigned long long)t);
    kv->type = (uint32_t)t;
    kv->n = 1;
    uint64_t et = t;
    if (t == VL_GGUF_ARRAY) {
        if ((st = rd(c, 4, &et, kv->key)) != VL_OK || (st = rd(c, 8, &kv->n, kv->key)) != VL_OK)
            return st;
        if (et >= VL_GGUF_VTYPE_COUNT || et == VL_GGUF_ARRAY)
            return vl__err(c->err, VL_ERR_FORMAT,
                           "%s: key '%.200s': array element type %llu not supported%s", c->file,
                           kv->key, (unsigned long long)et, et == VL_GGUF_ARRAY ? " (nested)" : "");
        /* every element takes at least one byte (a string at least its 8-byte length) */
        size_t min_el = et == VL_GGUF_STRING ? 8 : vsize[et];
        if (kv->n > VL_GGUF_MAX_ARRAY_LEN || kv->n > c->left / min_el)
            return vl__err(c->err, VL_ERR_FORMAT,
                           "%s: key '%.200s': array length %llu exceeds the %s left in the file "
                           "or the limit %d",
                           c->file, kv->key, (unsigned long long)kv->n, "bytes",
                           VL_GGUF_MAX_ARRAY_LEN);
        kv->arr_type = (uint32_t)et;
    }
    kv->val = c->p;
    if (et != VL_GGUF_STRING) {
        size_t bytes = (size_t)kv->n * vsize[et];
        if ((st = need(c, bytes, kv->key)) != VL_OK)
            return st;
        if (et == VL_GGUF_BOOL)
            for (size_t i = 0; i < bytes; i++)
                if (c->p[i] > 1)
                    return vl__err(c->err, VL_ERR_FORMAT, "%s: key '%.200s': bool value %u",
                                   c->file, kv->key, c->p[i]);
        c->p += bytes;
        c->left -= bytes;
        return VL_OK;
    }
    kv->strs = vl__calloc((size_t)kv->n ? (size_t)kv->n : 1, sizeof *kv->strs);
    if (!kv->strs)
        return vl__err(c->err, VL_ERR_NOMEM, "%s: key '%.200s': out of memory", c->file, kv->key);
    for (uint64_t i = 0; i < kv->n; i++) {
        const uint8_t *s;
        size_t len;
        kv->strs[i] = c->p;
        if ((st = rd_str(c, VL_GGUF_MAX_STRING_LEN, &s, &len, kv->key)) != VL_OK)
            return st;
    }
    return VL_OK;
}

/* ---- tensors ----------------------------------------------------------------------------- */

static enum vl_status rd_tensor(struct cur *c, struct vl_gguf_tensor *t, int64_t idx) {
    const uint8_t *s;
    size_t len;
    enum vl_status st = rd_str(c, VL_GGUF_MAX_KEY_LEN, &s, &len, "tensor name");
    if (st != VL_OK)
        return st;
    if (!len || memchr(s, 0, len))
        return vl__err(c->err, VL_ERR_FORMAT, "%s: tensor %lld: empty name or NUL in name",
                       c->file, (long long)idx);
    if (!(t->name = dup_n(s, len)))
        return vl__err(c->err, VL_ERR_NOMEM, "%s: out of memory", c->file);
    uint64_t nd, v;
    if ((st = rd(c, 4, &nd, t->name)) != VL_OK)
        return st;
    if (nd < 1 || nd > VL_GGUF_MAX_DIMS)
        return vl__err(c->err, VL_ERR_FORMAT, "%s: tensor '%.200s': n_dims %llu (1..%d)", c->file,
                       t->name, (unsigned long long)nd, VL_GGUF_MAX_DIMS);
    t->ndim = (int)nd;
    for (int d = 0; d < t->ndim; d++) {
        if ((st = rd(c, 8, &v, t->name)) != VL_OK)
            return st;
        if (v < 1 || v > (uint64_t)INT64_MAX / 2)
            return vl__err(c->err, VL_ERR_FORMAT, "%s: tensor '%.200s': dimension %d is %llu",
                           c->file, t->name, d, (unsigned long long)v);
        t->ne[d] = (int64_t)v;
    }
    if ((st = rd(c, 4, &v, t->name)) != VL_OK)
        return st;
    t->type = (uint32_t)v;
    if ((st = rd(c, 8, &t->offset, t->name)) != VL_OK)
        return st;
    const struct ggml_type_info *ti = type_info(t->type);
    if (!ti || !ti->block)
        return vl__err(c->err, VL_ERR_UNSUPPORTED,
                       "%s: tensor '%.200s' has ggml type %s (%u), which docproc cannot read",
                       c->file, t->name, ti ? ti->name : "unknown", t->type);
    if (t->ne[0] % ti->block)
        return vl__err(c->err, VL_ERR_FORMAT,
                       "%s: tensor '%.200s': ne[0] = %lld is not a multiple of %s's block %lld",
                       c->file, t->name, (long long)t->ne[0], ti->name, (long long)ti->block);
    size_t bytes = (size_t)(t->ne[0] / ti->block);
    bool ok = vl__size_mul(&bytes, bytes, ti->bytes);
    for (int d = 1; d < t->ndim && ok; d++)
        ok = vl__size_mul(&bytes, bytes, (size_t)t->ne[d]);
    if (!ok)
        return vl__err(c->err, VL_ERR_FORMAT, "%s: tensor '%.200s': size overflows", c->file,
                       t->name);
    t->nbytes = bytes;
    return VL_OK;
}

static int cmp_off(const void *a, const void *b) {
    const struct vl_gguf_tensor *x = *(const struct vl_gguf_tensor *const *)a;
    const struct vl_gguf_tensor *y = *(const struct vl_gguf_tensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* data section: alignment, bounds, no two tensors overlapping, names unique */
static enum vl_status place(struct vl_gguf *g, struct cur *c) {
    size_t hdr = g->size - c->left;
    size_t pad = (size_t)(g->alignment - hdr % g->alignment) % g->alignment;
    if (g->n_tensors && pad > c->left)
        return vl__err(c->err, VL_ERR_FORMAT, "%s: truncated GGUF: no data section", g->path);
    g->data_off = hdr + (pad > c->left ? c->left : pad);
    size_t data_size = g->size - g->data_off;
    struct vl_gguf_tensor **by = vl__calloc((size_t)g->n_tensors + 1, sizeof *by);
    if (!by)
        return vl__err(c->err, VL_ERR_NOMEM, "%s: out of memory", g->path);
    enum vl_status st = VL_OK;
    for (int64_t i = 0; i < g->n_tensors && st == VL_OK; i++) {
        struct vl_gguf_tensor *t = &g->tensors[i];
        by[i] = t;
        if (t->offset % g->alignment)
            st = vl__err(c->err, VL_ERR_FORMAT,
                         "%s: tensor '%.200s': offset %llu not a multiple of the alignment %llu",
                         g->path, t->name, (unsigned long long)t->offset,
                         (unsigned long long)g->alignment);
        else if (t->offset > data_size || t->nbytes > data_size - t->offset)
            st = vl__err(c->err, VL_ERR_FORMAT,
                         "%s: tensor '%.200s': data [%llu, +%zu) past the end of the data section "
                         "(%zu bytes; truncated file?)",
                         g->path, t->name, (unsigned long long)t->offset, t->nbytes, data_size);
        else
            t->data = g->base + g->data_off + t->offset;
    }
    if (st == VL_OK && g->n_tensors > 1) {
        qsort(by, (size_t)g->n_tensors, sizeof *by, cmp_off);
        for (int64_t i = 1; i < g->n_tensors && st == VL_OK; i++)
            if (by[i - 1]->offset + by[i - 1]->nbytes > by[i]->offset)
                st = vl__err(c->err, VL_ERR_FORMAT, "%s: tensors '%.200s' and '%.200s' overlap",
                             g->path, by[i - 1]->name, by[i]->name);
    }
    vl__free(by);
    GHashTable *seen = g_hash_table_new(g_str_hash, g_str_equal);
    for (int64_t i = 0; i < g->n_tensors && st == VL_OK; i++) {
        if (!g_hash_table_add(seen, g->tensors[i].name))
            st = vl__err(c->err, VL_ERR_FORMAT, "%s: tensor '%.200s' appears twice", g->path,
                         g->tensors[i].name);
    }
    g_hash_table_destroy(seen);
    return st;
}

static enum vl_status parse(struct vl_gguf *g, struct vl_error *err) {
    struct cur c = {g->base, g->size, g->path, err};
    enum vl_status st = need(&c, 4, "magic");
    if (st != VL_OK)
        return st;
    if (memcmp(c.p, VL_GGUF_MAGIC, 4))
        return vl__err(err, VL_ERR_FORMAT, "%s: not a GGUF file (magic)", g->path);
    c.p += 4;
    c.left -= 4;
    uint64_t v, nt, nkv;
    if ((st = rd(&c, 4, &v, "version")) != VL_OK)
        return st;
    if (v != VL_GGUF_VERSION && v != 2)
        return vl__err(err, VL_ERR_UNSUPPORTED, "%s: GGUF version %llu (docproc reads 2 and 3)",
                       g->path, (unsigned long long)v);
    g->version = (uint32_t)v;
    if ((st = rd(&c, 8, &nt, "tensor_count")) != VL_OK ||
        (st = rd(&c, 8, &nkv, "metadata_kv_count")) != VL_OK)
        return st;
    /* a KV takes >= 8 + 4 + 1 bytes, a tensor info >= 8 + 1 + 4 + 8 + 4 + 8 */
    if (nkv > VL_GGUF_MAX_KV || nkv > c.left / 13)
        return vl__err(err, VL_ERR_FORMAT, "%s: metadata_kv_count %llu is impossible (limit %d)",
                       g->path, (unsigned long long)nkv, VL_GGUF_MAX_KV);
    if (nt > VL_GGUF_MAX_TENSORS || nt > c.left / 33)
        return vl__err(err, VL_ERR_FORMAT, "%s: tensor_count %llu is impossible (limit %d)",
                       g->path, (unsigned long long)nt, VL_GGUF_MAX_TENSORS);
    g->kv = vl__calloc((size_t)nkv + 1, sizeof *g->kv);
    g->tensors = vl__calloc((size_t)nt + 1, sizeof *g->tensors);
    if (!g->kv || !g->tensors)
        return vl__err(err, VL_ERR_NOMEM, "%s: out of memory", g->path);
    g->alignment = VL_GGUF_DEFAULT_ALIGNMENT;
    g->index = g_hash_table_new(g_str_hash, g_str_equal);
    for (uint64_t i = 0; i < nkv; i++) {
        struct vl_gguf_kv *kv = &g->kv[i];
        const uint8_t *s;
        size_t len;
        if ((st = rd_str(&c, VL_GGUF_MAX_KEY_LEN, &s, &len, "metadata key")) != VL_OK)
            return st;
        if (!len || memchr(s, 0, len))
            return vl__err(err, VL_ERR_FORMAT, "%s: metadata key %llu: empty or NUL in key",
                           g->path, (unsigned long long)i);
        if (!(kv->key = dup_n(s, len)))
            return vl__err(err, VL_ERR_NOMEM, "%s: out of memory", g->path);
        g->n_kv = (int64_t)i + 1;
        if (g_hash_table_contains(g->index, kv->key))
            return vl__err(err, VL_ERR_FORMAT, "%s: metadata key '%.200s' appears twice", g->path,
                           kv->key);
        g_hash_table_insert(g->index, kv->key, kv);
        if ((st = rd_value(&c, kv)) != VL_OK)
            return st;
    }
    const struct vl_gguf_kv *al = vl__gguf_find(g, "general.alignment");
    if (al) {
        if (al->type != VL_GGUF_U32)
            return vl__err(err, VL_ERR_FORMAT, "%s: general.alignment must be uint32, not %s",
                           g->path, vname[al->type]);
        uint64_t a = le(al->val, 4);
        if (!a || (a & (a - 1)) || a > VL_GGUF_MAX_ALIGNMENT)
            return vl__err(err, VL_ERR_FORMAT,
                           "%s: general.alignment %llu is not a power of two up to %d", g->path,
                           (unsigned long long)a, VL_GGUF_MAX_ALIGNMENT);
        g->alignment = a;
    }
    for (uint64_t i = 0; i < nt; i++) {
        g->n_tensors = (int64_t)i + 1;
        if ((st = rd_tensor(&c, &g->tensors[i], (int64_t)i)) != VL_OK)
            return st;
    }
    return place(g, &c);
}

/* ---- open / close ------------------------------------------------------------------------ */

void vl__gguf_close(struct vl_gguf *g) {
    if (!g)
        return;
    for (int64_t i = 0; i < g->n_kv; i++) {
        vl__free(g->kv[i].key);
        vl__free(g->kv[i].strs);
    }
    vl__free(g->kv);
    if (g->index)
        g_hash_table_destroy(g->index);
    for (int64_t i = 0; i < g->n_tensors; i++)
        vl__free(g->tensors[i].name);
    vl__free(g->tensors);
    if (g->map)
        munmap(g->map, g->map_size);
    vl__free(g->path);
    vl__free(g);
}

static enum vl_status finish(struct vl_gguf **out, struct vl_gguf *g, struct vl_error *err) {
    enum vl_status st = parse(g, err);
    if (st != VL_OK) {
        vl__gguf_close(g);
        return st;
    }
    *out = g;
    return VL_OK;
}

enum vl_status vl__gguf_open_mem(struct vl_gguf **out, const void *data, size_t size,
                                 struct vl_error *err) {
    *out = NULL;
    struct vl_gguf *g = vl__calloc(1, sizeof *g);
    if (!g || !(g->path = vl__strdup("<memory>"))) {
        vl__free(g);
        return vl__err(err, VL_ERR_NOMEM, "out of memory");
    }
    g->base = data;
    g->size = size;
    return finish(out, g, err);
}

enum vl_status vl__gguf_open(struct vl_gguf **out, const char *path, struct vl_error *err) {
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return vl__err(err, VL_ERR_IO, "%s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) || !S_ISREG(sb.st_mode)) {
        close(fd);
        return vl__err(err, VL_ERR_IO, "%s: not a regular file", path);
    }
    struct vl_gguf *g = vl__calloc(1, sizeof *g);
    if (!g || !(g->path = vl__strdup(path))) {
        vl__free(g);
        close(fd);
        return vl__err(err, VL_ERR_NOMEM, "out of memory");
    }
    g->size = (size_t)sb.st_size;
    if (g->size) {
        g->map = mmap(NULL, g->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (g->map == MAP_FAILED) {
            g->map = NULL;
            close(fd);
            vl__gguf_close(g);
            return vl__err(err, VL_ERR_IO, "%s: mmap: %s", path, strerror(errno));
        }
        /* huge pages where the page cache holds 2 MiB folios, as vl_st_open's map_file: decode
         * streams the weights with 1/512 of the page walks (docs/performance.md) */
        vl__advise_huge(g->map, g->size);
        g->map_size = g->size;
        g->base = g->map;
    }
    close(fd);
    return finish(out, g, err);
}

bool vl__is_gguf_file(const char *path) {
    struct stat sb;
    if (stat(path, &sb) || !S_ISREG(sb.st_mode))
        return false;
    FILE *fp = fopen(path, "rb");
    char m[4] = {0};
    bool ok = fp && fread(m, 1, 4, fp) == 4 && !memcmp(m, VL_GGUF_MAGIC, 4);
    if (fp)
        fclose(fp);
    return ok;
}

/* ---- accessors --------------------------------------------------------------------------- */

const struct vl_gguf_kv *vl__gguf_find(const struct vl_gguf *g, const char *key) {
    return g->index ? g_hash_table_lookup(g->index, key) : NULL;
}

const struct vl_gguf_tensor *vl__gguf_tensor(const struct vl_gguf *g, const char *name) {
    for (int64_t i = 0; i < g->n_tensors; i++)
        if (!strcmp(g->tensors[i].name, name))
            return &g->tensors[i];
    return NULL;
}

static bool int_at(uint32_t t, const uint8_t *p, int64_t *out) {
    uint64_t u;
    switch (t) {
    case VL_GGUF_U8: *out = p[0]; return true;
    case VL_GGUF_I8: *out = (int8_t)p[0]; return true;
    case VL_GGUF_U16: *out = (int64_t)le(p, 2); return true;
    case VL_GGUF_I16: *out = (int16_t)le(p, 2); return true;
    case VL_GGUF_U32: *out = (int64_t)le(p, 4); return true;
    case VL_GGUF_I32: *out = (int32_t)(uint32_t)le(p, 4); return true;
    case VL_GGUF_U64:
        u = le(p, 8);
        if (u > (uint64_t)INT64_MAX)
            return false;
        *out = (int64_t)u;
        return true;
    case VL_GGUF_I64: u = le(p, 8); memcpy(out, &u, 8); return true;
    default: return false;
    }
}

bool vl__gguf_int(const struct vl_gguf *g, const char *key, int64_t *out) {
    const struct vl_gguf_kv *kv = vl__gguf_find(g, key);
    return kv && kv->type != VL_GGUF_ARRAY && int_at(kv->type, kv->val, out);
}

bool vl__gguf_float(const struct vl_gguf *g, const char *key, double *out) {
    const struct vl_gguf_kv *kv = vl__gguf_find(g, key);
    if (!kv)
        return false;
    if (kv->type == VL_GGUF_F32) {
        uint32_t u = (uint32_t)le(kv->val, 4);
        float f;
        memcpy(&f, &u, 4);
        *out = f;
        return true;
    }
    if (kv->type == VL_GGUF_F64) {
        uint64_t u = le(kv->val, 8);
        memcpy(out, &u, 8);
        return true;
    }
    return false;
}

bool vl__gguf_str(const struct vl_gguf_kv *kv, uint64_t i, const char **s, size_t *len) {
    if (!kv || !kv->strs || i >= kv->n)
        return false;
    *len = (size_t)le(kv->strs[i], 8);
    *s = (const char *)kv->strs[i] + 8;
    return true;
}

bool vl__gguf_arr_int(const struct vl_gguf_kv *kv, uint64_t i, int64_t *out) {
    if (!kv || kv->type != VL_GGUF_ARRAY || i >= kv->n || kv->arr_type == VL_GGUF_STRING)
        return false;
    return int_at(kv->arr_type, kv->val + i * vsize[kv->arr_type], out);
}
