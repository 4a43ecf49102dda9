#!/bin/sh
# olmOCR-2 mode through the CLI without the 7B model: `model info` accepts a checkpoint whose
# config.json has the layout olmOCR-2-7B-1025 ships (newer transformers: text settings nested in
# text_config, "dtype"), here with the fixture's tiny weights; `extract --from-raw --schema
# olmocr` turns real olmOCR answers (olmOCR's own test data) into fields, Markdown and text.
set -u
BIN=${DP_BIN:?DP_BIN must point at the docproc binary}
SRC=${DP_SOURCE_DIR:?DP_SOURCE_DIR must point at the source tree}
FIX=${DP_FIXTURES:?DP_FIXTURES must point at the unpacked fixtures}
T=$(mktemp -d "${TMPDIR:-/tmp}/dp-olmocr-test.XXXXXX")
trap 'rm -rf "$T"' EXIT
passed=0
failed=0
check() {
    desc=$1
    shift
    if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: $desc" >&2; fi
}

cp -r "$FIX/qwen25vl-tiny/model" "$T/ck"
cp "$SRC/tests/archive/olmocr/config-nested-tiny.json" "$T/ck/config.json"
"$BIN" model info --no-scan "$T/ck" >"$T/info" 2>"$T/err"
check "model info accepts the nested (olmOCR-2) config layout" [ $? -eq 0 ]
check "model info reads the nested text settings" grep -q 'llm: hidden 64, layers 2' "$T/info"

for stem in edgar untable; do
    mkdir -p "$T/raw/$stem/raw"
    cp "$SRC/tests/archive/olmocr/$stem.md" "$T/raw/$stem/raw/page-0001.txt"
    printf '{"format":"docproc-raw/1","source":"%s.png","schema":"olmocr","pages":[{"number":1,"file":"page-0001.txt","model_truncated":false,"geometry":{"model_w":0,"model_h":0,"page_w":0,"page_h":0,"pdf_w_pt":0,"pdf_h_pt":0}}]}\n' \
        "$stem" >"$T/raw/$stem/raw/pages.json"
done
"$BIN" extract -q --from-raw "$T/raw" --schema olmocr --format json,md,txt -o "$T/out" >"$T/jsonl" 2>"$T/err"
check "extract --from-raw --schema olmocr exits 0" [ $? -eq 0 ]
check "front matter is a field" grep -q '"name": *"is_table"' "$T/out/edgar/result.json"
check "Markdown keeps the paragraphs" grep -q '^Edgar (or Eadgar' "$T/out/edgar/result.md"
check "Markdown keeps the spanning table as HTML" grep -q 'rowspan="2"' "$T/out/untable/result.md"
check "text output has the table rows" grep -q 'Population estimates' "$T/out/untable/result.txt"
check "no front matter in the Markdown" [ -z "$(grep -l '^primary_language:' "$T/out/edgar/result.md")" ]

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
