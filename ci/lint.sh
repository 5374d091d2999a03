#!/usr/bin/env bash
# Lint: ruff over the whole tree (config in pyproject.toml), then the policy files: the
# documented example must validate, and so must the repository's own policy when it has one.
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/_venv.sh
"$PYTHON" -m ruff check .
"$PODIUM" policy check podium.example.yaml
if [[ -f podium.yaml ]]; then
  "$PODIUM" policy check podium.yaml
fi
