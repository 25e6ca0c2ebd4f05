#!/usr/bin/env bash
# demo.sh - what `make demo` runs: a local control plane (etcd 3.6 + kube-apiserver 1.34), a
# results etcd 3.6, the HostInspection CRD, a sample that inspects this machine,
# `hostpatrol controller` and `hostpatrol agent` (this machine as a Node); it prints how to reach
# them and shows results as they land.
# Ctrl-C (or SIGTERM) stops everything and removes it all.
#
# HP_DEMO_SECONDS=N stops by itself after N seconds (for scripts); unset, it runs until stopped.
set -uo pipefail
# shellcheck source=tests/harness/harness.sh
. "$(dirname "$0")/harness.sh"

hp_h_init
echo "demo: starting a local control plane and a results etcd (first start takes ~20 s)..."
hp_h_control_plane || exit 1
hp_h_etcd results 3.6 || exit 1

hp_h_crd || exit 1
# The sample inspects this machine: disk, load and memory through the agent, and an HTTP check
# of a local endpoint (the results etcd's own /health).
sed "s#@HEALTH_URL@#${HP_ETCD_URL[results]}/health#" "$HP_H_ROOT/examples/hostinspection-local.yaml" |
  kc apply -f - > /dev/null || exit 1

# The operator: the controller runs the sample's endpoint checks and writes their results.
health_port=$(hp_h_port)
metrics_port=$(hp_h_port)
"$HP_H_ROOT/build/hostpatrol" controller --kubeconfig "$HP_KUBECONFIG" \
  --etcd-endpoints "${HP_ETCD_URL[results]}" --state-dir "$HP_H_DIR/controller-state" \
  --health-probe-bind-address "127.0.0.1:$health_port" --metrics-bind-address "127.0.0.1:$metrics_port" \
  > "$HP_H_DIR/controller.log" 2>&1 &
disown # the harness's cleanup stops it with the rest
# This machine as a Node, and its agent: the sample's disk, load and memory checks read the
# real /proc and / of this machine.
node=$(hostname | tr '[:upper:]_' '[:lower:]-')
kc apply -f - > /dev/null <<EOF || exit 1
apiVersion: v1
kind: Node
metadata: {name: $node, labels: {hostpatrol.io/demo: "true"}}
EOF
"$HP_H_ROOT/build/hostpatrol" agent --kubeconfig "$HP_KUBECONFIG" --node-name "$node" --host-root / \
  --etcd-endpoints "${HP_ETCD_URL[results]}" --state-dir "$HP_H_DIR/agent-state" \
  > "$HP_H_DIR/agent.log" 2>&1 &
disown
# Who may read /metrics and /ws (HTTPS, bearer tokens checked by the apiserver): a ServiceAccount
# bound to the chart's metrics-reader rule and to `get` on HostInspections, and a token for it.
{
  kc create clusterrole hostpatrol-metrics-reader --verb=get --non-resource-url=/metrics &&
    kc create clusterrole hostpatrol-demo-results --verb=get --resource=hostinspections.hostpatrol.io &&
    kc -n default create serviceaccount demo-viewer &&
    kc create clusterrolebinding hostpatrol-demo-metrics --clusterrole=hostpatrol-metrics-reader \
      --serviceaccount=default:demo-viewer &&
    kc create clusterrolebinding hostpatrol-demo-results --clusterrole=hostpatrol-demo-results \
      --serviceaccount=default:demo-viewer
} > /dev/null || exit 1
kc -n default create token demo-viewer --duration=24h > "$HP_H_DIR/viewer.token" || exit 1
ready() { [ "$(kc get hi local -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" = True ]; }
for _ in $(seq 1 150); do ready && break; sleep 0.2; done
ready || { echo "demo: the sample did not become Ready; see $HP_H_DIR/controller.log" >&2; exit 1; }

cat <<EOF

hostpatrol demo is up.
  Kubernetes API   $HP_APISERVER_URL
  kubeconfig       $HP_KUBECONFIG
  results etcd     ${HP_ETCD_URL[results]}   (v3 JSON gateway, e.g. POST /v3/kv/range)
  controller log   $HP_H_DIR/controller.log   (agent on node $node: $HP_H_DIR/agent.log)
  metrics          https://127.0.0.1:$metrics_port/metrics   (self-signed certificate, bearer token
                   in $HP_H_DIR/viewer.token; health: http://127.0.0.1:$health_port/readyz)
  logs             $HP_H_DIR/*.log

Try:
  $KUBECTL --kubeconfig $HP_KUBECONFIG get hostinspections -A
  $KUBECTL --kubeconfig $HP_KUBECONFIG annotate --overwrite hi local hostpatrol.io/run-now=\$(date +%s)
  $ETCDCTL36 --endpoints ${HP_ETCD_URL[results]} get --prefix /hostpatrol/results/
  curl -sk -H "Authorization: Bearer \$(cat $HP_H_DIR/viewer.token)" https://127.0.0.1:$metrics_port/metrics
  $HP_H_ROOT/build/hostpatrol watch --server wss://127.0.0.1:$metrics_port --insecure-skip-tls-verify --token-file $HP_H_DIR/viewer.token

The controller runs the sample's endpoint check (local-http) every 15 s; the agent runs its
disk, load and memory checks on this machine; the status counts both.
demo: ready
Press Ctrl-C to stop; everything started here is stopped and removed.

EOF

# results as they land: one line each when a run writes it, with what it measured, and a line
# per run (`hostpatrol results --watch`: colour on a terminal only)
kc get hi -A
"$HP_H_ROOT/build/hostpatrol" results -A --watch --etcd-endpoints "${HP_ETCD_URL[results]}" &
watcher=$!
# its command line does not name the session, so the harness's cleanup would not find it
trap 'kill "$watcher" 2> /dev/null; hp_h_cleanup; trap - INT; kill -INT $$' INT
trap 'kill "$watcher" 2> /dev/null; hp_h_cleanup; trap - TERM; kill -TERM $$' TERM
end=$((SECONDS + ${HP_DEMO_SECONDS:-999999999}))
while [ $SECONDS -lt $end ] && kill -0 "$watcher" 2> /dev/null; do
  sleep 1 & wait $!
done
kill "$watcher" 2> /dev/null
wait "$watcher" 2> /dev/null
