#!/usr/bin/env bash
# Integration tests: a real mlflow server, podium serve, worker faults, Slack and GitLab
# fakes; and the store tests on PostgreSQL when PODIUM_TEST_DATABASE_URL is set (the
# pipeline's postgres service). JUnit reports for GitLab.
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/_venv.sh
REPORTS="${REPORTS:-reports}"
mkdir -p "$REPORTS"
if [[ -n "${PODIUM_TEST_DATABASE_URL:-}" ]]; then
  "$PYTHON" -m pytest tests/unit -q -m postgres --junitxml="$REPORTS"/postgres.xml
fi
"$PYTHON" -m pytest tests/integration -q --junitxml="$REPORTS"/integration.xml "$@"
