#!/usr/bin/env bash
# start-slurm.sh STATE_DIR -- a real one-node Slurm cluster for the integration tests:
# munged + MariaDB + slurmdbd + slurmctld + slurmd, all state, logs, PID files, the database and the
# config under STATE_DIR. No systemd, no cgroups. Accounting goes through slurmdbd (plain `sacct`
# works, as on a production cluster); job completion records also go to STATE_DIR/log/jobcomp.txt.
#
# Idempotent: running it again with the same STATE_DIR leaves running daemons alone (and runs
# `scontrol reconfigure` if slurm.conf changed). Stop with stop-slurm.sh STATE_DIR.
#
# Environment:
#   SLURM_CPUS       CPUs declared for the node (default 4: with SlurmdParameters=config_overrides
#                    the node may declare more CPUs than it has cores, so several tiny test jobs
#                    run at once on a 2-core machine). A changed count needs stop + start.
#   SLURM_CTLD_PORT  slurmctld port (6817)       SLURM_D_PORT   slurmd port (6818)
#   SLURM_MINJOBAGE  seconds a finished job stays visible to squeue (10: then only sacct knows it)
#   SLURM_DBD_PORT   slurmdbd port (6819)        SLURM_DB_PORT  MariaDB port on 127.0.0.1 (3306)
#   SLURM_EXTRA_CONF lines appended to slurm.conf (a private test cluster's preemption, say)
#   SLURM_ACCT_USERS users associated with the account "hpcflow" (default: "root hpctest" and
#                    whoever runs this script); enforced (AccountingStorageEnforce=associations,limits,qos)
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
MINJOBAGE=${SLURM_MINJOBAGE:-10}
DBD_PORT=${SLURM_DBD_PORT:-6819}
DB_PORT=${SLURM_DB_PORT:-3306}
SUSER=$(id -un)   # SlurmUser = SlurmdUser = whoever runs this script (root in CI)
ACCT_USERS=$(printf '%s\n' ${SLURM_ACCT_USERS:-root hpctest $SUSER} | awk '!seen[$0]++' | tr '\n' ' ')
ACCOUNT=hpcflow

# --- packages (Debian 12: Slurm 22.05, munge 0.5.15) -------------------------------------------
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
   || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null \
   || ! command -v slurmdbd >/dev/null || ! command -v mariadbd >/dev/null; then
  apt_install slurmctld slurmd slurm-client munge slurmdbd mariadb-server
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
# accounting through slurmdbd (plain \`sacct\`), enforced as on a production cluster: a job
# needs an association (root's and hpctest's are made below), and association and QOS limits
# hold (the queue-limit tests set a QOS's MaxSubmitJobsPerUser).
# Job completion records also go to a key=value text file (\`sacct -c\`, or parsed directly)
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageEnforce=associations,limits,qos
AccountingStorageHost=localhost
AccountingStoragePort=$DBD_PORT
# the munge socket for slurmdbd connections (else the default /run/munge/munge.socket.2)
AccountingStoragePass=$MSOCK
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
# finished jobs stay visible to \`squeue -t all\` for this many seconds (then: sacct)
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
if [ -n "${SLURM_EXTRA_CONF:-}" ]; then printf '%s\n' "$SLURM_EXTRA_CONF" >> "$CONF.new"; fi
old_acct=$(grep -s '^AccountingStorageType=' "$CONF" || true)
old_enforce=$(grep -s '^AccountingStorageEnforce=' "$CONF" || true)
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

# --- MariaDB (slurmdbd's database): our own server, data under STATE_DIR/db --------------------------
# As root it runs as Debian's `mysql` user (mariadbd refuses root unless told to); the data
# directory, its socket and PID file belong to that user.
DB="$STATE/db"
DBSOCK="$DB/mariadb.sock"
if [ "$(id -u)" = 0 ]; then DBUSER=mysql; else DBUSER=$SUSER; fi
mkdir -p "$DB"
chown "$DBUSER:" "$DB"
chmod 700 "$DB"
if [ "$DBUSER" != "$SUSER" ] && ! runuser -u "$DBUSER" -- test -x "$DB"; then
  die "user $DBUSER (MariaDB) cannot reach $DB: make every directory above it traversable (chmod o+x)"
fi
db() { mariadb --no-defaults --socket="$DBSOCK" -u "$SUSER" "$@"; }
if ! pid_alive "$DB/mariadbd.pid" mariadbd; then
  if [ ! -d "$DB/data/mysql" ]; then
    # socket authentication for the OS user running this script (root: root@localhost)
    mariadb-install-db --no-defaults --datadir="$DB/data" --user="$DBUSER" \
      --auth-root-authentication-method=socket --skip-test-db >"$STATE/log/mariadb-install.log" 2>&1 \
      || die "mariadb-install-db failed; see $STATE/log/mariadb-install.log"
  fi
  port_busy "$DB_PORT" && die "port $DB_PORT is busy (another MariaDB/MySQL?); set SLURM_DB_PORT"
  rm -f "$DBSOCK"
  # small buffers: a test database on a 2-core machine shared with other services
  setsid mariadbd --no-defaults --datadir="$DB/data" --user="$DBUSER" --socket="$DBSOCK" \
    --pid-file="$DB/mariadbd.pid" --bind-address=127.0.0.1 --port="$DB_PORT" --skip-name-resolve \
    --log-error="$STATE/log/mariadb.log" --innodb-buffer-pool-size=64M \
    --innodb-log-file-size=32M --innodb-lock-wait-timeout=900 </dev/null >/dev/null 2>&1 &
  wait_for 60 db -e 'select 1' || die "MariaDB does not answer on $DBSOCK; see $STATE/log/mariadb.log"
fi
# slurmdbd's database user; its password is kept in STATE_DIR/db (mode 700) and slurmdbd.conf (600)
DBPASS_FILE="$DB/slurmdbd.pass"
[ -s "$DBPASS_FILE" ] || (umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$DBPASS_FILE")
DBPASS=$(cat "$DBPASS_FILE")
db -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
       CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$DBPASS';
       ALTER USER 'slurm'@'127.0.0.1' IDENTIFIED BY '$DBPASS';
       GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';" \
  || die "cannot create slurmdbd's database and user; see $STATE/log/mariadb.log"

# --- slurmdbd: it reads slurmdbd.conf next to slurm.conf (SLURM_CONF's directory) ------------------
DBDCONF="$STATE/etc/slurmdbd.conf"
(umask 077; cat > "$DBDCONF.new" <<EOF
# Written by tests/services/start-slurm.sh -- do not edit by hand.
AuthType=auth/munge
AuthInfo=socket=$MSOCK
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$DBD_PORT
SlurmUser=$SUSER
PidFile=$STATE/run/slurmdbd.pid
LogFile=$STATE/log/slurmdbd.log
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$DBPASS
StorageLoc=slurm_acct_db
EOF
)
dbd_changed=0
replace_if_changed "$DBDCONF.new" "$DBDCONF" && dbd_changed=1
# slurmdbd refuses a slurmdbd.conf that others can read or that its SlurmUser does not own
chown "$SUSER:" "$DBDCONF"
chmod 600 "$DBDCONF"
if [ "$dbd_changed" = 1 ]; then stop_pidfile slurmdbd "$STATE/run/slurmdbd.pid"; fi
dbd_up() { sacctmgr -n show cluster format=cluster >/dev/null 2>&1; }
if ! pid_alive "$STATE/run/slurmdbd.pid" slurmdbd; then
  port_busy "$DBD_PORT" && die "port $DBD_PORT is busy (another slurmdbd?); set SLURM_DBD_PORT"
  slurmdbd
fi
wait_for 60 dbd_up || die "slurmdbd does not answer sacctmgr; see $STATE/log/slurmdbd.log"

# --- the cluster, an account and its users in the accounting database ------------------------------
# (before slurmctld starts: it registers with slurmdbd only if the cluster exists)
acct_has() { [ -n "$(sacctmgr -n -P show "$@" 2>/dev/null)" ]; }
acct_has cluster localhost format=cluster || sacctmgr -i add cluster localhost >/dev/null \
  || die "sacctmgr add cluster localhost failed"
acct_has account "$ACCOUNT" format=account \
  || sacctmgr -i add account "$ACCOUNT" cluster=localhost description="hpcflow tests" \
       organization=hpcflow >/dev/null || die "sacctmgr add account $ACCOUNT failed"
for u in $ACCT_USERS; do
  acct_has assoc where user="$u" account="$ACCOUNT" format=user \
    || sacctmgr -i add user "$u" account="$ACCOUNT" defaultaccount="$ACCOUNT" cluster=localhost \
         >/dev/null || die "sacctmgr add user $u failed"
done

# --- start slurmctld, then slurmd -----------------------------------------------------------------
ctld_up() { scontrol ping 2>/dev/null | grep -q 'is UP'; }
started_ctld=0
new_enforce=$(grep -s '^AccountingStorageEnforce=' "$CONF" || true)
if { { [ -n "$old_acct" ] && [ "$old_acct" != "AccountingStorageType=accounting_storage/slurmdbd" ]; } \
     || { [ -n "$old_acct" ] && [ "$old_enforce" != "$new_enforce" ]; }; } \
   && pid_alive "$STATE/run/slurmctld.pid" slurmctld; then
  # the accounting plugin and its enforcement are read only at start: restart the
  # controller (jobs survive it)
  log "accounting storage or its enforcement changed: restarting slurmctld"
  stop_pidfile slurmctld "$STATE/run/slurmctld.pid"
fi
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
  slurmdbd=127.0.0.1:$DBD_PORT mariadb=127.0.0.1:$DB_PORT ($DBSOCK) account=$ACCOUNT users: $ACCT_USERS
  jobcomp=$STATE/log/jobcomp.txt logs=$STATE/log munge_socket=$MSOCK MinJobAge=$MINJOBAGE
  pids: munged=$(cat "$STATE/run/munged.pid") mariadbd=$(cat "$DB/mariadbd.pid") slurmdbd=$(cat "$STATE/run/slurmdbd.pid") slurmctld=$(cat "$STATE/run/slurmctld.pid") slurmd=$(cat "$STATE/run/slurmd.pid")
  use: source $STATE/env.sh
EOF
