/* The batch manifest: discovery of inputs, their SHA-256, deterministic sharding, and the
 * crash-safe journal that makes `--resume` exactly-once.
 *
 *   struct dp_inputs docs = {0};
 *   dp_discover(&docs, inputs, n_inputs, &err);          // files, directories, @lists
 *   dp_inputs_shard(&docs, 2, 4);                       // keep shard 2 of 4 (1-based)
 *   struct dp_journal j;
 *   dp_journal_open(&j, "out/.docproc/journal-2-of-4.jsonl", &err);
 *   ... process docs.items[i], then dp_journal_append(&j, &docs.items[i], &err) ...
 *   dp_manifest_write("out/manifest-2-of-4.json", &docs, &info, &err);
 *   dp_journal_close(&j); dp_inputs_free(&docs);
 *
 * A journal record is one JSON line written with a single write() and fsync'd after the
 * document's outputs were renamed into place; a torn last line (kill -9) is ignored on load.
 * Not thread-safe: one owner per doclist and per journal. */
#ifndef DP_MANIFEST_H
#define DP_MANIFEST_H

#include "dp_status.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DP_SHA256_HEX_LEN 64

enum dp_input_state {
    DP_INPUT_PENDING = 0, /* not processed yet */
    DP_INPUT_OK,          /* every output written */
    DP_INPUT_FAILED,      /* error recorded in code/error; nothing under the final names */
    DP_INPUT_REUSED,      /* --resume: done by an earlier run with the same SHA-256 and
                           * the same fingerprints */
    DP_INPUT_SKIPPED,     /* found under a directory but not a document (reason in error) */
};

/* Why --resume did not reuse a document that an earlier run finished (summary and -v). */
enum dp_redo {
    DP_REDO_NONE = 0,
    DP_REDO_NEW,          /* no record: never processed (not a recomputation) */
    DP_REDO_FAILED,       /* the earlier run failed it */
    DP_REDO_INPUT,        /* the input's SHA-256 changed */
    DP_REDO_SETTINGS,     /* model, prompt, render or sampling settings changed */
    DP_REDO_OUTPUTS,      /* only schema/formats/version changed: re-extracted from kept raw */
    DP_REDO_MISSING,      /* recorded outputs no longer on disk, or named differently */
    DP_REDO_N_REASONS,
};
const char *dp_redo_str(enum dp_redo r);

/* Per-document timings in seconds (whisper-style summary with -v). */
struct dp_input_timings {
    double rasterize, vision, prefill, decode, extract, write, total;
};

struct dp_input {
    char *path;   /* path to open (as given, or joined with the directory); owned */
    char *rel;    /* stable document name: relative to its input directory; owned */
    char *stem;   /* output folder name (sanitised rel, unique in the batch); owned */
    char sha256[DP_SHA256_HEX_LEN + 1]; /* "" until hashed */
    int64_t size; /* bytes */
    const char *kind; /* "pdf", "tiff", "png", "jpeg" (static) */
    enum dp_input_state state;
    enum dp_status code; /* failure code (DP_OK when fine) */
    char *error;         /* failure message; owned; NULL when fine */
    int pages;           /* pages processed (selected and rendered) */
    int pages_blank;     /* blank pages not sent to the model */
    int pages_truncated; /* answers cut by --max-new-tokens or a repetition/time guard */
    int pages_repetition;
    int64_t tokens_generated;
    struct dp_input_timings t;
    char **outputs; /* output paths written (relative to the output directory); owned */
    int n_outputs;
    long src_index; /* --from-raw: index of the raw document it comes from */
    /* what determines the outputs (dp__fingerprints): recorded in the journal for --resume */
    char fp_model[DP_SHA256_HEX_LEN + 1];
    char fp_output[DP_SHA256_HEX_LEN + 1];
    enum dp_redo redo; /* --resume: why a finished document is done again */
    bool from_kept_raw; /* re-extract from the raw answers kept in its output folder */
    bool path_is_tmp;   /* path is the copy of stdin ("-"), removed by dp_input_clear */
};

struct dp_inputs {
    struct dp_input *items;
    int n, cap;
};

/* Expands inputs in order: a file is taken as is (any kind; failures are reported per document),
 * a directory is walked recursively in sorted name order, and every entry under it is listed:
 * documents by content as pending, files named like a document whose bytes are not one as
 * failed, everything else (text, hidden, special files, hidden directories) as
 * DP_INPUT_SKIPPED with the reason in error. "@FILE" reads one input per line ('#' comments).
 * "-" reads one document from stdin into a temporary file (named "stdin"; removed when the
 * entry is cleared).
 * An input that does not exist, or a directory without any document, is an error (DP_ERR_IO).
 * Names (rel) are unique; a duplicate path is an error. */
enum dp_status dp_discover(struct dp_inputs *out, char *const *inputs, int n_inputs,
                           struct dp_err *err);
void dp_inputs_free(struct dp_inputs *l);
/* The input as the user named it: "-" for stdin, else path (borrowed). */
const char *dp_input_shown(const struct dp_input *d);
/* Frees the members of one entry and zeroes it. */
void dp_input_clear(struct dp_input *d);
/* Records a failure (first error wins) on the entry: state FAILED, code and message copied. */
void dp_input_fail(struct dp_input *d, enum dp_status code, const char *msg);
/* Appends an output path (relative to the output directory). */
enum dp_status dp_input_add_output(struct dp_input *d, const char *rel_out, struct dp_err *err);
/* Adds one document (path and rel copied). */
enum dp_status dp_inputs_add(struct dp_inputs *l, const char *path, const char *rel,
                              struct dp_err *err);

/* SHA-256 of a file as lowercase hex (GLib GChecksum), and its size. */
enum dp_status dp_sha256_file(char out[DP_SHA256_HEX_LEN + 1], int64_t *size, const char *path,
                              struct dp_err *err);
/* SHA-256 of bytes as lowercase hex. */
void dp_sha256_hex(char out[DP_SHA256_HEX_LEN + 1], const void *data, size_t len);

/* The shard (0-based, < n) of a document name: SHA-256(rel) read as a big-endian integer mod n.
 * Deterministic across machines; depends only on the name, not on the file system. */
int dp_shard_of(const char *rel, int n);
/* Keeps only the documents of shard k of n (k 1-based, as in --shard K/N). */
void dp_inputs_shard(struct dp_inputs *l, int k, int n);
/* Parses "K/N" (1 <= K <= N <= DP_MAX_SHARDS). */
bool dp_shard_parse(const char *s, int *k, int *n);

/* ---- journal ------------------------------------------------------------------------------ */

struct dp_journal {
    int fd;
    char *path;
};

/* Opens (creating directories and the file) for appending. */
enum dp_status dp_journal_open(struct dp_journal *j, const char *path, struct dp_err *err);
/* Appends the document's record and fsyncs. */
enum dp_status dp_journal_append(struct dp_journal *j, const struct dp_input *d, struct dp_err *err);
void dp_journal_close(struct dp_journal *j);

/* Marks as DP_INPUT_REUSED every pending document whose last successful record in the journal at
 * path has the same name, SHA-256, stem and fingerprints (fp_model, fp_output: set them first)
 * and whose recorded outputs all exist under out_dir; copies the record's figures. A document
 * whose record differs only in fp_output and whose raw answers are kept gets from_kept_raw; every
 * other finished document that is redone gets its reason in redo. A missing journal is not an
 * error; torn or foreign lines are skipped. Returns the number reused in *n_reused. */
enum dp_status dp_journal_resume(struct dp_inputs *docs, const char *path, const char *out_dir,
                                 int *n_reused, struct dp_err *err);

/* ---- manifest ----------------------------------------------------------------------------- */

struct dp_manifest_info {
    const char *command;  /* "batch", "extract", "tables" */
    const char *schema;   /* schema name or file */
    const char *model;    /* model directory or "from-raw:PATH" */
    int shard_k, shard_n; /* 1/1 when not sharded */
    double wall_s;
};

/* Writes the manifest (JSON: run info, counts, one entry per document) atomically. */
enum dp_status dp_manifest_write(const char *path, const struct dp_inputs *docs,
                                 const struct dp_manifest_info *info, struct dp_err *err);
/* Merges shard manifests into one (atomically written to out): checks that no document appears
 * twice and that every shard 1..N of the same N is present; the report goes to *summary
 * (caller frees with dp_free). */
enum dp_status dp_manifest_merge(const char *out, char *const *inputs, int n_inputs,
                                 char **summary, struct dp_err *err);

const char *dp_input_state_str(enum dp_input_state s);

#endif
