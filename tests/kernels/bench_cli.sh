#!/bin/sh
# CLI test of `docproc bench` on the tiny fixture checkpoint: the JSON carries every figure and
# the config, text-only mode works, and bad options exit 2 with a message. Needs DP_BIN and
# DP_FIXTURES. Prints "N passed, N failed".
bin=${DP_BIN:?DP_BIN not set}
model=${DP_FIXTURES:?DP_FIXTURES not set}/qwen25vl-tiny/model
out=$(mktemp)
err=$(mktemp)
trap 'rm -f "$out" "$err"' EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }

"$bin" bench --model "$model" --image-size 56x84 --prompt-tokens 5 --gen-tokens 3 --threads 2 \
    >"$out" 2>"$err"
[ $? -eq 0 ] && ok || { bad "bench exit status"; cat "$err"; }
for key in vision_encode_s prefill_tokens_per_s decode_tokens_per_s peak_rss_mib load_s \
    generate_cpu_s n_vision_tokens config threads n_batch attn_block grid_thw cpu blas_core simd \
    gemv_prefetch_bytes gemv_page_ahead_bytes decode_weight_gb_per_s decode_step_weight_bytes \
    integer_kernels qgemv_prefetch_bytes; do
    grep -q "\"$key\"" "$out" && ok || bad "key $key missing"
done
# 56x84 -> grid (1, 4, 6) -> 6 merged tokens; 3 generated tokens = 1 prefill + 2 decode steps
grep -q '"n_vision_tokens": 6,' "$out" && ok || bad "n_vision_tokens"
grep -q '"generated_tokens": 3,' "$out" && ok || bad "generated_tokens"
grep -q '"decode_tokens": 2,' "$out" && ok || bad "decode_tokens"
# the integer kernel table: one of the four names; VL_SIMD=off makes it the scalar twin
grep -Eq '"integer_kernels": "(scalar|avx2|avxvnni|avx512vnni)"' "$out" && ok || bad "integer_kernels"
VL_SIMD=off "$bin" bench --model "$model" --no-image --prompt-tokens 4 --gen-tokens 1 --threads 1 \
    --weights q8 >"$out" 2>"$err"
grep -q '"integer_kernels": "scalar"' "$out" && ok || bad "VL_SIMD=off integer_kernels"
# the huge-page share of the weight mappings: a fraction, or null where /proc cannot tell
share=$(awk -F': ' '/"weights_huge_page_share"/ {gsub(",", "", $2); print $2}' "$out")
if [ -r /proc/self/smaps ]; then
    awk -v s="$share" 'BEGIN { exit !(s ~ /^[0-9.e+-]+$/ && s >= 0 && s <= 1) }' && ok ||
        bad "weights_huge_page_share '$share' is not a fraction"
else
    [ "$share" = null ] && ok || bad "weights_huge_page_share '$share' without /proc"
fi

"$bin" bench --model "$model" --no-image --prompt-tokens 4 --gen-tokens 2 --threads 1 --batch 2 \
    >"$out" 2>"$err"
[ $? -eq 0 ] && ok || { bad "text-only bench"; cat "$err"; }
grep -q '"n_vision_tokens": 0,' "$out" && ok || bad "text-only has vision tokens"
grep -q '"n_batch": 2,' "$out" && ok || bad "--batch not applied"

"$bin" bench --model "$model" --image-size 28x28 --prompt-tokens 1 --gen-tokens 1 --threads 2 \
    >"$out" 2>"$err"
[ $? -eq 0 ] && grep -q '"warmup_s"' "$out" && ok || { bad "tiny image with warm-up"; cat "$err"; }
"$bin" bench --model "$model" --image-size 28x28 --gen-tokens 1 --no-warmup >"$out" 2>"$err"
[ $? -eq 0 ] && grep -q '"warmup_s": 0' "$out" && ok || { bad "--no-warmup"; cat "$err"; }

"$bin" bench --model "$model" --no-image --prompt-tokens 40 --gen-tokens 2 --batch 30 \
    --attn-block 7 >"$out" 2>"$err"
[ $? -eq 0 ] && grep -q '"attn_block": 7,' "$out" && ok || { bad "--attn-block"; cat "$err"; }

# --repeat: one entry per timed request, the figures their medians (3 runs: the middle one)
"$bin" bench --model "$model" --no-image --prompt-tokens 6 --gen-tokens 3 --repeat 3 \
    >"$out" 2>"$err"
[ $? -eq 0 ] && grep -q '"repeat": 3,' "$out" && ok || { bad "--repeat"; cat "$err"; }
[ "$(grep -c '"prefill_s"' "$out")" -eq 4 ] && ok || bad "--repeat: runs array"
median=$(awk -F': ' '/^      "prefill_s"/ {gsub(",", "", $2); print $2}' "$out" | sort -g |
    sed -n 2p)
top=$(awk -F': ' '/^  "prefill_s"/ {gsub(",", "", $2); print $2}' "$out")
[ -n "$median" ] && [ "$median" = "$top" ] && ok ||
    bad "--repeat: prefill_s $top is not the median $median"
for args in "--repeat 0" "--repeat 101" "--repeat x" "--attn-block 0" "--attn-block 9x" \
    "--batch -1" "--gen-tokens 99999999999999999999"; do
    # shellcheck disable=SC2086
    "$bin" bench --model "$model" $args >"$out" 2>"$err"
    [ $? -eq 2 ] && grep -q -- "${args%% *}: expected" "$err" && ! [ -s "$out" ] && ok ||
        bad "bad value accepted or unclear: $args"
done

# the GEMV prefetch distances: the default, a value in range, and bad values refused with a
# warning naming the variable (the default kept)
knob() { # variable, bench key, default, max, in-range value
    for v in "" 0 "$5" -1 $(($4 + 1)) 12x; do
        env "$1=$v" "$bin" bench --model "$model" --no-image --prompt-tokens 2 --gen-tokens 2 \
            >"$out" 2>"$err"
        rc=$?
        case $v in
        0 | "$5") want=$v warn= ;;
        "") want=$3 warn= ;;
        *) want=$3 warn=yes ;;
        esac
        [ $rc -eq 0 ] && grep -q "\"$2\": $want" "$out" && ok || bad "$1='$v': want $want"
        if [ -n "$warn" ]; then
            grep -q "$1=$v: not 0..$4 bytes" "$err" && ok || bad "$1='$v': no warning"
        fi
    done
}
knob VL_GEMV_PREFETCH gemv_prefetch_bytes 1024 16384 4096
knob VL_QGEMV_PREFETCH qgemv_prefetch_bytes 1536 16384 4096
knob VL_GEMV_PAGE_AHEAD gemv_page_ahead_bytes 65536 4194304 16384

# OpenBLAS kernel family: OPENBLAS_CORETYPE is honoured, and a value the user set is kept
# silently, even a narrower family than the CPU runs (machines set it where an old OpenBLAS
# miscomputes with the wider kernels); docproc re-executes itself with the widest when unset.
native=$("$bin" version | sed -n 's/.*(kernels \(.*\))$/\1/p')
[ -n "$native" ] && ok || bad "version names no OpenBLAS kernels"
OPENBLAS_CORETYPE=Prescott "$bin" version >"$out" 2>"$err"
grep -q '(kernels Prescott)' "$out" && ok || bad "OPENBLAS_CORETYPE=Prescott not honoured"
! grep -q warning "$err" && ok || { bad "warning for a user-set OPENBLAS_CORETYPE"; cat "$err"; }

# the re-exec itself, with an OpenBLAS that reports narrower kernels (tests/kernels/
# blas_core_shim.c, preloaded): docproc restarts with OPENBLAS_CORETYPE set to the widest family
# and then runs it, silently; an OpenBLAS that ignores the variable gets one warning, no loop.
shim=${DP_BLAS_SHIM:?DP_BLAS_SHIM not set}
preload() { # MODE CMD...: run with the shim; ASan must accept a library loaded before its own
    mode=$1
    shift
    env -u OPENBLAS_CORETYPE DP_SHIM_MODE=$mode LD_PRELOAD=$shim \
        ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" "$@"
}
case $native in
Haswell | Zen | Excavator | SkylakeX | Cooperlake | SapphireRapids)
    preload stale "$bin" version >"$out" 2>"$err"
    [ $? -eq 0 ] && grep -Eq '\(kernels (Haswell|SkylakeX)\)' "$out" && ! [ -s "$err" ] && ok ||
        { bad "no re-exec with the widest kernels"; cat "$out" "$err"; }
    preload stale "$bin" bench --model "$model" --no-image --prompt-tokens 2 --gen-tokens 2 \
        >"$out" 2>"$err"
    [ $? -eq 0 ] && grep -Eq '"blas_core": "(Haswell|SkylakeX)"' "$out" && ok ||
        { bad "bench after the re-exec"; cat "$err"; }
    preload deaf "$bin" version >"$out" 2>"$err"
    [ $? -eq 0 ] && grep -q '(kernels Prescott)' "$out" &&
        [ "$(grep -c 'OpenBLAS ignores OPENBLAS_CORETYPE=' "$err")" -eq 1 ] && ok ||
        { bad "an OpenBLAS deaf to OPENBLAS_CORETYPE"; cat "$out" "$err"; }
    ;;
*) ;; # no wider family to restart with
esac

# a hostile or meaningless OPENBLAS_CORETYPE: OpenBLAS falls back to its own choice, docproc runs
for v in "" "%s%n%s" "../../etc/passwd" "SkylakeX;rm -rf /"; do
    OPENBLAS_CORETYPE=$v "$bin" version >"$out" 2>"$err"
    [ $? -eq 0 ] && grep -q '(kernels ' "$out" && ok || bad "OPENBLAS_CORETYPE='$v' broke version"
done

"$bin" bench --help >"$out" 2>&1
[ $? -eq 0 ] && grep -q -- "--image-size" "$out" && ok || bad "--help"
for args in "--model $model --threads 0" "--model $model --image-size 12" "--bogus" \
    "--model $model --no-image --prompt-tokens 0" "--model $model extra"; do
    # shellcheck disable=SC2086
    "$bin" bench $args >"$out" 2>"$err"
    [ $? -eq 2 ] && [ -s "$err" ] && ok || bad "usage error for: $args"
done
DOCPROC_MODEL= "$bin" bench >"$out" 2>"$err"
[ $? -eq 2 ] && ok || bad "missing --model"
"$bin" bench --model /nonexistent-model-dir >"$out" 2>"$err"
[ $? -eq 3 ] && ok || bad "missing model dir should exit 3"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
