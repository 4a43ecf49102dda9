/* dpbatch: the document pipeline behind `docproc extract`, `docproc batch` and `docproc tables`:
 * discovery, model or --from-raw answers, extraction, atomic per-document outputs, the journal
 * and manifest, guards, progress and timings.
 *
 *   struct dp_batch_opts o;          // a plain struct: docproc/cli/dp_batch_opts.h fills it
 *   dp_batch_opts_init(&o, DP_BATCH_CMD_BATCH);    // from argv (defaults, getopt, --help);
 *   dp_batch_opts_parse(&o, argc, argv, &help, &err);   // batch itself never parses options
 *   struct dp_batch_summary sum;
 *   enum dp_status st = dp_batch_run(&o, &sum, &err);   // DP_OK even if documents failed
 *   ... sum.n_failed > 0 -> exit 1 ...
 *
 * The model is loaded once per run; one ingest thread rasterises the next pages into a bounded
 * queue while the calling thread runs inference. Not reentrant per opts object. */
#ifndef DP_BATCH_H
#define DP_BATCH_H

#include "dp_status.h"
#include "dp_ingest.h"
#include "dp_manifest.h"
#include "dp_out.h"

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

enum dp_batch_cmd { DP_BATCH_CMD_EXTRACT = 0, DP_BATCH_CMD_BATCH, DP_BATCH_CMD_TABLES };

/* --constrain (docs/constrain.md): AUTO is on for kie and chart schemas, off otherwise. */
enum dp_constrain_mode { DP_CONSTRAIN_AUTO = 0, DP_CONSTRAIN_ON, DP_CONSTRAIN_OFF };

enum dp_progress_mode {
    DP_PROGRESS_AUTO = 0, /* a progress line when stderr is a TTY and not -q */
    DP_PROGRESS_OFF,
    DP_PROGRESS_TTY,      /* --progress: the line even when not a TTY */
    DP_PROGRESS_JSON,     /* --progress=json: one JSON event per line on stderr */
};

/* Where the library's user-visible text goes (library code never prints, STYLE 2.6). */
enum dp_batch_stream {
    DP_BATCH_STDOUT = 0, /* one JSON Lines record (with its newline) */
    DP_BATCH_PROGRESS,   /* progress text for stderr (may start with '\r', no newline) */
};
typedef void (*dp_batch_emit_fn)(enum dp_batch_stream s, const char *text, void *user);

/* Generation settings of a run (filled from the command line by docproc/cli). A negative
 * temperature, top_k, top_p or repetition_penalty means "the model's generation_config.json"
 * (ask); extract/batch/tables start from the DP_BATCH_DEFAULT_* document defaults instead. */
struct dp_gen_opts {
    long max_new_tokens;
    double temperature; /* 0 = greedy */
    long top_k;         /* 0 = off */
    double top_p;       /* 1 = off */
    double repetition_penalty; /* 1 = off */
    uint64_t seed;
    long threads;       /* OpenBLAS + our pool (the CLI's default: the online CPUs) */
    int weights;        /* --weights: enum vl_wformat, or -1 = as stored (bf16 for a BF16 one) */
    int vision_weights; /* --vision-weights: likewise (bf16 or q8) */
    const char *mmproj; /* --mmproj: llama.cpp's vision projector GGUF, or NULL */
};

struct dp_batch_opts {
    enum dp_batch_cmd cmd;
    const char *schema;    /* name or file (tables: "table") */
    const char *model_dir; /* --model, else $DOCPROC_MODEL */
    const char *from_raw;  /* BUNDLE_OR_DIR: re-extract without the model */
    char **inputs;         /* borrowed from argv (plus --input) */
    int n_inputs;
    const char *output;    /* directory, or BUNDLE.zip (extract); NULL: stdout only */
    unsigned formats;      /* OR of enum dp_out_format (RAW always added when writing files) */
    bool zip_per_doc;      /* batch --format ...,zip: also <stem>.zip per document */
    bool pdfa;             /* --pdfa: the searchable PDF as PDF/A-2b */
    bool force, resume, json_stdout;
    bool strict;           /* an invalid result (ex_doc_valid) fails its document */
    struct dp_csv_opts csv; /* --csv-spans, --csv-safe, --csv-bom */
    int shard_k, shard_n;  /* 1/1 = whole input */
    int jobs;
    int parallel;          /* pages in flight through the model; 0 = auto (dp_limits.h) */
    struct dp_ingest_opts ingest;
    const char *pages;         /* --pages LIST */
    const char *password_file; /* NAME=PASSWORD lines */
    struct dp_gen_opts gen;    /* --max-new-tokens ... --threads (shared with ask) */
    double doc_timeout_s, page_timeout_s; /* 0 = none */
    enum dp_constrain_mode constrain;     /* --constrain on|off */
    double review_threshold;              /* --review-threshold: confidence below -> review */
    bool keep_blank;            /* send blank pages to the model anyway */
    bool no_prefix_cache;       /* recompute the prompt prefix for every page (to measure it) */
    enum dp_progress_mode progress;
    int verbosity;              /* -q -1, default 0, -v 1, -vv 2 */
    const char *merge_out;      /* batch --merge OUT: merge manifests (inputs) and exit */
    const volatile sig_atomic_t *cancel; /* set by a signal handler; may be NULL */
    dp_batch_emit_fn emit;      /* stdout records and progress; NULL = discarded */
    void *emit_user;
};

struct dp_batch_summary {
    int n_total, n_ok, n_failed, n_reused, n_skipped_shard;
    int n_skipped;               /* files under an input directory that are not documents */
    bool tables;                 /* `tables`: the two counts below are meant */
    int n_tables, n_docs_no_table; /* tables found (stitched), documents without a table */
    int n_redone;                /* --resume: finished documents done again ... */
    int n_redo[DP_REDO_N_REASONS]; /* ... by reason (enum dp_redo) */
    int64_t pages, pages_blank, pages_truncated;
    double wall_s;
    bool input_failed; /* the fatal error was in reading the inputs (--from-raw, @LIST, merge) */
};

/* Runs the whole job. Document failures are recorded (manifest, stderr) and counted, not
 * returned; the returned error is fatal: DP_ERR_MODEL / DP_ERR_SCHEMA (load), DP_ERR_IO
 * (output not writable), DP_ERR_CANCELLED (signal), DP_ERR_USAGE. */
enum dp_status dp_batch_run(const struct dp_batch_opts *o, struct dp_batch_summary *sum,
                            struct dp_err *err);

/* ---- schema-constrained decoding (dp_constrain.c) ------------------------------------------- */
struct sc_schema;
struct ex_gram;
struct ex_cons;
struct vl_model;
struct vl_gen_params;
struct dp_constrain;
/* "on" / "off"; false for anything else. */
bool dp_constrain_parse(const char *arg, enum dp_constrain_mode *out);
/* Compiles the schema's answer contract when the mode says so (*out NULL when off). Fails
 * closed: DP_ERR_SCHEMA naming the keyword and path of a construct it cannot enforce;
 * DP_ERR_USAGE for --constrain on with a layout or table schema. */
enum dp_status dp_constrain_compile(struct ex_gram **out, const struct sc_schema *s,
                                    enum dp_constrain_mode mode, struct dp_err *err);
/* Binds gram (taken over, also on failure) to the model's vocabulary and makes the matcher.
 * DP_ERR_USAGE when max_new_tokens cannot hold the shortest valid answer. */
enum dp_status dp_constrain_new(struct dp_constrain **out, struct ex_gram *gram,
                                const struct vl_model *m, int64_t max_new_tokens,
                                struct dp_err *err);
/* Makes n matchers (one per page in flight; dp_constrain_new makes one). */
enum dp_status dp_constrain_reserve(struct dp_constrain *c, int n, struct dp_err *err);
/* Resets matcher k to a new answer and installs it as p's constrain / accept hooks. */
void dp_constrain_attach(struct dp_constrain *c, int k, struct vl_gen_params *p);
struct ex_cons *dp_constrain_cons(struct dp_constrain *c, int k); /* borrowed */
const struct ex_gram *dp_constrain_gram(const struct dp_constrain *c);
void dp_constrain_free(struct dp_constrain *c); /* NULL-safe */

/* The message shown when no model is configured (how to obtain the published checkpoint). */
const char *dp_batch_no_model_help(void);

#endif
