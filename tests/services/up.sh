#!/usr/bin/env bash
# up.sh [STATE_DIR] -- start the services the integration tests use, wait until each one really
# works, and write STATE_DIR/services.env (shell `export` lines) for the tests:
#
#   Slurm  one-node cluster (STATE_DIR/slurm), partition "debug"       -> start-slurm.sh
#          with slurmdbd + MariaDB (plain `sacct`), MinJobAge=10
#   sshd   127.0.0.1:2222, user hpctest, key-only (STATE_DIR/sshd);   -> start-sshd.sh
#          every ssh session gets SLURM_CONF of that cluster, so `sbatch` works over ssh
#   sshd   127.0.0.1:2223, user hpctest, a key AND a TOTP code         -> start-sshd-totp.sh
#          (STATE_DIR/sshd-totp; PAM service sshd-totp; SLURM_CONF as on 2222): two-factor login nodes
#   SGE    one-node Son of Grid Engine, queue "all.q", pe "smp"        -> start-sge.sh
#          (SGE_ROOT=/var/lib/gridengine: one per machine; STATE_DIR/sge holds its config files)
#   S3     Ceph RADOS Gateway on 127.0.0.1:7480 (STATE_DIR/rgw)        -> start-rgw.sh
#          (a real S3: signatures and MD5s checked; objects in RAM, gone after a stop)
#
# Usage:  sudo bash tests/services/up.sh [STATE_DIR]     (default /tmp/hpcflow-services/state)
#         source STATE_DIR/services.env
#         bash tests/services/down.sh [STATE_DIR]
#
# Idempotent: running it again while the services run keeps them (and their keys) as they are.
# Exits non-zero with a message if anything does not come up. Needs root.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"

case ${1:-} in -*) die "usage: $(basename "$0") [STATE_DIR]" ;; esac
STATE=$(readlink -m -- "${1:-/tmp/hpcflow-services/state}")
SSH_HOST=127.0.0.1
SSH_PORT=${SSHD_PORT:-2222}
SSH_USER=${SSHD_USER:-hpctest}
[ "$(id -u)" = 0 ] || die "must run as root (installs packages, creates user $SSH_USER, runs sshd)"

t0=$(date +%s%N)
ENV_FILE="$STATE/services.env"
# If we fail, do not leave a services.env behind that looks valid.
ok=0
trap '[ "$ok" = 1 ] || rm -f "$ENV_FILE" "$ENV_FILE.new"' EXIT

# The test user must be able to walk down to STATE_DIR (config, munge socket, its client key).
mkdir -p "$STATE"
chmod 755 "$STATE"

# --- Slurm ----------------------------------------------------------------------------------------
# The job user exists before Slurm starts: slurmctld resolves an association's user to a uid
# when it loads it, and one that did not exist then stays unresolved, its jobs refused
# ("Invalid account or account/partition combination"), until the controller restarts.
# (start-sshd.sh below finds the user and finishes its set-up.)
if ! id "$SSH_USER" >/dev/null 2>&1; then
  echo "[up.sh] creating user $SSH_USER" >&2
  useradd -m -s /bin/bash "$SSH_USER"
fi
bash "$HERE/start-slurm.sh" "$STATE/slurm" || die "Slurm did not come up (logs: $STATE/slurm/log)"
export SLURM_CONF="$STATE/slurm/etc/slurm.conf"
# A controller still running from before the user existed (started by an older up.sh) knows
# the user without a uid or a default account: restart it (jobs survive a restart).
ctld_user_stale() {
  scontrol show assoc_mgr users="$SSH_USER" flags=users 2>/dev/null \
    | grep -Eq "UserName=$SSH_USER\(4294967294\)|DefAccount=\(null\)"
}
if ctld_user_stale; then
  echo "[up.sh] slurmctld has $SSH_USER without its account: restarting slurmctld" >&2
  stop_pidfile slurmctld "$STATE/slurm/run/slurmctld.pid"
  bash "$HERE/start-slurm.sh" "$STATE/slurm" || die "Slurm did not come up (logs: $STATE/slurm/log)"
  ! ctld_user_stale || die "slurmctld still has $SSH_USER without its account (scontrol show assoc_mgr users=$SSH_USER flags=users)"
fi
JOBCOMP="$STATE/slurm/log/jobcomp.txt"
# ready = the controller answers and the node can take jobs
scontrol ping 2>&1 | grep -q 'is UP' \
  || die "Slurm: 'scontrol ping' does not report UP: $(scontrol ping 2>&1)"
state=$(sinfo -h -n localhost -o %t 2>&1)
echo "$state" | grep -Eqx 'idle|mix|alloc|comp' || die "Slurm: node localhost is '$state', not idle"
# accounting: plain sacct answers through slurmdbd
sacct -n -X -S now-1minutes >/dev/null 2>"$STATE/slurm/log/sacct-check.txt" \
  || die "Slurm: 'sacct' fails: $(tail -2 "$STATE/slurm/log/sacct-check.txt")"

# --- Grid Engine ---------------------------------------------------------------------------------
bash "$HERE/start-sge.sh" "$STATE/sge" \
  || die "Grid Engine did not come up (logs: /var/spool/gridengine/{qmaster,execd/localhost}/messages)"
export SGE_ROOT=/var/lib/gridengine SGE_CELL=default
# `qsub` must be Grid Engine's (Slurm's qsub wrapper, slurm-wlm-torque, is not installed)
case $(readlink -f "$(command -v qsub)") in
  /usr/share/gridengine/gridengine-wrapper|/usr/lib/gridengine/qsub) ;;
  *) die "SGE: qsub on PATH is $(command -v qsub) -> $(readlink -f "$(command -v qsub)"), not Grid Engine's" ;;
esac
# ready = a real job runs to its end (qsub -sync y waits for it and exits with its status); qsub
# right after a configuration change can fail once ("Error reading answer list"): try again
ready_dir="$STATE/sge/ready"
mkdir -p "$ready_dir"
printf '#!/bin/bash\n#$ -N hpcflow-ready\n#$ -o %s/out.txt\n#$ -j y\n#$ -S /bin/bash\necho ready $JOB_ID\n' \
  "$ready_dir" > "$ready_dir/job.sh"
sge_ready=0
for _ in 1 2 3; do
  rm -f "$ready_dir/out.txt"
  if timeout 60 qsub -sync y -terse -wd "$ready_dir" "$ready_dir/job.sh" >"$ready_dir/qsub.txt" 2>&1 \
     && grep -q '^ready [0-9]' "$ready_dir/out.txt" 2>/dev/null; then
    sge_ready=1; break
  fi
  sleep 1
done
[ "$sge_ready" = 1 ] || die "SGE: a trivial job did not run: $(tail -3 "$ready_dir/qsub.txt")"

# --- sshd ------------------------------------------------------------------------------------------
SSHD_SETENV="SLURM_CONF=$SLURM_CONF" bash "$HERE/start-sshd.sh" "$STATE/sshd" \
  || die "sshd did not come up (log: $STATE/sshd/sshd.log)"
SSH_KEY="$STATE/sshd/keys/id_ed25519"
KNOWN_HOSTS="$STATE/sshd/known_hosts"
# ssh exactly as the tests will: this key only, this known_hosts only, host key must match.
remote() {
  ssh -n -F /dev/null -p "$SSH_PORT" -i "$SSH_KEY" -o IdentitiesOnly=yes -o BatchMode=yes \
      -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$KNOWN_HOSTS" \
      -o GlobalKnownHostsFile=/dev/null -o ConnectTimeout=5 "$SSH_USER@$SSH_HOST" "$@"
}
wait_for 20 remote true \
  || die "sshd: 'ssh $SSH_USER@$SSH_HOST -p $SSH_PORT true' fails: $(remote true 2>&1 | tail -3)"
# login-node pattern: SLURM_CONF (sshd SetEnv) and the munge socket must reach ssh sessions
remote 'scontrol ping' 2>&1 | grep -q 'is UP' \
  || die "Slurm is not usable over ssh as $SSH_USER: $(remote 'echo SLURM_CONF=$SLURM_CONF; scontrol ping' 2>&1 | tail -3)"
remote 'sacct -n -X -S now-1minutes' >/dev/null 2>&1 \
  || die "sacct does not work over ssh as $SSH_USER: $(remote 'sacct -n -X -S now-1minutes' 2>&1 | tail -3)"

# --- sshd with two-factor login (key + TOTP) ------------------------------------------------------
SSH_TOTP_PORT=${SSHD_TOTP_PORT:-2223}
SSHD_TOTP_PORT=$SSH_TOTP_PORT SSHD_SETENV="SLURM_CONF=$SLURM_CONF" bash "$HERE/start-sshd-totp.sh" "$STATE/sshd-totp" \
  || die "sshd (key + TOTP) did not come up (log: $STATE/sshd-totp/sshd.log)"
TOTP_DIR="$STATE/sshd-totp"
# ready = the key is accepted and the one-time code is asked next (no code in batch mode)
totp_said=$(ssh -n -F /dev/null -p "$SSH_TOTP_PORT" -i "$TOTP_DIR/keys/id_ed25519" -o IdentitiesOnly=yes \
    -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$TOTP_DIR/known_hosts" \
    -o GlobalKnownHostsFile=/dev/null -o ConnectTimeout=5 "$SSH_USER@$SSH_HOST" true 2>&1 || true)
[[ "$totp_said" == *"Permission denied (keyboard-interactive)"* ]] \
  || die "sshd (key + TOTP) on $SSH_TOTP_PORT does not ask for a code after the key: $totp_said"

# --- S3: Ceph RADOS Gateway ------------------------------------------------------------------------
# A one-node Ceph built from nothing sometimes fails to come up (seen once: the new OSD was
# refused by the new monitor with "wrong fsid"); the cluster is ephemeral, so build it again.
rgw_up=0
for attempt in 1 2 3; do
  if bash "$HERE/start-rgw.sh" "$STATE/rgw"; then rgw_up=1; break; fi
  log "Ceph RGW did not come up (attempt $attempt): $(tail -2 "$STATE/rgw/log/osd.0.log" 2>/dev/null | tr '\n' ' ' | cut -c1-300)"
  bash "$HERE/stop-rgw.sh" "$STATE/rgw" >/dev/null 2>&1 || true
done
[ "$rgw_up" = 1 ] || die "Ceph RGW did not come up (logs: $STATE/rgw/log)"
# shellcheck source=/dev/null
S3_ENV=$(source "$STATE/rgw/s3.env" && echo "$AWS_ENDPOINT_URL $AWS_ACCESS_KEY_ID $AWS_SECRET_ACCESS_KEY")
read -r S3_ENDPOINT S3_ACCESS_KEY S3_SECRET_KEY <<<"$S3_ENV"
# (start-rgw.sh waited for the gateway to answer and for its S3 user to exist)
# libfaketime: the doctor's clock-skew check is tested with a clock really off the server's
command -v faketime >/dev/null || apt_install faketime
# headless Chromium and its WebDriver: the dashboard's browser tests (tests/e2e/test_ui_browser.py)
{ command -v chromium >/dev/null && command -v chromedriver >/dev/null; } \
  || apt_install chromium chromium-driver
# bindfs: a FUSE mount for the shared-home tests (tests/e2e/test_login_nodes.py)
command -v bindfs >/dev/null || apt_install bindfs
# Mermaid's browser bundle, pinned: `hpcflow graph -o mermaid` rendered by the real Mermaid
# (tests/e2e/test_mermaid_render.py)
MERMAID_JS=""
for attempt in 1 2 3; do
  if MERMAID_JS=$(bash "$HERE/fetch-mermaid.sh" "$STATE/mermaid"); then break; fi
  MERMAID_JS=""
  log "fetching Mermaid's bundle failed (attempt $attempt)"
  sleep $((attempt * 5))
done
[ -n "$MERMAID_JS" ] || log "WARNING: no Mermaid bundle: tests/e2e/test_mermaid_render.py will skip"

# --- can hpctest run the project's Python? (warning only) -----------------------------------------
venv=${HPCFLOW_VENV:-.venv}
case $venv in /*) ;; *) venv="$REPO/$venv" ;; esac
if [ -x "$venv/bin/python" ]; then
  if remote "cd / && '$venv/bin/python' -c 'import hpcflow'" >/dev/null 2>&1; then
    log "$SSH_USER can run $venv/bin/python (and import hpcflow)"
  else
    # name the first directory on the way to the real interpreter that SSH_USER cannot enter
    blocked=""
    for p in "$venv/bin/python" "$(readlink -f "$venv/bin/python")"; do
      d=$(dirname "$p")
      while [ "$d" != / ]; do
        runuser -u "$SSH_USER" -- test -x "$d" 2>/dev/null || blocked=$d
        d=$(dirname "$d")
      done
    done
    echo "WARNING [up.sh]: user $SSH_USER cannot run $venv/bin/python (-> $(readlink -f "$venv/bin/python"))." >&2
    [ -n "$blocked" ] && echo "  '$blocked' is not traversable by $SSH_USER ($(stat -c '%A %U' "$blocked"))." >&2
    echo "  (Expected here: jobs over ssh run hpcflow's shipped runner with /usr/bin/python3. See tests/services/README.md.)" >&2
  fi
fi

# --- services.env ---------------------------------------------------------------------------------
cat > "$ENV_FILE.new" <<EOF
# Written by tests/services/up.sh -- source this file before running the integration tests.
export SLURM_CONF=$SLURM_CONF
export HPCFLOW_TEST_SLURM_JOBCOMP=$JOBCOMP
export HPCFLOW_TEST_SLURM_SACCT=1
export HPCFLOW_TEST_SSH_HOST=$SSH_HOST
export HPCFLOW_TEST_SSH_PORT=$SSH_PORT
export HPCFLOW_TEST_SSH_USER=$SSH_USER
export HPCFLOW_TEST_SSH_KEY=$SSH_KEY
export HPCFLOW_TEST_SSH_KNOWN_HOSTS=$KNOWN_HOSTS
$(cat "$TOTP_DIR/totp.env")
export SGE_ROOT=$SGE_ROOT
export SGE_CELL=$SGE_CELL
export HPCFLOW_TEST_SGE=1
export HPCFLOW_TEST_S3_ENDPOINT=$S3_ENDPOINT
export HPCFLOW_TEST_S3_ACCESS_KEY=$S3_ACCESS_KEY
export HPCFLOW_TEST_S3_SECRET_KEY=$S3_SECRET_KEY
export HPCFLOW_TEST_MERMAID_JS=$MERMAID_JS
EOF
chmod 644 "$ENV_FILE.new"
mv -f "$ENV_FILE.new" "$ENV_FILE"
ok=1
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
log "services up in $((ms / 1000)).$(printf '%03d' $((ms % 1000))) s; now: source $ENV_FILE"
