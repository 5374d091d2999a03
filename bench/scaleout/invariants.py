"""What must hold after the drill, read from the store, MLflow, the fake Slack and GitLab
and the balancer's record. Each check is (name, passed, detail)."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from sqlalchemy import select

from bench.scaleout.chaos import Chaos
from bench.scaleout.cluster import MR_IID, Cluster
from bench.scaleout.traffic import Traffic
from webhook_server import contract
from webhook_server.store import ledger, states
from webhook_server.store.schema import deliveries, jobs, outbox, request_events, requests

NOTE = re.compile(r"<!-- podium:request:(\d+):[0-9a-f]+ -->")  # gitlab.marker


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str


def check_all(cluster: Cluster, traffic: Traffic, chaos: Chaos, client) -> list[Check]:
    with cluster.store.read() as conn:
        reqs = [dict(r) for r in conn.execute(select(requests)).mappings()]
        events = conn.execute(select(request_events.c.request_id, request_events.c.to_state)
                              ).all()
        job_rows = [dict(r) for r in conn.execute(select(jobs)).mappings()]
        rows = [dict(r) for r in conn.execute(select(outbox).order_by(outbox.c.id)).mappings()]
        stored = set(conn.execute(select(deliveries.c.source, deliveries.c.delivery_id)).all())
        moves = {m: ledger.entries(conn, m, include_unapplied=True) for m in traffic.plan}
    return [_terminal(reqs, events), _jobs(job_rows), _planned(traffic),
            *_ledger(reqs, moves, client), slack_once_in_order(rows, cluster.slack.messages),
            notes_once(rows, cluster.gitlab.notes.get(MR_IID, [])),
            _acknowledged(cluster, traffic, stored), errors_only_in_outages(cluster, chaos),
            _restarts(chaos)]


def _terminal(reqs, events) -> Check:
    open_ = [f"{r['id']} ({r['state']})" for r in reqs if r["state"] not in states.TERMINAL]
    decisions = Counter(rid for rid, to in events if to in states.TERMINAL)
    twice = [f"{rid} ({n})" for rid, n in decisions.items() if n != 1]
    undecided = [r["id"] for r in reqs if r["state"] in states.TERMINAL and not decisions[r["id"]]]
    return Check("every request terminal, exactly one decision each",
                 not (open_ or twice or undecided),
                 f"{len(reqs)} requests; open {open_[:10]}; decided twice {twice[:10]}; "
                 f"terminal without a decision {undecided[:10]}")


def _jobs(job_rows) -> Check:
    dead = [f"{j['key']}: {(j['last_error'] or '')[:80]}" for j in job_rows
            if j["state"] == "dead"]
    stuck = [j["key"] for j in job_rows
             if j["state"] in ("queued", "running") and j["kind"] != "reconcile"]
    return Check("no job dead (none is expected), none left", not (dead or stuck),
                 f"{len(job_rows)} jobs; dead {dead[:5]}; left {stuck[:10]}")


def _planned(traffic: Traffic) -> Check:
    wrong = [f"{o.model} {o.kind} v{o.version} request {o.request_id}: {o.state or o.error}"
             for o in traffic.outcomes if o.state != o.expected]
    return Check("each request decided as planned (better promoted, worse rejected, ...)",
                 not wrong, f"{len(traffic.outcomes)} asked; not as planned {wrong[:8]}")


def _ledger(reqs, moves, client) -> list[Check]:
    bad, rows_bad, tags_bad = [], [], []
    by_request = Counter((e["request_id"], e["alias"]) for ms in moves.values() for e in ms
                         if e["state"] == ledger.APPLIED)
    for r in reqs:
        alias = {"promoted": "champion", "staged": "staging"}.get(r["state"])
        moved = not (r["reason"] or "").endswith("is already the champion")
        want = 1 if alias and moved else 0
        got = sum(n for (rid, _), n in by_request.items() if rid == r["id"])
        if got != want or (alias and want and not by_request[(r["id"], alias)]):
            rows_bad.append(f"{r['id']} {r['state']}: {got} ledger rows")
    for model, entries in moves.items():
        left = [e["id"] for e in entries if e["state"] == ledger.INTENT]
        external = [e["id"] for e in entries if e["kind"] == ledger.EXTERNAL]
        for alias, status in (("champion", "promoted"), ("staging", "staged")):
            applied = [e for e in entries if e["alias"] == alias and e["state"] == ledger.APPLIED]
            want = applied[-1]["to_version"] if applied else None
            got = _alias(client, model, alias)
            if got != want or left or external:
                bad.append(f"{model} {alias}: MLflow v{got}, ledger v{want}, intents {left}, "
                           f"external {external}")
            if want is not None and _status(client, model, want) != status:
                tags_bad.append(f"{model} v{want} ({alias}) is "
                                f"{_status(client, model, want)}")
        current = applied_current(entries)
        for version in {e["to_version"] for e in entries if e["alias"] == "champion"
                        and e["state"] == ledger.APPLIED} - {current}:
            if _status(client, model, version) != "archived":
                tags_bad.append(f"{model} v{version} (former champion) is "
                                f"{_status(client, model, version)}")
    return [Check("each model's aliases equal the ledger's last move, no intent left",
                  not bad, "; ".join(bad[:5]) or f"{len(moves)} models"),
            Check("one ledger row per move (per promoted or staged request)", not rows_bad,
                  "; ".join(rows_bad[:5]) or "ok"),
            Check("champions tagged promoted, former champions archived", not tags_bad,
                  "; ".join(tags_bad[:5]) or "ok")]


def applied_current(entries) -> str | None:
    applied = [e for e in entries if e["alias"] == "champion" and e["state"] == ledger.APPLIED]
    return applied[-1]["to_version"] if applied else None


def _alias(client, model: str, alias: str) -> str | None:
    aliases = client.get_registered_model(model).aliases
    return str(aliases[alias]) if alias in aliases else None


def _status(client, model: str, version: str) -> str | None:
    return client.get_model_version(model, version).tags.get("podium.status")


def slack_once_in_order(rows, messages) -> Check:
    slack = [r for r in rows if r["channel"] == "slack"]
    unsent = [f"{r['key']} ({r['state']})" for r in slack if r["state"] != "sent"]
    posted = [((m.get("metadata") or {}).get("event_payload") or {}).get("key")
              for m in list(messages)]
    count = Counter(posted)
    expected = {r["key"] for r in slack if r["kind"] != "ephemeral"}
    expected |= {contract.request_parent_message(r["request_id"]) for r in slack
                 if r["kind"] == "step"}
    wrong = [f"{k} x{count[k]}" for k in expected if count[k] != 1]
    extra = [k for k in count if k not in expected]
    order = []
    for rid in {r["request_id"] for r in slack if r["kind"] == "step"}:
        steps = [r["key"] for r in slack if r["request_id"] == rid and r["kind"] == "step"]
        seen = [k for k in posted if k in set(steps)]
        if seen != steps:
            order.append(rid)
    return Check("every Slack message delivered exactly once, in order per request",
                 not (unsent or wrong or extra or order),
                 f"{len(posted)} posts for {len(expected)} messages; unsent {unsent[:5]}; "
                 f"not once {wrong[:5]}; unknown {extra[:5]}; out of order {order[:5]}")


def notes_once(rows, notes) -> Check:
    gitlab = [r for r in rows if r["channel"] == "gitlab"]
    unsent = [f"{r['key']} ({r['state']})" for r in gitlab if r["state"] != "sent"]
    noted = Counter(int(m.group(1)) for n in list(notes) if (m := NOTE.search(n["body"])))
    want = {r["request_id"] for r in gitlab if (r["result"] or "").startswith("note")}
    wrong = [f"{rid} x{noted[rid]}" for rid in want | set(noted) if noted[rid] != 1
             or rid not in want]
    return Check("every MR note delivered exactly once", not (unsent or wrong),
                 f"{sum(noted.values())} notes for {len(want)} decisions; unsent "
                 f"{unsent[:5]}; not once {wrong[:5]}")


def _acknowledged(cluster: Cluster, traffic: Traffic, stored) -> Check:
    acked = {("mlflow", a.delivery_id) for a in cluster.balancer.answers
             if a.path == "/webhooks/mlflow" and 200 <= a.status < 300 and a.delivery_id}
    acked |= {("slack", c.delivery_id) for c in traffic.clicks if c.status == 200}
    missing = sorted(acked - stored)
    return Check("deliveries acknowledged = deliveries stored", not missing,
                 f"{len(acked)} acknowledged; not stored {missing[:5]}")


def errors_only_in_outages(cluster: Cluster, chaos: Chaos) -> Check:
    answered = [a for a in cluster.balancer.answers if a.node and not a.lost]
    errors = [a for a in answered if a.status >= 500]
    outside = [f"{a.status} {a.method} {a.path}" for a in errors
               if not any(f.covers(a.at) for f in chaos.faults)]
    lost = sum(1 for a in cluster.balancer.answers if a.lost or a.node is None)
    return Check("no 5xx other than during the injected outages", not outside,
                 f"{len(answered)} answers, {len(errors)} 5xx (all in outages unless listed: "
                 f"{outside[:5]}); {lost} dropped by a killed node or no node up")


def _restarts(chaos: Chaos) -> Check:
    failed = [f"{f.what}: {f.detail}" for f in chaos.faults if not f.ok]
    return Check("every killed process restarted, MLflow back", not failed,
                 "; ".join(failed[:3]) or f"{len(chaos.faults)} faults")
