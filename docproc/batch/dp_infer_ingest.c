/* The ingest side of the batch's model inference: one thread opens the pending documents in
 * order, renders each selected page, checks it for blankness and preprocesses it into
 * pixel_values, and hands pages to the inference thread through a bounded queue of
 * DP_BATCH_QUEUE_PAGES items (under inf->mu). The thread touches only ingest objects and the
 * queue; Poppler documents are used by this thread only. */
#include "dp_infer_impl.h"
#include "dp_alloc.h"
#include "dp_buf.h"
#include "dp_fs.h"
#include "dp_limits.h"
#include "dp_log.h"
#include "dp_vl.h"
#include "ex_cons.h"
#include "vl_tools.h"

#include <pthread.h>
#include <stdio.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>
/* ---- queue ------------------------------------------------------------------------------- */

static bool q_push(struct dp_infer *inf, struct item *it) {
    pthread_mutex_lock(&inf->mu);
    while (inf->count == DP_BATCH_QUEUE_PAGES && !inf->stop)
        pthread_cond_wait(&inf->not_full, &inf->mu);
    bool ok = !inf->stop;
    if (ok) {
        inf->ring[(inf->head + inf->count) % DP_BATCH_QUEUE_PAGES] = *it;
        inf->count++;
        pthread_cond_signal(&inf->not_empty);
    }
    pthread_mutex_unlock(&inf->mu);
    if (!ok)
        dp__infer_item_free(it);
    return ok;
}

/* Takes the next item; waits for one when wait, else returns false when the queue is empty. */
bool dp__infer_q_pop(struct dp_infer *inf, struct item *out, bool wait) {
    pthread_mutex_lock(&inf->mu);
    while (inf->count == 0 && wait)
        pthread_cond_wait(&inf->not_empty, &inf->mu);
    if (inf->count == 0) {
        pthread_mutex_unlock(&inf->mu);
        return false;
    }
    *out = inf->ring[inf->head];
    inf->head = (inf->head + 1) % DP_BATCH_QUEUE_PAGES;
    inf->count--;
    pthread_cond_signal(&inf->not_full);
    pthread_mutex_unlock(&inf->mu);
    return true;
}

static bool producer_should_skip(struct dp_infer *inf, int doc) {
    pthread_mutex_lock(&inf->mu);
    bool s = inf->stop || inf->skip_doc == doc;
    pthread_mutex_unlock(&inf->mu);
    return s;
}

/* ---- ingest thread ------------------------------------------------------------------------ */

void dp__infer_item_free(struct item *it) {
    vl_vision_input_free(&it->vin);
    DP_FREE(it->rgb);
}

static enum dp_status ingest_page(struct dp_infer *inf, struct dp_doc *doc, int index,
                                  struct item *it, struct dp_err *err) {
    double t0 = dp__now();
    struct dp_page pg;
    enum dp_status st = dp_doc_render(&pg, doc, index, err);
    if (st != DP_OK)
        return st;
    it->page_no = pg.page_no;
    it->geom.page_w = pg.src_width ? pg.src_width : pg.width;
    it->geom.page_h = pg.src_height ? pg.src_height : pg.height;
    it->geom.pdf_w_pt = pg.width_pt;
    it->geom.pdf_h_pt = pg.height_pt;
    it->blank = !inf->o->keep_blank && dp__page_is_blank(pg.rgb, pg.width, pg.height);
    if (!it->blank) {
        struct vl_error ve = {0};
        if (vl_image_preprocess(&it->vin, pg.rgb, pg.width, pg.height, &inf->ip, &ve) != VL_OK)
            st = dp_vl_err(err, &ve, DP_ERR_FORMAT, "page %d", pg.page_no);
        it->geom.model_w = (int)(it->vin.grid_w * inf->ip.patch_size);
        it->geom.model_h = (int)(it->vin.grid_h * inf->ip.patch_size);
        if (st == DP_OK && inf->schema->task == SC_TASK_OLMOCR) { /* for the rotation retry */
            it->rgb = pg.rgb;
            it->rgb_w = pg.width;
            it->rgb_h = pg.height;
            pg.rgb = NULL;
        }
    }
    dp_page_free(&pg);
    it->t_rasterize = dp__now() - t0;
    return st;
}

static void ingest_doc(struct dp_infer *inf, int di) {
    struct dp_input *d = &inf->docs->items[di];
    struct item end = {.doc = di, .end = true, .status = DP_OK};
    struct dp_err err = {0};
    struct dp_ingest_opts io = inf->io;
    const char *pw = inf->pw ? dp__pwfile_lookup(inf->pw, d->rel) : NULL;
    if (pw)
        io.password = pw;
    struct dp_doc *doc = NULL;
    enum dp_status st = dp_doc_open(&doc, d->path, &io, &err);
    int n = st == DP_OK ? dp_doc_page_count(doc) : 0;
    end.doc_pages = n;
    if (st == DP_OK)
        st = dp_page_sel_check(&inf->sel, n, d->rel, &err);
    for (int i = 0; i < n && st == DP_OK; i++) {
        if (!dp_page_sel_has(&inf->sel, i + 1))
            continue;
        if (producer_should_skip(inf, di))
            break;
        struct item it = {.doc = di};
        st = ingest_page(inf, doc, i, &it, &err);
        if (st != DP_OK) {
            dp__infer_item_free(&it);
            break;
        }
        if (!q_push(inf, &it))
            break;
    }
    dp_doc_close(doc);
    if (st != DP_OK) {
        end.status = st;
        snprintf(end.msg, sizeof end.msg, "%s", err.msg);
    }
    q_push(inf, &end);
}

void *dp__infer_ingest_main(void *arg) {
    struct dp_infer *inf = arg;
    for (int i = 0; i < inf->docs->n; i++) {
        pthread_mutex_lock(&inf->mu);
        bool stop = inf->stop;
        pthread_mutex_unlock(&inf->mu);
        if (stop)
            break;
        if (inf->docs->items[i].state == DP_INPUT_PENDING && !inf->docs->items[i].from_kept_raw)
            ingest_doc(inf, i);
    }
    return NULL;
}

