/* Several threads parse HTML/JSON answers and write JSON/XML at once (the batch's --jobs N
 * re-parse workers do this): every thread must produce the single-threaded output. libxml2 is
 * initialised through ex_xml_init's GOnce, not by the test. */
#include "dp_buf.h"
#include "dp_limits.h"
#include "dp_out.h"
#include "ex.h"
#include "sc.h"
#include "t.h"

#include <pthread.h>

#define N_THREADS 4
#define N_ROUNDS 25

static const char ANSWER[] =
    "```html\n<html><body><h2 data-bbox=\"310 94 658 132\">Qwen2.5 Technical Report</h2>"
    "<table><tr><td rowspan=\"2\">a</td><td>b &amp; c</td></tr><tr><td>d</td></tr></table>"
    "<p data-bbox=\"99 339 869 565\">In this report, ...</p></body></html>\n```";

static struct sc_schema *schema;

static enum dp_status render(struct dp_buf *out) {
    struct dp_err err = {0};
    struct ex_doc *d = NULL;
    struct ex_page *p = NULL;
    struct ex_geom g = {.model_w = 1008, .model_h = 1540, .page_w = 1014, .page_h = 1532};
    enum dp_status st = ex_doc_new(&d, "t.png", &err);
    if (st == DP_OK)
        st = ex_page_parse(&p, schema, ANSWER, strlen(ANSWER), &g, 1, false, &err);
    if (st == DP_OK)
        st = ex_doc_add_page(d, p, &err);
    if (st == DP_OK)
        st = ex_doc_finish(d, schema, &err);
    if (st == DP_OK)
        st = dp_out_json(d, out, &err);
    if (st == DP_OK)
        st = dp_out_xml(d, out, &err);
    ex_doc_free(d);
    return st;
}

static struct dp_buf ref;

static void *worker(void *arg) {
    int *bad = arg;
    for (int i = 0; i < N_ROUNDS; i++) {
        struct dp_buf b;
        dp_buf_init(&b, DP_MAX_TEXT_BYTES);
        if (render(&b) != DP_OK || b.len != ref.len || memcmp(b.data, ref.data, b.len))
            (*bad)++;
        dp_buf_free(&b);
    }
    return NULL;
}

int main(void) {
    struct dp_err err = {0};
    T_CHECK(sc_schema_load(&schema, "layout", &err) == DP_OK);
    pthread_t th[N_THREADS];
    int bad[N_THREADS] = {0};
    dp_buf_init(&ref, DP_MAX_TEXT_BYTES);
    /* Threads start before anything touched libxml2; the reference is made after. */
    for (int i = 0; i < N_THREADS; i++)
        T_CHECK(pthread_create(&th[i], NULL, worker, &bad[i]) == 0);
    for (int i = 0; i < N_THREADS; i++)
        pthread_join(th[i], NULL);
    T_CHECK(render(&ref) == DP_OK && ref.len > 0);
    for (int i = 0; i < N_THREADS; i++)
        bad[i] = 0;
    for (int i = 0; i < N_THREADS; i++)
        T_CHECK(pthread_create(&th[i], NULL, worker, &bad[i]) == 0);
    for (int i = 0; i < N_THREADS; i++) {
        pthread_join(th[i], NULL);
        T_EQ_I64(bad[i], 0);
    }
    dp_buf_free(&ref);
    sc_schema_free(schema);
    return t_done();
}
