"""``podium demo``'s live-evidence step: a second registered model, ``churn-demo-live``,
whose policy asks for live evidence (``comparison.live``) and no person. Its two versions are
the demo's first and third models again (the same runs, registered under the second name):
the first becomes its champion; the second wins the holdout comparison, and instead of moving
the champion it waits in ``shadowing`` on the ``challenger`` alias. This month's customers
are scored as ``podium score`` scores them (``demo_shadow``: the champion writes the output,
the waiting version is logged in shadow beside it), their outcomes (drawn from the data
generator's true churn probabilities: the finer model is genuinely, modestly better) arrive
in three batches, and after each one the look the scheduler would queue is queued at once
(``Workflow.check_shadowing``, the scheduler's own entry point) and run by ``podium serve``'s
worker. The always-valid interval decides only when its lower end clears zero: promoted on
live outcomes, the live figures in the evidence and the Slack message.

``say``, ``wait`` and ``error`` are the demo's (printing, waiting on the store,
``DemoError``)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from webhook_server.contract import TAG_STATUS
from webhook_server.dev.demo_shadow import score_with_shadows
from webhook_server.intake.ask import request_transition
from webhook_server.monitoring.labels import load_labels
from webhook_server.store import states
from webhook_server.store import transition_requests as reqs

LIVE_MODEL = "churn-demo-live"
# The policy section of LIVE_MODEL (the demo's policy): no approval; a Production request that
# passes the holdout waits on the challenger alias for 1,500 labelled pairs at least.
LIVE_POLICY = f"""\
  {LIVE_MODEL}:
    # a Production request that wins on the holdout waits on the challenger alias (podium
    # score logs it in shadow) until live outcomes decide; no person is asked
    shadow: [challenger]
    comparison:
      live: {{min_pairs: 1500, max_days: 30}}
"""
# 4,500 customers, their outcomes in three batches of 1,500: on these rows the finer model's
# true gain is about +0.014 ROC AUC, which the always-valid interval shows at the third look.
CUSTOMERS, SEED, BATCHES = 4500, 63, 3


def live_step(demo, first: str, better: str, *, model: str, say, wait, error) -> str:
    """``first``, ``better``: versions of ``model`` registered again under ``LIVE_MODEL``;
    the version promoted on live evidence."""
    log = demo.podium.log_path
    champion = _register(demo, model, first)
    second = _register(demo, model, better)
    say(f"registered v{first} and v{better} of {model} again as {LIVE_MODEL} v{champion} "
        f"and v{second} (the same runs); its policy: comparison.live {{min_pairs: 1500}}, "
        "shadow alias challenger, no approval")
    request_transition(demo.client, LIVE_MODEL, champion, target="Production")
    row = _decided(demo, champion, wait, log)
    if row.state != "promoted":
        raise error(f"{LIVE_MODEL} v{champion}", f"ended {row.state}: {row.reason}", log)
    say(f"tag transition_request=Production on v{champion}: no champion yet, the policy "
        f"promotes it ({row.checks})")
    request_transition(demo.client, LIVE_MODEL, second, target="Production")
    row = wait(f"{LIVE_MODEL} v{second} waiting on the shadow alias",
               lambda: _waiting(demo, second), 180, log)
    if row.state != "shadowing":
        raise error(f"{LIVE_MODEL} v{second} shadowing", f"ended {row.state}: {row.reason}",
                    log)
    say(f"tag transition_request=Production on v{second}: {row.comparison}")
    say(f"state shadowing: {row.reason}; MLflow: challenger -> "
        f"v{_aliases(demo).get('challenger')}, champion -> v{_aliases(demo).get('champion')}")
    customers, truth = _score(demo, say=say, error=error)
    row = _outcomes_and_looks(demo, row, customers, truth, say=say, wait=wait, error=error)
    row = _decided(demo, second, wait, log)
    if row.state != "promoted":
        raise error(f"{LIVE_MODEL} v{second} promoted on live evidence",
                    f"ended {row.state}: {row.reason}", log)
    wait(f"{LIVE_MODEL} v{second} tags written back",
         lambda: _tags(demo, second).get(TAG_STATUS) == "promoted", 30, log)
    live = row.evidence_json()["live"]
    say(f"promoted on live outcomes: {live['pairs']:,} labelled pairs, ROC AUC "
        f"v{second} {live['auc_shadow']:.4f} vs v{champion} {live['auc_champion']:.4f}, "
        f"difference {live['delta']:+.4f}, always-valid {1 - live['alpha']:.0%} interval "
        f"[{live['lower']:+.4f}, {live['upper']:+.4f}]")
    aliases = _aliases(demo)
    say(f"MLflow: champion -> v{aliases.get('champion')}, challenger "
        + (f"-> v{aliases['challenger']}" if "challenger" in aliases else "removed")
        + f"; v{champion} {_tags(demo, champion).get(TAG_STATUS)}")
    shown = wait("the Slack message with the live evidence",
                 lambda: _live_block(demo, second), 30, log)
    say(f"Slack, request {row.id}'s message: {shown}")
    return second


def _register(demo, model: str, version: str) -> str:
    """``version`` of ``model`` registered again under ``LIVE_MODEL``: the same run and
    files, its description and its own tags (not Podium's)."""
    client = demo.client
    mv = client.get_model_version(model, version)
    if not client.search_registered_models(f"name = '{LIVE_MODEL}'"):
        client.create_registered_model(LIVE_MODEL)
    own = {k: v for k, v in mv.tags.items()
           if not k.startswith("podium.") and k != "transition_request"}
    logged = mv.model_id or mv.source.removeprefix("models:/")  # MLflow 3: the logged model
    new = client.create_model_version(LIVE_MODEL, mv.source, run_id=mv.run_id, tags=own,
                                      description=mv.description, model_id=logged,
                                      await_creation_for=0)
    return str(new.version)


def _score(demo, *, say, error):
    """This month's customers, scored with the champion; the waiting version in shadow."""
    from training.data import TARGET, generate

    customers, truth = generate(CUSTOMERS, seed=SEED)
    src, dst = demo.workdir / "customers-live.csv", demo.workdir / "scored-live.csv"
    customers.drop(columns=[TARGET]).to_csv(src, index=False)
    scored = score_with_shadows(demo, LIVE_MODEL, src, dst, str(demo.workdir / "inference-log"),
                                former=False, say=say, error=error)
    shadows = scored.scored()
    if not shadows:
        raise error("podium score", "the waiting version was not scored in shadow")
    say(f"podium score: {scored.logged['rows']:,} customers scored by {scored.version} (the "
        f"output); v{shadows[0].version} on alias {shadows[0].alias}, in a sandbox of its "
        f"own: {scored.shadow_rows[0]:,} rows logged in shadow, not written")
    return customers, truth


def _outcomes_and_looks(demo, row, customers, truth, *, say, wait, error):
    """The outcomes in ``BATCHES`` batches; after each, a look queued and run by the worker."""
    from training.outcomes import outcomes

    every = outcomes(customers, truth, seed=SEED + 1, observed_at=datetime.now(UTC))
    size = -(-len(every) // BATCHES)
    for k in range(BATCHES):
        path = demo.workdir / f"outcomes-live-{k + 1}.csv"
        every.iloc[k * size:(k + 1) * size].to_csv(path, index=False)
        labels = load_labels(demo.svc.store, LIVE_MODEL, path,
                             str(demo.workdir / "inference-log"))
        row = _look(demo, row, wait)
        live = row.evidence_json()["live"]
        said = live.get("decision") or "keep waiting"
        say(f"outcomes {k + 1}/{BATCHES}: {labels.rows:,} joined to {labels.joined:,} "
            f"predictions; look {k + 1}: {live.get('pairs', 0):,} pairs, difference "
            f"{live.get('delta', 0):+.4f}, interval [{live.get('lower', 0):+.4f}, "
            f"{live.get('upper', 0):+.4f}]: {live.get('verdict')} -> {said}")
        if live.get("decision") is not None:
            return row
    raise error(f"{LIVE_MODEL} v{row.version} live look", "still undecided after every batch "
                f"of outcomes: {row.live_line()}", demo.podium.log_path)


def _look(demo, row, wait):
    """Queue a look as the scheduler does (``check_shadowing``, here with a one-second
    interval so each call is a new job) and wait for the worker to record it."""
    before = (row.evidence_json().get("live") or {}).get("looked_at")
    wait("a look queued", lambda: row.id in demo.svc.workflow.check_shadowing(
        1, now=time.time()), 10, demo.podium.log_path)
    return wait(f"the look at request {row.id}",
                lambda: (now := demo._state(row.id)).evidence_json().get("live", {}).get(
                    "looked_at") != before and now, 60, demo.podium.log_path)


def _decided(demo, version: str, wait, log):
    return wait(f"{LIVE_MODEL} v{version} decided",
                lambda: (r := _latest(demo, version)) is not None and r.state not in states.OPEN
                and r, 180, log)


def _waiting(demo, version: str):
    """The request once it waits with its version on the alias, or once it ended."""
    r = _latest(demo, version)
    if r is None or r.state in states.OPEN and not (
            r.state == "shadowing" and (r.evidence_json().get("live") or {}).get("looked_at")):
        return None
    return r


def _latest(demo, version: str):
    with demo.svc.store.read() as conn:
        rows = [r for r in reqs.list_(conn, model=LIVE_MODEL) if r.version == version]
    return rows[0] if rows else None


def _aliases(demo) -> dict:
    return dict(demo.client.get_registered_model(LIVE_MODEL).aliases)


def _tags(demo, version: str) -> dict:
    return dict(demo.client.get_model_version(LIVE_MODEL, version).tags)


def _live_block(demo, version: str) -> str | None:
    """The *Live evidence* section of the promoted request's Slack message, as shown."""
    for message in demo.slack.parents():
        if f"{LIVE_MODEL} v{version} → Production: promoted" in str(message.get("text")):
            for block in message.get("blocks") or []:
                text = (block.get("text") or {}).get("text", "")
                if block.get("type") == "section" and text.startswith("*Live evidence*"):
                    return text.replace("*", "")
    return None
