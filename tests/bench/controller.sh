#!/usr/bin/env bash
# tests/bench/controller.sh - `make bench` (controller part), against the REAL kube-apiserver
# and a results etcd 3.6 started by the harness:
#   - controller RSS idle (synced, no HostInspection), with 1,000 and with 10,000;
#   - create -> Ready latency: 1,000 HostInspections created in a burst, then 100 more at
#     10/s while 1,000 exist (each has one http check of a local endpoint; the probe's own time,
#     from the results' duration_ms, is printed next to it).
# Targets (reported, not asserted): RSS <= 10 MB idle and <= 32 MB at 10,000; p99 < 1 s.
#
#   BENCH_CRS (default 10000)
set -uo pipefail
# shellcheck source=tests/harness/harness.sh
. "$(dirname "$0")/../harness/harness.sh"
HP=$HP_H_ROOT/build/hostpatrol
TOTAL=${BENCH_CRS:-10000}

hp_h_init
hp_h_control_plane || exit 1
hp_h_etcd res 3.6 || exit 1
hp_h_crd || exit 1
kc create namespace bench > /dev/null || exit 1
health="${HP_ETCD_URL[res]}/health"

"$HP" controller --kubeconfig "$HP_KUBECONFIG" --etcd-endpoints "${HP_ETCD_URL[res]}" \
  --state-dir "$HP_H_DIR/state" --log-level warn --metrics-bind-address 127.0.0.1:0 \
  --health-probe-bind-address 127.0.0.1:0 > "$HP_H_DIR/controller.log" 2>&1 &
pid=$!
rss() { awk '/VmRSS/{printf "%.1f", $2/1024}' "/proc/$pid/status"; }
anon() { awk '/RssAnon/{printf "%.1f", $2/1024}' "/proc/$pid/status"; }
load() { # load PREFIX COUNT RATE
  python3 "$HP_H_ROOT/tests/bench/crload.py" --server "$HP_APISERVER_URL" \
    --ca "$HP_H_DIR/pki/ca.crt" --cert "$HP_H_DIR/pki/admin.crt" --key "$HP_H_DIR/pki/admin.key" \
    --ns bench --prefix "$1" --count "$2" --rate "$3" --url "$health" --wait 600
}
settle() { sleep 5; }

sleep 3
rss0=$(rss); anon0=$(anon)
burst=$(load a 1000 0) || { echo "bench: burst load failed: $burst" >&2; tail "$HP_H_DIR/controller.log" >&2; exit 1; }
settle
rss1k=$(rss); anon1k=$(anon)
steady=$(load b 100 10) || { echo "bench: steady load failed: $steady" >&2; exit 1; }
rest=$((TOTAL - 1100))
if [ "$rest" -gt 0 ]; then
  more=$(load c "$rest" 0) || { echo "bench: load to $TOTAL failed: $more" >&2; exit 1; }
fi
settle
rss10k=$(rss); anon10k=$(anon)
n=$(kc -n bench get hi --no-headers 2> /dev/null | wc -l)
probe=$("$ETCDCTL36" --endpoints "${HP_ETCD_URL[res]}" get --prefix /hostpatrol/results/bench/ \
  --print-value-only | jq -s '[.[].duration_ms] | sort | .[length/2|floor]')
kill -TERM "$pid"; wait "$pid"

echo "bench: controller $("$HP" version | head -1), kube-apiserver $KUBE_VERSION, $(nproc) cores"
printf '\n%-44s %8s %9s %9s %9s %9s\n' "controller" "RSS MB" "anon MB" "p50 ms" "p99 ms" "max ms"
printf '%-44s %8s %9s %9s %9s %9s\n' "idle (synced, 0 HostInspections)" "$rss0" "$anon0" - - -
printf '%-44s %8s %9s %9s %9s %9s\n' "1,000 created in a burst -> Ready" "$rss1k" "$anon1k" \
  "$(jq -r .p50_ms <<< "$burst")" "$(jq -r .p99_ms <<< "$burst")" "$(jq -r .max_ms <<< "$burst")"
printf '%-44s %8s %9s %9s %9s %9s\n' "100 more at 10/s with 1,000 present -> Ready" - - \
  "$(jq -r .p50_ms <<< "$steady")" "$(jq -r .p99_ms <<< "$steady")" "$(jq -r .max_ms <<< "$steady")"
printf '%-44s %8s %9s %9s %9s %9s\n' "$n HostInspections" "$rss10k" "$anon10k" - - -
echo "(RSS = anon + file-backed pages of shared libraries: libcrypto, libc, libcurl and its"
echo " dependencies map about 10 MB that every process using them shares)"
# the floor the fixed libraries set: an empty main() linked with them, and curl --version
printf 'int main(void) { return 0; }\n' > "$HP_H_DIR/empty.c"
floor=-
read -ra libs <<< "$(pkg-config --libs libcurl jansson yaml-0.1 libwebsockets openssl)"
if gcc -o "$HP_H_DIR/empty" "$HP_H_DIR/empty.c" -Wl,--no-as-needed "${libs[@]}" -lpthread 2> /dev/null; then
  floor=$(/usr/bin/time -f %M "$HP_H_DIR/empty" 2>&1 | awk '{printf "%.1f", $1/1024}')
fi
curlrss=$(/usr/bin/time -f %M curl --version 2>&1 > /dev/null | awk '{printf "%.1f", $1/1024}')
echo "RSS floor of the libraries: an empty main() linked with libcurl, jansson, libyaml,"
echo "libwebsockets, OpenSSL: $floor MB; curl --version: $curlrss MB"
echo "probe time per run (median duration_ms of the results): $probe ms; burst created in $(jq -r .create_s <<< "$burst") s"
printf '\ntargets: RSS idle <= 10 MB: %s; RSS at %s <= 32 MB: %s; create->Ready p99 < 1 s at 1,000: %s\n' \
  "$(awk -v a="$rss0" 'BEGIN{print (a <= 10) ? "met" : "NOT met"}')" "$n" \
  "$(awk -v a="$rss10k" 'BEGIN{print (a <= 32) ? "met" : "NOT met"}')" \
  "$(jq -r 'if .p99_ms < 1000 then "met" else "NOT met" end' <<< "$steady")"
