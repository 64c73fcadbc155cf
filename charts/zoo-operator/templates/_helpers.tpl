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
{{- end }}

{{/* A workload image: the value if set, else zoo-operator/workload-<kind>:<appVersion>. Call with (list . kind). */}}
{{- define "zoo-operator.workloadImage" -}}
{{- $root := index . 0 }}
{{- $kind := index . 1 }}
{{- $set := index $root.Values.images.workload $kind }}
{{- default (printf "zoo-operator/workload-%s:%s" $kind $root.Chart.AppVersion) $set }}
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
{{- end }}
