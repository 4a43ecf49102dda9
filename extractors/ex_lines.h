/* The lines model of a page: regions (blocks) -> text lines -> words, every box in page pixels,
 * in the answer's reading order. What the archive writers (ALTO, hOCR, PAGE XML, searchable PDF,
 * Markdown, text) are built from.
 *
 *   struct ex_lines *L = NULL;
 *   if (ex_lines_build(&L, page, NULL, &err) == DP_OK) {       // NULL: no token probabilities
 *       for (size_t r = 0; r < L->n_regions; r++)
 *           for (size_t l = 0; l < L->regions[r].n_lines; l++) ... L->regions[r].lines[l].words ...
 *       ex_lines_free(L);
 *   }
 *
 * Sources: an `ocr` (text spotting) answer gives one line per element with the model's box; a
 * `layout` (QwenVL HTML) or `olmocr` answer gives blocks; a block's text is spread over as many
 * lines as its box's shape suggests (estimated line boxes). Word boxes are always estimated: the
 * line box split in proportion to the characters (see docs/archive.md). Content without a box is
 * kept (has_box false) for Markdown/text but left out of positioned formats.
 * Objects are owned by the ex_lines; no global state. */
#ifndef EX_LINES_H
#define EX_LINES_H

#include "ex.h"

/* Per-token log-probabilities of an answer, where the model ran: token i starts at byte off[i]
 * of the page's raw answer and had log-probability logprob[i]. */
struct ex_tokconf {
    const size_t *off;     /* (n) ascending */
    const float *logprob;  /* (n) */
    size_t n;
};

struct ex_word {
    char *text;       /* no whitespace inside */
    struct ex_box box; /* page pixels; always estimated from the line box */
    double conf;      /* [0, 1], or -1 when unknown */
};

struct ex_line {
    char *text;            /* the line's text (words joined by one space; CJK kept as written) */
    bool has_box;
    bool box_estimated;    /* split from a block box rather than given by the model */
    struct ex_box box;     /* page pixels */
    double conf;           /* [0, 1] geometric mean of the line's token probabilities, or -1 */
    struct ex_word *words; /* (n_words) >= 1 */
    size_t n_words;
};

struct ex_region {
    enum ex_block_kind kind;
    int level;              /* heading level, else 0 */
    int table;              /* index into the page's tables for EX_BLOCK_TABLE, else -1 */
    bool has_box;
    struct ex_box box;      /* page pixels */
    struct ex_line *lines;  /* (n_lines) */
    size_t n_lines;
};

struct ex_lines {
    int page;               /* 1-based */
    int width, height;      /* page size in pixels (geometry, else the boxes' extent) */
    struct ex_region *regions; /* (n_regions) reading order */
    size_t n_regions;
    size_t n_boxed_lines;   /* lines with a box (0: nothing to position on the page) */
};

/* Builds the lines model of a parsed page. tc may be NULL (then every conf is -1).
 * DP_ERR_NOMEM only. Caller frees with ex_lines_free. */
enum dp_status ex_lines_build(struct ex_lines **out, const struct ex_page *page,
                              const struct ex_tokconf *tc, struct dp_err *err);
void ex_lines_free(struct ex_lines *l);

/* Number of lines the text of a block box should be spread over: the n for which n lines of
 * height h/n hold the text at an average glyph width of EX_LINES_GLYPH_ASPECT x the line height
 * (at least 1, at most the character count). Public for tests. */
int ex_lines_estimate_count(double box_w, double box_h, size_t n_chars);

/* Glyph width / line height assumed when spreading text over a box (Latin average). */
#define EX_LINES_GLYPH_ASPECT 0.5

#endif
