#!/bin/sh
# checksrc-style bans (STYLE.md §3): no printf/fprintf/puts or exit() in library code
# (model/, extractors/, schemas/, docproc/{base,ingest,out,batch}), no atoi/atof/sprintf/strncpy
# anywhere; no source file over 800 lines. Prints "N passed, N failed".
root=${DP_SOURCE_DIR:-.}
passed=0 failed=0
check() { # description, pattern, dirs...
    desc=$1 pat=$2
    shift 2
    hits=$(grep -rnE --include='*.c' --include='*.h' "$pat" "$@" 2>/dev/null | grep -v 'check_style: allow')
    if [ -n "$hits" ]; then
        echo "FAIL: $desc"
        echo "$hits"
        failed=$((failed + 1))
    else
        passed=$((passed + 1))
    fi
}
lib="$root/model $root/extractors $root/schemas $root/docproc/base $root/docproc/ingest $root/docproc/out $root/docproc/batch"
# shellcheck disable=SC2086
check "printf to stdout/stderr in library code" '(^|[^a-z_])(printf|fprintf|vfprintf|puts|fputs)[[:space:]]*\(' $lib
# shellcheck disable=SC2086
check "exit() outside docproc/cli/main.c" '(^|[^a-z_])(exit|_exit|abort)[[:space:]]*\(' $lib
check "banned functions (atoi, atof, atol, sprintf, vsprintf, strncpy, gets)" \
    '(^|[^a-z_])(atoi|atof|atol|sprintf|vsprintf|strncpy|gets)[[:space:]]*\(' \
    "$root/model" "$root/extractors" "$root/schemas" "$root/docproc"
# STYLE 2.3 / #18: no C source or header over DP_MAX_SOURCE_LINES lines
DP_MAX_SOURCE_LINES=800
long=$(find "$root/model" "$root/extractors" "$root/schemas" "$root/docproc" "$root/tests" \
    \( -name '*.c' -o -name '*.h' \) -exec wc -l {} + 2>/dev/null |
    awk -v max=$DP_MAX_SOURCE_LINES '$2 != "total" && $1 > max { print $2 ": " $1 " lines" }')
if [ -n "$long" ]; then
    echo "FAIL: source files over $DP_MAX_SOURCE_LINES lines (split them by responsibility)"
    echo "$long"
    failed=$((failed + 1))
else
    passed=$((passed + 1))
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
