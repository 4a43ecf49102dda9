#!/bin/sh
# --shard K/N: N concurrent workers on one output directory cover every document exactly once
# (disjoint and complete), and their manifests merge; a missing or repeated shard is refused.
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
"$BIN" batch --merge "$T/m.json" "$T/out/manifest-1-of-$N.json" "$T/out/manifest-2-of-$N.json" 2>"$T/e"
check "merge with a shard missing: exit 6" [ $? -eq 6 ]
check "missing shard named" grep -q 'shard 3/3 is missing' "$T/e"
"$BIN" batch --merge "$T/m.json" "$T/out/manifest-1-of-$N.json" "$T/out/manifest-1-of-$N.json" 2>/dev/null
check "merge with a shard twice: exit 6" [ $? -eq 6 ]
# the assignment is stable: the same shard run again reuses everything
"$BIN" batch --from-raw "$T/raw" --schema receipt -o "$T/out" --shard 2/$N --resume --json >"$T/r.jsonl" 2>/dev/null
check "stable assignment: shard 2 resumes with everything reused" \
    grep -q "\"reused\":$(wc -l <"$T/s2.txt")," "$T/r.jsonl"
"$BIN" batch --from-raw "$T/raw" --schema receipt -o "$T/x" --shard 4/3 2>/dev/null
check "bad --shard: exit 2" [ $? -eq 2 ]
finish
