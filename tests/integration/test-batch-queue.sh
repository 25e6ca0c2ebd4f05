#!/usr/bin/env bash
# test-batch-queue.sh - the transactional batch queue (controller/batch) against REAL etcd 3.4
# (Debian), 3.6 and a 3-member 3.6 cluster; the phantom case through a toxiproxy latency toxic
# on the response direction. Runs build/asan/itests/itest-batch_queue once per server over
# native gRPC and on 3.4 over the JSON gateway too,
# itest-grpc_client (unary gRPC over HTTP/2) on 3.4 and 3.6, and itest-batch_group (one run's
# writes as one group) on 3.6.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
ITEST=$HP_H_ROOT/build/asan/itests/itest-batch_queue
GROUP_ITEST=$HP_H_ROOT/build/asan/itests/itest-batch_group
GRPC_ITEST=$HP_H_ROOT/build/asan/itests/itest-grpc_client
export CMOCKA_MESSAGE_OUTPUT=TAP

hp_h_init
hp_h_etcd r34 3.4 || exit 1
hp_h_etcd r36 3.6 || exit 1
hp_h_etcd_cluster rc 3.6 3 || exit 1
hp_h_toxiproxy || exit 1

status=0
for e in r34 r36 rc; do
  hp_h_toxi_proxy "slow-$e" "${HP_ETCD_URL[$e.0]#http://}" || exit 1
  hp_h_toxic_add "slow-$e" late latency downstream '{"latency":1500}' || exit 1
  hp_h_toxi_proxy "ctl-$e" "${HP_ETCD_URL[$e.0]#http://}" || exit 1
  # the JSON gateway (the transport before gRPC, kept for HTTP/1.1-only etcd) on Debian's 3.4
  # only: every server and the cluster on gRPC, the default (CI time: 7 runs took 191 s)
  trs=grpc
  [ "$e" = r34 ] && trs="grpc gateway"
  for tr in $trs; do
    hp_h_toxi_proxy "jr-$e-$tr" "${HP_ETCD_URL[$e.0]#http://}" || exit 1 # the journal test's own
    echo "# etcd '$e' at ${HP_ETCD_URL[$e]}, transport $tr"
    HP_ETCD_TRANSPORT=$tr HP_ETCD_URL=${HP_ETCD_URL[$e]} \
      HP_ETCD_SLOW_URL=http://127.0.0.1:${HP_TOXI_PORT[slow-$e]} \
      HP_TOXI_API=$HP_TOXI_API HP_TOXI_PROXY=ctl-$e \
      HP_ETCD_PROXY_URL=http://127.0.0.1:${HP_TOXI_PORT[ctl-$e]} TMPDIR=$HP_H_DIR \
      HP_JOURNAL_PROXY=jr-$e-$tr HP_JOURNAL_PROXY_URL=http://127.0.0.1:${HP_TOXI_PORT[jr-$e-$tr]} \
      timeout -k 5 300 "$ITEST" || status=1
  done
  # unary gRPC over HTTP/2 (grpc_client), the etcd transport of issue 13: on 3.4 and 3.6
  [ "$e" = rc ] && continue
  HP_ETCD_URL=${HP_ETCD_URL[$e]} HP_ETCD_SLOW_URL=http://127.0.0.1:${HP_TOXI_PORT[slow-$e]} \
    HP_TOXI_API=$HP_TOXI_API HP_TOXI_PROXY=ctl-$e \
    HP_ETCD_PROXY_URL=http://127.0.0.1:${HP_TOXI_PORT[ctl-$e]} \
    timeout -k 5 120 "$GRPC_ITEST" || status=1
  # a run's writes as one group (batch_group): once, on one server
  [ "$e" = r36 ] || continue
  HP_ETCD_URL=${HP_ETCD_URL[$e]} HP_ETCD_SLOW_URL=http://127.0.0.1:${HP_TOXI_PORT[slow-$e]} \
    timeout -k 5 120 "$GROUP_ITEST" || status=1
done
exit $status
