/* fixture_dtype: a copy of the unpacked tiny fixture whose checkpoint stores every BF16 tensor
 * as F32 or F16 (test setup, not a test). Widening BF16 to F32 is exact, and F16 holds all but
 * 27 of the fixture's 10M weights exactly (those lie below F16's normal range; rounded to
 * nearest even), so the copy must reproduce every golden: it runs the F32/F16 weight paths
 * (GEMV, panel widening, norms, embeddings, biases) end to end, as a checkpoint saved with
 * torch_dtype float32/float16 would.
 * Usage: fixture_dtype SRC_ROOT DST_ROOT F32|F16
 * DST_ROOT/qwen25vl-tiny/ gets symbolic links to everything of SRC_ROOT/qwen25vl-tiny/ but
 * model/, and model/ links to every file but the converted *.safetensors. */
#define _DEFAULT_SOURCE /* realpath, symlink */
#include "vl_impl.h" /* vl__bf16_to_f32 */

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PATH_CAP 4096
#define FIXTURE "qwen25vl-tiny"
#define F16_MAX_BITS 0x477fefffu  /* largest f32 that rounds to a finite f16 (65504) */
#define F16_MIN_NORMAL_BITS 0x38800000u /* 2^-14 */
#define F16_SUBNORMAL_SCALE 16777216.0f /* 2^24: f16 subnormals count units of 2^-24 */

/* Round to nearest even; overflow to infinity, NaN kept quiet. */
static uint16_t f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    uint32_t sign = (x >> 16) & 0x8000u, ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u)
        return (uint16_t)(sign | 0x7c00u | (ax > 0x7f800000u ? 0x200u : 0u));
    if (ax > F16_MAX_BITS)
        return (uint16_t)(sign | 0x7c00u);
    if (ax < F16_MIN_NORMAL_BITS) {
        float a;
        memcpy(&a, &ax, sizeof a);
        return (uint16_t)(sign | (uint32_t)lrintf(a * F16_SUBNORMAL_SCALE));
    }
    uint32_t h = ((ax >> 23) - 127u + 15u) << 10 | (ax & 0x7fffffu) >> 13;
    uint32_t rest = ax & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u)))
        h++;
    return (uint16_t)(sign | h);
}

static int fail(const char *what, const char *path) {
    fprintf(stderr, "fixture_dtype: %s: %s: %s\n", what, path, errno ? strerror(errno) : "");
    return 1;
}

/* Writes src (a safetensors file) to dst with BF16 tensors as F32 or F16. */
static int convert(const char *src, const char *dst, bool to_f32) {
    struct vl_error err = {0};
    struct vl_st_file *f = NULL;
    if (vl_st_open(&f, src, &err) != VL_OK) {
        fprintf(stderr, "fixture_dtype: %s\n", err.msg);
        return 1;
    }
    int n = vl_st_count(f), rc = 0;
    struct vl_st_entry *e = calloc((size_t)n, sizeof *e);
    void **bufs = calloc((size_t)n, sizeof *bufs);
    for (int i = 0; i < n && e && bufs && !rc; i++) {
        e[i] = *vl_st_get(f, i);
        if (strcmp(e[i].dtype, "BF16"))
            continue;
        size_t count = e[i].nbytes / 2, width = to_f32 ? 4 : 2;
        uint8_t *out = malloc(count * width);
        if (!out) {
            rc = 1;
            break;
        }
        for (size_t k = 0; k < count; k++) {
            uint16_t h;
            memcpy(&h, (const uint8_t *)e[i].data + 2 * k, sizeof h);
            float v = vl__bf16_to_f32(h);
            if (to_f32) {
                memcpy(out + 4 * k, &v, sizeof v);
            } else {
                uint16_t g = f32_to_f16(v);
                memcpy(out + 2 * k, &g, sizeof g);
            }
        }
        bufs[i] = out;
        e[i].data = out;
        e[i].nbytes = count * width;
        e[i].dtype = to_f32 ? "F32" : "F16";
    }
    if (!e || !bufs)
        rc = 1;
    if (!rc && vl_st_write(dst, e, n, &err) != VL_OK) {
        fprintf(stderr, "fixture_dtype: %s\n", err.msg);
        rc = 1;
    }
    for (int i = 0; bufs && i < n; i++)
        free(bufs[i]);
    free(bufs);
    free(e);
    vl_st_close(f);
    return rc;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

/* Links (or, for model/, recreates) every entry of src in dst. */
static int mirror(const char *src, const char *dst, bool is_model, bool to_f32) {
    if (mkdir(dst, 0755) && errno != EEXIST)
        return fail("mkdir", dst);
    DIR *d = opendir(src);
    if (!d)
        return fail("opendir", src);
    int rc = 0;
    struct dirent *de;
    while (!rc && (de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char s[PATH_CAP], t[PATH_CAP];
        snprintf(s, sizeof s, "%s/%s", src, de->d_name);
        snprintf(t, sizeof t, "%s/%s", dst, de->d_name);
        unlink(t);
        if (!is_model && !strcmp(de->d_name, "model"))
            rc = mirror(s, t, true, to_f32);
        else if (is_model && ends_with(de->d_name, ".safetensors"))
            rc = convert(s, t, to_f32);
        else if (symlink(s, t))
            rc = fail("symlink", t);
    }
    closedir(d);
    return rc;
}

int main(int argc, char **argv) {
    if (argc != 4 || (strcmp(argv[3], "F32") && strcmp(argv[3], "F16"))) {
        fprintf(stderr, "usage: fixture_dtype SRC_ROOT DST_ROOT F32|F16\n");
        return 2;
    }
    char src[PATH_CAP], dst[PATH_CAP];
    char *abs_src = realpath(argv[1], NULL);
    if (!abs_src)
        return fail("realpath", argv[1]);
    snprintf(src, sizeof src, "%s/" FIXTURE, abs_src);
    free(abs_src);
    if (mkdir(argv[2], 0755) && errno != EEXIST)
        return fail("mkdir", argv[2]);
    snprintf(dst, sizeof dst, "%s/" FIXTURE, argv[2]);
    return mirror(src, dst, false, !strcmp(argv[3], "F32"));
}
