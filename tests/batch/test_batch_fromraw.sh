#!/bin/sh
# End to end without the model: `extract --from-raw` / `tables --from-raw` on the real
# Qwen2.5-VL answers bundled in samples/raw (made by batch_tool mkraw from
# samples/qwen_outputs.jsonl): JSON Lines on stdout, JSON/XML/CSV files, a zip bundle that can
# itself be re-extracted, byte-exact raw answers, and the documented exit codes.
. "$(dirname "$0")/lib.sh"
not() { ! "$@"; }
RAW=$SRC/samples/raw
n_docs=$(find "$RAW" -mindepth 1 -maxdepth 1 -type d | wc -l)
check "bundled sample has documents" [ "$n_docs" -ge 8 ]

# 1. JSON Lines on stdout, one record per document
"$BIN" extract --from-raw "$RAW" --schema layout >"$T/out.jsonl" 2>"$T/err"
check "extract --from-raw exits 0" [ $? -eq 0 ]
check "one JSON record per document" [ "$("$TOOL" jsonl "$T/out.jsonl")" = "$n_docs" ]
check "QwenVL HTML heading extracted" grep -q 'Qwen2.5 Technical Report' "$T/out.jsonl"
check "receipt OCR text kept" grep -q 'CINNAMON SUGAR' "$T/out.jsonl"
check "KIE value extracted" grep -q 'UNIHAKKA INTERNATIONAL' "$T/out.jsonl"
check "truncated answer flagged" grep -q '"truncated": *true' "$T/out.jsonl"

# 2. files: json, xml, csv per document, raw answers byte-exact, manifest
"$BIN" extract --from-raw "$RAW" --schema receipt -o "$T/dir" --format json,xml,csv >/dev/null 2>"$T/err2"
check "extract -o DIR exits 0" [ $? -eq 0 ]
n_json=$(find "$T/dir" -name result.json | wc -l)
check "a result.json per document" [ "$n_json" = "$n_docs" ]
check "every result.json is valid JSON" "$TOOL" json $(find "$T/dir" -name result.json)
check "a result.xml per document" [ "$(find "$T/dir" -name result.xml | wc -l)" = "$n_docs" ]
if [ -f "$SRC/schemas/docproc-result.xsd" ]; then
    xsd_ok() { xmllint --noout --schema "$SRC/schemas/docproc-result.xsd" "$@" 2>"$T/xsd.err" || { cat "$T/xsd.err" >&2; false; }; }
    check "every result.xml validates against the XSD" xsd_ok $(find "$T/dir" -name result.xml)
else
    check "XSD shipped in schemas/" false
fi
for d in "$RAW"/*/; do
    stem=$(basename "$d")
    check "raw answer of $stem byte-exact" cmp -s "$d/raw/page-0001.txt" "$T/dir/$stem/raw/page-0001.txt"
done
check "manifest written" "$TOOL" json "$T/dir/manifest.json"
check "manifest lists every document ok" \
    [ "$("$TOOL" manifest "$T/dir/manifest.json" | grep -c ' ok ')" = "$n_docs" ]
cp "$T/dir/manifest.json" "$T/manifest.before"
cp "$T/dir/.docproc/journal.jsonl" "$T/journal.before"
"$BIN" extract --from-raw "$RAW" --schema receipt -o "$T/dir" >/dev/null 2>"$T/err3"
check "existing outputs are refused before any work (exit 4)" [ $? -eq 4 ]
check "the refusal names --force" grep -q -- '--force' "$T/err3"
check "the refused run leaves the manifest as it was" cmp -s "$T/manifest.before" "$T/dir/manifest.json"
check "the refused run leaves the journal as it was" cmp -s "$T/journal.before" "$T/dir/.docproc/journal.jsonl"
"$BIN" extract --from-raw "$RAW" --schema receipt -o "$T/dir" --force >/dev/null 2>&1
check "--force overwrites (exit 0)" [ $? -eq 0 ]

# 3. zip bundle, then re-extraction from the zip gives the same results
"$BIN" extract --from-raw "$RAW" --schema form -o "$T/b.zip" --format json,xml --json >"$T/a.jsonl" 2>/dev/null
check "extract -o BUNDLE.zip exits 0" [ $? -eq 0 ]
"$TOOL" zip "$T/b.zip" >"$T/zip.lst"
check "zip holds a result.json per document" [ "$(grep -c '/result.json$' "$T/zip.lst")" = "$n_docs" ]
check "zip holds the raw answers" [ "$(grep -c '/raw/page-0001.txt$' "$T/zip.lst")" = "$n_docs" ]
"$BIN" extract --from-raw "$T/b.zip" --schema form >"$T/b.jsonl" 2>/dev/null
check "re-extraction from the zip exits 0" [ $? -eq 0 ]
check "re-extraction from the zip gives identical records" cmp -s "$T/a.jsonl" "$T/b.jsonl"

# 3b. batch with a zip bundle per document
"$BIN" batch --from-raw "$RAW" --schema form -o "$T/bz" --format json,zip -q
check "batch --format json,zip exits 0" [ $? -eq 0 ]
check "a zip per document" [ "$(find "$T/bz" -maxdepth 1 -name '*.zip' | wc -l)" = "$n_docs" ]
"$TOOL" zip "$T/bz/ocr_example2-ocr.zip" >"$T/z1.lst"
check "per-document zip holds its result and raw answer" \
    grep -q '^ocr_example2-ocr/result.json$' "$T/z1.lst"
check "per-document zip holds the raw answer" grep -q '^ocr_example2-ocr/raw/page-0001.txt$' "$T/z1.lst"

# 4. tables: CSV + JSON with cell boxes
"$BIN" tables --from-raw "$RAW" -o "$T/tables" >/dev/null 2>"$T/err4"
check "tables --from-raw exits 0" [ $? -eq 0 ]
check "tables JSON valid" "$TOOL" json $(find "$T/tables" -name 'table-*.json') "$T/tables/manifest.json"

# 4b. a table continuing on the next page (header repeated) is stitched; a different one is not
mkdir -p "$T/tbl/report/raw"
cat >"$T/tbl/report/raw/page-0001.txt" <<'HTML'
```html
<html><body><h2 data-bbox="40 30 400 60">Quarterly figures</h2>
<table data-bbox="40 80 960 300"><tr><th>Item</th><th>Q1</th><th>Q2</th></tr>
<tr><td>Revenue</td><td>1,200</td><td>1,350</td></tr>
<tr><td>Costs</td><td>800</td><td>820</td></tr></table></body></html>
```
HTML
cat >"$T/tbl/report/raw/page-0002.txt" <<'HTML'
<html><body><table data-bbox="40 40 960 200"><tr><th>Item</th><th>Q1</th><th>Q2</th></tr>
<tr><td>Tax</td><td>90</td><td>95</td></tr>
<tr><td>Profit</td><td>310</td><td>435</td></tr></table>
<table data-bbox="40 400 600 500"><tr><th>Region</th><th>Share</th></tr>
<tr><td>North</td><td>60%</td></tr></table></body></html>
HTML
cat >"$T/tbl/report/raw/pages.json" <<'JSON'
{"format": "docproc-raw/1", "source": "report.pdf", "schema": "table", "pages": [
 {"number": 1, "file": "page-0001.txt", "model_truncated": false, "geometry":
  {"model_w": 1008, "model_h": 1428, "page_w": 1240, "page_h": 1754, "pdf_w_pt": 595.28, "pdf_h_pt": 841.89}},
 {"number": 2, "file": "page-0002.txt", "model_truncated": false, "geometry":
  {"model_w": 1008, "model_h": 1428, "page_w": 1240, "page_h": 1754, "pdf_w_pt": 595.28, "pdf_h_pt": 841.89}}]}
JSON
"$BIN" tables --from-raw "$T/tbl" -o "$T/tblout" >/dev/null 2>"$T/err5"
check "tables on a 2-page report exits 0" [ $? -eq 0 ]
S=$T/tblout/report/stitched
check "two tables after stitching" [ "$(find "$S" -name 'table-*.csv' | wc -l)" -eq 2 ]
check "stitched table has the header once and 4 rows" [ "$(wc -l <"$S/table-001.csv")" -eq 5 ]
check "stitched rows in page order" \
    [ "$(cut -d, -f1 "$S/table-001.csv" | tr -d '\r' | tr '\n' ' ')" = "Item Revenue Costs Tax Profit " ]
check "stitched table records its parts" grep -q '"stitched": true' "$S/table-001.json"
check "parts name both pages" [ "$(grep -c '"page": [12],' "$S/table-001.json")" -ge 2 ]
check "parts carry their box in PDF points" grep -q '"bbox_pdf"' "$S/table-001.json"
check "the other table stays alone" grep -q 'North' "$S/table-002.csv"

# 4b2. (issue 15, item 16) a header of two rows (rowspan + colspan) repeated on page 2 is
# recognised whole: both rows dropped, none left as a data row, "Item" kept
mkdir -p "$T/tbl2/deep/raw"
H='<tr><th rowspan="2">Item</th><th colspan="2">Amount</th></tr><tr><th>net</th><th>gross "incl" VAT</th></tr>'
printf '<table data-bbox="40 80 960 300">%s<tr><td>Pens</td><td>10</td><td>12</td></tr></table>' "$H" \
    >"$T/tbl2/deep/raw/page-0001.txt"
printf '<table data-bbox="40 40 960 200">%s<tr><td>Ink</td><td>20</td><td>24</td></tr></table>' "$H" \
    >"$T/tbl2/deep/raw/page-0002.txt"
mkdir -p "$T/tbl2/notable/raw"
printf 'Just a letter, no table at all.\n' >"$T/tbl2/notable/raw/page-0001.txt"
sed 's/report.pdf/deep.pdf/' "$T/tbl/report/raw/pages.json" >"$T/tbl2/deep/raw/pages.json"
cat >"$T/tbl2/notable/raw/pages.json" <<'JSON'
{"format": "docproc-raw/1", "source": "notable.pdf", "schema": "table", "pages": [
 {"number": 1, "file": "page-0001.txt", "model_truncated": false, "geometry":
  {"model_w": 1008, "model_h": 1428, "page_w": 1240, "page_h": 1754, "pdf_w_pt": 595.28, "pdf_h_pt": 841.89}}]}
JSON
"$BIN" tables --from-raw "$T/tbl2" -o "$T/tbl2out" --format json,csv,zip >/dev/null 2>"$T/err16"
check "tables with a two-row header exits 0" [ $? -eq 0 ]
S2=$T/tbl2out/deep/stitched
check "two-row header: one stitched table" [ "$(find "$S2" -name 'table-*.csv' | wc -l)" -eq 1 ]
check "two-row header: the header rows once, then both data rows (4 lines)" \
    [ "$(wc -l <"$S2/table-001.csv")" -eq 4 ]
check "two-row header: the second header row is not a data row" \
    [ "$(grep -c 'gross ""incl"" VAT' "$S2/table-001.csv")" -eq 1 ]
check "two-row header: \"Item\" kept" grep -q '^Item,' "$S2/table-001.csv"
check "two-row header: data rows in page order" \
    [ "$(tail -n 2 "$S2/table-001.csv" | cut -d, -f1 | tr -d '\r' | tr '\n' ' ')" = "Pens Ink " ]
check "a document without a table: warned" grep -q 'notable.pdf: no table found' "$T/err16"
check "a document without a table: no empty stitched/" [ ! -e "$T/tbl2out/notable/stitched" ]
check "the summary counts the tables found" \
    grep -q '1 table found, 1 document without a table' "$T/err16"
# the directory and the zip of a document hold the same files (stitched/ in both, tables/ in none)
"$TOOL" zip "$T/tbl2out/deep.zip" | grep -v '/$' | sort >"$T/zip.files"
(cd "$T/tbl2out" && find deep -type f | sort) >"$T/dir.files"
check "the zip and the directory hold the same files" cmp -s "$T/zip.files" "$T/dir.files"
check "... stitched tables in the zip" grep -q '^deep/stitched/table-001.csv$' "$T/zip.files"
check "... no per-page tables/ in either" not grep -q '/tables/' "$T/zip.files" "$T/dir.files"

# 4c. progress: forced TTY-style line, JSON events, quiet
"$BIN" extract --from-raw "$RAW" --schema form --progress >/dev/null 2>"$T/p1"
check "--progress draws documents/pages/rate" grep -q "$n_docs/$n_docs documents, .* pages/min" "$T/p1"
"$BIN" extract --from-raw "$RAW" --schema form --progress=json >/dev/null 2>"$T/p2"
check "--progress=json: an event per document" [ "$(grep -c '"event":"document"' "$T/p2")" = "$n_docs" ]
check "--progress=json: a final event" grep -q '"event":"done"' "$T/p2"
"$BIN" extract --from-raw "$RAW" --schema form -q >/dev/null 2>"$T/p3"
check "-q: nothing on stderr" [ ! -s "$T/p3" ]

# 4d. the stamp recorded with the answers (model id and hash, prompt, settings) is carried
# through re-extraction; the schema is the one re-extracting
mkdir -p "$T/stamped/scan/raw"
printf '{"invoice_id": "A-17"}\n' >"$T/stamped/scan/raw/page-0001.txt"
cat >"$T/stamped/scan/raw/pages.json" <<'JSON'
{"format": "docproc-raw/1", "source": "scan.png", "schema": "invoice",
 "stamp": {"docproc_version": "0.0.1", "model": {"id": "Qwen2.5-VL-7B-Instruct",
  "sha256": "5e1f00000000000000000000000000000000000000000000000000000000abcd"},
  "schema": {"name": "invoice", "version": "1", "sha256": "00ff"},
  "prompt": "Extract the invoice fields.", "render": {"dpi": 200, "max_pixels": 1003520},
  "max_new_tokens": 777, "seed": 42, "threads": 3, "created": null},
 "pages": [{"number": 1, "file": "page-0001.txt", "model_truncated": false}]}
JSON
"$BIN" extract --from-raw "$T/stamped" --schema form -o "$T/stampout" >"$T/st.jsonl" 2>"$T/err6"
check "stamped raw answers re-extract (exit 0)" [ $? -eq 0 ]
J=$T/stampout/scan/scan.json
[ -f "$J" ] || J=$(find "$T/stampout" -name '*.json' ! -name manifest.json ! -name pages.json | head -1)
check "stamp keeps the model id" grep -q '"id": "Qwen2.5-VL-7B-Instruct"' "$J"
check "stamp keeps the model hash" grep -q '"sha256": "5e1f0*abcd"' "$J"
check "stamp keeps the prompt" grep -q '"prompt": "Extract the invoice fields."' "$J"
check "stamp keeps the render and generation settings" \
    sh -c "grep -q '\"dpi\": 200' '$J' && grep -q '\"max_new_tokens\": 777' '$J' && grep -q '\"seed\": 42' '$J'"
check "stamp names the re-extracting schema" grep -q '"name": "form"' "$J"
check "the re-written pages.json keeps the original stamp" \
    grep -q '"id": "Qwen2.5-VL-7B-Instruct"' "$T/stampout/scan/raw/pages.json"

# 4e. hostile raw answers (hostile-input sweep): a NUL byte inside an answer is kept byte-exact
# (it overflowed the parser's buffer once), and a broken pages.json fails that document only
H=$T/hostile
for s in good nul broken traversal; do mkdir -p "$H/$s/raw"; done
printf '{"invoice_id": "A-1"}\n' >"$H/good/raw/page-0001.txt"
printf '{"invoice_id": "A\000B", "total": "1\0002"}\000\000<table><tr><td>\000</td></tr></table>' \
    >"$H/nul/raw/page-0001.txt"
for s in good nul; do
    printf '{"format": "docproc-raw/1", "pages": [{"number": 1, "file": "page-0001.txt"}]}\n' \
        >"$H/$s/raw/pages.json"
done
printf '\377\000[[[' >"$H/broken/raw/pages.json"
printf '{"format": "docproc-raw/1", "pages": [{"number": 1, "file": "../../good/raw/page-0001.txt"}]}\n' \
    >"$H/traversal/raw/pages.json"
mkdir -p "$H/dup/raw"
printf '{}' >"$H/dup/raw/page-0001.txt"
printf '{"format": "docproc-raw/1", "pages": [{"number": 1, "file": "page-0001.txt"}, {"number": 1, "file": "page-0001.txt"}]}\n' \
    >"$H/dup/raw/pages.json"
"$BIN" extract --from-raw "$H" --schema invoice -o "$T/hout" --json >"$T/h.jsonl" 2>"$T/herr"
check "hostile raw set: some documents failed (exit 1)" [ $? -eq 1 ]
check "hostile raw set: the good documents are written" \
    sh -c "[ -d '$T/hout/good' ] && [ -d '$T/hout/nul' ]"
check "hostile raw set: a record per document" [ "$("$TOOL" jsonl "$T/h.jsonl")" -eq 5 ]
check "a page listed twice in pages.json is refused" grep -q 'dup.*page 1 listed after page 1' "$T/herr"
check "broken pages.json: error names the document" grep -q 'broken.*not a docproc pages.json' "$T/herr"
check "path traversal in pages.json refused" grep -q 'traversal.*bad page entry' "$T/herr"
check "no output for the failed documents" \
    sh -c "[ ! -e '$T/hout/broken' ] && [ ! -e '$T/hout/traversal' ]"
check "NUL bytes in the answer kept byte-exact in the raw copy" \
    cmp -s "$H/nul/raw/page-0001.txt" "$T/hout/nul/raw/page-0001.txt"

# 5. exit codes
env -u DOCPROC_MODEL "$BIN" extract --schema invoice "$SRC/samples/invoice2data/oyo.pdf" >/dev/null 2>"$T/e"
check "no model: exit 3" [ $? -eq 3 ]
check "no model: says how to get the checkpoint" grep -q 'huggingface-cli download Qwen/Qwen2.5-VL' "$T/e"
"$BIN" extract --from-raw "$RAW" --schema no-such-schema >/dev/null 2>&1
check "unknown schema: exit 3" [ $? -eq 3 ]
"$BIN" extract --from-raw "$RAW" --schema form --bogus >/dev/null 2>&1
check "unknown option: exit 2" [ $? -eq 2 ]
"$BIN" extract --from-raw "$RAW" --schema form --max-new-tokens 0 >/dev/null 2>&1
check "bad number: exit 2" [ $? -eq 2 ]
"$BIN" extract --from-raw "$T/does-not-exist" --schema form >/dev/null 2>&1
check "missing raw bundle: exit 6" [ $? -eq 6 ]
"$BIN" batch --help >"$T/help" 2>&1
check "batch --help exits 0" [ $? -eq 0 ]
check "help prints the real defaults" grep -q 'max-new-tokens N .*\[2048\]' "$T/help"
finish
