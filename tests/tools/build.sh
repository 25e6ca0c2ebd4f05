#!/usr/bin/env bash
# Builds the upstream binaries the tests run against, from their published Go modules, into a
# cache outside the clone. Go is used here only, never for product code. One library comes from
# Debian instead: libcurl 8 (libcurl8), for the tests of the gRPC transport on libcurl 8.
#
#   tests/tools/build.sh [all|kube|kubenode|etcd36|etcd35|helm|toxiproxy|etcdbench|blackbox|libcurl8]...
#
# A tool whose binaries are already in the cache is skipped, so warm runs take seconds. Go's own
# output (its "go: downloading" lines) goes to $CACHE/logs/<name>-<version>.log, shown when a
# step fails; this script prints one line when a tool starts and one when it is done.
# Layout: $TOOLS/<name>-<version>/bin/<binary>; each build happens in its own wrapper module
# under $TOOLS/src/<name>-<version>/ so the tools' dependency versions never bump each other.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/tools/versions.env
. "$here/versions.env"
CACHE=${HOSTPATROL_CACHE:-$HOME/.cache/hostpatrol}
TOOLS=$CACHE/tools
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOTOOLCHAIN=local
command -v go >/dev/null || { echo "build.sh: go is not on PATH (needed only to build test tools)" >&2; exit 1; }

LOGS=$CACHE/logs
mkdir -p "$LOGS"
log() { printf '[tools %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
# took T0: the time since $SECONDS was T0, as "42 s" or "5 min 12 s"
took() {
  local s=$((SECONDS - $1))
  if [ $s -ge 60 ]; then echo "$((s / 60)) min $((s % 60)) s"; else echo "$s s"; fi
}
# quiet LOG CMD...: run CMD with its output appended to $LOGS/LOG.log; when it fails, say so
# with the log's last lines
quiet() {
  local log=$LOGS/$1.log
  shift
  if ! "$@" >> "$log" 2>&1; then
    echo "build.sh: failed: $* (the last lines of $log):" >&2
    tail -n 40 "$log" >&2
    return 1
  fi
}

# have DIR BIN... : true when every named binary exists in DIR/bin
have() {
  local d=$1; shift
  for b in "$@"; do [ -x "$d/bin/$b" ] || return 1; done
}

# wrapper NAME-VERSION GO.MOD-BODY IMPORT... : create the wrapper module with a tools.go that
# blank-imports the main packages, so `go mod tidy` records exactly what they need.
wrapper() {
  local name=$1 dir=$TOOLS/src/$1 body=$2; shift 2
  rm -rf "$dir"; mkdir -p "$dir"
  printf '%s\n' "$body" > "$dir/go.mod"
  {
    echo '//go:build tools'
    echo
    echo 'package tools'
    echo
    echo 'import ('
    for p in "$@"; do echo "	_ \"$p\""; done
    echo ')'
  } > "$dir/tools.go"
  (cd "$dir" && quiet "$name" go mod tidy)
}

# All Kubernetes binaries come from ONE wrapper module, $TOOLS/src/kube-$KUBE_VERSION, requiring
# k8s.io/kubernetes at $KUBE_VERSION with its staging modules replaced by their published versions
# (read from its go.mod); its tools.go imports every command we build, so `go mod tidy` pins one
# dependency set for all of them. KUBE_CMDS lists them.
KUBE_CMDS="kube-apiserver kubectl kubelet kube-controller-manager kube-scheduler kube-proxy"

# kube_wrapper: create the wrapper module unless it is there already; sets KUBE_LD to the version
# ldflags, so `kubectl version` and the Node's kubeletVersion say $KUBE_VERSION.
kube_wrapper() {
  local v=$KUBE_VERSION dir=$TOOLS/src/kube-$KUBE_VERSION gomod minor staging replaces date c pkgs=()
  minor=${v#v1.}; minor=${minor%%.*}
  for c in $KUBE_CMDS; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
  if [ ! -f "$dir/go.sum" ] || [ "$(cat "$dir/cmds" 2>/dev/null)" != "$KUBE_CMDS" ]; then
    log "kube $v: reading the staging list from k8s.io/kubernetes@$v go.mod"
    gomod=$(cd /tmp && go mod download -json "k8s.io/kubernetes@$v" 2>> "$LOGS/kube-$v.log" |
      sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
    staging=$(sed -n 's#^\s*\(k8s.io/[^ ]*\) => ./staging/.*#\1#p' "$gomod" | sort -u)
    [ -n "$staging" ] || { echo "build.sh: no staging replaces found in $gomod" >&2; exit 1; }
    replaces=$(for m in $staging; do echo "	$m => $m v0.${v#v1.}"; done)
    wrapper "kube-$v" "module hostpatrol.test/tools/kube

go 1.24

godebug default=$TOOLS_GODEBUG

require k8s.io/kubernetes $v

replace (
$replaces
)" "${pkgs[@]}"
    echo "$KUBE_CMDS" > "$dir/cmds"
  fi
  date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  KUBE_LD=""
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    KUBE_LD="$KUBE_LD -X $pkg.gitVersion=$v -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    KUBE_LD="$KUBE_LD -X $pkg.gitTreeState=clean -X $pkg.buildDate=$date"
  done
}

# kube_build NAME CMD... : builds k8s.io/kubernetes/cmd/<CMD> for each CMD from the wrapper module
# into $TOOLS/NAME-$KUBE_VERSION/bin.
kube_build() {
  local name=$1 v=$KUBE_VERSION out=$TOOLS/$1-$KUBE_VERSION pkgs=() c t0=$SECONDS
  shift
  have "$out" "$@" && { log "$name $v cached"; return; }
  for c in "$@"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
  kube_wrapper
  mkdir -p "$out/bin.tmp"
  log "$name $v: building $* (minutes on a cold cache; log $LOGS/kube-$v.log)"
  (cd "$TOOLS/src/kube-$v" &&
    quiet "kube-$v" go build -trimpath -ldflags "-s -w $KUBE_LD" -o "$out/bin.tmp/" "${pkgs[@]}")
  publish "$out"
  log "$name $v: built in $(took "$t0")"
}

# The control plane the tests and the demo use.
build_kube() { kube_build kube kube-apiserver kubectl; }
# A node and the rest of a cluster (tests/harness/cluster.sh): the kubelet, the controller
# manager, the scheduler and kube-proxy.
build_kubenode() { kube_build kubenode kubelet kube-controller-manager kube-scheduler kube-proxy; }

build_etcd() { # NAME VERSION
  local name=$1 v=$2 out=$TOOLS/$1-$2 t0=$SECONDS
  have "$out" etcd etcdctl && { log "$name $v cached"; return; }
  log "$name $v: building etcd and etcdctl (log $LOGS/$name-$v.log)"
  wrapper "$name-$v" "module hostpatrol.test/tools/$name

go 1.24

godebug default=$TOOLS_GODEBUG

require (
	go.etcd.io/etcd/server/v3 $v
	go.etcd.io/etcd/etcdctl/v3 $v
)" go.etcd.io/etcd/server/v3 go.etcd.io/etcd/etcdctl/v3
  mkdir -p "$out/bin.tmp"
  (cd "$TOOLS/src/$name-$v" &&
    quiet "$name-$v" go build -trimpath -ldflags "-s -w" -o "$out/bin.tmp/etcd" go.etcd.io/etcd/server/v3 &&
    quiet "$name-$v" go build -trimpath -ldflags "-s -w" -o "$out/bin.tmp/etcdctl" go.etcd.io/etcd/etcdctl/v3)
  publish "$out"
  log "$name $v: built in $(took "$t0")"
}

build_etcdbench() {
  local v=$ETCD_BENCH_VERSION out=$TOOLS/etcdbench-$ETCD_BENCH_VERSION
  have "$out" benchmark && { log "etcd benchmark $v cached"; return; }
  log "etcd benchmark $v: building"
  wrapper "etcdbench-$v" "module hostpatrol.test/tools/etcdbench

go 1.24

godebug default=$TOOLS_GODEBUG

require go.etcd.io/etcd/v3 $v" go.etcd.io/etcd/v3/tools/benchmark
  mkdir -p "$out/bin.tmp"
  (cd "$TOOLS/src/etcdbench-$v" &&
    quiet "etcdbench-$v" go build -trimpath -ldflags "-s -w" -o "$out/bin.tmp/benchmark" go.etcd.io/etcd/v3/tools/benchmark)
  publish "$out"
  log "etcd benchmark $v: done"
}

build_helm() {
  local v=$HELM_VERSION out=$TOOLS/helm-$HELM_VERSION
  have "$out" helm && { log "helm $v cached"; return; }
  log "helm $v: building"
  mkdir -p "$out/bin.tmp"
  (cd /tmp && quiet "helm-$v" env GOBIN="$out/bin.tmp" go install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$v" "helm.sh/helm/v3/cmd/helm@$v")
  publish "$out"
  log "helm $v: done"
}

build_toxiproxy() {
  local v=$TOXIPROXY_VERSION out=$TOOLS/toxiproxy-$TOXIPROXY_VERSION
  have "$out" toxiproxy-server toxiproxy-cli && { log "toxiproxy $v cached"; return; }
  log "toxiproxy $v: building"
  wrapper "toxiproxy-$v" "module hostpatrol.test/tools/toxiproxy

go 1.24

require github.com/Shopify/toxiproxy/v2 $v" \
    github.com/Shopify/toxiproxy/v2/cmd/server github.com/Shopify/toxiproxy/v2/cmd/cli
  mkdir -p "$out/bin.tmp"
  (cd "$TOOLS/src/toxiproxy-$v" &&
    quiet "toxiproxy-$v" go build -trimpath -ldflags "-s -w" -o "$out/bin.tmp/toxiproxy-server" github.com/Shopify/toxiproxy/v2/cmd/server &&
    quiet "toxiproxy-$v" go build -trimpath -ldflags "-s -w" -o "$out/bin.tmp/toxiproxy-cli" github.com/Shopify/toxiproxy/v2/cmd/cli)
  publish "$out"
  log "toxiproxy $v: done"
}

build_blackbox() {
  local v=$BLACKBOX_VERSION out=$TOOLS/blackbox-$BLACKBOX_VERSION
  have "$out" blackbox_exporter && { log "blackbox_exporter $v cached"; return; }
  log "blackbox_exporter $v: building"
  # A wrapper module, not `go install pkg@v`: go install also reads the module's version list
  # (for deprecation notices), which the proxy refuses (403) for this module.
  wrapper "blackbox-$v" "module hostpatrol.test/tools/blackbox

go 1.24

require github.com/prometheus/blackbox_exporter $v" github.com/prometheus/blackbox_exporter
  mkdir -p "$out/bin.tmp"
  (cd "$TOOLS/src/blackbox-$v" &&
    quiet "blackbox-$v" go build -trimpath -ldflags "-s -w -X github.com/prometheus/common/version.Version=${v#v}" \
      -o "$out/bin.tmp/blackbox_exporter" github.com/prometheus/blackbox_exporter)
  publish "$out"
  log "blackbox_exporter $v: done"
}

# libcurl 8 for test-libcurl8.sh (issue 13: the gRPC transport must be right on Debian 12's
# libcurl 7.88 and on 8.x): Debian's own backport for bookworm (bookworm-backports), fetched by
# apt with a source list, package lists and cache of its own under $TOOLS/src (the Release files'
# signatures checked against the system's Debian keys as for any apt source; the system's sources
# and packages untouched), unpacked into $TOOLS/libcurl8/lib. Tests point LD_LIBRARY_PATH there;
# the same binaries then run on it (the soname, libcurl.so.4, is the same).
build_libcurl8() {
  local out=$TOOLS/libcurl8 d=$TOOLS/src/libcurl8-apt deb v
  [ -f "$out/lib/libcurl.so.4" ] && [ -s "$out/VERSION" ] && { log "libcurl $(cat "$out/VERSION") cached"; return; }
  log "libcurl 8: fetching Debian's bookworm-backports package (log $LOGS/libcurl8.log)"
  rm -rf "$d" "$out.tmp"
  mkdir -p "$d/lists/partial" "$d/cache/archives/partial" "$d/deb" "$out.tmp/lib"
  echo "deb http://deb.debian.org/debian bookworm-backports main" > "$d/sources.list"
  local apt=(apt-get -q -o "Dir::Etc::SourceList=$d/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$d/lists" -o "Dir::Cache=$d/cache" -o APT::Sandbox::User=root
    -o Acquire::http::Timeout=30 -o Acquire::Retries=2)
  quiet libcurl8 "${apt[@]}" update
  (cd "$d/deb" && quiet libcurl8 "${apt[@]}" download libcurl4/bookworm-backports)
  deb=$(ls "$d/deb"/libcurl4_*.deb)
  v=$(dpkg-deb -f "$deb" Version)
  [[ $v == 8.* ]] || { echo "build.sh: bookworm-backports has libcurl4 $v, not 8.x" >&2; return 1; }
  dpkg-deb -x "$deb" "$d/x"
  cp -a "$d"/x/usr/lib/*/libcurl.so.4* "$out.tmp/lib/"
  echo "$v" > "$out.tmp/VERSION"
  rm -rf "$out" && mv "$out.tmp" "$out"
  log "libcurl $v: done"
}

# publish DIR: move the freshly built DIR/bin.tmp into place as DIR/bin in one step, so an
# interrupted build never leaves a half-filled bin/ that `have` would take as cached.
publish() {
  rm -rf "${1:?}/bin"
  mv "$1/bin.tmp" "$1/bin"
}

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(all)
for t in "${targets[@]}"; do
  case $t in
    all) build_toxiproxy; build_helm; build_etcd etcd36 "$ETCD36_VERSION"
         build_etcd etcd35 "$ETCD35_VERSION"; build_kube; build_kubenode
         build_etcdbench; build_blackbox; build_libcurl8 ;;
    etcdbench) build_etcdbench ;;
    kube) build_kube ;;
    kubenode) build_kubenode ;;
    etcd36) build_etcd etcd36 "$ETCD36_VERSION" ;;
    etcd35) build_etcd etcd35 "$ETCD35_VERSION" ;;
    helm) build_helm ;;
    toxiproxy) build_toxiproxy ;;
    blackbox) build_blackbox ;;
    libcurl8) build_libcurl8 ;;
    *) echo "build.sh: unknown tool '$t' (all|kube|kubenode|etcd36|etcd35|helm|toxiproxy|etcdbench|blackbox|libcurl8)" >&2; exit 2 ;;
  esac
done
