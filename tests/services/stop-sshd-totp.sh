#!/usr/bin/env bash
# stop-sshd-totp.sh STATE_DIR [--purge] -- stop the sshd started by start-sshd-totp.sh STATE_DIR,
# through its PID file only (open sessions and master connections end with it). --purge also
# deletes STATE_DIR (keys and TOTP secret included) and /etc/pam.d/sshd-totp.
# Safe to run when nothing is running.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"

parse_stop_args /tmp/hpcflow-services/state/sshd-totp "$@"  # sets STATE, purge
stop_pidfile sshd-totp "$STATE/sshd.pid"
if [ "$purge" = 1 ]; then
  rm -rf "$STATE"; log "removed $STATE"
  rm -f /etc/pam.d/sshd-totp
fi
exit 0
