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
HOSTPATROL=${HOSTPATROL:-$HP_H_ROOT/build/hostpatrol}

# ec ARGS...: etcdctl 3.6 against the results etcd the test started as `hp_h_etcd res VERSION`
ec() { "$ETCDCTL36" --endpoints "${HP_ETCD_URL[res]}" --command-timeout=10s "$@"; }

# history NS: "revision source run key" of every write of results in NS, oldest first (what a
# watch from revision 1 streams in T_HISTORY_TIMEOUT seconds, default 5). The undo of a batch
# that applied after its deadline (docs/etcd-sync.md, "Undo from MVCC history") puts the older
# values back in the txn that sets its fence to rolled_back: those writes are not new writes of
# their runs and are left out.
history() {
  local f
  f=$(mktemp)
  timeout "${T_HISTORY_TIMEOUT:-5}" "$ETCDCTL36" --endpoints "${HP_ETCD_URL[res]}" watch --rev=1 \
    --prefix /hostpatrol/ -w json 2> /dev/null |
    jq -r --arg p "/hostpatrol/results/$1/" '.Events[]? | select(.kv.value != null)
      | (.kv.key | @base64d) as $k
      | if ($k | startswith("/hostpatrol/fence/")) then
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
