#!/usr/bin/env bash
# Lint: ruff over the whole tree, the import contracts (layers, no cycles, Flask at the edge:
# [tool.importlinter] in pyproject.toml), the size rules (ci/house_rules.py), then the policy
# files: the documented example must validate, and so must the repository's own policy when it
# has one; then the deploy files (ci/lint_deploy.sh: Dockerfile, compose, Kubernetes).
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/_venv.sh
"$PYTHON" -m ruff check .
"$(dirname "$PYTHON")/lint-imports" --no-cache
"$PYTHON" ci/house_rules.py  # no product module over 400 lines, no function over 80
"$PODIUM" policy check podium.example.yaml
if [[ -f podium.yaml ]]; then
  "$PODIUM" policy check podium.yaml
fi
# the deploy files: Dockerfile, compose, Kubernetes manifests, their policies
bash ci/lint_deploy.sh
