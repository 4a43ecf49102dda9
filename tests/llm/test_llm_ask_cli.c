/* CLI test of `docproc ask` ($DP_BIN) on the tiny fixture, from the files alone: for every case
 * of manifest.json, `ask --raw PROMPT --image ... | --video FRAMES --fps F --ignore-eos
 * --max-new-tokens 24 --temperature 0 --print-ids` must print gen.decode_ids on its last line
 * (the raw prompt and the input files come from the manifest; images are the originals, so
 * smart_resize + bicubic run too). Also: --dump writes position_ids (I64 [3,S], exact) and
 * logits.last (F32 [V]); usage errors exit 2; placeholder/input mismatches, a prompt longer
 * than the context and a model of another architecture are clear errors. */
#include "t.h"
#include "llm_golden.h"

#include <errno.h>
#include <jansson.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_ARGS 64
#define OUT_MAX (1 << 20)

static char fixtures[LG_PATH_MAX], model[LG_PATH_MAX], tmpdir[LG_PATH_MAX];
static const char *bin;

/* Runs bin with args; stdout into out (NUL-terminated), stderr into errbuf. Returns exit code. */
static int run(char *const *args, char *out, size_t cap, char *errbuf, size_t ecap) {
    int po[2], pe[2];
    if (pipe(po) || pipe(pe))
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(po[1], 1);
        dup2(pe[1], 2);
        close(po[0]);
        close(pe[0]);
        execv(bin, args);
        _exit(127);
    }
    close(po[1]);
    close(pe[1]);
    size_t n = 0, ne = 0;
    for (;;) { /* outputs are small: drain stdout, then stderr */
        ssize_t r = read(po[0], out + n, cap - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    for (;;) {
        ssize_t r = read(pe[0], errbuf + ne, ecap - 1 - ne);
        if (r <= 0)
            break;
        ne += (size_t)r;
    }
    out[n] = 0;
    errbuf[ne] = 0;
    close(po[0]);
    close(pe[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static const char *last_line(char *out) {
    size_t n = strlen(out);
    while (n && out[n - 1] == '\n')
        out[--n] = 0;
    char *p = strrchr(out, '\n');
    return p ? p + 1 : out;
}

static char *path_of(const char *rel) {
    size_t n = strlen(fixtures) + strlen(rel) + 2;
    char *p = malloc(n);
    snprintf(p, n, "%s/%s", fixtures, rel);
    return p;
}

static void golden_case(json_t *c, int threads) {
    const char *id = json_string_value(json_object_get(c, "id"));
    const char *prompt = json_string_value(json_object_get(c, "prompt"));
    char *args[MAX_ARGS], *owned[MAX_ARGS];
    int na = 0, no = 0;
    char thr[16], fps[32], minp[32], maxp[32];
    snprintf(thr, sizeof thr, "%d", threads);
    snprintf(minp, sizeof minp, "%lld",
             (long long)json_integer_value(json_object_get(c, "image_min_pixels")));
    snprintf(maxp, sizeof maxp, "%lld",
             (long long)json_integer_value(json_object_get(c, "image_max_pixels")));
    args[na++] = (char *)"docproc";
    args[na++] = (char *)"ask";
    args[na++] = (char *)"--model";
    args[na++] = model;
    args[na++] = (char *)"--raw";
    args[na++] = (char *)prompt;
    size_t i;
    json_t *im;
    json_array_foreach(json_object_get(c, "images"), i, im) {
        args[na++] = (char *)"--image";
        args[na++] = owned[no++] = path_of(json_string_value(json_object_get(im, "file")));
    }
    json_t *v = json_object_get(c, "video");
    if (v) {
        char list[4 * LG_PATH_MAX] = "";
        json_t *fr;
        json_array_foreach(json_object_get(v, "frames"), i, fr) {
            char *p = path_of(json_string_value(fr));
            if (i)
                strncat(list, ",", sizeof list - strlen(list) - 1);
            strncat(list, p, sizeof list - strlen(list) - 1);
            free(p);
        }
        snprintf(fps, sizeof fps, "%.17g", json_number_value(json_object_get(v, "fps")));
        args[na++] = (char *)"--video";
        args[na++] = owned[no++] = strdup(list);
        args[na++] = (char *)"--fps";
        args[na++] = fps;
    }
    char *extra[] = {"--min-pixels", minp, "--max-pixels", maxp, "--ignore-eos", "--max-new-tokens", "24", "--temperature", "0",
                     "--print-ids", "--threads", thr};
    for (size_t k = 0; k < sizeof extra / sizeof extra[0]; k++)
        args[na++] = extra[k];
    args[na] = NULL;
    char *out = malloc(OUT_MAX), errb[4096];
    int rc = run(args, out, OUT_MAX, errb, sizeof errb);
    T_CHECK_MSG(rc == 0, "%s: exit %d: %s", id, rc, errb);
    /* compare the last line with gen.decode_ids */
    struct vl_st_file *f = lg_open(id);
    size_t n = 0;
    int64_t *want = f ? lg_i64(f, "gen.decode_ids", &n) : NULL;
    json_error_t je;
    json_t *arr = json_loads(last_line(out), 0, &je);
    int bad = !arr || !want || json_array_size(arr) != n;
    for (size_t k = 0; !bad && k < n; k++)
        bad += json_integer_value(json_array_get(arr, k)) != want[k];
    T_CHECK_MSG(!bad, "%s: ids differ: got %s", id, last_line(out));
    /* the streamed answer (everything before the ids line) is the reference's decoded text */
    const char *text = json_string_value(json_object_get(c, "generated_text"));
    char *nl = strrchr(out, '\n');
    size_t tl = nl ? (size_t)(nl - out) : 0, wl = text ? strlen(text) : 0;
    while (wl && text[wl - 1] == '\n')
        wl--;
    T_CHECK_MSG(text && tl == wl && !memcmp(out, text, wl), "%s: streamed text differs:\n%.*s",
                id, (int)tl, out);
    printf("%-24s threads %d: docproc ask reproduces gen.decode_ids (%zu tokens) and the text\n",
           id, threads, n);
    json_decref(arr);
    free(want);
    vl_st_close(f);
    free(out);
    for (int k = 0; k < no; k++)
        free(owned[k]);
}

static int ask(char *out, size_t cap, char *errb, size_t ecap, const char *a1, const char *a2,
               const char *a3, const char *a4, const char *a5, const char *a6) {
    char *args[] = {"docproc", "ask", (char *)a1, (char *)a2, (char *)a3, (char *)a4,
                    (char *)a5, (char *)a6, NULL};
    return run(args, out, cap, errb, ecap);
}

static void dump_test(void) {
    char dir[LG_PATH_MAX + 16], img[LG_PATH_MAX + 32], out[8192], errb[4096];
    snprintf(dir, sizeof dir, "%s/dump", tmpdir);
    snprintf(img, sizeof img, "%s/images/b.png", fixtures);
    char *args[] = {"docproc", "ask", "--model", model, "--image", img, "--prompt",
                    "What is written here?", "--max-new-tokens", "2", "--dump", dir, NULL};
    int rc = run(args, out, sizeof out, errb, sizeof errb);
    T_CHECK_MSG(rc == 0, "dump: exit %d: %s", rc, errb);
    char p[2 * LG_PATH_MAX];
    struct vl_error err = {0};
    struct vl_st_file *f = NULL, *g = lg_open("img_b_56x56");
    snprintf(p, sizeof p, "%s/position_ids.safetensors", dir);
    T_CHECK(vl_st_open(&f, p, &err) == VL_OK);
    const struct vl_st_entry *e = f ? vl_st_find(f, "position_ids") : NULL;
    size_t n = 0;
    int64_t *want = g ? lg_i64(g, "position_ids", &n) : NULL;
    T_CHECK(e && !strcmp(e->dtype, "I64") && e->ndim == 2 && e->shape[0] == 3 &&
            (size_t)(e->shape[0] * e->shape[1]) == n && want &&
            !memcmp(e->data, want, n * sizeof *want));
    free(want);
    vl_st_close(f);
    f = NULL;
    snprintf(p, sizeof p, "%s/logits.last.safetensors", dir);
    T_CHECK(vl_st_open(&f, p, &err) == VL_OK);
    e = f ? vl_st_find(f, "logits.last") : NULL;
    float *wl = g ? lg_f32(g, "logits.last", &n) : NULL;
    T_CHECK(e && !strcmp(e->dtype, "F32") && e->ndim == 1 && (size_t)e->shape[0] == n && wl);
    if (e && wl && (size_t)e->shape[0] == n) {
        float *gl = malloc(n * sizeof *gl);
        memcpy(gl, e->data, n * sizeof *gl);
        double mx, rel = lg_rel_l2(gl, wl, n, &mx);
        T_CHECK_MSG(rel < 1e-5, "dumped logits.last rel L2 %g", rel);
        printf("--dump: position_ids exact, logits.last rel L2 %.3g\n", rel);
        free(gl);
    }
    free(wl);
    vl_st_close(f);
    vl_st_close(g);
}

static void write_file(const char *path, const char *text) {
    FILE *fp = fopen(path, "w");
    if (fp) {
        fputs(text, fp);
        fclose(fp);
    }
}

/* A model dir that links the fixture's weights/tokenizer with an edited config.json. */
static void make_model(const char *dir, const char *from, const char *to) {
    char p[2 * LG_PATH_MAX], q[2 * LG_PATH_MAX];
    mkdir(dir, 0755);
    const char *files[] = {"model.safetensors", "tokenizer.json", "preprocessor_config.json",
                           "generation_config.json"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", model, files[i]);
        snprintf(q, sizeof q, "%s/%s", dir, files[i]);
        if (symlink(p, q) && errno != EEXIST)
            perror(q);
    }
    snprintf(p, sizeof p, "%s/config.json", model);
    FILE *fp = fopen(p, "r");
    static char buf[1 << 16];
    size_t n = fp ? fread(buf, 1, sizeof buf - 1, fp) : 0;
    if (fp)
        fclose(fp);
    buf[n] = 0;
    char *at = strstr(buf, from);
    static char edited[1 << 16];
    if (at)
        snprintf(edited, sizeof edited, "%.*s%s%s", (int)(at - buf), buf, to, at + strlen(from));
    snprintf(q, sizeof q, "%s/config.json", dir);
    write_file(q, at ? edited : buf);
}

static void errors(void) {
    char out[8192], errb[4096], img[LG_PATH_MAX + 32], d[LG_PATH_MAX + 32];
    snprintf(img, sizeof img, "%s/images/b.png", fixtures);
    T_EQ_I64(ask(out, sizeof out, errb, sizeof errb, "--help", NULL, NULL, NULL, NULL, NULL), 0);
    T_CHECK(strstr(out, "--max-new-tokens") != NULL);
    T_EQ_I64(ask(out, sizeof out, errb, sizeof errb, "--model", model, "--prompt", "a", "--raw",
                 "b"),
             2);
    T_EQ_I64(ask(out, sizeof out, errb, sizeof errb, "--model", model, "--prompt", "a",
                 "--bogus", NULL),
             2);
    T_EQ_I64(ask(out, sizeof out, errb, sizeof errb, "--model", model, "--prompt", "a",
                 "--max-new-tokens", "0"),
             2);
    /* placeholders vs inputs */
    int rc = ask(out, sizeof out, errb, sizeof errb, "--model", model, "--raw",
                 "<|vision_start|><|image_pad|><|vision_end|>hi", NULL, NULL);
    T_CHECK_MSG(rc != 0 && strstr(errb, "placeholder"), "no image: exit %d: %s", rc, errb);
    printf("placeholders > images: exit %d: %s", rc, errb);
    rc = ask(out, sizeof out, errb, sizeof errb, "--model", model, "--raw", "hi", "--image", img);
    T_CHECK_MSG(rc != 0 && strstr(errb, "placeholder"), "extra image: exit %d: %s", rc, errb);
    printf("images > placeholders: exit %d: %s", rc, errb);
    /* wrong architecture */
    snprintf(d, sizeof d, "%s/llama", tmpdir);
    make_model(d, "\"qwen2_5_vl\"", "\"llama\"");
    rc = ask(out, sizeof out, errb, sizeof errb, "--model", d, "--prompt", "hi", NULL, NULL);
    T_CHECK_MSG(rc == 3, "wrong architecture: exit %d: %s", rc, errb);
    printf("wrong architecture: exit %d: %s", rc, errb);
    /* prompt longer than the context */
    snprintf(d, sizeof d, "%s/short", tmpdir);
    snprintf(img, sizeof img, "%s/images/a.png", fixtures); /* 117 image tokens */
    make_model(d, "\"max_position_embeddings\": 128000", "\"max_position_embeddings\": 32");
    rc = ask(out, sizeof out, errb, sizeof errb, "--model", d, "--image", img, "--prompt",
             "What is written here?");
    T_CHECK_MSG(rc != 0 && strstr(errb, "context"), "long prompt: exit %d: %s", rc, errb);
    printf("prompt longer than the context: exit %d: %s", rc, errb);
    /* pixel limits */
    char *args[] = {"docproc", "ask", "--model", model, "--prompt", "hi", "--min-pixels",
                    "9000", "--max-pixels", "3000", NULL};
    rc = run(args, out, sizeof out, errb, sizeof errb);
    T_EQ_I64(rc, 2);
    printf("min-pixels above max-pixels: exit %d: %s", rc, errb);
    char *args2[] = {"docproc", "ask", "--model", model, "--image", img, "--prompt", "hi",
                     "--max-pixels", "100", NULL};
    rc = run(args2, out, sizeof out, errb, sizeof errb);
    T_CHECK_MSG(rc == 2 && strstr(errb, "merge unit"), "max-pixels 100: exit %d: %s", rc, errb);
    printf("max-pixels below one merge unit: exit %d: %s", rc, errb);
    /* an image file that is not an image */
    char bad[LG_PATH_MAX + 32];
    snprintf(bad, sizeof bad, "%s/not-an-image.png", tmpdir);
    write_file(bad, "hello");
    char *args3[] = {"docproc", "ask", "--model", model, "--image", bad, "--prompt", "hi", NULL};
    rc = run(args3, out, sizeof out, errb, sizeof errb);
    T_CHECK_MSG(rc != 0 && strstr(errb, "not-an-image.png"), "bad image: exit %d: %s", rc, errb);
    printf("undecodable image: exit %d: %s", rc, errb);
}

int main(int argc, char **argv) {
    int threads = argc == 3 && !strcmp(argv[1], "--threads") ? (int)strtol(argv[2], NULL, 10) : 1;
    bin = getenv("DP_BIN");
    const char *root = getenv("DP_FIXTURES");
    T_CHECK_MSG(bin && root, "DP_BIN and DP_FIXTURES must be set");
    if (!bin || !root)
        return t_done();
    int k1 = snprintf(fixtures, sizeof fixtures, "%s/qwen25vl-tiny", root);
    int k2 = snprintf(model, sizeof model, "%s/model", fixtures);
    T_CHECK(k1 > 0 && k2 > 0 && (size_t)k2 < sizeof model);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/dp_ask_test.XXXXXX");
    T_CHECK(mkdtemp(tmpdir) != NULL);
    char mpath[LG_PATH_MAX + 32];
    snprintf(mpath, sizeof mpath, "%s/manifest.json", fixtures);
    json_error_t je;
    json_t *man = json_load_file(mpath, 0, &je);
    T_CHECK_MSG(man != NULL, "manifest: %s", je.text);
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(man, "cases"), i, c) golden_case(c, threads);
    T_CHECK(json_array_size(json_object_get(man, "cases")) >= 7);
    json_decref(man);
    dump_test();
    errors();
    char cmd[LG_PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return t_done();
}
