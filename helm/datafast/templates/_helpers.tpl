{{/* Names, labels and the pieces every DataFast container shares. */}}

{{- define "datafast.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "datafast.fullname" -}}
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

{{- define "datafast.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "datafast.labels" -}}
helm.sh/chart: {{ include "datafast.chart" . }}
{{ include "datafast.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "datafast.selectorLabels" -}}
app.kubernetes.io/name: {{ include "datafast.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The mode, checked: "embedded" or "scaled". */}}
{{- define "datafast.mode" -}}
{{- if not (has .Values.mode (list "embedded" "scaled")) }}
{{- fail (printf "mode must be embedded or scaled, not %q" (toString .Values.mode)) }}
{{- end }}
{{- .Values.mode }}
{{- end }}

{{- define "datafast.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/* The Secret the web and worker pods read. */}}
{{- define "datafast.secretName" -}}
{{- .Values.secrets.existingSecret | default (include "datafast.fullname" .) }}
{{- end }}

{{/* Whether the chart makes that Secret: "true" or "". */}}
{{- define "datafast.createSecret" -}}
{{- if and (not .Values.secrets.existingSecret) (or (eq (include "datafast.mode" .) "scaled") .Values.secrets.secretKey) }}true{{ end }}
{{- end }}

{{/* The Secret's data, checked; scaled mode needs every URL. */}}
{{- define "datafast.secretData" -}}
{{- $s := .Values.secrets }}
{{- if $s.secretKey }}
{{- if lt (len $s.secretKey) 32 }}
{{- fail "secrets.secretKey is too short: use at least 32 characters (openssl rand -hex 32)" }}
{{- end }}
SECRET_KEY: {{ $s.secretKey | b64enc | quote }}
{{- end }}
{{- if eq (include "datafast.mode" .) "scaled" }}
{{- if not $s.secretKey }}
{{- fail "scaled mode needs secrets.secretKey (every pod must share it), or secrets.existingSecret" }}
{{- end }}
DATABASE_URL: {{ required "scaled mode needs secrets.databaseUrl (postgresql+asyncpg://...), or secrets.existingSecret" $s.databaseUrl | b64enc | quote }}
CLICKHOUSE_URL: {{ required "scaled mode needs secrets.clickhouseUrl (http://user:password@host:8123/datafast), or secrets.existingSecret" $s.clickhouseUrl | b64enc | quote }}
VALKEY_URL: {{ required "scaled mode needs secrets.valkeyUrl (redis://host:6379/0), or secrets.existingSecret" $s.valkeyUrl | b64enc | quote }}
{{- end }}
{{- end }}

{{/*
Environment of every DataFast container. Call with (dict "root" $ "secretName" NAME): the migration Job reads
a copy of the Secret that exists before the release's own resources do.
*/}}
{{- define "datafast.env" -}}
{{- $root := .root }}
{{- $scaled := eq (include "datafast.mode" $root) "scaled" }}
- name: DATA_DIR
  value: /data
- name: HOST
  value: "0.0.0.0"
- name: PORT
  value: "8000"
- name: LOG_FORMAT
  value: {{ $root.Values.config.logFormat | quote }}
- name: LOG_LEVEL
  value: {{ $root.Values.config.logLevel | quote }}
- name: MIGRATE_ON_START
  value: {{ ternary "false" "true" $scaled | quote }}
- name: BASE_URL
  value: {{ required "config.baseUrl is required: the public URL of this install, e.g. https://analytics.example.com" $root.Values.config.baseUrl | quote }}
- name: TRUSTED_PROXIES
  value: {{ $root.Values.config.trustedProxies | quote }}
- name: DATA_RETENTION_DAYS
  value: {{ int $root.Values.config.dataRetentionDays | quote }}
{{- if and $scaled $root.Values.config.clickhouseCluster }}
- name: CLICKHOUSE_CLUSTER
  value: {{ $root.Values.config.clickhouseCluster | quote }}
{{- end }}
{{- with $root.Values.config.otelEndpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
{{- end }}
- name: OTEL_SERVICE_NAME
  value: {{ $root.Values.config.otelServiceName | quote }}
{{- if $scaled }}
{{- $partitions := int $root.Values.config.ingestPartitions }}
{{- if le $partitions 0 }}{{ $partitions = max 1 (int $root.Values.worker.replicas) }}{{ end }}
- name: INGEST_PARTITIONS
  value: {{ $partitions | quote }}
{{- range list "SECRET_KEY" "DATABASE_URL" "CLICKHOUSE_URL" "VALKEY_URL" }}
- name: {{ . }}
  valueFrom:
    secretKeyRef:
      name: {{ $.secretName }}
      key: {{ . }}
{{- end }}
{{- else if or $root.Values.secrets.existingSecret $root.Values.secrets.secretKey }}
- name: SECRET_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .secretName }}
      key: SECRET_KEY
      optional: true
{{- end }}
{{- with $root.Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Pod-level settings shared by every DataFast pod. */}}
{{- define "datafast.podSpecCommon" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
automountServiceAccountToken: false
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- end }}

{{/* The ServiceAccount every DataFast pod runs as. */}}
{{- define "datafast.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- .Values.serviceAccount.name | default (include "datafast.fullname" .) }}
{{- else }}
{{- .Values.serviceAccount.name | default "default" }}
{{- end }}
{{- end }}

{{/* envFrom of every DataFast container: whole Secrets or ConfigMaps (SMTP, OAuth, …). */}}
{{- define "datafast.envFrom" -}}
{{- with .Values.envFrom }}
envFrom:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Mounts and volumes added to the web and worker pods (extraVolumeMounts / extraVolumes). */}}
{{- define "datafast.extraVolumeMounts" -}}
{{- with .Values.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "datafast.extraVolumes" -}}
{{- with .Values.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end }}
