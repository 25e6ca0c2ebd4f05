#!/usr/bin/env bash
# test-image.sh - the container image and the kind / Helm / local-run tooling (Dockerfile,
# hack/, `make image kind-load deploy run`). No container engine runs here, so the Dockerfile is
# checked against the real build/hostpatrol and this Debian's package database, the scripts are
# run for real with stand-in kind / docker where a daemon would be needed, `make deploy`'s values
# are rendered by the real helm against charts/hostpatrol, and `make run`'s script runs for real
# against the harness's kube-apiserver.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

DOCKERFILE=$HP_H_ROOT/Dockerfile

# df_stages: the Dockerfile with continuation lines joined and comments dropped, each line
# prefixed with its stage number (0 = first FROM).
df_stages() {
  sed -e '/^[[:space:]]*#/d' "$DOCKERFILE" | sed -e ':a' -e '/\\$/{N;s/\\\n/ /;ba' -e '}' |
    awk '/^[[:space:]]*FROM[[:space:]]/ {n++} n > 0 && NF {print n - 1 "\t" $0}'
}
# df_stage N: the instructions of stage N (-1: the final stage), without the prefix
df_stage() {
  local want=$1 last
  last=$(df_stages | tail -n 1 | cut -f1)
  [ "$want" = -1 ] && want=$last
  df_stages | awk -F'\t' -v s="$want" '$1 == s {sub(/^[^\t]*\t/, ""); print}'
}
# apt_pkgs: the package names of every `apt-get install` on stdin's lines, sorted, one per line
apt_pkgs() {
  grep -oE 'apt-get install[^&;]*' | sed 's/^apt-get install//' | tr ' ' '\n' |
    grep -vE '^(-|$)' | sort -u
}
# owner_pkg FILE: the Debian package that owns FILE (resolving /lib -> /usr/lib merges)
owner_pkg() {
  local f out
  for f in "$1" "$(readlink -f "$1")" "/usr${1#/usr}"; do
    out=$(dpkg -S "$f" 2> /dev/null) && [ -n "$out" ] && { echo "${out%%:*}"; return 0; }
  done
  return 1
}

test_runtime_stage_installs_exactly_the_packages_of_the_binarys_libraries() {
  local lib path pkg expected=() got want codename
  [ -x "$HOSTPATROL" ] || t_fail "$HOSTPATROL not built (make)"
  # The package mapping is this machine's, so it holds for the image only if both are the same
  # Debian release.
  codename=$(sed -n 's/^VERSION_CODENAME=//p' /etc/os-release)
  t_contains "$(df_stage -1 | head -n 1)" "debian:$codename" \
    "runtime base image is this machine's Debian release (the package mapping below is this machine's)"
  # Rule: each DIRECT dependency (readelf NEEDED) maps to the package owning the file the dynamic
  # loader resolves it to. libc6 (libc, libm, libpthread...) is Essential and always in the base
  # image, so it is not installed. Indirect libraries come in through those packages' own
  # dependencies. ca-certificates is added for TLS to etcd and the API server.
  for lib in $(readelf -d "$HOSTPATROL" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
    path=$(ldd "$HOSTPATROL" | awk -v l="$lib" '$1 == l {print $3}')
    [ -n "$path" ] || t_fail "ldd does not resolve $lib"
    pkg=$(owner_pkg "$path") || t_fail "no Debian package owns $path ($lib)"
    echo "# $lib -> $pkg"
    [ "$pkg" = libc6 ] || expected+=("$pkg")
  done
  [ ${#expected[@]} -ge 5 ] || t_fail "too few NEEDED libraries found: ${expected[*]}"
  want=$(printf '%s\n' "${expected[@]}" ca-certificates | sort -u | tr '\n' ' ')
  got=$(df_stage -1 | grep -E '^RUN ' | apt_pkgs | tr '\n' ' ')
  t_eq "$got" "$want" "runtime stage apt packages vs the owners of build/hostpatrol's NEEDED libraries"
}

test_final_stage_runs_the_binary_as_a_numeric_non_root_user() {
  local final user
  final=$(df_stage -1)
  t_match "$(head -n 1 <<< "$final")" '^FROM debian:bookworm-slim' "runtime base"
  t_contains "$final" "COPY --from=builder /src/build/hostpatrol /usr/local/bin/hostpatrol"
  user=$(grep -E '^USER ' <<< "$final" | tail -n 1 | awk '{print $2}')
  t_match "$user" '^[0-9]+:[0-9]+$' "USER is numeric uid:gid (so runAsNonRoot can verify it)"
  if [ "${user%%:*}" -eq 0 ] || [ "${user##*:}" -eq 0 ]; then t_fail "USER $user is root"; fi
  t_eq "$(grep -E '^ENTRYPOINT ' <<< "$final" | tail -n 1)" 'ENTRYPOINT ["/usr/local/bin/hostpatrol"]'
  t_eq "$(grep -E '^CMD ' <<< "$final" | tail -n 1)" 'CMD ["controller"]'
  # the user exists with that uid/gid, no login shell, and nothing runs after USER as root
  t_match "$final" "useradd [^&]*--uid ${user%%:*} --gid ${user##*:}[^&]*--shell /usr/sbin/nologin"
  t_eq "$(sed -n '/^USER /,$p' <<< "$final" | grep -cE '^RUN ')" 0 "RUN after USER"
  for l in source title version; do
    t_match "$final" "org\.opencontainers\.image\.$l=" "OCI label $l"
  done
}

test_builder_stage_installs_the_dev_packages_the_build_needs() {
  local builder got want pc m deps mods
  builder=$(df_stage 0)
  t_match "$(head -n 1 <<< "$builder")" '^FROM debian:bookworm AS builder'
  # The -dev packages are the owners of the pkg-config files of the Makefile's PKGS, so a
  # library added to PKGS without the Dockerfile fails here.
  read -ra mods <<< "$(sed -n 's/^PKGS *:= *//p' "$HP_H_ROOT/Makefile")"
  want=$(for m in "${mods[@]}"; do
    pc=$(pkg-config --variable=pcfiledir "$m")/$m.pc
    owner_pkg "$pc" || t_fail "no package owns $pc"
  done | sort -u | tr '\n' ' ')
  t_eq "$want" "libcurl4-openssl-dev libjansson-dev libpcre2-dev libssl-dev libwebsockets-dev libyaml-dev " \
    "the -dev packages of the Makefile's PKGS"
  got=$(grep -E '^RUN ' <<< "$builder" | apt_pkgs | grep -- '-dev$' | tr '\n' ' ')
  t_eq "$got" "$want" "builder stage -dev packages"
  for m in build-essential pkg-config make; do
    grep -qxF "$m" < <(grep -E '^RUN ' <<< "$builder" | apt_pkgs) || t_fail "builder lacks $m"
  done
  # and tests/tools/deps.sh (what a developer machine builds with) has the same ones
  deps=$(tr -s '[:space:]' '\n' < "$HP_H_ROOT/tests/tools/deps.sh")
  for m in $want; do grep -qxF "$m" <<< "$deps" || t_fail "$m not in tests/tools/deps.sh"; done
  # the build does not depend on .git: the version comes in as build args
  # shellcheck disable=SC2016 # the Dockerfile's own $VERSION, literally
  t_match "$builder" 'make [^&]*VERSION="\$VERSION" COMMIT="\$COMMIT"[^&]* build/hostpatrol'
  grep -qxF .git "$HP_H_ROOT/.dockerignore" || t_fail ".dockerignore does not exclude .git"
  grep -qxF build/ "$HP_H_ROOT/.dockerignore" || t_fail ".dockerignore does not exclude build/"
}

test_builder_context_builds_without_git_with_the_version_from_build_args() {
  local d src dst out
  d=$(mktemp -d)
  # exactly what the builder stage COPYs (never .git, never build/), built as the stage builds it
  while read -r src dst; do
    grep -qxF -- "$src" "$HP_H_ROOT/.dockerignore" && t_fail ".dockerignore excludes $src, which the builder copies"
    mkdir -p "$d/$(dirname "$dst")"
    cp -r "$HP_H_ROOT/${src%/}" "$d/${dst%/}" || t_fail "cannot copy $src"
  done < <(df_stage 0 | sed -n 's/^COPY \([^-][^ ]*\) \([^ ]*\)$/\1 \2/p')
  [ -f "$d/Makefile" ] || t_fail "the builder does not copy the Makefile"
  out=$(cd "$d" && make -j2 VERSION=v9.9.9-image COMMIT=abc1234 build/hostpatrol 2>&1) ||
    t_fail "build of the builder's context failed: $(tail -n 5 <<< "$out")"
  t_contains "$("$d/build/hostpatrol" version)" "hostpatrol v9.9.9-image (commit abc1234"
  rm -rf "$d"
}

test_every_apt_install_skips_recommends_and_cleans_its_lists() {
  local run n=0
  # a real Dockerfile linter, where one works without a daemon (here: none does; not required)
  if docker buildx build --check "$HP_H_ROOT" > /dev/null 2>&1; then echo "# docker buildx --check: clean"; fi
  while IFS= read -r run; do
    n=$((n + 1))
    t_contains "$run" "--no-install-recommends" "apt-get install without --no-install-recommends"
    t_contains "$run" "rm -rf /var/lib/apt/lists/*" "RUN with apt-get install does not remove the lists"
    t_contains "$run" "apt-get update" "apt-get install without apt-get update in the same RUN"
  done < <(df_stages | cut -f2- | grep -E '^RUN .*apt-get install')
  t_eq "$n" 2 "RUNs with apt-get install (builder, runtime)"
}

test_hack_scripts_pass_bash_n_and_shellcheck() {
  local f n=0
  for f in "$HP_H_ROOT"/hack/*.sh; do
    n=$((n + 1))
    t_ok bash -n "$f"
    (cd "$HP_H_ROOT" && shellcheck -x "hack/${f##*/}") || t_fail "shellcheck: $f"
    [ -x "$f" ] || t_fail "$f is not executable"
  done
  t_ge "$n" 3 "hack scripts"
  # the kind cluster: one control plane, one worker labelled role=web
  local cfg
  cfg=$(grep -v '^ *#' "$HP_H_ROOT/hack/kind-config.yaml")
  t_eq "$(grep -c -- '- role: control-plane' <<< "$cfg")" 1 "control-plane nodes"
  t_eq "$(grep -c -- '- role: worker' <<< "$cfg")" 1 "worker nodes"
  t_match "$cfg" '- role: worker[[:space:]]+labels:[[:space:]]+role: web'
  # shellcheck disable=SC2016 # the script's text, literally
  t_contains "$(cat "$HP_H_ROOT/hack/kind-up.sh")" 'create cluster --name "$cluster" --config "$config"'
}

test_make_n_prints_the_image_kind_deploy_and_run_commands() {
  local out
  out=$(make -C "$HP_H_ROOT" --no-print-directory -n image kind-load deploy run HELM=helm \
    IMAGE_REPO=reg.example/hp IMAGE_TAG=t1 VERSION=v9 COMMIT=c9 KIND_CLUSTER=kc \
    ETCD_ENDPOINTS=http://e1:2379,http://e2:2379 2>&1) || t_fail "make -n exited $?: $out"
  t_contains "$out" "VERSION='v9' COMMIT='c9'"
  t_contains "$out" "bash hack/image-build.sh 'reg.example/hp:t1'"
  t_contains "$out" "bash hack/kind-load.sh --check 'reg.example/hp:t1' 'kc'"
  t_contains "$out" "kind load docker-image 'reg.example/hp:t1' --name 'kc'"
  t_contains "$out" "helm upgrade --install hostpatrol charts/hostpatrol -n hostpatrol-system --create-namespace"
  t_contains "$out" "--set image.repository=reg.example/hp --set-string image.tag=t1"
  t_contains "$out" "--set 'etcd.endpoints=http://e1:2379\,http://e2:2379'"
  t_contains "$out" "ETCD_ENDPOINTS='http://e1:2379,http://e2:2379' bash hack/run.sh build/hostpatrol controller -- build/hostpatrol agent --host-root /"
  # defaults: IMAGE is hostpatrol:$(VERSION); no endpoints: the chart's bundled etcd
  out=$(make -C "$HP_H_ROOT" --no-print-directory -n image deploy HELM=helm VERSION=v9 2>&1)
  t_contains "$out" "bash hack/image-build.sh 'hostpatrol:v9'"
  t_contains "$out" "--set etcd.bundled.enabled=true"
  t_not grep -q etcd.endpoints <<< "$out"
  out=$(make -C "$HP_H_ROOT" --no-print-directory help)
  for t in image kind-load deploy run cluster cluster-load cluster-down; do grep -q "^make $t " <<< "$out" || t_fail "make help lacks $t"; done
}

# stubs DIR: stand-in kind and docker recording their arguments (cluster "kc", image "reg/hp:t1")
stubs() {
  mkdir -p "$1"
  cat > "$1/kind" << 'EOF'
#!/usr/bin/env bash
echo "$*" >> "$(dirname "$0")/kind.args"
case "$1 $2" in "get clusters") echo kind; echo kc ;; "load docker-image") ;; *) exit 9 ;; esac
EOF
  cat > "$1/docker" << 'EOF'
#!/usr/bin/env bash
case "$1" in info) exit 0 ;; image) [ "$3" = reg/hp:t1 ] ;; *) exit 9 ;; esac
EOF
  chmod +x "$1/kind" "$1/docker"
}

test_kind_load_says_what_is_missing_then_loads_the_image() {
  local d out rc
  d=$(mktemp -d)
  stubs "$d"
  mk() { make -C "$HP_H_ROOT" --no-print-directory kind-load IMAGE=reg/hp:t1 "$@" 2>&1; }
  out=$(mk KIND=/nonexistent/kind DOCKER="$d/docker") && t_fail "succeeded without kind: $out"
  t_contains "$out" "'/nonexistent/kind' not found: install kind"
  out=$(mk KIND="$d/kind" DOCKER=/nonexistent/docker) && t_fail "succeeded without docker: $out"
  t_contains "$out" "'/nonexistent/docker' not found"
  if command -v docker > /dev/null && ! docker info > /dev/null 2>&1; then
    # this machine: a docker client, no daemon
    out=$(mk KIND="$d/kind" DOCKER="$(command -v docker)") && t_fail "succeeded without a daemon: $out"
    t_contains "$out" "no docker daemon answers"
  fi
  out=$(mk KIND="$d/kind" DOCKER="$d/docker" IMAGE=reg/hp:absent) && t_fail "succeeded without the image"
  t_contains "$out" "image 'reg/hp:absent' is not in the local docker image store: run 'make image' first"
  out=$(mk KIND="$d/kind" DOCKER="$d/docker" KIND_CLUSTER=other) && t_fail "succeeded without the cluster"
  t_contains "$out" "no kind cluster named 'other' (have: kind kc); run hack/kind-up.sh"
  t_not grep -q '^load' "$d/kind.args"
  rc=0
  out=$(mk KIND="$d/kind" DOCKER="$d/docker" KIND_CLUSTER=kc) || rc=$?
  t_eq "$rc" 0 "make kind-load with everything present: $out"
  t_eq "$(grep '^load' "$d/kind.args")" "load docker-image reg/hp:t1 --name kc"
  # the script alone (without --check) loads too
  : > "$d/kind.args"
  KIND=$d/kind DOCKER=$d/docker t_ok bash "$HP_H_ROOT/hack/kind-load.sh" reg/hp:t1 kc
  t_eq "$(grep '^load' "$d/kind.args")" "load docker-image reg/hp:t1 --name kc"
  rm -rf "$d"
}

test_deploy_values_render_with_the_real_chart() {
  local d out
  [ -x "$HELM" ] || t_fail "helm not found at $HELM (make tools)"
  d=$(mktemp -d)
  # make deploy with a helm that renders (`helm template`) instead of installing
  cat > "$d/helm" << EOF
#!/usr/bin/env bash
[ "\$1 \$2" = "upgrade --install" ] || exit 9
shift 2
args=()
for a in "\$@"; do [ "\$a" = --create-namespace ] || args+=("\$a"); done
exec "$HELM" template --kube-version 1.34.0 "\${args[@]}"
EOF
  chmod +x "$d/helm"
  out=$(make -C "$HP_H_ROOT" --no-print-directory deploy HELM="$d/helm" IMAGE_REPO=reg.example/hp \
    IMAGE_TAG=1234567 ETCD_ENDPOINTS=http://e1:2379,http://e2:2379 2>&1) || t_fail "render failed: $out"
  t_contains "$out" 'image: "reg.example/hp:1234567"' "an all-digit tag stays a string"
  t_contains "$out" '"http://e1:2379,http://e2:2379"' "endpoints with a comma reach the chart whole"
  t_contains "$out" "namespace: hostpatrol-system"
  out=$(make -C "$HP_H_ROOT" --no-print-directory deploy HELM="$d/helm" 2>&1) || t_fail "render failed: $out"
  t_match "$out" 'image: "quay.io/coreos/etcd:' "no ETCD_ENDPOINTS: the bundled etcd"
  rm -rf "$d"
}

test_run_fails_naming_the_kubeconfig_when_no_cluster_answers() {
  local d out rc=0
  d=$(mktemp -d)
  cat > "$d/kubeconfig" << 'EOF'
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: not-a-secret}}]
contexts: [{name: nowhere, context: {cluster: c, user: u}}]
current-context: nowhere
EOF
  out=$(cd "$HP_H_ROOT" && KUBECONFIG=$d/kubeconfig timeout 60 bash hack/run.sh 2>&1) || rc=$?
  t_eq "$rc" 1 "exit status: $out"
  t_contains "$out" "run: no Kubernetes cluster reachable through kubeconfig $d/kubeconfig (context: nowhere)"
  rc=0
  out=$(cd "$HP_H_ROOT" && KUBECONFIG=$d/absent timeout 60 bash hack/run.sh 2>&1) || rc=$?
  t_eq "$rc" 1
  t_contains "$out" "kubeconfig $d/absent does not exist"
  rc=0
  out=$(cd "$HP_H_ROOT" && env -u KUBECONFIG HOME="$d" timeout 60 bash hack/run.sh 2>&1) || rc=$?
  t_eq "$rc" 1
  t_contains "$out" "kubeconfig $d/.kube/config does not exist" "default kubeconfig ~/.kube/config"
  rm -rf "$d"
}

test_run_starts_controller_and_agent_on_the_first_node_and_stops_them() {
  local out node logs pid rc=0 health
  hp_h_init
  hp_h_control_plane || t_fail "control plane did not start"
  node=$(t_uniq run-node)
  printf 'apiVersion: v1\nkind: Node\nmetadata: {name: %s}\n' "$node" | kc apply -f - > /dev/null ||
    t_fail "cannot create Node $node"
  out=$(mktemp)
  # no ETCD_ENDPOINTS: run.sh starts its own local etcd
  (cd "$HP_H_ROOT" && exec env KUBECONFIG="$HP_KUBECONFIG" ETCD_ENDPOINTS= HP_H_DIR= \
    bash hack/run.sh build/hostpatrol controller -- build/hostpatrol agent --host-root /) > "$out" 2>&1 &
  pid=$!
  # shellcheck disable=SC2317 # called by t_fail
  t_on_fail() { cat "$out"; kill -TERM "$pid" 2> /dev/null; wait "$pid"; }
  t_eventually 120 grep -q '^run: ready' "$out"
  logs=$(sed -n 's/^  logs *\([^ ]*\)\/controller\.log.*/\1/p' "$out")
  [ -d "$logs" ] || t_fail "no log dir in the output"
  t_ok kc get crd hostinspections.hostpatrol.io
  t_match "$(pgrep -a -f -- "$logs/agent-state")" "agent --host-root / --kubeconfig $HP_KUBECONFIG --node-name $node "
  t_match "$(pgrep -a -f -- "$logs/controller-state")" "controller --kubeconfig $HP_KUBECONFIG --etcd-endpoints http://127"
  health=$(sed -n 's/.*health \(http:[^ ]*\)/\1/p' "$out")
  # shellcheck disable=SC2317 # called through t_eventually
  healthy() { curl -fsS --max-time 2 "${health%/readyz}/healthz"; }
  t_eventually 30 healthy
  sleep 1
  kill -0 "$pid" || t_fail "run.sh exited early"
  kill -TERM "$pid"
  wait "$pid" || rc=$?
  t_eq "$rc" 143 "exit status after SIGTERM"
  t_contains "$(cat "$out")" "run: stopped; logs kept in $logs"
  t_eq "$(hp_h_leftovers "$logs")" "" "processes left running"
  [ -s "$logs/controller.log" ] || t_fail "controller log empty"
  rm -rf "$logs" "$out"
}

t_main
