/* model/ private declarations of the quantized weights (vl_quant.c, vl_quant_ops.c,
 * vl_quant_x86.c, vl_quant_model.c). Never included by a public header.
 *
 * Block formats (docs/quantization.md): 32 weights per block, one f16 scale per block, byte
 * layouts identical to GGUF's Q8_0 and Q4_0 so llama.cpp's files can be read in place:
 *   Q8_0: { f16 d; int8 q[32] }   34 bytes, x = d * q, q in [-127, 127]
 *   Q4_0: { f16 d; u8 qs[16] }    18 bytes, x = d * (nibble - 8); byte j holds element j in its
 *                                 low nibble and element j + 16 in its high nibble
 * A row of `in` weights is ceil(in / 32) blocks (the last one zero-padded: our own files only;
 * GGUF rows are whole blocks). Quantized tensors keep their logical shape [out, in].
 *
 *   vl__qlinear_multi(c, x, n, outs, n_outs, swiglu);  // what vl__linear* call for Q8_0 / Q4_0
 *
 * Activations are quantized per block of 32 on the fly (int8, f32 scale d = amax / 127), and each
 * output is, over the blocks b in increasing order,
 *     s_b = sum of the block's 32 int8 x int8 products   (one exact int32: |s_b| < 2^20)
 *     acc = fmaf((float)s_b, d_w[b] * d_x[b], acc)          (from acc = 0; (float)s_b is exact)
 * The scalar twin computes exactly that, so every table gives bit-identical results, and an output
 * row never depends on the other rows computed with it (batching, threads, chunking).
 *
 * Packed layout (what the kernels read, struct vl_tensor.pack: stored as is in version-2
 * `model quantize` checkpoints and mapped; made at load by vl__qpack for weights quantized at
 * load and for rows on disk — GGUF, version-1 checkpoints): rows in groups of VL_QPACK_ROWS = 16
 * (the last group
 * zero-padded), group G's blocks one after the other, block b of the group =
 *     16 f16 scales (row 16G + j at bytes 2j)                                         32 bytes
 *     Q8_0: 8 chunks e = 0..7, row j's elements 4e..4e+3 at bytes 4j..4j+3 as w ^ 0x80
 *           (= w + 128, unsigned)                                               8 x 64 bytes
 *     Q4_0: 4 chunks c = 0..3, row j's Q4_0 bytes qs[4c..4c+3] at bytes 4j..4j+3 (low nibbles:
 *           elements 4c..4c+3, high nibbles: 16+4c..16+4c+3; w + 8, unsigned)   4 x 64 bytes
 * i.e. 16 x 34 resp. 16 x 18 bytes: the same size as the rows it came from. One 64-byte load is
 * one 4-element group of 16 rows: the 16 lanes of a zmm are 16 outputs. */
#ifndef VL_QUANT_IMPL_H
#define VL_QUANT_IMPL_H

#include "vl_impl.h"

#define VL_QK 32            /* weights per block */
#define VL_Q8_0_BYTES 34    /* f16 scale + 32 int8 */
#define VL_Q4_0_BYTES 18    /* f16 scale + 16 bytes of nibbles */
#define VL_Q8_MAX 127       /* |q| of Q8_0 weights and of quantized activations */
#define VL_Q4_OFFSET 8      /* Q4_0 nibble bias */

bool vl__dtype_is_quant(enum vl_dtype t);
int64_t vl__q_blocks(int64_t in);                          /* ceil(in / VL_QK) */
size_t vl__q_row_bytes(enum vl_dtype t, int64_t in);       /* bytes of one quantized row */

/* f32 -> f16 with round-to-nearest-even (subnormals, overflow to inf), exact inverse of
 * vl__f16_to_f32 on representable values. */
uint16_t vl__f32_to_f16(float f);

/* One row of n weights into ceil(n / 32) blocks (t = Q8_0 or Q4_0), and back (dst: n floats). */
void vl__quantize_row(void *dst, enum vl_dtype t, const float *x, int64_t n);
void vl__dequantize_row(float *dst, enum vl_dtype t, const void *src, int64_t n);

/* Activations: x[n] -> q[nb * 32] (zero-padded) and d[nb] with d = amax / 127, q = round(x / d)
 * (ties to even). The scalar twin of every table's quantize_act (bit-identical to it). */
void vl__quantize_act(int8_t *q, float *d, const float *x, int64_t n);

/* The activation quantizer of a table: vl__quantize_act's bytes (SIMD ones: vl_quant_act.c). */
typedef void (*vl_quantize_act_fn)(int8_t *q, float *d, const float *x, int64_t n);

/* ---- packed layout (above) ---- */
#define VL_QPACK_ROWS 16
#define VL_QPACK_SCALE_BYTES (VL_QPACK_ROWS * 2)
#define VL_QPACK_CHUNK 64 /* bytes: 4 bytes of each of the 16 rows */
/* Bytes of the packed copy of `out` rows of nb blocks of type t (rows padded to a multiple of 16). */
size_t vl__qpack_bytes(enum vl_dtype t, int64_t out, int64_t nb);
/* Packs the row groups [g0, g1) of src (out rows of nb blocks) into dst (vl__qpack_bytes). */
void vl__qpack(uint8_t *dst, const uint8_t *src, enum vl_dtype t, int64_t out, int64_t nb,
               int64_t g0, int64_t g1);
/* The inverse for one row: row r's nb original blocks (Q8_0 / Q4_0 bytes, nb * block bytes) from
 * the packed layout pack (any alignment). */
void vl__qunpack_row(uint8_t *dst, const uint8_t *pack, enum vl_dtype t, int64_t nb, int64_t r);
/* Row r's blocks of a quantized tensor, from its rows (w->data) where it has them, else unpacked
 * from w->pack into buf (vl__q_row_bytes bytes). Returns the row (w->data's or buf). */
const uint8_t *vl__qrow(const struct vl_tensor *w, int64_t r, uint8_t *buf);
/* w->pack for a Q8_0 / Q4_0 tensor: a new vl__aligned_alloc'd packed copy (NULL: out of memory);
 * the caller owns it. */
void *vl__qpack_tensor(const struct vl_tensor *w);
/* The x blocks' corrections the kernels start from: xc[b] = -k * (sum of x block b's 32 int8),
 * k = 128 (Q8_0: the packed w + 128) or 8 (Q4_0: the nibbles w + 8). */
void vl__act_corr(int32_t *xc, const int8_t *xq, int64_t nb, enum vl_dtype t);
/* The definition above for one output on the original row layout (tests: the packed kernels
 * must give these bits). */
float vl__qdot(const int8_t *xq, const float *xd, const uint8_t *wrow, enum vl_dtype t,
               int64_t nb);

/* Integer kernels, one table per instruction set (scalar twin first). */
struct vl_qsimd {
    const char *name; /* "scalar", "avx2", "avxvnni", "avx512vnni" */
    vl_quantize_act_fn quantize_act; /* bit-identical to vl__quantize_act on every table */
    /* y[i * ldy + r] = dot(W row r, x row i) for x rows i in [0, nx) and weight rows r in [r0, r1).
     * xq: (nx, nb * 32) int8, xd: (nx, nb) scales, xc: (nx, nb) the x blocks' corrections for
     * type t (vl__act_corr), wp: the weights in the packed layout (vl__qpack), nb blocks a row. */
    void (*gemm)(float *y, int64_t ldy, const int8_t *xq, const float *xd, const int32_t *xc,
                 int64_t nx, const uint8_t *wp, enum vl_dtype t, int64_t nb, int64_t r0,
                 int64_t r1);
};
const struct vl_qsimd *vl__qsimd(void);        /* the dispatched table (see vl_quant.c) */
/* Bytes ahead of each packed group's stream that the decode tiles (one x row) request lines:
 * VL_QGEMV_PREFETCH_DEFAULT_BYTES unless VL_QGEMV_PREFETCH is set (read with the table). */
extern int64_t vl__qgemv_prefetch;
const struct vl_qsimd *vl__qsimd_scalar(void);
const struct vl_qsimd *vl__qsimd_avx2(void);   /* NULL without AVX2 + FMA + F16C */
const struct vl_qsimd *vl__qsimd_avxvnni(void); /* NULL without that and AVX-VNNI */
/* NULL without AVX2 + FMA + F16C, AVX512F/BW/VL (ZMM state saved) and AVX512_VNNI */
const struct vl_qsimd *vl__qsimd_avx512vnni(void);
#define VL_QSIMD_MAX_TABLES 4
int vl__qsimd_tables(const struct vl_qsimd *out[VL_QSIMD_MAX_TABLES]);

/* The quantized Linear: y_k = x . W_k^T (+ b_k) for Q8_0 / Q4_0 weights of one input width,
 * as vl__linear_multi (swiglu: outs = {gate, up}, then gate = silu(gate) * up). Uses c->scratch
 * for the quantized x rows, the pool for the output rows. */
void vl__qlinear_multi(struct vl_compute *c, const float *x, int64_t n,
                       const struct vl_linear_out *outs, int n_outs, bool swiglu);
/* The Linear weights a format covers (vl_model_quantize's list): writes up to cap pointers into
 * m->w to out (may be NULL with cap 0) and returns how many there are. */
int vl__quant_targets(struct vl_model *m, bool vision, struct vl_tensor **out, int cap);
/* Packs every Q8_0 / Q4_0 target of m (text and vision) that has no pack yet (model-owned). */
enum vl_status vl__quant_pack_model(struct vl_model *m, struct vl_error *err);

/* Quantized checkpoints (`docproc model quantize`, vl_quant_ckpt.c): DIR/quantization.json
 * describes which tensors of the safetensors files are blocks; they are stored as U8 tensors
 * under their own names: version 2 in the packed layout, U8 [ceil(out / 16), nb * 16 * block
 * bytes], bound as w->pack views of the mapping (no copy); version 1 as rows, U8 [out, nb * block
 * bytes], bound as w->data views (packed copy at load). vl__quant_desc_load reads the description
 * if present (m->quant_desc, m->quant_version; absent: NULL, VL_OK). */
#define VL_QUANT_DESC_FILE "quantization.json"
#define VL_QUANT_DESC_FORMAT "docproc-blocks"
#define VL_QUANT_DESC_VERSION 2          /* what vl_model_write_quantized writes */
#define VL_QUANT_DESC_V1 1               /* rows: still read */
#define VL_QUANT_DESC_LAYOUT "packed16"  /* version 2's "layout" */
#define VL_QUANT_DIM_MAX ((int64_t)1 << 31) /* a described dimension's upper bound */
struct vl_quant_entry {
    enum vl_dtype t;   /* Q8_0 or Q4_0 */
    bool has_shape;    /* "shape" given (version 2: always) */
    int64_t shape[2];  /* [out, in] */
};
enum vl_status vl__quant_desc_load(struct vl_model *m, const char *dir, struct vl_error *err);
/* The description's text (len bytes; path names it in errors): *out a new table as
 * m->quant_desc holds (GHashTable of struct vl_quant_entry; free with g_hash_table_destroy),
 * *version 1 or 2. VL_ERR_MODEL on anything vl__quant_desc_load refuses (fuzz_quant_desc). */
enum vl_status vl__quant_desc_parse(void **out, int *version, const char *text, size_t len,
                                    const char *path, struct vl_error *err);
/* A description built in memory (GGUF block views: rows, no shape; m->quant_version stays 0):
 * a new table for m->quant_desc, and one entry added to it. */
void *vl__quant_desc_new(void);
void vl__quant_desc_add(void *desc, const char *canonical, enum vl_dtype t);
void vl__quant_desc_free(struct vl_model *m);
bool vl__quant_desc_type(const struct vl_model *m, const char *canonical, enum vl_dtype *out);
/* After binding: every listed tensor was bound as a block view (else VL_ERR_MODEL). */
enum vl_status vl__quant_desc_check(struct vl_model *m, struct vl_error *err);
/* Binds entry e of the described tensor `name` (canonical) as a Q8_0 / Q4_0 view of shape want
 * (from config.json): checks the description's shape, the U8 shape and byte size for m's
 * version (VL_ERR_MODEL naming file and tensor). */
enum vl_status vl__quant_bind(struct vl_tensor *dst, const struct vl_model *m,
                              const struct vl_st_entry *e, const char *file, const char *name,
                              const int64_t *want, int nd, struct vl_error *err);
/* vl_model_write_quantized with the format version to write (VL_QUANT_DESC_VERSION, or
 * VL_QUANT_DESC_V1: tests keep version-1 checkpoints loading). */
enum vl_status vl__quant_write(const struct vl_model *m, const char *dir, int version,
                               struct vl_error *err);

/* Double-precision reference of one quantized Linear (tests): W dequantized, x not quantized. */
void vl__qlinear_ref(float *y, const float *x, int64_t n, const struct vl_tensor *w,
                     const struct vl_tensor *b);

#endif
