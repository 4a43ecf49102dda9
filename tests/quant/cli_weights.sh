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

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
