import logging

import git

from training.lineage import git_lineage


def test_outside_a_checkout_there_is_a_warning_not_a_crash(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        assert git_lineage(tmp_path, environ={}) == {}
    assert "not inside a git checkout" in caplog.text and "PODIUM_GIT_COMMIT is unset" \
        in caplog.text


def test_outside_a_checkout_the_commit_baked_into_the_image_is_the_lineage(tmp_path):
    sha = "0123456789abcdef0123456789abcdef01234567"
    tags = git_lineage(tmp_path, environ={"PODIUM_GIT_COMMIT": sha.upper(),
                                          "PODIUM_GIT_BRANCH": "release/1.4",
                                          "PODIUM_GIT_REMOTE": "https://u:tok@git.example/a.git"})
    assert tags == {"git.commit": sha, "git.branch": "release/1.4", "git.dirty": "false",
                    "git.remote": "https://git.example/a.git",
                    "mlflow.source.git.commit": sha}
    assert git_lineage(tmp_path, environ={"CI_COMMIT_SHA": sha})["git.branch"] == "(unknown)"


def test_a_baked_commit_that_is_not_a_commit_is_refused_with_a_warning(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        assert git_lineage(tmp_path, environ={"PODIUM_GIT_COMMIT": "latest"}) == {}
    assert "PODIUM_GIT_COMMIT='latest' is not a 40-hex commit" in caplog.text


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
