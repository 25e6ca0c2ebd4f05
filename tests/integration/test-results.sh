#!/usr/bin/env bash
# test-results.sh - `hostpatrol results` end to end: the REAL kube-apiserver, a real results
# etcd 3.6 and the controller writing results of two HostInspections (an http check that passes,
# a tcp check to a closed port that fails); then `results` prints them as a table, wide table
# and JSON, filters by namespace and name (web, not web2), says when nothing matched, names the
# endpoint it could not reach and the flag that was wrong, shows numbers at their unit's
# precision (a stored 0.029999999999999999 as 0.03), and shows a value that is not JSON as
# "?" "unreadable value"; `results --watch` prints each result once as it lands, in words, with
# a line per run, colour only on a terminal, JSON lines with -o json, and rides out an etcd
# outage.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

HP=$HOSTPATROL
T_TIMEOUT=120

res() { "$HP" results --etcd-endpoints "${HP_ETCD_URL[res]}" "$@"; }

setup() {
  setup_cluster hp-res || return 1
  hp_h_etcd w 3.6 || return 1 # --watch's own: killed and restarted by a test
  CLOSED_PORT=$(hp_h_port)
  export CLOSED_PORT
  start_hp main controller --namespace hp-res
  apply <<EOF || return 1
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
  show_his
  echo "--- etcd results"
  ec get --prefix "$(result_key)" 2>&1 | cut -c1-300
  show_tails 15 "$HP_H_DIR/main.log"
}

# landed: every result of both HostInspections is in etcd
landed() {
  has_result hp-res web health - && has_result hp-res web closed local && has_result hp-res web2 health2 -
}

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
  stored=$(result hp-res web health -)
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
  t_ok ec put "$(result_key hp-num "$key" c1 -)" \
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
  t_contains "$out" "no results for namespace empty under $HP_ETCD_PREFIX"
  rc=0
  out=$(res -n hp-res nosuch 2>&1) || rc=$?
  t_eq "$rc" 1
  t_contains "$out" "no results for hp-res/nosuch under $HP_ETCD_PREFIX"
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
  t_ok ec put "$(result_key hp-junk "$key" c1 -)" 'not json {' > /dev/null
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
  t_ok ec put "$(result_key hp-ctl "$key" c1 t$'\x1b'x)" \
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

# wput NS NAME CHECK TARGET JSON: a result written the way a run writes it, into etcd 'w'
wput() { t_ok "$ETCDCTL36" --endpoints "${HP_ETCD_URL[w]}" put "$(result_key "$1" "$2" "$3" "$4")" "$5" > /dev/null; }
disk() { # disk RUN PERCENT: a node-local disk result of run RUN
  printf '{"check":"root","target":"n1","kind":"disk","status":"OK","reason":"","values":{"used_percent":%s,"size_bytes":26843545600},"observed_ms":%s,"duration_ms":1,"source":"agent/n1","run":"%s"}' \
    "$2" "$(date +%s%3N)" "$1"
}
watch_out() { cat "$HP_H_DIR/watch.out"; }

test_watch_prints_each_result_once_as_it_lands_with_a_line_per_run() {
  local pid rc=0 out
  wput hp-w a root n1 "$(disk run-1 20.600000000000001)"
  "$HP" results -n hp-w --watch --etcd-endpoints "${HP_ETCD_URL[w]}" > "$HP_H_DIR/watch.out" 2> "$HP_H_DIR/watch.err" &
  pid=$!
  # what is there first, in words, and its run
  t_eventually 10 grep -qE '^[0-9]{2}:[0-9]{2}:[0-9]{2}  hp-w/a +root +n1 +OK +20\.6% used of 25 GiB$' "$HP_H_DIR/watch.out"
  t_eventually 5 grep -qE '^ +hp-w/a +run run-1 by agent/n1: 1 result, 1 OK$' "$HP_H_DIR/watch.out"
  # a run of two results in one transaction: both lines, then one line for the run
  # etcdctl txn's input: compares (none), a blank line, the puts, a blank line, no failure ops
  printf '\nput %s %s\nput %s %s\n\n\n' "$(result_key hp-w a root n1)" \
    "'$(disk run-2 21)'" "$(result_key hp-w a web -)" \
    "'{\"check\":\"web\",\"target\":\"-\",\"kind\":\"http\",\"status\":\"CRIT\",\"reason\":\"status 503, expected 200\",\"values\":{\"status_code\":503,\"total_ms\":1.2999},\"observed_ms\":$(date +%s%3N),\"source\":\"agent/n1\",\"run\":\"run-2\"}'" |
    t_ok "$ETCDCTL36" --endpoints "${HP_ETCD_URL[w]}" txn > /dev/null
  t_eventually 10 grep -qE 'run run-2 by agent/n1: 2 results, 1 CRIT, 1 OK$' "$HP_H_DIR/watch.out"
  out=$(watch_out)
  t_match "$out" 'hp-w/a +web +- +CRIT +503 in 1\.3 ms; status 503, expected 200'
  t_match "$out" 'hp-w/a +root +n1 +OK +21% used of 25 GiB'
  # each result printed once: the first one is not printed again with the second run
  t_eq "$(grep -c '20\.6% used' <<< "$out")" 1 "run 1's result once"
  t_eq "$(grep -c 'run run-' <<< "$out")" 2 "one line per run"
  sleep 2.5 # polls that find nothing new print nothing
  t_eq "$(watch_out | wc -l)" "$(wc -l <<< "$out")" "nothing printed without a new result"
  # not a terminal: no colour
  t_not grep -q $'\x1b' "$HP_H_DIR/watch.out"
  kill -TERM "$pid"
  wait "$pid" || rc=$?
  t_eq "$rc" 0 "SIGTERM ends --watch with 0"
  t_eq "$(cat "$HP_H_DIR/watch.err")" "" "nothing on stderr"
}

test_watch_colours_the_status_on_a_terminal_only() {
  local out
  wput hp-c a root n1 "$(disk run-c 97)"
  # `script` gives the command a pseudo-terminal; --watch then colours the status
  out=$(timeout 3 script -qfec "$HP results -n hp-c --watch --etcd-endpoints ${HP_ETCD_URL[w]}" /dev/null)
  t_contains "$out" $'\x1b[32mOK     \x1b[0m' "OK in green"
  out=$(NO_COLOR=1 timeout 3 script -qfec "$HP results -n hp-c --watch --etcd-endpoints ${HP_ETCD_URL[w]}" /dev/null)
  t_contains "$out" "97% used of 25 GiB"
  t_not grep -q $'\x1b\\[3' <<< "$out"
}

test_watch_json_is_one_object_a_line() {
  local pid
  wput hp-j a root n1 "$(disk run-j1 10)"
  "$HP" results -n hp-j --watch -o json --etcd-endpoints "${HP_ETCD_URL[w]}" > "$HP_H_DIR/watch-j.out" &
  pid=$!
  t_eventually 10 grep -q run-j1 "$HP_H_DIR/watch-j.out"
  wput hp-j b root n1 "$(disk run-j2 11)"
  t_eventually 10 grep -q run-j2 "$HP_H_DIR/watch-j.out"
  kill -TERM "$pid"; wait "$pid"
  t_eq "$(wc -l < "$HP_H_DIR/watch-j.out")" 2 "two results, two lines"
  t_eq "$(jq -r '"\(.namespace)/\(.name) \(.values.used_percent) \(.run)"' "$HP_H_DIR/watch-j.out" | tr '\n' ' ')" \
    "hp-j/a 10 run-j1 hp-j/b 11 run-j2 "
  # numbers print at their unit's precision here too (no 17 significant digits)
  wput hp-j c root n1 "$(disk run-j3 20.600000000000001)"
  "$HP" results -n hp-j --watch -o json --etcd-endpoints "${HP_ETCD_URL[w]}" > "$HP_H_DIR/watch-j2.out" &
  pid=$!
  t_eventually 10 grep -q run-j3 "$HP_H_DIR/watch-j2.out"
  kill -TERM "$pid"; wait "$pid"
  t_contains "$(grep run-j3 "$HP_H_DIR/watch-j2.out")" '"used_percent":20.6,'

}

# The results of real controller runs: each run's result lands once, with the status code and
# time, and a line for the run.
test_watch_follows_the_controllers_runs() {
  t_eventually 30 landed
  "$HP" results -n hp-res web --watch --etcd-endpoints "${HP_ETCD_URL[res]}" > "$HP_H_DIR/watch-c.out" &
  local pid=$!
  runs() { grep -cE 'hp-res/web +run [^ ]+ by controller/[^ ]+: 2 results, 1 CRIT, 1 OK$' "$HP_H_DIR/watch-c.out"; }
  three_runs() { [ "$(runs)" -ge 3 ]; }
  t_eventually 20 three_runs
  kill -TERM "$pid"; wait "$pid"
  t_eq "$(grep -cE 'hp-res/web +health +- +OK +200 in [0-9.]+ m?s$' "$HP_H_DIR/watch-c.out")" "$(runs)" "one health line per run"
  t_eq "$(grep -cE "hp-res/web +closed +local +CRIT +connect to 127.0.0.1:$CLOSED_PORT" "$HP_H_DIR/watch-c.out")" "$(runs)" "one closed line per run"
  t_not grep -q web2 "$HP_H_DIR/watch-c.out"
}

# etcd killed while --watch polls: said once on stderr, and the results written after etcd is
# back are printed (none lost across the outage, none printed twice).
test_watch_rides_out_an_etcd_outage() {
  local pid
  wput hp-o a root n1 "$(disk run-o1 30)"
  "$HP" results -n hp-o --watch --timeout 1s --etcd-endpoints "${HP_ETCD_URL[w]}" > "$HP_H_DIR/watch-o.out" 2> "$HP_H_DIR/watch-o.err" &
  pid=$!
  t_eventually 10 grep -q run-o1 "$HP_H_DIR/watch-o.out"
  t_ok hp_h_etcd_stop w.0
  t_eventually 15 grep -q "trying again" "$HP_H_DIR/watch-o.err"
  sleep 2
  t_ok hp_h_etcd_restart w.0
  wput hp-o a root n1 "$(disk run-o2 31)"
  t_eventually 20 grep -q run-o2 "$HP_H_DIR/watch-o.out"
  t_ok kill -0 "$pid"
  kill -TERM "$pid"; wait "$pid"
  t_eq "$(grep -c "trying again" "$HP_H_DIR/watch-o.err")" 1 "the outage said once"
  t_contains "$(cat "$HP_H_DIR/watch-o.err")" "reading $(result_key hp-o) again"
  t_eq "$(grep -c 'used of' "$HP_H_DIR/watch-o.out")" 2 "each result once"
}

t_main
