# shellcheck shell=bash
# cluster.sh - a REAL single-node Kubernetes cluster on this machine, for the end-to-end tests
# and `make cluster`: the harness's control plane (etcd + kube-apiserver, here advertised on the
# node's address) plus kube-controller-manager, kube-scheduler, kube-proxy (iptables) and a
# kubelet on Debian's containerd and runc, bridge CNI. Sourced by harness.sh; needs root.
#
#   hp_h_cluster                   start it all; the Node is Ready when it returns.
#                                  HP_KUBECONFIG, HP_NODE_NAME, HP_NODE_IP, HP_CLUSTER_CTR (ctr
#                                  with the cluster's containerd socket and namespace)
#   hp_h_cluster_image_import TAR  import a docker-archive / OCI tarball into the node's
#                                  containerd (what `kind load` does for kind)
#   hp_h_cluster_image_make NAME:TAG OUT.tar DIR ENTRYPOINT...   a one-layer docker-archive
#                                  of DIR's files, made without any image tool (the pause image)
#   hp_h_cluster_down DIR          tear down the cluster of session DIR (hp_h_cleanup calls it;
#                                  hp_h_sweep calls it for a session whose owner died)
#   hp_h_cluster_leftovers DIR     print what a cluster of session DIR left on the machine (tests)
#
# Everything it writes lives in $HP_H_DIR/cluster, but for what the kubelet and containerd put
# in fixed host places; teardown removes exactly those:
#   - containerd and the kubelet run in a mount namespace of their own (slave of the host's), so
#     their mounts (container root filesystems, volumes, network namespace files) vanish with it;
#   - pods' cgroups under every controller's /kubepods (their processes are killed first);
#   - the bridge hp-cni0, the iptables chains KUBE-* made during the session (chains that existed
#     before are left alone) and HOSTPATROL-EGRESS, the blackhole route of the service range;
#   - /var/lib/kubelet/device-plugins, /var/log/containers/* links into the session, /run/containerd
#     and /var/lib/cni, when they did not exist before; net.ipv4.ip_forward is restored.
# One cluster at a time per machine (the kubelet port 10250, the bridge, /kubepods).
#
# Networking stays on this machine: pods get 10.244.0.0/24 on the bridge without masquerade;
# HOSTPATROL-EGRESS rejects pod traffic leaving through any other interface; the service range
# 10.0.0.0/24 has a blackhole route, so a service IP kube-proxy has not programmed goes nowhere;
# pods get an empty resolv.conf (there is no cluster DNS: use Service IPs or in-cluster env vars).

HP_NODE_NAME=${HP_NODE_NAME:-hp-node}
HP_CLUSTER_POD_CIDR=10.244.0.0/24
HP_CLUSTER_SVC_CIDR=10.0.0.0/24
HP_CLUSTER_BRIDGE=hp-cni0
HP_CLUSTER_PAUSE_IMAGE=registry.k8s.io/pause:3.10
# host sysctls the cluster changes: ip_forward (ours), and those the kubelet sets itself
# (protectKernelDefaults: false); saved at start, restored at teardown
HP_CLUSTER_SYSCTLS="net.ipv4.ip_forward kernel.panic kernel.panic_on_oops vm.overcommit_memory vm.panic_on_oom kernel.keys.root_maxkeys kernel.keys.root_maxbytes"
KUBELET=$HP_H_TOOLS/kubenode-$KUBE_VERSION/bin/kubelet
KUBE_CONTROLLER_MANAGER=$HP_H_TOOLS/kubenode-$KUBE_VERSION/bin/kube-controller-manager
KUBE_SCHEDULER=$HP_H_TOOLS/kubenode-$KUBE_VERSION/bin/kube-scheduler
KUBE_PROXY=$HP_H_TOOLS/kubenode-$KUBE_VERSION/bin/kube-proxy
export KUBELET KUBE_CONTROLLER_MANAGER KUBE_SCHEDULER KUBE_PROXY

# hp_h_node_ip: the machine's first global IPv4 address (pods reach the apiserver there, so it
# cannot be loopback); HP_NODE_IP overrides.
hp_h_node_ip() {
  if [ -n "${HP_NODE_IP:-}" ]; then echo "$HP_NODE_IP"; return 0; fi
  ip -4 -o addr show scope global 2> /dev/null | awk '$2 != "'$HP_CLUSTER_BRIDGE'" {sub(/\/.*/, "", $4); print $4; exit}'
}

# hp_h_cluster_image_make NAME:TAG OUT DIR ENTRYPOINT...: a docker-archive with one layer (DIR).
hp_h_cluster_image_make() {
  local ref=$1 out=$2 dir=$3 w layer_sha cfg_sha entry
  shift 3
  w=$(mktemp -d "${TMPDIR:-/tmp}/hp-img.XXXXXX")
  tar --owner=0 --group=0 --numeric-owner -C "$dir" -cf "$w/layer.tar" . || { rm -rf "$w"; return 1; }
  layer_sha=$(sha256sum "$w/layer.tar" | cut -d' ' -f1)
  mkdir -p "$w/$layer_sha"
  mv "$w/layer.tar" "$w/$layer_sha/layer.tar"
  entry=$(printf '%s\n' "$@" | jq -R . | jq -sc .)
  jq -nc --argjson e "$entry" --arg d "sha256:$layer_sha" \
    '{architecture: "amd64", os: "linux", config: {Entrypoint: $e, User: "65535:65535"},
      rootfs: {type: "layers", diff_ids: [$d]}}' > "$w/config.json"
  cfg_sha=$(sha256sum "$w/config.json" | cut -d' ' -f1)
  mv "$w/config.json" "$w/$cfg_sha.json"
  jq -nc --arg c "$cfg_sha.json" --arg t "$ref" --arg l "$layer_sha/layer.tar" \
    '[{Config: $c, RepoTags: [$t], Layers: [$l]}]' > "$w/manifest.json"
  tar -C "$w" -cf "$out" manifest.json "$cfg_sha.json" "$layer_sha"
  rm -rf "$w"
}

# hp_h_cluster_spawn NAME CMD...: hp_h_spawn, but not a job of this shell (started from a
# subshell): teardown kills these in its own order, and the shell reports no "Killed" jobs.
hp_h_cluster_spawn() {
  local name=$1
  shift
  ("$@" > "$HP_H_DIR/$name.log" 2>&1 & echo $! > "$HP_H_DIR/$name.pid")
  HP_H_LASTPID=$(cat "$HP_H_DIR/$name.pid")
  echo "$HP_H_LASTPID $name" >> "$HP_H_DIR/pids"
}

hp_h_cluster_ctr() { ctr --address "$HP_H_DIR/cluster/containerd/containerd.sock" -n k8s.io "$@"; }

hp_h_cluster_image_import() {
  hp_h_cluster_ctr images import --no-unpack=false "$1" > "$HP_H_DIR/cluster/import.log" 2>&1 ||
    { hp_h_die "ctr images import $1 failed: $(tail -n 3 "$HP_H_DIR/cluster/import.log")"; return 1; }
}

# hp_h_cluster_pki: the node's kubelet client cert (system:node:<name>) and the apiserver's client
# cert for the kubelet (logs, exec), signed by the harness CA.
hp_h_cluster_pki() {
  local d=$HP_H_DIR/pki
  (
    set -e
    cd "$d"
    openssl req -newkey rsa:2048 -nodes -keyout kubelet.key -out kubelet.csr \
      -subj "/O=system:nodes/CN=system:node:$HP_NODE_NAME"
    openssl x509 -req -in kubelet.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
      -extfile client.ext -out kubelet.crt
    openssl req -newkey rsa:2048 -nodes -keyout apiserver-kubelet.key -out apiserver-kubelet.csr \
      -subj "/O=system:masters/CN=kube-apiserver-kubelet-client"
    openssl x509 -req -in apiserver-kubelet.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
      -extfile client.ext -out apiserver-kubelet.crt
  ) >> "$HP_H_DIR/pki.log" 2>&1 || { hp_h_die "cluster PKI failed; log: $HP_H_DIR/pki.log"; return 1; }
}

# hp_h_cluster_kubeconfig FILE CERT KEY: a kubeconfig for a component with its own client cert
hp_h_cluster_kubeconfig() {
  cat > "$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster: {server: "$HP_APISERVER_URL", certificate-authority: "$HP_H_DIR/pki/ca.crt"}
users:
- name: u
  user: {client-certificate: "$2", client-key: "$3"}
contexts:
- name: local
  context: {cluster: local, user: u}
current-context: local
EOF
}

# hp_h_cluster_check: what a node needs, with a clear error for what is missing
hp_h_cluster_check() {
  local b
  [ "$(id -u)" -eq 0 ] || { hp_h_die "the local cluster needs root (containerd, kubelet, iptables)"; return 1; }
  for b in "$KUBELET" "$KUBE_CONTROLLER_MANAGER" "$KUBE_SCHEDULER" "$KUBE_PROXY"; do
    [ -x "$b" ] || { hp_h_die "$(basename "$b") not found at $b (run: make tools)"; return 1; }
  done
  for b in containerd containerd-shim-runc-v2 runc ctr iptables-save unshare nsenter; do
    command -v "$b" > /dev/null || { hp_h_die "$b not found (run: make deps)"; return 1; }
  done
  [ -x /usr/lib/cni/bridge ] && [ -x /usr/lib/cni/host-local ] ||
    { hp_h_die "CNI plugins not found in /usr/lib/cni (run: make deps)"; return 1; }
  HP_NODE_IP=$(hp_h_node_ip)
  [ -n "$HP_NODE_IP" ] || { hp_h_die "no global IPv4 address on this machine to advertise the apiserver on (set HP_NODE_IP)"; return 1; }
  local other
  other=$(cat /run/hostpatrol-cluster.owner 2> /dev/null || true)
  if [ -n "$other" ] && [ "$other" != "$HP_H_DIR" ] && [ -d "$other" ]; then
    hp_h_die "a local cluster is already running (session $other; \`make cluster-down\` stops the one of \`make cluster\`)"
    return 1
  fi
  if ip link show "$HP_CLUSTER_BRIDGE" > /dev/null 2>&1; then
    hp_h_die "bridge $HP_CLUSTER_BRIDGE exists but no cluster owns it; remove it: ip link del $HP_CLUSTER_BRIDGE"
    return 1
  fi
  # Never next to another Kubernetes: teardown kills what runs in /kubepods and removes KUBE-*
  # chains, so a machine showing one is refused before anything starts.
  local sign
  sign=$(
    find /sys/fs/cgroup -maxdepth 2 -name kubepods 2> /dev/null | head -n 1
    [ -e /var/lib/kubelet ] && echo /var/lib/kubelet
    ss -Hltn 2> /dev/null | awk '$4 ~ /:10250$/ {print "port 10250 in use"; exit}'
    iptables-save 2> /dev/null | grep -m1 -oE '^:KUBE-[A-Z-]+'
  )
  if [ -n "$sign" ]; then
    hp_h_die "this machine already runs (or a crash left) a Kubernetes node: ${sign//$'\n'/, }; not starting a second one"
    return 1
  fi
  # the pod and service ranges must not overlap anything routed here
  local cidr
  for cidr in "$HP_CLUSTER_POD_CIDR" "$HP_CLUSTER_SVC_CIDR"; do
    if ip -4 route show to match "${cidr%/*}" 2> /dev/null | grep -qv '^default'; then
      hp_h_die "$cidr overlaps a route of this machine ($(ip -4 route show to match "${cidr%/*}" | grep -v '^default' | head -n 1)); the local cluster needs it free"
      return 1
    fi
  done
}

hp_h_cluster() {
  hp_h_cluster_check || return 1
  local c=$HP_H_DIR/cluster p=$HP_H_DIR/pki ext_if
  mkdir -p "$c"/{containerd,cni/net.d,cni/ipam,cni/cache,kubelet,pod-logs,bin,images}
  echo "$HP_H_DIR" > /run/hostpatrol-cluster.owner
  # What exists before, so teardown removes only what the cluster made.
  iptables-save 2> /dev/null | sed -n 's/^:\(KUBE-[^ ]*\) .*/4 \1/p' > "$c/chains.before"
  ip6tables-save 2> /dev/null | sed -n 's/^:\(KUBE-[^ ]*\) .*/6 \1/p' >> "$c/chains.before"
  local k
  for k in $HP_CLUSTER_SYSCTLS; do
    echo "$k=$(sysctl -n "$k" 2> /dev/null)" >> "$HP_H_DIR/cluster-sysctl.before"
  done
  for f in /var/lib/kubelet /var/log/pods /var/log/containers /run/containerd /var/lib/cni; do
    [ -e "$f" ] || echo "$f" >> "$c/paths.created"
  done

  # --- control plane advertised on the node address, with Node authorization and the kubelet
  # client flags (a Service's endpoints cannot be loopback)
  export HP_H_NODE_IP=$HP_NODE_IP
  hp_h_control_plane || return 1
  kc create clusterrolebinding hostpatrol-kubelet-api --clusterrole=system:kubelet-api-admin \
    --user=kube-apiserver-kubelet-client > /dev/null 2>&1 || true

  # --- network: forwarding on, egress of pods only to this machine, service range blackholed
  sysctl -qw net.ipv4.ip_forward=1
  ip route add blackhole "$HP_CLUSTER_SVC_CIDR" && : > "$c/route.added"
  ext_if=$(ip -4 -o addr show scope global | awk -v a="$HP_NODE_IP" '{split($4, x, "/")} x[1] == a {print $2; exit}')
  iptables -N HOSTPATROL-EGRESS 2> /dev/null || true
  iptables -F HOSTPATROL-EGRESS
  iptables -A HOSTPATROL-EGRESS -s "$HP_CLUSTER_POD_CIDR" ! -o "$HP_CLUSTER_BRIDGE" -j REJECT
  # forwarding is on only for the pods: nothing routed between other interfaces, nothing from
  # outside into the pods
  iptables -A HOSTPATROL-EGRESS ! -i "$HP_CLUSTER_BRIDGE" ! -o "$HP_CLUSTER_BRIDGE" -j DROP
  iptables -A HOSTPATROL-EGRESS -i "$ext_if" -o "$HP_CLUSTER_BRIDGE" -m conntrack --ctstate NEW -j DROP
  iptables -I FORWARD 1 -j HOSTPATROL-EGRESS
  echo "$ext_if" > "$c/ext_if"
  cat > "$c/cni/net.d/10-hostpatrol.conflist" <<EOF
{"cniVersion": "0.4.0", "name": "hostpatrol", "plugins": [
  {"type": "bridge", "bridge": "$HP_CLUSTER_BRIDGE", "isGateway": true, "ipMasq": false,
   "hairpinMode": true,
   "ipam": {"type": "host-local", "dataDir": "$c/cni/ipam",
            "ranges": [[{"subnet": "$HP_CLUSTER_POD_CIDR"}]], "routes": [{"dst": "0.0.0.0/0"}]}}
]}
EOF
  : > "$c/resolv.conf"

  # --- containerd (and later the kubelet) in a mount namespace of their own
  cat > "$c/containerd/config.toml" <<EOF
version = 2
root = "$c/containerd/root"
state = "$c/containerd/state"
disabled_plugins = ["io.containerd.internal.v1.tracing", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "$c/containerd/containerd.sock"
[ttrpc]
  address = "$c/containerd/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$c/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$HP_CLUSTER_PAUSE_IMAGE"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$c/containerd/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$c/cni/net.d"
EOF
  # the holder keeps the mount namespace: a slave of the host's (nothing mounted inside leaks
  # out), with / made shared inside, as containerd requires for mountPropagation (the agent's
  # /host); its argv[0] names the session, so the sweep finds it
  hp_h_cluster_spawn mntns unshare --mount --propagation slave -- \
    bash -c "mount --make-rshared / && exec -a hp-mntns:$HP_H_DIR sleep infinity"
  HP_CLUSTER_NS_PID=$HP_H_LASTPID
  local own=0
  for _ in $(seq 100); do
    if [ "$(readlink "/proc/$HP_CLUSTER_NS_PID/ns/mnt")" != "$(readlink /proc/self/ns/mnt)" ] &&
      pgrep -f "hp-mntns:$HP_H_DIR" > /dev/null; then
      own=1
      break
    fi
    sleep 0.1
  done
  # never run containerd and the kubelet in the host's mount namespace
  [ "$own" = 1 ] || { hp_h_die "no mount namespace of its own for containerd and the kubelet (unshare: $(tail -n 3 "$HP_H_DIR/mntns.log"))"; return 1; }
  echo "$HP_CLUSTER_NS_PID" > "$c/mntns.pid"
  hp_h_cluster_spawn containerd nsenter -t "$HP_CLUSTER_NS_PID" -m -- containerd --config "$c/containerd/config.toml"
  HP_CONTAINERD_PID=$HP_H_LASTPID
  hp_h_wait containerd "$HP_CONTAINERD_PID" hp_h_cluster_ctr version || return 1

  # --- the pause image: a static C program (tests/harness/pause/pause.c), cached with the tools
  local pause_dir=$HP_H_CACHE/images/pause
  if [ ! -f "$pause_dir/pause.tar" ] || [ "$HP_H_ROOT/tests/harness/pause/pause.c" -nt "$pause_dir/pause.tar" ]; then
    mkdir -p "$pause_dir/root"
    gcc -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -O2 -static -s -o "$pause_dir/root/pause" "$HP_H_ROOT/tests/harness/pause/pause.c" ||
      { hp_h_die "cannot build the pause image (gcc -static)"; return 1; }
    hp_h_cluster_image_make "$HP_CLUSTER_PAUSE_IMAGE" "$pause_dir/pause.tar.tmp" "$pause_dir/root" /pause &&
      mv "$pause_dir/pause.tar.tmp" "$pause_dir/pause.tar" || return 1
  fi
  hp_h_cluster_image_import "$pause_dir/pause.tar" || return 1

  # --- controller manager and scheduler (admin credentials, no leader election)
  local port
  port=$(hp_h_port)
  hp_h_cluster_spawn kube-controller-manager "$KUBE_CONTROLLER_MANAGER" --kubeconfig "$HP_KUBECONFIG" \
    --authentication-kubeconfig "$HP_KUBECONFIG" --authorization-kubeconfig "$HP_KUBECONFIG" \
    --service-account-private-key-file "$p/sa.key" --root-ca-file "$p/ca.crt" \
    --cluster-signing-cert-file "$p/ca.crt" --cluster-signing-key-file "$p/ca.key" \
    --use-service-account-credentials=true --leader-elect=false \
    --bind-address 127.0.0.1 --secure-port "$port" --cert-dir "$c/kcm-certs" --v=1
  HP_KCM_PID=$HP_H_LASTPID
  port=$(hp_h_port)
  hp_h_cluster_spawn kube-scheduler "$KUBE_SCHEDULER" --kubeconfig "$HP_KUBECONFIG" \
    --authentication-kubeconfig "$HP_KUBECONFIG" --authorization-kubeconfig "$HP_KUBECONFIG" \
    --leader-elect=false --bind-address 127.0.0.1 --secure-port "$port" --cert-dir "$c/sched-certs" --v=1
  HP_SCHED_PID=$HP_H_LASTPID
  export HP_SCHED_PID HP_KCM_PID

  # --- kubelet
  hp_h_cluster_kubeconfig "$c/kubelet.kubeconfig" "$p/kubelet.crt" "$p/kubelet.key"
  port=$(hp_h_port)
  cat > "$c/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $HP_NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $port
cgroupDriver: cgroupfs
failSwapOn: false
failCgroupV1: false
containerRuntimeEndpoint: unix://$c/containerd/containerd.sock
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: "$p/ca.crt"}
authorization: {mode: Webhook}
clusterDomain: cluster.local
resolvConf: "$c/resolv.conf"
podLogsDir: "$c/pod-logs"
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
protectKernelDefaults: false
makeIPTablesUtilChains: false
enforceNodeAllocatable: []
serializeImagePulls: false
syncFrequency: 10s
EOF
  HP_KUBELET_HEALTHZ=http://127.0.0.1:$port/healthz
  hp_h_cluster_spawn kubelet nsenter -t "$HP_CLUSTER_NS_PID" -m -- "$KUBELET" --config "$c/kubelet.yaml" \
    --kubeconfig "$c/kubelet.kubeconfig" --root-dir "$c/kubelet" --cert-dir "$c/kubelet-pki" \
    --hostname-override "$HP_NODE_NAME" --node-ip "$HP_NODE_IP" --v=1
  HP_KUBELET_PID=$HP_H_LASTPID

  # --- kube-proxy in iptables mode, changing no host sysctl
  local hport mport
  hport=$(hp_h_port); mport=$(hp_h_port)
  hp_h_cluster_spawn kube-proxy "$KUBE_PROXY" --kubeconfig "$HP_KUBECONFIG" --hostname-override "$HP_NODE_NAME" \
    --proxy-mode iptables --cluster-cidr "$HP_CLUSTER_POD_CIDR" \
    --healthz-bind-address "127.0.0.1:$hport" --metrics-bind-address "127.0.0.1:$mport" \
    --conntrack-max-per-core=0 --conntrack-tcp-timeout-established=0 \
    --conntrack-tcp-timeout-close-wait=0 --iptables-localhost-nodeports=false --v=1
  HP_KPROXY_PID=$HP_H_LASTPID

  hp_h_wait kubelet "$HP_KUBELET_PID" curl -fsS --max-time 2 "$HP_KUBELET_HEALTHZ" || return 1
  hp_h_wait kubelet "$HP_KUBELET_PID" hp_h_node_ready || return 1
  hp_h_wait kube-controller-manager "$HP_KCM_PID" kc -n default get serviceaccount default || return 1
  hp_h_wait kube-proxy "$HP_KPROXY_PID" curl -fsS --max-time 2 "http://127.0.0.1:$hport/healthz" || return 1
  export HP_NODE_NAME HP_NODE_IP
  hp_h_log "cluster: node $HP_NODE_NAME Ready at $HP_NODE_IP (kubelet $KUBE_VERSION, containerd $(containerd --version | awk '{print $3}'))"
}

hp_h_node_ready() {
  [ "$(kc get node "$HP_NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2> /dev/null)" = True ]
}

# hp_h_cluster_kill_cgroups: SIGKILL every process in the pods' cgroups, then remove the cgroups
hp_h_cluster_kill_cgroups() {
  local root=/sys/fs/cgroup dirs d pids
  dirs=$(find "$root"/*/kubepods "$root"/kubepods -depth -type d 2> /dev/null)
  [ -n "$dirs" ] || return 0
  for _ in $(seq 50); do
    pids=$(for d in $dirs; do cat "$d/cgroup.procs" 2> /dev/null; done | sort -u)
    [ -n "$pids" ] || break
    # shellcheck disable=SC2086 # one pid per word
    kill -KILL $pids 2> /dev/null || true
    sleep 0.1
  done
  for _ in 1 2 3; do
    for d in $dirs; do rmdir "$d" 2> /dev/null || true; done
  done
}

# hp_h_cluster_iptables_down DIR: remove the KUBE-* chains not listed in DIR/chains.before, the
# jumps to them from the built-in chains, and HOSTPATROL-EGRESS
hp_h_cluster_iptables_down() {
  local c=$1 v save cmd t chain rule
  for v in 4 6; do
    if [ $v = 4 ]; then save=iptables-save cmd=iptables; else save=ip6tables-save cmd=ip6tables; fi
    command -v $save > /dev/null || continue
    for t in filter nat mangle raw; do
      local ours=()
      while read -r chain; do
        grep -qxF "$v $chain" "$c/chains.before" 2> /dev/null || ours+=("$chain")
      done < <($save -t $t 2> /dev/null | sed -n 's/^:\(KUBE-[^ ]*\|HOSTPATROL-[^ ]*\) .*/\1/p')
      [ ${#ours[@]} -gt 0 ] || continue
      # every rule that jumps to one of ours, deleted by its spec (-A -> -D)
      for chain in "${ours[@]}"; do
        $save -t $t 2> /dev/null | grep -E -- "-j $chain( |\$)" | while read -r rule; do
          # shellcheck disable=SC2086 # the saved rule is split into arguments on purpose
          eval "$cmd -t $t ${rule/-A /-D }" 2> /dev/null || true
        done
      done
      for chain in "${ours[@]}"; do $cmd -t $t -F "$chain" 2> /dev/null || true; done
      for chain in "${ours[@]}"; do $cmd -t $t -X "$chain" 2> /dev/null || true; done
    done
  done
}

# hp_h_cluster_down DIR: tear down the cluster of the session in DIR (idempotent). A subshell
# without errexit: every step runs, whatever the caller's `set -e` and the steps' failures.
hp_h_cluster_down() (
  set +e +o pipefail
  local d=$1 c=$1/cluster pid f
  [ -d "$c" ] || return 0
  # the kubelet first (it would restart containers), then every pod process, then the rest
  pkill -TERM -f -- "--root-dir $c/kubelet" 2> /dev/null || true
  for pid in $(pgrep -f -- "$d" 2> /dev/null); do
    case $(tr '\0' ' ' < "/proc/$pid/cmdline" 2> /dev/null) in
      *kube-proxy* | *kube-scheduler* | *kube-controller-manager*) kill -TERM "$pid" 2> /dev/null ;;
    esac
  done
  sleep 0.5
  pkill -KILL -f -- "--root-dir $c/kubelet" 2> /dev/null || true
  # kube-proxy dead before its chains go (a late resync would make them again)
  for pid in $(pgrep -f -- "$d" 2> /dev/null); do
    case $(tr '\0' ' ' < "/proc/$pid/cmdline" 2> /dev/null) in
      *kube-proxy*) kill -KILL "$pid" 2> /dev/null ;;
    esac
  done
  hp_h_cluster_kill_cgroups
  pkill -KILL -f -- "$c/containerd/" 2> /dev/null || true
  pkill -KILL -f -- "hp-mntns:$d" 2> /dev/null || true
  for f in $(seq 30); do pgrep -f -- "$c/containerd/|hp-mntns:$d" > /dev/null || break; sleep 0.1; done
  hp_h_cluster_kill_cgroups
  ip link del "$HP_CLUSTER_BRIDGE" 2> /dev/null || true
  [ -f "$c/route.added" ] && ip route del blackhole "$HP_CLUSTER_SVC_CIDR" 2> /dev/null
  for f in $(seq 30); do pgrep -f -- "$d/.*kube-proxy|kube-proxy.*$d" > /dev/null || break; sleep 0.1; done
  hp_h_cluster_iptables_down "$c"
  if [ -f "$d/cluster-sysctl.before" ]; then
    while IFS= read -r f; do [ -n "${f#*=}" ] && sysctl -qw "$f" 2> /dev/null; done < "$d/cluster-sysctl.before"
  fi
  find /var/log/containers -maxdepth 1 -type l -lname "$c/*" -delete 2> /dev/null || true
  rm -rf /var/lib/kubelet/device-plugins/kubelet.sock
  if [ -f "$c/paths.created" ]; then
    while read -r f; do
      case $f in
        /var/lib/kubelet | /var/log/pods | /var/log/containers | /run/containerd | /var/lib/cni) rm -rf --one-file-system "$f" ;;
      esac
    done < "$c/paths.created"
  fi
  [ "$(cat /run/hostpatrol-cluster.owner 2> /dev/null)" = "$d" ] && rm -f /run/hostpatrol-cluster.owner
  # nothing is mounted any more (the namespace is gone); --one-file-system as a last guard
  rm -rf --one-file-system "$c"
  true
)

# hp_h_cluster_leftovers DIR: one line per thing the cluster of session DIR left behind
hp_h_cluster_leftovers() {
  local d=$1 f
  pgrep -af -- "$d/cluster|hp-mntns:$d" 2> /dev/null | grep -v pgrep | sed 's/^/process: /'
  pgrep -ax pause 2> /dev/null | sed 's/^/pod process: /'
  find /sys/fs/cgroup -maxdepth 2 -name kubepods 2> /dev/null | sed 's/^/cgroup: /'
  ip link show "$HP_CLUSTER_BRIDGE" > /dev/null 2>&1 && echo "bridge: $HP_CLUSTER_BRIDGE"
  ip route show type blackhole 2> /dev/null | grep -F "$HP_CLUSTER_SVC_CIDR" | sed 's/^/route: /'
  iptables-save 2> /dev/null | grep -E '^:(KUBE-|HOSTPATROL-)' | sed 's/^/iptables chain: /'
  grep -F " $d/" /proc/self/mountinfo | sed 's/^/mount: /'
  [ -e "$d/cluster" ] && echo "dir: $d/cluster"
  [ -e /var/lib/kubelet ] && echo "dir: /var/lib/kubelet" # refused at start if it existed
  # host sysctls as they were before the cluster (a copy kept outside the cluster dir)
  if [ -f "$d/cluster-sysctl.before" ]; then
    while IFS= read -r f; do
      [ -z "${f#*=}" ] || [ "$(sysctl -n "${f%%=*}" 2> /dev/null)" = "${f#*=}" ] ||
        echo "sysctl: ${f%%=*} = $(sysctl -n "${f%%=*}"), was ${f#*=}"
    done < "$d/cluster-sysctl.before"
  fi
  for f in /run/hostpatrol-cluster.owner /var/lib/kubelet/device-plugins/kubelet.sock; do
    [ -e "$f" ] && echo "file: $f"
  done
  find /var/log/containers -maxdepth 1 -type l -lname "$d/*" 2> /dev/null | sed 's/^/file: /'
  true
}
