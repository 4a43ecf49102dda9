/* `docproc ask` with several prompts (--prompt repeated, --prompts FILE) about the same inputs:
 * each its own chat prompt, all as sequences of one inference state (--parallel in flight), every
 * answer printed in prompt order as one JSON Lines record; with --schema/--constrain one matcher
 * per prompt in flight. SIGINT (dp__ask_interrupted) stops between steps (exit 5). */
#include "cmd_ask_impl.h"
#include "dp_fs.h"
#include "ex_cons.h"
#include "vl_tools.h"

#include <jansson.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --prompts FILE: one prompt per line, empty lines skipped; the lines point into *buf. */
enum dp_status dp__ask_read_prompts(struct dp_ask_opts *o, char **buf, struct dp_err *err) {
    size_t len = 0;
    enum dp_status st = dp_file_read(o->prompts_file, DP_MAX_TEXT_BYTES, buf, &len, err);
    if (st != DP_OK)
        return st;
    for (char *line = *buf, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        size_t n = strlen(line);
        if (n && line[n - 1] == '\r')
            line[--n] = 0;
        if (!n)
            continue;
        if (o->n_prompts == DP_ASK_MAX_PROMPTS)
            return dp_err_set(err, DP_ERR_LIMIT, "%s: more than %d prompts", o->prompts_file,
                              DP_ASK_MAX_PROMPTS);
        o->prompts[o->n_prompts++] = line;
    }
    if (!o->n_prompts)
        return dp_err_set(err, DP_ERR_FORMAT, "%s: no prompt in the file", o->prompts_file);
    o->prompt = o->prompts[0];
    return DP_OK;
}

/* One answer as a JSON Lines record: {"prompt", "answer", "tokens", "stop"[, "decoding"]
 * [, "error"][, "ids"]}; error (may be NULL) makes stop "error". decoding: with --schema. */
static enum dp_status print_answer(const char *prompt, const struct vl_result *res,
                                   const char *error, const struct dp_ask_run *r,
                                   bool with_ids, struct dp_err *err) {
    const struct vl_tokenizer *tok = vl_model_tokenizer(r->m);
    static const char *const stops[] = {"eos", "max_new_tokens", "context", "callback"};
    int64_t keep = res->n - (res->stop == VL_STOP_EOS && res->n > 0);
    char *text = NULL;
    size_t len = 0;
    struct vl_error de = {0};
    if (vl_tokenizer_decode(tok, res->ids, (size_t)keep, true, &text, &len, &de) != VL_OK)
        return dp__ask_from_vl(err, &de, "decode");
    json_t *ans = json_stringn(text, len); /* decoded with U+FFFD for broken UTF-8 */
    if (!ans) {
        free(text);
        return dp_err_set(err, DP_ERR_INTERNAL, "answer is not UTF-8");
    }
    json_t *j = json_object();
    json_object_set_new(j, "prompt", json_string(prompt));
    json_object_set_new(j, "answer", ans);
    json_object_set_new(j, "tokens", json_integer(res->n));
    json_object_set_new(j, "stop", json_string(error ? "error" : stops[res->stop]));
    if (r->schema) {
        json_t *d = json_object();
        json_object_set_new(d, "constrained", json_boolean(r->cons != NULL));
        json_object_set_new(d, "forced_ids", json_integer(res->n_forced));
        json_object_set_new(d, "jumps", json_integer(res->n_forced_chunks));
        json_object_set_new(j, "decoding", d);
    }
    if (error)
        json_object_set_new(j, "error", json_string(error));
    if (with_ids) {
        json_t *ids = json_array();
        for (int64_t i = 0; i < res->n; i++)
            json_array_append_new(ids, json_integer(res->ids[i]));
        json_object_set_new(j, "ids", ids);
    }
    free(text); /* libvl's allocator */
    int rc = json_dumpf(j, stdout, JSON_COMPACT);
    json_decref(j);
    if (rc != 0 || fputc('\n', stdout) == EOF)
        return dp_err_set(err, DP_ERR_IO, "stdout: write failed");
    return DP_OK;
}

/* Every prompt as a sequence of one state (r->st has max_seqs slots); answers printed in prompt
 * order as they become printable. A prompt's failure is its record's "error"; the first is
 * returned. */
static enum dp_status ask_many(struct dp_ask_run *r, const struct dp_ask_opts *o,
                               const struct vl_gen_params *p, int32_t **ids, const int64_t *n_ids,
                               struct dp_err *err) {
    const int slots = vl_state_params_get(r->st)->max_seqs;
    int seq_of[DP_ASK_MAX_PROMPTS], next = 0, printed = 0;
    bool done[DP_ASK_MAX_PROMPTS] = {false};
    int cons_of[DP_ASK_MAX_PROMPTS];          /* --constrain: the prompt's matcher */
    bool cons_busy[DP_BATCH_MAX_PARALLEL] = {false};
    enum dp_status first = DP_OK;
    struct vl_error verr = {0};
    for (int i = 0; i < o->n_prompts; i++)
        seq_of[i] = -1;
    while (printed < o->n_prompts) {
        /* a slot is held from the add until the answer is printed (in prompt order) */
        while (next < o->n_prompts && next - printed < slots) {
            struct vl_request rq = {ids[next], n_ids[next], r->vis, r->n_vis};
            struct vl_gen_params q = *p;
            cons_of[next] = -1;
            if (r->cons) { /* a free matcher: at most `slots` prompts hold one */
                int k = 0;
                while (cons_busy[k])
                    k++;
                DP_ASSERT(k < slots);
                dp_constrain_attach(r->cons, k, &q);
                cons_busy[k] = true;
                cons_of[next] = k;
            }
            if (vl_seq_add(r->st, &seq_of[next], &rq, &q, &verr) != VL_OK)
                return dp__ask_from_vl(err, &verr, "generate");
            next++;
        }
        if (vl_state_busy(r->st) > 0 && vl_step(r->st, &verr) != VL_OK)
            return dp__ask_from_vl(err, &verr, "generate");
        for (int i = printed; i < next; i++)
            done[i] = done[i] || vl_seq_done(r->st, seq_of[i], NULL, NULL, NULL);
        while (printed < next && done[printed]) {
            struct vl_result res;
            enum vl_status vs = VL_OK;
            struct vl_error se = {0};
            (void)vl_seq_done(r->st, seq_of[printed], &res, &vs, &se);
            int k = cons_of[printed];
            bool lost = k >= 0 && dp__ask_cons_lost(dp_constrain_cons(r->cons, k), &res, vs);
            const char *error = lost ? DP_ASK_LOST_MSG : vs != VL_OK ? se.msg : NULL;
            enum dp_status st = print_answer(o->prompts[printed], &res, error, r, o->print_ids,
                                             err);
            if (st != DP_OK)
                return st;
            if (lost && first == DP_OK)
                first = dp_err_set(err, DP_ERR_INTERNAL, "%s: %s", o->prompts[printed],
                                   DP_ASK_LOST_MSG);
            else if (vs != VL_OK && first == DP_OK)
                first = dp__ask_from_vl(err, &se, o->prompts[printed]);
            if (k >= 0)
                cons_busy[k] = false;
            if (o->verbose)
                dp__ask_print_timings(&res);
            vl_seq_release(r->st, seq_of[printed]);
            printed++;
        }
        if (dp__ask_interrupted)
            return dp_err_set(err, DP_ERR_CANCELLED, "interrupted");
    }
    fflush(stdout);
    return first;
}

/* Several prompts about the same inputs: each its chat prompt, all in one state. */
enum dp_status dp__ask_several(struct dp_ask_run *r, const struct dp_ask_opts *o,
                               struct dp_err *err) {
    int32_t *ids[DP_ASK_MAX_PROMPTS] = {NULL};
    int64_t n_ids[DP_ASK_MAX_PROMPTS], longest = 0;
    struct vl_error verr = {0};
    struct vl_model_summary sum;
    vl_model_summary(r->m, &sum);
    enum dp_status st = DP_OK;
    for (int i = 0; i < o->n_prompts && st == DP_OK; i++) {
        size_t n = 0;
        if (vl_chat_build(r->m, o->system, o->prompts[i], r->vis, r->n_vis, &ids[i], &n, &verr) !=
            VL_OK)
            st = dp__ask_from_vl(err, &verr, "prompt");
        n_ids[i] = (int64_t)n;
        longest = n_ids[i] > longest ? n_ids[i] : longest;
    }
    if (st == DP_OK && longest >= sum.max_positions)
        st = dp_err_set(err, DP_ERR_LIMIT, "a prompt has %lld tokens, the model's context is %lld",
                        (long long)longest, (long long)sum.max_positions);
    struct vl_state_params sp = vl_state_default_params();
    sp.n_threads = (int)o->gen.threads;
    sp.n_ctx = longest + o->gen.max_new_tokens < sum.max_positions
                   ? longest + o->gen.max_new_tokens
                   : sum.max_positions;
    sp.max_seqs = o->parallel > 0 ? o->parallel
                  : o->n_prompts < DP_BATCH_AUTO_PARALLEL ? o->n_prompts
                                                          : DP_BATCH_AUTO_PARALLEL;
    sp.max_vision_patches = 1;
    for (int i = 0; i < r->n_vis; i++)
        if (r->vis[i].n_patches > sp.max_vision_patches)
            sp.max_vision_patches = r->vis[i].n_patches;
    if (st == DP_OK && vl_state_new(&r->st, r->m, &sp, &verr) != VL_OK)
        st = dp__ask_from_vl(err, &verr, "inference state");
    if (st == DP_OK && r->cons) /* one matcher per prompt in flight */
        st = dp_constrain_reserve(r->cons, sp.max_seqs, err);
    if (st == DP_OK) {
        struct vl_gen_params p = dp__ask_gen_params(o, r->m);
        struct sigaction sa, old_sa;
        memset(&sa, 0, sizeof sa);
        sigemptyset(&sa.sa_mask);
        sa.sa_handler = dp__ask_on_sigint;
        sigaction(SIGINT, &sa, &old_sa);
        st = ask_many(r, o, &p, ids, n_ids, err);
        sigaction(SIGINT, &old_sa, NULL);
    }
    for (int i = 0; i < o->n_prompts; i++)
        free(ids[i]); /* libvl's allocator */
    return st;
}
