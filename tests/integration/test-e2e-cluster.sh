#!/usr/bin/env bash
# test-e2e-cluster.sh - hostpatrol as its users run it: the image built from the Dockerfile
# (make image), imported into a REAL single-node cluster (tests/harness/cluster.sh: kubelet on
# containerd, controller manager, scheduler, kube-proxy), `helm install charts/hostpatrol`, pods
# scheduled and started by the kubelet. The controller runs in a namespace where Pod Security
# `restricted` is enforced, the agent DaemonSet reads the node through the host's / mounted
# read-only at /host, results go to an external etcd on the node's address. Then: a sample
# HostInspection gets results from both pods; /readyz gates the pods; /metrics is scraped
# through its Service from another pod over https with a ServiceAccount token bound to the
# chart's metrics-reader ClusterRole (and refused without it); the leader pod is deleted and the other replica takes
# over with a new fencing epoch; the projected token rotates and the controller keeps working
# past its first expiry; helm upgrade rolls the pods; helm uninstall leaves nothing; the
# cluster's teardown leaves nothing on the machine.
# Figures printed: image size, helm install -> first result, each pod's memory (kubelet).
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

CHART=$HP_H_ROOT/charts/hostpatrol
NS=hostpatrol-system
AGENT_NS=hostpatrol-agent
APP_NS=e2e
IMAGE=hostpatrol:e2e
TOKEN_TTL=600
T_TIMEOUT=240

setup() {
  hp_h_init
  helm_home
  # the image, built from the Dockerfile (daemonless here), as a docker-archive
  local t0=$SECONDS
  make -C "$HP_H_ROOT" --no-print-directory image IMAGE="$IMAGE" IMAGE_ARCHIVE="$HP_H_DIR/image.tar" \
    > "$HP_H_DIR/image-build.log" 2>&1 || { tail -n 30 "$HP_H_DIR/image-build.log"; return 1; }
  echo "$((SECONDS - t0))" > "$HP_H_DIR/image-build.seconds"
  hp_h_cluster || return 1
  HP_H_ETCD_HOST=$HP_NODE_IP hp_h_etcd res 3.6 || return 1
  hp_h_cluster_image_import "$HP_H_DIR/image.tar" || return 1
  kc create namespace "$NS" > /dev/null &&
    kc label namespace "$NS" pod-security.kubernetes.io/enforce=restricted > /dev/null &&
    kc create namespace "$AGENT_NS" > /dev/null &&
    kc label namespace "$AGENT_NS" pod-security.kubernetes.io/enforce=privileged > /dev/null &&
    kc create namespace "$APP_NS" > /dev/null || return 1
  # the metrics' serving certificate from a Secret (--metrics-cert-dir), signed by a CA of this
  # test for the Service's DNS name: the scraper pod verifies it
  local d=$HP_H_DIR/metrics-pki svc=hostpatrol-controller-metrics.$NS.svc
  mkdir -p "$d"
  {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=e2e-metrics-ca \
      -keyout "$d/ca.key" -out "$d/ca.crt" -days 1 &&
      openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$svc" \
        -keyout "$d/tls.key" -out "$d/tls.csr" &&
      openssl x509 -req -in "$d/tls.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial -days 1 \
        -extfile <(printf 'subjectAltName=DNS:%s' "$svc") -out "$d/tls.crt"
  } > "$HP_H_DIR/metrics-pki.log" 2>&1 || { cat "$HP_H_DIR/metrics-pki.log"; return 1; }
  kc -n "$NS" create secret tls metrics-tls --cert="$d/tls.crt" --key="$d/tls.key" > /dev/null || return 1
  kc -n "$APP_NS" create configmap metrics-ca --from-file=ca.crt="$d/ca.crt" > /dev/null || return 1
  cat > "$HP_H_DIR/values.yaml" << EOF
image: {repository: ${IMAGE%%:*}, tag: ${IMAGE##*:}, pullPolicy: Never}
etcd: {endpoints: "${HP_ETCD_URL[res]}"}
agent: {namespace: $AGENT_NS}
controller: {replicas: 2}
serviceAccountToken: {expirationSeconds: $TOKEN_TTL}
policy: {nodeChecks: {namespaces: [$APP_NS]}}
metrics: {certSecretName: metrics-tls}
EOF
}

t_on_fail() {
  kc get pods -A -o wide 2>&1 | tail -n 20
  show_his 800
  local p
  for p in $(kc -n "$NS" get pods -o name 2> /dev/null); do
    echo "--- $p (log tail)"
    kc -n "$NS" logs "$p" --tail 6 2>&1 | cut -c1-400
  done 2> /dev/null
  for p in $(kc -n "$AGENT_NS" get pods -o name 2> /dev/null); do
    echo "--- $p (log tail)"
    kc -n "$AGENT_NS" logs "$p" --tail 6 2>&1 | cut -c1-400
  done 2> /dev/null
  kc get events -A --field-selector type=Warning --sort-by=.lastTimestamp 2>&1 | grep -v MissingClusterDNS | tail -n 6 | cut -c1-300
}

pods() { kc -n "$1" get pods -l "app.kubernetes.io/component=$2" -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}'; }
pod_ready() { [ "$(kc -n "$1" get pod "$2" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" = "$3" ]; }
deployed() {
  [ "$(kc -n "$NS" get deploy hostpatrol-controller -o jsonpath='{.status.readyReplicas}')" = 2 ] &&
    [ "$(kc -n "$AGENT_NS" get ds hostpatrol-agent -o jsonpath='{.status.numberReady}')" = 1 ]
}
svc_ip() { kc -n "$1" get svc "$2" -o jsonpath='{.spec.clusterIP}'; }

# pod_memory: each hostpatrol pod's memory as the kubelet reports it (cgroup working set, RSS)
pod_memory() {
  mem_known() {
    kc get --raw "/api/v1/nodes/$HP_NODE_NAME/proxy/stats/summary" |
      jq -e '[.pods[] | select(.podRef.namespace | startswith("hostpatrol")) | .memory.workingSetBytes // 0] | length > 0 and min > 0'
  }
  t_eventually 60 mem_known
  kc get --raw "/api/v1/nodes/$HP_NODE_NAME/proxy/stats/summary" |
    jq -r '.pods[] | select(.podRef.namespace | startswith("hostpatrol")) |
      "# pod \(.podRef.namespace)/\(.podRef.name): working set \(.memory.workingSetBytes / 10485.76 | floor / 100) MiB, RSS \(.memory.rssBytes / 10485.76 | floor / 100) MiB"'
}

# the sample: an endpoint check from the controller pod (the apiserver's Service over tcp), node
# checks from the agent pod (/metrics has its own test: it needs a token and flags the
# self-signed certificate)
apply_sample() {
  apply << EOF
apiVersion: hostpatrol.io/v1alpha1
kind: HostInspection
metadata: {name: sample, namespace: $APP_NS}
spec:
  interval: 5s
  timeout: 3s
  targets:
    - {name: apiserver, address: "$(svc_ip default kubernetes)"}
  checks:
    - {name: apiserver-tcp, tcp: {port: 443}}
    - {name: root-disk, disk: {path: /, warnPercent: 99, critPercent: 100}}
    - {name: load, load: {window: 1m, warnPerCPU: "100", critPerCPU: "200"}}
    - {name: memory, memory: {warnAvailablePercent: 1, critAvailablePercent: 0}}
EOF
}

test_helm_install_runs_the_pods_and_results_land() {
  local t0 t_first out
  echo "# image $IMAGE built from the Dockerfile in $(cat "$HP_H_DIR/image-build.seconds") s (make image; layers cached across runs): $(($(stat -c %s "$HP_H_DIR/image.tar") / 1048576)) MiB uncompressed"
  t0=$(date +%s.%N)
  out=$(helmc install hostpatrol "$CHART" -n "$NS" -f "$HP_H_DIR/values.yaml" 2>&1) || t_fail "helm install: $out"
  apply_sample
  t_eventually 180 deployed
  first() { [ "$(results_count "$APP_NS")" -gt 0 ]; }
  t_eventually 60 first
  t_first=$(date +%s.%N)
  echo "# helm install -> first result in etcd: $(echo "$t_first - $t0" | bc) s"
  # the pods were admitted under the namespaces' Pod Security levels and run as non-root
  t_eq "$(kc get ns "$NS" -o jsonpath='{.metadata.labels.pod-security\.kubernetes\.io/enforce}')" restricted
  local p
  p=$(pods "$NS" controller | head -n 1)
  t_eq "$(kc -n "$NS" get pod "$p" -o jsonpath='{.spec.nodeName}')" "$HP_NODE_NAME" "scheduled on the node"
  t_match "$(kc -n "$NS" get pod "$p" -o jsonpath='{.status.podIP}')" '^10\.244\.0\.' "pod IP from the bridge CNI"
  # the image and the user the kubelet runs it with
  t_eq "$(kc -n "$NS" get pod "$p" -o jsonpath='{.status.containerStatuses[0].image}')" "docker.io/library/$IMAGE"
  kc -n "$NS" logs "$p" | grep -q '"msg":"starting: kube https://10.0.0.1:443 (in-cluster)' ||
    t_fail "controller did not start on the in-cluster config: $(kc -n "$NS" logs "$p" | head -n 3)"
}

test_sample_gets_results_from_the_controller_and_agent_pods() {
  t_eventually 60 cond_is "$APP_NS" sample Ready True
  t_eventually 30 field_is "$APP_NS" sample .status.nodes.matching 1
  # the agent's first result may land a run after Ready: "no result from the agent yet" until then
  t_eventually 60 field_is "$APP_NS" sample .status.nodes.failing "[]"
  local v host_kb
  v=$(result "$APP_NS" sample apiserver-tcp apiserver)
  t_contains "$v" '"status":"OK"'
  t_contains "$v" '"source":"controller/hostpatrol-controller-'
  # node results from the agent pod, read through /host: they are this machine's
  v=$(result "$APP_NS" sample memory "$HP_NODE_NAME")
  t_contains "$v" "\"source\":\"agent/$HP_NODE_NAME\""
  host_kb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
  t_contains "$v" "\"mem_total_bytes\":$((host_kb * 1024))" "the node's MemTotal through /host/proc"
  t_contains "$(result "$APP_NS" sample root-disk "$HP_NODE_NAME")" '"status":"OK"'
  # the agent container sees the host's / read-only at /host (its mount table, read on the host)
  local pid opts
  pid=$(pgrep -f '^/usr/local/bin/hostpatrol agent' | head -n 1)
  [ -n "$pid" ] || t_fail "no agent process from the image on this machine"
  opts=$(awk '$5 == "/host" {print $6}' "/proc/$pid/mountinfo")
  t_match "$opts" '(^|,)ro(,|$)' "mount options of /host in the agent container"
  t_eq "$(stat -c %u "/proc/$pid")" 65532 "the agent's uid"
  t_contains "$(result "$APP_NS" sample load "$HP_NODE_NAME")" "\"cpus\":$(nproc)"
}

# The chart's policy in the cluster: node checks only from the namespaces the admin listed
# (here $APP_NS); a tenant's resource elsewhere is Forbidden, naming the flag, and the agent
# pod writes nothing for it.
test_the_charts_policy_keeps_other_namespaces_off_the_node() {
  kc create namespace hp-tenant > /dev/null 2>&1 || true
  apply << EOF
apiVersion: hostpatrol.io/v1alpha1
kind: HostInspection
metadata: {name: peek, namespace: hp-tenant}
spec:
  checks:
    - {name: disk, disk: {path: /}}
EOF
  forbidden() { [ "$(kc -n hp-tenant get hi peek -o jsonpath='{.status.conditions[?(@.type=="InvalidSpec")].reason}')" = Forbidden ]; }
  t_eventually 60 forbidden
  t_contains "$(kc -n hp-tenant get hi peek -o jsonpath='{.status.conditions[?(@.type=="InvalidSpec")].message}')" \
    "(--node-checks-namespaces: $APP_NS)"
  sleep 3
  t_eq "$(results_count hp-tenant)" 0 "results of the refused resource"
  kc -n hp-tenant delete hi peek --wait=false > /dev/null
}

test_readyz_gates_the_pods() {
  local p
  p=$(pods "$NS" controller | head -n 1)
  t_ok pod_ready "$NS" "$p" True
  # the results etcd down: /readyz answers 503, the kubelet takes the pods out of service
  hp_h_etcd_stop res.0
  t_eventually 60 pod_ready "$NS" "$p" False
  no_endpoints() { [ -z "$(kc -n "$NS" get endpoints hostpatrol-controller-metrics -o jsonpath='{.subsets[*].addresses[*].ip}')" ]; }
  t_eventually 30 no_endpoints
  hp_h_etcd_restart res.0 || t_fail "etcd restart"
  t_eventually 60 pod_ready "$NS" "$p" True
  t_eventually 60 cond_is "$APP_NS" sample Ready True
}

test_metrics_scraped_through_the_service_from_another_pod() {
  local ip token svc=hostpatrol-controller-metrics.$NS.svc
  ip=$(svc_ip "$NS" hostpatrol-controller-metrics)
  # a scraper's ServiceAccount bound to the chart's metrics-reader ClusterRole
  kc -n "$APP_NS" create serviceaccount metrics-scraper > /dev/null
  kc create clusterrolebinding e2e-metrics-scraper --clusterrole=hostpatrol-metrics-reader \
    --serviceaccount="$APP_NS:metrics-scraper" > /dev/null
  token=$(kc -n "$APP_NS" create token metrics-scraper --duration=10m)
  # over https to the Service's name (the pod's /etc/hosts: this cluster runs no DNS), the
  # certificate from the Secret verified against the test's CA; with the token: 200 and the
  # metrics; without: 401
  kc -n "$APP_NS" create configmap scrape --from-literal=scrape.yaml="apiVersion: hostpatrol.io/v1alpha1
kind: HostInspection
metadata: {name: scrape, namespace: $APP_NS}
spec:
  interval: 10s
  timeout: 5s
  checks:
    - {name: metrics, http: {url: 'https://$svc:8443/metrics', headers: {Authorization: 'Bearer $token'}, expectStatus: [200], bodyRegex: 'hostpatrol_reconcile_total'}}
    - {name: anonymous, http: {url: 'https://$svc:8443/metrics', expectStatus: [401]}}
" > /dev/null
  kc -n "$APP_NS" apply -f - > /dev/null << EOF
apiVersion: v1
kind: Pod
metadata: {name: scraper}
spec:
  restartPolicy: Never
  automountServiceAccountToken: false
  hostAliases: [{ip: "$ip", hostnames: ["$svc"]}]
  securityContext: {runAsNonRoot: true, runAsUser: 65532, seccompProfile: {type: RuntimeDefault}}
  containers:
    - name: scrape
      image: $IMAGE
      imagePullPolicy: Never
      args: [inspect, -f, /cfg/scrape.yaml, --once, -o, json]
      securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
      volumeMounts:
        - {name: cfg, mountPath: /cfg}
        - {name: ca, mountPath: /etc/ssl/certs/ca-certificates.crt, subPath: ca.crt}
  volumes:
    - {name: cfg, configMap: {name: scrape}}
    - {name: ca, configMap: {name: metrics-ca}}
EOF
  done_() { [[ $(kc -n "$APP_NS" get pod scraper -o jsonpath='{.status.phase}') == Succeeded ]]; }
  t_eventually 60 done_
  local out m a
  out=$(kc -n "$APP_NS" logs scraper)
  m=$(jq -c '.[] | select(.check == "metrics")' <<< "$out")
  a=$(jq -c '.[] | select(.check == "anonymous")' <<< "$out")
  t_contains "$m" '"status":"OK"'
  t_contains "$m" '"status_code":200'
  t_contains "$a" '"status":"OK"'
  t_contains "$a" '"status_code":401'
}

test_leader_pod_deleted_the_other_replica_leads_with_a_new_epoch() {
  local old new epoch0 epoch1 n0
  old=$(lease_holder "$NS")
  t_match "$old" '^hostpatrol-controller-' "a pod leads"
  epoch0=$(ec get --print-value-only "${HP_ETCD_PREFIX}epoch/controller")
  n0=$(history "$APP_NS" | wc -l)
  kc -n "$NS" delete pod "${old%_*}" --wait=false > /dev/null
  local t0=$SECONDS
  moved() { local l; l=$(lease_holder "$NS"); [ -n "$l" ] && [ "$l" != "$old" ]; }
  t_eventually 60 moved
  new=$(lease_holder "$NS")
  echo "# leadership $old -> $new in $((SECONDS - t0)) s after the pod's deletion"
  t_match "$new" '^hostpatrol-controller-'
  # the new leader claims a new epoch in etcd right after it takes the Lease
  epoch_moved() { [ "$(ec get --print-value-only "${HP_ETCD_PREFIX}epoch/controller")" != "$epoch0" ]; }
  t_eventually 30 epoch_moved
  epoch1=$(ec get --print-value-only "${HP_ETCD_PREFIX}epoch/controller")
  echo "# fencing epoch $epoch0 -> $epoch1"
  wrote_new() { history "$APP_NS" | awk -v w="controller/$new" '$2 == w' | grep -q .; }
  t_eventually 60 wrote_new
  t_ge "$(history "$APP_NS" | wc -l)" $((n0 + 1)) "results keep landing"
  check_history "$APP_NS" controller/
  t_eventually 120 deployed
}

# The kubelet replaces the projected token at 80% of its life; an in-cluster client that kept
# the first token would get 401 after it expires. A pod alive since before the first expiry
# is checked: its token file was replaced, and it still writes status afterwards.
# shellcheck disable=SC2034 # read by t_main: this test waits for the first expiry
T_TIMEOUT_test_token_rotates_and_the_pods_keep_working_past_its_expiry=$((TOKEN_TTL + 180))
test_token_rotates_and_the_pods_keep_working_past_its_expiry() {
  local p start_ts now age wait_s uid tok0_iat tok_iat
  p=$(pods "$AGENT_NS" agent | head -n 1)
  start_ts=$(date -d "$(kc -n "$AGENT_NS" get pod "$p" -o jsonpath='{.status.startTime}')" +%s)
  now=$(date +%s)
  age=$((now - start_ts))
  wait_s=$((TOKEN_TTL + 20 - age))
  echo "# agent pod $p is $age s old; token lifetime $TOKEN_TTL s: waiting ${wait_s} s"
  [ "$wait_s" -le 0 ] || sleep "$wait_s"
  uid=$(kc -n "$AGENT_NS" get pod "$p" -o jsonpath='{.metadata.uid}')
  tok_iat=$(nsenter -t "$(cat "$HP_H_DIR/cluster/mntns.pid")" -m -- \
    cat "$HP_H_DIR/cluster/kubelet/pods/$uid/volumes/kubernetes.io~projected/sa-token/token" |
    cut -d. -f2 | tr '_-' '/+' | base64 -d 2> /dev/null | jq -r .iat)
  tok0_iat=$start_ts
  [ "$tok_iat" -gt $((tok0_iat + TOKEN_TTL / 2)) ] ||
    t_fail "the agent's token was not replaced (iat $tok_iat, pod started $start_ts)"
  echo "# the agent's token was replaced $((tok_iat - start_ts)) s after the pod started"
  # both the agent (watch after re-list) and the controller (status writes) still talk to the
  # apiserver: a new check shows up from the agent and the status counts it
  kc -n "$APP_NS" patch hi sample --type=json \
    -p '[{"op":"add","path":"/spec/checks/-","value":{"name":"late-memory","memory":{"warnAvailablePercent":1,"critAvailablePercent":0}}}]' > /dev/null
  t_eventually 60 result_has "$APP_NS" sample late-memory "$HP_NODE_NAME" '"status":"OK"'
  gen() { [ "$(field sample .status.observedGeneration)" = "$(field sample .metadata.generation)" ]; }
  t_eventually 60 gen
  t_eventually 30 cond_is "$APP_NS" sample Ready True
  if kc -n "$AGENT_NS" logs "$p" | grep -q '"status":401\|Unauthorized'; then
    t_fail "the agent got 401 from the apiserver"
  fi
  pod_memory
}

test_helm_upgrade_rolls_the_pods() {
  local before after out
  before=$(pods "$NS" controller | sort | tr '\n' ' ')
  out=$(helmc upgrade hostpatrol "$CHART" -n "$NS" -f "$HP_H_DIR/values.yaml" \
    --set controller.logLevel=debug --set agent.logLevel=debug 2>&1) || t_fail "helm upgrade: $out"
  rolled() {
    local now
    now=$(pods "$NS" controller | sort | tr '\n' ' ')
    deployed && [ "$(echo "$now" | wc -w)" = 2 ] && ! grep -qF -- "${before%% *}" <<< "$now"
  }
  t_eventually 180 rolled
  after=$(pods "$NS" controller | sort | tr '\n' ' ')
  echo "# controller pods $before-> $after"
  t_contains "$(kc -n "$NS" get deploy hostpatrol-controller -o jsonpath='{.spec.template.spec.containers[0].args}')" '"debug"'
  t_eq "$(kc -n "$AGENT_NS" get ds hostpatrol-agent -o jsonpath='{.status.updatedNumberScheduled}')" 1
  # results keep landing, now written by a pod of the new ReplicaSet
  local rs=${after%% *}
  rs=${rs%-*}
  rs_wrote() { history "$APP_NS" | awk -v p="controller/$rs-" 'index($2, p) == 1' | grep -q .; }
  t_eventually 60 rs_wrote
  t_eventually 60 cond_is "$APP_NS" sample Ready True
}

test_helm_uninstall_leaves_nothing() {
  local out left
  # resources first, while the controller runs: its finalizer deletes their results
  kc -n "$APP_NS" delete hi sample --timeout=60s > /dev/null || t_fail "HostInspection not deleted"
  t_eq "$(results_count "$APP_NS")" 0 "results deleted with the resource"
  out=$(helmc uninstall hostpatrol -n "$NS" --wait --timeout 120s 2>&1) || t_fail "helm uninstall: $out"
  no_pods() {
    [ -z "$(kc -n "$NS" get pods -o name)" ] && [ -z "$(kc -n "$AGENT_NS" get pods -o name)" ]
  }
  t_eventually 120 no_pods
  left=$(kc get clusterrole,clusterrolebinding -l app.kubernetes.io/instance=hostpatrol -o name)
  left+=$(kc -n "$NS" get role,rolebinding,serviceaccount,lease,service,deploy -l app.kubernetes.io/instance=hostpatrol -o name)
  left+=$(kc -n "$NS" get lease -o name)
  left+=$(kc -n "$AGENT_NS" get serviceaccount,daemonset -l app.kubernetes.io/instance=hostpatrol -o name)
  t_eq "$left" "" "objects left after helm uninstall"
  # the CRD stays (Helm never deletes crds/; docs/install.md says how to remove it)
  kc get crd hostinspections.hostpatrol.io > /dev/null || t_fail "CRD removed by helm uninstall"
}

test_cluster_teardown_leaves_nothing_on_the_machine() {
  hp_h_cluster_down "$HP_H_DIR"
  t_eq "$(hp_h_cluster_leftovers "$HP_H_DIR")" "" "left on the machine"
}

# A session killed with -9 while its cluster runs a pod: the next session stops the pod, the
# kubelet, containerd and the rest, and removes the bridge, chains, cgroups and files.
test_kill_9_of_a_cluster_owner_is_swept_by_the_next_session() {
  local f dir left
  f=$(mktemp)
  # sessions of their own, not this file's (whose HP_H_DIR and node settings are exported)
  env -u HP_H_DIR -u HP_H_NODE_IP bash -c '
    . "$1/tests/harness/harness.sh"
    hp_h_init
    hp_h_cluster || exit 3
    kc run p --image=registry.k8s.io/pause:3.10 --image-pull-policy=Never --restart=Never > /dev/null
    kc wait --for=condition=Ready pod/p --timeout=60s > /dev/null || exit 3
    echo "$HP_H_DIR" > "$2"
    exec sleep 300' _ "$HP_H_ROOT" "$f" > "$f.log" 2>&1 &
  local child=$!
  for _ in $(seq 600); do { [ -s "$f" ] || ! kill -0 "$child" 2> /dev/null; } && break; sleep 0.2; done
  [ -s "$f" ] || t_fail "the cluster did not come up: $(tail -n 20 "$f.log")"
  dir=$(cat "$f")
  kill -KILL "$child"; wait "$child" 2> /dev/null
  rm -f "$f" "$f.log"
  left=$(hp_h_cluster_leftovers "$dir")
  [[ $left == *"pod process"* && $left == *"bridge"* && $left == *kubelet* ]] ||
    t_fail "expected a running pod, the kubelet and the bridge after kill -9, found: $left"
  env -u HP_H_DIR -u HP_H_NODE_IP bash -c '. "$1/tests/harness/harness.sh"; hp_h_init' _ "$HP_H_ROOT"
  t_eq "$(hp_h_cluster_leftovers "$dir")" "" "left after the sweep"
  t_eq "$(hp_h_leftovers "$dir")" "" "processes left after the sweep"
  t_not test -e "$dir"
}

t_main
