/* Whole-file reads and atomic writes (dp_fs.h). Thread-safe: no shared state; temporary names
 * carry the pid and a per-process counter so concurrent writers never collide. */
#include "dp_fs.h"
#include "dp_alloc.h"
#include "dp_buf.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* Temporary of "DIR/BASE": "DIR/.BASE" ATOMIC_TMP_TAG "PID-N" (pid and per-process counter). */
#define ATOMIC_TMP_TAG ".tmp-"

static atomic_uint tmp_counter;

bool dp_pid_running_other(long pid) {
    return pid > 0 && pid != (long)getpid() && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
}

bool dp_atomic_is_stale_tmp(const char *name, const char *base) {
    size_t bl = strlen(base), tl = strlen(ATOMIC_TMP_TAG);
    if (name[0] != '.' || strncmp(name + 1, base, bl) || strncmp(name + 1 + bl, ATOMIC_TMP_TAG, tl))
        return false;
    return !dp_pid_running_other(strtol(name + 1 + bl + tl, NULL, 10));
}

enum dp_status dp_atomic_open(struct dp_atomic_file *f, const char *path, bool overwrite,
                              struct dp_err *err) {
    memset(f, 0, sizeof *f);
    struct stat st;
    if (!overwrite && stat(path, &st) == 0)
        return dp_err_set(err, DP_ERR_IO, "%s: already exists (use --force to overwrite)", path);
    const char *base = dp_path_basename(path);
    size_t dirlen = (size_t)(base - path);
    struct dp_buf b;
    dp_buf_init(&b, 4096);
    dp_buf_append(&b, path, dirlen);
    dp_buf_appendf(&b, ".%s" ATOMIC_TMP_TAG "%ld-%u", base, (long)getpid(),
                   atomic_fetch_add(&tmp_counter, 1));
    if (b.status != DP_OK) {
        enum dp_status bs = b.status;
        dp_buf_free(&b);
        if (bs == DP_ERR_NOMEM)
            return dp_err_set(err, DP_ERR_NOMEM, "%s: out of memory", path);
        return dp_err_set(err, DP_ERR_LIMIT, "%s: path too long", path);
    }
    f->tmp_path = dp_buf_steal(&b, NULL);
    f->path = dp_strdup(path);
    if (!f->path) {
        dp_atomic_abort(f);
        return dp_err_set(err, DP_ERR_NOMEM, "%s: out of memory", path);
    }
    int fd = open(f->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0 || !(f->fp = fdopen(fd, "wb"))) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        dp_err_set_errno(err, DP_ERR_IO, e, "%s: cannot create", f->tmp_path);
        DP_FREE(f->path);
        DP_FREE(f->tmp_path);
        return DP_ERR_IO;
    }
    return DP_OK;
}

void dp_atomic_abort(struct dp_atomic_file *f) {
    if (f->fp) {
        fclose(f->fp);
        f->fp = NULL;
    }
    if (f->tmp_path)
        unlink(f->tmp_path);
    DP_FREE(f->tmp_path);
    DP_FREE(f->path);
}

enum dp_status dp_atomic_commit(struct dp_atomic_file *f, struct dp_err *err) {
    enum dp_status st = DP_OK;
    if (fflush(f->fp) != 0 || ferror(f->fp) || fsync(fileno(f->fp)) != 0)
        st = dp_err_set_errno(err, DP_ERR_IO, errno, "%s: write failed", f->path);
    if (fclose(f->fp) != 0 && st == DP_OK)
        st = dp_err_set_errno(err, DP_ERR_IO, errno, "%s: write failed", f->path);
    f->fp = NULL;
    if (st == DP_OK && rename(f->tmp_path, f->path) != 0)
        st = dp_err_set_errno(err, DP_ERR_IO, errno, "%s: cannot rename into place", f->path);
    if (st == DP_OK)
        DP_FREE(f->tmp_path); /* renamed: nothing to unlink */
    dp_atomic_abort(f);
    return st;
}

enum dp_status dp_file_write_atomic(const char *path, const void *data, size_t len, bool overwrite,
                                    struct dp_err *err) {
    struct dp_atomic_file f;
    enum dp_status st = dp_atomic_open(&f, path, overwrite, err);
    if (st != DP_OK)
        return st;
    if (len && fwrite(data, 1, len, f.fp) != len) {
        st = dp_err_set_errno(err, DP_ERR_IO, errno, "%s: write failed", path);
        dp_atomic_abort(&f);
        return st;
    }
    return dp_atomic_commit(&f, err);
}

enum dp_status dp_file_read(const char *path, size_t max, char **out, size_t *out_len,
                            struct dp_err *err) {
    *out = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return dp_err_set_errno(err, DP_ERR_IO, errno, "%s: cannot open", path);
    struct dp_buf b;
    dp_buf_init(&b, max);
    char chunk[65536];
    size_t n;
    errno = 0;
    while ((n = fread(chunk, 1, sizeof chunk, fp)) > 0)
        if (dp_buf_append(&b, chunk, n) != DP_OK)
            break;
    int failed = ferror(fp), read_errno = errno;
    fclose(fp);
    if (failed) {
        dp_buf_free(&b);
        return dp_err_set_errno(err, DP_ERR_IO, read_errno ? read_errno : EIO, "%s: cannot read",
                                path);
    }
    if (b.status == DP_ERR_LIMIT) {
        dp_buf_free(&b);
        return dp_err_set(err, DP_ERR_LIMIT, "%s: file larger than %zu bytes", path, max);
    }
    if (b.status != DP_OK || dp_buf_append(&b, "", 0) != DP_OK) {
        dp_buf_free(&b);
        return dp_err_set(err, DP_ERR_NOMEM, "%s: out of memory", path);
    }
    *out = dp_buf_steal(&b, out_len);
    return DP_OK;
}

enum dp_status dp_mkdirs(const char *path, struct dp_err *err) {
    char *p = dp_strdup(path);
    if (!p)
        return dp_err_set(err, DP_ERR_NOMEM, "%s: out of memory", path);
    for (char *s = p + 1;; s++) {
        char c = *s;
        if (c == '/' || c == '\0') {
            *s = '\0';
            if (mkdir(p, 0755) != 0 && errno != EEXIST) {
                int e = errno;
                dp_free(p);
                return dp_err_set_errno(err, DP_ERR_IO, e, "%s: cannot create directory", path);
            }
            *s = c;
            if (c == '\0')
                break;
        }
    }
    dp_free(p);
    return DP_OK;
}

const char *dp_path_basename(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

char *dp_exe_relative(const char *rel) {
    char exe[4096];
    ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (k <= 0)
        return NULL;
    exe[k] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash)
        return NULL;
    *slash = '\0';
    size_t n = strlen(exe) + 1 + strlen(rel) + 1;
    char *out = dp_malloc(n);
    if (out)
        snprintf(out, n, "%s/%s", exe, rel);
    return out;
}

enum dp_status dp_dir_writable(const char *path, struct dp_err *err) {
    char p[4096];
    int w = snprintf(p, sizeof p, "%s", path);
    if (w < 0 || (size_t)w >= sizeof p)
        return dp_err_set(err, DP_ERR_LIMIT, "%s: path longer than %zu bytes", path, sizeof p - 1);
    for (;;) {
        struct stat sb;
        if (stat(p, &sb) == 0) {
            if (!S_ISDIR(sb.st_mode))
                return dp_err_set(err, DP_ERR_IO, "%s: cannot write %s: not a directory", p, path);
            if (access(p, W_OK | X_OK) != 0)
                return dp_err_set_errno(err, DP_ERR_IO, errno, "%s: cannot write", p);
            return DP_OK;
        }
        char *slash = strrchr(p, '/');
        if (!slash) {
            snprintf(p, sizeof p, ".");
            continue;
        }
        if (slash == p) {
            p[1] = '\0';
            if (access(p, W_OK | X_OK) != 0)
                return dp_err_set_errno(err, DP_ERR_IO, errno, "/: cannot write");
            return DP_OK;
        }
        *slash = '\0';
    }
}


enum dp_status dp_lock_take(const char *path, bool exclusive, int *fd, long *busy_pid,
                            struct dp_err *err) {
    *fd = -1;
    *busy_pid = 0;
    int f = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (f < 0)
        return dp_err_set_errno(err, DP_ERR_IO, errno, "%s: cannot open the lock file", path);
    if (flock(f, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) != 0) {
        int e = errno;
        if (e != EWOULDBLOCK) {
            close(f);
            return dp_err_set_errno(err, DP_ERR_IO, e, "%s: cannot lock", path);
        }
        char buf[32] = {0};
        *busy_pid = -1;
        if (pread(f, buf, sizeof buf - 1, 0) > 0 && strtol(buf, NULL, 10) > 0)
            *busy_pid = strtol(buf, NULL, 10);
        close(f);
        return DP_ERR_IO;
    }
    if (exclusive) { /* who holds it, for the message of the next one */
        char buf[32];
        int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
        bool ok = ftruncate(f, 0) == 0 && pwrite(f, buf, (size_t)n, 0) == n;
        (void)ok; /* the pid only serves messages */
    }
    *fd = f;
    return DP_OK;
}

void dp_lock_release(int *fd) {
    if (*fd >= 0)
        close(*fd); /* closing the last descriptor drops the flock */
    *fd = -1;
}
