#!/usr/bin/env bash
# fuzz.sh - run hostpatrol's libFuzzer targets (tests/fuzz/fuzz-NAME.c, built by `make
# fuzz-build` into build/fuzz/bin/fuzz-NAME). docs/fuzzing.md says how to use them.
#
#   tests/fuzz/fuzz.sh --check-toolchain            install clang-14 and libFuzzer if missing
#   tests/fuzz/fuzz.sh --table SECONDS [NAME...]    run each target SECONDS, then print a table
#   tests/fuzz/fuzz.sh --tap SECONDS [NAME...]      the same as TAP, one test per target
#
# Each target starts from its seeds (tests/fuzz/corpus/NAME, only read), with the dictionary
# tests/fuzz/dict/NAME.dict when there is one, and writes the inputs it
# finds to a scratch corpus (build/fuzz/corpus/NAME), crash reproducers to
# build/fuzz/artifacts/NAME/ and its output to build/fuzz/logs/NAME.log. A crash, a sanitizer
# report, a leak, an input running longer than FUZZ_INPUT_TIMEOUT s (default 10) or needing
# more than FUZZ_RSS_MB MiB (default 2048) fails the target. FUZZ_JOBS targets run at once
# (default: 1 for --table, 2 for --tap: CI machines have 2 cores).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2

if [ "${1:-}" = --check-toolchain ]; then
  if ! command -v clang-14 > /dev/null ||
    ! compgen -G '/usr/lib/llvm-14/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a' > /dev/null; then
    echo "fuzz: clang-14 or libFuzzer's runtime (libclang-rt-14-dev) missing: installing"
    bash tests/tools/deps.sh || exit 1
  fi
  exit 0
fi

mode=${1:-}
secs=${2:-}
if [[ ! $mode =~ ^--(table|tap)$ ]] || [[ ! $secs =~ ^[0-9]+$ ]] || [ "$secs" -lt 1 ]; then
  echo "usage: $0 --table|--tap SECONDS [NAME...]" >&2
  exit 2
fi
shift 2
if [ $# -gt 0 ]; then
  names=("$@")
else
  names=()
  for f in tests/fuzz/fuzz-*.c; do
    n=${f#tests/fuzz/fuzz-}
    names+=("${n%.c}")
  done
fi
jobs=${FUZZ_JOBS:-$([ "$mode" = --tap ] && echo 2 || echo 1)}
input_timeout=${FUZZ_INPUT_TIMEOUT:-10}
rss_mb=${FUZZ_RSS_MB:-2048}
mkdir -p build/fuzz/logs

# run NAME: one target for secs seconds; its log and exit status go to build/fuzz/logs/
run() {
  local name=$1 bin=build/fuzz/bin/fuzz-$1 log=build/fuzz/logs/$1.log dict opts=()
  mkdir -p "build/fuzz/corpus/$name" "build/fuzz/artifacts/$name" "tests/fuzz/corpus/$name"
  if [ ! -x "$bin" ]; then
    echo "fuzz: $bin is not built (make fuzz-build)" > "$log"
    echo 127 > "$log.rc"
    return
  fi
  # a dictionary of the input's tokens: tests/fuzz/dict/NAME.dict, else the one of NAME's family
  # (inspection_spec-json -> inspection_spec.dict)
  dict=tests/fuzz/dict/$name.dict
  [ -f "$dict" ] || dict=tests/fuzz/dict/${name%%-*}.dict
  [ -f "$dict" ] && opts+=("-dict=$dict")
  ASAN_OPTIONS=${FUZZ_ASAN_OPTIONS:-detect_leaks=1:strict_string_checks=1} \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    timeout -k 10 $((secs + 3 * input_timeout + 60)) "$bin" -max_total_time="$secs" \
    -timeout="$input_timeout" -rss_limit_mb="$rss_mb" -print_final_stats=1 \
    -artifact_prefix="build/fuzz/artifacts/$name/" "${opts[@]}" \
    "build/fuzz/corpus/$name" "tests/fuzz/corpus/$name" > "$log" 2>&1
  echo $? > "$log.rc"
}

running=0
for name in "${names[@]}"; do
  if [ "$running" -ge "$jobs" ]; then
    wait -n
    running=$((running - 1))
  fi
  [ "$mode" = --table ] && echo "fuzz: $name for ${secs}s"
  run "$name" &
  running=$((running + 1))
done
wait

# verdict LOG RC: what ended the run
verdict() {
  local log=$1 rc=$2
  if [ "$rc" -eq 0 ]; then
    echo ok
  elif grep -q 'ERROR: libFuzzer: timeout' "$log"; then
    echo timeout
  elif grep -qE 'ERROR: libFuzzer: (out-of-memory|malloc)' "$log"; then
    echo out-of-memory
  elif grep -q 'ERROR: LeakSanitizer' "$log"; then
    echo leak
  elif grep -qE 'ERROR: (AddressSanitizer|libFuzzer: deadly signal)|runtime error:' "$log"; then
    echo crash
  elif [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    echo hung
  else
    echo "failed($rc)"
  fi
}

final_stat() { # final_stat LOG KEY: libFuzzer's final stat, or "-"
  local v
  v=$(grep -oE "^stat::$2: *[0-9]+" "$1" | tail -1 | grep -oE '[0-9]+$')
  echo "${v:--}"
}

failed=0 i=0
[ "$mode" = --tap ] && echo "1..${#names[@]}"
[ "$mode" = --table ] && printf '%-22s %12s %10s %8s  %s\n' target executions 'exec/s' corpus result
for name in "${names[@]}"; do
  i=$((i + 1))
  log=build/fuzz/logs/$name.log
  rc=$(cat "$log.rc" 2> /dev/null || echo 1)
  v=$(verdict "$log" "$rc")
  execs=$(final_stat "$log" number_of_executed_units)
  rate=$(final_stat "$log" average_exec_per_sec)
  corpus=$(grep -oE 'corp: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+$')
  corpus=${corpus:--}
  repro=$(grep -oE 'Test unit written to [^ ]+' "$log" | tail -1 | sed 's/Test unit written to //')
  [ "$v" = ok ] || failed=$((failed + 1))
  if [ "$mode" = --table ]; then
    printf '%-22s %12s %10s %8s  %s\n' "$name" "$execs" "$rate" "$corpus" "$v${repro:+ $repro}"
  elif [ "$v" = ok ]; then
    echo "ok $i - fuzz $name: $execs executions, $rate exec/s, corpus $corpus, ${secs}s"
  else
    echo "not ok $i - fuzz $name: $v${repro:+, reproducer $repro} (log $log)"
  fi
  if [ "$v" != ok ]; then
    # the report: from the first sanitizer or libFuzzer error to the end, as TAP comments
    sed -n '/==[0-9]*==ERROR\|^ERROR: libFuzzer\|runtime error:\|^fuzz: /,$p' "$log" |
      sed '/^Shadow bytes around/,/==ABORTING/d' | head -80 | sed 's/^/# /'
    [ -n "$repro" ] && echo "# reproduce: build/fuzz/bin/fuzz-$name $repro"
  fi
done
[ "$failed" -eq 0 ]
