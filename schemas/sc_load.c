/* Schema loading (sc.h): finds a schema file by name in the search path ($DOCPROC_SCHEMAS,
 * <exe>/../share/docproc/schemas, the source tree), parses the JSON Schema subset with jansson,
 * hashes the file bytes (SHA-256, GLib) and builds the prompt (sc_prompt.c).
 * Thread-safe: no shared state; a loaded schema is immutable. */
#include "sc.h"
#include "sc_impl.h"
#include "dp_alloc.h"
#include "dp_buf.h"
#include "dp_fs.h"
#include "dp_limits.h"

#include <glib.h>
#include <jansson.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef SC_SOURCE_SCHEMA_DIR
#define SC_SOURCE_SCHEMA_DIR ""
#endif
#define SC_ENV_DIR       "DOCPROC_SCHEMAS"
#define SC_EXE_REL_DIR   "/../share/docproc/schemas"
#define SC_PATH_MAX      4096
#define SC_DEFAULT_VER   "0"

/* ---- names ------------------------------------------------------------------------------- */

static const char *const type_names[] = {"string", "number", "integer", "boolean", "object",
                                         "array"};
static const char *const format_names[] = {"", "date", "amount", "currency", "percent"};
static const char *const task_names[] = {"kie", "layout", "table", "chart", "ocr",
                                         "olmocr"};

const char *sc_type_name(enum sc_type t) {
    return (size_t)t < sizeof type_names / sizeof *type_names ? type_names[t] : "?";
}
const char *sc_format_name(enum sc_format f) {
    return (size_t)f < sizeof format_names / sizeof *format_names ? format_names[f] : "?";
}
const char *sc_task_name(enum sc_task t) {
    return (size_t)t < sizeof task_names / sizeof *task_names ? task_names[t] : "?";
}

static int lookup(const char *const *names, size_t n, const char *s) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(names[i], s))
            return (int)i;
    return -1;
}

/* ---- freeing ----------------------------------------------------------------------------- */

static void strv_free(char **v, size_t n) {
    for (size_t i = 0; i < n && v; i++)
        dp_free(v[i]);
    dp_free(v);
}

static void field_clear(struct sc_field *f) {
    dp_free(f->name);
    dp_free(f->description);
    dp_free(f->pattern);
    strv_free(f->enum_vals, f->n_enum);
    strv_free(f->aliases, f->n_aliases);
    for (size_t i = 0; i < f->n_children; i++)
        field_clear(&f->children[i]);
    dp_free(f->children);
    memset(f, 0, sizeof *f);
}

void sc_schema_free(struct sc_schema *s) {
    if (!s)
        return;
    for (size_t i = 0; i < s->n_fields; i++)
        field_clear(&s->fields[i]);
    dp_free(s->fields);
    dp_free(s->name);
    dp_free(s->title);
    dp_free(s->version);
    dp_free(s->path);
    dp_free(s->prompt);
    dp_free(s->system_prompt);
    dp_free(s->source);
    dp_free(s);
}

/* ---- parsing ----------------------------------------------------------------------------- */

struct ctx {
    const char *path;
    struct dp_err *err;
    int depth;
};

#define SC_MAX_DEPTH 8

static enum dp_status bad(struct ctx *c, const char *what, const char *key) {
    return dp_err_set(c->err, DP_ERR_SCHEMA, "%s: %s '%s'", c->path, what, key);
}

static enum dp_status dup_str(struct ctx *c, char **out, json_t *v, const char *key) {
    if (!v)
        return DP_OK;
    if (!json_is_string(v))
        return bad(c, "expected a string for", key);
    *out = dp_strdup(json_string_value(v));
    return *out ? DP_OK : dp_err_set(c->err, DP_ERR_NOMEM, "%s: out of memory", c->path);
}

static enum dp_status str_array(struct ctx *c, char ***out, size_t *n, json_t *v, const char *key) {
    if (!v)
        return DP_OK;
    if (!json_is_array(v))
        return bad(c, "expected an array of strings for", key);
    size_t cnt = json_array_size(v);
    *out = dp_calloc(cnt ? cnt : 1, sizeof **out);
    if (!*out)
        return dp_err_set(c->err, DP_ERR_NOMEM, "%s: out of memory", c->path);
    for (size_t i = 0; i < cnt; i++) {
        json_t *e = json_array_get(v, i);
        if (json_is_string(e)) {
            (*out)[i] = dp_strdup(json_string_value(e));
        } else if (json_is_number(e) || json_is_boolean(e)) {
            char *d = json_dumps(e, JSON_ENCODE_ANY); /* jansson malloc: freed with free() */
            (*out)[i] = d ? dp_strdup(d) : NULL;
            free(d);
        } else {
            return bad(c, "expected strings in", key);
        }
        *n = i + 1;
        if (!(*out)[i])
            return dp_err_set(c->err, DP_ERR_NOMEM, "%s: out of memory", c->path);
    }
    return DP_OK;
}

static enum dp_status parse_type(struct ctx *c, json_t *v, const char *key, enum sc_type *out) {
    if (!v) {
        *out = SC_TYPE_STRING;
        return DP_OK;
    }
    /* "type": ["string", "null"] is accepted: the first non-null entry counts. */
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++) {
            json_t *e = json_array_get(v, i);
            if (json_is_string(e) && strcmp(json_string_value(e), "null"))
                return parse_type(c, e, key, out);
        }
        return bad(c, "no usable type for", key);
    }
    if (!json_is_string(v))
        return bad(c, "bad type for", key);
    int t = lookup(type_names, sizeof type_names / sizeof *type_names, json_string_value(v));
    if (t < 0)
        return bad(c, "unknown type for", key);
    *out = (enum sc_type)t;
    return DP_OK;
}

static enum dp_status parse_props(struct ctx *c, json_t *obj, struct sc_field **out, size_t *n);

static enum dp_status parse_field(struct ctx *c, struct sc_field *f, const char *name, json_t *def) {
    f->name = dp_strdup(name);
    if (!f->name)
        return dp_err_set(c->err, DP_ERR_NOMEM, "%s: out of memory", c->path);
    if (!json_is_object(def))
        return bad(c, "property is not an object:", name);
    enum dp_status st = parse_type(c, json_object_get(def, "type"), name, &f->type);
    if (st == DP_OK)
        st = dup_str(c, &f->description, json_object_get(def, "description"), name);
    if (st == DP_OK)
        st = dup_str(c, &f->pattern, json_object_get(def, "pattern"), name);
    if (st == DP_OK)
        st = str_array(c, &f->enum_vals, &f->n_enum, json_object_get(def, "enum"), name);
    if (st == DP_OK)
        st = str_array(c, &f->aliases, &f->n_aliases, json_object_get(def, "x-aliases"), name);
    if (st != DP_OK)
        return st;
    json_t *fmt = json_object_get(def, "format");
    if (fmt) {
        int k = json_is_string(fmt) ? lookup(format_names, sizeof format_names / sizeof *format_names,
                                             json_string_value(fmt))
                                    : -1;
        if (k <= 0)
            return bad(c, "unknown format for", name);
        f->format = (enum sc_format)k;
    }
    if (f->pattern) {
        GError *gerr = NULL;
        GRegex *re = g_regex_new(f->pattern, 0, 0, &gerr);
        if (!re) {
            dp_err_set(c->err, DP_ERR_SCHEMA, "%s: bad pattern for '%s': %s", c->path, name,
                       gerr ? gerr->message : "?");
            g_clear_error(&gerr);
            return DP_ERR_SCHEMA;
        }
        g_regex_unref(re);
    }
    json_t *sub = def;
    if (f->type == SC_TYPE_ARRAY) {
        json_t *items = json_object_get(def, "items");
        if (!items) {
            f->item_type = SC_TYPE_STRING;
            return DP_OK;
        }
        st = parse_type(c, json_object_get(items, "type"), name, &f->item_type);
        if (st != DP_OK || f->item_type != SC_TYPE_OBJECT)
            return st;
        sub = items;
    } else if (f->type != SC_TYPE_OBJECT) {
        return DP_OK;
    }
    if (++c->depth > SC_MAX_DEPTH)
        return bad(c, "nesting too deep at", name);
    st = parse_props(c, sub, &f->children, &f->n_children);
    c->depth--;
    return st;
}

static bool in_required(json_t *req, const char *name) {
    for (size_t i = 0; json_is_array(req) && i < json_array_size(req); i++) {
        json_t *e = json_array_get(req, i);
        if (json_is_string(e) && !strcmp(json_string_value(e), name))
            return true;
    }
    return false;
}

static enum dp_status parse_props(struct ctx *c, json_t *obj, struct sc_field **out, size_t *n) {
    json_t *props = json_object_get(obj, "properties");
    if (!props)
        return DP_OK;
    if (!json_is_object(props))
        return bad(c, "properties is not an object", "properties");
    size_t cnt = json_object_size(props);
    *out = dp_calloc(cnt ? cnt : 1, sizeof **out);
    if (!*out)
        return dp_err_set(c->err, DP_ERR_NOMEM, "%s: out of memory", c->path);
    json_t *req = json_object_get(obj, "required");
    const char *key;
    json_t *def;
    /* jansson keeps insertion order, so fields come out in file order. */
    json_object_foreach(props, key, def) {
        struct sc_field *f = &(*out)[*n];
        (*n)++;
        enum dp_status st = parse_field(c, f, key, def);
        if (st != DP_OK)
            return st;
        f->required = in_required(req, key);
    }
    for (size_t i = 0; json_is_array(req) && i < json_array_size(req); i++) {
        json_t *e = json_array_get(req, i);
        if (!json_is_string(e) || !sc_field_find(*out, *n, json_string_value(e)))
            return bad(c, "required names an unknown property", json_is_string(e) ? json_string_value(e) : "?");
    }
    return DP_OK;
}

static char *stem_of(const char *path) {
    const char *b = dp_path_basename(path);
    const char *dot = strrchr(b, '.');
    return dp_strndup(b, dot && dot != b ? (size_t)(dot - b) : strlen(b));
}

enum dp_status sc_schema_parse(struct sc_schema **out, const char *data, size_t len,
                               const char *path, struct dp_err *err) {
    *out = NULL;
    json_error_t jerr;
    json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return dp_err_set(err, DP_ERR_SCHEMA, "%s:%d:%d: %s", path, jerr.line, jerr.column,
                          jerr.text);
    struct ctx c = {.path = path, .err = err};
    struct sc_schema *s = dp_calloc(1, sizeof *s);
    enum dp_status st = s ? DP_OK : dp_err_set(err, DP_ERR_NOMEM, "%s: out of memory", path);
    char *x_prompt = NULL;
    if (st == DP_OK && !json_is_object(root))
        st = bad(&c, "top level is not an object", "");
    if (st == DP_OK) {
        s->path = dp_strdup(path);
        st = s->path ? DP_OK : dp_err_set(err, DP_ERR_NOMEM, "%s: out of memory", path);
    }
    if (st == DP_OK)
        st = dup_str(&c, &s->name, json_object_get(root, "x-name"), "x-name");
    if (st == DP_OK && !s->name) {
        s->name = stem_of(path);
        st = s->name ? DP_OK : dp_err_set(err, DP_ERR_NOMEM, "%s: out of memory", path);
    }
    if (st == DP_OK)
        st = dup_str(&c, &s->title, json_object_get(root, "title"), "title");
    if (st == DP_OK)
        st = dup_str(&c, &s->version, json_object_get(root, "x-version"), "x-version");
    if (st == DP_OK && !s->version) {
        s->version = dp_strdup(SC_DEFAULT_VER);
        st = s->version ? DP_OK : dp_err_set(err, DP_ERR_NOMEM, "%s: out of memory", path);
    }
    if (st == DP_OK)
        st = dup_str(&c, &s->system_prompt, json_object_get(root, "x-system-prompt"),
                     "x-system-prompt");
    if (st == DP_OK)
        st = dup_str(&c, &x_prompt, json_object_get(root, "x-prompt"), "x-prompt");
    if (st == DP_OK) {
        json_t *task = json_object_get(root, "x-task");
        int k = task ? (json_is_string(task)
                            ? lookup(task_names, sizeof task_names / sizeof *task_names,
                                     json_string_value(task))
                            : -1)
                     : (int)SC_TASK_KIE;
        if (k < 0)
            st = bad(&c, "unknown x-task", task && json_is_string(task) ? json_string_value(task) : "?");
        else
            s->task = (enum sc_task)k;
    }
    json_t *checks = st == DP_OK ? json_object_get(root, "x-checks") : NULL;
    for (size_t i = 0; checks && st == DP_OK && i < json_array_size(checks); i++) {
        json_t *e = json_array_get(checks, i);
        if (json_is_string(e) && !strcmp(json_string_value(e), "invoice-arithmetic"))
            s->checks |= SC_CHECK_INVOICE_ARITHMETIC;
        else
            st = bad(&c, "unknown x-checks entry", json_is_string(e) ? json_string_value(e) : "?");
    }
    if (st == DP_OK)
        st = parse_props(&c, root, &s->fields, &s->n_fields);
    if (st == DP_OK) {
        gchar *h = g_compute_checksum_for_data(G_CHECKSUM_SHA256, (const guchar *)data, len);
        if (h) {
            memcpy(s->hash, h, sizeof s->hash - 1);
            s->hash[sizeof s->hash - 1] = '\0';
            g_free(h);
        } else {
            st = dp_err_set(err, DP_ERR_NOMEM, "%s: out of memory", path);
        }
    }
    if (st == DP_OK) {
        s->source = dp_strndup(data, len);
        s->source_len = len;
        st = s->source ? DP_OK : dp_err_set(err, DP_ERR_NOMEM, "%s: out of memory", path);
    }
    if (st == DP_OK)
        st = sc__prompt_build(s, x_prompt, err);
    dp_free(x_prompt);
    json_decref(root);
    if (st != DP_OK) {
        sc_schema_free(s);
        return st;
    }
    *out = s;
    return DP_OK;
}

/* ---- lookup ------------------------------------------------------------------------------ */

/* Key equality ignoring ASCII case and treating ' ', '-', '_' alike. */
static bool key_eq(const char *a, const char *b) {
    for (;; a++, b++) {
        unsigned char x = (unsigned char)*a, y = (unsigned char)*b;
        if (x == ' ' || x == '-')
            x = '_';
        if (y == ' ' || y == '-')
            y = '_';
        if (x >= 'A' && x <= 'Z')
            x = (unsigned char)(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z')
            y = (unsigned char)(y - 'A' + 'a');
        if (x != y)
            return false;
        if (!x)
            return true;
    }
}

const struct sc_field *sc_field_find(const struct sc_field *fields, size_t n, const char *key) {
    for (size_t i = 0; i < n; i++)
        if (key_eq(fields[i].name, key))
            return &fields[i];
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < fields[i].n_aliases; k++)
            if (key_eq(fields[i].aliases[k], key))
                return &fields[i];
    return NULL;
}

/* ---- search path ------------------------------------------------------------------------- */

static bool is_file(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* The directories searched, in order, as up to three strings (caller frees each; NULL for one
 * that could not be built, *nomem set when that was for want of memory). */
static int search_dirs(char *dirs[3], bool *nomem) {
    int n = 0;
    const char *env = getenv(SC_ENV_DIR);
    if (env && *env)
        *nomem |= !(dirs[n++] = dp_strdup(env));
    char exe[SC_PATH_MAX];
    ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (k > 0) {
        exe[k] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            struct dp_buf b;
            dp_buf_init(&b, SC_PATH_MAX);
            dp_buf_puts(&b, exe);
            dp_buf_puts(&b, SC_EXE_REL_DIR);
            dirs[n++] = b.status == DP_OK ? dp_buf_steal(&b, NULL) : NULL;
            *nomem |= b.status == DP_ERR_NOMEM || (b.status == DP_OK && !dirs[n - 1]);
            dp_buf_free(&b);
        }
    }
    if (SC_SOURCE_SCHEMA_DIR[0])
        *nomem |= !(dirs[n++] = dp_strdup(SC_SOURCE_SCHEMA_DIR));
    return n;
}

static bool valid_name(const char *name) {
    if (!*name || strlen(name) > DP_SCHEMA_NAME_MAX)
        return false;
    for (const char *p = name; *p; p++)
        if (!g_ascii_isalnum(*p) && *p != '_' && *p != '-')
            return false;
    return true;
}

enum dp_status sc_schema_find(char **out, const char *name, struct dp_err *err) {
    *out = NULL;
    if (!valid_name(name))
        return dp_err_set(err, DP_ERR_IO, "schema '%s': not a schema name (letters, digits, - _)",
                          name);
    char *dirs[3] = {0};
    bool nomem = false; /* a failed allocation is out of memory, never "not found" */
    int n = search_dirs(dirs, &nomem);
    struct dp_buf tried;
    dp_buf_init(&tried, SC_PATH_MAX * 3);
    for (int i = 0; i < n && !*out; i++) {
        if (!dirs[i])
            continue;
        struct dp_buf b;
        dp_buf_init(&b, SC_PATH_MAX);
        dp_buf_appendf(&b, "%s/%s.json", dirs[i], name);
        if (b.status == DP_OK && is_file(b.data))
            nomem |= !(*out = dp_buf_steal(&b, NULL));
        nomem |= b.status == DP_ERR_NOMEM;
        dp_buf_appendf(&tried, "%s%s", tried.len ? ", " : "", dirs[i]);
        dp_buf_free(&b);
    }
    for (int i = 0; i < n; i++)
        dp_free(dirs[i]);
    enum dp_status st = DP_OK;
    if (nomem || tried.status == DP_ERR_NOMEM) {
        dp_free(*out);
        *out = NULL;
        st = dp_err_set(err, DP_ERR_NOMEM, "schema '%s': out of memory", name);
    } else if (!*out) {
        char *names = sc_schema_names();
        st = dp_err_set(err, DP_ERR_IO,
                        "schema '%s' not found; built-in schemas: %s (searched %s; set $%s)", name,
                        names ? names : "none found", tried.data ? tried.data : "nothing",
                        SC_ENV_DIR);
        dp_free(names);
    }
    dp_buf_free(&tried);
    return st;
}

enum dp_status sc_schema_load(struct sc_schema **out, const char *name_or_path, struct dp_err *err) {
    *out = NULL;
    size_t nl = strlen(name_or_path);
    bool is_path = strchr(name_or_path, '/') || (nl > 5 && !strcmp(name_or_path + nl - 5, ".json"));
    char *path = NULL;
    if (is_path) {
        path = dp_strdup(name_or_path);
        if (!path)
            return dp_err_set(err, DP_ERR_NOMEM, "out of memory");
    } else {
        enum dp_status st = sc_schema_find(&path, name_or_path, err);
        if (st != DP_OK)
            return st;
    }
    char *data = NULL;
    size_t len = 0;
    enum dp_status st = dp_file_read(path, DP_SCHEMA_MAX_BYTES, &data, &len, err);
    if (st == DP_OK)
        st = sc_schema_parse(out, data, len, path, err);
    dp_free(data);
    dp_free(path);
    return st;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

enum dp_status sc_schema_list(char ***out, size_t *n_out, struct dp_err *err) {
    *out = NULL;
    *n_out = 0;
    char *dirs[3] = {0};
    bool nomem = false;
    int n = search_dirs(dirs, &nomem);
    enum dp_status st = nomem ? dp_err_set(err, DP_ERR_NOMEM, "schema list: out of memory") : DP_OK;
    size_t cap = 0;
    for (int i = 0; i < n && st == DP_OK; i++) {
        GDir *d = dirs[i] ? g_dir_open(dirs[i], 0, NULL) : NULL;
        const char *e;
        while (d && st == DP_OK && (e = g_dir_read_name(d)) != NULL) {
            size_t el = strlen(e);
            if (el <= 5 || strcmp(e + el - 5, ".json") || !strcmp(e, "result.schema.json"))
                continue;
            char *stem = dp_strndup(e, el - 5);
            bool dup = false;
            for (size_t k = 0; stem && k < *n_out; k++)
                dup = dup || !strcmp((*out)[k], stem);
            if (!stem || dup || !valid_name(stem)) {
                dp_free(stem);
                continue;
            }
            if (*n_out == cap) {
                size_t nc = cap ? cap * 2 : 8;
                char **p = dp_reallocarray(*out, nc, sizeof *p);
                if (!p) {
                    dp_free(stem);
                    st = dp_err_set(err, DP_ERR_NOMEM, "out of memory");
                    break;
                }
                *out = p;
                cap = nc;
            }
            (*out)[(*n_out)++] = stem;
        }
        if (d)
            g_dir_close(d);
    }
    for (int i = 0; i < n; i++)
        dp_free(dirs[i]);
    if (*n_out)
        qsort(*out, *n_out, sizeof **out, cmp_str);
    return st;
}

char *sc_schema_names(void) {
    char **names = NULL;
    size_t n = 0;
    struct dp_err err = {0};
    struct dp_buf b;
    dp_buf_init(&b, SC_PATH_MAX);
    if (sc_schema_list(&names, &n, &err) == DP_OK)
        for (size_t i = 0; i < n; i++)
            dp_buf_appendf(&b, "%s%s", i ? ", " : "", names[i]);
    for (size_t i = 0; i < n; i++)
        dp_free(names[i]);
    dp_free(names);
    if (b.status != DP_OK || !b.len) {
        dp_buf_free(&b);
        return NULL;
    }
    return dp_buf_steal(&b, NULL);
}
