"""Scores are numbers about immutable files: the champion is scored once per holdout, not
at every request against it; a challenger's checks leave its scores for its comparison."""

import contextvars
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from model_tests import gates as gates_module
from model_tests.config import JudgeConfig
from model_tests.context import VersionInfo
from model_tests.gates import SandboxGates
from model_tests.holdout import Holdout
from model_tests.score_cache import ScoreCache

ROWS = 400
rng = np.random.default_rng(5)
LABELS = rng.integers(0, 2, ROWS)


def info(version: str, source: str | None = None) -> VersionInfo:
    return VersionInfo("m", version, "", {}, None, [], source or f"mlflow-artifacts:/v{version}")


def holdout(sha: str) -> Holdout:
    return Holdout(pd.DataFrame({"x": np.arange(ROWS)}), LABELS, "judge.csv", sha, "policy")


@pytest.fixture
def judge(monkeypatch):
    """SandboxGates with the registry, holdout and sandboxes replaced by counters."""
    monkeypatch.setattr(gates_module, "version_info",
                        lambda uri, client=None: info(uri.rsplit("/", 1)[1]))
    g = SandboxGates(pool=None, config_for=lambda name: JudgeConfig())
    g.current = holdout("a" * 64)
    g._client = lambda: None
    g._holdout = lambda cfg, run_id: g.current
    g._overlap = lambda *args: None
    g.scored = Counter()

    def score(v, label, frame, cfg):
        g.scored[v.version] += 1
        return np.clip(LABELS * 0.6 + rng.random(ROWS) * 0.4, 0, 1)
    g._score = score
    return g


def test_the_champion_is_scored_once_for_every_comparison_on_one_holdout(judge):
    judge.compare("m", "2", "1")
    judge.compare("m", "3", "1")
    judge.compare("m", "4", "1")
    assert judge.scored == {"1": 1, "2": 1, "3": 1, "4": 1}
    assert judge.scores.hits == 2  # the champion, in the second and third comparisons
    judge.current = holdout("b" * 64)  # another judge's data: every model scored again
    judge.compare("m", "4", "1")
    assert judge.scored == {"1": 2, "2": 1, "3": 1, "4": 2}


def test_a_challengers_checked_scores_are_its_comparison_scores(judge):
    judge.scores.put(ScoreCache.key(info("2"), "a" * 64, judge._known(info("2"))),
                     np.full(ROWS, 0.5))
    result = judge.compare("m", "2", "1")
    assert judge.scored == {"1": 1}
    assert result.challenger.metric == 0.5  # the cached constant scores, not new ones


def test_the_cache_is_bounded_keyed_by_files_and_data_and_read_only():
    cache = ScoreCache(size=2)
    a, b, c = (ScoreCache.key(info(v), "s", "d" * 64) for v in "123")
    cache.put(a, [0.1])
    cache.put(b, [0.2])
    assert cache.get(a) is not None  # a is now the most recent
    cache.put(c, [0.3])
    assert cache.get(b) is None and cache.get(a) is not None and cache.get(c) is not None
    assert ScoreCache.key(info("1", "s3://elsewhere"), "s", "d" * 64) != a  # other source
    assert ScoreCache.key(info("1"), "s", "e" * 64) != a  # files overwritten: other key
    assert ScoreCache.key(info("1"), "t", "d" * 64) != a  # other holdout, other key
    with pytest.raises(ValueError):
        cache.get(a)[0] = 0.9


def test_a_comparisons_bundle_records_the_versions_it_read_without_reading_them_again(
        judge, monkeypatch, tmp_path):
    """Four MLflow calls a version: the bundle written at the end of the comparison's step
    records the versions that step compared; the next job's step reads them again."""
    reads = Counter()

    def counted(uri, client=None):
        reads[uri] += 1
        return info(uri.rsplit("/", 1)[1])
    monkeypatch.setattr(gates_module, "version_info", counted)
    judge.pool = type("Pool", (), {"warm": lambda self: None})()

    def bundle(directory):
        return judge.bundle(str(tmp_path / directory), request_id=1, model="m", version="2",
                            target="Production", champion="1", checks=[], comparison=None,
                            verdict={"state": "promoted"})
    judge.compare("m", "2", "1")
    _, doc = bundle("first")
    assert reads == {"models:/m/2": 1, "models:/m/1": 1}
    judge.release()  # the job is done: a later step reads the registry again
    bundle("second")
    assert reads == {"models:/m/2": 2, "models:/m/1": 2}


def test_the_comparisons_registry_reads_run_in_the_callers_context(judge, monkeypatch):
    """The two versions are read at once in threads of their own: with the job's context
    (its trace, its log fields), not outside it."""
    job = contextvars.ContextVar("job")
    seen = []

    def read(uri, client=None):
        seen.append((uri, job.get(None)))
        return info(uri.rsplit("/", 1)[1])
    monkeypatch.setattr(gates_module, "version_info", read)
    job.set("request 7")
    judge.compare("m", "2", "1")
    assert sorted(seen) == [("models:/m/1", "request 7"), ("models:/m/2", "request 7")]
