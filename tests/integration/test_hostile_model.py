"""Hostile challengers against the real gates, with a real MLflow server: a good champion
trained with ``training.train`` and challengers from ``tests/support/hostile_model.py``
logged as real pyfuncs. The gates download them and run them in sandboxes
(``model_tests/gates.py``) with the secrets of a worker in the environment.

- the poisoning challenger cannot change the champion's scores: the comparison's champion
  side is what the champion scores in this process;
- the snooping challenger reads nothing, inserts nothing, reaches nothing (MLflow,
  PostgreSQL, the store) and leaves no secret in its sandbox's stderr or its failure reasons;
- through ``podium serve`` (the worker's own sandboxes), a snooping challenger's request ends
  with a clear reason, is never promoted, and no secret reaches the store, the version's
  tags or the service's log.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import sqlite3
import uuid
from pathlib import Path
from urllib.parse import urlparse

import mlflow
import numpy as np
import pytest
import requests

from model_tests.compare import compare
from model_tests.config import JudgeConfig
from model_tests.gates import SandboxGates
from model_tests.holdout import resolve
from model_tests.sandbox import Limits, SandboxPool, detect
from tests.support import hostile_model as hm
from tests.support.podium_runs import api
from tests.support.settings import API_TOKEN
from tests.support.waiting import wait_for
from training import data as churn_data
from training.train import Dataset, TrainConfig, train

pytestmark = pytest.mark.integration
MODEST = {"num_leaves": 3, "learning_rate": 0.1, "n_estimators": 15, "min_child_samples": 100}
SECRETS = {
    "GITHUB_TOKEN": "ghp-hostile-4e1d09",
    "AWS_SECRET_ACCESS_KEY": "aws-secret-77b3c1",
    "OPENAI_API_KEY": "sk-openai-0f9e2a",
    "MLFLOW_TRACKING_USERNAME": "podium",
    "MLFLOW_TRACKING_PASSWORD": "mlflow-pw-c4a871",
}
LEAKS = ("ghp-hostile-4e1d09", "aws-secret-77b3c1", "sk-openai-0f9e2a", "mlflow-pw-c4a871",
         API_TOKEN)

# the loot a failing snoop reports in its error message (raw, or escaped inside JSON)
FOUND_NOTHING = re.compile(r'found\\*": \{\}')


def leaked(*texts: str) -> list[str]:
    return [s for s in LEAKS if any(s in t for t in texts)]


def sqlite_path(url: str) -> Path:
    return Path(url.removeprefix("sqlite:///"))


def table_rows(path: Path) -> dict[str, int]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]  # noqa: S608
                for t in tables}


def dump(path: Path) -> str:
    """Every row of every table, as text (and the raw file: a secret in a blob counts)."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        text = "\n".join(conn.iterdump())
    return text + path.read_bytes().decode(errors="replace")


@pytest.fixture(scope="module")
def registry(mlflow_server, tmp_path_factory):
    """The champion (trained, small), the holdout Podium judges on (pinned), and the name."""
    name = f"hostile-{uuid.uuid4().hex[:8]}"
    champion = train(Dataset.synthetic(2000, 3),
                     TrainConfig(model_name=name, params=MODEST, seed=3, trials=1),
                     tracking_uri=mlflow_server.url)
    raw, _ = churn_data.generate(600, seed=11)
    holdout = tmp_path_factory.mktemp("holdout") / "holdout.csv"
    raw.to_csv(holdout, index=False)
    sha = hashlib.sha256(holdout.read_bytes()).hexdigest()
    signature = mlflow.models.get_model_info(f"models:/{name}/{champion.version}").signature
    return {"name": name, "champion": champion.version, "holdout": str(holdout), "sha": sha,
            "signature": signature, "url": mlflow_server.url}


def log_hostile(registry, model: hm.HostileModel) -> str:
    info = hm.log(registry["url"], registry["name"], model, signature=registry["signature"])
    return str(info.registered_model_version)


@pytest.fixture
def secrets(monkeypatch):
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    return SECRETS


class KeptPool(SandboxPool):
    """The worker's pool, keeping each sandbox's stderr before it is removed."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.stderr: list[str] = []

    def _start(self):
        sandbox = super()._start()
        remove = sandbox.remove

        def keep_then_remove() -> None:
            sandbox.close()
            with contextlib.suppress(OSError):
                self.stderr.append(sandbox.stderr_path.read_text(errors="replace"))
            remove()
        sandbox.remove = keep_then_remove
        return sandbox


@pytest.fixture
def gates(registry, secrets):
    """The service's gates, started with the secrets in the environment (as in a worker)."""
    isolation = detect("auto")
    if isolation.level != "bwrap":
        pytest.skip(f"these checks are of the bubblewrap sandbox: {isolation.why}")
    pool = KeptPool(isolation, Limits(memory_mb=4096, timeout_s=120), spares=1)
    config = JudgeConfig(holdout=registry["holdout"], holdout_sha256=registry["sha"])
    pool.warm()
    yield SandboxGates(pool, lambda name: config, tracking_uri=registry["url"])
    pool.close()


def test_a_poisoning_challenger_cannot_change_the_champions_comparison_scores(registry,
                                                                                gates):
    name, champion = registry["name"], registry["champion"]
    tag = uuid.uuid4().hex[:10]
    poison = log_hostile(registry, hm.HostileModel("poison", tag=tag))

    scored = {}
    score = gates._score  # what each sandbox answered, as the comparison got it

    def keep(info, label, holdout, cfg):
        scored[label] = score(info, label, holdout, cfg)
        return scored[label]
    gates._score = keep
    result = gates.compare(name, poison, champion)  # both models score at once
    gates.release()

    # the champion scored here, by Podium's own reading of the same pinned holdout
    holdout = resolve(registry["holdout"], registry["sha"])
    direct = np.asarray(mlflow.pyfunc.load_model(f"models:/{name}/{champion}")
                        .predict(holdout.frame))[:, 1]
    assert sorted(scored) == [f"the challenger v{poison}", f"the champion v{champion}"]
    np.testing.assert_array_equal(scored[f"the champion v{champion}"], direct)
    np.testing.assert_array_equal(scored[f"the challenger v{poison}"], 0.99)
    expected = compare(holdout.labels, np.full(len(holdout.labels), 0.99), direct,
                       challenger_version=poison, champion_version=champion)
    assert result.champion == expected.champion  # ROC AUC, F1, precision, recall, value
    assert result.challenger.metric == 0.5 and not result.wins
    assert result.holdout["sha256"] == registry["sha"]
    # it tried, in its own sandbox: numpy and scikit-learn patched there, every write refused
    reports = [r for text in gates.pool.stderr for r in hm.reports(text)]
    assert reports and all(r["patched"] == ["numpy", "sklearn.metrics"] for r in reports)
    assert not any(ok for r in reports for ok in r["writes"].values())
    assert not list(Path("/tmp").glob(f"podium-sandbox-*/inputs/poison-{tag}"))
    assert leaked(*gates.pool.stderr) == []


def test_a_snooping_challenger_reads_and_changes_nothing(registry, gates, tmp_path,
                                                         mlflow_server):
    from webhook_server.store import Store

    store_url = f"sqlite:///{tmp_path / 'podium.db'}"
    migrated = Store(store_url)
    migrated.migrate()
    migrated.dispose()  # last connection closed: the WAL is checkpointed, the file is final
    store = sqlite_path(store_url)
    before, store_sha = table_rows(store), hashlib.sha256(store.read_bytes()).hexdigest()
    tag = uuid.uuid4().hex[:10]
    escaped = tmp_path / "escaped.txt"
    mlflow_port = urlparse(mlflow_server.url).port
    snoop = log_hostile(registry, hm.HostileModel(
        "snoop", store=str(store), ports=(mlflow_port, 5432), host_path=str(escaped),
        tag=tag, raise_every=2))

    results = gates.check(f"models:/{registry['name']}/{snoop}").results
    gates.release()

    by_name = {r.name: r for r in results}
    assert by_name["loads"].passed, by_name["loads"].reason
    assert not all(r.passed for r in results)  # it answers garbage half the time
    reports = [r for text in gates.pool.stderr for r in hm.reports(text)]
    assert [r["when"] for r in reports][:2] == ["load_context", "predict1"]
    for r in reports:
        assert r["uid"] == 65534 and r["ppid"] == 1
        assert all("/podium/sandbox_child.py" in c for c in r["cmdlines"].values())
        assert not any(c["ok"] for c in r["connect"].values()), r["connect"]
        assert not (r["store_read"]["ok"] or r["store_open_write"]["ok"]
                    or r["store_insert"]["ok"])
        assert not r["writes"][str(escaped)]["ok"]
    # what its failures said (they reach the store and the tags): it found nothing
    loot = [r.reason for r in results if "RuntimeError: loot" in r.reason]
    assert loot and all(FOUND_NOTHING.search(reason) for reason in loot), loot
    assert table_rows(store) == before
    assert hashlib.sha256(store.read_bytes()).hexdigest() == store_sha
    assert not escaped.exists() and not Path(f"/tmp/podium-hostile-{tag}").exists()
    assert leaked(*gates.pool.stderr, json.dumps([r.as_json() for r in results],
                                                  default=str)) == []


# --- through the service -----------------------------------------------------------------

def settle(server, request_id: int) -> dict:
    return wait_for(lambda: (r := api(server, f"/requests/{request_id}"))["state"]
                    in ("promoted", "rejected", "failed", "staged", "awaiting_approval")
                    and r, timeout=120, what=f"request {request_id} to settle")


def test_a_snooping_challenger_through_podium_serve_is_never_promoted_and_leaks_nothing(
        registry, podium, podium_env, mlflow_client, mlflow_server, tmp_path):
    if detect("auto").level != "bwrap":
        pytest.skip(f"podium serve would not use bubblewrap here: {detect('auto').why}")
    name, champion = registry["name"], registry["champion"]
    mlflow_client.set_registered_model_alias(name, "champion", champion)
    policy = tmp_path / "podium.yaml"
    policy.write_text(f"default:\n  holdout: {registry['holdout']}\n"
                      f"  holdout_sha256: {registry['sha']}\n")
    store = sqlite_path(podium_env["PODIUM_DATABASE_URL"])
    tag = uuid.uuid4().hex[:10]
    escaped = tmp_path / "escaped.txt"
    server = podium(PODIUM_POLICY=str(policy), PODIUM_SANDBOX_SPARES="1", **SECRETS)
    snoop = log_hostile(registry, hm.HostileModel(
        "snoop", store=str(store), host_path=str(escaped), tag=tag, raise_every=2,
        ports=(urlparse(mlflow_server.url).port, urlparse(server.url).port, 5432)))

    resp = requests.post(f"{server.url}/api/v1/requests", timeout=10,
                         headers={"Authorization": f"Bearer {API_TOKEN}"},
                         json={"model": name, "version": snoop, "target": "Production"})
    assert resp.status_code == 201, resp.text
    request_id = resp.json()["request_id"]
    done = settle(server, request_id)

    assert done["state"] in ("rejected", "failed") and done["reason"], done
    assert mlflow_client.get_model_version_by_alias(name, "champion").version == champion
    tags = wait_for(lambda: (t := mlflow_client.get_model_version(name, snoop).tags)
                    .get("podium.status") == done["state"] and t, what="the version's tags")
    with contextlib.closing(sqlite3.connect(store)) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        approvals = [t for t in tables if "approval" in t]
        assert all(conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] == 0  # noqa: S608
                   for t in approvals)
    text = dump(store)
    assert "RuntimeError: loot" in text and FOUND_NOTHING.search(text)  # it ran, found nothing
    assert leaked(text, json.dumps(tags), json.dumps(done), server.log_path.read_text(
        errors="replace")) == []
    assert not escaped.exists() and not Path(f"/tmp/podium-hostile-{tag}").exists()
