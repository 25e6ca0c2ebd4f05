#!/usr/bin/env bash
# kind-up.sh - create the kind cluster hostpatrol is tried on (hack/kind-config.yaml: a control
# plane and a worker labelled role=web). Then: make image kind-load deploy.
#
#   hack/kind-up.sh [CLUSTER]      CLUSTER defaults to $KIND_CLUSTER, else "kind"
set -euo pipefail

KIND=${KIND:-kind}
cluster=${1:-${KIND_CLUSTER:-kind}}
config="$(cd "$(dirname "$0")" && pwd)/kind-config.yaml"

command -v "$KIND" > /dev/null ||
  { echo "kind-up: '$KIND' not found: install kind (https://kind.sigs.k8s.io/docs/user/quick-start/#installation)" >&2; exit 1; }
if "$KIND" get clusters 2> /dev/null | grep -qxF -- "$cluster"; then
  echo "kind-up: cluster '$cluster' already exists"
  exit 0
fi
"$KIND" create cluster --name "$cluster" --config "$config"
echo "kind-up: cluster '$cluster' is up; next: make image kind-load deploy KIND_CLUSTER=$cluster"
