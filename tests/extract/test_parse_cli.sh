#!/bin/sh
# docproc parse on real model answers: exit codes, --help, JSON/XML/CSV output, boxes mapped back.
# Env: DP_BIN (docproc), DP_SOURCE_DIR. Prints "N passed, N failed".
bin=${DP_BIN:?} src=${DP_SOURCE_DIR:?}
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }
expect_rc() { # want, description, command...
    want=$1 desc=$2
    shift 2
    "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ "$rc" -eq "$want" ]; then ok; else bad "$desc: exit $rc, want $want"; cat "$tmp/err"; fi
}
# The QwenVL HTML answer (line 1 of the JSONL) as a raw file, without python: sed on the fixture.
cat >"$tmp/html.txt" <<'HTML'
```html
<html><body>
<h2 data-bbox="310 94 658 132">Qwen2.5 Technical Report</h2>
<table data-bbox="10 10 500 300"><tr><th>k</th><th>v</th></tr><tr><td>a, b</td><td rowspan="2">"q"</td></tr><tr><td>c</td></tr></table>
</body></html>
```
HTML
expect_rc 0 "--help" "$bin" parse --help
grep -q -- "--schema NAME|FILE" "$tmp/out" && ok || bad "help text"
expect_rc 2 "no schema" "$bin" parse "$tmp/html.txt"
expect_rc 2 "bad option" "$bin" parse --schema layout --bogus "$tmp/html.txt"
expect_rc 2 "bad size" "$bin" parse --schema layout --model-size 10y20 "$tmp/html.txt"
expect_rc 2 "bad format" "$bin" parse --schema layout --format pdf "$tmp/html.txt"
expect_rc 3 "unknown schema" "$bin" parse --schema nosuch "$tmp/html.txt"
expect_rc 6 "missing input" "$bin" parse --schema layout "$tmp/none.txt"
expect_rc 0 "json" "$bin" parse --schema layout --model-size 1008x1540 --page-size 1014x1532 "$tmp/html.txt"
grep -q '"page_px": \[311.85, 93.51, 661.92, 131.31\]' "$tmp/out" && ok || bad "mapped box in JSON"
expect_rc 0 "xml" "$bin" parse --schema layout --model-size 1008x1540 --page-size 1014x1532 --pdf-size 612x792 --format xml "$tmp/html.txt"
grep -q '<bbox space="pdf-pt"' "$tmp/out" && ok || bad "pdf box in XML"
if command -v xmllint >/dev/null 2>&1; then
    xmllint --noout --schema "$src/schemas/docproc-result.xsd" "$tmp/out" 2>/dev/null && ok || bad "xmllint XSD"
fi
expect_rc 0 "csv" "$bin" parse --schema table --format csv "$tmp/html.txt"
printf 'k,v\r\n"a, b","""q"""\r\nc,"""q"""\r\n' >"$tmp/want.csv"
cmp -s "$tmp/out" "$tmp/want.csv" && ok || { bad "csv repeat"; od -c "$tmp/out" | head; }
expect_rc 0 "csv empty spans" "$bin" parse --schema table --format csv --csv-spans empty "$tmp/html.txt"
printf 'k,v\r\n"a, b","""q"""\r\nc,\r\n' >"$tmp/want.csv"
cmp -s "$tmp/out" "$tmp/want.csv" && ok || bad "csv empty"
printf 'Here you go:\n```json\n{"company": "ACME", "total": "RM8.75",}\n' >"$tmp/kie.txt"
expect_rc 0 "stdin + user schema file" sh -c "'$bin' parse -v --truncated --schema '$src/tests/extract/schemas/sroie.json' - <'$tmp/kie.txt'"
grep -q '"currency": "MYR"' "$tmp/out" && ok || bad "amount currency"
grep -q '"truncated": true' "$tmp/out" && ok || bad "truncated flag"
grep -q 'required' "$tmp/err" && ok || bad "warnings on stderr with -v"
DOCPROC_SCHEMAS="$src/tests/extract/schemas" "$bin" parse --schema ticket "$tmp/kie.txt" >/dev/null 2>&1 && ok || bad "DOCPROC_SCHEMAS"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
