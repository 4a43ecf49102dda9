#!/bin/sh
# Searchable PDF end to end (docs/archive.md), checked with poppler-utils and qpdf:
# a JPEG scan (Latin text-spotting answer from samples/raw): image embedded byte for byte at its
# pixel size, pdftotext gives the lines in order, -bbox-layout puts every word inside its line's
# box (+-1 pt), qpdf --check passes, pdftoppm renders the input image; a TIFF with a CJK + Latin
# answer (Flate, lossless: rendering equals the decoded input exactly); a bilevel TIFF (1-bit
# image); an answer without boxes (image page, no text, a warning); born-digital PDF input (pages
# kept, rendering unchanged, OCR text only on the page without a text layer, /Rotate, no boxes,
# --pdfa); --pdfa.
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

# 5. born-digital PDF input (OCRmyPDF --skip-text): the original pages kept, text only on pages
# without a text layer. MIX = a text page (oyo.pdf) + an image-only page (the JPEG scan under an
# answer without boxes, made by docproc itself: no text layer).
mkdir -p "$T/scan5/s/raw"
printf 'no boxes' >"$T/scan5/s/raw/page-0001.txt"
printf '{"format":"docproc-raw/1","source":"samples/qwen25vl_cookbooks/ocr_example3.jpg","schema":"ocr","pages":[{"number":1,"file":"page-0001.txt","model_truncated":false,"geometry":{"model_w":870,"model_h":1398,"page_w":870,"page_h":1398,"pdf_w_pt":0,"pdf_h_pt":0}}]}\n' \
    >"$T/scan5/s/raw/pages.json"
"$BIN" extract -q --from-raw "$T/scan5" --schema ocr --format pdf -o "$T/o5i" >/dev/null 2>&1
IMGPDF=$T/o5i/s/result.pdf
check "PDF input: the image-only page has no text" [ -z "$(pdftotext "$IMGPDF" - | tr -d ' \n\f')" ]
MIX=$T/mixed.pdf
qpdf --empty --pages samples/invoice2data/oyo.pdf 1 "$IMGPDF" 1 -- "$MIX"
# rawpdf DIR PDF P1ANSWER P2ANSWER P2W P2H P2WPT P2HPT: answers for the two pages of PDF
rawpdf() {
    mkdir -p "$1/m/raw"
    printf '%s' "$3" >"$1/m/raw/page-0001.txt"
    printf '%s' "$4" >"$1/m/raw/page-0002.txt"
    printf '{"format":"docproc-raw/1","source":"%s","schema":"ocr","pages":[{"number":1,"file":"page-0001.txt","model_truncated":false,"geometry":{"model_w":1190,"model_h":1684,"page_w":1190,"page_h":1684,"pdf_w_pt":595,"pdf_h_pt":842}},{"number":2,"file":"page-0002.txt","model_truncated":false,"geometry":{"model_w":%d,"model_h":%d,"page_w":%d,"page_h":%d,"pdf_w_pt":%s,"pdf_h_pt":%s}}]}\n' \
        "$2" "$5" "$6" "$5" "$6" "$7" "$8" >"$1/m/raw/pages.json"
    # the second page's answer alone, to compare with poppler's view of page 2
    mkdir -p "$1/p2/m/raw"
    cp "$1/m/raw/page-0002.txt" "$1/p2/m/raw/"
    printf '{"format":"docproc-raw/1","source":"%s","schema":"ocr","pages":[{"number":2,"file":"page-0002.txt","model_truncated":false,"geometry":{"model_w":%d,"model_h":%d,"page_w":%d,"page_h":%d,"pdf_w_pt":%s,"pdf_h_pt":%s}}]}\n' \
        "$2" "$5" "$6" "$5" "$6" "$7" "$8" >"$1/p2/m/raw/pages.json"
}
SPOT=$(cat samples/raw/ocr_example3-text_spotting/raw/page-0001.txt)
rawpdf "$T/mix" "$MIX" '[{"bbox_2d": [10, 10, 400, 40], "text_content": "NOT ON A TEXT PAGE"}]' \
    "$SPOT" 870 1398 208.8 335.52
"$BIN" extract -q --from-raw "$T/mix" --schema ocr --format pdf -o "$T/o5" >/dev/null 2>"$T/err5"
check "PDF input: exits 0" [ $? -eq 0 ]
P=$T/o5/m/result.pdf
check "PDF input: qpdf --check passes" quiet qpdf --check "$P"
check "PDF input: both pages kept" [ "$(pdfinfo "$P" | sed -n 's/^Pages: *//p')" = 2 ]
pdftotext -f 1 -l 1 "$MIX" "$T/in1.txt"
pdftotext -f 1 -l 1 "$P" "$T/out1.txt"
check "PDF input: the text page's text is the original's" cmp -s "$T/in1.txt" "$T/out1.txt"
check "PDF input: the text page's text is there" grep -q 'PAYMENT RECEIPT' "$T/out1.txt"
check "PDF input: no OCR text on the text page" [ -z "$(grep 'NOT ON A TEXT PAGE' "$T/out1.txt")" ]
pdftotext -raw -f 2 -l 2 "$P" "$T/out2.txt"
check "PDF input: the image page gets the OCR lines in order" \
    quiet "$TOOL" text "$T/out2.txt" "$T/mix/p2/m" ocr
pdftotext -bbox-layout -f 2 -l 2 "$P" "$T/out2.html"
check "PDF input: every word inside its line box" quiet "$TOOL" words "$T/out2.html" "$T/mix/p2/m" ocr
pdfimages -list "$P" >"$T/list5" 2>&1
check "PDF input: the page image is kept (870x1398 JPEG)" grep -Eq ' 870 +1398 .* jpeg ' "$T/list5"
for pg in 1 2; do
    pdftoppm -r 100 -f $pg -l $pg -png "$MIX" "$T/in5" 2>/dev/null
    pdftoppm -r 100 -f $pg -l $pg -png "$P" "$T/out5" 2>/dev/null
    check "PDF input: page $pg renders as the original" \
        quiet "$TOOL" imgcmp "$T/in5-$pg.png" "$T/out5-$pg.png" 0
done
# a page turned by /Rotate 90: words placed on the page as displayed (1398x870 px rendered)
ROT=$T/rot.pdf
qpdf --rotate=+90:2 "$MIX" "$ROT"
rawpdf "$T/rot" "$ROT" '[]' '[{"bbox_2d": [20, 20, 600, 80], "text_content": "Turned page line one"},
 {"bbox_2d": [20, 100, 900, 160], "text_content": "second line here"}]' 1398 870 335.52 208.8
"$BIN" extract -q --from-raw "$T/rot" --schema ocr --format pdf -o "$T/o5r" >/dev/null 2>&1
check "PDF input, /Rotate: exits 0" [ $? -eq 0 ]
P=$T/o5r/m/result.pdf
pdftotext -raw -f 2 -l 2 "$P" "$T/rot2.txt"
check "PDF input, /Rotate: the lines in order" quiet "$TOOL" text "$T/rot2.txt" "$T/rot/p2/m" ocr
pdftotext -bbox-layout -f 2 -l 2 "$P" "$T/rot2.html"
check "PDF input, /Rotate: every word inside its line box" \
    quiet "$TOOL" words "$T/rot2.html" "$T/rot/p2/m" ocr 335.52 208.8
pdftoppm -r 100 -f 2 -l 2 -png "$ROT" "$T/inr" 2>/dev/null
pdftoppm -r 100 -f 2 -l 2 -png "$P" "$T/outr" 2>/dev/null
check "PDF input, /Rotate: renders as the original" quiet "$TOOL" imgcmp "$T/inr-2.png" "$T/outr-2.png" 0
# bad input: the image page's answer has no boxes: kept as it was, with a warning
rawpdf "$T/mixnb" "$MIX" '[]' 'plain text, no boxes' 870 1398 208.8 335.52
"$BIN" extract --from-raw "$T/mixnb" --schema ocr --format pdf -o "$T/o5n" >/dev/null 2>"$T/err5n"
check "PDF input, no boxes: exits 0" [ $? -eq 0 ]
check "PDF input, no boxes: a warning" grep -q '1 of 2 pages have no line boxes' "$T/err5n"
check "PDF input, no boxes: no text added" \
    [ -z "$(pdftotext -f 2 -l 2 "$T/o5n/m/result.pdf" - | tr -d ' \n\f')" ]
# --pdfa on PDF input
"$BIN" extract -q --from-raw "$T/mix" --schema ocr --format pdf --pdfa -o "$T/o5a" >/dev/null 2>&1
check "PDF input, --pdfa: exits 0" [ $? -eq 0 ]
P=$T/o5a/m/result.pdf
check "PDF input, --pdfa: qpdf --check passes" quiet qpdf --check "$P"
pdfinfo -meta "$P" >"$T/xmp5" 2>&1
check "PDF input, --pdfa: pdfaid part 2" grep -q '<pdfaid:part>2</pdfaid:part>' "$T/xmp5"
check "PDF input, --pdfa: sRGB output intent" \
    grep -aq GTS_PDFA1 "$(qpdf --qdf --object-streams=disable "$P" "$T/qdf5.pdf"; echo "$T/qdf5.pdf")"
pdftoppm -r 100 -f 2 -l 2 -png "$P" "$T/outa" 2>/dev/null
check "PDF input, --pdfa: renders as the original" quiet "$TOOL" imgcmp "$T/in5-2.png" "$T/outa-2.png" 0

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
