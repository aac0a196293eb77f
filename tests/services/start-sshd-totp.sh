#!/usr/bin/env bash
# start-sshd-totp.sh STATE_DIR -- a second OpenSSH server for the integration tests, a login node
# with two-factor login: 127.0.0.1:2223, user hpctest, a key AND a time-based one-time code (TOTP,
# RFC 6238) asked through PAM (libpam-google-authenticator): AuthenticationMethods
# publickey,keyboard-interactive. No systemd. Host keys, client key, known_hosts, the TOTP secret,
# config, log and PID file all live in STATE_DIR; the sshd on 2222 (start-sshd.sh) is not touched.
#
# PAM picks its service by the program's name: sshd runs here through the link
# STATE_DIR/sshd-totp, so its PAM stack is /etc/pam.d/sshd-totp (written by this script) and
# /etc/pam.d/sshd stays as it is.
#
# Idempotent: a re-run keeps the keys and the secret; a running sshd is reloaded (SIGHUP) only
# if its config changed. Stop with stop-sshd-totp.sh STATE_DIR. Needs root.
#
# Environment:
#   SSHD_TOTP_PORT   port (2223)
#   SSHD_USER        login user (hpctest; created if missing)
#   SSHD_SETENV      "NAME=VALUE ..." set in every session (SLURM_CONF, as start-sshd.sh)
#
# Files for clients:
#   STATE_DIR/keys/id_ed25519   client private key (root-readable)
#   STATE_DIR/known_hosts       host keys for [127.0.0.1]:PORT and [localhost]:PORT
#   STATE_DIR/totp.env          HPCFLOW_TEST_SSH_TOTP_* for the tests (shell export lines)
#   STATE_DIR/totp/secret       the user's TOTP secret, base32 (root only): the code now is
#                               `oathtool --totp -b "$(cat STATE_DIR/totp/secret)"`
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"

case ${1:-} in -*) die "usage: $(basename "$0") [STATE_DIR]" ;; esac
STATE=$(readlink -m -- "${1:-/tmp/hpcflow-services/state/sshd-totp}")
PORT=${SSHD_TOTP_PORT:-2223}
TUSER=${SSHD_USER:-hpctest}
PAM_SERVICE=sshd-totp
[ "$(id -u)" = 0 ] || die "must run as root (creates user $TUSER, writes /etc/pam.d/$PAM_SERVICE, runs sshd)"

# --- packages ---------------------------------------------------------------------------------------
if [ ! -x /usr/sbin/sshd ] || ! command -v ssh >/dev/null || ! command -v ssh-keygen >/dev/null; then
  apt_install openssh-server openssh-client
fi
pam_module=$(ls /lib/*/security/pam_google_authenticator.so /usr/lib/*/security/pam_google_authenticator.so 2>/dev/null | head -1 || true)
[ -n "$pam_module" ] || apt_install libpam-google-authenticator
command -v oathtool >/dev/null || apt_install oathtool

# --- directories, user ------------------------------------------------------------------------------
mkdir -p "$STATE/keys" "$STATE/authorized_keys" "$STATE/totp"
chmod 755 "$STATE" "$STATE/authorized_keys"
chmod 711 "$STATE/keys"
chmod 700 "$STATE/totp"   # the secret: root (sshd's PAM stack) only
mkdir -p /run/sshd && chmod 755 /run/sshd
if ! id "$TUSER" >/dev/null 2>&1; then
  log "creating user $TUSER"
  useradd -m -s /bin/bash "$TUSER"
fi
if [ "$(getent shadow "$TUSER" | cut -d: -f2)" = '!' ]; then usermod -p '*' "$TUSER"; fi

# --- keys and the TOTP secret (made once, kept across restarts) -------------------------------------
K="$STATE/keys"
[ -s "$K/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N '' -C hpcflow-test-totp-host -f "$K/ssh_host_ed25519_key"
[ -s "$K/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C hpcflow-test-totp-client -f "$K/id_ed25519"
cp "$K/id_ed25519.pub" "$STATE/authorized_keys/$TUSER.new"
replace_if_changed "$STATE/authorized_keys/$TUSER.new" "$STATE/authorized_keys/$TUSER" || true
chmod 644 "$STATE/authorized_keys/$TUSER"
{
  for host in 127.0.0.1 localhost; do
    printf '[%s]:%s %s\n' "$host" "$PORT" "$(cut -d' ' -f1,2 "$K/ssh_host_ed25519_key.pub")"
  done
} > "$STATE/known_hosts.new"
replace_if_changed "$STATE/known_hosts.new" "$STATE/known_hosts" || true
chmod 644 "$STATE/known_hosts"
if [ ! -s "$STATE/totp/secret" ]; then
  # 20 random bytes in base32 (RFC 4648, no padding): what an authenticator app is given
  head -c 20 /dev/urandom | base32 | tr -d '=\n' > "$STATE/totp/secret.new"
  mv -f "$STATE/totp/secret.new" "$STATE/totp/secret"
fi
chmod 600 "$STATE/totp/secret"
# pam_google_authenticator's file: the secret, then its options. A code stays valid for 3 steps
# of 30 s around now; reusing a code is allowed (no DISALLOW_REUSE): tests log in repeatedly.
{
  cat "$STATE/totp/secret"; echo
  echo '" RATE_LIMIT 100 30'
  echo '" WINDOW_SIZE 3'
  echo '" TOTP_AUTH'
} > "$STATE/totp/$TUSER.new"
replace_if_changed "$STATE/totp/$TUSER.new" "$STATE/totp/$TUSER" || true
chown root:root "$STATE/totp/$TUSER"
chmod 600 "$STATE/totp/$TUSER"

# --- PAM stack of this sshd only ------------------------------------------------------------------
cat > "/etc/pam.d/$PAM_SERVICE.new" <<EOF
# Written by tests/services/start-sshd-totp.sh -- the PAM stack of the test sshd on port $PORT only.
# The one-time code (keyboard-interactive); the key was checked by sshd before.
auth     required pam_google_authenticator.so secret=$STATE/totp/\${USER} user=root
account  required pam_unix.so
session  required pam_permit.so
EOF
replace_if_changed "/etc/pam.d/$PAM_SERVICE.new" "/etc/pam.d/$PAM_SERVICE" || true

# --- sshd_config ----------------------------------------------------------------------------------
{
  echo "# Written by tests/services/start-sshd-totp.sh -- test sshd (key + TOTP), do not edit by hand."
  echo "Port $PORT"
  echo "ListenAddress 127.0.0.1"
  echo "HostKey $K/ssh_host_ed25519_key"
  echo "PidFile $STATE/sshd.pid"
  echo "AuthorizedKeysFile $STATE/authorized_keys/%u"
  echo "AllowUsers $TUSER"
  echo "PermitRootLogin no"
  echo "# a key, then the one-time code through PAM"
  echo "AuthenticationMethods publickey,keyboard-interactive"
  echo "PubkeyAuthentication yes"
  echo "KbdInteractiveAuthentication yes"
  echo "PasswordAuthentication no"
  echo "UsePAM yes"
  echo "StrictModes no"
  echo "PrintMotd no"
  echo "UseDNS no"
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
# the program's name is the PAM service: run sshd through a link called sshd-totp
ln -sfn /usr/sbin/sshd "$STATE/$PAM_SERVICE"
if pid_alive "$STATE/sshd.pid" "$PAM_SERVICE"; then
  if [ "$config_changed" = 1 ]; then
    log "config changed: reloading sshd (SIGHUP)"
    kill -HUP "$(cat "$STATE/sshd.pid")"
  fi
else
  port_busy "$PORT" && die "port $PORT is busy (another sshd?); set SSHD_TOTP_PORT"
  "$STATE/$PAM_SERVICE" -f "$STATE/sshd_config" -E "$STATE/sshd.log"
fi
wait_for 30 port_busy "$PORT" || die "sshd does not listen on 127.0.0.1:$PORT; see $STATE/sshd.log"
wait_for 30 pid_alive "$STATE/sshd.pid" "$PAM_SERVICE" || die "sshd is not running; see $STATE/sshd.log"

# the tests' coordinates (up.sh copies them into services.env)
{
  echo "export HPCFLOW_TEST_SSH_TOTP_HOST=127.0.0.1"
  echo "export HPCFLOW_TEST_SSH_TOTP_PORT=$PORT"
  echo "export HPCFLOW_TEST_SSH_TOTP_USER=$TUSER"
  echo "export HPCFLOW_TEST_SSH_TOTP_KEY=$K/id_ed25519"
  echo "export HPCFLOW_TEST_SSH_TOTP_KNOWN_HOSTS=$STATE/known_hosts"
  echo "export HPCFLOW_TEST_SSH_TOTP_SECRET=$STATE/totp/secret"
} > "$STATE/totp.env.new"
chmod 644 "$STATE/totp.env.new"
mv -f "$STATE/totp.env.new" "$STATE/totp.env"

cat <<EOF
sshd (key + TOTP) is up: 127.0.0.1:$PORT user=$TUSER pid=$(cat "$STATE/sshd.pid")
  key=$K/id_ed25519  known_hosts=$STATE/known_hosts  totp_secret=$STATE/totp/secret  log=$STATE/sshd.log
  code: oathtool --totp -b "\$(cat $STATE/totp/secret)"
  try: ssh -p $PORT -i $K/id_ed25519 -o UserKnownHostsFile=$STATE/known_hosts -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes $TUSER@127.0.0.1 id
EOF
