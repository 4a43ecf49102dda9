#!/bin/sh
# Nightly jobs you can trust (issue #15, items 1-6) with the fixture checkpoint: --resume never
# reuses work made with other settings (and re-extracts kept answers when only the outputs
# changed), existing outputs are refused before any model work and the record of finished work
# survives, every file under --input is in the manifest, a missing input or an empty directory
# is exit 6, a run that cannot start creates nothing, and the real stop cause is recorded.
# Ends with the "must show" run: a tree with damaged, encrypted, non-document and
# duplicate-named files, killed at random points, resumed with the same and changed settings,
# equals an uninterrupted run with the final settings.
. "$(dirname "$0")/lib.sh"
unset OPENBLAS_CORETYPE # a narrower kernel family only adds a warning to stderr
MODEL=${DP_FIXTURES:?}/qwen25vl-tiny/model
FAST="--max-pixels 12544 --min-pixels 3136 --threads 1 --pages 1 --constrain off"
mkdir -p "$T/in/sub" "$T/in/.cache"
cp "$SRC/samples/invoice2data/oyo.png" "$SRC/samples/invoice2data/AzureInterior.pdf" \
   "$SRC/samples/qpdf/encrypted-40-bit-R3.pdf" "$T/in/"
cp "$SRC/samples/invoice2data/oyo.png" "$T/in/sub/oyo.png" # duplicate name in another folder
printf 'UPDF-1.4 damaged\n' >"$T/in/sub/broken.pdf"        # named PDF, not one
printf 'not a document\n' >"$T/in/notes.txt"
printf 'x' >"$T/in/.DS_Store"
"$TOOL" blankpng "$T/in/blank.png" 200 280 || exit 1
n_files=$(($(find "$T/in" -type f | wc -l) + 1)) # and the hidden directory, not walked

not() { ! "$@"; }
# same_tree A B: the same files with the same bytes; zips compared by entries, sizes and CRCs
# (their timestamps differ between runs)
same_tree() {
    diff -r -x manifest.json -x .docproc -x '*.zip' "$1" "$2" || return 1
    zips_a=$(cd "$1" && find . -name '*.zip' -not -path './.docproc/*' | sort)
    zips_b=$(cd "$2" && find . -name '*.zip' -not -path './.docproc/*' | sort)
    [ "$zips_a" = "$zips_b" ] || return 1
    for z in $zips_a; do # every bundle, in subfolders too (the tree is kept)
        [ "$("$TOOL" zipsum "$1/$z")" = "$("$TOOL" zipsum "$2/$z")" ] || return 1
    done
}

run() { # run OUT ARGS...: batch over $T/in with the fixture model
    out=$1
    shift
    # shellcheck disable=SC2086
    "$BIN" batch --model "$MODEL" $FAST --input "$T/in" -o "$out" "$@"
}

# ---- 3. every file is accounted for --------------------------------------------------------
run "$T/a" --schema invoice --max-new-tokens 8 --format json,xml >/dev/null 2>"$T/a.err"
check "tree with failures: exit 1 (got $?)" [ $? -eq 1 ]
"$TOOL" manifest "$T/a/manifest.json" >"$T/a.txt"
check "every file under --input in the manifest" [ "$(wc -l <"$T/a.txt")" -eq "$n_files" ]
check "damaged PDF is a failure with its reason" \
    grep -q '"error": "damaged document: the name says .pdf' "$T/a/manifest.json"
check "text file skipped with its reason" grep -q '"reason": "not a document: text file"' "$T/a/manifest.json"
check "hidden file skipped with its reason" grep -q '"reason": "hidden file"' "$T/a/manifest.json"
check "hidden directory skipped with its reason" grep -q '"reason": "hidden directory' "$T/a/manifest.json"
check "encrypted PDF failed" grep -q '^encrypted-40-bit-R3.pdf failed' "$T/a.txt"
check "summary counts the skipped files" grep -q '3 files skipped' "$T/a.err"

# ---- 1. resume fingerprints -----------------------------------------------------------------
run "$T/a" --schema invoice --max-new-tokens 8 --format json,xml --resume >/dev/null 2>"$T/r1.err"
check "same settings: every finished document reused" grep -q '4 ok (4 reused)' "$T/r1.err"
run "$T/a" --schema receipt --max-new-tokens 8 --format json,xml --resume >/dev/null 2>"$T/r2.err"
check "changed schema: nothing reused" grep -q '(0 reused; 4 recomputed: 4 settings changed)' "$T/r2.err"
check "changed schema: results stamped with the new schema" \
    grep -q '"name": "receipt"' "$T/a/oyo.png/result.json"
run "$T/a" --schema receipt --max-new-tokens 9 --format json,xml --resume >/dev/null 2>"$T/r3.err"
check "changed --max-new-tokens: recomputed" grep -q '4 recomputed: 4 settings changed' "$T/r3.err"
run "$T/a" --schema receipt --max-new-tokens 9 --dpi 100 --format json,xml --resume >/dev/null 2>"$T/r4.err"
check "changed --dpi: recomputed" grep -q '4 recomputed: 4 settings changed' "$T/r4.err"
run "$T/a" --schema receipt --max-new-tokens 9 --dpi 100 --temperature 0.5 --format json,xml \
    --resume >/dev/null 2>"$T/r5.err"
run "$T/a" --schema receipt --max-new-tokens 9 --dpi 100 --temperature 0.5 --format json,xml \
    --weights q8 --resume >/dev/null 2>"$T/r5w.err"
check "changed --weights: recomputed" grep -q '4 recomputed: 4 settings changed' "$T/r5w.err"
run "$T/a" --schema receipt --max-new-tokens 9 --dpi 100 --temperature 0.5 --format json,xml \
    --resume >/dev/null 2>"$T/r5b.err"
check "back to bf16: recomputed" grep -q '4 recomputed: 4 settings changed' "$T/r5b.err"
check "before: the model generated 9 tokens a page" grep -q '"tokens": 9,' "$T/a/manifest.json"
check "changed sampling: recomputed" grep -q '4 recomputed: 4 settings changed' "$T/r5.err"
rm -f "$T/a/oyo.png/result.xml"
run "$T/a" --schema receipt --max-new-tokens 9 --dpi 100 --temperature 0.5 --format json \
    --resume >/dev/null 2>"$T/r6.err"
check "changed formats: re-extracted from the kept answers" \
    grep -q '4 recomputed: 4 formats or schema changed' "$T/r6.err"
check "changed formats: no model work (no tokens generated)" not grep -q '"tokens": 9,' "$T/a/manifest.json"
run "$T/a" --schema receipt --max-new-tokens 9 --dpi 100 --temperature 0.5 --format json,xml \
    --resume >/dev/null 2>"$T/r7.err"
check "formats json,xml asked: XML written again" [ -f "$T/a/oyo.png/result.xml" ]
run "$T/fresh" --schema receipt --max-new-tokens 9 --dpi 100 --temperature 0.5 --format json,xml \
    >/dev/null 2>&1
check "resumed outputs equal a fresh run with the final settings" \
    same_tree "$T/fresh" "$T/a"
check "journal records the fingerprints" grep -q '"fingerprint":{"model":"[0-9a-f]\{64\}"' \
    "$T/a/.docproc/journal.jsonl"
check "stamp records the model's SHA-256" grep -Eq '"sha256": ?"[0-9a-f]{64}"' "$T/a/oyo.png/result.json"
check "model digest cached beside the journal" [ -f "$T/a/.docproc/model-digest.json" ]

# ---- 2. existing outputs are refused before any model work -----------------------------------
cp "$T/a/.docproc/journal.jsonl" "$T/j.before"
cp "$T/a/manifest.json" "$T/m.before"
run "$T/a" --schema receipt --max-new-tokens 9 --page-timeout 0.000001 >/dev/null 2>"$T/ex.err"
check "existing outputs without --force/--resume: exit 4 (got $?)" [ $? -eq 4 ]
check "the refusal names --force" grep -q -- '--force' "$T/ex.err"
check "the refusal happens before the model runs (no page warning)" not grep -q 'page 1' "$T/ex.err"
check "the journal of finished work is kept" cmp -s "$T/j.before" "$T/a/.docproc/journal.jsonl"
check "the manifest of finished work is kept" cmp -s "$T/m.before" "$T/a/manifest.json"
"$BIN" extract --model "$MODEL" --schema receipt $FAST -o "$T/fresh" "$T/in/oyo.png" >/dev/null 2>&1
check "extract: existing output refused (exit 4)" [ $? -eq 4 ]
chmod a-w "$T/fresh"
if [ ! -w "$T/fresh" ]; then # not as root
    "$BIN" extract --model "$MODEL" --schema receipt $FAST -o "$T/fresh/x" "$T/in/oyo.png" >/dev/null 2>&1
    check "unwritable output: exit 4 before any work" [ $? -eq 4 ]
fi
chmod u+w "$T/fresh"

# ---- 4. missing input, empty directory ------------------------------------------------------
"$BIN" batch --model "$MODEL" --schema receipt --input "$T/nope" -o "$T/n" >/dev/null 2>"$T/n.err"
check "missing --input: exit 6 (got $?)" [ $? -eq 6 ]
check "missing --input: the message names it" grep -q "$T/nope: cannot read input" "$T/n.err"
mkdir -p "$T/empty"
printf 'x\n' >"$T/empty/readme.txt"
"$BIN" batch --model "$MODEL" --schema receipt --input "$T/empty" -o "$T/n" >/dev/null 2>"$T/e.err"
check "directory without documents: exit 6 (got $?)" [ $? -eq 6 ]
check "directory without documents: said so" grep -q 'holds no PDF, TIFF, PNG or JPEG' "$T/e.err"
"$BIN" extract --model "$MODEL" --schema receipt "$T/nope.png" >/dev/null 2>&1
check "extract of a missing file: exit 6" [ $? -eq 6 ]

# ---- 5. a run that cannot start creates nothing ----------------------------------------------
"$BIN" extract --model /nonexistent --schema receipt -o "$T/new/deeper/x" "$T/in/oyo.png" >/dev/null 2>&1
check "unloadable model: exit 3 (got $?)" [ $? -eq 3 ]
check "unloadable model: nothing created" [ ! -e "$T/new" ]
check "failed runs left no output directory" [ ! -e "$T/n" ]
"$BIN" rasterize --password wrong -o "$T/d" "$T/in/encrypted-40-bit-R3.pdf" >/dev/null 2>&1
check "rasterize with a wrong password: exit 1" [ $? -eq 1 ]
check "rasterize with a wrong password: no empty directory" [ ! -e "$T/d" ]
"$BIN" extract --model /nonexistent --schema receipt -o "$T/new.zip" "$T/in/oyo.png" >/dev/null 2>&1
check "unloadable model: no bundle" [ ! -e "$T/new.zip" ]

# ---- 6. the real stop cause --------------------------------------------------------------
M="--model $MODEL --schema receipt --max-pixels 12544 --threads 1 --constrain off"
# shellcheck disable=SC2086
"$BIN" extract $M --max-new-tokens 200 "$T/in/oyo.png" >"$T/rep.jsonl" 2>/dev/null
check "repetition guard: stop recorded as repetition" grep -q '"stop":"repetition"' "$T/rep.jsonl"
check "repetition guard: not called max-new-tokens" not grep -q 'stopped at max-new-tokens' "$T/rep.jsonl"
check "repetition guard: the warning says so" grep -q 'repetition guard stopped the model' "$T/rep.jsonl"
# shellcheck disable=SC2086
"$BIN" extract $M --max-new-tokens 4 "$T/in/oyo.png" "$T/in/blank.png" >"$T/mnt.jsonl" 2>/dev/null
check "token limit: stop recorded as max_new_tokens" grep -q '"stop":"max_new_tokens"' "$T/mnt.jsonl"
check "blank page: stop recorded as blank" grep -q '"stop":"blank"' "$T/mnt.jsonl"
# shellcheck disable=SC2086
"$BIN" extract $M --max-new-tokens 200 --page-timeout 0.001 -o "$T/pt" "$T/in/oyo.png" >/dev/null 2>&1
check "page time limit: stop recorded as timeout" grep -q '"stop": "timeout"' "$T/pt/oyo.png/result.json"
check "stop cause kept with the raw answers" grep -q '"stop": "timeout"' "$T/pt/oyo.png/raw/pages.json"
"$BIN" extract --from-raw "$T/pt" --schema receipt >"$T/pt.jsonl" 2>/dev/null
check "--from-raw keeps the stop cause" grep -q '"stop":"timeout"' "$T/pt.jsonl"

# ---- must show: killed at random points, resumed with the same and changed settings --------
A="--schema invoice --max-new-tokens 6 --format json"
B="--schema invoice --max-new-tokens 7 --format json,xml,zip"
# shellcheck disable=SC2086
run "$T/ref" $B >/dev/null 2>&1
t0=$(date +%s%N)
# shellcheck disable=SC2086
run "$T/tmp" $A >/dev/null 2>&1
ms=$((($(date +%s%N) - t0) / 1000000))
kills=0
pids=""
for i in 1 2 3 4 5 6; do
    set -- $A
    [ "$i" -gt 3 ] && set -- $B
    resume=""
    [ "$i" -gt 1 ] && resume=--resume
    # docproc itself in the background (not the run function): $! must be docproc's pid, or
    # kill -9 hits a subshell and docproc goes on writing $T/k beside the next run (the race
    # that made this comparison fail now and then).
    # shellcheck disable=SC2086
    "$BIN" batch --model "$MODEL" $FAST --input "$T/in" -o "$T/k" "$@" $resume >/dev/null 2>&1 &
    pid=$!
    pids="$pids $pid"
    sleep "$(awk -v s="$$$i" -v ms="$ms" 'BEGIN { srand(s); printf "%.3f", 0.05 + rand() * 0.8 * ms / 1000 }')"
    kill -9 "$pid" 2>/dev/null && kills=$((kills + 1))
    wait "$pid" 2>/dev/null
done
echo "killed $kills of 6 runs (a run takes ${ms} ms)" >&2
check "runs were killed mid-way" [ "$kills" -ge 1 ]
alive=""
for p in $pids; do kill -0 "$p" 2>/dev/null && alive="$alive $p"; done
check "no killed run is still running ($alive)" [ -z "$alive" ]
# shellcheck disable=SC2086
run "$T/k" $B --resume >/dev/null 2>&1
check "final resume: exit 1 (the damaged and encrypted files)" [ $? -eq 1 ]
check "the tree is kept: a bundle in a subfolder to compare" \
    [ -n "$(cd "$T/ref" && find ./sub -name '*.zip')" ]
check "killed and resumed: outputs equal an uninterrupted run with the final settings" \
    same_tree "$T/ref" "$T/k"
"$TOOL" manifest "$T/k/manifest.json" >"$T/k.txt"
"$TOOL" manifest "$T/ref/manifest.json" >"$T/ref.txt"
check "killed and resumed: the manifest names every file" [ "$(wc -l <"$T/k.txt")" -eq "$n_files" ]
check "killed and resumed: the same statuses as the uninterrupted run" \
    [ "$(cut -d' ' -f1,2 "$T/k.txt")" = "$(cut -d' ' -f1,2 "$T/ref.txt")" ]
finish
