/* One writer per output directory: two batch runs (or a run and --merge) on one OUT never
 * write it at once. flock(2) on OUT/.docproc/lock: exclusive for a run of the whole input and
 * for --merge, shared for a --shard K/N run, which also holds OUT/.docproc/lock-K-of-N
 * exclusively (the shards of one job run side by side, the same shard twice does not). The
 * kernel drops the locks of a killed process, so a stale lock file never blocks --resume. */
#include "dp_run_impl.h"
#include "dp_fs.h"

#include <stdio.h>
#include <sys/stat.h>

static enum dp_status busy(const char *out_dir, const char *lock, long pid, const char *what,
                           struct dp_err *err) {
    char who[48] = "";
    if (pid > 0)
        snprintf(who, sizeof who, " (pid %ld)", pid);
    return dp_err_set(err, DP_ERR_IO,
                      "%s: another docproc run%s is writing this output directory%s; wait for it "
                      "to end (lock %s)",
                      out_dir, who, what, lock);
}

enum dp_status dp__outlock_take(struct dp_outlock *l, const char *out_dir, int shard_k,
                                int shard_n, struct dp_err *err) {
    if (l->fd_all >= 0)
        return DP_OK; /* taken already */
    char dir[PATH_BYTES], all[PATH_BYTES], mine[PATH_BYTES];
    enum dp_status st = dp__path_join(dir, sizeof dir, out_dir, ".docproc", err);
    if (st == DP_OK)
        st = dp__path_join(all, sizeof all, dir, "lock", err);
    if (st == DP_OK)
        st = dp_mkdirs(dir, err);
    if (st != DP_OK)
        return st;
    bool sharded = shard_n > 1;
    long pid = 0;
    int fd = -1;
    st = dp_lock_take(all, !sharded, &fd, &pid, err);
    if (st != DP_OK && pid)
        return busy(out_dir, all, pid, sharded ? "" : " (a whole run or --merge needs it alone)",
                    err);
    if (st != DP_OK)
        return st;
    l->fd_all = fd;
    if (!sharded)
        return DP_OK;
    char name[48];
    snprintf(name, sizeof name, "lock-%d-of-%d", shard_k, shard_n);
    st = dp__path_join(mine, sizeof mine, dir, name, err);
    if (st == DP_OK) {
        st = dp_lock_take(mine, true, &l->fd_shard, &pid, err);
        if (st != DP_OK && pid) {
            char what[64];
            snprintf(what, sizeof what, " as shard %d/%d", shard_k, shard_n);
            st = busy(out_dir, mine, pid, what, err);
        }
    }
    if (st != DP_OK)
        dp__outlock_release(l);
    return st;
}

bool dp__outlock_dir_exists(const char *out_dir) {
    char dir[PATH_BYTES];
    struct stat sb;
    return snprintf(dir, sizeof dir, "%s/.docproc", out_dir) < (int)sizeof dir &&
           stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode);
}

void dp__outlock_release(struct dp_outlock *l) {
    dp_lock_release(&l->fd_shard);
    dp_lock_release(&l->fd_all);
}
