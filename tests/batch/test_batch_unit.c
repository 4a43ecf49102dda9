/* Unit tests of dpbatch: shard parsing and assignment, SHA-256, discovery by content, the
 * journal (torn records after kill -9, resume by hash), manifest write and merge, password
 * files, blank-page and repetition-loop guards. */
#include "t.h"

#include "dp_alloc.h"
#include "dp_fs.h"
#include "dp_batch_impl.h"
#include "dp_run_impl.h"
#include "dp_manifest.h"

#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[256];

static void put(const char *rel, const void *data, size_t n) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", tmpdir, rel);
    char *slash = strrchr(p, '/');
    *slash = '\0';
    struct dp_err e = {0};
    dp_mkdirs(p, &e);
    *slash = '/';
    FILE *fp = fopen(p, "wb");
    fwrite(data, 1, n, fp);
    fclose(fp);
}

static void test_shard(void) {
    int k, n;
    T_CHECK(dp_shard_parse("1/1", &k, &n) && k == 1 && n == 1);
    T_CHECK(dp_shard_parse("3/4", &k, &n) && k == 3 && n == 4);
    T_CHECK(!dp_shard_parse("0/4", &k, &n));
    T_CHECK(!dp_shard_parse("5/4", &k, &n));
    T_CHECK(!dp_shard_parse("1/", &k, &n));
    T_CHECK(!dp_shard_parse("/4", &k, &n));
    T_CHECK(!dp_shard_parse("1/4x", &k, &n));
    T_CHECK(!dp_shard_parse("-1/4", &k, &n));
    T_CHECK(!dp_shard_parse("1/999999999", &k, &n));
    /* deterministic, in range, and spread over all shards */
    int count[7] = {0};
    for (int i = 0; i < 700; i++) {
        char name[32];
        snprintf(name, sizeof name, "dir/doc-%d.pdf", i);
        int s = dp_shard_of(name, 7);
        T_CHECK(s >= 0 && s < 7);
        T_EQ_I64(dp_shard_of(name, 7), s);
        count[s < 0 || s > 6 ? 0 : s]++;
    }
    for (int s = 0; s < 7; s++)
        T_CHECK_MSG(count[s] > 60 && count[s] < 140, "shard %d got %d of 700", s, count[s]);
    T_EQ_I64(dp_shard_of("anything", 1), 0);
}

static void test_sha(void) {
    char hex[DP_SHA256_HEX_LEN + 1];
    dp_sha256_hex(hex, "abc", 3);
    T_EQ_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    put("sha/abc.txt", "abc", 3);
    char p[512];
    snprintf(p, sizeof p, "%s/sha/abc.txt", tmpdir);
    int64_t size = -1;
    struct dp_err e = {0};
    T_EQ_I64(dp_sha256_file(hex, &size, p, &e), DP_OK);
    T_EQ_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    T_EQ_I64(size, 3);
    snprintf(p, sizeof p, "%s/sha/missing", tmpdir);
    T_EQ_I64(dp_sha256_file(hex, &size, p, &e), DP_ERR_IO);
}

static void test_discover(void) {
    static const char pdf[] = "%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n";
    static const unsigned char png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13};
    static const unsigned char jpg[] = {0xff, 0xd8, 0xff, 0xe0, 0, 16, 'J', 'F', 'I', 'F', 0};
    put("tree/b/z.pdf", pdf, sizeof pdf - 1);
    put("tree/a.png", png, sizeof png);
    put("tree/b/photo.txt", jpg, sizeof jpg); /* JPEG bytes, wrong extension: taken */
    put("tree/notes.pdf", "UPDF-1.4", 8);      /* .pdf but not a PDF: a failed document */
    put("tree/.hidden.pdf", pdf, sizeof pdf - 1); /* hidden: skipped with the reason */
    put("tree/readme.txt", "hello\n", 6);       /* not a document: skipped with the reason */
    char dir[512];
    snprintf(dir, sizeof dir, "%s/tree", tmpdir);
    char *inputs[] = {dir};
    struct dp_inputs l;
    struct dp_err e = {0};
    T_EQ_I64(dp_discover(&l, inputs, 1, &e), DP_OK);
    /* every file is listed: nothing in the tree disappears without a line */
    T_EQ_I64(l.n, 6);
    if (l.n == 6) {
        T_EQ_STR(l.items[0].rel, ".hidden.pdf");
        T_EQ_I64(l.items[0].state, DP_INPUT_SKIPPED);
        T_EQ_STR(l.items[0].error, "hidden file");
        T_EQ_STR(l.items[1].rel, "a.png");
        T_EQ_STR(l.items[1].kind, "png");
        T_EQ_I64(l.items[1].state, DP_INPUT_PENDING);
        T_EQ_STR(l.items[2].rel, "b/photo.txt");
        T_EQ_STR(l.items[2].kind, "jpeg");
        T_EQ_STR(l.items[3].rel, "b/z.pdf");
        T_EQ_STR(l.items[4].rel, "notes.pdf");
        T_EQ_I64(l.items[4].state, DP_INPUT_FAILED);
        T_EQ_I64(l.items[4].code, DP_ERR_UNSUPPORTED);
        T_CHECK(l.items[4].error && strstr(l.items[4].error, "damaged document"));
        T_EQ_STR(l.items[5].rel, "readme.txt");
        T_EQ_I64(l.items[5].state, DP_INPUT_SKIPPED);
        T_EQ_STR(l.items[5].error, "not a document: text file");
    }
    /* shard 1/2 + shard 2/2 = everything, disjoint */
    struct dp_inputs s1, s2;
    dp_discover(&s1, inputs, 1, &e);
    dp_discover(&s2, inputs, 1, &e);
    dp_inputs_shard(&s1, 1, 2);
    dp_inputs_shard(&s2, 2, 2);
    T_EQ_I64(s1.n + s2.n, l.n);
    for (int i = 0; i < s1.n; i++)
        for (int j = 0; j < s2.n; j++)
            T_CHECK(strcmp(s1.items[i].rel, s2.items[j].rel) != 0);
    dp_inputs_free(&s1);
    dp_inputs_free(&s2);
    dp_inputs_free(&l);

    /* @list with two files sharing a base name, a comment and a missing file */
    char list[1024];
    int n = snprintf(list, sizeof list, "# inputs\n%s/tree/b/z.pdf\n%s/tree/z.pdf\n%s/tree/a.png\n",
                     tmpdir, tmpdir, tmpdir);
    put("tree/z.pdf", pdf, sizeof pdf - 1);
    put("list.txt", list, (size_t)n);
    char at[512];
    snprintf(at, sizeof at, "@%s/list.txt", tmpdir);
    char *inputs2[] = {at};
    T_EQ_I64(dp_discover(&l, inputs2, 1, &e), DP_OK);
    T_EQ_I64(l.n, 3);
    if (l.n == 3) {
        T_CHECK(strstr(l.items[0].rel, "tree/b/z.pdf") != NULL);
        T_CHECK(strstr(l.items[1].rel, "tree/z.pdf") != NULL);
        T_CHECK(strcmp(l.items[0].rel, l.items[1].rel) != 0);
        T_EQ_I64(l.items[2].state, DP_INPUT_PENDING);
    }
    dp_inputs_free(&l);
    /* an input that does not exist, or a directory without documents, is the run's error */
    char missing[512], empty[512];
    snprintf(missing, sizeof missing, "%s/nope.pdf", tmpdir);
    char *inputs4[] = {missing};
    memset(&e, 0, sizeof e);
    T_EQ_I64(dp_discover(&l, inputs4, 1, &e), DP_ERR_IO);
    T_CHECK(strstr(e.msg, "nope.pdf") != NULL);
    put("emptytree/notes.txt", "x\n", 2);
    snprintf(empty, sizeof empty, "%s/emptytree", tmpdir);
    char *inputs5[] = {empty};
    memset(&e, 0, sizeof e);
    T_EQ_I64(dp_discover(&l, inputs5, 1, &e), DP_ERR_IO);
    T_CHECK(strstr(e.msg, "no PDF, TIFF, PNG or JPEG") != NULL);
    /* the same file twice is an error */
    char f[512];
    snprintf(f, sizeof f, "%s/tree/z.pdf", tmpdir);
    char *inputs3[] = {f, f};
    memset(&e, 0, sizeof e);
    T_EQ_I64(dp_discover(&l, inputs3, 2, &e), DP_ERR_USAGE);
    T_CHECK(strstr(e.msg, "twice") != NULL);
}

/* The stem of the input named rel in l (after dp__run_assign_stems). */
static const char *stem_of(const struct dp_inputs *l, const char *rel) {
    for (int i = 0; i < l->n; i++)
        if (!strcmp(l->items[i].rel, rel))
            return l->items[i].stem;
    return "";
}

/* Issue 15, item 11: the output keeps the input tree (sub/x.pdf -> OUT/sub/x.pdf/), sanitised
 * per component; names that would collide get a hash of the name. */
static void test_stems(void) {
    const char *rels[] = {"sub/x.pdf",  "sub/deeper/y.png", "top.pdf",  "a b/c?.png",
                          "x.png",      "x.png/inner.png",  "dup?.pdf", "dup*.pdf",
                          "review/r.pdf", "review",         "../up.pdf"};
    enum { N = sizeof rels / sizeof *rels };
    struct dp_inputs l;
    memset(&l, 0, sizeof l);
    struct dp_err e = {0};
    for (int i = 0; i < N; i++)
        T_EQ_I64(dp_inputs_add(&l, rels[i], rels[i], &e), DP_OK);
    T_EQ_I64(dp__run_assign_stems(&l, &e), DP_OK);
    T_EQ_STR(stem_of(&l, "sub/x.pdf"), "sub/x.pdf");
    T_EQ_STR(stem_of(&l, "sub/deeper/y.png"), "sub/deeper/y.png");
    T_EQ_STR(stem_of(&l, "top.pdf"), "top.pdf");
    T_EQ_STR(stem_of(&l, "a b/c?.png"), "a_b/c_.png");
    T_EQ_STR(stem_of(&l, "../up.pdf"), "_./up.pdf"); /* never a traversal */
    /* a document's folder cannot hold another document: the outer one is renamed */
    T_EQ_STR(stem_of(&l, "x.png/inner.png"), "x.png/inner.png");
    T_CHECK(!strncmp(stem_of(&l, "x.png"), "x.png-", 6) && strlen(stem_of(&l, "x.png")) == 14);
    /* two names that sanitise alike: both get their own hash */
    const char *d1 = stem_of(&l, "dup?.pdf"), *d2 = stem_of(&l, "dup*.pdf");
    T_CHECK(!strncmp(d1, "dup_.pdf-", 9) && !strncmp(d2, "dup_.pdf-", 9) && strcmp(d1, d2));
    /* OUT/review/ is the run's crops folder: a document tree named review goes beside it */
    const char *r1 = stem_of(&l, "review/r.pdf"), *r2 = stem_of(&l, "review");
    T_CHECK_MSG(!strncmp(r1, "review-", 7) && strlen(r1) == 7 + 8 + 6 &&
                    !strcmp(r1 + 15, "/r.pdf"), "%s", r1);
    T_CHECK_MSG(!strncmp(r2, "review-", 7), "%s", r2);
    for (int i = 0; i < N; i++) /* all distinct, none inside another's folder */
        for (int k = 0; k < N; k++) {
            size_t n = strlen(l.items[i].stem);
            T_CHECK_MSG(i == k || strncmp(l.items[i].stem, l.items[k].stem, n) ||
                            (l.items[k].stem[n] != '\0' && l.items[k].stem[n] != '/'),
                        "%s / %s", l.items[i].stem, l.items[k].stem);
        }
    dp_inputs_free(&l);
}

static void mk_docs(struct dp_inputs *l, int n) {
    memset(l, 0, sizeof *l);
    struct dp_err e = {0};
    for (int i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "doc%d", i);
        dp_inputs_add(l, name, name, &e);
        l->items[i].stem = dp_strdup(name);
        dp_sha256_hex(l->items[i].sha256, name, strlen(name));
        memset(l->items[i].fp_model, 'a', DP_SHA256_HEX_LEN);
        memset(l->items[i].fp_output, 'b', DP_SHA256_HEX_LEN);
    }
}

static void test_journal(void) {
    char jpath[512], out[512];
    snprintf(out, sizeof out, "%s/out", tmpdir);
    snprintf(jpath, sizeof jpath, "%s/out/.docproc/journal.jsonl", tmpdir);
    struct dp_inputs l;
    mk_docs(&l, 4);
    struct dp_err e = {0};
    struct dp_journal j;
    T_EQ_I64(dp_journal_open(&j, jpath, &e), DP_OK);
    /* doc0 ok with its output present, doc1 ok but output missing, doc2 failed */
    put("out/doc0/result.json", "{}", 2);
    l.items[0].state = DP_INPUT_OK;
    l.items[0].pages = 3;
    dp_input_add_output(&l.items[0], "doc0", &e);
    l.items[1].state = DP_INPUT_OK;
    dp_input_add_output(&l.items[1], "doc1", &e);
    dp_input_fail(&l.items[2], DP_ERR_FORMAT, "bad");
    for (int i = 0; i < 3; i++)
        T_EQ_I64(dp_journal_append(&j, &l.items[i], &e), DP_OK);
    dp_journal_close(&j);
    /* a torn record (kill -9 mid-write) at the end */
    int fd = open(jpath, O_WRONLY | O_APPEND);
    T_CHECK(write(fd, "{\"v\":1,\"name\":\"doc3\",\"sha", 25) == 25);
    close(fd);
    /* reopening terminates the torn line so the next record is whole */
    T_EQ_I64(dp_journal_open(&j, jpath, &e), DP_OK);
    l.items[3].state = DP_INPUT_OK;
    put("out/doc3/result.json", "{}", 2);
    dp_input_add_output(&l.items[3], "doc3", &e);
    T_EQ_I64(dp_journal_append(&j, &l.items[3], &e), DP_OK);
    dp_journal_close(&j);

    struct dp_inputs r;
    mk_docs(&r, 5);
    strcpy(r.items[3].sha256, "0000"); /* doc3 changed since: redo */
    int reused = -1;
    T_EQ_I64(dp_journal_resume(&r, jpath, out, &reused, &e), DP_OK);
    T_EQ_I64(reused, 1);
    T_EQ_I64(r.items[0].state, DP_INPUT_REUSED);
    T_EQ_I64(r.items[0].pages, 3);
    T_EQ_I64(r.items[1].state, DP_INPUT_PENDING); /* output missing */
    T_EQ_I64(r.items[2].state, DP_INPUT_PENDING); /* failed before: retried */
    T_EQ_I64(r.items[3].state, DP_INPUT_PENDING); /* hash changed */
    T_EQ_I64(r.items[4].state, DP_INPUT_PENDING);
    T_EQ_I64(r.items[1].redo, DP_REDO_MISSING);
    T_EQ_I64(r.items[2].redo, DP_REDO_FAILED);
    T_EQ_I64(r.items[3].redo, DP_REDO_INPUT);
    T_EQ_I64(r.items[4].redo, DP_REDO_NEW);
    dp_inputs_free(&r);
    /* changed settings: a finished document is never reused */
    mk_docs(&r, 1);
    r.items[0].fp_model[0] = 'c';
    T_EQ_I64(dp_journal_resume(&r, jpath, out, &reused, &e), DP_OK);
    T_EQ_I64(reused, 0);
    T_EQ_I64(r.items[0].state, DP_INPUT_PENDING);
    T_EQ_I64(r.items[0].redo, DP_REDO_SETTINGS);
    dp_inputs_free(&r);
    /* only the output fingerprint changed and the raw answers are kept: re-extracted */
    mk_docs(&r, 1);
    r.items[0].fp_output[0] = 'c';
    put("out/doc0/raw/pages.json", "{}", 2);
    T_EQ_I64(dp_journal_resume(&r, jpath, out, &reused, &e), DP_OK);
    T_EQ_I64(reused, 0);
    T_EQ_I64(r.items[0].redo, DP_REDO_OUTPUTS);
    T_CHECK(r.items[0].from_kept_raw);

    /* manifests of two shards merge; a duplicate or a missing shard is refused */
    char m1[512], m2[512], mm[512];
    snprintf(m1, sizeof m1, "%s/m1.json", tmpdir);
    snprintf(m2, sizeof m2, "%s/m2.json", tmpdir);
    snprintf(mm, sizeof mm, "%s/merged.json", tmpdir);
    struct dp_inputs a, b;
    mk_docs(&a, 2);
    mk_docs(&b, 0);
    struct dp_err e2 = {0};
    dp_inputs_add(&b, "x", "x", &e2);
    struct dp_manifest_info i1 = {"batch", "form", "m", 1, 2, 1.0};
    struct dp_manifest_info i2 = {"batch", "form", "m", 2, 2, 2.0};
    T_EQ_I64(dp_manifest_write(m1, &a, &i1, &e), DP_OK);
    T_EQ_I64(dp_manifest_write(m2, &b, &i2, &e), DP_OK);
    char *in[] = {m1, m2};
    char *summary = NULL;
    T_EQ_I64(dp_manifest_merge(mm, in, 2, &summary, &e), DP_OK);
    T_CHECK(summary && strstr(summary, "3 documents"));
    dp_free(summary);
    json_t *m = json_load_file(mm, 0, NULL);
    T_EQ_I64(json_array_size(json_object_get(m, "documents")), 3);
    json_decref(m);
    char *dup[] = {m1, m1};
    struct dp_err e3 = {0};
    T_EQ_I64(dp_manifest_merge(mm, dup, 2, &summary, &e3), DP_ERR_FORMAT);
    T_CHECK(strstr(e3.msg, "twice") != NULL);
    struct dp_err e4 = {0};
    T_EQ_I64(dp_manifest_merge(mm, in, 1, &summary, &e4), DP_ERR_FORMAT);
    T_CHECK(strstr(e4.msg, "missing") != NULL);
    dp_inputs_free(&a);
    dp_inputs_free(&b);
    dp_inputs_free(&l);
    dp_inputs_free(&r);
}

static void test_guards(void) {
    enum { W = 200, H = 300 };
    uint8_t *px = malloc((size_t)W * H * 3); /* (H, W, 3) */
    memset(px, 250, (size_t)W * H * 3);
    T_CHECK(dp__page_is_blank(px, W, H));
    for (int i = 0; i < 5; i++) /* scanner specks */
        px[3 * (i * 997 % (W * H))] = 0;
    T_CHECK(dp__page_is_blank(px, W, H));
    for (int y = 100; y < 110; y++) /* one short line of text */
        for (int x = 20; x < 60; x++)
            memset(px + 3 * (y * W + x), 0, 3);
    T_CHECK(!dp__page_is_blank(px, W, H));
    memset(px, 20, (size_t)W * H * 3); /* a dark empty page is blank too */
    T_CHECK(dp__page_is_blank(px, W, H));
    free(px);

    int32_t ids[400];
    for (int i = 0; i < 400; i++)
        ids[i] = i; /* no loop */
    T_EQ_I64(dp__repetition_period(ids, 400), 0);
    for (int i = 200; i < 400; i++)
        ids[i] = 7 + (i % 5); /* period 5 for 200 tokens */
    T_EQ_I64(dp__repetition_period(ids, 400), 5);
    for (int i = 0; i < 400; i++)
        ids[i] = 3; /* one token over and over */
    T_EQ_I64(dp__repetition_period(ids, 400), 1);
    T_EQ_I64(dp__repetition_period(ids, 20), 0); /* too short to call */
}

static void test_pwfile(void) {
    put("pw.txt", "# passwords\nsecret.pdf=623\nsub/b.pdf\ttest\n*=fallback\n", 52);
    char p[512];
    snprintf(p, sizeof p, "%s/pw.txt", tmpdir);
    struct dp_pwfile pw;
    struct dp_err e = {0};
    T_EQ_I64(dp__pwfile_load(&pw, p, &e), DP_OK);
    T_EQ_I64(pw.n, 3);
    T_EQ_STR(dp__pwfile_lookup(&pw, "dir/secret.pdf"), "623");
    T_EQ_STR(dp__pwfile_lookup(&pw, "sub/b.pdf"), "test");
    T_EQ_STR(dp__pwfile_lookup(&pw, "other.pdf"), "fallback");
    dp__pwfile_free(&pw);
    put("pw-bad.txt", "no separator\n", 13);
    snprintf(p, sizeof p, "%s/pw-bad.txt", tmpdir);
    T_EQ_I64(dp__pwfile_load(&pw, p, &e), DP_ERR_USAGE);
    T_CHECK(strstr(e.msg, ":1:") != NULL);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/dp-batch-unit-XXXXXX");
    if (!mkdtemp(tmpdir))
        return 1;
    test_shard();
    test_sha();
    test_discover();
    test_stems();
    test_journal();
    test_guards();
    test_pwfile();
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return t_done();
}
