#!/bin/sh
# Named test cases (tests/harness/t.h), one at a time from the command line: `--list` prints the
# case names and runs none, `--case NAME` runs that case only (its checks alone), `--case` twice
# runs both, an unknown NAME fails. Checked on test_t_cases (whose cases print what ran), then on
# each extractor test main given after it: every listed case runs alone, passes, and runs fewer
# checks than the whole main.
# Usage: test_t_select.sh TEST_T_CASES [TEST_MAIN...]
set -u
T=${1:?usage: test_t_select.sh TEST_T_CASES [TEST_MAIN...]}
shift
failed=0 passed=0
ok() { passed=$((passed + 1)); }
bad() {
    echo "FAIL: $*"
    failed=$((failed + 1))
}
# "N passed, N failed" -> N passed
passes() { sed -n 's/^\([0-9]*\) passed, [0-9]* failed$/\1/p' | tail -n 1; }

out=$("$T" --list) || bad "--list exited $?"
[ "$out" = "$(printf 'alpha\nbeta\ngamma')" ] && ok || bad "--list printed '$out'"
out=$("$T" --case beta) || bad "--case beta exited $?"
[ "$(echo "$out" | grep '^ran ')" = "ran beta" ] && ok || bad "--case beta ran: $out"
[ "$(echo "$out" | passes)" = 2 ] && ok || bad "--case beta: expected beta's 2 checks: $out"
out=$("$T" --case=gamma --case alpha) || bad "--case=gamma --case alpha exited $?"
[ "$(echo "$out" | grep '^ran ' | tr '\n' ' ')" = "ran alpha ran gamma " ] && ok ||
    bad "two cases ran: $out"
[ "$(echo "$out" | passes)" = 4 ] && ok || bad "alpha + gamma: expected 4 checks: $out"
out=$("$T") || bad "all cases exited $?"
[ "$(echo "$out" | passes)" = 6 ] && ok || bad "all cases: expected 6 checks: $out"
if out=$("$T" --case nosuch 2>&1); then bad "--case nosuch passed: $out"; else ok; fi
echo "$out" | grep -q "no case named 'nosuch'" && ok || bad "--case nosuch: $out"
echo "$out" | grep -q '^ran ' && bad "--case nosuch ran a case: $out" || ok

for m in "$@"; do
    name=$(basename "$m")
    all=$("$m" 2>&1 | passes)
    cases=$("$m" --list) || bad "$name --list exited $?"
    [ -n "$cases" ] && ok || bad "$name lists no case"
    [ "$(echo "$cases" | sort | uniq -d)" = "" ] && ok || bad "$name: duplicate case names"
    for c in $cases; do
        out=$("$m" --case "$c" 2>&1) || bad "$name --case $c exited $?: $(echo "$out" | tail -n 3)"
        [ "$(echo "$out" | grep '^case ')" = "case $c" ] && ok || bad "$name --case $c ran: $(echo "$out" | grep '^case ')"
        n=$(echo "$out" | passes)
        [ "${n:-0}" -gt 0 ] && [ "${n:-0}" -lt "${all:-0}" ] && ok ||
            bad "$name --case $c: $n checks of $all"
    done
    if out=$("$m" --case no_such_case 2>&1); then bad "$name --case no_such_case passed"; else ok; fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
