/* Typed normalisation: every grouping convention, currencies, dates with ambiguity reported,
 * percentages. */
#include "ex_impl.h"
#include "t.h"

static void num(const char *s, double want) {
    double v = -999;
    T_CHECK_MSG(ex_norm_number(s, &v) && fabs(v - want) < 1e-9, "number '%s' -> %g, want %g", s, v, want);
}

static void amt(const char *s, double want, const char *cur) {
    double v = -999;
    char c[4] = "?";
    T_CHECK_MSG(ex_norm_amount(s, &v, c) && fabs(v - want) < 1e-9 && !strcmp(c, cur),
                "amount '%s' -> %g %s, want %g %s", s, v, c, want, cur);
}

static void date(const char *s, const char *want, const char *alt) {
    char iso[11] = "", a[11] = "";
    bool amb = false;
    T_CHECK_MSG(ex_norm_date(s, iso, a, &amb) && !strcmp(iso, want), "date '%s' -> %s, want %s", s, iso, want);
    T_CHECK_MSG(amb == (alt != NULL) && (!alt || !strcmp(a, alt)), "date '%s' ambiguity: %d %s", s, amb, a);
}

static void numbers(void) {
    num("1,234.56", 1234.56);
    num("1.234,56", 1234.56);
    num("1 234,56", 1234.56);
    num("1'234.56", 1234.56);
    num("1\xe2\x80\x99" "234.56", 1234.56);
    num("1\xc2\xa0" "234", 1234);
    num("1 234 567", 1234567);
    num("12,345,678.9", 12345678.9);
    num("1.234.567,89", 1234567.89);
    num("-12", -12);
    num("(12.00)", -12);
    num("12.00-", -12);
    num("\xe2\x88\x92" "3.5", -3.5);
    num("0,5", 0.5);
    num("0,500", 0.5);
    num("1,234", 1234);
    num("1.5", 1.5);
    num("  42  ", 42);
    double v;
    T_CHECK(!ex_norm_number("abc", &v));
    T_CHECK(!ex_norm_number("", &v));
    T_CHECK(!ex_norm_number("12abc", &v));
    T_CHECK(!ex_norm_number("1.2,3.4", &v));
}

static void amounts(void) {
    double v;
    amt("RM8.75", 8.75, "MYR");
    amt("-RM0.01", -0.01, "MYR");
    amt("RM -0.01", -0.01, "MYR");
    amt("\xe2\x82\xac 1.234,50", 1234.5, "EUR");
    amt("1 234,56 \xe2\x82\xac", 1234.56, "EUR");
    amt("USD 5", 5, "USD");
    amt("5 usd", 5, "USD");
    amt("$1,299.00", 1299, "USD");
    amt("US$ 12", 12, "USD");
    amt("IDR 17.000", 17000, "IDR");
    amt("Rp 17.000", 17000, "IDR");
    amt("\xc2\xa5" "100", 100, "");
    amt("12 CHF", 12, "CHF");
    amt("17,000", 17000, "");
    amt("8.76", 8.76, "");
    T_CHECK(!ex_norm_amount("8.00<\xe5\x85\xa8>", &v, (char[4]){0}));
    T_CHECK(!ex_norm_amount("RM", &v, (char[4]){0}));
}

static void currencies(void) {
    char c[4];
    T_CHECK(ex_norm_currency("$", c) && !strcmp(c, "USD"));
    T_CHECK(ex_norm_currency("RM", c) && !strcmp(c, "MYR"));
    T_CHECK(ex_norm_currency("eur", c) && !strcmp(c, "EUR"));
    T_CHECK(ex_norm_currency("\xe2\x82\xac", c) && !strcmp(c, "EUR"));
    T_CHECK(!ex_norm_currency("dollars", c));
}

static void dates(void) {
    date("2024-03-04", "2024-03-04", NULL);
    date("2024/3/4", "2024-03-04", NULL);
    date("03/04/2024", "2024-03-04", "2024-04-03");
    date("04.03.2024", "2024-03-04", "2024-04-03");
    date("04-03-2024", "2024-03-04", "2024-04-03");
    date("13/04/2024", "2024-04-13", NULL);
    date("04/13/2024", "2024-04-13", NULL);
    date("3/3/24", "2024-03-03", NULL);
    date("01 Jun 2018", "2018-06-01", NULL);
    date("01 Jun 2018 18:41", "2018-06-01", NULL);
    date("June 1, 2018", "2018-06-01", NULL);
    date("Tuesday, 5th March 2024", "2024-03-05", NULL);
    date("2018 Jun 01", "2018-06-01", NULL);
    date("2013\xe5\xb9\xb4" "06\xe6\x9c\x88" "29\xe6\x97\xa5", "2013-06-29", NULL);
    date("20240229", "2024-02-29", NULL);
    date("Date: 2013-06-29", "2013-06-29", NULL);
    char iso[11], alt[11];
    bool amb;
    T_CHECK(!ex_norm_date("2023-02-29", iso, alt, &amb));
    T_CHECK(!ex_norm_date("31/31/2020", iso, alt, &amb));
    T_CHECK(!ex_norm_date("hello", iso, alt, &amb));
    T_CHECK(!ex_norm_date("12:30", iso, alt, &amb));
}

static void percents(void) {
    double v;
    T_CHECK(ex_norm_percent("12.5%", &v) && v == 12.5);
    T_CHECK(ex_norm_percent("12,5 %", &v) && v == 12.5);
    T_CHECK(!ex_norm_percent("12.5", &v));
}

int main(int argc, char **argv) {
    t_args(argc, argv);
    T_RUN(numbers);
    T_RUN(amounts);
    T_RUN(currencies);
    T_RUN(dates);
    T_RUN(percents);
    return t_done();
}
