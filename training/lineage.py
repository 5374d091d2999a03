"""Code lineage from git (gitpython): commit, branch, dirty flag, remote."""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


# Outside a checkout (an installed wheel, the image) the commit comes from the environment:
# the image bakes it in at build time (--build-arg PODIUM_GIT_COMMIT=...), GitLab CI sets its own.
ENV_LINEAGE = (("PODIUM_GIT_COMMIT", "PODIUM_GIT_BRANCH", "PODIUM_GIT_REMOTE"),
               ("CI_COMMIT_SHA", "CI_COMMIT_REF_NAME", "CI_PROJECT_URL"))


def git_lineage(path: str | Path = ".", environ: dict[str, str] | None = None
                ) -> dict[str, str]:
    """Tags describing the checkout at ``path``; outside one, the commit the environment
    names (``PODIUM_GIT_COMMIT`` or GitLab's ``CI_COMMIT_SHA``); else a warning and ``{}``."""
    try:
        import git

        repo = git.Repo(path, search_parent_directories=True)
        commit = repo.head.commit.hexsha
    except Exception as exc:  # not a checkout, no commits yet, git missing
        baked = _from_environment(os.environ if environ is None else environ)
        if not baked:
            log.warning("no git lineage: %s is not inside a git checkout with commits (%s) "
                        "and PODIUM_GIT_COMMIT is unset", Path(path).resolve(),
                        type(exc).__name__)
        return baked
    try:
        branch = repo.active_branch.name
    except TypeError:  # detached HEAD (CI checkouts)
        branch = "(detached)"
    remote = next((r.url for r in repo.remotes), "")
    return {"git.commit": commit, "git.branch": branch,
            "git.dirty": str(repo.is_dirty(untracked_files=False)).lower(),
            "git.remote": _strip_credentials(remote),
            "mlflow.source.git.commit": commit}


def _from_environment(environ) -> dict[str, str]:
    for commit_key, branch_key, remote_key in ENV_LINEAGE:
        commit = environ.get(commit_key, "").strip()
        if len(commit) == 40 and all(c in "0123456789abcdef" for c in commit.lower()):
            return {"git.commit": commit.lower(),
                    "git.branch": environ.get(branch_key) or "(unknown)",
                    "git.dirty": "false",  # a build from a commit, not a working tree
                    "git.remote": _strip_credentials(environ.get(remote_key, "")),
                    "mlflow.source.git.commit": commit.lower()}
        if commit:
            log.warning("no git lineage: %s=%r is not a 40-hex commit", commit_key,
                        commit[:60])
    return {}


def _strip_credentials(url: str) -> str:
    """https://user:token@host/x.git -> https://host/x.git (never log a token)."""
    if "://" in url and "@" in url.split("://", 1)[1].split("/", 1)[0]:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://{rest.split('@', 1)[1]}"
    return url


# --- data lineage: which rows trained a model ------------------------------------------------

TRAIN_IDS = "lineage/train_ids.npy"  # the run artifact: sorted 64-bit hashes of row ids


def id_hashes(ids):
    """Sorted unique 64-bit hashes (sha256, first 8 bytes) of row ids: compact (8 bytes a
    row), and they name no customer."""
    import hashlib

    import numpy as np

    out = np.fromiter((int.from_bytes(hashlib.sha256(str(i).encode()).digest()[:8], "big")
                       for i in ids), dtype=np.uint64)
    return np.unique(out)


def overlap(holdout_ids, trained) -> int:
    """How many holdout rows are among the hashed ids a model trained on."""
    import numpy as np

    return int(np.isin(id_hashes(holdout_ids), trained, assume_unique=True).sum())
