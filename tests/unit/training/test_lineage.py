import logging

import git

from training.lineage import git_lineage


def test_outside_a_checkout_there_is_a_warning_not_a_crash(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        assert git_lineage(tmp_path) == {}
    assert "not inside a git checkout" in caplog.text


def test_inside_a_checkout_commit_branch_dirty_and_remote_without_credentials(tmp_path):
    repo = git.Repo.init(tmp_path, initial_branch="main")
    (tmp_path / "a.txt").write_text("a")
    repo.index.add(["a.txt"])
    commit = repo.index.commit("first", author=git.Actor("t", "t@example.com"),
                               committer=git.Actor("t", "t@example.com"))
    repo.create_remote("origin", "https://ci:glpat-SECRET@gitlab.example.com/ml/churn.git")
    tags = git_lineage(tmp_path)
    assert tags["git.commit"] == commit.hexsha and tags["git.branch"] == "main"
    assert tags["git.dirty"] == "false"
    assert tags["git.remote"] == "https://gitlab.example.com/ml/churn.git"
    (tmp_path / "a.txt").write_text("changed")
    assert git_lineage(tmp_path)["git.dirty"] == "true"
