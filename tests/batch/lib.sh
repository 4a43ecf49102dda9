# Shared helpers of the batch CLI tests (POSIX sh). Sourced; defines check, T (temp dir), TOOL.
set -u
passed=0
failed=0
BIN=${DP_BIN:?DP_BIN must point at the docproc binary}
SRC=${DP_SOURCE_DIR:?DP_SOURCE_DIR must point at the source tree}
TOOL=${DP_BATCH_TOOL:?DP_BATCH_TOOL must point at batch_tool}
T=${DP_KEEP_T:-$(mktemp -d "${TMPDIR:-/tmp}/dp-batch-test.XXXXXX")}
[ -n "${DP_KEEP_T:-}" ] || trap 'rm -rf "$T"' EXIT

# check DESCRIPTION COMMAND...: runs the command, counts and reports the result.
check() {
    desc=$1
    shift
    if "$@"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAIL: $desc" >&2
    fi
}

# finish: prints the line CI reads and exits non-zero on failure.
finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}
