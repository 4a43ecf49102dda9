/* Exit-code mapping, usage errors, strict option parsing and small helpers every command uses
 * (dp_cli.h). Thread-safe except dp_cli_getopt_error, which reads getopt's optind. */
#include "dp_cli.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PATH_MAX_LEN 4096
#define CHAR_MAX_OPT 128 /* getopt option characters are ASCII; long-only options are above */

int dp_cli_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "docproc %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\ntry 'docproc %s --help'\n", cmd);
    va_end(ap);
    return DP_EXIT_USAGE;
}

int dp_cli_getopt_error(const char *cmd, int c, int argc, char **argv) {
    const char *opt = optind > 0 && optind - 1 < argc ? argv[optind - 1] : "?";
    if (c == ':')
        return dp_cli_usage_error(cmd, "option '%s' needs a value", opt);
    if (optopt > 0 && optopt < CHAR_MAX_OPT)
        return dp_cli_usage_error(cmd, "unknown option '-%c'", optopt);
    return dp_cli_usage_error(cmd, "unknown option '%s'", opt);
}

const char *dp_cli_model_env(void) {
    const char *m = getenv("DOCPROC_MODEL");
    return m && *m ? m : NULL;
}

void dp_cli_remove_flat_dir(const char *dir) {
    DIR *dh = opendir(dir);
    if (dh) {
        struct dirent *e;
        char p[PATH_MAX_LEN];
        while ((e = readdir(dh)) != NULL) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            int k = snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            if (k > 0 && (size_t)k < sizeof p)
                unlink(p);
        }
        closedir(dh);
    }
    rmdir(dir);
}

int dp_cli_exit_for(enum dp_status st) {
    switch (st) {
    case DP_OK: return DP_EXIT_OK;
    case DP_ERR_USAGE: return DP_EXIT_USAGE;
    case DP_ERR_MODEL:
    case DP_ERR_SCHEMA: return DP_EXIT_LOAD;
    case DP_ERR_CANCELLED: return DP_EXIT_INTERRUPTED;
    case DP_ERR_INTERNAL: return DP_EXIT_INTERNAL;
    default: return DP_EXIT_INPUT;
    }
}

bool dp_cli_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out) {
    if (!s || !*s)
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return false;
    *out = (int64_t)v;
    return true;
}

bool dp_cli_parse_long(const char *s, long min, long max, long *out) {
    int64_t v;
    if (!dp_cli_parse_i64(s, min, max, &v))
        return false;
    *out = (long)v;
    return true;
}

bool dp_cli_parse_double(const char *s, double min, double max, double *out) {
    if (!s || !*s)
        return false;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v) || v < min || v > max)
        return false;
    *out = v;
    return true;
}

bool dp_cli_parse_size(const char *s, long max, long *w, long *h) {
    if (!s)
        return false;
    char *end;
    errno = 0;
    long a = strtol(s, &end, 10);
    if (errno || end == s || (*end != 'x' && *end != 'X') || a < 1 || a > max)
        return false;
    const char *p = end + 1;
    long b = strtol(p, &end, 10);
    if (errno || end == p || *end || b < 1 || b > max)
        return false;
    *w = a;
    *h = b;
    return true;
}
