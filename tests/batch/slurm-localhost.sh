#!/bin/sh
# A single-node Slurm cluster on localhost without systemd, for tests (Debian 12, as root):
#   tests/batch/slurm-localhost.sh start DIR   munged, slurmctld, slurmd; waits for the node
#   tests/batch/slurm-localhost.sh stop DIR    stops the daemons it started, by their PID files
# The configuration lives in DIR/etc/slurm.conf: export SLURM_CONF=DIR/etc/slurm.conf for the
# clients (sbatch, squeue, sacct). Exit 0 when the node is idle, else 1 with the logs' tail.
set -eu
cmd=${1:?start|stop}
D=${2:?DIR}
export SLURM_CONF="$D/etc/slurm.conf"

stop() {
    for f in "$D/run/slurmd.pid" "$D/run/slurmctld.pid" "$D/run/munged.pid"; do
        [ -s "$f" ] || continue
        p=$(cat "$f")
        kill "$p" 2>/dev/null || continue
        i=0
        while kill -0 "$p" 2>/dev/null && [ $i -lt 40 ]; do sleep 0.25; i=$((i + 1)); done
    done
}

if [ "$cmd" = stop ]; then
    stop
    exit 0
fi
mkdir -p "$D/etc" "$D/state" "$D/spool" "$D/log" "$D/run" "$D/munge"
chmod 0755 "$D"
# munge: a key of our own and a daemon with its own socket (never the system's)
K=$D/munge/munge.key
[ -s "$K" ] || mungekey --create --keyfile="$K" >/dev/null 2>&1 || \
    dd if=/dev/urandom of="$K" bs=1024 count=1 2>/dev/null
chown munge:munge "$D/munge" "$K" && chmod 0700 "$D/munge" && chmod 0600 "$K"
install -d -o munge -g munge -m 0755 /run/munge
runuser -u munge -- /usr/sbin/munged --key-file="$K" --pid-file="$D/munge/munged.pid" \
    --log-file="$D/munge/munged.log" --seed-file="$D/munge/munged.seed"
cp "$D/munge/munged.pid" "$D/run/munged.pid"
munge -n | unmunge >/dev/null
HW=$(slurmd -C | head -n 1 | sed 's/^NodeName=[^ ]* //')
cat >"$SLURM_CONF" <<CONF
ClusterName=ci
SlurmctldHost=localhost
SlurmUser=root
AuthType=auth/munge
MpiDefault=none
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool
SlurmctldPidFile=$D/run/slurmctld.pid
SlurmdPidFile=$D/run/slurmd.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd.log
NodeName=localhost NodeAddr=127.0.0.1 $HW State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
slurmctld
slurmd -N localhost
i=0
while [ "$(sinfo -h -n localhost -o %T 2>/dev/null)" != idle ]; do
    i=$((i + 1))
    if [ $i -gt 120 ]; then
        echo "slurm-localhost: the node did not become idle" >&2
        tail -n 20 "$D/log/slurmctld.log" "$D/log/slurmd.log" >&2 || true
        stop
        exit 1
    fi
    sleep 0.5
done
