/* Schema -> grammar for constrained decoding (docs/constrain.md). Reads the schema file's JSON
 * (sc_schema.source) and checks every keyword of every subschema against what the automaton can
 * enforce: anything else is a load error naming the keyword and its JSON-pointer path (fail
 * closed, never a silent fallback). Builds the answer contract as grammar nodes: the ```json code
 * block, exactly the schema's keys in schema order, each kie field as null or
 * {"value": V, "bbox_2d": [x1, y1, x2, y2]}, lists and nested objects, chart schemas as plain
 * JSON. ex_gram_bind then computes token counts of the literals for one vocabulary (the budget
 * arithmetic). A compiled gram is immutable after bind; thread-safe to share. */
#include "ex_cons_impl.h"
#include "dp_alloc.h"
#include "dp_buf.h"

#include <jansson.h>
#include <string.h>

#define GRAM_PATH_MAX 512
#define FIELD_PATH_MAX 256

struct gc {
    struct ex_gram *g;
    struct dp_err *err;
    enum dp_status st;
    bool plain; /* chart: plain JSON values, no {"value", "bbox_2d"} wrappers */
};

/* ---- growth -------------------------------------------------------------------------------- */

static bool grow(struct gc *c, void **p, int32_t *cap, int32_t need, size_t size) {
    if (need <= *cap)
        return true;
    int32_t nc = *cap ? *cap * 2 : 64;
    while (nc < need)
        nc *= 2;
    void *q = dp_reallocarray(*p, (size_t)nc, size);
    if (!q) {
        c->st = dp_err_set(c->err, DP_ERR_NOMEM, "out of memory");
        return false;
    }
    *p = q;
    *cap = nc;
    return true;
}

static int32_t node_new(struct gc *c, uint8_t kind) {
    struct ex_gram *g = c->g;
    if (c->st != DP_OK ||
        !grow(c, (void **)&g->nodes, &g->cap_nodes, g->n_nodes + 1, sizeof *g->nodes))
        return -1;
    struct ex_gnode *n = &g->nodes[g->n_nodes];
    memset(n, 0, sizeof *n);
    n->kind = kind;
    n->field = -1;
    return g->n_nodes++;
}

static int32_t lit(struct gc *c, const char *s, size_t len) {
    struct ex_gram *g = c->g;
    int32_t id = node_new(c, EX_GK_LIT);
    if (id < 0 || !grow(c, (void **)&g->bytes, &g->cap_bytes, g->n_bytes + (int32_t)len + 1, 1))
        return -1;
    memcpy(g->bytes + g->n_bytes, s, len);
    g->nodes[id].a = g->n_bytes;
    g->nodes[id].n = (int32_t)len;
    g->n_bytes += (int32_t)len;
    return id;
}

static int32_t lits(struct gc *c, const char *s) {
    return lit(c, s, strlen(s));
}

/* A SEQ over kids[0..n) (copied). */
static int32_t seq(struct gc *c, const int32_t *kids, int32_t n) {
    struct ex_gram *g = c->g;
    for (int32_t i = 0; i < n; i++)
        if (kids[i] < 0)
            return -1;
    int32_t id = node_new(c, EX_GK_SEQ);
    if (id < 0 || !grow(c, (void **)&g->kids, &g->cap_kids, g->n_kids + n, sizeof *g->kids))
        return -1;
    memcpy(g->kids + g->n_kids, kids, (size_t)n * sizeof *kids);
    g->nodes[id].a = g->n_kids;
    g->nodes[id].n = n;
    g->n_kids += n;
    return id;
}

static int32_t wrap1(struct gc *c, uint8_t kind, int32_t kid) {
    if (kid < 0)
        return -1;
    int32_t id = node_new(c, kind);
    if (id >= 0)
        c->g->nodes[id].a = kid;
    return id;
}

static int32_t field_slot(struct gc *c, const char *path) {
    struct ex_gram *g = c->g;
    if (c->st != DP_OK ||
        !grow(c, (void **)&g->fields, &g->cap_fields, g->n_fields + 1, sizeof *g->fields))
        return -1;
    g->fields[g->n_fields] = dp_strdup(path);
    if (!g->fields[g->n_fields]) {
        c->st = dp_err_set(c->err, DP_ERR_NOMEM, "out of memory");
        return -1;
    }
    return g->n_fields++;
}

/* ---- enum tries ----------------------------------------------------------------------------- */

static int32_t enode_new(struct gc *c, uint8_t byte) {
    struct ex_gram *g = c->g;
    if (c->st != DP_OK ||
        !grow(c, (void **)&g->enodes, &g->cap_enodes, g->n_enodes + 1, sizeof *g->enodes))
        return -1;
    struct ex_enode *e = &g->enodes[g->n_enodes];
    memset(e, 0, sizeof *e);
    e->first_kid = e->next_sib = -1;
    e->byte = byte;
    return g->n_enodes++;
}

static bool enum_add(struct gc *c, int32_t root, const char *s, size_t len) {
    int32_t at = root;
    for (size_t i = 0; i < len; i++) {
        int32_t k = c->g->enodes[at].first_kid;
        while (k >= 0 && c->g->enodes[k].byte != (uint8_t)s[i])
            k = c->g->enodes[k].next_sib;
        if (k < 0) {
            k = enode_new(c, (uint8_t)s[i]);
            if (k < 0)
                return false;
            c->g->enodes[k].next_sib = c->g->enodes[at].first_kid;
            c->g->enodes[at].first_kid = k;
        }
        at = k;
    }
    c->g->enodes[at].term = true;
    return true;
}

/* ---- keyword checks ------------------------------------------------------------------------- */

static enum dp_status unsupported(struct gc *c, const char *kw, const char *path, const char *why) {
    c->st = dp_err_set(c->err, DP_ERR_SCHEMA,
                       "schema %s: keyword '%s' at %s cannot be enforced by constrained decoding "
                       "(%s); use --constrain off to extract without it",
                       c->g->path, kw, *path ? path : "/", why);
    return c->st;
}

static const char *const ANNOTATIONS[] = {
    "$schema", "$id", "$comment", "title", "description", "examples", "default", "deprecated",
    "readOnly", "writeOnly", "format", "type", "properties", "required", "additionalProperties",
    "items", "enum", "pattern", NULL,
};

static bool known(const char *k) {
    if (!strncmp(k, "x-", 2))
        return true;
    for (int i = 0; ANNOTATIONS[i]; i++)
        if (!strcmp(ANNOTATIONS[i], k))
            return true;
    return false;
}

/* The one non-null type of a subschema, or NULL (set c->st). */
static const char *type_of(struct gc *c, json_t *sch, const char *path) {
    json_t *t = json_object_get(sch, "type");
    if (!t)
        return json_object_get(sch, "properties") ? "object"
               : json_object_get(sch, "items")    ? "array"
                                                  : "string";
    if (json_is_string(t))
        return json_string_value(t);
    const char *one = NULL;
    for (size_t i = 0; json_is_array(t) && i < json_array_size(t); i++) {
        json_t *e = json_array_get(t, i);
        if (!json_is_string(e)) {
            unsupported(c, "type", path, "a type list entry that is not a string");
            return NULL;
        }
        if (!strcmp(json_string_value(e), "null"))
            continue;
        if (one) {
            unsupported(c, "type", path, "more than one non-null type");
            return NULL;
        }
        one = json_string_value(e);
    }
    if (!one)
        unsupported(c, "type", path, "no non-null type");
    return one;
}

static bool check_keywords(struct gc *c, json_t *sch, const char *path) {
    if (!json_is_object(sch)) {
        unsupported(c, "items", path, "a subschema that is not an object");
        return false;
    }
    const char *k;
    json_t *v;
    json_object_foreach(sch, k, v) {
        if (!known(k)) {
            unsupported(c, k, path, "not supported");
            return false;
        }
    }
    json_t *ap = json_object_get(sch, "additionalProperties");
    if (ap && !json_is_boolean(ap)) {
        unsupported(c, "additionalProperties", path, "only true or false are supported");
        return false;
    }
    json_t *items = json_object_get(sch, "items");
    if (items && !json_is_object(items)) {
        unsupported(c, "items", path, "tuple or boolean items are not supported");
        return false;
    }
    return true;
}

/* ---- values ----------------------------------------------------------------------------------- */

static int32_t value(struct gc *c, json_t *sch, const char *path, const char *fpath);
static int32_t object(struct gc *c, json_t *sch, const char *path, const char *fpath);

/* JSON text of a string (quoted, escaped) into b. */
static void quote(struct dp_buf *b, const char *s) {
    dp_buf_putc(b, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            dp_buf_appendf(b, "\\%c", *p);
        else if (*p == '\n')
            dp_buf_puts(b, "\\n");
        else if (*p == '\t')
            dp_buf_puts(b, "\\t");
        else if (*p < 0x20)
            dp_buf_appendf(b, "\\u%04x", *p);
        else
            dp_buf_putc(b, (char)*p);
    }
    dp_buf_putc(b, '"');
}

static int32_t enum_node(struct gc *c, json_t *en, const char *type, const char *path) {
    if (!json_is_array(en) || !json_array_size(en)) {
        unsupported(c, "enum", path, "an empty or non-array enum");
        return -1;
    }
    int32_t root = enode_new(c, 0);
    int32_t id = node_new(c, EX_GK_ENUM);
    if (id < 0 || root < 0)
        return -1;
    c->g->nodes[id].a = root;
    for (size_t i = 0; i < json_array_size(en); i++) {
        json_t *e = json_array_get(en, i);
        bool ok = (!strcmp(type, "string") && json_is_string(e)) ||
                  (!strcmp(type, "integer") && json_is_integer(e)) ||
                  (!strcmp(type, "number") && json_is_number(e)) ||
                  (!strcmp(type, "boolean") && json_is_boolean(e));
        if (!ok) {
            unsupported(c, "enum", path, "a value whose type differs from the field's type");
            return -1;
        }
        struct dp_buf b;
        dp_buf_init(&b, 4096);
        if (json_is_string(e)) {
            quote(&b, json_string_value(e));
        } else {
            char *d = json_dumps(e, JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
            dp_buf_puts(&b, d ? d : "");
            free(d);
        }
        bool added = b.status == DP_OK && b.len && enum_add(c, root, b.data, b.len);
        dp_buf_free(&b);
        if (!added) {
            if (c->st == DP_OK)
                c->st = dp_err_set(c->err, DP_ERR_NOMEM, "out of memory");
            return -1;
        }
    }
    return id;
}

static int32_t scalar(struct gc *c, json_t *sch, const char *type, const char *path,
                      const char *fpath) {
    json_t *en = json_object_get(sch, "enum");
    json_t *pat = json_object_get(sch, "pattern");
    if (pat && (strcmp(type, "string") || !json_is_string(pat))) {
        unsupported(c, "pattern", path, "pattern on a non-string");
        return -1;
    }
    int32_t id = -1;
    if (en) {
        id = enum_node(c, en, type, path);
    } else if (!strcmp(type, "boolean")) {
        json_t *tf = json_pack("[bb]", 1, 0);
        id = tf ? enum_node(c, tf, type, path) : -1;
        json_decref(tf);
    } else if (!strcmp(type, "string") && pat) {
        struct ex_gram *g = c->g;
        if (!grow(c, (void **)&g->res, &g->cap_res, g->n_res + 1, sizeof *g->res))
            return -1;
        const char *what = NULL;
        if (ex__re_compile(&g->res[g->n_res], json_string_value(pat), &what) != DP_OK) {
            unsupported(c, "pattern", path, what);
            return -1;
        }
        id = node_new(c, EX_GK_PATTERN);
        if (id >= 0)
            g->nodes[id].a = g->n_res++;
    } else if (!strcmp(type, "string")) {
        id = node_new(c, EX_GK_STRING);
    } else if (!strcmp(type, "number") || !strcmp(type, "integer")) {
        id = node_new(c, EX_GK_NUMBER);
        if (id >= 0) {
            c->g->nodes[id].flags = (uint8_t)(EX_NUM_SIGNED | (type[0] == 'n' ? EX_NUM_FRAC : 0));
            c->g->nodes[id].max_int = EX_CONS_MAX_INT_DIGITS;
        }
    } else {
        unsupported(c, "type", path, "unknown type");
        return -1;
    }
    if (id >= 0) {
        int32_t slot = field_slot(c, fpath);
        if (slot < 0)
            return -1;
        c->g->nodes[id].field = slot;
    }
    return id;
}

static int32_t box_number(struct gc *c) {
    int32_t id = node_new(c, EX_GK_NUMBER);
    if (id >= 0)
        c->g->nodes[id].max_int = EX_CONS_MAX_BOX_DIGITS;
    return id;
}

/* {"value": V, "bbox_2d": [x1, y1, x2, y2]} */
static int32_t grounded(struct gc *c, int32_t v) {
    int32_t k[] = {lits(c, "{\"value\": "), v, lits(c, ", \"bbox_2d\": ["), box_number(c),
                   lits(c, ", "), box_number(c), lits(c, ", "), box_number(c), lits(c, ", "),
                   box_number(c), lits(c, "]}")};
    return seq(c, k, (int32_t)(sizeof k / sizeof *k));
}

static int32_t rep(struct gc *c, int32_t item, char open, char close) {
    int32_t id = wrap1(c, EX_GK_REP, item);
    if (id >= 0) {
        c->g->nodes[id].open = (uint8_t)open;
        c->g->nodes[id].close = (uint8_t)close;
    }
    return id;
}

/* A value (not nullable itself): kie scalars are grounded; lists hold items; objects keys. */
static int32_t value(struct gc *c, json_t *sch, const char *path, const char *fpath) {
    if (!check_keywords(c, sch, path))
        return -1;
    const char *type = type_of(c, sch, path);
    if (!type)
        return -1;
    char sub[GRAM_PATH_MAX], fsub[FIELD_PATH_MAX];
    if (!strcmp(type, "object"))
        return object(c, sch, path, fpath);
    if (!strcmp(type, "array")) {
        json_t *items = json_object_get(sch, "items");
        snprintf(sub, sizeof sub, "%s/items", path);
        snprintf(fsub, sizeof fsub, "%s[]", fpath);
        json_t *empty = items ? NULL : json_object();
        int32_t item = value(c, items ? items : empty, sub, fsub);
        json_decref(empty);
        return rep(c, item, '[', ']');
    }
    int32_t v = scalar(c, sch, type, path, fpath);
    return c->plain ? v : grounded(c, v);
}

/* Exactly the schema's keys in order, each value null or the value; or, with no properties and
 * additionalProperties not false, any keys with grounded string values (the form schema). */
static int32_t object(struct gc *c, json_t *sch, const char *path, const char *fpath) {
    json_t *props = json_object_get(sch, "properties");
    json_t *ap = json_object_get(sch, "additionalProperties");
    if (props && !json_is_object(props)) {
        unsupported(c, "properties", path, "not an object");
        return -1;
    }
    char sub[GRAM_PATH_MAX], fsub[FIELD_PATH_MAX];
    if (!props || !json_object_size(props)) {
        if (ap && json_is_false(ap))
            return lits(c, "{}");
        snprintf(fsub, sizeof fsub, "%s%s*", fpath, *fpath ? "." : "");
        int32_t key = node_new(c, EX_GK_STRING);
        int32_t slot = field_slot(c, fsub);
        int32_t val = node_new(c, EX_GK_STRING);
        if (val < 0 || slot < 0)
            return -1;
        c->g->nodes[val].field = slot;
        int32_t k[] = {key, lits(c, ": "), c->plain ? val : grounded(c, val)};
        return rep(c, seq(c, k, 3), '{', '}');
    }
    size_t n = json_object_size(props);
    int32_t *kids = dp_calloc(2 * n + 1, sizeof *kids);
    if (!kids) {
        c->st = dp_err_set(c->err, DP_ERR_NOMEM, "out of memory");
        return -1;
    }
    int32_t nk = 0;
    size_t i = 0;
    const char *key;
    json_t *def;
    json_object_foreach(props, key, def) {
        struct dp_buf b;
        dp_buf_init(&b, 4096);
        dp_buf_puts(&b, i ? ", " : "{");
        quote(&b, key);
        dp_buf_puts(&b, ": ");
        kids[nk++] = b.status == DP_OK ? lit(c, b.data, b.len) : -1;
        dp_buf_free(&b);
        snprintf(sub, sizeof sub, "%s/properties/%s", path, key);
        snprintf(fsub, sizeof fsub, "%s%s%s", fpath, *fpath ? "." : "", key);
        kids[nk++] = wrap1(c, EX_GK_NULL, value(c, def, sub, fsub));
        i++;
        if (c->st != DP_OK)
            break;
    }
    kids[nk++] = lits(c, "}");
    int32_t id = c->st == DP_OK ? seq(c, kids, nk) : -1;
    dp_free(kids);
    if (c->st == DP_OK && id < 0)
        c->st = dp_err_set(c->err, DP_ERR_NOMEM, "out of memory");
    return id;
}

/* ---- first sets and depth -------------------------------------------------------------------- */

static void set_bit(uint64_t *s, uint8_t b) {
    s[b >> 6] |= 1ULL << (b & 63);
}

static void first_of(struct ex_gram *g, int32_t id, uint64_t *out, int guard) {
    const struct ex_gnode *n = &g->nodes[id];
    if (guard > 4 * EX_CONS_MAX_FRAMES)
        return;
    switch (n->kind) {
    case EX_GK_LIT: set_bit(out, (uint8_t)g->bytes[n->a]); break;
    case EX_GK_SEQ: first_of(g, g->kids[n->a], out, guard + 1); break;
    case EX_GK_NULL:
        set_bit(out, 'n');
        first_of(g, n->a, out, guard + 1);
        break;
    case EX_GK_ENUM:
        for (int32_t k = g->enodes[n->a].first_kid; k >= 0; k = g->enodes[k].next_sib)
            set_bit(out, g->enodes[k].byte);
        break;
    case EX_GK_STRING:
    case EX_GK_PATTERN: set_bit(out, '"'); break;
    case EX_GK_NUMBER:
        for (int b = '0'; b <= '9'; b++)
            set_bit(out, (uint8_t)b);
        if (n->flags & EX_NUM_SIGNED)
            set_bit(out, '-');
        break;
    case EX_GK_REP: set_bit(out, n->open); break;
    default: break;
    }
}

static int32_t depth_of(const struct ex_gram *g, int32_t id) {
    const struct ex_gnode *n = &g->nodes[id];
    int32_t d = 0;
    if (n->kind == EX_GK_SEQ)
        for (int32_t i = 0; i < n->n; i++) {
            int32_t k = depth_of(g, g->kids[n->a + i]);
            d = k > d ? k : d;
        }
    else if (n->kind == EX_GK_NULL)
        return depth_of(g, n->a) > 1 ? depth_of(g, n->a) : 1;
    else if (n->kind == EX_GK_REP)
        d = depth_of(g, n->a);
    return d + 1;
}

/* ---- public -------------------------------------------------------------------------------------- */

void ex_gram_free(struct ex_gram *g) {
    if (!g)
        return;
    for (int32_t i = 0; i < g->n_fields; i++)
        dp_free(g->fields[i]);
    dp_free(g->fields);
    dp_free(g->path);
    dp_free(g->nodes);
    dp_free(g->kids);
    dp_free(g->bytes);
    dp_free(g->lit_tok);
    dp_free(g->seq_rest);
    dp_free(g->enodes);
    dp_free(g->res);
    dp_free(g);
}

enum dp_status ex_gram_compile(struct ex_gram **out, const struct sc_schema *s,
                               struct dp_err *err) {
    *out = NULL;
    if (s->task != SC_TASK_KIE && s->task != SC_TASK_CHART)
        return dp_err_set(err, DP_ERR_UNSUPPORTED,
                          "schema %s: constrained decoding applies to kie and chart schemas, not "
                          "%s (use --constrain off)", s->name, sc_task_name(s->task));
    if (!s->source)
        return dp_err_set(err, DP_ERR_SCHEMA, "schema %s: no source to compile", s->name);
    json_error_t jerr;
    json_t *root = json_loadb(s->source, s->source_len, 0, &jerr);
    if (!root)
        return dp_err_set(err, DP_ERR_SCHEMA, "schema %s: %s", s->path, jerr.text);
    struct ex_gram *g = dp_calloc(1, sizeof *g);
    struct gc c = {.g = g, .err = err, .plain = s->task == SC_TASK_CHART};
    if (!g || !(g->path = dp_strdup(s->path ? s->path : s->name))) {
        json_decref(root);
        ex_gram_free(g);
        return dp_err_set(err, DP_ERR_NOMEM, "out of memory");
    }
    int32_t obj = object(&c, root, "", "");
    if (c.st == DP_OK && check_keywords(&c, root, "")) {
        const char *t = type_of(&c, root, "");
        if (t && strcmp(t, "object"))
            unsupported(&c, "type", "", "the answer must be an object");
    }
    int32_t k[] = {lits(&c, "```json\n"), obj, lits(&c, "\n```")};
    g->root = c.st == DP_OK ? seq(&c, k, 3) : -1;
    g->null_lit = lits(&c, "null");
    json_decref(root);
    if (c.st == DP_OK && (g->root < 0 || g->null_lit < 0))
        c.st = dp_err_set(err, DP_ERR_NOMEM, "out of memory");
    if (c.st == DP_OK) {
        for (int32_t i = 0; i < g->n_nodes; i++)
            first_of(g, i, g->nodes[i].first, 0);
        g->max_depth = depth_of(g, g->root);
        if (g->max_depth >= EX_CONS_MAX_FRAMES)
            c.st = dp_err_set(err, DP_ERR_SCHEMA,
                              "schema %s: nesting too deep for constrained decoding", g->path);
    }
    if (c.st != DP_OK) {
        ex_gram_free(g);
        return c.st;
    }
    *out = g;
    return DP_OK;
}

/* Shortest remaining literal below enode e (post-order): length and the next enode on it. */
static int32_t enum_best(struct ex_gram *g, int32_t e, int32_t *best_kid) {
    if (g->enodes[e].term) {
        *best_kid = -1;
        return 0;
    }
    int32_t best = INT32_MAX;
    *best_kid = -1;
    for (int32_t k = g->enodes[e].first_kid; k >= 0; k = g->enodes[k].next_sib) {
        int32_t dummy;
        int32_t l = 1 + enum_best(g, k, &dummy);
        if (l < best || (l == best && *best_kid >= 0 && g->enodes[k].byte < g->enodes[*best_kid].byte)) {
            best = l;
            *best_kid = k;
        }
    }
    return best;
}

static int32_t tokens_of(const struct ex_vocab *v, const char *s, size_t len) {
    return (int32_t)ex_vocab_tokenize(v, s, len, NULL, 0);
}

static int32_t min_tok(struct ex_gram *g, int32_t id) {
    struct ex_gnode *n = &g->nodes[id];
    if (n->min_tok > 0)
        return n->min_tok;
    int32_t t = 0;
    switch (n->kind) {
    case EX_GK_LIT: t = g->lit_tok[n->a]; break;
    case EX_GK_SEQ:
        for (int32_t i = n->n; i-- > 0;) {
            t += min_tok(g, g->kids[n->a + i]);
            g->seq_rest[n->a + i] = t;
        }
        break;
    case EX_GK_NULL: {
        int32_t a = min_tok(g, g->null_lit), b = min_tok(g, n->a);
        t = a < b ? a : b;
        break;
    }
    case EX_GK_ENUM: t = g->enodes[n->a].rest_tok; break;
    case EX_GK_STRING: t = 2; break;
    case EX_GK_PATTERN: t = 2 + ex__re_dist(&g->res[n->a], EX_RE_START); break;
    case EX_GK_NUMBER: t = 1; break;
    case EX_GK_REP: t = 2; min_tok(g, n->a); break;
    default: break;
    }
    n->min_tok = t;
    return t;
}

enum dp_status ex_gram_bind(struct ex_gram *g, const struct ex_vocab *v, struct dp_err *err) {
    dp_free(g->lit_tok);
    dp_free(g->seq_rest);
    g->lit_tok = dp_calloc((size_t)g->n_bytes + 1, sizeof *g->lit_tok);
    g->seq_rest = dp_calloc((size_t)g->n_kids + 1, sizeof *g->seq_rest);
    if (!g->lit_tok || !g->seq_rest)
        return dp_err_set(err, DP_ERR_NOMEM, "out of memory");
    for (int32_t i = 0; i < g->n_nodes; i++) {
        struct ex_gnode *n = &g->nodes[i];
        n->min_tok = 0;
        if (n->kind == EX_GK_LIT)
            for (int32_t p = 0; p < n->n; p++)
                g->lit_tok[n->a + p] = tokens_of(v, g->bytes + n->a + p, (size_t)(n->n - p));
    }
    char buf[EX_CONS_MAX_FORCED_BYTES];
    for (int32_t e = 0; e < g->n_enodes; e++) {
        size_t len = 0;
        int32_t at = e, kid;
        while (enum_best(g, at, &kid) > 0 && kid >= 0 && len < sizeof buf) {
            buf[len++] = (char)g->enodes[kid].byte;
            at = kid;
        }
        g->enodes[e].rest_len = (int32_t)len;
        g->enodes[e].rest_tok = tokens_of(v, buf, len);
    }
    for (int32_t i = 0; i < g->n_nodes; i++)
        min_tok(g, i);
    g->bound = v;
    return DP_OK;
}

int64_t ex_gram_min_tokens(const struct ex_gram *g) {
    return (int64_t)g->nodes[g->root].min_tok + 1; /* + EOS */
}

size_t ex_gram_n_fields(const struct ex_gram *g) {
    return (size_t)g->n_fields;
}

const char *ex_gram_field_path(const struct ex_gram *g, size_t i) {
    return i < (size_t)g->n_fields ? g->fields[i] : "";
}
