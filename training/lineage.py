"""Code lineage from git (gitpython): commit, branch, dirty flag, remote."""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)


def git_lineage(path: str | Path = ".") -> dict[str, str]:
    """Tags describing the checkout at ``path``; a warning and ``{}`` outside one."""
    try:
        import git

        repo = git.Repo(path, search_parent_directories=True)
        commit = repo.head.commit.hexsha
    except Exception as exc:  # not a checkout, no commits yet, git missing
        log.warning("no git lineage: %s is not inside a git checkout with commits (%s)",
                    Path(path).resolve(), type(exc).__name__)
        return {}
    try:
        branch = repo.active_branch.name
    except TypeError:  # detached HEAD (CI checkouts)
        branch = "(detached)"
    remote = next((r.url for r in repo.remotes), "")
    return {"git.commit": commit, "git.branch": branch,
            "git.dirty": str(repo.is_dirty(untracked_files=False)).lower(),
            "git.remote": _strip_credentials(remote),
            "mlflow.source.git.commit": commit}


def _strip_credentials(url: str) -> str:
    """https://user:token@host/x.git -> https://host/x.git (never log a token)."""
    if "://" in url and "@" in url.split("://", 1)[1].split("/", 1)[0]:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://{rest.split('@', 1)[1]}"
    return url
