"""The live comparison: a shadow and the champion on the outcomes both predicted (pairs by
customer and outcome, never by customer alone), DeLong's difference with the always-valid
interval, the power and the pairs needed; `podium monitor` shows one per shadow."""

import json
from datetime import UTC, datetime

import numpy as np
from click.testing import CliRunner

from model_tests.simulation import pair
from podium_policy.schema import ModelPolicy
from webhook_server.monitoring.live import live_comparison, live_comparisons, live_table
from webhook_server.store import monitoring as rows

WHEN = datetime(2026, 6, 2, 9, tzinfo=UTC)


def shadow_run(store, n: int, delta: float, *, seed: int, champion="3", shadow="4",
               extra_champion: int = 0, at: datetime = WHEN, run: str = "b") -> tuple:
    """A champion batch and a shadow batch on the same ``n`` customers, each with its
    labels (one per version and outcome); ``extra_champion`` more customers only the
    champion scored (outside the shadow's share)."""
    y, s, c = pair(n + extra_champion, 0.84, delta, 0.8, np.random.default_rng(seed))
    with store.tx() as conn:
        for version, role, scores, count in ((champion, "champion", c, n + extra_champion),
                                             (shadow, "shadow", s, n)):
            batch = run if role == "champion" else f"{run}-v{version}"  # scored beside it
            rows.record_batch(conn, {"batch_id": batch, "model": "churn", "version": version,
                                     "scored_at": at, "rows": count, "mean_score": 0.3,
                                     "flagged": 1, "threshold": 0.5, "deciles": None,
                                     "histogram": [0] * 10, "path": "x", "role": role})
            rows.add_labels(conn, [{"model": "churn", "version": version, "batch_id": batch,
                                    "customer_id": f"{run}c{i}", "churn": int(y[i]),
                                    "score": float(scores[i]), "scored_at": at,
                                    "observed_at": at, "outcome": ""}
                                   for i in range(count)])
    return y[:n], s[:n], c[:n]


def test_a_clearly_better_shadow_is_found_on_the_pairs_both_predicted(svc):
    from model_tests.stats import delong

    y, s, c = shadow_run(svc.store, 3000, 0.06, seed=1, extra_champion=500)
    live = live_comparison(svc.store, "churn", "4", "3", ModelPolicy())
    assert (live.pairs, live.churners) == (3000, int(y.sum()))  # not the champion's 3,500
    auc_s, auc_c, _ = delong(y, s, c)
    assert abs(live.auc_shadow - auc_s) < 1e-9 and abs(live.auc_champion - auc_c) < 1e-9
    assert live.lower > 0 and live.verdict == "better"
    assert live.lower < live.fixed_lower  # always valid costs width
    assert 0 < live.power <= 1 and live.pairs_needed > 0


def test_an_equal_shadow_is_undecided_and_too_few_pairs_give_no_figures(svc):
    shadow_run(svc.store, 400, 0.0, seed=2)
    live = live_comparison(svc.store, "churn", "4", "3", ModelPolicy())
    assert live.verdict == "undecided" and live.lower < 0 < live.upper
    none = live_comparison(svc.store, "churn", "9", "3", ModelPolicy())
    assert (none.pairs, none.verdict, none.delta) == (0, "too few pairs", None)


def test_only_predictions_scored_beside_the_champions_in_one_run_are_paired(svc):
    """The shadow's prediction of an outcome is paired with the champion's of the same run
    (its batch: the champion's, ``-v<version>``), never with one of another run: a version
    scored on its own (role champion, any input, any time) or the champion scored alone
    later judge nothing against each other."""
    y, s, c = shadow_run(svc.store, 400, 0.0, seed=5)
    forged = 0.9 * y + 0.05  # what a run of v4's own, on a chosen input, may log
    with svc.store.tx() as conn:
        rows.record_batch(conn, {"batch_id": "solo", "model": "churn", "version": "4",
                                 "scored_at": WHEN, "rows": 400, "mean_score": 0.3,
                                 "flagged": 1, "threshold": 0.5, "deciles": None,
                                 "histogram": [0] * 10, "path": "x", "role": "champion"})
        rows.add_labels(conn, [{"model": "churn", "version": "4", "batch_id": "solo",
                                "customer_id": f"c{i}", "churn": int(y[i]),
                                "score": float(forged[i]), "scored_at": WHEN,
                                "observed_at": WHEN, "outcome": "2026-06-03T00:00:00Z"}
                               for i in range(400)])
        rows.add_labels(conn, [{"model": "churn", "version": "3", "batch_id": "later",
                                "customer_id": f"c{i}", "churn": int(y[i]),
                                "score": float(c[i]), "scored_at": WHEN,
                                "observed_at": WHEN, "outcome": "2026-06-03T00:00:00Z"}
                               for i in range(400)])
    live = live_comparison(svc.store, "churn", "4", "3", ModelPolicy())
    assert (live.pairs, live.verdict) == (400, "undecided")  # the run's pairs only


def test_each_shadow_version_is_compared_with_the_latest_champion(svc):
    shadow_run(svc.store, 300, 0.0, seed=3)
    found = live_comparisons(svc.store, "churn", ModelPolicy())
    assert [(r.shadow_version, r.champion_version, r.pairs) for r in found] == [("4", "3", 300)]
    assert live_comparisons(svc.store, "fraud", ModelPolicy()) == []


def test_the_ledgers_champion_is_the_reference_once_it_has_moved(svc):
    """v4 was promoted after the last batch (logged with v3 as champion): the live table
    compares the shadows with v4, the champion now, not with the batch's v3."""
    from webhook_server.store import ledger

    shadow_run(svc.store, 300, 0.0, seed=3)
    shadow_run(svc.store, 300, 0.0, seed=4, champion="3", shadow="2")
    with svc.store.tx() as conn:
        ledger.record(conn, model="churn", alias="champion", from_version="3",
                      to_version="4", kind="promote", actor="policy")
    found = live_comparisons(svc.store, "churn", ModelPolicy())
    assert [(r.shadow_version, r.champion_version) for r in found] == [("2", "4")]


def test_podium_monitor_shows_the_live_comparison(sqlite_url, tmp_path):
    from webhook_server.cli import main
    from webhook_server.store import Store

    store = Store(sqlite_url)
    store.migrate()
    shadow_run(store, 3000, 0.06, seed=1)
    store.dispose()
    policy = tmp_path / "podium.yaml"
    policy.write_text("default:\n  shadow: {aliases: [challenger], effect: 0.03}\n")
    env = {"PODIUM_DATABASE_URL": sqlite_url, "PODIUM_POLICY": str(policy)}
    out = CliRunner().invoke(main, ["monitor", "--model", "churn"], env=env)
    assert "live evidence" in out.stdout and "power for +0.03 AUC" in out.stdout
    assert "v4 vs v3" in out.stdout and "3,000" in out.stdout and "better" in out.stdout
    data = json.loads(CliRunner().invoke(main, ["monitor", "--model", "churn", "--json"],
                                         env=env).stdout)
    assert [(r["shadow_version"], r["pairs"], r["verdict"], r["effect"])
            for r in data["live"]] == [("4", 3000, "better", 0.03)]


def test_a_version_waiting_in_shadowing_is_shown_on_its_requests_pairs(svc):
    """`podium monitor` shows a version with a request in shadowing on the pairs that request's
    looks judge (predicted since it entered), not every pair ever logged, and says so."""
    from webhook_server.store import states
    from webhook_server.store import transition_requests as reqs

    shadow_run(svc.store, 600, 0.0, seed=5)  # June: before the request
    with svc.store.tx() as conn:
        rid = reqs.create(conn, model="churn", version="4", target="Production",
                          raw_target="Production", origin="tag", state=states.QUEUED)
        assert reqs.transition(conn, rid, expect=(states.QUEUED,), to=states.SHADOWING,
                               actor="worker")
    shadow_run(svc.store, 300, 0.0, seed=6, at=datetime.now(UTC), run="later")
    (found,) = live_comparisons(svc.store, "churn", ModelPolicy())
    assert (found.shadow_version, found.pairs, found.request_id) == ("4", 300, rid)
    assert found.since is not None and found.as_json()["request_id"] == rid
    assert f"request {rid} (since " in live_table([found])
    everything = live_comparison(svc.store, "churn", "4", "3", ModelPolicy())
    assert (everything.pairs, everything.request_id) == (900, None)


def test_without_a_known_champion_decay_never_judges_a_version_only_shadowed(svc):
    """No promotion in the ledger: the decay rule falls back to the newest labelled version,
    but a shadow (v4, newer) is not the model in production."""
    from webhook_server.monitoring.report import build

    shadow_run(svc.store, 400, 0.0, seed=4)
    with svc.store.read() as conn:
        assert rows.shadow_only_versions(conn, "churn") == {"4"}
        report = build(conn, "churn", ModelPolicy(), holdout_of=lambda v: {
            "auc": 0.84, "precision": 0.6, "recall": 0.5, "source": "run"})
    assert {r["version"] for r in report.rows} == {"3", "4"}  # both shown
    assert report.decay["version"] == "3"
