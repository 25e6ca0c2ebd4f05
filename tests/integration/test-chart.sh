#!/usr/bin/env bash
# test-chart.sh - the Helm chart charts/hostpatrol and the plain manifests/ rendered from it.
# Static: helm lint, renders (and refuses to render without an etcd), crds/ is a copy of crd/,
# manifests/ is exactly what the chart renders, RBAC without wildcards, restricted security
# contexts. Against the REAL kube-apiserver: helm install (no kubelet: pods never start); Pod
# Security admission accepts the controller's pod template in a `restricted` namespace and
# rejects the agent's there but accepts it in a `privileged` one; the chart's RBAC is enough for
# the real binary (controller and agent run with their ServiceAccount's token against a real
# results etcd) and no more than it needs (kubectl auth can-i --list); helm uninstall.
# The Grafana dashboard (dashboards/hostpatrol.json, a ConfigMap for Grafana's dashboard sidecar,
# off by default): none in the default render; enabled, exactly one, labelled for the sidecar as
# values say, accepted by the real apiserver, its JSON the file's and a dashboard; every
# expression valid PromQL (promtool check rules); every metric, label and label value a panel or
# variable queries exposed by a REAL controller's /metrics (scraped over https with a
# metrics-reader token while HostInspections commit OK and CRIT results), rate() and increase()
# only on counters; and a REAL Prometheus scraping that controller answers every panel's query.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

HP=$HOSTPATROL
CHART=$HP_H_ROOT/charts/hostpatrol
DASHBOARD=$CHART/dashboards/hostpatrol.json
NS=hostpatrol-system
AGENT_NS=hostpatrol-agent
T_TIMEOUT=180

# render [HELM-TEMPLATE-FLAGS...]: the chart as `helm install -n hostpatrol-system` would apply it
render() {
  "$HELM" template hostpatrol "$CHART" --namespace "$NS" --kube-version 1.34.0 \
    --set etcd.endpoints=http://etcd.hostpatrol-system.svc:2379 "$@"
}
# as_json: YAML documents on stdin -> one JSON array of the objects (kubectl parses them)
as_json() { kc create --dry-run=client -o json -f - | jq -s '[.[] | if .kind == "List" then .items[] else . end]'; }

setup() {
  hp_h_init
  helm_home
  [ -x "$HELM" ] || { echo "helm not found at $HELM (run: make tools)"; return 1; }
  command -v promtool > /dev/null || { echo "promtool not found (Debian package prometheus: make deps)"; return 1; }
  if [ ! -x "$HP" ]; then make -C "$HP_H_ROOT" build/hostpatrol > /dev/null || return 1; fi
  hp_h_control_plane || return 1
  hp_h_etcd res 3.6 || return 1
  ETCD_HOSTPORT=${HP_ETCD_URL[res]#http://}
  export ETCD_HOSTPORT
}

t_on_fail() {
  show_tails 15 "$HP_H_DIR"/{sa-controller,sa-agent,dash-controller,prometheus}.log
  show_his
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
    --set metrics.certSecretName=metrics-tls --set networkPolicy.enabled=true --set grafanaDashboard.enabled=true \
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
    --set metrics.prometheusRule.enabled=true --set etcd.tls.secretName=etcd-tls --set grafanaDashboard.enabled=true \
    --set etcd.auth.secretName=etcd-auth --set agent.namespace=$AGENT_NS --set agent.createNamespace=true)
  for k in ServiceMonitor PrometheusRule StatefulSet Namespace ConfigMap; do t_contains "$out" "kind: $k"; done
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

lease_held() { [ -n "$(lease_holder "$NS")" ]; }
has_events() { [ -n "$(kc -n hp-chart get events --field-selector "involvedObject.name=$1" -o name)" ]; }
no_denials() {
  # 403 as a status, not inside a number (a log line may name a port like 40369)
  t_not grep -q -i -E 'forbidden|"code":403([^0-9]|$)| 403([^0-9]|$)' "$1"
}

test_controller_service_account_rbac_is_enough() {
  kc create namespace hp-chart > /dev/null 2>&1 || true
  t_ok token_kubeconfig $NS hostpatrol-controller "$HP_H_DIR/kc-controller"
  start_hp -w sa-controller controller --kubeconfig "$HP_H_DIR/kc-controller" --leader-elect \
    --leader-elect-namespace $NS
  local pid=$HP_H_LASTPID
  apply <<EOF
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
  t_eventually 30 cond_is hp-chart etcd-health Ready True
  t_ok result_has hp-chart etcd-health health - '"status":"OK"'
  t_contains "$(field hp-chart etcd-health .metadata.finalizers)" hostpatrol.io/cleanup
  # a failing check: Degraded, and an Event on the transition
  t_eventually 30 cond_is hp-chart closed-port Degraded True
  t_eventually 20 has_events closed-port
  # the finalizer's cleanup (patch) works too
  kc -n hp-chart delete hi etcd-health --wait=false > /dev/null
  t_eventually 30 gone hp-chart etcd-health
  t_ok no_result hp-chart etcd-health
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
  apply <<EOF
apiVersion: v1
kind: Node
metadata: {name: n1, labels: {hostpatrol-chart-test: "yes"}}
EOF
  apply <<EOF
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
  start_hp -w sa-agent agent --kubeconfig "$HP_H_DIR/kc-agent" --node-name n1 --host-root /
  local pid=$HP_H_LASTPID
  t_eventually 30 result_has hp-chart node-mem memory n1 '"status":"OK"'
  t_contains "$(result hp-chart node-mem memory n1)" '"source":"agent/n1"'
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

# ---------- the Grafana dashboard ----------

# dash_controller: once, a controller reconciling namespace hp-graf (a HostInspection whose runs
# commit an OK result, etcd's /health, and a CRIT one, a closed port, every 2 s), its /metrics
# secure as the chart runs it; a scraper token bound to the chart's metrics-reader ClusterRole
dash_controller() {
  [ -f "$HP_H_DIR/dash.port" ] && return 0
  local port
  port=$(hp_h_port)
  # the CRD: from helm install (crds/ stays after the uninstall), or, run alone, from crd/
  kc get crd hostinspections.hostpatrol.io > /dev/null 2>&1 || hp_h_crd || return 1
  render --show-only templates/rbac.yaml | as_json |
    jq '.[] | select(.metadata.name == "hostpatrol-metrics-reader")' | apply || return 1
  kc create namespace hp-graf > /dev/null || return 1
  kc -n hp-graf create serviceaccount scraper > /dev/null || return 1
  kc create clusterrolebinding hp-graf-scraper --clusterrole=hostpatrol-metrics-reader \
    --serviceaccount=hp-graf:scraper > /dev/null || return 1
  kc -n hp-graf create token scraper --duration=1h > "$HP_H_DIR/dash-token" || return 1
  start_hp -w dash-controller controller --namespace hp-graf --metrics-bind-address "127.0.0.1:$port"
  apply <<EOF || return 1
apiVersion: hostpatrol.io/v1alpha1
kind: HostInspection
metadata: {name: etcd-health, namespace: hp-graf}
spec:
  interval: 2s
  timeout: 1s
  targets:
    - {name: local, address: 127.0.0.1}
  checks:
    - {name: health, http: {url: "http://$ETCD_HOSTPORT/health", expectStatus: [200]}}
    - {name: closed, tcp: {port: $(hp_h_port)}}
EOF
  echo "$port" > "$HP_H_DIR/dash.port"
}

# scrape: the controller's /metrics, read with the metrics-reader token
scrape() {
  curl -sk --max-time 10 -f -H "Authorization: Bearer $(cat "$HP_H_DIR/dash-token")" \
    "https://127.0.0.1:$(cat "$HP_H_DIR/dash.port")/metrics"
}
# runs_done N: at least N runs committed, and at least N CRIT tcp and N OK http results counted
runs_done() {
  local m
  m=$(scrape) || return 1
  awk -v n="$1" '
    $1 == "hostpatrol_runs_total{outcome=\"committed\"}" && $2 >= n { a = 1 }
    $1 == "hostpatrol_check_results_total{kind=\"tcp\",status=\"CRIT\"}" && $2 >= n { b = 1 }
    $1 == "hostpatrol_check_results_total{kind=\"http\",status=\"OK\"}" && $2 >= n { c = 1 }
    END { exit !(a && b && c) }' <<< "$m"
}

# exprs FILE: "panel title<TAB>expr" for every target of every panel (rows have none)
exprs() { jq -r '.panels[] | select(.type != "row") | .title as $t | .targets[] | [$t, .expr] | @tsv' "$1"; }

# check_queries DASHBOARD METRICS: every query of DASHBOARD against a /metrics exposition: the
# metric names, the labels and values matched, the labels grouped by, rate()/increase() on
# counters only and histogram_quantile() on _bucket series only. Prints one line per problem and
# fails when there is one; else prints "N expressions, M metric names".
check_queries() {
  python3 - "$1" "$2" << 'PY'
import json, re, sys

dash = json.load(open(sys.argv[1]))
# the exposition: sample name -> label sets; family name -> TYPE
series, types = {}, {}
for line in open(sys.argv[2]):
    line = line.strip()
    if line.startswith("# TYPE "):
        _, _, fam, typ = line.split(None, 3)
        types[fam] = typ
    elif line and not line.startswith("#"):
        m = re.match(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s', line)
        labels = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        series.setdefault(m.group(1), []).append(labels)

def family_type(name):
    if name in types:
        return types[name]
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and types.get(name[: -len(suffix)]) == "histogram":
            return "histogram" + suffix
    return None

# labels Prometheus (and the prometheus-operator's ServiceMonitor) attaches to every target
TARGET = {"namespace", "job", "instance", "pod", "service", "endpoint", "container"}
AGGR = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
        "bottomk", "topk", "quantile", "limitk", "limit_ratio"}
GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
KEYWORDS = {"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan", "start", "end"}
TOKEN = re.compile(r'\s*("(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`|[0-9.][0-9a-zA-Z_.+]*'
                   r'|[a-zA-Z_:][a-zA-Z0-9_:]*|=~|!~|!=|==|>=|<=|[-+*/%^<>=,(){}\[\]@])')
# Grafana's interval variables, as PromQL durations
GRAFANA = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h"}

def tokens(expr):
    for k, v in GRAFANA.items():
        expr = expr.replace(k, v)
    pos, out = 0, []
    while expr[pos:].strip():
        m = TOKEN.match(expr, pos)
        if not m:
            raise ValueError("cannot read %r" % expr[pos:])
        out.append(m.group(1))
        pos = m.end()
    return out

def unquote(s):
    return s[1:-1].encode().decode("unicode_escape") if s[0] in "\"'" else s[1:-1]

def selectors(expr):
    """(metric, [(label, op, value)], enclosing functions) of each selector; grouping labels"""
    t, i, stack, pending, sels, grouping = tokens(expr), 0, [], None, [], set()
    while i < len(t):
        tok = t[i]
        nxt = t[i + 1] if i + 1 < len(t) else ""
        if tok in GROUPING:
            if nxt == "(":
                j = t.index(")", i)
                grouping.update(x for x in t[i + 2:j] if x != ",")
                i = j
        elif tok in AGGR and nxt in ("(", "by", "without"):
            pending = tok
        elif tok in KEYWORDS:
            pass
        elif re.match(r"[a-zA-Z_:]", tok) and nxt == "(":
            pending = tok
        elif re.match(r"[a-zA-Z_:]", tok) or tok == "{":
            name, matchers = (None, []) if tok == "{" else (tok, [])
            if tok != "{" and nxt == "{":
                i += 1
            if t[i] == "{":
                j = t.index("}", i)
                body = [x for x in t[i + 1:j] if x != ","]
                for k in range(0, len(body), 3):
                    matchers.append((body[k], body[k + 1], unquote(body[k + 2])))
                i = j
            for lab, op, val in matchers:
                if lab == "__name__" and op == "=":
                    name = val
            sels.append((name, [m for m in matchers if m[0] != "__name__"], list(stack)))
        elif tok == "(":
            stack.append(pending)
            pending = None
        elif tok == ")":
            stack.pop()
        elif tok == "[":
            i = t.index("]", i)
        i += 1
    return sels, grouping

problems, names, count = [], set(), 0
def check(where, expr, extra_labels=()):
    global count
    count += 1
    try:
        sels, grouping = selectors(expr)
    except (ValueError, IndexError) as e:
        problems.append("%s: cannot parse %r: %s" % (where, expr, e))
        return
    if not any(s[0] for s in sels):
        problems.append("%s: queries no metric: %s" % (where, expr))
    known = set(TARGET)
    for name, matchers, funcs in sels:
        if not name:
            problems.append("%s: a selector without a metric name: %s" % (where, expr))
            continue
        names.add(name)
        if name not in series:
            problems.append("%s: %s is not a series of /metrics" % (where, name))
            continue
        sets = series[name]
        known.update(l for s in sets for l in s)
        for lab, op, val in matchers:
            if lab in TARGET:
                continue
            vals = {s[lab] for s in sets if lab in s}
            if not vals:
                problems.append("%s: %s has no label %s" % (where, name, lab))
            elif op in ("=", "!=") and val not in vals:
                problems.append("%s: %s{%s} has no value %r (it has %s)" % (where, name, lab, val, sorted(vals)))
            elif op in ("=~", "!~") and not any(re.fullmatch(val, v) for v in vals):
                problems.append("%s: %s{%s=~%r} matches no value (it has %s)" % (where, name, lab, val, sorted(vals)))
        typ = family_type(name)
        inner = next((f for f in reversed(funcs) if f), None)
        counter_like = typ in ("counter", "histogram_bucket", "histogram_sum", "histogram_count")
        if inner in ("rate", "irate", "increase") and not counter_like:
            problems.append("%s: %s() of %s, a %s" % (where, inner, name, typ))
        if counter_like and inner not in ("rate", "irate", "increase"):
            problems.append("%s: %s (%s) not inside rate() or increase()" % (where, name, typ))
        if typ == "histogram_bucket" and "histogram_quantile" not in funcs:
            problems.append("%s: %s outside histogram_quantile()" % (where, name))
        if "histogram_quantile" in funcs and typ != "histogram_bucket":
            problems.append("%s: histogram_quantile() over %s, not a _bucket series" % (where, name))
    for lab in set(grouping) | set(extra_labels):
        if lab not in known:
            problems.append("%s: label %s is on none of the series queried" % (where, lab))

for p in dash["panels"]:
    for tg in p.get("targets", []):
        check("panel %r" % p["title"], tg["expr"])
for v in dash["templating"]["list"]:
    if v["type"] == "query":
        q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
        m = re.fullmatch(r"label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)", q)
        if not m:
            problems.append("variable %s: not label_values(SELECTOR, LABEL): %s" % (v["name"], q))
            continue
        check("variable %s" % v["name"], m.group(1), [m.group(2)])
for p in problems:
    print(p)
if problems:
    sys.exit(1)
print("%d expressions, %d metric names" % (count, len(names)))
PY
}

test_grafana_dashboard_off_by_default() {
  local out
  out=$(render) || t_fail "default render failed"
  t_eq "$(grep -c '^kind: ConfigMap' <<< "$out")" 0 "ConfigMaps in the default render"
  t_eq "$(grep -c -e grafana -e 'dashboards/hostpatrol.json' <<< "$out")" 0 "dashboard in the default render"
  # so manifests/ (the default render) has none either
  t_eq "$(grep -rl -e grafana_dashboard -e '"panels"' "$HP_H_ROOT/manifests" | wc -l)" 0 "dashboard in manifests/"
  t_eq "$(sed -n '/^grafanaDashboard:/,/^[a-z]/s/^  enabled: //p' "$CHART/values.yaml")" false "values.yaml default"
}

test_grafana_dashboard_enabled_is_one_labelled_configmap() {
  local j cm
  j=$(render --set grafanaDashboard.enabled=true | as_json) || t_fail "render with the dashboard failed"
  t_eq "$(jq '[.[] | select(.kind == "ConfigMap")] | length' <<< "$j")" 1 "ConfigMaps"
  cm=$(jq -c '.[] | select(.kind == "ConfigMap")' <<< "$j")
  t_eq "$(jq -c '[.metadata.name, .metadata.namespace, .metadata.labels.grafana_dashboard, (.data | keys)]' <<< "$cm")" \
    '["hostpatrol-dashboard","hostpatrol-system","1",["hostpatrol.json"]]'
  # the embedded JSON parses and is exactly the chart's file
  jq -e '.data["hostpatrol.json"] | fromjson' <<< "$cm" > "$HP_H_DIR/embedded.json" || t_fail "embedded JSON does not parse"
  t_eq "$(jq -S . "$HP_H_DIR/embedded.json" | sha256sum)" "$(jq -S . "$DASHBOARD" | sha256sum)" "embedded JSON = $DASHBOARD"
  # a dashboard: identity, the variables, panels with queries on the selected data source
  t_eq "$(jq -c '[.title, .uid, .schemaVersion >= 36, [.templating.list[].name]]' "$DASHBOARD")" \
    '["hostpatrol","hostpatrol",true,["datasource","namespace","job"]]'
  t_eq "$(jq -c '.templating.list[0] | [.type, .query]' "$DASHBOARD")" '["datasource","prometheus"]'
  t_ge "$(jq '[.panels[] | select(.type != "row")] | length' "$DASHBOARD")" 15
  t_eq "$(jq '[.panels[] | select(.type != "row") | select((.targets // []) | length == 0)] | length' "$DASHBOARD")" 0 \
    "panels without targets"
  t_eq "$(jq '[.panels[] | select(.type != "row") | .targets[] | select((.expr // "") == "")] | length' "$DASHBOARD")" 0 \
    "targets without an expression"
  t_eq "$(jq -c '[.panels[] | select(.type != "row") | (.datasource.uid, .targets[].datasource.uid)] | unique' "$DASHBOARD")" \
    '["${datasource}"]'
  t_eq "$(jq '[.panels[].id] | (length == (unique | length))' "$DASHBOARD")" true "panel ids unique"
  t_eq "$(jq '[.panels[].gridPos | select(.x + .w > 24)] | length' "$DASHBOARD")" 0 "panels wider than the grid"
  # every $variable used is one the dashboard defines, or one of Grafana's
  local used defined
  used=$(grep -oE '\$\{?[a-zA-Z_][a-zA-Z0-9_]*' "$DASHBOARD" | tr -d '${' | sort -u)
  defined=$({
    jq -r '.templating.list[].name' "$DASHBOARD"
    printf '%s\n' __rate_interval __range __interval __all
  } | sort -u)
  t_eq "$(comm -23 <(echo "$used") <(echo "$defined"))" "" "undefined variables"
  # the real apiserver accepts the ConfigMap (size, names, labels)
  kc create namespace $NS > /dev/null 2>&1 || true # (helm install made it, unless run alone)
  t_ok kc create --dry-run=server -o name -f - <<< "$cm" > /dev/null
  # the sidecar's label key and value, the namespace, extra labels and annotations from values
  cm=$(render --set grafanaDashboard.enabled=true --set grafanaDashboard.label=dashboards.grafana.example/load \
    --set grafanaDashboard.labelValue=yes --set grafanaDashboard.namespace=monitoring \
    --set grafanaDashboard.labels.team=ops --set grafanaDashboard.annotations.grafana_folder=hostpatrol \
    --show-only templates/grafana-dashboard.yaml | as_json | jq -c '.[0]')
  t_eq "$(jq -c '[.metadata.namespace, .metadata.labels["dashboards.grafana.example/load"], .metadata.labels.team,
    .metadata.labels.grafana_dashboard, .metadata.annotations.grafana_folder]' <<< "$cm")" \
    '["monitoring","yes","ops",null,"hostpatrol"]'
  # the schema refuses what the sidecar could not match
  local out
  out=$(render --set grafanaDashboard.enabled=yes 2>&1) && t_fail "schema accepted enabled=yes"
  t_contains "$out" "grafanaDashboard"
  out=$(render --set grafanaDashboard.enabled=true --set 'grafanaDashboard.label=a b' 2>&1) &&
    t_fail "schema accepted a label key with a space"
  t_contains "$out" "/grafanaDashboard/label"
}

test_grafana_dashboard_expressions_are_valid_promql() {
  # one recording rule per expression (Grafana's interval variables as durations); JSON is YAML
  exprs "$DASHBOARD" | cut -f2 | sed -e 's/\$__rate_interval/1m/g' -e 's/\$__range/1h/g' -e 's/\$__interval/1m/g' |
    jq -R -s '{groups: [{name: "dashboard", rules: ([split("\n")[] | select(. != "")] | to_entries |
      map({record: "hostpatrol:dashboard:q\(.key)", expr: .value}))}]}' > "$HP_H_DIR/rules.yml"
  t_ge "$(jq '.groups[0].rules | length' "$HP_H_DIR/rules.yml")" 40
  local out
  out=$(promtool check rules "$HP_H_DIR/rules.yml" 2>&1) || t_fail "promtool check rules: $out"
  t_contains "$out" "SUCCESS: $(jq '.groups[0].rules | length' "$HP_H_DIR/rules.yml") rules found"
  # and promtool does refuse a broken one
  jq '.groups[0].rules[0].expr |= sub("\\)$"; "")' "$HP_H_DIR/rules.yml" > "$HP_H_DIR/broken.yml"
  t_not promtool check rules "$HP_H_DIR/broken.yml"
}

test_grafana_dashboard_queries_only_what_the_controller_exposes() {
  t_ok dash_controller
  # A replica writes the reconciler's, the batch queue's and the work queue's series once it
  # leads, every label value (kinds x statuses, outcomes) from 0 on: none waits for an event.
  # Runs committed, OK and CRIT results counted: the scrape is of a controller at work.
  t_eventually 90 runs_done 2
  scrape > "$HP_H_DIR/metrics.txt" || t_fail "scrape failed"
  local out
  out=$(promtool check metrics < "$HP_H_DIR/metrics.txt" 2>&1) || t_fail "promtool check metrics: $out"
  out=$(check_queries "$DASHBOARD" "$HP_H_DIR/metrics.txt") || t_fail "dashboard queries vs /metrics: $out"
  t_match "$out" '^[0-9]+ expressions, [0-9]+ metric names$'
  t_ge "$(grep -oE '[0-9]+ metric names' <<< "$out" | cut -d' ' -f1)" 25 "distinct metrics queried"
  echo "# $out, all exposed by the running controller"
  # the check can fail: a histogram queried without _bucket, a label value that does not
  # exist, a metric that is not there, rate() of a gauge, a label nobody has
  jq '(.panels[] | select(.title == "etcd commit latency") | .targets[0].expr) |= sub("_seconds_bucket"; "_seconds")
    | (.panels[] | select(.title == "Runs committed") | .targets[0].expr) |= sub("committed"; "comitted")
    | (.panels[] | select(.title == "Work-queue depth") | .targets[0].expr) |= sub("workqueue_depth"; "work_queue_depth")
    | (.panels[] | select(.title == "Leaders") | .targets[0].expr) |= "sum(rate(hostpatrol_leader[5m]))"
    | (.panels[] | select(.title == "Check results by status") | .targets[0].expr) |= sub("by \\(status\\)"; "by (state)")' \
    "$DASHBOARD" > "$HP_H_DIR/broken.json"
  out=$(check_queries "$HP_H_DIR/broken.json" "$HP_H_DIR/metrics.txt") && t_fail "a broken dashboard passed: $out"
  t_contains "$out" "panel 'etcd commit latency': hostpatrol_etcd_txn_duration_seconds is not a series of /metrics"
  t_contains "$out" "panel 'etcd commit latency': label le is on none of the series queried"
  t_contains "$out" "panel 'Runs committed': hostpatrol_runs_total{outcome} has no value 'comitted'"
  t_contains "$out" "panel 'Work-queue depth': hostpatrol_work_queue_depth is not a series of /metrics"
  t_contains "$out" "panel 'Leaders': rate() of hostpatrol_leader, a gauge"
  t_contains "$out" "panel 'Check results by status': label state is on none of the series queried"
  t_eq "$(grep -c . <<< "$out")" 6 "problems found in the broken dashboard ($out)"
}

# prom_query EXPR: the number of series a query to the test's Prometheus answers (at its now)
# (fails, printing Prometheus' error, when it refuses the query)
prom_query() {
  local out
  out=$(curl -s --max-time 10 "http://127.0.0.1:$PROM_PORT/api/v1/query" --data-urlencode "query=$1") || return 1
  jq -e 'if .status == "success" then .data.result | length else error("\(.errorType): \(.error)") end' <<< "$out"
}
prom_up() { [ "$(prom_query 'up{job="hostpatrol-controller-metrics"} == 1')" = 1 ]; }
# prom_has_samples N: Prometheus holds at least N samples of the controller's runs counter
prom_has_samples() {
  [ "$(curl -sf --max-time 10 "http://127.0.0.1:$PROM_PORT/api/v1/query" \
    --data-urlencode 'query=count_over_time(hostpatrol_runs_total{outcome="committed"}[1m])' |
    jq '.data.result[0].value[1] // "0" | tonumber')" -ge "$1" ]
}

test_grafana_dashboard_a_real_prometheus_answers_every_panel() {
  t_ok dash_controller
  t_eventually 90 runs_done 1
  # Prometheus scrapes the controller as the chart's ServiceMonitor does (https, bearer token,
  # self-signed certificate), with the target labels a ServiceMonitor gives (namespace, job)
  PROM_PORT=$(hp_h_port)
  cat > "$HP_H_DIR/prometheus.yml" << EOF
global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: hostpatrol
    scheme: https
    authorization: {type: Bearer, credentials_file: $HP_H_DIR/dash-token}
    tls_config: {insecure_skip_verify: true}
    static_configs:
      - targets: ["127.0.0.1:$(cat "$HP_H_DIR/dash.port")"]
        labels: {namespace: $NS}
    relabel_configs:
      - {target_label: job, replacement: hostpatrol-controller-metrics}
EOF
  hp_h_spawn prometheus prometheus --config.file="$HP_H_DIR/prometheus.yml" \
    --storage.tsdb.path="$HP_H_DIR/prometheus-data" --web.listen-address="127.0.0.1:$PROM_PORT"
  t_eventually 30 prom_up
  # 15 s of samples: a rate over the interval below sees several
  t_eventually 40 prom_has_samples 15
  # the variables: the namespace and job the controller is scraped with
  t_eq "$(curl -sf "http://127.0.0.1:$PROM_PORT/api/v1/label/namespace/values" --data-urlencode 'match[]=hostpatrol_build_info' -G | jq -c .data)" \
    "[\"$NS\"]" "label_values(hostpatrol_build_info, namespace)"
  t_eq "$(curl -sf "http://127.0.0.1:$PROM_PORT/api/v1/label/job/values" -G \
    --data-urlencode "match[]=hostpatrol_build_info{namespace=~\"$NS\"}" | jq -c .data)" \
    '["hostpatrol-controller-metrics"]' "label_values(hostpatrol_build_info{namespace=~\"\$namespace\"}, job)"
  # every query of every panel, with those variables selected, answers at least one series
  local title expr q n empty=() total=0
  while IFS=$'\t' read -r title expr; do
    q=${expr//\$__rate_interval/10s}
    q=${q//\$__range/1m}
    q=${q//\$namespace/$NS}
    q=${q//\$job/hostpatrol-controller-metrics}
    n=$(prom_query "$q" 2>&1) || t_fail "panel '$title': Prometheus refused $q: $n"
    [ "$n" -ge 1 ] || empty+=("panel '$title': $q")
    total=$((total + 1))
  done < <(exprs "$DASHBOARD")
  [ ${#empty[@]} -eq 0 ] || t_fail "queries without data: $(printf '%s; ' "${empty[@]}")"
  # with another namespace selected, nothing: the variables do filter
  t_eq "$(prom_query 'sum by (status) (rate(hostpatrol_check_results_total{namespace=~"elsewhere", job=~".*"}[10s]))')" 0
  # values, not just series: runs committed, OK and CRIT results counted, an etcd txn latency
  t_ge "$(prom_query 'sum(increase(hostpatrol_runs_total{outcome="committed"}[1m])) > 0')" 1 "runs committed (Prometheus)"
  t_eq "$(prom_query 'sum by (status) (rate(hostpatrol_check_results_total[10s])) > 0' )" 2 "statuses with results (OK, CRIT)"
  t_ge "$(prom_query 'histogram_quantile(0.9, sum by (le) (rate(hostpatrol_etcd_txn_duration_seconds_bucket[10s]))) > 0')" 1 \
    "etcd commit latency p90"
  echo "# a real Prometheus answered all $total panel queries with data"
}


t_main
