/* The harness's named cases (t.h): three cases that each print "ran NAME" and pass a known
 * number of checks (alpha 1, beta 2, gamma 3), so test_t_select.sh can tell from the output
 * exactly which cases a --case selection ran, that --list runs none, and that an unknown name
 * fails. */
#include "t.h"

static void alpha(void) {
    printf("ran alpha\n");
    T_CHECK(1);
}

static void beta(void) {
    printf("ran beta\n");
    T_CHECK(1);
    T_CHECK(2);
}

int main(int argc, char **argv) {
    argc = t_args(argc, argv);
    T_RUN(alpha);
    T_RUN(beta);
    T_RUN_AS(gamma, printf("ran gamma\n"); T_CHECK(argc == 1); T_EQ_I64(argc, 1); T_CHECK(3));
    return t_done();
}
