#!/usr/bin/env bash
# test-controller.sh - `hostpatrol controller` end to end against the REAL kube-apiserver and a
# real results etcd 3.6: create -> results in etcd and Ready; spec update -> new generation
# observed; failing checks -> Degraded, and back when they recover; a check removed -> its
# results gone; invalid spec -> InvalidSpec without a retry storm; suspend; run-now; node
# conditions through the API; delete -> results gone, then the CR; etcd down -> the finalizer
# stays and says why; SIGTERM -> Lease released, clean exit.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

HP=$HOSTPATROL
T_TIMEOUT=120

setup() {
  setup_cluster hp-test || return 1
  ETCD_HOSTPORT=${HP_ETCD_URL[res]#http://}
  ETCD_PORT=${ETCD_HOSTPORT##*:}
  CLOSED_PORT=$(hp_h_port)
  HEALTH_PORT=$(hp_h_port)
  METRICS_PORT=$(hp_h_port)
  export ETCD_HOSTPORT ETCD_PORT CLOSED_PORT HEALTH_PORT METRICS_PORT
  start_hp main controller --namespace hp-test --health-probe-bind-address "127.0.0.1:$HEALTH_PORT" \
    --metrics-bind-address "127.0.0.1:$METRICS_PORT"
}

# on failure: the status of every HostInspection and the tail of each controller's log
t_on_fail() {
  show_his
  show_tails 15 "$HP_H_DIR"/main.log "$HP_H_DIR"/le.log
}

test_create_stores_results_and_reports_ready() {
  apply <<EOF
apiVersion: hostpatrol.io/v1alpha1
kind: HostInspection
metadata: {name: web, namespace: hp-test}
spec:
  interval: 3s
  timeout: 2s
  targets: [{name: local, address: 127.0.0.1}]
  checks:
    - {name: health, http: {url: "http://$ETCD_HOSTPORT/health", expectStatus: [200], bodyRegex: '"health": *"true"'}}
    - {name: port, tcp: {port: $ETCD_PORT}}
EOF
  # Ready within the run deadline (2 s) plus a stated slack of 5 s for the first reconcile
  # (finalizer added, watch event delivered)
  t_eventually 7 cond_is hp-test web Ready True
  t_eq "$(cond hp-test web Degraded)" False "all checks pass"
  t_eq "$(field hp-test web .status.summary.ok)" 2
  t_eq "$(field hp-test web .status.observedGeneration)" "$(field hp-test web .metadata.generation)"
  t_contains "$(field hp-test web .metadata.finalizers)" hostpatrol.io/cleanup
  t_ge "$(field hp-test web .status.lastCommit.revision)" 1
  # the log ties the result to its reconcile, run and etcd batch: the status's batch is in it
  local batch
  batch=$(field hp-test web .status.lastCommit.batch)
  t_ok grep -q -E "\"reconcile\":[0-9]+,\"run\":\"[^\"]+\",\"batch\":\"$batch\",\"msg\":\"run done" "$HP_H_DIR/main.log"
  local v
  v=$(result hp-test web health -)
  t_contains "$v" '"status":"OK"'
  t_contains "$v" '"status_code":200'
  t_contains "$(result hp-test web port local)" '"status":"OK"'
  # the status's revision is the commit that wrote the results
  local rev
  rev=$(ec get -w json "$(result_key hp-test web port local)" | jq -r '.kvs[0].mod_revision')
  t_ge "$rev" 1
  # runs repeat on schedule: a later run's observed time replaces the first
  local first
  first=$(result hp-test web port local | jq -r .observed_ms)
  later() { [ "$(result web/port/local | jq -r .observed_ms)" != "$first" ]; }
  t_eventually 15 later
}

test_spec_update_observed_and_removed_check_results_deleted() {
  kc -n hp-test patch hi web --type=json -p '[{"op":"remove","path":"/spec/checks/1"}]' > /dev/null
  local gen
  gen=$(field hp-test web .metadata.generation)
  t_eventually 15 field_is hp-test web .status.observedGeneration "$gen"
  t_eventually 15 no_result hp-test web port
  t_ok result_has hp-test web health - '"status":"OK"'
  t_eq "$(field hp-test web .status.summary.ok)" 1
}

test_failing_check_degrades_then_recovers() {
  apply <<EOF
apiVersion: hostpatrol.io/v1alpha1
kind: HostInspection
metadata: {name: flaky, namespace: hp-test}
spec:
  interval: 2s
  timeout: 1s
  checks:
    - {name: svc, http: {url: "http://127.0.0.1:$CLOSED_PORT/", expectStatus: [200]}}
EOF
  t_eventually 20 cond_is hp-test flaky Degraded True
  t_eq "$(cond hp-test flaky Ready)" True "the run itself succeeded"
  t_eq "$(field hp-test flaky .status.summary.crit)" 1
  t_contains "$(field hp-test flaky '.status.failingChecks[0].reason')" "$CLOSED_PORT"
  t_contains "$(result hp-test flaky svc -)" '"status":"CRIT"'
  # the endpoint comes up: the condition clears
  python3 -m http.server "$CLOSED_PORT" --bind 127.0.0.1 --directory "$HP_H_DIR" > /dev/null 2>&1 &
  local srv=$!
  t_eventually 20 cond_is hp-test flaky Degraded False
  kill $srv
  t_eq "$(field hp-test flaky .status.summary.crit)" 0
  t_eq "$(field hp-test flaky .status.failingChecks)" "[]"
  t_contains "$(result hp-test flaky svc -)" '"status":"OK"'
  # Events on the transitions
  local ev
  ev=$(kc -n hp-test get events --field-selector involvedObject.name=flaky -o jsonpath='{.items[*].reason}')
  t_contains "$ev" ChecksFailing
  t_contains "$ev" ChecksOK
}

test_invalid_spec_reported_without_retry_storm() {
  apply <<EOF
apiVersion: hostpatrol.io/v1alpha1
kind: HostInspection
metadata: {name: badre, namespace: hp-test}
spec:
  checks:
    - {name: page, http: {url: "http://127.0.0.1:$ETCD_PORT/health", bodyRegex: "(unclosed"}}
EOF
  t_eventually 20 cond_is hp-test badre InvalidSpec True
  t_contains "$(cond hp-test badre InvalidSpec message)" spec.checks[0].http.bodyRegex
  t_eq "$(cond hp-test badre Ready)" False
  local rv
  rv=$(field hp-test badre .metadata.resourceVersion)
  sleep 4
  t_eq "$(field hp-test badre .metadata.resourceVersion)" "$rv" "no status rewrites while the spec stays wrong"
  # fixed spec: the condition clears
  kc -n hp-test patch hi badre --type=merge -p '{"spec":{"checks":[{"name":"page","http":{"url":"http://'"$ETCD_HOSTPORT"'/health","bodyRegex":"health"}}]}}' > /dev/null
  t_eventually 20 cond_is hp-test badre InvalidSpec False
  t_eventually 20 cond_is hp-test badre Ready True
}

test_suspend_stops_runs_and_run_now_starts_one() {
  apply <<EOF
apiVersion: hostpatrol.io/v1alpha1
kind: HostInspection
metadata: {name: slow, namespace: hp-test}
spec:
  interval: 1h
  timeout: 2s
  checks: [{name: health, http: {url: "http://$ETCD_HOSTPORT/health"}}]
EOF
  t_eventually 20 cond_is hp-test slow Ready True
  local first
  first=$(result hp-test slow health - | jq -r .run)
  # interval 1h: nothing runs again by itself; run-now starts a run at once
  kc -n hp-test annotate hi slow hostpatrol.io/run-now=one > /dev/null
  t_eventually 15 field_is hp-test slow .status.runNow one
  t_not [ "$(result hp-test slow health - | jq -r .run)" = "$first" ]
  # suspended: Suspended=True, and a run-now is not acted on
  kc -n hp-test patch hi slow --type=merge -p '{"spec":{"suspend":true}}' > /dev/null
  t_eventually 15 cond_is hp-test slow Suspended True
  local run
  run=$(result hp-test slow health - | jq -r .run)
  kc -n hp-test annotate --overwrite hi slow hostpatrol.io/run-now=two > /dev/null
  sleep 3
  t_eq "$(result hp-test slow health - | jq -r .run)" "$run" "no run while suspended"
  kc -n hp-test patch hi slow --type=merge -p '{"spec":{"suspend":false}}' > /dev/null
  t_eventually 15 cond_is hp-test slow Suspended False
  t_eventually 15 field_is hp-test slow .status.runNow two
}

test_node_conditions_judged_through_the_api() {
  apply <<EOF
apiVersion: v1
kind: Node
metadata: {name: web-1, labels: {role: web}}
EOF
  apply <<EOF
apiVersion: v1
kind: Node
metadata: {name: db-1, labels: {role: db}}
EOF
  setready() {
    kc patch node "$1" --subresource=status --type=merge -p '{"status":{"conditions":[{"type":"Ready","status":"'"$2"'","reason":"'"$3"'","message":"set by test","lastHeartbeatTime":null,"lastTransitionTime":"2026-01-01T00:00:00Z"}]}}' > /dev/null
  }
  t_ok setready web-1 True KubeletReady
  t_ok setready db-1 False KubeletNotReady
  apply <<EOF
apiVersion: hostpatrol.io/v1alpha1
kind: HostInspection
metadata: {name: nodes, namespace: hp-test}
spec:
  interval: 2s
  timeout: 1s
  nodeSelector: {matchLabels: {role: web}}
  checks: [{name: ready, nodeCondition: {type: Ready}}]
EOF
  t_eventually 20 cond_is hp-test nodes Ready True
  t_contains "$(result hp-test nodes ready web-1)" '"status":"OK"'
  t_ok no_result hp-test nodes ready db-1
  t_ok setready web-1 False KubeletNotReady
  t_eventually 15 result_has hp-test nodes ready web-1 '"status":"CRIT"'
  t_contains "$(result hp-test nodes ready web-1)" KubeletNotReady
  t_eventually 15 cond_is hp-test nodes Degraded True
}

test_health_readiness_and_metrics_endpoints() {
  local m
  t_eq "$(curl -sS --max-time 5 "http://127.0.0.1:$HEALTH_PORT/healthz")" ok
  t_eq "$(curl -sS --max-time 5 "http://127.0.0.1:$HEALTH_PORT/readyz")" ok
  t_eq "$(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HEALTH_PORT/metrics")" 404 \
    "metrics live on their own address"
  # /metrics is HTTPS and needs a token allowed to get the path (kubebuilder's metrics-reader)
  kc -n hp-test create serviceaccount scraper > /dev/null
  kc create clusterrole hp-test-metrics-reader --verb=get --non-resource-url=/metrics > /dev/null
  kc create clusterrolebinding hp-test-scraper --clusterrole=hp-test-metrics-reader \
    --serviceaccount=hp-test:scraper > /dev/null
  t_eq "$(curl -sk --max-time 5 -o /dev/null -w '%{http_code}' "https://127.0.0.1:$METRICS_PORT/metrics")" 401 \
    "/metrics without a token"
  m=$(curl -fsSk --max-time 5 -H "Authorization: Bearer $(kc -n hp-test create token scraper)" \
    "https://127.0.0.1:$METRICS_PORT/metrics")
  t_match "$m" 'hostpatrol_runs_total\{outcome="committed"\} [1-9][0-9]*'
  t_match "$m" 'hostpatrol_etcd_batches_total\{outcome="committed"\} [1-9][0-9]*'
  t_contains "$m" 'hostpatrol_leader 1'
  t_contains "$m" 'hostpatrol_build_info{version="'
  t_contains "$m" '# TYPE hostpatrol_reconcile_total counter'
  t_match "$m" 'hostpatrol_check_results_total\{kind="http",status="OK"\} [1-9][0-9]*'
  t_contains "$m" 'hostpatrol_etcd_txn_duration_seconds_bucket{le="+Inf"}'
  t_contains "$m" 'hostpatrol_workqueue_wait_seconds_count'
  t_contains "$m" 'hostpatrol_reconcile_duration_seconds_sum'
  # every committed run is timed (probes to the commit's end), by outcome; the counts agree
  t_eq "$(sed -n 's/^hostpatrol_run_duration_seconds_count{outcome="committed"} //p' <<< "$m")" \
    "$(sed -n 's/^hostpatrol_runs_total{outcome="committed"} //p' <<< "$m")" "runs timed = runs committed"
  t_contains "$m" 'hostpatrol_run_duration_seconds_bucket{outcome="unresolved",le="+Inf"} '
  # the format Prometheus parses, and its naming rules (promtool, from Debian's prometheus)
  local lint
  lint=$(promtool check metrics <<< "$m" 2>&1) || t_fail "promtool check metrics: $lint"
  # no free text in labels: every label is one of a few names with a value from a fixed set
  local bad
  bad=$(grep -v '^#' <<< "$m" | grep -o '{[^}]*}' | tr -d '{}' | tr ',' '\n' | grep -v -E \
    '^(outcome="(committed|failed|rolled_back|unresolved)"|kind="(http|tcp|tls|dns|nodeCondition|disk|load|memory|process|file)"|status="(OK|WARN|CRIT|UNKNOWN)"|le="([0-9.e+-]+|\+Inf)"|review="(token|access)"|version="[^"]*"|commit="[^"]*")$' || true)
  t_eq "$bad" "" "bounded labels"
}

test_logs_carry_no_token_or_password() {
  # a controller authenticating with a ServiceAccount token and given an etcd password: neither
  # may appear in its logs, at debug level, in either format, even when etcd refuses the login
  kc -n hp-test create serviceaccount logcheck > /dev/null
  kc create clusterrolebinding hp-logcheck --clusterrole=cluster-admin \
    --serviceaccount=hp-test:logcheck > /dev/null
  local token pw=s3cret-$RANDOM-pw f
  token=$(kc -n hp-test create token logcheck --duration=10m)
  sed -e '/client-certificate:/d' -e "s#client-key: .*#token: $token#" "$HP_KUBECONFIG" > "$HP_H_DIR/kc-token"
  for f in json text; do
    HOSTPATROL_ETCD_PASSWORD=$pw timeout 8 "$HP" controller --kubeconfig "$HP_H_DIR/kc-token" \
      --namespace hp-test --etcd-endpoints "${HP_ETCD_URL[res]}" --etcd-user hp \
      --log-level debug --log-format "$f" --metrics-bind-address 0 --health-probe-bind-address 0 \
      > "$HP_H_DIR/logcheck-$f.log" 2>&1 || true
    t_contains "$(cat "$HP_H_DIR/logcheck-$f.log")" "user 'hp'" "the etcd login failure is logged"
    t_not grep -q -F "$pw" "$HP_H_DIR/logcheck-$f.log"
    t_not grep -q -F "$token" "$HP_H_DIR/logcheck-$f.log"
  done
  t_match "$(head -1 "$HP_H_DIR/logcheck-text.log")" '^20[0-9-]+T[0-9:.]+Z info  controller starting'
}

test_delete_removes_results_then_the_resource() {
  t_ok result_has hp-test web health - '"status"'
  kc -n hp-test delete hi web --wait=false > /dev/null
  t_eventually 20 gone hp-test web
  t_ok no_result hp-test web
}

test_finalizer_stays_while_etcd_is_down() {
  t_eventually 20 cond_is hp-test nodes Ready True
  t_ok hp_h_etcd_stop res.0
  readyz_is() { [ "$(curl -sS --max-time 5 "http://127.0.0.1:$HEALTH_PORT/readyz")" = "$1" ]; }
  t_eventually 20 readyz_is "etcd not reachable"
  kc -n hp-test delete hi nodes --wait=false > /dev/null
  t_eventually 30 field_is hp-test nodes '.status.conditions[?(@.type=="Ready")].reason' CleanupFailed
  t_contains "$(field hp-test nodes .metadata.finalizers)" hostpatrol.io/cleanup
  t_ok hp_h_etcd_restart res.0
  t_eventually 60 gone hp-test nodes
  t_ok no_result hp-test nodes
  t_eventually 20 readyz_is ok
}

test_sigterm_drains_the_run_in_progress_and_releases_the_lease() {
  kc create namespace hp-le > /dev/null 2>&1 || true
  # an endpoint that answers after 2 s, noting when a request arrives
  local port
  port=$(hp_h_port)
  slow_http "$port" "$HP_H_DIR/slow.hits" &
  local srv=$!
  t_eventually 20 curl -fsS --max-time 5 "http://127.0.0.1:$port/"
  rm -f "$HP_H_DIR/slow.hits"
  start_hp -w le controller --namespace hp-le --leader-elect --leader-elect-namespace hp-le
  holder() { [ -n "$(lease_holder hp-le)" ]; }
  t_eventually 30 holder
  apply <<EOF
apiVersion: hostpatrol.io/v1alpha1
kind: HostInspection
metadata: {name: slowrun, namespace: hp-le}
spec:
  interval: 1h
  timeout: 5s
  checks: [{name: page, http: {url: "http://127.0.0.1:$port/", bodyRegex: "fine"}}]
EOF
  t_eventually 30 test -s "$HP_H_DIR/slow.hits"
  # SIGTERM mid-run: the run finishes (its result committed, status written), then the lease
  # is released and the process exits 0
  local pid rc=0
  pid=$(cat "$HP_H_DIR/le.pid")
  kill -TERM "$pid"
  wait "$pid" || rc=$?
  kill "$srv"
  t_eq "$rc" 0 "exit status after SIGTERM"
  t_contains "$(result hp-le slowrun page -)" '"status":"OK"'
  t_eq "$(cond hp-le slowrun Ready)" True
  t_eq "$(lease_holder hp-le)" "" "lease released"
  t_contains "$(cat "$HP_H_DIR/le.log")" '"msg":"stopped"'
}

t_main
