#!/usr/bin/env bash
# stop-slurm.sh STATE_DIR [--purge] -- stop the cluster started by start-slurm.sh STATE_DIR:
# cancel all jobs, then stop slurmd, slurmctld, slurmdbd, MariaDB and munged, each through its PID file only.
# --purge also deletes STATE_DIR. Safe to run when nothing is running.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"

parse_stop_args /tmp/hpcflow-services/state/slurm "$@"  # sets STATE, purge
export SLURM_CONF="$STATE/etc/slurm.conf"

# Jobs' slurmstepd processes outlive slurmd/slurmctld: cancel jobs while the daemons still run.
if pid_alive "$STATE/run/slurmctld.pid" slurmctld && pid_alive "$STATE/run/slurmd.pid" slurmd; then
  ids=$(squeue -h -o %A 2>/dev/null | tr '\n' ' ')
  if [ -n "${ids// /}" ]; then
    # shellcheck disable=SC2086  # one argument per job id
    scancel $ids 2>/dev/null
    for _ in $(seq 1 150); do [ -z "$(squeue -h -o %A 2>/dev/null)" ] && break; sleep 0.2; done
    log "cancelled jobs: $ids"
  fi
fi
stop_pidfile slurmd "$STATE/run/slurmd.pid"
stop_pidfile slurmctld "$STATE/run/slurmctld.pid"
stop_pidfile slurmdbd "$STATE/run/slurmdbd.pid"
stop_pidfile mariadbd "$STATE/db/mariadbd.pid"
stop_pidfile munged "$STATE/run/munged.pid"

steps=$(ps -eo pid=,args= | awk '$2 ~ /^slurmstepd:/')
if [ -n "$steps" ]; then printf 'WARNING: slurmstepd processes still running:\n%s\n' "$steps" >&2; fi
if [ "$purge" = 1 ]; then rm -rf "$STATE"; log "removed $STATE"; fi
exit 0
