#!/usr/bin/env bash
# start-rgw.sh STATE_DIR -- a real S3 server for the integration tests: Ceph's RADOS Gateway
# (Debian's radosgw) on a one-node Ceph cluster: one monitor, one memstore OSD (objects in RAM),
# no cephx, no mgr, no systemd. S3 on http://127.0.0.1:$RGW_PORT; it checks SigV4 signatures
# and Content-MD5, as a production S3 does.
#
# Environment: RGW_PORT (7480), RGW_MON_PORT (6789), RGW_ACCESS_KEY (HPCFLOWACCESS),
#   RGW_SECRET_KEY (hpcflowsecret), RGW_MEM_BYTES (8 GiB: memstore capacity; only what is
#   stored takes memory).
# Writes STATE_DIR/s3.env (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ...). Idempotent while it runs.
# EPHEMERAL: a memstore OSD does not come back after a restart (its placement groups stay
# "queued" and every client hangs), so whenever the monitor is not running, the cluster is
# rebuilt empty (about 15 s). Stop with stop-rgw.sh STATE_DIR. Root only for apt-get.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"

case ${1:-} in -*) die "usage: $(basename "$0") [STATE_DIR]" ;; esac
STATE=$(readlink -m -- "${1:-/tmp/hpcflow-services/state/rgw}")
RGW_PORT=${RGW_PORT:-7480}
MON_PORT=${RGW_MON_PORT:-6789}
AK=${RGW_ACCESS_KEY:-HPCFLOWACCESS}
SK=${RGW_SECRET_KEY:-hpcflowsecret}

if ! command -v radosgw >/dev/null || ! command -v ceph-osd >/dev/null \
   || ! command -v ceph-mon >/dev/null || ! command -v radosgw-admin >/dev/null; then
  apt_install ceph-mon ceph-osd radosgw ceph-common
fi
export CEPH_CONF="$STATE/ceph.conf"
RUN="$STATE/run"

if ! pid_alive "$RUN/mon.a.pid" ceph-mon; then
  # no monitor: build a new, empty cluster (see EPHEMERAL above)
  stop_pidfile radosgw "$RUN/client.rgw.a.pid"
  stop_pidfile ceph-osd "$RUN/osd.0.pid"
  rm -rf "$STATE"/{mon-a,osd-0,run,fsid,monmap,s3.env}
fi
mkdir -p "$STATE"/{mon-a,osd-0,log,run}
chmod 700 "$STATE"
[ -s "$STATE/fsid" ] || python3 -c 'import uuid; print(uuid.uuid4())' > "$STATE/fsid"
FSID=$(cat "$STATE/fsid")
cat > "$CEPH_CONF.new" <<CONF
[global]
fsid = $FSID
mon host = 127.0.0.1:$MON_PORT
public network = 127.0.0.0/8
auth cluster required = none
auth service required = none
auth client required = none
run dir = $RUN
log file = $STATE/log/\$name.log
admin socket = $RUN/\$name.asok
pid file = $RUN/\$name.pid
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
ms bind ipv4 = true
ms bind ipv6 = false
[mon.a]
mon data = $STATE/mon-a
[osd.0]
osd data = $STATE/osd-0
osd objectstore = memstore
memstore device bytes = ${RGW_MEM_BYTES:-8589934592}
[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT
rgw dns name = localhost
# deleted objects' data is freed within seconds (default: after 2 h), so that the tests and the
# benchmark can write many gigabytes in turn into a memstore of a few
rgw gc obj min wait = 0
rgw gc processor period = 5
CONF
replace_if_changed "$CEPH_CONF.new" "$CEPH_CONF" || true

# --- monitor
if [ ! -e "$STATE/mon-a/store.db" ]; then
  monmaptool --create --clobber --add a "127.0.0.1:$MON_PORT" --fsid "$FSID" "$STATE/monmap" >/dev/null
  ceph-mon --mkfs -i a --monmap "$STATE/monmap" 2>/dev/null
fi
if ! pid_alive "$RUN/mon.a.pid" ceph-mon; then
  port_busy "$MON_PORT" && die "port $MON_PORT is busy: set RGW_MON_PORT"
  ceph-mon -i a
fi
timeout 30 ceph -s >/dev/null || die "ceph-mon does not answer (logs: $STATE/log)"

# --- OSD
if [ ! -s "$STATE/osd-0/whoami" ]; then
  uuid=$(python3 -c 'import uuid; print(uuid.uuid4())')
  ceph osd create "$uuid" >/dev/null
  ceph-osd -i 0 --mkfs --osd-uuid "$uuid" 2>/dev/null
  ceph osd crush add osd.0 1.0 host=localhost root=default >/dev/null 2>&1
fi
# A new OSD is sometimes refused at boot by the monitor just made ("handle_command on fsid
# 00000000-... != FSID", then "wrong fsid": its first command goes out before it has the
# cluster's fsid). It exits at once; starting it again a moment later works.
for _ in 1 2 3 4 5 6; do
  pid_alive "$RUN/osd.0.pid" ceph-osd && break
  ceph-osd -i 0 2>/dev/null || sleep 1
done
osd_up() { ceph osd dump 2>/dev/null | grep -q '^osd.0 up'; }
wait_for 30 osd_up || die "osd.0 did not come up (logs: $STATE/log)"

# --- gateway
if ! pid_alive "$RUN/client.rgw.a.pid" radosgw; then
  port_busy "$RGW_PORT" && die "port $RGW_PORT is busy: set RGW_PORT"
  radosgw -n client.rgw.a 2>/dev/null
fi
rgw_up() { [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$RGW_PORT/")" = 200 ]; }
wait_for 60 rgw_up || die "radosgw does not answer on 127.0.0.1:$RGW_PORT (log: $STATE/log/client.rgw.a.log)"
# (radosgw-admin hangs while placement groups are inactive: bounded)
timeout 60 radosgw-admin user info --uid=hpcflow >/dev/null 2>&1 \
  || timeout 60 radosgw-admin user create --uid=hpcflow --display-name=hpcflow \
       --access-key="$AK" --secret-key="$SK" >/dev/null \
  || die "radosgw-admin could not create the S3 user"

cat > "$STATE/s3.env.new" <<ENV
export AWS_ENDPOINT_URL=http://127.0.0.1:$RGW_PORT
export AWS_ACCESS_KEY_ID=$AK
export AWS_SECRET_ACCESS_KEY=$SK
export AWS_DEFAULT_REGION=us-east-1
ENV
mv -f "$STATE/s3.env.new" "$STATE/s3.env"
log "Ceph RGW on http://127.0.0.1:$RGW_PORT (mon $(cat "$RUN/mon.a.pid"), osd $(cat "$RUN/osd.0.pid"), rgw $(cat "$RUN/client.rgw.a.pid"))"
