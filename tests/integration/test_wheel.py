"""The package as a user installs it: `python -m build` makes an sdist and a wheel that carry
everything Podium reads at run time, and the wheel, installed in a fresh virtual environment
outside the checkout (tests/support/wheel.py says what that borrows and what it does not
prove), prints its version, writes and checks the example policy, migrates a new store and
serves the web page through the image's entrypoint; test_demo.py runs `podium demo` from the
same installed wheel."""

from __future__ import annotations

import signal
import subprocess
import tarfile
import zipfile

import pytest
import requests

from tests.support import wheel
from tests.support.draining import kill_group
from tests.support.settings import API_TOKEN
from tests.support.waiting import wait_for
from webhook_server import __version__
from webhook_server.dev.processes import free_port

pytestmark = pytest.mark.integration
ROOT = wheel.ROOT
MIGRATIONS = sorted(p.name for p in (ROOT / "webhook_server/store/migrations/versions")
                    .glob("0*.py"))
RUNTIME_FILES = ["podium_policy/podium.example.yaml", "webhook_server/store/migrations/env.py",
                 *(f"webhook_server/store/migrations/versions/{m}" for m in MIGRATIONS),
                 *(str(p.relative_to(ROOT)) for p in
                   (ROOT / "webhook_server/web/ui").glob("*/**/*.*") if "__pycache__" not in
                   str(p) and p.suffix in (".html", ".css", ".js")),
                 "model_tests/sandbox/sandbox_child.py"]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> wheel.InstalledWheel:
    return wheel.session_wheel(tmp_path_factory)


def test_the_wheel_and_the_sdist_carry_every_file_podium_reads_at_run_time(installed):
    assert len(RUNTIME_FILES) > 15  # the templates and static files were found
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    assert [f for f in RUNTIME_FILES if f not in names] == []
    with tarfile.open(installed.sdist) as tar:
        in_sdist = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    assert [f for f in RUNTIME_FILES if f not in in_sdist] == []
    assert installed.wheel.name == f"podium-{__version__}-py3-none-any.whl"


def test_the_installed_wheel_not_the_checkout_is_what_runs(installed, tmp_path):
    probe = ("import importlib.metadata as m, webhook_server, training, model_tests, "
             "podium_policy; print(webhook_server.__file__, training.__file__, "
             "model_tests.__file__, podium_policy.__file__, m.distribution('podium')._path)")
    proc = installed.run([str(installed.bin / "python"), "-c", probe], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    paths = proc.stdout.split()
    assert len(paths) == 5 and all(p.startswith(str(installed.venv)) for p in paths), paths
    version = installed.run([str(installed.bin / "podium"), "--version"], cwd=tmp_path)
    assert version.stdout == f"podium {__version__}\n"


def test_the_installed_wheel_writes_and_checks_its_example_policy(installed, tmp_path):
    example = installed.run([str(installed.bin / "podium"), "policy", "example"], cwd=tmp_path)
    assert example.returncode == 0, example.stderr
    assert example.stdout == (ROOT / "podium.example.yaml").read_text()
    (tmp_path / "podium.yaml").write_text(example.stdout)
    check = installed.run([str(installed.bin / "podium"), "policy", "check", "podium.yaml"],
                          cwd=tmp_path)
    assert check.returncode == 0 and check.stdout.startswith("ok: "), check.stdout


@pytest.mark.timeout(180)
def test_the_installed_wheel_migrates_and_serves_the_page_through_the_entrypoint(installed,
                                                                                 tmp_path):
    (tmp_path / "podium.yaml").write_text((ROOT / "podium.example.yaml").read_text())
    port = free_port()
    env = installed.env(PODIUM_DATABASE_URL=f"sqlite:///{tmp_path / 'podium.db'}",
                        PODIUM_MLFLOW_WEBHOOK_SECRET="wheel-secret", PODIUM_HOST="127.0.0.1",
                        PODIUM_PORT=str(port), PODIUM_SANDBOX="process",
                        PODIUM_SANDBOX_SPARES="0", PODIUM_API_TOKENS=f"ops={API_TOKEN}")
    with open(tmp_path / "out.log", "w") as out, open(tmp_path / "err.log", "w") as err:
        proc = subprocess.Popen(["sh", str(ROOT / "deploy/entrypoint.sh"), "serve",
                                 "--workers", "1"], cwd=tmp_path, env=env, stdout=out,
                                stderr=err, start_new_session=True)
    try:
        wait_for(lambda: _get(port, "/readyz") == 200, timeout=90, what="/readyz 200")
        page = requests.get(f"http://127.0.0.1:{port}/ui/", timeout=10)
        assert page.status_code == 401 and '<form method="post"' in page.text  # login
        css = requests.get(f"http://127.0.0.1:{port}/ui/static/ui.css", timeout=10)
        assert css.status_code == 200 and css.text == \
            (ROOT / "webhook_server/web/ui/static/ui.css").read_text()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=40) == 0
    finally:
        kill_group(proc)
    head = MIGRATIONS[-1].split("_")[0]
    assert (tmp_path / "out.log").read_text().startswith(f"schema at revision {head}")


def _get(port: int, path: str) -> int | None:
    try:
        return requests.get(f"http://127.0.0.1:{port}{path}", timeout=2).status_code
    except requests.ConnectionError:
        return None
