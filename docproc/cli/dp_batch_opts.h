/* Command-line options of extract, batch and tables (dp_batch_opts.c): fill the plain
 * struct dp_batch_opts of dp_batch.h from argv, and print its --help with the live defaults.
 *
 *   struct dp_batch_opts o;
 *   dp_batch_opts_init(&o, DP_BATCH_CMD_BATCH);
 *   bool help = false;
 *   if (dp_batch_opts_parse(&o, argc, argv, &help, &err) != DP_OK) ... usage error in err.msg ...
 *   ... dp_batch_run(&o, &sum, &err) ...
 *   dp_batch_opts_free(&o);
 *
 * Not thread-safe (getopt's globals). */
#ifndef DP_BATCH_OPTS_H
#define DP_BATCH_OPTS_H

#include "dp_batch.h"
#include "dp_status.h"

#include <stdbool.h>

/* Defaults for documents (docs/batch.md): see DP_BATCH_DEFAULT_* in dp_limits.h. */
void dp_batch_opts_init(struct dp_batch_opts *o, enum dp_batch_cmd cmd);
/* getopt_long over argv (argv[0] is the command). Returns DP_ERR_USAGE with the message in err,
 * or DP_OK; *help_out is set when --help was given (nothing else is checked then). */
enum dp_status dp_batch_opts_parse(struct dp_batch_opts *o, int argc, char **argv, bool *help_out,
                                   struct dp_err *err);
/* The command's help text with the current (default) values; caller frees with dp_free. */
char *dp_batch_opts_help(const struct dp_batch_opts *o);
void dp_batch_opts_free(struct dp_batch_opts *o);

#endif
