#!/usr/bin/env bash
# A simulated VPS for the e2e suite: a privileged container `mbg-vps` on the harness dockerd, on
# its own bridge network, running its own dockerd (Debian docker.io) and OpenSSH, so the test
# process can play a CI runner that reaches "the host" only over ssh, as our users' runners do
# with `dockerHost: ssh://deploy@host`. The VPS starts as a fresh Debian host where root logs in
# with the harness's key; scripts/host/setup.sh turns it into a deploy host.
#
#   harness/vps.sh up [--fresh] [IMAGE...]   image, network, volume, container; wait for the VPS's
#                                           dockerd and sshd; copy IMAGEs into its dockerd (default
#                                           $MEDUSA_BG_VPS_IMAGES or the e2e images) when missing.
#                                           Idempotent. --fresh recreates the container and removes
#                                           the VPS's containers, networks and volumes (images stay)
#   harness/vps.sh down [--purge]           remove container and network; --purge: its docker volume too
#   harness/vps.sh status                   one line; exit 1 unless the VPS answers over ssh
#   harness/vps.sh env                      exports for a runner shell: eval "$(harness/vps.sh env)"
#   harness/vps.sh root-ssh [CMD...]        ssh root@VPS with the harness's pinned config
#
# The runner side (env): VPS_ADDRESS, VPS_GATEWAY (the runner's address as the VPS sees it),
# VPS_SSH_CONFIG, VPS_DEPLOY_KEY(.pub), DOCKER_HOST=ssh://deploy@VPS, and PATH with a directory
# whose `ssh` is `/usr/bin/ssh -F $VPS_SSH_CONFIG`: OpenSSH reads
# ~/.ssh/config from the passwd home directory, never $HOME, and both the docker CLI and Pulumi's
# docker provider run `ssh` from PATH. The ssh config pins the VPS's host key (StrictHostKeyChecking
# yes) and multiplexes connections (docker over ssh opens one per API call).
#
# Keys (generated once, kept in $MEDUSA_BG_CACHE/vps): the VPS's host key, the root key a
# provider would install, and a dedicated deploy key for setup.sh. Image preloading uses the
# harness socket (`docker save | docker exec -i mbg-vps docker load`): harness plumbing, never the
# runner's path. No registry is reachable from the VPS either.
#
# Knobs: MEDUSA_BG_CACHE, MEDUSA_BG_RUN, MEDUSA_BG_VPS_SUBNET (10.213.0.0/24),
#        MEDUSA_BG_VPS_ADDRESS (10.213.0.10), MEDUSA_BG_VPS_GATEWAY (10.213.0.1),
#        MEDUSA_BG_VPS_IMAGES (space-separated),
#        MEDUSA_BG_VPS_TIMEOUT (seconds to wait for dockerd/sshd, default 120).
set -euo pipefail
shopt -s inherit_errexit

HARNESS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${MEDUSA_BG_CACHE:-$HOME/.cache/medusa-bluegreen}"
RUN_DIR="${MEDUSA_BG_RUN:-/run/medusa-bg}"
VPS_DIR="$CACHE/vps"
HOST_DIR="$VPS_DIR/host"             # mounted read-only into the VPS at /etc/vps-harness
KEY_DIR="$VPS_DIR/keys"              # the runner's private keys; never mounted
BIN_DIR="$VPS_DIR/bin"               # the ssh wrapper, first on the runner's PATH
SSH_CONFIG="$VPS_DIR/ssh_config"
KNOWN_HOSTS="$VPS_DIR/known_hosts"
CONTROL_DIR="$RUN_DIR/vps-ssh"       # short: a unix socket path is limited to ~104 bytes
NAME=mbg-vps
NET=mbg-vps-net
BRIDGE=mbg-vps0
VOLUME=mbg-vps-docker
IMAGE=medusa-bg/vps:bookworm
SUBNET="${MEDUSA_BG_VPS_SUBNET:-10.213.0.0/24}"
ADDRESS="${MEDUSA_BG_VPS_ADDRESS:-10.213.0.10}"
# The runner's own address on that network (the bridge): where the VPS reaches back to it.
GATEWAY="${MEDUSA_BG_VPS_GATEWAY:-${SUBNET%.*}.1}"
TIMEOUT="${MEDUSA_BG_VPS_TIMEOUT:-120}"
DEFAULT_IMAGES="medusa-bg/postgres:15 medusa-bg/redis:7 medusa-bg/nginx:1.28 medusa-bg/testapp:v1
medusa-bg/testapp:v2 medusa-bg/testapp:never-healthy medusa-bg/node:22"
read -r -a PRELOAD <<<"$(echo "${MEDUSA_BG_VPS_IMAGES:-$DEFAULT_IMAGES}" | tr '\n' ' ')"
# Bumped when the `docker run` arguments below change, so `up` recreates an older container.
RUN_RECIPE=1

log() { echo "vps.sh: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
now_ms() { date +%s%3N; }
secs() { printf '%d.%d' $(($1 / 1000)) $((($1 % 1000) / 100)); }

harness_docker() {
  # The harness dockerd (its socket is ours to use; the runner never gets it).
  eval "$("$HARNESS_DIR/dockerd.sh" env)"
}

# --- runner-side files ------------------------------------------------------------------------

write_if_changed() {
  # write_if_changed PATH MODE < content: atomic, and untouched when the content is the same.
  local path="$1" mode="$2" tmp
  tmp="$(mktemp "$path.XXXXXX")"
  cat >"$tmp"
  chmod "$mode" "$tmp"
  if [[ -f "$path" ]] && cmp -s "$tmp" "$path"; then rm -f "$tmp"; else mv -f "$tmp" "$path"; fi
}

ensure_key() {
  # ensure_key PATH COMMENT: an ed25519 key pair without a passphrase, made once.
  [[ -f "$1" && -f "$1.pub" ]] && return 0
  rm -f "$1" "$1.pub"
  ssh-keygen -q -t ed25519 -N '' -C "$2" -f "$1" >/dev/null
}

ensure_client_files() {
  command -v ssh-keygen >/dev/null || die "ssh-keygen missing (apt-get install openssh-client)"
  (umask 077 && mkdir -p "$VPS_DIR" "$HOST_DIR" "$KEY_DIR" "$BIN_DIR" "$CONTROL_DIR")
  chmod 700 "$VPS_DIR" "$KEY_DIR" "$CONTROL_DIR"
  chmod 755 "$HOST_DIR" "$BIN_DIR"
  ensure_key "$HOST_DIR/ssh_host_ed25519_key" "mbg-vps host key"
  ensure_key "$KEY_DIR/root_ed25519" "mbg-vps harness root"
  ensure_key "$KEY_DIR/deploy_ed25519" "mbg-vps harness deploy"
  write_if_changed "$HOST_DIR/root_authorized_keys" 644 <"$KEY_DIR/root_ed25519.pub"
  # Pinned: the only key this runner accepts for the VPS, under its address and its name.
  echo "$ADDRESS,$NAME $(cut -d' ' -f1,2 "$HOST_DIR/ssh_host_ed25519_key.pub")" \
    | write_if_changed "$KNOWN_HOSTS" 644
  write_if_changed "$SSH_CONFIG" 644 <<EOF
# Generated by harness/vps.sh: how the runner reaches the simulated VPS. Used through
# $BIN_DIR/ssh (ssh -F this file), which stands in for ~/.ssh/config.
Host $NAME $ADDRESS
  HostName $ADDRESS
  Port 22
  # The host key is pinned; an unknown or changed key is refused, never learned.
  UserKnownHostsFile $KNOWN_HOSTS
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  UpdateHostKeys no
  # CI has nobody to answer a prompt: fail instead of asking.
  BatchMode yes
  IdentitiesOnly yes
  IdentityAgent none
  # docker over ssh opens a connection per API call; one multiplexed session per user serves them.
  ControlMaster auto
  ControlPath $CONTROL_DIR/%C
  ControlPersist 60
  ServerAliveInterval 10
  ServerAliveCountMax 3
  ConnectTimeout 10
  LogLevel ERROR
Match host $ADDRESS user root
  IdentityFile $KEY_DIR/root_ed25519
Match host $ADDRESS user deploy
  IdentityFile $KEY_DIR/deploy_ed25519
EOF
  write_if_changed "$BIN_DIR/ssh" 755 <<EOF
#!/bin/sh
# Generated by harness/vps.sh: the runner's ssh, with the VPS's config (OpenSSH ignores \$HOME).
[ -d "$CONTROL_DIR" ] || mkdir -p -m 700 "$CONTROL_DIR"
exec /usr/bin/ssh -F "\${VPS_SSH_CONFIG:-$SSH_CONFIG}" "\$@"
EOF
}

vps_ssh() {
  # vps_ssh USER [ssh args...]: the runner's path, without a master connection (a probe must
  # not leave one behind, nor reuse a stale one).
  local user="$1"
  shift
  /usr/bin/ssh -F "$SSH_CONFIG" -o ControlMaster=no -o ControlPath=none -o ConnectTimeout=5 \
    "$user@$ADDRESS" "$@"
}

close_masters() {
  local user
  for user in root deploy; do
    /usr/bin/ssh -F "$SSH_CONFIG" -O exit "$user@$ADDRESS" >/dev/null 2>&1 || true
  done
}

# --- harness side: image, network, volume, container ------------------------------------------

ensure_image() {
  "$HARNESS_DIR/images.sh" vps >&2 || die "harness/images.sh vps failed"
}

ensure_network() {
  local subnet
  if subnet="$(docker network inspect --format '{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}}' "$NET" 2>/dev/null)"; then
    # No gateway listed: docker picked the subnet's first address, as we do.
    [[ "$subnet" == "$SUBNET $GATEWAY" || ("$subnet" == "$SUBNET " && "$GATEWAY" == "${SUBNET%.*}.1") ]] && return 0
    log "network $NET has subnet and gateway $subnet, want $SUBNET $GATEWAY: recreating it"
    docker rm -f "$NAME" >/dev/null 2>&1 || true
    docker network rm "$NET" >/dev/null
  fi
  docker network create --driver bridge --subnet "$SUBNET" --gateway "$GATEWAY" \
    --opt "com.docker.network.bridge.name=$BRIDGE" --label medusa-bg.vps=1 "$NET" >/dev/null
  log "created network $NET ($SUBNET, bridge $BRIDGE)"
}

ensure_volume() {
  docker volume inspect "$VOLUME" >/dev/null 2>&1 && return 0
  docker volume create --label medusa-bg.vps=1 "$VOLUME" >/dev/null
  log "created volume $VOLUME (the VPS's /var/lib/docker)"
}

# Capability names by bit number, as docker 20.10 knows them (it refuses PERFMON and later).
CAP_NAMES=(CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP LINUX_IMMUTABLE
  NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER SYS_MODULE SYS_RAWIO SYS_CHROOT
  SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE
  AUDIT_WRITE AUDIT_CONTROL SETFCAP MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ)

PRIV_ARGS=()
privileged_args() {
  # docker 20.10's --privileged asks runc for every capability the kernel knows, and fails
  # ("unable to apply caps: operation not permitted") where the harness dockerd's bounding set
  # lacks one (this machine has no CAP_SYS_RESOURCE). So: every capability that set has, no
  # seccomp filter, no masked or read-only /proc paths, every device, a private cgroup namespace
  # (the VPS's dockerd nests its cgroups in the VPS's own); vps-init remounts /sys and the
  # cgroup hierarchies read-write.
  local pid bnd i
  PRIV_ARGS=()
  pid="$(cat "$RUN_DIR/dockerd.pid" 2>/dev/null || echo self)"
  bnd="$(awk '/^CapBnd:/ {print $2}' "/proc/$pid/status" 2>/dev/null || awk '/^CapBnd:/ {print $2}' /proc/self/status)"
  for i in "${!CAP_NAMES[@]}"; do
    if (((0x$bnd >> i) & 1)); then PRIV_ARGS+=("--cap-add=${CAP_NAMES[$i]}"); fi
  done
  PRIV_ARGS+=(--security-opt seccomp=unconfined --security-opt systempaths=unconfined
    "--device-cgroup-rule=a *:* rwm" --cgroupns private)
}

container_config() {
  # What the container was made from; a change means a new container (the volume stays).
  local image_id
  image_id="$(docker image inspect --format '{{.Id}}' "$IMAGE")"
  printf '%s\n' "run=$RUN_RECIPE" "image=$image_id" "net=$NET" "ip=$ADDRESS" "volume=$VOLUME" \
    "host=$HOST_DIR" "${PRIV_ARGS[*]}" | sha256sum | cut -c1-16
}

ensure_container() {
  # ensure_container FRESH: prints "kept", "started" or "created".
  local fresh="$1" want have state
  privileged_args
  want="$(container_config)"
  have="$(docker inspect --format '{{index .Config.Labels "medusa-bg.vps.config"}}' "$NAME" 2>/dev/null || true)"
  if [[ -n "$have" && "$have" == "$want" && -z "$fresh" ]]; then
    state="$(docker inspect --format '{{.State.Status}}' "$NAME")"
    if [[ "$state" == running ]]; then echo kept; return 0; fi
    docker start "$NAME" >/dev/null
    echo started
    return 0
  fi
  if [[ -n "$have" ]]; then
    log "recreating $NAME ($([[ -n "$fresh" ]] && echo "--fresh" || echo "its image or settings changed"))"
    close_masters
    docker rm -f "$NAME" >/dev/null
  fi
  # What --privileged would give (its dockerd manages cgroups, mounts, devices and netfilter of
  # its own namespaces), spelled out: see privileged_args.
  # /run is a tmpfs: a restarted VPS boots without stale pidfiles or sockets.
  # --stop-timeout: the VPS's dockerd stops its containers (up to their own timeouts) first.
  docker run -d --name "$NAME" --hostname "$NAME" \
    --label "medusa-bg.vps.config=$want" \
    "${PRIV_ARGS[@]}" \
    --network "$NET" --ip "$ADDRESS" \
    --restart unless-stopped --stop-timeout 60 \
    --tmpfs /run:rw,exec,nosuid,mode=755,size=256m \
    -v "$VOLUME:/var/lib/docker" \
    -v "$HOST_DIR:/etc/vps-harness:ro" \
    --log-opt max-size=10m --log-opt max-file=2 \
    "$IMAGE" >/dev/null
  echo created
}

inner() { docker exec "$NAME" "$@"; }

wait_ready() {
  local deadline=$((SECONDS + TIMEOUT))
  until inner docker info --format '{{.ServerVersion}}' >/dev/null 2>&1; do
    if [[ "$(docker inspect --format '{{.State.Running}}' "$NAME" 2>/dev/null)" != true ]] || ((SECONDS > deadline)); then
      docker logs --tail 30 "$NAME" >&2 || true
      die "the VPS's dockerd did not answer within ${TIMEOUT}s (docker logs $NAME)"
    fi
    sleep 0.3
  done
  until vps_ssh root true </dev/null >/dev/null 2>&1; do
    if ((SECONDS > deadline)); then
      vps_ssh root true </dev/null || true
      die "ssh root@$ADDRESS did not work within ${TIMEOUT}s"
    fi
    sleep 0.3
  done
}

make_fresh() {
  # A fresh host, with a warm image cache: no containers, networks or volumes of earlier runs.
  local ids
  ids="$(inner docker ps -aq)"
  # shellcheck disable=SC2086 # one id per word
  [[ -z "$ids" ]] || inner docker rm -f -v $ids >/dev/null
  inner docker network prune -f >/dev/null
  inner docker volume prune -f >/dev/null
}

preload() {
  # preload IMAGE...: copy into the VPS's dockerd what it lacks, by image ID (a moved tag is
  # retagged there, an ID it holds under another name is tagged, nothing is copied twice).
  local ref id missing=() t0 bytes_file bytes
  local -A want=() inner_ref=() inner_id=()
  if ! docker image inspect "$@" >/dev/null 2>&1; then
    log "some of $* are missing on the harness dockerd: running harness/images.sh"
    "$HARNESS_DIR/images.sh" >&2
  fi
  for ref in "$@"; do
    want[$ref]="$(docker image inspect --format '{{.Id}}' "$ref" 2>/dev/null)" \
      || die "$ref is not on the harness dockerd (harness/images.sh does not build it)"
  done
  # One listing of the VPS's images: `docker exec` costs ~0.2 s a call.
  while read -r ref id; do
    inner_ref[$ref]="$id"
    inner_id[$id]=1
  done < <(inner docker images --no-trunc --format '{{.Repository}}:{{.Tag}} {{.ID}}')
  for ref in "$@"; do
    id="${want[$ref]}"
    [[ "${inner_ref[$ref]:-}" == "$id" ]] && continue
    if [[ -n "${inner_id[$id]:-}" ]]; then
      inner docker tag "$id" "$ref"
      log "tagged $ref in the VPS (it had ${id:7:12})"
    else
      missing+=("$ref")
    fi
  done
  PRELOAD_SUMMARY="nothing to preload ($# images present)"
  ((${#missing[@]})) || return 0
  t0=$(now_ms)
  bytes_file="$(mktemp)"
  log "copying ${missing[*]} into the VPS"
  docker save "${missing[@]}" | tee >(wc -c >"$bytes_file") | docker exec -i "$NAME" docker load -q >&2 \
    || { rm -f "$bytes_file"; die "docker save | docker load into $NAME failed"; }
  for _ in $(seq 1 50); do [[ -s "$bytes_file" ]] && break; sleep 0.1; done
  bytes="$(cat "$bytes_file")"
  rm -f "$bytes_file"
  for ref in "${missing[@]}"; do
    [[ "$(inner docker image inspect --format '{{.Id}}' "$ref" 2>/dev/null)" == "${want[$ref]}" ]] \
      || die "$ref did not arrive in the VPS with its image ID"
  done
  PRELOAD_SUMMARY="preloaded ${#missing[@]} images ($((bytes / 1000000)) MB in $(secs $(($(now_ms) - t0)))s)"
}

# --- verbs ------------------------------------------------------------------------------------

cmd_up() {
  local fresh="" t0 how images=() driver
  while (($#)); do
    case "$1" in
      --fresh) fresh=1 ;;
      -*) die "unknown option $1 (usage: $0 up [--fresh] [IMAGE...])" ;;
      *) images+=("$1") ;;
    esac
    shift
  done
  ((${#images[@]})) || images=("${PRELOAD[@]}")
  t0=$(now_ms)
  "$HARNESS_DIR/dockerd.sh" start >&2
  harness_docker
  mkdir -p "$VPS_DIR"
  exec 8>"$VPS_DIR/vps.lock"
  flock 8
  ensure_client_files
  ensure_image
  ensure_network
  ensure_volume
  how="$(ensure_container "$fresh")"
  wait_ready
  [[ -z "$fresh" ]] || make_fresh
  preload "${images[@]}"
  driver="$(inner docker info --format '{{.ServerVersion}}, {{.Driver}}, cgroup v{{.CgroupVersion}}')"
  log "up in $(secs $(($(now_ms) - t0)))s: $NAME $how at $ADDRESS (dockerd $driver); $PRELOAD_SUMMARY"
}

cmd_down() {
  local purge=""
  [[ "${1:-}" == --purge ]] && purge=1
  [[ -z "${1:-}" || -n "$purge" ]] || die "usage: $0 down [--purge]"
  harness_docker
  mkdir -p "$VPS_DIR"
  exec 8>"$VPS_DIR/vps.lock"
  flock 8
  [[ -f "$SSH_CONFIG" ]] && close_masters
  docker rm -f "$NAME" >/dev/null 2>&1 && log "removed container $NAME"
  docker network rm "$NET" >/dev/null 2>&1 && log "removed network $NET"
  if [[ -n "$purge" ]]; then
    docker volume rm "$VOLUME" >/dev/null 2>&1 && log "removed volume $VOLUME"
  else
    log "kept volume $VOLUME (the VPS's images); down --purge removes it"
  fi
  return 0
}

cmd_status() {
  harness_docker
  local state
  state="$(docker inspect --format '{{.State.Status}}' "$NAME" 2>/dev/null)" || state=absent
  if [[ "$state" != running ]]; then echo "$NAME $state"; return 1; fi
  if [[ -f "$SSH_CONFIG" ]] && vps_ssh root docker info --format "'{{.ServerVersion}} {{.Driver}}'" </dev/null >/dev/null 2>&1; then
    echo "$NAME running at $ADDRESS: ssh ok, dockerd $(inner docker info --format '{{.ServerVersion}} {{.Driver}}'), $(inner docker ps -q | wc -l) containers, $(inner docker images -q | sort -u | wc -l) images"
  else
    echo "$NAME running at $ADDRESS, but ssh root@$ADDRESS or its dockerd does not answer"
    return 1
  fi
}

cmd_env() {
  ensure_client_files
  cat <<EOF
export VPS_ADDRESS=$ADDRESS
export VPS_GATEWAY=$GATEWAY
export VPS_SSH_CONFIG=$SSH_CONFIG
export VPS_DEPLOY_KEY=$KEY_DIR/deploy_ed25519
export DOCKER_HOST=ssh://deploy@$ADDRESS
unset DOCKER_CONTEXT DOCKER_TLS_VERIFY DOCKER_CERT_PATH
export PATH="$BIN_DIR:\$PATH"
EOF
}

case "${1:-}" in
  up) shift; cmd_up "$@" ;;
  down) shift; cmd_down "$@" ;;
  status) cmd_status ;;
  env) cmd_env ;;
  root-ssh) shift; ensure_client_files; exec /usr/bin/ssh -F "$SSH_CONFIG" "root@$ADDRESS" "$@" ;;
  *) echo "usage: $0 up [--fresh] [IMAGE...]|down [--purge]|status|env|root-ssh [CMD...]" >&2; exit 2 ;;
esac
