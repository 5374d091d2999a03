#!/usr/bin/env bash
# Lint: ruff over the whole tree (config in pyproject.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
"${PYTHON:-.venv/bin/python}" -m ruff check .
