"""``podium policy diff OLD NEW``: the last decisions replayed under another policy.

For the newest ``last`` decided requests of each model that keep an evidence bundle, the
verdict is computed from the bundle under OLD's and under NEW's section of the model
(``model_tests.evidence.rederive``: no model is loaded, nothing is written); a row whose
verdict changes names the figure that flipped it. Checks whose inputs are not in a bundle
(latency, load time, behaviour probes, metadata) keep their recorded results, and the row
says which.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from podium_policy.schema import ModelPolicy, Policy
from webhook_server.adapters.registry import Registry
from webhook_server.service.evidence import Bundles, EvidenceError
from webhook_server.store import Store
from webhook_server.store import transition_requests as reqs


@dataclass(frozen=True)
class DiffRow:
    request: int
    model: str
    version: str
    state: str  # the request's state as recorded
    then: str  # the verdict under OLD
    now: str  # the verdict under NEW
    figure: str = ""  # what flipped it (empty: nothing changed)
    recorded_checks: list[str] = field(default_factory=list)
    error: str | None = None  # the bundle could not be used

    @property
    def changed(self) -> bool:
        return self.error is None and self.then != self.now

    def as_json(self) -> dict[str, Any]:
        return {"request": self.request, "model": self.model, "version": self.version,
                "state": self.state, "then": self.then, "now": self.now,
                "changed": self.changed, "figure": self.figure,
                "recorded_checks": self.recorded_checks, "error": self.error}


def _sections(p: ModelPolicy):
    return p.checks, p.comparison, p.business


def _figure(old, new) -> str:
    """What differs between two rederivations: a check that passes under one and fails
    under the other, else the comparison's bound."""
    before = {c["name"]: c for c in old.checks}
    for check in new.checks:
        was = before.get(check["name"])
        if was is not None and was["passed"] != check["passed"]:
            return (f"check {check['name']}: {check['reason']} "
                    f"({'fails' if not check['passed'] else 'passes'} now)")
    if old.comparison is not None and new.comparison is not None \
            and old.comparison.outcome != new.comparison.outcome:
        c = new.comparison
        return (f"comparison {c.metric}: lower bound {c.ci_low:+.4f} vs {c.bound:+.4f} at "
                f"alpha {c.alpha:g} (p {c.p_value:.3g}); {old.comparison.outcome} -> "
                f"{c.outcome}")
    return new.verdict.reason or old.verdict.reason


def diff(store: Store, registry: Registry, old: Policy, new: Policy, *,
         model: str | None = None, last: int = 50, cache: str | None = None
         ) -> list[DiffRow]:
    if last < 1:
        raise ValueError(f"--last {last}: replay at least 1 decision")
    with store.read() as conn:
        judged = reqs.judged(conn, model=model, last=last)
    bundles = Bundles(registry, cache)
    try:
        return [_replay(bundles, req, old, new) for req in judged]
    finally:
        bundles.close()


def _replay(bundles: Bundles, req, old: Policy, new: Policy) -> DiffRow:
    from model_tests.bundle import BundleError
    from model_tests.evidence import rederive

    try:
        bundle = bundles.get(req)
    except (BundleError, EvidenceError) as exc:
        return DiffRow(req.id, req.model, req.version, req.state, "-", "-",
                       error=getattr(exc, "reason", str(exc)))
    then = rederive(bundle, *_sections(old.for_model(req.model)))
    now = rederive(bundle, *_sections(new.for_model(req.model)))
    return DiffRow(req.id, req.model, req.version, req.state, then.verdict.kind,
                   now.verdict.kind,
                   _figure(then, now) if then.verdict.kind != now.verdict.kind else "",
                   sorted(set(then.recorded) | set(now.recorded)))


def table(rows: list[DiffRow]) -> str:
    """The rows as a Markdown table (the CLI and the merge-request note print the same)."""
    if not rows:
        return "No decided request with an evidence bundle to replay.\n"
    lines = ["| request | model | version | state | decision then | under the new policy "
             "| what flipped it |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        flag = "**" if r.changed else ""
        lines.append(f"| {r.request} | {r.model} | v{r.version} | {r.state} | {r.then} | "
                     f"{flag}{r.now}{flag} | {_cell(r.error or r.figure)} |")
    kept = sorted({c for r in rows for c in r.recorded_checks})
    changed = sum(r.changed for r in rows)
    lines += ["", f"{changed} of {len(rows)} decision(s) would change."]
    if kept:
        lines.append(f"Kept as recorded (their inputs are not in the bundles): "
                     f"{', '.join(kept)}.")
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")[:300]
