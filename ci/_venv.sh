# Sourced by the ci/ scripts: the project's virtual environment, created when missing.
# In GitLab the pip cache is $PIP_CACHE_DIR; on a laptop `make install` is a no-op when done.
if [[ -z "${PYTHON:-}" ]]; then
  make --no-print-directory install >&2
  PYTHON=.venv/bin/python
fi
PODIUM="${PODIUM:-$(dirname "$PYTHON")/podium}"
