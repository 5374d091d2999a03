#!/usr/bin/env bash
# Lint: ruff over the whole tree (config in pyproject.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/_venv.sh
"$PYTHON" -m ruff check .
