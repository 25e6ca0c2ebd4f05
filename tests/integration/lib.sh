# shellcheck shell=bash
# lib.sh - a small TAP test framework for integration tests that drive real processes.
#
# A test file sources this, defines an optional `setup` (runs once, in the file's shell, e.g.
# to start a control plane with the harness) and functions named test_*, then calls t_main.
# Each test runs in its own subshell with a deadline (T_TIMEOUT seconds, default 300; a test
# named test_x may set its own as T_TIMEOUT_test_x), so a
# failing or hanging test cannot take the others down; its output is shown only on failure.
# Assertions end the test at the first failure. Output is TAP: "ok N - name" / "not ok N - name".
# Lines a test prints starting with "# " are shown even when it passes (measured figures).

# shellcheck source=tests/harness/harness.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")/../harness" && pwd)/harness.sh"

T_TIMEOUT=${T_TIMEOUT:-300}
# the binary under test (start_hp runs it; a test file names it HP)
HOSTPATROL=${HOSTPATROL:-$HP_H_ROOT/build/hostpatrol}

# ec ARGS...: etcdctl 3.6 against the results etcd the test started as `hp_h_etcd res VERSION`
ec() { "$ETCDCTL36" --endpoints "${HP_ETCD_URL[res]}" --command-timeout=10s "$@"; }

# The etcd prefix the tests' controllers write under (their --etcd-prefix: the default).
HP_ETCD_PREFIX=/hostpatrol/

# result_key NS [NAME [CHECK [TARGET]]]: prints the etcd key of one result (docs/results.md,
# "Key layout"); with fewer parts, the prefix of those results, ending in "/"
result_key() {
  local k=${HP_ETCD_PREFIX}results p
  for p in "$@"; do k+=/$p; done
  [ $# -ge 4 ] || k+=/
  printf '%s\n' "$k"
}
# result NS NAME CHECK TARGET: prints the stored value of that result (nothing when none)
result() { ec get --print-value-only "$(result_key "$1" "$2" "$3" "$4")"; }
# result_has NS NAME CHECK TARGET TEXT: the stored value of that result contains TEXT
result_has() { [[ $(result "$1" "$2" "$3" "$4") == *"$5"* ]]; }
# has_result NS NAME CHECK TARGET: that result is stored
has_result() { [ -n "$(ec get --keys-only "$(result_key "$1" "$2" "$3" "$4")")" ]; }
# results_count NS [NAME [CHECK]]: prints how many results are stored under that prefix
results_count() { ec get --keys-only --prefix "$(result_key "$@")" | grep -c .; }
# no_result NS [NAME [CHECK [TARGET]]]: nothing stored under result_key's key or prefix (the full
# key is a prefix too: TARGET node-b also stands for node-b2)
no_result() { [ -z "$(ec get --keys-only --prefix "$(result_key "$@")")" ]; }

# field NS NAME JSONPATH: prints a field of HostInspection NS/NAME (JSONPATH without braces)
field() { kc -n "$1" get hi "$2" -o jsonpath="{$3}"; }
# field_is NS NAME JSONPATH VALUE: that field of NS/NAME is VALUE
field_is() { [ "$(field "$1" "$2" "$3")" = "$4" ]; }
# cond NS NAME TYPE [KEY]: prints KEY (default status; reason, message...) of condition TYPE
cond() { field "$1" "$2" ".status.conditions[?(@.type==\"$3\")].${4:-status}"; }
# cond_is NS NAME TYPE STATUS: condition TYPE of HostInspection NS/NAME has status STATUS
cond_is() { [ "$(cond "$1" "$2" "$3")" = "$4" ]; }
# gone NS NAME: HostInspection NS/NAME no longer exists
gone() { ! kc -n "$1" get hi "$2" > /dev/null 2>&1; }
# apply: kubectl apply the manifests on stdin, quietly
apply() { kc apply -f - > /dev/null; }
# hi NS NAME [INTERVAL]: applies HostInspection NS/NAME with one http check "health" of the
# results etcd's /health that passes (interval 2s by default, timeout 1s)
hi() {
  apply << EOF
apiVersion: hostpatrol.io/v1alpha1
kind: HostInspection
metadata: {name: $2, namespace: $1}
spec:
  interval: ${3:-2s}
  timeout: 1s
  checks: [{name: health, http: {url: "${HP_ETCD_URL[res]}/health", expectStatus: [200]}}]
EOF
}
# lease_holder NS: prints the holder of the controllers' Lease hostpatrol-controller in NS
lease_holder() { kc -n "$1" get lease hostpatrol-controller -o jsonpath='{.spec.holderIdentity}'; }

# setup_cluster [NS...]: the usual setup: a session (hp_h_init), the control plane, the results
# etcd 3.6 (`res`, for ec), the CRD, and namespaces NS; fails at the first step that fails
setup_cluster() {
  local ns
  hp_h_init
  hp_h_control_plane || return 1
  hp_h_etcd res 3.6 || return 1
  hp_h_crd || return 1
  for ns in "$@"; do kc create namespace "$ns" > /dev/null || return 1; done
}

# start_hp [-w] NAME controller|agent FLAGS...: $HOSTPATROL in the background against the
# test's apiserver and results etcd, debug log in $HP_H_DIR/NAME.log, pid in NAME.pid (and
# HP_H_LASTPID), state in state-NAME, metrics and health on a free loopback port. FLAGS come
# last: a flag given again there wins. Disowned (no job report) unless -w: then the caller may
# `wait` for its exit status.
start_hp() {
  local keep=
  if [ "$1" = -w ]; then keep=1; shift; fi
  local name=$1 cmd=$2
  shift 2
  hp_h_spawn "$name" "$HOSTPATROL" "$cmd" --kubeconfig "$HP_KUBECONFIG" \
    --etcd-endpoints "${HP_ETCD_URL[res]}" --state-dir "$HP_H_DIR/state-$name" --log-level debug \
    --metrics-bind-address 127.0.0.1:0 --health-probe-bind-address 127.0.0.1:0 "$@"
  echo "$HP_H_LASTPID" > "$HP_H_DIR/$name.pid"
  [ -n "$keep" ] || disown "$HP_H_LASTPID"
}
# pid NAME: prints the pid in $HP_H_DIR/NAME.pid
pid() { cat "$HP_H_DIR/$1.pid"; }
# alive NAME: the process whose pid is in $HP_H_DIR/NAME.pid still runs
alive() { kill -0 "$(pid "$1")" 2> /dev/null; }

# show_his [WIDTH]: every HostInspection and its status, lines cut at WIDTH (600); for t_on_fail
show_his() {
  kc get hi -A -o custom-columns=NS:.metadata.namespace,NAME:.metadata.name,STATUS:.status \
    --no-headers 2>&1 | cut -c1-"${1:-600}"
}
# show_tails N FILE...: the last N lines of each FILE that exists, lines cut at 500 characters,
# each under "--- FILE (tail)"; for t_on_fail
show_tails() {
  local n=$1 f
  shift
  for f in "$@"; do
    if [ -f "$f" ]; then echo "--- $f (tail)"; tail -n "$n" "$f" | cut -c1-500; fi
  done
}

# helmc ARGS...: helm against the test's cluster
helmc() { "$HELM" --kubeconfig "$HP_KUBECONFIG" "$@"; }
# helm_home: helm's own cache, config and data in the session dir (after hp_h_init)
helm_home() {
  export HELM_CACHE_HOME=$HP_H_DIR/helm/cache HELM_CONFIG_HOME=$HP_H_DIR/helm/config \
    HELM_DATA_HOME=$HP_H_DIR/helm/data
}

# http_code URL [CURL-ARGS...]: prints the HTTP status of GET URL (000 when nothing answered;
# a self-signed certificate is accepted)
http_code() { curl -sk --max-time 20 -o /dev/null -w '%{http_code}' "${@:2}" "$1"; }
# http_code_is STATUS URL [CURL-ARGS...]: GET URL answers STATUS
http_code_is() { [ "$(http_code "${@:2}")" = "$1" ]; }

# slow_http PORT HITS-FILE: an HTTP server on 127.0.0.1:PORT that appends a line to HITS-FILE
# for each request, then answers 200 "slow but fine" after 2 s. It execs: start it with & and
# $! is the server's own pid.
slow_http() {
  exec python3 -c '
import http.server, sys, time
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        open(sys.argv[2], "a").write("got\n")
        time.sleep(2)
        self.send_response(200); self.end_headers(); self.wfile.write(b"slow but fine")
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()' "$1" "$2"
}

# t_no_token_logged [LOG-NAME...]: no $HP_H_DIR/*.log but the LOG-NAMEs (e.g. chromedriver.log)
# holds a token of $HP_H_DIR/token-*, nor its signature (last 40 characters)
t_no_token_logged() {
  local f t log
  for f in "$HP_H_DIR"/token-*; do
    t=$(cat "$f")
    for log in "$HP_H_DIR"/*.log; do
      [[ " $* " == *" ${log##*/} "* ]] && continue
      t_not grep -qF -- "$t" "$log"
      t_not grep -qF -- "${t: -40}" "$log"
    done
  done
}

# history NS: "revision source run key" of every write of results in NS, oldest first (what a
# watch from revision 1 streams in T_HISTORY_TIMEOUT seconds, default 5). The undo of a batch
# that applied after its deadline (docs/etcd-sync.md, "Undo from MVCC history") puts the older
# values back in the txn that sets its fence to rolled_back: those writes are not new writes of
# their runs and are left out.
history() {
  local f
  f=$(mktemp)
  timeout "${T_HISTORY_TIMEOUT:-5}" "$ETCDCTL36" --endpoints "${HP_ETCD_URL[res]}" watch --rev=1 \
    --prefix "$HP_ETCD_PREFIX" -w json 2> /dev/null |
    jq -r --arg p "$(result_key "$1")" --arg f "${HP_ETCD_PREFIX}fence/" '.Events[]? | select(.kv.value != null)
      | (.kv.key | @base64d) as $k
      | if ($k | startswith($f)) then
          (if (.kv.value | @base64d) == "rolled_back" then "\(.kv.mod_revision) undo" else empty end)
        elif ($k | startswith($p)) then
          "\(.kv.mod_revision) \(.kv.value | @base64d | fromjson | "\(.source) \(.run)") \($k)"
        else empty end' > "$f"
  awk 'NR == FNR { if ($2 == "undo") u[$1] = 1; next } $2 != "undo" && !($1 in u)' "$f" "$f"
  rm -f "$f"
}

# check_history NS [SOURCE-PREFIX]: no result of a run written twice (a run writes each of its
# keys once), and once a writer is followed by another it never writes again (a deposed leader
# is fenced). With SOURCE-PREFIX (e.g. controller/), only writers whose source starts with it.
check_history() {
  local h dup
  h=$(history "$1" | awk -v p="${2:-}" 'index($2, p) == 1')
  [ -n "$h" ] || t_fail "no history read"
  dup=$(echo "$h" | awk '{print $3, $4}' | sort | uniq -d)
  [ -z "$dup" ] || t_fail "runs written twice: $dup"
  echo "$h" | awk '{print $2}' | uniq > "$HP_H_DIR/stretches"
  echo "# writers in etcd order: $(tr '\n' ' ' < "$HP_H_DIR/stretches")($(echo "$h" | wc -l) writes)"
  dup=$(sort "$HP_H_DIR/stretches" | uniq -d)
  [ -z "$dup" ] || t_fail "a writer wrote again after another took over: $dup"
}

# t_fail MSG: fail the test; a test file's t_on_fail function, if defined, adds diagnostics first
t_fail() {
  echo "FAIL: $*" >&2
  if declare -F t_on_fail > /dev/null; then t_on_fail >&2 || true; fi
  exit 1
}
t_eq() { [ "$1" = "$2" ] || t_fail "${3:-values differ}: expected '$2', got '$1'"; }
t_match() { [[ $1 =~ $2 ]] || t_fail "${3:-no match}: '$1' does not match /$2/"; }
t_contains() { [[ $1 == *"$2"* ]] || t_fail "${3:-missing text}: '$2' not in: $1"; }
t_ok() { "$@" || t_fail "command failed (exit $?): $*"; }
t_not() { if "$@"; then t_fail "command succeeded but should fail: $*"; fi; }
# t_ge A B MSG: integer A >= B
t_ge() { [ "$1" -ge "$2" ] || t_fail "${3:-too small}: $1 < $2"; }
# t_le A B MSG: integer A <= B
t_le() { [ "$1" -le "$2" ] || t_fail "${3:-too large}: $1 > $2"; }
# t_eventually SECONDS CMD...: retry CMD every 0.2 s until it succeeds or the deadline passes.
# CMD is re-run each time, but its arguments are expanded once: put "$(...)" inside a function.
t_eventually() {
  local deadline=$((SECONDS + $1)); shift
  until "$@" > /dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || t_fail "not true within deadline: $*"
    sleep 0.2
  done
}
# t_uniq: a value unique across runs (etcd robustness-test style unique values)
t_uniq() { printf '%s-%s-%s' "$1" "$(date +%s%N)" "$RANDOM"; }

t_main() {
  local tests t n=0 pid wd rc log
  # T_ONLY=REGEX runs only the matching tests (while working on one)
  tests=$(grep -oE '^test_[A-Za-z0-9_]+' "$0" | grep -E -- "${T_ONLY:-.}")
  echo "1..$(echo "$tests" | wc -w)"
  if declare -F setup > /dev/null; then
    if ! setup > "${TMPDIR:-/tmp}/t-setup.$$.log" 2>&1; then
      sed 's/^/# /' "${TMPDIR:-/tmp}/t-setup.$$.log"
      rm -f "${TMPDIR:-/tmp}/t-setup.$$.log"
      for t in $tests; do n=$((n + 1)); echo "not ok $n - $t (setup failed)"; done
      return 1
    fi
    rm -f "${TMPDIR:-/tmp}/t-setup.$$.log"
  fi
  log=$(mktemp "${TMPDIR:-/tmp}/t-log.XXXXXX")
  for t in $tests; do
    n=$((n + 1))
    local t0=$SECONDS limit=T_TIMEOUT_$t
    limit=${!limit:-$T_TIMEOUT}
    ("$t") > "$log" 2>&1 &
    pid=$!
    (sleep "$limit" && echo "FAIL: timed out after ${limit}s" >> "$log" && kill -TERM "$pid") 2> /dev/null &
    wd=$!
    wait "$pid"; rc=$?
    pkill -P "$wd" 2> /dev/null; kill "$wd" 2> /dev/null; wait "$wd" 2> /dev/null
    if [ "$rc" -eq 0 ]; then
      echo "ok $n - $t ($((SECONDS - t0)) s)"
      grep '^# ' "$log" || true # a passing test's own diagnostics (figures) are shown too
    else
      echo "not ok $n - $t ($((SECONDS - t0)) s)"
      sed 's/^/# /' "$log"
    fi
  done
  rm -f "$log"
}
