#!/usr/bin/env bash
# Installs the Debian packages hostpatrol needs to build, test and lint. Idempotent:
# packages already present are not fetched again. Needs root (or sudo) and apt.
set -euo pipefail

pkgs=(
  build-essential pkg-config make git curl ca-certificates openssl procps psmisc iproute2 python3
  libcurl4-openssl-dev libjansson-dev libyaml-dev libwebsockets-dev libssl-dev libpcre2-dev
  libcmocka-dev valgrind xxd
  cppcheck clang-format clang-tidy shellcheck jq time prometheus
  clang-14 libclang-rt-14-dev protobuf-compiler
  etcd-server etcd-client chromium chromium-driver
  containerd runc containernetworking-plugins iptables conntrack buildah debootstrap
)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#pkgs[@]} packages present"
  exit 0
fi
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# etcd-server's maintainer scripts try to start a service; there is no init here, and we
# never want the packaged service running: policy-rc.d 101 forbids starting services.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
