#!/usr/bin/env bash
# stop-sshd.sh STATE_DIR [--purge] -- stop the sshd started by start-sshd.sh STATE_DIR, through its
# PID file only (open sessions end with it). --purge also deletes STATE_DIR (keys included).
# Safe to run when nothing is running.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"

purge=0 state_arg=""
for a in "$@"; do
  case $a in
    --purge) purge=1 ;;
    -*) die "unknown option $a (usage: $(basename "$0") [STATE_DIR] [--purge])" ;;
    *) state_arg=$a ;;
  esac
done
STATE=$(readlink -m -- "${state_arg:-/tmp/hpcflow-services/state/sshd}")
stop_pidfile sshd "$STATE/sshd.pid"
if [ "$purge" = 1 ]; then rm -rf "$STATE"; log "removed $STATE"; fi
exit 0
