#!/usr/bin/env bash
# test-harness-lifecycle.sh - the harness leaves no process and no temp dir behind: on normal
# exit, on failure, on SIGINT and SIGTERM; and a session whose owner was killed with -9 is swept
# by the next session.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

# child MODE FILE: a session that starts an etcd and toxiproxy, writes its dir to FILE, waits
# for FILE.go, then ends per MODE. SIGINT is reset to its default: a background job inherits it
# ignored, while a user's Ctrl-C reaches a foreground `make demo` with it in force.
child() {
  local mode=$1 out=$2
  env --default-signal=INT bash -c '
    . "$1/tests/harness/harness.sh"
    hp_h_init
    hp_h_etcd e 3.6 || exit 3
    hp_h_toxiproxy || exit 3
    echo "$HP_H_DIR" > "$2"
    for _ in $(seq 600); do [ -e "$2.go" ] && break; sleep 0.1; done
    case $3 in
      exit) exit 0 ;;
      fail) set -e; false ;;
      wait) sleep 120 & wait $! ;;
    esac' _ "$HP_H_ROOT" "$out" "$mode" > /dev/null 2>&1 &
  CHILD=$!
}

# wait_dir FILE: the session dir the child wrote, once it is up
wait_dir() {
  t_eventually 60 test -s "$1"
  cat "$1"
}

assert_clean() { # DIR
  local left
  left=$(hp_h_leftovers "$1")
  [ -z "$left" ] || t_fail "processes left behind: $left"
  [ ! -e "$1" ] || t_fail "session dir left behind: $1"
}

lifecycle() { # MODE [SIGNAL]
  local f dir rc
  f=$(mktemp)
  child "$1" "$f"
  dir=$(wait_dir "$f")
  t_match "$dir" hostpatrol-h "session dir"
  [ -n "$(hp_h_leftovers "$dir")" ] || t_fail "no process found running in $dir"
  touch "$f.go"
  [ -n "${2:-}" ] && kill "-$2" "$CHILD"
  wait "$CHILD"; rc=$?
  rm -f "$f" "$f.go"
  assert_clean "$dir"
  echo "$rc"
}

test_clean_after_normal_exit() { t_eq "$(lifecycle exit)" 0; }
test_clean_after_failure() { t_eq "$(lifecycle fail)" 1; }
test_clean_after_sigint() { t_eq "$(lifecycle wait INT)" 130; }
test_clean_after_sigterm() { t_eq "$(lifecycle wait TERM)" 143; }

test_kill_9_of_owner_is_swept_by_next_session() {
  local f dir
  f=$(mktemp)
  child wait "$f"
  dir=$(wait_dir "$f")
  touch "$f.go"
  kill -KILL "$CHILD"; wait "$CHILD" 2> /dev/null
  rm -f "$f" "$f.go"
  [ -n "$(hp_h_leftovers "$dir")" ] || t_fail "expected orphans after kill -9"
  # a new session sweeps the orphans of the dead one
  bash -c '. "$1/tests/harness/harness.sh"; hp_h_init' _ "$HP_H_ROOT"
  assert_clean "$dir"
}

t_main
