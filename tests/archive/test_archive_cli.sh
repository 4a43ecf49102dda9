#!/bin/sh
# Archive formats end to end without a model: extract / batch / tables --from-raw on every real
# answer in samples/raw with --format alto,hocr,page,md,txt (directory and zip bundles); every
# ALTO and PAGE file validates with `xmllint --nonet` against the official XSDs (copied into
# tests/archive/standards), every hOCR file is well-formed XML; --format pdf of every answer (in
# directories and a zip) passes qpdf --check; unknown formats are refused.
set -u
BIN=${DP_BIN:?DP_BIN must point at the docproc binary}
SRC=${DP_SOURCE_DIR:?DP_SOURCE_DIR must point at the source tree}
STD=$SRC/tests/archive/standards
T=$(mktemp -d "${TMPDIR:-/tmp}/dp-archive-test.XXXXXX")
trap 'rm -rf "$T"' EXIT
passed=0
failed=0
check() {
    desc=$1
    shift
    if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: $desc" >&2; fi
}
alto_ok() { XML_CATALOG_FILES=$STD/catalog.xml xmllint --nonet --noout --schema "$STD/alto-4-4.xsd" "$@" 2>"$T/x.err" || { cat "$T/x.err" >&2; false; }; }
page_ok() { xmllint --nonet --noout --schema "$STD/pagecontent-2019-07-15.xsd" "$@" 2>"$T/x.err" || { cat "$T/x.err" >&2; false; }; }
wf_ok() { xmllint --nonet --noout "$@" 2>"$T/x.err" || { cat "$T/x.err" >&2; false; }; }

RAW=$SRC/samples/raw
n_docs=$(find "$RAW" -mindepth 1 -maxdepth 1 -type d | wc -l)
for schema in ocr layout; do
    for cmd in extract batch tables; do
        out=$T/$cmd-$schema
        "$BIN" $cmd --from-raw "$RAW" --schema $schema --format alto,hocr,page,md,txt -o "$out" \
            >/dev/null 2>"$T/err"
        check "$cmd --from-raw --schema $schema exits 0" [ $? -eq 0 ]
        for f in result.alto.xml result.hocr result.md result.txt page/page-0001.xml; do
            check "$cmd $schema: a $f per document" [ "$(find "$out" -path "*/$f" | wc -l)" = "$n_docs" ]
        done
        check "$cmd $schema: ALTO validates" alto_ok $(find "$out" -name result.alto.xml)
        check "$cmd $schema: PAGE validates" page_ok $(find "$out" -path '*/page/*.xml')
        check "$cmd $schema: hOCR well-formed" wf_ok $(find "$out" -name result.hocr)
        check "$cmd $schema: no JSON unless asked" [ -z "$(find "$out" -name result.json)" ]
    done
done
check "text-spotting line in the ALTO" grep -q 'CONTENT="UNIHAKKA"' \
    "$T/extract-ocr/ocr_example3-text_spotting/result.alto.xml"
check "text-spotting line in the text output" grep -q '^Tampoi,81200 Johor Bahru,Johor$' \
    "$T/extract-ocr/ocr_example3-text_spotting/result.txt"
check "heading in the Markdown" grep -q '^## Qwen2.5 Technical Report$' \
    "$T/extract-layout/docparsing_example6-document_parsing/result.md"

# a zip bundle holds the same files
"$BIN" extract --from-raw "$RAW" --schema ocr --format alto,hocr,page,md,txt -o "$T/all.zip" \
    >/dev/null 2>"$T/err"
check "extract -o BUNDLE.zip exits 0" [ $? -eq 0 ]
mkdir -p "$T/unz"
(cd "$T/unz" && unzip -q "$T/all.zip")
check "zip unpacks" [ $? -eq 0 ]
check "zip: an ALTO per document" [ "$(find "$T/unz" -name result.alto.xml | wc -l)" = "$n_docs" ]
check "zip: ALTO validates" alto_ok $(find "$T/unz" -name result.alto.xml)
check "zip: PAGE validates" page_ok $(find "$T/unz" -path '*/page/*.xml')
check "zip: hOCR well-formed" wf_ok $(find "$T/unz" -name result.hocr)

# per-document zips (--format ...,zip)
"$BIN" batch --from-raw "$RAW" --schema ocr --format alto,zip -o "$T/z" >/dev/null 2>"$T/err"
check "batch --format alto,zip exits 0" [ $? -eq 0 ]
check "one zip per document" [ "$(find "$T/z" -name '*.zip' | wc -l)" = "$n_docs" ]

# the searchable PDF of every raw answer (sources are recorded relative to the source tree), in
# directories and in a zip bundle: one PDF per document that passes qpdf --check
cd "$SRC" || exit 1
for cmd in extract batch tables; do
    "$BIN" $cmd -q --from-raw "$RAW" --schema ocr --format pdf -o "$T/pdf-$cmd" >/dev/null 2>"$T/err"
    check "$cmd --from-raw --format pdf exits 0" [ $? -eq 0 ]
    check "$cmd: a result.pdf per document" [ "$(find "$T/pdf-$cmd" -name result.pdf | wc -l)" = "$n_docs" ]
    bad=0
    for p in $(find "$T/pdf-$cmd" -name result.pdf); do
        qpdf --check "$p" >/dev/null 2>&1 || { echo "qpdf --check fails: $p" >&2; bad=$((bad + 1)); }
    done
    check "$cmd: every PDF passes qpdf --check" [ "$bad" -eq 0 ]
done
"$BIN" extract -q --from-raw "$RAW" --schema layout --format pdf,md -o "$T/pdf.zip" >/dev/null 2>"$T/err"
check "extract --format pdf -o BUNDLE.zip exits 0" [ $? -eq 0 ]
mkdir -p "$T/unzp"
(cd "$T/unzp" && unzip -q "$T/pdf.zip")
check "zip: a result.pdf per document" [ "$(find "$T/unzp" -name result.pdf | wc -l)" = "$n_docs" ]
bad=0
for p in $(find "$T/unzp" -name result.pdf); do
    qpdf --check "$p" >/dev/null 2>&1 || bad=$((bad + 1))
done
check "zip: every PDF passes qpdf --check" [ "$bad" -eq 0 ]
check "text-spotting lines in the PDF's text" \
    grep -q 'UNIHAKKA INTERNATIONAL SDN BHD' "$(pdftotext "$T/pdf-extract/ocr_example3-text_spotting/result.pdf" "$T/ts.txt"; echo "$T/ts.txt")"

"$BIN" extract --from-raw "$RAW" --schema ocr --format alto,djvu -o "$T/bad" >/dev/null 2>"$T/err"
check "unknown format is a usage error (exit 2)" [ $? -eq 2 ]
check "message names the format" grep -q "djvu" "$T/err"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
