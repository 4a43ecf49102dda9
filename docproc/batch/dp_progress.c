/* Progress reporting: a one-line "\r" status on a TTY (documents, pages, pages/min, ETA) at most
 * a few times a second, or one JSON event per line (--progress=json), or nothing (-q, not a TTY).
 * Text goes through the caller's emit function (the CLI writes it to stderr).
 * Not thread-safe: called from the driver thread only. */
#include "dp_batch_impl.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define REDRAW_INTERVAL_S 0.25
#define SECONDS_PER_MINUTE 60.0

void dp__progress_init(struct dp_progress *p, const struct dp_batch_opts *o, int docs_total) {
    p->emit = o->emit;
    p->user = o->emit_user;
    p->mode = o->progress;
    if (p->mode == DP_PROGRESS_AUTO)
        p->mode = o->verbosity >= 0 && isatty(STDERR_FILENO) ? DP_PROGRESS_TTY : DP_PROGRESS_OFF;
    if (!p->emit)
        p->mode = DP_PROGRESS_OFF;
    p->docs_total = docs_total;
    p->docs_done = 0;
    p->pages_done = 0;
    p->t_start = dp__now();
    p->t_last_draw = 0;
    p->drawn = false;
}

static void draw(struct dp_progress *p, bool force) {
    double now = dp__now();
    if (!force && now - p->t_last_draw < REDRAW_INTERVAL_S)
        return;
    p->t_last_draw = now;
    double el = now - p->t_start;
    double ppm = el > 0 ? (double)p->pages_done * SECONDS_PER_MINUTE / el : 0;
    double eta = p->docs_done > 0 ? el * (p->docs_total - p->docs_done) / p->docs_done : -1;
    char line[256];
    if (eta >= 0)
        snprintf(line, sizeof line, "\r%d/%d documents, %lld pages, %.1f pages/min, ETA %.0fs   ",
                 p->docs_done, p->docs_total, (long long)p->pages_done, ppm, eta);
    else
        snprintf(line, sizeof line, "\r%d/%d documents, %lld pages, %.1f pages/min   ",
                 p->docs_done, p->docs_total, (long long)p->pages_done, ppm);
    p->emit(DP_BATCH_PROGRESS, line, p->user);
    p->drawn = true;
}

static void event(struct dp_progress *p, json_t *ev) {
    if (!ev)
        return;
    json_object_set_new(ev, "elapsed_s", json_real(dp__now() - p->t_start));
    json_object_set_new(ev, "docs_done", json_integer(p->docs_done));
    json_object_set_new(ev, "docs_total", json_integer(p->docs_total));
    json_object_set_new(ev, "pages_done", json_integer(p->pages_done));
    char *s = json_dumps(ev, JSON_COMPACT);
    if (s) {
        p->emit(DP_BATCH_PROGRESS, s, p->user);
        p->emit(DP_BATCH_PROGRESS, "\n", p->user);
    }
    free(s); /* jansson's allocator */
    json_decref(ev);
}

void dp__progress_page(struct dp_progress *p, const char *doc, int page) {
    p->pages_done++;
    if (p->mode == DP_PROGRESS_TTY)
        draw(p, false);
    else if (p->mode == DP_PROGRESS_JSON)
        event(p, json_pack("{sssssi}", "event", "page", "document", doc, "page", page));
}

void dp__progress_doc(struct dp_progress *p, const struct dp_input *d) {
    p->docs_done++;
    if (p->mode == DP_PROGRESS_TTY) {
        draw(p, false);
    } else if (p->mode == DP_PROGRESS_JSON) {
        json_t *ev = json_pack("{sssssssi}", "event", "document", "document", d->rel, "status",
                               dp_input_state_str(d->state), "pages", d->pages);
        if (ev && d->state == DP_INPUT_FAILED)
            json_object_set_new(ev, "error", json_string(d->error ? d->error : ""));
        if (ev && d->state == DP_INPUT_REUSED)
            json_object_set_new(ev, "reused", json_true());
        event(p, ev);
    }
}

void dp__progress_end(struct dp_progress *p) {
    if (p->mode == DP_PROGRESS_TTY) {
        draw(p, true);
        p->emit(DP_BATCH_PROGRESS, "\n", p->user);
    } else if (p->mode == DP_PROGRESS_JSON) {
        event(p, json_pack("{ss}", "event", "done"));
    }
}
