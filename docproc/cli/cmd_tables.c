/* `docproc tables`: every table on every page as CSV and JSON with cell boxes, tables that
 * continue across pages stitched (docproc/out/dp_tables.c). Runs the table schema through the
 * shared pipeline (cmd_batch.c); --from-raw re-stitches saved answers without the model. */
#include "dp_cli.h"
#include "dp_batch.h"

int dp_cmd_tables(int argc, char **argv) {
    return dp_cmd_batch_common(DP_BATCH_CMD_TABLES, argc, argv);
}
