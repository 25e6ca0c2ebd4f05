#!/usr/bin/env bash
# test-agent.sh - `hostpatrol agent` end to end against the REAL kube-apiserver and a real
# results etcd 3.6: Node objects with labels, an agent per node (NODE_NAME) reading this
# machine's real /proc as its host root, and the controller aggregating the node results into
# the HostInspection's status (counts and failing nodes); a node whose agent does not report is
# UNKNOWN; a node no longer selected has its results withdrawn.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

HP=$HOSTPATROL
T_TIMEOUT=120

setup() {
  setup_cluster hp-agent || return 1
  local n
  for n in node-a:web node-b:db; do
    apply <<EOF || return 1
apiVersion: v1
kind: Node
metadata: {name: ${n%%:*}, labels: {role: ${n##*:}}}
EOF
  done
  start_hp main controller --namespace hp-agent
  start_hp agent-a agent --namespace hp-agent --node-name node-a --host-root /
  start_hp agent-b agent --namespace hp-agent --node-name node-b --host-root /
}

t_on_fail() {
  show_his 800
  show_tails 8 "$HP_H_DIR"/{main,agent-a,agent-b}.log
}

test_agent_writes_its_node_results_and_status_counts_them() {
  apply <<EOF
apiVersion: hostpatrol.io/v1alpha1
kind: HostInspection
metadata: {name: fleet, namespace: hp-agent}
spec:
  interval: 2s
  timeout: 1s
  nodeSelector: {matchLabels: {role: web}}
  checks:
    - {name: memory, memory: {warnAvailablePercent: 1, critAvailablePercent: 0}}
    - {name: load, load: {warnPerCPU: "1000", critPerCPU: "2000"}}
    - {name: agent-running, process: {name: hostpatrol, minCount: 1}}
    - {name: root-disk, disk: {path: /, warnPercent: 99, critPercent: 100}}
EOF
  t_eventually 20 result_has hp-agent fleet memory node-a '"status":"OK"'
  local v
  v=$(result hp-agent fleet memory node-a)
  t_contains "$v" '"source":"agent/node-a"'
  t_match "$v" '"mem_total_bytes":[1-9][0-9]*'
  t_contains "$(result hp-agent fleet agent-running node-a)" '"status":"OK"'
  t_contains "$(result hp-agent fleet load node-a)" '"cpus":'
  t_ok no_result hp-agent fleet memory node-b # node-b is not selected: its agent writes nothing
  # the controller counts the agent's results into the status
  t_eventually 20 field_is hp-agent fleet .status.nodes.matching 1
  t_eventually 20 field_is hp-agent fleet .status.summary.ok 4
  t_eq "$(field hp-agent fleet .status.nodes.failing)" "[]"
  t_eventually 10 cond_is hp-agent fleet Degraded False
  t_eq "$(cond hp-agent fleet Ready)" True
}

test_failing_node_check_and_silent_node_show_in_status() {
  apply <<EOF
apiVersion: hostpatrol.io/v1alpha1
kind: HostInspection
metadata: {name: strict, namespace: hp-agent}
spec:
  interval: 2s
  timeout: 1s
  nodeSelector: {matchLabels: {role: web}}
  checks: [{name: ghost, process: {name: no-such-process-x, minCount: 1}}]
EOF
  t_eventually 20 result_has hp-agent strict ghost node-a '"status":"CRIT"'
  t_contains "$(result hp-agent strict ghost node-a)" no-such-process-x
  t_eventually 20 cond_is hp-agent strict Degraded True
  t_eventually 20 field_is hp-agent strict .status.nodes.failing '["node-a"]'
  t_contains "$(field hp-agent strict '.status.failingChecks[0].target')" node-a
  # a selected node with no agent: UNKNOWN, named
  apply <<EOF
apiVersion: v1
kind: Node
metadata: {name: node-c, labels: {role: web}}
EOF
  t_eventually 30 field_is hp-agent fleet .status.nodes.matching 2
  t_eventually 20 field_is hp-agent fleet .status.nodes.failing '["node-c"]'
  t_contains "$(field hp-agent fleet '.status.failingChecks[*].reason')" "no result from the agent on node-c"
  t_eq "$(field hp-agent fleet .status.summary.unknown)" 4
}

test_node_no_longer_selected_has_its_results_withdrawn() {
  kc -n hp-agent patch hi fleet --type=merge -p '{"spec":{"nodeSelector":{"matchLabels":{"role":"db"}}}}' > /dev/null
  t_eventually 30 result_has hp-agent fleet memory node-b '"source":"agent/node-b"'
  t_eventually 30 no_result hp-agent fleet memory node-a
  t_eventually 30 field_is hp-agent fleet .status.nodes.matching 1
  t_eventually 20 field_is hp-agent fleet .status.nodes.failing "[]"
}

test_inspect_runs_the_same_checks_without_a_cluster() {
  local f out rc=0
  f=$HP_H_DIR/local.yaml
  sed "s#@HEALTH_URL@#${HP_ETCD_URL[res]}/health#" "$HP_H_ROOT/examples/hostinspection-local.yaml" > "$f"
  out=$("$HP" inspect -f "$f" --once -o json) || rc=$?
  # the load is this machine's own (a busy CI runner passes 2 per CPU): its status must follow
  # from the value measured and the example's thresholds (warn 2, crit 4 per CPU)
  local want_load
  want_load=$(jq -r '.[] | select(.check == "load") | .values.load_per_cpu |
    if . >= 4 then "CRIT" elif . >= 2 then "WARN" else "OK" end' <<< "$out")
  t_eq "$(jq -r '.[] | "\(.check)=\(.status)"' <<< "$out" | sort | tr '\n' ' ')" \
    "load=$want_load local-http=OK memory=OK root-disk=OK " "all four checks judged"
  t_eq "$rc" "$([ "$want_load" = OK ] && echo 0 || echo 1)" "exit status (1: some check not OK)"
  printf 'apiVersion: hostpatrol.io/v1alpha1\nkind: HostInspection\nmetadata: {name: x}\nspec:\n  checks: [{name: a, http: {url: "http://x/", bodyRegex: "("}}]\n' > "$f"
  rc=0
  out=$("$HP" inspect -f "$f" --once 2>&1) || rc=$?
  t_eq "$rc" 2
  t_contains "$out" "spec.checks[0].http.bodyRegex"
}

# Patterns that crashed glibc's regcomp (SIGSEGV: stack overflow) or took gigabytes are refused
# with the field named; the bodyRegex of a 1 MiB body with catastrophic backtracking stops at
# its match limit (UNKNOWN) instead of running for an hour.
test_inspect_refuses_costly_regexes_and_bounds_matching() {
  local f out rc re
  f=$HP_H_DIR/re.yaml
  for re in 'a*{1,100}{1,100}{1,100}' 'a+++++++++++++++++++++'; do
    printf '%s\n' 'apiVersion: hostpatrol.io/v1alpha1' 'kind: HostInspection' 'metadata: {name: x}' \
      'spec:' '  checks:' "  - {name: p, process: {cmdlineRegex: '$re'}}" > "$f"
    rc=0
    out=$(timeout 20 "$HP" inspect -f "$f" --once 2>&1) || rc=$?
    t_eq "$rc" 2 "exit status for cmdlineRegex $re"
    t_contains "$out" "spec.checks[0].process.cmdlineRegex: is not a valid regular expression"
  done
  # a 1 MiB body of 'a's ending in 'b', served by a local HTTP server
  mkdir -p "$HP_H_DIR/www"
  head -c 1048575 /dev/zero | tr '\0' a > "$HP_H_DIR/www/big"
  printf b >> "$HP_H_DIR/www/big"
  local port
  port=$(hp_h_port)
  hp_h_spawn www python3 -m http.server "$port" --bind 127.0.0.1 --directory "$HP_H_DIR/www"
  t_eventually 20 curl -fsS -o /dev/null "http://127.0.0.1:$port/big"
  printf '%s\n' 'apiVersion: hostpatrol.io/v1alpha1' 'kind: HostInspection' 'metadata: {name: x}' \
    'spec:' '  timeout: 5s' '  checks:' \
    "  - {name: big, http: {url: 'http://127.0.0.1:$port/big', bodyRegex: '(a+)+\$'}}" > "$f"
  local t0=$SECONDS
  rc=0
  out=$(timeout 20 "$HP" inspect -f "$f" --once -o json 2>&1) || rc=$?
  t_eq "$rc" 1 "exit status (not OK)"
  t_eq "$(jq -r '.[0].status' <<< "$out")" UNKNOWN
  t_contains "$(jq -r '.[0].reason' <<< "$out")" "bodyRegex too costly to match on 1048576 bytes"
  echo "# (a+)+\$ on a 1 MiB body: stopped at the match limit, inspect took $((SECONDS - t0)) s"
}

# Names from the file reach the terminal escaped: no escape sequence in inspect's table.
test_inspect_escapes_control_characters() {
  local f out
  f=$HP_H_DIR/ctl.yaml
  printf '%s\n' 'apiVersion: hostpatrol.io/v1alpha1' 'kind: HostInspection' 'metadata: {name: x}' \
    'spec:' '  timeout: 1s' '  checks:' '  - {name: d, dns: {name: "evil\e[2J\x9b31m.invalid"}}' \
    '  - {name: f, file: {path: "/etc/\e]0;pwned\a"}}' > "$f"
  out=$("$HP" inspect -f "$f" --once 2>&1)
  t_not env LC_ALL=C grep -q $'[\x01-\x08\x0b-\x1f\x7f]' <<< "$out"
  t_not env LC_ALL=C grep -q $'\xc2[\x80-\x9f]' <<< "$out"
  t_contains "$out" 'evil\x1B[2J\xC2\x9B31m.invalid'
  t_contains "$out" '/etc/\x1B]0;pwned\x07'
}

# A few hundred bytes of nested aliases ("billion laughs") that would expand to 10^8 nodes: a
# clear refusal at once, not gigabytes and seconds of expansion.
test_inspect_refuses_an_alias_bomb() {
  local f out rc=0 i
  f=$HP_H_DIR/bomb.yaml
  {
    echo 'apiVersion: hostpatrol.io/v1alpha1'
    echo 'kind: HostInspection'
    echo 'metadata: {name: bomb}'
    echo 'x0: &x0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]'
    for i in 1 2 3 4 5 6 7 8; do
      echo "x$i: &x$i [*x$((i - 1)), *x$((i - 1)), *x$((i - 1)), *x$((i - 1)), *x$((i - 1)), *x$((i - 1)), *x$((i - 1)), *x$((i - 1)), *x$((i - 1)), *x$((i - 1))]"
    done
    # under nodeSelector, which the spec parser copies: before the bound, more than 30 s there
    echo 'spec: {nodeSelector: {matchLabels: {}, x: *x8}, checks: [{name: m, memory: {warnAvailablePercent: 1, critAvailablePercent: 0}}]}'
  } > "$f"
  out=$(timeout 10 /usr/bin/time -f '%M' "$HP" inspect -f "$f" --once 2>&1) || rc=$?
  t_eq "$rc" 2 "exit status (invalid file)"
  t_contains "$out" "aliases expand the document by more than 100000 nodes"
  t_contains "$out" "bomb.yaml:"
  echo "# alias bomb of $(stat -c %s "$f") bytes refused; peak RSS $(tail -n 1 <<< "$out") KiB"
  t_ge 65536 "$(tail -n 1 <<< "$out")" "peak RSS in KiB"
}

t_main
