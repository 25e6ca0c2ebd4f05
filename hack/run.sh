#!/usr/bin/env bash
# run.sh - run this checkout's controller and one agent on your machine against the cluster of
# the current kubeconfig (what `make run` runs). Ctrl-C (or SIGTERM) stops everything.
#
#   hack/run.sh [CONTROLLER-CMD... -- AGENT-CMD...]
#       default: build/hostpatrol controller -- build/hostpatrol agent --host-root /
#
# The kubeconfig is $KUBECONFIG (one file), else ~/.kube/config; with no reachable cluster it
# stops at once and names the kubeconfig. It applies the HostInspection CRD, then starts both
# commands with --kubeconfig, --etcd-endpoints and --state-dir added (the agent also gets
# --node-name: the cluster's first node from `kubectl get nodes`). The results etcd is
# $ETCD_ENDPOINTS, else a local etcd 3.6 started by tests/harness/harness.sh (make tools) and
# removed at exit. Logs go to a temp dir that is kept; HP_RUN_SECONDS=N stops after N seconds.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 2
user_kubectl=$(command -v kubectl || true)
unset HP_H_DIR # always a session of its own (never a caller's harness session)
# shellcheck source=tests/harness/harness.sh
. "$root/tests/harness/harness.sh"

die() { echo "run: $*" >&2; exit 1; }

ctl=() agent=()
if [ $# -eq 0 ]; then
  ctl=(build/hostpatrol controller)
  agent=(build/hostpatrol agent --host-root /)
else
  while [ $# -gt 0 ] && [ "$1" != -- ]; do ctl+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  agent=("$@")
  if [ ${#ctl[@]} -eq 0 ] || [ ${#agent[@]} -eq 0 ]; then
    echo "usage: $0 [CONTROLLER-CMD... -- AGENT-CMD...]" >&2
    exit 2
  fi
fi
[ -x "${ctl[0]}" ] || command -v "${ctl[0]}" > /dev/null || die "${ctl[0]} not found (run: make)"

kubeconfig=${KUBECONFIG:-$HOME/.kube/config}
[[ $kubeconfig != *:* ]] || die "KUBECONFIG lists several files ($kubeconfig); set it to the one to use"
[ -f "$kubeconfig" ] ||
  die "kubeconfig $kubeconfig does not exist: no cluster to run against (set KUBECONFIG, or create one with hack/kind-up.sh)"
kubectl=${user_kubectl:-$KUBECTL}
[ -x "$kubectl" ] || die "kubectl not found (install it, or run: make tools)"
kc() { "$kubectl" --kubeconfig "$kubeconfig" --request-timeout=10s "$@"; }

logs=$(mktemp -d "${TMPDIR:-/tmp}/hostpatrol-run.XXXXXX")
if ! node=$(kc get nodes -o 'jsonpath={.items[0].metadata.name}' 2> "$logs/kubectl.err"); then
  err=$(grep -v '^[IW][0-9]' "$logs/kubectl.err" | tail -n 1)
  rm -rf "$logs"
  die "no Kubernetes cluster reachable through kubeconfig $kubeconfig" \
    "(context: $(kc config current-context 2> /dev/null || echo none)): ${err:-kubectl get nodes failed}"
fi
if [ -z "$node" ]; then
  rm -rf "$logs"
  die "the cluster of kubeconfig $kubeconfig has no nodes: nothing for the agent to run as"
fi

pids=()
# shellcheck disable=SC2317 # called from the traps
stop() {
  local pid deadline=$((SECONDS + 15))
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2> /dev/null; done
  for pid in "${pids[@]}"; do
    while kill -0 "$pid" 2> /dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
    kill -KILL "$pid" 2> /dev/null
    wait "$pid" 2> /dev/null
  done
  hp_h_cleanup
  echo "run: stopped; logs kept in $logs" >&2
}
hp_h_init # a session dir for the local etcd and the ports; hp_h_cleanup removes it
trap stop EXIT
trap 'stop; exit 130' INT
trap 'stop; exit 143' TERM

endpoints=${ETCD_ENDPOINTS:-}
if [ -z "$endpoints" ]; then
  echo "run: ETCD_ENDPOINTS not set: starting a local etcd 3.6"
  hp_h_etcd results 3.6 || die "could not start a local etcd (run: make tools), or set ETCD_ENDPOINTS"
  endpoints=${HP_ETCD_URL[results]}
fi

kc apply -f "$root/crd/hostpatrol.io_hostinspections.yaml" > "$logs/crd.log" 2>&1 ||
  die "could not apply the CRD through kubeconfig $kubeconfig: $(tail -n 1 "$logs/crd.log")"
kc wait --for condition=Established --timeout=60s crd/hostinspections.hostpatrol.io >> "$logs/crd.log" 2>&1 ||
  die "the HostInspection CRD did not become Established: $(tail -n 1 "$logs/crd.log")"

metrics=127.0.0.1:$(hp_h_port)
health=127.0.0.1:$(hp_h_port)
"${ctl[@]}" --kubeconfig "$kubeconfig" --etcd-endpoints "$endpoints" --state-dir "$logs/controller-state" \
  --metrics-bind-address "$metrics" --health-probe-bind-address "$health" > "$logs/controller.log" 2>&1 &
pids+=($!)
"${agent[@]}" --kubeconfig "$kubeconfig" --node-name "$node" --etcd-endpoints "$endpoints" \
  --state-dir "$logs/agent-state" > "$logs/agent.log" 2>&1 &
pids+=($!)

cat << EOF
run: controller and agent are running
  kubeconfig   $kubeconfig (context $(kc config current-context 2> /dev/null || echo none))
  results etcd $endpoints
  agent node   $node (host checks read this machine below --host-root)
  controller   metrics https://$metrics/metrics and wss://$metrics/ws (self-signed certificate: curl -k,
               watch --insecure-skip-tls-verify; a bearer token allowed to get /metrics, e.g. a
               ServiceAccount bound to the chart's hostpatrol-metrics-reader ClusterRole:
               kubectl create token SA), health http://$health/readyz
  logs         $logs/controller.log $logs/agent.log
run: ready; Ctrl-C stops
EOF

end=$((SECONDS + ${HP_RUN_SECONDS:-999999999}))
while [ $SECONDS -lt $end ]; do
  for i in 0 1; do
    if ! kill -0 "${pids[$i]}" 2> /dev/null; then
      wait "${pids[$i]}"; rc=$?
      name=controller; [ "$i" -eq 1 ] && name=agent
      echo "run: the $name exited (status $rc); its last log lines:" >&2
      tail -n 20 "$logs/$name.log" >&2
      exit 1
    fi
  done
  sleep 0.5
done
exit 0
