"""The pipeline's policy job (ci/policy.sh) end to end: a merge request's changed policy is
replayed on the decisions of a store (bundles on disk), posted through the real
python-gitlab client to a fake GitLab as one note edited in place on the next push, and an
invalid policy fails the job with its problem and posts nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.bundles import decided, scores
from tests.support.settings import make_settings
from webhook_server.dev.fakes.gitlab import FakeGitLab

ROOT = Path(__file__).parents[3]
OLD = ("default:\n  checks: {slice_columns: [Contract], slice_roc_auc: 0.5, "
       "slice_gap: 0.5}\n")


def _git(repo, *args):
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
                        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"})


@pytest.fixture
def repo(tmp_path):
    """A project whose main branch has the old policy."""
    repo = tmp_path / "project"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    (repo / "podium.yaml").write_text(OLD)
    _git(repo, "add", "podium.yaml")
    _git(repo, "commit", "-q", "-m", "policy")
    return repo


def _job(repo, fake, url, text):
    (repo / "podium.yaml").write_text(text)  # the merge request's version
    env = {**os.environ, "PYTHON": sys.executable, "PODIUM_POLICY_FILE":
           str(repo / "podium.yaml"), "PODIUM_POLICY_REPO": str(repo),
           "PODIUM_TARGET_REF": "main", "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
           "CI_MERGE_REQUEST_IID": "9", "GITLAB_URL": fake.url, "GITLAB_TOKEN": "glpat-t",
           "GITLAB_PROJECT_ID": "42", "PODIUM_DATABASE_URL": url,
           "MLFLOW_TRACKING_URI": "http://127.0.0.1:9"}
    return subprocess.run(["bash", str(ROOT / "ci/policy.sh")], capture_output=True,
                          text=True, timeout=300, env=env)


def test_the_policy_job_posts_the_diff_once_edits_it_and_fails_on_an_invalid_policy(
        repo, make_svc, sqlite_url, tmp_path):
    svc = make_svc(make_settings(sqlite_url))
    y, c, k, contract = scores(gain=0.5)
    decided(svc, tmp_path / "won", y=y, challenger=c, champion=k, contract=contract)
    with FakeGitLab(token="glpat-t", project_id="42", merge_requests=(9,)) as fake:
        floor = _job(repo, fake, sqlite_url, OLD.replace("slice_gap: 0.5", "slice_gap: 0.5, "
                                                                           "roc_auc: 0.99"))
        first = [n["body"] for n in fake.notes[9]]
        alpha = _job(repo, fake, sqlite_url, OLD + "  comparison: {alpha: 0.2}\n")
        second = [n["body"] for n in fake.notes[9]]
        invalid = _job(repo, fake, sqlite_url, OLD + "  comparison: {alpha: 2}\n")
        third = [n["body"] for n in fake.notes[9]]
    assert floor.returncode == 0, floor.stdout + floor.stderr
    assert "1 of 1 decision(s) would change." in floor.stdout
    assert len(first) == 1 and "| promote | **reject** | check roc_auc" in first[0]
    assert alpha.returncode == 0 and "posted" not in alpha.stderr
    assert len(second) == 1 and "0 of 1 decision(s) would change." in second[0]
    assert invalid.returncode == 1
    assert "default.comparison.alpha" in invalid.stdout
    assert third == second  # nothing posted for a policy that does not validate
