/* Schema-constrained decoding (docs/constrain.md): a schema's answer contract compiled into a
 * byte-level pushdown automaton, walked against the model vocabulary's token byte strings held in
 * a trie (the technique of llguidance / XGrammar), so that only tokens keeping the answer a valid
 * prefix of a schema instance are allowed, forced stretches are appended without sampling, and
 * every answer ends as a complete instance within the token budget.
 *
 *   struct ex_gram *g;  ex_gram_compile(&g, schema, &err);      // DP_ERR_SCHEMA: keyword + path
 *   struct ex_vocab *v; ex_vocab_new(&v, &src, &err);            // once per model
 *   ex_gram_bind(g, v, &err);                                    // token counts of the literals
 *   struct ex_cons *c;  ex_cons_new(&c, g, v, max_new_tokens, &err);
 *   // as libvl's constrain hook: ex_cons_before(c, logits, n, forced, cap) / ex_cons_accept(c, id)
 *   ex_cons_free(c); ex_gram_free(g); ex_vocab_free(v);
 *
 * A vocab and a bound gram are immutable and may be shared by threads; an ex_cons is one answer
 * being generated (one thread). */
#ifndef EX_CONS_H
#define EX_CONS_H

#include "dp_status.h"
#include "sc.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- vocabulary ---------------------------------------------------------------------------- */

/* Where token byte strings come from (libvl's tokenizer in docproc; a table in tests). */
struct ex_vocab_src {
    int32_t n_logits; /* length of a logits row (the model's vocab_size, >= n_tokens) */
    int32_t n_tokens; /* ids [0, n_tokens) have byte strings */
    /* Byte string of a plain token; NULL for special tokens (never produced as text). */
    const char *(*bytes)(void *user, int32_t id, size_t *len);
    void *user;
    int32_t eos_id;   /* the id that ends an answer (<|im_end|>) */
};

struct ex_vocab;
/* Builds the token trie and the per-string-state token classes. DP_ERR_FORMAT when a single-byte
 * token is missing (byte-level BPE has all 256). Caller frees with ex_vocab_free. */
enum dp_status ex_vocab_new(struct ex_vocab **out, const struct ex_vocab_src *src,
                            struct dp_err *err);
void ex_vocab_free(struct ex_vocab *v); /* NULL-safe */
/* Greedy longest-match tokenization of bytes (what forced stretches use). Writes at most cap ids;
 * returns the count needed (> cap: truncated). */
int64_t ex_vocab_tokenize(const struct ex_vocab *v, const char *s, size_t len, int32_t *out,
                          int64_t cap);
/* Bytes of a token (NULL for special ones). */
const char *ex_vocab_bytes(const struct ex_vocab *v, int32_t id, size_t *len);

/* ---- grammar -------------------------------------------------------------------------------- */

struct ex_gram;
/* Compiles the answer contract of a kie or chart schema (docs/constrain.md). Fails closed:
 * DP_ERR_SCHEMA "schema FILE: keyword 'oneOf' at /properties/x cannot be enforced by constrained
 * decoding (use --constrain off)" for every construct it cannot enforce; DP_ERR_UNSUPPORTED for
 * layout / table schemas. Caller frees with ex_gram_free. */
enum dp_status ex_gram_compile(struct ex_gram **out, const struct sc_schema *s, struct dp_err *err);
/* Computes the token counts of the grammar's literals for this vocabulary; required once before
 * ex_cons_new (binding again to another vocabulary is allowed). */
enum dp_status ex_gram_bind(struct ex_gram *g, const struct ex_vocab *v, struct dp_err *err);
void ex_gram_free(struct ex_gram *g); /* NULL-safe */
/* Tokens of the shortest valid answer, EOS included (after ex_gram_bind): a --max-new-tokens
 * below this is a usage error. */
int64_t ex_gram_min_tokens(const struct ex_gram *g);
/* Number of value slots (fields, by path) the grammar knows. */
size_t ex_gram_n_fields(const struct ex_gram *g);
/* Path of field slot i ("line_items[].amount"); borrowed. */
const char *ex_gram_field_path(const struct ex_gram *g, size_t i);

/* ---- one answer ------------------------------------------------------------------------------ */

/* One value of the answer as generated: which field, which tokens and bytes produced it. */
struct ex_cons_span {
    int32_t field;            /* slot (ex_gram_field_path) */
    int64_t tok_begin, tok_end; /* generated tokens [begin, end) that touch the value's bytes */
    size_t byte_begin, byte_end; /* the value's bytes in the answer text [begin, end) */
    bool truncated;           /* the budget forced the value (or its list) closed */
};

struct ex_cons_stats {
    int64_t n_masks;          /* mask computations (token choices left to the sampler) */
    int64_t n_forced;         /* ids appended without sampling (jump-forward and single choices) */
    int64_t n_jumps;          /* forced stretches (one prefill chunk each) */
    int64_t n_budget_cut;     /* choices where the budget removed otherwise valid tokens */
    double mask_s;            /* total CPU time of this thread in ex_cons_before */
};

struct ex_cons;
/* A matcher at the start of an answer; max_tokens is the answer's --max-new-tokens.
 * DP_ERR_USAGE when max_tokens < ex_gram_min_tokens. Caller frees with ex_cons_free. */
enum dp_status ex_cons_new(struct ex_cons **out, const struct ex_gram *g, const struct ex_vocab *v,
                           int64_t max_tokens, struct dp_err *err);
/* Back to the start of an answer (same budget). */
void ex_cons_reset(struct ex_cons *c);
void ex_cons_free(struct ex_cons *c); /* NULL-safe */
/* libvl constrain hook (vl_constrain_fn): masks logits (n) to the allowed ids or writes forced
 * ids (<= cap) and returns their count; -1 when no id is allowed (never expected: the automaton
 * is then in error and the answer must be failed, not emitted). jump false: only mask. */
int ex_cons_before(struct ex_cons *c, float *logits, int64_t n, int32_t *forced, int cap);
/* libvl accept hook: one id appended to the answer. A disallowed id puts c in error. */
void ex_cons_accept(struct ex_cons *c, int32_t id);
/* Ends the answer as soon as possible from here: the budget becomes exactly the shortest
 * completion (a repetition guard or a time limit use this instead of cutting the object); the
 * value being generated is flagged truncated. */
void ex_cons_finish(struct ex_cons *c);
/* Allowed ids in the current state into out (cap), count returned (tests, bench). */
int64_t ex_cons_allowed(struct ex_cons *c, int32_t *out, int64_t cap);
/* Disables jump-forward (each forced id then costs a model step; for the A/B in tests). */
void ex_cons_set_jump(struct ex_cons *c, bool on);
/* Keeps per-call hook CPU times (seconds) in a ring of cap entries for percentiles (bench). */
enum dp_status ex_cons_keep_times(struct ex_cons *c, int64_t cap);
const double *ex_cons_times(const struct ex_cons *c, int64_t *n);
bool ex_cons_complete(const struct ex_cons *c); /* the answer is a finished instance */
bool ex_cons_failed(const struct ex_cons *c);   /* a disallowed id was accepted */
const char *ex_cons_text(const struct ex_cons *c, size_t *len); /* answer bytes so far */
const struct ex_cons_span *ex_cons_spans(const struct ex_cons *c, size_t *n);
struct ex_cons_stats ex_cons_stats_get(const struct ex_cons *c);

/* ---- confidence (ex_conf.c) ------------------------------------------------------------------ */

#define EX_CONF_FORCED_P 0.5          /* probability a forced token counts as */
#define EX_CONF_TRUNCATED_FACTOR 0.5  /* a value the budget cut short */
/* Confidence in [0, 1] of a value produced by n tokens: exp(mean of log p), with p the model's
 * unconstrained probability of each token (raw_lp; NAN marks a forced token, counted as
 * EX_CONF_FORCED_P); masked_lp (log p within the allowed set) is not used: a constrained choice
 * can be certain within the allowed set while the model wanted something else, which is exactly
 * what should lower the confidence. Halved when truncated. */
double ex_conf_value(const float *raw_lp, const float *masked_lp, int64_t n, bool truncated);

/* A value's confidence as generated, located by its bytes in the page's raw answer. */
struct ex_value_conf {
    size_t byte_begin, byte_end;
    double conf;
    bool truncated;
};
struct ex_page;
/* Gives every leaf field of the page whose provenance span holds a value's bytes that value's
 * confidence (fields and list items, recursively). */
void ex_page_apply_conf(struct ex_page *pg, const struct ex_value_conf *v, size_t n);

struct ex_tokconf; /* ex_lines.h: per-token byte offsets and log-probs of a page's answer */
/* Confidence of the answer bytes [off, off + len): the formula of ex_conf_value over the tokens
 * whose bytes overlap them (token i spans [tc->off[i], tc->off[i + 1]), the last one up to
 * raw_len; a NAN log-prob marks a forced token). -1 when no token overlaps. */
double ex_conf_span(const struct ex_tokconf *tc, size_t raw_len, size_t off, size_t len);
/* Gives every origin cell of the page's tables whose span is known the confidence of the tokens
 * of its text (ex_conf_span; an HTML cell's own tags left out, an empty cell gets none). */
void ex_page_apply_cell_conf(struct ex_page *pg, const struct ex_tokconf *tc);

#endif
