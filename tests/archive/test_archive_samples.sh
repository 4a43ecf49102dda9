#!/bin/sh
# Every sample document (samples/, first page each) through the fixture checkpoint (random
# weights: gibberish answers, no boxes) with every archive format: each document that is read
# gets ALTO and PAGE files that validate against the official XSDs with `xmllint --nonet`, a
# well-formed hOCR with the page's pixel size, Markdown and text; image inputs get a PDF that
# passes `qpdf --check`; PDF inputs get their original PDF back (pages kept), for which
# `qpdf --check` passes or gives what it gives on the input (a damaged stream stays damaged:
# streams are copied as stored; a repaired xref is written anew) and the same page count.
set -u
BIN=${DP_BIN:?DP_BIN must point at the docproc binary}
SRC=${DP_SOURCE_DIR:?DP_SOURCE_DIR must point at the source tree}
FIX=${DP_FIXTURES:?DP_FIXTURES must point at the unpacked fixtures}
STD=$SRC/tests/archive/standards
T=$(mktemp -d "${TMPDIR:-/tmp}/dp-archive-samples.XXXXXX")
trap 'rm -rf "$T"' EXIT
passed=0
failed=0
check() {
    desc=$1
    shift
    if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: $desc" >&2; fi
}
FAST="--max-pixels 12544 --min-pixels 3136 --max-new-tokens 8 --threads 1 --pages 1"
# shellcheck disable=SC2086
"$BIN" batch --model "$FIX/qwen25vl-tiny/model" --schema ocr $FAST --input "$SRC/samples" \
    --format alto,hocr,page,md,txt,pdf -o "$T/out" >/dev/null 2>"$T/err"
rc=$?
check "batch over the samples ran (exit 0 or 1: some documents fail)" [ "$rc" -le 1 ]
n_alto=$(find "$T/out" -name result.alto.xml | wc -l)
n_docs=$(find "$T/out" -path '*/raw/pages.json' | wc -l)
check "documents were processed ($n_docs)" [ "$n_docs" -ge 20 ]
check "an ALTO file per processed document" [ "$n_alto" = "$n_docs" ]
XML_CATALOG_FILES=$STD/catalog.xml xmllint --nonet --noout --schema "$STD/alto-4-4.xsd" \
    $(find "$T/out" -name result.alto.xml) 2>"$T/alto.err"
check "every ALTO validates" [ $? -eq 0 ]
xmllint --nonet --noout --schema "$STD/pagecontent-2019-07-15.xsd" \
    $(find "$T/out" -path '*/page/page-*.xml') 2>"$T/page.err"
check "every PAGE file validates" [ $? -eq 0 ]
xmllint --nonet --noout $(find "$T/out" -name result.hocr) 2>"$T/hocr.err"
check "every hOCR is well-formed" [ $? -eq 0 ]
check "a Markdown and a text file per document" \
    [ "$(find "$T/out" -name result.md | wc -l)" = "$n_docs" -a "$(find "$T/out" -name result.txt | wc -l)" = "$n_docs" ]
n_img=0
n_in=0
bad=0
for p in $(find "$T/out" -name result.pdf); do
    src=$(sed -n 's/^ *"source": "\(.*\)",$/\1/p' "$(dirname "$p")/raw/pages.json")
    qpdf --check "$p" >/dev/null 2>&1
    rc=$?
    case "$src" in
    *.pdf)
        qpdf --check "$src" >/dev/null 2>&1
        want=$?
        [ "$rc" -eq 0 ] || [ "$rc" -eq "$want" ] || { echo "qpdf --check $p: $rc, on $src: $want" >&2; bad=$((bad + 1)); }
        [ "$(pdfinfo "$p" 2>/dev/null | sed -n 's/^Pages: *//p')" = \
            "$(pdfinfo "$src" 2>/dev/null | sed -n 's/^Pages: *//p')" ] ||
            { echo "page count of $p differs from $src" >&2; bad=$((bad + 1)); }
        n_in=$((n_in + 1)) ;;
    *)
        [ "$rc" -eq 0 ] || { echo "qpdf --check $p: $rc" >&2; bad=$((bad + 1)); }
        n_img=$((n_img + 1)) ;;
    esac
done
check "image inputs got PDFs that pass qpdf --check ($n_img)" [ "$n_img" -ge 10 -a "$bad" -eq 0 ]
check "PDF inputs got their PDF back, as sound as the input ($n_in)" [ "$n_in" -ge 10 -a "$bad" -eq 0 ]
# the ALTO page size is the input's pixel size (a JPEG sample: 870 x 1398)
a=$(find "$T/out" -path '*ocr_example3*' -name result.alto.xml | head -n 1)
check "ALTO page size of ocr_example3.jpg" grep -q 'WIDTH="870" HEIGHT="1398"' "$a"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
