#!/bin/sh
# Archive outputs from model runs with the tiny checkpoint (random weights), its answers set by
# the DOCPROC_TEST_ANSWERS teacher-forcing hook (docs/testing.md: every logit but the answer's next
# token is masked, so the model runs and the log-probabilities are its own for that answer):
# 1. token confidences: every ALTO String has a WC in [0, 1], every hOCR word an x_wconf in
#    0..100, every PAGE TextEquiv a conf in [0, 1]; re-extracting the same answers with
#    --from-raw gives none of them (no token probabilities).
# 2. olmOCR rotation retry: a first answer whose front matter says rotation_correction 90 makes
#    the page be turned (870x1398 -> 1398x870) and asked again exactly once, and the second answer
#    is the one kept, even when it asks for a rotation again; an upright first answer is kept
#    without a retry.
set -u
BIN=${DP_BIN:?DP_BIN must point at the docproc binary}
SRC=${DP_SOURCE_DIR:?DP_SOURCE_DIR must point at the source tree}
FIX=${DP_FIXTURES:?DP_FIXTURES must point at the unpacked fixtures}
MODEL=$FIX/qwen25vl-tiny/model
IMG=$SRC/samples/qwen25vl_cookbooks/ocr_example3.jpg # 870 x 1398
T=$(mktemp -d "${TMPDIR:-/tmp}/dp-archive-model.XXXXXX")
trap 'rm -rf "$T"' EXIT
passed=0
failed=0
check() {
    desc=$1
    shift
    if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: $desc" >&2; fi
}
FAST="--max-pixels 12544 --min-pixels 3136 --threads 1"

# 1. token confidences
mkdir -p "$T/a1"
printf '[{"bbox_2d": [2, 2, 100, 20], "text_content": "Hello world"}, {"bbox_2d": [2, 30, 100, 50], "text_content": "Second line"}]' \
    >"$T/a1/p1-a1.txt"
# shellcheck disable=SC2086
DOCPROC_TEST_ANSWERS=$T/a1 "$BIN" extract -q --model "$MODEL" --schema ocr $FAST \
    --max-new-tokens 80 --format alto,hocr,page -o "$T/o1" "$IMG" >/dev/null 2>"$T/err1"
check "ocr run exits 0" [ $? -eq 0 ]
D=$(find "$T/o1" -mindepth 1 -maxdepth 1 -type d | head -n 1)
check "the forced answer is the answer" grep -q '"text_content": "Second line"' "$D/raw/page-0001.txt"
# in_range FILE PATTERN LO HI MIN: every value of PATTERN (sed group) in [LO, HI], at least MIN
in_range() {
    sed -n "s/$2/\\1/p" "$1" | tr ' ' '\n' | grep . >"$T/vals"
    [ "$(wc -l <"$T/vals")" -ge "$5" ] && awk -v lo="$3" -v hi="$4" \
        '{ if ($1 !~ /^[0-9.]+$/ || $1 + 0 < lo || $1 + 0 > hi) bad = 1 } END { exit bad }' "$T/vals"
}
grep -o '<String [^>]*>' "$D/result.alto.xml" >"$T/strings"
check "ALTO: 4 Strings" [ "$(wc -l <"$T/strings")" -eq 4 ]
check "ALTO: every String has a WC" [ "$(grep -c ' WC="' "$T/strings")" -eq 4 ]
check "ALTO: WC in [0, 1]" in_range "$T/strings" '.* WC="\([^"]*\)".*' 0 1 4
grep -o "class='ocrx_word'[^>]*>\|class=\"ocrx_word\"[^>]*>" "$D/result.hocr" >"$T/words"
check "hOCR: 4 words" [ "$(wc -l <"$T/words")" -eq 4 ]
check "hOCR: x_wconf 0..100 on every word" in_range "$T/words" '.*x_wconf \([0-9]*\).*' 0 100 4
grep -o '<TextEquiv conf="[^"]*"' "$D/page/page-0001.xml" >"$T/equiv"
check "PAGE: conf in [0, 1] (words and lines)" in_range "$T/equiv" '.*conf="\([^"]*\)"' 0 1 6
"$BIN" extract -q --from-raw "$T/o1" --schema ocr --format alto,hocr,page -o "$T/o1r" >/dev/null 2>&1
check "--from-raw of the same answers exits 0" [ $? -eq 0 ]
R=$(find "$T/o1r" -mindepth 1 -maxdepth 1 -type d | head -n 1)
check "--from-raw: the same Strings" [ "$(grep -c '<String ' "$R/result.alto.xml")" -eq 4 ]
check "--from-raw: no WC" [ -z "$(grep ' WC="' "$R/result.alto.xml")" ]
check "--from-raw: no x_wconf" [ -z "$(grep 'x_wconf' "$R/result.hocr")" ]
check "--from-raw: no PAGE conf" [ -z "$(grep 'conf="' "$R/page/page-0001.xml")" ]

# 2. olmOCR rotation retry
fm() { printf -- '---\nprimary_language: en\nis_rotation_valid: %s\nrotation_correction: %s\nis_table: False\nis_diagram: False\n---\n%s\n' "$@"; }
mkdir -p "$T/a2"
fm False 90 'FIRST ANSWER' >"$T/a2/p1-a1.txt"
fm False 90 'SECOND ANSWER' >"$T/a2/p1-a2.txt"
fm True 0 'THIRD ANSWER' >"$T/a2/p1-a3.txt"
# shellcheck disable=SC2086
DOCPROC_TEST_ANSWERS=$T/a2 "$BIN" extract -v --model "$MODEL" --schema olmocr $FAST \
    --max-new-tokens 64 --format md -o "$T/o2" "$IMG" >/dev/null 2>"$T/err2"
check "olmocr run exits 0" [ $? -eq 0 ]
check "asked again exactly once" [ "$(grep -c 'and asked again' "$T/err2")" -eq 1 ]
check "the page was turned a quarter" grep -q 'rotation_correction 90: page turned (870x1398 -> 1398x870)' "$T/err2"
M=$(find "$T/o2" -name result.md | head -n 1)
check "the second answer is kept" grep -q 'SECOND ANSWER' "$M"
check "not the first" [ -z "$(grep 'FIRST ANSWER' "$M")" ]
check "no third ask" [ -z "$(grep 'THIRD ANSWER' "$M")" ]
mkdir -p "$T/a3"
fm True 0 'UPRIGHT ANSWER' >"$T/a3/p1-a1.txt"
fm True 0 'NOT ASKED' >"$T/a3/p1-a2.txt"
# shellcheck disable=SC2086
DOCPROC_TEST_ANSWERS=$T/a3 "$BIN" extract -v --model "$MODEL" --schema olmocr $FAST \
    --max-new-tokens 64 --format md -o "$T/o3" "$IMG" >/dev/null 2>"$T/err3"
check "upright: exits 0" [ $? -eq 0 ]
check "upright: not asked again" [ -z "$(grep 'asked again' "$T/err3")" ]
check "upright: the first answer is kept" grep -q 'UPRIGHT ANSWER' "$(find "$T/o3" -name result.md | head -n 1)"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
