#!/bin/sh
# CLI test of --weights / --vision-weights on the tiny fixture checkpoint: every model command
# takes them (help lists them), ask and bench run with q8/q4 (bench reports the formats and the
# quantization time), bad values exit 2 with a message. Needs DP_BIN and DP_FIXTURES.
# Prints "N passed, N failed".
bin=${DP_BIN:?DP_BIN not set}
fx=${DP_FIXTURES:?DP_FIXTURES not set}/qwen25vl-tiny
model=$fx/model
out=$(mktemp)
err=$(mktemp)
trap 'rm -f "$out" "$err"' EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }

for cmd in extract batch tables ask bench; do
    "$bin" $cmd --help >"$out" 2>&1
    grep -q -- '--weights F' "$out" && grep -q -- '--vision-weights F' "$out" && ok ||
        bad "$cmd --help lacks --weights/--vision-weights"
done
# usage errors: exit 2, one line naming the option
for args in "--weights q5" "--weights BF16" "--vision-weights q4" "--weights"; do
    # shellcheck disable=SC2086
    "$bin" ask --model "$model" --prompt hi $args >"$out" 2>"$err"
    rc=$?
    [ $rc -eq 2 ] && ok || bad "ask $args: exit $rc, want 2"
    grep -q "weights" "$err" && ok || bad "ask $args: message does not name the option"
done
"$bin" bench --model "$model" --no-image --prompt-tokens 4 --gen-tokens 2 --weights q3 \
    >"$out" 2>"$err"
[ $? -eq 2 ] && ok || bad "bench --weights q3 not a usage error"

# ask runs with each format; bf16 given explicitly equals the default
img=$fx/images/b.png
for w in bf16 q8 q4; do
    "$bin" ask --model "$model" --image "$img" --prompt "Describe." --max-new-tokens 4 \
        --threads 2 --weights $w --vision-weights q8 --print-ids >"$out" 2>"$err"
    [ $? -eq 0 ] && [ -s "$out" ] && ok || { bad "ask --weights $w"; cat "$err"; }
done
a=$("$bin" ask --model "$model" --prompt hi --max-new-tokens 4 --print-ids 2>/dev/null)
b=$("$bin" ask --model "$model" --prompt hi --max-new-tokens 4 --print-ids --weights bf16 \
    --vision-weights bf16 2>/dev/null)
[ -n "$a" ] && [ "$a" = "$b" ] && ok || bad "--weights bf16 is not the default path"

for w in q8 q4; do
    "$bin" bench --model "$model" --image-size 56x56 --prompt-tokens 4 --gen-tokens 2 \
        --threads 2 --weights $w --vision-weights q8 >"$out" 2>"$err"
    [ $? -eq 0 ] && ok || { bad "bench --weights $w"; cat "$err"; }
    grep -q "\"weights\": \"$w\"" "$out" && ok || bad "bench config.weights is not $w"
    grep -q '"vision_weights": "q8"' "$out" && ok || bad "bench config.vision_weights"
    grep -q '"quantize_s"' "$out" && ok || bad "bench quantize_s missing"
done
"$bin" bench --model "$model" --no-image --prompt-tokens 4 --gen-tokens 2 >"$out" 2>"$err"
grep -q '"weights": "bf16"' "$out" && ok || bad "bench default weights is not bf16"

# model quantize: a q8 checkpoint; it runs as stored, refuses --weights q4 (exit 3)
qdir=$(mktemp -d)
trap 'rm -f "$out" "$err"; rm -rf "$qdir"' EXIT
"$bin" model quantize "$model" --to q5 -o "$qdir/x" >"$out" 2>"$err"
[ $? -eq 2 ] && ok || bad "model quantize --to q5 not a usage error"
"$bin" model quantize "$model" --to q8 --vision q8 -o "$qdir/q8" --threads 2 >"$out" 2>"$err"
[ $? -eq 0 ] && [ -f "$qdir/q8/quantization.json" ] && ok || { bad "model quantize"; cat "$err"; }
"$bin" model quantize "$model" --to q8 -o "$qdir/q8" >"$out" 2>"$err"
[ $? -eq 4 ] && ok || bad "model quantize over a checkpoint without --force"
# format version 2: the packed layout, mapped as it is (model info: nothing model-owned)
grep -q '"version": 2' "$qdir/q8/quantization.json" &&
    grep -q '"layout": "packed16"' "$qdir/q8/quantization.json" && ok || bad "not a v2 description"
"$bin" model info "$qdir/q8" --json --no-scan >"$out" 2>"$err"
grep -q '"owned_bytes": 0,' "$out" && ok || bad "v2 checkpoint: model-owned bytes not 0"
"$bin" model info "$model" --json --no-scan >"$out" 2>"$err"
grep -q '"owned_bytes": 0,' "$out" && ok || bad "bf16 checkpoint: model-owned bytes not 0"
# a corrupt v2 checkpoint (description or file): exit 3, one message naming the file
mkdir "$qdir/bad"
cp "$qdir/q8/"* "$qdir/bad/"
for edit in 's/"version": 2/"version": 3/' 's/"packed16"/"rows"/' 's/"Q8_0"/"Q4_0"/'; do
    sed "$edit" "$qdir/q8/quantization.json" >"$qdir/bad/quantization.json"
    "$bin" ask --model "$qdir/bad" --prompt hi --max-new-tokens 1 >"$out" 2>"$err"
    rc=$?
    [ $rc -eq 3 ] && grep -q "quantization.json\|model.safetensors" "$err" && ok ||
        { bad "corrupt v2 ($edit): exit $rc, want 3"; cat "$err"; }
done
cp "$qdir/q8/quantization.json" "$qdir/bad/"
truncate -s -100 "$qdir/bad/model.safetensors"
"$bin" ask --model "$qdir/bad" --prompt hi --max-new-tokens 1 >"$out" 2>"$err"
rc=$?
[ $rc -eq 3 ] && grep -q "model.safetensors" "$err" && ok || bad "truncated v2: exit $rc, want 3"
"$bin" ask --model "$qdir/q8" --prompt hi --max-new-tokens 3 --print-ids >"$out" 2>"$err"
[ $? -eq 0 ] && [ -s "$out" ] && ok || { bad "ask on the q8 checkpoint"; cat "$err"; }
x=$("$bin" ask --model "$model" --prompt hi --max-new-tokens 3 --print-ids --weights q8 \
    --vision-weights q8 2>/dev/null)
[ "$x" = "$(cat "$out")" ] && ok || bad "q8 checkpoint and q8 at load answer differently"
"$bin" ask --model "$qdir/q8" --prompt hi --weights q4 >"$out" 2>"$err"
rc=$?
[ $rc -eq 3 ] && grep -q "Q8_0" "$err" && ok || bad "q4 on a q8 checkpoint: exit $rc, want 3"
"$bin" bench --model "$qdir/q8" --no-image --prompt-tokens 4 --gen-tokens 2 --weights bf16 \
    >"$out" 2>"$err"
[ $? -eq 3 ] && ok || bad "bench --weights bf16 on a q8 checkpoint: want exit 3"

# model compare: JSON keys, a model against its own quantized checkpoint is identical
"$bin" model compare --model "$model" --weights q8 --against bf16 --steps 3 --threads 2 --json \
    --images "$img" >"$out" 2>"$err"
[ $? -eq 0 ] && ok || { bad "model compare"; cat "$err"; }
for key in overall kl_mean kl_max top1_agreement logits_rel_err requests; do
    grep -q "\"$key\"" "$out" && ok || bad "compare JSON lacks $key"
done
printf 'Describe.\n\nWhat is this?\n' >"$qdir/prompts.txt"
"$bin" model compare --model "$model" --weights q8 --vision-weights q8 --against "$qdir/q8" \
    --prompts "$qdir/prompts.txt" --steps 2 --json >"$out" 2>"$err"
[ $? -eq 0 ] && ok || { bad "model compare --against DIR"; cat "$err"; }
grep -q '"logits_rel_err": 0.0' "$out" && grep -q '"top1_agreement": 1.0' "$out" && ok ||
    bad "q8 at load vs the q8 checkpoint is not identical"
[ "$(grep -c '"prompt"' "$out")" -eq 2 ] && ok || bad "compare did not run both prompts"
"$bin" model compare --model "$model" --weights q8 --against "$qdir/nope" >"$out" 2>"$err"
[ $? -eq 3 ] && ok || bad "compare against a missing checkpoint: want exit 3"
"$bin" model compare --model "$qdir/q8" --against bf16 >"$out" 2>"$err"
[ $? -eq 3 ] && ok || bad "compare --against bf16 of a q8 checkpoint: want exit 3"
"$bin" model compare --model "$model" --steps 0 >"$out" 2>"$err"
[ $? -eq 2 ] && ok || bad "compare --steps 0: want exit 2"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
