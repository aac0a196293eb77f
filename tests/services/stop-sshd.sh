#!/usr/bin/env bash
# stop-sshd.sh STATE_DIR [--purge] -- stop the sshd started by start-sshd.sh STATE_DIR, through its
# PID file only (open sessions end with it). --purge also deletes STATE_DIR (keys included).
# Safe to run when nothing is running.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"

parse_stop_args /tmp/hpcflow-services/state/sshd "$@"  # sets STATE, purge
stop_pidfile sshd "$STATE/sshd.pid"
if [ "$purge" = 1 ]; then rm -rf "$STATE"; log "removed $STATE"; fi
exit 0
