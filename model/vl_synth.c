/* Random-weight checkpoints in the published layout (`docproc model synth`): config.json with the
 * real 3B / 7B values (spec §1.2) or the tiny fixture shape, generation_config.json,
 * preprocessor_config.json, a copied tokenizer.json, and BF16 safetensors sharded like the
 * published ones (model-0000k-of-0000n.safetensors + model.safetensors.index.json; a single
 * model.safetensors when everything fits one shard). Tensors come from the binding table, so a
 * synthesised checkpoint always loads. Data is streamed (one small buffer, never the model):
 * weights and biases ~ N(0, 0.02) (sum of four uniforms), norm weights 1 + N(0, 0.02), from a
 * seeded splitmix64 stream per tensor (independent of sharding). Not thread-safe per directory. */
#include "vl_impl.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define SYNTH_STD 0.02                 /* initializer_range of the published configs */
#define SYNTH_CHUNK ((size_t)1 << 20)  /* values generated per write */
#define SYNTH_MAX_SHARDS 99999         /* five-digit shard numbers, as transformers writes */
#define U16_RANGE 65536.0
#define IRWIN_HALL_N 4                 /* uniforms summed per normal sample */
#define BF16_ROUND_BIAS 0x7fffu
#define BF16_SHIFT 16
/* stdio buffer of a shard: whole 8 MiB writes at 8 MiB-aligned offsets let the page cache keep the
 * new file in 2 MiB folios (Linux 6.x, ext4/XFS), which the loader's mapping then maps as huge
 * pages, so a just-written checkpoint benchmarks as one read back from disk does */
#define FILE_BUF_BYTES ((size_t)8 << 20)

struct shape_def {
    const char *name;
    int64_t hidden, intermediate, layers, heads, kv_heads, vocab, max_window_layers;
    bool tied;
    double rope_theta;
    int64_t mrope[VL_MROPE_SECTIONS];
    int64_t v_depth, v_hidden, v_heads, v_intermediate, v_window;
    int64_t fullatt[4];
    int n_fullatt;
};

/* Published 3B / 7B (spec §1.2) and the fixture's tiny shape (fixtures README). */
static const struct shape_def shapes[] = {
    {"3b", 2048, 11008, 36, 16, 2, 151936, 70, true, 1000000.0, {16, 24, 24},
     32, 1280, 16, 3420, 112, {7, 15, 23, 31}, 4},
    {"7b", 3584, 18944, 28, 28, 4, 152064, 28, false, 1000000.0, {16, 24, 24},
     32, 1280, 16, 3420, 112, {7, 15, 23, 31}, 4},
    {"tiny", 64, 96, 2, 4, 2, 151936, 2, true, 1000.0, {2, 3, 3},
     4, 64, 4, 96, 112, {1, 3}, 2},
};

/* config.json as published (spec §1.2): the fixed fields are written verbatim. */
static json_t *config_json(const struct shape_def *s) {
    json_t *fa = json_array();
    for (int i = 0; i < s->n_fullatt; i++)
        json_array_append_new(fa, json_integer(s->fullatt[i]));
    json_t *vc = json_pack(
        "{s:I, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:I, s:I}", "depth",
        (json_int_t)s->v_depth, "hidden_act", "silu", "hidden_size", (json_int_t)s->v_hidden,
        "intermediate_size", (json_int_t)s->v_intermediate, "num_heads", (json_int_t)s->v_heads,
        "in_chans", (json_int_t)3, "out_hidden_size", (json_int_t)s->hidden, "patch_size",
        (json_int_t)14, "spatial_merge_size", (json_int_t)2, "spatial_patch_size", (json_int_t)14,
        "window_size", (json_int_t)s->v_window, "fullatt_block_indexes", fa, "tokens_per_second",
        (json_int_t)2, "temporal_patch_size", (json_int_t)2);
    json_t *rope = json_pack("{s:s, s:[I, I, I]}", "type", "mrope", "mrope_section",
                             (json_int_t)s->mrope[0], (json_int_t)s->mrope[1],
                             (json_int_t)s->mrope[2]);
    json_t *c = json_pack("{s:[s], s:f, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:s, s:I, s:f, s:I}",
                          "architectures", "Qwen2_5_VLForConditionalGeneration",
                          "attention_dropout", 0.0, "bos_token_id", (json_int_t)VL_PUB_BOS_ID,
                          "eos_token_id", (json_int_t)VL_PUB_EOS_ID, "vision_start_token_id",
                          (json_int_t)VL_PUB_VISION_START_ID, "vision_end_token_id", (json_int_t)VL_PUB_VISION_END_ID,
                          "vision_token_id", (json_int_t)VL_PUB_VISION_PAD_ID, "image_token_id",
                          (json_int_t)VL_PUB_IMAGE_PAD_ID, "video_token_id", (json_int_t)VL_PUB_VIDEO_PAD_ID, "hidden_act",
                          "silu", "hidden_size", (json_int_t)s->hidden, "initializer_range",
                          SYNTH_STD, "intermediate_size", (json_int_t)s->intermediate);
    json_t *c2 = json_pack(
        "{s:I, s:I, s:s, s:I, s:I, s:I, s:f, s:f, s:I, s:b, s:s, s:s, s:b, s:b, s:o, s:o, s:I}",
        "max_position_embeddings", (json_int_t)128000, "max_window_layers",
        (json_int_t)s->max_window_layers, "model_type", "qwen2_5_vl", "num_attention_heads",
        (json_int_t)s->heads, "num_hidden_layers", (json_int_t)s->layers, "num_key_value_heads",
        (json_int_t)s->kv_heads, "rms_norm_eps", 1e-6, "rope_theta", s->rope_theta,
        "sliding_window", (json_int_t)32768, "tie_word_embeddings", s->tied, "torch_dtype",
        "bfloat16", "transformers_version", "4.49.0", "use_cache", 1, "use_sliding_window", 0,
        "vision_config", vc, "rope_scaling", rope, "vocab_size", (json_int_t)s->vocab);
    if (!c || !c2) {
        json_decref(c);
        json_decref(c2);
        return NULL;
    }
    json_object_update(c, c2);
    json_decref(c2);
    return c;
}

/* ---- random BF16 stream ----------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint16_t to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    u += BF16_ROUND_BIAS + ((u >> BF16_SHIFT) & 1u); /* round to nearest even (finite input) */
    return (uint16_t)(u >> BF16_SHIFT);
}

struct gen {
    FILE *fp;
    const char *path;
    uint64_t seed;
    uint16_t *buf; /* [SYNTH_CHUNK] */
    struct vl_error *err;
};

static uint64_t name_hash(const char *s) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 0x100000001b3ULL;
    return h;
}

static enum vl_status write_tensor(struct gen *g, const char *name, int64_t numel,
                                   enum vl_weight_init init) {
    uint64_t st = g->seed ^ name_hash(name);
    /* (sum of 4 uniforms on [0, 65536) - mean) / sd gives ~N(0, 1) */
    const double mean = IRWIN_HALL_N * (U16_RANGE - 1) / 2;
    const double sd = sqrt(IRWIN_HALL_N * (U16_RANGE * U16_RANGE - 1) / 12.0);
    const float scale = (float)(SYNTH_STD / sd);
    const float offset = init == VL_INIT_NORM ? 1.0f : 0.0f;
    for (int64_t done = 0; done < numel;) {
        size_t k = (size_t)(numel - done) < SYNTH_CHUNK ? (size_t)(numel - done) : SYNTH_CHUNK;
        for (size_t i = 0; i < k; i++) {
            uint64_t r = splitmix64(&st);
            uint32_t sum = (uint32_t)(r & 0xffff) + (uint32_t)((r >> 16) & 0xffff) +
                           (uint32_t)((r >> 32) & 0xffff) + (uint32_t)(r >> 48);
            g->buf[i] = to_bf16(offset + ((float)sum - (float)mean) * scale);
        }
        enum vl_status s = vl__write_all(g->fp, g->buf, k * sizeof *g->buf, g->path, g->err);
        if (s != VL_OK)
            return s;
        done += (int64_t)k;
    }
    return VL_OK;
}

/* ---- tensor list and shards ------------------------------------------------------------- */

struct tlist {
    struct vl_st_entry *e;
    enum vl_weight_init *init;
    char **names;
    int n, cap;
};

static int collect(const char *name, int ndim, const int64_t *shape, enum vl_weight_init init,
                   void *user) {
    struct tlist *l = user;
    if (l->n == l->cap) {
        int nc = l->cap ? l->cap * 2 : 256;
        void *a = vl__realloc(l->e, (size_t)nc * sizeof *l->e);
        if (a)
            l->e = a;
        void *b = vl__realloc(l->init, (size_t)nc * sizeof *l->init);
        if (b)
            l->init = b;
        void *c = vl__realloc(l->names, (size_t)nc * sizeof *l->names);
        if (c)
            l->names = c;
        if (!a || !b || !c)
            return -1;
        l->cap = nc;
    }
    struct vl_st_entry *e = &l->e[l->n];
    memset(e, 0, sizeof *e);
    l->names[l->n] = vl__strdup(name);
    if (!l->names[l->n])
        return -1;
    e->name = l->names[l->n];
    e->dtype = "BF16";
    e->ndim = ndim;
    size_t numel = 1;
    for (int d = 0; d < ndim; d++) {
        e->shape[d] = shape[d];
        numel *= (size_t)shape[d];
    }
    e->nbytes = numel * sizeof(uint16_t);
    l->init[l->n] = init;
    l->n++;
    return 0;
}

static enum vl_status write_shard(const char *path, const struct tlist *l, int from, int to,
                                  uint64_t seed, uint16_t *buf, struct vl_error *err) {
    char *hdr;
    size_t hdr_len, data_bytes;
    enum vl_status st = vl__st_header(&hdr, &hdr_len, &data_bytes, l->e + from, to - from, err);
    if (st != VL_OK)
        return st;
    /* glibc ignores setvbuf's size without a buffer: it must be ours, freed after the close */
    char *fbuf = vl__malloc(FILE_BUF_BYTES);
    if (!fbuf) {
        vl__free(hdr);
        return vl__err(err, VL_ERR_NOMEM, "%s: out of memory", path);
    }
    struct vl_atomic_file af;
    st = vl__atomic_open(&af, path, err);
    if (st == VL_OK) {
        setvbuf(af.fp, fbuf, _IOFBF, FILE_BUF_BYTES);
        st = vl__write_all(af.fp, hdr, hdr_len, path, err);
    }
    struct gen g = {af.fp, path, seed, buf, err};
    static const uint8_t zeros[VL_ST_WRITE_ALIGN];
    size_t off = 0;
    for (int i = from; i < to && st == VL_OK; i++) {
        /* vl__st_header aligns each tensor to VL_ST_WRITE_ALIGN bytes */
        size_t pad = (VL_ST_WRITE_ALIGN - off % VL_ST_WRITE_ALIGN) % VL_ST_WRITE_ALIGN;
        st = vl__write_all(af.fp, zeros, pad, path, err);
        off += pad;
        if (st == VL_OK)
            st = write_tensor(&g, l->e[i].name, (int64_t)(l->e[i].nbytes / sizeof(uint16_t)),
                              l->init[i]);
        off += l->e[i].nbytes;
    }
    vl__free(hdr);
    if (st == VL_OK)
        st = vl__atomic_commit(&af, err);
    else
        vl__atomic_abort(&af);
    vl__free(fbuf);
    return st;
}

static enum vl_status write_json(const char *dir, const char *name, json_t *j,
                                 struct vl_error *err) {
    char *path = vl__path_join(dir, name);
    char *text = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    enum vl_status st = VL_OK;
    struct vl_atomic_file af;
    if (!path || !text)
        st = vl__err(err, VL_ERR_NOMEM, "out of memory writing %s", name);
    if (st == VL_OK)
        st = vl__atomic_open(&af, path, err);
    if (st == VL_OK) {
        st = vl__write_all(af.fp, text, strlen(text), path, err);
        st = st == VL_OK ? vl__write_all(af.fp, "\n", 1, path, err) : st;
        st = st == VL_OK ? vl__atomic_commit(&af, err) : (vl__atomic_abort(&af), st);
    }
    vl__free(text);
    vl__free(path);
    return st;
}

static enum vl_status copy_file(const char *src, const char *dir, const char *name,
                                struct vl_error *err) {
    char *text;
    size_t len;
    enum vl_status st = vl__read_file(src, (size_t)1 << 30, &text, &len, err);
    if (st != VL_OK)
        return st;
    char *path = vl__path_join(dir, name);
    struct vl_atomic_file af;
    st = path ? vl__atomic_open(&af, path, err) : vl__err(err, VL_ERR_NOMEM, "out of memory");
    if (st == VL_OK) {
        st = vl__write_all(af.fp, text, len, path, err);
        st = st == VL_OK ? vl__atomic_commit(&af, err) : (vl__atomic_abort(&af), st);
    }
    vl__free(path);
    vl__free(text);
    return st;
}

/* ---- the checkpoint ---------------------------------------------------------------------- */

/* generation_config.json as the published copies carry it (spec §1.4). */
static json_t *gen_config_json(void) {
    return json_pack("{s:I, s:I, s:[I, I], s:b, s:f, s:f, s:I, s:f}", "bos_token_id",
                     (json_int_t)VL_PUB_BOS_ID, "pad_token_id", (json_int_t)VL_PUB_BOS_ID, "eos_token_id",
                     (json_int_t)VL_PUB_EOS_ID, (json_int_t)VL_PUB_BOS_ID, "do_sample", 1,
                     "repetition_penalty", 1.05, "temperature", 0.1, "top_k", (json_int_t)1,
                     "top_p", 0.001);
}

static json_t *preproc_json(const struct vl_preproc_config *p) {
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:[f, f, f], s:[f, f, f], s:s, s:s}",
                     "min_pixels", (json_int_t)p->min_pixels, "max_pixels",
                     (json_int_t)p->max_pixels, "patch_size", (json_int_t)p->patch_size,
                     "temporal_patch_size", (json_int_t)p->temporal_patch_size, "merge_size",
                     (json_int_t)p->merge_size, "image_mean", p->image_mean[0], p->image_mean[1],
                     p->image_mean[2], "image_std", p->image_std[0], p->image_std[1],
                     p->image_std[2], "image_processor_type", "Qwen2VLImageProcessor",
                     "processor_class", "Qwen2_5_VLProcessor");
}

static enum vl_status write_weights(const struct vl_synth_opts *o, const struct tlist *l,
                                    struct vl_synth_result *res, struct vl_error *err) {
    size_t shard_max = o->shard_bytes ? o->shard_bytes : VL_SYNTH_SHARD_BYTES;
    /* shard boundaries: a new shard when the next tensor would overflow a non-empty one */
    int *start = vl__calloc((size_t)l->n + 1, sizeof *start);
    uint16_t *buf = vl__malloc(SYNTH_CHUNK * sizeof *buf);
    if (!start || !buf) {
        vl__free(start);
        vl__free(buf);
        return vl__err(err, VL_ERR_NOMEM, "out of memory");
    }
    int n_shards = 0;
    size_t cur = 0;
    for (int i = 0; i < l->n; i++) {
        if (i == 0 || (cur > 0 && cur + l->e[i].nbytes > shard_max)) {
            start[n_shards++] = i;
            cur = 0;
        }
        cur += l->e[i].nbytes;
        res->total_bytes += l->e[i].nbytes;
    }
    start[n_shards] = l->n;
    enum vl_status st = VL_OK;
    if (n_shards > SYNTH_MAX_SHARDS)
        st = vl__err(err, VL_ERR_LIMIT, "%d shards, max %d", n_shards, SYNTH_MAX_SHARDS);
    json_t *wm = json_object();
    char name[64];
    for (int s = 0; s < n_shards && st == VL_OK; s++) {
        if (n_shards == 1)
            snprintf(name, sizeof name, "model.safetensors");
        else
            snprintf(name, sizeof name, "model-%05d-of-%05d.safetensors", s + 1, n_shards);
        char *path = vl__path_join(o->dir, name);
        if (!path) {
            st = vl__err(err, VL_ERR_NOMEM, "out of memory");
            break;
        }
        vl__log(VL_LOG_INFO, "writing %s (%d tensors)", path, start[s + 1] - start[s]);
        st = write_shard(path, l, start[s], start[s + 1], o->seed, buf, err);
        vl__free(path);
        for (int i = start[s]; i < start[s + 1] && st == VL_OK; i++)
            json_object_set_new(wm, l->e[i].name, json_string(name));
    }
    if (st == VL_OK && n_shards > 1) {
        json_t *idx = json_pack("{s:{s:I}, s:o}", "metadata", "total_size",
                                (json_int_t)res->total_bytes, "weight_map", wm);
        wm = NULL;
        st = write_json(o->dir, "model.safetensors.index.json", idx, err);
        json_decref(idx);
    }
    json_decref(wm);
    res->n_shards = n_shards;
    res->n_tensors = l->n;
    vl__free(start);
    vl__free(buf);
    return st;
}

enum vl_status vl_synth_write(const struct vl_synth_opts *o, struct vl_synth_result *res,
                              struct vl_error *err) {
    memset(res, 0, sizeof *res);
    const struct shape_def *sd = NULL;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        if (o->shape && !strcmp(o->shape, shapes[i].name))
            sd = &shapes[i];
    if (!sd)
        return vl__err(err, VL_ERR_INVALID, "unknown shape '%s' (3b, 7b or tiny)",
                       o->shape ? o->shape : "");
    struct stat sb;
    if (stat(o->dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return vl__err(err, VL_ERR_IO, "%s: not a directory", o->dir);
    char *probe = vl__path_join(o->dir, "config.json");
    bool exists = probe && stat(probe, &sb) == 0;
    vl__free(probe);
    if (exists && !o->force)
        return vl__err(err, VL_ERR_IO, "%s already holds a checkpoint (config.json); use --force",
                       o->dir);
    json_t *cj = config_json(sd);
    char *text = cj ? json_dumps(cj, JSON_COMPACT) : NULL;
    struct vl_config cfg;
    enum vl_status st = text ? vl__config_parse(&cfg, text, strlen(text), "config.json", err)
                             : vl__err(err, VL_ERR_NOMEM, "out of memory");
    vl__free(text);
    struct tlist l = {0};
    if (st == VL_OK && vl__weights_foreach(&cfg, !cfg.text.tie_word_embeddings, collect, &l))
        st = vl__err(err, VL_ERR_NOMEM, "out of memory listing tensors");
    if (st == VL_OK)
        st = write_weights(o, &l, res, err);
    if (st == VL_OK)
        st = write_json(o->dir, "config.json", cj, err);
    json_t *gj = gen_config_json(), *pj = preproc_json(&cfg.preproc);
    if (st == VL_OK)
        st = write_json(o->dir, "generation_config.json", gj, err);
    if (st == VL_OK)
        st = write_json(o->dir, "preprocessor_config.json", pj, err);
    if (st == VL_OK && o->tokenizer_path)
        st = copy_file(o->tokenizer_path, o->dir, "tokenizer.json", err);
    if (st == VL_OK && o->tokenizer_config_path)
        st = copy_file(o->tokenizer_config_path, o->dir, "tokenizer_config.json", err);
    json_decref(cj);
    json_decref(gj);
    json_decref(pj);
    for (int i = 0; i < l.n; i++)
        vl__free(l.names[i]);
    vl__free(l.names);
    vl__free(l.e);
    vl__free(l.init);
    return st;
}
