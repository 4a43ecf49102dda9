/* Private declarations shared by the files of dpbatch (dp__ prefix). Not a public header. */
#ifndef DP_BATCH_IMPL_H
#define DP_BATCH_IMPL_H

#include "dp_batch.h"
#include "dp_manifest.h"
#include "ex.h"
#include "ex_cons.h"
#include "ex_lines.h"
#include "sc.h"

#include <stdbool.h>
#include <stdint.h>

/* One page's answer, from the model or read back from a bundle. */
struct dp_page_answer {
    int number;           /* 1-based page number */
    char *text;           /* the raw answer (owned; "" for blank pages) */
    size_t len;
    bool truncated;       /* cut by max-new-tokens, a repetition loop or a time limit */
    bool blank;           /* blank page: not sent to the model */
    bool repetition;      /* a repetition loop was detected and generation stopped */
    bool timed_out;       /* the page time limit stopped generation */
    enum ex_stop stop;    /* why generation stopped (eos, max_new_tokens, repetition, ...) */
    int64_t n_tokens;     /* tokens generated */
    bool constrained;     /* --constrain: generated under the schema's automaton */
    int64_t n_forced;     /* of n_tokens, appended without sampling (jump-forward) */
    int64_t n_jumps;      /* forced stretches (one prefill chunk each) */
    struct ex_value_conf *confs; /* (n_confs) per generated value, --constrain; owned */
    size_t n_confs;
    struct ex_geom geom;
    size_t *tok_off;      /* (n_tok) byte where each token's text starts in text; owned */
    float *tok_logprob;   /* (n_tok) its log-probability; owned; none for --from-raw */
    size_t n_tok;
};

struct dp_answers {
    struct dp_page_answer *pages; /* (n) in page order */
    int n, cap;
    int doc_pages; /* pages of the input document (for the --pages note), 0 = unknown */
};
void dp__answers_free(struct dp_answers *a);
/* Copies n bytes (NULs included: a model answer may hold byte 0) plus a terminating NUL;
 * NULL when out of memory. Not dp_strndup, which stops at the first NUL. */
char *dp__answer_dup(const char *s, size_t n);
/* Appends a page; takes ownership of text, confs and the token arrays (also on failure). */
enum dp_status dp__answers_add(struct dp_answers *a, const struct dp_page_answer *p,
                               struct dp_err *err);

/* ---- review queue (dp_review.c) -------------------------------------------------------------- */

/* Writes DIR/review.jsonl: the document's fields below o->review_threshold or failing a check,
 * and DIR/review/<field>.png, the crop of each line's box from the page decoded again from the
 * source document (lines say "crop": "review/<stem>/<field>.png", or null and "no_crop"). */
enum dp_status dp__review_write_doc(const struct dp_batch_opts *o, const struct ex_doc *doc,
                                    const char *doc_name, const char *stem, const char *dir,
                                    struct dp_err *err);
/* Rewrites OUT/review.jsonl atomically from every document's OUT/<stem>/review.jsonl and
 * rebuilds OUT/review/<stem>/ from every document's crops (staged, then swapped in). */
enum dp_status dp__review_merge(const char *out_dir, const struct dp_inputs *docs,
                                struct dp_err *err);
/* batch --merge: the same from the documents done in the merged manifest (every shard's), so
 * OUT/review.jsonl and OUT/review/ equal a single-machine run's. Nothing for other commands. */
enum dp_status dp__review_merge_manifest(const char *out_dir, const char *manifest,
                                         struct dp_err *err);

/* ---- guards (dp_guard.c) ------------------------------------------------------------------- */

/* True when an RGB8 page (h, w, 3) is blank: at most DP_BLANK_MAX_INK_FRACTION of its pixels
 * differ from the background (the median luma) by more than DP_BLANK_LUMA_DELTA. */
bool dp__page_is_blank(const uint8_t *rgb, int w, int h);
/* Repetition loop in a token sequence: the tail is one period repeated DP_REPEAT_MIN_CYCLES
 * times (period <= DP_REPEAT_MAX_PERIOD). Returns the period or 0. */
int dp__repetition_period(const int32_t *ids, int64_t n);
double dp__now(void); /* monotonic seconds */
/* The stamp's "created": now, or $SOURCE_DATE_EPOCH when set (reproducible outputs), as ISO
 * 8601 UTC ("2026-12-07T15:04:05Z"). */
#define DP_CREATED_LEN 32
void dp__created_now(char *out, size_t n);
/* Prefixes err's message with the document's path once: a message that already starts with
 * its name or path ("oyo.png: page 3 ...") gets the path instead of a second name. */
void dp__err_name_once(struct dp_err *err, const struct dp_input *d);

/* ---- passwords (dp_guard.c) ---------------------------------------------------------------- */

struct dp_pwfile {
    char **names, **passwords; /* (n) */
    int n;
};
/* Lines "NAME=PASSWORD" or "NAME<TAB>PASSWORD"; '#' comments; NAME "*" matches every input. */
enum dp_status dp__pwfile_load(struct dp_pwfile *out, const char *path, struct dp_err *err);
/* The password for a document (matched on its name, then its base name, then "*"); borrowed. */
const char *dp__pwfile_lookup(const struct dp_pwfile *pw, const char *rel);
void dp__pwfile_free(struct dp_pwfile *pw);

/* ---- progress (dp_progress.c) ---------------------------------------------------------------- */

struct dp_progress {
    enum dp_progress_mode mode; /* resolved: OFF, TTY or JSON */
    dp_batch_emit_fn emit;
    void *user;
    int docs_total, docs_done;
    int64_t pages_done;
    double t_start, t_last_draw;
    bool drawn;
};
void dp__progress_init(struct dp_progress *p, const struct dp_batch_opts *o, int docs_total);
void dp__progress_page(struct dp_progress *p, const char *doc, int page);
void dp__progress_doc(struct dp_progress *p, const struct dp_input *d);
void dp__progress_end(struct dp_progress *p);

/* ---- model inference (dp_infer.c) ------------------------------------------------------------ */

struct dp_infer;
/* Loads the model once and starts the ingest thread over docs (pending entries, in order). */
/* gram (may be NULL: unconstrained) is taken over, also on failure. */
enum dp_status dp__infer_open(struct dp_infer **out, const struct dp_batch_opts *o,
                              const struct sc_schema *schema, struct ex_gram *gram,
                              struct dp_inputs *docs,
                              const struct dp_pwfile *pw, struct dp_err *err);
/* Answers of docs->items[index] (the next pending document in order). A document failure is
 * returned as its status with err set; the pipeline continues with the next document. */
enum dp_status dp__infer_doc(struct dp_infer *inf, int index, struct dp_answers *out,
                             struct dp_progress *prog, struct dp_err *err);
/* The model's id for the stamp ("Qwen2.5-VL-3B-Instruct" or the directory name); borrowed. */
const char *dp__infer_model_id(const struct dp_infer *inf);
/* KV-cache prefix reuse statistics, for -v: tokens taken from the cache, and the measured
 * prefill seconds of pages prefilled in full vs pages that reused the prefix. */
struct dp_infer_stats {
    int64_t prefix_tokens;
    int pages_full, pages_reused;
    double prefill_full_s, prefill_reused_s;
};
void dp__infer_stats(const struct dp_infer *inf, struct dp_infer_stats *out);
void dp__infer_close(struct dp_infer *inf);

/* ---- token confidences (dp_tokconf.c) and the teacher-forcing test hook (dp_force.c) ------- */

/* Sets pa->tok_off/tok_logprob/n_tok from the generated ids (n, EOS excluded) and their
 * log-probabilities, for the answer pa->text (pa->len bytes) decoded from them; special and
 * forced tokens are left out; when the offsets do not add up to pa->len, none are set.
 * DP_ERR_NOMEM only. */
struct vl_tokenizer;
enum dp_status dp__answer_tokconf(struct dp_page_answer *pa, const struct vl_tokenizer *t,
                                  const int32_t *ids, const float *logprobs, int64_t n,
                                  struct dp_err *err);
/* The answer's token confidences as the archive writers take them (borrowed arrays). */
struct ex_tokconf dp__answer_conf(const struct dp_page_answer *pa);

/* DOCPROC_TEST_ANSWERS=DIR (docs/testing.md): *out is the forced answer of page_no at attempt
 * (1 first ask, 2 olmOCR retry) when DIR/p<page_no>-a<attempt>.txt exists, else NULL. Use
 * dp__force_constrain with it as vl_gen_params.constrain / constrain_user. */
struct dp_force;
struct vl_model;
enum dp_status dp__force_open(struct dp_force **out, const struct vl_model *m, int page_no,
                              int attempt, struct dp_err *err);
int dp__force_constrain(float *logits, int64_t n_vocab, int32_t *forced, int cap, void *user);
void dp__force_free(struct dp_force *f);

/* ---- archive outputs (dp_archive_pdf.c) and olmOCR (dp_olmocr_retry.c) ------------------- */

/* olmOCR's rotation retry (dp_olmocr_retry.c). ask answers one page image (text owned by the
 * caller, freed with dp_free). dp__olmocr_ask asks once and, when the answer's front matter says
 * rotation_correction != 0, asks exactly once more about the page turned counter-clockwise by
 * that angle (as olmOCR does), returning the second answer and the angle in *rotation. */
typedef enum dp_status (*dp_olmocr_ask_fn)(void *user, const uint8_t *rgb, int w, int h,
                                          char **text, size_t *len, struct dp_err *err);
enum dp_status dp__olmocr_ask(dp_olmocr_ask_fn ask, void *user, const uint8_t *rgb, int w, int h,
                              char **text, size_t *len, int *rotation, struct dp_err *err);
/* The angle (degrees counter-clockwise) to turn the page by and ask again after the answer
 * text of attempt (1 = first ask): the front matter's rotation_correction on the first attempt
 * when the front matter is complete; else 0 (a second answer never causes a third ask). */
int dp__olmocr_retry_angle(const char *text, size_t len, int attempt);
/* rgb (h, w, 3) turned counter-clockwise by a multiple of 90 degrees into *out (caller frees). */
enum dp_status dp__rgb_rotate(uint8_t **out, int *ow, int *oh, const uint8_t *rgb, int w, int h,
                              int degrees_ccw);
/* The searchable PDF of doc (dp_archive_pdf.c), appended to out (cap DP_PDF_MAX_BYTES). */
enum dp_status dp__archive_pdf(const struct dp_batch_opts *o, const struct ex_doc *doc,
                               struct dp_buf *out, struct dp_err *err);

/* ---- fingerprints (dp_fingerprint.c) ---------------------------------------------------------- */

/* SHA-256 over "name size sha256" lines of the checkpoint's top-level files in name order.
 * model_dir may be a GGUF file; mmproj (may be NULL) is hashed with it (--mmproj).
 * cache_path (may be NULL): per-file digests of an earlier run, reused when size and mtime
 * match; *cache_out (may be NULL) gets the JSON to store there (caller frees). */
enum dp_status dp__model_digest(char out[DP_SHA256_HEX_LEN + 1], const char *model_dir,
                                const char *mmproj, const char *cache_path, char **cache_out,
                                struct dp_err *err);
/* The model fingerprint (everything that changes the raw answers) and the output fingerprint
 * (everything that changes the files made from them) of a run. */
void dp__fingerprints(char model_fp[DP_SHA256_HEX_LEN + 1], char out_fp[DP_SHA256_HEX_LEN + 1],
                      const struct dp_batch_opts *o, const struct sc_schema *schema,
                      const char *model_digest);

/* ---- files (dp_guard.c) -------------------------------------------------------------------- */

/* rm -rf of a path we created (depth-limited; never follows symlinks). */
enum dp_status dp__rmtree(const char *path, struct dp_err *err);

#endif
