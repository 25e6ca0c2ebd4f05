#!/usr/bin/env bash
# test-hostile.sh - HostInspections written to hurt, against the REAL kube-apiserver, a real
# results etcd 3.6, the real controller and agent binaries: regex bombs, a costly bodyRegex over
# a megabyte, a fan-out of 16,384 probes, tenants reaching for the nodes, command lines and the
# metadata service. Each attack ends in a clear refusal (InvalidSpec naming the field and, for
# the cluster policy, the flag) or a bounded result within the run's deadline, while the rest of
# the controller keeps its schedule, its health endpoint answers and its memory stays bounded.
#
# One controller per namespace, each with the policy a cluster admin would give it:
#   ctl-sys  hp-sys   the admin's namespace: node-local checks allowed, 2 workers
#   ctl-team team-a   a tenant: node-local checks refused (--node-checks-namespaces hp-sys)
#   ctl-fan  hp-fan   no per-inspection cap, 256 probes in flight, at most 1024 open files
# and one agent on node node-a (all namespaces, the same policy as ctl-sys).
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

HP=$HOSTPATROL
T_TIMEOUT=180

setup() {
  setup_cluster hp-sys team-a hp-fan || return 1
  apply <<EOF || return 1
apiVersion: v1
kind: Node
metadata: {name: node-a, labels: {role: web}}
EOF
  # a web server: /ok, and /big (1 MiB of 'a' ending in 'b': (a+)+$ backtracks on it)
  mkdir -p "$HP_H_DIR/www"
  echo ok > "$HP_H_DIR/www/ok"
  head -c 1048575 /dev/zero | tr '\0' a > "$HP_H_DIR/www/big"
  printf b >> "$HP_H_DIR/www/big"
  WWW_PORT=$(hp_h_port)
  hp_h_spawn www python3 -m http.server "$WWW_PORT" --bind 127.0.0.1 --directory "$HP_H_DIR/www"
  echo "$HP_H_LASTPID" > "$HP_H_DIR/www.pid"
  # a port that accepts connections into its backlog and never answers: probes wait there
  SINK_PORT=$(hp_h_port)
  hp_h_spawn sink python3 -c 'import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(65535)
while True: time.sleep(3600)' "$SINK_PORT" "$HP_H_DIR" # the session dir: cleanup ends it
  SYS_METRICS=$(hp_h_port) SYS_HEALTH=$(hp_h_port) AGENT_METRICS=$(hp_h_port)
  FAN_METRICS=$(hp_h_port) FAN_HEALTH=$(hp_h_port)
  export WWW_PORT SINK_PORT SYS_METRICS SYS_HEALTH AGENT_METRICS FAN_METRICS FAN_HEALTH
  start_hp ctl-sys controller --metrics-secure=false --namespace hp-sys --node-checks-namespaces hp-sys \
    --max-concurrent-reconciles 2 --metrics-bind-address "127.0.0.1:$SYS_METRICS" \
    --health-probe-bind-address "127.0.0.1:$SYS_HEALTH"
  start_hp ctl-team controller --metrics-secure=false --namespace team-a --node-checks-namespaces hp-sys
  start_hp agent agent --metrics-secure=false --node-name node-a --host-root / --node-checks-namespaces hp-sys \
    --metrics-bind-address "127.0.0.1:$AGENT_METRICS"
  hp_h_spawn ctl-fan bash -c 'ulimit -n 1024 && exec "$@"' sh "$HP" controller \
    --kubeconfig "$HP_KUBECONFIG" --etcd-endpoints "${HP_ETCD_URL[res]}" \
    --state-dir "$HP_H_DIR/state-fan" --namespace hp-fan --max-probes-per-inspection 0 \
    --metrics-secure=false \
    --max-probes-in-flight 256 --max-sockets-per-run 1024 \
    --metrics-bind-address "127.0.0.1:$FAN_METRICS" --health-probe-bind-address "127.0.0.1:$FAN_HEALTH"
  echo "$HP_H_LASTPID" > "$HP_H_DIR/ctl-fan.pid"
  hp_h_wait www "$(pid www)" curl -fsS -o /dev/null "http://127.0.0.1:$WWW_PORT/ok" || return 1
  hp_h_wait ctl-sys "$(pid ctl-sys)" curl -fsS "http://127.0.0.1:$SYS_HEALTH/readyz" || return 1
  hp_h_wait ctl-fan "$(pid ctl-fan)" curl -fsS "http://127.0.0.1:$FAN_HEALTH/readyz" || return 1
  hp_h_wait agent "$(pid agent)" curl -fsS "http://127.0.0.1:$AGENT_METRICS/metrics" || return 1
}

rss_mib() { awk '/^VmRSS/ {print int($2 / 1024)}' "/proc/$(pid "$1")/status"; }

t_on_fail() {
  show_his 500
  show_tails 10 "$HP_H_DIR"/{ctl-sys,ctl-team,ctl-fan,agent}.log
}

# plain_metric PORT NAME: the value of an unlabelled sample (the test's controllers serve /metrics in
# plain HTTP on loopback: --metrics-secure=false; test-metrics-auth.sh tests the secure server)
plain_metric() { curl -fsS --max-time 5 "http://127.0.0.1:$1/metrics" | awk -v n="$2" '$1 == n {print $2}'; }
# runs_of NS NAME: distinct runs that wrote results of NS/NAME
runs_of() { history "$1" | awk -v k="$(result_key "$1" "$2")" 'index($4, k) == 1 {print $3}' | sort -u | wc -l; }

# refused NS NAME REASON TEXT: InvalidSpec=True with REASON, its message containing TEXT
refused() {
  t_eventually 20 cond_is "$1" "$2" InvalidSpec True
  t_eq "$(cond "$1" "$2" InvalidSpec reason)" "$3" "InvalidSpec reason of $1/$2"
  t_contains "$(cond "$1" "$2" InvalidSpec message)" "$4"
  t_eq "$(cond "$1" "$2" Ready status)" False
}

# Attacks 1 and 2: patterns that crashed glibc's regcomp (SIGSEGV) or took 1.6 GB are
# InvalidSpec naming the field; nothing crashes, memory stays small, and a spec is compiled once
# per generation, not at every reconcile.
test_regex_bombs_are_invalid_specs_and_nothing_crashes() {
  local re i=0
  for re in 'a*{1,100}{1,100}{1,100}' 'a+++++++++++++++++++++' 'a++++++++++++++++++++++++'; do
    i=$((i + 1))
    apply <<EOF
apiVersion: hostpatrol.io/v1alpha1
kind: HostInspection
metadata: {name: bomb-$i, namespace: hp-sys}
spec:
  interval: 2s
  timeout: 1s
  checks:
    - {name: p, process: {cmdlineRegex: '$re'}}
    - {name: h, http: {url: 'http://127.0.0.1:$WWW_PORT/ok', bodyRegex: '$re'}}
EOF
  done
  for i in 1 2 3; do
    refused hp-sys "bomb-$i" InvalidSpec "spec.checks[0].process.cmdlineRegex: is not a valid regular expression"
  done
  sleep 3 # the agent saw them too (it selects every node: no nodeSelector)
  t_ok alive ctl-sys
  t_ok alive agent
  t_ok no_result hp-sys bomb-1
  echo "# RSS after the regex bombs: controller $(rss_mib ctl-sys) MiB, agent $(rss_mib agent) MiB"
  t_ge 100 "$(rss_mib ctl-sys)" "controller RSS (MiB) after the bombs"
  t_ge 100 "$(rss_mib agent)" "agent RSS (MiB) after the bombs"
  # compiled once per generation: reconciles of the same generation reuse the parsed spec
  apply <<EOF
apiVersion: hostpatrol.io/v1alpha1
kind: HostInspection
metadata: {name: steady, namespace: hp-sys}
spec:
  interval: 1s
  timeout: 500ms
  checks:
    - {name: h, http: {url: 'http://127.0.0.1:$WWW_PORT/ok', bodyRegex: '^ok'}}
EOF
  t_eventually 20 result_has hp-sys steady h - '"status":"OK"'
  local p1 h1 p2 h2
  p1=$(plain_metric "$SYS_METRICS" hostpatrol_spec_parses_total)
  h1=$(plain_metric "$SYS_METRICS" hostpatrol_spec_cache_hits_total)
  sleep 4
  p2=$(plain_metric "$SYS_METRICS" hostpatrol_spec_parses_total)
  h2=$(plain_metric "$SYS_METRICS" hostpatrol_spec_cache_hits_total)
  echo "# over 4 s of 1 s runs: $((p2 - p1)) parses, $((h2 - h1)) reuses of a parsed spec"
  t_eq "$p2" "$p1" "specs parsed again without a new generation"
  t_ge "$((h2 - h1))" 3 "reconciles that reused the parsed spec"
}

# Attack 3: (a+)+$ over a 1 MiB body, twice every 3 s, with only 2 workers: each match stops
# within its bounds (UNKNOWN), so an unrelated HostInspection keeps its 2 s schedule.
test_costly_body_regex_is_bounded_and_others_keep_their_schedule() {
  local i
  for i in 1 2; do
    apply <<EOF
apiVersion: hostpatrol.io/v1alpha1
kind: HostInspection
metadata: {name: slow-$i, namespace: hp-sys}
spec:
  interval: 3s
  timeout: 2s
  checks:
    - {name: big, http: {url: 'http://127.0.0.1:$WWW_PORT/big', bodyRegex: '(a+)+\$'}}
EOF
  done
  apply <<EOF
apiVersion: hostpatrol.io/v1alpha1
kind: HostInspection
metadata: {name: beat, namespace: hp-sys}
spec:
  interval: 2s
  timeout: 1s
  checks:
    - {name: h, http: {url: 'http://127.0.0.1:$WWW_PORT/ok'}}
EOF
  t_eventually 30 result_has hp-sys slow-1 big - '"status":"UNKNOWN"'
  t_contains "$(result hp-sys slow-1 big -)" "bodyRegex too costly to match on 1048576 bytes"
  t_eventually 20 result_has hp-sys beat h - '"status":"OK"'
  local r0 r1 t0
  r0=$(runs_of hp-sys beat)
  t0=$SECONDS
  sleep 12
  r1=$(runs_of hp-sys beat)
  echo "# beside two (a+)+\$ matches over 1 MiB every 3 s on 2 workers: 'beat' ran $((r1 - r0)) times in $((SECONDS - t0)) s (its interval: 2 s)"
  t_ge "$((r1 - r0))" 4 "runs of an unrelated 2 s HostInspection in 12 s or more"
  t_ge "$(runs_of hp-sys slow-2)" 3 "runs of the second costly one"
}

# Attack 5 and the admin's policy: tenants cannot reach the nodes, command lines or the metadata
# service; the agent follows the same policy and writes nothing for what is refused.
test_policy_refuses_node_checks_cmdlines_and_metadata() {
  apply <<EOF
apiVersion: hostpatrol.io/v1alpha1
kind: HostInspection
metadata: {name: tenant-disk, namespace: team-a}
spec:
  checks:
    - {name: d, disk: {path: /}}
---
apiVersion: hostpatrol.io/v1alpha1
kind: HostInspection
metadata: {name: tenant-node, namespace: team-a}
spec:
  checks:
    - {name: r, nodeCondition: {type: Ready}}
---
apiVersion: hostpatrol.io/v1alpha1
kind: HostInspection
metadata: {name: tenant-ssrf, namespace: team-a}
spec:
  checks:
    - {name: md, http: {url: 'http://169.254.169.254/latest/meta-data/iam/', bodyRegex: '^a'}}
---
apiVersion: hostpatrol.io/v1alpha1
kind: HostInspection
metadata: {name: tenant-gce, namespace: team-a}
spec:
  targets: [{name: md, address: metadata.google.internal}]
  checks:
    - {name: t, tcp: {port: 80}}
---
apiVersion: hostpatrol.io/v1alpha1
kind: HostInspection
metadata: {name: spy, namespace: hp-sys}
spec:
  interval: 2s
  timeout: 1s
  checks:
    - {name: pw, process: {cmdlineRegex: 'db-password=a'}}
---
apiVersion: hostpatrol.io/v1alpha1
kind: HostInspection
metadata: {name: ops, namespace: hp-sys}
spec:
  interval: 2s
  timeout: 1s
  checks:
    - {name: agent, process: {name: hostpatrol, minCount: 1}}
EOF
  refused team-a tenant-disk Forbidden 'spec.checks[0].disk: disk checks are not allowed in namespace "team-a" by the cluster policy (--node-checks-namespaces: hp-sys)'
  refused team-a tenant-node Forbidden "nodeCondition checks are not allowed in namespace \"team-a\""
  refused team-a tenant-ssrf Forbidden "spec.checks[0].http.url: host 169.254.169.254 is denied by the cluster policy (--probe-deny 169.254.0.0/16)"
  refused team-a tenant-gce Forbidden "spec.targets[0].address: metadata.google.internal is denied"
  refused hp-sys spy Forbidden "spec.checks[0].process.cmdlineRegex: matching command lines is not allowed by the cluster policy (--allow-cmdline-regex is off)"
  # the admin's own namespace still runs node checks: the positive control for the agent
  t_eventually 30 result_has hp-sys ops agent node-a '"status":"OK"'
  t_ok no_result team-a tenant-disk
  t_ok no_result hp-sys spy
  t_ok no_result team-a tenant-ssrf
}

# The agent reads the node selector before anything else: resources that do not select its node
# are never parsed (a bomb there costs it nothing).
test_agent_parses_only_what_selects_its_node() {
  local p0 p1 i
  p0=$(plain_metric "$AGENT_METRICS" hostpatrol_spec_parses_total)
  for i in 1 2 3 4 5; do
    apply <<EOF
apiVersion: hostpatrol.io/v1alpha1
kind: HostInspection
metadata: {name: elsewhere-$i, namespace: hp-sys}
spec:
  nodeSelector: {matchLabels: {role: db}}
  checks:
    - {name: p, process: {cmdlineRegex: 'a*{1,100}{1,100}{1,100}'}}
EOF
  done
  refused hp-sys elsewhere-5 InvalidSpec "cmdlineRegex" # the controller did parse them
  sleep 2
  p1=$(plain_metric "$AGENT_METRICS" hostpatrol_spec_parses_total)
  t_eq "$p1" "$p0" "specs the agent parsed for resources that do not select its node"
  t_ok alive agent
}

# Attack 4: 256 targets x 64 tcp checks. Under the default cap it is InvalidSpec; where the admin
# lifted the cap, the budgets hold: at most 256 probes in flight, /healthz answers, memory stays
# bounded, probes that found no slot before the deadline are UNKNOWN saying so, and SIGTERM
# still ends the controller in bounded time.
test_fan_out_is_refused_or_bounded() {
  local f=$HP_H_DIR/fan.yaml i ns
  for ns in team-a hp-fan; do
    {
      printf '%s\n' 'apiVersion: hostpatrol.io/v1alpha1' 'kind: HostInspection' \
        "metadata: {name: fan, namespace: $ns}" 'spec:' '  interval: 60s' '  timeout: 12s' '  targets:'
      for i in $(seq 0 255); do echo "  - {name: t$i, address: 127.0.$((i / 250)).$((i % 250 + 1))}"; done
      echo '  checks:'
      for i in $(seq 0 63); do echo "  - {name: c$i, tcp: {port: $SINK_PORT, expect: never}}"; done
    } > "$f"
    kc apply -f "$f" > /dev/null || t_fail "the fan-out resource is CRD-valid"
  done
  refused team-a fan InvalidSpec "one run would start 16384 probes"
  t_contains "$(cond team-a fan InvalidSpec message)" "--max-probes-per-inspection"
  # hp-fan: the run starts; sample the controller while it runs
  local pidf max_rss=0 max_fds=0 max_inflight=0 slow_health=0 k r fds inf t0
  pidf=$(pid ctl-fan)
  t_eventually 20 grep -q 'fan.*run starts' "$HP_H_DIR/ctl-fan.log"
  for k in $(seq 1 20); do
    r=$(awk '/^VmRSS/ {print int($2 / 1024)}' "/proc/$pidf/status")
    fds=$(find "/proc/$pidf/fd" -mindepth 1 -maxdepth 1 | wc -l)
    inf=$(plain_metric "$FAN_METRICS" hostpatrol_probes_in_flight)
    [ "$r" -gt "$max_rss" ] && max_rss=$r
    [ "$fds" -gt "$max_fds" ] && max_fds=$fds
    [ "${inf%.*}" -gt "$max_inflight" ] && max_inflight=${inf%.*}
    curl -fsS --max-time 2 "http://127.0.0.1:$FAN_HEALTH/healthz" > /dev/null || slow_health=$((slow_health + 1))
    sleep 0.3
  done
  echo "# 16384-probe run with --max-probes-in-flight 256: max RSS $max_rss MiB, max open fds $max_fds, max probes in flight $max_inflight, /healthz failures $slow_health/20"
  t_ge 256 "$max_inflight" "probes in flight above --max-probes-in-flight"
  t_ge "$max_inflight" 1 "probes in flight while the run runs"
  t_eq "$slow_health" 0 "/healthz answers within 2 s during the run"
  t_ge 200 "$max_rss" "controller RSS (MiB) during the fan-out"
  t_eventually 60 cond_is hp-fan fan Ready True
  t_match "$(field hp-fan fan .status.summary.unknown)" '^[1-9][0-9]*$'
  local late
  late=$(ec get --print-value-only --prefix "$(result_key hp-fan fan c63)" | head -n 1)
  t_contains "$late" "not started within the run's timeout"
  t_contains "$late" "--max-probes-in-flight"
  # bounded shutdown while the next run is in flight
  kc -n hp-fan annotate hi fan --overwrite "hostpatrol.io/run-now=$(t_uniq r)" > /dev/null
  second_run() { [ "$(grep -c 'fan.*run starts' "$HP_H_DIR/ctl-fan.log")" -ge 2 ]; }
  t_eventually 30 second_run
  t0=$SECONDS
  kill -TERM "$pidf"
  for k in $(seq 1 300); do kill -0 "$pidf" 2> /dev/null || break; sleep 0.1; done
  t_not kill -0 "$pidf"
  echo "# SIGTERM during a 16384-probe run: the controller exited after $((SECONDS - t0)) s"
}

t_main
