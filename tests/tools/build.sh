#!/usr/bin/env bash
# Builds the upstream binaries the tests run against, from their published Go modules, into a
# cache outside the clone. Go is used here only, never for product code.
#
#   tests/tools/build.sh [all|kube|etcd36|etcd35|helm|toxiproxy|etcdbench|blackbox]...
#
# A tool whose binaries are already in the cache is skipped, so warm runs take seconds.
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

log() { printf '[tools %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

# have DIR BIN... : true when every named binary exists in DIR/bin
have() {
  local d=$1; shift
  for b in "$@"; do [ -x "$d/bin/$b" ] || return 1; done
}

# wrapper NAME-VERSION GO.MOD-BODY IMPORT... : create the wrapper module with a tools.go that
# blank-imports the main packages, so `go mod tidy` records exactly what they need.
wrapper() {
  local dir=$TOOLS/src/$1 body=$2; shift 2
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
  (cd "$dir" && go mod tidy >/dev/null)
}

build_kube() {
  local v=$KUBE_VERSION out=$TOOLS/kube-$KUBE_VERSION
  have "$out" kube-apiserver kubectl && { log "kube $v cached"; return; }
  log "kube $v: reading the staging list from k8s.io/kubernetes@$v go.mod"
  local gomod minor staging replaces
  gomod=$(cd /tmp && go mod download -json "k8s.io/kubernetes@$v" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
  staging=$(sed -n 's#^\s*\(k8s.io/[^ ]*\) => ./staging/.*#\1#p' "$gomod" | sort -u)
  [ -n "$staging" ] || { echo "build.sh: no staging replaces found in $gomod" >&2; exit 1; }
  minor=${v#v1.}; minor=${minor%%.*}
  replaces=$(for m in $staging; do echo "	$m => $m v0.${v#v1.}"; done)
  wrapper "kube-$v" "module hostpatrol.test/tools/kube

go 1.24

godebug default=$TOOLS_GODEBUG

require k8s.io/kubernetes $v

replace (
$replaces
)" k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl
  local date ld=""
  date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $pkg.gitVersion=$v -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ld="$ld -X $pkg.gitTreeState=clean -X $pkg.buildDate=$date"
  done
  mkdir -p "$out/bin.tmp"
  log "kube $v: building kube-apiserver and kubectl (slow on a cold cache)"
  (cd "$TOOLS/src/kube-$v" &&
    go build -trimpath -ldflags "-s -w $ld" -o "$out/bin.tmp/" \
      k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl)
  publish "$out"
  log "kube $v: done"
}

build_etcd() { # NAME VERSION
  local name=$1 v=$2 out=$TOOLS/$1-$2
  have "$out" etcd etcdctl && { log "$name $v cached"; return; }
  wrapper "$name-$v" "module hostpatrol.test/tools/$name

go 1.24

godebug default=$TOOLS_GODEBUG

require (
	go.etcd.io/etcd/server/v3 $v
	go.etcd.io/etcd/etcdctl/v3 $v
)" go.etcd.io/etcd/server/v3 go.etcd.io/etcd/etcdctl/v3
  mkdir -p "$out/bin.tmp"
  log "$name $v: building etcd and etcdctl"
  (cd "$TOOLS/src/$name-$v" &&
    go build -trimpath -ldflags "-s -w" -o "$out/bin.tmp/etcd" go.etcd.io/etcd/server/v3 &&
    go build -trimpath -ldflags "-s -w" -o "$out/bin.tmp/etcdctl" go.etcd.io/etcd/etcdctl/v3)
  publish "$out"
  log "$name $v: done"
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
    go build -trimpath -ldflags "-s -w" -o "$out/bin.tmp/benchmark" go.etcd.io/etcd/v3/tools/benchmark)
  publish "$out"
  log "etcd benchmark $v: done"
}

build_helm() {
  local v=$HELM_VERSION out=$TOOLS/helm-$HELM_VERSION
  have "$out" helm && { log "helm $v cached"; return; }
  log "helm $v: building"
  mkdir -p "$out/bin.tmp"
  (cd /tmp && GOBIN="$out/bin.tmp" go install -trimpath \
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
    go build -trimpath -ldflags "-s -w" -o "$out/bin.tmp/toxiproxy-server" github.com/Shopify/toxiproxy/v2/cmd/server &&
    go build -trimpath -ldflags "-s -w" -o "$out/bin.tmp/toxiproxy-cli" github.com/Shopify/toxiproxy/v2/cmd/cli)
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
    go build -trimpath -ldflags "-s -w -X github.com/prometheus/common/version.Version=${v#v}" \
      -o "$out/bin.tmp/blackbox_exporter" github.com/prometheus/blackbox_exporter)
  publish "$out"
  log "blackbox_exporter $v: done"
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
         build_etcd etcd35 "$ETCD35_VERSION"; build_kube; build_etcdbench; build_blackbox ;;
    etcdbench) build_etcdbench ;;
    kube) build_kube ;;
    etcd36) build_etcd etcd36 "$ETCD36_VERSION" ;;
    etcd35) build_etcd etcd35 "$ETCD35_VERSION" ;;
    helm) build_helm ;;
    toxiproxy) build_toxiproxy ;;
    blackbox) build_blackbox ;;
    *) echo "build.sh: unknown tool '$t' (all|kube|etcd36|etcd35|helm|toxiproxy|etcdbench|blackbox)" >&2; exit 2 ;;
  esac
done
