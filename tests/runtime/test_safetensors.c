/* safetensors reader/writer: a round trip through vl_st_write, then hand-made corrupt files
 * (truncated, header length beyond the file or over the limit, offsets out of range, overlapping
 * tensors, wrong dtype string, shape/byte-size mismatch, bad JSON, duplicate names, ...) must each
 * fail with VL_ERR_FORMAT and a message naming the problem (and the tensor), never crash (the
 * ASan/UBSan build runs this too). Files are made at run time in a temporary directory. */
#include "t.h"
#include "vl_tools.h"

#include <stdint.h>
#include <unistd.h>

static char dir[256];

static void write_raw(const char *path, const void *p, size_t n) {
    FILE *fp = fopen(path, "wb");
    if (fp) {
        fwrite(p, 1, n, fp);
        fclose(fp);
    }
}

/* A file with header text hdr (length field = hlen_field, or the real length if 0) and
 * data_len bytes of data. */
static void make_file(const char *path, const char *hdr, uint64_t hlen_field, size_t data_len) {
    size_t hl = strlen(hdr);
    uint64_t field = hlen_field ? hlen_field : hl;
    size_t n = 8 + hl + data_len;
    unsigned char *buf = calloc(1, n);
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)(field >> (8 * i));
    memcpy(buf + 8, hdr, hl);
    for (size_t i = 0; i < data_len; i++)
        buf[8 + hl + i] = (unsigned char)i;
    write_raw(path, buf, n);
    free(buf);
}

static void expect_fail(const char *what, const char *hdr, uint64_t hlen_field, size_t data_len,
                        const char *needle) {
    char path[512];
    snprintf(path, sizeof path, "%s/bad.safetensors", dir);
    make_file(path, hdr, hlen_field, data_len);
    struct vl_st_file *f = NULL;
    struct vl_error err = {0};
    enum vl_status st = vl_st_open(&f, path, &err);
    T_CHECK_MSG(st == VL_ERR_FORMAT || st == VL_ERR_LIMIT, "%s: status %d (%s)", what, st,
                err.msg);
    T_CHECK_MSG(f == NULL, "%s: file returned on failure", what);
    T_CHECK_MSG(strstr(err.msg, needle) != NULL, "%s: message '%s' lacks '%s'", what, err.msg,
                needle);
    vl_st_close(f);
}

static void test_roundtrip(void) {
    float a[6] = {1, 2, 3, 4, 5, 6};
    uint16_t b[3] = {0x3f80, 0x4000, 0x4040}; /* bf16 1, 2, 3 */
    int64_t c = 42;
    struct vl_st_entry e[3] = {
        {.name = "a", .dtype = "F32", .ndim = 2, .shape = {2, 3}, .data = a, .nbytes = sizeof a},
        {.name = "b.weight", .dtype = "BF16", .ndim = 1, .shape = {3}, .data = b,
         .nbytes = sizeof b},
        {.name = "scalar", .dtype = "I64", .ndim = 0, .data = &c, .nbytes = sizeof c},
    };
    char path[512];
    snprintf(path, sizeof path, "%s/ok.safetensors", dir);
    struct vl_error err = {0};
    T_CHECK(vl_st_write(path, e, 3, &err) == VL_OK);
    struct vl_st_file *f = NULL;
    T_CHECK_MSG(vl_st_open(&f, path, &err) == VL_OK, "%s", err.msg);
    if (!f)
        return;
    T_EQ_I64(vl_st_count(f), 3);
    const struct vl_st_entry *x = vl_st_find(f, "a");
    T_CHECK(x && x->ndim == 2 && x->shape[1] == 3 && !strcmp(x->dtype, "F32"));
    T_CHECK(x && !memcmp(x->data, a, sizeof a));
    x = vl_st_find(f, "b.weight");
    T_CHECK(x && x->nbytes == sizeof b && !memcmp(x->data, b, sizeof b));
    x = vl_st_find(f, "scalar");
    int64_t got = 0;
    if (x)
        memcpy(&got, x->data, sizeof got);
    T_CHECK(x && x->ndim == 0 && got == 42);
    T_CHECK(vl_st_find(f, "nope") == NULL);
    T_CHECK(vl_st_get(f, 3) == NULL && vl_st_get(f, -1) == NULL);
    vl_st_close(f);
    /* a truncated copy: data section shorter than the offsets say */
    FILE *fp = fopen(path, "rb");
    unsigned char buf[4096];
    size_t n = fp ? fread(buf, 1, sizeof buf, fp) : 0;
    if (fp)
        fclose(fp);
    char tpath[512];
    snprintf(tpath, sizeof tpath, "%s/trunc.safetensors", dir);
    write_raw(tpath, buf, n - 5);
    struct vl_error e2 = {0};
    T_EQ_I64(vl_st_open(&f, tpath, &e2), VL_ERR_FORMAT);
    T_CHECK_MSG(strstr(e2.msg, "beyond the data section"), "%s", e2.msg);
    write_raw(tpath, buf, 5);
    struct vl_error e3 = {0};
    T_EQ_I64(vl_st_open(&f, tpath, &e3), VL_ERR_FORMAT);
    T_CHECK_MSG(strstr(e3.msg, "too short"), "%s", e3.msg);
    struct vl_error e4 = {0};
    snprintf(tpath, sizeof tpath, "%s/missing.safetensors", dir);
    T_EQ_I64(vl_st_open(&f, tpath, &e4), VL_ERR_IO);
    /* the writer refuses inconsistent entries */
    struct vl_st_entry bad = {.name = "x", .dtype = "F32", .ndim = 1, .shape = {4}, .data = a,
                              .nbytes = 8};
    struct vl_error e5 = {0};
    T_EQ_I64(vl_st_write(path, &bad, 1, &e5), VL_ERR_INVALID);
}

static void test_corrupt(void) {
    expect_fail("header length beyond file", "{}", 1000, 0, "beyond the file size");
    expect_fail("header length over the limit", "{}", (uint64_t)1 << 40, 0, "exceeds the maximum");
    expect_fail("offsets out of range",
                "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 0, 8,
                "tensor 'w': data_offsets [0, 16] beyond");
    expect_fail("overlap",
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                0, 16, "overlap");
    expect_fail("wrong dtype",
                "{\"w\":{\"dtype\":\"FLOAT32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 0, 8,
                "tensor 'w': unknown dtype 'FLOAT32'");
    expect_fail("byte size mismatch",
                "{\"w\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[0,8]}}", 0, 8,
                "tensor 'w': 8 data bytes but shape x BF16 needs 6");
    expect_fail("negative dim",
                "{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,0]}}", 0, 0,
                "shape[0]");
    expect_fail("overflowing shape",
                "{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],"
                "\"data_offsets\":[0,8]}}",
                0, 8, "overflows");
    expect_fail("too many dims",
                "{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}",
                0, 4, "dimensions");
    expect_fail("begin > end", "{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}",
                0, 8, "data_offsets must be");
    expect_fail("float offsets",
                "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0.0,4.0]}}", 0, 4,
                "data_offsets must be");
    expect_fail("duplicate names",
                "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                0, 8, "duplicate");
    expect_fail("bad json", "{\"w\":{\"dtype\":", 0, 0, "header JSON");
    expect_fail("not an object", "[1,2]", 0, 0, "not a JSON object");
    expect_fail("entry not an object", "{\"w\":[1]}", 0, 0, "tensor 'w'");
    expect_fail("missing field", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 0, 4, "tensor 'w'");
    expect_fail("unknown field",
                "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}", 0, 4,
                "unknown header field 'x'");
    expect_fail("metadata not an object", "{\"__metadata__\":[1]}", 0, 0, "__metadata__");
    expect_fail("empty name", "{\"\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
                0, 4, "empty name");
    /* acceptable: metadata skipped, padding spaces, an unaligned int64 (packed like the
     * reference's files), a zero-size tensor */
    char path[512];
    snprintf(path, sizeof path, "%s/okraw.safetensors", dir);
    make_file(path,
              "{\"__metadata__\":{\"format\":\"pt\"},"
              "\"b\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[0,3]},"
              "\"i\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[3,11]},"
              "\"z\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[11,11]}}   ",
              0, 11);
    struct vl_st_file *f = NULL;
    struct vl_error err = {0};
    T_CHECK_MSG(vl_st_open(&f, path, &err) == VL_OK, "%s", err.msg);
    T_EQ_I64(vl_st_count(f), 3);
    vl_st_close(f);
    /* the same bytes from memory */
    FILE *fp = fopen(path, "rb");
    unsigned char buf[1024];
    size_t n = fp ? fread(buf, 1, sizeof buf, fp) : 0;
    if (fp)
        fclose(fp);
    T_CHECK(vl_st_open_mem(&f, buf, n, &err) == VL_OK);
    T_EQ_I64(vl_st_count(f), 3);
    vl_st_close(f);
}

/* The weights' mapping asks for huge pages (VmFlags "hg", where the kernel has THP) so the page
 * cache can serve 2 MiB folios through PMD entries, and vl_st_huge_mapped_bytes reads a byte count
 * for it from /proc/self/smaps. */
static void test_huge_mapping(void) {
    const size_t n_floats = ((size_t)3 << 20) / sizeof(float); /* 3 MiB: spans a 2 MiB page */
    float *a = calloc(n_floats, sizeof *a);
    T_CHECK(a != NULL);
    if (!a)
        return;
    struct vl_st_entry e = {.name = "w", .dtype = "F32", .ndim = 1,
                            .shape = {(int64_t)n_floats}, .data = a,
                            .nbytes = n_floats * sizeof *a};
    char path[512];
    snprintf(path, sizeof path, "%s/big.safetensors", dir);
    struct vl_error err = {0};
    T_CHECK_MSG(vl_st_write(path, &e, 1, &err) == VL_OK, "%s", err.msg);
    free(a);
    struct vl_st_file *f = NULL;
    T_CHECK_MSG(vl_st_open(&f, path, &err) == VL_OK, "%s", err.msg);
    if (!f)
        return;
    const unsigned char *data = vl_st_get(f, 0)->data;
    volatile unsigned char sum = 0;
    for (size_t i = 0; i < e.nbytes; i += 4096)
        sum += data[i];
    const struct vl_st_file *files[1] = {f};
    int64_t huge = vl_st_huge_mapped_bytes(files, 1);
    char flags[512];
    t_vma_flags(data, flags, sizeof flags);
    if (flags[0]) { /* smaps of any kernel docproc supports (>= 5.4) has FilePmdMapped too */
        T_CHECK_MSG(huge >= 0 && (size_t)huge <= vl_st_file_size(f), "huge %lld",
                    (long long)huge);
        if (access("/sys/kernel/mm/transparent_hugepage", F_OK) == 0)
            T_CHECK_MSG(strstr(flags, " hg"), "mapping without MADV_HUGEPAGE: %s", flags);
    } else {
        fprintf(stderr, "note: no VmFlags in /proc/self/smaps; huge-page checks skipped\n");
    }
    T_EQ_I64(vl_st_huge_mapped_bytes(files, 0), -1); /* no mapping of ours: unknown */
    vl_st_close(f);
}

static void test_fixture(void) {
    char path[1024];
    t_path(path, sizeof path, "DP_FIXTURES", "qwen25vl-tiny/model/model.safetensors");
    struct vl_st_file *f = NULL;
    struct vl_error err = {0};
    T_CHECK_MSG(vl_st_open(&f, path, &err) == VL_OK, "%s", err.msg);
    T_EQ_I64(vl_st_count(f), 80);
    const struct vl_st_entry *e = vl_st_find(f, "visual.patch_embed.proj.weight");
    T_CHECK(e && e->ndim == 5 && e->shape[0] == 64 && e->shape[4] == 14);
    vl_st_close(f);
    /* golden files hold int64 tensors at odd offsets: accepted */
    t_path(path, sizeof path, "DP_FIXTURES", "qwen25vl-tiny/goldens/text_only.safetensors");
    T_CHECK_MSG(vl_st_open(&f, path, &err) == VL_OK, "%s", err.msg);
    vl_st_close(f);
}

int main(int argc, char **argv) {
    t_args(argc, argv);
    snprintf(dir, sizeof dir, "/tmp/dp_test_st_XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    T_RUN(test_roundtrip);
    T_RUN(test_corrupt);
    T_RUN(test_huge_mapping);
    T_RUN(test_fixture);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "warning: could not remove %s\n", dir);
    return t_done();
}
