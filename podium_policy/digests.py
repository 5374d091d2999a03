"""Digests of what a decision was made on: one file (``sha256_file``) and a model's files
(``model_sha256``: one digest over a sorted manifest of relative path and sha256). Pure
hashing, no model code: the service, the judge and the registry adapter share it."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def sha256_file(path: str | Path) -> str:
    """The sha256 hex digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def manifest(root: str | Path) -> list[tuple[str, str]]:
    """(relative path, sha256) of every file under ``root``, sorted by path; a symbolic
    link is listed by its target (``link:<target>``), never followed."""
    root = Path(root)
    if root.is_file():
        return [(root.name, sha256_file(root))]
    out = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(folder, d))]:
            path = Path(folder) / name
            rel = path.relative_to(root).as_posix()
            out.append((rel, f"link:{os.readlink(path)}" if path.is_symlink()
                        else sha256_file(path)))
    return sorted(out)


def model_sha256(root: str | Path) -> str:
    """One digest over a model's files: sha256 of the lines ``<sha256>  <path>\\n`` of its
    sorted manifest (the format of ``sha256sum``), so a changed, added, removed or renamed
    file changes it, and the same files downloaded anywhere give the same digest."""
    lines = "".join(f"{digest}  {rel}\n" for rel, digest in manifest(root))
    return hashlib.sha256(lines.encode()).hexdigest()
