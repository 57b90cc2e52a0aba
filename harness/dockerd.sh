#!/usr/bin/env bash
# A private Docker engine for the e2e tests: Debian's docker.io dockerd, started by hand with
# its own socket, pidfile, exec-root, data-root and bridge, so it never touches another engine
# that may run on the same machine.
#
#   harness/dockerd.sh start    install docker.io if missing, start (idempotent), wait for it
#   harness/dockerd.sh stop     stop the dockerd this harness started, wait for it to exit
#   harness/dockerd.sh status   exit 0 and say so when our dockerd answers, else exit 1
#   harness/dockerd.sh env      print `export DOCKER_HOST=...` (and PATH with docker.io's client) for eval
#
# Knobs (environment):
#   MEDUSA_BG_CACHE             cache root (default ~/.cache/medusa-bluegreen); the data-root
#                               lives there so built images survive between runs
#   MEDUSA_BG_RUN               runtime dir for socket, pidfile, exec-root (default /run/medusa-bg)
#   MEDUSA_BG_STORAGE_DRIVER    force a storage driver (overlay2|vfs); default: overlay2 if a
#                               probe container runs on it, else vfs; the choice is remembered
#   MEDUSA_BG_BRIDGE_CIDR       address of our own default bridge (default 10.199.0.1/24)
#   MEDUSA_BG_IPTABLES          true|false (default true: outbound NAT for containers)
#   MEDUSA_BG_START_TIMEOUT     seconds to wait for `docker info` (default 60)
set -euo pipefail

CACHE="${MEDUSA_BG_CACHE:-$HOME/.cache/medusa-bluegreen}"
RUN_DIR="${MEDUSA_BG_RUN:-/run/medusa-bg}"
STATE_DIR="$CACHE/docker"
DATA_ROOT="$STATE_DIR/data-root"
LOG_FILE="$STATE_DIR/dockerd.log"
DRIVER_FILE="$STATE_DIR/storage-driver"
SOCK="$RUN_DIR/docker.sock"
PIDFILE="$RUN_DIR/dockerd.pid"
EXEC_ROOT="$RUN_DIR/exec"
BRIDGE=mbg0
BRIDGE_CIDR="${MEDUSA_BG_BRIDGE_CIDR:-10.199.0.1/24}"
IPTABLES="${MEDUSA_BG_IPTABLES:-true}"
START_TIMEOUT="${MEDUSA_BG_START_TIMEOUT:-60}"
export DOCKER_HOST="unix://$SOCK"

LOG_MARK=0
log() { echo "dockerd.sh: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# The client on PATH may be a newer docker CLI than the daemon (20.10); it negotiates the API
# version down by itself. Prefer it, fall back to the docker.io package's own client.
docker_cli() {
  if command -v docker >/dev/null 2>&1; then docker "$@"; else /usr/bin/docker "$@"; fi
}

# BuildKit builds (cache and secret mounts) need a client that can drive them. A newer CLI
# without the buildx plugin refuses (`BuildKit is enabled but the buildx component is missing`),
# and buildx cannot be had here (not in bookworm; the module proxy refuses its dependencies).
# docker.io's own 20.10 client has BuildKit built in and matches the daemon, so the harness
# environment puts it first on PATH. Prints the directory holding that `docker`.
package_cli_dir() {
  [[ -x /usr/bin/docker ]] || return 1
  local dir="$RUN_DIR/bin"
  mkdir -p "$dir" && ln -sfn /usr/bin/docker "$dir/docker" && echo "$dir"
}

our_pid() {
  # Prints the pid from our pidfile when that process is alive and really is dockerd.
  [[ -f "$PIDFILE" ]] || return 1
  local pid
  pid="$(cat "$PIDFILE" 2>/dev/null)" || return 1
  [[ -n "$pid" && -d "/proc/$pid" ]] || return 1
  [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == dockerd ]] || return 1
  echo "$pid"
}

answers() { docker_cli info --format '{{.ServerVersion}}' >/dev/null 2>&1; }

# --- installation -----------------------------------------------------------------------------

install_packages() {
  # docker.io brings containerd, runc, tini (docker-init) and iptables; debootstrap is for
  # images.sh; iproute2 creates our bridge. Packages' init scripts must not start the system
  # dockerd on /var/run/docker.sock, so deny service starts while installing.
  local need=()
  command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
  command -v iptables >/dev/null 2>&1 || need+=(iptables)
  command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
  command -v ip >/dev/null 2>&1 || need+=(iproute2)
  [[ ${#need[@]} -eq 0 ]] && return 0
  [[ $(id -u) -eq 0 ]] || die "need root to apt-get install ${need[*]}"
  log "installing ${need[*]} from Debian"
  local made_policy=""
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    made_policy=1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
  [[ -n "$made_policy" ]] && rm -f /usr/sbin/policy-rc.d
  return 0
}

# --- start ------------------------------------------------------------------------------------

ensure_bridge() {
  # Our own default bridge, so the stock docker0 of another engine is left alone.
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge
  fi
  if ! ip -4 addr show dev "$BRIDGE" | grep -q "inet $BRIDGE_CIDR"; then
    ip -4 addr flush dev "$BRIDGE"
    ip addr add "$BRIDGE_CIDR" dev "$BRIDGE"
  fi
  ip link set "$BRIDGE" up
}

launch() {
  # $1 = storage driver. Detached (setsid) so it outlives the calling shell, logs appended.
  local driver="$1"
  mkdir -p "$RUN_DIR" "$EXEC_ROOT" "$DATA_ROOT"
  rm -f "$SOCK"
  # Keep the log bounded across many runs: one previous generation is enough.
  if [[ -f "$LOG_FILE" && $(stat -c %s "$LOG_FILE") -gt 5000000 ]]; then mv -f "$LOG_FILE" "$LOG_FILE.old"; fi
  touch "$LOG_FILE"
  LOG_MARK=$(wc -l <"$LOG_FILE")
  echo "=== $(date -Is) start storage-driver=$driver" >>"$LOG_FILE"
  # --containerd-namespace: if a system containerd is running, dockerd uses it; our own
  # namespaces keep our containers apart from another dockerd's "moby" namespace.
  setsid dockerd \
    --host "unix://$SOCK" \
    --pidfile "$PIDFILE" \
    --exec-root "$EXEC_ROOT" \
    --data-root "$DATA_ROOT" \
    --storage-driver "$driver" \
    --bridge "$BRIDGE" \
    --iptables="$IPTABLES" \
    --ip-masq="$IPTABLES" \
    --containerd-namespace medusa-bg \
    --containerd-plugins-namespace medusa-bg-plugins \
    --log-level warn \
    </dev/null >>"$LOG_FILE" 2>&1 &
  local pid=$!
  echo "$pid" >"$PIDFILE.launch"
  wait_answers "$pid"
}

log_since_launch() { tail -n +"$((LOG_MARK + 1))" "$LOG_FILE" | tail -n 15; }

wait_answers() {
  local pid="$1" deadline=$((SECONDS + START_TIMEOUT))
  while ((SECONDS < deadline)); do
    if answers; then return 0; fi
    if [[ ! -d "/proc/$pid" ]]; then
      log "dockerd exited during start; its log:"
      log_since_launch >&2
      return 1
    fi
    sleep 0.2
  done
  log "dockerd did not answer within ${START_TIMEOUT}s; its log:"
  log_since_launch >&2
  return 1
}

probe_containers() {
  # dockerd checks overlay2 with a test mount at start, but only a real container run proves
  # the whole path (layer mount, runc, bridge). The probe image is a one-file tarball of the
  # static tini that docker.io ships as docker-init; prints the create+start+exit time.
  local tini tmp t0 t1
  tini="$(command -v tini-static || command -v docker-init || true)"
  [[ -n "$tini" ]] || { log "no static tini to probe with"; return 1; }
  if ! docker_cli image inspect medusa-bg/probe:1 >/dev/null 2>&1; then
    tmp="$(mktemp -d)"
    cp "$tini" "$tmp/probe"
    tar -C "$tmp" -c probe | docker_cli import - medusa-bg/probe:1 >/dev/null
    rm -rf "$tmp"
  fi
  t0=$(date +%s%N)
  docker_cli run --rm --network bridge medusa-bg/probe:1 /probe --version >/dev/null 2>>"$LOG_FILE" || return 1
  t1=$(date +%s%N)
  log "probe container on $(docker_cli info --format '{{.Driver}}') (create+start+exit+remove): $(((t1 - t0) / 1000000)) ms"
}

give_up() {
  # Leave nothing half-started behind, then fail with the reason.
  local pid
  if pid="$(our_pid)"; then stop_pid "$pid"; fi
  [[ -f "$PIDFILE.launch" ]] && stop_pid "$(cat "$PIDFILE.launch")"
  rm -f "$PIDFILE" "$PIDFILE.launch"
  die "$@"
}

stop_pid() {
  local pid="$1" deadline
  kill -TERM "$pid" 2>/dev/null || return 0
  deadline=$((SECONDS + 30))
  while [[ -d "/proc/$pid" ]] && ((SECONDS < deadline)); do sleep 0.2; done
  if [[ -d "/proc/$pid" ]]; then
    log "dockerd $pid ignored SIGTERM for 30s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.5
  fi
}

cmd_start() {
  local t0=$SECONDS
  if our_pid >/dev/null && answers; then
    log "already running (pid $(our_pid), $DOCKER_HOST)"
    return 0
  fi
  install_packages
  mkdir -p "$STATE_DIR"
  # A stale pidfile from a dead or foreign process: drop it. A live dockerd of ours that does not
  # answer (wedged) is stopped first.
  if pid="$(our_pid)"; then log "our dockerd $pid does not answer; restarting it"; stop_pid "$pid"; fi
  rm -f "$PIDFILE"
  ensure_bridge

  local driver="${MEDUSA_BG_STORAGE_DRIVER:-}"
  [[ -z "$driver" && -f "$DRIVER_FILE" ]] && driver="$(cat "$DRIVER_FILE")"
  if [[ -n "$driver" ]]; then
    { launch "$driver" && answers; } || give_up "dockerd failed to start with storage driver $driver (log: $LOG_FILE)"
  else
    # First start with this cache: try overlay2 (fast, shares layers), fall back to vfs (copies
    # every layer per container, slow and disk-hungry, but works on any filesystem).
    driver=overlay2
    if ! { launch overlay2 && probe_containers; }; then
      log "overlay2 does not work here; falling back to vfs"
      if pid="$(our_pid)"; then stop_pid "$pid"; fi
      [[ -f "$PIDFILE.launch" ]] && stop_pid "$(cat "$PIDFILE.launch")"
      driver=vfs
      { launch vfs && probe_containers; } || give_up "dockerd failed with overlay2 and vfs (log: $LOG_FILE)"
    fi
    echo "$driver" >"$DRIVER_FILE"
  fi
  rm -f "$PIDFILE.launch"
  log "running: pid $(our_pid), storage driver $(docker_cli info --format '{{.Driver}}'), $DOCKER_HOST, started in $((SECONDS - t0))s"
}

cmd_stop() {
  local pid
  if ! pid="$(our_pid)"; then
    log "not running (no live dockerd in $PIDFILE)"
    rm -f "$PIDFILE"
    return 0
  fi
  stop_pid "$pid"
  rm -f "$PIDFILE" "$SOCK"
  # dockerd bind-mounts its data-root onto itself (private propagation) and leaves that mount
  # behind on exit; drop it so the cache dir can be deleted and nothing of ours stays mounted.
  if mountpoint -q "$DATA_ROOT" 2>/dev/null; then umount "$DATA_ROOT" 2>/dev/null || true; fi
  log "stopped dockerd $pid"
}

cmd_status() {
  local pid
  if pid="$(our_pid)" && answers; then
    echo "running pid=$pid driver=$(docker_cli info --format '{{.Driver}}') DOCKER_HOST=$DOCKER_HOST"
  else
    echo "not running"
    return 1
  fi
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  env)
    echo "export DOCKER_HOST=$DOCKER_HOST"
    if cli_dir="$(package_cli_dir)"; then echo "export PATH=\"$cli_dir:\$PATH\""; fi
    ;;
  *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
