#!/usr/bin/env bash
# start-sge.sh STATE_DIR -- a real one-node (Son of) Grid Engine 8.1.9 for the integration tests:
# sge_qmaster + sge_execd, host "localhost", queue all.q (SGE_SLOTS slots, default 4, no load
# threshold) with a parallel environment "smp" ($pe_slots), scheduling every second, accounting
# flushed every second (qacct sees a finished job ~1 s after it ends instead of ~15 s).
#
# The Debian packages fix SGE_ROOT=/var/lib/gridengine, SGE_CELL=default and the spool directory
# /var/spool/gridengine (PID files included), so there is ONE Grid Engine per machine; STATE_DIR only
# holds the generated config files and env.sh (export SGE_ROOT=... SGE_CELL=...).
#
# Idempotent: running it again leaves running daemons alone and changes the cluster's config only
# where it differs from what this script wants. Stop with stop-sge.sh STATE_DIR.
#
# Environment:
#   SGE_SLOTS  slots of all.q@localhost (default 4: more than the 2 cores, so several tiny test jobs
#              run at once; Grid Engine does not check slots against cores)
#
# Conflict: Debian's slurm-wlm-torque (Slurm's qsub/qstat wrappers) ships /usr/bin/qsub too and
# cannot be installed together with gridengine-client; this script refuses to replace it.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"

case ${1:-} in -*) die "usage: $(basename "$0") [STATE_DIR]" ;; esac
STATE=$(readlink -m -- "${1:-/tmp/hpcflow-services/state/sge}")
SLOTS=${SGE_SLOTS:-4}
[[ "$SLOTS" =~ ^[1-9][0-9]*$ ]] || die "SGE_SLOTS must be a positive integer, not '$SLOTS'"
export SGE_ROOT=/var/lib/gridengine SGE_CELL=default
QPID=/var/spool/gridengine/qmaster/qmaster.pid
EPID=/var/spool/gridengine/execd/localhost/execd.pid

# --- packages (Debian 12: gridengine 8.1.9+dfsg) --------------------------------------------------
if [ ! -x /usr/sbin/sge_qmaster ] || [ ! -x /usr/sbin/sge_execd ] || [ ! -x /usr/bin/qacct ] \
   || [ ! -e "$SGE_ROOT/$SGE_CELL/common/act_qmaster" ]; then
  if [ "$(dpkg-query -W -f='${Status}' slurm-wlm-torque 2>/dev/null)" = "install ok installed" ]; then
    die "slurm-wlm-torque is installed: it conflicts with gridengine-client (both ship qsub)." \
        "Remove it (apt-get remove slurm-wlm-torque) and run this script again."
  fi
  # The postinst creates the cell (act_qmaster, bootstrap, BerkeleyDB spool) from these answers.
  printf '%s\n' 'gridengine-common shared/gridengineconfig boolean true' \
    'gridengine-common shared/gridenginecell string default' \
    'gridengine-common shared/gridenginemaster string localhost' | debconf-set-selections
  apt_install gridengine-master gridengine-exec gridengine-client
  [ -e "$SGE_ROOT/$SGE_CELL/common/act_qmaster" ] \
    || die "the packages did not create the cell $SGE_ROOT/$SGE_CELL (debconf answers ignored?)"
fi
# `qsub` on PATH must be Grid Engine's (not a wrapper of another scheduler)
qsub_path=$(readlink -f "$(command -v qsub)" 2>/dev/null || true)
case $qsub_path in
  /usr/share/gridengine/gridengine-wrapper|/usr/lib/gridengine/qsub) ;;
  *) die "qsub on PATH is '$qsub_path', not Grid Engine's" ;;
esac

mkdir -p "$STATE"
chmod 755 "$STATE"

# --- host names -----------------------------------------------------------------------------------
# gethostname() says e.g. "vm" but 127.0.0.1 reverse-resolves to "localhost": without this alias
# every client fails ("client IP resolved to host name localhost. This is not identical to ...").
COMMON=$SGE_ROOT/$SGE_CELL/common
aliases=$(printf '%s\n' localhost "$(hostname)" "$(hostname -f 2>/dev/null || true)" \
          | awk 'NF && !seen[$0]++' | paste -sd' ')
echo "$aliases" > "$COMMON/host_aliases.new"
if replace_if_changed "$COMMON/host_aliases.new" "$COMMON/host_aliases" \
   && pid_alive "$QPID" sge_qmaster; then
  log "host_aliases changed while sge_qmaster runs: it reads them at start only"
fi
chmod 644 "$COMMON/host_aliases"

# --- sge_qmaster ----------------------------------------------------------------------------------
mkdir -p /var/run/gridengine && chown sgeadmin:sgeadmin /var/run/gridengine
if ! pid_alive "$QPID" sge_qmaster; then
  port_busy 6444 && die "port 6444 (sge_qmaster) is busy but $QPID names no running sge_qmaster"
  /usr/sbin/sge_qmaster   # daemonizes, runs as sgeadmin, writes $QPID
fi
wait_for 30 qconf -sh || die "sge_qmaster does not answer; see /var/spool/gridengine/qmaster/messages"
qconf -ss 2>/dev/null | grep -qx localhost || qconf -as localhost >/dev/null 2>&1
qconf -sh 2>/dev/null | grep -qx localhost || qconf -ah localhost >/dev/null 2>&1

# modify_conf WHAT SHOW_CMD MODIFY_CMD FILE SED_ARGS... -- apply sed edits to a config shown by
# SHOW_CMD and load it with MODIFY_CMD FILE, only if the edits change something.
modify_conf() {
  local what=$1 show=$2 modify=$3 file=$4 out; shift 4
  # one line per attribute: qconf continues long values with a backslash
  $show | sed -e ':a' -e '/\\$/{N;s/[[:space:]]*\\\n[[:space:]]*/ /;ba' -e '}' > "$file.orig"
  sed "$@" "$file.orig" > "$file"
  if ! cmp -s "$file.orig" "$file"; then
    out=$($modify "$file" 2>&1) || die "qconf could not change the $what: $out"
    log "changed the $what"
  fi
  rm -f "$file.orig"
}
# global config: allow root jobs (min_uid/min_gid default to 1000: root's jobs would end in Eqw),
# flush accounting records every second (default 15 s: qacct would lag behind). The file must be
# called "global" for qconf -Mconf.
mkdir -p "$STATE/conf"
modify_conf "global configuration" "qconf -sconf" "qconf -Mconf" "$STATE/conf/global" \
  -e 's/^min_uid .*/min_uid                      0/' \
  -e 's/^min_gid .*/min_gid                      0/' \
  -e '/^flush_time=/d' \
  -e 's/^reporting_params .*/reporting_params             accounting=true reporting=false flush_time=00:00:01 joblog=false sharelog=00:00:00 accounting_flush_time=00:00:00/'
# scheduler: a pass every second, and at once after submissions and job ends
modify_conf "scheduler configuration" "qconf -ssconf" "qconf -Msconf" "$STATE/conf/sched.conf" \
  -e 's/^schedule_interval .*/schedule_interval                 0:0:1/' \
  -e 's/^flush_submit_sec .*/flush_submit_sec                  1/' \
  -e 's/^flush_finish_sec .*/flush_finish_sec                  1/'

# --- sge_execd ------------------------------------------------------------------------------------
if ! pid_alive "$EPID" sge_execd; then
  port_busy 6445 && die "port 6445 (sge_execd) is busy but $EPID names no running sge_execd"
  /usr/sbin/sge_execd
fi

# --- parallel environment "smp" and queue all.q (the package creates neither) ---------------------
cat > "$STATE/conf/smp.pe" <<'EOF'
pe_name            smp
slots              9999
user_lists         NONE
xuser_lists        NONE
start_proc_args    NONE
stop_proc_args     NONE
allocation_rule    $pe_slots
control_slaves     FALSE
job_is_first_task  TRUE
urgency_slots      min
accounting_summary FALSE
qsort_args         NONE
EOF
qconf -spl 2>/dev/null | grep -qx smp || out=$(qconf -Ap "$STATE/conf/smp.pe" 2>&1) \
  || die "qconf could not add the parallel environment smp: $out"
if ! qconf -sql 2>/dev/null | grep -qx all.q; then
  # qconf -aq opens the queue template in $EDITOR: let a script edit it
  cat > "$STATE/conf/qedit.sh" <<EOF
#!/bin/sh
sed -i -e 's/^pe_list .*/pe_list               smp/' -e 's/^hostlist .*/hostlist              localhost/' \\
  -e 's/^slots .*/slots                 $SLOTS/' -e 's|^shell .*|shell                 /bin/bash|' \\
  -e 's/^shell_start_mode .*/shell_start_mode      unix_behavior/' "\$1"
EOF
  chmod +x "$STATE/conf/qedit.sh"
  out=$(EDITOR="$STATE/conf/qedit.sh" qconf -aq all.q 2>&1) || die "qconf could not add queue all.q: $out"
fi
# an existing queue from an earlier run: the same settings (a changed SGE_SLOTS applies at once).
# No load threshold: the default (np_load_avg=1.75) puts the queue in alarm state on a busy 2-core
# machine and Grid Engine then dispatches nothing until the load drops, so tests failed whenever
# the machine was shared.
qconf -sq all.q > "$STATE/conf/all.q.orig"
sed -e "s/^slots .*/slots                 $SLOTS/" -e 's/^pe_list .*/pe_list               smp/' \
  -e 's/^load_thresholds .*/load_thresholds       NONE/' \
  "$STATE/conf/all.q.orig" > "$STATE/conf/all.q"
cmp -s "$STATE/conf/all.q.orig" "$STATE/conf/all.q" || out=$(qconf -Mq "$STATE/conf/all.q" 2>&1) \
  || die "qconf could not change queue all.q: $out"
rm -f "$STATE/conf/all.q.orig"

# --- ready: the queue instance is up (no state flags: not a/u/d/E) --------------------------------
queue_up() { qstat -f -q all.q 2>/dev/null | grep -Eq '^all\.q@localhost +[A-Z]+ +[0-9/]+ +[-0-9.NA]+ +lx-amd64 *$'; }
wait_for 60 queue_up || die "all.q@localhost is not up: $(qstat -f -q all.q 2>&1 | sed -n 3p);" \
  "see /var/spool/gridengine/execd/localhost/messages"

printf 'export SGE_ROOT=%s SGE_CELL=%s\n' "$SGE_ROOT" "$SGE_CELL" > "$STATE/env.sh"
cat <<EOF
Grid Engine is up: SGE_ROOT=$SGE_ROOT SGE_CELL=$SGE_CELL
  queue=all.q@localhost slots=$SLOTS pe=smp qsub=$qsub_path
  pids: sge_qmaster=$(cat "$QPID") sge_execd=$(cat "$EPID")
  use: source $STATE/env.sh
EOF
