#!/bin/sh
# CLI conformance of every command and subcommand that `docproc --help` lists (docs/cli.md,
# STYLE 2.10): `--help` exits 0 and prints to stdout only; an unknown option, a missing option
# value and a missing required argument exit 2 with "try 'docproc CMD --help'" on stderr and
# nothing on stdout; bad numbers (--dpi abc, --threads 0, --max-new-tokens -1, ...) exit 2 for
# every command that takes them; --threads defaults to the online CPUs wherever it exists;
# `docproc --version` prints the version. Commands are discovered from the help texts, so a new
# command is covered without editing this file. Env: DP_BIN, DP_SOURCE_DIR. Ends with "N passed, N failed".
set -u
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
unset DOCPROC_MODEL
pass=0
fail=0
ok() {
    if [ "$2" = 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $1"; fi
}
# run CMD_WORDS... -- ARGS...: runs docproc with stdout in $T/out, stderr in $T/err, rc in $rc.
run() {
    "$DP_BIN" "$@" >"$T/out" 2>"$T/err" </dev/null
    rc=$?
}
show() { echo "  exit $rc; stdout: $(head -c 200 "$T/out")"; echo "  stderr: $(head -c 300 "$T/err")"; }
# usage_error NAME CMD -- ARGS...: exit 2, the try line on stderr, nothing on stdout.
usage_error() {
    name=$1 cmd=$2
    shift 2
    # shellcheck disable=SC2086
    run $cmd "$@"
    r=0
    [ "$rc" = 2 ] || r=1
    grep -qF "try 'docproc $cmd --help'" "$T/err" || r=1
    [ -s "$T/out" ] && r=1
    [ $r = 0 ] || show
    ok "docproc $cmd $*: $name" $r
}

# ---- top level --------------------------------------------------------------------------
run --help
r=0; [ "$rc" = 0 ] && [ -s "$T/out" ] && [ ! -s "$T/err" ] || r=1
ok "docproc --help" $r
cp "$T/out" "$T/top-help"
r=0; grep -q '^examples:$' "$T/top-help" || r=1
ok "docproc --help shows examples" $r
run --version
r=0; [ "$rc" = 0 ] && grep -Eq '^docproc [0-9]+\.[0-9]+\.[0-9]+' "$T/out" || r=1
ok "docproc --version prints the version" $r
version=$(head -n 1 "$T/out")
run version
r=0; [ "$rc" = 0 ] && [ "$(head -n 1 "$T/out")" = "$version" ] || r=1
ok "docproc version = docproc --version" $r
run no-such-command
r=0; [ "$rc" = 2 ] && [ ! -s "$T/out" ] && grep -q "try 'docproc --help'" "$T/err" || r=1
ok "unknown command exits 2" $r
run
r=0; [ "$rc" = 2 ] && [ ! -s "$T/out" ] || r=1
ok "no command exits 2" $r

# Options may follow the inputs (the documented form is `rasterize INPUT... -o DIR`).
run rasterize "$DP_SOURCE_DIR/samples/invoice2data/oyo.pdf" -o "$T/r" --max-pixels 100000
r=0; [ "$rc" = 0 ] && [ -f "$T/r/oyo.pdf/page-0001.png" ] || r=1
[ $r = 0 ] || show
ok "rasterize INPUT -o DIR (options after the input)" $r

# ---- commands and subcommands -------------------------------------------------------------
cmds=$(sed -n '/^commands:/,/^$/p' "$T/top-help" | awk 'NF >= 2 { print $1 }')
[ -n "$cmds" ]
ok "docproc --help lists commands" $?
all=""
for c in $cmds; do
    run "$c" --help
    # Subcommands: "docproc CMD SUB ..." usage lines where SUB is a plain word.
    subs=$(grep -Eo "docproc $c [a-z][a-z-]*" "$T/out" | awk '{ print $3 }' | sort -u)
    if [ -n "$subs" ]; then
        for s in $subs; do all="$all $c:$s"; done
    else
        all="$all $c"
    fi
done
ncpu=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
[ "$ncpu" -gt 256 ] && ncpu=256
# Commands without a required argument (running them bare does real work or just succeeds).
no_required=" version bench-render "
for entry in $all; do
    cmd=$(echo "$entry" | tr ':' ' ')
    # shellcheck disable=SC2086
    run $cmd --help
    r=0; [ "$rc" = 0 ] && [ -s "$T/out" ] && [ ! -s "$T/err" ] || r=1
    [ $r = 0 ] || show
    ok "docproc $cmd --help exits 0 on stdout" $r
    cp "$T/out" "$T/help"
    # Every help ends its description with examples of the command itself (issue #15 item 15).
    r=0
    sed -n '/^examples:$/,/^$/p' "$T/help" | grep -q "^  docproc ${cmd%% *}" || r=1
    ok "docproc $cmd --help shows examples" $r
    usage_error "unknown option" "$cmd" --no-such-option
    usage_error "unknown option after an argument" "$cmd" x --no-such-option-2
    case "$no_required" in
    *" $cmd "*) ;;
    *) usage_error "missing required argument" "$cmd" ;;
    esac
    # Numeric options the command documents get bad values.
    for spec in "--dpi abc" "--dpi 0" "--min-pixels abc" "--max-pixels -5" \
        "--max-decode-pixels 1.5" "--threads 0" "--threads abc" "--threads 100000" \
        "--max-new-tokens -1" "--max-new-tokens 0" "--temperature -1" "--top-k x" \
        "--top-p 0" "--top-p 2" "--repetition-penalty 0" "--seed -3" "--jobs 0" \
        "--fps 0" "--gen-tokens 0" "--prompt-tokens -1" "--runs 0" \
        "--page 0" "--shard-size 0"; do
        opt=${spec%% *}
        grep -q -- "$opt[ =]" "$T/help" || continue
        # shellcheck disable=SC2086
        usage_error "bad number" "$cmd" $spec
        usage_error "missing value" "$cmd" "$opt"
    done
    if grep -q -- "--threads N" "$T/help"; then
        grep -q -- "--threads N .*\[online CPUs: $ncpu\]" "$T/help"
        ok "docproc $cmd --help: --threads defaults to the online CPUs ($ncpu)" $?
    fi
done
echo "commands: $all"
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
