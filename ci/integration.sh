#!/usr/bin/env bash
# Integration tests: a real mlflow server, podium serve, worker faults. JUnit for GitLab.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p reports
"${PYTHON:-.venv/bin/python}" -m pytest tests/integration -q --junitxml=reports/integration.xml "$@"
