#!/usr/bin/env bash
# Unit tests (no MLflow server), JUnit report for GitLab.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p reports
"${PYTHON:-.venv/bin/python}" -m pytest tests/unit -q --junitxml=reports/unit.xml "$@"
