"""``podium score``'s shadows: the versions the policy's ``shadow.aliases`` name, each scored
beside the champion on the same rows (its ``shadow.max_share`` of them, by id hash) into the
inference log with role ``shadow``, never into the output file.

An alias that names no version, or names the champion's own version, is skipped with the
reason (production scoring never fails because no challenger is waiting).

With ``monitoring.shadow_former`` the former champion (the version the ledger's move to the
current champion replaced) is scored the same way, as the plan ``former``: its live figures
are what a decay's rollback proposal weighs (``monitoring/decay.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from podium_policy.schema import ModelPolicy
from webhook_server.store import Store, ledger

if TYPE_CHECKING:
    from training.score import Shadow


@dataclass(frozen=True)
class ShadowPlan:
    """One alias of ``shadow.aliases``: the version it names and its scorer, or why not."""

    alias: str
    version: str | None  # the version number ("4"), None when skipped
    shadow: Shadow | None
    skipped: str | None = None  # why it is not scored

    def as_json(self) -> dict:
        return {"alias": self.alias, "version": self.version, "skipped": self.skipped}


FORMER = "former"  # the plan of the former champion (policy monitoring.shadow_former)


def shadow_batch_id(champion_batch: str, version: str) -> str:
    """The batch id of ``version``'s predictions scored in shadow beside the champion's batch
    ``champion_batch`` (same run, same rows): what pairs them as live evidence
    (``live.paired_labels``)."""
    return f"{champion_batch}-v{version}"


def former_champion(store: Store, model: str, mp: ModelPolicy,
                    champion_version: str) -> str | None:
    """The version ``champion_version`` replaced as champion, per the ledger (what ``podium
    rollback`` would go back to); None when the ledger names none."""
    with store.read() as conn:
        return ledger.rollback_target(conn, model, mp.aliases.champion, champion_version)


def sandboxed(judge, uri: str, opened: list, warn: Callable[[str], None]):
    """A shadow's scorer (``plan_shadows``' ``load``): the version ``uri`` in a sandbox of its
    own (``judge.open``: it has not been promoted, its code never runs in the scoring
    process), appended to ``opened`` for the caller to close. A failure is said once through
    ``warn`` and ends that shadow only (its rows then score None)."""
    from model_tests.sandbox.errors import SandboxError

    model = judge.open(uri)
    opened.append(model)

    def predict_proba(frame):
        if model.broken:
            return None
        try:
            return model.predict(frame)
        except SandboxError as exc:
            model.broken = model.broken or exc.reason
            warn(f"shadow {uri}: stopped, the rest of its rows not scored: {exc.reason}")
            return None
    return predict_proba


def plan_shadows(mp: ModelPolicy, model: str, champion_version: str, root: str, registry,
                 load, *, batch_prefix: str | None = None,
                 former: str | None = None) -> list[ShadowPlan]:
    """The shadows of one ``podium score`` of ``model`` (champion ``champion_version``): per
    alias of ``mp.shadow.aliases``, the version ``registry`` (``adapters.registry.Registry``)
    says it names, its ``predict_proba`` from ``load(model_uri)`` and an open log (role
    shadow) under ``root``; or the reason it is skipped. ``former``: the former champion's
    version, scored too (plan ``former``) unless an alias already names it."""
    from training.inference_log import InferenceLog
    from training.score import THRESHOLD, Shadow

    plans: list[ShadowPlan] = []
    seen = {champion_version}
    named = [(alias, registry.alias_version(model, alias)) for alias in mp.shadow.aliases]
    if former is not None:
        named.append((FORMER, former))
    for alias, version in named:
        if version is None:
            plans.append(ShadowPlan(alias, None, None, f"alias {alias!r} names no version of "
                                                       f"{model}: nothing to shadow"))
            continue
        if version in seen:
            why = ("is the champion" if version == champion_version
                   else "is already shadowed under another alias")
            plans.append(ShadowPlan(alias, version, None, (
                f"the former champion, version {version}, " if alias == FORMER
                else f"alias {alias!r} names version {version}, which ") + why))
            continue
        seen.add(version)
        predict = load(f"models:/{model}/{version}")
        run_id = registry.client.get_model_version(model, version).run_id
        log = InferenceLog(root, model=model, version=version, run_id=run_id,
                           threshold=THRESHOLD, role="shadow",
                           batch_id=(shadow_batch_id(batch_prefix, version) if batch_prefix
                                     else None))
        plans.append(ShadowPlan(alias, version, Shadow(predict, log, mp.shadow.max_share)))
    return plans
