"""What the store hands past its boundary for a transition request: ``Request`` (a row of
``requests``), ``RequestEvent`` (a row of ``request_events``, its history) and ``Moved``
(what a state change recorded, for the caller to tell). Frozen: a change goes through
``transition_requests``, and the caller reads the request again.

Each is built from its row in one place (``from_row``); ``as_json`` is the one JSON shape
of a request, shared by the API (``/api/v1/requests``) and the CLI (``podium requests``,
``podium show``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestEvent:
    """One line of a request's history: a state change, or a note (``from_state`` equals
    ``to_state``). ``from_state`` is None on the line that created the request."""

    id: int
    request_id: int
    at: datetime
    from_state: str | None
    to_state: str
    actor: str
    note: str | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> RequestEvent:
        return cls(**row)

    def as_json(self) -> dict[str, Any]:
        return {"at": _iso(self.at), "from": self.from_state, "to": self.to_state,
                "actor": self.actor, "note": self.note}


@dataclass(frozen=True, slots=True, kw_only=True)
class Moved:
    """A state change ``transition_requests.transition`` recorded: its history line, the
    states, who and why (scrubbed), and the summaries the request carried. The store only
    records; the caller decides who hears of it (``intake/tell.py``)."""

    request_id: int
    event_id: int
    from_state: str
    to_state: str
    actor: str
    reason: str | None = None
    checks: str | None = None
    comparison: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    """A transition request as stored (one field per column of ``requests``; the columns
    that may be NULL default to None)."""

    id: int
    model: str
    version: str
    target: str | None = None  # None when the asked-for target is invalid
    raw_target: str
    origin: str  # tag | alias | databricks | api | rollback
    state: str
    reason: str | None = None
    delivery_pk: int | None = None
    requested_by: str | None = None
    comment: str | None = None
    decided_by: str | None = None
    checks: str | None = None  # "21/22 passed"
    comparison: str | None = None  # the comparison's one-line summary
    compared_with: str | None = None  # the champion version of that comparison
    evidence: str | None = None  # JSON text as stored; parsed: evidence_json()
    created_at: datetime
    updated_at: datetime
    model_sha256: str | None = None  # digest of the model files that were judged
    requesters: str | None = None  # JSON list: identities the registry names (unauthenticated)
    bundle_uri: str | None = None  # where the evidence bundle of the decision is
    bundle_sha256: str | None = None  # its digest (podium verify checks the files against it)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Request:
        return cls(**row)

    def requester_identities(self) -> list[str]:
        """Who counts as having asked: the authenticated actor (``requested_by``) for a
        request made through Podium; every identity the registry names otherwise."""
        named = json.loads(self.requesters) if self.requesters else []
        return [*([self.requested_by] if self.requested_by else []), *named]

    def approval_evidence(self) -> dict[str, Any]:
        """What an approval approves: the version, the champion it was compared with, the
        checks and the comparison as they were shown, the holdout, the model files and the
        evidence bundle (scores, policy section). An approval of other evidence (the
        comparison was made again) does not count."""
        evidence = self.evidence_json()
        holdout = evidence.get("holdout") or {}
        out = {"version": self.version, "compared_with": self.compared_with,
               "checks": self.checks, "comparison": self.comparison,
               "holdout_sha256": holdout.get("sha256"), "model_sha256": self.model_sha256,
               "bundle_sha256": self.bundle_sha256}
        if (evidence.get("live") or {}).get("looked_at"):  # judged on live evidence too
            out["live"] = self.live_line()
        return out

    def live_line(self) -> str | None:
        """The live evidence's last look in one line (comparison.live), or None."""
        live = self.evidence_json().get("live")
        return live_line(live) if isinstance(live, dict) and live.get("looked_at") else None

    def evidence_digest(self) -> str:
        """sha256 of ``approval_evidence`` as canonical JSON: what the page, the Slack
        buttons and ``podium approve --evidence`` carry."""
        text = json.dumps(self.approval_evidence(), sort_keys=True, separators=(",", ":"),
                          default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    def evidence_json(self) -> dict[str, Any]:
        """The stored evidence (check results, comparison, holdout) parsed; {} when none."""
        return json.loads(self.evidence) if self.evidence else {}

    def as_json(self, history: Iterable[RequestEvent] | None = None) -> dict[str, Any]:
        """The request for the API and the CLI; with ``history``, its lines as well."""
        out: dict[str, Any] = {
            "id": self.id, "model": self.model, "version": self.version,
            "target": self.target, "raw_target": self.raw_target, "origin": self.origin,
            "state": self.state, "reason": self.reason, "requested_by": self.requested_by,
            "decided_by": self.decided_by, "comment": self.comment,
            "requesters": self.requester_identities(), "model_sha256": self.model_sha256,
            "bundle_uri": self.bundle_uri, "bundle_sha256": self.bundle_sha256,
            "created_at": _iso(self.created_at), "updated_at": _iso(self.updated_at)}
        if history is not None:
            lines = list(history)
            out["history"] = [h.as_json() for h in lines]
            seconds = stage_seconds(lines)
            for line, took in zip(out["history"], seconds, strict=True):
                line["seconds"] = took
            out["stages"] = stages(lines, seconds)
        return out


def _f(value: Any, fmt: str) -> str:
    return format(value, fmt) if isinstance(value, int | float) else "-"


def live_line(live: Mapping[str, Any]) -> str:
    """A look at the live evidence in words (Slack, GitLab, the page, history lines):
    pairs, both AUCs, the difference, the always-valid interval, alpha, power, verdict."""
    pairs, need = live.get("pairs"), live.get("min_pairs")
    alpha = live.get("alpha")
    interval = (f"[{_f(live.get('lower'), '+.4f')}, {_f(live.get('upper'), '+.4f')}]"
                if live.get("lower") is not None else "-")
    return (f"{_f(pairs, ',')} labelled pairs" + (f" (of {_f(need, ',')} needed)"
                                                  if need is not None else "")
            + f", ROC AUC v{live.get('shadow_version')} {_f(live.get('auc_shadow'), '.4f')}"
            f" vs champion v{live.get('champion_version')} "
            f"{_f(live.get('auc_champion'), '.4f')}, difference "
            f"{_f(live.get('delta'), '+.4f')}, always-valid interval {interval} at alpha "
            f"{_f(alpha, 'g')}, power {_f(live.get('power'), '.0%')}: "
            f"{live.get('verdict') or '-'}")


def stage_seconds(history: list[RequestEvent]) -> list[float | None]:
    """How long the request stayed after each line (until the next one); None after the
    last line, whose stage has not ended (or is the terminal state)."""
    out: list[float | None] = []
    for line, after in zip(history, history[1:], strict=False):
        out.append(round((after.at - line.at).total_seconds(), 3))
    return out + [None] * (len(history) - len(out))


def stages(history: list[RequestEvent], seconds: list[float | None]) -> dict[str, float]:
    """Seconds spent in each state, in the order the request went through them (a note
    line splits a stage; its parts are added up)."""
    out: dict[str, float] = {}
    for line, took in zip(history, seconds, strict=True):
        if took is not None:
            out[line.to_state] = round(out.get(line.to_state, 0.0) + took, 3)
    return out
