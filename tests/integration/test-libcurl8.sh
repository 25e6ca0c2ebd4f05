#!/usr/bin/env bash
# test-libcurl8.sh - the gRPC transport on libcurl 8 (issue 13: right on Debian 12's libcurl 7.88
# and on 8.x). Debian's backport of libcurl 8 (tests/tools/build.sh libcurl8: bookworm-backports,
# unpacked into the tool cache) under the same binaries through LD_LIBRARY_PATH: the binaries
# must say they run on it; then, on it, the gRPC client's own suite (h2c primes and reuse,
# multiplexing, resets, stalls) on etcd 3.6, and the suites of the etcd client (3.4, 3.5, 3.6,
# the 3-member cluster; native gRPC), TLS / mTLS / auth (the real binary) and the faults of
# the matrix that act on connections (>= 1,000 batches per fault, --verify; reset_peer within its
# 20 s bound: with every h2c call on any pooled connection, libcurl 8 left results unfinal for up
# to 50 s). The liveness runs with 30% of the responses 2.5 s late run on libcurl 8 in
# test-etcd-liveness.sh, beside its other runs (they wait on the network).
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
GRPC_ITEST=$HP_H_ROOT/build/asan/itests/itest-grpc_client
L=$HP_H_LIBCURL8

if [ ! -f "$L/libcurl.so.4" ]; then
  echo "not ok 1 - libcurl 8 is not in the tool cache ($L): run make tools"
  exit 1
fi
v=$(LD_LIBRARY_PATH=$L "$HP_H_ROOT/build/hostpatrol" version -o json | jq -r .libraries.libcurl)
if [[ $v == 8.* ]]; then
  echo "ok 1 - the binaries run on libcurl $v from $L"
else
  echo "not ok 1 - the binaries run on libcurl '$v' with LD_LIBRARY_PATH=$L, not 8.x"
  exit 1
fi
export LD_LIBRARY_PATH=$L${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export CMOCKA_MESSAGE_OUTPUT=TAP

status=0
# the gRPC client's own suite, as test-batch-queue.sh runs it on 7.88
(
  hp_h_init
  hp_h_etcd r36 3.6 || exit 1
  hp_h_toxiproxy || exit 1
  hp_h_toxi_proxy slow "${HP_ETCD_URL[r36.0]#http://}" || exit 1
  hp_h_toxic_add slow late latency downstream '{"latency":1500}' || exit 1
  hp_h_toxi_proxy ctl "${HP_ETCD_URL[r36.0]#http://}" || exit 1
  echo "# itest-grpc_client on libcurl $v, etcd 3.6"
  HP_ETCD_URL=${HP_ETCD_URL[r36]} HP_ETCD_SLOW_URL=http://127.0.0.1:${HP_TOXI_PORT[slow]} \
    HP_TOXI_API=$HP_TOXI_API HP_TOXI_PROXY=ctl \
    HP_ETCD_PROXY_URL=http://127.0.0.1:${HP_TOXI_PORT[ctl]} \
    timeout -k 5 120 "$GRPC_ITEST"
) || status=1
echo "# test-etcd-client.sh on libcurl $v, native gRPC"
HP_ETCD_TRANSPORTS=grpc bash "$here/test-etcd-client.sh" || status=1
echo "# test-etcd-security.sh on libcurl $v"
bash "$here/test-etcd-security.sh" || status=1
# the faults that act on connections (resets, a stalled link, answers later than the deadline, a
# leader killed under the client); the rest of the matrix does not depend on the transport's
# connections and runs on 7.88 only (CI time)
echo "# test-etcd-faults.sh on libcurl $v: resets, stalls, late answers, the leader's kill"
T_ONLY='reset_peer_3_6|reset_peer_over_tls_3_6|stalled_link_3_6|phantom_latency_3_6$|leader' bash "$here/test-etcd-faults.sh" || status=1
exit $status
