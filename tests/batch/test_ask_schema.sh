#!/bin/sh
# `docproc ask --schema` (docs/constrain.md, docs/cli.md) with the tiny random-weight checkpoint
# sampling at temperature 1: every answer under the test schema (enums, integers, booleans, a
# pattern, nested arrays, optional fields) and the invoice schema is a valid instance (checked by
# the independent validator of tests/harness/t_answer.h), seeds 1..SEEDS, while the same runs
# with --constrain off mostly are not; several prompts (--prompts, --parallel) are each
# constrained and each gets the ids it gets alone; -v reports the jump-forward; fail closed
# (exit 3, keyword and path) before the model; a budget below the shortest answer, --raw with
# --schema, --constrain without --schema and --constrain on with a layout schema are usage
# errors (exit 2). SEEDS: 6 (the 50-seed runs through the same matcher are
# test_constrain_model's).
. "$(dirname "$0")/lib.sh"
MODEL=${DP_FIXTURES:?}/qwen25vl-tiny/model
IMG=$SRC/samples/invoice2data/oyo.png
SEEDS=${DP_ASK_SCHEMA_SEEDS:-6}
FAST="--model $MODEL --image $IMG --max-pixels 12544 --min-pixels 3136 --threads 1 --temperature 1"
"$TOOL" testschema "$T/t.json"
check "test schema written" [ -s "$T/t.json" ]

# The shortest answer of a schema, from the usage error of a budget of one token.
min_tokens() {
    # shellcheck disable=SC2086
    "$BIN" ask $FAST --schema "$1" --max-new-tokens 1 2>&1 >/dev/null |
        sed -n 's/.*shortest valid answer of this schema (\([0-9]*\) tokens).*/\1/p'
}

for schema in "$T/t.json" invoice; do
    name=$(basename "$schema" .json)
    min=$(min_tokens "$schema")
    check "$name: the budget error names the shortest answer" [ -n "$min" ]
    budget=$((${min:-100} + 24))
    seed=1
    while [ "$seed" -le "$SEEDS" ]; do
        # shellcheck disable=SC2086
        "$BIN" ask $FAST --schema "$schema" --seed "$seed" --max-new-tokens "$budget" \
            >"$T/$name-on-$seed.txt" 2>"$T/err"
        check "$name seed $seed: constrained ask exits 0" [ $? -eq 0 ]
        # shellcheck disable=SC2086
        "$BIN" ask $FAST --schema "$schema" --constrain off --seed "$seed" \
            --max-new-tokens "$budget" >"$T/$name-off-$seed.txt" 2>"$T/err"
        check "$name seed $seed: --constrain off exits 0" [ $? -eq 0 ]
        seed=$((seed + 1))
    done
    on=$("$TOOL" answer "$schema" "$T/$name"-on-*.txt)
    off=$("$TOOL" answer "$schema" "$T/$name"-off-*.txt)
    echo "$name: budget $budget: valid $on/$SEEDS constrained, $off/$SEEDS with --constrain off"
    check "$name: every constrained answer is valid ($on/$SEEDS)" [ "$on" -eq "$SEEDS" ]
    check "$name: unconstrained answers mostly are not ($off/$SEEDS)" [ "$off" -le $((SEEDS / 5)) ]
done

# several prompts: each constrained, in prompt order, each with the ids it gets alone
printf 'Read the invoice.\nExtract the fields.\nWho sold this?\n' >"$T/p.txt"
OPTS="$FAST --schema invoice --seed 5 --max-new-tokens 160 --print-ids"
k=0
while IFS= read -r q; do
    k=$((k + 1))
    # shellcheck disable=SC2086
    "$BIN" ask $OPTS --prompt "$q" | tail -n 1 | tr -d ' ' >"$T/alone$k"
done <"$T/p.txt"
for par in 1 2; do
    # shellcheck disable=SC2086
    "$BIN" ask $OPTS --prompts "$T/p.txt" --parallel $par >"$T/many$par" 2>"$T/err"
    check "--prompts --parallel $par exits 0" [ $? -eq 0 ]
    check "--parallel $par: one record per prompt" [ "$("$TOOL" jsonl "$T/many$par")" = 3 ]
    check "--parallel $par: every answer valid" [ "$("$TOOL" answers invoice "$T/many$par")" = 3 ]
    check "--parallel $par: records say constrained" \
        [ "$(grep -c '"decoding":{"constrained":true,"forced_ids":[1-9]' "$T/many$par")" = 3 ]
    for k in 1 2 3; do
        got=$(sed -n "${k}p" "$T/many$par" | sed 's/.*"ids":\(\[[^]]*\]\).*/\1/')
        check "--parallel $par prompt $k: ids as alone" [ "$got" = "$(cat "$T/alone$k")" ]
    done
done
check "records in prompt order" grep -q '^{"prompt":"Who sold this?"' "$T/many1" &&
    [ "$(sed -n 3p "$T/many1" | cut -c1-27)" = '{"prompt":"Who sold this?",' ]
check "prompts' answers differ" [ "$(sort -u "$T"/alone? | wc -l)" -ge 2 ]
# the schema's own prompt when none is given; -v reports the jump-forward
# shellcheck disable=SC2086
"$BIN" ask $FAST --schema invoice --seed 2 --max-new-tokens 160 -v >"$T/v.txt" 2>"$T/v.err"
check "ask --schema exits 0" [ $? -eq 0 ]
check "ask --schema answer is the code block" grep -q '^{"invoice_id": ' "$T/v.txt"
check "ask -v reports jump-forward" \
    grep -q 'constrained: [0-9]* of [0-9]* ids forced in [1-9][0-9]* jump-forward chunks' "$T/v.err"

# errors: fail closed before the model, usage errors
printf '{"type":"object","properties":{"t":{"type":"number","minimum":0}}}' >"$T/bad.json"
"$BIN" ask --model /nonexistent --image "$IMG" --schema "$T/bad.json" >/dev/null 2>"$T/bad.err"
check "unsupported keyword: exit 3" [ $? -eq 3 ]
check "error names keyword and path" grep -q "keyword 'minimum' at /properties/t" "$T/bad.err"
"$BIN" ask --model /nonexistent --image "$IMG" --schema no-such-schema >/dev/null 2>&1
check "unknown schema: exit 3" [ $? -eq 3 ]
# shellcheck disable=SC2086
"$BIN" ask $FAST --schema "$T/bad.json" --constrain off --max-new-tokens 4 >/dev/null 2>&1
check "--constrain off accepts the schema" [ $? -eq 0 ]
# shellcheck disable=SC2086
"$BIN" ask $FAST --schema invoice --max-new-tokens 20 >"$T/small.out" 2>"$T/small.err"
check "too small a budget: exit 2" [ $? -eq 2 ]
check "too small a budget: nothing answered" [ ! -s "$T/small.out" ]
"$BIN" ask --model "$MODEL" --raw x --schema invoice >/dev/null 2>&1
check "--raw with --schema: exit 2" [ $? -eq 2 ]
"$BIN" ask --model "$MODEL" --prompt x --constrain on >/dev/null 2>&1
check "--constrain without --schema: exit 2" [ $? -eq 2 ]
"$BIN" ask --model "$MODEL" --image "$IMG" --schema layout --constrain on >/dev/null 2>&1
check "--constrain on with a layout schema: exit 2" [ $? -eq 2 ]
"$BIN" ask --model "$MODEL" --image "$IMG" --schema invoice --constrain maybe >/dev/null 2>&1
check "--constrain maybe: exit 2" [ $? -eq 2 ]
finish
