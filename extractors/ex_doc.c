/* Documents of libex (ex.h): pages in order, the reproducibility stamp, and ex_doc_finish, which
 * merges page fields into document fields (first page with a value wins; list fields are
 * concatenated in page order), then validates against the schema and runs its cross-checks.
 * Not thread-safe per document; no global state. */
#include "ex_impl.h"
#include "dp_alloc.h"
#include "dp_limits.h"

#include <stdio.h>
#include <string.h>

enum dp_status ex_doc_new(struct ex_doc **out, const char *source, struct dp_err *err) {
    *out = NULL;
    struct ex_doc *d = dp_calloc(1, sizeof *d);
    if (d)
        d->source = ex__clean(source ? source : "", source ? strlen(source) : 0);
    if (!d || !d->source) {
        dp_free(d);
        return dp_err_set(err, DP_ERR_NOMEM, "out of memory");
    }
    *out = d;
    return DP_OK;
}

static void doc_fields_free(struct ex_doc *d) {
    for (size_t i = 0; i < d->n_fields; i++)
        ex__field_free(&d->fields[i]);
    DP_FREE(d->fields);
    d->n_fields = 0;
    for (size_t i = 0; i < d->n_warnings; i++)
        ex__warning_free(&d->warnings[i]);
    DP_FREE(d->warnings);
    d->n_warnings = 0;
}

void ex_doc_free(struct ex_doc *d) {
    if (!d)
        return;
    for (size_t i = 0; i < d->n_pages; i++)
        ex_page_free(d->pages[i]);
    dp_free(d->pages);
    doc_fields_free(d);
    for (size_t i = 0; i < sizeof d->stamp_strings / sizeof *d->stamp_strings; i++)
        dp_free(d->stamp_strings[i]);
    for (size_t i = 0; i < d->n_review_reasons; i++)
        dp_free(d->review_reasons[i]);
    dp_free(d->review_reasons);
    dp_free(d->source);
    dp_free(d->source_sha256);
    dp_free(d->pages_note);
    dp_free(d);
}

enum dp_status ex_doc_set_pages_note(struct ex_doc *d, const char *note, struct dp_err *err) {
    DP_FREE(d->pages_note);
    if (!note)
        return DP_OK;
    d->pages_note = ex__clean(note, strlen(note));
    return d->pages_note ? DP_OK : dp_err_set(err, DP_ERR_NOMEM, "out of memory");
}

enum dp_status ex_doc_set_stamp(struct ex_doc *d, const struct ex_stamp *s, struct dp_err *err) {
    enum { N_STR = sizeof d->stamp_strings / sizeof *d->stamp_strings };
    const char *src[] = {s->docproc_version, s->model_id,  s->model_hash, s->schema_name,
                         s->schema_version,  s->schema_hash, s->prompt,   s->created};
    _Static_assert(sizeof src / sizeof *src == N_STR, "one owned copy per stamp string");
    /* Copy everything before freeing the old strings: s may be d's own stamp. */
    char *copy[N_STR] = {0};
    for (size_t i = 0; i < N_STR; i++) {
        if (src[i] && !(copy[i] = ex__clean(src[i], strlen(src[i])))) {
            for (size_t k = 0; k < i; k++)
                dp_free(copy[k]);
            return dp_err_set(err, DP_ERR_NOMEM, "out of memory");
        }
    }
    struct ex_stamp st = *s;
    for (size_t i = 0; i < N_STR; i++) {
        dp_free(d->stamp_strings[i]);
        d->stamp_strings[i] = copy[i];
    }
    st.docproc_version = copy[0], st.model_id = copy[1], st.model_hash = copy[2];
    st.schema_name = copy[3], st.schema_version = copy[4], st.schema_hash = copy[5];
    st.prompt = copy[6], st.created = copy[7];
    d->stamp = st;
    return DP_OK;
}

enum dp_status ex_doc_set_source_hash(struct ex_doc *d, const char *sha256, struct dp_err *err) {
    DP_FREE(d->source_sha256);
    if (!sha256)
        return DP_OK;
    d->source_sha256 = ex__clean(sha256, strlen(sha256));
    return d->source_sha256 ? DP_OK : dp_err_set(err, DP_ERR_NOMEM, "out of memory");
}

enum dp_status ex_doc_add_page(struct ex_doc *d, struct ex_page *page, struct dp_err *err) {
    if (d->n_pages >= DP_MAX_PAGES) {
        ex_page_free(page);
        return dp_err_set(err, DP_ERR_LIMIT, "%s: more than %d pages", d->source, DP_MAX_PAGES);
    }
    size_t cap = d->n_pages; /* grown one at a time: pages are few and large */
    struct ex_page **p = dp_reallocarray(d->pages, cap + 1, sizeof *p);
    if (!p) {
        ex_page_free(page);
        return dp_err_set(err, DP_ERR_NOMEM, "out of memory");
    }
    d->pages = p;
    d->pages[d->n_pages++] = page;
    d->truncated = d->truncated || page->truncated;
    return DP_OK;
}

static struct ex_field *doc_find(struct ex_doc *d, const char *name) {
    for (size_t i = 0; i < d->n_fields; i++)
        if (!strcmp(d->fields[i].name, name))
            return &d->fields[i];
    return NULL;
}

/* Appends copies of src's items to dst (both arrays), renumbering item names. */
static enum dp_status append_items(struct ex_field *dst, const struct ex_field *src) {
    size_t n;
    if (!dp_size_add(&n, dst->n_children, src->n_children))
        return DP_ERR_LIMIT;
    if (!src->n_children)
        return DP_OK;
    struct ex_field *c = dp_reallocarray(dst->children, n, sizeof *c);
    if (!c)
        return DP_ERR_NOMEM;
    dst->children = c;
    for (size_t i = 0; i < src->n_children; i++) {
        struct ex_field *it = &dst->children[dst->n_children];
        if (ex__field_copy(it, &src->children[i]) != DP_OK)
            return DP_ERR_NOMEM;
        dst->n_children++;
        char idx[24];
        snprintf(idx, sizeof idx, "%zu", dst->n_children - 1);
        char *nm = dp_strdup(idx);
        if (!nm)
            return DP_ERR_NOMEM;
        dp_free(it->name);
        it->name = nm;
    }
    return DP_OK;
}

static enum dp_status merge_field(struct ex_doc *d, const struct ex_field *f) {
    struct ex_field *have = doc_find(d, f->name);
    if (have && have->type == EX_V_ARRAY && f->type == EX_V_ARRAY)
        return append_items(have, f);
    if (have && have->type != EX_V_NULL)
        return DP_OK; /* first page with a value wins */
    struct ex_field copy;
    if (ex__field_copy(&copy, f) != DP_OK)
        return DP_ERR_NOMEM;
    if (have) {
        ex__field_free(have);
        *have = copy;
        return DP_OK;
    }
    struct ex_field *nf = dp_reallocarray(d->fields, d->n_fields + 1, sizeof *nf);
    if (!nf) {
        ex__field_free(&copy);
        return DP_ERR_NOMEM;
    }
    d->fields = nf;
    d->fields[d->n_fields++] = copy;
    return DP_OK;
}

enum dp_status ex_doc_finish(struct ex_doc *d, const struct sc_schema *schema, struct dp_err *err) {
    doc_fields_free(d); /* finishing twice recomputes */
    enum dp_status st = DP_OK;
    d->truncated = false;
    for (size_t p = 0; p < d->n_pages && st == DP_OK; p++) {
        d->truncated = d->truncated || d->pages[p]->truncated;
        for (size_t i = 0; i < d->pages[p]->n_fields && st == DP_OK; i++)
            st = merge_field(d, &d->pages[p]->fields[i]);
    }
    struct ex__wsink ws = {.page = 0};
    if (st == DP_OK && d->pages_note)
        ex__warn(&ws, EX_WARN_PAGES, 0, 0, NULL, "%s", d->pages_note);
    if (st == DP_OK) {
        ex__validate(schema, d->fields, d->n_fields, &ws);
        ex__check_arithmetic(schema, d->fields, d->n_fields, &ws);
        if (schema && (schema->task == SC_TASK_KIE || schema->task == SC_TASK_CHART))
            ex__check_dates_currency(d->fields, d->n_fields, &ws);
        ex__wsink_close(&ws);
        st = ws.status;
    }
    d->warnings = ws.w;
    d->n_warnings = ws.n;
    if (st != DP_OK)
        return dp_err_set(err, st, "%s: %s while merging pages", d->source, dp_status_str(st));
    return DP_OK;
}
