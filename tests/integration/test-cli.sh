#!/usr/bin/env bash
# test-cli.sh - the hostpatrol binary's command line: help, version, errors that name the input.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

test_help_lists_the_subcommands() {
  local out
  out=$("$HOSTPATROL" --help) || t_fail "--help exited $?"
  for c in controller agent version; do
    grep -qE "^  $c " <<< "$out" || t_fail "subcommand $c not in --help: $out"
  done
}

test_no_arguments_is_a_usage_error() {
  local rc=0
  "$HOSTPATROL" > /dev/null 2>&1 || rc=$?
  t_eq "$rc" 2
}

test_unknown_command_is_named() {
  local out rc=0
  out=$("$HOSTPATROL" frobnicate 2>&1) || rc=$?
  t_eq "$rc" 2
  t_contains "$out" "unknown command 'frobnicate'"
}

test_version_text_and_json_agree() {
  local text json
  text=$("$HOSTPATROL" version) || t_fail "version exited $?"
  json=$("$HOSTPATROL" version -o json) || t_fail "version -o json exited $?"
  t_contains "$text" "hostpatrol $(jq -r .version <<< "$json")"
  t_contains "$text" "libcurl $(jq -r .libraries.libcurl <<< "$json")"
  t_eq "$(jq -r .libraries.libcurl <<< "$json")" "$(curl-config --version | awk '{print $2}')" \
    "the libcurl the binary runs with"
  t_eq "$(jq -r .version <<< "$json")" \
    "$(git -C "$HP_H_ROOT" describe --tags --always --dirty 2> /dev/null || echo 0.0.0-dev)" \
    "version is git describe of the build"
}

test_version_rejects_a_bad_output_format() {
  local out rc=0
  out=$("$HOSTPATROL" version -o yaml 2>&1) || rc=$?
  t_eq "$rc" 2
  t_contains "$out" "--output 'yaml' is not one of text, json"
}

test_agent_flag_errors_name_the_flag() {
  local out rc=0
  out=$(env -u NODE_NAME "$HOSTPATROL" agent --etcd-endpoints http://127.0.0.1:1 2>&1) || rc=$?
  t_eq "$rc" 2
  t_contains "$out" "--node-name is required"
  rc=0
  out=$("$HOSTPATROL" agent --node-name n1 --leader-elect --etcd-endpoints http://127.0.0.1:1 2>&1) || rc=$?
  t_eq "$rc" 2
  t_contains "$out" "--leader-elect is a controller flag"
  rc=0
  out=$("$HOSTPATROL" agent --node-name n1 --shutdown-timeout 1s --etcd-endpoints http://127.0.0.1:1 2>&1) || rc=$?
  t_eq "$rc" 2
  t_contains "$out" "hostpatrol agent: --shutdown-timeout must be at least 2s"
  rc=0
  out=$("$HOSTPATROL" controller --shutdown-timeout soon --etcd-endpoints http://127.0.0.1:1 2>&1) || rc=$?
  t_eq "$rc" 2
  t_contains "$out" "--shutdown-timeout 'soon' is not a duration"
  rc=0
  out=$("$HOSTPATROL" controller --node-name n1 --etcd-endpoints http://127.0.0.1:1 2>&1) || rc=$?
  t_eq "$rc" 2
  t_contains "$out" "--node-name is a flag of 'hostpatrol agent'"
  t_contains "$("$HOSTPATROL" agent --help)" "--host-root"
}

# every subcommand tells a flag missing its value from an unknown one, and names its own usage
test_flag_errors_say_missing_value_or_unknown() {
  local out rc
  check() { # WANT-TEXT WANT-USAGE ARGS...
    local want=$1 usage=$2
    shift 2
    rc=0
    out=$("$HOSTPATROL" "$@" 2>&1) || rc=$?
    t_eq "$rc" 2 "exit status of hostpatrol $*"
    t_contains "$out" "$want"
    t_contains "$out" "Usage: hostpatrol $usage"
  }
  check "hostpatrol agent: unknown flag '--bogus'" agent agent --bogus
  check "hostpatrol controller: unknown flag '--bogus'" controller controller --bogus
  check "hostpatrol inspect: -f needs a value" inspect inspect -f
  check "hostpatrol inspect: unknown flag '-x'" inspect inspect -x
  check "hostpatrol results: unknown flag '-x'" results results -n ns -xA
  check "hostpatrol agent: --node-name needs a value" agent agent --node-name
  check "hostpatrol controller: --etcd-endpoints needs a value" controller controller --etcd-endpoints
  check "hostpatrol results: -n needs a value" results results -n
  check "hostpatrol watch: --server needs a value" watch watch --server
  check "hostpatrol version: -o needs a value" version version -o
  check "hostpatrol bench etcd: --results needs a value" "bench etcd" bench etcd --results
}

# bench etcd --writes-per-record: bounded by what one txn holds, and only where a record can
# carry more than one result
test_bench_writes_per_record_errors_name_the_flag() {
  local out rc
  rc=0 out=$("$HOSTPATROL" bench etcd --endpoints http://127.0.0.1:9 --writes-per-record 127 --txn-ops 100 2>&1) || rc=$?
  t_eq "$rc" 2
  t_contains "$out" "--writes-per-record must be at most --txn-ops - 1 (99), not 127"
  rc=0 out=$("$HOSTPATROL" bench etcd --endpoints http://127.0.0.1:9 --writes-per-record 5 --naive 2>&1) || rc=$?
  t_eq "$rc" 2
  t_contains "$out" "--writes-per-record 5: --naive writes one result per put"
  rc=0 out=$("$HOSTPATROL" bench etcd --endpoints http://127.0.0.1:9 --writes-per-record 3 --rate 10 2>&1) || rc=$?
  t_eq "$rc" 2
  t_contains "$out" "a paced run (--rate) writes one result per record"
  rc=0 out=$("$HOSTPATROL" bench etcd --endpoints http://127.0.0.1:9 --writes-per-record x 2>&1) || rc=$?
  t_eq "$rc" 2
  t_contains "$out" "--writes-per-record"
}

test_controller_flag_errors_name_the_flag() {
  local out rc=0
  out=$(env -u HOSTPATROL_ETCD_ENDPOINTS "$HOSTPATROL" controller 2>&1) || rc=$?
  t_eq "$rc" 2
  t_contains "$out" "--etcd-endpoints is required"
  rc=0
  out=$("$HOSTPATROL" controller --max-concurrent-reconciles 0 --etcd-endpoints http://127.0.0.1:1 2>&1) || rc=$?
  t_eq "$rc" 2
  t_contains "$out" "--max-concurrent-reconciles '0'"
  rc=0
  out=$("$HOSTPATROL" controller --log-level loud --etcd-endpoints http://127.0.0.1:1 2>&1) || rc=$?
  t_eq "$rc" 2
  t_contains "$out" "--log-level 'loud'"
  rc=0
  out=$("$HOSTPATROL" controller --leader-elect --lease-duration 2s --renew-deadline 5s \
    --etcd-endpoints http://127.0.0.1:1 2>&1) || rc=$?
  t_eq "$rc" 2
  t_contains "$out" "--renew-deadline < --lease-duration"
  rc=0
  out=$("$HOSTPATROL" controller --etcd-endpoints ftp://x 2>&1) || rc=$?
  t_eq "$rc" 2
  t_contains "$out" "--etcd-endpoints: endpoint 'ftp://x'"
  rc=0
  out=$("$HOSTPATROL" controller --etcd-endpoints http://127.0.0.1:1 --etcd-ca-file /nonexistent/ca 2>&1) || rc=$?
  t_eq "$rc" 2
  t_contains "$out" "--etcd-ca-file: cannot read"
  rc=0
  local kc
  kc=$(mktemp)
  printf '%s\n' 'apiVersion: v1' 'kind: Config' 'current-context: c' \
    'clusters: [{name: k, cluster: {server: "https://127.0.0.1:1"}}]' \
    'users: [{name: u, user: {token: t}}]' 'contexts: [{name: c, context: {cluster: k, user: u}}]' > "$kc"
  out=$("$HOSTPATROL" controller --etcd-endpoints http://127.0.0.1:1 --kubeconfig "$kc" \
    --metrics-bind-address nohost 2>&1) || rc=$?
  rm -f "$kc"
  t_eq "$rc" 2
  t_contains "$out" "--metrics-bind-address: bind 'nohost'"
  rc=0
  out=$("$HOSTPATROL" controller --kubeconfig /nonexistent/kc --etcd-endpoints http://127.0.0.1:1 2>&1) || rc=$?
  t_eq "$rc" 1
  t_contains "$out" "/nonexistent/kc"
  t_contains "$("$HOSTPATROL" controller --help)" "--metrics-bind-address"
}

t_main
