#!/usr/bin/env bash
# test-crd.sh - every validation rule of the HostInspection CRD, against the REAL apiserver
# (server-side dry run): each rule accepts a good object and rejects a bad one with its message.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

setup() {
  hp_h_init
  hp_h_control_plane || return 1
  hp_h_crd
}

# try SPEC-YAML: apply a HostInspection with this spec (dry run); prints the error, if any
try() {
  kc apply --dry-run=server -f - 2>&1 > /dev/null <<EOF
apiVersion: hostpatrol.io/v1alpha1
kind: HostInspection
metadata: {name: t, namespace: default}
spec:
$1
EOF
}

OKCHECK='  checks: [{name: ssh, tcp: {port: 22}}]'

# case NAME EXPECT SPEC: EXPECT is "ok" or a text the rejection must contain
FAILS=()
N=0
case_() {
  local name=$1 expect=$2 spec=$3 out
  N=$((N + 1))
  out=$(try "$spec")
  if [ "$expect" = ok ]; then
    [ -z "$out" ] || FAILS+=("$name: rejected: $out")
  else
    [[ $out == *"$expect"* ]] || FAILS+=("$name: want '$expect', got: ${out:-accepted}")
  fi
}

test_every_rule_accepts_good_and_rejects_bad() {
  case_ minimal ok "$OKCHECK"
  case_ timeout-below-interval ok "  interval: 30s
  timeout: 10s
$OKCHECK"
  case_ timeout-not-below-interval "spec.timeout must be shorter than spec.interval" "  interval: 10s
  timeout: 10s
$OKCHECK"
  case_ interval-too-short "spec.interval must be between 1s and 24h" "  interval: 500ms
  timeout: 100ms
$OKCHECK"
  case_ interval-not-a-duration "spec.interval" "  interval: often
$OKCHECK"
  case_ timeout-too-short "spec.timeout must be at least 100ms" "  timeout: 50ms
$OKCHECK"
  case_ no-checks "spec.checks" "  checks: []"
  case_ duplicate-check-names "check names must be unique" "  checks: [{name: a, tcp: {port: 1}}, {name: a, tcp: {port: 2}}]"
  case_ duplicate-target-names "target names must be unique" "  targets: [{name: x, address: a}, {name: x, address: b}]
$OKCHECK"
  case_ bad-check-name "spec.checks[0].name" "  checks: [{name: Bad_Name, tcp: {port: 1}}]"
  case_ two-probe-kinds "exactly one of http, tcp" "  checks: [{name: a, tcp: {port: 1}, dns: {name: x}}]"
  case_ no-probe-kind "exactly one of http, tcp" "  checks: [{name: a}]"
  case_ tls-days-on-tcp "tlsMinDaysLeft applies only to http and tls checks" "  checks: [{name: a, tcp: {port: 1}, tlsMinDaysLeft: 5}]"
  case_ tls-days-on-http ok "  checks: [{name: a, http: {url: 'https://x/'}, tlsMinDaysLeft: 5}]"
  case_ http-url-scheme "spec.checks[0].http.url" "  checks: [{name: a, http: {url: 'ftp://x/'}}]"
  case_ http-method-enum "spec.checks[0].http.method" "  checks: [{name: a, http: {url: 'http://x/', method: TRACE}}]"
  case_ http-status-bounds "spec.checks[0].http.expectStatus[0]" "  checks: [{name: a, http: {url: 'http://x/', expectStatus: [99]}}]"
  case_ tcp-port-bounds "spec.checks[0].tcp.port" "  checks: [{name: a, tcp: {port: 70000}}]"
  case_ disk-warn-below-crit ok "  checks: [{name: d, disk: {warnPercent: 70, critPercent: 90}}]"
  case_ disk-warn-not-below-crit "disk.warnPercent must be below disk.critPercent" "  checks: [{name: d, disk: {warnPercent: 90, critPercent: 90}}]"
  case_ load-warn-not-below-crit "load.warnPerCPU must be below load.critPerCPU" "  checks: [{name: l, load: {warnPerCPU: '4', critPerCPU: '2'}}]"
  case_ memory-crit-not-below-warn "memory.critAvailablePercent must be below memory.warnAvailablePercent" "  checks: [{name: m, memory: {warnAvailablePercent: 5, critAvailablePercent: 10}}]"
  case_ process-needs-one-matcher "process: set exactly one of name, cmdlineRegex" "  checks: [{name: p, process: {minCount: 1}}]"
  case_ process-both-matchers "process: set exactly one of name, cmdlineRegex" "  checks: [{name: p, process: {name: sshd, cmdlineRegex: x}}]"
  case_ process-min-above-max "process.minCount must not exceed process.maxCount" "  checks: [{name: p, process: {name: sshd, minCount: 3, maxCount: 2}}]"
  case_ process-good ok "  checks: [{name: p, process: {name: sshd, minCount: 1, maxCount: 2}}]"
  case_ node-condition-enum "spec.checks[0].nodeCondition.type" "  checks: [{name: n, nodeCondition: {type: Sleepy}}]"
  case_ node-condition-good ok "  checks: [{name: ready, nodeCondition: {type: Ready, expect: 'True'}}]"
  case_ selector-operator-enum "spec.nodeSelector.matchExpressions[0].operator" "  nodeSelector: {matchExpressions: [{key: role, operator: Near}]}
$OKCHECK"
  case_ target-name-pattern "spec.targets[0].name" "  targets: [{name: Api!, address: a}]
$OKCHECK"
  echo "# $N cases"
  if [ ${#FAILS[@]} -gt 0 ]; then
    printf '%s\n' "${FAILS[@]}" >&2
    t_fail "${#FAILS[@]} of $N cases did not behave as the CRD promises"
  fi
}

test_defaults_are_applied() {
  local out
  out=$(kc apply --dry-run=server -o json -f - <<'EOF'
apiVersion: hostpatrol.io/v1alpha1
kind: HostInspection
metadata: {name: d, namespace: default}
spec:
  checks: [{name: h, http: {url: 'http://x/'}}, {name: d, disk: {}}]
EOF
) || t_fail "apply failed: $out"
  t_eq "$(jq -r .spec.interval <<< "$out")" 30s
  t_eq "$(jq -r .spec.timeout <<< "$out")" 10s
  t_eq "$(jq -r .spec.suspend <<< "$out")" false
  t_eq "$(jq -r '.spec.checks[0].http.method' <<< "$out")" GET
  t_eq "$(jq -r '.spec.checks[1].disk | "\(.path) \(.warnPercent) \(.critPercent)"' <<< "$out")" "/ 80 90"
}

test_printer_columns_and_short_name() {
  local cols
  cols=$(kc get crd hostinspections.hostpatrol.io -o json |
    jq -r '[.spec.versions[0].additionalPrinterColumns[].name] | join(",")')
  t_eq "$cols" "Ready,Last Run,OK,Warn,Crit,Age"
  t_contains "$(kc api-resources --api-group=hostpatrol.io 2>&1)" "hi,hinsp"
}

t_main
