"""Podium as a user gets it: the wheel `python -m build` makes, installed in a fresh virtual
environment outside the checkout.

Installing the wheel's dependencies from the registry would take minutes, so the fresh
environment borrows the third-party packages of the environment running the tests: one
``.pth`` line puts that environment's ``site-packages`` at the end of ``sys.path``. A ``.pth``
line only adds a folder; the ``.pth`` files inside it are not run, so the editable install of
the checkout (``__editable__.podium-*.pth`` and its finder) stays out, and ``podium`` itself
is the wheel's (its files, its ``dist-info``, its ``podium`` script). What this does not prove:
that the wheel's dependency ranges resolve from the registry (``pip install --no-deps``);
``make lock`` and ``make install`` install them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

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
        variables: the wheel's ``bin`` first, then the borrowed environment's (``mlflow``)."""
        env = {k: v for k, v in os.environ.items()
               if k != "PYTHONPATH" and not k.startswith(("PODIUM_", "MLFLOW_"))}
        env["PATH"] = f"{self.bin}:{Path(sys.executable).parent}:/usr/bin:/bin"
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
    dependencies, and then the borrowed site-packages added after its own."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    proc = subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin/python"),
                           "install", "--quiet", "--no-deps", "--no-index", "--ignore-installed",
                           str(wheel)],
                          capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise AssertionError(f"pip install of the wheel failed:\n{proc.stderr[-3000:]}")
    (site,) = (venv / "lib").glob("python3.*/site-packages")
    (site / "zz_borrowed_site_packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return InstalledWheel(wheel=wheel, sdist=sdist, venv=venv)
