#!/bin/sh
# CLI tests of tokenize / detokenize / model info / model synth on the fixture checkpoint and on
# corrupted copies. Prints "N passed, N failed".
M="$DP_FIXTURES/qwen25vl-tiny/model"
B="$DP_BIN"
T=$(mktemp -d /tmp/dp_cli_rt.XXXXXX)
trap 'rm -rf "$T"' EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }
check() { # description, expected, actual
    if [ "$2" = "$3" ]; then ok; else bad "$1: got [$3] expected [$2]"; fi
}
code() { # description, expected exit code, command...
    d=$1 want=$2
    shift 2
    "$@" >"$T/out" 2>"$T/err"
    rc=$?
    if [ "$rc" = "$want" ]; then ok; else bad "$d: exit $rc, expected $want: $(cat "$T/err")"; fi
}

check "tokenize" "9707 256 1879 24796 220 15229 594 220 220 16 17 18" \
    "$("$B" tokenize --model "$M" "Hello   world!!

  foo's  123")"
check "tokenize special tokens" "[151644, 8948, 198, 151645]" \
    "$("$B" tokenize --json --model "$M" "<|im_start|>system
<|im_end|>")"
printf 'Describe this image.' >"$T/in.txt"
check "tokenize --file" "74785 419 2168 13" "$("$B" tokenize --model "$M" --file "$T/in.txt")"
check "tokenize --model FILE" "74785 419 2168 13" "$("$B" tokenize --model "$M/tokenizer.json" "Describe this image.")"
check "detokenize" "Describe this image." "$("$B" detokenize --model "$M" 74785 419 2168 13)"
check "detokenize json list" "<|im_start|>system" "$("$B" detokenize --model "$M" "[151644, 8948]")"
check "detokenize skip special" "system" "$("$B" detokenize --skip-special --model "$M" 151644 8948 151645)"
check "round trip" "Grüße, 世界 😀" \
    "$("$B" detokenize --model "$M" "$("$B" tokenize --json --model "$M" "Grüße, 世界 😀")")"
DOCPROC_MODEL="$M" code "DOCPROC_MODEL" 0 "$B" tokenize x
code "bench" 0 "$B" tokenize --bench --model "$M" --file "$T/in.txt"
grep -q "MB/s" "$T/out" && ok || bad "bench prints MB/s"
code "tokenize without model" 2 env -u DOCPROC_MODEL "$B" tokenize x
code "tokenize unknown option" 2 "$B" tokenize --model "$M" --frob x
code "detokenize bad id" 2 "$B" detokenize --model "$M" 12x
code "detokenize negative id" 2 "$B" detokenize --model "$M" -- -5
code "tokenize invalid utf-8" 6 "$B" tokenize --model "$M" "$(printf 'a\377b')"
code "tokenize missing model" 3 "$B" tokenize --model "$T/none" x
code "tokenize --help" 0 "$B" tokenize --help

code "model info" 0 "$B" model info "$M"
grep -q "architecture: qwen2_5_vl" "$T/out" && ok || bad "info architecture"
grep -q "tensors: 80 (BF16 80)" "$T/out" && ok || bad "info tensors"
grep -q "total 10085312" "$T/out" && ok || bad "info parameter total"
grep -q "0 non-finite values" "$T/out" && ok || bad "info scan"
code "model info --json" 0 "$B" model info --json "$M"
grep -q '"total": 10085312' "$T/out" && ok || bad "info json total"
# one decode step reads 2 layers x 30,976 BF16 values (norms 2x64, q/o 2x64x64 + bias 64, k/v
# 2x(32x64 + 32), gate/up/down 3x64x96), the final norm 64, the tied head 151936x64 and one
# embedding row 64: 9,785,984 values = 19,571,968 bytes
grep -q '"decode_step_weight_bytes": 19571968' "$T/out" && ok || bad "info decode step bytes"
code "model no subcommand" 2 "$B" model
code "model bad subcommand" 2 "$B" model frob
code "model info no dir" 2 "$B" model info
code "model info missing dir" 3 "$B" model info "$T/none"
# a missing --model path is named as given (it once read "$T/none.gguf/config.json: ...")
code "ask missing model path" 3 "$B" ask --model "$T/none.gguf" --prompt hi
grep -qx "docproc ask: $T/none.gguf: No such file or directory" "$T/err" && ok ||
    bad "missing model message: $(cat "$T/err")"

# corrupted copies
mkdir -p "$T/c"
cp "$M"/*.json "$T/c/"
head -c 1000000 "$M/model.safetensors" >"$T/c/model.safetensors"
code "truncated checkpoint" 3 "$B" model info "$T/c"
grep -q "beyond the data section" "$T/err" && ok || bad "truncated message: $(cat "$T/err")"
printf '\377\377\377\377\000\000\000\000{}' >"$T/c/model.safetensors"
code "header length beyond file" 3 "$B" model info "$T/c"
grep -q "header length" "$T/err" && ok || bad "header length message: $(cat "$T/err")"
sed 's/"qwen2_5_vl"/"qwen2_vl"/' "$M/config.json" >"$T/c/config.json"
cp "$M/model.safetensors" "$T/c/"
code "qwen2-vl refused" 3 "$B" model info "$T/c"
grep -q "Qwen2-VL" "$T/err" && ok || bad "qwen2-vl message"

# synth: tiny, sharded, loads and validates
code "synth tiny" 0 "$B" model synth --shape tiny -o "$T/s" --shard-size 3000000 --from "$M"
code "synth info" 0 "$B" model info "$T/s"
grep -q "files: 3" "$T/out" && ok || bad "synth shard count: $(grep files "$T/out")"
check "synth tokenizer copied" "74785 419 2168 13" "$("$B" tokenize --model "$T/s" "Describe this image.")"
code "synth refuses to overwrite" 4 "$B" model synth --shape tiny -o "$T/s"
code "synth --force" 0 "$B" model synth --shape tiny -o "$T/s" --force --seed 3
code "synth bad shape" 2 "$B" model synth --shape 9b -o "$T/x"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
