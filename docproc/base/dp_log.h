/* The one log sink: everything to stderr as "docproc: LEVEL: message".
 *
 *   dp_log_set_level(DP_LOG_INFO);
 *   DP_LOG_WARN("%s: page %d: blank page skipped", path, page);
 *
 * The macros test the level before evaluating their arguments. */
#ifndef DP_LOG_H
#define DP_LOG_H

#include "dp_status.h"

#include <stdbool.h>

enum dp_log_level { DP_LOG_ERROR = 0, DP_LOG_WARN = 1, DP_LOG_INFO = 2, DP_LOG_DEBUG = 3 };

void dp_log_set_level(enum dp_log_level level);
enum dp_log_level dp_log_get_level(void);
void dp_log(enum dp_log_level level, const char *fmt, ...) DP_PRINTF(2, 3);
/* A TTY progress line without its newline is on stderr (open) or not: the next message
 * first clears it, so a warning never lands in the middle of the progress line. */
void dp_log_progress_line(bool open);

#define DP_LOG_AT(lvl, ...)                                                                        \
    do {                                                                                           \
        if ((lvl) <= dp_log_get_level())                                                           \
            dp_log((lvl), __VA_ARGS__);                                                            \
    } while (0)
#define DP_LOG_ERROR(...) DP_LOG_AT(DP_LOG_ERROR, __VA_ARGS__)
#define DP_LOG_WARN(...)  DP_LOG_AT(DP_LOG_WARN, __VA_ARGS__)
#define DP_LOG_INFO(...)  DP_LOG_AT(DP_LOG_INFO, __VA_ARGS__)
#define DP_LOG_DEBUG(...) DP_LOG_AT(DP_LOG_DEBUG, __VA_ARGS__)

#endif
