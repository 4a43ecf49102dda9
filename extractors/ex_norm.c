/* Typed normalisation of values read from model answers (ex.h): numbers in every grouping
 * convention, money with currency symbols or ISO 4217 codes, dates to ISO 8601 with day/month
 * ambiguity reported (never guessed silently), percentages; and the typing of one field against
 * its schema entry. Conventions chosen where text alone is ambiguous are in docs/extraction.md.
 * Thread-safe: pure functions over constant tables. */
#include "ex_impl.h"
#include "dp_alloc.h"

#include <glib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define EX_NUM_MAX_CHARS 64
#define EX_DATE_MAX_TOKENS 8
#define EX_YEAR_MIN 1000
#define EX_YEAR_MAX 9999
#define EX_TWO_DIGIT_PIVOT 70 /* 00-69 -> 20xx, 70-99 -> 19xx */
#define EX_DIGITS_GROUP 3

/* ---- numbers ------------------------------------------------------------------------------- */

/* Skips one "space-like" character (ASCII space, NBSP, thin/narrow spaces); returns its length. */
static size_t space_len(const char *s) {
    if (*s == ' ' || *s == '\t')
        return 1;
    if ((unsigned char)s[0] == 0xC2 && (unsigned char)s[1] == 0xA0)
        return 2; /* U+00A0 */
    if ((unsigned char)s[0] == 0xE2 && (unsigned char)s[1] == 0x80 &&
        ((unsigned char)s[2] == 0x89 || (unsigned char)s[2] == 0xAF))
        return 3; /* U+2009, U+202F */
    return 0;
}

/* Core number parser. dot_groups: a single '.' followed by exactly three digits is grouping
 * (zero-decimal currencies such as IDR write 17.000). */
static bool parse_number(const char *text, bool dot_groups, double *out) {
    char digits[EX_NUM_MAX_CHARS + 2];
    size_t nd = 0;
    bool neg = false, any = false;
    const char *s = text;
    while (*s && space_len(s))
        s += space_len(s);
    if (*s == '(') {
        neg = true;
        s++;
    }
    if (*s == '-' || *s == '+') {
        neg = neg || *s == '-';
        s++;
    } else if ((unsigned char)s[0] == 0xE2 && (unsigned char)s[1] == 0x88 &&
               (unsigned char)s[2] == 0x92) {
        neg = true; /* U+2212 minus sign */
        s += 3;
    }
    /* Collect digits and separators, remembering the separators' kinds and positions. */
    int n_dot = 0, n_comma = 0;
    long last_dot = -1, last_comma = -1;
    char seq[EX_NUM_MAX_CHARS + 2]; /* digits plus '.', ',', 'g' (other grouping) */
    size_t ns = 0;
    for (; *s; s++) {
        size_t sp = space_len(s);
        char c = *s;
        if (c >= '0' && c <= '9') {
            any = true;
        } else if (c == '.') {
            n_dot++, last_dot = (long)ns;
        } else if (c == ',') {
            n_comma++, last_comma = (long)ns;
        } else if (c == '\'' || sp) {
            c = 'g';
            if (sp)
                s += sp - 1;
        } else if ((unsigned char)s[0] == 0xE2 && (unsigned char)s[1] == 0x80 &&
                   (unsigned char)s[2] == 0x99) {
            c = 'g', s += 2; /* U+2019 apostrophe (Swiss grouping) */
        } else {
            break;
        }
        if (ns >= EX_NUM_MAX_CHARS)
            return false;
        seq[ns++] = c;
    }
    while (ns > 0 && seq[ns - 1] == 'g')
        ns--; /* trailing spaces */
    while (*s && space_len(s))
        s += space_len(s);
    if (*s == ')' && neg)
        s++;
    else if (*s == '-') {
        neg = true; /* "12.00-" */
        s++;
    }
    while (*s && space_len(s))
        s += space_len(s);
    if (*s || !any || ns == 0)
        return false;
    if (seq[ns - 1] == '.' || seq[ns - 1] == ',')
        ns--; /* "12." */
    /* Which separator is the decimal point? */
    char dec = 0;
    if (n_dot && n_comma) {
        dec = last_dot > last_comma ? '.' : ',';
        if ((dec == '.' && n_dot > 1) || (dec == ',' && n_comma > 1))
            return false;
    } else if (n_dot == 1 || n_comma == 1) {
        char sep = n_dot ? '.' : ',';
        long at = n_dot ? last_dot : last_comma;
        size_t after = ns - (size_t)at - 1;
        bool three = after == EX_DIGITS_GROUP && at > 0 && !(at == 1 && seq[0] == '0');
        if (sep == ',')
            dec = three ? 0 : ',';
        else
            dec = three && dot_groups ? 0 : '.';
    }
    for (size_t i = 0; i < ns; i++) {
        char c = seq[i];
        if (c >= '0' && c <= '9')
            digits[nd++] = c;
        else if (c == dec)
            digits[nd++] = '.';
    }
    digits[nd] = '\0';
    if (nd == 0 || (nd == 1 && digits[0] == '.'))
        return false;
    char *end;
    double v = g_ascii_strtod(digits, &end);
    if (*end || !isfinite(v))
        return false;
    *out = neg ? -v : v;
    return true;
}

bool ex_norm_number(const char *text, double *out) {
    return parse_number(text, false, out);
}

/* ---- currencies ---------------------------------------------------------------------------- */

static const struct {
    const char *sym;
    const char *code;
} SYMBOLS[] = {
    /* longest first so "US$" wins over "$" */
    {"US$", "USD"}, {"HK$", "HKD"}, {"NZ$", "NZD"}, {"A$", "AUD"}, {"C$", "CAD"},
    {"S$", "SGD"},  {"R$", "BRL"},  {"RM", "MYR"},  {"Rp", "IDR"}, {"Rs.", "INR"},
    {"Rs", "INR"},  {"kr", ""},     {"zł", "PLN"},  {"Kč", "CZK"}, {"$", "USD"},
    {"€", "EUR"},   {"£", "GBP"},   {"₹", "INR"},   {"₩", "KRW"},  {"₫", "VND"},
    {"₽", "RUB"},   {"₺", "TRY"},   {"₪", "ILS"},   {"฿", "THB"},  {"₱", "PHP"},
    {"￥", "CNY"},  {"元", "CNY"},  {"円", "JPY"},  {"¥", ""},     {"Fr.", "CHF"},
};

static const char *const ISO4217[] = {
    "AED", "ARS", "AUD", "BDT", "BGN", "BHD", "BRL", "CAD", "CHF", "CLP", "CNY", "COP", "CZK",
    "DKK", "EGP", "EUR", "GBP", "HKD", "HUF", "IDR", "ILS", "INR", "ISK", "JPY", "KES", "KRW",
    "KWD", "LKR", "MAD", "MXN", "MYR", "NGN", "NOK", "NZD", "OMR", "PEN", "PHP", "PKR", "PLN",
    "QAR", "RON", "RSD", "RUB", "SAR", "SEK", "SGD", "THB", "TND", "TRY", "TWD", "UAH", "USD",
    "VND", "ZAR", "RMB",
};

/* Currencies written without decimals, where "17.000" means seventeen thousand. */
static const char *const ZERO_DECIMAL[] = {"IDR", "JPY", "KRW", "VND", "CLP", "ISK", "HUF"};

static bool in_list(const char *const *list, size_t n, const char *code) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(list[i], code))
            return true;
    return false;
}

/* Finds a currency token at the start or end of s; sets the ISO code ("" when the symbol does not
 * identify one) and returns the token's [start, end) or false. */
static bool find_currency(const char *s, size_t *ts, size_t *te, char code[4]) {
    size_t n = strlen(s), a = 0, b = n;
    while (a < n && (s[a] == ' ' || s[a] == '-' || s[a] == '('))
        a++;
    while (b > a && (s[b - 1] == ' ' || s[b - 1] == ')' || s[b - 1] == '-'))
        b--;
    /* ISO code: three ASCII letters at either end (uppercased). */
    for (int end = 0; end < 2; end++) {
        size_t at = end ? b - 3 : a;
        if (b - a < 3)
            break;
        char c[4] = {0};
        for (int i = 0; i < 3; i++)
            c[i] = g_ascii_toupper(s[at + (size_t)i]);
        bool letters = g_ascii_isalpha(s[at]) && g_ascii_isalpha(s[at + 1]) && g_ascii_isalpha(s[at + 2]);
        bool bounded = end ? (at == a || !g_ascii_isalpha(s[at - 1])) : (at + 3 >= b || !g_ascii_isalpha(s[at + 3]));
        if (letters && bounded && in_list(ISO4217, sizeof ISO4217 / sizeof *ISO4217, c)) {
            memcpy(code, !strcmp(c, "RMB") ? "CNY" : c, 4);
            *ts = at;
            *te = at + 3;
            return true;
        }
    }
    for (size_t i = 0; i < sizeof SYMBOLS / sizeof *SYMBOLS; i++) {
        size_t l = strlen(SYMBOLS[i].sym);
        if (b - a >= l && !strncmp(s + a, SYMBOLS[i].sym, l)) {
            *ts = a, *te = a + l;
        } else if (b - a >= l && !strncmp(s + b - l, SYMBOLS[i].sym, l)) {
            *ts = b - l, *te = b;
        } else {
            continue;
        }
        memcpy(code, SYMBOLS[i].code, strlen(SYMBOLS[i].code) + 1);
        return true;
    }
    return false;
}

bool ex_norm_currency(const char *text, char code[4]) {
    size_t ts, te;
    code[0] = '\0';
    char *t = g_strstrip(g_strdup(text));
    bool ok = t && find_currency(t, &ts, &te, code) && code[0];
    g_free(t);
    if (!ok)
        code[0] = '\0';
    return ok;
}

bool ex_norm_amount(const char *text, double *out, char currency[4]) {
    currency[0] = '\0';
    size_t n = strlen(text);
    if (n > EX_NUM_MAX_CHARS * 2)
        return false;
    char buf[EX_NUM_MAX_CHARS * 2 + 1];
    memcpy(buf, text, n + 1);
    size_t ts, te;
    if (find_currency(buf, &ts, &te, currency))
        memset(buf + ts, ' ', te - ts); /* the symbol becomes a space; the sign stays */
    bool zero_dec = currency[0] && in_list(ZERO_DECIMAL, sizeof ZERO_DECIMAL / sizeof *ZERO_DECIMAL,
                                           currency);
    /* "-RM0.01" and "RM -0.01" both leave a sign then spaces: squeeze them. */
    char sq[sizeof buf];
    size_t o = 0;
    for (size_t i = 0; buf[i]; i++)
        if (!(buf[i] == ' ' && (o == 0 || sq[o - 1] == '-' || sq[o - 1] == '(')))
            sq[o++] = buf[i];
    sq[o] = '\0';
    return parse_number(sq, zero_dec, out);
}

bool ex_norm_percent(const char *text, double *out) {
    char buf[EX_NUM_MAX_CHARS + 1];
    size_t n = strlen(text);
    if (n > EX_NUM_MAX_CHARS)
        return false;
    memcpy(buf, text, n + 1);
    char *pct = strchr(buf, '%');
    if (!pct)
        return false;
    *pct = ' ';
    return parse_number(buf, false, out);
}

/* ---- dates --------------------------------------------------------------------------------- */

static const char *const MONTHS[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                     "jul", "aug", "sep", "oct", "nov", "dec"};

static int days_in(int y, int m) {
    static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : d[m - 1];
}

static bool ymd_ok(int y, int m, int d) {
    return y >= EX_YEAR_MIN && y <= EX_YEAR_MAX && m >= 1 && m <= 12 && d >= 1 && d <= days_in(y, m);
}

/* Callers pass a validated date (ymd_ok), so every part fits its width. */
static void ymd_fmt(char iso[11], int y, int m, int d) {
    const int parts[3] = {y, m, d}, width[3] = {4, 2, 2};
    size_t o = 0;
    for (int i = 0; i < 3; i++) {
        if (i)
            iso[o++] = '-';
        for (int k = width[i] - 1, v = parts[i]; k >= 0; k--, v /= 10)
            iso[o + (size_t)k] = (char)('0' + v % 10);
        o += (size_t)width[i];
    }
    iso[o] = '\0';
}

struct dtok {
    bool word;
    long num;
    int ndigits;
    int month; /* 1..12 for month words */
};

static int year_of(const struct dtok *t) {
    if (t->ndigits == 2)
        return (int)(t->num < EX_TWO_DIGIT_PIVOT ? 2000 + t->num : 1900 + t->num);
    return (int)t->num;
}

bool ex_norm_date(const char *text, char iso[11], char alt[11], bool *ambiguous) {
    *ambiguous = false;
    if (alt)
        alt[0] = '\0';
    struct dtok tok[EX_DATE_MAX_TOKENS];
    int nt = 0, month_word = -1;
    char sep = 0; /* first separator between numbers */
    const char *s = text;
    while (*s) {
        if (g_ascii_isdigit(*s)) {
            long v = 0;
            int nd = 0;
            while (g_ascii_isdigit(*s)) {
                if (nd < 9)
                    v = v * 10 + (*s - '0');
                nd++;
                s++;
            }
            if (*s == ':' && g_ascii_isdigit(s[1])) { /* a time: skip h:mm[:ss] [am|pm] */
                while (g_ascii_isdigit(*s) || *s == ':' || *s == '.')
                    s++;
                continue;
            }
            if (nt >= EX_DATE_MAX_TOKENS)
                return false;
            tok[nt++] = (struct dtok){.num = v, .ndigits = nd};
            if (!sep && nt == 1 && (*s == '/' || *s == '-' || *s == '.'))
                sep = *s;
        } else if (g_ascii_isalpha(*s)) {
            const char *w = s;
            while (g_ascii_isalpha(*s))
                s++;
            size_t wl = (size_t)(s - w);
            for (int m = 0; m < 12 && wl >= 3; m++) {
                if (!g_ascii_strncasecmp(w, MONTHS[m], 3)) {
                    if (nt >= EX_DATE_MAX_TOKENS || month_word >= 0)
                        return false;
                    month_word = nt;
                    tok[nt++] = (struct dtok){.word = true, .month = m + 1};
                    break;
                }
            }
            /* Other words (weekdays, ordinals, "Date:", am/pm) are ignored. */
        } else {
            s++;
        }
    }
    int y, m, d;
    if (month_word >= 0) {
        int nums[2], k = 0;
        for (int i = 0; i < nt; i++)
            if (!tok[i].word && k < 2)
                nums[k++] = i;
        if (k != 2)
            return false;
        struct dtok *a = &tok[nums[0]], *b = &tok[nums[1]];
        m = tok[month_word].month;
        if (a->ndigits == 4 || a->num > 31)
            y = year_of(a), d = (int)b->num;
        else
            d = (int)a->num, y = year_of(b);
        if (!ymd_ok(y, m, d))
            return false;
        ymd_fmt(iso, y, m, d);
        return true;
    }
    if (nt == 1 && tok[0].ndigits == 8) { /* YYYYMMDD */
        long v = tok[0].num;
        y = (int)(v / 10000), m = (int)(v / 100 % 100), d = (int)(v % 100);
        if (!ymd_ok(y, m, d))
            return false;
        ymd_fmt(iso, y, m, d);
        return true;
    }
    if (nt != 3)
        return false;
    if (tok[0].ndigits == 4 || tok[0].num > 31) { /* Y M D (ISO, CJK 年月日) */
        y = year_of(&tok[0]), m = (int)tok[1].num, d = (int)tok[2].num;
        if (!ymd_ok(y, m, d))
            return false;
        ymd_fmt(iso, y, m, d);
        return true;
    }
    y = year_of(&tok[2]);
    if (tok[2].ndigits != 2 && tok[2].ndigits != 4)
        return false;
    int p = (int)tok[0].num, q = (int)tok[1].num;
    /* Day first for '.' and '-' (most of the world), month first for '/' (US invoices). */
    bool month_first = sep == '/';
    int m1 = month_first ? p : q, d1 = month_first ? q : p;
    int m2 = d1, d2 = m1;
    bool ok1 = ymd_ok(y, m1, d1), ok2 = ymd_ok(y, m2, d2);
    if (ok1)
        ymd_fmt(iso, y, m1, d1);
    else if (ok2)
        ymd_fmt(iso, y, m2, d2);
    else
        return false;
    if (ok1 && ok2 && p != q) {
        *ambiguous = true;
        if (alt)
            ymd_fmt(alt, y, m2, d2);
    }
    return true;
}
