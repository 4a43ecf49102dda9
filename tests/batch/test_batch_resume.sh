#!/bin/sh
# Crash safety: a batch killed with SIGKILL at random moments and restarted with --resume ends
# with every document exactly once, complete and identical to an uninterrupted run, no staging
# leftovers; a document whose input changed is redone, the others are reused.
. "$(dirname "$0")/lib.sh"
COPIES=${DP_RESUME_COPIES:-12}
"$TOOL" mkraw "$SRC/samples" "$T/raw" "$COPIES" || exit 1
n_docs=$(find "$T/raw" -mindepth 1 -maxdepth 1 -type d | wc -l)
check "raw tree built" [ "$n_docs" -ge 90 ]

t0=$(date +%s%N)
"$BIN" batch --from-raw "$T/raw" --schema form -o "$T/ref" -q
check "reference run exits 0" [ $? -eq 0 ]
ref_ms=$((($(date +%s%N) - t0) / 1000000))

kills=0
for i in 1 2 3 4 5 6; do
    resume=""
    [ "$i" -gt 1 ] && resume=--resume
    jobs=1
    [ $((i % 2)) -eq 0 ] && jobs=3 # parallel workers are killed too
    "$BIN" batch --from-raw "$T/raw" --schema form -o "$T/out" $resume -j "$jobs" -q &
    pid=$!
    # a random moment within the first quarter of the time a whole run takes
    delay=$(awk -v s="$$$i" -v ms="$ref_ms" 'BEGIN { srand(s); printf "%.3f", 0.01 + rand() * 0.25 * ms / 1000 }')
    sleep "$delay"
    if kill -9 "$pid" 2>/dev/null; then
        kills=$((kills + 1))
    fi
    wait "$pid" 2>/dev/null
done
echo "killed $kills of 6 runs (a full run takes ${ref_ms} ms)" >&2
check "runs were killed mid-way" [ "$kills" -ge 1 ]
# what a kill at the worst moments leaves (pid 999999 is above any pid_max: not running): the
# manifest's temporary, a staging folder, libzip's temporary of a document's zip
stem=$(find "$T/ref" -mindepth 1 -maxdepth 1 -type d ! -name '.*' | sort | head -n 1)
stem=${stem##*/}
mkdir -p "$T/out" # every kill may have come before the run made it (slow sanitizer builds)
: >"$T/out/.manifest.json.tmp-999999-0"
mkdir -p "$T/out/.stage-999999-$stem" && : >"$T/out/.stage-999999-$stem/result.json"
: >"$T/out/$stem.zip.Ab12Cd"
: >"$T/out/.unrelated.tmp-999999-0" # not ours: kept
"$BIN" batch --from-raw "$T/out/../raw" --schema form -o "$T/out" --resume --json >"$T/final.jsonl" 2>"$T/final.err"
check "final --resume exits 0" [ $? -eq 0 ]
"$TOOL" manifest "$T/out/manifest.json" >"$T/m.txt"
check "manifest lists every document" [ "$(wc -l <"$T/m.txt")" = "$n_docs" ]
check "every document ok" [ "$(grep -c ' ok ' "$T/m.txt")" = "$n_docs" ]
check "no document listed twice" [ -z "$(cut -d' ' -f1 "$T/m.txt" | sort | uniq -d)" ]
check "one output folder per document" \
    [ "$(find "$T/out" -mindepth 1 -maxdepth 1 -type d ! -name '.*' | wc -l)" = "$n_docs" ]
check "no staging leftovers" [ -z "$(find "$T/out" -maxdepth 1 -name '.stage-*' -o -maxdepth 1 -name '.old-*')" ]
check "no temporary files" [ -z "$(find "$T/out" -name '.*.tmp-*' ! -name '.unrelated.*')" ]
check "no zip temporaries" [ ! -e "$T/out/$stem.zip.Ab12Cd" ]
check "other files kept" [ -e "$T/out/.unrelated.tmp-999999-0" ]
rm -f "$T/out/.unrelated.tmp-999999-0"
check "every result.json valid" "$TOOL" json $(find "$T/out" -name result.json)
check "outputs identical to an uninterrupted run" \
    diff -r -x manifest.json -x .docproc "$T/ref" "$T/out"

# SIGINT: stops between documents, writes the manifest with the rest pending, exit 5
"$BIN" batch --from-raw "$T/raw" --schema form -o "$T/int" -q &
pid=$!
sleep "$(awk -v ms="$ref_ms" 'BEGIN { printf "%.3f", 0.3 * ms / 1000 }')"
kill -INT "$pid"
wait "$pid"
rc=$?
check "SIGINT: exit 5 (got $rc)" [ "$rc" -eq 5 ]
"$TOOL" manifest "$T/int/manifest.json" >"$T/int.txt"
check "SIGINT: manifest written with every document" [ "$(wc -l <"$T/int.txt")" = "$n_docs" ]
check "SIGINT: the rest pending" grep -q ' pending ' "$T/int.txt"
"$BIN" batch --from-raw "$T/raw" --schema form -o "$T/int" --resume -q
check "SIGINT then --resume: exit 0" [ $? -eq 0 ]
check "SIGINT then --resume: identical outputs" diff -r -x manifest.json -x .docproc "$T/ref" "$T/int"

# a changed input is redone, the rest reused
one=$(find "$T/raw" -mindepth 1 -maxdepth 1 -type d | sort | head -n 1)
printf ' ' >>"$one/raw/page-0001.txt"
"$BIN" batch --from-raw "$T/raw" --schema form -o "$T/out" --resume --json >"$T/again.jsonl" 2>/dev/null
check "resume after a change exits 0" [ $? -eq 0 ]
check "all but the changed document reused" \
    grep -q "\"reused\":$((n_docs - 1))," "$T/again.jsonl"
finish
