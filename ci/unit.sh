#!/usr/bin/env bash
# Unit tests (no MLflow server), JUnit report for GitLab. PostgreSQL store tests run when
# PODIUM_TEST_DATABASE_URL is set. UNIT_TESTS narrows the selection (default: tests/unit).
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/_venv.sh
REPORTS="${REPORTS:-reports}"
mkdir -p "$REPORTS"
"$PYTHON" -m pytest ${UNIT_TESTS:-tests/unit} -q --junitxml="$REPORTS"/unit.xml "$@"
