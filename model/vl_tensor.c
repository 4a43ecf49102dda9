/* Tensor dtype traits and small tensor helpers (ggml type_traits style).
 * Owns the dtype table: safetensors name and element size per enum vl_dtype, pinned to the enum
 * by static_assert so adding a dtype without a table row fails to compile.
 * Widening to f32 (vl__to_f32) lives with the kernels in vl_ops.c.
 * Thread-safe: constant data only. */
#include "vl_impl.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

struct dtype_traits {
    const char *name; /* safetensors dtype string */
    size_t size;      /* bytes per element (per block of a block type) */
    int64_t block;    /* elements per block (1: an element type) */
};

static const struct dtype_traits dtype_table[] = {
    [VL_DTYPE_F32]     = {"F32", 4, 1},
    [VL_DTYPE_F16]     = {"F16", 2, 1},
    [VL_DTYPE_BF16]    = {"BF16", 2, 1},
    [VL_DTYPE_F64]     = {"F64", 8, 1},
    [VL_DTYPE_I64]     = {"I64", 8, 1},
    [VL_DTYPE_I32]     = {"I32", 4, 1},
    [VL_DTYPE_I16]     = {"I16", 2, 1},
    [VL_DTYPE_I8]      = {"I8", 1, 1},
    [VL_DTYPE_U8]      = {"U8", 1, 1},
    [VL_DTYPE_BOOL]    = {"BOOL", 1, 1},
    [VL_DTYPE_F8_E4M3] = {"F8_E4M3", 1, 1},
    [VL_DTYPE_F8_E5M2] = {"F8_E5M2", 1, 1},
    [VL_DTYPE_Q8_0]    = {"Q8_0", 34, 32}, /* VL_Q8_0_BYTES, VL_QK (vl_quant_impl.h) */
    [VL_DTYPE_Q4_0]    = {"Q4_0", 18, 32},
};
static_assert(sizeof dtype_table / sizeof dtype_table[0] == VL_DTYPE_COUNT,
              "dtype_table must have one row per enum vl_dtype");

size_t vl__dtype_size(enum vl_dtype t) {
    VL_ASSERT((unsigned)t < VL_DTYPE_COUNT);
    return dtype_table[t].size;
}

const char *vl__dtype_name(enum vl_dtype t) {
    VL_ASSERT((unsigned)t < VL_DTYPE_COUNT);
    return dtype_table[t].name;
}

int64_t vl__dtype_block(enum vl_dtype t) {
    VL_ASSERT((unsigned)t < VL_DTYPE_COUNT);
    return dtype_table[t].block;
}

bool vl__dtype_from_name(const char *name, enum vl_dtype *out) {
    enum vl_dtype t;
    if (!vl__dtype_from_any_name(name, &t) || dtype_table[t].block != 1)
        return false;
    *out = t;
    return true;
}

bool vl__dtype_from_any_name(const char *name, enum vl_dtype *out) {
    for (int i = 0; i < VL_DTYPE_COUNT; i++) {
        if (!strcmp(dtype_table[i].name, name)) {
            *out = (enum vl_dtype)i;
            return true;
        }
    }
    return false;
}

bool vl__dtype_is_float(enum vl_dtype t) {
    return t == VL_DTYPE_F32 || t == VL_DTYPE_F16 || t == VL_DTYPE_BF16;
}

int64_t vl__tensor_numel(const struct vl_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= t->ne[i]; /* shapes were overflow-checked when the file was validated */
    return n;
}

size_t vl__tensor_nbytes(const struct vl_tensor *t) {
    int64_t blk = vl__dtype_block(t->dtype);
    if (blk == 1)
        return (size_t)vl__tensor_numel(t) * vl__dtype_size(t->dtype);
    /* block types: rows of the last dimension, each a whole number of (padded) blocks */
    int64_t in = t->ndim ? t->ne[t->ndim - 1] : 1, rows = in ? vl__tensor_numel(t) / in : 0;
    return (size_t)rows * (size_t)((in + blk - 1) / blk) * vl__dtype_size(t->dtype);
}

enum vl_status vl__tensor_from_st(struct vl_tensor *out, const struct vl_st_entry *e,
                                  struct vl_error *err) {
    memset(out, 0, sizeof *out);
    if (!vl__dtype_from_name(e->dtype, &out->dtype))
        return vl__err(err, VL_ERR_FORMAT, "tensor '%s': unknown dtype '%s'", e->name, e->dtype);
    if (e->ndim > VL_MAX_DIMS)
        return vl__err(err, VL_ERR_UNSUPPORTED, "tensor '%s': %d dimensions, max %d", e->name,
                       e->ndim, VL_MAX_DIMS);
    out->ndim = e->ndim;
    for (int i = 0; i < e->ndim; i++)
        out->ne[i] = e->shape[i];
    out->data = e->data;
    out->name = e->name;
    return VL_OK;
}

int vl__shape_str(char *buf, size_t n, int ndim, const int64_t *ne) {
    size_t len = 0;
    int w = snprintf(buf, n, "[");
    if (w < 0 || (size_t)w >= n)
        return w;
    len = (size_t)w;
    for (int i = 0; i < ndim; i++) {
        w = snprintf(buf + len, n - len, "%s%lld", i ? ", " : "", (long long)ne[i]);
        if (w < 0 || (size_t)w >= n - len)
            return w;
        len += (size_t)w;
    }
    w = snprintf(buf + len, n - len, "]");
    return w < 0 ? w : (int)(len + (size_t)w);
}

bool vl__size_mul(size_t *out, size_t a, size_t b) {
    if (b && a > SIZE_MAX / b)
        return false;
    *out = a * b;
    return true;
}

bool vl__size_add(size_t *out, size_t a, size_t b) {
    if (a > SIZE_MAX - b)
        return false;
    *out = a + b;
    return true;
}
