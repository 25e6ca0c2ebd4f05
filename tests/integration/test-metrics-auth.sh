#!/usr/bin/env bash
# test-metrics-auth.sh - /metrics and /ws over HTTPS with bearer tokens checked by the REAL
# kube-apiserver (TokenReview, SubjectAccessReview), as kubebuilder's secure metrics do it: no
# token or a bad one -> 401; a ServiceAccount without rights -> 403; bound to the chart's
# metrics-reader ClusterRole -> 200 and the metrics; a token limited to namespace A by a Role sees
# on /ws the results of A and never those of B, while a cluster-wide token sees both; `hostpatrol
# watch` with a token over wss; health endpoints answer without a token while a review is slow
# (the apiserver behind toxiproxy with latency), and other clients of /metrics are not held up;
# the apiserver unreachable -> 503 naming the review; --metrics-cert-dir serves a CA-signed
# certificate and picks up a rotated one; --metrics-secure=false is plain HTTP with a warning.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

HP=$HOSTPATROL
CHART=$HP_H_ROOT/charts/hostpatrol
T_TIMEOUT=120

setup() {
  setup_cluster hp-a hp-b hp-auth || return 1
  METRICS_PORT=$(hp_h_port)
  HEALTH_PORT=$(hp_h_port)
  export METRICS_PORT HEALTH_PORT
  # the chart's metrics-reader ClusterRole, exactly as the chart renders it
  "$HELM" template hostpatrol "$CHART" --namespace hostpatrol-system --kube-version 1.34.0 \
    --set etcd.endpoints=http://etcd:2379 --show-only templates/rbac.yaml |
    kc create --dry-run=client -o json -f - |
    jq 'if .kind == "List" then .items[] else . end | select(.metadata.name == "hostpatrol-metrics-reader")' |
    apply || return 1
  # ServiceAccounts: none (no rights), reader (metrics-reader), all (hostinspections everywhere),
  # limited (hostinspections in hp-a only)
  local sa
  for sa in none reader all limited; do kc -n hp-auth create serviceaccount $sa > /dev/null || return 1; done
  kc create clusterrolebinding hp-auth-reader --clusterrole=hostpatrol-metrics-reader \
    --serviceaccount=hp-auth:reader > /dev/null || return 1
  kc create clusterrole hp-auth-hi-reader --verb=get --resource=hostinspections.hostpatrol.io > /dev/null || return 1
  kc create clusterrolebinding hp-auth-all --clusterrole=hp-auth-hi-reader \
    --serviceaccount=hp-auth:all > /dev/null || return 1
  kc -n hp-a create role hi-reader --verb=get --resource=hostinspections.hostpatrol.io > /dev/null || return 1
  kc -n hp-a create rolebinding limited --role=hi-reader --serviceaccount=hp-auth:limited > /dev/null || return 1
  for sa in none reader all limited; do
    kc -n hp-auth create token $sa --duration=1h > "$HP_H_DIR/token-$sa" || return 1
  done
  # the controller: controller-runtime's kubeconfig (admin client certificate), secure metrics
  start_hp main controller --log-format text --metrics-bind-address "127.0.0.1:$METRICS_PORT" \
    --health-probe-bind-address "127.0.0.1:$HEALTH_PORT"
  hp_h_wait main "$HP_H_LASTPID" code_is "$METRICS_PORT" /metrics 401
}

t_on_fail() {
  show_tails 6 "$HP_H_DIR"/{main,slow,certs}.log "$HP_H_DIR"/watch-*.out "$HP_H_DIR"/watch-*.err
}

tok() { cat "$HP_H_DIR/token-$1"; }
# code PORT PATH [TOKEN-NAME]: the HTTP status of GET https://127.0.0.1:PORT/PATH
code() {
  local auth=()
  [ -n "${3:-}" ] && auth=(-H "Authorization: Bearer $(tok "$3")")
  http_code "https://127.0.0.1:$1$2" "${auth[@]}"
}
# code_is PORT PATH STATUS: GET without a token answers STATUS
code_is() { [ "$(code "$1" "$2")" = "$3" ]; }
# count_ge FILE NS N: FILE holds at least N messages of namespace NS
count_ge() { [ "$(grep -c '"namespace":"'"$2"'"' "$1")" -ge "$3" ]; }
# body PORT PATH TOKEN-NAME: the body of that GET
body() { curl -sk --max-time 20 -H "Authorization: Bearer $(tok "$3")" "https://127.0.0.1:$1$2"; }
# metric NAME [LABELS]: one sample of the main controller's /metrics (read with the reader token)
metric() { body "$METRICS_PORT" /metrics reader | awk -v m="$1${2:-}" '$1 == m {print $2}'; }

test_no_token_or_a_bad_one_is_401() {
  local out
  t_eq "$(code "$METRICS_PORT" /metrics)" 401 "no token"
  out=$(curl -sk -i "https://127.0.0.1:$METRICS_PORT/metrics")
  t_contains "$out" "www-authenticate: Bearer"
  t_contains "$out" "send a bearer token"
  out=$(curl -sk -H "Authorization: Bearer not-a-token" -w ' %{http_code}' "https://127.0.0.1:$METRICS_PORT/metrics")
  t_match "$out" "not authenticated.* 401$"
  # a token the apiserver signed once but for a ServiceAccount that is gone
  kc -n hp-auth create serviceaccount gone > /dev/null
  kc -n hp-auth create token gone > "$HP_H_DIR/token-gone"
  kc -n hp-auth delete serviceaccount gone > /dev/null
  t_eq "$(code "$METRICS_PORT" /metrics gone)" 401 "token of a deleted ServiceAccount"
  # plain HTTP on the HTTPS port is not served
  t_not curl -sf --max-time 5 -o /dev/null "http://127.0.0.1:$METRICS_PORT/metrics"
}

test_token_without_rights_is_403() {
  local out
  out=$(curl -sk -w ' %{http_code}' -H "Authorization: Bearer $(tok none)" "https://127.0.0.1:$METRICS_PORT/metrics")
  t_match "$out" 'Forbidden: user "system:serviceaccount:hp-auth:none" may not get path "/metrics".* 403$'
  # rights on hostinspections are not rights on /metrics
  t_eq "$(code "$METRICS_PORT" /metrics all)" 403 "hostinspections reader on /metrics"
}

test_metrics_reader_gets_the_metrics() {
  local m t0 t1 hits0 hits1
  m=$(body "$METRICS_PORT" /metrics reader)
  t_contains "$m" "hostpatrol_build_info"
  t_contains "$m" "hostpatrol_metrics_auth_reviews_total"
  local lint
  lint=$(promtool check metrics <<< "$m" 2>&1) || t_fail "promtool check metrics: $lint"
  # the second request is answered from the cache: no new review
  hits0=$(metric hostpatrol_metrics_auth_cache_hits_total)
  t0=$(metric hostpatrol_metrics_auth_reviews_total '{review="access"}')
  t1=$(metric hostpatrol_metrics_auth_reviews_total '{review="access"}')
  hits1=$(metric hostpatrol_metrics_auth_cache_hits_total)
  t_eq "$t1" "$t0" "access reviews for a cached token"
  t_ge "${hits1%.*}" "$((${hits0%.*} + 1))" "cache hits"
  echo "# reviews: token $(metric hostpatrol_metrics_auth_reviews_total '{review="token"}') access $t1," \
    "cache hits $hits1 misses $(metric hostpatrol_metrics_auth_cache_misses_total)," \
    "max review $(metric hostpatrol_metrics_auth_review_max_seconds) s," \
    "total $(metric hostpatrol_metrics_auth_review_seconds_total) s"
  # the health endpoints: plain HTTP, no token, their own port
  t_eq "$(http_code "http://127.0.0.1:$HEALTH_PORT/healthz")" 200
  t_eq "$(http_code "http://127.0.0.1:$HEALTH_PORT/readyz")" 200
  t_eq "$(http_code "http://127.0.0.1:$HEALTH_PORT/metrics")" 404
}

# saw FILE NS: FILE holds a message of namespace NS
saw() { grep -q '"namespace":"'"$2"'"' "$1"; }
# watch_bg NAME ARGS...: `hostpatrol watch -o json ARGS` in the background, pid in WPID[NAME]
declare -A WPID
watch_bg() {
  local name=$1; shift
  "$HP" watch --server "wss://127.0.0.1:$METRICS_PORT" --insecure-skip-tls-verify -o json "$@" \
    > "$HP_H_DIR/watch-$name.out" 2> "$HP_H_DIR/watch-$name.err" &
  WPID[$name]=$!
}

test_ws_streams_only_the_namespaces_a_token_may_read() {
  local rc
  watch_bg all --token "$(tok all)"
  watch_bg limited --token-file "$HP_H_DIR/token-limited"
  # a kubeconfig whose user has the limited token: watch finds it there, as kubectl would
  sed -e '/client-certificate:/d' -e "s#client-key: .*#token: $(tok limited)#" "$HP_KUBECONFIG" > "$HP_H_DIR/kc-limited"
  watch_bg kubeconfig --kubeconfig "$HP_H_DIR/kc-limited"
  sleep 1 # connected before the first run
  hi hp-a ws-a
  hi hp-b ws-b
  # both namespaces flow to the cluster-wide token...
  t_eventually 30 saw "$HP_H_DIR/watch-all.out" hp-a
  t_eventually 30 saw "$HP_H_DIR/watch-all.out" hp-b
  t_eventually 10 saw "$HP_H_DIR/watch-limited.out" hp-a
  t_eventually 10 saw "$HP_H_DIR/watch-kubeconfig.out" hp-a
  # ...for a few more runs (interval 2 s), then: the limited token never saw hp-b
  local n0
  n0=$(grep -c '"namespace":"hp-b"' "$HP_H_DIR/watch-all.out")
  t_eventually 20 count_ge "$HP_H_DIR/watch-all.out" hp-b $((n0 + 2))
  t_eq "$(grep -c '"namespace":"hp-b"' "$HP_H_DIR/watch-limited.out")" 0 "hp-b messages to the limited token"
  t_eq "$(grep -c '"namespace":"hp-b"' "$HP_H_DIR/watch-kubeconfig.out")" 0 "hp-b messages to the kubeconfig's token"
  t_ge "$(grep -c '"namespace":"hp-a"' "$HP_H_DIR/watch-limited.out")" 2 "hp-a messages to the limited token"
  echo "# messages: all $(wc -l < "$HP_H_DIR/watch-all.out") (hp-b $(grep -c '"namespace":"hp-b"' "$HP_H_DIR/watch-all.out")), limited $(wc -l < "$HP_H_DIR/watch-limited.out")"
  kill -TERM "${WPID[all]}" "${WPID[limited]}" "${WPID[kubeconfig]}"
  for w in all limited kubeconfig; do
    wait "${WPID[$w]}"; rc=$?
    t_eq "$rc" 0 "watch $w exit status after SIGTERM"
  done
  # asking for hp-b outright: refused with 403, and watch says so
  local out
  out=$("$HP" watch --server "wss://127.0.0.1:$METRICS_PORT" --insecure-skip-tls-verify \
    --token "$(tok limited)" -n hp-b 2>&1); rc=$?
  t_eq "$rc" 1 "watch -n hp-b exit status"
  t_contains "$out" "403"
  kc -n hp-a delete hi ws-a --wait=false > /dev/null
  kc -n hp-b delete hi ws-b --wait=false > /dev/null
}

test_ws_without_a_valid_token_is_refused() {
  local out rc
  # no token: the upgrade is answered 401
  out=$(curl -sk -i --max-time 5 -H "Connection: Upgrade" -H "Upgrade: websocket" \
    -H "Sec-WebSocket-Version: 13" -H "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==" \
    "https://127.0.0.1:$METRICS_PORT/ws")
  t_match "$(head -n1 <<< "$out")" " 401 "
  out=$(HOME=$HP_H_DIR KUBECONFIG='' "$HP" watch --server "wss://127.0.0.1:$METRICS_PORT" --insecure-skip-tls-verify 2>&1); rc=$?
  t_eq "$rc" 1 "watch without a token"
  t_contains "$out" "401 Unauthorized"
  t_contains "$out" "no bearer token sent"
  # a bad token: the verdict comes after the upgrade, and the server closes with 1008 "401 ..."
  out=$("$HP" watch --server "wss://127.0.0.1:$METRICS_PORT" --insecure-skip-tls-verify --token bogus 2>&1); rc=$?
  t_eq "$rc" 1 "watch with a bad token"
  t_contains "$out" "401"
  # the self-signed certificate is not trusted without --insecure-skip-tls-verify or --ca-file
  out=$("$HP" watch --server "wss://127.0.0.1:$METRICS_PORT" --token "$(tok all)" 2>&1); rc=$?
  t_eq "$rc" 1 "watch without trusting the certificate"
  t_contains "$out" "--ca-file"
}

# kubeconfig_via FILE HOSTPORT: the test kubeconfig, pointed at HOSTPORT (the apiserver's
# certificate names 127.0.0.1, so TLS still verifies through the proxy)
kubeconfig_via() { sed "s#server: .*#server: https://$2#" "$HP_KUBECONFIG" > "$1"; }
# timed_code PORT PATH TOKEN-NAME: "STATUS SECONDS"
timed_code() {
  curl -sk --max-time 30 -o /dev/null -w '%{http_code} %{time_total}' \
    -H "Authorization: Bearer $(tok "$3")" "https://127.0.0.1:$1$2"
}

test_health_answers_while_a_review_is_slow() {
  hp_h_toxiproxy || t_fail "toxiproxy"
  hp_h_toxi_proxy apiserver "${HP_APISERVER_URL#https://}" || t_fail "proxy"
  kubeconfig_via "$HP_H_DIR/kc-slow" "127.0.0.1:${HP_TOXI_PORT[apiserver]}"
  local mport hport pid
  mport=$(hp_h_port); hport=$(hp_h_port)
  start_hp -w slow controller --kubeconfig "$HP_H_DIR/kc-slow" --namespace hp-slow --log-level info \
    --log-format text --metrics-auth-timeout 8s \
    --metrics-bind-address "127.0.0.1:$mport" --health-probe-bind-address "127.0.0.1:$hport"
  pid=$HP_H_LASTPID
  t_eventually 10 code_is "$mport" /metrics 401
  # the reader's verdict is cached before the apiserver slows down
  t_eq "$(code "$mport" /metrics reader)" 200 "reader before the latency"
  hp_h_toxic_add apiserver slow latency downstream '{"latency":3000}' || t_fail "toxic"
  # a token not seen yet: its reviews take >= 3 s each
  local slow_out health reader_t out
  timed_code "$mport" /metrics all > "$HP_H_DIR/slow-req.out" &
  local req=$!
  sleep 0.5
  health=$(curl -s --max-time 5 -o /dev/null -w '%{http_code} %{time_total}' "http://127.0.0.1:$hport/healthz")
  reader_t=$(timed_code "$mport" /metrics reader)
  # both answered while the new token's request still waits on its reviews (ordering, not speed)
  kill -0 "$req" 2> /dev/null || t_fail "the new token's request was answered before /healthz and the cached /metrics"
  wait "$req"
  slow_out=$(cat "$HP_H_DIR/slow-req.out")
  echo "# while a review waited on the apiserver (+3 s latency): /healthz '$health', cached /metrics '$reader_t', the new token '$slow_out' (status seconds)"
  t_eq "${health%% *}" 200 "/healthz during a slow review"
  t_eq "${reader_t%% *}" 200 "cached token's /metrics during a slow review"
  # the slow one was answered, after the reviews: 403 (hostinspection rights are not /metrics)
  t_eq "${slow_out%% *}" 403 "the new token, once reviewed"
  awk -v t="${slow_out#* }" 'BEGIN { exit !(t >= 3.0) }' || t_fail "the new token's answer came before the review could"
  hp_h_toxic_remove apiserver slow
  # the apiserver accepts connections but never answers: 503 at the review's deadline (8 s)
  hp_h_toxic_add apiserver hang timeout downstream '{"timeout":0}' || t_fail "toxic"
  out=$(curl -sk --max-time 30 -w ' %{http_code} %{time_total}' -H "Authorization: Bearer $(tok none)" "https://127.0.0.1:$mport/metrics")
  echo "# apiserver silent: status and seconds '$(tail -n 1 <<< "$out" | grep -oE '[0-9]+ [0-9.]+$')'"
  t_match "$out" "tokenreviews failed.* 503 "
  awk -v t="${out##* }" 'BEGIN { exit !(t >= 7.5 && t < 15) }' || t_fail "503 after ${out##* } s, not at the 8 s deadline"
  t_eq "$(http_code "http://127.0.0.1:$hport/healthz" --max-time 2)" 200 "/healthz with the apiserver silent"
  hp_h_toxic_remove apiserver hang
  # the apiserver unreachable: a new token gets 503 naming the review, not a hang
  hp_h_toxi_enable apiserver false
  out=$(curl -sk --max-time 30 -w ' %{http_code} %{time_total}' -H "Authorization: Bearer $(tok limited)" "https://127.0.0.1:$mport/metrics")
  echo "# apiserver unreachable: status and seconds '$(tail -n 1 <<< "$out" | grep -oE '[0-9]+ [0-9.]+$')'"
  t_match "$out" "tokenreviews failed.* 503 "
  t_eq "$(http_code "http://127.0.0.1:$hport/healthz")" 200 "/healthz with the apiserver unreachable"
  hp_h_toxi_enable apiserver true
  kill -TERM "$pid"
  wait "$pid" 2> /dev/null || true
}

test_cert_dir_is_served_and_rotation_is_picked_up() {
  local d=$HP_H_DIR/metrics-tls pki=$HP_H_DIR/pki mport hport pid
  mkdir -p "$d"
  # a serving certificate for 127.0.0.1 signed by the harness CA
  mkcert() {
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$1" \
      -keyout "$d/new.key" -out "$d/new.csr" 2> /dev/null &&
      openssl x509 -req -in "$d/new.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
        -days 1 -extfile <(printf 'subjectAltName=IP:127.0.0.1') -out "$d/new.crt" 2> /dev/null &&
      mv "$d/new.key" "$d/tls.key" && mv "$d/new.crt" "$d/tls.crt"
  }
  t_ok mkcert first
  mport=$(hp_h_port); hport=$(hp_h_port)
  start_hp -w certs controller --namespace hp-certs --log-level info --log-format text --metrics-cert-dir "$d" \
    --metrics-bind-address "127.0.0.1:$mport" --health-probe-bind-address "127.0.0.1:$hport"
  pid=$HP_H_LASTPID
  issuer() { openssl s_client -connect "127.0.0.1:$mport" -CAfile "$pki/ca.crt" < /dev/null 2> /dev/null | openssl x509 -noout -subject; }
  verified_401() { [ "$(curl -s --cacert "$pki/ca.crt" -o /dev/null -w '%{http_code}' "https://127.0.0.1:$mport/metrics")" = 401 ]; }
  t_eventually 10 verified_401
  # verified against the CA: `watch --ca-file` too
  t_contains "$(curl -s --cacert "$pki/ca.crt" -H "Authorization: Bearer $(tok reader)" "https://127.0.0.1:$mport/metrics")" hostpatrol_build_info
  timeout 3 "$HP" watch --server "wss://127.0.0.1:$mport" --ca-file "$pki/ca.crt" --token "$(tok all)" > "$HP_H_DIR/watch-ca.out" 2> "$HP_H_DIR/watch-ca.err"
  t_eq "$?" 124 "watch with --ca-file stays connected (ended by timeout)"
  t_contains "$(issuer)" "CN = first"
  # rotation: new files, picked up within the 10 s check period, no restart
  sleep 1.1 # a different modification time
  t_ok mkcert second
  serves_second() { [[ $(issuer) == *"CN = second"* ]]; }
  t_eventually 15 serves_second
  # a broken rotation keeps the last good pair
  echo garbage > "$d/tls.crt"
  sleep 11
  t_contains "$(issuer)" "CN = second"
  kill -TERM "$pid"
  wait "$pid" 2> /dev/null || true
  # an unreadable directory is a flag error naming it
  local out rc
  out=$("$HP" controller --kubeconfig "$HP_KUBECONFIG" --etcd-endpoints "${HP_ETCD_URL[res]}" \
    --state-dir "$HP_H_DIR/state-x" --metrics-cert-dir "$HP_H_DIR/nowhere" \
    --metrics-bind-address 127.0.0.1:0 --health-probe-bind-address 127.0.0.1:0 2>&1); rc=$?
  t_eq "$rc" 2 "exit status with a missing --metrics-cert-dir"
  t_contains "$out" "--metrics-cert-dir $HP_H_DIR/nowhere"
}

test_insecure_mode_is_plain_http_and_warns() {
  local mport pid out
  mport=$(hp_h_port)
  start_hp -w insecure controller --namespace hp-insecure --log-level info --log-format text --metrics-secure=false \
    --metrics-bind-address "0.0.0.0:$mport" --health-probe-bind-address 127.0.0.1:0
  pid=$HP_H_LASTPID
  t_eventually 10 curl -fsS -o /dev/null "http://127.0.0.1:$mport/metrics"
  t_contains "$(cat "$HP_H_DIR/insecure.log")" "WITHOUT TLS or authentication"
  kill -TERM "$pid"
  wait "$pid" 2> /dev/null || true
  # the probes must stay plain: one address for both is refused with --metrics-secure
  out=$("$HP" controller --kubeconfig "$HP_KUBECONFIG" --etcd-endpoints "${HP_ETCD_URL[res]}" \
    --metrics-bind-address 127.0.0.1:9 --health-probe-bind-address 127.0.0.1:9 2>&1)
  t_eq "$?" 2
  t_contains "$out" "must differ with --metrics-secure"
}

test_tokens_are_never_logged() {
  # every token this file sent (debug level, refused and allowed alike): none in any log
  t_no_token_logged
}

t_main
