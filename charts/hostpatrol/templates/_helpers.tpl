{{/* Chart name, overridable. */}}
{{- define "hostpatrol.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name: the release name when it contains the chart name, else "<release>-<chart>". */}}
{{- define "hostpatrol.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "hostpatrol.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "hostpatrol.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels; call with (dict "ctx" $ "component" "controller"). */}}
{{- define "hostpatrol.selectorLabels" -}}
app.kubernetes.io/name: {{ include "hostpatrol.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Standard labels; call with (dict "ctx" $ "component" "controller"). */}}
{{- define "hostpatrol.labels" -}}
helm.sh/chart: {{ include "hostpatrol.chart" .ctx }}
{{ include "hostpatrol.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: hostpatrol
{{- end -}}

{{- define "hostpatrol.controllerName" -}}{{ include "hostpatrol.fullname" . }}-controller{{- end -}}
{{- define "hostpatrol.agentName" -}}{{ include "hostpatrol.fullname" . }}-agent{{- end -}}
{{- define "hostpatrol.etcdName" -}}{{ include "hostpatrol.fullname" . }}-etcd{{- end -}}

{{/* The agent's namespace: agent.namespace, default the release namespace. */}}
{{- define "hostpatrol.agentNamespace" -}}
{{- default .Release.Namespace .Values.agent.namespace -}}
{{- end -}}

{{- define "hostpatrol.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The results etcd's client URLs: etcd.endpoints, or the bundled etcd's Service. */}}
{{- define "hostpatrol.etcdEndpoints" -}}
{{- if .Values.etcd.endpoints -}}
{{- .Values.etcd.endpoints -}}
{{- else if .Values.etcd.bundled.enabled -}}
{{- printf "http://%s.%s.svc:2379" (include "hostpatrol.etcdName" .) .Release.Namespace -}}
{{- else -}}
{{- fail "etcd.endpoints is required (the results etcd's client URLs, e.g. --set etcd.endpoints=https://etcd.example:2379), unless etcd.bundled.enabled=true" -}}
{{- end -}}
{{- end -}}

{{/* etcd flags shared by the controller and the agent (YAML list items). */}}
{{- define "hostpatrol.etcdArgs" -}}
- --etcd-endpoints
- {{ include "hostpatrol.etcdEndpoints" . | quote }}
- --etcd-prefix
- {{ .Values.etcd.prefix | quote }}
- --etcd-transport
- {{ .Values.etcd.transport | default "grpc" | quote }}
{{- with .Values.etcd.serverName }}
- --etcd-server-name
- {{ . | quote }}
{{- end }}
{{- if .Values.etcd.tls.secretName }}
- --etcd-ca-file
- /etc/hostpatrol/etcd-tls/ca.crt
- --etcd-cert-file
- /etc/hostpatrol/etcd-tls/tls.crt
- --etcd-key-file
- /etc/hostpatrol/etcd-tls/tls.key
{{- end }}
{{- if .Values.etcd.auth.secretName }}
- --etcd-user
- $(ETCD_USER)
{{- end }}
{{- end -}}

{{/* The cluster admin's inspection policy and probe budgets, shared by the controller and the
agent (YAML list items). policy.nodeChecks.namespaces empty: the release namespace only. */}}
{{- define "hostpatrol.policyArgs" -}}
- --node-checks-namespaces
- {{ join "," (default (list .Release.Namespace) .Values.policy.nodeChecks.namespaces) | quote }}
{{- if .Values.policy.process.allowCmdlineRegex }}
- --allow-cmdline-regex
{{- end }}
{{- with .Values.policy.probes.allow }}
- --probe-allow
- {{ join "," . | quote }}
{{- end }}
{{- if not (kindIs "invalid" .Values.policy.probes.deny) }}
- --probe-deny
- {{ join "," .Values.policy.probes.deny | quote }}
{{- end }}
- --max-probes-per-inspection
- {{ .Values.policy.maxProbesPerInspection | quote }}
- --max-probes-in-flight
- {{ .Values.policy.maxProbesInFlight | quote }}
- --max-probes-in-flight-per-namespace
- {{ .Values.policy.maxProbesInFlightPerNamespace | quote }}
- --max-sockets-per-run
- {{ .Values.policy.maxSocketsPerRun | quote }}
{{- end -}}

{{/* etcd credentials from etcd.auth.secretName (env list items), if set. */}}
{{- define "hostpatrol.etcdEnv" -}}
{{- if .Values.etcd.auth.secretName }}
- name: ETCD_USER
  valueFrom:
    secretKeyRef:
      name: {{ .Values.etcd.auth.secretName }}
      key: username
- name: HOSTPATROL_ETCD_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .Values.etcd.auth.secretName }}
      key: password
{{- end }}
{{- end -}}

{{/* Restricted-Pod-Security container securityContext. */}}
{{- define "hostpatrol.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "hostpatrol.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* serviceAccountToken.expirationSeconds set: the pod mounts its own projected token with that
lifetime (the kubelet rotates it at 80% of it) instead of the automounted one; empty: the
cluster's default token. The three parts go into the pod spec, the volumeMounts and volumes. */}}
{{- define "hostpatrol.tokenAutomount" -}}
{{- if .Values.serviceAccountToken.expirationSeconds -}}
automountServiceAccountToken: false
{{- end -}}
{{- end -}}
{{- define "hostpatrol.tokenMount" -}}
{{- if .Values.serviceAccountToken.expirationSeconds -}}
- name: sa-token
  mountPath: /var/run/secrets/kubernetes.io/serviceaccount
  readOnly: true
{{- end -}}
{{- end -}}
{{- define "hostpatrol.tokenVolume" -}}
{{- if .Values.serviceAccountToken.expirationSeconds -}}
- name: sa-token
  projected:
    defaultMode: 0444
    sources:
      - serviceAccountToken:
          path: token
          expirationSeconds: {{ .Values.serviceAccountToken.expirationSeconds }}
      - configMap:
          name: kube-root-ca.crt
          items:
            - key: ca.crt
              path: ca.crt
      - downwardAPI:
          items:
            - path: namespace
              fieldRef:
                fieldPath: metadata.namespace
{{- end -}}
{{- end -}}
