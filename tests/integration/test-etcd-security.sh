#!/usr/bin/env bash
# test-etcd-security.sh - TLS and auth against REAL etcd 3.6, through the real binary: mTLS,
# wrong CA, missing client certificate, TLS server-name mismatch, plain http to a TLS port; an
# auth user whose role is scoped to its key prefix, a wrong password (named user, secret never
# printed), writes outside the prefix refused; token expiry and re-authentication (C itest).
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
ITEST=$HP_H_ROOT/build/asan/itests/itest-etcd_client
PW='s3cret-Pa55'

setup() {
  hp_h_init
  HP_H_ETCD_TLS=1 hp_h_etcd tls 3.6 || return 1
  hp_h_etcd auth 3.6 --auth-token=simple --auth-token-ttl=3 || return 1
  local ctl=("$ETCDCTL36" --endpoints="${HP_ETCD_URL[auth]}" --command-timeout=10s)
  "${ctl[@]}" role add root > /dev/null &&
    "${ctl[@]}" user add root --new-user-password=rootpw --interactive=false > /dev/null &&
    "${ctl[@]}" user grant-role root root > /dev/null &&
    "${ctl[@]}" role add hostpatrol > /dev/null &&
    "${ctl[@]}" role grant-permission hostpatrol readwrite /hostpatrol-bench/ --prefix=true > /dev/null &&
    "${ctl[@]}" role grant-permission hostpatrol readwrite /hp-itest/ --prefix=true > /dev/null &&
    "${ctl[@]}" user add hp --new-user-password="$PW" --interactive=false > /dev/null &&
    "${ctl[@]}" user grant-role hp hostpatrol > /dev/null &&
    "${ctl[@]}" auth enable > /dev/null || return 1
  PKI=$HP_H_DIR/pki
}

# hp_bench ARGS...: the real binary; stdout+stderr captured, exit status in BENCH_RC
hp_bench() {
  BENCH_RC=0
  BENCH_OUT=$("$HOSTPATROL" bench etcd --results 300 --concurrency 4 --deadline 5s "$@" 2>&1) ||
    BENCH_RC=$?
}

test_mtls_works() {
  hp_bench --endpoints "${HP_ETCD_URL[tls]}" --ca-file "$PKI/ca.crt" \
    --cert-file "$PKI/etcd-client.crt" --key-file "$PKI/etcd-client.key" --verify -o json
  t_eq "$BENCH_RC" 0 "bench over mTLS: $BENCH_OUT"
  t_eq "$(jq -r .committed <<< "$BENCH_OUT")" 300
  t_eq "$(jq -r .violations <<< "$BENCH_OUT")" 0
}

test_wrong_ca_is_a_clear_error() {
  hp_bench --endpoints "${HP_ETCD_URL[tls]}" --ca-file "$PKI/other-ca.crt" \
    --cert-file "$PKI/etcd-client.crt" --key-file "$PKI/etcd-client.key"
  t_eq "$BENCH_RC" 1 "exit status"
  t_contains "$BENCH_OUT" "${HP_ETCD_URL[tls]}"
  t_contains "$BENCH_OUT" "certificate"
}

# TLS 1.3 refuses the missing certificate with an alert after the client's side of the
# handshake: no request was processed, so it is a TLS failure (not retried), on either transport
test_missing_client_certificate_is_a_clear_error() {
  local tr
  for tr in grpc gateway; do
    hp_bench --endpoints "${HP_ETCD_URL[tls]}" --ca-file "$PKI/ca.crt" --transport "$tr"
    t_eq "$BENCH_RC" 1 "$tr: exit status"
    t_contains "$BENCH_OUT" "TLS with etcd failed: ${HP_ETCD_URL[tls]}"
    t_contains "$BENCH_OUT" "certificate required"
  done
}

test_tls_server_name_is_verified() {
  hp_bench --endpoints "${HP_ETCD_URL[tls]}" --ca-file "$PKI/ca.crt" --server-name wrong.test \
    --cert-file "$PKI/etcd-client.crt" --key-file "$PKI/etcd-client.key"
  t_eq "$BENCH_RC" 1 "exit status"
  t_contains "$BENCH_OUT" "wrong.test"
  hp_bench --endpoints "${HP_ETCD_URL[tls]}" --ca-file "$PKI/ca.crt" --server-name etcd.test \
    --cert-file "$PKI/etcd-client.crt" --key-file "$PKI/etcd-client.key"
  t_eq "$BENCH_RC" 0 "with the right server name: $BENCH_OUT"
}

# a wrong scheme is a bad setting (exit 2) named at once, on either transport: the client asks
# the port for a TLS handshake after its first failure (it retried for 60 s, an outage to it)
test_plain_http_to_a_tls_port_fails_clearly() {
  local tr
  for tr in grpc gateway; do
    hp_bench --endpoints "${HP_ETCD_URL[tls]/https:/http:}" --transport "$tr"
    t_eq "$BENCH_RC" 2 "$tr: exit status: $BENCH_OUT"
    t_contains "$BENCH_OUT" "${HP_ETCD_URL[tls]/https:/http:} speaks TLS: use https://"
  done
}

test_missing_ca_file_is_named() {
  hp_bench --endpoints "${HP_ETCD_URL[tls]}" --ca-file /nonexistent/ca.pem
  t_eq "$BENCH_RC" 2 "a bad setting is a usage error"
  t_contains "$BENCH_OUT" "ca_file '/nonexistent/ca.pem'"
}

test_auth_user_scoped_to_its_prefix() {
  HOSTPATROL_ETCD_PASSWORD=$PW hp_bench --endpoints "${HP_ETCD_URL[auth]}" --user hp --verify -o json
  t_eq "$BENCH_RC" 0 "bench as a scoped user: $BENCH_OUT"
  t_eq "$(jq -r .violations <<< "$BENCH_OUT")" 0
}

test_wrong_password_is_named_without_the_secret() {
  HOSTPATROL_ETCD_PASSWORD="wrong-$PW" hp_bench --endpoints "${HP_ETCD_URL[auth]}" --user hp
  t_eq "$BENCH_RC" 1 "exit status"
  t_contains "$BENCH_OUT" "authentication as user 'hp' failed"
  [[ $BENCH_OUT != *"$PW"* ]] || t_fail "the password appears in the output: $BENCH_OUT"
}

test_writes_outside_the_granted_prefix_are_refused() {
  HOSTPATROL_ETCD_PASSWORD=$PW hp_bench --endpoints "${HP_ETCD_URL[auth]}" --user hp \
    --prefix /elsewhere/
  t_eq "$BENCH_RC" 1 "exit status"
  t_contains "$BENCH_OUT" "permission denied"
}

test_client_suite_as_a_scoped_user_with_token_expiry() {
  local out rc=0
  out=$(HP_ETCD_URL=${HP_ETCD_URL[auth]} HP_ETCD_USER=hp HP_ETCD_PASSWORD=$PW \
    HP_ETCD_TOKEN_TTL=3 HP_ETCD_DEAD_URL=http://127.0.0.1:$(hp_h_port) \
    CMOCKA_MESSAGE_OUTPUT=TAP timeout 120 "$ITEST" 2>&1) || rc=$?
  t_eq "$rc" 0 "itest-etcd_client as user hp: $out"
  t_contains "$out" "ok 10 - expired_token_is_renewed"
  echo "$out" | grep -E '^(ok|not ok) ' | sed 's/^/# client: /'
}

t_main
