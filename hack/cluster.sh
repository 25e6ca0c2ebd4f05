#!/usr/bin/env bash
# cluster.sh - a local single-node Kubernetes cluster on this machine, for machines without kind
# (what `make cluster`, `make cluster-load` and `make cluster-down` run). It is the test
# harness's cluster (tests/harness/cluster.sh): the control plane, kube-controller-manager,
# kube-scheduler, kube-proxy and a kubelet on Debian's containerd, plus a results etcd on the
# node's address. Needs root, `make deps tools`.
#
#   hack/cluster.sh up          start it in the background; prints the kubeconfig and the etcd URL
#   hack/cluster.sh load TAR    import an image archive (docker-archive) into its containerd
#   hack/cluster.sh env         KUBECONFIG=... ETCD_ENDPOINTS=... of the running cluster
#   hack/cluster.sh down        stop it and remove everything it made
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
owner_file=/run/hostpatrol-cluster.owner
die() { echo "cluster: $*" >&2; exit 1; }

running_dir() {
  local d
  d=$(cat "$owner_file" 2> /dev/null || true)
  [ -n "$d" ] && [ -d "$d/cluster" ] && [ -f "$d/make-cluster" ] && echo "$d"
}

case ${1:-} in
  up)
    if d=$(running_dir); then
      echo "cluster: already running (kubeconfig $d/kubeconfig)"
      exit 0
    fi
    unset HP_H_DIR
    # shellcheck source=tests/harness/harness.sh
    . "$root/tests/harness/harness.sh"
    trap '' HUP # the cluster outlives this script and its terminal
    hp_h_init
    hp_h_cluster || exit 1
    HP_H_ETCD_HOST=$HP_NODE_IP hp_h_etcd res 3.6 || exit 1
    # The session now belongs to the mount-namespace holder: it lives until `down`, and the
    # harness's sweep leaves a session alone while its owner runs.
    cat "$HP_H_DIR/cluster/mntns.pid" > "$HP_H_DIR/owner"
    echo "${HP_ETCD_URL[res]}" > "$HP_H_DIR/etcd-endpoints"
    : > "$HP_H_DIR/make-cluster"
    trap - EXIT INT TERM
    cat << EOF
cluster: node $HP_NODE_NAME Ready; logs in $HP_H_DIR
  export KUBECONFIG=$HP_KUBECONFIG
  export ETCD_ENDPOINTS=${HP_ETCD_URL[res]}
  make cluster-load deploy           # build the image, import it, helm install onto this cluster
  make cluster-down                  # stop it and remove everything it made
EOF
    ;;
  env)
    d=$(running_dir) || die "no local cluster is running (make cluster)"
    echo "KUBECONFIG=$d/kubeconfig ETCD_ENDPOINTS=$(cat "$d/etcd-endpoints")"
    ;;
  load)
    [ $# -eq 2 ] || die "usage: $0 load IMAGE-ARCHIVE.tar"
    [ -f "$2" ] || die "image archive $2 not found (make image IMAGE_ARCHIVE=$2)"
    d=$(running_dir) || die "no local cluster is running (make cluster)"
    ctr --address "$d/cluster/containerd/containerd.sock" -n k8s.io images import "$2"
    ;;
  down)
    d=$(running_dir) || { echo "cluster: none running"; exit 0; }
    export HP_H_DIR=$d
    # shellcheck source=tests/harness/harness.sh
    . "$root/tests/harness/harness.sh"
    hp_h_cleanup
    echo "cluster: stopped, everything removed"
    ;;
  *) echo "usage: $0 up|env|load IMAGE-ARCHIVE|down" >&2; exit 2 ;;
esac
