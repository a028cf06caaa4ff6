{{/* The chart name, overridable. */}}
{{- define "yolo.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The prefix of every resource name. */}}
{{- define "yolo.fullname" -}}
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

{{/* Labels of every resource. */}}
{{- define "yolo.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "yolo.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels of one component: include with (dict "root" . "component" "operator"). */}}
{{- define "yolo.selectorLabels" -}}
app.kubernetes.io/name: {{ include "yolo.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* ServiceAccount name of a component: (dict "root" . "component" "operator"). */}}
{{- define "yolo.serviceAccountName" -}}
{{- $values := index .root.Values .component }}
{{- if $values.serviceAccount.create }}
{{- default (printf "%s-%s" (include "yolo.fullname" .root) .component) $values.serviceAccount.name }}
{{- else }}
{{- default "default" $values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* An image reference: (dict "image" .Values.operator.image "root" .). */}}
{{- define "yolo.image" -}}
{{- printf "%s:%s" .image.repository (default .root.Chart.AppVersion .image.tag) }}
{{- end }}

{{/* The hardened container securityContext shared by every container. */}}
{{- define "yolo.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end }}

{{/* The hardened pod securityContext shared by every pod. */}}
{{- define "yolo.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Status fields the trainer writes: TRAINER_FIELDS of operator/src/yolo_crd/ownership.py (camelCase, as on the
wire). tests/unit/test_admission_policies.py renders the chart and holds both lists equal to that table. */}}
{{- define "yolo.trainerStatusFields" -}}
stage currentEpoch totalEpochs progress metrics bestEpoch history finalMetrics weightsPath projectPath stopReason
resumedFromEpoch trainingFailure datasetSkipped artifacts lineage download lastUpdateTime exports exportProgress
qualityGate
{{- end }}

{{/* Status fields the operator writes: OPERATOR_FIELDS of operator/src/yolo_crd/ownership.py. */}}
{{- define "yolo.operatorStatusFields" -}}
phase conditions reason message jobName observedGeneration startTime completionTime
{{- end }}

{{/* A field name as CEL reaches it in a typed object: Kubernetes' escaping of names that are not CEL
identifiers (reserved words, '_' runs, '.', '-', '/'). */}}
{{- define "yolo.celField" -}}
{{- $reserved := list "true" "false" "null" "in" "as" "break" "const" "continue" "else" "for" "function" "if" "import" "let" "loop" "package" "namespace" "return" "var" "void" "while" }}
{{- if has . $reserved }}__{{ . }}__
{{- else }}{{ . | replace "__" "__underscores__" | replace "." "__dot__" | replace "-" "__dash__" | replace "/" "__slash__" }}
{{- end }}
{{- end }}

{{/* CEL: the list of the named status fields (a space-separated list) that this request changes, set,
or clears. */}}
{{- define "yolo.celChangedFields" -}}
{{- range $i, $field := splitList " " (. | replace "\n" " ") }}
{{- $f := include "yolo.celField" $field }}
{{- if $i }}
+ {{ end }}(((has(object.status) && has(object.status.{{ $f }})) ? !(has(oldObject.status) && has(oldObject.status.{{ $f }}) && object.status.{{ $f }} == oldObject.status.{{ $f }}) : (has(oldObject.status) && has(oldObject.status.{{ $f }}))) ? [{{ $field | quote }}] : [])
{{- end }}
{{- end }}

{{/* The image prefixes trainings may use, as JSON: trainer.allowedImages, else the chart's own trainer repository. */}}
{{- define "yolo.allowedImages" -}}
{{- if .Values.trainer.allowedImages }}{{ toJson .Values.trainer.allowedImages }}
{{- else }}{{ list .Values.trainer.image.repository | toJson }}
{{- end }}
{{- end }}

{{/* The Secrets trainings may name, as JSON: objectStorage.allowedSecrets and the default objectStorage.secretName
(which every training using s3:// gets anyway). */}}
{{- define "yolo.allowedSecrets" -}}
{{- $secrets := .Values.objectStorage.allowedSecrets | default list }}
{{- with .Values.objectStorage.secretName }}{{ $secrets = append $secrets . }}{{ end }}
{{- $secrets | uniq | toJson }}
{{- end }}

{{/* The matchResources of the policies' bindings: the watched namespaces, or every namespace. */}}
{{- define "yolo.policyNamespaces" -}}
{{- if .Values.operator.watchNamespaces }}
matchResources:
  namespaceSelector:
    matchExpressions:
      - key: kubernetes.io/metadata.name
        operator: In
        values: {{ toJson .Values.operator.watchNamespaces }}
{{- end }}
{{- end }}

{{/* The reference checks of a training spec (image, object-storage Secret, PriorityClass) as policy
validations; .obj and .old are the spec's CEL paths (object.spec, or a sweep's object.spec.template), .field
its name in messages. One definition for trainings and sweeps' templates, so their lists never drift. */}}
{{- define "yolo.referenceValidations" -}}
    # a prefix ending in '/' allows every image under it; any other names one repository: bare, ':tag' or '@digest'
    - expression: >-
        !has({{ .obj }}.image)
        || (oldObject != null && has({{ .old }}.image) && {{ .old }}.image == {{ .obj }}.image)
        || variables.allowedImages.exists(p, p.endsWith('/') ? {{ .obj }}.image.startsWith(p)
        : ({{ .obj }}.image == p || (({{ .obj }}.image.startsWith(p + ':') || {{ .obj }}.image.startsWith(p + '@'))
        && !{{ .obj }}.image.substring(size(p)).contains('/'))))
      messageExpression: >-
        '{{ .field }}.image ' + {{ .obj }}.image + ' is not allowed: allowed images are '
        + (size(variables.allowedImages) == 0 ? 'none' : variables.allowedImages.join(', '))
        + ' (a prefix ending in / allows every image under it, any other names one repository, with any :tag
        or @digest; chart value trainer.allowedImages)'
      reason: Forbidden
    # exact names, or name prefixes ending in '*'
    - expression: >-
        !has({{ .obj }}.objectStorage)
        || (oldObject != null && has({{ .old }}.objectStorage)
        && {{ .old }}.objectStorage.secretRef.name == {{ .obj }}.objectStorage.secretRef.name)
        || variables.allowedSecrets.exists(s, s.endsWith('*')
        ? {{ .obj }}.objectStorage.secretRef.name.startsWith(s.substring(0, size(s) - 1))
        : {{ .obj }}.objectStorage.secretRef.name == s)
      messageExpression: >-
        '{{ .field }}.objectStorage.secretRef ' + {{ .obj }}.objectStorage.secretRef.name + ' is not allowed: allowed
        Secrets are ' + (size(variables.allowedSecrets) == 0 ? 'none' : variables.allowedSecrets.join(', '))
        + ' (an entry ending in * is a name prefix; chart values objectStorage.allowedSecrets and secretName)'
      reason: Forbidden
    # an empty list allows any PriorityClass
    - expression: >-
        !has({{ .obj }}.priorityClassName) || size(variables.allowedPriorityClasses) == 0
        || (oldObject != null && has({{ .old }}.priorityClassName)
        && {{ .old }}.priorityClassName == {{ .obj }}.priorityClassName)
        || variables.allowedPriorityClasses.exists(s, s.endsWith('*')
        ? {{ .obj }}.priorityClassName.startsWith(s.substring(0, size(s) - 1)) : {{ .obj }}.priorityClassName == s)
      messageExpression: >-
        '{{ .field }}.priorityClassName ' + {{ .obj }}.priorityClassName + ' is not allowed: allowed PriorityClasses are '
        + variables.allowedPriorityClasses.join(', ') + ' (chart value trainer.allowedPriorityClasses)'
      reason: Forbidden
{{- end }}
