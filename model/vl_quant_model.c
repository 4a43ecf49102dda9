/* Quantized weights, part 4: the model's weight format (vl_model_quantize: quantize at load) and
 * the list of which tensors a format covers. The LLM's Linear weights (q, k, v, o, gate, up,
 * down and lm_head: a tied lm_head gets its own quantized copy, the embedding lookup stays as
 * stored) and the vision tower's (qkv, proj, gate, up, down, merger fc1/fc2) are quantized one
 * tensor at a time into temporary rows, packed into model-owned memory (the kernels' layout) and
 * the rows freed: the model keeps only the packed copy (w->data NULL), the extra memory is one
 * tensor's rows. Norms, biases, the embedding and the Conv3d patch embedding stay as stored.
 * Quantized weights bound as rows (GGUF, version-1 checkpoints) get the kernels' packed copy at
 * the end of the load (vl__quant_pack_model; a few threads, huge pages where the kernel has
 * them); version-2 checkpoints are bound packed (vl_quant_ckpt.c) and skipped.
 * Thread-safety: runs before the model is shared (the model is immutable afterwards). */
#include "vl_quant_impl.h"

#include <string.h>
#include <unistd.h>

static const char *const wformat_names[] = {
    [VL_WFORMAT_BF16] = "bf16",
    [VL_WFORMAT_Q8] = "q8",
    [VL_WFORMAT_Q4] = "q4",
};
#define N_WFORMATS (sizeof wformat_names / sizeof wformat_names[0])

bool vl_wformat_parse(const char *s, enum vl_wformat *out) {
    for (size_t i = 0; i < N_WFORMATS; i++) {
        if (!strcmp(s, wformat_names[i])) {
            *out = (enum vl_wformat)i;
            return true;
        }
    }
    return false;
}

const char *vl_wformat_name(enum vl_wformat f) {
    return (unsigned)f < N_WFORMATS ? wformat_names[f] : "?";
}

static enum vl_dtype dtype_of(enum vl_wformat f) {
    return f == VL_WFORMAT_Q8 ? VL_DTYPE_Q8_0 : VL_DTYPE_Q4_0;
}

/* ---- which tensors --------------------------------------------------------------------------- */

int vl__quant_targets(struct vl_model *m, bool vision, struct vl_tensor **out, int cap) {
    struct vl_weights *w = &m->w;
    int n = 0;
#define ADD(t)                                                                                    \
    do {                                                                                          \
        if (n < cap)                                                                              \
            out[n] = (t);                                                                         \
        n++;                                                                                      \
    } while (0)
    if (vision) {
        for (int64_t b = 0; b < m->cfg.vision.depth; b++) {
            struct vl_vision_block *vb = &w->vblocks[b];
            ADD(&vb->qkv_w);
            ADD(&vb->proj_w);
            ADD(&vb->gate_w);
            ADD(&vb->up_w);
            ADD(&vb->down_w);
        }
        ADD(&w->merger_fc1_w);
        ADD(&w->merger_fc2_w);
    } else {
        for (int64_t l = 0; l < m->cfg.text.num_hidden_layers; l++) {
            struct vl_llm_layer *ly = &w->layers[l];
            ADD(&ly->q_w);
            ADD(&ly->k_w);
            ADD(&ly->v_w);
            ADD(&ly->o_w);
            ADD(&ly->gate_w);
            ADD(&ly->up_w);
            ADD(&ly->down_w);
        }
        ADD(&w->lm_head);
    }
#undef ADD
    return n;
}

/* ---- the kernels' packed copies ------------------------------------------------------------ */

struct pjob {
    const struct vl_tensor *w;
    uint8_t *dst;
};

static void pjob_run(void *arg, int ith, int nth) {
    const struct pjob *j = arg;
    const int64_t out = j->w->ne[0], nb = vl__q_blocks(j->w->ne[1]);
    int64_t g0, g1;
    vl__pool_split((out + VL_QPACK_ROWS - 1) / VL_QPACK_ROWS, 1, ith, nth, &g0, &g1);
    vl__qpack(j->dst, j->w->data, j->w->dtype, out, nb, g0, g1);
}

#define QUANT_ALIGN 64
#define PACK_ALIGN ((size_t)2 << 20) /* 2 MiB: the packed copies ask for huge pages */
#define PACK_THREADS 4               /* the packing at load is a memory copy: a few threads */

/* w's packed copy (vl__qpack_tensor's bytes) from its rows w->data, split over the pool, in huge
 * pages where the kernel has them; NULL: out of memory. */
static void *pack_tensor(const struct vl_tensor *w, struct vl_pool *pool) {
    const int64_t out = w->ne[0], nb = vl__q_blocks(w->ne[1]);
    const size_t bytes = vl__qpack_bytes(w->dtype, out, nb);
    uint8_t *p = vl__aligned_alloc(bytes >= PACK_ALIGN ? PACK_ALIGN : QUANT_ALIGN, bytes ? bytes : 1);
    if (!p)
        return NULL;
    if (bytes >= PACK_ALIGN)
        vl__advise_huge(p, bytes);
    struct pjob j = {.w = w, .dst = p};
    vl__pool_run(pool, pjob_run, &j);
    return p;
}

static size_t pack_bytes(const struct vl_tensor *w) {
    return vl__qpack_bytes(w->dtype, w->ne[0], vl__q_blocks(w->ne[1]));
}

enum vl_status vl__quant_pack_model(struct vl_model *m, struct vl_error *err) {
    const double t0 = vl__now_s();
    size_t total = 0;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    struct vl_pool *pool = vl__pool_new(ncpu < 1 ? 1 : ncpu > PACK_THREADS ? PACK_THREADS : (int)ncpu);
    if (!pool)
        return vl__err(err, VL_ERR_NOMEM, "pack: cannot start threads");
    for (int vision = 0; vision < 2; vision++) {
        if (vision && m->text_only)
            break;
        int n = vl__quant_targets(m, vision, NULL, 0);
        struct vl_tensor **ts = vl__calloc((size_t)(n > 0 ? n : 1), sizeof *ts);
        if (!ts) {
            vl__pool_free(pool);
            return vl__err(err, VL_ERR_NOMEM, "pack: out of memory");
        }
        vl__quant_targets(m, vision, ts, n);
        enum vl_status st = VL_OK;
        for (int i = 0; i < n && st == VL_OK; i++) {
            struct vl_tensor *w = ts[i];
            /* already packed: quantized at load, or a v2 checkpoint's view of its mapping */
            if (!vl__dtype_is_quant(w->dtype) || w->pack || !w->data)
                continue;
            void *p = pack_tensor(w, pool);
            if (!p) {
                st = vl__err(err, VL_ERR_NOMEM, "pack: cannot allocate %zu bytes for '%s'",
                             pack_bytes(w), w->name);
                break;
            }
            st = vl__model_own(m, p, pack_bytes(w), err);
            if (st == VL_OK) {
                w->pack = p;
                total += pack_bytes(w);
            }
        }
        vl__free(ts);
        if (st != VL_OK) {
            vl__pool_free(pool);
            return st;
        }
    }
    vl__pool_free(pool);
    if (total)
        vl__log(VL_LOG_DEBUG, "packed %.1f MiB of quantized weights for the kernels in %.2f s",
                (double)total / (1 << 20), vl__now_s() - t0);
    return VL_OK;
}

/* ---- quantize at load ---------------------------------------------------------------------- */

struct qjob {
    const struct vl_tensor *src;
    uint8_t *dst;
    enum vl_dtype t;
    float *rowbuf; /* nth rows of src->ne[1] floats */
};

static void qjob_run(void *arg, int ith, int nth) {
    const struct qjob *j = arg;
    const int64_t out = j->src->ne[0], in = j->src->ne[1];
    const size_t rb = vl__q_row_bytes(j->t, in);
    float *row = j->rowbuf + ith * in;
    int64_t r0, r1;
    vl__pool_split(out, 1, ith, nth, &r0, &r1);
    for (int64_t r = r0; r < r1; r++) {
        vl__to_f32(row, j->src, r * in, in);
        vl__quantize_row(j->dst + (size_t)r * rb, j->t, row, in);
    }
}

/* One tensor: its rows quantized into a temporary buffer, packed into model-owned memory, the
 * rows freed. The model keeps only the packed copy (w->data NULL, w->pack set): the extra memory
 * at any time is one tensor's rows. */
static enum vl_status quantize_one(struct vl_model *m, struct vl_tensor *w, enum vl_dtype t,
                                   float *rowbuf, struct vl_pool *pool, struct vl_error *err) {
    VL_ASSERT(w->ndim == 2 && vl__dtype_is_float(w->dtype));
    size_t bytes = (size_t)w->ne[0] * vl__q_row_bytes(t, w->ne[1]);
    uint8_t *rows = vl__aligned_alloc(QUANT_ALIGN, bytes ? bytes : 1);
    if (!rows)
        return vl__err(err, VL_ERR_NOMEM, "quantize: cannot allocate %zu bytes for '%s'", bytes,
                       w->name);
    struct qjob j = {.src = w, .dst = rows, .t = t, .rowbuf = rowbuf};
    vl__pool_run(pool, qjob_run, &j);
    const struct vl_tensor q = {.dtype = t, .ndim = 2, .ne = {w->ne[0], w->ne[1]}, .data = rows,
                                .name = w->name};
    void *p = pack_tensor(&q, pool);
    vl__free(rows);
    if (!p)
        return vl__err(err, VL_ERR_NOMEM, "quantize: cannot allocate %zu bytes for '%s'",
                       pack_bytes(&q), w->name);
    enum vl_status st = vl__model_own(m, p, pack_bytes(&q), err);
    if (st == VL_OK) {
        w->dtype = t;
        w->data = NULL; /* no rows kept: vl__qrow unpacks one from the packed copy */
        w->pack = p;
    }
    return st;
}

static enum vl_status quantize_group(struct vl_model *m, bool vision, enum vl_wformat f,
                                     struct vl_pool *pool, struct vl_error *err) {
    int n = vl__quant_targets(m, vision, NULL, 0);
    struct vl_tensor **ts = vl__calloc((size_t)n, sizeof *ts);
    if (!ts)
        return vl__err(err, VL_ERR_NOMEM, "quantize: out of memory");
    vl__quant_targets(m, vision, ts, n);
    int64_t max_in = 1;
    for (int i = 0; i < n; i++)
        max_in = ts[i]->ne[1] > max_in ? ts[i]->ne[1] : max_in;
    const int nth = vl__pool_size(pool);
    float *rowbuf = vl__calloc((size_t)nth * (size_t)max_in, sizeof *rowbuf);
    enum vl_status st = rowbuf ? VL_OK : vl__err(err, VL_ERR_NOMEM, "quantize: out of memory");
    const enum vl_dtype t = dtype_of(f);
    const enum vl_wformat stored = vl_model_wformat(m, vision);
    for (int i = 0; i < n && st == VL_OK; i++) {
        struct vl_tensor *w = ts[i];
        if (vl__dtype_is_quant(w->dtype)) { /* a quantized checkpoint: only its own format */
            if (w->dtype != t && f != stored) /* a mixed GGUF (Q4_0 + Q8_0 lm_head): as stored */
                st = vl__err(err, VL_ERR_INVALID,
                             "tensor '%s' is stored as %s; --%sweights %s needs a %s checkpoint "
                             "(or the BF16 one)",
                             w->name, vl__dtype_name(w->dtype), vision ? "vision-" : "",
                             vl_wformat_name(f), vl__dtype_name(t));
            continue;
        }
        st = quantize_one(m, w, t, rowbuf, pool, err);
    }
    vl__free(rowbuf);
    vl__free(ts);
    return st;
}

enum vl_status vl_model_quantize(struct vl_model *m, enum vl_wformat text,
                                 enum vl_wformat vision, int n_threads, struct vl_error *err) {
    if ((unsigned)text >= N_WFORMATS || (unsigned)vision >= N_WFORMATS)
        return vl__err(err, VL_ERR_INVALID, "quantize: unknown weight format");
    if (vision == VL_WFORMAT_Q4)
        return vl__err(err, VL_ERR_INVALID,
                       "--vision-weights q4 is not offered (bf16 or q8): the vision tower does not "
                       "survive 4-bit weights");
    enum vl_wformat stored_text = vl_model_wformat(m, false);
    enum vl_wformat stored_vision = vl_model_wformat(m, true);
    if (text == VL_WFORMAT_BF16 && stored_text != VL_WFORMAT_BF16)
        return vl__err(err, VL_ERR_INVALID,
                       "the checkpoint's text weights are %s; --weights bf16 needs a BF16 checkpoint",
                       vl_wformat_name(stored_text));
    if (vision == VL_WFORMAT_BF16 && stored_vision != VL_WFORMAT_BF16)
        return vl__err(err, VL_ERR_INVALID,
                       "the checkpoint's vision weights are %s; --vision-weights bf16 needs a BF16 "
                       "checkpoint",
                       vl_wformat_name(stored_vision));
    if (text == VL_WFORMAT_BF16 && vision == VL_WFORMAT_BF16)
        return VL_OK;
    struct vl_pool *pool = vl__pool_new(n_threads < 1 ? 1 : n_threads);
    if (!pool)
        return vl__err(err, VL_ERR_NOMEM, "quantize: cannot start %d threads", n_threads);
    enum vl_status st = VL_OK;
    if (text != VL_WFORMAT_BF16)
        st = quantize_group(m, false, text, pool, err);
    if (st == VL_OK && vision != VL_WFORMAT_BF16 && !m->text_only)
        st = quantize_group(m, true, vision, pool, err);
    vl__pool_free(pool);
    if (st == VL_OK)
        st = vl__quant_pack_model(m, err);
    return st;
}

enum vl_wformat vl_model_wformat(const struct vl_model *m, bool vision) {
    /* the first target tells: a model is quantized per group, all or nothing */
    struct vl_tensor *t[1];
    if (vl__quant_targets((struct vl_model *)m, vision, t, 1) < 1)
        return VL_WFORMAT_BF16;
    switch (t[0]->dtype) {
    case VL_DTYPE_Q8_0: return VL_WFORMAT_Q8;
    case VL_DTYPE_Q4_0: return VL_WFORMAT_Q4;
    default: return VL_WFORMAT_BF16;
    }
}
