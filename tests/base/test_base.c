/* Unit tests of docproc/base: errors, checked sizes, capped buffers, atomic files. */
#include "t.h"

#include "dp_alloc.h"
#include "dp_buf.h"
#include "dp_fs.h"
#include "dp_status.h"

#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

static void test_err(void) {
    struct dp_err err = {0};
    T_EQ_I64(dp_err_set(&err, DP_ERR_FORMAT, "first %d", 1), DP_ERR_FORMAT);
    dp_err_set(&err, DP_ERR_IO, "second");
    T_EQ_STR(err.msg, "first 1");
    T_EQ_I64(err.code, DP_ERR_FORMAT);
    dp_err_prefix(&err, "a.pdf");
    T_EQ_STR(err.msg, "a.pdf: first 1");
    dp_err_prefix(&err, "a.pdf");
    T_EQ_STR(err.msg, "a.pdf: first 1");
}

static void test_sizes(void) {
    size_t n;
    T_CHECK(dp_size_mul3(&n, 1000, 1000, 3) && n == 3000000);
    T_CHECK(!dp_size_mul(&n, SIZE_MAX / 2, 3));
    T_CHECK(!dp_size_add(&n, SIZE_MAX, 1));
}

static void test_buf(void) {
    struct dp_buf b;
    dp_buf_init(&b, 8);
    dp_buf_puts(&b, "abc");
    dp_buf_appendf(&b, "%d", 42);
    T_EQ_STR(b.data, "abc42");
    dp_buf_puts(&b, "toolong");
    T_EQ_I64(b.status, DP_ERR_LIMIT);
    dp_buf_puts(&b, "x");
    T_EQ_STR(b.data, "abc42"); /* sticky: nothing appended after the failure */
    dp_buf_free(&b);

    dp_alloc_fail_after(1);
    dp_buf_init(&b, 100);
    T_EQ_I64(dp_buf_puts(&b, "x"), DP_ERR_NOMEM);
    dp_buf_free(&b);
    dp_alloc_fail_after(0);
}

static void test_atomic(void) {
    char dir[] = "/tmp/dp_test_XXXXXX";
    T_CHECK(mkdtemp(dir) != NULL);
    char path[256];
    snprintf(path, sizeof path, "%s/out/x.txt", dir);
    struct dp_err err = {0};
    char sub[256];
    snprintf(sub, sizeof sub, "%s/out", dir);
    T_EQ_I64(dp_mkdirs(sub, &err), DP_OK);
    T_EQ_I64(dp_file_write_atomic(path, "hello", 5, false, &err), DP_OK);
    T_EQ_I64(dp_file_write_atomic(path, "again", 5, false, &err), DP_ERR_IO); /* no --force */
    char *data = NULL;
    size_t len = 0;
    dp_err_clear(&err);
    T_EQ_I64(dp_file_read(path, 100, &data, &len, &err), DP_OK);
    T_CHECK(len == 5 && !memcmp(data, "hello", 5));
    dp_free(data);
    T_EQ_I64(dp_file_read(path, 3, &data, &len, &err), DP_ERR_LIMIT);

    struct dp_atomic_file f;
    dp_err_clear(&err);
    T_EQ_I64(dp_atomic_open(&f, path, true, &err), DP_OK);
    fputs("partial", f.fp);
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s", f.tmp_path);
    /* the live temporary is this process's own: only a killed writer's counts as stale */
    T_CHECK(dp_atomic_is_stale_tmp(dp_path_basename(tmp), "x.txt"));
    T_CHECK(!dp_atomic_is_stale_tmp(dp_path_basename(tmp), "y.txt"));
    dp_atomic_abort(&f);
    T_CHECK(access(tmp, F_OK) != 0); /* temporary removed, final untouched */
    char name[64];
    snprintf(name, sizeof name, ".x.txt.tmp-%ld-0", (long)getppid()); /* a running writer */
    T_CHECK(!dp_atomic_is_stale_tmp(name, "x.txt"));
    T_CHECK(dp_atomic_is_stale_tmp(".x.txt.tmp-999999999-3", "x.txt")); /* above any pid_max */
    T_CHECK(!dp_atomic_is_stale_tmp("x.txt", "x.txt"));
    T_CHECK(!dp_atomic_is_stale_tmp(".x.txt", "x.txt"));
    T_CHECK(!dp_pid_running_other((long)getpid()) && dp_pid_running_other((long)getppid()));
    unlink(path);
    rmdir(sub);
    rmdir(dir);
}

int main(int argc, char **argv) {
    t_args(argc, argv);
    T_RUN(test_err);
    T_RUN(test_sizes);
    T_RUN(test_buf);
    T_RUN(test_atomic);
    return t_done();
}
