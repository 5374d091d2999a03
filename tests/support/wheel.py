"""Podium as a user gets it: the wheel `python -m build` makes, installed in a fresh virtual
environment outside the checkout.

Installing the wheel's dependencies from the registry would take minutes, so the fresh
environment gets the third-party packages of the environment running the tests as hard links
(one second for 1.6 GB on the same file system; nothing is ever written through them: Python
writes a new ``.pyc`` beside, never into, a linked file). Podium's own distribution and the
editable install of the checkout are left out, so ``podium`` is the wheel's (its files, its
``dist-info``, its ``podium`` script), and the environment is whole: a sandbox that sees only
its ``site-packages`` finds LightGBM there. What this does not prove: that the wheel's
dependency ranges resolve from the registry (``pip install --no-deps``); ``make lock`` and
``make install`` install them.

Building and installing takes ~15 s, so it is done once per test session (the first worker
that needs it, under a file lock) and shared by the modules that use it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from tests.support.session_cache import once

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class InstalledWheel:
    wheel: Path
    sdist: Path
    venv: Path

    @property
    def bin(self) -> Path:
        return self.venv / "bin"

    def env(self, **extra: str) -> dict[str, str]:
        """An environment without PYTHONPATH (the checkout) and without Podium's or MLflow's
        variables, with only the wheel's ``bin`` and the system's on the PATH."""
        env = {k: v for k, v in os.environ.items()
               if k != "PYTHONPATH" and not k.startswith(("PODIUM_", "MLFLOW_"))}
        env["PATH"] = f"{self.bin}:/usr/bin:/bin"
        env.update(extra)
        return env

    def run(self, args: list[str], cwd: Path, timeout: float = 120,
            **extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(args, cwd=cwd, env=self.env(**extra), capture_output=True,
                              text=True, timeout=timeout)


def build(out: Path) -> tuple[Path, Path]:
    """``python -m build``: the sdist, then the wheel built from that sdist (so the sdist
    too must carry everything)."""
    proc = subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
                          capture_output=True, text=True, timeout=300,
                          env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    if proc.returncode != 0:
        raise AssertionError(f"python -m build failed:\n{proc.stdout[-3000:]}"
                             f"\n{proc.stderr[-3000:]}")
    (wheel,) = out.glob("podium-*.whl")
    (sdist,) = out.glob("podium-*.tar.gz")
    return wheel, sdist


def install(wheel: Path, sdist: Path, venv: Path) -> InstalledWheel:
    """A fresh venv (no pip of its own), the wheel installed by this pip without its
    dependencies, then the running environment's other packages linked in beside it."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    proc = subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin/python"),
                           "install", "--quiet", "--no-deps", "--no-index", "--ignore-installed",
                           str(wheel)],
                          capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise AssertionError(f"pip install of the wheel failed:\n{proc.stderr[-3000:]}")
    (site,) = (venv / "lib").glob("python3.*/site-packages")
    _link_packages(Path(sysconfig.get_paths()["purelib"]), site)
    _entry_point(venv, "mlflow", "mlflow.cli", "cli")  # the demo starts an MLflow server
    return InstalledWheel(wheel=wheel, sdist=sdist, venv=venv)


def _link_packages(source: Path, site: Path) -> None:
    """Hard links to every package in ``source`` but Podium's own (its dist-info and the
    checkout's editable finder) and what the wheel already put in ``site``."""
    for entry in source.iterdir():
        name = entry.name
        if (site / name).exists() or name.startswith(("podium-", "__editable__")) \
                or name == "__pycache__":
            continue
        if entry.is_dir():
            shutil.copytree(entry, site / name, copy_function=os.link, symlinks=True)
        else:
            os.link(entry, site / name)


def _entry_point(venv: Path, name: str, module: str, attr: str) -> None:
    script = venv / "bin" / name
    script.write_text(f"#!{venv / 'bin' / 'python'}\nimport sys\nfrom {module} import {attr}\n"
                      f"sys.exit({attr}())\n")
    script.chmod(0o755)


def session_wheel(tmp_path_factory) -> InstalledWheel:
    """The wheel of this checkout, built and installed once per test session."""
    def make(root: Path) -> None:
        built, sdist = build(root / "dist")
        install(built, sdist, root / "venv")

    root = once(tmp_path_factory, "podium-wheel", make)
    (wheel,), (sdist,) = (root / "dist").glob("podium-*.whl"), (root / "dist").glob(
        "podium-*.tar.gz")
    return InstalledWheel(wheel=wheel, sdist=sdist, venv=root / "venv")
