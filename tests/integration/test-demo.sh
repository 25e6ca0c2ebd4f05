#!/usr/bin/env bash
# test-demo.sh - the README's first command works: `make demo` brings up the control plane, a
# results etcd, the CRD, the sample and the controller; the sample's result lands in etcd and is
# shown; Ctrl-C leaves nothing behind.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

test_demo_comes_up_and_ctrl_c_cleans_up() {
  local out dir kcfg etcd rc pid
  out=$(mktemp)
  # make demo runs tests/harness/demo.sh after its set-up targets; run that script directly so
  # the signal goes to it (as Ctrl-C would), with SIGINT not inherited as ignored.
  env --default-signal=INT bash "$HP_H_ROOT/tests/harness/demo.sh" > "$out" 2>&1 &
  pid=$!
  t_eventually 180 grep -q '^demo: ready' "$out"
  kcfg=$(awk '$1=="kubeconfig"{print $2}' "$out")
  etcd=$(awk '$1=="results" && $2=="etcd"{print $3}' "$out")
  dir=$(dirname "$kcfg")
  t_eq "$("$KUBECTL" --kubeconfig "$kcfg" get hostinspections -n default -o name)" \
    hostinspection.hostpatrol.io/local "sample applied"
  t_eq "$("$KUBECTL" --kubeconfig "$kcfg" get hi local -o jsonpath='{.spec.checks[3].http.url}')" \
    "$etcd/health" "sample points at the local endpoint"
  t_eq "$(curl -fsS --max-time 5 "$etcd/health" | jq -r .health)" true "results etcd healthy"
  # the controller made the sample Ready, its result is in etcd and the demo printed it
  t_eq "$("$KUBECTL" --kubeconfig "$kcfg" get hi local -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" \
    True "sample Ready"
  t_contains "$("$ETCDCTL36" --endpoints "$etcd" get --print-value-only "$(result_key default local local-http -)")" \
    '"status":"OK"'
  # each result once as it lands, with what it measured, and a line per run
  t_eventually 10 grep -q -E '^[0-9:]{8}  default/local +local-http +- +OK +200 in [0-9.]+ m?s$' "$out"
  t_eventually 10 grep -q -E '^ +default/local +run [^ ]+ by controller/[^ ]+: 1 result, 1 OK$' "$out"
  # the agent's node-local results land too, in words, and the status counts them
  t_eventually 30 grep -q -E 'default/local +memory +[^ ]+ +(OK|WARN|CRIT) +[0-9.]+% available of [0-9.]+ [KMGT]?i?B' "$out"
  t_eventually 30 grep -q -E 'default/local +root-disk +[^ ]+ +(OK|WARN|CRIT) +[0-9.]+% used of ' "$out"
  t_eventually 30 grep -q -E 'default/local +load +[^ ]+ +(OK|WARN|CRIT) +[0-9.]+ per CPU over 5 min \(load ' "$out"
  t_eventually 10 grep -q -E '^ +default/local +run [^ ]+ by agent/[^ ]+: 3 results' "$out"
  # one line per result per run: as many local-http lines as controller runs, and no colour
  # (not a terminal)
  t_eq "$(grep -c ' local-http ' "$out")" "$(grep -c 'by controller/' "$out")" "one line per result"
  t_not grep -q $'\x1b' "$out"
  counted() { [ "$("$KUBECTL" --kubeconfig "$kcfg" get hi local -o jsonpath='{.status.nodes.matching}')" = 1 ]; }
  t_eventually 30 counted
  kill -INT "$pid"
  wait "$pid"; rc=$?
  t_eq "$rc" 130 "demo ends by SIGINT"
  [ -z "$(hp_h_leftovers "$dir")" ] || t_fail "processes left: $(hp_h_leftovers "$dir")"
  # the results watcher too (its command line names the results etcd, not the session)
  local url
  url=$(grep -oE -- '--endpoints http://127\.0\.0\.1:[0-9]+ get' "$out" | head -n 1 | cut -d' ' -f2)
  [ -n "$url" ] || t_fail "no results etcd URL in the demo's output"
  [ -z "$(hp_h_leftovers "--etcd-endpoints $url")" ] ||
    t_fail "processes left: $(hp_h_leftovers "--etcd-endpoints $url")"
  [ ! -e "$dir" ] || t_fail "session dir left: $dir"
  rm -f "$out"
}

t_main
