/* olmOCR-2 answers (docs/models.md, docs/archive.md): a YAML front matter block
 *
 *   ---
 *   primary_language: en
 *   is_rotation_valid: True
 *   rotation_correction: 0
 *   is_table: False
 *   is_diagram: False
 *   ---
 *   # Markdown body with <table> HTML tables and LaTeX
 *
 * parsed as olmOCR's FrontMatterParser does (front matter = text between the opening "---\n"
 * and the next "\n---"; the body = the rest, stripped), tolerantly: a front matter that is not
 * closed, has missing, unknown or ill-typed keys becomes warnings, never a failure.
 *
 *   struct ex_olmocr_fm fm;
 *   ex_olmocr_front_matter(raw, raw_len, &fm);
 *   if (fm.valid && fm.rotation_correction != 0) ... render rotated and ask again once ...
 *
 * Pure functions, thread-safe. */
#ifndef EX_OLMOCR_H
#define EX_OLMOCR_H

#include <stdbool.h>
#include <stddef.h>

/* olmOCR's v4 page prompt, byte for byte (build_no_anchoring_v4_yaml_prompt in
 * olmocr/prompts/prompts.py of github.com/allenai/olmocr, read at commit f7cfe4c2, 2026-03-25).
 * schemas/olmocr.json holds the same text as its x-prompt; a test compares them. */
#define EX_OLMOCR_PROMPT                                                                            \
    "Attached is one page of a document that you must process. Just return the plain text "        \
    "representation of this document as if you were reading it naturally. Convert equations to "  \
    "LateX and tables to HTML.\nIf there are any figures or charts, label them with the following " \
    "markdown syntax ![Alt text describing the contents of the figure]"                            \
    "(page_startx_starty_width_height.png)\nReturn your output as markdown, with a front matter "  \
    "section on top specifying values for the primary_language, is_rotation_valid, "               \
    "rotation_correction, is_table, and is_diagram parameters."

/* olmOCR renders each page with its longest side this many pixels (pipeline.py
 * --target_longest_image_dim default 1288, same commit). */
#define EX_OLMOCR_LONGEST_SIDE 1288

/* What the front matter said. */
struct ex_olmocr_fm {
    bool found;          /* the answer starts with a front matter block (closed or not) */
    bool closed;         /* its closing "---" line is present */
    bool valid;          /* closed, all five keys present and well typed (olmOCR would accept) */
    char primary_language[16]; /* "" for null / absent */
    bool is_rotation_valid;
    int rotation_correction; /* 0, 90, 180 or 270 (0 when absent or invalid) */
    bool is_table, is_diagram;
    size_t fm_off, fm_len;     /* the YAML lines (between the delimiters) */
    size_t body_off, body_len; /* the Markdown body, stripped */
};

/* Reads the front matter of raw[0, len). Returns fm->found. */
bool ex_olmocr_front_matter(const char *raw, size_t len, struct ex_olmocr_fm *fm);

#endif
