{{/*
Base name of every object: the release name (or fullnameOverride), cut so that
"{base}-node-{ordinal}" stays a valid pod name and StatefulSet revision label.
*/}}
{{- define "preview.fullname" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{- define "preview.routerName" -}}
{{- printf "%s-router" (include "preview.fullname" .) -}}
{{- end -}}

{{/* The node StatefulSet and its headless Service share this name (pod DNS). */}}
{{- define "preview.nodeName" -}}
{{- printf "%s-node" (include "preview.fullname" .) -}}
{{- end -}}

{{- define "preview.ringName" -}}
{{- printf "%s-ring" (include "preview.fullname" .) -}}
{{- end -}}

{{- define "preview.secretName" -}}
{{- default (printf "%s-secrets" (include "preview.fullname" .)) .Values.secrets.existingSecret -}}
{{- end -}}

{{- define "preview.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "preview.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "preview.labels" -}}
helm.sh/chart: {{ include "preview.chart" . }}
{{ include "preview.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "preview.routerSelectorLabels" -}}
{{ include "preview.selectorLabels" . }}
app.kubernetes.io/component: router
{{- end -}}

{{- define "preview.nodeSelectorLabels" -}}
{{ include "preview.selectorLabels" . }}
app.kubernetes.io/component: node
{{- end -}}

{{- define "preview.routerLabels" -}}
{{ include "preview.labels" . }}
app.kubernetes.io/component: router
{{- end -}}

{{- define "preview.nodeLabels" -}}
{{ include "preview.labels" . }}
app.kubernetes.io/component: node
{{- end -}}

{{- define "preview.image" -}}
{{- printf "%s:%s" .image.repository (default .root.Chart.AppVersion .image.tag) -}}
{{- end -}}

{{/* Ring name of the node with ordinal .i */}}
{{- define "preview.nodeRingName" -}}
{{- printf "%s-%d" .root.Values.node.namePrefix (int .i) -}}
{{- end -}}

{{/* Where routers reach the node with ordinal .i: its stable pod DNS name. */}}
{{- define "preview.nodeUrl" -}}
{{- $node := include "preview.nodeName" .root -}}
{{- printf "http://%s-%d.%s.%s.svc.cluster.local:9000" $node (int .i) $node .root.Release.Namespace -}}
{{- end -}}

{{- define "preview.publicUrl" -}}
{{- if .Values.publicUrl -}}
{{- .Values.publicUrl | trimSuffix "/" -}}
{{- else if and .Values.router.ingress.enabled .Values.router.ingress.hosts -}}
{{- include "preview.hostUrl" (dict "root" . "host" (first .Values.router.ingress.hosts)) -}}
{{- else -}}
{{- $port := int .Values.router.service.port -}}
{{- $suffix := ternary "" (printf ":%d" $port) (eq $port 80) -}}
{{- printf "http://%s.%s.svc.cluster.local%s" (include "preview.routerName" .) .Release.Namespace $suffix -}}
{{- end -}}
{{- end -}}

{{/* scheme://host of an ingress host: https when an ingress TLS entry covers it. */}}
{{- define "preview.hostUrl" -}}
{{- $host := .host -}}
{{- $tls := false -}}
{{- range .root.Values.router.ingress.tls -}}
{{- if has $host (.hosts | default list) -}}{{- $tls = true -}}{{- end -}}
{{- end -}}
{{- printf "%s://%s" (ternary "https" "http" $tls) $host -}}
{{- end -}}

{{/*
The secret data the chart manages, as a dict of base64 values. Given values win;
otherwise what the cluster already holds is kept (lookup), else a random value is
generated once. Offline rendering (helm template) has no cluster, so it generates.
*/}}
{{- define "preview.secretData" -}}
{{- if not (hasKey .Values.secrets "_rendered") -}}
{{- $existing := (lookup "v1" "Secret" .Release.Namespace (include "preview.secretName" .)) | default dict -}}
{{- $old := get $existing "data" | default dict -}}
{{- $data := dict -}}
{{- if .Values.secrets.idSecrets -}}
{{- $_ := set $data .Values.secrets.idSecretKey (printf "%s\n" (join "\n" .Values.secrets.idSecrets) | b64enc) -}}
{{- else if hasKey $old .Values.secrets.idSecretKey -}}
{{- $_ := set $data .Values.secrets.idSecretKey (get $old .Values.secrets.idSecretKey) -}}
{{- else -}}
{{- $_ := set $data .Values.secrets.idSecretKey (printf "%s\n" (randAlphaNum 64) | b64enc) -}}
{{- end -}}
{{- if .Values.secrets.apiTokens -}}
{{- $_ := set $data .Values.secrets.apiTokenKey (printf "%s\n" (join "\n" .Values.secrets.apiTokens) | b64enc) -}}
{{- else if hasKey $old .Values.secrets.apiTokenKey -}}
{{- $_ := set $data .Values.secrets.apiTokenKey (get $old .Values.secrets.apiTokenKey) -}}
{{- else -}}
{{- $_ := set $data .Values.secrets.apiTokenKey (printf "%s\n" (randAlphaNum 48) | b64enc) -}}
{{- end -}}
{{- /* Cached in the values of this render: the Secret and the checksum annotations
must see the same random values. */ -}}
{{- $_ := set .Values.secrets "_rendered" (toJson $data) -}}
{{- end -}}
{{- get .Values.secrets "_rendered" -}}
{{- end -}}

{{/*
A checksum of the secret that pods mount, so that a change rolls them. Rendered
once per release (lookup makes the data stable across upgrades), and for an
existing Secret, of what the cluster holds when Helm runs.
*/}}
{{- define "preview.secretChecksum" -}}
{{- if .Values.secrets.existingSecret -}}
{{- $existing := (lookup "v1" "Secret" .Release.Namespace .Values.secrets.existingSecret) | default dict -}}
{{- get $existing "data" | default dict | toJson | sha256sum -}}
{{- else -}}
{{- include "preview.secretData" . | sha256sum -}}
{{- end -}}
{{- end -}}

{{/* Checks that templates cannot express in values.schema.json. */}}
{{- define "preview.validate" -}}
{{- $last := include "preview.nodeRingName" (dict "root" . "i" (sub (int .Values.node.replicas) 1)) -}}
{{- if gt (len $last) 20 -}}
{{- fail (printf "node ring name %q is longer than 20 characters: shorten node.namePrefix or lower node.replicas" $last) -}}
{{- end -}}
{{- range .Values.node.draining -}}
{{- if not (regexMatch (printf "^%s-(0|[1-9][0-9]*)$" $.Values.node.namePrefix) .) -}}
{{- fail (printf "node.draining: %q is not a ring name of the form %s-N" . $.Values.node.namePrefix) -}}
{{- end -}}
{{- end -}}
{{- range $name, $w := .Values.node.weights -}}
{{- if not (regexMatch (printf "^%s-(0|[1-9][0-9]*)$" $.Values.node.namePrefix) $name) -}}
{{- fail (printf "node.weights: %q is not a ring name of the form %s-N" $name $.Values.node.namePrefix) -}}
{{- end -}}
{{- end -}}
{{- $grace := .Values.router.terminationGracePeriodSeconds -}}
{{- if and (not (kindIs "invalid" $grace)) (lt (int $grace) (add .Values.router.drainSeconds .Values.router.preStopSleepSeconds | int)) -}}
{{- fail "router.terminationGracePeriodSeconds must be at least router.drainSeconds + router.preStopSleepSeconds" -}}
{{- end -}}
{{- if le (int .Values.router.upstreamTimeout) (int .Values.node.holdSeconds) -}}
{{- fail "router.upstreamTimeout must exceed node.holdSeconds" -}}
{{- end -}}
{{- if and .Values.router.ingress.enabled (not .Values.router.ingress.hosts) -}}
{{- fail "router.ingress.enabled needs at least one host in router.ingress.hosts" -}}
{{- end -}}
{{- $sp := .Values.node.sandboxPod -}}
{{- if and (include "preview.nodeSandboxPod" .) (eq (toString $sp.procMount) "Unmasked") (ne (toString $sp.hostUsers) "false") -}}
{{- fail "node.sandboxPod.procMount Unmasked needs node.sandboxPod.hostUsers false: Kubernetes allows an unmasked /proc only in a pod with a user namespace of its own" -}}
{{- end -}}
{{- include "preview.validateOrigins" . -}}
{{- end -}}

{{/*
Subdomain mode: the domain must be given, no API host may look like a preview host (the
router would take `api.{domain}` for session "api"), no preview origin may call the API,
and an Ingress that terminates TLS must do so for the wildcard too.
*/}}
{{- define "preview.validateOrigins" -}}
{{- if include "preview.subdomainMode" . -}}
{{- $domain := .Values.previewDomain -}}
{{- if not $domain -}}
{{- fail "previewDomain is required in subdomain mode (previewMode: subdomain, the default): set it to a domain of its own, e.g. --set previewDomain=example-previews.com, with a wildcard DNS record *.{previewDomain} pointing at the ingress; or choose previewMode: path" -}}
{{- end -}}
{{- $apiHosts := list -}}
{{- if .Values.router.ingress.enabled -}}
{{- $apiHosts = concat $apiHosts .Values.router.ingress.hosts -}}
{{- end -}}
{{- with .Values.publicUrl -}}
{{- $apiHosts = append $apiHosts (urlParse .).hostname -}}
{{- end -}}
{{- range $apiHosts -}}
{{- if include "preview.isPreviewHost" (dict "host" . "domain" $domain) -}}
{{- fail (printf "%q is one label under previewDomain %q: the router would serve it as a preview (session %q), not the API. Give the API a host outside *.%s (the chart adds the wildcard rule itself)" . $domain (first (splitList "." .)) $domain) -}}
{{- end -}}
{{- end -}}
{{- range .Values.apiCorsOrigins -}}
{{- $host := (urlParse .).hostname -}}
{{- if or (eq $host $domain) (hasSuffix (printf ".%s" $domain) $host) -}}
{{- fail (printf "apiCorsOrigins: %q is on previewDomain %q or under it, where preview code runs: it must not call the API" . $domain) -}}
{{- end -}}
{{- end -}}
{{- $ing := .Values.router.ingress -}}
{{- if and $ing.enabled $ing.tls (not .Values.previewTls.secretName) (not (include "preview.wildcardTlsListed" .)) -}}
{{- fail (printf "previewTls.secretName: the Ingress terminates TLS for its API hosts, so previews at https://{id}.%s need a certificate for *.%s: name its Secret in previewTls.secretName (or list *.%s in a router.ingress.tls entry)" $domain $domain $domain) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* "true" in subdomain mode (previewMode other than "path"), else empty. */}}
{{- define "preview.subdomainMode" -}}
{{- if ne (toString .Values.previewMode) "path" -}}true{{- end -}}
{{- end -}}

{{/* The --preview-domain to pass: previewDomain in subdomain mode, empty in path mode. */}}
{{- define "preview.previewDomain" -}}
{{- if include "preview.subdomainMode" . -}}{{- .Values.previewDomain -}}{{- end -}}
{{- end -}}

{{/* "true" when .host is exactly one label under .domain: a host the router serves as a preview. */}}
{{- define "preview.isPreviewHost" -}}
{{- $host := lower .host -}}
{{- $suffix := printf ".%s" .domain -}}
{{- if and (hasSuffix $suffix $host) (not (contains "." (trimSuffix $suffix $host))) -}}true{{- end -}}
{{- end -}}

{{/* "true" when a router.ingress.tls entry already lists *.{previewDomain}. */}}
{{- define "preview.wildcardTlsListed" -}}
{{- $wildcard := printf "*.%s" .Values.previewDomain -}}
{{- range .Values.router.ingress.tls -}}
{{- if has $wildcard (.hosts | default list) -}}true{{- end -}}
{{- end -}}
{{- end -}}

{{/*
The API and product hosts that share a parent domain with previewDomain, comma-joined:
there, preview code can set cookies those hosts receive (unless the parent is a public
suffix, which only the Public Suffix List knows: this is a hint, not a check).
*/}}
{{- define "preview.cookieNeighbours" -}}
{{- $domain := .Values.previewDomain -}}
{{- $hosts := list -}}
{{- if .Values.router.ingress.enabled -}}
{{- $hosts = concat $hosts .Values.router.ingress.hosts -}}
{{- end -}}
{{- if .Values.publicUrl -}}
{{- $hosts = append $hosts (urlParse .Values.publicUrl).hostname -}}
{{- end -}}
{{- range .Values.apiCorsOrigins -}}
{{- $hosts = append $hosts (urlParse .).hostname -}}
{{- end -}}
{{- $near := list -}}
{{- range $hosts | uniq -}}
{{- $h := lower . -}}
{{- $parent := join "." (rest (splitList "." $h)) -}}
{{- if or (eq $h $domain) (hasSuffix (printf ".%s" $domain) $h) (hasSuffix (printf ".%s" $h) $domain) (and (contains "." $parent) (or (eq $parent $domain) (hasSuffix (printf ".%s" $parent) $domain))) -}}
{{- $near = append $near $h -}}
{{- end -}}
{{- end -}}
{{- join ", " $near -}}
{{- end -}}

{{- define "preview.routerGrace" -}}
{{- $grace := .Values.router.terminationGracePeriodSeconds -}}
{{- if kindIs "invalid" $grace -}}
{{- add .Values.router.drainSeconds .Values.router.preStopSleepSeconds 10 -}}
{{- else -}}
{{- $grace -}}
{{- end -}}
{{- end -}}

{{/*
"true" when the node pod is set up for bubblewrap: node.sandbox is not "off" and
node.sandboxPod.enabled. The pod settings are the cluster's side of the sandbox; the
node's own probe (--sandbox) decides whether a sandbox can be made with them.
*/}}
{{- define "preview.nodeSandboxPod" -}}
{{- if and (ne (toString .Values.node.sandbox) "off") .Values.node.sandboxPod.enabled -}}true{{- end -}}
{{- end -}}

{{/*
The node container's securityContext: node.securityContext, with node.sandboxPod's
procMount, seccomp and AppArmor profiles over it when the pod is set up for bubblewrap.
*/}}
{{- define "preview.nodeSecurityContext" -}}
{{- $ctx := deepCopy .Values.node.securityContext -}}
{{- if include "preview.nodeSandboxPod" . -}}
{{- $sp := .Values.node.sandboxPod -}}
{{- with $sp.procMount -}}
{{- $_ := set $ctx "procMount" . -}}
{{- end -}}
{{- with $sp.seccompProfile -}}
{{- $_ := set $ctx "seccompProfile" (include "preview.securityProfile" . | fromYaml) -}}
{{- end -}}
{{- with $sp.appArmorProfile -}}
{{- $_ := set $ctx "appArmorProfile" (include "preview.securityProfile" . | fromYaml) -}}
{{- end -}}
{{- end -}}
{{- toYaml $ctx -}}
{{- end -}}

{{/* A seccomp or AppArmor profile: its type, and localhostProfile only for Localhost. */}}
{{- define "preview.securityProfile" -}}
type: {{ .type }}
{{- if eq .type "Localhost" }}
localhostProfile: {{ .localhostProfile | quote }}
{{- end }}
{{- end -}}

{{/* node.podAntiAffinity "soft"/"hard": spread node pods over topologyKey. */}}
{{- define "preview.nodeAntiAffinity" -}}
{{- $n := .Values.node -}}
{{- if eq $n.podAntiAffinity "hard" -}}
requiredDuringSchedulingIgnoredDuringExecution:
  - topologyKey: {{ $n.podAntiAffinityTopologyKey }}
    labelSelector:
      matchLabels:
        {{- include "preview.nodeSelectorLabels" . | nindent 8 }}
{{- else if eq $n.podAntiAffinity "soft" -}}
preferredDuringSchedulingIgnoredDuringExecution:
  - weight: 100
    podAffinityTerm:
      topologyKey: {{ $n.podAntiAffinityTopologyKey }}
      labelSelector:
        matchLabels:
          {{- include "preview.nodeSelectorLabels" . | nindent 10 }}
{{- end -}}
{{- end -}}
