/* An independent validator of the constrained-decoding answer contract (docs/constrain.md),
 * written against the schema JSON with jansson and GRegex, sharing no code with the automaton:
 * "```json\n" + an object with exactly the schema's keys, each null or (kie) {"value": V,
 * "bbox_2d": [4 numbers]} / (chart) the plain value, lists and nested objects alike, values of
 * the right type, in their enum, matching their pattern; then "\n```". Header-only (static). */
#ifndef T_ANSWER_H
#define T_ANSWER_H

#include <glib.h>
#include <jansson.h>
#include <stdbool.h>
#include <string.h>

static bool check_value(json_t *v, json_t *sch, bool plain);

static bool check_scalar(json_t *v, json_t *sch) {
    const char *t = json_string_value(json_object_get(sch, "type"));
    if (!t)
        t = "string";
    bool ok = (!strcmp(t, "string") && json_is_string(v)) ||
              (!strcmp(t, "number") && json_is_number(v)) ||
              (!strcmp(t, "integer") && json_is_integer(v)) ||
              (!strcmp(t, "boolean") && json_is_boolean(v));
    json_t *en = json_object_get(sch, "enum");
    if (ok && en) {
        bool found = false;
        for (size_t i = 0; i < json_array_size(en); i++)
            found = found || json_equal(json_array_get(en, i), v);
        ok = found;
    }
    const char *pat = json_string_value(json_object_get(sch, "pattern"));
    if (ok && pat)
        ok = g_regex_match_simple(pat, json_string_value(v), 0, 0);
    return ok;
}

static bool check_object(json_t *v, json_t *sch, bool plain) {
    if (!json_is_object(v))
        return false;
    json_t *props = json_object_get(sch, "properties");
    if (!props || !json_object_size(props)) { /* free keys, grounded string values */
        const char *k;
        json_t *e;
        json_object_foreach(v, k, e) {
            json_t *str = json_pack("{s:s}", "type", "string");
            bool ok = plain ? json_is_string(e) : check_value(e, str, false);
            json_decref(str);
            if (!ok)
                return false;
        }
        return true;
    }
    if (json_object_size(v) != json_object_size(props))
        return false;
    const char *k;
    json_t *def;
    json_object_foreach(props, k, def) {
        json_t *e = json_object_get(v, k);
        if (!e)
            return false;
        if (!json_is_null(e) && !check_value(e, def, plain))
            return false;
    }
    return true;
}

static bool check_value(json_t *v, json_t *sch, bool plain) {
    const char *t = json_string_value(json_object_get(sch, "type"));
    if (t && !strcmp(t, "object"))
        return check_object(v, sch, plain);
    if (t && !strcmp(t, "array")) {
        if (!json_is_array(v))
            return false;
        json_t *items = json_object_get(sch, "items");
        json_t *dflt = json_object();
        for (size_t i = 0; i < json_array_size(v); i++)
            if (!check_value(json_array_get(v, i), items ? items : dflt, plain)) {
                json_decref(dflt);
                return false;
            }
        json_decref(dflt);
        return true;
    }
    if (plain)
        return check_scalar(v, sch);
    /* {"value": scalar, "bbox_2d": [4 numbers]} */
    json_t *val = json_object_get(v, "value"), *box = json_object_get(v, "bbox_2d");
    if (!json_is_object(v) || json_object_size(v) != 2 || !val || !json_is_array(box) ||
        json_array_size(box) != 4)
        return false;
    for (size_t i = 0; i < 4; i++)
        if (!json_is_number(json_array_get(box, i)))
            return false;
    return check_scalar(val, sch);
}

/* True when text is "```json\n" + a valid instance + "\n```". */
static bool valid_answer(const char *text, size_t len, json_t *schema, bool plain) {
    static const char head[] = "```json\n", tail[] = "\n```";
    if (len < sizeof head + sizeof tail - 2 || memcmp(text, head, sizeof head - 1) ||
        memcmp(text + len - (sizeof tail - 1), tail, sizeof tail - 1))
        return false;
    json_error_t e;
    json_t *v = json_loadb(text + sizeof head - 1, len - (sizeof head - 1) - (sizeof tail - 1), 0, &e);
    if (!v)
        return false;
    bool ok = check_object(v, schema, plain);
    json_decref(v);
    return ok;
}

/* Enums (string, integer), integers, booleans, numbers, a pattern, nested arrays of objects,
 * an array of scalars, a nested object and optional fields. */
static const char T_ANSWER_TEST_SCHEMA[] =
    "{\"x-name\": \"t\", \"x-task\": \"kie\", \"type\": \"object\", \"properties\": {"
    "\"kind\": {\"type\": \"string\", \"enum\": [\"credit\", \"debit\", \"cr\"]},"
    "\"level\": {\"type\": \"integer\", \"enum\": [1, 2, 12]},"
    "\"count\": {\"type\": \"integer\"},"
    "\"paid\": {\"type\": \"boolean\"},"
    "\"ratio\": {\"type\": \"number\"},"
    "\"code\": {\"type\": \"string\", \"pattern\": \"^[A-Z]{2}-[0-9]{2,3}$\"},"
    "\"tags\": {\"type\": \"array\", \"items\": {\"type\": \"string\"}},"
    "\"party\": {\"type\": \"object\", \"properties\": {\"name\": {\"type\": \"string\"},"
    "  \"vat\": {\"type\": \"string\", \"pattern\": \"[0-9]+\"}}},"
    "\"groups\": {\"type\": \"array\", \"items\": {\"type\": \"object\", \"properties\": {"
    "  \"label\": {\"type\": \"string\"},"
    "  \"rows\": {\"type\": \"array\", \"items\": {\"type\": \"object\", \"properties\": {"
    "     \"qty\": {\"type\": \"integer\"}, \"ok\": {\"type\": \"boolean\"}}, \"required\": [\"qty\"]}}}}}"
    "}, \"required\": [\"kind\", \"count\"]}";

#endif
