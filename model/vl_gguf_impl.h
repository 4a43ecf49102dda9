/* model/ private declarations of the GGUF reader (vl_gguf.c) and of llama.cpp's Qwen2.5-VL files
 * (vl_gguf_model.c). GGUF v3 (llama.cpp's ggml/docs/gguf.md; docs/quantization.md, "GGUF"):
 *   "GGUF" u32 version u64 n_tensors u64 n_kv | n_kv x (string key, u32 type, value)
 *   | n_tensors x (string name, u32 n_dims, u64 ne[n_dims], u32 ggml type, u64 offset)
 *   | padding to general.alignment (default 32) | data (each tensor at its aligned offset)
 * strings are u64 length + bytes (no NUL); ne[0] is the innermost (contiguous) dimension.
 * The file is untrusted: every count, length, offset, size and dimension is checked against the
 * bytes present and the named limits below before use; errors name the field (VL_ERR_FORMAT).
 *
 *   struct vl_gguf *g;
 *   if (vl__gguf_open(&g, "model.gguf", err) != VL_OK) return err->code;
 *   const struct vl_gguf_kv *kv = vl__gguf_find(g, "general.architecture");
 *   ... g->tensors[i].data ...   // borrowed from the mapping
 *   vl__gguf_close(g);
 */
#ifndef VL_GGUF_IMPL_H
#define VL_GGUF_IMPL_H

#include "vl_impl.h"

#define VL_GGUF_MAGIC "GGUF"
#define VL_GGUF_VERSION 3
#define VL_GGUF_DEFAULT_ALIGNMENT 32
#define VL_GGUF_MAX_ALIGNMENT 65536      /* general.alignment: a power of two up to this */
#define VL_GGUF_MAX_TENSORS 65536
#define VL_GGUF_MAX_KV 65536
#define VL_GGUF_MAX_DIMS 4               /* GGML_MAX_DIMS */
#define VL_GGUF_MAX_KEY_LEN 65535        /* keys and tensor names */
#define VL_GGUF_MAX_STRING_LEN (1 << 24) /* any string value (chat templates are long) */
#define VL_GGUF_MAX_ARRAY_LEN (1 << 24)  /* elements of one array (vocabularies: ~152k) */

enum vl_gguf_vtype { /* metadata value types */
    VL_GGUF_U8 = 0, VL_GGUF_I8, VL_GGUF_U16, VL_GGUF_I16, VL_GGUF_U32, VL_GGUF_I32,
    VL_GGUF_F32, VL_GGUF_BOOL, VL_GGUF_STRING, VL_GGUF_ARRAY, VL_GGUF_U64, VL_GGUF_I64,
    VL_GGUF_F64, VL_GGUF_VTYPE_COUNT
};

/* ggml tensor types this reader knows the sizes of (the rest: an error naming the number). */
enum vl_ggml_type {
    VL_GGML_F32 = 0, VL_GGML_F16 = 1, VL_GGML_Q4_0 = 2, VL_GGML_Q4_1 = 3, VL_GGML_Q5_0 = 6,
    VL_GGML_Q5_1 = 7, VL_GGML_Q8_0 = 8, VL_GGML_Q8_1 = 9, VL_GGML_Q2_K = 10, VL_GGML_Q3_K = 11,
    VL_GGML_Q4_K = 12, VL_GGML_Q5_K = 13, VL_GGML_Q6_K = 14, VL_GGML_Q8_K = 15, VL_GGML_I8 = 24,
    VL_GGML_I16 = 25, VL_GGML_I32 = 26, VL_GGML_I64 = 27, VL_GGML_F64 = 28, VL_GGML_BF16 = 30,
};
const char *vl__ggml_type_name(uint32_t t); /* "Q4_K", or "type N" style "?" when unknown */

struct vl_gguf_kv {
    char *key;                /* owned, NUL-terminated */
    uint32_t type;            /* enum vl_gguf_vtype */
    uint32_t arr_type;        /* element type when type == ARRAY (never ARRAY: nesting refused) */
    uint64_t n;               /* array length (1 for scalars) */
    const uint8_t *val;       /* first byte of the value (array: of the first element) */
    const uint8_t **strs;     /* STRING or array of STRING: n pointers to the length prefixes */
};

struct vl_gguf_tensor {
    char *name;               /* owned */
    int ndim;
    int64_t ne[VL_GGUF_MAX_DIMS]; /* ggml order: ne[0] innermost */
    uint32_t type;            /* enum vl_ggml_type */
    uint64_t offset;          /* from the data section */
    size_t nbytes;
    const void *data;         /* borrowed from the mapping */
};

struct vl_gguf {
    char *path;               /* "<memory>" for vl__gguf_open_mem */
    void *map;
    size_t map_size;
    const uint8_t *base;
    size_t size;
    uint32_t version;
    uint64_t alignment;
    size_t data_off;
    struct vl_gguf_kv *kv;
    int64_t n_kv;
    void *index;              /* GHashTable key -> its struct vl_gguf_kv */
    struct vl_gguf_tensor *tensors;
    int64_t n_tensors;
};

enum vl_status vl__gguf_open(struct vl_gguf **out, const char *path, struct vl_error *err);
/* Over a caller-owned buffer kept alive until close (tests, fuzzing). */
enum vl_status vl__gguf_open_mem(struct vl_gguf **out, const void *data, size_t size,
                                 struct vl_error *err);
void vl__gguf_close(struct vl_gguf *g); /* NULL-safe */
const struct vl_gguf_kv *vl__gguf_find(const struct vl_gguf *g, const char *key);
const struct vl_gguf_tensor *vl__gguf_tensor(const struct vl_gguf *g, const char *name);
/* Typed reads (false: absent or another type). Integers of any integer type that fit. */
bool vl__gguf_int(const struct vl_gguf *g, const char *key, int64_t *out);
bool vl__gguf_float(const struct vl_gguf *g, const char *key, double *out);
/* String (or element i of a string array): pointer into the file and its length (no NUL). */
bool vl__gguf_str(const struct vl_gguf_kv *kv, uint64_t i, const char **s, size_t *len);
/* Element i of an integer array. */
bool vl__gguf_arr_int(const struct vl_gguf_kv *kv, uint64_t i, int64_t *out);

/* k-quants (vl_gguf_kquant.c): QK_K = 256 weights per super-block. */
#define VL_GGML_QK_K 256
#define VL_GGML_Q4_K_BYTES 144
#define VL_GGML_Q6_K_BYTES 210
void vl__dequantize_q4_k(float *y, const uint8_t *src, int64_t n); /* n: whole super-blocks */
void vl__dequantize_q6_k(float *y, const uint8_t *src, int64_t n);
/* One row of n weights of a block type (Q8_0, Q4_0, Q4_K, Q6_K) to f32; false: another type. */
bool vl__ggml_dequantize_row(float *dst, uint32_t type, const void *src, int64_t n);
size_t vl__ggml_row_bytes(uint32_t type, int64_t n); /* 0: not a block type above */

/* One GGUF tensor as a file-view entry under `name` (canonical), shape reversed to [out, in]:
 *   F32 / F16 / BF16            a view of the mapping
 *   Q8_0 / Q4_0, linear         a block view of the mapping (*block = the dtype)
 *   Q4_K / Q6_K, linear         converted to Q8_0 blocks in model-owned memory (*block = Q8_0)
 *   to_q8 and Q4_0, linear      likewise (the projector: no 4-bit vision weights)
 *   a block type, not linear    dequantized to F32 in model-owned memory
 *   anything else               VL_ERR_UNSUPPORTED naming the tensor and its type
 * *block is VL_DTYPE_COUNT when the entry is not blocks. (vl_gguf_model.c) */
enum vl_status vl__gguf_entry(struct vl_model *m, const struct vl_gguf *g,
                              const struct vl_gguf_tensor *t, bool linear, bool to_q8,
                              struct vl_st_entry *e, char *name, enum vl_dtype *block,
                              struct vl_error *err);
/* llama.cpp tensor name -> checkpoint name ("%d": a layer / block index in both). Writes the
 * canonical name (or g itself when no entry matches: binding then reports it) into buf. */
struct vl_gguf_name {
    const char *gguf, *hf;
};
bool vl__gguf_rename(char *buf, size_t cap, const char *g, const struct vl_gguf_name *tab,
                     size_t n);
/* A model-owned allocation (freed with the model); NULL + VL_ERR_NOMEM in err on failure. */
void *vl__gguf_owned(struct vl_model *m, size_t n, const char *what, struct vl_error *err);

/* llama.cpp's Qwen2.5-VL vision projector (general.architecture clip, clip.projector_type
 * qwen2.5vl_merger; vl_gguf_proj.c). vl__gguf_proj_config adds "vision_config" to the
 * config.json object root being built from the text model (whose hidden size is text_hidden),
 * refusing projectors of another kind or that do not fit the text model (VL_ERR_MODEL);
 * *eps = the projector's RMSNorm epsilon. vl__gguf_proj_entries turns its tensors into file-view
 * entries under the checkpoint's names (q/k/v fused into qkv, the two Conv2d halves of the patch
 * embedding interleaved into the Conv3d kernel) and adds block entries to desc. */
enum vl_status vl__gguf_proj_config(void *root, const struct vl_gguf *p, int64_t text_hidden,
                                    double *eps, struct vl_error *err);
enum vl_status vl__gguf_proj_entries(struct vl_model *m, const struct vl_gguf *p,
                                     struct vl_st_entry **out, int *n_out, void *desc,
                                     struct vl_error *err);

/* llama.cpp's Qwen2.5-VL text model (general.architecture qwen2vl): config from its metadata,
 * tensors bound into m (vl_gguf_model.c). path: a .gguf file; mmproj: the projector or NULL
 * (text only: no vision tower). Sets m->files to one view per GGUF. */
enum vl_status vl__gguf_model_load(struct vl_model *m, const char *path, const char *mmproj,
                                   struct vl_error *err);
/* The tokenizer from tokenizer.ggml.* (gpt2 model, qwen2 pre-tokenizer; vl_gguf_tok.c). */
enum vl_status vl__gguf_tokenizer(struct vl_tokenizer **out, const struct vl_gguf *g,
                                  struct vl_error *err);
/* A directory holding llama.cpp's files: *text = the qwen2vl GGUF, *mmproj = the clip one (each
 * NULL when absent; caller frees). Two of one kind: VL_ERR_MODEL. */
enum vl_status vl__gguf_dir(const char *dir, char **text, char **mmproj, struct vl_error *err);
/* True when path is a regular file starting with the GGUF magic. */
bool vl__is_gguf_file(const char *path);

#endif
