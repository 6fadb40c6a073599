#!/usr/bin/env bash
# Installs the Debian packages dealsync builds, tests and runs with, when any is missing.
# Uses sudo when not root. Idempotent: does nothing when everything is present.
set -euo pipefail

PACKAGES=(
  build-essential pkg-config
  libmicrohttpd-dev libcurl4-openssl-dev libcjson-dev libpq-dev libxml2-dev libssl-dev
  check
  postgresql-15 postgresql-client-15
  curl jq
  # checks in make test: promtool (/metrics), yamllint (deploy/), chromium (the /admin page)
  prometheus yamllint chromium chromium-driver
  # make kube-check: the image built and deploy/kubernetes/ played with podman (catatonit: the
  # pod's pause image, a Recommends of podman that --no-install-recommends leaves out;
  # debootstrap: the Dockerfile's base image made where no registry answers,
  # scripts/container-base.sh)
  podman runc slirp4netns catatonit debootstrap
  # make fuzz: clang with libFuzzer and its sanitizer runtimes; make format: clang-format
  clang libclang-rt-14-dev clang-format
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
SUDO=
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: not root and no sudo; install: ${missing[*]}" >&2; exit 1; }
  SUDO=sudo
fi
# Debian's postgresql package creates and starts a default cluster; dealsync never uses it.
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
