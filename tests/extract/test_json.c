/* The tolerant JSON parser on what models write: prose, fences, trailing commas, single quotes,
 * comments, truncation (complete elements kept), duplicates, entities, escapes, nesting limits. */
#include "dp_alloc.h"
#include "ex_impl.h"
#include "t.h"

static struct ex__wsink ws;
static struct ex_jdoc jd;

static void parse(const char *s) {
    ex__json_free(&jd);
    for (size_t i = 0; i < ws.n; i++)
        ex__warning_free(&ws.w[i]);
    dp_free(ws.w);
    memset(&ws, 0, sizeof ws);
    T_CHECK(ex__json_parse(&jd, s, 0, strlen(s), &ws) == DP_OK);
}

static int count(enum ex_warn_code c) {
    int n = 0;
    for (size_t i = 0; i < ws.n; i++)
        n += ws.w[i].code == c;
    return n;
}

static const struct ex_warning *first(enum ex_warn_code c) {
    for (size_t i = 0; i < ws.n; i++)
        if (ws.w[i].code == c)
            return &ws.w[i];
    return NULL;
}

static const char *str(const struct ex_jv *obj, const char *k) {
    const struct ex_jv *v = ex__jv_get(obj, k);
    return v && v->str ? v->str : "(none)";
}

static void lenient_syntax(void) {
    parse("{\"a\": 1, \"b\": [1, 2, ], }");
    T_CHECK(jd.found && !jd.truncated && jd.root.type == EX_J_OBJ && jd.root.n == 2);
    T_EQ_I64(ex__jv_get(&jd.root, "b")->n, 2);
    T_EQ_I64(ws.n, 0);

    parse("{'a': 'x y', 'b': 'it''s'}");
    T_EQ_STR(str(&jd.root, "a"), "x y");

    parse("{ // comment\n \"a\": /* inline */ 1, # hash\n \"b\": 2 }");
    T_EQ_I64(jd.root.n, 2);
    T_CHECK(ex__jv_get(&jd.root, "a")->num == 1);
}

static void truncation(void) {
    /* Truncated array: complete elements kept, the partial one dropped and reported. */
    const char *tr = "[{\"t\": \"a\"}, {\"t\": \"b\"}, {\"t\": \"c";
    parse(tr);
    T_CHECK(jd.truncated);
    T_EQ_I64(jd.root.n, 2);
    T_EQ_I64(count(EX_WARN_TRUNCATED), 1);
    T_EQ_I64(first(EX_WARN_TRUNCATED)->span_off, (int64_t)(strstr(tr, "{\"t\": \"c") - tr));

    parse("{\"a\": \"x\", \"b\": \"unterminated");
    T_CHECK(jd.truncated);
    T_EQ_I64(jd.root.n, 1);
    T_EQ_STR(str(&jd.root, "a"), "x");
}

static void duplicates(void) {
    parse("{\"a\": 1, \"a\": 2}");
    T_EQ_I64(jd.root.n, 1);
    T_CHECK(ex__jv_get(&jd.root, "a")->num == 2);
    T_EQ_I64(count(EX_WARN_DUPLICATE), 1);
}

static void escapes(void) {
    parse("{\"a\": \"AT&amp;T &#x4e2d; &lt;b&gt;\"}");
    T_EQ_STR(str(&jd.root, "a"), "AT&T \xe4\xb8\xad <b>");

    parse("{\"e\": \"\\ud83d\\ude00 \\ud800 \\u00e9 \\n\"}");
    T_EQ_STR(str(&jd.root, "e"), "\xf0\x9f\x98\x80 \xef\xbf\xbd \xc3\xa9 \n");

    parse("{\"bad\": \"a\xff" "b\"}");
    T_EQ_STR(str(&jd.root, "bad"), "a\xef\xbf\xbd" "b");
}

static void nesting(void) {
    parse("{\"t\": {\"rows\": [[1, 2], [3, {\"x\": [true, false, null]}]]}}");
    const struct ex_jv *rows = ex__jv_get(ex__jv_get(&jd.root, "t"), "rows");
    T_CHECK(rows && rows->n == 2 && rows->items[1].items[1].type == EX_J_OBJ);
    T_EQ_I64(ex__jv_get(&rows->items[1].items[1], "x")->n, 3);
}

static void python_literals(void) {
    parse("{\"a\": True, \"b\": None, \"c\": False, \"d\": -1.5e2}");
    T_CHECK(ex__jv_get(&jd.root, "a")->type == EX_J_BOOL && ex__jv_get(&jd.root, "a")->b);
    T_CHECK(ex__jv_get(&jd.root, "b")->type == EX_J_NULL);
    T_CHECK(ex__jv_get(&jd.root, "d")->num == -150);
}

static void recovery(void) {
    parse("{\"a\": 1 \"b\": 2}");
    T_EQ_I64(jd.root.n, 2);
    T_EQ_I64(count(EX_WARN_SYNTAX), 1);

    parse("Sure! Here it is: {\"a\": 1} Hope this helps.");
    T_EQ_I64(jd.root.n, 1);
    T_EQ_I64(count(EX_WARN_EXTRA_TEXT), 2);

    parse("{a: 1, total amount: RM 5.00}");
    T_EQ_STR(str(&jd.root, "total amount"), "RM 5.00");
    T_EQ_I64(count(EX_WARN_SYNTAX), 1); /* the unquoted value is reported */
}

static void limits(void) {
    char deep[300];
    memset(deep, '[', 200);
    memset(deep + 200, ']', 99);
    deep[299] = '\0';
    parse(deep);
    T_CHECK(count(EX_WARN_LIMIT) >= 1);

    parse("no json here");
    T_CHECK(!jd.found);

    parse("[1, 2, 3");
    T_CHECK(jd.truncated && jd.root.n == 2); /* "3" may be the start of "30" */
}

static void boxes(void) {
    parse("{\"x\": [1, 2, 3, 4]}");
    struct ex_box b;
    T_CHECK(ex__jv_box(ex__jv_get(&jd.root, "x"), &b) && b.x2 == 3 && b.y2 == 4);
    parse("{\"x\": [30, 40, 10, 20]}");
    T_CHECK(ex__jv_box(ex__jv_get(&jd.root, "x"), &b) && b.x1 == 10 && b.y1 == 20 && b.x2 == 30);
}

int main(int argc, char **argv) {
    t_args(argc, argv);
    T_RUN(lenient_syntax);
    T_RUN(truncation);
    T_RUN(duplicates);
    T_RUN(escapes);
    T_RUN(nesting);
    T_RUN(python_literals);
    T_RUN(recovery);
    T_RUN(limits);
    T_RUN(boxes);
    parse("");
    ex__json_free(&jd);
    dp_free(ws.w);
    return t_done();
}
