#!/bin/sh
# The dependency rule of docs/architecture.md, checked on every #include "..." of the library
# sources: a folder may include its own headers and those of the folders below it, never one
# above; project headers are included by bare name ("dp_alloc.h", never "../base/dp_alloc.h").
# Usage: check_layers.sh [ROOT]. Prints each violation as FILE:LINE: message, then
# "N includes checked, N violations"; exits 1 on any violation.
root=${1:-${DP_SOURCE_DIR:-.}}
# folder:layer name, lowest first (the order docs/architecture.md lists)
folders="model:model docproc/base:base schemas:schemas extractors:extractors docproc/ingest:ingest docproc/out:out docproc/batch:batch docproc/cli:cli"
# what each layer may include besides itself
below() {
    case $1 in
    model) echo "" ;;
    base) echo "" ;;
    schemas) echo "base" ;;
    extractors) echo "base schemas" ;;
    ingest) echo "base model" ;;
    out) echo "base schemas extractors" ;;
    batch) echo "base model schemas extractors ingest out" ;;
    cli) echo "base model schemas extractors ingest out batch" ;;
    esac
}
map=$(mktemp)
trap 'rm -f "$map"' EXIT
for fl in $folders; do
    dir=${fl%%:*} layer=${fl#*:}
    [ -d "$root/$dir" ] || { echo "missing folder $dir"; exit 1; }
    for h in "$root/$dir"/*.h; do
        [ -e "$h" ] && echo "$(basename "$h") $layer"
    done
done >"$map"
checked=0 bad=0
for fl in $folders; do
    dir=${fl%%:*} layer=${fl#*:}
    ok=" $layer $(below "$layer") "
    for f in "$root/$dir"/*.c "$root/$dir"/*.h; do
        [ -e "$f" ] || continue
        rel=${f#"$root"/}
        out=$(grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" |
            sed 's/^\([0-9]*\):.*include[[:space:]]*"\([^"]*\)".*/\1 \2/' |
            while read -r line inc; do
                case $inc in
                */*)
                    echo "$rel:$line: \"$inc\": include project headers by bare name"
                    continue
                    ;;
                esac
                owner=$(awk -v h="$inc" '$1 == h { print $2; exit }' "$map")
                if [ -z "$owner" ]; then
                    echo "$rel:$line: \"$inc\" is no header of model/, schemas/, extractors/ or docproc/"
                elif ! echo "$ok" | grep -q " $owner "; then
                    echo "$rel:$line: $layer may not include \"$inc\" (layer $owner is not below it)"
                fi
            done)
        n=$(grep -c '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f")
        checked=$((checked + n))
        if [ -n "$out" ]; then
            echo "$out"
            bad=$((bad + $(echo "$out" | wc -l)))
        fi
    done
done
echo "$checked includes checked, $bad violations"
[ "$bad" -eq 0 ]
