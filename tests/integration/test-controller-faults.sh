#!/usr/bin/env bash
# test-controller-faults.sh - `hostpatrol controller` under faults, against the REAL
# kube-apiserver (watch cache off, so a watch from a compacted revision gets a real 410) and a
# real results etcd 3.6:
#   - the watch is cut by toxiproxy while resources are created, changed and deleted: it resumes
#     and misses nothing;
#   - the apiserver's etcd is compacted while the watch is cut: 410 Gone, relist, nothing missed;
#   - the apiserver is killed -9 and restarted mid-run: the controller carries on;
#   - two controllers: one leader; kill -9 of the leader -> the other takes over within the
#     lease; a paused (SIGSTOP) leader that wakes up after being replaced is fenced: etcd's
#     history shows no run written twice, and no write of a deposed leader after its
#     successor's first.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

T_TIMEOUT=180

setup() {
  hp_h_init
  HP_H_APISERVER_EXTRA="--watch-cache=false" hp_h_control_plane || return 1
  hp_h_etcd res 3.6 || return 1
  hp_h_toxiproxy || return 1
  hp_h_toxi_proxy api "${HP_APISERVER_URL#https://}" || return 1
  hp_h_crd || return 1
  kc create namespace hp-cut > /dev/null && kc create namespace hp-ha > /dev/null || return 1
  # the controller of the first tests reaches the apiserver through the proxy
  sed "s#server: .*#server: https://127.0.0.1:${HP_TOXI_PORT[api]}#" "$HP_KUBECONFIG" > "$HP_H_DIR/kc-proxy"
  ETCD_HOSTPORT=${HP_ETCD_URL[res]#http://}
  export ETCD_HOSTPORT
  start_hp cut controller --kubeconfig "$HP_H_DIR/kc-proxy" --namespace hp-cut --identity cut
}

# observed NS NAME: the status of HostInspection NS/NAME is of its current generation
observed() { [ "$(field "$1" "$2" .status.observedGeneration)" = "$(field "$1" "$2" .metadata.generation)" ]; }

test_watch_cut_resumes_without_missing_a_change() {
  hi hp-cut a; hi hp-cut doomed
  t_eventually 30 cond_is hp-cut a Ready True
  t_eventually 30 cond_is hp-cut doomed Ready True
  t_ok hp_h_toxi_enable api false
  hi hp-cut b
  kc -n hp-cut patch hi a --type=merge -p '{"spec":{"timeout":"900ms"}}' > /dev/null
  kc -n hp-cut delete hi doomed --wait=false > /dev/null
  sleep 3
  t_ok hp_h_toxi_enable api true
  t_eventually 60 cond_is hp-cut b Ready True
  t_eventually 30 observed hp-cut a
  t_eventually 30 gone hp-cut doomed
  t_ok no_result hp-cut doomed
  t_ok alive cut
}

test_compaction_while_cut_gives_410_and_relist() {
  t_ok hp_h_toxi_enable api false
  hi hp-cut c
  kc -n hp-cut patch hi b --type=merge -p '{"spec":{"timeout":"800ms"}}' > /dev/null
  local rev
  rev=$("$ETCDCTL36" --endpoints "${HP_ETCD_URL[kube]}" endpoint status -w json | jq '.[0].Status.header.revision')
  t_ok "$ETCDCTL36" --endpoints "${HP_ETCD_URL[kube]}" compact "$rev"
  t_ok hp_h_toxi_enable api true
  t_eventually 60 cond_is hp-cut c Ready True
  t_eventually 30 observed hp-cut b
  relisted() { grep -q '410 Gone' "$HP_H_DIR/cut.log"; }
  t_eventually 10 relisted
  echo "# $(grep -c '410 Gone' "$HP_H_DIR/cut.log") relist(s) after 410 Gone"
}

test_apiserver_killed_and_restarted_mid_run() {
  # an endpoint that answers after 2 s and notes each request: a run is in progress while the
  # apiserver dies, so the run's status write fails and must be written after the restart
  local port
  port=$(hp_h_port)
  slow_http "$port" "$HP_H_DIR/d.hits" &
  local srv=$!
  t_eventually 20 curl -fsS --max-time 5 "http://127.0.0.1:$port/"
  apply <<EOF
apiVersion: hostpatrol.io/v1alpha1
kind: HostInspection
metadata: {name: d, namespace: hp-cut}
spec:
  interval: 1h
  timeout: 5s
  checks: [{name: page, http: {url: "http://127.0.0.1:$port/"}}]
EOF
  t_eventually 30 cond_is hp-cut d Ready True
  local before
  before=$(result hp-cut d page - | jq -r .run)
  : > "$HP_H_DIR/d.hits"
  kc -n hp-cut annotate hi d hostpatrol.io/run-now=mid > /dev/null
  t_eventually 20 test -s "$HP_H_DIR/d.hits"
  t_ok hp_h_apiserver_stop # the run is probing now; its status write will find no apiserver
  sleep 4
  t_ok hp_h_apiserver_restart
  t_ok alive cut
  t_eventually 60 field_is hp-cut d .status.runNow mid
  t_eventually 30 cond_is hp-cut d Ready True
  # the run committed once (its result in etcd) and its status was written after the restart,
  # without running again
  t_not [ "$(result hp-cut d page - | jq -r .run)" = "$before" ]
  t_eq "$(wc -l < "$HP_H_DIR/d.hits")" 1 "one run for the run-now"
  grep -q 'status not written' "$HP_H_DIR/cut.log" || t_fail "the status write did not fail during the outage"
  kill "$srv"
  # and the controller still follows changes
  kc -n hp-cut patch hi d --type=merge -p '{"spec":{"timeout":"4s"}}' > /dev/null
  t_eventually 30 observed hp-cut d
  t_ok alive cut
}

# on failure: the status of every HostInspection and the tail of each controller's log
t_on_fail() {
  show_his
  show_tails 10 "$HP_H_DIR"/cut.log "$HP_H_DIR"/ha-*.log
}

leader_is() { [ "$(lease_holder hp-ha)" = "$1" ]; }
wrote() { history hp-ha | grep -q "controller/$1 "; }

test_two_controllers_fail_over_and_a_paused_leader_is_fenced() {
  local le=(--namespace hp-ha --leader-elect --leader-elect-namespace hp-ha --lease-duration 4s
    --renew-deadline 3s --retry-period 1s)
  start_hp ha-a controller --identity ha-a "${le[@]}"
  t_eventually 20 leader_is ha-a
  start_hp ha-b controller --identity ha-b "${le[@]}"
  hi hp-ha svc 1500ms
  t_eventually 30 cond_is hp-ha svc Ready True
  t_eventually 10 wrote ha-a
  sleep 2
  t_eq "$(lease_holder hp-ha)" ha-a "one leader"
  t_not wrote ha-b
  # kill -9 of the leader: the other takes over within the lease (4 s) plus a retry period
  kill -KILL "$(pid ha-a)"
  local t0=$SECONDS
  t_eventually 15 leader_is ha-b
  echo "# ha-b leads $((SECONDS - t0)) s after kill -9 of ha-a (lease 4 s)"
  t_eventually 15 wrote ha-b
  # pause the leader, let a new replica take over, then wake the old one up
  kill -STOP "$(pid ha-b)"
  start_hp ha-c controller --identity ha-c "${le[@]}"
  t_eventually 20 leader_is ha-c
  t_eventually 15 wrote ha-c
  kill -CONT "$(pid ha-b)"
  dead() { ! alive ha-b; }
  t_eventually 30 dead
  grep -qE 'leadership lost|fenced: another instance' "$HP_H_DIR/ha-b.log" || t_fail "ha-b did not stop as a deposed leader"
  echo "# ha-b on waking: $(grep -c 'fenced' "$HP_H_DIR/ha-b.log") log line(s) about fenced commits"
  sleep 3
  check_history hp-ha
  t_eq "$(lease_holder hp-ha)" ha-c
  cond_is hp-ha svc Ready True || t_fail "not Ready after fail-over"
}

# Bounded shutdown: SIGTERM while etcd answers 5 s late (toxiproxy: commits are applied, their
# answers come after the run's deadline) and a probe hangs on an endpoint that never answers: the
# process exits within --shutdown-timeout, exit status 0; a batch it could not resolve is
# journaled, and the next start (etcd back) resolves it. (Here the queue mostly refuses to send
# a commit it cannot finish in time, so there may be none: `hostpatrol bench etcd` tests the
# journal under SIGTERM in test-etcd-liveness.sh.)
test_sigterm_with_etcd_slow_and_a_probe_hanging_exits_within_the_shutdown_timeout() {
  kc create namespace hp-sd > /dev/null 2>&1 || true
  hp_h_toxi_proxy etcd "$ETCD_HOSTPORT" || t_fail "etcd proxy"
  local port pid rc=0 t0 took
  port=$(hp_h_port)
  python3 -c 'import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(64)
while True: time.sleep(3600)' "$port" "$HP_H_DIR" &
  local sink=$!
  sd() {
    start_hp sd controller --namespace hp-sd --identity sd \
      --etcd-endpoints "http://127.0.0.1:${HP_TOXI_PORT[etcd]}" --shutdown-timeout 6s
  }
  sd
  apply <<EOF
apiVersion: hostpatrol.io/v1alpha1
kind: HostInspection
metadata: {name: steady, namespace: hp-sd}
spec:
  interval: 2s
  timeout: 1s
  checks: [{name: health, http: {url: "http://$ETCD_HOSTPORT/health", expectStatus: [200]}}]
---
apiVersion: hostpatrol.io/v1alpha1
kind: HostInspection
metadata: {name: hung, namespace: hp-sd}
spec:
  interval: 12s
  timeout: 10s
  targets: [{name: sink, address: 127.0.0.1}]
  checks: [{name: never, tcp: {port: $port, expect: never}}]
EOF
  t_eventually 30 cond_is hp-sd steady Ready True
  # etcd answers 5 s late: commits land after their run's deadline and cannot be resolved soon
  t_ok hp_h_toxic_add etcd slow latency downstream '{"latency":5000}'
  late() { grep -q '"key":"hp-sd/steady".*not committed' "$HP_H_DIR/sd.log"; }
  t_eventually 30 late
  pid=$(cat "$HP_H_DIR/sd.pid")
  t0=$(date +%s%N)
  kill -TERM "$pid"
  while kill -0 "$pid" 2> /dev/null; do
    [ $(($(date +%s%N) - t0)) -lt 30000000000 ] || break
    sleep 0.05
  done
  took=$((($(date +%s%N) - t0) / 1000000))
  t_not kill -0 "$pid" 2> /dev/null
  wait "$pid" 2> /dev/null || rc=$?
  echo "# SIGTERM with etcd answering 5 s late and a probe hanging: exited after $took ms (--shutdown-timeout 6s)"
  t_ge 7000 "$took" "milliseconds from SIGTERM to exit (bound: 6 s + 1 s)"
  t_contains "$(cat "$HP_H_DIR/sd.log")" '"msg":"stopped"'
  local journaled
  journaled=$(find "$HP_H_DIR/state-sd" -name '*.json' 2> /dev/null | wc -l)
  echo "# batches journaled at exit: $journaled"
  # etcd back: the next start resolves the journal
  t_ok hp_h_toxic_remove etcd slow
  sd
  resolved() { [ "$(find "$HP_H_DIR/state-sd" -name '*.json' | wc -l)" = 0 ]; }
  t_eventually 60 resolved
  t_eventually 30 cond_is hp-sd steady Ready True
  kill "$sink" 2> /dev/null
  kill -TERM "$(pid sd)"
  check_history hp-sd controller/
}

# A commit not final by its run's deadline (issue 12): the run ends anyway (its worker is free,
# the next run starts), Ready=False reason CommitUnresolved names the batch, and the batch's
# outcome, when etcd answers again, comes as an Event naming it and updates Ready while that run
# is the latest. etcd answers 4 s late through the proxy, the run's timeout is 6 s: the read of
# the stored results returns at ~4 s, the commit's answer would come at ~8 s, past the deadline;
# resolving it needs 4 round trips (16 s) but the run waits only 6 s past its deadline.
test_an_unresolved_commit_frees_the_run_and_its_outcome_updates_status_and_events() {
  kc create namespace hp-cu > /dev/null 2>&1 || true
  hp_h_toxi_proxy etcdu "$ETCD_HOSTPORT" || t_fail "etcd proxy"
  start_hp cu controller --namespace hp-cu --identity cu \
    --etcd-endpoints "http://127.0.0.1:${HP_TOXI_PORT[etcdu]}"
  apply <<EOF
apiVersion: hostpatrol.io/v1alpha1
kind: HostInspection
metadata: {name: late, namespace: hp-cu}
spec:
  interval: 1h
  timeout: 6s
  checks: [{name: health, http: {url: "http://$ETCD_HOSTPORT/health", expectStatus: [200]}}]
EOF
  t_eventually 30 cond_is hp-cu late Ready True
  ready_reason() { cond hp-cu late Ready reason; }
  ready_msg() { cond hp-cu late Ready message; }
  ready_reason_is() { [ "$(ready_reason)" = "$1" ]; }
  run_now() { kc -n hp-cu annotate hi late --overwrite "hostpatrol.io/run-now=$(t_uniq r)" > /dev/null; }
  events() { kc -n hp-cu get events --field-selector "reason=$1" -o jsonpath='{range .items[*]}{.message}{"\n"}{end}'; }
  event_names() { events "$1" | grep -q -- "$2"; }
  starts() { grep -c '"key":"hp-cu/late".*run starts' "$HP_H_DIR/cu.log"; }
  local b1 b2 msg n r1 r2
  # 1. unresolved at the run's end; resolved once etcd is fast again: Ready follows
  t_ok hp_h_toxic_add etcdu slow latency downstream '{"latency":4000}'
  run_now
  t_eventually 40 ready_reason_is CommitUnresolved
  msg=$(ready_msg)
  b1=$(grep -o 'batch [^ ]*' <<< "$msg" | head -1 | cut -d' ' -f2)
  r1=$(grep -o '^run [^:]*' <<< "$msg" | cut -d' ' -f2)
  echo "# Ready: $msg"
  t_match "$b1" '^[A-Za-z0-9]' "the condition names the batch"
  t_contains "$(cat "$HP_H_DIR/cu.log")" "not committed: etcd commit of batch $b1"
  t_ok hp_h_toxic_remove etcdu slow
  t_eventually 60 event_names CommitRolledBack "batch $b1"
  t_eventually 20 ready_reason_is CommitFailed
  t_contains "$(ready_msg)" "batch $b1, unresolved when the run ended, is final: rolled_back"
  echo "# Event: $(events CommitRolledBack | grep -- "batch $b1")"
  # 2. a new run starts while a batch is unresolved; that older outcome is an Event only
  t_ok hp_h_toxic_add etcdu slow latency downstream '{"latency":4000}'
  run_now
  unresolved_again() { ready_reason_is CommitUnresolved && ! ready_msg | grep -q -- "batch $b1"; }
  t_eventually 40 unresolved_again
  msg=$(ready_msg)
  b2=$(grep -o 'batch [^ ]*' <<< "$msg" | head -1 | cut -d' ' -f2)
  r2=$(grep -o '^run [^:]*' <<< "$msg" | cut -d' ' -f2)
  n=$(starts)
  run_now
  next_run() { [ "$(starts)" -gt "$n" ]; }
  t_eventually 10 next_run # not behind the unresolved batch
  t_ok hp_h_toxic_remove etcdu slow
  t_eventually 60 event_names CommitRolledBack "batch $b2"
  not_b2() { ! ready_reason_is CommitUnresolved && ! ready_msg | grep -q -- "batch $b2"; }
  t_eventually 40 not_b2
  echo "# Ready after the third run: $(ready_reason): $(ready_msg)"
  kill -TERM "$(pid cu)"
  # both batches landed late (etcd applied them, the answer came too late) and were undone: the
  # undo's writes are not new writes of a run (history leaves them out), and no value of
  # either run is left
  check_history hp-cu controller/
  t_not history_has hp-cu "$r1" "$r2"
}
history_has() { # NS RUN...: is a value of one of the runs in etcd now?
  local ns=$1 v; shift
  v=$(ec get --print-value-only --prefix "$(result_key "$ns")")
  for r in "$@"; do grep -q -- "\"run\":\"$r\"" <<< "$v" && return 0; done
  return 1
}

t_main
