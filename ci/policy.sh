#!/usr/bin/env bash
# A merge request's policy change, replayed before it merges: the new policy file must
# validate (the job fails when it does not), then `podium policy diff` replays the last
# decisions from their evidence bundles under the target branch's policy and under the new
# one, and posts the table as one note on the merge request (edited in place on each push).
# A changed decision is information for the reviewers, not a failure.
#
# CI/CD variables: PODIUM_DATABASE_URL and MLFLOW_TRACKING_URI (where the decisions and
# their bundles are), GITLAB_TOKEN (api scope, to post the note); GITLAB_URL and
# GITLAB_PROJECT_ID default to the pipeline's own. PODIUM_POLICY_FILE (podium.yaml),
# PODIUM_POLICY_REPO (.) and PODIUM_TARGET_REF (origin/<target branch>) say where to look.
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/_venv.sh
FILE="${PODIUM_POLICY_FILE:-podium.yaml}"
REPO="${PODIUM_POLICY_REPO:-.}"
TARGET="${CI_MERGE_REQUEST_TARGET_BRANCH_NAME:?a merge-request pipeline sets it}"
REF="${PODIUM_TARGET_REF:-origin/$TARGET}"
export GITLAB_URL="${GITLAB_URL:-${CI_SERVER_URL:-}}"
export GITLAB_PROJECT_ID="${GITLAB_PROJECT_ID:-${CI_PROJECT_ID:-}}"
if [[ ! -f "$FILE" ]]; then
  echo "no $FILE on this branch: no policy to compare"
  exit 0
fi
"$PODIUM" policy check "$FILE"  # exit 1 (every problem with its line): the job fails
if [[ "$REF" == origin/* ]]; then
  git -C "$REPO" fetch --quiet --depth=1 origin "$TARGET" 2>/dev/null || true
fi
rel="$(realpath --relative-to="$(git -C "$REPO" rev-parse --show-toplevel)" "$FILE")"
old="$(dirname "$FILE")/.${TARGET//\//-}.$(basename "$FILE")"  # beside it: same relative paths
trap 'rm -f "$old"' EXIT
if ! git -C "$REPO" show "$REF:$rel" > "$old" 2>/dev/null; then
  echo "$REF has no $rel: no policy to compare with"
  exit 0
fi
if cmp -s "$old" "$FILE"; then
  echo "$rel is the same as on $REF: nothing to replay"
  exit 0
fi
status=0
"$PODIUM" policy diff "$old" "$FILE" --mr "${CI_MERGE_REQUEST_IID:?}" || status=$?
if [[ $status -ne 0 && $status -ne 3 ]]; then
  exit "$status"
fi
