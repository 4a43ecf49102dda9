/* Guards and small utilities of the batch: blank-page detection before inference, repetition
 * loop detection during generation, the monotonic clock and the stamp's time, one path per
 * document message, password files, and rm -rf of the
 * staging folders we create. Thread-safe: every function works on its arguments only. */
#include "dp_batch_impl.h"
#include "dp_alloc.h"
#include "dp_buf.h"
#include "dp_fs.h"
#include "dp_limits.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LUMA_LEVELS 256
#define RMTREE_MAX_DEPTH 32
#define PATH_BYTES 4096

void dp__created_now(char *out, size_t n) {
    const char *sde = getenv("SOURCE_DATE_EPOCH");
    char *end = NULL;
    long long v = sde ? strtoll(sde, &end, 10) : 0;
    time_t t = sde && end && end != sde && !*end && v >= 0 ? (time_t)v : time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    if (!strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm) && n)
        out[0] = '\0';
}

void dp__err_name_once(struct dp_err *err, const struct dp_input *d) {
    const char *shown = dp_input_shown(d);
    const char *names[] = {shown, d->path, d->rel};
    const char *msg = err->msg;
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        size_t l = names[i] ? strlen(names[i]) : 0;
        if (l && !strncmp(msg, names[i], l) && msg[l] == ':' && msg[l + 1] == ' ') {
            msg += l + 2;
            break;
        }
    }
    char rest[sizeof err->msg];
    size_t rl = strlen(msg), sl = strlen(shown), cap = sizeof err->msg;
    memcpy(rest, msg, rl + 1);
    if (sl + 3 >= cap)
        return; /* a path that fills the message alone: keep the message as it is */
    if (sl + 2 + rl >= cap)
        rl = cap - sl - 3;
    memcpy(err->msg, shown, sl);
    memcpy(err->msg + sl, ": ", 2);
    memcpy(err->msg + sl + 2, rest, rl);
    err->msg[sl + 2 + rl] = '\0';
}

double dp__now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- blank pages ----------------------------------------------------------------------- */

/* Integer BT.601 luma of one RGB8 pixel (weights 299/587/114 per mille). */
static inline int luma(const uint8_t *px) {
    return (299 * px[0] + 587 * px[1] + 114 * px[2] + 500) / 1000;
}

bool dp__page_is_blank(const uint8_t *rgb, int w, int h) {
    if (!rgb || w <= 0 || h <= 0)
        return true;
    size_t n = (size_t)w * (size_t)h; /* bounded by the decode pixel cap upstream */
    size_t hist[LUMA_LEVELS] = {0};   /* (256,) luma histogram */
    for (size_t i = 0; i < n; i++)
        hist[luma(rgb + 3 * i)]++;
    /* Background = median luma (a page is mostly background; works for white, grey or dark). */
    size_t acc = 0;
    int bg = 0;
    for (int v = 0; v < LUMA_LEVELS; v++) {
        acc += hist[v];
        if (acc * 2 >= n) {
            bg = v;
            break;
        }
    }
    size_t ink = 0;
    for (int v = 0; v < LUMA_LEVELS; v++)
        if (v < bg - DP_BLANK_LUMA_DELTA || v > bg + DP_BLANK_LUMA_DELTA)
            ink += hist[v];
    return (double)ink <= DP_BLANK_MAX_INK_FRACTION * (double)n;
}

/* ---- repetition loops -------------------------------------------------------------------- */

int dp__repetition_period(const int32_t *ids, int64_t n) {
    for (int p = 1; p <= DP_REPEAT_MAX_PERIOD; p++) {
        int64_t need = (int64_t)p * DP_REPEAT_MIN_CYCLES;
        if (need < DP_REPEAT_MIN_TOKENS)
            need = DP_REPEAT_MIN_TOKENS;
        if (need > n)
            break;
        bool loop = true;
        for (int64_t i = n - need; i < n - p && loop; i++)
            loop = ids[i] == ids[i + p];
        if (loop)
            return p;
    }
    return 0;
}

/* ---- password files ------------------------------------------------------------------------ */

void dp__pwfile_free(struct dp_pwfile *pw) {
    for (int i = 0; i < pw->n; i++) {
        dp_free(pw->names[i]);
        dp_free(pw->passwords[i]);
    }
    DP_FREE(pw->names);
    DP_FREE(pw->passwords);
    pw->n = 0;
}

enum dp_status dp__pwfile_load(struct dp_pwfile *out, const char *path, struct dp_err *err) {
    memset(out, 0, sizeof *out);
    char *text = NULL;
    size_t len = 0;
    enum dp_status st = dp_file_read(path, DP_MAX_PASSWORD_FILE_BYTES, &text, &len, err);
    if (st != DP_OK)
        return st;
    int line_no = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line && st == DP_OK;
         line = strtok_r(NULL, "\n", &save)) {
        line_no++;
        size_t ll = strlen(line);
        if (ll && line[ll - 1] == '\r')
            line[--ll] = '\0';
        if (!ll || line[0] == '#')
            continue;
        char *sep = strchr(line, '\t');
        if (!sep)
            sep = strchr(line, '=');
        if (!sep || sep == line) {
            st = dp_err_set(err, DP_ERR_USAGE, "%s:%d: expected NAME=PASSWORD", path, line_no);
            break;
        }
        *sep = '\0';
        char **nn = dp_reallocarray(out->names, (size_t)out->n + 1, sizeof *nn);
        if (nn)
            out->names = nn;
        char **pp = nn ? dp_reallocarray(out->passwords, (size_t)out->n + 1, sizeof *pp) : NULL;
        if (pp)
            out->passwords = pp;
        char *name = pp ? dp_strdup(line) : NULL;
        char *pass = name ? dp_strdup(sep + 1) : NULL;
        if (!pass) {
            dp_free(name);
            st = dp_err_set(err, DP_ERR_NOMEM, "%s: out of memory", path);
            break;
        }
        out->names[out->n] = name;
        out->passwords[out->n] = pass;
        out->n++;
    }
    /* the file held secrets: wipe our copy before freeing it */
    memset(text, 0, len);
    dp_free(text);
    if (st != DP_OK)
        dp__pwfile_free(out);
    return st;
}

const char *dp__pwfile_lookup(const struct dp_pwfile *pw, const char *rel) {
    const char *base = dp_path_basename(rel);
    for (int pass = 0; pass < 3; pass++)
        for (int i = 0; i < pw->n; i++) {
            const char *key = pass == 0 ? rel : pass == 1 ? base : "*";
            if (!strcmp(pw->names[i], key))
                return pw->passwords[i];
        }
    return NULL;
}

/* ---- rm -rf -------------------------------------------------------------------------------- */

static enum dp_status rmtree_at(const char *path, int depth, struct dp_err *err) {
    struct stat sb;
    if (lstat(path, &sb) != 0)
        return errno == ENOENT ? DP_OK : dp_err_set_errno(err, DP_ERR_IO, errno, "%s", path);
    if (!S_ISDIR(sb.st_mode)) {
        if (unlink(path) != 0)
            return dp_err_set_errno(err, DP_ERR_IO, errno, "%s: cannot remove", path);
        return DP_OK;
    }
    if (depth > RMTREE_MAX_DEPTH)
        return dp_err_set(err, DP_ERR_LIMIT, "%s: nested deeper than %d", path, RMTREE_MAX_DEPTH);
    DIR *dh = opendir(path);
    if (!dh)
        return dp_err_set_errno(err, DP_ERR_IO, errno, "%s: cannot open", path);
    enum dp_status st = DP_OK;
    char child[PATH_BYTES];
    for (struct dirent *de = readdir(dh); de && st == DP_OK; de = readdir(dh)) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        int w = snprintf(child, sizeof child, "%s/%s", path, de->d_name);
        if (w < 0 || (size_t)w >= sizeof child)
            st = dp_err_set(err, DP_ERR_LIMIT, "%s/%s: path too long", path, de->d_name);
        else
            st = rmtree_at(child, depth + 1, err);
    }
    closedir(dh);
    if (st == DP_OK && rmdir(path) != 0)
        st = dp_err_set_errno(err, DP_ERR_IO, errno, "%s: cannot remove", path);
    return st;
}

enum dp_status dp__rmtree(const char *path, struct dp_err *err) {
    return rmtree_at(path, 0, err);
}
