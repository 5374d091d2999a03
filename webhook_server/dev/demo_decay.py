"""``podium demo``'s decay step: after the promotion, a week of customers is scored as
``podium score`` scores them: with the champion, and in shadow (a sandbox of its own) with
the former champion (policy ``monitoring.shadow_former``); their outcomes arrive after a
competitor's bundled fiber offer turned around what the services and charges said about
churn (``training.outcomes``, ``change="services"``): the champion decays, while the former
champion, which learned little beyond contract and tenure, now ranks customers better.
``podium monitor`` reports the decay and the live comparison and exits 1; the scheduled
monitoring job (``monitoring.on_decay: propose``) opens a rollback request, Slack shows it
with Rollback / Dismiss, the demo's approver clicks Rollback, and the champion goes back.

Scoring and label loading run the commands' own code in this process (the champion is
loaded once; the shadow in its sandbox, as ``podium score`` opens it); ``podium monitor``
runs as the command. ``say``, ``wait`` and ``error`` are the demo's (printing, waiting on
the store, ``DemoError``)."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime

from sqlalchemy import select

from webhook_server.contract import TAG_STATUS
from webhook_server.dev.demo_shadow import score_with_shadows
from webhook_server.dev.processes import bin_path
from webhook_server.monitoring import job as monitoring
from webhook_server.monitoring.labels import load_labels
from webhook_server.store import ledger
from webhook_server.store import transition_requests as reqs
from webhook_server.store.schema import outbox

APPROVER = "U0DEMOAPPROVER"  # demo_steps.APPROVER: the demo's approver, who may roll back


def decay_step(demo, model: str, *, say, wait, error) -> str:
    """The step; the version the champion went back to."""
    log_root = str(demo.workdir / "inference-log")
    env = {**{k: v for k, v in os.environ.items()
              if not k.startswith(("PODIUM_", "MLFLOW_", "SLACK_", "GITLAB_"))},
           **demo.env, "PODIUM_INFERENCE_LOG": log_root}
    customers, truth = _score_week(demo, model, log_root, say=say, error=error)
    _outcomes(demo, model, customers, truth, log_root, say=say)
    mon = subprocess.run([bin_path("podium"), "monitor", "--model", model], env=env,
                         capture_output=True, text=True, timeout=120)
    if mon.returncode != 1:
        raise error("podium monitor", f"expected exit 1 (decay), got {mon.returncode}: "
                    f"{(mon.stderr or mon.stdout)[-800:]}")
    say(f"$ podium monitor --model {model}   (exit 1: the policy's decay rule fired)")
    for line in mon.stdout.splitlines():
        say("  " + line)
    return _rollback_in_slack(demo, model, say=say, wait=wait, error=error)


def _score_week(demo, model: str, log_root: str, *, say, error):
    """The week's customers scored as ``podium score`` scores them (``demo_shadow``): the
    champion writes the output, and the former champion (``shadow.former_champion``), in a
    sandbox of its own, is scored on the same rows and logged beside it."""
    from training.data import TARGET, generate

    customers, truth = generate(2000, seed=41, drift=1.0)
    src, dst = demo.workdir / "customers-week.csv", demo.workdir / "scored-week.csv"
    customers.drop(columns=[TARGET]).to_csv(src, index=False)
    scored = score_with_shadows(demo, model, src, dst, log_root, former=True, say=say,
                                error=error)
    logged = scored.logged
    say(f"podium score (policy monitoring.shadow_former): {logged['rows']:,} predictions of "
        f"{scored.version} logged under inference-log/model={model}/version="
        f"{logged['version']}/ (predicted churn {logged['mean_score']:.1%})")
    for p, n in zip(scored.scored(), scored.shadow_rows, strict=True):
        say(f"  shadow {p.alias} (version {p.version}, in a sandbox of its own): {n:,} rows "
            f"logged under inference-log/model={model}/version={p.version}/, not written")
    for p in scored.plans:
        if p.shadow is None:
            say(f"  shadow {p.alias}: {p.skipped}")
    if not scored.scored():
        raise error("podium score", "the former champion was not scored in shadow")
    return customers, truth


def _outcomes(demo, model: str, customers, truth, log_root: str, *, say) -> None:
    from training.outcomes import outcomes

    outcome_file = demo.workdir / "outcomes.csv"
    outcomes(customers, truth, concept=1.0, seed=42, change="services",
             observed_at=datetime.now(UTC)).to_csv(outcome_file, index=False)
    labels = load_labels(demo.svc.store, model, outcome_file, log_root)
    say(f"podium labels: {labels.rows:,} outcomes joined to {labels.joined:,} predictions "
        f"(each version's; {labels.rejected} rejected): a competitor's bundled fiber offer "
        "turned around what services and charges said about churn")


def _rollback_in_slack(demo, model: str, *, say, wait, error) -> str:
    """The monitoring job proposes the rollback; the approver clicks Rollback in Slack."""
    store, log = demo.svc.store, demo.podium.log_path
    with store.read() as conn:
        champion = ledger.current(conn, model, "champion")
    monitoring.enqueue(store, demo.svc.queue, model, "week")
    say("the scheduled monitoring job runs in the worker (policy monitoring.on_decay: "
        "propose)")
    proposal = wait("the rollback proposed by the monitoring job",
                    lambda: _proposal(store, model), 30, log)
    if proposal.state != "awaiting_approval":
        raise error("the rollback proposal", f"request {proposal.id} is {proposal.state}: "
                    f"{proposal.reason}", log)
    say(f"rollback request {proposal.id}: v{champion} -> v{proposal.version}, awaiting "
        f"approval: {proposal.comparison}")
    message = wait("the Slack message with Rollback / Dismiss",
                   lambda: demo._buttons(proposal.id), 30, log)
    wait("the monitoring alert in Slack", lambda: _sent(store, f"{monitoring.KIND}:{model}:%"),
         30, log)
    say(f"clicking Rollback as <@{APPROVER}> (a signed request to /slack/interactions)")
    resp = demo.slack.click(demo.podium.url, demo.signing, proposal.id, APPROVER,
                            message_ts=message["ts"])
    if resp.status_code != 200:
        raise error("click Rollback", f"HTTP {resp.status_code}: {resp.text[:300]}", log)
    row = wait("the rollback decided", lambda: (r := demo._state(proposal.id)).state in (
        "promoted", "rejected", "failed", "cancelled") and r, 60, log)
    if row.state != "promoted":
        raise error("the rollback", f"request {proposal.id} ended {row.state}: {row.reason}",
                    log)
    wait(f"champion at v{row.version}", lambda: demo._champion() == row.version, 10, log)
    wait(f"v{row.version} tags written back", lambda: demo._tags(row.version).get(
        TAG_STATUS) == "promoted" and demo._tags(champion).get(TAG_STATUS) == "archived",
        30, log)
    with store.read() as conn:
        move = ledger.entries(conn, model)[-1]
    say(f"champion alias -> v{demo._champion()} (MLflow: v{row.version} promoted, "
        f"v{champion} archived); ledger: {move['kind']} v{move['from_version']} -> "
        f"v{move['to_version']} by {move['actor']}")
    return row.version


def _proposal(store, model: str):
    with store.read() as conn:
        return next((r for r in reqs.list_(conn, model=model)
                     if r.origin == "rollback" and r.requested_by == "monitor"), None)


def _sent(store, pattern: str) -> bool:
    with store.read() as conn:
        return conn.execute(select(outbox.c.id).where(outbox.c.key.like(pattern),
                                                      outbox.c.state == "sent")).first() \
            is not None
