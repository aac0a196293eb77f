#!/usr/bin/env bash
# stop-rgw.sh STATE_DIR [--purge] -- stop the radosgw, ceph-osd and ceph-mon that start-rgw.sh
# started, each through its PID file only. The cluster is ephemeral (objects live in RAM): the
# next start builds a new, empty one. --purge also deletes STATE_DIR.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"

parse_stop_args /tmp/hpcflow-services/state/rgw "$@"  # sets STATE, purge
stop_pidfile radosgw "$STATE/run/client.rgw.a.pid"
stop_pidfile ceph-osd "$STATE/run/osd.0.pid"
stop_pidfile ceph-mon "$STATE/run/mon.a.pid"
if [ "$purge" = 1 ]; then rm -rf "$STATE"; log "removed $STATE"; fi
exit 0
