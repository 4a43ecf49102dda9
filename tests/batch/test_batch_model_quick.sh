#!/bin/sh
# The fixture checkpoint (real Qwen2.5-VL format, random weights: the answers are gibberish) on
# a handful of inputs with a tiny page budget: every document gets a manifest status, failures
# carry specific errors (password needed, not a document), a blank page is not sent to the
# model, a password file unlocks the encrypted PDF. Runs under ASan/UBSan too.
. "$(dirname "$0")/lib.sh"
not() { ! "$@"; }
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
check "--pages selecting no page of the document: that document fails (exit 1)" [ $? -eq 1 ]
check "--pages selecting no page: the error says so" \
    grep -q 'oyo.png: --pages 3 selects no page (the document has 1)' "$T/pg.jsonl"
# one rule for every form of --pages (issue 15, item 9): pages beyond the end are ignored with a
# warning in the result; a list selecting no page at all is the document's failure
for sel in 1-2 1,3 2-; do
    d=$(echo "$sel" | tr ',' '_')
    # shellcheck disable=SC2086
    "$BIN" extract $M --max-new-tokens 4 --pages "$sel" -o "$T/sel$d" "$T/in/oyo.png" \
        >/dev/null 2>"$T/sel$d.err"
    echo $? >"$T/sel$d.rc"
done
for d in 1-2 1_3; do
    check "--pages ${d}: exit 0" [ "$(cat "$T/sel$d.rc")" -eq 0 ]
    "$TOOL" manifest "$T/sel$d/manifest.json" >"$T/sel$d.m"
    check "--pages ${d}: page 1 done" grep -q '^oyo.png ok 1 0$' "$T/sel$d.m"
    check "--pages ${d}: a \"pages\" warning in the result" \
        grep -Eq '"code": ?"pages"' "$T/sel$d/oyo.png/result.json"
    check "--pages ${d}: warned on stderr" grep -q 'beyond the end of the document (1 page)' "$T/sel$d.err"
done
check "--pages 1-2: the warning names page 2" \
    grep -q -- '--pages 1-2: page 2 is beyond the end of the document (1 page), ignored' \
    "$T/sel1-2/oyo.png/result.json"
check "--pages 1,3: the warning names page 3" \
    grep -q -- '--pages 1,3: page 3 is beyond the end' "$T/sel1_3/oyo.png/result.json"
check "--pages 2-: selects no page, the document fails (exit 1)" [ "$(cat "$T/sel2-.rc")" -eq 1 ]
check "--pages 2-: the manifest says why" \
    grep -q -- '--pages 2- selects no page (the document has 1)' "$T/sel2-/manifest.json"
check "--pages 1 (all within the document): no \"pages\" warning" \
    sh -c '! grep -Eq "\"code\": ?\"pages\"" "$1"' _ "$T/out/oyo.png/result.json"
# a resume that re-extracts the kept answers (only the formats changed) keeps the note
mkdir -p "$T/pin" && cp "$T/in/oyo.png" "$T/pin/"
PB="--model $MODEL --max-pixels 12544 --threads 1 --constrain off --max-new-tokens 4 --pages 1,3"
# shellcheck disable=SC2086
"$BIN" batch $PB --schema receipt --input "$T/pin" -o "$T/pb" >/dev/null 2>&1
# shellcheck disable=SC2086
"$BIN" batch $PB --schema receipt --format json,xml --input "$T/pin" -o "$T/pb" --resume \
    >/dev/null 2>"$T/pb.err"
check "--pages 1,3 resumed with other formats: exit 0" [ $? -eq 0 ]
check "--pages 1,3 resumed with other formats: re-extracted from the kept answers" \
    grep -q '1 recomputed: 1 formats or schema changed' "$T/pb.err"
check "--pages 1,3 resumed with other formats: the note is in the new XML" \
    grep -q -- '--pages 1,3: page 3 is beyond the end' "$T/pb/oyo.png/result.xml"
check "--pages 1,3 resumed with other formats: the note is still in the JSON" \
    grep -q -- '--pages 1,3: page 3 is beyond the end' "$T/pb/oyo.png/result.json"

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
# ---- issue 15, item 12: messages name a document once; the stamp's created and model.sha256 ----
mkdir -p "$T/in2" && cp "$T/in/oyo.png" "$T/in2/" && printf 'UPDF-1.4 damaged\n' >"$T/in2/broken.pdf"
# shellcheck disable=SC2086
"$BIN" extract $M --max-new-tokens 4 --pages 3 "$T/in2" >"$T/dbl.jsonl" 2>"$T/dbl.err"
check "a failing document is named once (no 'oyo.png: oyo.png')" \
    sh -c '! grep -q "oyo.png: .*oyo.png: " "$1" "$2"' _ "$T/dbl.err" "$T/dbl.jsonl"
check "... with its path as given" grep -q "$T/in2/oyo.png: --pages 3 selects no page" "$T/dbl.err"
check "a damaged document is named once" sh -c '! grep -q "broken.pdf: .*broken.pdf: " "$1" "$2"' \
    _ "$T/dbl.err" "$T/dbl.jsonl"
check "the JSON error record of a failed document carries its path" \
    grep -q "\"path\":\"$T/in2/broken.pdf\",\"status\":\"failed\"" "$T/dbl.jsonl"
cp -r "$MODEL" "$T/mcopy"
MC="--model $T/mcopy --schema receipt --max-pixels 12544 --threads 1 --constrain off --max-new-tokens 4"
stamp_sha() { tr -d ' \n' <"$1" | grep -o '"model":{[^}]*}' | grep -o '"sha256":"[0-9a-f]*"'; }
# shellcheck disable=SC2086
"$BIN" extract $MC -o "$T/dg" "$T/in/oyo.png" >/dev/null 2>&1
s1=$(stamp_sha "$T/dg/oyo.png/result.json")
check "the stamp's model.sha256 is recorded (not null)" [ "${#s1}" -eq 75 ]
check "the stamp's created is recorded (SOURCE_DATE_EPOCH=1700000000)" \
    grep -Eq '"created": ?"2023-11-14T22:13:20Z"' "$T/dg/oyo.png/result.json"
check "the model files' digests are cached beside the journal" \
    grep -q '"model.safetensors"' "$T/dg/.docproc/model-digest.json"
# the cache is used while size and mtime match: a cached digest changed by hand shows in the stamp
sed 's/"sha256": "[0-9a-f]*"/"sha256": "00000000000000000000000000000000000000000000000000000000000000aa"/' \
    "$T/dg/.docproc/model-digest.json" >"$T/dg.json" && cp "$T/dg.json" "$T/dg/.docproc/model-digest.json"
# shellcheck disable=SC2086
"$BIN" extract $MC -o "$T/dg" --force "$T/in/oyo.png" >/dev/null 2>&1
s2=$(stamp_sha "$T/dg/oyo.png/result.json")
check "the model is hashed once: the cached digests are used (size and mtime unchanged)" \
    [ "${#s2}" -eq 75 ] && [ "$s2" != "$s1" ]
touch -d '2020-01-01 00:00:00' "$T/mcopy"/*
# shellcheck disable=SC2086
"$BIN" extract $MC -o "$T/dg" --force "$T/in/oyo.png" >/dev/null 2>&1
s3=$(stamp_sha "$T/dg/oyo.png/result.json")
check "model files whose mtime changed are hashed again" [ "$s3" = "$s1" ]
# shellcheck disable=SC2086
env -u SOURCE_DATE_EPOCH "$BIN" extract $MC -o "$T/dg2" "$T/in/oyo.png" >/dev/null 2>&1
check "created is the time of the run without SOURCE_DATE_EPOCH" \
    grep -Eq '"created": ?"20[2-9][0-9]-[01][0-9]-[0-3][0-9]T[0-9:]{8}Z"' "$T/dg2/oyo.png/result.json"
check "... not the SOURCE_DATE_EPOCH one" not grep -q '2023-11-14T22:13:20Z' "$T/dg2/oyo.png/result.json"
SOURCE_DATE_EPOCH=1800000000 "$BIN" extract --from-raw "$T/dg" --schema receipt >"$T/dgr.jsonl" 2>/dev/null
check "a re-extraction keeps the answers' created" grep -Eq '"created": ?"2023-11-14T22:13:20Z"' "$T/dgr.jsonl"
check "a re-extraction keeps the answers' model.sha256" grep -q "$(echo "$s1" | tr -d '"' | cut -d: -f2)" "$T/dgr.jsonl"
finish
