/* Quantized weights, part 5: quantized checkpoints (`docproc model quantize DIR --to q8|q4 -o
 * OUT`). OUT has the published layout — config.json, generation/preprocessor configs, tokenizer
 * files copied, one model.safetensors — plus quantization.json, the format description:
 *   {"format": "docproc-blocks", "version": 2, "layout": "packed16", "block": 32, "text": "q8",
 *    "vision": "bf16",
 *    "tensors": {"model.layers.0.self_attn.q_proj.weight": {"type": "Q8_0", "shape": [o, i]}, ...}}
 * Version 2 (what the writer makes): each listed tensor is stored in the kernels' packed layout
 * (vl__qpack's bytes, vl_quant_impl.h), as U8 [ceil(o / 16), ceil(i / 32) * 16 * block bytes]
 * (one row of the U8 tensor = one group of 16 weight rows, the last group zero-padded) under its
 * own name, so the file stays plain safetensors; at load w->pack points into the mapping (no
 * copy, no packing pass; w->data NULL). Version 1 (still read; written only on request, tests):
 * U8 [o, ceil(i / 32) * block bytes], the rows, bound as a block view; the kernels' packed copy
 * is then made at load. A tied lm_head's quantized copy is stored as lm_head.weight.
 * The description is untrusted input: every entry is checked (type, shape against config.json,
 * name, U8 shape and byte size with checked arithmetic).
 * Thread-safety: load and write run before the model is shared. */
#include "vl_quant_impl.h"

#include <glib.h>
#include <jansson.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SAFETENSORS_FILE "model.safetensors"
#define NAME_MAX_LEN 256
#define DESC_MAX_BYTES ((size_t)16 << 20)

/* ---- load ------------------------------------------------------------------------------------ */

void vl__quant_desc_free(struct vl_model *m) {
    if (m->quant_desc)
        g_hash_table_destroy(m->quant_desc);
    m->quant_desc = NULL;
}

static const struct vl_quant_entry *desc_entry(const struct vl_model *m, const char *canonical) {
    return m->quant_desc ? g_hash_table_lookup(m->quant_desc, canonical) : NULL;
}

bool vl__quant_desc_type(const struct vl_model *m, const char *canonical, enum vl_dtype *out) {
    const struct vl_quant_entry *q = desc_entry(m, canonical);
    if (q)
        *out = q->t;
    return q != NULL;
}

void *vl__quant_desc_new(void) {
    return g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
}

void vl__quant_desc_add(void *desc, const char *canonical, enum vl_dtype t) {
    struct vl_quant_entry *e = g_new0(struct vl_quant_entry, 1);
    e->t = t;
    g_hash_table_insert(desc, g_strdup(canonical), e);
}

/* "shape": [o, i] of an entry, each in [1, VL_QUANT_DIM_MAX]. */
static bool parse_shape(json_t *v, int64_t *shape) {
    if (!json_is_array(v) || json_array_size(v) != 2)
        return false;
    for (size_t d = 0; d < 2; d++) {
        json_t *x = json_array_get(v, d);
        if (!json_is_integer(x) || json_integer_value(x) < 1 ||
            json_integer_value(x) > VL_QUANT_DIM_MAX)
            return false;
        shape[d] = (int64_t)json_integer_value(x);
    }
    return true;
}

enum vl_status vl__quant_desc_load(struct vl_model *m, const char *dir, struct vl_error *err) {
    char *path = vl__path_join(dir, VL_QUANT_DESC_FILE);
    if (!path)
        return vl__err(err, VL_ERR_NOMEM, "out of memory");
    if (access(path, F_OK) != 0) {
        vl__free(path);
        return VL_OK;
    }
    char *text;
    size_t len;
    enum vl_status st = vl__read_file(path, DESC_MAX_BYTES, &text, &len, err);
    if (st == VL_OK) {
        void *h = NULL;
        int version = 0;
        st = vl__quant_desc_parse(&h, &version, text, len, path, err);
        vl__free(text);
        if (st == VL_OK) {
            m->quant_desc = h;
            m->quant_version = version;
        }
    }
    vl__free(path);
    return st;
}

enum vl_status vl__quant_desc_parse(void **out, int *out_version, const char *text, size_t len,
                                    const char *path, struct vl_error *err) {
    *out = NULL;
    *out_version = 0;
    enum vl_status st = VL_OK;
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        st = vl__err(err, VL_ERR_MODEL, "%s: invalid JSON: %s (line %d)", path, je.text, je.line);
    json_t *fmt = root ? json_object_get(root, "format") : NULL;
    json_t *ver = root ? json_object_get(root, "version") : NULL;
    json_t *lay = root ? json_object_get(root, "layout") : NULL;
    json_t *blk = root ? json_object_get(root, "block") : NULL;
    json_t *ts = root ? json_object_get(root, "tensors") : NULL;
    if (st == VL_OK &&
        (!json_is_string(fmt) || strcmp(json_string_value(fmt), VL_QUANT_DESC_FORMAT) ||
         !json_is_integer(ver) || !json_is_integer(blk) || json_integer_value(blk) != VL_QK ||
         !json_is_object(ts)))
        st = vl__err(err, VL_ERR_MODEL,
                     "%s: not a %s description with a version, block %d and a \"tensors\" object",
                     path, VL_QUANT_DESC_FORMAT, VL_QK);
    const json_int_t version = st == VL_OK ? json_integer_value(ver) : 0;
    if (st == VL_OK && version != VL_QUANT_DESC_V1 && version != VL_QUANT_DESC_VERSION)
        st = vl__err(err, VL_ERR_MODEL,
                     "%s: version %lld is not one this build reads (%d: rows, %d: %s)", path,
                     (long long)version, VL_QUANT_DESC_V1, VL_QUANT_DESC_VERSION,
                     VL_QUANT_DESC_LAYOUT);
    /* version 2 names its layout; version 1 (rows) has none */
    if (st == VL_OK && version == VL_QUANT_DESC_VERSION &&
        (!json_is_string(lay) || strcmp(json_string_value(lay), VL_QUANT_DESC_LAYOUT)))
        st = vl__err(err, VL_ERR_MODEL, "%s: version %d needs \"layout\": \"%s\"", path,
                     VL_QUANT_DESC_VERSION, VL_QUANT_DESC_LAYOUT);
    if (st == VL_OK && version == VL_QUANT_DESC_V1 && lay)
        st = vl__err(err, VL_ERR_MODEL, "%s: version %d has no \"layout\" (rows)", path,
                     VL_QUANT_DESC_V1);
    GHashTable *h = NULL;
    if (st == VL_OK) {
        h = vl__quant_desc_new();
        const char *key;
        json_t *v;
        json_object_foreach(ts, key, v) {
            json_t *ty = json_object_get(v, "type");
            json_t *sh = json_object_get(v, "shape");
            struct vl_quant_entry q = {0};
            if (!json_is_string(ty) || !vl__dtype_from_any_name(json_string_value(ty), &q.t) ||
                !vl__dtype_is_quant(q.t) || strlen(key) >= NAME_MAX_LEN) {
                st = vl__err(err, VL_ERR_MODEL, "%s: tensor '%.64s': type must be Q8_0 or Q4_0",
                             path, key);
                break;
            }
            /* version 2 must give the logical shape (it is not readable from the U8 tensor) */
            q.has_shape = sh != NULL;
            if ((sh || version == VL_QUANT_DESC_VERSION) && !parse_shape(sh, q.shape)) {
                st = vl__err(err, VL_ERR_MODEL,
                             "%s: tensor '%.64s': \"shape\" must be [out, in], each 1..%lld", path,
                             key, (long long)VL_QUANT_DIM_MAX);
                break;
            }
            struct vl_quant_entry *e = g_new(struct vl_quant_entry, 1);
            *e = q;
            g_hash_table_insert(h, g_strdup(key), e);
        }
    }
    if (st == VL_OK) {
        *out = h;
        *out_version = (int)version;
    } else if (h)
        g_hash_table_destroy(h);
    json_decref(root);
    return st;
}

enum vl_status vl__quant_bind(struct vl_tensor *dst, const struct vl_model *m,
                              const struct vl_st_entry *e, const char *file, const char *name,
                              const int64_t *want, int nd, struct vl_error *err) {
    const struct vl_quant_entry *q = desc_entry(m, name);
    VL_ASSERT(q);
    const enum vl_dtype t = q->t;
    if (nd != 2)
        return vl__err(err, VL_ERR_MODEL, "%s: tensor '%s' cannot be quantized (not a matrix)",
                       file, name);
    if (q->has_shape && (q->shape[0] != want[0] || q->shape[1] != want[1]))
        return vl__err(err, VL_ERR_MODEL,
                       "%s: tensor '%s' is [%lld, %lld] in %s but config.json makes it [%lld, %lld]",
                       file, name, (long long)q->shape[0], (long long)q->shape[1],
                       VL_QUANT_DESC_FILE, (long long)want[0], (long long)want[1]);
    const bool packed = m->quant_version == VL_QUANT_DESC_VERSION;
    /* the U8 tensor's shape: [o, row bytes] (v1) or [groups of 16 rows, group bytes] (v2) */
    const int64_t nb = vl__q_blocks(want[1]);
    const int64_t rows = packed ? (want[0] + VL_QPACK_ROWS - 1) / VL_QPACK_ROWS : want[0];
    size_t cols = 0, total = 0;
    bool fits = vl__size_mul(&cols, (size_t)nb, vl__dtype_size(t)) &&
                (!packed || vl__size_mul(&cols, cols, VL_QPACK_ROWS)) &&
                vl__size_mul(&total, cols, (size_t)rows) && cols <= (size_t)INT64_MAX;
    if (!fits)
        return vl__err(err, VL_ERR_MODEL, "%s: tensor '%s': %s [%lld, %lld] overflows", file,
                       name, vl__dtype_name(t), (long long)want[0], (long long)want[1]);
    if (strcmp(e->dtype, "U8") || e->ndim != 2 || e->shape[0] != rows ||
        e->shape[1] != (int64_t)cols || e->nbytes != total)
        return vl__err(err, VL_ERR_MODEL,
                       "%s: tensor '%s' (%s, %zu bytes) must be U8 [%lld, %zu] (%zu bytes) for %s "
                       "[%lld, %lld]%s",
                       file, name, e->dtype, e->nbytes, (long long)rows, cols, total,
                       vl__dtype_name(t), (long long)want[0], (long long)want[1],
                       packed ? " in the packed layout (" VL_QUANT_DESC_LAYOUT ")" : "");
    memset(dst, 0, sizeof *dst);
    dst->dtype = t;
    dst->ndim = 2;
    dst->ne[0] = want[0];
    dst->ne[1] = want[1];
    if (packed)
        dst->pack = e->data; /* the kernels read the mapping itself: no copy, no packing */
    else
        dst->data = e->data;
    dst->name = e->name;
    return VL_OK;
}

enum vl_status vl__quant_desc_check(struct vl_model *m, struct vl_error *err) {
    if (!m->quant_desc)
        return VL_OK;
    int n = vl__quant_targets(m, false, NULL, 0) + vl__quant_targets(m, true, NULL, 0);
    struct vl_tensor **t = vl__calloc((size_t)n, sizeof *t);
    if (!t)
        return vl__err(err, VL_ERR_NOMEM, "out of memory");
    int nt = vl__quant_targets(m, false, t, n);
    vl__quant_targets(m, true, t + nt, n - nt);
    unsigned used = 0;
    for (int i = 0; i < n; i++)
        used += vl__dtype_is_quant(t[i]->dtype);
    vl__free(t);
    unsigned listed = g_hash_table_size(m->quant_desc);
    if (used != listed)
        return vl__err(err, VL_ERR_MODEL,
                       "%s lists %u block tensors but %u Linear weights of the model are bound as "
                       "blocks (a name that is not a Linear weight?)",
                       VL_QUANT_DESC_FILE, listed, used);
    return VL_OK;
}

/* ---- write ----------------------------------------------------------------------------------- */

static const char *const copied_files[] = {"config.json", "generation_config.json",
                                           "preprocessor_config.json", "tokenizer.json",
                                           "tokenizer_config.json"};

static enum vl_status copy_if_present(const char *src_dir, const char *dst_dir, const char *name,
                                      struct vl_error *err) {
    char *src = vl__path_join(src_dir, name), *dst = vl__path_join(dst_dir, name);
    enum vl_status st = src && dst ? VL_OK : vl__err(err, VL_ERR_NOMEM, "out of memory");
    char *text = NULL;
    size_t len = 0;
    if (st == VL_OK && access(src, F_OK) == 0) {
        st = vl__read_file(src, (size_t)1 << 30, &text, &len, err);
        struct vl_atomic_file af;
        if (st == VL_OK)
            st = vl__atomic_open(&af, dst, err);
        if (st == VL_OK) {
            st = vl__write_all(af.fp, text, len, dst, err);
            st = st == VL_OK ? vl__atomic_commit(&af, err) : (vl__atomic_abort(&af), st);
        }
    }
    vl__free(text);
    vl__free(src);
    vl__free(dst);
    return st;
}

struct qname {
    const struct vl_tensor *t;
    const char *stored; /* name in the output file */
    struct vl_st_entry e; /* its U8 entry (name and data set by the writer) */
};

static enum vl_status write_desc(const char *dir, const struct vl_model *m,
                                 const struct qname *q, int nq, int version,
                                 struct vl_error *err) {
    json_t *root = json_pack("{s:s, s:i}", "format", VL_QUANT_DESC_FORMAT, "version", version);
    if (root && version == VL_QUANT_DESC_VERSION &&
        json_object_set_new(root, "layout", json_string(VL_QUANT_DESC_LAYOUT))) {
        json_decref(root);
        root = NULL;
    }
    if (root && json_object_update_new(
                    root, json_pack("{s:i, s:s, s:s}", "block", VL_QK, "text",
                                    vl_wformat_name(vl_model_wformat(m, false)), "vision",
                                    vl_wformat_name(vl_model_wformat(m, true))))) {
        json_decref(root);
        root = NULL;
    }
    json_t *ts = json_object();
    enum vl_status st = root && ts ? VL_OK : vl__err(err, VL_ERR_NOMEM, "out of memory");
    char buf[NAME_MAX_LEN];
    for (int i = 0; i < nq && st == VL_OK; i++) {
        const char *cn = vl__canonical_name(q[i].stored, buf, sizeof buf);
        json_t *e = json_pack("{s:s, s:[I, I]}", "type", vl__dtype_name(q[i].t->dtype), "shape",
                              (json_int_t)q[i].t->ne[0], (json_int_t)q[i].t->ne[1]);
        if (!e || json_object_set_new(ts, cn, e))
            st = vl__err(err, VL_ERR_NOMEM, "out of memory");
    }
    if (st == VL_OK && json_object_set_new(root, "tensors", ts) == 0)
        ts = NULL;
    char *text = st == VL_OK ? json_dumps(root, JSON_INDENT(1) | JSON_PRESERVE_ORDER) : NULL;
    char *path = vl__path_join(dir, VL_QUANT_DESC_FILE);
    if (st == VL_OK && (!text || !path))
        st = vl__err(err, VL_ERR_NOMEM, "out of memory");
    struct vl_atomic_file af;
    if (st == VL_OK)
        st = vl__atomic_open(&af, path, err);
    if (st == VL_OK) {
        st = vl__write_all(af.fp, text, strlen(text), path, err);
        st = st == VL_OK ? vl__atomic_commit(&af, err) : (vl__atomic_abort(&af), st);
    }
    json_decref(ts);
    json_decref(root);
    vl__free(text); /* json_dumps: plain malloc, as vl__malloc */
    vl__free(path);
    return st;
}

/* q's U8 entry for version `version`: v2 the packed bytes (w->pack: the mapping's or the model's
 * copy, written as they are), v1 the rows (w->data, or unpacked from w->pack into a new buffer
 * returned in *tmp for the caller to free). */
static enum vl_status quant_entry(struct qname *q, int version, void **tmp,
                                  struct vl_error *err) {
    const struct vl_tensor *t = q->t;
    const int64_t out = t->ne[0], nb = vl__q_blocks(t->ne[1]);
    const size_t rb = vl__q_row_bytes(t->dtype, t->ne[1]);
    struct vl_st_entry *o = &q->e;
    o->dtype = "U8";
    o->ndim = 2;
    if (version == VL_QUANT_DESC_VERSION) {
        if (!t->pack)
            return vl__err(err, VL_ERR_INVALID, "tensor '%s' has no packed blocks", t->name);
        o->shape[0] = (out + VL_QPACK_ROWS - 1) / VL_QPACK_ROWS;
        o->shape[1] = (int64_t)rb * VL_QPACK_ROWS;
        o->data = t->pack;
        o->nbytes = vl__qpack_bytes(t->dtype, out, nb);
        return VL_OK;
    }
    o->shape[0] = out;
    o->shape[1] = (int64_t)rb;
    o->nbytes = (size_t)out * rb;
    if (t->data) {
        o->data = t->data;
        return VL_OK;
    }
    uint8_t *rows = vl__malloc(o->nbytes ? o->nbytes : 1);
    if (!rows)
        return vl__err(err, VL_ERR_NOMEM, "tensor '%s': out of memory", t->name);
    for (int64_t r = 0; r < out; r++)
        vl__qunpack_row(rows + (size_t)r * rb, t->pack, t->dtype, nb, r);
    o->data = rows;
    *tmp = rows;
    return VL_OK;
}

enum vl_status vl__quant_write(const struct vl_model *m, const char *dir, int version,
                               struct vl_error *err) {
    if (version != VL_QUANT_DESC_V1 && version != VL_QUANT_DESC_VERSION)
        return vl__err(err, VL_ERR_INVALID, "quantized checkpoint version %d: 1 or 2", version);
    if (vl_model_wformat(m, false) == VL_WFORMAT_BF16 && vl_model_wformat(m, true) == VL_WFORMAT_BF16)
        return vl__err(err, VL_ERR_INVALID, "nothing is quantized: ask for q8 or q4");
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return vl__err(err, VL_ERR_IO, "%s: not a directory", dir);
    struct vl_model *mm = (struct vl_model *)m; /* vl__quant_targets lists pointers; not written */
    int nt = vl__quant_targets(mm, false, NULL, 0), nv = vl__quant_targets(mm, true, NULL, 0);
    struct vl_tensor **tg = vl__calloc((size_t)(nt + nv), sizeof *tg);
    struct qname *q = vl__calloc((size_t)(nt + nv), sizeof *q);
    void **tmp = vl__calloc((size_t)(nt + nv), sizeof *tmp);
    int n_st = 0;
    for (int fi = 0; fi < m->n_files; fi++)
        n_st += vl_st_count(m->files[fi]);
    struct vl_st_entry *out = vl__calloc((size_t)n_st + 1, sizeof *out);
    enum vl_status st = tg && q && tmp && out ? VL_OK : vl__err(err, VL_ERR_NOMEM, "out of memory");
    int nq = 0, n_out = 0;
    if (st == VL_OK) {
        vl__quant_targets(mm, false, tg, nt);
        vl__quant_targets(mm, true, tg + nt, nv);
        for (int i = 0; i < nt + nv && st == VL_OK; i++) {
            if (!vl__dtype_is_quant(tg[i]->dtype))
                continue;
            q[nq] = (struct qname){.t = tg[i],
                                   .stored = tg[i] == &m->w.lm_head ? VL_LM_HEAD_NAME
                                                                     : tg[i]->name};
            st = quant_entry(&q[nq], version, &tmp[nq], err);
            nq++;
        }
    }
    /* every stored tensor, the quantized ones replaced by their blocks (matched by name) */
    bool head_in_file = false;
    for (int fi = 0; fi < m->n_files && st == VL_OK; fi++) {
        for (int i = 0; i < vl_st_count(m->files[fi]); i++) {
            const struct vl_st_entry *e = vl_st_get(m->files[fi], i);
            struct vl_st_entry o = *e;
            for (int k = 0; k < nq; k++) {
                if (strcmp(q[k].stored, e->name))
                    continue;
                o = q[k].e;
                o.name = e->name;
                head_in_file |= q[k].t == &m->w.lm_head;
            }
            if (!strcmp(e->name, VL_LM_HEAD_NAME) && m->cfg.text.tie_word_embeddings &&
                vl__dtype_is_quant(m->w.lm_head.dtype) && !head_in_file)
                continue; /* a stored copy the tied model ignored: replaced below */
            out[n_out++] = o;
        }
    }
    for (int k = 0; k < nq && st == VL_OK && !head_in_file; k++) {
        if (q[k].t != &m->w.lm_head)
            continue;
        struct vl_st_entry o = q[k].e;
        o.name = VL_LM_HEAD_NAME;
        out[n_out++] = o;
    }
    char *path = st == VL_OK ? vl__path_join(dir, SAFETENSORS_FILE) : NULL;
    if (st == VL_OK && !path)
        st = vl__err(err, VL_ERR_NOMEM, "out of memory");
    if (st == VL_OK)
        st = vl_st_write(path, out, n_out, err);
    for (size_t i = 0; i < sizeof copied_files / sizeof *copied_files && st == VL_OK; i++)
        st = copy_if_present(m->dir, dir, copied_files[i], err);
    if (st == VL_OK) /* last: a directory without it is not a quantized checkpoint yet */
        st = write_desc(dir, m, q, nq, version, err);
    for (int k = 0; tmp && k < nt + nv; k++)
        vl__free(tmp[k]);
    vl__free(path);
    vl__free(out);
    vl__free(tmp);
    vl__free(q);
    vl__free(tg);
    return st;
}

enum vl_status vl_model_write_quantized(const struct vl_model *m, const char *dir,
                                        struct vl_error *err) {
    return vl__quant_write(m, dir, VL_QUANT_DESC_VERSION, err);
}
