/* `docproc extract`: every page of every input through the model (or --from-raw answers) and
 * the schema's extractor; one JSON Lines record per document on stdout, files with -o DIR or
 * -o BUNDLE.zip. Option parsing, sinks and exit codes are shared with batch (cmd_batch.c). */
#include "dp_cli.h"
#include "dp_batch.h"

int dp_cmd_extract(int argc, char **argv) {
    return dp_cmd_batch_common(DP_BATCH_CMD_EXTRACT, argc, argv);
}
