#!/usr/bin/env bash
# stop-sge.sh STATE_DIR [--purge] -- stop the Grid Engine started by start-sge.sh: delete every
# job, then stop sge_execd and sge_qmaster, each through its PID file only (the Debian packages
# keep them at fixed places under /var/spool/gridengine). --purge also deletes STATE_DIR (the
# generated config files); the cell itself (/var/lib/gridengine, /var/spool/gridengine: queue,
# accounting, job ids) stays. Safe to run when nothing is running.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"

parse_stop_args /tmp/hpcflow-services/state/sge "$@"  # sets STATE, purge
export SGE_ROOT=/var/lib/gridengine SGE_CELL=default
QPID=/var/spool/gridengine/qmaster/qmaster.pid
EPID=/var/spool/gridengine/execd/localhost/execd.pid

# Jobs' sge_shepherd processes outlive sge_execd: delete the jobs while both daemons still run.
jobs_left() { qstat -u '*' 2>/dev/null | awk 'NR > 2 { print $1 }' | sort -u | tr '\n' ' '; }
if pid_alive "$QPID" sge_qmaster && pid_alive "$EPID" sge_execd; then
  ids=$(jobs_left)
  if [ -n "${ids// /}" ]; then
    # shellcheck disable=SC2086  # one argument per job id
    qdel $ids >/dev/null 2>&1
    for _ in $(seq 1 100); do [ -z "$(jobs_left)" ] && break; sleep 0.2; done
    # a job whose deletion is stuck (its shepherd gone): forget it
    ids_stuck=$(jobs_left)
    # shellcheck disable=SC2086
    [ -n "${ids_stuck// /}" ] && qdel -f $ids_stuck >/dev/null 2>&1
    log "deleted jobs: $ids"
  fi
fi
stop_pidfile sge_execd "$EPID"
stop_pidfile sge_qmaster "$QPID"

left=$(ps -eo pid=,comm= | awk '$2 == "sge_shepherd"')
if [ -n "$left" ]; then printf 'WARNING: sge_shepherd processes still running:\n%s\n' "$left" >&2; fi
if [ "$purge" = 1 ]; then rm -rf "$STATE"; log "removed $STATE"; fi
exit 0
