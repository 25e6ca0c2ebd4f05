#!/usr/bin/env bash
# test-chart.sh - the Helm chart charts/hostpatrol and the plain manifests/ rendered from it.
# Static: helm lint, renders (and refuses to render without an etcd), crds/ is a copy of crd/,
# manifests/ is exactly what the chart renders, RBAC without wildcards, restricted security
# contexts. Against the REAL kube-apiserver: helm install (no kubelet: pods never start); Pod
# Security admission accepts the controller's pod template in a `restricted` namespace and
# rejects the agent's there but accepts it in a `privileged` one; the chart's RBAC is enough for
# the real binary (controller and agent run with their ServiceAccount's token against a real
# results etcd) and no more than it needs (kubectl auth can-i --list); helm uninstall.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

HP=$HP_H_ROOT/build/hostpatrol
CHART=$HP_H_ROOT/charts/hostpatrol
NS=hostpatrol-system
AGENT_NS=hostpatrol-agent
T_TIMEOUT=120

helmc() { "$HELM" --kubeconfig "$HP_KUBECONFIG" "$@"; }
# render [HELM-TEMPLATE-FLAGS...]: the chart as `helm install -n hostpatrol-system` would apply it
render() {
  "$HELM" template hostpatrol "$CHART" --namespace "$NS" --kube-version 1.34.0 \
    --set etcd.endpoints=http://etcd.hostpatrol-system.svc:2379 "$@"
}
# as_json: YAML documents on stdin -> one JSON array of the objects (kubectl parses them)
as_json() { kc create --dry-run=client -o json -f - | jq -s '[.[] | if .kind == "List" then .items[] else . end]'; }

setup() {
  hp_h_init
  # helm's own cache, config and data stay in the session dir
  export HELM_CACHE_HOME=$HP_H_DIR/helm/cache HELM_CONFIG_HOME=$HP_H_DIR/helm/config \
    HELM_DATA_HOME=$HP_H_DIR/helm/data
  [ -x "$HELM" ] || { echo "helm not found at $HELM (run: make tools)"; return 1; }
  if [ ! -x "$HP" ]; then make -C "$HP_H_ROOT" build/hostpatrol > /dev/null || return 1; fi
  hp_h_control_plane || return 1
  hp_h_etcd res 3.6 || return 1
  ETCD_HOSTPORT=${HP_ETCD_URL[res]#http://}
  export ETCD_HOSTPORT
}

t_on_fail() {
  local f
  for f in "$HP_H_DIR"/sa-controller.log "$HP_H_DIR"/sa-agent.log; do
    [ -f "$f" ] && { echo "--- $f (tail)"; tail -n 15 "$f"; }
  done
  kc get hi -A -o custom-columns=NS:.metadata.namespace,NAME:.metadata.name,STATUS:.status --no-headers 2>&1 | cut -c1-600
}

test_helm_lint_and_render() {
  local out
  out=$("$HELM" lint "$CHART" --set etcd.endpoints=http://etcd:2379 2>&1) || t_fail "helm lint: $out"
  t_contains "$out" "0 chart(s) failed"
  # nothing beyond the "icon is recommended" info
  t_eq "$(grep -E '^\[(INFO|WARNING|ERROR)\]' <<< "$out" | grep -v 'icon is recommended')" "" "lint findings"
  out=$("$HELM" lint "$CHART" --strict --set etcd.bundled.enabled=true \
    --set metrics.serviceMonitor.enabled=true --set metrics.prometheusRule.enabled=true \
    --set etcd.tls.secretName=etcd-tls --set etcd.auth.secretName=etcd-auth \
    --set metrics.certSecretName=metrics-tls --set networkPolicy.enabled=true \
    --set 'networkPolicy.metricsFrom[0].namespaceSelector.matchLabels.team=monitoring' \
    --set agent.namespace=$AGENT_NS --set agent.createNamespace=true 2>&1) || t_fail "helm lint (all options): $out"
  # without an etcd the chart refuses to render, and says why
  out=$("$HELM" template hostpatrol "$CHART" --kube-version 1.34.0 2>&1) && t_fail "rendered without etcd.endpoints"
  t_contains "$out" "etcd.endpoints is required"
  # the schema rejects wrong types and values
  out=$(render --set controller.replicas=two 2>&1) && t_fail "schema accepted replicas=two"
  t_contains "$out" "replicas"
  out=$(render --set controller.logLevel=loud 2>&1) && t_fail "schema accepted logLevel=loud"
  t_contains "$out" "logLevel"
  out=$(render --set etcd.endpoints=etcd:2379 2>&1) && t_fail "schema accepted an endpoint without scheme"
  # default render: exactly these objects
  local kinds
  kinds=$(render | grep -E '^kind: ' | sort | uniq -c | awk '{print $3 "=" $1}' | paste -sd' ')
  t_eq "$kinds" "ClusterRole=3 ClusterRoleBinding=2 DaemonSet=1 Deployment=1 Lease=1 Role=1 RoleBinding=1 Service=1 ServiceAccount=2"
  # every option on: TLS and auth reach both binaries, the bundled etcd becomes the endpoint
  out=$(render --set etcd.endpoints= --set etcd.bundled.enabled=true --set metrics.serviceMonitor.enabled=true \
    --set metrics.prometheusRule.enabled=true --set etcd.tls.secretName=etcd-tls \
    --set etcd.auth.secretName=etcd-auth --set agent.namespace=$AGENT_NS --set agent.createNamespace=true)
  for k in ServiceMonitor PrometheusRule StatefulSet Namespace; do t_contains "$out" "kind: $k"; done
  # the ServiceMonitor scrapes over https with a bearer token, accepting the self-signed cert
  local sm
  sm=$(render --set metrics.serviceMonitor.enabled=true --show-only templates/servicemonitor.yaml |
    grep -E '^ *(- port|scheme|bearerTokenFile|insecureSkipVerify):' | sed 's/^ *//' | paste -sd' ')
  t_eq "$sm" "- port: https scheme: https bearerTokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token insecureSkipVerify: true"
  # the NetworkPolicy: metrics only from the listed peers, health from anywhere
  local opt
  opt=$(render --set networkPolicy.enabled=true \
    --set 'networkPolicy.metricsFrom[0].namespaceSelector.matchLabels.team=monitoring' | as_json)
  t_eq "$(jq -c '.[] | select(.kind == "NetworkPolicy") | .spec.ingress |
    map([(.from // [] | map(.namespaceSelector.matchLabels.team)), (.ports | map(.port))])' <<< "$opt")" \
    '[[["monitoring"],["https"]],[[],["health"]]]'
  # a cert Secret becomes --metrics-cert-dir
  opt=$(render --set metrics.certSecretName=metrics-tls | as_json)
  t_eq "$(jq -r '.[] | select(.kind == "Deployment") | .spec.template.spec.volumes[] |
    select(.name == "metrics-tls") | .secret.secretName' <<< "$opt")" metrics-tls
  t_eq "$(grep -c -- '- /etc/hostpatrol/etcd-tls/tls.key' <<< "$out")" 2 "TLS key flag in controller and agent"
  t_eq "$(grep -c -F -- "- \$(ETCD_USER)" <<< "$out")" 2 "etcd user in controller and agent"
  t_eq "$(grep -c 'name: HOSTPATROL_ETCD_PASSWORD' <<< "$out")" 2 "etcd password env in controller and agent"
  t_eq "$(grep -c -- '- "http://hostpatrol-etcd.hostpatrol-system.svc:2379"' <<< "$out")" 2 "bundled endpoint"
  t_contains "$out" "NOT FOR PRODUCTION"
  t_contains "$out" "namespace: $AGENT_NS"
}

test_crds_copy_is_identical_to_crd() {
  t_ok cmp "$HP_H_ROOT/crd/hostpatrol.io_hostinspections.yaml" "$CHART/crds/hostpatrol.io_hostinspections.yaml"
  t_eq "$(find "$CHART/crds" -type f | wc -l)" 1 "one CRD in crds/"
}

test_manifests_are_the_chart_rendered() {
  local d=$HP_H_DIR/manifests-rendered out
  HELM=$HELM bash "$CHART/render-manifests.sh" "$d" || t_fail "render-manifests.sh failed"
  out=$(diff -r "$HP_H_ROOT/manifests" "$d" 2>&1) ||
    t_fail "manifests/ differs from the chart (run charts/hostpatrol/render-manifests.sh): $(head -c 3000 <<< "$out")"
  t_eq "$(cd "$HP_H_ROOT/manifests" && printf '%s ' * | sed 's/ $//')" \
    "agent.yaml controller.yaml crd.yaml kustomization.yaml namespace.yaml rbac.yaml service.yaml"
  # kustomize builds it, and the objects parse
  t_ok kc kustomize "$HP_H_ROOT/manifests" > "$HP_H_DIR/kustomized.yaml"
  t_eq "$(grep -c '^kind: ' "$HP_H_DIR/kustomized.yaml")" 15 "objects in manifests/"
}

test_rbac_has_no_wildcards_and_pods_are_restricted() {
  local j
  j=$(render --set etcd.tls.secretName=etcd-tls --set etcd.auth.secretName=etcd-auth | as_json) ||
    t_fail "rendered YAML does not parse"
  t_ge "$(jq 'length' <<< "$j")" 11
  # no '*' anywhere in a rule
  t_eq "$(jq '[.[] | select(.kind == "Role" or .kind == "ClusterRole") | .rules[] |
    (.apiGroups + .resources + .verbs + (.resourceNames // []) + (.nonResourceURLs // []))[] |
    select(contains("*"))] | length' <<< "$j")" 0 "wildcards in RBAC rules"
  # the controller: restricted Pod Security, at pod and container level
  local pod
  pod=$(jq -c '.[] | select(.kind == "Deployment") | .spec.template.spec' <<< "$j")
  t_eq "$(jq -c '[.securityContext.runAsNonRoot, .securityContext.seccompProfile.type, .hostPID // false, .hostNetwork // false]' <<< "$pod")" \
    '[true,"RuntimeDefault",false,false]'
  t_eq "$(jq '[.containers[], (.initContainers // [])[]] | length' <<< "$pod")" 1
  t_eq "$(jq -c '[.containers[], (.initContainers // [])[]] | map(.securityContext |
    [.runAsNonRoot, .runAsUser, .allowPrivilegeEscalation, .readOnlyRootFilesystem,
     .capabilities.drop, (.capabilities.add // []), .seccompProfile.type, .privileged // false]) | unique' <<< "$pod")" \
    '[[true,65532,false,true,["ALL"],[],"RuntimeDefault",false]]'
  # only emptyDir and Secret volumes; the state dir and /tmp writable
  t_eq "$(jq -c '[.volumes[] | del(.name) | keys[0]] | unique' <<< "$pod")" '["emptyDir","secret"]'
  t_eq "$(jq -c '[.containers[0].volumeMounts[] | .mountPath] | sort' <<< "$pod")" \
    '["/etc/hostpatrol/etcd-tls","/tmp","/var/lib/hostpatrol"]'
  t_eq "$(jq -r '.containers[0].args | join(" ")' <<< "$pod")" \
    "controller --leader-elect --leader-elect-namespace $NS --leader-elect-id hostpatrol-controller --etcd-endpoints http://etcd.hostpatrol-system.svc:2379 --etcd-prefix /hostpatrol/ --etcd-transport grpc --etcd-ca-file /etc/hostpatrol/etcd-tls/ca.crt --etcd-cert-file /etc/hostpatrol/etcd-tls/tls.crt --etcd-key-file /etc/hostpatrol/etcd-tls/tls.key --etcd-user \$(ETCD_USER) --node-checks-namespaces $NS --probe-deny 169.254.0.0/16,fe80::/10,fd00:ec2::/32,100.100.100.200/32,168.63.129.16/32,metadata.google.internal,metadata.goog --max-probes-per-inspection 1024 --max-probes-in-flight 512 --max-probes-in-flight-per-namespace 256 --max-sockets-per-run 256 --metrics-bind-address :8443 --metrics-secure=true --dashboard=true --health-probe-bind-address :8081 --state-dir /var/lib/hostpatrol --max-concurrent-reconciles 4 --log-level info --log-format json"
  t_eq "$(jq -c '.containers[0] | [.livenessProbe.httpGet.path, .readinessProbe.httpGet.path, (.ports[] | select(.name == "health") | .containerPort)]' <<< "$pod")" \
    '["/healthz","/readyz",8081]'
  t_eq "$(jq -r '.[] | select(.kind == "Deployment") | .spec.replicas' <<< "$j")" 2
  # the agent: host paths read-only, but otherwise as locked down as the controller
  pod=$(jq -c '.[] | select(.kind == "DaemonSet") | .spec.template.spec' <<< "$j")
  t_eq "$(jq -c '.containers[0].securityContext | [.runAsNonRoot, .allowPrivilegeEscalation, .readOnlyRootFilesystem, .capabilities.drop, .privileged // false]' <<< "$pod")" \
    '[true,false,true,["ALL"],false]'
  t_eq "$(jq -c '[.containers[0].volumeMounts[] | select(.mountPath | startswith("/host")) | [.mountPath, .readOnly]]' <<< "$pod")" \
    '[["/host",true],["/host/proc",true]]'
  t_eq "$(jq -c '[.volumes[] | select(.hostPath) | .hostPath.path]' <<< "$pod")" '["/","/proc"]'
  t_eq "$(jq -c '.tolerations' <<< "$pod")" '[{"operator":"Exists"}]'
  t_eq "$(jq -c '.containers[0].env[0].valueFrom.fieldRef.fieldPath' <<< "$pod")" '"spec.nodeName"'
}

test_helm_install_and_pod_security_admission() {
  kc create namespace $NS > /dev/null
  kc label namespace $NS pod-security.kubernetes.io/enforce=restricted > /dev/null
  kc create namespace $AGENT_NS > /dev/null
  kc label namespace $AGENT_NS pod-security.kubernetes.io/enforce=privileged > /dev/null
  local out
  out=$(helmc install hostpatrol "$CHART" -n $NS --set "etcd.endpoints=${HP_ETCD_URL[res]}" \
    --set agent.namespace=$AGENT_NS 2>&1) || t_fail "helm install: $out"
  t_contains "$out" "STATUS: deployed"
  t_contains "$out" "pod-security.kubernetes.io/enforce=privileged"
  t_ok kc wait --for condition=Established --timeout=60s crd/hostinspections.hostpatrol.io > /dev/null
  t_ok kc -n $NS get serviceaccount/hostpatrol-controller deployment/hostpatrol-controller \
    service/hostpatrol-controller-metrics role/hostpatrol-controller-leader-election > /dev/null
  t_ok kc -n $AGENT_NS get serviceaccount/hostpatrol-agent daemonset/hostpatrol-agent > /dev/null
  t_ok kc get clusterrole/hostpatrol-controller clusterrole/hostpatrol-agent > /dev/null
  t_not kc -n $NS get daemonset hostpatrol-agent
  # pods from the installed templates, through the real admission chain (Pod Security included)
  local ctl agent
  ctl=$(kc -n $NS get deployment hostpatrol-controller -o json | pod_from_template $NS)
  agent=$(kc -n $AGENT_NS get daemonset hostpatrol-agent -o json | pod_from_template $AGENT_NS)
  out=$(kc create --dry-run=server -f - <<< "$ctl" 2>&1) || t_fail "restricted namespace rejects the controller: $out"
  # the agent mounts host paths: rejected by `restricted` (expected), accepted by `privileged`
  out=$(kc create --dry-run=server -f - <<< "$(jq --arg ns $NS '.metadata.namespace = $ns' <<< "$agent")" 2>&1) &&
    t_fail "a restricted namespace accepted the agent's pod"
  t_contains "$out" 'violates PodSecurity "restricted:latest"'
  t_contains "$out" 'volumes "host-root", "host-proc" use restricted volume type "hostPath"'
  out=$(kc create --dry-run=server -f - <<< "$agent" 2>&1) || t_fail "privileged namespace rejects the agent: $out"
  # the agent is still not root, not privileged: `baseline` rejects it only for the host paths
  kc create namespace hp-baseline > /dev/null
  kc label namespace hp-baseline pod-security.kubernetes.io/enforce=baseline > /dev/null
  out=$(kc create --dry-run=server -f - <<< "$(jq '.metadata.namespace = "hp-baseline"' <<< "$agent")" 2>&1) &&
    t_fail "baseline accepted host paths"
  t_eq "$(grep -o 'violates PodSecurity "baseline:latest": [^(]*' <<< "$out")" 'violates PodSecurity "baseline:latest": hostPath volumes ' \
    "baseline objects only to the host paths"
  # the bundled etcd (not for production) also runs under `restricted`
  local etcd
  etcd=$(render --set etcd.endpoints= --set etcd.bundled.enabled=true | as_json |
    jq '.[] | select(.kind == "StatefulSet")' | pod_from_template $NS)
  out=$(kc create --dry-run=server -f - <<< "$etcd" 2>&1) || t_fail "restricted namespace rejects the bundled etcd: $out"
}

# pod_from_template NS: a workload (JSON on stdin) -> a Pod of its template in NS
pod_from_template() {
  jq --arg ns "$1" '{apiVersion: "v1", kind: "Pod",
    metadata: {name: "pss-check", namespace: $ns, labels: .spec.template.metadata.labels},
    spec: .spec.template.spec}'
}

# token_kubeconfig SA-NAMESPACE SA FILE: a kubeconfig authenticating as that ServiceAccount
token_kubeconfig() {
  local token
  token=$(kc -n "$1" create token "$2" --duration=10m) || return 1
  sed -e '/client-certificate:/d' -e "s#client-key: .*#token: $token#" "$HP_KUBECONFIG" > "$3"
}

cond_is() {
  [ "$(kc -n hp-chart get hi "$1" -o jsonpath="{.status.conditions[?(@.type==\"$2\")].status}")" = "$3" ]
}
result_has() { [[ $(ec get --print-value-only "/hostpatrol/results/hp-chart/$1") == *"$2"* ]]; }
lease_held() {
  [ -n "$(kc -n "$NS" get lease hostpatrol-controller -o jsonpath='{.spec.holderIdentity}')" ]
}
has_events() { [ -n "$(kc -n hp-chart get events --field-selector "involvedObject.name=$1" -o name)" ]; }
no_result() { [ -z "$(ec get --keys-only --prefix "/hostpatrol/results/hp-chart/$1")" ]; }
hi_gone() { ! kc -n hp-chart get hi "$1" > /dev/null 2>&1; }
no_denials() {
  # 403 as a status, not inside a number (a log line may name a port like 40369)
  t_not grep -q -i -E 'forbidden|"code":403([^0-9]|$)| 403([^0-9]|$)' "$1"
}

test_controller_service_account_rbac_is_enough() {
  kc create namespace hp-chart > /dev/null 2>&1 || true
  t_ok token_kubeconfig $NS hostpatrol-controller "$HP_H_DIR/kc-controller"
  hp_h_spawn sa-controller "$HP" controller --kubeconfig "$HP_H_DIR/kc-controller" --leader-elect \
    --leader-elect-namespace $NS --etcd-endpoints "${HP_ETCD_URL[res]}" --log-level debug \
    --metrics-bind-address 127.0.0.1:0 --health-probe-bind-address 127.0.0.1:0 \
    --state-dir "$HP_H_DIR/state-controller"
  local pid=$HP_H_LASTPID
  kc apply -f - > /dev/null <<EOF
apiVersion: hostpatrol.io/v1alpha1
kind: HostInspection
metadata: {name: etcd-health, namespace: hp-chart}
spec:
  interval: 3s
  timeout: 2s
  checks:
    - {name: health, http: {url: "http://$ETCD_HOSTPORT/health", expectStatus: [200]}}
---
apiVersion: hostpatrol.io/v1alpha1
kind: HostInspection
metadata: {name: closed-port, namespace: hp-chart}
spec:
  interval: 3s
  timeout: 1s
  checks:
    - {name: svc, http: {url: "http://127.0.0.1:$(hp_h_port)/", expectStatus: [200]}}
EOF
  t_eventually 30 lease_held
  t_eventually 30 cond_is etcd-health Ready True
  t_ok result_has etcd-health/health/- '"status":"OK"'
  t_contains "$(kc -n hp-chart get hi etcd-health -o jsonpath='{.metadata.finalizers}')" hostpatrol.io/cleanup
  # a failing check: Degraded, and an Event on the transition
  t_eventually 30 cond_is closed-port Degraded True
  t_eventually 20 has_events closed-port
  # the finalizer's cleanup (patch) works too
  kc -n hp-chart delete hi etcd-health --wait=false > /dev/null
  t_eventually 30 hi_gone etcd-health
  t_ok no_result etcd-health/
  no_denials "$HP_H_DIR/sa-controller.log"
  # /metrics: the controller's own RBAC makes the TokenReview and SubjectAccessReview, and the
  # chart's metrics-reader ClusterRole is what a scraper needs
  local port reader idle code
  port=$(grep -o 'serving /metrics, /ws on [^ ]* (port [0-9]*' "$HP_H_DIR/sa-controller.log" | grep -o '[0-9]*$')
  kc -n hp-chart create serviceaccount scraper > /dev/null
  kc -n hp-chart create serviceaccount idle > /dev/null
  kc create clusterrolebinding hp-chart-scraper --clusterrole=hostpatrol-metrics-reader \
    --serviceaccount=hp-chart:scraper > /dev/null
  reader=$(kc -n hp-chart create token scraper)
  idle=$(kc -n hp-chart create token idle)
  code=$(curl -sk -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $idle" "https://127.0.0.1:$port/metrics")
  t_eq "$code" 403 "/metrics without the metrics-reader binding"
  t_contains "$(curl -sk -H "Authorization: Bearer $reader" "https://127.0.0.1:$port/metrics")" hostpatrol_build_info
  no_denials "$HP_H_DIR/sa-controller.log"
  kill -TERM "$pid"
  local rc=0
  wait "$pid" || rc=$?
  t_eq "$rc" 0 "controller exit status after SIGTERM (lease released)"
  no_denials "$HP_H_DIR/sa-controller.log"
}

test_agent_service_account_rbac_is_enough() {
  kc create namespace hp-chart > /dev/null 2>&1 || true
  kc apply -f - > /dev/null <<EOF
apiVersion: v1
kind: Node
metadata: {name: n1, labels: {hostpatrol-chart-test: "yes"}}
EOF
  kc apply -f - > /dev/null <<EOF
apiVersion: hostpatrol.io/v1alpha1
kind: HostInspection
metadata: {name: node-mem, namespace: hp-chart}
spec:
  interval: 2s
  timeout: 1s
  nodeSelector: {matchLabels: {hostpatrol-chart-test: "yes"}}
  checks:
    - {name: memory, memory: {warnAvailablePercent: 1, critAvailablePercent: 0}}
EOF
  t_ok token_kubeconfig $AGENT_NS hostpatrol-agent "$HP_H_DIR/kc-agent"
  hp_h_spawn sa-agent "$HP" agent --kubeconfig "$HP_H_DIR/kc-agent" --node-name n1 --host-root / \
    --etcd-endpoints "${HP_ETCD_URL[res]}" --log-level debug --metrics-bind-address 127.0.0.1:0 \
    --health-probe-bind-address 127.0.0.1:0 --state-dir "$HP_H_DIR/state-agent"
  local pid=$HP_H_LASTPID
  t_eventually 30 result_has node-mem/memory/n1 '"status":"OK"'
  t_contains "$(ec get --print-value-only /hostpatrol/results/hp-chart/node-mem/memory/n1)" '"source":"agent/n1"'
  no_denials "$HP_H_DIR/sa-agent.log"
  kill -TERM "$pid"
  wait "$pid" 2> /dev/null || true
}

# can_i_pairs SA-NAMESPACE SA: "resource verb" pairs the ServiceAccount may use in $NS, one per
# line; can_i_extra: without those every ServiceAccount has (one with no bindings at all)
can_i_pairs() {
  kc auth can-i --list -n $NS --as="system:serviceaccount:$1:$2" | tail -n +2 |
    awk '{ r = $1; if (r ~ /^\[/) next; v = $0; sub(/.*\[/, "", v); sub(/\].*/, "", v);
           n = split(v, a, " "); for (i = 1; i <= n; i++) print r, a[i] }' | sort -u
}
can_i_extra() {
  comm -23 <(can_i_pairs "$1" "$2") <(can_i_pairs "$1" "nobody-$RANDOM")
}

test_service_accounts_can_do_exactly_what_they_need() {
  local got want as_ctl=system:serviceaccount:$NS:hostpatrol-controller
  got=$(can_i_extra $NS hostpatrol-controller)
  want=$(printf '%s\n' \
    'hostinspections.hostpatrol.io get' 'hostinspections.hostpatrol.io list' \
    'hostinspections.hostpatrol.io watch' 'hostinspections.hostpatrol.io patch' \
    'hostinspections.hostpatrol.io/status get' 'hostinspections.hostpatrol.io/status patch' \
    'events create' 'nodes get' 'nodes list' \
    'leases.coordination.k8s.io get' 'leases.coordination.k8s.io create' \
    'leases.coordination.k8s.io update' \
    'tokenreviews.authentication.k8s.io create' 'subjectaccessreviews.authorization.k8s.io create' | sort -u)
  t_eq "$got" "$want" "controller permissions in $NS"
  # the Lease rights stop at the release namespace; the rest is cluster-wide
  t_eq "$(kc auth can-i update leases.coordination.k8s.io -n default --as="$as_ctl")" no
  t_eq "$(kc auth can-i patch hostinspections.hostpatrol.io -n default --as="$as_ctl")" yes
  t_eq "$(kc auth can-i get secrets -n $NS --as="$as_ctl")" no
  got=$(can_i_extra $AGENT_NS hostpatrol-agent)
  want=$(printf '%s\n' 'hostinspections.hostpatrol.io get' 'hostinspections.hostpatrol.io list' \
    'hostinspections.hostpatrol.io watch' 'nodes get' \
    'tokenreviews.authentication.k8s.io create' 'subjectaccessreviews.authorization.k8s.io create' | sort -u)
  t_eq "$got" "$want" "agent permissions"
  t_eq "$(kc auth can-i patch hostinspections.hostpatrol.io/status -n default \
    --as=system:serviceaccount:$AGENT_NS:hostpatrol-agent)" no
}

test_helm_uninstall_removes_the_release() {
  local out
  out=$(helmc uninstall hostpatrol -n $NS 2>&1) || t_fail "helm uninstall: $out"
  t_not kc -n $NS get serviceaccount hostpatrol-controller
  t_not kc -n $AGENT_NS get daemonset hostpatrol-agent
  t_not kc get clusterrole hostpatrol-controller
  t_not kc get clusterrolebinding hostpatrol-agent
  t_not kc -n $NS get lease hostpatrol-controller
  # helm never deletes what crds/ installed: the HostInspections survive an uninstall
  t_ok kc get crd hostinspections.hostpatrol.io
}

t_main
