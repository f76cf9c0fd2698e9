#!/usr/bin/env bash
# Prepare a Docker-less machine (this dev box, CI runners) to build the platform's images
# with `./pants package images`:
#   1. install podman + buildah (daemonless, rootful, chroot isolation) and debootstrap;
#   2. configure the `vfs` storage driver (overlay needs kernel/fuse support that
#      containers and CI sandboxes often lack);
#   3. create the base image $MARKET_BASE_IMAGE: Debian bookworm (minbase) plus a
#      CPython >= 3.11.5. Debian's own python3.11 is 3.11.2, below the repo's interpreter
#      constraints (PEXes refuse to start on it) and python.org is not reachable from
#      here, so the script copies the host's CPython 3.11 (pyenv / actions/setup-python
#      builds) into the image at the same prefix and links it into /usr/local/bin, as in
#      the official python:3.11-slim image the Dockerfiles default to on Docker hosts.
# Idempotent: every step is skipped when already done. `--rebuild` recreates the base.
# Pants finds podman through tools/images/bin/docker (see [docker] in pants.toml).
set -euo pipefail

BASE_IMAGE="${MARKET_BASE_IMAGE:-localhost/market-base:bookworm}"
SUITE=bookworm
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
REBUILD=false
[ "${1:-}" = "--rebuild" ] && REBUILD=true

log() { echo "setup-podman: $*" >&2; }
die() { log "$*"; exit 1; }
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

install_packages() {
  local missing=()
  for bin in podman buildah debootstrap; do
    command -v "$bin" >/dev/null 2>&1 || missing+=("$bin")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing podman buildah debootstrap fuse-overlayfs"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q \
    podman buildah debootstrap fuse-overlayfs debian-archive-keyring
}

configure_storage() {
  local conf=/etc/containers/storage.conf
  if [ -f "$conf" ] && grep -q '^driver *= *"vfs"' "$conf"; then return 0; fi
  [ -f "$conf" ] && die "$conf exists and does not select the vfs driver; set driver = \"vfs\" in it (or export CONTAINERS_STORAGE_CONF)"
  log "writing $conf (driver vfs)"
  $SUDO mkdir -p /etc/containers
  printf '[storage]\ndriver = "vfs"\nrunroot = "/run/containers/storage"\ngraphroot = "/var/lib/containers/storage"\n' \
    | $SUDO tee "$conf" >/dev/null
}

# A CPython >= 3.11.5, < 3.12 on the host: $MARKET_IMAGE_PYTHON, else python3.11 on PATH.
host_python_prefix() {
  local py="${MARKET_IMAGE_PYTHON:-$(command -v python3.11 || true)}"
  [ -n "$py" ] || die "no python3.11 on PATH; set MARKET_IMAGE_PYTHON=/path/to/python3.11 (>= 3.11.5)"
  "$py" - <<'PY' || die "$py is not CPython >= 3.11.5, < 3.12; set MARKET_IMAGE_PYTHON"
import sys
assert sys.implementation.name == "cpython" and (3, 11, 5) <= sys.version_info[:3] < (3, 12)
print(sys.base_prefix)
PY
}

build_base_image() {
  if ! $REBUILD && $SUDO podman image exists "$BASE_IMAGE"; then
    log "$BASE_IMAGE already present"
    return 0
  fi
  local prefix rootfs
  prefix="$(host_python_prefix)"
  rootfs="$(mktemp -d /var/tmp/market-base.XXXXXX)"
  trap 'rm -rf "$rootfs"' EXIT
  # mktemp makes the directory 0700, and it becomes the image's `/`: non-root users
  # (every image runs as one) could then not reach any file.
  chmod 0755 "$rootfs"
  log "debootstrap $SUITE (minbase) into $rootfs"
  # Runtime libraries CPython's extension modules link against, plus what PEX needs.
  $SUDO debootstrap --variant=minbase \
    --include=ca-certificates,tzdata,libssl3,libffi8,libsqlite3-0,liblzma5,libbz2-1.0,zlib1g,libreadline8,libncursesw6,libgdbm6,libuuid1,libexpat1 \
    "$SUITE" "$rootfs" "$MIRROR" >&2
  log "copying CPython from $prefix"
  $SUDO mkdir -p "$rootfs$prefix"
  # Tests and the host's own site-packages are not part of the interpreter.
  $SUDO tar -C "$prefix" --exclude='./lib/python3.11/test' \
    --exclude='./lib/python3.11/site-packages/*' --exclude='__pycache__' -cf - . \
    | $SUDO tar -C "$rootfs$prefix" -xf -
  # The interpreter keeps its host prefix (pyenv builds link libpython through an rpath to
  # it); when that lies in a private directory (pyenv under /root, mode 0700), let every
  # user traverse it, or the images' non-root users cannot start python.
  local dir="$prefix"
  while [ "$dir" != "/" ]; do
    dir="$(dirname "$dir")"
    $SUDO chmod o+x "$rootfs$dir"
  done
  for name in python3.11 python3 python; do
    $SUDO ln -sf "$prefix/bin/python3.11" "$rootfs/usr/local/bin/$name"
  done
  $SUDO chroot "$rootfs" /usr/local/bin/python3.11 -c 'import ssl, sqlite3, lzma, bz2, ctypes, zlib, venv' \
    || die "the copied interpreter cannot import its extension modules inside the image"
  # Networks that inspect TLS (corporate proxies, CI egress filters) sign with a local CA
  # that the host trusts through /usr/local/share/ca-certificates: trust it in the image
  # too, or builds that download (Maven Central for the Spark connectors) fail.
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    log "adding the host's local CA certificates"
    $SUDO cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/"
    $SUDO chroot "$rootfs" update-ca-certificates >&2
  fi
  $SUDO rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  log "importing as $BASE_IMAGE"
  $SUDO tar -C "$rootfs" -cf - . | $SUDO podman import \
    --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' - "$BASE_IMAGE" >/dev/null
  rm -rf "$rootfs"
  trap - EXIT
}

install_packages
configure_storage
build_base_image
log "ready: './pants package images' builds on $BASE_IMAGE"
