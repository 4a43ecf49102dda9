#!/bin/sh
# `cmake --install` (issue #15 item 15): the binary, the built-in schemas, bench-render's default
# PDF and the man page docproc.1 land under the prefix; the man page names every command
# `docproc --help` lists and renders without warnings (where groff is installed); the installed
# binary finds its schemas and bench-render's PDF from its own location, whatever the working
# directory. Env: DP_BUILD_DIR, DP_CMAKE. Ends with "N passed, N failed".
set -u
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0
fail=0
ok() {
    if [ "$2" = 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $1"; fi
}
"${DP_CMAKE:?}" --install "${DP_BUILD_DIR:?}" --prefix "$T/p" >"$T/install.log" 2>&1
ok "cmake --install exits 0" $?
B="$T/p/bin/docproc"
MAN="$T/p/share/man/man1/docproc.1"
[ -x "$B" ]
ok "bin/docproc installed" $?
[ -f "$MAN" ]
ok "share/man/man1/docproc.1 installed" $?
[ -f "$T/p/share/docproc/schemas/invoice.json" ]
ok "built-in schemas installed" $?
"$B" --help >"$T/help" 2>&1
cmds=$(sed -n '/^commands:/,/^$/p' "$T/help" | awk 'NF >= 2 { print $1 }')
[ -n "$cmds" ]
ok "docproc --help lists commands" $?
for c in $cmds; do
    grep -q "^\.B $(echo "$c" | sed 's/-/\\\\-/g')\$" "$MAN"
    ok "the man page describes '$c'" $?
done
if command -v groff >/dev/null 2>&1; then
    groff -man -Tutf8 -ww -z "$MAN" >"$T/groff.err" 2>&1 && [ ! -s "$T/groff.err" ]
    ok "the man page renders without warnings" $?
else
    echo "note: groff not installed, the man page was not rendered"
fi
mkdir -p "$T/cwd"
(cd "$T/cwd" && "$B" bench-render --pages 1 --runs 1 --no-pdftoppm) >"$T/br" 2>&1
ok "installed bench-render finds its default PDF from another directory" $?
grep -q "$T/p/bin/../share/docproc/samples/" "$T/br"
ok "... the copy installed beside the binary" $?
(cd "$T/cwd" && "$B" extract --help) | grep -q 'built-in: chart, form, invoice'
ok "installed extract finds the built-in schemas" $?
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
