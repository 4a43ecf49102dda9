/* A minimal test harness (redis testhelp.h style): checks count, never abort, and
 * t_done() prints the "N passed, N failed" line CI reads and returns the exit status.
 *
 *   int main(void) {
 *       T_CHECK(1 + 1 == 2);
 *       T_EQ_I64(f(3), 9);
 *       T_NEAR(g(), 0.5, 1e-6);
 *       return t_done();
 *   }
 *
 * Named cases, one at a time from the command line: a main that calls t_args(argc, argv) and
 * runs its parts as T_RUN(fn) (calls fn()) or T_RUN_AS(name, statements) accepts
 *   test_x --list          prints the case names, runs none of them
 *   test_x --case NAME     runs only that case (repeatable; an unknown NAME fails the test)
 * Code outside the cases (setup) runs either way.
 */
#ifndef T_H
#define T_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int t_passed, t_failed;

#define T_FAIL_AT(...)                                                                             \
    do {                                                                                           \
        t_failed++;                                                                                \
        fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                       \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fputc('\n', stderr);                                                                       \
    } while (0)

#define T_CHECK(cond)                                                                              \
    do {                                                                                           \
        if (cond)                                                                                  \
            t_passed++;                                                                            \
        else                                                                                       \
            T_FAIL_AT("%s", #cond);                                                                \
    } while (0)

#define T_CHECK_MSG(cond, ...)                                                                     \
    do {                                                                                           \
        if (cond)                                                                                  \
            t_passed++;                                                                            \
        else                                                                                       \
            T_FAIL_AT(__VA_ARGS__);                                                                \
    } while (0)

#define T_EQ_I64(a, b)                                                                             \
    do {                                                                                           \
        int64_t t_a_ = (int64_t)(a), t_b_ = (int64_t)(b);                                          \
        if (t_a_ == t_b_)                                                                          \
            t_passed++;                                                                            \
        else                                                                                       \
            T_FAIL_AT("%s == %s: got %lld, expected %lld", #a, #b, (long long)t_a_,                 \
                      (long long)t_b_);                                                            \
    } while (0)

#define T_EQ_STR(a, b)                                                                             \
    do {                                                                                           \
        const char *t_a_ = (a), *t_b_ = (b);                                                       \
        if (t_a_ && t_b_ && !strcmp(t_a_, t_b_))                                                   \
            t_passed++;                                                                            \
        else                                                                                       \
            T_FAIL_AT("%s == %s: got \"%s\", expected \"%s\"", #a, #b, t_a_ ? t_a_ : "(null)",     \
                      t_b_ ? t_b_ : "(null)");                                                     \
    } while (0)

#define T_NEAR(a, b, tol)                                                                          \
    do {                                                                                           \
        double t_a_ = (double)(a), t_b_ = (double)(b);                                             \
        if (fabs(t_a_ - t_b_) <= (tol))                                                            \
            t_passed++;                                                                            \
        else                                                                                       \
            T_FAIL_AT("%s ~ %s: got %.9g, expected %.9g (tol %g)", #a, #b, t_a_, t_b_,             \
                      (double)(tol));                                                              \
    } while (0)

/* Normalised mean squared error of n floats, and worst relative error; fails above max. */
static inline double t_nmse(const float *got, const float *want, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)got[i] - (double)want[i];
        num += d * d;
        den += (double)want[i] * (double)want[i];
    }
    return den > 0 ? num / den : num;
}
#define T_NMSE(got, want, n, max)                                                                  \
    do {                                                                                           \
        double t_e_ = t_nmse((got), (want), (n));                                                  \
        if (t_e_ <= (max))                                                                         \
            t_passed++;                                                                            \
        else                                                                                       \
            T_FAIL_AT("nmse(%s, %s) = %.3g > %.3g", #got, #want, t_e_, (double)(max));             \
    } while (0)

/* ---- named cases ---------------------------------------------------------------------------- */

#define T_MAX_SELECTED 32 /* --case options one run takes */

static const char *t_selected[T_MAX_SELECTED];
static bool t_selected_ran[T_MAX_SELECTED];
static int t_n_selected;
static bool t_listing;

/* Takes --list, --case NAME and --case=NAME out of argv (the other arguments keep their order);
 * returns the new argc. */
static inline int t_args(int argc, char **argv) {
    int out = 1;
    for (int i = 1; i < argc; i++) {
        const char *name = NULL;
        if (!strcmp(argv[i], "--list"))
            t_listing = true;
        else if (!strcmp(argv[i], "--case") && i + 1 < argc)
            name = argv[++i];
        else if (!strncmp(argv[i], "--case=", 7))
            name = argv[i] + 7;
        else
            argv[out++] = argv[i];
        if (name && t_n_selected < T_MAX_SELECTED)
            t_selected[t_n_selected++] = name;
        else if (name) {
            t_failed++;
            fprintf(stderr, "FAIL: more than %d --case options\n", T_MAX_SELECTED);
        }
    }
    argv[out] = NULL;
    return out;
}

/* Whether the case called name runs now (--list prints it instead). */
static inline bool t_case(const char *name) {
    if (t_listing) {
        printf("%s\n", name);
        return false;
    }
    if (!t_n_selected)
        return true;
    bool run = false;
    for (int i = 0; i < t_n_selected; i++)
        if (!strcmp(t_selected[i], name))
            run = t_selected_ran[i] = true;
    if (run)
        printf("case %s\n", name);
    return run;
}

#define T_RUN(fn)                                                                                  \
    do {                                                                                           \
        if (t_case(#fn))                                                                           \
            fn();                                                                                  \
    } while (0)
#define T_RUN_AS(name, ...)                                                                        \
    do {                                                                                           \
        if (t_case(#name)) {                                                                       \
            __VA_ARGS__;                                                                           \
        }                                                                                          \
    } while (0)

static inline int t_done(void) {
    for (int i = 0; i < t_n_selected; i++)
        if (!t_selected_ran[i]) {
            t_failed++;
            fprintf(stderr, "FAIL: no case named '%s' (--list lists them)\n", t_selected[i]);
        }
    if (t_listing)
        return t_failed ? 1 : 0;
    printf("%d passed, %d failed\n", t_passed, t_failed);
    return t_failed ? 1 : 0;
}

/* The VmFlags line of the /proc/self/smaps entry holding address p ("" if not found): tests
 * of how weights are mapped (huge pages: "hg"). */
static inline void t_vma_flags(const void *p, char *out, size_t cap) {
    out[0] = '\0';
    FILE *fp = fopen("/proc/self/smaps", "r");
    char line[512];
    bool in = false;
    while (fp && fgets(line, sizeof line, fp)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2)
            in = (uintptr_t)p >= lo && (uintptr_t)p < hi;
        else if (in && !strncmp(line, "VmFlags:", 8))
            snprintf(out, cap, "%s", line);
    }
    if (fp)
        fclose(fp);
}

/* Path of a file in the unpacked fixtures ($DP_FIXTURES) or source tree ($DP_SOURCE_DIR). */
static inline const char *t_path(char *buf, size_t n, const char *env, const char *rel) {
    const char *root = getenv(env);
    snprintf(buf, n, "%s/%s", root ? root : ".", rel);
    return buf;
}

#endif
