# lib.sh -- helpers shared by the scripts in tests/services/ (sourced, not run).
#
# Adapted from the tested recipes in /work/shared/recipes (start-slurm.sh, start-sshd.sh, ...).
# Conventions:
#   * every daemon we start writes a PID file under its STATE_DIR;
#   * we stop processes ONLY through those PID files, and only if the PID still belongs to a
#     process with the expected command name (a stale PID file after a reboot may name an
#     unrelated process);
#   * packages are installed with apt-get when missing; `apt-get update` runs only when a
#     package is unknown to the local package lists (or the first install attempt fails).

# Daemons live in /usr/sbin, which is not always on a non-login root PATH.
export PATH="$PATH:/usr/sbin:/sbin"

log() { echo "[$(basename "$0")] $*"; }
die() { echo "ERROR [$(basename "$0")]: $*" >&2; exit 1; }

# pid_alive PIDFILE NAME -- true if PIDFILE holds the PID of a running process called NAME.
pid_alive() {
  local f=$1 name=$2 p
  [ -s "$f" ] || return 1
  p=$(cat "$f" 2>/dev/null)
  [[ "$p" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$p" 2>/dev/null || return 1
  [ "$(cat "/proc/$p/comm" 2>/dev/null)" = "$name" ]
}

# stop_pidfile NAME PIDFILE -- TERM (then, after 10 s, KILL) the process in PIDFILE; remove PIDFILE.
stop_pidfile() {
  local name=$1 f=$2 p
  [ -e "$f" ] || return 0
  if pid_alive "$f" "$name"; then
    p=$(cat "$f")
    kill -TERM "$p" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$p" 2>/dev/null; then
      echo "$name ($p) ignored SIGTERM for 10 s, sending SIGKILL" >&2
      kill -KILL "$p" 2>/dev/null || true
    fi
    log "stopped $name (pid $p)"
    # remove the file only if it still names the process we stopped: a concurrent start may
    # already have written the PID of a new daemon into it
    [ "$(cat "$f" 2>/dev/null)" = "$p" ] && rm -f "$f"
  else
    log "removing stale PID file $f (no running $name)"
    rm -f "$f"
  fi
  return 0
}

# port_busy PORT -- true if something accepts TCP connections on 127.0.0.1:PORT.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_for SECONDS CMD... -- run CMD every 0.2 s until it succeeds; false after SECONDS.
wait_for() {
  local t=$1; shift
  local end=$((SECONDS + t))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -ge "$end" ] && return 1
    sleep 0.2
  done
}

# replace_if_changed NEW DEST -- move NEW over DEST atomically if the contents differ
# (readers never see a half-written file). Returns 0 if DEST changed, 1 if it was already equal.
replace_if_changed() {
  if cmp -s "$1" "$2" 2>/dev/null; then rm -f "$1"; return 1; fi
  mv -f "$1" "$2"
}

# apt_install PKG... -- install Debian packages non-interactively, without starting their services.
apt_install() {
  [ "$(id -u)" = 0 ] || die "packages '$*' are missing and only root can install them"
  local p updated=0 tmp_policy=0 rc=0
  # The packages' init scripts must not start system-wide daemons (we run our own copies).
  # This machine kind already has a policy-rc.d that says "no"; if not, add one temporarily.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    tmp_policy=1
  fi
  # Refresh the package lists only if one of the packages is not known to them.
  for p in "$@"; do
    # (no `apt-cache | grep -q` pipe: with pipefail, grep's early exit would fail the pipe)
    if ! [[ "$(apt-cache policy "$p" 2>/dev/null)" =~ Candidate:\ [^\(] ]]; then
      log "package $p not found in the package lists: apt-get update"
      apt-get update -qq
      updated=1
      break
    fi
  done
  log "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null || rc=$?
  if [ "$rc" != 0 ] && [ "$updated" = 0 ]; then
    # Stale package lists (the mirror no longer has the listed version): refresh once, retry.
    log "apt-get install failed (rc=$rc): apt-get update and retry"
    apt-get update -qq
    rc=0
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null || rc=$?
  fi
  if [ "$tmp_policy" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
  [ "$rc" = 0 ] || die "apt-get install $* failed (rc=$rc)"
}

# parse_stop_args DEFAULT_STATE_DIR ARGS... -- a stop script's arguments, [STATE_DIR] [--purge]:
# sets STATE (absolute) and purge (0 or 1).
parse_stop_args() {
  local default=$1 state_arg="" a
  shift
  purge=0
  for a in "$@"; do
    case $a in
      --purge) purge=1 ;;
      -*) die "unknown option $a (usage: $(basename "$0") [STATE_DIR] [--purge])" ;;
      *) state_arg=$a ;;
    esac
  done
  STATE=$(readlink -m -- "${state_arg:-$default}")
}
