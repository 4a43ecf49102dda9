#!/bin/sh
# The layering check (check_layers.sh) passes on the tree and fails on planted includes of a
# higher layer (and on a relative include) in a temporary copy of the sources, so the check
# itself is known to work. Env: DP_SOURCE_DIR. Prints "N passed, N failed".
root=${DP_SOURCE_DIR:-.}
here=$(dirname "$0")
pass=0 fail=0
ok() { if [ "$2" = 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $1"; fi; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

sh "$here/check_layers.sh" "$root" >"$T/out" 2>&1
r=$?
[ $r = 0 ] || cat "$T/out"
ok "the tree keeps the dependency rule" $r
grep -q '^[1-9][0-9]* includes checked, 0 violations$' "$T/out"
ok "the check saw the tree's includes" $?

# a fresh copy of the sources (headers and C files only) for each planted include
copy() {
    rm -rf "$T/tree"
    for d in model schemas extractors docproc/base docproc/ingest docproc/out docproc/batch docproc/cli; do
        mkdir -p "$T/tree/$d"
        cp "$root/$d"/*.c "$root/$d"/*.h "$T/tree/$d/" 2>/dev/null
    done
}
# plant FILE LINE: appends LINE to FILE of the copy; the check must fail and name FILE
plant() {
    copy
    printf '%s\n' "$2" >>"$T/tree/$1"
    sh "$here/check_layers.sh" "$T/tree" >"$T/out" 2>&1
    r=$?
    [ $r != 0 ] && grep -q "^$1:[0-9]*: $3" "$T/out"
    r2=$?
    [ $r2 = 0 ] || cat "$T/out"
    ok "planted in $1: $2" $r2
}
plant docproc/batch/dp_hash.c '#include "dp_cli.h"' 'batch may not include "dp_cli.h" (layer cli is not below it)'
plant docproc/out/dp_out.h '#include "dp_batch.h"' 'out may not include "dp_batch.h" (layer batch is not below it)'
plant docproc/ingest/dp_vl.c '#include "dp_out.h"' 'ingest may not include "dp_out.h" (layer out is not below it)'
plant docproc/base/dp_fs.c '#include "dp_ingest.h"' 'base may not include "dp_ingest.h" (layer ingest is not below it)'
plant model/vl_config.c '#include "dp_alloc.h"' 'model may not include "dp_alloc.h" (layer base is not below it)'
plant extractors/ex_json.c '#include "dp_out.h"' 'extractors may not include "dp_out.h" (layer out is not below it)'
plant schemas/sc_load.c '#include "ex.h"' 'schemas may not include "ex.h" (layer extractors is not below it)'
plant docproc/cli/dp_cli.c '#include "../base/dp_alloc.h"' '"../base/dp_alloc.h": include project headers by bare name'

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
