#!/bin/sh
# --parallel (pages in flight through one vl_state): extract with --parallel 4 writes
# byte-identical raw answers and results to --parallel 1 over mixed documents (PDF with several
# pages, PNG, JPEG, TIFF, a corrupt file) with the tiny checkpoint, whose near-flat logits flip
# on the smallest numerical difference; the corrupt document fails alone; --parallel auto never
# picks more pages than half the memory it reads as available holds; bad values are usage
# errors; kill -9 in the middle of a --parallel 4 batch and --resume give the uninterrupted
# run's outputs with every document once.
. "$(dirname "$0")/lib.sh"
MODEL=${DP_FIXTURES:?}/qwen25vl-tiny/model
S=$SRC/samples
IN=$T/in
mkdir -p "$IN"
for f in "$S"/invoice2data/QualityHosting.pdf "$S"/invoice2data/oyo.pdf \
    "$S"/invoice2data/AmazonWebServices.png "$S"/qwen25vl_cookbooks/ocr_example2.jpg \
    "$S"/qwen25vl_cookbooks/docparsing_example6.png "$S"/libtiff/rgb-3c-8b.tiff \
    "$S"/pdfplumber/issue-33-lorem-ipsum.pdf; do
    cp "$f" "$IN/"
done
printf '%%PDF-1.4\nthis is not a pdf\n' >"$IN/broken.pdf"
OPTS="--model $MODEL --schema layout --max-pixels 50176 --max-new-tokens 40 --threads 2 --pages 1-3"

# shellcheck disable=SC2086
"$BIN" extract $OPTS --parallel 1 -o "$T/p1" "$IN"/* >/dev/null 2>"$T/e1"
rc1=$?
# shellcheck disable=SC2086
"$BIN" extract $OPTS --parallel 4 -v -o "$T/p4" "$IN"/* >/dev/null 2>"$T/e4"
rc4=$?
check "exit status the same (one document failed): $rc1 $rc4" [ "$rc1" -eq 1 ] && [ "$rc4" -eq 1 ]
check "4 pages in flight" grep -q "model: 4 pages in flight" "$T/e4"
check "raw answers and results byte-identical" \
    diff -r -x .docproc -x manifest.json "$T/p1" "$T/p4"
"$TOOL" manifest "$T/p1/manifest.json" >"$T/m1"
"$TOOL" manifest "$T/p4/manifest.json" >"$T/m4"
check "manifests agree (status, pages)" cmp -s "$T/m1" "$T/m4"
check "the corrupt document failed alone" [ "$(grep -c ' failed' "$T/m4")" -eq 1 ]
check "...and it is broken.pdf" grep -q '^broken.pdf failed' "$T/m4"
n_raw=$(find "$T/p4" -path '*/raw/page-*.txt' | wc -l)
n_distinct=$(find "$T/p4" -path '*/raw/page-*.txt' -exec md5sum {} + | cut -d' ' -f1 | sort -u | wc -l)
check "several pages answered ($n_raw)" [ "$n_raw" -ge 8 ]
check "the answers differ between pages ($n_distinct distinct)" [ "$n_distinct" -ge 3 ]

# constrained decoding (invoice: on by default) with one matcher per page in flight
COPTS="--model $MODEL --schema invoice --max-pixels 12544 --max-new-tokens 160 --threads 2 --pages 1-2 --temperature 1 --seed 5"
# shellcheck disable=SC2086
"$BIN" extract $COPTS --parallel 1 -o "$T/c1" "$IN/QualityHosting.pdf" "$IN/oyo.pdf" \
    "$IN/AmazonWebServices.png" >/dev/null 2>&1
# shellcheck disable=SC2086
"$BIN" extract $COPTS --parallel 3 -o "$T/c3" "$IN/QualityHosting.pdf" "$IN/oyo.pdf" \
    "$IN/AmazonWebServices.png" >/dev/null 2>&1
check "constrained: results byte-identical at --parallel 3" \
    diff -r -x .docproc -x manifest.json "$T/c1" "$T/c3"
check "constrained: answers were written" [ "$(find "$T/c3" -name result.json | wc -l)" -eq 3 ]

# usage errors
for v in 0 -1 abc 65 2x ""; do
    # shellcheck disable=SC2086
    "$BIN" extract $OPTS --parallel "$v" -o "$T/u" "$IN/oyo.pdf" >/dev/null 2>"$T/eu"
    check "--parallel '$v' is a usage error" [ $? -eq 2 ]
    check "--parallel '$v' message" grep -q -- "--parallel" "$T/eu"
done
check "usage errors created nothing" [ ! -e "$T/u" ]

# --parallel auto under memory limits: the chosen count fits half of what is available
for lim in 1000000 30000000 45000000 60000000 4000000000; do
    # shellcheck disable=SC2086
    DOCPROC_MEMORY_LIMIT=$lim "$BIN" extract $OPTS --parallel auto -v -o "$T/a$lim" \
        "$IN/oyo.pdf" >/dev/null 2>"$T/ea"
    line=$(grep -- "--parallel auto:" "$T/ea")
    set -- $(echo "$line" | sed 's/.*auto: \([0-9]*\) bytes available, \([0-9]*\) per page, \([0-9]*\) for the state: \([0-9]*\) pages.*/\1 \2 \3 \4/')
    avail=$1 per=$2 base=$3 n=$4
    budget=$((avail / 2))
    fits=$((n == 1 || n * per + base <= budget))
    tight=$((n == 8 || (n + 1) * per + base > budget))
    check "auto at $lim bytes: $n pages fit and no more would ($line)" [ "$fits" -eq 1 ] && [ "$tight" -eq 1 ]
    check "auto at $lim bytes: available read as at most the limit" [ "$avail" -le "$lim" ]
    [ "$lim" -eq 1000000 ] && check "a tiny limit gives 1 page" [ "$n" -eq 1 ]
    [ "$lim" -eq 4000000000 ] && check "ample memory gives 8 pages" [ "$n" -eq 8 ]
done

# kill -9 in the middle of a --parallel 4 batch, then --resume: the uninterrupted outputs
# shellcheck disable=SC2086
"$BIN" batch $OPTS --parallel 4 --input "$IN" -o "$T/k" -q >/dev/null 2>&1 &
pid=$!
sleep 2
kill -9 "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
# shellcheck disable=SC2086
"$BIN" batch $OPTS --parallel 4 --input "$IN" -o "$T/k" --resume -q >/dev/null 2>&1
check "resume exits 1 (the corrupt document)" [ $? -eq 1 ]
# shellcheck disable=SC2086
"$BIN" batch $OPTS --parallel 1 --input "$IN" -o "$T/b1" -q >/dev/null 2>&1
"$TOOL" manifest "$T/k/manifest.json" >"$T/mk"
"$TOOL" manifest "$T/b1/manifest.json" >"$T/mb"
check "resume: every document once, as the uninterrupted run" cmp -s "$T/mk" "$T/mb"
check "resume: raw answers and results equal the uninterrupted --parallel 1 run" \
    diff -r -x .docproc -x manifest.json -x '*.zip' "$T/k" "$T/b1"
finish
