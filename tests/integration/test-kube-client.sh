#!/usr/bin/env bash
# test-kube-client.sh - the Kubernetes client, informer and leader election (controller/kube)
# against the REAL
# kube-apiserver:
# client certificates, a ServiceAccount token (TokenRequest) without RBAC, a rotating token file,
# an exec credential plugin; Status objects with field causes from real admission and CEL.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
ITEST=$HP_H_ROOT/build/asan/itests/itest-kube_client
export CMOCKA_MESSAGE_OUTPUT=TAP

hp_h_init
hp_h_control_plane || exit 1
hp_h_crd || exit 1
kc create serviceaccount nobody > /dev/null || exit 1
token=$(kc create token nobody --duration=1h) || exit 1
D=$HP_H_DIR/kc
mkdir -p "$D"
pki=$HP_H_DIR/pki

# kubeconfig USER-YAML: a kubeconfig for the harness apiserver with the given user entry
kubeconfig() {
  cat <<EOF
apiVersion: v1
kind: Config
clusters:
- name: t
  cluster: {server: '$HP_APISERVER_URL', certificate-authority: $pki/ca.crt}
users:
- name: u
  user:
$1
contexts:
- name: t
  context: {cluster: t, user: u}
current-context: t
EOF
}
kubeconfig "    token: $token" > "$D/token.yaml"
echo "not-a-valid-token" > "$D/token-file"
kubeconfig "    tokenFile: token-file" > "$D/tokenfile.yaml"
# an exec plugin that hands out the admin client certificate; EXPIRED makes it already stale
for kind in fresh expired; do
  expiry=""
  [ "$kind" = expired ] && expiry=',"expirationTimestamp":"2000-01-01T00:00:00Z"'
  cat > "$D/cred-$kind" <<EOF
#!/bin/sh
echo run >> "$D/exec-count"
printf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"clientCertificateData":%s,"clientKeyData":%s$expiry}}' \\
  '$(jq -Rs . < "$pki/admin.crt")' '$(jq -Rs . < "$pki/admin.key")'
EOF
  chmod +x "$D/cred-$kind"
  kubeconfig "    exec: {apiVersion: client.authentication.k8s.io/v1, command: ./cred-$kind, interactiveMode: Never}" > "$D/exec-$kind.yaml"
done

status=0
HP_KUBECONFIG=$HP_KUBECONFIG HP_KC_TOKEN=$D/token.yaml HP_KC_TOKENFILE=$D/tokenfile.yaml \
  HP_TOKEN_FILE=$D/token-file HP_GOOD_TOKEN=$token HP_KC_EXEC=$D/exec-fresh.yaml \
  HP_KC_EXEC_EXPIRED=$D/exec-expired.yaml HP_EXEC_COUNT=$D/exec-count \
  timeout -k 5 120 "$ITEST" || status=1

# the informer, directly and through toxiproxy (the apiserver's cert is valid for 127.0.0.1)
hp_h_toxiproxy || exit 1
hp_h_toxi_proxy kapi "${HP_APISERVER_URL#https://}" || exit 1
sed "s#server: $HP_APISERVER_URL#server: https://127.0.0.1:${HP_TOXI_PORT[kapi]}#" \
  "$HP_KUBECONFIG" > "$D/proxy.yaml"
HP_KUBECONFIG=$HP_KUBECONFIG HP_KC_PROXY=$D/proxy.yaml HP_TOXI_API=$HP_TOXI_API \
  HP_TOXI_PROXY=kapi timeout -k 5 180 "$HP_H_ROOT/build/asan/itests/itest-kube_informer" || status=1
HP_KUBECONFIG=$HP_KUBECONFIG timeout -k 5 120 "$HP_H_ROOT/build/asan/itests/itest-kube_leader" ||
  status=1
exit $status
