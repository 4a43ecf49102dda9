#!/bin/sh
# `docproc ask` with several prompts (--prompt repeated, --prompts FILE): one JSON Lines record
# per prompt in prompt order, each with the ids the prompt gets alone (sampled, so the prompts'
# answers differ), at --parallel 1, 2 and the default; option errors.
set -u
BIN=${DP_BIN:?}
MODEL=${DP_FIXTURES:?}/qwen25vl-tiny/model
IMG=${DP_SOURCE_DIR:?}/samples/invoice2data/AmazonWebServices.png
T=$(mktemp -d "${TMPDIR:-/tmp}/dp-ask.XXXXXX")
trap 'rm -rf "$T"' EXIT
passed=0 failed=0
check() {
    d=$1
    shift
    if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: $d" >&2; fi
}
OPTS="--model $MODEL --image $IMG --max-pixels 50176 --max-new-tokens 10 --temperature 1 --seed 7 --threads 2"
printf 'What is this?\n\nRead the total.\r\nWho is the vendor?\nList the items.\n' >"$T/p.txt"
i=0
while IFS= read -r q; do
    q=$(printf '%s' "$q" | tr -d '\r')
    [ -n "$q" ] || continue
    i=$((i + 1))
    # shellcheck disable=SC2086
    "$BIN" ask $OPTS --prompt "$q" --print-ids | tail -n 1 | tr -d ' ' >"$T/alone$i"
done <"$T/p.txt"
check "four prompts" [ "$i" -eq 4 ]
for par in 1 2 8; do
    # shellcheck disable=SC2086
    "$BIN" ask $OPTS --prompts "$T/p.txt" --print-ids --parallel $par >"$T/out$par" 2>"$T/err"
    check "--prompts --parallel $par exits 0" [ $? -eq 0 ]
    check "--parallel $par: one record per prompt" [ "$(wc -l <"$T/out$par")" -eq 4 ]
    for k in 1 2 3 4; do
        got=$(sed -n "${k}p" "$T/out$par" | sed 's/.*"ids":\(\[[^]]*\]\).*/\1/')
        check "--parallel $par prompt $k: ids as alone" [ "$got" = "$(cat "$T/alone$k")" ]
    done
done
check "records in prompt order" grep -q '^{"prompt":"Read the total."' "$T/out1"
check "answers differ between prompts" [ "$(sort -u "$T"/alone? | wc -l)" -ge 3 ]
# shellcheck disable=SC2086
"$BIN" ask $OPTS --prompt "What is this?" --prompt "Read the total." --print-ids >"$T/rep"
check "repeated --prompt" [ "$(sed -n 2p "$T/rep" | sed 's/.*"ids":\(\[[^]]*\]\).*/\1/')" = "$(cat "$T/alone2")" ]
# errors
# shellcheck disable=SC2086
"$BIN" ask $OPTS --prompt a --prompts "$T/p.txt" >/dev/null 2>&1
check "--prompt with --prompts: usage error" [ $? -eq 2 ]
# shellcheck disable=SC2086
"$BIN" ask $OPTS --prompt a --prompt b --dump "$T/d" >/dev/null 2>&1
check "--dump with two prompts: usage error" [ $? -eq 2 ]
# shellcheck disable=SC2086
"$BIN" ask $OPTS --prompt a --parallel 0 >/dev/null 2>&1
check "--parallel 0: usage error" [ $? -eq 2 ]
# shellcheck disable=SC2086
"$BIN" ask $OPTS --prompts "$T/missing.txt" >/dev/null 2>"$T/err"
rc=$?
check "missing --prompts file: an error naming it ($rc)" [ "$rc" -ne 0 ] && grep -q missing.txt "$T/err"
printf '\n\n' >"$T/empty.txt"
# shellcheck disable=SC2086
"$BIN" ask $OPTS --prompts "$T/empty.txt" >/dev/null 2>"$T/err"
check "a --prompts file without prompts is an error" [ $? -ne 0 ] && grep -q "no prompt" "$T/err"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
