#!/usr/bin/env bash
# down.sh [STATE_DIR] [--purge] -- stop what up.sh STATE_DIR started (both sshds, Ceph RGW, Grid Engine, Slurm), each
# daemon through its PID file only, and remove STATE_DIR/services.env. --purge also deletes the
# state (keys, Slurm state, logs). Default STATE_DIR: /tmp/hpcflow-services/state.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
purge=() state_arg=""
for a in "$@"; do
  case $a in
    --purge) purge=(--purge) ;;
    -*) echo "usage: $(basename "$0") [STATE_DIR] [--purge]" >&2; exit 2 ;;
    *) state_arg=$a ;;
  esac
done
STATE=$(readlink -m -- "${state_arg:-/tmp/hpcflow-services/state}")
rc=0
rm -f "$STATE/services.env"
bash "$HERE/stop-sshd.sh" "$STATE/sshd" "${purge[@]}" || rc=1
bash "$HERE/stop-sshd-totp.sh" "$STATE/sshd-totp" "${purge[@]}" || rc=1
bash "$HERE/stop-rgw.sh" "$STATE/rgw" "${purge[@]}" || rc=1
bash "$HERE/stop-sge.sh" "$STATE/sge" "${purge[@]}" || rc=1
bash "$HERE/stop-slurm.sh" "$STATE/slurm" "${purge[@]}" || rc=1
if [ ${#purge[@]} = 1 ]; then rmdir "$STATE" 2>/dev/null || true; fi
exit $rc
