/* Named-tensor hook helpers: vl__hook (formats the checkpoint name only when a hook is set, so
 * an unset hook costs one pointer test) and the dump sink behind `docproc ask --dump DIR`, which
 * collects hook tensors in memory (row blocks of one name concatenated) and writes each as
 * DIR/<name>.safetensors through vl_st_write. A dump belongs to one state/thread. */
#include "vl_llm_impl.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOOK_NAME_MAX 128
#define DUMP_PATH_MAX 4096

void vl__hook(const struct vl_state *s, const float *data, int ndim, const int64_t *shape,
              const char *fmt, ...) {
    if (!s->hook)
        return;
    char name[HOOK_NAME_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    s->hook(name, data, ndim, shape, s->hook_user);
}

struct dump_tensor {
    char *name;
    int ndim;
    int64_t shape[VL_ST_MAX_DIMS];
    float *data;
    size_t numel;
};

struct vl_dump {
    char *dir;
    struct dump_tensor *t;
    int n, cap;
    struct vl_error err; /* first collection error */
};

enum vl_status vl_dump_new(struct vl_dump **out, const char *dir, struct vl_error *err) {
    *out = NULL;
    struct vl_dump *d = vl__calloc(1, sizeof *d);
    size_t len = strlen(dir);
    if (d)
        d->dir = vl__malloc(len + 1);
    if (!d || !d->dir) {
        vl__free(d);
        return vl__err(err, VL_ERR_NOMEM, "dump: out of memory");
    }
    memcpy(d->dir, dir, len + 1);
    *out = d;
    return VL_OK;
}

void vl_dump_free(struct vl_dump *d) {
    if (!d)
        return;
    for (int i = 0; i < d->n; i++) {
        vl__free(d->t[i].name);
        vl__free(d->t[i].data);
    }
    vl__free(d->t);
    vl__free(d->dir);
    vl__free(d);
}

static bool numel_of(size_t *out, int ndim, const int64_t *shape) {
    size_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || __builtin_mul_overflow(n, (size_t)shape[i], &n))
            return false;
    }
    *out = n;
    return true;
}

static struct dump_tensor *find(struct vl_dump *d, const char *name) {
    for (int i = 0; i < d->n; i++)
        if (!strcmp(d->t[i].name, name))
            return &d->t[i];
    return NULL;
}

/* Appends rows to an existing tensor with the same trailing dims (ndim >= 2). */
static void append_rows(struct vl_dump *d, struct dump_tensor *t, const float *data, int ndim,
                        const int64_t *shape, size_t numel) {
    bool same = ndim == t->ndim && ndim >= 2;
    for (int i = 1; same && i < ndim; i++)
        same = shape[i] == t->shape[i];
    if (!same) {
        vl__err(&d->err, VL_ERR_INVALID, "dump: tensor '%s' repeated with another shape",
                t->name);
        return;
    }
    size_t total;
    float *p = NULL;
    if (!__builtin_add_overflow(t->numel, numel, &total) && total <= SIZE_MAX / sizeof(float))
        p = vl__realloc(t->data, total * sizeof(float));
    if (!p) {
        vl__err(&d->err, VL_ERR_NOMEM, "dump: out of memory for '%s'", t->name);
        return;
    }
    memcpy(p + t->numel, data, numel * sizeof(float));
    t->data = p;
    t->numel = total;
    t->shape[0] += shape[0];
}

void vl_dump_hook(const char *name, const float *data, int ndim, const int64_t *shape,
                  void *user) {
    struct vl_dump *d = user;
    size_t numel;
    if (d->err.code != VL_OK)
        return;
    if (ndim < 1 || ndim > VL_ST_MAX_DIMS || !numel_of(&numel, ndim, shape)) {
        vl__err(&d->err, VL_ERR_INVALID, "dump: tensor '%s' has a bad shape", name);
        return;
    }
    struct dump_tensor *t = find(d, name);
    if (t) {
        append_rows(d, t, data, ndim, shape, numel);
        return;
    }
    if (d->n == d->cap) {
        int cap = d->cap ? 2 * d->cap : 16;
        struct dump_tensor *nt = vl__realloc(d->t, (size_t)cap * sizeof *nt);
        if (!nt) {
            vl__err(&d->err, VL_ERR_NOMEM, "dump: out of memory");
            return;
        }
        d->t = nt;
        d->cap = cap;
    }
    t = &d->t[d->n];
    memset(t, 0, sizeof *t);
    size_t len = strlen(name);
    t->name = vl__malloc(len + 1);
    t->data = vl__malloc(numel ? numel * sizeof(float) : 1);
    if (!t->name || !t->data) {
        vl__free(t->name);
        vl__free(t->data);
        vl__err(&d->err, VL_ERR_NOMEM, "dump: out of memory for '%s'", name);
        return;
    }
    memcpy(t->name, name, len + 1);
    memcpy(t->data, data, numel * sizeof(float));
    t->ndim = ndim;
    memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
    t->numel = numel;
    d->n++;
}

/* Checkpoints holding integers (positions, indexes) are written as I64. */
static bool is_integer_name(const char *name) {
    static const char *const ints[] = {"position_ids", "rope_deltas", "window_index",
                                       "cu_seqlens", "cu_window_seqlens"};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        size_t a = strlen(name), b = strlen(ints[i]);
        if (a >= b && !strcmp(name + a - b, ints[i]))
            return true;
    }
    return false;
}

static enum vl_status write_one(const struct vl_dump *d, const struct dump_tensor *t,
                                struct vl_error *err) {
    char path[DUMP_PATH_MAX];
    int len = snprintf(path, sizeof path, "%s/%s.safetensors", d->dir, t->name);
    if (len < 0 || (size_t)len >= sizeof path)
        return vl__err(err, VL_ERR_LIMIT, "dump: path of '%s' longer than %d bytes", t->name,
                       DUMP_PATH_MAX);
    struct vl_st_entry e = {.name = t->name, .dtype = "F32", .ndim = t->ndim,
                            .data = t->data, .nbytes = t->numel * sizeof(float)};
    memcpy(e.shape, t->shape, (size_t)t->ndim * sizeof e.shape[0]);
    int64_t *ints = NULL;
    if (is_integer_name(t->name)) {
        ints = vl__malloc(t->numel ? t->numel * sizeof *ints : 1);
        if (!ints)
            return vl__err(err, VL_ERR_NOMEM, "dump: out of memory");
        for (size_t i = 0; i < t->numel; i++)
            ints[i] = (int64_t)llround((double)t->data[i]);
        e.dtype = "I64";
        e.data = ints;
        e.nbytes = t->numel * sizeof *ints;
    }
    enum vl_status st = vl_st_write(path, &e, 1, err);
    vl__free(ints);
    return st;
}

enum vl_status vl_dump_finish(struct vl_dump *d, struct vl_error *err) {
    if (d->err.code != VL_OK)
        return vl__err(err, d->err.code, "%s", d->err.msg);
    for (int i = 0; i < d->n; i++) {
        enum vl_status st = write_one(d, &d->t[i], err);
        if (st != VL_OK)
            return st;
    }
    return VL_OK;
}
