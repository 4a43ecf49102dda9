#!/bin/sh
# Every sample document (samples/, first page each) through the fixture checkpoint (random
# weights: gibberish answers, no boxes) with every archive format: each document that is read
# gets ALTO and PAGE files that validate against the official XSDs with `xmllint --nonet`, a
# well-formed hOCR with the page's pixel size, Markdown and text; image inputs get a PDF that
# passes `qpdf --check` with the page image at the input's pixel size; PDF inputs are refused
# for --format pdf with the documented message.
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
    [ "$(find "$T/out" -name result.md | wc -l)" = "$n_docs" ] && [ "$(find "$T/out" -name result.txt | wc -l)" = "$n_docs" ]
n_pdf=0
for p in $(find "$T/out" -name result.pdf); do
    qpdf --check "$p" >/dev/null 2>&1 || { echo "qpdf: $p" >&2; n_pdf=-1000; }
    n_pdf=$((n_pdf + 1))
done
check "image inputs got PDFs that pass qpdf --check ($n_pdf)" [ "$n_pdf" -ge 10 ]
check "PDF inputs are refused for --format pdf" grep -q 'format pdf of a PDF input is not supported' "$T/err"
# the ALTO page size is the input's pixel size (a JPEG sample: 870 x 1398)
a=$(find "$T/out" -path '*ocr_example3*' -name result.alto.xml | head -n 1)
check "ALTO page size of ocr_example3.jpg" grep -q 'WIDTH="870" HEIGHT="1398"' "$a"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
