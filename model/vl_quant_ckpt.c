/* Quantized weights, part 5: quantized checkpoints (`docproc model quantize DIR --to q8|q4 -o
 * OUT`). OUT has the published layout — config.json, generation/preprocessor configs, tokenizer
 * files copied, one model.safetensors — plus quantization.json, the format description:
 *   {"format": "docproc-blocks", "version": 1, "block": 32, "text": "q8", "vision": "bf16",
 *    "tensors": {"model.layers.0.self_attn.q_proj.weight": {"type": "Q8_0", "shape": [o, i]}, ...}}
 * Each listed tensor is stored as U8 [o, row bytes] (rows of whole blocks, vl_quant_impl.h) under
 * its own name, so the file stays plain safetensors; at load it is bound as a block view of the
 * mapping (no copy). A tied lm_head's quantized copy is stored as lm_head.weight.
 * The description is untrusted input: every entry is checked (type, shape, name, U8 size).
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

bool vl__quant_desc_type(const struct vl_model *m, const char *canonical, enum vl_dtype *out) {
    if (!m->quant_desc)
        return false;
    gpointer v = g_hash_table_lookup(m->quant_desc, canonical);
    if (!v)
        return false;
    *out = (enum vl_dtype)(GPOINTER_TO_INT(v) - 1);
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
    json_t *root = NULL;
    if (st == VL_OK) {
        json_error_t je;
        root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
        vl__free(text);
        if (!root)
            st = vl__err(err, VL_ERR_MODEL, "%s: invalid JSON: %s (line %d)", path, je.text,
                         je.line);
    }
    json_t *fmt = root ? json_object_get(root, "format") : NULL;
    json_t *ver = root ? json_object_get(root, "version") : NULL;
    json_t *blk = root ? json_object_get(root, "block") : NULL;
    json_t *ts = root ? json_object_get(root, "tensors") : NULL;
    if (st == VL_OK &&
        (!json_is_string(fmt) || strcmp(json_string_value(fmt), VL_QUANT_DESC_FORMAT) ||
         !json_is_integer(ver) || json_integer_value(ver) != VL_QUANT_DESC_VERSION ||
         !json_is_integer(blk) || json_integer_value(blk) != VL_QK || !json_is_object(ts)))
        st = vl__err(err, VL_ERR_MODEL,
                     "%s: not a %s v%d description with block %d and a \"tensors\" object", path,
                     VL_QUANT_DESC_FORMAT, VL_QUANT_DESC_VERSION, VL_QK);
    GHashTable *h = NULL;
    if (st == VL_OK) {
        h = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        const char *key;
        json_t *v;
        json_object_foreach(ts, key, v) {
            json_t *ty = json_object_get(v, "type");
            enum vl_dtype t;
            if (!json_is_string(ty) || !vl__dtype_from_any_name(json_string_value(ty), &t) ||
                !vl__dtype_is_quant(t) || strlen(key) >= NAME_MAX_LEN) {
                st = vl__err(err, VL_ERR_MODEL, "%s: tensor '%.64s': type must be Q8_0 or Q4_0",
                             path, key);
                break;
            }
            g_hash_table_insert(h, g_strdup(key), GINT_TO_POINTER((int)t + 1));
        }
    }
    if (st == VL_OK)
        m->quant_desc = h;
    else if (h)
        g_hash_table_destroy(h);
    json_decref(root);
    vl__free(path);
    return st;
}

enum vl_status vl__quant_bind(struct vl_tensor *dst, const struct vl_st_entry *e,
                              const char *file, const char *name, enum vl_dtype t,
                              const int64_t *want, int nd, struct vl_error *err) {
    if (nd != 2)
        return vl__err(err, VL_ERR_MODEL, "%s: tensor '%s' cannot be quantized (not a matrix)",
                       file, name);
    size_t rb = vl__q_row_bytes(t, want[1]);
    if (strcmp(e->dtype, "U8") || e->ndim != 2 || e->shape[0] != want[0] ||
        (size_t)e->shape[1] != rb)
        return vl__err(err, VL_ERR_MODEL,
                       "%s: tensor '%s' (%s) must be U8 [%lld, %zu] for %s [%lld, %lld]", file,
                       name, e->dtype, (long long)want[0], rb, vl__dtype_name(t),
                       (long long)want[0], (long long)want[1]);
    memset(dst, 0, sizeof *dst);
    dst->dtype = t;
    dst->ndim = 2;
    dst->ne[0] = want[0];
    dst->ne[1] = want[1];
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
};

static enum vl_status write_desc(const char *dir, const struct vl_model *m,
                                 const struct qname *q, int nq, struct vl_error *err) {
    json_t *root = json_pack("{s:s, s:i, s:i, s:s, s:s}", "format", VL_QUANT_DESC_FORMAT,
                             "version", VL_QUANT_DESC_VERSION, "block", VL_QK, "text",
                             vl_wformat_name(vl_model_wformat(m, false)), "vision",
                             vl_wformat_name(vl_model_wformat(m, true)));
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

enum vl_status vl_model_write_quantized(const struct vl_model *m, const char *dir,
                                        struct vl_error *err) {
    if (vl_model_wformat(m, false) == VL_WFORMAT_BF16 && vl_model_wformat(m, true) == VL_WFORMAT_BF16)
        return vl__err(err, VL_ERR_INVALID, "nothing is quantized: ask for q8 or q4");
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return vl__err(err, VL_ERR_IO, "%s: not a directory", dir);
    struct vl_model *mm = (struct vl_model *)m; /* vl__quant_targets lists pointers; not written */
    int nt = vl__quant_targets(mm, false, NULL, 0), nv = vl__quant_targets(mm, true, NULL, 0);
    struct vl_tensor **tg = vl__calloc((size_t)(nt + nv), sizeof *tg);
    struct qname *q = vl__calloc((size_t)(nt + nv), sizeof *q);
    int n_st = 0;
    for (int fi = 0; fi < m->n_files; fi++)
        n_st += vl_st_count(m->files[fi]);
    struct vl_st_entry *out = vl__calloc((size_t)n_st + 1, sizeof *out);
    enum vl_status st = tg && q && out ? VL_OK : vl__err(err, VL_ERR_NOMEM, "out of memory");
    int nq = 0, n_out = 0;
    if (st == VL_OK) {
        vl__quant_targets(mm, false, tg, nt);
        vl__quant_targets(mm, true, tg + nt, nv);
        for (int i = 0; i < nt + nv; i++)
            if (vl__dtype_is_quant(tg[i]->dtype))
                q[nq++] = (struct qname){.t = tg[i],
                                         .stored = tg[i] == &m->w.lm_head ? VL_LM_HEAD_NAME
                                                                           : tg[i]->name};
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
                o.dtype = "U8";
                o.ndim = 2;
                o.shape[0] = q[k].t->ne[0];
                o.shape[1] = (int64_t)vl__q_row_bytes(q[k].t->dtype, q[k].t->ne[1]);
                o.data = q[k].t->data;
                o.nbytes = (size_t)o.shape[0] * (size_t)o.shape[1];
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
        struct vl_st_entry o = {.name = VL_LM_HEAD_NAME, .dtype = "U8", .ndim = 2,
                                .data = q[k].t->data};
        o.shape[0] = q[k].t->ne[0];
        o.shape[1] = (int64_t)vl__q_row_bytes(q[k].t->dtype, q[k].t->ne[1]);
        o.nbytes = (size_t)o.shape[0] * (size_t)o.shape[1];
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
        st = write_desc(dir, m, q, nq, err);
    vl__free(path);
    vl__free(out);
    vl__free(q);
    vl__free(tg);
    return st;
}
