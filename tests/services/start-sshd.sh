#!/usr/bin/env bash
# start-sshd.sh STATE_DIR -- a real OpenSSH server for the integration tests ("login node"):
# 127.0.0.1:2222, key-only login as user hpctest, no systemd. Host keys, client keys,
# authorized_keys, known_hosts, config, log and PID file all live in STATE_DIR.
#
# Idempotent: a re-run keeps the keys; a running sshd is reloaded (SIGHUP) only if its config
# changed. Stop with stop-sshd.sh STATE_DIR. Needs root (creates the user, runs sshd).
#
# Environment:
#   SSHD_PORT        port (2222)
#   SSHD_USER        login user (hpctest; created if missing)
#   SSHD_SETENV      "NAME=VALUE ..." set in every session, e.g. "SLURM_CONF=/x/etc/slurm.conf",
#                    so that `sbatch` works over ssh like on a real login node (OpenSSH >= 8.7)
#   SSHD_ALLOW_ROOT  1 also authorizes the client keys for root (default 0)
#
# Files for clients:
#   STATE_DIR/keys/id_ed25519          client private key (root-readable)
#   STATE_DIR/keys/id_ed25519.USER     the same key, owned by USER (for tests running as USER)
#   STATE_DIR/keys/id_rsa              RSA client key in PEM format (old clients/libraries)
#   STATE_DIR/known_hosts              host keys for [127.0.0.1]:PORT and [localhost]:PORT
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"

case ${1:-} in -*) die "usage: $(basename "$0") [STATE_DIR]" ;; esac
STATE=$(readlink -m -- "${1:-/tmp/hpcflow-services/state/sshd}")
PORT=${SSHD_PORT:-2222}
TUSER=${SSHD_USER:-hpctest}
ALLOW_ROOT=${SSHD_ALLOW_ROOT:-0}
[ "$(id -u)" = 0 ] || die "must run as root (creates user $TUSER, runs sshd)"

# --- packages ---------------------------------------------------------------------------------------
if [ ! -x /usr/sbin/sshd ] || ! command -v ssh >/dev/null || ! command -v ssh-keygen >/dev/null; then
  apt_install openssh-server openssh-client
fi

# --- directories, user ------------------------------------------------------------------------------
mkdir -p "$STATE/keys" "$STATE/authorized_keys"
chmod 755 "$STATE" "$STATE/authorized_keys"
chmod 711 "$STATE/keys"   # private keys stay 0600; USER must reach its own copy of the client key
# sshd's privilege-separation directory (normally created by systemd's RuntimeDirectory=)
mkdir -p /run/sshd && chmod 755 /run/sshd
if ! id "$TUSER" >/dev/null 2>&1; then
  log "creating user $TUSER"
  useradd -m -s /bin/bash "$TUSER"
fi
# useradd leaves the password field '!' (locked); with UsePAM no, sshd refuses locked accounts
# even for key logins. '*' = no password can ever match, but the account is not locked.
if [ "$(getent shadow "$TUSER" | cut -d: -f2)" = '!' ]; then usermod -p '*' "$TUSER"; fi

# --- keys (generated once, kept across restarts) ---------------------------------------------------
K="$STATE/keys"
[ -s "$K/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N '' -C hpcflow-test-host -f "$K/ssh_host_ed25519_key"
[ -s "$K/ssh_host_rsa_key" ] || ssh-keygen -q -t rsa -b 3072 -N '' -C hpcflow-test-host -f "$K/ssh_host_rsa_key"
[ -s "$K/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C hpcflow-test-client -f "$K/id_ed25519"
[ -s "$K/id_rsa" ] || ssh-keygen -q -t rsa -b 3072 -m PEM -N '' -C hpcflow-test-client -f "$K/id_rsa"
# a copy of the client key owned by the test user (ssh refuses keys readable by others)
if ! cmp -s "$K/id_ed25519" "$K/id_ed25519.$TUSER"; then
  install -m 600 -o "$TUSER" "$K/id_ed25519" "$K/id_ed25519.$TUSER"
fi

# authorized_keys and known_hosts are replaced atomically and only when their content changes,
# so clients of an already running sshd are never disturbed by a re-run.
cat "$K/id_ed25519.pub" "$K/id_rsa.pub" > "$STATE/authorized_keys/$TUSER.new"
replace_if_changed "$STATE/authorized_keys/$TUSER.new" "$STATE/authorized_keys/$TUSER" || true
if [ "$ALLOW_ROOT" = 1 ]; then
  cp "$STATE/authorized_keys/$TUSER" "$STATE/authorized_keys/root.new"
  replace_if_changed "$STATE/authorized_keys/root.new" "$STATE/authorized_keys/root" || true
else
  rm -f "$STATE/authorized_keys/root"
fi
chmod 644 "$STATE/authorized_keys/"*
{
  for key in "$K/ssh_host_ed25519_key.pub" "$K/ssh_host_rsa_key.pub"; do
    for host in 127.0.0.1 localhost; do
      printf '[%s]:%s %s\n' "$host" "$PORT" "$(cut -d' ' -f1,2 "$key")"
    done
  done
} > "$STATE/known_hosts.new"
replace_if_changed "$STATE/known_hosts.new" "$STATE/known_hosts" || true
chmod 644 "$STATE/known_hosts"

# --- sshd_config ----------------------------------------------------------------------------------
{
  echo "# Written by tests/services/start-sshd.sh -- test sshd, do not edit by hand."
  echo "Port $PORT"
  echo "ListenAddress 127.0.0.1"
  echo "HostKey $K/ssh_host_ed25519_key"
  echo "HostKey $K/ssh_host_rsa_key"
  echo "PidFile $STATE/sshd.pid"
  echo "AuthorizedKeysFile $STATE/authorized_keys/%u"
  echo "AllowUsers $TUSER$([ "$ALLOW_ROOT" = 1 ] && echo ' root')"
  echo "PermitRootLogin $([ "$ALLOW_ROOT" = 1 ] && echo prohibit-password || echo no)"
  echo "PubkeyAuthentication yes"
  echo "PasswordAuthentication no"
  echo "KbdInteractiveAuthentication no"
  echo "UsePAM no"
  echo "# STATE_DIR may be under /tmp (mode 1777): StrictModes would reject the key files"
  echo "StrictModes no"
  echo "PrintMotd no"
  echo "UseDNS no"
  echo "# many parallel connections from tests"
  echo "MaxStartups 100:30:200"
  echo "MaxSessions 50"
  echo "Subsystem sftp internal-sftp"
  echo "LogLevel VERBOSE"
  if [ -n "${SSHD_SETENV:-}" ]; then
    echo "# environment of every session (login-node pattern: SLURM_CONF for sbatch/squeue)"
    echo "SetEnv $SSHD_SETENV"
  fi
} > "$STATE/sshd_config.new"
/usr/sbin/sshd -t -f "$STATE/sshd_config.new" || die "sshd rejects the generated config $STATE/sshd_config.new"
config_changed=0
replace_if_changed "$STATE/sshd_config.new" "$STATE/sshd_config" && config_changed=1

# --- start or reload ------------------------------------------------------------------------------
if pid_alive "$STATE/sshd.pid" sshd; then
  if [ "$config_changed" = 1 ]; then
    log "config changed: reloading sshd (SIGHUP)"
    kill -HUP "$(cat "$STATE/sshd.pid")"   # sshd re-executes itself with the new config
  fi
else
  port_busy "$PORT" && die "port $PORT is busy (another sshd?); set SSHD_PORT"
  /usr/sbin/sshd -f "$STATE/sshd_config" -E "$STATE/sshd.log"
fi
wait_for 30 port_busy "$PORT" || die "sshd does not listen on 127.0.0.1:$PORT; see $STATE/sshd.log"
# sshd binds its port before its daemonized child writes the PID file: on a busy machine the
# file can lag the port by a moment, so wait for it too instead of reading it once.
wait_for 30 pid_alive "$STATE/sshd.pid" sshd || die "sshd is not running; see $STATE/sshd.log"

cat <<EOF
sshd is up: 127.0.0.1:$PORT user=$TUSER$([ "$ALLOW_ROOT" = 1 ] && echo ',root') pid=$(cat "$STATE/sshd.pid")
  key=$K/id_ed25519  key_for_$TUSER=$K/id_ed25519.$TUSER  known_hosts=$STATE/known_hosts  log=$STATE/sshd.log
  try: ssh -p $PORT -i $K/id_ed25519 -o UserKnownHostsFile=$STATE/known_hosts -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes $TUSER@127.0.0.1 id
EOF
