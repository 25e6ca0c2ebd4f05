#!/usr/bin/env bash
# run.sh - hostpatrol's test runner: unit tests (cmocka, built with ASan+UBSan), fuzz targets
# (libFuzzer, a short bounded run of each: tests/fuzz/fuzz.sh) and integration tests
# (tests/integration/test-*.sh against real kube-apiserver / etcd / toxiproxy).
#
#   tests/run.sh [unit|fuzz|integration|all] [FILTER]
#
# fuzz builds the targets itself (make fuzz-build, installing clang/libFuzzer when missing) and
# runs each for HP_FUZZ_TIME seconds (default 12), FUZZ_JOBS at once (default 2); each target is
# one test.
#
# Every test program prints TAP; this runner shows it, counts it and ends with the line
# "N passed, N failed". A program that dies without reporting (a crash, a sanitizer abort, a
# timeout) counts as one failure. Exit status: 0 only when nothing failed and something ran.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
mode=${1:-all}
filter=${2:-}
passed=0 failed=0 skipped=0
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export CMOCKA_MESSAGE_OUTPUT=TAP

# run_one NAME TIMEOUT CMD...: run, show output, count TAP results.
run_one() {
  local name=$1 limit=$2 out rc start=$SECONDS
  shift 2
  out=$(mktemp)
  echo "=== $name"
  timeout -k 10 "$limit" "$@" 2>&1 | tee "$out"
  rc=${PIPESTATUS[0]}
  echo "# $name: $((SECONDS - start)) s"
  count "$name" "$limit" "$rc" "$out"
}

# run_bg NAME TIMEOUT CMD...: start in the background, output to a file; bg_finish shows and
# counts each, in the order they started. For long tests that mostly wait (the end-to-end
# cluster test waits out a token's lifetime; the soak's short form runs 3 minutes of faults), so
# the others run meanwhile.
bg_pids=() bg_names=() bg_limits=() bg_outs=()
# Interrupted, the background tests are stopped too (their timeout passes TERM on, and each
# test's harness tears its cluster down) before this runner exits.
bg_stop() {
  local p
  for p in "${bg_pids[@]}"; do
    pkill -TERM -P "$p" 2> /dev/null
  done
  for p in "${bg_pids[@]}"; do
    wait "$p" 2> /dev/null
  done
}
trap 'bg_stop; exit 130' INT
trap 'bg_stop; exit 143' TERM
run_bg() {
  local name=$1 limit=$2 out
  shift 2
  out=$(mktemp)
  echo "=== $name: started in the background, its output follows the other tests"
  (
    start=$SECONDS
    timeout -k 10 "$limit" "$@" > "$out" 2>&1
    echo $? > "$out.rc"
    echo "# $name: $((SECONDS - start)) s (in the background)" >> "$out"
  ) &
  bg_pids+=($!) bg_names+=("$name") bg_limits+=("$limit") bg_outs+=("$out")
}
bg_finish() {
  local i
  for i in "${!bg_pids[@]}"; do
    wait "${bg_pids[i]}"
    echo "=== ${bg_names[i]}"
    cat "${bg_outs[i]}"
    count "${bg_names[i]}" "${bg_limits[i]}" "$(cat "${bg_outs[i]}.rc")" "${bg_outs[i]}"
    rm -f "${bg_outs[i]}.rc"
  done
  bg_pids=()
}

# count NAME LIMIT RC FILE: count the TAP results in FILE (and remove it)
count() {
  local name=$1 limit=$2 rc=$3 out=$4 ok nok skip plan
  # TAP: "ok N", "not ok N"; a "# SKIP" directive (cmocka prints "not ok N # SKIP") is a skip
  ok=$(grep -E '^ok [0-9]+' "$out" | grep -cv '# SKIP')
  nok=$(grep -E '^not ok [0-9]+' "$out" | grep -cv '# SKIP')
  skip=$(grep -E '^(not )?ok [0-9]+.*# SKIP' "$out" | wc -l)
  passed=$((passed + ok))
  failed=$((failed + nok))
  skipped=$((skipped + skip))
  # every TAP plan line "1..N" promises N results: a result hidden by stray output (no newline
  # before "ok") or lost in a crash must not go unnoticed
  plan=$(grep -E '^1\.\.[0-9]+$' "$out" | cut -d. -f3 | awk '{s += $1} END {if (NR) print s}')
  if [ -n "$plan" ] && [ "$plan" -gt $((ok + nok + skip)) ]; then
    echo "# $name: $((plan - ok - nok - skip)) result(s) missing from its TAP plan of $plan"
    failed=$((failed + plan - ok - nok - skip))
  fi
  if [ "$rc" -ne 0 ] && [ "$nok" -eq 0 ]; then
    [ "$rc" -eq 124 ] && echo "# $name: timed out after ${limit}s" || echo "# $name: exited with status $rc without a failing test"
    failed=$((failed + 1))
  fi
  rm -f "$out"
}

# The end-to-end cluster test mostly waits (a token's lifetime): it starts first, in the
# background, and the unit tests, the fuzz targets and the other integration tests run
# meanwhile. The soak's short form runs for minutes too, in the background, but from the start
# of the integration tests: its 200 HostInspections must all be Ready before its faults begin,
# which the ASan builds and fuzzers of the first phases starved (CI, 2 December).
background=(tests/integration/test-e2e-cluster.sh tests/integration/test-soak.sh)
start_background() { # start_background FILE...
  local f
  for f in "$@"; do
    if [ -f "$f" ] && [[ -z $filter || $f == *"$filter"* ]]; then
      run_bg "integration $(basename "$f" .sh)" "${HP_IT_TIMEOUT:-1800}" bash "$f"
    fi
  done
}
if [ "$mode" = integration ] || [ "$mode" = all ]; then
  start_background "${background[0]}"
fi
if [ "$mode" = unit ] || [ "$mode" = all ]; then
  for b in build/asan/tests/test-*; do
    [ -x "$b" ] || continue
    [[ -z $filter || $b == *"$filter"* ]] || continue
    run_one "unit $(basename "$b")" 300 "$b"
  done
fi
if [ "$mode" = fuzz ] || [ "$mode" = all ]; then
  fuzz_names=()
  for f in tests/fuzz/fuzz-*.c; do
    n=${f#tests/fuzz/fuzz-}
    n=${n%.c}
    [[ -z $filter || $n == *"$filter"* ]] && fuzz_names+=("$n")
  done
  if [ ${#fuzz_names[@]} -gt 0 ]; then
    echo "=== fuzz: building the targets (make fuzz-build)"
    fuzz_build=$(mktemp)
    if make --no-print-directory fuzz-build > "$fuzz_build" 2>&1; then
      fuzz_time=${HP_FUZZ_TIME:-12}
      fuzz_rounds=$(((${#fuzz_names[@]} + ${FUZZ_JOBS:-2} - 1) / ${FUZZ_JOBS:-2}))
      run_one "fuzz" $((fuzz_rounds * (fuzz_time + 30) + 120)) \
        bash tests/fuzz/fuzz.sh --tap "$fuzz_time" "${fuzz_names[@]}"
    else
      tail -40 "$fuzz_build"
      echo "# fuzz: make fuzz-build failed: ${#fuzz_names[@]} targets not run"
      failed=$((failed + ${#fuzz_names[@]}))
    fi
    rm -f "$fuzz_build"
  fi
fi
if [ "$mode" = integration ] || [ "$mode" = all ]; then
  start_background "${background[@]:1}"
  for f in tests/integration/test-*.sh; do
    [ -f "$f" ] && [[ " ${background[*]} " != *" $f "* ]] || continue
    [[ -z $filter || $f == *"$filter"* ]] || continue
    run_one "integration $(basename "$f" .sh)" "${HP_IT_TIMEOUT:-1800}" bash "$f"
  done
  bg_finish
fi
echo
if [ "$skipped" -gt 0 ]; then
  echo "$passed passed, $failed failed, $skipped skipped"
else
  echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
