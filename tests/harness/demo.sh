#!/usr/bin/env bash
# demo.sh - what `make demo` runs: a local control plane (etcd 3.6 + kube-apiserver 1.34), a
# results etcd 3.6, the HostInspection CRD and a sample that inspects this machine; then it
# prints how to reach them and waits. Ctrl-C (or SIGTERM) stops everything and removes it all.
#
# HP_DEMO_SECONDS=N stops by itself after N seconds (for scripts); unset, it runs until stopped.
set -uo pipefail
# shellcheck source=tests/harness/harness.sh
. "$(dirname "$0")/harness.sh"

hp_h_init
echo "demo: starting a local control plane and a results etcd (first start takes ~20 s)..."
hp_h_control_plane || exit 1
hp_h_etcd results 3.6 || exit 1

kc() { "$KUBECTL" --kubeconfig "$HP_KUBECONFIG" --request-timeout=30s "$@"; }
kc apply -f "$HP_H_ROOT/crd/hostpatrol.io_hostinspections.yaml" > /dev/null || exit 1
kc wait --for condition=Established --timeout=60s crd/hostinspections.hostpatrol.io > /dev/null || exit 1
# The sample inspects this machine: disk, load and memory through the agent, and an HTTP check
# of a local endpoint (the results etcd's own /health).
sed "s#@HEALTH_URL@#${HP_ETCD_URL[results]}/health#" "$HP_H_ROOT/examples/hostinspection-local.yaml" |
  kc apply -f - > /dev/null || exit 1

cat <<EOF

hostpatrol demo is up.
  Kubernetes API   $HP_APISERVER_URL
  kubeconfig       $HP_KUBECONFIG
  results etcd     ${HP_ETCD_URL[results]}   (v3 JSON gateway, e.g. POST /v3/kv/range)
  logs             $HP_H_DIR/*.log

Try:
  $KUBECTL --kubeconfig $HP_KUBECONFIG get hostinspections -A
  curl -s ${HP_ETCD_URL[results]}/version

The operator itself ('hostpatrol controller' and 'agent') joins this demo as it is built.
demo: ready
Press Ctrl-C to stop; everything started here is stopped and removed.
EOF

if [ -n "${HP_DEMO_SECONDS:-}" ]; then
  sleep "$HP_DEMO_SECONDS" & wait $!
else
  sleep infinity & wait $!
fi
