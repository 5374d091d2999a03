#!/usr/bin/env bash
# Lint the deploy files: the Dockerfile (hadolint), the image's entrypoint (shellcheck),
# deploy/compose.yaml against the Compose specification's schema (check-jsonschema's vendored
# copy), the Kustomize base and every overlay rendered (kubectl kustomize, offline) and
# validated against the Kubernetes schemas (kubernetes-validate --strict, offline; the
# ServiceMonitor is a CRD it has no schema for: a warning), and the deployment policies.
# Each file can be named instead (the tests lint broken copies): DOCKERFILE, COMPOSE,
# K8S_DIRS (space-separated kustomization folders), POLICIES (space-separated). Tools come
# from `make install` (the lint extra); kubectl from the machine: where it is missing the
# manifests are skipped, and this says so.
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/_venv.sh
BIN="$(dirname "$PYTHON")"
DOCKERFILE="${DOCKERFILE:-Dockerfile}"
COMPOSE="${COMPOSE:-deploy/compose.yaml}"
K8S_DIRS="${K8S_DIRS:-deploy/k8s/base $(printf '%s ' deploy/k8s/overlays/*/)}"
POLICIES="${POLICIES:-deploy/podium.yaml $(printf '%s ' deploy/k8s/*/podium.yaml deploy/k8s/overlays/*/podium.yaml)}"

echo "lint: $DOCKERFILE (hadolint)"
"$BIN/hadolint" "$DOCKERFILE"

echo "lint: deploy/entrypoint.sh (shellcheck)"
"$BIN/shellcheck" deploy/entrypoint.sh

echo "lint: $COMPOSE (Compose specification schema)"
"$BIN/check-jsonschema" --builtin-schema vendor.compose-spec "$COMPOSE"

if command -v kubectl >/dev/null 2>&1; then
  rendered="$(mktemp -d)"
  trap 'rm -rf "$rendered"' EXIT
  for dir in $K8S_DIRS; do
    out="$rendered/$(echo "$dir" | tr '/' '_').yaml"
    echo "lint: $dir (kubectl kustomize, kubernetes-validate --strict)"
    kubectl kustomize "$dir" > "$out"
    "$BIN/kubernetes-validate" --strict --quiet "$out"
  done
else
  echo "lint: kubectl not found: the Kubernetes manifests were NOT rendered or validated" >&2
fi

for policy in $POLICIES; do
  echo "lint: $policy (podium policy check)"
  "$PODIUM" policy check "$policy"
done
