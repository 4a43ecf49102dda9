/* Private declarations of the constrained-decoding files (ex_cons*.c). Not a public header. */
#ifndef EX_CONS_IMPL_H
#define EX_CONS_IMPL_H

#include "ex_cons.h"

#include <stdbool.h>
#include <stdint.h>

/* ---- limits (named; docs/constrain.md) ------------------------------------------------------- */
#define EX_CONS_MAX_FRAMES      48   /* parser stack (nesting 8 levels needs about 26) */
#define EX_CONS_MAX_INT_DIGITS  15   /* digits before the point: exact in a double */
#define EX_CONS_MAX_FRAC_DIGITS 15
#define EX_CONS_MAX_BOX_DIGITS  5    /* bbox_2d coordinates: non-negative integers */
#define EX_CONS_MAX_FORCED_BYTES 512 /* one forced stretch */
#define EX_RE_MAX_POS           63   /* regex positions (bit 63 of a set is "at start") */
#define EX_RE_MAX_LEN           512  /* bytes of one pattern */

/* ---- string lexer (JSON string interior, UTF-8 checked, no \u escapes) ------------------------ */
enum ex_str_sub {
    EX_STR_NORMAL = 0, EX_STR_ESC, EX_STR_C1, EX_STR_C2, EX_STR_C3,
    EX_STR_E0, EX_STR_ED, EX_STR_F0, EX_STR_F4, EX_STR_NSUB,
};
#define EX_STR_CLOSE 0xFE /* the closing quote */
#define EX_STR_DEAD  0xFF
/* Next substate for byte b, EX_STR_CLOSE or EX_STR_DEAD. */
uint8_t ex__str_step(uint8_t q, uint8_t b);
/* Tokens needed to finish a string from substate q (pending bytes + the quote). */
int ex__str_rest(uint8_t q);
/* The byte that advances q on its shortest way out (the completion). */
uint8_t ex__str_fill(uint8_t q);

/* ---- regex (Glushkov position automaton over ASCII) ------------------------------------------ */
struct ex_re {
    uint64_t first, last;          /* positions */
    bool nullable;
    uint64_t follow[EX_RE_MAX_POS];
    uint64_t match[128];           /* positions whose class holds byte b */
    int dist[EX_RE_MAX_POS + 1];   /* fewest bytes to an accepting set; [EX_RE_MAX_POS]: start */
    int n_pos;
};
#define EX_RE_START (1ULL << EX_RE_MAX_POS)
/* Compiles a JSON Schema pattern. DP_ERR_UNSUPPORTED with the feature in *what. */
enum dp_status ex__re_compile(struct ex_re *re, const char *pattern, const char **what);
uint64_t ex__re_step(const struct ex_re *re, uint64_t set, uint8_t b);
bool ex__re_accepts(const struct ex_re *re, uint64_t set);
int ex__re_dist(const struct ex_re *re, uint64_t set);

/* ---- grammar nodes --------------------------------------------------------------------------- */
enum ex_gk {
    EX_GK_LIT = 0, /* bytes[a, a+n) */
    EX_GK_SEQ,     /* kids[a, a+n) in order */
    EX_GK_NULL,    /* "null" or kid a */
    EX_GK_ENUM,    /* one of the literals of enum trie root a */
    EX_GK_STRING,  /* a JSON string */
    EX_GK_PATTERN, /* a JSON string whose content matches regex a */
    EX_GK_NUMBER,  /* flags: EX_NUM_* */
    EX_GK_REP,     /* open, kid a separated by ", ", close; possibly empty */
};
#define EX_NUM_SIGNED 1u
#define EX_NUM_FRAC   2u

struct ex_gnode {
    uint8_t kind;
    uint8_t flags;
    uint8_t open, close;  /* REP */
    uint8_t max_int;      /* NUMBER: most integer digits */
    int32_t a, n;
    int32_t field;        /* value slot this node produces, or -1 */
    int32_t min_tok;      /* tokens of its shortest rendering, piece by piece (after bind) */
    uint64_t first[4];    /* bytes that can start it */
};

struct ex_enode {         /* enum literal trie */
    int32_t first_kid, next_sib;
    uint8_t byte;
    bool term;
    int32_t rest_tok;     /* tokens of the shortest remaining literal (after bind) */
    int32_t rest_len;
    int32_t rest_off;     /* its bytes in gram->bytes */
};

struct ex_gram {
    char *path;                    /* schema file, for messages */
    struct ex_gnode *nodes;        /* (n_nodes) */
    int32_t n_nodes, cap_nodes;
    int32_t *kids;                 /* SEQ children */
    int32_t n_kids, cap_kids;
    char *bytes;                   /* literals */
    int32_t n_bytes, cap_bytes;
    int32_t *lit_tok;              /* (n_bytes) tokens to finish the literal from this byte */
    int32_t *seq_rest;             /* (n_kids) sum of min_tok of kids[i..] of its SEQ */
    struct ex_enode *enodes;
    int32_t n_enodes, cap_enodes;
    struct ex_re *res;             /* patterns */
    int32_t n_res, cap_res;
    char **fields;                 /* (n_fields) slot paths */
    int32_t n_fields, cap_fields;
    int32_t root, null_lit;
    int32_t max_depth;
    const struct ex_vocab *bound;
};

/* ---- vocabulary ------------------------------------------------------------------------------ */
struct ex_tnode {
    int32_t first;    /* first child (children are contiguous, sorted by byte) */
    int32_t tok;      /* token ending here, -1 */
    uint16_t n_kids;
    uint8_t byte;
};

struct ex_vocab {
    int32_t n_logits, n_tokens, eos_id;
    uint32_t *off;    /* (n_tokens + 1) into bytes; special tokens are empty */
    uint8_t *bytes;
    struct ex_tnode *trie;
    int32_t n_trie;
    int32_t max_len;
    /* per string substate q: end substate of each id, EX_STR_CLOSE or EX_STR_DEAD (n_logits) */
    uint8_t *str_end[EX_STR_NSUB];
    int32_t *exit_ids[EX_STR_NSUB]; /* ids whose closing quote ends the string, sorted by the */
    uint8_t *exit_at[EX_STR_NSUB];  /* bytes after it; the quote is at byte exit_at - 1 */
    int32_t n_exit[EX_STR_NSUB];
    int32_t *grp[EX_STR_NSUB];      /* (n_grp + 1) starts of runs of exit ids with one suffix */
    int32_t n_grp[EX_STR_NSUB];
    float *stay_add[EX_STR_NSUB];   /* (n_logits) 0 for ids that stay in the string, -inf else */
    int64_t n_stay[EX_STR_NSUB];
};

#endif
