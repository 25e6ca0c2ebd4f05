#!/usr/bin/env bash
# tests/bench/probes.sh - `make bench` (probes part): 1,000 concurrent HTTP and TCP probes
# against one local target (etcd 3.6's client port: GET /health?serializable=true over Go
# net/http for http, a bare connect for tcp), in the same run by hostpatrol's prober
# (`hostpatrol bench probes`) and by Prometheus blackbox_exporter (driven with the same number
# of /probe requests in flight). Prints probes/s, CPU seconds and probes per CPU-second of each
# prober. Target (reported, not asserted): hostpatrol >= 2x blackbox_exporter's probes/s at
# equal CPU (probes per CPU-second).
#
#   BENCH_PROBE_CONCURRENCY (default 1000), BENCH_PROBE_SECONDS (10)
set -uo pipefail
# shellcheck source=tests/harness/harness.sh
. "$(dirname "$0")/../harness/harness.sh"
C=${BENCH_PROBE_CONCURRENCY:-1000}
S=${BENCH_PROBE_SECONDS:-10}
HOSTPATROL=$HP_H_ROOT/build/hostpatrol
BLACKBOX=$HP_H_TOOLS/blackbox-$BLACKBOX_VERSION/bin/blackbox_exporter
[ -x "$BLACKBOX" ] || { echo "bench: blackbox_exporter not built (make tools)" >&2; exit 1; }
[ -x "$HOSTPATROL" ] || { echo "bench: $HOSTPATROL not built (make all)" >&2; exit 1; }
TCK=$(getconf CLK_TCK)

# cpu_ticks PID: utime + stime of PID in clock ticks (fields 14 and 15 of /proc/PID/stat,
# counted after the ")" that ends the command name)
cpu_ticks() {
  local s
  s=$(cat "/proc/$1/stat") || return 1
  s=${s##*) }
  awk '{print $12 + $13}' <<< "$s"
}

hp_h_init
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
hp_h_etcd tgt 3.6 || exit 1
url=${HP_ETCD_URL[tgt]}
tgt_pid=${HP_ETCD_PID[tgt.0]}
http_target="$url/health?serializable=true"
tcp_target=${url#http://}

bb_port=$(hp_h_port)
bb_conf=$HP_H_DIR/blackbox.yml
cat > "$bb_conf" <<EOF
modules:
  http_2xx:
    prober: http
    timeout: 5s
  tcp_connect:
    prober: tcp
    timeout: 5s
EOF
hp_h_spawn blackbox "$BLACKBOX" --config.file="$bb_conf" \
  --web.listen-address="127.0.0.1:$bb_port" --log.level=warn
bb_pid=$HP_H_LASTPID
bb_url=http://127.0.0.1:$bb_port
hp_h_wait_http blackbox "$bb_pid" "$bb_url/-/healthy" || exit 1

echo "bench: target etcd $(curl -fsS "$url/version" | jq -r .etcdserver) at $url (pid $tgt_pid);" \
  "blackbox_exporter $BLACKBOX_VERSION at $bb_url (pid $bb_pid)"
echo "bench: $C probes in flight, ${S}s per run; $(nproc) cores shared by the prober under test," \
  "the target server and (blackbox runs) the driving client"

declare -A pps cpu ok tot tgt_cpu drv_cpu
for kind in http tcp; do
  if [ "$kind" = http ]; then target=$http_target; else target=$tcp_target; fi

  t0=$(cpu_ticks "$tgt_pid")
  j=$("$HOSTPATROL" bench probes --kind "$kind" --target "$target" --concurrency "$C" \
    --duration "${S}s" -o json) || { echo "$j"; exit 1; }
  t1=$(cpu_ticks "$tgt_pid")
  pps[$kind.hp]=$(jq -r .probes_per_s <<< "$j")
  cpu[$kind.hp]=$(jq -r .cpu_s <<< "$j")
  ok[$kind.hp]=$(jq -r .ok <<< "$j")
  tot[$kind.hp]=$(jq -r .probes <<< "$j")
  tgt_cpu[$kind.hp]=$(awk -v a="$t0" -v b="$t1" -v t="$TCK" 'BEGIN{printf "%.2f", (b-a)/t}')

  b0=$(cpu_ticks "$bb_pid")
  t0=$(cpu_ticks "$tgt_pid")
  j=$("$HOSTPATROL" bench probes --kind "$kind" --target "$target" --concurrency "$C" \
    --duration "${S}s" --blackbox "$bb_url" -o json) || { echo "$j"; exit 1; }
  b1=$(cpu_ticks "$bb_pid")
  t1=$(cpu_ticks "$tgt_pid")
  pps[$kind.bb]=$(jq -r .probes_per_s <<< "$j")
  cpu[$kind.bb]=$(awk -v a="$b0" -v b="$b1" -v t="$TCK" 'BEGIN{printf "%.2f", (b-a)/t}')
  ok[$kind.bb]=$(jq -r .ok <<< "$j")
  tot[$kind.bb]=$(jq -r .probes <<< "$j")
  drv_cpu[$kind]=$(jq -r '.driver_cpu_s * 100 | round / 100' <<< "$j")
  tgt_cpu[$kind.bb]=$(awk -v a="$t0" -v b="$t1" -v t="$TCK" 'BEGIN{printf "%.2f", (b-a)/t}')
done

# per_cpu PROBES CPU: probes per CPU-second of the prober
per_cpu() { awk -v p="$1" -v c="$2" 'BEGIN{ if (c > 0) printf "%.0f", p/c; else print "n/a" }'; }

printf '\n%-5s %-28s %10s %8s %14s %14s %12s\n' kind prober "probes/s" "CPU s" "probes/CPU-s" \
  "ok/probes" "target CPU s"
met=1
for kind in http tcp; do
  for t in hp bb; do
    if [ $t = hp ]; then name="hostpatrol $(git -C "$HP_H_ROOT" describe --tags --always 2>/dev/null)"
    else name="blackbox_exporter $BLACKBOX_VERSION"; fi
    printf '%-5s %-28s %10.0f %8.2f %14s %14s %12s\n' "$kind" "$name" "${pps[$kind.$t]}" \
      "${cpu[$kind.$t]}" "$(per_cpu "${tot[$kind.$t]}" "${cpu[$kind.$t]}")" \
      "${ok[$kind.$t]}/${tot[$kind.$t]}" "${tgt_cpu[$kind.$t]}"
  done
done
echo
for kind in http tcp; do
  eq=$(awk -v a="${tot[$kind.hp]}" -v ac="${cpu[$kind.hp]}" -v b="${tot[$kind.bb]}" \
    -v bc="${cpu[$kind.bb]}" 'BEGIN{ if (ac > 0 && bc > 0 && b > 0) printf "%.2f", (a/ac)/(b/bc); else print "n/a" }')
  raw=$(awk -v a="${pps[$kind.hp]}" -v b="${pps[$kind.bb]}" 'BEGIN{ if (b > 0) printf "%.2f", a/b; else print "n/a" }')
  verdict=$(awk -v r="$eq" 'BEGIN{print (r+0 >= 2) ? "met" : "NOT met"}')
  [ "$verdict" = met ] || met=0
  printf '%s: hostpatrol/blackbox probes per CPU-second (equal CPU) %sx, raw probes/s %sx; target >= 2x at equal CPU: %s\n' \
    "$kind" "$eq" "$raw" "$verdict"
done
echo "note: both probers share $(nproc) cores with the target etcd; in the blackbox runs the"
echo "      driving client (hostpatrol bench probes --blackbox) also runs (its CPU: http" \
  "${drv_cpu[http]} s, tcp ${drv_cpu[tcp]} s); CPU s counts only the prober's own process"
echo "      (hostpatrol: getrusage; blackbox_exporter: /proc/PID/stat utime+stime)."
[ $met = 1 ] && echo "target 2x at equal CPU: met for http and tcp" ||
  echo "target 2x at equal CPU: NOT met for every kind"
