#!/usr/bin/env bash
# container-base.sh - makes sure podman holds the base image the Dockerfile builds FROM, for
# `make kube-check` (scripts/kube-check.sh) on machines with no container registry: the image is
# pulled when a registry answers, and otherwise made from Debian's own packages with
# debootstrap (a minbase bookworm from the mirror apt uses) and imported under the FROM name.
# A fresh machine with no registry failed the check at its build ("pinging container registry
# registry-1.docker.io ... no such host") unless something had made the image before.
# Prints what it does on stderr; exits non-zero, saying why, when it cannot.
#   CONTAINER_BASE_CACHE  where the rootfs is made (default /var/tmp/dealsync-container-base)
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "container-base: $*" >&2; }

base=$(sed -n 's/^FROM[[:space:]]\{1,\}\([^[:space:]]*\).*/\1/p' Dockerfile | grep -v '^scratch$' | head -n 1)
[ -n "$base" ] || { say "no base image named in the Dockerfile"; exit 1; }
podman image exists "$base" && exit 0

# A registry answers: the real image, as a Docker engine would build it.
if timeout 60 podman pull -q "$base" >/dev/null 2>&1; then
  say "pulled $base"
  exit 0
fi

case "$base" in
*debian:bookworm*) suite=bookworm ;;
*) say "cannot pull $base and cannot make it here (only debian:bookworm images are made)"; exit 1 ;;
esac
command -v debootstrap >/dev/null || { say "cannot pull $base and debootstrap is not installed (scripts/install-deps.sh)"; exit 1; }
cache=${CONTAINER_BASE_CACHE:-/var/tmp/dealsync-container-base}
mkdir -p "$cache"
root=$cache/rootfs
rm -rf "$root"
# The mirror apt uses here (deb822 sources first, then a one-line sources.list).
mirror=$(sed -n 's/^URIs:[[:space:]]*//p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1)
[ -n "$mirror" ] || mirror=$(awk '$1 == "deb" { print $2; exit }' /etc/apt/sources.list 2>/dev/null)
say "no registry answers for $base: making it with debootstrap from ${mirror:-the default mirror} (about 2 minutes, once)"
if ! debootstrap --variant=minbase "$suite" "$root" ${mirror:+"$mirror"} >"$cache/debootstrap.log" 2>&1; then
  tail -n 20 "$cache/debootstrap.log" >&2
  rm -rf "$root"
  say "debootstrap failed (log above)"
  exit 1
fi
# The image's apt reads the same mirror as this machine's (the Dockerfile installs packages).
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
  cp /etc/apt/sources.list.d/debian.sources "$root/etc/apt/sources.list.d/"
  rm -f "$root/etc/apt/sources.list"
fi
tar -C "$root" -c . | podman import -q - "$base" >/dev/null
rm -rf "$root"
say "made $base"
