{{/*
Helpers for the zoo-operator chart. Every name is prefixed "zoo-operator." so that it cannot clash with a
parent chart's helpers.
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "zoo-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of every resource name: fullnameOverride, else the release name, with the chart name appended when
the release name does not already contain it. Truncated to 63 characters (DNS label limit).
*/}}
{{- define "zoo-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* "name-version" as the helm.sh/chart label wants it. */}}
{{- define "zoo-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels that select the operator pod; they never change across upgrades. */}}
{{- define "zoo-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "zoo-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels on every resource the chart creates. */}}
{{- define "zoo-operator.labels" -}}
helm.sh/chart: {{ include "zoo-operator.chart" . }}
{{ include "zoo-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: zoo-operator
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The ServiceAccount the operator runs as. */}}
{{- define "zoo-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "zoo-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The operator image: repository and tag, the tag defaulting to the chart's appVersion. */}}
{{- define "zoo-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- with .Values.image.digest }}@{{ . }}{{ end }}
{{- end }}

{{/* A workload image: the value if set, else zoo-operator/workload-<kind>:<appVersion>. Call with (list . kind). */}}
{{- define "zoo-operator.workloadImage" -}}
{{- $root := index . 0 }}
{{- $kind := index . 1 }}
{{- $set := index $root.Values.images.workload $kind }}
{{- default (printf "zoo-operator/workload-%s:%s" $kind $root.Chart.AppVersion) $set }}
{{- with index $root.Values.images.workload (printf "%sDigest" $kind) }}@{{ . }}{{ end }}
{{- end }}

{{/*
The Ascend image of one chip for ZOO_IMAGE_ASCEND_<chip>: ascendChips.<key> as set; with a digest in
ascendChipsDigest.<key>, the image the operator would pick for that chip (ascendChips, else ascend, else the
per-chip default of zoo_operator.settings.Settings.image_for) pinned @digest. Call with (list . chip key).
*/}}
{{- define "zoo-operator.ascendChipImage" -}}
{{- $root := index . 0 }}
{{- $chip := index . 1 }}
{{- $key := index . 2 }}
{{- $set := index $root.Values.images.workload.ascendChips $key | default "" }}
{{- $digest := index ($root.Values.images.workload.ascendChipsDigest | default dict) $key | default "" }}
{{- if $digest }}
{{- $default := printf "zoo-operator/workload-ascend:%s-%s" $root.Chart.AppVersion (lower $chip) }}
{{- printf "%s@%s" (default (default $default $root.Values.images.workload.ascend) $set) $digest }}
{{- else }}
{{- $set }}
{{- end }}
{{- end }}

{{/*
The operator's permissions inside the namespaces it watches: exactly what zoo_operator calls (and kopf on its
behalf). Shared by the ClusterRole (all namespaces) and the per-namespace Roles (watchNamespaces).
*/}}
{{- define "zoo-operator.namespacedRules" -}}
- apiGroups: ["modelzoo.io"]
  resources: ["zootrainingjobs"]
  verbs: ["get", "list", "watch", "patch", "update", "delete"]
- apiGroups: ["modelzoo.io"]
  resources: ["zootrainingjobs/status"]
  verbs: ["get", "patch", "update"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch", "create", "delete", "patch"]
- apiGroups: [""]
  resources: ["pods/log"]
  verbs: ["get"]
- apiGroups: [""]
  resources: ["services", "configmaps"]
  verbs: ["get", "list", "watch", "create", "delete", "patch"]
- apiGroups: [""]
  resources: ["events"]
  # list: the kubelet's FailedMount / FailedScheduling Events on a job's pods say why a pod cannot start.
  verbs: ["create", "patch", "list"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
# Whether the LocalQueue a job names in spec.scheduling.queue exists (issue 24: condition QueueFound).
- apiGroups: ["kueue.x-k8s.io"]
  resources: ["localqueues"]
  verbs: ["get"]
{{- if .Values.networkPolicy.enabled }}
# Each job's NetworkPolicy (zoo_operator.netpolicy), created and deleted with the job.
- apiGroups: ["networking.k8s.io"]
  resources: ["networkpolicies"]
  verbs: ["get", "list", "watch", "create", "delete", "patch"]
{{- end }}
{{- if or .Values.gang.enabled .Values.ascend.volcano }}
- apiGroups: ["scheduling.volcano.sh"]
  resources: ["podgroups"]
  verbs: ["get", "list", "watch", "create", "delete", "patch"]
{{- end }}
{{- if .Values.gang.enabled }}
- apiGroups: ["scheduling.k8s.io"]
  resources: ["podgroups"]
  verbs: ["get", "list", "watch", "create", "delete", "patch"]
{{- end }}
{{- if .Values.ascend.dra.enabled }}
# Each Ascend job's ResourceClaimTemplate (NPUs through DRA, zoo_operator.ascend.claim_template), owned by the job.
- apiGroups: ["resource.k8s.io"]
  resources: ["resourceclaimtemplates"]
  verbs: ["get", "list", "watch", "create", "delete", "patch"]
{{- end }}
{{- end }}
