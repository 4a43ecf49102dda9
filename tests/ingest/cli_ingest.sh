#!/bin/sh
# CLI tests of `docproc rasterize` and `docproc preprocess` on samples/ and the fixture images:
# help and usage exit codes, page selection, passwords, multi-page TIFF, a batch with failing
# inputs (exit 1, nothing half-written, no temporary folders left), --force, the pixel cap,
# and preprocess output shapes. Env: DP_BIN, DP_SOURCE_DIR, DP_FIXTURES. Ends with the
# "N passed, N failed" line.
set -u
S="$DP_SOURCE_DIR/samples"
F="$DP_FIXTURES/qwen25vl-tiny"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0
fail=0
ok() {
    if [ "$2" = 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $1"; fi
}
# expect NAME WANT_RC -- command...; output in $T/out, $T/err
expect() {
    name=$1 want=$2
    shift 2
    "$@" >"$T/out" 2>"$T/err"
    rc=$?
    [ "$rc" = "$want" ]
    r=$?
    [ $r = 0 ] || { echo "  ($name: exit $rc, wanted $want)"; cat "$T/err"; }
    ok "$name" $r
}
has() { grep -q -- "$2" "$1"; ok "$3" $?; }

# help and usage
expect "rasterize --help" 0 "$DP_BIN" rasterize --help
has "$T/out" "\[150\]" "rasterize help shows the default dpi"
expect "preprocess --help" 0 "$DP_BIN" preprocess --help
has "$T/out" "\[1003520\]" "preprocess help shows the pixel budget every command uses"
expect "rasterize without -o" 2 "$DP_BIN" rasterize "$S/invoice2data/oyo.pdf"
expect "bad --dpi" 2 "$DP_BIN" rasterize --dpi abc -o "$T/o" "$S/invoice2data/oyo.pdf"
expect "bad --pages" 2 "$DP_BIN" rasterize --pages 0 -o "$T/o" "$S/invoice2data/oyo.pdf"
expect "unknown option" 2 "$DP_BIN" rasterize --frobnicate -o "$T/o" "$S/invoice2data/oyo.pdf"
expect "preprocess without inputs" 2 "$DP_BIN" preprocess -o "$T/x.safetensors"

# page selection: page 2 only
expect "rasterize --pages 2" 0 "$DP_BIN" rasterize --pages 2 -o "$T/sel" "$S/invoice2data/QualityHosting.pdf"
[ -f "$T/sel/QualityHosting.pdf/page-0002.png" ] && [ ! -e "$T/sel/QualityHosting.pdf/page-0001.png" ]
ok "only page 2 written" $?
has "$T/sel/QualityHosting.pdf/pages.json" '"page_count": 2' "pages.json has the page count"
has "$T/sel/QualityHosting.pdf/pages.json" '"width_pt"' "pages.json has the PDF page size"

# a batch with failing inputs: exit 1, good ones written, failed ones leave nothing
expect "mixed batch" 1 "$DP_BIN" rasterize -o "$T/mix" "$S/invoice2data/oyo.pdf" \
    "$S/qpdf/bad1.pdf" "$S/pdfplumber/password-example.pdf" "$S/libtiff/testfax3_bug_513.tiff" \
    "$S/libtiff/test_two_ifds.tif"
[ -f "$T/mix/oyo.pdf/page-0001.png" ] && [ -f "$T/mix/oyo.pdf/pages.json" ]
ok "good PDF written" $?
[ -f "$T/mix/test_two_ifds.tif/page-0002.png" ]
ok "two-page TIFF written" $?
[ ! -e "$T/mix/bad1.pdf" ] && [ ! -e "$T/mix/password-example.pdf" ] && [ ! -e "$T/mix/testfax3_bug_513.tiff" ]
ok "failed inputs leave no output" $?
[ -z "$(ls -A "$T/mix" | grep '^\.')" ]
ok "no temporary folders left" $?
has "$T/err" "bad1.pdf: not a PDF" "not-a-PDF error names the file"
has "$T/err" "needs a password" "password-needed error"
has "$T/err" "testfax3_bug_513.tiff: page 1" "damaged TIFF error names file and page"

# passwords
expect "right password" 0 "$DP_BIN" rasterize --password test -o "$T/pw" "$S/pdfplumber/password-example.pdf"
expect "wrong password" 1 "$DP_BIN" rasterize --password nope -o "$T/pw2" "$S/pdfplumber/password-example.pdf"
has "$T/err" "wrong password" "wrong-password error"

# existing output: refused without --force, replaced with it
expect "existing output refused" 1 "$DP_BIN" rasterize -o "$T/mix" "$S/invoice2data/oyo.pdf"
expect "--force replaces" 0 "$DP_BIN" rasterize --force --max-pixels 100000 -o "$T/mix" "$S/invoice2data/oyo.pdf"
has "$T/mix/oyo.pdf/pages.json" '"max_pixels": 100000' "replaced output is the new one"

# pixel cap before decoding
expect "pixel cap" 1 "$DP_BIN" rasterize --max-decode-pixels 1000000 -o "$T/cap" "$S/libtiff/lzw-single-strip.tiff"
has "$T/err" "pixel limit exceeded" "pixel-limit error"
[ ! -e "$T/cap/lzw-single-strip.tiff" ]
ok "capped input leaves no output" $?

# page beyond the document
expect "page out of range" 1 "$DP_BIN" rasterize --pages 5 -o "$T/rng" "$S/invoice2data/oyo.pdf"
has "$T/err" "document has 1" "page range error"

# preprocess: shapes and names as the reference processor
expect "preprocess two images" 0 "$DP_BIN" preprocess --model "$F/model" -o "$T/two.safetensors" \
    "$F/images/e.png" "$F/images/b.png"
head -c 400 "$T/two.safetensors" >"$T/hdr"
has "$T/hdr" '"pixel_values":{"dtype":"F32","shape":\[156,1176\]' "pixel_values [156,1176]"
has "$T/hdr" '"image_grid_thw":{"dtype":"I64","shape":\[2,3\]' "image_grid_thw [2,3]"
expect "preprocess PDF page" 0 "$DP_BIN" preprocess --pages 1 --max-pixels 200704 -o "$T/pdf.safetensors" \
    "$S/invoice2data/QualityHosting.pdf"
head -c 400 "$T/pdf.safetensors" >"$T/hdr"
has "$T/hdr" '"image_grid_thw":{"dtype":"I64","shape":\[1,3\]' "one PDF page is one image"
expect "preprocess refuses existing" 4 "$DP_BIN" preprocess -o "$T/two.safetensors" "$F/images/b.png"
expect "preprocess bad input" 6 "$DP_BIN" preprocess -o "$T/bad.safetensors" "$F/images/b.png" "$S/qpdf/bad1.pdf"
[ ! -e "$T/bad.safetensors" ]
ok "failed preprocess writes nothing" $?
expect "preprocess bad model dir" 3 "$DP_BIN" preprocess --model "$T/nonexistent" -o "$T/m.safetensors" "$F/images/b.png"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
