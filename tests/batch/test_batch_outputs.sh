#!/bin/sh
# Results and files a user can trust (issue #15), without the model (--from-raw): validation
# (--strict fails an invalid document; by default "valid": false with the reasons), CSV safe
# against formula injection (--csv-safe, default on), --csv-spans and --csv-bom accepted by
# extract, batch and tables.
. "$(dirname "$0")/lib.sh"
unset OPENBLAS_CORETYPE # a narrower kernel family only adds a warning to stderr
not() { ! "$@"; }
RAW=$SRC/samples/raw

# ---- 13. validation ---------------------------------------------------------------------------
"$BIN" extract --from-raw "$RAW" --schema invoice >"$T/v.jsonl" 2>/dev/null
check "invalid results are ok by default (exit 0)" [ $? -eq 0 ]
check "an invalid result says \"valid\":false" grep -q '"valid":false' "$T/v.jsonl"
check "... with its reasons" grep -q '"invalid_reasons":\["invoice_id: required field' "$T/v.jsonl"
"$BIN" extract --from-raw "$RAW" --schema invoice --strict -o "$T/s" >/dev/null 2>"$T/s.err"
check "--strict: invalid documents fail (exit 1)" [ $? -eq 1 ]
check "--strict: the failure code" grep -q '"code": "validation failed"' "$T/s/manifest.json"
check "--strict: the reason names the field" grep -q -- "--strict: invoice_id: required field" "$T/s.err"
check "--strict: no result written for a failed document" [ -z "$(find "$T/s" -name result.json)" ]
"$BIN" extract --from-raw "$RAW" --schema layout --strict >"$T/l.jsonl" 2>/dev/null
check "--strict: valid documents stay ok (exit 0)" [ $? -eq 0 ]
check "a valid result says \"valid\":true" grep -q '"valid":true,"invalid_reasons":\[\]' "$T/l.jsonl"

# ---- 14. CSV ----------------------------------------------------------------------------------
mkdir -p "$T/raw"
cp -r "$RAW/docparsing_example5-document_parsing" "$T/raw/inj"
printf '%s' '<table><tr><th>Item</th><th>Note</th><th>Amount</th></tr><tr><td>=HYPERLINK("http://x")</td><td>@SUM(A1)</td><td>-12.50</td></tr><tr><td rowspan="2">+cmd</td><td>-1+2</td><td>3</td></tr><tr><td>x</td><td>4</td></tr></table>' \
    >"$T/raw/inj/raw/page-0001.txt"
"$BIN" extract --from-raw "$T/raw" --schema table -o "$T/c1" --format csv >/dev/null 2>&1
check "extract --format csv exits 0" [ $? -eq 0 ]
csv=$(find "$T/c1" -name '*.csv' | head -n 1)
check "formula cells prefixed with ' (= @ +)" \
    grep -q "^\"'=HYPERLINK(\"\"http://x\"\")\",\"'@SUM(A1)\",-12.50" "$csv"
check "a cell starting with - that is not a number prefixed" grep -q "\"'-1+2\"" "$csv"
check "negative numbers stay numbers" grep -q ',-12.50' "$csv"
check "spans repeated by default" [ "$(grep -c "'+cmd" "$csv")" -eq 2 ]
"$BIN" extract --from-raw "$T/raw" --schema table -o "$T/c2" --format csv --csv-safe=no \
    --csv-spans empty --csv-bom >/dev/null 2>&1
check "extract --csv-safe=no --csv-spans empty --csv-bom exits 0" [ $? -eq 0 ]
csv2=$(find "$T/c2" -name '*.csv' | head -n 1)
check "--csv-safe=no: cells as written" grep -q '=HYPERLINK(""http://x"")",@SUM(A1),-12.50' "$csv2"
check "--csv-spans empty: the covered cell empty" [ "$(grep -c '+cmd' "$csv2")" -eq 1 ]
check "--csv-bom: the file starts with the UTF-8 BOM" \
    [ "$(head -c 3 "$csv2" | od -An -tx1 | tr -d ' ')" = efbbbf ]
check "without --csv-bom: no BOM" [ "$(head -c 3 "$csv" | od -An -tx1 | tr -d ' ')" != efbbbf ]
"$BIN" batch --from-raw "$T/raw" --schema table -o "$T/c3" --format csv --csv-spans empty --csv-bom \
    >/dev/null 2>&1
check "batch accepts --csv-spans and --csv-bom" [ $? -eq 0 ]
"$BIN" tables --from-raw "$T/raw" -o "$T/c4" --csv-spans empty --csv-bom >/dev/null 2>&1
check "tables accepts --csv-spans and --csv-bom" [ $? -eq 0 ]
st=$(find "$T/c4" -path '*stitched*' -name '*.csv' | head -n 1)
check "tables: stitched CSV formula-safe, BOM, spans empty" \
    [ -n "$st" ] && [ "$(head -c 3 "$st" | od -An -tx1 | tr -d ' ')" = efbbbf ] && \
    grep -q "'=HYPERLINK" "$st" && [ "$(grep -c '+cmd' "$st")" -eq 1 ]
"$BIN" extract --from-raw "$T/raw" --schema table --csv-safe=maybe >/dev/null 2>&1
check "--csv-safe=maybe: usage error" [ $? -eq 2 ]
"$BIN" parse --schema table --format csv "$T/raw/inj/raw/page-0001.txt" >"$T/p.csv" 2>/dev/null
check "parse: formula-safe by default" grep -q "'=HYPERLINK" "$T/p.csv"

# ---- 7. quiet stdout with -o, progress line cleared before messages -----------------------
"$BIN" extract --from-raw "$RAW" --schema layout -o "$T/q1" >"$T/q1.out" 2>/dev/null
check "extract -o: nothing on stdout" [ ! -s "$T/q1.out" ]
"$BIN" extract --from-raw "$RAW" --schema layout -o "$T/q2" --json >"$T/q2.out" 2>/dev/null
check "extract -o --json: a JSON line per document" [ "$("$TOOL" jsonl "$T/q2.out")" -eq 8 ]
"$BIN" extract --from-raw "$RAW" --schema layout >"$T/q3.out" 2>/dev/null
check "extract without -o: results on stdout" [ "$("$TOOL" jsonl "$T/q3.out")" -eq 8 ]
mkdir -p "$T/raw2"
cp -r "$RAW/docparsing_example5-document_parsing" "$T/raw2/good"
cp -r "$RAW/docparsing_example5-document_parsing" "$T/raw2/zbad"
printf '{"format": "docproc-raw/1", "pages": [{"number": 0}]}' >"$T/raw2/zbad/raw/pages.json"
"$BIN" extract --from-raw "$T/raw2" --schema layout -o "$T/q4" --progress >/dev/null 2>"$T/q4.err"
esc=$(printf '\033')
check "the progress line is cleared before an error message" \
    grep -q "${esc}\[Kdocproc: error: " "$T/q4.err"

# ---- 10. contradictory or ignored options: usage errors -------------------------------------
usage() { # usage DESCRIPTION ARGS...: exit 2 with a message, nothing written
    desc=$1
    shift
    "$BIN" "$@" >"$T/u.out" 2>"$T/u.err"
    check "$desc: exit 2 (got $?)" [ $? -eq 2 ]
    check "$desc: says why" [ -s "$T/u.err" ]
}
usage "--model with --from-raw" extract --from-raw "$RAW" --schema layout --model /m
usage "--pages with --from-raw" extract --from-raw "$RAW" --schema layout --pages 1
usage "-q with -v" extract --from-raw "$RAW" --schema layout -q -v
usage "--merge with --input" batch --merge "$T/m.json" --input "$T/raw" "$T/x.json"
usage "--format zip alone" batch --from-raw "$RAW" --schema layout -o "$T/z" --format zip
check "usage errors create nothing" [ ! -e "$T/z" ]
"$BIN" detokenize --model "${DP_FIXTURES:?}/qwen25vl-tiny/model" 99999999 >"$T/d.out" 2>"$T/d.err"
check "detokenize: an id beyond the vocabulary is an error (exit 2)" [ $? -eq 2 ]
check "detokenize: the message names the valid range" grep -q 'valid ids are 0 to [0-9]' "$T/d.err"
check "detokenize: nothing on stdout" [ ! -s "$T/d.out" ]

# ---- 12. messages -------------------------------------------------------------------------------
"$BIN" help extract >"$T/h.out" 2>&1
check "docproc help extract prints extract's help" grep -q '^usage: docproc extract' "$T/h.out"
"$BIN" parse --schema no-such-schema "$T/raw/inj/raw/page-0001.txt" >/dev/null 2>"$T/pe.err"
check "parse errors start with 'docproc parse:'" grep -q '^docproc parse: ' "$T/pe.err"
"$BIN" ask -m "$T/no-model" --prompt hi >/dev/null 2>"$T/am.err"
check "ask accepts -m" not grep -q 'unknown option' "$T/am.err"
"$BIN" extract --from-raw "$T/raw" --schema table -o "$T/one" 2>"$T/one.err" >/dev/null
check "one document is '1 document', not '1 documents'" grep -q ': 1 document: 1 ok' "$T/one.err"
# ---- 11. the input tree is kept under the output (sub/x.pdf -> OUT/sub/x.pdf/) ----------------
mkdir -p "$T/tree/sub/deeper"
cp -r "$RAW/ocr_example1-ocr" "$T/tree/sub/deeper/one"
cp -r "$RAW/ocr_example2-ocr" "$T/tree/sub/two"
cp -r "$RAW/ocr_example5-ocr" "$T/tree/three"
"$BIN" batch --from-raw "$T/tree" --schema layout -o "$T/tout" -q >/dev/null 2>&1
check "batch over a tree: exit 0" [ $? -eq 0 ]
check "the tree is kept: sub/deeper/one/" [ -f "$T/tout/sub/deeper/one/result.json" ]
check "the tree is kept: sub/two/" [ -f "$T/tout/sub/two/result.json" ]
check "the tree is kept: three/" [ -f "$T/tout/three/result.json" ]
check "no flattened names (sub_two)" [ ! -e "$T/tout/sub_two" ] && [ ! -e "$T/tout/sub_deeper_one" ]
check "the manifest records the tree stem" grep -q '"stem": "sub/deeper/one"' "$T/tout/manifest.json"
check "no staging left behind" [ -z "$(find "$T/tout" -name '.stage-*' -o -name '.old-*')" ]
"$BIN" batch --from-raw "$T/tout" --schema layout -o "$T/tout2" -q >/dev/null 2>&1
check "the tree output re-extracts (--from-raw finds nested documents): exit 0" [ $? -eq 0 ]
check "... every document, in the same tree" [ -f "$T/tout2/sub/deeper/one/result.json" ] &&
    [ -f "$T/tout2/sub/two/result.json" ] && [ -f "$T/tout2/three/result.json" ]
"$BIN" batch --from-raw "$T/tree" --schema layout -o "$T/tout" --resume -q >/dev/null 2>"$T/tres.err"
check "--resume on the tree output: exit 0" [ $? -eq 0 ]
"$BIN" extract --from-raw "$T/tree" --schema layout -o "$T/tree.zip" -q >/dev/null 2>&1
"$TOOL" zip "$T/tree.zip" >"$T/tree.lst"
check "a zip bundle keeps the tree too" grep -q '^sub/deeper/one/result.json' "$T/tree.lst"
"$BIN" extract --from-raw "$T/tree.zip" --schema layout >"$T/tz.jsonl" 2>/dev/null
check "... and re-extracts from it (3 documents)" [ "$("$TOOL" jsonl "$T/tz.jsonl")" -eq 3 ]
finish
