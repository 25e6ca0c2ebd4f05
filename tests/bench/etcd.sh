#!/usr/bin/env bash
# tests/bench/etcd.sh - `make bench` (etcd part): against ONE local etcd 3.6 (fsync on, as users
# run it), in the same run: etcd's own gRPC benchmark (txn-put, same puts per txn), hostpatrol's
# batch queue (`hostpatrol bench etcd`), and a naive writer (one put per result, same client).
# Prints a table with keys/s, p99 and the ratios. Targets (reported, not asserted):
# batch >= 0.8x etcd's own keys/s at the same txn size, >= 20x the naive writer.
#
#   BENCH_RESULTS (default 100000), BENCH_NAIVE_RESULTS (20000), BENCH_CONCURRENCY (16),
#   BENCH_VALUE_BYTES (256), BENCH_TXN_OPS (128: 127 results + the fence per txn)
set -uo pipefail
# shellcheck source=tests/harness/harness.sh
. "$(dirname "$0")/../harness/harness.sh"
N=${BENCH_RESULTS:-100000}
NN=${BENCH_NAIVE_RESULTS:-20000}
C=${BENCH_CONCURRENCY:-16}
V=${BENCH_VALUE_BYTES:-256}
OPS=${BENCH_TXN_OPS:-128}
HOSTPATROL=$HP_H_ROOT/build/hostpatrol
ETCDBENCH=$HP_H_TOOLS/etcdbench-$ETCD_BENCH_VERSION/bin/benchmark
[ -x "$ETCDBENCH" ] || { echo "bench: etcd benchmark not built (make tools)" >&2; exit 1; }

hp_h_init
hp_h_etcd bench 3.6 --quota-backend-bytes=8589934592 || exit 1
url=${HP_ETCD_URL[bench]}
puts=$((OPS - 1)) # etcd's txn-put carries only results; ours also carries the fence
txns=$((N / puts))

echo "bench: etcd $(curl -fsS "$url/version" | jq -r .etcdserver) at $url; $(nproc) cores"
echo "bench: $puts results of $V B per txn, concurrency $C"

# 1. etcd's own benchmark, gRPC, same results per txn
out=$("$ETCDBENCH" --endpoints="${url#http://}" --conns="$C" --clients="$C" --precise \
  txn-put --txn-ops="$puts" --total="$txns" --key-size=40 --val-size="$V" \
  --key-space-size=2000000000 2>&1) || { echo "$out"; exit 1; }
etcd_rps=$(awk '/Requests\/sec:/{print $2}' <<< "$out")
etcd_p99=$(awk '/99% in/{print $3}' <<< "$out" | head -1)
etcd_keys=$(awk -v r="$etcd_rps" -v p="$puts" 'BEGIN{printf "%.0f", r*p}')
etcd_p99_ms=$(awk -v s="$etcd_p99" 'BEGIN{printf "%.2f", s*1000}')

# 2. hostpatrol batch queue (JSON gateway) and 3. naive writer
batch=$("$HOSTPATROL" bench etcd --endpoints "$url" --results "$N" --value-bytes "$V" \
  --concurrency "$C" --txn-ops "$OPS" --deadline 30s -o json) || { echo "$batch"; exit 1; }
naive=$("$HOSTPATROL" bench etcd --endpoints "$url" --results "$NN" --value-bytes "$V" \
  --concurrency "$C" --naive --deadline 30s -o json) || { echo "$naive"; exit 1; }
naive1=$("$HOSTPATROL" bench etcd --endpoints "$url" --results "$((NN / 10))" --value-bytes "$V" \
  --concurrency 1 --naive --deadline 30s -o json) || { echo "$naive1"; exit 1; }
n1_keys=$(jq -r '.keys_per_s|floor' <<< "$naive1")

b_keys=$(jq -r '.keys_per_s|floor' <<< "$batch")
n_keys=$(jq -r '.keys_per_s|floor' <<< "$naive")
printf '\n%-34s %12s %10s %14s\n' "writer" "keys/s" "p99 ms" "vs this writer"
printf '%-34s %12s %10s %14s\n' "etcd benchmark txn-put (gRPC)" "$etcd_keys" "$etcd_p99_ms" "1.00x"
printf '%-34s %12s %10.2f %14s\n' "hostpatrol batch queue" "$b_keys" "$(jq -r .p99_ms <<< "$batch")" \
  "$(awk -v a="$b_keys" -v b="$etcd_keys" 'BEGIN{printf "%.2fx etcd", a/b}')"
printf '%-34s %12s %10.2f %14s\n' "naive writer, $C in flight" "$n_keys" "$(jq -r .p99_ms <<< "$naive")" \
  "$(awk -v a="$b_keys" -v b="$n_keys" 'BEGIN{printf "batch %.1fx", a/b}')"
printf '%-34s %12s %10.2f %14s\n' "naive writer, 1 in flight" "$n1_keys" "$(jq -r .p99_ms <<< "$naive1")" \
  "$(awk -v a="$b_keys" -v b="$n1_keys" 'BEGIN{printf "batch %.1fx", a/b}')"
printf '\ntargets: batch >= 0.80x etcd: %s; batch >= 20x naive (%s in flight): %s; (1 in flight): %s\n' \
  "$(awk -v a="$b_keys" -v b="$etcd_keys" 'BEGIN{print (a >= 0.8*b) ? "met" : "NOT met"}')" "$C" \
  "$(awk -v a="$b_keys" -v b="$n_keys" 'BEGIN{print (a >= 20*b) ? "met" : "NOT met"}')" \
  "$(awk -v a="$b_keys" -v b="$n1_keys" 'BEGIN{print (a >= 20*b) ? "met" : "NOT met"}')"
echo "outcomes: batch $(jq -c '{committed,failed,rolled_back,unresolved,txns}' <<< "$batch"), naive $(jq -c '{committed,failed,unresolved}' <<< "$naive")"
