#!/usr/bin/env bash
# demo-setup.sh - what `make demo` does before the demo starts: the Debian packages the product
# needs (tests/tools/deps.sh demo), then at the same time hostpatrol itself and the upstream
# binaries the demo runs (kube-apiserver and kubectl, etcd 3.6: tests/tools/build.sh), not the
# whole test toolchain. One line per step with the time since the start; what the compilers and
# Go print goes to logs under $HOSTPATROL_CACHE/logs, and a failing step shows its log's end.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=${HOSTPATROL_CACHE:-$HOME/.cache/hostpatrol}
LOGS=$CACHE/logs
mkdir -p "$LOGS"
t0=$SECONDS
say() { printf 'demo %d:%02d  %s\n' $(((SECONDS - t0) / 60)) $(((SECONDS - t0) % 60)) "$*"; }
declare -A job=() # pid -> build, while it runs
# failed NAME LOG: say so with the log's last lines, and stop
failed() {
  say "$1 FAILED; the last lines of $2:"
  tail -n 30 "$2" | sed 's/^/    /'
  for p in "${!job[@]}"; do pkill -P "$p" 2> /dev/null; kill "$p" 2> /dev/null; done
  exit 1
}

bash "$root/tests/tools/deps.sh" demo > "$LOGS/demo-deps.log" 2>&1 || failed "packages" "$LOGS/demo-deps.log"
say "packages: $(tail -n 1 "$LOGS/demo-deps.log" | sed 's/^deps: //')"

# the three builds at once: the Go builds download modules while the C build compiles
declare -A what=([kube]="kube-apiserver, kubectl" [etcd36]="etcd 3.6" [make]="hostpatrol")
declare -A log=([kube]=$LOGS/demo-kube.log [etcd36]=$LOGS/demo-etcd36.log [make]=$LOGS/demo-make.log)
say "building hostpatrol, kube-apiserver + kubectl and etcd 3.6 at once (logs: $LOGS/demo-*.log)"
for t in kube etcd36; do
  bash "$root/tests/tools/build.sh" "$t" > "${log[$t]}" 2>&1 &
  job[$!]=$t
done
make -C "$root" --no-print-directory all > "${log[make]}" 2>&1 &
job[$!]="make"
while [ ${#job[@]} -gt 0 ]; do
  wait -n -p finished "${!job[@]}"
  rc=$?
  t=${job[$finished]}
  unset "job[$finished]"
  [ "$rc" -eq 0 ] || failed "${what[$t]}" "${log[$t]}"
  if grep -q -e cached -e 'Nothing to be done' "${log[$t]}" || [ ! -s "${log[$t]}" ]; then
    say "${what[$t]}: up to date"
  else
    say "${what[$t]}: built"
  fi
done
