/* Files: whole-file reads with a cap, and atomic writes (temporary name, fsync, rename).
 *
 *   struct dp_atomic_file f;
 *   if (dp_atomic_open(&f, "out/doc.json", false, &err) == DP_OK) {
 *       fwrite(..., f.fp);
 *       dp_atomic_commit(&f, &err);      // or dp_atomic_abort(&f) on failure
 *   }
 *
 * No partial output file is ever visible under the final name. Thread-safe per object. */
#ifndef DP_FS_H
#define DP_FS_H

#include "dp_status.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct dp_atomic_file {
    FILE *fp;
    char *path;     /* final name */
    char *tmp_path; /* hidden temporary in the same directory */
};

/* Opens a temporary beside path. Fails with DP_ERR_IO if path exists and !overwrite. */
enum dp_status dp_atomic_open(struct dp_atomic_file *f, const char *path, bool overwrite,
                              struct dp_err *err);
/* Flushes, fsyncs and renames onto the final name; frees f. */
enum dp_status dp_atomic_commit(struct dp_atomic_file *f, struct dp_err *err);
/* Removes the temporary; frees f. Safe on a zeroed or already-finished object. */
void dp_atomic_abort(struct dp_atomic_file *f);
/* Whether the directory entry name is a temporary that dp_atomic_open made for a file named
 * base in the same directory, by a process that is no longer running or by this one (call it
 * before this process writes base): a killed writer's leftover, safe to remove. */
bool dp_atomic_is_stale_tmp(const char *name, const char *base);
/* True when pid names a running process other than this one. */
bool dp_pid_running_other(long pid);
/* Writes len bytes atomically to path. */
enum dp_status dp_file_write_atomic(const char *path, const void *data, size_t len, bool overwrite,
                                    struct dp_err *err);

/* Reads a whole file (NUL-terminated; caller frees with dp_free). Refuses files over max bytes. */
enum dp_status dp_file_read(const char *path, size_t max, char **out, size_t *out_len,
                            struct dp_err *err);
/* Whether the directory path can be written without creating anything: it is a writable
 * directory, or the nearest existing parent is one (then mkdir -p can make it). DP_ERR_IO with
 * the reason otherwise. */
enum dp_status dp_dir_writable(const char *path, struct dp_err *err);
/* mkdir -p. */
enum dp_status dp_mkdirs(const char *path, struct dp_err *err);
/* Takes flock(2) on path (created 0644 if missing), exclusive or shared, without waiting; *fd
 * holds it until dp_lock_release or the process ends (the kernel drops the lock of a killed
 * process: a stale lock file never blocks). An exclusive holder writes its pid into the file.
 * When another process holds it: DP_ERR_IO without a message, *busy_pid the holder's pid or -1
 * when unknown (it is 0 otherwise); other failures set err. */
enum dp_status dp_lock_take(const char *path, bool exclusive, int *fd, long *busy_pid,
                            struct dp_err *err);
void dp_lock_release(int *fd);
/* The last path component without directory (borrowed pointer into path). */
const char *dp_path_basename(const char *path);
/* "<directory of the running executable>/rel" (caller frees with dp_free), or NULL when
 * /proc/self/exe cannot be read or out of memory. For data installed beside the binary. */
char *dp_exe_relative(const char *rel);

#endif
