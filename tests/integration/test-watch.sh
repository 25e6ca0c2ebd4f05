#!/usr/bin/env bash
# test-watch.sh - the /ws stream of committed results and `hostpatrol watch` end to end: a
# controller against the REAL kube-apiserver and a real results etcd 3.6 streams every committed
# run of a HostInspection (status, revision) to a watch filtered on its namespace; a watch
# filtered on another name gets none of it; SIGTERM ends a watch with exit 0; a dead server or a
# bad flag is named. The stream is the secure one (wss, a ServiceAccount token allowed to get
# hostinspections; test-metrics-auth.sh covers who sees what).
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

HP=$HOSTPATROL
T_TIMEOUT=120

setup() {
  setup_cluster hp-w || return 1
  kc -n hp-w create serviceaccount watcher > /dev/null || return 1
  kc -n hp-w create role hi-reader --verb=get --resource=hostinspections.hostpatrol.io > /dev/null || return 1
  kc -n hp-w create rolebinding watcher --role=hi-reader --serviceaccount=hp-w:watcher > /dev/null || return 1
  kc -n hp-w create token watcher --duration=1h > "$HP_H_DIR/token" || return 1
  ETCD_HOSTPORT=${HP_ETCD_URL[res]#http://}
  METRICS_PORT=$(hp_h_port)
  export ETCD_HOSTPORT METRICS_PORT
  start_hp w controller --namespace hp-w --metrics-bind-address "127.0.0.1:$METRICS_PORT"
  hp_h_wait w "$HP_H_LASTPID" http_code_is 401 "https://127.0.0.1:$METRICS_PORT/metrics"
}

t_on_fail() {
  show_tails 10 "$HP_H_DIR"/w.log "$HP_H_DIR"/watch-*.out "$HP_H_DIR"/watch-*.err
}

# hpw ARGS...: hostpatrol watch with the test's token, trusting the self-signed certificate.
# It execs, so `hpw ... &` leaves $! the watch's own pid (signals reach it): call it only in the
# background or in $(...).
hpw() { exec "$HP" watch --token-file "$HP_H_DIR/token" --insecure-skip-tls-verify "$@"; }

# streamed_ok FILE NAME: FILE holds a message of HostInspection NAME with an OK result and a revision
streamed_ok() {
  grep '"name":"'"$2"'"' "$1" | grep '"status":"OK"' | grep -qE '"revision":[1-9][0-9]*'
}

# runs_ge FILE NAME N: FILE holds at least N messages of HostInspection NAME
runs_ge() { [ "$(grep -c '"name":"'"$2"'"' "$1")" -ge "$3" ]; }

test_watch_streams_committed_runs_filtered() {
  local url="wss://127.0.0.1:$METRICS_PORT" w1 w2 rc
  hpw --server "$url" -n hp-w -o json > "$HP_H_DIR/watch-ns.out" 2> "$HP_H_DIR/watch-ns.err" &
  w1=$!
  hpw --server "$url" -n hp-w other > "$HP_H_DIR/watch-other.out" 2> "$HP_H_DIR/watch-other.err" &
  w2=$!
  sleep 1 # both connected before the first run
  apply << EOF
apiVersion: hostpatrol.io/v1alpha1
kind: HostInspection
metadata: {name: health, namespace: hp-w}
spec:
  interval: 2s
  timeout: 1s
  checks:
    - {name: etcd, http: {url: "http://$ETCD_HOSTPORT/health", expectStatus: [200]}}
EOF
  t_eventually 20 streamed_ok "$HP_H_DIR/watch-ns.out" health
  # every line is one message: namespace, name, run, revision, results
  local line
  line=$(grep -m1 '"name":"health"' "$HP_H_DIR/watch-ns.out")
  t_contains "$line" '"namespace":"hp-w"'
  t_contains "$line" '"check":"etcd"'
  t_match "$line" '"run":"[^"]+"'
  # numbers as stored: ms to the microsecond, never 17 digits (docs/results.md, "Numbers")
  t_match "$line" '"total_ms":[0-9]+\.[0-9]{1,3}[,}]'
  t_not grep -qE '[0-9]\.[0-9]{4,}' <<< "$line"
  # a second run arrives too (interval 2 s)
  t_eventually 10 runs_ge "$HP_H_DIR/watch-ns.out" health 2
  kill -TERM "$w1" "$w2"
  wait "$w1"; rc=$?
  t_eq "$rc" 0 "watch exit status after SIGTERM"
  wait "$w2"; rc=$?
  t_eq "$rc" 0 "filtered watch exit status after SIGTERM"
  # the watch on another name got the table header only
  t_eq "$(grep -c health "$HP_H_DIR/watch-other.out")" 0 "messages for another name"
  t_contains "$(head -n1 "$HP_H_DIR/watch-other.out")" "NAMESPACE"
  kc -n hp-w delete hi health --wait=false > /dev/null
}

test_watch_table_output() {
  local url="wss://127.0.0.1:$METRICS_PORT" w rc
  hpw --server "$url" -n hp-w tbl > "$HP_H_DIR/watch-tbl.out" 2> "$HP_H_DIR/watch-tbl.err" &
  w=$!
  sleep 1
  apply << EOF
apiVersion: hostpatrol.io/v1alpha1
kind: HostInspection
metadata: {name: tbl, namespace: hp-w}
spec:
  interval: 2s
  timeout: 1s
  checks:
    - {name: etcd, http: {url: "http://$ETCD_HOSTPORT/health", expectStatus: [200]}}
EOF
  t_eventually 20 grep -qE '^[0-9T:-]+Z +hp-w +tbl +etcd +- +OK' "$HP_H_DIR/watch-tbl.out"
  kill -TERM "$w"
  wait "$w"; rc=$?
  t_eq "$rc" 0 "watch exit status after SIGTERM"
  kc -n hp-w delete hi tbl --wait=false > /dev/null
}

test_watch_errors_are_named() {
  local port rc out
  port=$(hp_h_port)
  out=$(hpw --server "wss://127.0.0.1:$port" 2>&1); rc=$?
  t_eq "$rc" 1 "exit status with no server"
  t_contains "$out" "wss://127.0.0.1:$port"
  out=$("$HP" watch --bogus 2>&1); rc=$?
  t_eq "$rc" 2
  t_contains "$out" "--bogus"
  out=$("$HP" watch --server http://x:1 2>&1); rc=$?
  t_eq "$rc" 2
  t_contains "$out" "--server"
  out=$("$HP" watch -o yaml 2>&1); rc=$?
  t_eq "$rc" 2
  t_contains "$out" "--output"
  out=$("$HP" watch name-only 2>&1); rc=$?
  t_eq "$rc" 2
  t_contains "$out" "--namespace"
}

test_watch_ends_with_the_server() {
  # a controller of its own, stopped under a connected watch: exit 1 naming the server
  local port w rc c
  port=$(hp_h_port)
  start_hp -w w2 controller --namespace hp-w2 --log-level info --metrics-bind-address "127.0.0.1:$port"
  c=$HP_H_LASTPID
  t_eventually 10 curl -sk -o /dev/null "https://127.0.0.1:$port/metrics"
  hpw --server "wss://127.0.0.1:$port" -n hp-w -o json > /dev/null 2> "$HP_H_DIR/watch-end.err" &
  w=$!
  sleep 1
  kill -TERM "$c"
  wait "$c"
  wait "$w"; rc=$?
  t_eq "$rc" 1 "watch exit status when the server goes"
  t_contains "$(cat "$HP_H_DIR/watch-end.err")" "wss://127.0.0.1:$port"
}

t_main
