# shellcheck shell=bash
# harness.sh - starts the REAL upstream components hostpatrol's tests run against, on loopback:
# a control plane (etcd 3.6 + kube-apiserver, the way controller-runtime's envtest does it),
# results etcds of a chosen version (3.4 Debian / 3.5 / 3.6), 3-member results clusters, and
# toxiproxy in front of any of them.
#
# Source it, then:
#   hp_h_init                       session dir $HP_H_DIR; cleanup on EXIT, INT, TERM
#   hp_h_etcd NAME VERSION          single-member etcd (VERSION 3.4|3.5|3.6); HP_ETCD_URL[NAME]
#   hp_h_etcd_cluster NAME VERSION N  N-member cluster; HP_ETCD_URL[NAME] = all client URLs
#                                   (comma-separated), member i as HP_ETCD_URL[NAME.i],
#                                   HP_ETCD_PID[NAME.i]
#   hp_h_etcd_stop NAME.i / hp_h_etcd_restart NAME.i   kill -9 and restart one member
#   hp_h_control_plane              etcd 3.6 + kube-apiserver; HP_KUBECONFIG, HP_APISERVER_URL
#                                   (extra apiserver flags: HP_H_APISERVER_EXTRA, split on spaces)
#   hp_h_apiserver_stop / hp_h_apiserver_restart   kill -9 it / start it again, same flags
#   kc ARGS...                      kubectl against that control plane (30 s request timeout)
#   hp_h_crd                        apply the HostInspection CRD and wait until it is Established
#   hp_h_toxiproxy                  toxiproxy server; HP_TOXI_API
#   hp_h_toxi_proxy NAME UPSTREAM   a proxy to host:port UPSTREAM; HP_TOXI_PORT[NAME]
#   hp_h_toxic_add PROXY NAME TYPE STREAM ATTRS-JSON [TOXICITY] / hp_h_toxic_remove PROXY NAME
#   hp_h_toxi_enable PROXY true|false   cut every connection through PROXY, or restore it
#   hp_h_slowproxy NAME UPSTREAM SHARE LATENCY-MS [SEED]   our proxy (tests/tools/slowproxy.py):
#                                   delays SHARE (0..1) of the RESPONSES, not of the connections;
#                                   HP_SLOW_PORT[NAME]; counters in $HP_H_DIR/slowproxy-NAME.json
#   hp_h_slowproxy_stop NAME        SIGTERM it and wait for its final counters
#   hp_h_cleanup                    stop everything, remove the session dir (also on exit)
#   hp_h_leftovers DIR              print processes still running from session DIR (tests)
#
# Every process the harness starts carries $HP_H_DIR in its command line (data dirs, certs), so
# `pgrep -f $HP_H_DIR` finds exactly the session's processes. A session whose owner died
# (kill -9 of the test) is swept at the next hp_h_init.
#
# Every wait has a deadline (HP_H_START_TIMEOUT seconds, default 90).

HP_H_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=tests/tools/versions.env
. "$HP_H_ROOT/tests/tools/versions.env"
HP_H_CACHE=${HOSTPATROL_CACHE:-$HOME/.cache/hostpatrol}
HP_H_TOOLS=$HP_H_CACHE/tools
HP_H_START_TIMEOUT=${HP_H_START_TIMEOUT:-90}

KUBE_APISERVER=$HP_H_TOOLS/kube-$KUBE_VERSION/bin/kube-apiserver
KUBECTL=$HP_H_TOOLS/kube-$KUBE_VERSION/bin/kubectl
HELM=$HP_H_TOOLS/helm-$HELM_VERSION/bin/helm
TOXIPROXY_SERVER=$HP_H_TOOLS/toxiproxy-$TOXIPROXY_VERSION/bin/toxiproxy-server
TOXIPROXY_CLI=$HP_H_TOOLS/toxiproxy-$TOXIPROXY_VERSION/bin/toxiproxy-cli
ETCD34=${ETCD34:-/usr/bin/etcd}
ETCD35=$HP_H_TOOLS/etcd35-$ETCD35_VERSION/bin/etcd
ETCD36=$HP_H_TOOLS/etcd36-$ETCD36_VERSION/bin/etcd
ETCDCTL36=$HP_H_TOOLS/etcd36-$ETCD36_VERSION/bin/etcdctl
# Debian's backport of libcurl 8 (tests/tools/build.sh libcurl8): LD_LIBRARY_PATH for the
# binaries in test-libcurl8.sh
# shellcheck disable=SC2034 # read by the scripts that source this file
HP_H_LIBCURL8=$HP_H_TOOLS/libcurl8/lib
export KUBE_APISERVER KUBECTL HELM TOXIPROXY_SERVER TOXIPROXY_CLI ETCD34 ETCD35 ETCD36 ETCDCTL36

# shellcheck disable=SC2034 # read by the scripts that source this file
declare -gA HP_ETCD_URL=() HP_ETCD_PID=() HP_TOXI_PORT=() HP_SLOW_PORT=() HP_SLOW_PID=()
declare -gA HP_H_ETCD_ARGS=() HP_H_ETCD_BIN=()
HP_H_DIR=${HP_H_DIR:-}

hp_h_log() { printf '[harness %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
hp_h_die() { hp_h_log "ERROR: $*"; return 1; }

# hp_h_sweep: stop the processes of sessions whose owner shell is gone, remove their dirs.
hp_h_sweep() {
  local d owner
  for d in "${TMPDIR:-/tmp}"/hostpatrol-h.*; do
    [ -d "$d" ] || continue
    owner=$(cat "$d/owner" 2>/dev/null || echo 0)
    if [ "$owner" -gt 0 ] 2>/dev/null && kill -0 "$owner" 2>/dev/null; then continue; fi
    # a session being created right now (no owner written yet) is not a dead one
    if [ ! -e "$d/owner" ] && [ -z "$(find "$d" -maxdepth 0 -mmin +1 2>/dev/null)" ]; then continue; fi
    hp_h_cluster_down "$d"
    pkill -KILL -f -- "$d" 2>/dev/null || true
    rm -rf "$d"
  done
}

hp_h_init() {
  [ -n "$HP_H_DIR" ] && [ -d "$HP_H_DIR" ] && return 0
  hp_h_sweep
  HP_H_DIR=$(mktemp -d "${TMPDIR:-/tmp}/hostpatrol-h.XXXXXX")
  echo $$ > "$HP_H_DIR/owner"
  : > "$HP_H_DIR/pids"
  export HP_H_DIR
  trap 'hp_h_cleanup' EXIT
  trap 'hp_h_cleanup; trap - INT; kill -INT $$' INT
  trap 'hp_h_cleanup; trap - TERM; kill -TERM $$' TERM
}

# hp_h_port: a free TCP port on 127.0.0.1, never handed out twice in one session.
hp_h_port() {
  local p used lo span
  used=" $(ss -Htan 2>/dev/null | awk '{print $4}' | sed 's/.*://' | tr '\n' ' ') "
  # below the kernel's ephemeral range: a port picked here cannot be taken meanwhile by an
  # outgoing connection or a bind to port 0 (they draw from that range)
  lo=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2> /dev/null || echo 32768)
  span=$((lo - 20000))
  [ "$span" -ge 2000 ] || span=40000
  while :; do
    p=$((20000 + RANDOM % span))
    [[ $used == *" $p "* ]] && continue
    [ -e "$HP_H_DIR/port.$p" ] && continue
    : > "$HP_H_DIR/port.$p"
    echo "$p"
    return 0
  done
}

# hp_h_spawn NAME CMD...: start CMD in the background, logs in $HP_H_DIR/NAME.log; sets HP_H_LASTPID.
hp_h_spawn() {
  local name=$1; shift
  "$@" > "$HP_H_DIR/$name.log" 2>&1 &
  HP_H_LASTPID=$!
  echo "$HP_H_LASTPID $name" >> "$HP_H_DIR/pids"
}

# hp_h_wait DESC PID CMD...: run CMD (quietly) until it succeeds; fail, with the tail of
# $HP_H_DIR/DESC.log, when PID dies or HP_H_START_TIMEOUT passes.
hp_h_wait() {
  local desc=$1 pid=$2 deadline=$((SECONDS + HP_H_START_TIMEOUT))
  shift 2
  until "$@" > /dev/null 2>&1; do
    if ! kill -0 "$pid" 2>/dev/null; then
      hp_h_die "$desc exited during start-up; log: $HP_H_DIR/$desc.log"
      tail -n 20 "$HP_H_DIR/$desc.log" >&2
      return 1
    fi
    if [ $SECONDS -ge $deadline ]; then
      hp_h_die "$desc not ready ($*) within ${HP_H_START_TIMEOUT}s; log: $HP_H_DIR/$desc.log"
      tail -n 20 "$HP_H_DIR/$desc.log" >&2
      return 1
    fi
    sleep 0.2
  done
}

# hp_h_http_ok URL [CURL-ARGS...]: URL answers 200 with a body that does not say unhealthy
hp_h_http_ok() {
  local url=$1 body
  shift
  body=$(curl -fsS --max-time 2 "$@" "$url" 2>/dev/null) || return 1
  case $body in *'"health":"false"'* | *'"health": "false"'*) return 1 ;; esac
}

# hp_h_wait_http DESC PID URL [CURL-ARGS...]: hp_h_wait for hp_h_http_ok
hp_h_wait_http() { hp_h_wait "$1" "$2" hp_h_http_ok "${@:3}"; }

hp_h_etcd_bin() {
  case $1 in
    3.4) echo "$ETCD34" ;;
    3.5) echo "$ETCD35" ;;
    3.6) echo "$ETCD36" ;;
    *) hp_h_die "unknown etcd version '$1' (3.4|3.5|3.6)"; return 1 ;;
  esac
}

# hp_h_etcd_members NAME VERSION N [EXTRA-ETCD-FLAGS...]
# Client URLs on 127.0.0.1, or on $HP_H_ETCD_HOST (e.g. the node address, for pods).
# With HP_H_ETCD_TLS=1 the client URLs are https with client-certificate auth (certs from
# hp_h_pki: $HP_H_DIR/pki/{ca,etcd-server,etcd-client}.*).
hp_h_etcd_members() {
  local name=$1 version=$2 n=$3; shift 3
  local bin i cluster="" urls="" logger=() scheme=http tls="" curl_tls=() host=${HP_H_ETCD_HOST:-127.0.0.1}
  if [ -n "${HP_H_ETCD_TLS:-}" ]; then
    hp_h_pki || return 1
    scheme=https
    tls="--cert-file=$HP_H_DIR/pki/etcd-server.crt --key-file=$HP_H_DIR/pki/etcd-server.key
      --trusted-ca-file=$HP_H_DIR/pki/ca.crt --client-cert-auth=true"
    curl_tls=(--cacert "$HP_H_DIR/pki/ca.crt" --cert "$HP_H_DIR/pki/etcd-client.crt"
      --key "$HP_H_DIR/pki/etcd-client.key")
  fi
  bin=$(hp_h_etcd_bin "$version") || return 1
  [ -x "$bin" ] || { hp_h_die "etcd $version not found at $bin (run: make deps tools)"; return 1; }
  [ "$version" = 3.4 ] && logger=(--logger=zap)
  local -a cport pport
  for ((i = 0; i < n; i++)); do
    cport[i]=$(hp_h_port); pport[i]=$(hp_h_port)
    cluster+="${cluster:+,}$name-$i=http://127.0.0.1:${pport[i]}"
    urls+="${urls:+,}$scheme://$host:${cport[i]}"
  done
  for ((i = 0; i < n; i++)); do
    local m=$name.$i
    HP_H_ETCD_BIN[$m]=$bin
    HP_H_ETCD_ARGS[$m]="--name=$name-$i --data-dir=$HP_H_DIR/etcd-$m
      --listen-client-urls=$scheme://$host:${cport[i]}
      --advertise-client-urls=$scheme://$host:${cport[i]} $tls
      --listen-peer-urls=http://127.0.0.1:${pport[i]}
      --initial-advertise-peer-urls=http://127.0.0.1:${pport[i]}
      --initial-cluster=$cluster --initial-cluster-state=new
      --initial-cluster-token=$name-$(basename "$HP_H_DIR")
      --log-level=warn ${logger[*]} $*"
    HP_ETCD_URL[$m]=$scheme://$host:${cport[i]}
    hp_h_etcd_start_member "$m" || return 1
  done
  for ((i = 0; i < n; i++)); do
    hp_h_wait_http "etcd-$name.$i" "${HP_ETCD_PID[$name.$i]}" "${HP_ETCD_URL[$name.$i]}/health" \
      "${curl_tls[@]}" || return 1
  done
  HP_ETCD_URL[$name]=$urls
  hp_h_log "etcd $version '$name' ($n member(s)) at $urls"
}

hp_h_etcd_start_member() {
  local m=$1
  # shellcheck disable=SC2086 # the stored argument list is split on purpose
  hp_h_spawn "etcd-$m" "${HP_H_ETCD_BIN[$m]}" ${HP_H_ETCD_ARGS[$m]}
  HP_ETCD_PID[$m]=$HP_H_LASTPID
}

hp_h_etcd() { hp_h_etcd_members "$1" "$2" 1 "${@:3}"; }
hp_h_etcd_cluster() { hp_h_etcd_members "$1" "$2" "$3" "${@:4}"; }

# hp_h_etcd_stop MEMBER: kill -9 one member (a crash, not a clean stop).
hp_h_etcd_stop() {
  local pid=${HP_ETCD_PID[$1]:-}
  [ -n "$pid" ] || { hp_h_die "no etcd member '$1'"; return 1; }
  { kill -KILL "$pid" && wait "$pid"; } 2>/dev/null || true
}

# hp_h_etcd_restart MEMBER: start a killed member again on its data dir and wait for health.
hp_h_etcd_restart() {
  local m=$1
  HP_H_ETCD_ARGS[$m]=${HP_H_ETCD_ARGS[$m]/--initial-cluster-state=new/--initial-cluster-state=existing}
  hp_h_etcd_start_member "$m" || return 1
  hp_h_wait_http "etcd-$m" "${HP_ETCD_PID[$m]}" "${HP_ETCD_URL[$m]}/health"
}

# hp_h_pki: CA, apiserver serving cert, admin client cert (group system:masters), SA key pair.
hp_h_pki() {
  local d=$HP_H_DIR/pki
  [ -f "$d/admin.crt" ] && return 0
  mkdir -p "$d"
  (
    set -e
    cd "$d"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 \
      -subj "/CN=hostpatrol-test-ca" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
    openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr \
      -subj "/CN=kube-apiserver"
    printf 'subjectAltName=IP:127.0.0.1,IP:10.0.0.1%s,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n' \
      "${HP_H_NODE_IP:+,IP:$HP_H_NODE_IP}" > apiserver.ext
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
      -extfile apiserver.ext -out apiserver.crt
    openssl req -newkey rsa:2048 -nodes -keyout admin.key -out admin.csr \
      -subj "/O=system:masters/CN=hostpatrol-test-admin"
    printf 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n' > client.ext
    openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
      -extfile client.ext -out admin.crt
    openssl genrsa -out sa.key 2048
    openssl rsa -in sa.key -pubout -out sa.pub
    # results etcd over TLS: a server cert (valid for 127.0.0.1, localhost, etcd.test), a client
    # cert, and an unrelated CA for mismatch tests
    openssl req -newkey rsa:2048 -nodes -keyout etcd-server.key -out etcd-server.csr \
      -subj "/CN=etcd.test"
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:etcd.test\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n' > etcd-server.ext
    openssl x509 -req -in etcd-server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
      -extfile etcd-server.ext -out etcd-server.crt
    openssl req -newkey rsa:2048 -nodes -keyout etcd-client.key -out etcd-client.csr \
      -subj "/CN=hostpatrol"
    openssl x509 -req -in etcd-client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
      -extfile client.ext -out etcd-client.crt
    openssl req -x509 -newkey rsa:2048 -nodes -keyout other-ca.key -out other-ca.crt -days 2 \
      -subj "/CN=some-other-ca"
  ) > "$HP_H_DIR/pki.log" 2>&1 || { hp_h_die "PKI generation failed; log: $HP_H_DIR/pki.log"; return 1; }
}

# hp_h_control_plane: etcd 3.6 (no fsync: it is only the apiserver's storage) + kube-apiserver.
hp_h_control_plane() {
  [ -x "$KUBE_APISERVER" ] || { hp_h_die "kube-apiserver not found at $KUBE_APISERVER (run: make tools)"; return 1; }
  hp_h_pki || return 1
  if [ -n "${HP_H_NODE_IP:-}" ]; then hp_h_cluster_pki || return 1; fi
  hp_h_etcd kube 3.6 --unsafe-no-fsync=true || return 1
  local port d=$HP_H_DIR/pki
  port=$(hp_h_port)
  HP_APISERVER_URL=https://127.0.0.1:$port
  # Alone (envtest style): loopback only, no Node authorizer, no ServiceAccount admission. With
  # HP_H_NODE_IP (a node joins: tests/harness/cluster.sh): advertised on the node's address so
  # the `kubernetes` Service has endpoints pods reach, Node authorization, ServiceAccount tokens
  # mounted into pods, and the kubelet client cert for logs/exec.
  local cp_flags=(--bind-address=127.0.0.1 --advertise-address=127.0.0.1 --authorization-mode=RBAC
    --disable-admission-plugins=ServiceAccount --endpoint-reconciler-type=none)
  if [ -n "${HP_H_NODE_IP:-}" ]; then
    # shellcheck disable=SC2054 # Node,RBAC is one flag value
    cp_flags=(--bind-address=0.0.0.0 --advertise-address="$HP_H_NODE_IP" --authorization-mode=Node,RBAC
      --enable-admission-plugins=NodeRestriction --endpoint-reconciler-type=lease
      --kubelet-client-certificate="$d/apiserver-kubelet.crt" --kubelet-client-key="$d/apiserver-kubelet.key"
      --kubelet-preferred-address-types=InternalIP --service-account-extend-token-expiration=false)
  fi
  # shellcheck disable=SC2206 # HP_H_APISERVER_EXTRA is split on spaces on purpose
  HP_H_APISERVER_ARGS=(
    --etcd-servers="${HP_ETCD_URL[kube]}" --etcd-prefix=/registry \
    --cert-dir="$HP_H_DIR/apiserver-certs" \
    --tls-cert-file="$d/apiserver.crt" --tls-private-key-file="$d/apiserver.key" \
    --client-ca-file="$d/ca.crt" \
    --secure-port="$port" "${cp_flags[@]}" \
    --service-cluster-ip-range=10.0.0.0/24 --allow-privileged=true \
    --service-account-issuer="$HP_APISERVER_URL/" \
    --service-account-key-file="$d/sa.pub" --service-account-signing-key-file="$d/sa.key" \
    --v=1 ${HP_H_APISERVER_EXTRA:-})
  hp_h_spawn kube-apiserver "$KUBE_APISERVER" "${HP_H_APISERVER_ARGS[@]}"
  HP_APISERVER_PID=$HP_H_LASTPID
  HP_KUBECONFIG=$HP_H_DIR/kubeconfig
  cat > "$HP_KUBECONFIG" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: hostpatrol-test
  cluster:
    server: $HP_APISERVER_URL
    certificate-authority: $d/ca.crt
users:
- name: admin
  user:
    client-certificate: $d/admin.crt
    client-key: $d/admin.key
contexts:
- name: hostpatrol-test
  context: {cluster: hostpatrol-test, user: admin, namespace: default}
current-context: hostpatrol-test
EOF
  hp_h_wait_http kube-apiserver "$HP_APISERVER_PID" "$HP_APISERVER_URL/readyz" \
    --cacert "$d/ca.crt" --cert "$d/admin.crt" --key "$d/admin.key" || return 1
  export HP_KUBECONFIG HP_APISERVER_URL
  hp_h_log "kube-apiserver $KUBE_VERSION at $HP_APISERVER_URL (kubeconfig $HP_KUBECONFIG)"
}

kc() { "$KUBECTL" --kubeconfig "$HP_KUBECONFIG" --request-timeout=30s "$@"; }

hp_h_crd() {
  kc apply -f "$HP_H_ROOT/crd/hostpatrol.io_hostinspections.yaml" > /dev/null || return 1
  kc wait --for condition=Established --timeout=60s crd/hostinspections.hostpatrol.io > /dev/null
}

# hp_h_apiserver_stop: kill -9 the kube-apiserver. hp_h_apiserver_restart: start it again with
# the same flags and port, and wait for /readyz.
hp_h_apiserver_stop() {
  { kill -KILL "$HP_APISERVER_PID" && wait "$HP_APISERVER_PID"; } 2>/dev/null || true
}
hp_h_apiserver_restart() {
  local d=$HP_H_DIR/pki
  hp_h_spawn kube-apiserver "$KUBE_APISERVER" "${HP_H_APISERVER_ARGS[@]}"
  HP_APISERVER_PID=$HP_H_LASTPID
  hp_h_wait_http kube-apiserver "$HP_APISERVER_PID" "$HP_APISERVER_URL/readyz" \
    --cacert "$d/ca.crt" --cert "$d/admin.crt" --key "$d/admin.key"
}

hp_h_toxiproxy() {
  [ -x "$TOXIPROXY_SERVER" ] || { hp_h_die "toxiproxy not found at $TOXIPROXY_SERVER (run: make tools)"; return 1; }
  local port
  port=$(hp_h_port)
  # -config names the session dir so the leftover check and the sweep can find the process.
  echo '[]' > "$HP_H_DIR/toxiproxy.json"
  hp_h_spawn toxiproxy "$TOXIPROXY_SERVER" -host 127.0.0.1 -port "$port" -config "$HP_H_DIR/toxiproxy.json"
  HP_TOXI_PID=$HP_H_LASTPID
  HP_TOXI_API=http://127.0.0.1:$port
  hp_h_wait_http toxiproxy "$HP_TOXI_PID" "$HP_TOXI_API/version" || return 1
  export HP_TOXI_API
}

# hp_h_toxi_proxy NAME UPSTREAM(host:port): create a proxy on a fresh loopback port.
hp_h_toxi_proxy() {
  local name=$1 upstream=$2 port
  port=$(hp_h_port)
  curl -fsS --max-time 5 -X POST "$HP_TOXI_API/proxies" \
    -d "{\"name\":\"$name\",\"listen\":\"127.0.0.1:$port\",\"upstream\":\"$upstream\",\"enabled\":true}" \
    > /dev/null || { hp_h_die "toxiproxy: cannot create proxy $name -> $upstream"; return 1; }
  # shellcheck disable=SC2034 # read by callers
  HP_TOXI_PORT[$name]=$port
}

# hp_h_toxi_enable PROXY true|false: a disabled proxy closes its connections and refuses new ones
hp_h_toxi_enable() {
  curl -fsS --max-time 5 -X POST "$HP_TOXI_API/proxies/$1" -d "{\"enabled\":$2}" > /dev/null ||
    { hp_h_die "toxiproxy: cannot set enabled=$2 on $1"; return 1; }
}

# hp_h_toxic_add PROXY TOXIC TYPE STREAM ATTRIBUTES-JSON [TOXICITY]: TOXICITY (0..1, default 1)
# is the share of connections the toxic applies to
hp_h_toxic_add() {
  curl -fsS --max-time 5 -X POST "$HP_TOXI_API/proxies/$1/toxics" \
    -d "{\"name\":\"$2\",\"type\":\"$3\",\"stream\":\"$4\",\"toxicity\":${6:-1},\"attributes\":$5}" > /dev/null ||
    { hp_h_die "toxiproxy: cannot add toxic $2 to $1"; return 1; }
}

hp_h_toxic_remove() {
  curl -fsS --max-time 5 -X DELETE "$HP_TOXI_API/proxies/$1/toxics/$2" > /dev/null ||
    { hp_h_die "toxiproxy: cannot remove toxic $2 from $1"; return 1; }
}

# hp_h_slowproxy NAME UPSTREAM(host:port) SHARE LATENCY-MS [SEED]: tests/tools/slowproxy.py on a
# fresh loopback port; its log (with the seed, to replay a run) in $HP_H_DIR/slowproxy-NAME.log.
# toxiproxy's toxicity picks slow CONNECTIONS, which a client reusing connections mostly avoids;
# this one delays each RESPONSE with probability SHARE.
hp_h_slowproxy() {
  local name=$1 port stats=$HP_H_DIR/slowproxy-$1.json
  port=$(hp_h_port)
  # --stats names the session dir: the leftover check and the sweep find the process
  hp_h_spawn "slowproxy-$name" python3 "$HP_H_ROOT/tests/tools/slowproxy.py" --listen "$port" \
    --upstream "$2" --share "$3" --latency-ms "$4" ${5:+--seed "$5"} --stats "$stats"
  HP_SLOW_PID[$name]=$HP_H_LASTPID
  # the counters are first written once it listens
  hp_h_wait "slowproxy-$name" "$HP_H_LASTPID" test -s "$stats" || return 1
  # shellcheck disable=SC2034 # read by callers
  HP_SLOW_PORT[$name]=$port
}

# hp_h_slowproxy_stop NAME: SIGTERM; its last counters carry "stopped":true (10 s deadline)
hp_h_slowproxy_stop() {
  local pid=${HP_SLOW_PID[$1]} stats=$HP_H_DIR/slowproxy-$1.json deadline=$((SECONDS + 10))
  kill -TERM "$pid" 2> /dev/null
  until jq -e .stopped "$stats" > /dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || { hp_h_die "slowproxy $1 did not stop within 10 s"; return 1; }
    sleep 0.1
  done
}

# shellcheck source=tests/harness/cluster.sh
. "$HP_H_ROOT/tests/harness/cluster.sh"

hp_h_leftovers() { pgrep -a -f -- "$1" 2>/dev/null | grep -v -e pgrep -e "$$ " || true; }

hp_h_cleanup() {
  local dir=$HP_H_DIR pid _name deadline
  [ -n "$dir" ] && [ -d "$dir" ] || return 0
  hp_h_cluster_down "$dir"
  if [ -f "$dir/pids" ]; then
    # a pid is ours only while its command line still names the session (pids get reused)
    while read -r pid _name; do
      grep -qF -- "$dir" "/proc/$pid/cmdline" 2>/dev/null && kill -TERM "$pid" 2>/dev/null || true
    done < "$dir/pids"
    deadline=$((SECONDS + 10))
    while read -r pid _name; do
      while grep -qF -- "$dir" "/proc/$pid/cmdline" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
      grep -qF -- "$dir" "/proc/$pid/cmdline" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    done < "$dir/pids"
  fi
  pkill -KILL -f -- "$dir" 2>/dev/null || true
  if [ -n "${HP_H_KEEP:-}" ]; then
    hp_h_log "HP_H_KEEP set: logs kept in $dir"
    rm -f "$dir/owner"
  else
    rm -rf "$dir"
  fi
  HP_H_DIR=
}
