#!/usr/bin/env bash
# test-etcd-faults.sh - the batch queue's guarantees under real faults, the method of etcd's
# robustness tests: every run of the REAL binary (`hostpatrol bench etcd`) writes unique values
# in >= 1000 batches while a fault is injected, then reads etcd back (--verify / --check):
# committed batches present exactly once and atomically, failed / rolled-back ones absent.
# Faults: toxiproxy latency on responses beyond the deadline (the phantom case), reset_peer (over
# h2c and over mTLS, where it cuts handshakes), timeout (a stalled link), kill -9 and restart of a
# member and of the leader of a 3-member cluster, kill -9 of the writer mid-run followed by a
# restart.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
T_TIMEOUT=600

setup() {
  hp_h_init
  hp_h_etcd r34 3.4 || return 1
  hp_h_etcd r36 3.6 || return 1
  hp_h_etcd_cluster rc 3.6 3 || return 1
  hp_h_toxiproxy || return 1
  hp_h_toxi_proxy p34 "${HP_ETCD_URL[r34]#http://}" || return 1
  hp_h_toxi_proxy p36 "${HP_ETCD_URL[r36]#http://}" || return 1
  # over TLS (mTLS, as etcd runs in clusters): the same faults cut TLS handshakes
  hp_h_pki || return 1
  HP_H_ETCD_TLS=1 hp_h_etcd t36 3.6 || return 1
  hp_h_toxi_proxy t36 "${HP_ETCD_URL[t36]#https://}" || return 1
}

# bench_report ENDPOINTS ARGS...: run the real binary, JSON report on stdout
bench_report() {
  local eps=$1; shift
  "$HOSTPATROL" bench etcd --endpoints "$eps" -o json "$@"
}

# flap PROXY TOXIC TYPE STREAM ATTRS: toggle a toxic on (0.8 s) / off (0.8 s) until stopped;
# each toggle on that toxiproxy refused is counted in $HP_H_DIR/flap.PROXY.refused (a run that
# no fault hit then says why)
flap() {
  local stop=$HP_H_DIR/flap.$1.stop
  rm -f "$stop" "$HP_H_DIR/flap.$1.refused"
  (
    while [ ! -e "$stop" ]; do
      hp_h_toxic_add "$1" "$2" "$3" "$4" "$5" 2> /dev/null || echo x >> "$HP_H_DIR/flap.$1.refused"
      sleep 0.8
      hp_h_toxic_remove "$1" "$2" 2> /dev/null
      sleep 0.8
    done
  ) > /dev/null 2>&1 &
  FLAP_PID=$!
}
unflap() {
  touch "$HP_H_DIR/flap.$1.stop"
  wait "$FLAP_PID" 2> /dev/null
  hp_h_toxic_remove "$1" "$2" 2> /dev/null || true
}

# check_report JSON MIN_BATCHES: verified, no violation, enough batches
check_report() {
  local r=$1
  echo "# $(jq -c '{committed,failed,rolled_back,unresolved,txns,max_final_ms,step_timeouts,violations}' <<< "$r")" >&2
  t_eq "$(jq -r .verified <<< "$r")" true "verified"
  t_eq "$(jq -r .violations <<< "$r")" 0 "violations: $(jq -r .first_violation <<< "$r")"
  t_ge "$(jq -r .txns <<< "$r")" "$2" "batches"
}

# faulty_run PROXY TOXIC TYPE STREAM ATTRS [MIN_HIT]: verified runs (FAULTY_SHAPE: the size
# flags, default 2,000 results of one per txn; FAULTY_TLS=1: https with the client certificate)
# through the flapping fault until at least 1000 batches were sent and MIN_HIT results (default
# 0) were hit by it (a fast run may fall between two flaps); prints the summed outcome counts and
# the slowest result's ms from enqueue to final as JSON; the reasons of the failed results, one
# per line, in $HP_H_DIR/faulty-PROXY.reasons
faulty_run() {
  local r rc total=0 hit=0 runs=0 min_hit=${6:-0} slowest=0 ms j url tls=()
  local reasons=$HP_H_DIR/faulty-$1.reasons
  url=http://127.0.0.1:${HP_TOXI_PORT[$1]}
  if [ -n "${FAULTY_TLS:-}" ]; then
    url=https://127.0.0.1:${HP_TOXI_PORT[$1]}
    tls=(--ca-file "$HP_H_DIR/pki/ca.crt" --cert-file "$HP_H_DIR/pki/etcd-client.crt"
      --key-file "$HP_H_DIR/pki/etcd-client.key")
  fi
  : > "$reasons"
  flap "$1" "$2" "$3" "$4" "$5"
  while { [ "$total" -lt 1000 ] || [ "$hit" -lt "$min_hit" ]; } && [ "$runs" -lt 10 ]; do
    rc=0
    # a run takes about as long as a flap (1.6 s): start it at a random point of the cycle, so
    # that runs cannot keep falling between two toxics
    j=$((RANDOM % 16))
    sleep "$((j / 10)).$((j % 10))"
    # shellcheck disable=SC2086 # FAULTY_SHAPE is a list of flags
    r=$(bench_report "$url" ${FAULTY_SHAPE:---results 2000 --txn-ops 2} "${tls[@]}" \
      --concurrency 8 --deadline 1s --verify --outcomes "$HP_H_DIR/faulty-$1.jsonl" 2>&1) || rc=$?
    [ "$rc" -eq 0 ] || { unflap "$1" "$2"; t_fail "bench failed ($rc): $r"; }
    jq -r 'select(.outcome == "failed") | .reason' "$HP_H_DIR/faulty-$1.jsonl" >> "$reasons"
    check_report "$r" 1
    total=$((total + $(jq -r .txns <<< "$r")))
    hit=$((hit + $(jq -r '.rolled_back + .failed' <<< "$r")))
    ms=$(jq -r '.max_final_ms | floor' <<< "$r")
    [ "$ms" -le "$slowest" ] || slowest=$ms
    runs=$((runs + 1))
  done
  unflap "$1" "$2"
  [ "$hit" -ge "$min_hit" ] ||
    echo "# no result hit in $runs runs; toxics toxiproxy refused to add:" \
      "$(wc -l < "$HP_H_DIR/flap.$1.refused" 2> /dev/null || echo 0)" >&2
  t_ge "$total" 1000 "batches sent over $runs runs"
  echo "{\"txns\":$total,\"hit\":$hit,\"runs\":$runs,\"slowest_ms\":$slowest}"
}

# reset_run PROXY [MIN_HIT]: faulty_run under reset_peer flaps (MIN_HIT as there); every result
# is final within 20 s of its enqueue (deadline 1 s). A reset can leave a connection accepted but
# silent, which libcurl takes for alive: the gRPC client retires a lane whose call waited its
# whole time with nothing coming (grpc_client.h). Without that, results took up to 127 s (each
# later call waited on the same silent connection until the 30 s stall drop).
reset_run() {
  local r
  r=$(faulty_run "$1" reset reset_peer downstream '{"timeout":0}' "${2:-0}") || exit 1
  echo "# $r" >&2
  t_le "$(jq -r .slowest_ms <<< "$r")" 20000 "slowest result's ms from enqueue to final"
}

# hit_run ARGS: faulty_run, and the fault must have hit some results (timed out / resolved)
hit_run() {
  local r
  r=$(faulty_run "$@" 1) || exit 1
  t_ge "$(jq -r .hit <<< "$r")" 1 "results hit by the fault"
}

test_phantom_latency_3_6() { hit_run p36 late latency downstream '{"latency":1500}'; }
test_phantom_latency_3_4() { hit_run p34 late latency downstream '{"latency":1500}'; }
# records of several results (as the controller queues a run's): a late commit is rolled back
# or confirmed for all the results of a record together, none lost or applied twice
test_phantom_latency_run_records_3_6() {
  FAULTY_SHAPE="--results 12000 --txn-ops 13 --writes-per-record 6" hit_run p36 late latency downstream '{"latency":1500}'
}
test_reset_peer_3_6() { reset_run p36; }
test_reset_peer_3_4() { reset_run p34; }
# over TLS a reset cuts handshakes too: an outage to retry, not a TLS refusal (which fails at
# once: the bench refused to start, and results failed "TLS with etcd failed", before 4 December)
test_reset_peer_over_tls_3_6() {
  local reasons=$HP_H_DIR/faulty-t36.reasons
  FAULTY_TLS=1 reset_run t36 1 # some results hit: resets met handshakes and calls
  t_eq "$(grep -c 'TLS with etcd failed' "$reasons")" 0 \
    "results failed as a TLS refusal: $(grep -m1 'TLS with etcd failed' "$reasons")"
}
test_stalled_link_3_6() { hit_run p36 stall timeout upstream '{"timeout":0}'; }
test_stalled_link_3_4() { hit_run p34 stall timeout upstream '{"timeout":0}'; }

leader_of() { # cluster: member name (rc.N) of the current leader
  local i lead id
  lead=$(curl -fsS --max-time 5 -X POST "${HP_ETCD_URL[rc.0]}/v3/maintenance/status" -d '{}' | jq -r .leader)
  for i in 0 1 2; do
    id=$(curl -fsS --max-time 5 -X POST "${HP_ETCD_URL[rc.$i]}/v3/maintenance/status" -d '{}' | jq -r .header.member_id)
    [ "$id" = "$lead" ] && { echo "rc.$i"; return; }
  done
}

# kill_rounds WHICH: rounds of a verified bench against the cluster, each killing (-9) a member
# after 1 s and restarting it after 3 s, until >= 1000 batches were sent. WHICH is "leader" or
# "follower", chosen afresh each round.
kill_rounds() {
  local which=$1 m r pid out total=0 rounds=0 leader
  out=$(mktemp)
  while [ "$total" -lt 1000 ] && [ "$rounds" -lt 6 ]; do
    bench_report "${HP_ETCD_URL[rc]}" --results 3000 --txn-ops 3 --concurrency 8 --deadline 6s \
      --verify > "$out" 2>&1 &
    pid=$!
    sleep 1
    leader=$(leader_of)
    if [ "$which" = leader ]; then
      m=$leader
    else
      for m in rc.0 rc.1 rc.2; do [ "$m" != "$leader" ] && break; done
    fi
    t_ok hp_h_etcd_stop "$m"
    sleep 2
    t_ok hp_h_etcd_restart "$m"
    wait "$pid" || t_fail "bench failed: $(cat "$out")"
    r=$(cat "$out")
    check_report "$r" 1
    total=$((total + $(jq -r .txns <<< "$r")))
    rounds=$((rounds + 1))
  done
  rm -f "$out"
  t_ge "$total" 1000 "batches sent over $rounds rounds"
}

test_kill_9_of_a_member() { kill_rounds follower; }

test_kill_9_of_the_leader() { kill_rounds leader; }

test_kill_9_of_the_writer_then_restart() {
  local dir=$HP_H_DIR/writer-kill out r pid
  mkdir -p "$dir"
  out=$dir/first.jsonl
  "$HOSTPATROL" bench etcd --endpoints "${HP_ETCD_URL[r36]}" --results 200000 --txn-ops 2 \
    --concurrency 8 --deadline 2s --writer killme --state-dir "$dir/state" \
    --outcomes "$out" > /dev/null 2>&1 &
  pid=$!
  t_eventually 30 lines_at_least "$out" 1000
  kill -KILL "$pid"
  wait "$pid" 2> /dev/null
  # what the killed run reported holds
  r=$(bench_report "${HP_ETCD_URL[r36]}" --check "$out") || t_fail "check failed: $r"
  check_report "$r" 1000
  # a restart of the same writer (epoch claim, journal recovery) runs and verifies...
  r=$(bench_report "${HP_ETCD_URL[r36]}" --results 1200 --txn-ops 2 --concurrency 8 --deadline 2s \
    --writer killme --state-dir "$dir/state" --verify) || t_fail "restart failed: $r"
  check_report "$r" 1000
  # ...and what the killed run reported still holds afterwards
  r=$(bench_report "${HP_ETCD_URL[r36]}" --check "$out") || t_fail "check failed: $r"
  check_report "$r" 1000
}

lines_at_least() { [ "$(wc -l < "$1" 2> /dev/null || echo 0)" -ge "$2" ]; }

t_main
