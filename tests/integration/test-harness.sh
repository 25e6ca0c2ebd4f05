#!/usr/bin/env bash
# test-harness.sh - proves the test harness runs the REAL components: kube-apiserver 1.34 with
# real kubectl, results etcd 3.4 (Debian) / 3.5 / 3.6 and a 3-member 3.6 cluster through the v3
# JSON gateway, and toxiproxy delaying requests.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

setup() {
  hp_h_init
  hp_h_control_plane || return 1
  hp_h_etcd r34 3.4 || return 1
  hp_h_etcd r35 3.5 || return 1
  hp_h_etcd r36 3.6 || return 1
  hp_h_etcd_cluster rc 3.6 3 || return 1
  hp_h_toxiproxy || return 1
}

b64() { printf '%s' "$1" | base64 -w0; }
# gw URL PATH JSON: one etcd v3 JSON gateway call with a deadline
gw() { curl -fsS --max-time 10 -X POST "$1$2" -d "$3"; }
# etcd_get URL KEY: the value of KEY (decoded), empty when absent
etcd_get() { gw "$1" /v3/kv/range "{\"key\":\"$(b64 "$2")\"}" | jq -r '.kvs[0].value // empty' | base64 -d; }
# value_is URL KEY VALUE: re-reads on every call (for t_eventually)
value_is() { [ "$(etcd_get "$1" "$2")" = "$3" ]; }
etcd_put() { gw "$1" /v3/kv/put "{\"key\":\"$(b64 "$2")\",\"value\":\"$(b64 "$3")\"}" > /dev/null; }

test_apiserver_reports_v1_34() {
  local v
  v=$(kc get --raw /version | jq -r .gitVersion)
  t_match "$v" '^v1\.34\.[0-9]+$' "kube-apiserver version"
  t_eq "$v" "$KUBE_VERSION" "the pinned version"
}

test_crd_applies_and_an_object_is_created() {
  local out
  t_ok kc apply -f "$HP_H_ROOT/crd/hostpatrol.io_hostinspections.yaml"
  t_ok kc wait --for condition=Established --timeout=60s crd/hostinspections.hostpatrol.io
  t_ok kc apply -f "$HP_H_ROOT/examples/hostinspection-web.yaml"
  out=$(kc get hostinspection web -n default -o json)
  # defaults from the schema are applied by the real apiserver
  t_eq "$(jq -r .spec.interval <<< "$out")" 30s
  t_eq "$(jq -r .spec.suspend <<< "$out")" false
  t_eq "$(jq -r '.spec.checks[] | select(.name=="https") | .http.method' <<< "$out")" GET
  t_eq "$(kc get hi -n default -o name)" hostinspection.hostpatrol.io/web "short name"
}

test_crd_rejects_a_bad_object_with_its_message() {
  local out
  t_ok kc wait --for condition=Established --timeout=60s crd/hostinspections.hostpatrol.io
  out=$(kc apply -f - 2>&1 <<'YAML'
apiVersion: hostpatrol.io/v1alpha1
kind: HostInspection
metadata: {name: bad, namespace: default}
spec:
  interval: 5s
  timeout: 10s
  checks: [{name: x, tcp: {port: 22}}]
YAML
) && t_fail "a timeout longer than the interval was accepted"
  t_contains "$out" "spec.timeout must be shorter than spec.interval"
}

etcd_roundtrip() { # NAME EXPECTED-SERVER-VERSION-PREFIX
  local url=${HP_ETCD_URL[$1]} key val ver
  ver=$(curl -fsS --max-time 5 "$url/version" | jq -r .etcdserver)
  t_match "$ver" "^$2" "etcd server version"
  key=$(t_uniq "/hostpatrol-test/$1")
  val=$(t_uniq value)
  t_ok etcd_put "$url" "$key" "$val"
  t_eq "$(etcd_get "$url" "$key")" "$val" "value read back through the gateway"
}

test_etcd_3_4_gateway_put_and_read() { etcd_roundtrip r34 '3\.4\.'; }
test_etcd_3_5_gateway_put_and_read() { etcd_roundtrip r35 '3\.5\.'; }
test_etcd_3_6_gateway_put_and_read() { etcd_roundtrip r36 '3\.6\.'; }

test_etcd_cluster_replicates_and_survives_a_member_kill() {
  local key val n
  n=$(gw "${HP_ETCD_URL[rc.0]}" /v3/cluster/member/list '{}' | jq '.members | length')
  t_eq "$n" 3 "members"
  key=$(t_uniq /hostpatrol-test/cluster)
  val=$(t_uniq a)
  t_ok etcd_put "${HP_ETCD_URL[rc.0]}" "$key" "$val"
  t_eq "$(etcd_get "${HP_ETCD_URL[rc.2]}" "$key")" "$val" "read from another member"
  # kill -9 one member: the other two keep a quorum (after an election if it was the leader:
  # the put is retried through it); the member catches up after restart
  t_ok hp_h_etcd_stop rc.1
  val=$(t_uniq b)
  t_eventually 30 etcd_put "${HP_ETCD_URL[rc.0]}" "$key" "$val"
  t_ok hp_h_etcd_restart rc.1
  t_eventually 30 value_is "${HP_ETCD_URL[rc.1]}" "$key" "$val"
}

test_toxiproxy_latency_delays_a_request() {
  local key val plain slow url
  t_ok hp_h_toxi_proxy etcd36 "${HP_ETCD_URL[r36]#http://}"
  url=http://127.0.0.1:${HP_TOXI_PORT[etcd36]}
  key=$(t_uniq /hostpatrol-test/toxi)
  val=$(t_uniq v)
  t_ok etcd_put "$url" "$key" "$val"
  t_eq "$(etcd_get "$url" "$key")" "$val" "through the proxy"
  t_ok hp_h_toxic_add etcd36 slow latency downstream '{"latency":600,"jitter":0}'
  slow=$(curl -fsS -o /dev/null -w '%{time_total}' --max-time 10 -X POST "$url/v3/kv/range" \
    -d "{\"key\":\"$(b64 "$key")\"}")
  # time_total is in seconds with microseconds; the toxic adds at least 600 ms
  t_ge "$(awk -v t="$slow" 'BEGIN{printf "%d", t*1000}')" 600 "delayed request took ${slow}s"
  t_ok hp_h_toxic_remove etcd36 slow
  plain=$(curl -fsS -o /dev/null -w '%{time_total}' --max-time 10 -X POST "$url/v3/kv/range" \
    -d "{\"key\":\"$(b64 "$key")\"}")
  [ "$(awk -v t="$plain" 'BEGIN{print (t < 0.6)}')" = 1 ] || t_fail "request still delayed after the toxic was removed: ${plain}s"
}

t_main
