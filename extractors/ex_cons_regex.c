/* JSON Schema "pattern" for constrained decoding: a regex subset compiled into a Glushkov position
 * automaton (at most 63 positions, a set of positions is one uint64_t), so that the allowed bytes
 * of a string value are known at every step. Supported: literals, '.', classes with ranges and
 * negation, \d \w \s \D \W \S and escaped punctuation, groups ( ) (?: ), '|', quantifiers ? * +
 * {n} {n,} {n,m} (lazy forms match the same language), '^' at the start and '$' at the end
 * (without them the pattern may match anywhere, as JSON Schema says). Anything else fails closed
 * with the feature named. Matching is over printable ASCII (what a constrained pattern string may
 * hold). Pure functions; thread-safe. */
#include "ex_cons_impl.h"

#include <string.h>

#define RE_INF 1000000

struct frag {
    uint64_t first, last;
    bool nullable;
};

struct rp {
    const char *s;
    size_t i, n;
    struct ex_re *re;
    const char *what; /* first unsupported feature, or NULL */
};

typedef uint64_t cls_t[2]; /* ASCII byte set */

static void cls_add(cls_t c, int b) {
    c[b >> 6] |= 1ULL << (b & 63);
}
static bool cls_has(const cls_t c, int b) {
    return (c[b >> 6] >> (b & 63)) & 1;
}
/* A pattern string holds printable ASCII except the quote and backslash (no escapes). */
static bool usable(int b) {
    return b >= 0x20 && b < 0x7f && b != '"' && b != '\\';
}

static struct frag fail(struct rp *p, const char *what) {
    if (!p->what)
        p->what = what;
    struct frag f = {0, 0, true};
    return f;
}

static struct frag new_pos(struct rp *p, const cls_t c) {
    struct frag f = {0, 0, false};
    if (p->re->n_pos >= EX_RE_MAX_POS)
        return fail(p, "more than 63 character positions");
    int k = p->re->n_pos++;
    for (int b = 0; b < 128; b++)
        if (cls_has(c, b) && usable(b))
            p->re->match[b] |= 1ULL << k;
    f.first = f.last = 1ULL << k;
    return f;
}

static void link(struct ex_re *re, uint64_t from, uint64_t to) {
    for (int k = 0; k < EX_RE_MAX_POS; k++)
        if ((from >> k) & 1)
            re->follow[k] |= to;
}

static struct frag cat(struct ex_re *re, struct frag x, struct frag y) {
    link(re, x.last, y.first);
    struct frag f;
    f.first = x.first | (x.nullable ? y.first : 0);
    f.last = y.last | (y.nullable ? x.last : 0);
    f.nullable = x.nullable && y.nullable;
    return f;
}

static struct frag star(struct ex_re *re, struct frag x, bool nullable) {
    link(re, x.last, x.first);
    if (nullable)
        x.nullable = true;
    return x;
}

static int peek(const struct rp *p) {
    return p->i < p->n ? (unsigned char)p->s[p->i] : -1;
}

static void cls_range(cls_t c, int lo, int hi) {
    for (int b = lo; b <= hi; b++)
        cls_add(c, b);
}

static void cls_invert(cls_t c) {
    c[0] = ~c[0];
    c[1] = ~c[1];
}

/* \d \w \s (ASCII) into c. */
static void word_class(cls_t c, int e) {
    if (e == 'd' || e == 'w')
        cls_range(c, '0', '9');
    if (e == 'w') {
        cls_range(c, 'a', 'z');
        cls_range(c, 'A', 'Z');
        cls_add(c, '_');
    }
    if (e == 's') {
        cls_add(c, ' ');
        cls_add(c, '\t');
        cls_add(c, '\n');
        cls_add(c, '\r');
    }
}

/* \x escape into c; false when unsupported (p->what set). */
static bool escape(struct rp *p, cls_t c) {
    int e = peek(p);
    if (e < 0) {
        fail(p, "trailing backslash");
        return false;
    }
    p->i++;
    switch (e) {
    case 'd': case 'w': case 's':
        word_class(c, e);
        return true;
    case 'D': case 'W': case 'S': {
        cls_t t = {0, 0};
        word_class(t, e + ('a' - 'A'));
        cls_invert(t);
        c[0] |= t[0];
        c[1] |= t[1];
        return true;
    }
    case 'n': cls_add(c, '\n'); return true;
    case 't': cls_add(c, '\t'); return true;
    case 'r': cls_add(c, '\r'); return true;
    case 'b': case 'B': fail(p, "word boundary \\b"); return false;
    case 'p': case 'P': fail(p, "Unicode property \\p"); return false;
    default:
        if (e >= '1' && e <= '9') {
            fail(p, "backreference");
            return false;
        }
        if ((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z') || e >= 0x80) {
            fail(p, "escape sequence");
            return false;
        }
        cls_add(c, e);
        return true;
    }
}

static bool parse_class(struct rp *p, cls_t c) {
    bool neg = peek(p) == '^';
    if (neg)
        p->i++;
    bool any = false;
    for (;;) {
        int b = peek(p);
        if (b < 0) {
            fail(p, "unterminated character class");
            return false;
        }
        if (b == ']' && any) {
            p->i++;
            break;
        }
        if (b == '[' && p->i + 1 < p->n && p->s[p->i + 1] == ':') {
            fail(p, "POSIX class [:name:]");
            return false;
        }
        p->i++;
        any = true;
        if (b == '\\') {
            cls_t t = {0, 0};
            if (!escape(p, t))
                return false;
            c[0] |= t[0];
            c[1] |= t[1];
            continue;
        }
        if (b >= 0x80) {
            fail(p, "non-ASCII character");
            return false;
        }
        if (peek(p) == '-' && p->i + 1 < p->n && p->s[p->i + 1] != ']') {
            p->i++;
            int hi = peek(p);
            p->i++;
            if (hi == '\\' || hi < b || hi >= 0x80) {
                fail(p, "character range");
                return false;
            }
            cls_range(c, b, hi);
        } else {
            cls_add(c, b);
        }
    }
    if (neg)
        cls_invert(c);
    return true;
}

static struct frag parse_alt(struct rp *p);

static struct frag parse_atom(struct rp *p) {
    int b = peek(p);
    p->i++;
    cls_t c = {0, 0};
    switch (b) {
    case '(':
        if (peek(p) == '?') {
            p->i++;
            if (peek(p) != ':')
                return fail(p, peek(p) == '=' || peek(p) == '!' || peek(p) == '<'
                                   ? "lookaround" : "group flags");
            p->i++;
        }
        {
            struct frag f = parse_alt(p);
            if (peek(p) != ')')
                return fail(p, "unbalanced parenthesis");
            p->i++;
            return f;
        }
    case '[':
        if (!parse_class(p, c))
            return fail(p, "character class");
        return new_pos(p, c);
    case '.':
        cls_range(c, 0x20, 0x7e);
        return new_pos(p, c);
    case '\\':
        if (!escape(p, c))
            return fail(p, "escape");
        return new_pos(p, c);
    case '^': case '$':
        return fail(p, "anchor inside the pattern");
    case ')': case '*': case '+': case '?': case '{': case '|':
        return fail(p, "misplaced operator");
    default:
        if (b >= 0x80)
            return fail(p, "non-ASCII character");
        cls_add(c, b);
        return new_pos(p, c);
    }
}

static bool parse_count(struct rp *p, int *lo, int *hi) {
    size_t save = p->i;
    int v = 0, k = 0;
    while (peek(p) >= '0' && peek(p) <= '9' && v < 1000) {
        v = v * 10 + (peek(p) - '0');
        p->i++;
        k++;
    }
    if (!k) {
        p->i = save;
        return false;
    }
    *lo = *hi = v;
    if (peek(p) == ',') {
        p->i++;
        *hi = RE_INF;
        if (peek(p) >= '0' && peek(p) <= '9') {
            *hi = 0;
            while (peek(p) >= '0' && peek(p) <= '9' && *hi < 1000) {
                *hi = *hi * 10 + (peek(p) - '0');
                p->i++;
            }
        }
    }
    if (peek(p) != '}' || *hi < *lo) {
        p->i = save;
        return false;
    }
    p->i++;
    return true;
}

/* Re-parses the atom at [from, to) for another copy of its positions. */
static struct frag reparse(struct rp *p, size_t from, size_t to) {
    struct rp q = *p;
    q.i = from;
    q.n = to;
    struct frag f = parse_atom(&q);
    p->what = q.what;
    return f;
}

static struct frag parse_cat(struct rp *p) {
    struct frag f = {0, 0, true};
    while (!p->what && peek(p) >= 0 && peek(p) != '|' && peek(p) != ')') {
        size_t from = p->i;
        struct frag a = parse_atom(p);
        size_t to = p->i;
        int q = peek(p);
        if (q == '?' || q == '*' || q == '+') {
            p->i++;
            if (q == '?')
                a.nullable = true;
            else
                a = star(p->re, a, q == '*');
        } else if (q == '{') {
            p->i++;
            int lo, hi;
            if (!parse_count(p, &lo, &hi))
                return fail(p, "repetition count");
            struct frag r = {0, 0, true};
            int copies = hi == RE_INF ? (lo > 0 ? lo : 1) : hi;
            for (int k = 0; k < copies && !p->what; k++) {
                struct frag x = k ? reparse(p, from, to) : a;
                if (hi == RE_INF && k == copies - 1)
                    x = star(p->re, x, lo == 0);
                else if (k >= lo)
                    x.nullable = true;
                r = cat(p->re, r, x);
            }
            if (hi == 0)
                r.first = r.last = 0, r.nullable = true;
            a = r;
        } else {
            f = cat(p->re, f, a);
            continue;
        }
        if (peek(p) == '?') /* lazy: same language */
            p->i++;
        f = cat(p->re, f, a);
    }
    return f;
}

static struct frag parse_alt(struct rp *p) {
    struct frag f = parse_cat(p);
    while (!p->what && peek(p) == '|') {
        p->i++;
        struct frag g = parse_cat(p);
        f.first |= g.first;
        f.last |= g.last;
        f.nullable = f.nullable || g.nullable;
    }
    return f;
}

enum dp_status ex__re_compile(struct ex_re *re, const char *pattern, const char **what) {
    memset(re, 0, sizeof *re);
    *what = NULL;
    size_t n = strlen(pattern);
    if (n > EX_RE_MAX_LEN) {
        *what = "pattern longer than 512 bytes";
        return DP_ERR_UNSUPPORTED;
    }
    bool head = n && pattern[0] == '^';
    bool tail = n > (size_t)head && pattern[n - 1] == '$' &&
                !(n >= 2 && pattern[n - 2] == '\\' && (n < 3 || pattern[n - 3] != '\\'));
    struct rp p = {.s = pattern, .i = head, .n = tail ? n - 1 : n, .re = re};
    cls_t any = {0, 0};
    cls_range(any, 0x20, 0x7e);
    struct frag f = {0, 0, true};
    if (!head)
        f = star(re, new_pos(&p, any), true);
    struct frag body = parse_alt(&p);
    if (!p.what && p.i != p.n)
        fail(&p, "unbalanced parenthesis");
    f = cat(re, f, body);
    if (!tail)
        f = cat(re, f, star(re, new_pos(&p, any), true));
    if (p.what) {
        *what = p.what;
        return DP_ERR_UNSUPPORTED;
    }
    re->first = f.first;
    re->last = f.last;
    re->nullable = f.nullable;
    for (int k = 0; k <= EX_RE_MAX_POS; k++)
        re->dist[k] = RE_INF;
    for (int k = 0; k < re->n_pos; k++)
        if ((re->last >> k) & 1)
            re->dist[k] = 0;
    for (bool changed = true; changed;) {
        changed = false;
        for (int k = 0; k < re->n_pos; k++)
            for (int j = 0; j < re->n_pos; j++)
                if (((re->follow[k] >> j) & 1) && re->dist[j] + 1 < re->dist[k]) {
                    re->dist[k] = re->dist[j] + 1;
                    changed = true;
                }
    }
    int d = re->nullable ? 0 : RE_INF;
    for (int j = 0; j < re->n_pos; j++)
        if (((re->first >> j) & 1) && re->dist[j] + 1 < d)
            d = re->dist[j] + 1;
    re->dist[EX_RE_MAX_POS] = d;
    if (d >= RE_INF) {
        *what = "a pattern no printable ASCII string matches";
        return DP_ERR_UNSUPPORTED;
    }
    return DP_OK;
}

uint64_t ex__re_step(const struct ex_re *re, uint64_t set, uint8_t b) {
    if (b >= 128)
        return 0;
    uint64_t next = (set & EX_RE_START) ? re->first : 0;
    uint64_t s = set & ~EX_RE_START;
    while (s) {
        int k = __builtin_ctzll(s);
        s &= s - 1;
        next |= re->follow[k];
    }
    return next & re->match[b];
}

bool ex__re_accepts(const struct ex_re *re, uint64_t set) {
    return ((set & EX_RE_START) && re->nullable) || (set & re->last);
}

int ex__re_dist(const struct ex_re *re, uint64_t set) {
    int d = (set & EX_RE_START) ? re->dist[EX_RE_MAX_POS] : RE_INF;
    uint64_t s = set & ~EX_RE_START;
    while (s) {
        int k = __builtin_ctzll(s);
        s &= s - 1;
        d = re->dist[k] < d ? re->dist[k] : d;
    }
    return d;
}
