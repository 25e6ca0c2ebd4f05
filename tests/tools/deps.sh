#!/usr/bin/env bash
# Installs the Debian packages hostpatrol needs to build, test and lint. Idempotent:
# packages already present are not fetched again. Needs root (or sudo) and apt.
#
#   tests/tools/deps.sh          everything (`make deps`: build, tests, lint, fuzzing, cluster)
#   tests/tools/deps.sh demo     only what `make demo` needs: build and run the product
set -euo pipefail

# build and run the product (xxd embeds the dashboard's files), and the demo's harness (openssl
# makes its PKI, ss finds ports)
demo_pkgs=(
  build-essential pkg-config make git curl ca-certificates openssl procps psmisc iproute2 jq
  libcurl4-openssl-dev libjansson-dev libyaml-dev libwebsockets-dev libssl-dev libpcre2-dev
  xxd
)
pkgs=(
  "${demo_pkgs[@]}" python3
  libcmocka-dev valgrind
  cppcheck clang-format clang-tidy shellcheck time prometheus
  clang-14 libclang-rt-14-dev protobuf-compiler
  etcd-server etcd-client chromium chromium-driver
  containerd runc containernetworking-plugins iptables conntrack buildah debootstrap
)
case ${1:-all} in
  all) ;;
  demo) pkgs=("${demo_pkgs[@]}") ;;
  *) echo "deps.sh: unknown set '$1' (all|demo)" >&2; exit 2 ;;
esac

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
