#!/bin/sh
# --constrain on the command line (docs/constrain.md): on by default for kie schemas (the tiny
# random-weight checkpoint's answer is a valid instance), fail closed with exit 3 naming keyword
# and path before the model is loaded, a budget below the shortest answer is a usage error
# (exit 2) before any page, --constrain on with a layout schema is a usage error, --constrain
# off generates freely. Runs under ASan/UBSan too.
. "$(dirname "$0")/lib.sh"
MODEL=${DP_FIXTURES:?}/qwen25vl-tiny/model
IMG=$SRC/samples/invoice2data/oyo.png
FAST="--max-pixels 12544 --min-pixels 3136 --threads 1 --temperature 1 --seed 7"
# shellcheck disable=SC2086
"$BIN" extract --model "$MODEL" --schema receipt $FAST --max-new-tokens 120 -o "$T/on" "$IMG" \
    >"$T/on.jsonl" 2>"$T/on.err"
check "constrained extract exits 0" [ $? -eq 0 ]
raw=$T/on/oyo.png/raw/page-0001.txt
check "answer is the code block" grep -q '^```json$' "$raw"
check "answer has every receipt key" grep -q '"merchant_name": .*"total": .*"items": ' "$raw"
check "constrained answer not flagged truncated" grep -q '"pages_truncated": 0' "$T/on/manifest.json"
check "the result says whether it needs review" grep -rEq '"needs_review": ?(true|false)' "$T/on/oyo.png"
check "the page says how it was decoded" grep -rEq '"constrained": ?true' "$T/on/oyo.png"
# batch: review queue, atomic per document and rebuilt on --resume
# shellcheck disable=SC2086
"$BIN" batch --model "$MODEL" --schema receipt $FAST --max-new-tokens 120 --review-threshold 1 \
    --input "$IMG" -o "$T/b" -q
check "batch exits 0" [ $? -eq 0 ]
check "review.jsonl written" [ -s "$T/b/review.jsonl" ]
check "per-document review lines kept with the document" [ -s "$T/b/oyo.png/review.jsonl" ]
check "review names document, field and reason" \
    grep -Eq '"document": ?"oyo.png".*"field": ?"[a-z_]+.*"reason": ?"(required|low_confidence)' \
    "$T/b/review.jsonl"
check "needs_review set in the result" grep -rEq '"needs_review": ?true' "$T/b/oyo.png"
cp "$T/b/review.jsonl" "$T/review1"
# shellcheck disable=SC2086
"$BIN" batch --model "$MODEL" --schema receipt $FAST --max-new-tokens 120 --review-threshold 1 \
    --input "$IMG" -o "$T/b" --resume -q
check "resume keeps the review queue" cmp -s "$T/review1" "$T/b/review.jsonl"
# fail closed: an unsupported keyword is a load error naming keyword and path, before the model
printf '{"type":"object","properties":{"t":{"type":"number","minimum":0}}}' >"$T/bad.json"
"$BIN" extract --model /nonexistent --schema "$T/bad.json" "$IMG" >/dev/null 2>"$T/bad.err"
check "unsupported keyword: exit 3" [ $? -eq 3 ]
check "error names keyword and path" grep -q "keyword 'minimum' at /properties/t" "$T/bad.err"
# shellcheck disable=SC2086
"$BIN" extract --model "$MODEL" --schema "$T/bad.json" --constrain off $FAST --max-new-tokens 4 \
    "$IMG" >/dev/null 2>&1
check "--constrain off accepts the schema" [ $? -eq 0 ]
# budget below the shortest answer: usage error before any page
# shellcheck disable=SC2086
"$BIN" extract --model "$MODEL" --schema invoice $FAST --max-new-tokens 20 -o "$T/small" "$IMG" \
    >/dev/null 2>"$T/small.err"
check "too small a budget: exit 2" [ $? -eq 2 ]
check "too small a budget: says the minimum" grep -q 'shortest valid answer of this schema' "$T/small.err"
check "too small a budget: no page processed" [ ! -d "$T/small/oyo.png" ]
"$BIN" extract --model "$MODEL" --schema layout --constrain on "$IMG" >/dev/null 2>"$T/lay.err"
check "--constrain on with a layout schema: exit 2" [ $? -eq 2 ]
"$BIN" extract --model "$MODEL" --schema invoice --constrain maybe "$IMG" >/dev/null 2>&1
check "--constrain maybe: exit 2" [ $? -eq 2 ]
finish
