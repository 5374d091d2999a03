#!/usr/bin/env bash
# Release: train on the production data, register the version linked to this pipeline and
# merge request, run the model checks (JUnit), then request Production from Podium.
#
#   MLFLOW_TRACKING_URI     the MLflow server (required)
#   PODIUM_MODEL            registered model name (churn)
#   PODIUM_TRAINING_DATA    CSV in the Telco churn layout; synthetic data when unset
#   PODIUM_SYNTHETIC_ROWS   rows of synthetic data (20000)
#   PODIUM_TRIALS           hyperparameter trials (6)
#   PODIUM_POLICY           policy file whose check thresholds the model checks use
#   PODIUM_TARGET           what to request (Production)
# GitLab's CI_PROJECT_ID, CI_MERGE_REQUEST_IID / CI_OPEN_MERGE_REQUESTS, CI_PIPELINE_ID and
# CI_COMMIT_SHA become the version's gitlab.* tags, so Podium can answer on the MR.
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/_venv.sh
: "${MLFLOW_TRACKING_URI:?MLFLOW_TRACKING_URI must point at the MLflow server}"
export MLFLOW_TRACKING_URI
model="${PODIUM_MODEL:-churn}"
REPORTS="${REPORTS:-reports}"
mkdir -p "$REPORTS"

if [[ -n "${PODIUM_TRAINING_DATA:-}" ]]; then
  data=(--data "$PODIUM_TRAINING_DATA")
else
  echo "release: PODIUM_TRAINING_DATA is not set; training on synthetic data" >&2
  data=(--synthetic "${PODIUM_SYNTHETIC_ROWS:-20000}")
fi

# The merge request: set in merge-request pipelines; in a branch pipeline GitLab lists the
# open ones as "group/project!12,group/project!15": take the first.
mr_iid="${CI_MERGE_REQUEST_IID:-}"
if [[ -z "$mr_iid" && -n "${CI_OPEN_MERGE_REQUESTS:-}" ]]; then
  first="${CI_OPEN_MERGE_REQUESTS%%,*}"
  mr_iid="${first##*!}"
fi
tags=(--tag "gitlab.commit_sha=${CI_COMMIT_SHA:-$(git rev-parse HEAD)}")
[[ -n "${CI_PROJECT_ID:-}" ]] && tags+=(--tag "gitlab.project_id=$CI_PROJECT_ID")
[[ -n "${CI_PIPELINE_ID:-}" ]] && tags+=(--tag "gitlab.pipeline_id=$CI_PIPELINE_ID")
[[ -n "$mr_iid" ]] && tags+=(--tag "gitlab.mr_iid=$mr_iid")

"$PODIUM" train --model "$model" "${data[@]}" --trials "${PODIUM_TRIALS:-6}" "${tags[@]}" \
  --json > "$REPORTS"/train.json
version=$("$PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1]))["version"])' \
  "$REPORTS"/train.json)
echo "release: registered $model v$version" >&2

policy=()
[[ -n "${PODIUM_POLICY:-}" && -f "${PODIUM_POLICY:-}" ]] && policy=(--policy "$PODIUM_POLICY")
"$PYTHON" -m pytest model_tests --model-uri "models:/$model/$version" "${policy[@]}" -q \
  --junitxml="$REPORTS"/model-checks.xml -p no:cacheprovider

"$PODIUM" request "$model" "$version" "${PODIUM_TARGET:-Production}"
