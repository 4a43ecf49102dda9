#!/bin/sh
# The review queue's crops (docs/constrain.md): `batch` writes a PNG of each review line's box,
# cut from the page pixels of the source document (a gradient page, so the crop's first pixel
# shows where it was cut), with boxes clipped to the page; a box outside the page or empty, and
# a line without a box, get no crop and a reason. Crops appear atomically with their document
# (OUT/<stem>/review/) and OUT/review/<stem>/ is rebuilt at the end of a run: a batch killed at
# random moments and resumed ends with exactly the review lines and crops of an uninterrupted run
# (no line twice, no crop lost, no staging leftovers). Runs from saved answers (--from-raw).
. "$(dirname "$0")/lib.sh"
COPIES=${DP_CROP_COPIES:-24}
"$TOOL" gradpng "$T/scan.png" 800 600
check "source page written" [ "$("$TOOL" pnginfo "$T/scan.png")" = "800 600 0 0 0" ]
cat >"$T/s.json" <<'EOF'
{"x-name": "crops", "x-task": "kie", "type": "object", "properties": {
 "a": {"type": "string", "enum": ["ok"]}, "b": {"type": "string", "enum": ["ok"]},
 "c": {"type": "string", "enum": ["ok"]}, "d": {"type": "string", "enum": ["ok"]},
 "e": {"type": "string", "enum": ["ok"]}, "g/h": {"type": "string", "enum": ["ok"]},
 "items": {"type": "array", "items": {"type": "object",
           "properties": {"k": {"type": "string", "enum": ["ok"]}}}},
 "f": {"type": "string"}}, "required": ["f"]}
EOF
# model input 400 x 300, page 800 x 600: page boxes are twice the model's
ANSWER='```json
{"a": {"value": "no", "bbox_2d": [10, 20, 110, 70]}, "b": {"value": "no", "bbox_2d": [300, 250, 500, 400]}, "c": {"value": "no", "bbox_2d": [500, 500, 600, 600]}, "d": {"value": "no", "bbox_2d": [50, 50, 50, 50]}, "e": "no", "g/h": {"value": "no", "bbox_2d": [130, 140, 140, 150]}, "items": [{"k": {"value": "ok", "bbox_2d": [0, 0, 5, 5]}}, {"k": {"value": "bad", "bbox_2d": [200, 10, 210, 20]}}]}
```'
CLEAN='```json
{"a": {"value": "ok", "bbox_2d": [10, 20, 110, 70]}, "f": {"value": "x", "bbox_2d": [1, 1, 2, 2]}}
```'
mkdoc() { # NAME ANSWER
    mkdir -p "$T/raw/$1/raw"
    printf '%s' "$2" >"$T/raw/$1/raw/page-0001.txt"
    cat >"$T/raw/$1/raw/pages.json" <<EOF
{"format": "docproc-raw/1", "source": "$T/scan.png", "schema": null,
 "pages": [{"number": 1, "file": "page-0001.txt", "model_truncated": false,
   "geometry": {"model_w": 400, "model_h": 300, "page_w": 800, "page_h": 600,
                "pdf_w_pt": 0, "pdf_h_pt": 0}}]}
EOF
}
i=1
while [ "$i" -le "$COPIES" ]; do
    mkdoc "doc-$(printf %03d "$i")" "$ANSWER"
    i=$((i + 1))
done
mkdoc clean "$CLEAN"
mkdoc nosource "$ANSWER"
sed -i "s|$T/scan.png|$T/missing.png|" "$T/raw/nosource/raw/pages.json"

"$BIN" batch --from-raw "$T/raw" --schema "$T/s.json" -o "$T/ref" -q 2>"$T/ref.err"
check "reference run exits 0" [ $? -eq 0 ]
R=$T/ref
check "8 review lines per document with findings" \
    [ "$(wc -l <"$R/review.jsonl")" -eq $((8 * (COPIES + 1))) ]
check "the clean document has no review line" [ -z "$(grep '"document":"clean"' "$R/review.jsonl")" ]
l() { grep "\"document\":\"doc-001\",.*\"field\":\"$1\"" "$R/review.jsonl"; }
check "a: crop named in its line" l a | grep -q '"crop":"review/doc-001/a.png"'
check "a: box in page pixels" l a | grep -q '"box":\[20,40,220,140\]'
check "a: crop cut at page pixels (20, 40), 200 x 100" \
    [ "$("$TOOL" pnginfo "$R/review/doc-001/a.png")" = "200 100 20 40 0" ]
check "b: clipped to the page, cut at (600, 500)" \
    [ "$("$TOOL" pnginfo "$R/review/doc-001/b.png")" = "200 100 88 244 18" ]
check "c: box outside the page: no crop, a reason" \
    l c | grep -q '"crop":null,"no_crop":"box outside the page or empty"'
check "d: empty box: no crop, a reason" \
    l d | grep -q '"crop":null,"no_crop":"box outside the page or empty"'
check "e: no box: no crop, a reason" l e | grep -q '"crop":null,"no_crop":"no box"'
check "f: required and missing: no crop" l f | grep -q '"reason":"required","crop":null'
check "g/h: a safe file name" l g/h | grep -q '"crop":"review/doc-001/g_h.png"'
check "g/h: cut at (260, 280)" [ "$("$TOOL" pnginfo "$R/review/doc-001/g_h.png")" = "20 20 4 24 17" ]
check "list item: crop of items[1].k" \
    [ "$("$TOOL" pnginfo "$R/review/doc-001/items[1].k.png")" = "20 20 144 20 1" ]
check "source not readable: lines kept, no crops, a reason" \
    [ "$(grep -c '"document":"nosource".*"no_crop":"source document not readable"' \
        "$R/review.jsonl")" -eq 6 ]
check "every named crop exists" sh -c "grep -o '\"crop\":\"[^\"]*\"' '$R/review.jsonl' |
    cut -d'\"' -f4 | while read -r c; do [ -s '$R'/\"\$c\" ] || exit 1; done"
check "4 crops per document with boxes" \
    [ "$(find "$R/review" -type f -name '*.png' | wc -l)" -eq $((4 * COPIES)) ]
check "crops kept with their document" cmp -s "$R/doc-001/review/a.png" "$R/review/doc-001/a.png"
check "no staging leftovers" [ -z "$(find "$R" -maxdepth 1 -name '.stage-*' -o -maxdepth 1 -name '.old-*')" ]
summary() { # DIR: every crop with its checksum, and the review lines
    (cd "$1/review" && find . -type f -name '*.png' | sort | xargs md5sum)
    cat "$1/review.jsonl"
}
summary "$R" >"$T/ref.sum"

# killed at random moments, then resumed
t0=$(date +%s%N)
"$BIN" batch --from-raw "$T/raw" --schema "$T/s.json" -o "$T/time" -q 2>/dev/null
ref_ms=$((($(date +%s%N) - t0) / 1000000))
kills=0
for i in 1 2 3 4 5; do
    resume=""
    [ "$i" -gt 1 ] && resume=--resume
    jobs=1
    [ $((i % 2)) -eq 0 ] && jobs=3
    "$BIN" batch --from-raw "$T/raw" --schema "$T/s.json" -o "$T/out" $resume -j "$jobs" -q \
        2>/dev/null &
    pid=$!
    delay=$(awk -v s="$$$i" -v ms="$ref_ms" 'BEGIN { srand(s); printf "%.3f", 0.01 + rand() * 0.6 * ms / 1000 }')
    sleep "$delay"
    if kill -9 "$pid" 2>/dev/null; then
        kills=$((kills + 1))
    fi
    wait "$pid" 2>/dev/null
done
echo "killed $kills of 5 runs (a full run takes ${ref_ms} ms)" >&2
# what a kill during the crops' swap leaves (pid 999999 is not running)
mkdir -p "$T/out/.stage-999999-review/doc-001" "$T/out/.old-999999-review"
"$BIN" batch --from-raw "$T/raw" --schema "$T/s.json" -o "$T/out" --resume -q 2>"$T/final.err"
check "final --resume exits 0" [ $? -eq 0 ]
summary "$T/out" >"$T/out.sum"
check "resumed: the same review lines and crops as one run" cmp -s "$T/ref.sum" "$T/out.sum"
check "resumed: no review line twice" [ -z "$(sort "$T/out/review.jsonl" | uniq -d)" ]
check "resumed: no staging leftovers" \
    [ -z "$(find "$T/out" -maxdepth 1 -name '.stage-*' -o -maxdepth 1 -name '.old-*')" ]
# a resumed run that finds the documents done keeps everything as it was
"$BIN" batch --from-raw "$T/raw" --schema "$T/s.json" -o "$T/out" --resume -q 2>/dev/null
summary "$T/out" >"$T/out2.sum"
check "second --resume: unchanged" cmp -s "$T/ref.sum" "$T/out2.sum"
# --force redoes a document whose answer no longer has findings: its lines and crops go
mkdoc doc-001 "$CLEAN"
"$BIN" batch --from-raw "$T/raw" --schema "$T/s.json" -o "$T/out" --force -q 2>/dev/null
check "redone document: its lines gone" [ -z "$(grep '"document":"doc-001"' "$T/out/review.jsonl")" ]
check "redone document: its crops gone" [ ! -e "$T/out/review/doc-001" ]
check "the others' crops kept" [ -s "$T/out/review/doc-002/a.png" ]
finish
