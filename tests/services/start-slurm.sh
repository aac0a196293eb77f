#!/usr/bin/env bash
# start-slurm.sh STATE_DIR -- a real one-node Slurm cluster for the integration tests:
# munged + slurmctld + slurmd, all state, logs, PID files and the config under STATE_DIR.
# No systemd, no cgroups, no slurmdbd (job completion records go to STATE_DIR/log/jobcomp.txt).
#
# Idempotent: running it again with the same STATE_DIR leaves running daemons alone (and runs
# `scontrol reconfigure` if slurm.conf changed). Stop with stop-slurm.sh STATE_DIR.
#
# Environment:
#   SLURM_CPUS       CPUs declared for the node (default 4: with SlurmdParameters=config_overrides
#                    the node may declare more CPUs than it has cores, so several tiny test jobs
#                    run at once on a 2-core machine). A changed count needs stop + start.
#   SLURM_CTLD_PORT  slurmctld port (6817)       SLURM_D_PORT   slurmd port (6818)
#   SLURM_MINJOBAGE  seconds a finished job stays visible to squeue (300)
#
# As root the daemons run as root and any user (e.g. hpctest over ssh) may submit jobs, which then
# run under that user's uid. As a normal user the whole cluster runs as that user.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"

case ${1:-} in -*) die "usage: $(basename "$0") [STATE_DIR]" ;; esac
STATE=$(readlink -m -- "${1:-/tmp/hpcflow-services/state/slurm}")
NODE=localhost
CPUS=${SLURM_CPUS:-4}
CTLD_PORT=${SLURM_CTLD_PORT:-6817}
D_PORT=${SLURM_D_PORT:-6818}
MINJOBAGE=${SLURM_MINJOBAGE:-300}
SUSER=$(id -un)   # SlurmUser = SlurmdUser = whoever runs this script (root in CI)

# --- packages (Debian 12: Slurm 22.05, munge 0.5.15) -------------------------------------------
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
   || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
  apt_install slurmctld slurmd slurm-client munge
fi

# --- state directory -----------------------------------------------------------------------------
# Job users (hpctest) must be able to read the config and reach the munge socket, so the
# directories they pass through are world-traversable; the munge key stays private.
mkdir -p "$STATE"/{etc,munge,ctld,spool,log,run}
chmod 755 "$STATE" "$STATE/etc" "$STATE/log" "$STATE/run"

# --- munge (authentication for every Slurm RPC) --------------------------------------------------
MKEY="$STATE/munge/munge.key"
MSOCK="$STATE/munge/munge.socket.2"
if [ ! -s "$MKEY" ]; then
  mungekey --create --keyfile="$MKEY" 2>/dev/null \
    || dd if=/dev/urandom bs=1 count=1024 of="$MKEY" 2>/dev/null
fi
chmod 600 "$MKEY"
# munged refuses a socket directory that is not executable by all (clients must reach the socket)
chmod 711 "$STATE/munge"

# --- slurm.conf ------------------------------------------------------------------------------------
CONF="$STATE/etc/slurm.conf"
cat > "$CONF.new" <<EOF
# Written by tests/services/start-slurm.sh -- one-node test cluster, do not edit by hand.
ClusterName=localhost
# "localhost" works even though the machine's hostname differs
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$D_PORT
SlurmUser=$SUSER
SlurmdUser=$SUSER
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MSOCK
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/run/slurmctld.pid
SlurmdPidFile=$STATE/run/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig=$STATE/etc/plugstack.conf
# no cgroups: track processes through /proc
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
# no slurmdbd: accounting off; job completion records go to a key=value text file,
# readable with \`sacct -c\` or parsed directly (array tasks are only there)
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$STATE/log/jobcomp.txt
MpiDefault=none
MailProg=/bin/true
SchedulerType=sched/backfill
# start jobs at once (the default batch_sched_delay=3 makes a small node start ~1 job per 3 s)
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
# finished jobs stay visible to \`squeue -t all\` for this many seconds
MinJobAge=$MINJOBAGE
MaxJobCount=100000
KillWait=5
InactiveLimit=0
SlurmctldTimeout=30
SlurmdTimeout=60
# trust the CPUs= below even if the machine has fewer cores
SlurmdParameters=config_overrides
NodeName=$NODE NodeAddr=127.0.0.1 NodeHostname=localhost CPUs=$CPUS State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
conf_changed=0
replace_if_changed "$CONF.new" "$CONF" && conf_changed=1
chmod 644 "$CONF"
[ -e "$STATE/etc/plugstack.conf" ] || : > "$STATE/etc/plugstack.conf"
# `sacct -c` opens the jobcomp file O_WRONLY|O_APPEND even to read it: non-root users need write access
touch "$STATE/log/jobcomp.txt"
chmod 666 "$STATE/log/jobcomp.txt"
echo "export SLURM_CONF=$CONF" > "$STATE/env.sh"
export SLURM_CONF="$CONF"

# --- start munged ---------------------------------------------------------------------------------
if ! pid_alive "$STATE/run/munged.pid" munged; then
  rm -f "$MSOCK" "$MSOCK.lock"
  # --force: munged refuses to run as root without it
  munged $([ "$(id -u)" = 0 ] && echo --force) --key-file="$MKEY" --socket="$MSOCK" \
    --pid-file="$STATE/run/munged.pid" --log-file="$STATE/log/munged.log" \
    --seed-file="$STATE/munge/munged.seed"
  wait_for 10 test -S "$MSOCK" || die "munged did not create $MSOCK; see $STATE/log/munged.log"
fi
chmod 777 "$MSOCK"   # any job user / client must be able to connect
munge -S "$MSOCK" -n </dev/null | unmunge -S "$MSOCK" >/dev/null \
  || die "munge self-test failed; see $STATE/log/munged.log"

# --- start slurmctld, then slurmd -----------------------------------------------------------------
ctld_up() { scontrol ping 2>/dev/null | grep -q 'is UP'; }
started_ctld=0
if ! pid_alive "$STATE/run/slurmctld.pid" slurmctld; then
  port_busy "$CTLD_PORT" && die "port $CTLD_PORT is busy (another slurmctld?); set SLURM_CTLD_PORT"
  slurmctld -f "$CONF"
  started_ctld=1
fi
wait_for 30 ctld_up || die "slurmctld does not answer 'scontrol ping'; see $STATE/log/slurmctld.log"
if ! pid_alive "$STATE/run/slurmd.pid" slurmd; then
  port_busy "$D_PORT" && die "port $D_PORT is busy (another slurmd?); set SLURM_D_PORT"
  # -N: the node is called "localhost" whatever the machine's hostname is
  slurmd -f "$CONF" -N "$NODE"
fi
if [ "$conf_changed" = 1 ] && [ "$started_ctld" = 0 ]; then
  echo "slurm.conf changed while Slurm was running: scontrol reconfigure" \
       "(a different SLURM_CPUS needs stop-slurm.sh + start-slurm.sh)" >&2
  scontrol reconfigure || true
fi

# --- ready: the node answers and can take jobs ----------------------------------------------------
# idle normally; mix/alloc/comp if jobs survived a restart. "idle*" (not responding) is not ready.
node_ready() { sinfo -h -n "$NODE" -o '%t' | grep -Eqx 'idle|mix|alloc|comp'; }
wait_for 60 node_ready \
  || die "node $NODE is not up: $(sinfo -h -N -o '%N %t %E' 2>&1); see $STATE/log/slurmd-$NODE.log"

cat <<EOF
Slurm is up: SLURM_CONF=$CONF
  node=$NODE cpus=$CPUS partition=debug slurmctld=127.0.0.1:$CTLD_PORT slurmd=127.0.0.1:$D_PORT
  jobcomp=$STATE/log/jobcomp.txt logs=$STATE/log munge_socket=$MSOCK
  pids: munged=$(cat "$STATE/run/munged.pid") slurmctld=$(cat "$STATE/run/slurmctld.pid") slurmd=$(cat "$STATE/run/slurmd.pid")
  use: source $STATE/env.sh
EOF
