#!/bin/sh
# Every spec citation resolves: each "§N.N" in model/, docproc/, extractors/, schemas/, tests/ and
# docs/ (except "STYLE §N", which cites STYLE.md) names a numbered heading of docs/spec.md; ranges
# ("§2.3-§2.7", "§6.2–6.4") are checked at both ends. Usage: check_spec_refs.sh [ROOT]
# (default $DP_SOURCE_DIR or .). Prints each unresolved citation and "N checked, N unresolved";
# exits 1 when any is unresolved or docs/spec.md has no numbered heading.
root=${1:-${DP_SOURCE_DIR:-.}}
spec="$root/docs/spec.md"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# "## 1. Checkpoint format" -> 1, "#### 2.4.1 PIL bicubic" -> 2.4.1
grep -E '^#{2,4} [0-9]+(\.[0-9]+)*\.? ' "$spec" 2>/dev/null |
    sed -E 's/^#+ ([0-9]+(\.[0-9]+)*)\.? .*/\1/' | sort -u >"$tmp/heads"
if [ ! -s "$tmp/heads" ]; then
    echo "FAIL: $spec has no numbered headings"
    exit 1
fi
dirs=""
for d in model docproc extractors schemas tests docs; do
    [ -d "$root/$d" ] && dirs="$dirs $root/$d"
done
# shellcheck disable=SC2086
grep -rnE --include='*.c' --include='*.h' --include='*.md' --include='*.sh' --include='*.txt' \
    '§' $dirs 2>/dev/null | grep -v "^$spec:" >"$tmp/lines"
checked=0 bad=0
while IFS= read -r line; do
    loc=${line%%:*}
    rest=${line#*:}
    loc="$loc:${rest%%:*}"
    text=${rest#*:}
    # citations of STYLE.md ("STYLE §2.7", "STYLE.md §3") are not spec citations
    text=$(printf '%s\n' "$text" | sed -E 's/STYLE(\.md)? ?§[0-9.]+//g')
    for cite in $(printf '%s\n' "$text" |
        grep -oE '§[0-9]+(\.[0-9]+)*(( ?(-|–|/) ?)§?[0-9]+(\.[0-9]+)*)*' |
        sed -E 's/( ?(-|–|\/) ?)/ /g; s/§//g'); do
        cite=${cite%.}
        checked=$((checked + 1))
        if ! grep -qxF "$cite" "$tmp/heads"; then
            echo "FAIL: $loc: spec §$cite is not a heading of docs/spec.md"
            bad=$((bad + 1))
        fi
    done
done <"$tmp/lines"
echo "$checked checked, $bad unresolved"
[ "$bad" -eq 0 ]
