#!/bin/sh
# CLI test of llama.cpp GGUF files (written by gguf_fixture from the tiny fixture): --mmproj on
# the model commands, a directory holding both files, text-only requests without the projector,
# and the refusals of #14 (a projector that does not fit: exit 3; an image request without a
# projector: exit 3; --weights of another format than the file's: exit 3; another architecture:
# exit 3; an unknown --weights value: exit 2). The BF16 files answer exactly as the safetensors
# checkpoint. Needs DP_BIN, DP_FIXTURE_BIN and DP_FIXTURES. Prints "N passed, N failed".
bin=${DP_BIN:?DP_BIN not set}
fxbin=${DP_FIXTURE_BIN:?DP_FIXTURE_BIN not set}
fx=${DP_FIXTURES:?DP_FIXTURES not set}/qwen25vl-tiny
model=$fx/model
img=$fx/images/b.png
out=$(mktemp)
err=$(mktemp)
g=$(mktemp -d)
trap 'rm -f "$out" "$err"; rm -rf "$g"' EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }
want() { # want RC LABEL: the last command's exit status
    [ "$rc" -eq "$1" ] && ok || { bad "$2: exit $rc, want $1"; cat "$err"; }
}

"$fxbin" "$model" "$g" || { echo "gguf_fixture failed"; exit 1; }

for cmd in extract batch tables ask bench; do
    "$bin" $cmd --help >"$out" 2>&1
    grep -q -- '--mmproj' "$out" && ok || bad "$cmd --help lacks --mmproj"
done

# the same answers as the checkpoint: image request with --mmproj, text-only without it (greedy
# and no repetition penalty on both sides: a GGUF has no generation_config.json, so the published
# defaults apply to it, while the fixture's file sets repetition_penalty 1.0)
GREEDY="--max-new-tokens 5 --temperature 0 --repetition-penalty 1"
# shellcheck disable=SC2086
a=$("$bin" ask --model "$model" --image "$img" --prompt "Describe." $GREEDY \
    --threads 2 --print-ids 2>"$err")
# shellcheck disable=SC2086
b=$("$bin" ask --model "$g/text-bf16.gguf" --mmproj "$g/mmproj-bf16.gguf" --image "$img" \
    --prompt "Describe." $GREEDY --threads 2 --print-ids 2>"$err")
rc=$?; want 0 "ask --mmproj"
[ -n "$a" ] && [ "$a" = "$b" ] && ok || bad "ask with --mmproj answers '$b', the checkpoint '$a'"
# shellcheck disable=SC2086
c=$("$bin" ask --model "$g/pair" --image "$img" --prompt "Describe." $GREEDY \
    --threads 2 --print-ids 2>"$err")
rc=$?; want 0 "ask --model DIR holding both"
[ "$a" = "$c" ] && ok || bad "ask on the directory answers '$c', the checkpoint '$a'"
# shellcheck disable=SC2086
a=$("$bin" ask --model "$model" --prompt hi $GREEDY --print-ids 2>/dev/null)
# shellcheck disable=SC2086
b=$("$bin" ask --model "$g/text-bf16.gguf" --prompt hi $GREEDY --print-ids 2>"$err")
rc=$?; want 0 "ask text-only without a projector"
[ -n "$a" ] && [ "$a" = "$b" ] && ok || bad "text-only answers differ: '$b' vs '$a'"

# an image request without a projector, a projector that does not fit: exit 3
"$bin" ask --model "$g/text-bf16.gguf" --image "$img" --prompt hi >"$out" 2>"$err"
rc=$?; want 3 "ask with an image, no projector"
grep -q -- "--mmproj" "$err" && ok || bad "no-projector message does not say --mmproj"
"$bin" ask --model "$g/text-bf16.gguf" --mmproj "$g/mmproj-bad.gguf" --prompt hi >"$out" 2>"$err"
rc=$?; want 3 "ask with a mismatched projector"
grep -q "does not match the text model" "$err" && ok || bad "mismatch message: $(cat "$err")"
"$bin" bench --model "$g/text-bf16.gguf" --mmproj "$g/mmproj-bad.gguf" --no-image \
    --prompt-tokens 4 --gen-tokens 2 >"$out" 2>"$err"
rc=$?; want 3 "bench with a mismatched projector"
"$bin" model info --mmproj "$g/mmproj-bad.gguf" "$g/text-bf16.gguf" >"$out" 2>"$err"
rc=$?; want 3 "model info with a mismatched projector"
"$bin" ask --model "$model" --mmproj "$g/mmproj-bf16.gguf" --prompt hi >"$out" 2>"$err"
rc=$?; want 3 "--mmproj with a checkpoint directory"
"$bin" ask --model "$g/mmproj-bf16.gguf" --prompt hi >"$out" 2>"$err"
rc=$?; want 3 "a projector as --model"
"$bin" ask --model "$g/text-bf16.gguf" --mmproj "$g/text-bf16.gguf" --prompt hi >"$out" 2>"$err"
rc=$?; want 3 "a text model as --mmproj"

# bench: text only without a projector; with an image it needs one
"$bin" bench --model "$g/text-bf16.gguf" --no-image --prompt-tokens 4 --gen-tokens 2 \
    >"$out" 2>"$err"
rc=$?; want 0 "bench --no-image without a projector"
"$bin" bench --model "$g/text-bf16.gguf" --image-size 56x56 --prompt-tokens 4 --gen-tokens 2 \
    >"$out" 2>"$err"
rc=$?; want 3 "bench with an image, no projector"
"$bin" bench --model "$g/text-bf16.gguf" --mmproj "$g/mmproj-bf16.gguf" --image-size 56x56 \
    --prompt-tokens 4 --gen-tokens 2 --threads 2 --vision-weights q8 >"$out" 2>"$err"
rc=$?; want 0 "bench with --mmproj"
grep -q '"vision_weights": "q8"' "$out" && ok || bad "bench --mmproj --vision-weights q8"

# model info describes the vision tower from the projector
"$bin" model info --mmproj "$g/mmproj-bf16.gguf" "$g/text-bf16.gguf" >"$out" 2>"$err"
rc=$?; want 0 "model info --mmproj"
grep -q "vision: none" "$out" && bad "model info --mmproj: no vision tower" || ok
"$bin" model info --json "$g/pair" >"$out" 2>"$err"
rc=$?; want 0 "model info on the directory"

# weights: the file's own format; another one or an unknown value
"$bin" ask --model "$g/text-q8_0.gguf" --prompt hi --max-new-tokens 2 --weights q4 >"$out" 2>"$err"
rc=$?; want 3 "--weights q4 with a Q8_0 GGUF"
grep -q "Q8_0" "$err" && ok || bad "--weights q4 on Q8_0: message does not name the type"
"$bin" bench --model "$g/text-q8_0.gguf" --no-image --prompt-tokens 4 --gen-tokens 2 \
    --weights bf16 >"$out" 2>"$err"
rc=$?; want 3 "bench --weights bf16 with a Q8_0 GGUF"
"$bin" ask --model "$g/text-q8_0.gguf" --prompt hi --max-new-tokens 2 --weights q5 >"$out" 2>"$err"
rc=$?; want 2 "--weights q5"
"$bin" ask --model "$g/text-llama.gguf" --prompt hi >"$out" 2>"$err"
rc=$?; want 3 "a GGUF of architecture llama"
grep -q "llama" "$err" && ok || bad "other architecture: message does not name it"

# extract on a page through the directory of both files: the checkpoint's raw answer
FAST="--max-pixels 12544 --min-pixels 3136 --max-new-tokens 8 --threads 1 --constrain off"
# shellcheck disable=SC2086
"$bin" extract --model "$model" --schema receipt $FAST -o "$g/o1" "$img" >"$out" 2>"$err"
rc=$?; want 0 "extract on the checkpoint"
# shellcheck disable=SC2086
"$bin" extract --model "$g/pair" --schema receipt $FAST -o "$g/o2" "$img" >"$out" 2>"$err"
rc=$?; want 0 "extract on the GGUF directory"
r1=$(find "$g/o1" -path '*raw*' -name '*.txt' | head -1)
r2=$(find "$g/o2" -path '*raw*' -name '*.txt' | head -1)
[ -n "$r1" ] && [ -n "$r2" ] && cmp -s "$r1" "$r2" && ok ||
    bad "extract: the GGUF directory's raw answer differs from the checkpoint's ($r1, $r2)"
# shellcheck disable=SC2086
"$bin" extract --model "$g/text-bf16.gguf" --schema receipt $FAST -o "$g/o3" "$img" \
    >"$out" 2>"$err"
rc=$?; want 3 "extract with a GGUF text model alone"
# shellcheck disable=SC2086
"$bin" extract --model "$g/text-bf16.gguf" --mmproj "$g/mmproj-bf16.gguf" --schema receipt \
    $FAST -o "$g/o4" "$img" >"$out" 2>"$err"
rc=$?; want 0 "extract --mmproj"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
