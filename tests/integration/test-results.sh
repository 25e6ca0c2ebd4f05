#!/usr/bin/env bash
# test-results.sh - `hostpatrol results` end to end: the REAL kube-apiserver, a real results
# etcd 3.6 and the controller writing results of two HostInspections (an http check that passes,
# a tcp check to a closed port that fails); then `results` prints them as a table, wide table
# and JSON, filters by namespace and name (web, not web2), says when nothing matched, names the
# endpoint it could not reach and the flag that was wrong, shows numbers at their unit's
# precision (a stored 0.029999999999999999 as 0.03), and shows a value that is not JSON as
# "?" "unreadable value".
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

HP=$HP_H_ROOT/build/hostpatrol
T_TIMEOUT=120

res() { "$HP" results --etcd-endpoints "${HP_ETCD_URL[res]}" "$@"; }

setup() {
  hp_h_init
  hp_h_control_plane || return 1
  hp_h_etcd res 3.6 || return 1
  hp_h_crd || return 1
  kc create namespace hp-res > /dev/null || return 1
  CLOSED_PORT=$(hp_h_port)
  export CLOSED_PORT
  "$HP" controller --namespace hp-res --kubeconfig "$HP_KUBECONFIG" \
    --etcd-endpoints "${HP_ETCD_URL[res]}" --state-dir "$HP_H_DIR/state-main" --log-level debug \
    --metrics-bind-address 127.0.0.1:0 --health-probe-bind-address 127.0.0.1:0 \
    > "$HP_H_DIR/main.log" 2>&1 &
  disown
  kc apply -f - > /dev/null <<EOF || return 1
apiVersion: hostpatrol.io/v1alpha1
kind: HostInspection
metadata: {name: web, namespace: hp-res}
spec:
  interval: 2s
  timeout: 1s
  targets: [{name: local, address: 127.0.0.1}]
  checks:
    - {name: health, http: {url: "${HP_ETCD_URL[res]}/health", expectStatus: [200]}}
    - {name: closed, tcp: {port: $CLOSED_PORT}}
---
apiVersion: hostpatrol.io/v1alpha1
kind: HostInspection
metadata: {name: web2, namespace: hp-res}
spec:
  interval: 2s
  timeout: 1s
  checks:
    - {name: health2, http: {url: "${HP_ETCD_URL[res]}/health", expectStatus: [200]}}
EOF
}

t_on_fail() {
  kc get hi -A -o custom-columns=NS:.metadata.namespace,NAME:.metadata.name,STATUS:.status --no-headers 2>&1 | cut -c1-600
  echo "--- etcd results"
  ec get --prefix /hostpatrol/results/ 2>&1 | cut -c1-300
  echo "--- main.log (tail)"
  tail -n 15 "$HP_H_DIR/main.log"
}

has_result() { [ -n "$(ec get --keys-only "/hostpatrol/results/hp-res/$1")" ]; }
# landed: every result of both HostInspections is in etcd
landed() { has_result web/health/- && has_result web/closed/local && has_result web2/health2/-; }

test_table_lists_ok_and_crit_with_the_reason() {
  t_eventually 30 landed
  local out rc=0 ok crit
  out=$(res -n hp-res) || rc=$?
  t_eq "$rc" 0 "exit status"
  t_match "$(head -n 1 <<< "$out")" '^NAMESPACE +NAME +CHECK +TARGET +STATUS +AGE +REASON$'
  ok=$(grep -E '^hp-res +web +health +- +OK +[0-9]+[smhd] +-$' <<< "$out") ||
    t_fail "no OK row for web/health: $out"
  crit=$(grep -E '^hp-res +web +closed +local +CRIT +[0-9]+[smhd] ' <<< "$out") ||
    t_fail "no CRIT row for web/closed: $out"
  t_contains "$crit" "$CLOSED_PORT" "the reason names the port"
  t_contains "$out" "web2" "web2 is in the namespace"
  t_eq "$(wc -l <<< "$out")" 4 "header + 3 results"
  echo "# $ok"
  echo "# $crit"
}

test_json_has_the_stored_objects_with_namespace_and_name() {
  t_eventually 30 landed
  local out
  out=$(res -n hp-res -o json) || t_fail "exit $?"
  t_eq "$(jq -r 'length' <<< "$out")" 3
  t_eq "$(jq -r '[.[] | select(.name == "web") | "\(.namespace)/\(.name)/\(.check)/\(.target)=\(.status)"] | join(" ")' <<< "$out")" \
    "hp-res/web/closed/local=CRIT hp-res/web/health/-=OK"
  t_eq "$(jq -r '.[] | select(.check == "health") | .kind' <<< "$out")" http
  t_match "$(jq -r '.[] | select(.check == "health") | .values.status_code' <<< "$out")" '^200$'
  t_match "$(jq -r '.[] | select(.check == "closed") | .observed_ms' <<< "$out")" '^[0-9]{13}$'
}

test_wide_adds_kind_source_duration_and_values() {
  t_eventually 30 landed
  local out
  out=$(res -n hp-res -o wide) || t_fail "exit $?"
  t_match "$(head -n 1 <<< "$out")" 'AGE +KIND +SOURCE +DURATION\(ms\) +VALUES +REASON$'
  t_match "$out" 'health +- +OK +[0-9]+[smhd] +http +controller/[^ ]+ +[0-9]+ +[^ ]*status_code=200'
  t_match "$out" 'closed +local +CRIT +[0-9]+[smhd] +tcp '
}

# Numbers as stored and as shown carry their unit's precision (docs/results.md, "Numbers"): the
# controller's etcd value has no ms with more than 3 decimals, and `results` prints them as stored.
test_stored_values_print_at_their_precision() {
  t_eventually 30 landed
  local stored out
  stored=$(ec get --print-value-only /hostpatrol/results/hp-res/web/health/-)
  t_match "$stored" '"status_code":200[,}]'
  t_match "$stored" '"total_ms":[0-9]+\.[0-9]{1,3}[,}]'
  t_not grep -qE '[0-9]\.[0-9]{4,}' <<< "$stored"
  out=$(res -n hp-res web -o wide) || t_fail "exit $?"
  t_match "$out" 'total_ms=[0-9]+\.[0-9]{1,3}( |,)'
  t_not grep -qE '[0-9]\.[0-9]{4,}' <<< "$out"
}

# A value written with 17 significant digits (as jansson prints by default) is read back and shown
# short, in the wide table and in JSON.
test_long_stored_numbers_print_short() {
  local out key
  key=$(t_uniq num)
  t_ok ec put "/hostpatrol/results/hp-num/$key/c1/-" \
    '{"status":"OK","values":{"dns_ms":0.029999999999999999,"used_percent":20.600000000000001,"load1":0.89000000000000001,"size_bytes":270553174016}}' > /dev/null
  out=$(res -n hp-num -o wide) || t_fail "exit $?"
  t_contains "$out" "dns_ms=0.03,used_percent=20.6,load1=0.89,size_bytes=270553174016 "
  out=$(res -n hp-num -o json) || t_fail "exit $?"
  t_contains "$out" '"dns_ms": 0.03,'
  t_contains "$out" '"used_percent": 20.6,'
  t_contains "$out" '"load1": 0.89,'
  t_not grep -qE '[0-9]\.[0-9]{4,}' <<< "$out"
}

test_name_filters_web_not_web2() {
  t_eventually 30 landed
  local out
  out=$(res -n hp-res web) || t_fail "exit $?"
  t_contains "$out" health
  t_contains "$out" closed
  t_not grep -q web2 <<< "$out"
  out=$(res -n hp-res web2 -o json) || t_fail "exit $?"
  t_eq "$(jq -r '[.[] | "\(.name)/\(.check)"] | join(" ")' <<< "$out")" "web2/health2"
}

test_nothing_matched_exits_1_with_the_scope() {
  local out rc=0
  out=$(res -n empty 2>&1) || rc=$?
  t_eq "$rc" 1
  t_contains "$out" "no results for namespace empty under /hostpatrol/"
  rc=0
  out=$(res -n hp-res nosuch 2>&1) || rc=$?
  t_eq "$rc" 1
  t_contains "$out" "no results for hp-res/nosuch under /hostpatrol/"
}

test_unreachable_endpoint_and_bad_flags_are_named() {
  local out rc=0
  out=$("$HP" results -n hp-res --etcd-endpoints http://127.0.0.1:1 --timeout 5s 2>&1) || rc=$?
  t_ge "$rc" 1 "exit status"
  t_contains "$out" "http://127.0.0.1:1"
  rc=0
  out=$(res -n hp-res -o yaml 2>&1) || rc=$?
  t_eq "$rc" 2
  t_contains "$out" "--output 'yaml'"
  rc=0
  out=$(res -A web 2>&1) || rc=$?
  t_eq "$rc" 2
  t_contains "$out" "namespace"
  rc=0
  out=$(res --etcd-endpoints ftp://x 2>&1) || rc=$?
  t_eq "$rc" 2
  t_contains "$out" "--etcd-endpoints"
}

test_a_value_that_is_not_json_shows_as_unreadable() {
  local out key
  key=$(t_uniq bad)
  t_ok ec put "/hostpatrol/results/hp-junk/$key/c1/-" 'not json {' > /dev/null
  out=$(res -n hp-junk) || t_fail "exit $?"
  t_match "$out" "hp-junk +$key +c1 +- +\\? +(-|[0-9]+[smhd]) +unreadable value"
  out=$(res -n hp-junk -o json) || t_fail "exit $?"
  t_eq "$(jq -r '.[0] | "\(.namespace) \(.name) \(.status) \(.reason)"' <<< "$out")" \
    "hp-junk $key ? unreadable value"
  # -A lists it next to the real results
  out=$(res -A) || t_fail "exit $?"
  t_contains "$out" "$key"
  t_contains "$out" "closed"
}

# What a resource's author or a probed host wrote reaches the terminal escaped: no escape
# sequence (clear screen, set title, 8-bit CSI) in the table, the text still readable.
test_control_characters_are_escaped_in_the_table() {
  local out key
  key=$(t_uniq ctl)
  t_ok ec put "/hostpatrol/results/hp-ctl/$key/c1/t"$'\x1b'"x" \
    "{\"status\":\"CRIT\",\"reason\":\"evil\\u001b[2J \\u009b31m \\u0007 caf\\u00e9\",\"values\":{\"v\":\"\\u001b]0;t\\u0007\"}}" > /dev/null
  out=$(res -n hp-ctl -o wide) || t_fail "exit $?"
  t_not env LC_ALL=C grep -q $'[\x01-\x08\x0b-\x1f\x7f]' <<< "$out"
  t_not env LC_ALL=C grep -q $'\xc2[\x80-\x9f]' <<< "$out"
  t_contains "$out" 'evil\x1B[2J \xC2\x9B31m \x07 café'
  t_contains "$out" 't\x1Bx'
  t_contains "$out" 'v=\x1B]0;t\x07'
  # JSON output keeps the text as it is (JSON escapes it)
  out=$(res -n hp-ctl -o json) || t_fail "exit $?"
  t_eq "$(jq -r '.[0].reason' <<< "$out")" $'evil\x1b[2J \xc2\x9b31m \a caf\xc3\xa9'
}

t_main
