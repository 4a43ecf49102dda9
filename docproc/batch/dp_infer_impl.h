/* Private to the batch's model inference (dp_infer.c: open, prompt, close; dp_infer_ingest.c:
 * the ingest thread and the page queue; dp_infer_pages.c: pages in flight). Threads: the ingest
 * thread touches only ingest objects and the queue (under mu); everything else belongs to the
 * calling (inference) thread. */
#ifndef DP_INFER_IMPL_H
#define DP_INFER_IMPL_H

#include "dp_batch_impl.h"
#include "dp_limits.h"
#include "dp_vl.h"
#include "vl_tools.h"

#include <pthread.h>

#define PATH_BYTES 4096

struct prompt {
    int32_t *prefix; /* (n_prefix) system, user turn, instruction, <|vision_start|> */
    size_t n_prefix;
    int32_t *suffix; /* (n_suffix) <|vision_end|><|im_end|>\n<|im_start|>assistant\n */
    size_t n_suffix;
    int32_t pad_id;  /* <|image_pad|> */
};

/* One queue item: a page ready for the model, or the end (or failure) of a document. */
struct item {
    int doc;                     /* index in docs */
    bool end;                    /* last item of the document */
    enum dp_status status;       /* document-level failure (end items only) */
    char msg[DP_ERR_MSG_MAX];
    int doc_pages;               /* the document's page count (end items only; 0 = not opened) */
    int page_no;
    bool blank;
    struct vl_vision_input vin;  /* owned; empty for blank pages */
    uint8_t *rgb;                /* (rgb_h, rgb_w, 3) the page as preprocessed, owned; kept only
                                  * for the olmocr schema (its rotation retry), else NULL */
    int rgb_w, rgb_h;
    struct ex_geom geom;
    double t_rasterize;
};

/* Per-page generation guards (the vl_gen_params callbacks' user data). */
struct gen_ctx {
    struct dp_infer *inf;
    struct ex_cons *cons; /* the page's matcher (--constrain), else NULL */
    int doc;
    int32_t *ids; /* (cap) generated so far */
    int64_t n, cap;
    bool repetition, page_timeout, doc_timeout;
    double t_page0, t_doc0;
};

/* One page in flight: its queue item (owns the vision input), prompt and sequence. */
struct job {
    bool active;
    int seq;          /* vl_state slot */
    struct item it;
    int32_t *prompt;  /* (n_prompt) kept until the sequence ends */
    struct gen_ctx g;
    int attempt;      /* 1; 2 for olmOCR's rotation retry of the page */
    struct dp_force *force; /* DOCPROC_TEST_ANSWERS: the forced answer, else NULL (owned) */
};

/* A document whose pages are in flight or answered: answers in completion order. */
struct doc_acc {
    int doc;
    bool end_seen;    /* the producer's end item arrived: no more pages */
    int doc_pages;    /* the document's page count, from the end item */
    int in_flight;
    enum dp_status st;
    char msg[DP_ERR_MSG_MAX];
    double t_doc0;
    struct dp_answers ans;
};

struct dp_infer {
    const struct dp_batch_opts *o;
    const struct sc_schema *schema;
    struct dp_inputs *docs;
    const struct dp_pwfile *pw;
    struct vl_model *model;
    struct vl_state *state;
    struct vl_image_params ip;
    struct dp_ingest_opts io; /* the run's ingest options with the model's grid factor */
    struct dp_page_sel sel;
    char model_id[PATH_BYTES];
    struct prompt prompt;
    /* the queue: ring of DP_BATCH_QUEUE_PAGES items */
    pthread_mutex_t mu;
    pthread_cond_t not_empty, not_full;
    struct item ring[DP_BATCH_QUEUE_PAGES];
    int head, count;
    bool stop;      /* consumer asks the producer to finish */
    int skip_doc;   /* producer: abandon this document (timed out / failed) */
    pthread_t thread;
    bool thread_started;
    struct dp_infer_stats stats;
    /* pages in flight (one per vl_state sequence slot) and documents with pages in flight or
     * answered ahead of their turn */
    int parallel;
    struct job *jobs;  /* (parallel) */
    struct doc_acc *accs; /* (n_accs) */
    int n_accs, cap_accs;
    struct dp_constrain *cons; /* --constrain: the matcher, NULL when off (one page at a time) */
};


/* dp_infer.c: "<what>: <libvl's message>" through the one libvl mapping (dp_vl.h); fallback
 * names what failed for the codes without a docproc twin. */
enum dp_status dp__infer_from_vl(const struct vl_error *ve, enum dp_status fallback,
                                 struct dp_err *err, const char *what);

/* dp_infer_ingest.c: the ingest thread (arg: the struct dp_infer); and the consumer's end of the
 * queue: the next item into *out, waiting for one when wait; false when none (or stopped). */
void *dp__infer_ingest_main(void *arg);
/* Frees what a queue item owns (vision input, kept pixels). */
void dp__infer_item_free(struct item *it);
bool dp__infer_q_pop(struct dp_infer *inf, struct item *out, bool wait);

/* dp_infer_pages.c: forgets a document's answers; ends a job's sequence and frees what it owns. */
void dp__infer_acc_remove(struct dp_infer *inf, struct doc_acc *a);
void dp__infer_job_clear(struct job *j);

#endif
