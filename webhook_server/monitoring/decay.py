"""A decayed champion against its predecessor (policy ``monitoring.on_decay``): the case for
going back.

When the decay rule finds the champion decayed, the former champion (the version the
ledger's move to the champion replaced: where ``podium rollback`` goes) is compared with it
live (``live.live_comparison``) on the outcomes both predicted from the decayed period on,
the rows the decay was found on and later: it has such outcomes when ``podium score``
shadowed it (``monitoring.shadow_former``, or a ``shadow.aliases`` alias naming it). It is
significantly better when the always-valid interval of its ROC AUC gain (the confidence
sequence of ``live``, at ``comparison.alpha``) clears the comparison rule's bound and zero:
the rule a live promotion uses. The sequence stays valid however often the outcomes of one
window are looked at as labels arrive; a new decayed period starts a new window, and each
champion's tenure is asked about at most once (``workflow.rollback.decayed``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from podium_policy.schema import ModelPolicy
from webhook_server.monitoring.live import LiveComparison, live_comparison
from webhook_server.store import Store, ledger


@dataclass(frozen=True)
class RollbackCase:
    """The former champion against the decayed champion, and whether it is significantly
    better (``better``); ``why`` says it in one line."""

    model: str
    champion: str
    former: str | None  # None: the ledger names no former champion
    since: datetime | None  # the decayed period's start: the outcomes compared
    live: LiveComparison | None
    better: bool
    why: str

    def comparison(self) -> str:
        """The live comparison in one line (the request's comparison, what an agreement
        binds through the evidence digest)."""
        lc = self.live
        if lc is None or lc.delta is None:
            return self.why
        return (f"live roc_auc v{self.former} {lc.auc_shadow:.4f} vs champion v{self.champion} "
                f"{lc.auc_champion:.4f} on {lc.pairs:,} labelled outcomes since "
                f"{self.since:%Y-%m-%d}: {lc.delta:+.4f}, always-valid "
                f"{1 - lc.alpha:.0%} interval [{lc.lower:+.4f}, {lc.upper:+.4f}]")

    def as_json(self) -> dict[str, Any]:
        return {"model": self.model, "champion": self.champion, "former": self.former,
                "since": self.since.isoformat() if self.since else None,
                "better": self.better, "why": self.why,
                "live": self.live.as_json() if self.live else None}


def period_start(label: str, period: str) -> datetime:
    """The first instant of a period label (``period_of``'s inverse): ``2026-06-03``,
    ``2026-W23`` (ISO week: its Monday), ``2026-06``."""
    if period == "day":
        start = datetime.strptime(label, "%Y-%m-%d")
    elif period == "week":
        start = datetime.strptime(f"{label}-1", "%G-W%V-%u")
    else:
        start = datetime.strptime(label, "%Y-%m")
    return start.replace(tzinfo=UTC)


def rollback_case(store: Store, model: str, mp: ModelPolicy, decay: dict) -> RollbackCase:
    """The case for rolling ``model`` back after ``decay`` (the report's verdict on the
    champion: version, period): its former champion, compared live since that period."""
    champion = decay["version"]
    with store.read() as conn:
        current = ledger.current(conn, model, mp.aliases.champion)
        former = ledger.rollback_target(conn, model, mp.aliases.champion, champion)
    base = {"model": model, "champion": champion, "former": former}
    if current != champion or former is None:
        why = (f"v{champion} is not the ledger's champion (v{current})" if current != champion
               else f"no former champion of {model} in the ledger")
        return RollbackCase(**base, since=None, live=None, better=False, why=why)
    since = period_start(decay["period"], mp.monitoring.period)
    lc = live_comparison(store, model, former, champion, mp, since=since)
    bound = max(lc.bound, 0.0)
    better = lc.lower is not None and lc.lower > bound
    if lc.delta is None:
        why = (f"v{former} has {lc.pairs} labelled outcomes paired with v{champion}'s since "
               f"{since:%Y-%m-%d}: too few to compare (is it shadowed? policy "
               "monitoring.shadow_former)")
    elif better:
        why = (f"v{former} is significantly better live than v{champion} (gain "
               f"{lc.delta:+.4f}, interval from {lc.lower:+.4f}, above {bound:+g})")
    else:
        why = (f"v{former} is not significantly better live than v{champion} (gain "
               f"{lc.delta:+.4f}, interval [{lc.lower:+.4f}, {lc.upper:+.4f}] does not clear "
               f"{bound:+g})")
    return RollbackCase(**base, since=since, live=lc, better=better, why=why)
