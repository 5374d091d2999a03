"""Live evidence on real MLflow models: `podium score` scores the champion and, in shadow,
the version the policy's shadow alias names, on the same rows; only the champion's scores
reach the output, both are logged with their version and role; `podium labels` gives each
version its own outcome row; `podium monitor` shows the shadow against the champion. Promotion
on live evidence (`comparison.live`): the request puts its version on the shadow alias in
MLflow and the live look promotes or rejects it (the version leaves the alias, the champion
alias and tags follow). The whole live path on real models (the waiting version scored in
shadow by `podium score`'s code, its own outcomes loaded in batches, the scheduler's look,
promoted) is `podium demo`'s step 9, asserted in tests/integration/test_demo.py."""

import json

import pandas as pd
import pytest

from tests.support.podium_runs import cli
from training.data import generate

MLFLOW_SEED = "churn-wf"  # the trained versions of tests/support/workflow_versions.py
pytestmark = pytest.mark.integration
M = "churn-wf"


@pytest.fixture(scope="module")
def shadowed(versions, mlflow_server, tmp_path_factory):
    """v1 champion, v3 on the challenger alias; a policy that shadows the challenger on
    half of the rows; 4,000 customers scored once."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_server.url, registry_uri=mlflow_server.url)
    client.set_registered_model_alias(M, "champion", versions["v1"])
    client.set_registered_model_alias(M, "challenger", versions["v3"])
    work = tmp_path_factory.mktemp("live")
    (work / "podium.yaml").write_text(
        f"models:\n  {M}:\n    shadow: {{aliases: [challenger, missing], max_share: 0.5}}\n")
    raw, _ = generate(4000, seed=30)
    raw.drop(columns=["Churn"]).to_csv(work / "in.csv", index=False)
    env = {"MLFLOW_TRACKING_URI": mlflow_server.url, "PODIUM_POLICY": str(work / "podium.yaml"),
           "PODIUM_DATABASE_URL": f"sqlite:///{work / 'podium.db'}",
           "PODIUM_INFERENCE_LOG": str(work / "log")}
    scored = cli(env, "score", "--model-uri", f"models:/{M}@champion", "--input",
                 str(work / "in.csv"), "--output", str(work / "out.csv"), "--json")
    assert scored.returncode == 0, scored.stderr[-3000:]
    return {"env": env, "work": work, "raw": raw, "report": json.loads(scored.stdout),
            "stderr": scored.stderr, "v1": versions["v1"], "v3": versions["v3"]}


def test_only_the_champions_scores_are_written_and_both_are_logged_with_their_role(shadowed):
    from training.inference_log import read_predictions

    report, work, raw = shadowed["report"], shadowed["work"], shadowed["raw"]
    out = pd.read_csv(work / "out.csv")
    assert set(out["model_version"]) == {f"{M}/{shadowed['v1']}"} and len(out) == 4000
    logged = read_predictions(str(work / "log"), M).to_pandas()
    champion = logged[logged["version"] == str(shadowed["v1"])]
    shadow = logged[logged["version"] == str(shadowed["v3"])]
    assert set(champion["role"]) == {"champion"} and len(champion) == 4000
    assert set(shadow["role"]) == {"shadow"}
    assert 1700 < len(shadow) < 2300  # max_share 0.5 of the rows, by id hash
    assert set(shadow["customer_id"]) <= set(raw["customerID"])
    # the shadow's scores are its own (another model), on rows the champion also scored
    both = champion.merge(shadow, on="customer_id", suffixes=("_c", "_s"))
    assert len(both) == len(shadow) and (both["score_c"] != both["score_s"]).mean() > 0.9
    assert [(s["alias"], s["version"], s.get("rows")) for s in report["shadows"]] == [
        ("challenger", str(shadowed["v3"]), len(shadow)), ("missing", None, None)]
    assert report["shadows"][1]["skipped"] == \
        f"alias 'missing' names no version of {M}: nothing to shadow"
    assert report["rows_per_s_without_shadows"] >= report["rows_per_s"] > 0


def test_the_same_ids_are_shadowed_every_run(shadowed):
    from training.score import sampled

    ids = shadowed["raw"]["customerID"]
    assert (sampled(ids, 0.5) == sampled(ids.copy(), 0.5)).all()
    assert sampled(ids, 1.0).all() and 0 < sampled(ids, 0.01).sum() < 100


def test_each_version_gets_its_own_outcome_and_monitor_compares_them(shadowed):
    env, work, raw = shadowed["env"], shadowed["work"], shadowed["raw"]
    raw[["customerID", "Churn"]].to_csv(work / "outcomes.csv", index=False)
    first = cli(env, "labels", "--model", M, "--input", str(work / "outcomes.csv"), "--json")
    assert first.returncode == 0, first.stderr[-2000:]
    loaded = json.loads(first.stdout)
    shadow_rows = shadowed["report"]["shadows"][0]["rows"]
    assert (loaded["rows"], loaded["joined"], loaded["new"]) == \
        (4000, 4000 + shadow_rows, 4000 + shadow_rows)
    again = json.loads(cli(env, "labels", "--model", M, "--input",
                           str(work / "outcomes.csv"), "--json").stdout)
    assert (again["joined"], again["new"]) == (4000 + shadow_rows, 0)
    monitor = cli(env, "monitor", "--model", M, "--json")
    live = json.loads(monitor.stdout)["live"]
    assert [(r["shadow_version"], r["champion_version"], r["pairs"]) for r in live] == [
        (str(shadowed["v3"]), str(shadowed["v1"]), shadow_rows)]
    assert live[0]["auc_shadow"] > live[0]["auc_champion"]  # v3 is the better model
    assert live[0]["lower"] < live[0]["delta"] < live[0]["upper"]


def test_a_shadow_runs_in_a_sandbox_never_in_the_scoring_process(shadowed, tmp_path):
    """A challenger nobody checked yet is scored in shadow: its code runs in a sandbox of its
    own. A snooping one writes nothing on this machine and the champion's output is whole."""
    import mlflow

    from tests.support import hostile_model as hm

    env, work = shadowed["env"], shadowed["work"]
    url = env["MLFLOW_TRACKING_URI"]
    planted = tmp_path / "planted-by-the-shadow"
    signature = mlflow.models.get_model_info(f"models:/{M}/{shadowed['v1']}").signature
    info = hm.log(url, M, hm.HostileModel("snoop", host_path=str(planted), tag="shadow",
                                          store=str(work / "podium.db"), raise_every=0),
                  signature=signature)
    from mlflow import MlflowClient

    MlflowClient(tracking_uri=url, registry_uri=url).set_registered_model_alias(
        M, "challenger", str(info.registered_model_version))
    scored = cli(env, "score", "--model-uri", f"models:/{M}@champion", "--input",
                 str(work / "in.csv"), "--output", str(tmp_path / "out.csv"), "--json")
    assert scored.returncode == 0, scored.stderr[-3000:]
    report = json.loads(scored.stdout)
    assert report["shadows"][0]["version"] == str(info.registered_model_version)
    assert len(pd.read_csv(tmp_path / "out.csv")) == 4000
    assert not planted.exists()  # in this process it would have written it


def test_the_former_champion_is_shadowed_once_it_is_replaced(shadowed, versions, tmp_path):
    """``monitoring.shadow_former``: the ledger says v1 replaced v2 as champion; `podium score`
    scores v2 in shadow (no alias names it), logged with role shadow, never written out."""
    from training.inference_log import read_predictions
    from webhook_server.store import ledger
    from webhook_server.store.db import Store

    v1, v2 = str(shadowed["v1"]), str(versions["v2"])
    (tmp_path / "podium.yaml").write_text(
        f"models:\n  {M}:\n    monitoring: {{shadow_former: true}}\n")
    env = {**shadowed["env"], "PODIUM_POLICY": str(tmp_path / "podium.yaml"),
           "PODIUM_DATABASE_URL": f"sqlite:///{tmp_path / 'podium.db'}",
           "PODIUM_INFERENCE_LOG": str(tmp_path / "log")}
    store = Store(env["PODIUM_DATABASE_URL"])
    store.migrate()
    with store.tx() as conn:
        for before, after in ((None, v2), (v2, v1)):
            ledger.record(conn, model=M, alias="champion", from_version=before,
                          to_version=after, kind="promote", actor="policy")
    store.dispose()
    scored = cli(env, "score", "--model-uri", f"models:/{M}@champion", "--input",
                 str(shadowed["work"] / "in.csv"), "--output", str(tmp_path / "out.csv"),
                 "--json")
    assert scored.returncode == 0, scored.stderr[-3000:]
    assert f"shadow former: version {v2}, max_share 1" in scored.stderr
    assert [(s["alias"], s["version"], s.get("rows")) for s in
            json.loads(scored.stdout)["shadows"]] == [("former", v2, 4000)]
    assert set(pd.read_csv(tmp_path / "out.csv")["model_version"]) == {f"{M}/{v1}"}
    logged = read_predictions(str(tmp_path / "log"), M).to_pandas()
    assert sorted(set(zip(logged["version"], logged["role"], strict=True))) == sorted(
        [(v1, "champion"), (v2, "shadow")])


# --- promotion on live evidence (comparison.live) on a real MLflow registry --------------------

def _live_service(mlflow_server, tmp_path, versions, shadow="[challenger]"):
    """v1 champion (in MLflow and the ledger), no challenger alias; a policy that makes
    Production requests of M wait for 300 labelled pairs; the checks and the holdout
    comparison pass (the registry and the live gate are the real ones)."""
    import functools

    from mlflow import MlflowClient

    from tests.support.registry import comparison, passing
    from tests.support.settings import make_settings
    from webhook_server.monitoring.live import live_comparison
    from webhook_server.service.services import build
    from webhook_server.store import ledger
    from webhook_server.workflow import Gates

    client = MlflowClient(tracking_uri=mlflow_server.url, registry_uri=mlflow_server.url)
    client.set_registered_model_alias(M, "champion", versions["v1"])
    client.delete_registered_model_alias(M, "challenger")
    policy = tmp_path / "podium.yaml"
    policy.write_text(f"models:\n  {M}:\n    shadow: {shadow}\n    comparison:\n"
                      "      live: {min_pairs: 300, max_days: 30}\n")
    svc = build(make_settings(f"sqlite:///{tmp_path / 'p.db'}",
                              mlflow_tracking_uri=mlflow_server.url, policy_path=str(policy)))
    svc.store.migrate()
    with svc.store.tx() as conn:
        ledger.record(conn, model=M, alias="champion", from_version=None,
                      to_version=versions["v1"], kind=ledger.PROMOTE, actor="policy")
    workflow = svc.use_gates(Gates(check=passing, compare=lambda m, c, k: comparison(c, k),
                                   live=functools.partial(live_comparison, svc.store)))
    return svc, workflow, client


def _labels(svc, versions, delta: float) -> None:
    import numpy as np

    from model_tests.simulation import pair
    from webhook_server.store import monitoring as rows

    y, s, c = pair(1500, 0.80, delta, 0.8, np.random.default_rng(7))
    when = pd.Timestamp.now(tz="UTC").to_pydatetime()  # after the request entered shadowing
    with svc.store.tx() as conn:
        for v, scores in ((versions["v1"], c), (versions["v3"], s)):
            batch = "live" if v == versions["v1"] else f"live-v{v}"  # scored beside v1's
            rows.add_labels(conn, [{"model": M, "version": v, "batch_id": batch,
                                    "customer_id": f"c{i}", "churn": int(y[i]),
                                    "score": float(scores[i]), "scored_at": when,
                                    "observed_at": when, "outcome": ""} for i in range(1500)])


def _run(workflow, rid: int, step: str) -> None:
    from webhook_server.jobs.queue import Job

    workflow.handle(Job(1, f"request:{rid}:{step}", "request", {"request_id": rid}, 1, 6, "t"))


def _state(svc, rid: int):
    from webhook_server.store import transition_requests as reqs

    with svc.store.read() as conn:
        return reqs.get(conn, rid)


@pytest.mark.parametrize("delta, final", [(0.10, "promoted"), (-0.10, "rejected")])
def test_a_version_waits_on_the_shadow_alias_in_mlflow_until_live_outcomes_decide(
        versions, mlflow_server, tmp_path, delta, final):
    from tests.support.podium_runs import tags_when
    from webhook_server.intake.events import TransitionRequested
    from webhook_server.intake.sources import Delivery

    svc, workflow, client = _live_service(mlflow_server, tmp_path, versions)
    try:
        rid = svc.intake.record(Delivery("api", f"live-{final}", "api.request", "{}",
                                         TransitionRequested(M, versions["v3"], "Production",
                                                             "api"))).request_id
        _run(workflow, rid, "first")
        assert _state(svc, rid).state == "shadowing"
        assert client.get_model_version_by_alias(M, "challenger").version == versions["v3"]
        assert client.get_model_version_by_alias(M, "champion").version == versions["v1"]
        assert tags_when(client, M, versions["v3"], "shadowing")
        _labels(svc, versions, delta)
        assert workflow.check_shadowing(60, now=60.0) == [rid]
        _run(workflow, rid, "live-1")
        req = _state(svc, rid)
        assert req.state == final, req.reason
        assert req.evidence_json()["live"]["pairs"] == 1500
        champion = versions["v3"] if final == "promoted" else versions["v1"]
        assert client.get_model_version_by_alias(M, "champion").version == champion
        aliases = client.get_registered_model(M).aliases
        assert "challenger" not in aliases  # the version left the shadow alias
        assert tags_when(client, M, versions["v3"], final)["podium.reason"]
        if final == "promoted":
            assert tags_when(client, M, versions["v1"], "archived")
    finally:
        client.set_registered_model_alias(M, "champion", versions["v1"])
        svc.close()
