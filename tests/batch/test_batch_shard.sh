#!/bin/sh
# --shard K/N: N concurrent workers on one output directory cover every document exactly once
# (disjoint and complete), and their manifests merge (the review queue rebuilt as one run's); a
# missing or repeated shard is refused; two runs never write one directory (or shard) at once.
. "$(dirname "$0")/lib.sh"
"$TOOL" mkraw "$SRC/samples" "$T/raw" 6 || exit 1
n_docs=$(find "$T/raw" -mindepth 1 -maxdepth 1 -type d | wc -l)
N=3
for k in 1 2 3; do
    "$BIN" batch --from-raw "$T/raw" --schema receipt -o "$T/out" --shard "$k/$N" -q &
done
wait
for k in 1 2 3; do
    check "shard $k manifest" "$TOOL" json "$T/out/manifest-$k-of-$N.json"
    "$TOOL" manifest "$T/out/manifest-$k-of-$N.json" >"$T/s$k.txt"
    check "shard $k got documents" [ -s "$T/s$k.txt" ]
done
cat "$T/s1.txt" "$T/s2.txt" "$T/s3.txt" | cut -d' ' -f1 | sort >"$T/all.txt"
find "$T/raw" -mindepth 1 -maxdepth 1 -type d -exec basename {} \; | sort >"$T/want.txt"
check "shards are disjoint" [ -z "$(uniq -d "$T/all.txt")" ]
check "shards cover every document" cmp -s "$T/all.txt" "$T/want.txt"
check "every document ok" [ "$(cat "$T"/s?.txt | grep -c ' ok ')" = "$n_docs" ]
check "one output folder per document" \
    [ "$(find "$T/out" -mindepth 1 -maxdepth 1 -type d ! -name '.*' | wc -l)" = "$n_docs" ]
"$BIN" batch --merge "$T/out/manifest.json" "$T/out"/manifest-?-of-$N.json 2>/dev/null
check "merge exits 0" [ $? -eq 0 ]
check "merged manifest lists every document" \
    [ "$("$TOOL" manifest "$T/out/manifest.json" | wc -l)" = "$n_docs" ]
# the review queue (issue 17) of the merged output equals a single-machine run's: --merge
# rebuilds OUT/review.jsonl and OUT/review/ from every shard's documents (each shard's run
# leaves only its own view)
"$BIN" batch --from-raw "$T/raw" --schema receipt -o "$T/ref" -q 2>/dev/null
check "single-machine run has review lines" [ -s "$T/ref/review.jsonl" ]
check "merged review.jsonl equals the single-machine run's" cmp -s "$T/ref/review.jsonl" "$T/out/review.jsonl"
same_dir() { { [ ! -e "$1" ] && [ ! -e "$2" ]; } || diff -r "$1" "$2"; } # --from-raw: no crops
check "merged review/ crops equal the single-machine run's" same_dir "$T/ref/review" "$T/out/review"
"$BIN" batch --merge "$T/m.json" "$T/out/manifest-1-of-$N.json" "$T/out/manifest-2-of-$N.json" 2>"$T/e"
check "merge with a shard missing: exit 6" [ $? -eq 6 ]
check "missing shard named" grep -q 'shard 3/3 is missing' "$T/e"
"$BIN" batch --merge "$T/m.json" "$T/out/manifest-1-of-$N.json" "$T/out/manifest-1-of-$N.json" 2>/dev/null
check "merge with a shard twice: exit 6" [ $? -eq 6 ]
# the assignment is stable: the same shard run again reuses everything
"$BIN" batch --from-raw "$T/raw" --schema receipt -o "$T/out" --shard 2/$N --resume --json >"$T/r.jsonl" 2>/dev/null
check "stable assignment: shard 2 resumes with everything reused" \
    grep -q "\"reused\":$(wc -l <"$T/s2.txt")," "$T/r.jsonl"
# one writer per output directory (flock(2) on OUT/.docproc/lock; flock(1) holds it here as
# another run would): a second run is refused naming the directory, exit 4
flock -o -x "$T/out/.docproc/lock" sleep 60 &
holder=$!
sleep 1
"$BIN" batch --from-raw "$T/raw" --schema receipt -o "$T/out" --resume -q 2>"$T/lk.err"
check "a second run on a held output directory: exit 4" [ $? -eq 4 ]
check "... the error names the directory" grep -q "$T/out: another docproc run" "$T/lk.err"
"$BIN" batch --from-raw "$T/raw" --schema receipt -o "$T/out" --shard 1/$N --resume -q 2>/dev/null
check "a shard run on a directory held by a whole run: exit 4" [ $? -eq 4 ]
"$BIN" batch --merge "$T/out/manifest.json" "$T/out"/manifest-?-of-$N.json 2>"$T/lm.err"
check "--merge while a run holds the directory: exit 4" [ $? -eq 4 ]
kill "$holder" 2>/dev/null
wait "$holder" 2>/dev/null
check "the lock file stays behind" [ -f "$T/out/.docproc/lock" ]
"$BIN" batch --from-raw "$T/raw" --schema receipt -o "$T/out" --resume -q 2>/dev/null
check "a stale lock file (its holder gone) does not block --resume: exit 0" [ $? -eq 0 ]
flock -o -x "$T/out/.docproc/lock-2-of-$N" sleep 60 &
holder=$!
flock -o -s "$T/out/.docproc/lock" sleep 60 &
holder2=$!
sleep 1
"$BIN" batch --from-raw "$T/raw" --schema receipt -o "$T/out" --shard 1/$N --resume -q 2>/dev/null
check "shards run side by side (another shard holds the directory shared): exit 0" [ $? -eq 0 ]
"$BIN" batch --from-raw "$T/raw" --schema receipt -o "$T/out" --shard 2/$N --resume -q 2>"$T/ls.err"
check "the same shard twice at once: exit 4" [ $? -eq 4 ]
check "... the error names the shard" grep -q "as shard 2/$N" "$T/ls.err"
"$BIN" batch --from-raw "$T/raw" --schema receipt -o "$T/out" --resume -q 2>/dev/null
check "a whole run while shards run: exit 4" [ $? -eq 4 ]
kill "$holder" "$holder2" 2>/dev/null
wait "$holder" "$holder2" 2>/dev/null
"$BIN" batch --from-raw "$T/raw" --schema receipt -o "$T/x" --shard 4/3 2>/dev/null
check "bad --shard: exit 2" [ $? -eq 2 ]
finish
