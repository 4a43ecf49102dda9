#!/bin/sh
# Searchable PDF end to end (docs/archive.md), checked with poppler-utils and qpdf:
# a JPEG scan (Latin text-spotting answer from samples/raw): image embedded byte for byte at its
# pixel size, pdftotext gives the lines in order, -bbox-layout puts every word inside its line's
# box (+-1 pt), qpdf --check passes, pdftoppm renders the input image; a TIFF with a CJK + Latin
# answer (Flate, lossless: rendering equals the decoded input exactly); a bilevel TIFF (1-bit
# image); an answer without boxes (image page, no text, a warning); PDF input refused; --pdfa.
#
# Rendering: poppler's Splash rasteriser (pdftoppm), asked for exactly the page's resolution,
# computes the image's device size as 157.0000001 px, rounds it up and resamples the image by a
# pixel; 0.003 % below the resolution (RES) gives the same raster size with no resampling. The
# cairo backend (pdftocairo) is checked at exactly 300 dpi.
set -u
RES=299.99
BIN=${DP_BIN:?DP_BIN must point at the docproc binary}
SRC=${DP_SOURCE_DIR:?DP_SOURCE_DIR must point at the source tree}
TOOL=${DP_ARCHIVE_TOOL:?DP_ARCHIVE_TOOL must point at archive_tool}
T=$(mktemp -d "${TMPDIR:-/tmp}/dp-pdf-test.XXXXXX")
trap 'rm -rf "$T"' EXIT
passed=0
failed=0
check() {
    desc=$1
    shift
    if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: $desc" >&2; fi
}
quiet() { "$@" >"$T/q.out" 2>&1 || { cat "$T/q.out" >&2; false; }; }
cd "$SRC" || exit 1 # --from-raw sources are recorded relative to the source tree

# mkraw DIR STEM SOURCE W H ANSWER: a one-page raw bundle (model input = page size)
mkraw() {
    mkdir -p "$1/$2/raw"
    printf '%s' "$6" >"$1/$2/raw/page-0001.txt"
    printf '{"format":"docproc-raw/1","source":"%s","schema":"ocr","pages":[{"number":1,"file":"page-0001.txt","model_truncated":false,"geometry":{"model_w":%d,"model_h":%d,"page_w":%d,"page_h":%d,"pdf_w_pt":0,"pdf_h_pt":0}}]}\n' \
        "$3" "$4" "$5" "$4" "$5" >"$1/$2/raw/pages.json"
}

# 1. JPEG scan, Latin
mkdir -p "$T/one"
cp -r samples/raw/ocr_example3-text_spotting "$T/one/"
"$BIN" extract -q --from-raw "$T/one" --schema ocr --format pdf -o "$T/o1" >/dev/null 2>"$T/err"
check "extract --format pdf exits 0" [ $? -eq 0 ]
P=$T/o1/ocr_example3-text_spotting/result.pdf
check "result.pdf written" [ -s "$P" ]
check "qpdf --check passes" quiet qpdf --check "$P"
pdfimages -list "$P" >"$T/list" 2>&1
check "one image of 870x1398, JPEG" grep -Eq '^ +1 +0 +image +870 +1398 .* jpeg ' "$T/list"
(cd "$T" && pdfimages -j "$P" im)
check "JPEG embedded byte for byte" cmp -s "$T/im-000.jpg" samples/qwen25vl_cookbooks/ocr_example3.jpg
pdftotext -raw "$P" "$T/raw.txt"
check "pdftotext: the lines' text in order" quiet "$TOOL" text "$T/raw.txt" "$T/one" ocr
check "pdftotext: UNIHAKKA line" grep -q 'UNIHAKKA INTERNATIONAL SDN BHD' "$T/raw.txt"
pdftotext -bbox-layout "$P" "$T/bbox.html"
check "every word inside its line box (+-1 pt)" quiet "$TOOL" words "$T/bbox.html" "$T/one" ocr
pdftoppm -r $RES -png "$P" "$T/r1" 2>"$T/ppm.err"
check "pdftoppm renders without messages" [ ! -s "$T/ppm.err" ]
check "pdftoppm rendering equals the input image" \
    quiet "$TOOL" imgcmp "$T/r1-1.png" samples/qwen25vl_cookbooks/ocr_example3.jpg 0
pdftocairo -r 300 -png "$P" "$T/c1" 2>/dev/null
check "pdftocairo rendering equals the input image" \
    quiet "$TOOL" imgcmp "$T/c1-1.png" samples/qwen25vl_cookbooks/ocr_example3.jpg 0

# 2. TIFF (Flate), CJK and Latin
IMG=samples/libtiff/palette-1c-8b.tiff
set -- $("$TOOL" size "$IMG")
W=$1 H=$2
mkraw "$T/cjk" cjk "$IMG" "$W" "$H" "\`\`\`json
[{\"bbox_2d\": [4, 4, $((W - 4)), 30], \"text_content\": \"中文文本 识别\"},
 {\"bbox_2d\": [4, 40, $((W / 2)), 60], \"text_content\": \"Latin words here\"},
 {\"bbox_2d\": [4, 70, $((W - 10)), 90], \"text_content\": \"日本語とEnglish mixed\"}]
\`\`\`"
"$BIN" extract -q --from-raw "$T/cjk" --schema ocr --format pdf -o "$T/o2" >/dev/null 2>"$T/err"
check "CJK: exits 0" [ $? -eq 0 ]
P=$T/o2/cjk/result.pdf
check "CJK: qpdf --check passes" quiet qpdf --check "$P"
pdftotext -raw "$P" "$T/cjk.txt"
check "CJK: pdftotext gives the lines in order" quiet "$TOOL" text "$T/cjk.txt" "$T/cjk" ocr
check "CJK: the CJK text is there" grep -q '中文文本' "$T/cjk.txt"
pdftotext -bbox-layout "$P" "$T/cjk.html"
check "CJK: every word inside its line box" quiet "$TOOL" words "$T/cjk.html" "$T/cjk" ocr
pdfimages -list "$P" >"$T/list2" 2>&1
check "CJK: image at the input's pixel size, Flate" grep -Eq "^ +1 +0 +image +$W +$H .* image " "$T/list2"
pdftoppm -r $RES -png "$P" "$T/r2" 2>"$T/ppm.err"
check "CJK: rendering equals the input exactly" quiet "$TOOL" imgcmp "$T/r2-1.png" "$IMG" 0

# 3. bilevel TIFF: 1-bit image
IMG=samples/libtiff/miniswhite-1c-1b.tiff
set -- $("$TOOL" size "$IMG")
mkraw "$T/bw" bw "$IMG" "$1" "$2" '[{"bbox_2d": [2, 2, 60, 20], "text_content": "bilevel"}]'
"$BIN" extract -q --from-raw "$T/bw" --schema ocr --format pdf -o "$T/o3" >/dev/null 2>"$T/err"
check "bilevel: exits 0" [ $? -eq 0 ]
pdfimages -list "$T/o3/bw/result.pdf" >"$T/list3" 2>&1
check "bilevel: a 1-bit gray image" grep -Eq "^ +1 +0 +image +$1 +$2 +gray +1 +1 " "$T/list3"
pdftoppm -r $RES -png "$T/o3/bw/result.pdf" "$T/r3" 2>/dev/null
check "bilevel: rendering equals the input exactly" quiet "$TOOL" imgcmp "$T/r3-1.png" "$IMG" 0

# 4. an answer without boxes: the image page, no text layer, a warning
mkdir -p "$T/nobox"
cp -r samples/raw/ocr_example1-ocr "$T/nobox/"
"$BIN" extract --from-raw "$T/nobox" --schema ocr --format pdf -o "$T/o4" >/dev/null 2>"$T/err4"
check "no boxes: exits 0" [ $? -eq 0 ]
check "no boxes: a warning names the page count" grep -q '1 of 1 pages have no line boxes' "$T/err4"
check "no boxes: qpdf --check passes" quiet qpdf --check "$T/o4/ocr_example1-ocr/result.pdf"
check "no boxes: the image page is there" \
    grep -Eq '^ +1 +0 +image ' "$(pdfimages -list "$T/o4/ocr_example1-ocr/result.pdf" >"$T/l4" 2>&1; echo "$T/l4")"
check "no boxes: no text" [ -z "$(pdftotext "$T/o4/ocr_example1-ocr/result.pdf" - | tr -d ' \n\f')" ]

# 5. PDF input is refused with a message (the document fails, the run goes on)
mkraw "$T/pdfin" pdfin samples/invoice2data/oyo.pdf 100 100 '[{"bbox_2d": [1, 1, 50, 10], "text_content": "x"}]'
"$BIN" extract --from-raw "$T/pdfin" --schema ocr --format pdf -o "$T/o5" >/dev/null 2>"$T/err5"
check "PDF input: the document fails" [ $? -ne 0 ]
check "PDF input: the message says why" grep -q 'format pdf of a PDF input is not supported' "$T/err5"

# 6. --pdfa
"$BIN" extract -q --from-raw "$T/one" --schema ocr --format pdf --pdfa -o "$T/o6" >/dev/null 2>"$T/err"
check "--pdfa exits 0" [ $? -eq 0 ]
P=$T/o6/ocr_example3-text_spotting/result.pdf
check "--pdfa: qpdf --check passes" quiet qpdf --check "$P"
check "--pdfa: XMP metadata stream" grep -q 'Metadata Stream: yes' "$(pdfinfo "$P" >"$T/info" 2>&1; echo "$T/info")"
pdfinfo -meta "$P" >"$T/xmp" 2>&1
check "--pdfa: pdfaid part 2, conformance B" grep -q '<pdfaid:part>2</pdfaid:part>' "$T/xmp"
check "--pdfa: sRGB output intent" grep -q 'GTS_PDFA1' "$P"
"$BIN" extract -q --from-raw "$T/one" --schema ocr --format alto --pdfa -o "$T/o7" >/dev/null 2>"$T/err"
check "--pdfa without pdf is a usage error" [ $? -eq 2 ]

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
