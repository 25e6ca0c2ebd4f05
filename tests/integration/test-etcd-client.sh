#!/usr/bin/env bash
# test-etcd-client.sh - the etcd client (controller/etcd) against REAL etcd: Debian's 3.4, 3.5,
# 3.6 and a 3-member 3.6 cluster; the late-answer (phantom) case through a toxiproxy latency
# toxic on the response direction. Runs build/asan/itests/itest-etcd_client once per server and
# transport (native gRPC, the JSON gateway; HP_ETCD_TRANSPORTS narrows the list);
# its TAP lines are counted by tests/run.sh.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
ITEST=$HP_H_ROOT/build/asan/itests/itest-etcd_client
export CMOCKA_MESSAGE_OUTPUT=TAP

hp_h_init
hp_h_etcd r34 3.4 || exit 1
hp_h_etcd r35 3.5 || exit 1
hp_h_etcd r36 3.6 || exit 1
hp_h_etcd_cluster rc 3.6 3 || exit 1
hp_h_toxiproxy || exit 1
HP_ETCD_DEAD_URL=http://127.0.0.1:$(hp_h_port)
export HP_ETCD_DEAD_URL

status=0
for name in r34:3.4 r35:3.5 r36:3.6 rc:3.6; do
  e=${name%%:*}
  hp_h_toxi_proxy "slow-$e" "${HP_ETCD_URL[$e.0]#http://}" || exit 1
  hp_h_toxic_add "slow-$e" late latency downstream '{"latency":2000}' || exit 1
  for tr in ${HP_ETCD_TRANSPORTS:-grpc gateway}; do
    echo "# etcd '$e' (${name#*:}) at ${HP_ETCD_URL[$e]}, transport $tr"
    HP_ETCD_TRANSPORT=$tr HP_ETCD_URL=${HP_ETCD_URL[$e]} HP_ETCD_EXPECT_VERSION=${name#*:} \
      HP_ETCD_SLOW_URL=http://127.0.0.1:${HP_TOXI_PORT[slow-$e]} \
      timeout -k 5 300 "$ITEST" || status=1
  done
done
exit $status
