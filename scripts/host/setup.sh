#!/usr/bin/env bash
# Runbook, step 1: turn a fresh Debian/Ubuntu VPS into a Docker host that CI deploys to with
# `dockerHost: ssh://deploy@HOST`. Run it from your machine or the CI runner, with root's ssh key:
#
#   scripts/host/setup.sh [--ssh-port N] [--public-interface IF] root@HOST DEPLOY_PUBLIC_KEY_FILE
#
#   DEPLOY_PUBLIC_KEY_FILE  the public half of a key made for this purpose only, e.g.
#                           ssh-keygen -t ed25519 -N '' -C ci-deploy -f deploy_key
#                           (deploy_key.pub here; deploy_key goes into CI's secrets)
#   --ssh-port N            sshd's port on HOST, if not 22 (or say it in your ~/.ssh/config)
#   --public-interface IF   the interface the internet reaches HOST on (default: the one of the
#                           default route)
#
# One ssh session as root runs the script below on HOST. It changes only what is not yet so, says
# what it changed, and a second run reports "no changes":
#   1. Docker: installed (Debian's docker.io, if missing) and running; its CLI must be there too,
#      since docker over ssh runs `docker system dial-stdio` on HOST.
#   2. user `deploy`: no password (login by key only), in the `docker` group, the deploy key in
#      its authorized_keys.
#   3. sshd: keys only (no password or keyboard-interactive login), root by key only; reloaded.
#   4. firewall (iptables, the backend dockerd uses): the host accepts ssh, 80, 443, ICMP and
#      replies, drops the rest; from the public interface, containers are reachable only through
#      ports published as 80 and 443 (DOCKER-USER chain). Installed as /usr/local/sbin/medusa-bg-firewall,
#      re-applied at boot by medusa-bg-firewall.service where systemd runs.
set -euo pipefail

usage() {
  sed -n '4,12p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}
die() { echo "setup.sh: ERROR: $*" >&2; exit 1; }

ssh_port=""
public_if=auto
args=()
while (($#)); do
  case "$1" in
    --ssh-port) [[ $# -ge 2 ]] || usage; ssh_port="$2"; shift 2 ;;
    --ssh-port=*) ssh_port="${1#*=}"; shift ;;
    --public-interface) [[ $# -ge 2 ]] || usage; public_if="$2"; shift 2 ;;
    --public-interface=*) public_if="${1#*=}"; shift ;;
    -h | --help) usage ;;
    -*) echo "setup.sh: unknown option $1" >&2; usage ;;
    *) args+=("$1"); shift ;;
  esac
done
[[ ${#args[@]} -eq 2 ]] || usage
target="${args[0]}"
key_file="${args[1]}"
[[ "$target" == root@?* ]] || die "the target must be root@HOST (got '$target'): setup needs root once"
[[ -z "$ssh_port" || "$ssh_port" =~ ^[0-9]{1,5}$ ]] || die "--ssh-port must be a number (got '$ssh_port')"
[[ "$public_if" =~ ^[A-Za-z0-9_.:@-]{1,15}$ ]] || die "--public-interface must be an interface name (got '$public_if')"

# The key: exactly one public key line, no options, never a private key.
[[ -r "$key_file" ]] || die "cannot read $key_file"
if grep -q 'PRIVATE KEY' "$key_file"; then die "$key_file is a PRIVATE key; pass the .pub file"; fi
mapfile -t key_lines < <(grep -v -e '^[[:space:]]*$' -e '^#' "$key_file")
[[ ${#key_lines[@]} -eq 1 ]] || die "$key_file must hold exactly one public key line (has ${#key_lines[@]})"
key="${key_lines[0]}"
[[ "$key" =~ ^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh.com|sk-ecdsa-sha2-nistp256@openssh.com)\ [A-Za-z0-9+/=]+(\ .*)?$ ]] \
  || die "$key_file is not one OpenSSH public key line ('TYPE BASE64 [comment]', no options)"
ssh-keygen -l -f "$key_file" >/dev/null 2>&1 || die "ssh-keygen does not accept $key_file as a public key"
key_b64="$(printf '%s\n' "$key" | base64 -w0)"

port_args=()
[[ -z "$ssh_port" ]] || port_args=(-p "$ssh_port")
echo "setup.sh: setting up $target ($(ssh-keygen -l -f "$key_file" | cut -d' ' -f1-2) as the deploy key)" >&2

# Everything after this line runs on the host, as root, in this one ssh session. The arguments are
# a base64 key and an interface name: nothing there the remote shell could misparse.
exec ssh -T "${port_args[@]}" -- "$target" "bash -s -- $key_b64 $public_if" <<'REMOTE'
set -euo pipefail
export LC_ALL=C
KEY="$(printf '%s' "$1" | base64 -d)"
PUBLIC_IF="$2"
DEPLOY=deploy
SSHD_DROPIN=/etc/ssh/sshd_config.d/00-medusa-bg.conf
FIREWALL=/usr/local/sbin/medusa-bg-firewall
FIREWALL_CONF=/etc/default/medusa-bg-firewall
FIREWALL_UNIT=/etc/systemd/system/medusa-bg-firewall.service
CHANGES=0

ok() { printf 'ok       %s\n' "$*"; }
changed() { CHANGES=$((CHANGES + 1)); printf 'changed  %s\n' "$*"; }
note() { printf 'note     %s\n' "$*"; }
die() { printf 'ERROR    %s\n' "$*" >&2; exit 1; }
has_systemd() { [[ -d /run/systemd/system ]]; }

# install_file PATH MODE < CONTENT: true when it wrote the file, false when it was already so.
install_file() {
  local path="$1" mode="$2" tmp
  tmp="$(mktemp)"
  cat >"$tmp"
  if [[ -f "$path" ]] && cmp -s "$tmp" "$path" && [[ "$(stat -c %a "$path")" == "$mode" ]]; then
    rm -f "$tmp"
    return 1
  fi
  mkdir -p "$(dirname "$path")"
  install -m "$mode" -o root -g root "$tmp" "$path"
  rm -f "$tmp"
}

[[ "$(id -u)" -eq 0 ]] || die "must run as root"
HOST="$(hostname)"
# The port this very session came in on: the firewall keeps it open whatever sshd_config says,
# so setup can never lock out the connection that runs it.
SSH_PORT="${SSH_CONNECTION##* }"
[[ "$SSH_PORT" =~ ^[0-9]+$ ]] || die "cannot tell the ssh port from SSH_CONNECTION='${SSH_CONNECTION:-}'"

# --- 1. Docker ----------------------------------------------------------------------------------
if command -v dockerd >/dev/null 2>&1 && command -v docker >/dev/null 2>&1; then
  ok "docker installed: $(dockerd --version)"
else
  command -v apt-get >/dev/null 2>&1 || die "Docker is not installed and there is no apt-get: install Docker Engine, then run this again"
  printf '...      installing Debian'"'"'s docker.io with apt-get\n'
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq docker.io >/dev/null
  changed "installed docker.io: $(dockerd --version)"
fi
if has_systemd && ! systemctl is-enabled --quiet docker.service 2>/dev/null; then
  systemctl enable --quiet docker.service
  changed "docker.service starts at boot"
fi
if docker info >/dev/null 2>&1; then
  ok "dockerd running: $(docker info --format '{{.ServerVersion}}, storage {{.Driver}}')"
else
  if has_systemd; then systemctl start docker.service; else service docker start >/dev/null; fi
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || die "dockerd does not answer after starting it (journalctl -u docker)"
  changed "started dockerd"
fi
# docker -H ssh://deploy@host runs `docker system dial-stdio` here: the CLI, not just the daemon.
docker system dial-stdio --help >/dev/null 2>&1 \
  || die "this host's docker CLI has no 'system dial-stdio' (docker over ssh needs a CLI >= 18.09 here)"
getent group docker >/dev/null || die "no 'docker' group: dockerd's socket would be root-only"

# --- 2. the deploy user -------------------------------------------------------------------------
if id -u "$DEPLOY" >/dev/null 2>&1; then
  ok "user $DEPLOY exists"
else
  useradd --create-home --user-group --shell /bin/bash "$DEPLOY"
  changed "created user $DEPLOY"
fi
# '*' = no password can match: locked for password login (passwd -S says L), while key login
# works even where sshd runs with UsePAM no (which refuses a '!'-locked account outright).
if [[ "$(getent shadow "$DEPLOY" | cut -d: -f2)" == "*" ]]; then
  ok "$DEPLOY has no password (locked)"
else
  usermod -p '*' "$DEPLOY"
  changed "$DEPLOY: password removed and locked"
fi
# The docker group is root-equivalent on this host: whoever can talk to dockerd can run a
# container that mounts / and does anything as root. That is why the key below must be a
# dedicated deploy key (kept in CI's secrets, used for nothing else), and why it cannot be
# fenced in with authorized_keys options: docker over ssh needs to exec a command.
if id -nG "$DEPLOY" | tr ' ' '\n' | grep -qx docker; then
  ok "$DEPLOY is in the docker group"
else
  usermod -aG docker "$DEPLOY"
  changed "$DEPLOY added to the docker group (root-equivalent on this host)"
fi

home="$(getent passwd "$DEPLOY" | cut -d: -f6)"
group="$(id -gn "$DEPLOY")"
ssh_dir="$home/.ssh"
keys="$ssh_dir/authorized_keys"
# ensure_owned PATH MODE: deploy's ~/.ssh and authorized_keys, as sshd's StrictModes wants them.
ensure_owned() {
  if [[ "$(stat -c '%a %U' "$1")" != "$2 $DEPLOY" ]]; then
    chown "$DEPLOY:$group" "$1"
    chmod "$2" "$1"
    changed "$1: mode $2, owner $DEPLOY"
  fi
}
[[ -d "$ssh_dir" ]] || install -d -m 700 -o "$DEPLOY" -g "$group" "$ssh_dir"
ensure_owned "$ssh_dir" 700
[[ -f "$keys" ]] || install -m 600 -o "$DEPLOY" -g "$group" /dev/null "$keys"
ensure_owned "$keys" 600
blob="$(printf '%s\n' "$KEY" | cut -d' ' -f2)"
if awk -v blob="$blob" '{ for (i = 1; i <= NF; i++) if ($i == blob) found = 1 } END { exit !found }' "$keys"; then
  ok "deploy key is in $keys"
else
  # A file without a final newline would glue our key onto its last one.
  if [[ -s "$keys" && -n "$(tail -c 1 "$keys")" ]]; then echo >>"$keys"; fi
  printf '%s\n' "$KEY" >>"$keys"
  changed "deploy key added to $keys"
fi
# Proves the group works for a new login (what the deploy key's sessions will be).
runuser -u "$DEPLOY" -- docker info >/dev/null 2>&1 || die "$DEPLOY cannot reach dockerd (docker group, socket mode?)"

# --- 3. sshd ------------------------------------------------------------------------------------
# A drop-in, read before anything else in sshd_config.d (sshd keeps the first value it reads),
# so a cloud image's 50-cloud-init.conf "PasswordAuthentication yes" does not win.
grep -Eqi '^[[:space:]]*Include[[:space:]]+/etc/ssh/sshd_config\.d/\*\.conf' /etc/ssh/sshd_config \
  || die "/etc/ssh/sshd_config does not Include /etc/ssh/sshd_config.d/*.conf: set PasswordAuthentication no, KbdInteractiveAuthentication no and PermitRootLogin prohibit-password there by hand"
reload_sshd() {
  if has_systemd; then
    systemctl try-reload-or-restart ssh.service 2>/dev/null || systemctl try-reload-or-restart sshd.service
  elif [[ -s /run/sshd.pid ]]; then
    kill -HUP "$(cat /run/sshd.pid)"
  else
    service ssh reload >/dev/null
  fi
}
previous="$(mktemp)"
had_dropin=""
if [[ -f "$SSHD_DROPIN" ]]; then cp -p "$SSHD_DROPIN" "$previous"; had_dropin=1; fi
if install_file "$SSHD_DROPIN" 644 <<'EOF'
# medusa-bluegreen (scripts/host/setup.sh): log in with a key only; root with a key only.
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
EOF
then
  if ! sshd_error="$(sshd -t 2>&1)"; then
    if [[ -n "$had_dropin" ]]; then cp -p "$previous" "$SSHD_DROPIN"; else rm -f "$SSHD_DROPIN"; fi
    die "sshd -t refused the new config (put back as it was): $sshd_error"
  fi
  reload_sshd
  changed "sshd: $SSHD_DROPIN (keys only, root by key only), sshd reloaded"
else
  ok "sshd drop-in $SSHD_DROPIN in place"
fi
rm -f "$previous"
effective="$(sshd -T 2>/dev/null)"
for want in "passwordauthentication no" "kbdinteractiveauthentication no" "permitrootlogin without-password"; do
  grep -qx "$want" <<<"$effective" \
    || die "sshd -T does not say '$want': an earlier setting wins (sshd keeps the first value; check /etc/ssh/sshd_config and sshd_config.d)"
done

# --- 4. firewall --------------------------------------------------------------------------------
if [[ "$PUBLIC_IF" == auto ]]; then
  PUBLIC_IF="$(ip -4 route show default | awk '{ for (i = 1; i < NF; i++) if ($i == "dev") { print $(i + 1); exit } }')"
  [[ -n "$PUBLIC_IF" ]] || die "no IPv4 default route to tell the public interface from: pass --public-interface"
fi
ip link show "$PUBLIC_IF" >/dev/null 2>&1 || die "no interface $PUBLIC_IF here"
command -v iptables >/dev/null 2>&1 || die "iptables missing (apt-get install iptables)"
# dockerd writes its rules with the same `iptables` (nft or legacy backend, Debian's alternatives
# link): rules in the other backend would be evaluated apart from Docker's and confuse everyone.
iptables -S DOCKER-USER >/dev/null 2>&1 \
  || die "no DOCKER-USER chain in $(iptables -V): dockerd is not running, runs with --iptables=false, or uses the other iptables backend"

if install_file "$FIREWALL_CONF" 644 <<EOF
# medusa-bluegreen firewall settings, written by scripts/host/setup.sh.
PUBLIC_IF=$PUBLIC_IF
SSH_PORT=$SSH_PORT
EOF
then changed "$FIREWALL_CONF: public interface $PUBLIC_IF, ssh port $SSH_PORT"
else ok "$FIREWALL_CONF: public interface $PUBLIC_IF, ssh port $SSH_PORT"; fi

if install_file "$FIREWALL" 755 <<'FIREWALL_EOF'
#!/bin/bash
# medusa-bluegreen host firewall, installed by scripts/host/setup.sh; settings in
# /etc/default/medusa-bg-firewall. Idempotent: one "added ..." line per change, nothing when all is
# in place. Needs dockerd running (it creates DOCKER-USER), so at boot it runs after docker.service.
set -euo pipefail
# shellcheck source=/dev/null
. /etc/default/medusa-bg-firewall
: "${PUBLIC_IF:?}" "${SSH_PORT:?}"

# sync_chain CMD CHAIN RULE...: the given rules, each tagged "medusa-bg:NAME" (iptables -S
# prints the comment quoted; the quotes are dropped before comparing), must be the first
# rules of CHAIN in this order, and no other rule of ours may be left (an older port or
# interface). Missing ones are inserted at the top before stale ones are deleted, so the ssh
# session running this never loses its ACCEPT rule, not even for a moment.
sync_chain() {
  local cmd="$1" chain="$2" rule i=0 n in_place=1 lines=()
  shift 2
  n=$#
  for rule in "$@"; do
    # shellcheck disable=SC2086 # a rule is one word per iptables argument
    $cmd -C "$chain" $rule 2>/dev/null || in_place=0
  done
  mapfile -t lines < <($cmd -S "$chain" | tail -n +2 | tr -d '"')
  for rule in "$@"; do
    [[ "${lines[i]:-}" == *"--comment $(tag_of "$rule") "* ]] || in_place=0
    i=$((i + 1))
  done
  for ((i = n; i < ${#lines[@]}; i++)); do
    [[ "${lines[i]}" != *"--comment medusa-bg:"* ]] || in_place=0
  done
  ((in_place)) && return 0
  i=1
  for rule in "$@"; do
    # shellcheck disable=SC2086
    $cmd -I "$chain" "$i" $rule
    i=$((i + 1))
  done
  mapfile -t lines < <($cmd -S "$chain" | tail -n +2 | tr -d '"')
  for ((i = ${#lines[@]} - 1; i >= n; i--)); do
    [[ "${lines[i]}" != *"--comment medusa-bg:"* ]] || $cmd -D "$chain" $((i + 1))
  done
  echo "added $cmd $chain rules:$(for rule in "$@"; do printf ' %s' "$(tag_of "$rule")"; done)"
}
tag_of() { sed -E 's/.*--comment (medusa-bg:[a-z0-9-]+).*/\1/' <<<"$1"; }

ensure_policy() {
  # ensure_policy CMD CHAIN POLICY (after the rules: the ACCEPTs exist before anything drops)
  if [[ "$($1 -S "$2" | head -n 1)" != "-P $2 $3" ]]; then
    "$1" -P "$2" "$3"
    echo "added $1 $2 policy $3"
  fi
}

# INPUT: what reaches the host's own processes (sshd, and anything else listening: a stray dev
# server on 8081, a database bound to 0.0.0.0). Only ssh, HTTP(S), ICMP and replies to our own
# connections; the policy drops the rest (drop, not reject: a scan learns nothing).
sync_chain iptables INPUT \
  "-i lo -m comment --comment medusa-bg:loopback -j ACCEPT" \
  "-m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment medusa-bg:replies -j ACCEPT" \
  "-p icmp -m comment --comment medusa-bg:icmp -j ACCEPT" \
  "-p tcp --dport $SSH_PORT -m comment --comment medusa-bg:ssh -j ACCEPT" \
  "-p tcp --dport 80 -m comment --comment medusa-bg:http -j ACCEPT" \
  "-p tcp --dport 443 -m comment --comment medusa-bg:https -j ACCEPT"
ensure_policy iptables INPUT DROP

# DOCKER-USER: a port Docker publishes (-p 9999:80) is DNATed in PREROUTING and then FORWARDed
# to the container: it never passes INPUT, so neither the rules above nor ufw see it. Docker
# jumps to DOCKER-USER first in FORWARD and leaves its content alone, so the filter goes here.
# Only what comes in on the public interface is filtered: containers' outbound traffic and
# traffic between containers enter from Docker's bridges and pass untouched; replies to
# containers' own connections are ESTABLISHED. A new inbound connection passes only if it came
# through a published port (ctstate DNAT) and the client dialled port 80 or 443: --ctorigdstport
# is the port before DNAT, since in FORWARD the packet already carries the container's port
# (-p 9999:80 would look like port 80). Requiring DNAT also drops traffic routed at container
# addresses directly (a neighbour with a route via this host; FORWARD's policy may be ACCEPT).
sync_chain iptables DOCKER-USER \
  "-i $PUBLIC_IF -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment medusa-bg:replies -j RETURN" \
  "-i $PUBLIC_IF -p tcp -m conntrack --ctstate DNAT --ctorigdstport 80 -m comment --comment medusa-bg:http -j RETURN" \
  "-i $PUBLIC_IF -p tcp -m conntrack --ctstate DNAT --ctorigdstport 443 -m comment --comment medusa-bg:https -j RETURN" \
  "-i $PUBLIC_IF -m comment --comment medusa-bg:drop-public -j DROP"

# IPv6, where the kernel has it: the same for INPUT (plus ICMPv6, which neighbour discovery
# needs, and DHCPv6 replies). Docker publishes IPv6 ports through docker-proxy, a process:
# those pass INPUT, so 80/443 only there too. DOCKER-USER exists for IPv6 only with ip6tables on.
if ip6tables -S INPUT >/dev/null 2>&1; then
  sync_chain ip6tables INPUT \
    "-i lo -m comment --comment medusa-bg:loopback -j ACCEPT" \
    "-m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment medusa-bg:replies -j ACCEPT" \
    "-p ipv6-icmp -m comment --comment medusa-bg:icmp -j ACCEPT" \
    "-s fe80::/10 -p udp --dport 546 -m comment --comment medusa-bg:dhcpv6 -j ACCEPT" \
    "-p tcp --dport $SSH_PORT -m comment --comment medusa-bg:ssh -j ACCEPT" \
    "-p tcp --dport 80 -m comment --comment medusa-bg:http -j ACCEPT" \
    "-p tcp --dport 443 -m comment --comment medusa-bg:https -j ACCEPT"
  ensure_policy ip6tables INPUT DROP
  if ip6tables -S DOCKER-USER >/dev/null 2>&1; then
    sync_chain ip6tables DOCKER-USER \
      "-i $PUBLIC_IF -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment medusa-bg:replies -j RETURN" \
      "-i $PUBLIC_IF -p tcp -m conntrack --ctstate DNAT --ctorigdstport 80 -m comment --comment medusa-bg:http -j RETURN" \
      "-i $PUBLIC_IF -p tcp -m conntrack --ctstate DNAT --ctorigdstport 443 -m comment --comment medusa-bg:https -j RETURN" \
      "-i $PUBLIC_IF -m comment --comment medusa-bg:drop-public -j DROP"
  fi
fi
FIREWALL_EOF
then changed "$FIREWALL installed"
else ok "$FIREWALL in place"; fi

firewall_out="$("$FIREWALL")" || die "$FIREWALL failed: $firewall_out"
if [[ -n "$firewall_out" ]]; then
  while IFS= read -r line; do changed "firewall: $line"; done <<<"$firewall_out"
else
  ok "firewall rules in place (INPUT policy DROP; DOCKER-USER: 80/443 only from $PUBLIC_IF)"
fi

# iptables rules live in the kernel: gone at reboot. Docker keeps DOCKER-USER's rules across its
# own restarts, so re-applying once per boot, after dockerd has made its chains, is enough.
if has_systemd; then
  if install_file "$FIREWALL_UNIT" 644 <<EOF
[Unit]
Description=medusa-bluegreen firewall: INPUT and DOCKER-USER rules (scripts/host/setup.sh)
After=docker.service
Wants=docker.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=$FIREWALL

[Install]
WantedBy=multi-user.target
EOF
  then
    systemctl daemon-reload
    changed "$FIREWALL_UNIT installed"
  fi
  if systemctl is-enabled --quiet medusa-bg-firewall.service 2>/dev/null; then
    ok "medusa-bg-firewall.service enabled (re-applies the firewall at boot)"
  else
    systemctl enable --quiet medusa-bg-firewall.service
    changed "medusa-bg-firewall.service enabled (re-applies the firewall at boot)"
  fi
else
  note "no systemd here: $FIREWALL has to run at boot, after dockerd starts"
fi

if ((CHANGES)); then
  echo "setup.sh: $HOST: $CHANGES changes"
else
  echo "setup.sh: $HOST: no changes (already set up)"
fi
REMOTE
