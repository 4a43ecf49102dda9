/* Module-private declarations of libsc (sc__*), shared by sc_load.c and sc_prompt.c. Never
 * included by a public header or by code outside schemas/ (tests may). */
#ifndef SC_IMPL_H
#define SC_IMPL_H

#include "sc.h"

/* Builds s->prompt from the schema (sc_prompt.c); x_prompt is the schema's own "x-prompt" text
 * or NULL. */
enum dp_status sc__prompt_build(struct sc_schema *s, const char *x_prompt, struct dp_err *err);

#endif
