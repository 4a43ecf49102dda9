#!/bin/sh
# The spec-citation check (check_spec_refs.sh) passes on the tree and fails on a planted bad
# citation, so the check itself is known to work. Env: DP_SOURCE_DIR. Prints "N passed, N failed".
root=${DP_SOURCE_DIR:-.}
here=$(dirname "$0")
pass=0 fail=0
ok() { if [ "$2" = 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $1"; fi; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

sh "$here/check_spec_refs.sh" "$root" >"$T/out" 2>&1
r=$?
[ $r = 0 ] || cat "$T/out"
ok "every spec § citation of the tree is a heading of docs/spec.md" $r

# planted: a copy of docs/spec.md and a source file citing one good and two missing sections
mkdir -p "$T/tree/docs" "$T/tree/model"
cp "$root/docs/spec.md" "$T/tree/docs/spec.md"
S='§' # spelled through a variable so this script itself cites nothing missing
printf '/* spec %s2.4.1, spec %s4.3-%s4.99 (planted) */\n/* STYLE %s9.9 is no spec citation */\n' \
    "$S" "$S" "$S" "$S" >"$T/tree/model/planted.c"
sh "$here/check_spec_refs.sh" "$T/tree" >"$T/out" 2>&1
r=$?
[ $r != 0 ] && grep -q "planted.c:1: spec ${S}4.99 is not a heading" "$T/out" &&
    grep -q '3 checked, 1 unresolved' "$T/out"
r2=$?
[ $r2 = 0 ] || cat "$T/out"
ok "a planted citation of a missing section fails the check" $r2

# planted: a spec without numbered headings fails instead of passing everything
printf '# nothing numbered\n' >"$T/tree/docs/spec.md"
sh "$here/check_spec_refs.sh" "$T/tree" >/dev/null 2>&1
r=$?
[ $r != 0 ]
ok "a docs/spec.md without numbered headings fails the check" $?

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
