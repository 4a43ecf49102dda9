/* Private to the batch run (dp_run.c, dp_run_list.c, dp_run_doc.c): the state of one
 * dp_batch_run and the steps the driver calls. Not thread-safe except where a field says. */
#ifndef DP_RUN_IMPL_H
#define DP_RUN_IMPL_H

#include "dp_batch_impl.h"
#include "dp_out.h"

#include <pthread.h>
#include <stdatomic.h>

#define PATH_BYTES 4096
#define STEM_HASH_CHARS 8
/* The top-level staging name of a document's output: ".WHAT-PID-STEM" with the stem's '/'
 * written as '+' (stems keep the input tree; staging is flat, so a killed run's leftovers are
 * found in OUT alone). Cut to cap. */
void dp__stage_name(char *out, size_t cap, const char *what, const char *stem);

/* ---- one writer per output directory (dp_outlock.c) ------------------------------------- */
struct dp_outlock {
    int fd_all, fd_shard; /* -1 when not held; start with DP_OUTLOCK_INIT */
};
#define DP_OUTLOCK_INIT {-1, -1}
/* Locks OUT (creating OUT/.docproc): exclusive for shard_n <= 1, else shared plus shard K/N
 * exclusive. DP_ERR_IO naming the directory and the holder's pid when another run holds it.
 * No-op when held already. */
enum dp_status dp__outlock_take(struct dp_outlock *l, const char *out_dir, int shard_k,
                                int shard_n, struct dp_err *err);
/* Whether OUT/.docproc exists (an earlier or running run): then the lock is taken first. */
bool dp__outlock_dir_exists(const char *out_dir);
void dp__outlock_release(struct dp_outlock *l);

struct dp_run {
    const struct dp_batch_opts *o;
    struct sc_schema *schema;
    struct ex_gram *gram;      /* --constrain: compiled answer contract, until the model takes it */
    struct dp_inputs docs;
    struct dp_raw_set *raw;
    struct dp_infer *inf;
    struct dp_pwfile pw;
    struct dp_journal journal;
    bool have_journal;
    struct dp_outlock lock;    /* OUT held against other runs (dp_outlock.c) */
    struct dp_bundle *zip_all; /* extract -o BUNDLE.zip */
    const char *out_dir;       /* directory output or NULL */
    char journal_path[PATH_BYTES], manifest_path[PATH_BYTES], digest_path[PATH_BYTES];
    bool out_created;          /* the output directory exists (made or found by this run) */
    char model_digest[DP_SHA256_HEX_LEN + 1]; /* of the checkpoint's files; "" for --from-raw */
    char *digest_cache;        /* the per-file digests to keep beside the journal */
    struct dp_raw_set *kept;   /* raw answers kept in the output directory (from_kept_raw) */
    struct dp_progress prog;
    const char *model_id;
    int n_tables, n_docs_no_table; /* `tables`: found, and documents without any */
    /* --from-raw with --jobs N: workers share the list; mu guards the journal, stdout,
     * progress, the shared zip and n_tables */
    pthread_mutex_t mu;
    atomic_int next;
    atomic_int worker_status; /* enum dp_status of the first failed worker */
};

/* dp_run.c: "A/B" into out (n bytes); DP_ERR_LIMIT when it does not fit. */
enum dp_status dp__path_join(char *out, size_t n, const char *a, const char *b,
                             struct dp_err *err);

/* ---- document list (dp_run_list.c) ------------------------------------------------------- */

/* The documents of a --from-raw run: one per document of the raw bundle or directory. */
enum dp_status dp__run_docs_from_raw(struct dp_run *r, struct dp_err *err);
/* Unique output stems: the sanitised name, plus a hash of the name when two collide. */
enum dp_status dp__run_assign_stems(struct dp_inputs *l, struct dp_err *err);
/* Removes what an interrupted run of this one left in the output directory (staging folders,
 * temporaries of the manifest and of document zips). */
void dp__run_clean_stale(struct dp_run *r);

/* ---- one document (dp_run_doc.c) --------------------------------------------------------- */

/* One JSON Lines record on stdout (through opts->emit). */
void dp__run_emit_line(const struct dp_run *r, const char *s);
/* The manifest record of d as one JSON line on stdout. */
void dp__run_status_line(const struct dp_run *r, const struct dp_input *d);
/* Answers (model or raw), extraction, outputs and the journal record of document index. */
void dp__run_doc(struct dp_run *r, int index);

#endif
