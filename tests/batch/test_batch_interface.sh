#!/bin/sh
# The interface a new user meets (issue #15 items 8, 11, 15, 17): one pixel budget for every
# command (printed by --help; what rasterize shows is what extract feeds), rasterize names
# outputs as extract does, stdin input, the built-in schema names in extract --help and in the
# unknown-schema error, bench-render's default PDF found from the executable, and a synthetic
# checkpoint without a tokenizer said so clearly.
. "$(dirname "$0")/lib.sh"
not_grep() { ! grep -q "$@"; }
unset OPENBLAS_CORETYPE # a narrower kernel family only adds a warning to stderr
unset DOCPROC_MODEL
MODEL=${DP_FIXTURES:?}/qwen25vl-tiny/model
S=$SRC/samples
FAST="--max-new-tokens 1 --threads 1 --constrain off"

# ---- 8. one pixel budget -------------------------------------------------------------------
for c in extract batch tables ask rasterize preprocess; do
    "$BIN" $c --help >"$T/h.txt" 2>&1
    check "$c --help: the pixel budget every command uses [1003520]" \
        grep -q -- '--max-pixels N .*\[1003520\]' "$T/h.txt"
done
"$BIN" rasterize -o "$T/r8" "$S/invoice2data/oyo.png" >/dev/null 2>&1
check "rasterize with defaults: exit 0" [ $? -eq 0 ]
# shellcheck disable=SC2086
"$BIN" extract --model "$MODEL" --schema receipt $FAST -o "$T/e8" "$S/invoice2data/oyo.png" \
    >/dev/null 2>&1
check "extract with defaults: exit 0" [ $? -eq 0 ]
check "rasterize shows the pixels extract feeds (840x1176)" \
    grep -q '"width": 840,' "$T/r8/oyo.png/pages.json"
check "... the same size in extract's geometry" \
    grep -q '"model_w": 840,' "$T/e8/oyo.png/result.json"
check "... height too" grep -q '"height": 1176,' "$T/r8/oyo.png/pages.json"
check "... and extract's" grep -q '"model_h": 1176,' "$T/e8/oyo.png/result.json"

# ---- 11. rasterize names outputs as extract does -------------------------------------------
"$BIN" rasterize --max-pixels 12544 -o "$T/r11" "$S/invoice2data/oyo.png" \
    "$S/invoice2data/oyo.pdf" >/dev/null 2>"$T/r11.err"
check "rasterize a.png a.pdf together: exit 0 (got $?)" [ $? -eq 0 ]
check "rasterize: DIR/oyo.png/ (the name with its extension)" [ -f "$T/r11/oyo.png/page-0001.png" ]
check "rasterize: DIR/oyo.pdf/" [ -f "$T/r11/oyo.pdf/page-0001.png" ]
mkdir -p "$T/tree/sub"
cp "$S/invoice2data/oyo.png" "$T/tree/sub/x.png"
"$BIN" rasterize --max-pixels 12544 -o "$T/r11b" "$T/tree" >/dev/null 2>&1
check "rasterize a directory: the tree kept (sub/x.png/)" [ -f "$T/r11b/sub/x.png/page-0001.png" ]
"$BIN" rasterize -o "$T/r11c" "$T/nope.png" >/dev/null 2>&1
check "rasterize of a missing input: exit 6 as extract (got $?)" [ $? -eq 6 ]

# ---- 15. stdin, schema names, bench-render, examples ----------------------------------------
# shellcheck disable=SC2086
"$BIN" extract --model "$MODEL" --schema receipt $FAST --max-pixels 12544 - \
    <"$S/invoice2data/oyo.png" >"$T/stdin.jsonl" 2>"$T/stdin.err"
check "extract - < page.png: exit 0 (got $?)" [ $? -eq 0 ]
check "extract - < page.png: one result" [ "$("$TOOL" jsonl "$T/stdin.jsonl")" -eq 1 ]
check "extract - < page.png: the input's SHA-256" \
    grep -q '"sha256":"023f34f30ef2cf2166cf93c5ddbec0603797744271c88595951de9c701c0401d"' \
    "$T/stdin.jsonl"
# shellcheck disable=SC2086
cat "$S/invoice2data/oyo.pdf" | "$BIN" extract --model "$MODEL" --schema receipt $FAST \
    --max-pixels 12544 -o "$T/stdin" - >/dev/null 2>&1
check "a PDF piped to extract -o DIR -: DIR/stdin/result.json" [ -f "$T/stdin/stdin/result.json" ]
"$BIN" extract --help >"$T/eh.txt" 2>&1
check "extract --help names the built-in schemas" \
    grep -q 'built-in: chart, form, invoice, layout, ocr, olmocr, receipt, table' "$T/eh.txt"
check "extract --help: INPUT '-' reads stdin" grep -q "INPUT '-' reads" "$T/eh.txt"
"$BIN" extract --schema no-such --from-raw "$S/raw" >/dev/null 2>"$T/us.err"
check "unknown schema: exit 3 (got $?)" [ $? -eq 3 ]
check "unknown schema: the message names the built-in ones" \
    grep -q "schema 'no-such' not found; built-in schemas: chart, form, invoice" "$T/us.err"
mkdir -p "$T/elsewhere"
(cd "$T/elsewhere" && "$BIN" bench-render --pages 1 --runs 1 --no-pdftoppm) >"$T/br.out" 2>&1
check "bench-render from another directory finds its default PDF (exit $?)" [ $? -eq 0 ]
check "... the sample, not the working directory's" grep -q 'WARN-Report' "$T/br.out"

# ---- 17. model synth without a tokenizer --------------------------------------------------
"$BIN" model synth --shape tiny -o "$T/syn" >/dev/null 2>"$T/syn.err"
check "model synth --shape tiny: exit 0" [ $? -eq 0 ]
check "model synth without --from: says there is no tokenizer and how to add one" \
    grep -q 'no tokenizer.json: .*--from CHECKPOINT or --tokenizer FILE' "$T/syn.err"
"$BIN" model --help >"$T/mh.txt"
check "model --help: synth has no tokenizer unless --from or --tokenizer" \
    grep -q 'It has no tokenizer' "$T/mh.txt"
"$BIN" ask --model "$T/syn" --prompt hi >/dev/null 2>"$T/ask.err"
check "ask on it: exit 3 (got $?)" [ $? -eq 3 ]
check "ask on it: says how to add a tokenizer" grep -q -- '--from CHECKPOINT' "$T/ask.err"
"$BIN" model synth --shape tiny --from "$MODEL" -o "$T/syn2" >/dev/null 2>"$T/syn2.err"
check "model synth --from: a tokenizer, no note" not_grep 'no tokenizer' "$T/syn2.err"
# shellcheck disable=SC2086
"$BIN" extract --model "$T/syn2" --schema receipt $FAST --max-pixels 12544 \
    "$S/invoice2data/oyo.png" >/dev/null 2>&1
check "extract runs on model synth --from's checkpoint (exit $?)" [ $? -eq 0 ]
finish
