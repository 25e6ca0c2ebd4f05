#!/usr/bin/env bash
# kind-load.sh - load a locally built image into a kind cluster (what `make kind-load` runs).
#
#   hack/kind-load.sh [--check] IMAGE [CLUSTER]      CLUSTER defaults to "kind"
#
# First checks that everything it needs is there and says what is missing: the kind and docker
# commands, a reachable docker daemon, the image (built by `make image`) and the cluster (made
# by hack/kind-up.sh). With --check it stops there (the Makefile then runs `kind load` itself,
# so `make -n kind-load` shows the command). $KIND / $DOCKER name other binaries.
set -euo pipefail

KIND=${KIND:-kind}
DOCKER=${DOCKER:-docker}
check_only=0
if [ "${1:-}" = --check ]; then check_only=1; shift; fi
if [ $# -lt 1 ] || [ $# -gt 2 ]; then echo "usage: $0 [--check] IMAGE [CLUSTER]" >&2; exit 2; fi
image=$1
cluster=${2:-kind}

die() { echo "kind-load: $*" >&2; exit 1; }

command -v "$KIND" > /dev/null ||
  die "'$KIND' not found: install kind (https://kind.sigs.k8s.io/docs/user/quick-start/#installation)"
command -v "$DOCKER" > /dev/null ||
  die "'$DOCKER' not found: install the docker CLI and a container engine"
if ! err=$("$DOCKER" info 2>&1 > /dev/null); then
  die "'$DOCKER' is installed but no docker daemon answers ($DOCKER info: ${err%%$'\n'*}); start it or set DOCKER_HOST"
fi
"$DOCKER" image inspect "$image" > /dev/null 2>&1 ||
  die "image '$image' is not in the local docker image store: run 'make image' first"
clusters=$("$KIND" get clusters 2> /dev/null) || die "'$KIND get clusters' failed"
grep -qxF -- "$cluster" <<< "$clusters" ||
  die "no kind cluster named '$cluster' (have: ${clusters//$'\n'/ }); run hack/kind-up.sh or set KIND_CLUSTER"

[ "$check_only" -eq 1 ] && exit 0
exec "$KIND" load docker-image "$image" --name "$cluster"
