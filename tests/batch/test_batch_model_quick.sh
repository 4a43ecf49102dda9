#!/bin/sh
# The fixture checkpoint (real Qwen2.5-VL format, random weights: the answers are gibberish) on
# a handful of inputs with a tiny page budget: every document gets a manifest status, failures
# carry specific errors (password needed, not a document), a blank page is not sent to the
# model, a password file unlocks the encrypted PDF. Runs under ASan/UBSan too.
. "$(dirname "$0")/lib.sh"
MODEL=${DP_FIXTURES:?}/qwen25vl-tiny/model
mkdir -p "$T/in"
cp "$SRC/samples/invoice2data/oyo.png" "$SRC/samples/invoice2data/AzureInterior.pdf" \
   "$SRC/samples/qpdf/encrypted-40-bit-R3.pdf" "$T/in/"
printf 'not a document\n' >"$T/in/notes.txt"
"$TOOL" blankpng "$T/in/blank.png" 200 280 || exit 1
FAST="--max-pixels 12544 --min-pixels 3136 --max-new-tokens 8 --threads 1 --pages 1 --constrain off"
# shellcheck disable=SC2086
"$BIN" extract --model "$MODEL" --schema receipt $FAST -o "$T/out" --json "$T/in/oyo.png" \
    "$T/in/AzureInterior.pdf" "$T/in/encrypted-40-bit-R3.pdf" "$T/in/notes.txt" \
    "$T/in/blank.png" >"$T/out.jsonl" 2>"$T/err"
rc=$?
check "some documents failed: exit 1 (got $rc)" [ "$rc" -eq 1 ]
"$TOOL" manifest "$T/out/manifest.json" >"$T/m.txt"
check "every document has a status" [ "$(wc -l <"$T/m.txt")" -eq 5 ]
check "image ok" grep -q '^oyo.png ok 1 0$' "$T/m.txt"
check "PDF ok" grep -q '^AzureInterior.pdf ok 1 0$' "$T/m.txt"
check "blank page ok" grep -q '^blank.png ok 1 1$' "$T/m.txt"
check "encrypted PDF failed" grep -q '^encrypted-40-bit-R3.pdf failed' "$T/m.txt"
check "not a document failed" grep -q '^notes.txt failed' "$T/m.txt"
check "password failure is specific" grep -q '"code": "password required or wrong"' "$T/out/manifest.json"
check "non-document failure is specific" grep -q 'not a PDF, TIFF, PNG or JPEG' "$T/out/manifest.json"
check "non-document failure is 'unsupported'" grep -q '"code": "unsupported"' "$T/out/manifest.json"
check "blank page counted" grep -q '"pages_blank": 1' "$T/out/manifest.json"
check "errors name the file" grep -q 'encrypted-40-bit-R3.pdf' "$T/err"
check "a JSON record per document on stdout" [ "$("$TOOL" jsonl "$T/out.jsonl")" -eq 5 ]
check "raw answers kept" [ -f "$T/out/oyo.png/raw/page-0001.txt" ]
check "blank page answer is empty" [ ! -s "$T/out/blank.png/raw/page-0001.txt" ]
printf 'encrypted-40-bit-R3.pdf=623\n' >"$T/pw.txt"
# shellcheck disable=SC2086
"$BIN" extract --model "$MODEL" --schema receipt $FAST -o "$T/out2" --password-file "$T/pw.txt" \
    "$T/in/encrypted-40-bit-R3.pdf" >/dev/null 2>"$T/err2"
check "password file unlocks the PDF (exit 0)" [ $? -eq 0 ]
# guards on the real (gibberish) generation: the random-weight model falls into a loop
M="--model $MODEL --schema receipt --max-pixels 12544 --threads 1 --constrain off"
# shellcheck disable=SC2086
"$BIN" extract $M --max-new-tokens 200 -o "$T/rep" "$T/in/oyo.png" >/dev/null 2>"$T/err3"
check "repetition loop: document still ok (exit 0)" [ $? -eq 0 ]
check "repetition loop detected and counted" grep -q '"pages_repetition": 1' "$T/rep/manifest.json"
check "repetition loop stopped early" [ "$(grep -o '"tokens": [0-9]*' "$T/rep/manifest.json" | tr -dc 0-9)" -lt 200 ]
check "repetition warning names file and page" grep -q 'oyo.png: page 1: repetition loop' "$T/err3"
# shellcheck disable=SC2086
"$BIN" extract $M --max-new-tokens 200 --page-timeout 0.001 -o "$T/pt" "$T/in/oyo.png" >/dev/null 2>&1
check "page time limit: answer kept, flagged truncated" grep -q '"pages_truncated": 1' "$T/pt/manifest.json"
# shellcheck disable=SC2086
"$BIN" extract $M --max-new-tokens 200 --doc-timeout 0.001 "$T/in/oyo.png" >"$T/dt.jsonl" 2>/dev/null
check "document time limit: exit 1" [ $? -eq 1 ]
check "document time limit: specific error" grep -q '"code":"limit exceeded"' "$T/dt.jsonl"
# shellcheck disable=SC2086
"$BIN" extract $M --max-new-tokens 4 --password 623 "$T/in/encrypted-40-bit-R3.pdf" >/dev/null 2>&1
check "--password unlocks the PDF" [ $? -eq 0 ]
# shellcheck disable=SC2086
"$BIN" extract $M --max-new-tokens 4 --pages 3 "$T/in/oyo.png" >"$T/pg.jsonl" 2>/dev/null
check "--pages beyond the document: that document fails (exit 1)" [ $? -eq 1 ]

# an input directory without documents is said so, not silently skipped
mkdir -p "$T/emptydir"
"$BIN" extract --model "$MODEL" --schema receipt "$T/emptydir" >/dev/null 2>"$T/ed"
check "empty input directory is warned about" grep -q 'emptydir: directory holds no PDF' "$T/ed"

# re-extraction of the model's own bundle without the model
"$BIN" extract --from-raw "$T/out" --schema receipt >"$T/re.jsonl" 2>/dev/null
check "--from-raw on the model's output exits 0" [ $? -eq 0 ]
check "--from-raw re-extracts the 3 documents written" [ "$("$TOOL" jsonl "$T/re.jsonl")" -eq 3 ]
check "--from-raw keeps the model id of the stamp" grep -Eq '"id": ?"model"' "$T/re.jsonl"
check "--from-raw keeps the prompt of the stamp" grep -Eq '"prompt": ?"[^"]' "$T/re.jsonl"
finish
