/* Private to `docproc ask` (never included outside its three files): the options, the run's
 * resources, and the helpers the files share. cmd_ask.c: options, help, the command's flow, one
 * streamed answer; cmd_ask_input.c: images, videos, the --raw prompt; cmd_ask_many.c: several
 * prompts in one inference state. */
#ifndef DP_CMD_ASK_IMPL_H
#define DP_CMD_ASK_IMPL_H

#include "dp_batch.h"
#include "dp_ingest.h"
#include "dp_limits.h"
#include "dp_status.h"
#include "sc.h"
#include "vl.h"

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

struct dp_ask_opts {
    const char *model_dir;
    const char *images[DP_ASK_MAX_INPUTS];
    int n_images;
    const char *videos[DP_ASK_MAX_INPUTS];
    int n_videos;
    double fps;
    const char *prompt, *raw, *system;
    const char *prompts[DP_ASK_MAX_PROMPTS]; /* every --prompt, in order (prompt: the first) */
    int n_prompts;
    const char *prompts_file;  /* --prompts FILE: one prompt per line */
    int parallel;              /* prompts in flight [min(prompts, DP_BATCH_AUTO_PARALLEL)] */
    struct dp_ingest_opts ing; /* pixel budget: DP_DEFAULT_MAX_PIXELS unless given */
    struct dp_gen_opts gen;    /* negative sampling values: the model's generation_config.json */
    bool ignore_eos, print_ids, verbose, system_given;
    const char *dump_dir;
    const char *schema;                  /* --schema NAME|FILE */
    enum dp_constrain_mode constrain;    /* --constrain on|off [on for kie and chart schemas] */
    bool constrain_given;
};

struct dp_ask_run {
    struct vl_model *m;
    struct vl_vision_input vis[2 * DP_ASK_MAX_INPUTS];
    int n_vis;
    int32_t *ids0, *ids;
    int64_t n_ids0, n_ids;
    struct vl_state *st;
    struct vl_dump *dump;
    char *sbuf;
    char *prompts_buf; /* --prompts FILE's text (the prompts point into it) */
    struct sc_schema *schema;  /* --schema */
    struct dp_constrain *cons; /* --constrain: one matcher per prompt in flight, else NULL */
};

/* The answer of a constrained prompt the automaton did not accept (never expected). */
#define DP_ASK_LOST_MSG                                                                            \
    "constrained decoding lost the schema (internal error; the answer is not used)"

/* Set by SIGINT while generating (dp__ask_on_sigint); generation stops at the next token. */
extern volatile sig_atomic_t dp__ask_interrupted;
void dp__ask_on_sigint(int sig);

/* cmd_ask.c */
/* "<what>: <libvl's message>" with the status of the one libvl mapping (dp_vl.h). */
enum dp_status dp__ask_from_vl(struct dp_err *err, const struct vl_error *verr,
                               const char *what);
/* The model's generation_config.json overlaid with every sampling option given; stops on SIGINT. */
struct vl_gen_params dp__ask_gen_params(const struct dp_ask_opts *o,
                                        const struct vl_model *m);
/* A constrained answer the automaton did not accept (never expected: an internal error; the
 * answer is not used). */
struct ex_cons;
bool dp__ask_cons_lost(const struct ex_cons *c, const struct vl_result *res,
                       enum vl_status vs);
/* --verbose: the timings and token counts of one answer, to stderr. */
void dp__ask_print_timings(const struct vl_result *r);

/* cmd_ask_input.c */
/* Decodes and preprocesses every --image and --video into r->vis under the checkpoint's
 * processor settings and the pixel budget (DP_ERR_USAGE for a budget that cannot be honoured). */
enum dp_status dp__ask_prepare_inputs(struct dp_ask_run *r, const struct dp_ask_opts *o,
                                      struct dp_err *err);
/* text (--raw) to token ids; *out from dp_malloc. */
enum dp_status dp__ask_tokenize(int32_t **out, int64_t *n_out, const struct vl_tokenizer *tok,
                                const char *text, struct dp_err *err);

/* cmd_ask_many.c */
/* --prompts FILE: one prompt per line, empty lines skipped; the lines point into *buf. */
enum dp_status dp__ask_read_prompts(struct dp_ask_opts *o, char **buf, struct dp_err *err);
/* Several prompts about the same inputs: each its chat prompt, all in one state; one JSON Lines
 * record per prompt, in prompt order. */
enum dp_status dp__ask_several(struct dp_ask_run *r, const struct dp_ask_opts *o,
                               struct dp_err *err);

#endif
