/* stderr log sink with a process-wide level (set once by the CLI before work starts).
 * Thread-safe: each message is formatted first and written with one fputs under stdio's lock. */
#include "dp_log.h"

#include <stdatomic.h>
#include <stdio.h>

#define DP_LOG_LINE_MAX 2048

static atomic_int log_level = DP_LOG_WARN;
static atomic_bool progress_open;

void dp_log_progress_line(bool open) {
    atomic_store(&progress_open, open);
}

void dp_log_set_level(enum dp_log_level level) {
    atomic_store(&log_level, (int)level);
}

enum dp_log_level dp_log_get_level(void) {
    return (enum dp_log_level)atomic_load(&log_level);
}

void dp_log(enum dp_log_level level, const char *fmt, ...) {
    static const char *const names[] = {"error", "warn", "info", "debug"};
    char line[DP_LOG_LINE_MAX];
    int n = snprintf(line, sizeof line, "docproc: %s: ", names[level]);
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof line)
        vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    flockfile(stderr);
    if (atomic_exchange(&progress_open, false))
        fputs("\r\033[K", stderr); /* check_style: allow (clears the progress line) */
    fputs(line, stderr); /* check_style: allow (the one log sink) */
    fputc('\n', stderr);
    funlockfile(stderr);
}
