#!/bin/sh
# Slow end to end with the fixture checkpoint over a directory of real invoices: batch with
# discovery, JSON progress events, -v timing summary, the prompt-prefix KV reuse reported, and
# a kill -9 / --resume cycle with the model finishing every document exactly once.
. "$(dirname "$0")/lib.sh"
MODEL=${DP_FIXTURES:?}/qwen25vl-tiny/model
FAST="--max-pixels 12544 --min-pixels 3136 --max-new-tokens 8 --threads 1 --pages 1-2 --constrain off"
IN=$SRC/samples/invoice2data
n_docs=$(find "$IN" -maxdepth 1 \( -name '*.pdf' -o -name '*.png' \) | wc -l)
# shellcheck disable=SC2086
"$BIN" batch --model "$MODEL" --schema invoice $FAST --input "$IN" -o "$T/out" -v \
    --progress=json --json >"$T/out.jsonl" 2>"$T/err"
check "batch exits 0" [ $? -eq 0 ]
"$TOOL" manifest "$T/out/manifest.json" >"$T/m.txt"
n_files=$(find "$IN" -type f | wc -l)
check "every file in the manifest" [ "$(wc -l <"$T/m.txt")" -eq "$n_files" ]
check "the other files skipped with a reason" \
    [ "$(grep -c ' skipped ' "$T/m.txt")" -eq $((n_files - n_docs)) ]
check "every document ok" [ "$(grep -c ' ok ' "$T/m.txt")" -eq "$n_docs" ]
check "progress events" grep -q '"event":"page"' "$T/err"
check "timing summary per document" grep -q 'prefill .*decode .*extract' "$T/err"
check "prompt prefix reused" grep -Eq 'prompt prefix cache: [1-9][0-9]* tokens reused' "$T/err"
check "summary line on stdout" grep -q '"summary"' "$T/out.jsonl"
# blank-page guard at the default page budget on real PDFs: only the genuinely empty page of
# issue-297-example.pdf is blank (no false positives on forms, tables, lorem ipsum, scans)
"$BIN" batch --model "$MODEL" --schema form --input "$SRC/samples/pdfplumber" -o "$T/bl" \
    --max-new-tokens 1 --threads 1 --pages 1 --constrain off -q 2>/dev/null
check "pdfplumber batch: some failed (encrypted): exit 1" [ $? -eq 1 ]
"$TOOL" manifest "$T/bl/manifest.json" >"$T/bl.txt"
check "only one page blank" [ "$(grep -c ' 1$' "$T/bl.txt")" -eq 1 ]
check "the blank page is issue-297's" grep -q '^issue-297-example.pdf ok 1 1$' "$T/bl.txt"
check "encrypted PDF reported as needing a password" grep -q '^password-example.pdf failed' "$T/bl.txt"

# kill -9 in the middle, then resume
# shellcheck disable=SC2086
"$BIN" batch --model "$MODEL" --schema invoice $FAST --input "$IN" -o "$T/k" -q &
pid=$!
sleep 1
kill -9 "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
# shellcheck disable=SC2086
"$BIN" batch --model "$MODEL" --schema invoice $FAST --input "$IN" -o "$T/k" --resume -q
check "resume exits 0" [ $? -eq 0 ]
"$TOOL" manifest "$T/k/manifest.json" >"$T/k.txt"
check "resume: every document once and ok" [ "$(grep -c ' ok ' "$T/k.txt")" -eq "$n_docs" ]
check "resume: no duplicates" [ -z "$(cut -d' ' -f1 "$T/k.txt" | sort | uniq -d)" ]
check "resume: no staging leftovers" [ -z "$(find "$T/k" -maxdepth 1 -name '.stage-*')" ]
finish
