#!/bin/sh
# Scale-out on a real engine: a single-node Slurm cluster on localhost (slurmctld, slurmd,
# munge; tests/batch/slurm-localhost.sh), the documented job array (docs/slurm/docproc-array.sbatch)
# submitted over sample documents with --shard, the shard manifests merged, every document
# processed exactly once and the merged outputs equal to a single-machine run.
# Needs Debian's slurmctld, slurmd, slurm-client and munge: installed here when running as root
# in CI (CI=true) or with DP_SLURM_INSTALL=1; otherwise the test is reported SKIPPED (exit 77)
# with the reason, never passed.
. "$(dirname "$0")/lib.sh"
unset OPENBLAS_CORETYPE
MODEL=${DP_FIXTURES:?}/qwen25vl-tiny/model
skip() {
    echo "SKIPPED: $*" >&2
    exit 77
}
have() { command -v sbatch >/dev/null && command -v slurmctld >/dev/null && command -v slurmd >/dev/null &&
    command -v munged >/dev/null; }
if ! have; then
    [ "$(id -u)" = 0 ] || skip "Slurm is not installed and installing it needs root"
    [ "${CI:-}" = true ] || [ "${DP_SLURM_INSTALL:-}" = 1 ] ||
        skip "Slurm is not installed (set DP_SLURM_INSTALL=1 to install slurmctld, slurmd, slurm-client, munge)"
    export DEBIAN_FRONTEND=noninteractive
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends slurmctld slurmd \
        slurm-client munge; } >"$T/apt.log" 2>&1 ||
        skip "cannot install slurmctld slurmd slurm-client munge: $(tail -n 1 "$T/apt.log")"
    have || skip "Slurm packages installed but their commands are missing"
fi
[ "$(id -u)" = 0 ] || skip "a local Slurm cluster needs root (munge and slurmd run as root/munge)"
S=$T/slurm
chmod 0755 "$T" # the munge user reaches its files under it
stop() { "$SRC/tests/batch/slurm-localhost.sh" stop "$S"; rm -rf "$T"; }
trap stop EXIT
"$SRC/tests/batch/slurm-localhost.sh" start "$S" || { echo "FAIL: cluster did not start" >&2; exit 1; }
export SLURM_CONF="$S/etc/slurm.conf"

mkdir -p "$T/in/sub"
for f in oyo.png AzureInterior.pdf FlipkartInvoice.pdf QualityHosting.pdf; do
    cp "$SRC/samples/invoice2data/$f" "$T/in/"
done
cp "$SRC/samples/invoice2data/oyo.png" "$T/in/sub/"
printf 'not a document\n' >"$T/in/notes.txt"
n_files=$(find "$T/in" -type f | wc -l)
FAST="--max-pixels 12544 --min-pixels 3136 --max-new-tokens 6 --pages 1 --constrain off"
# the single-machine reference
# shellcheck disable=SC2086
"$BIN" batch --model "$MODEL" --schema invoice $FAST --threads 1 --input "$T/in" -o "$T/ref" -q
check "single-machine run exits 0" [ $? -eq 0 ]
N=3
job=$(DOCPROC="$BIN" DOCPROC_MODEL="$MODEL" DOCPROC_INPUT="$T/in" DOCPROC_OUTPUT="$T/out" \
    DOCPROC_SCHEMA=invoice DOCPROC_EXTRA="$FAST" \
    sbatch --parsable --export=ALL --array=1-$N --cpus-per-task=1 --mem=1G --time=10:00 \
    -o "$S/log/job-%A_%a.out" "$SRC/docs/slurm/docproc-array.sbatch")
check "job array submitted" [ -n "$job" ]
i=0
while [ -n "$(squeue -h -j "$job" 2>/dev/null)" ] && [ $i -lt 600 ]; do sleep 0.5; i=$((i + 1)); done
states=$(scontrol show job "$job" 2>/dev/null | grep -o 'JobState=[A-Z]*' | sort | uniq -c)
echo "job $job: $states" >&2
check "every array task completed" [ "$(scontrol show job "$job" | grep -c 'JobState=COMPLETED')" -eq $N ]
cat "$S"/log/job-*.out >&2 2>/dev/null
check "one manifest per shard" [ "$(find "$T/out" -maxdepth 1 -name "manifest-*-of-$N.json" | wc -l)" -eq $N ]
"$BIN" batch --merge "$T/out/manifest.json" "$T/out"/manifest-*-of-$N.json 2>"$T/merge.err"
check "shard manifests merge (each document once, every shard present)" [ $? -eq 0 ]
"$TOOL" manifest "$T/out/manifest.json" >"$T/m.txt"
"$TOOL" manifest "$T/ref/manifest.json" >"$T/r.txt"
check "every file in the merged manifest" [ "$(wc -l <"$T/m.txt")" -eq "$n_files" ]
check "no document listed twice" [ -z "$(cut -d' ' -f1 "$T/m.txt" | sort | uniq -d)" ]
check "the same statuses as the single-machine run" [ "$(cut -d' ' -f1,2 "$T/m.txt")" = "$(cut -d' ' -f1,2 "$T/r.txt")" ]
check "each document processed exactly once (one journal record each)" \
    [ "$(cat "$T/out"/.docproc/journal-*-of-$N.jsonl | grep -c '"status":"ok"')" -eq $((n_files - 1)) ]
# everything, the review queue included: --merge rebuilds OUT/review.jsonl and the crops'
# OUT/review/ (issue #17) from every shard's documents
check "merged outputs equal the single-machine run (review queue and crops included)" \
    diff -r -x 'manifest*.json' -x .docproc "$T/ref" "$T/out" >&2
finish
