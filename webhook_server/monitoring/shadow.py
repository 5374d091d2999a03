"""``podium score``'s shadows: the versions the policy's ``shadow.aliases`` name, each scored
beside the champion on the same rows (its ``shadow.max_share`` of them, by id hash) into the
inference log with role ``shadow``, never into the output file.

An alias that names no version, or names the champion's own version, is skipped with the
reason (production scoring never fails because no challenger is waiting).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from podium_policy.schema import ModelPolicy

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


def plan_shadows(mp: ModelPolicy, model: str, champion_version: str, root: str, registry,
                 load, *, batch_prefix: str | None = None) -> list[ShadowPlan]:
    """The shadows of one ``podium score`` of ``model`` (champion ``champion_version``): per
    alias of ``mp.shadow.aliases``, the version ``registry`` (``adapters.registry.Registry``)
    says it names, its ``predict_proba`` from ``load(model_uri)`` and an open log (role
    shadow) under ``root``; or the reason it is skipped."""
    from training.inference_log import InferenceLog
    from training.score import THRESHOLD, Shadow

    plans: list[ShadowPlan] = []
    seen = {champion_version}
    for alias in mp.shadow.aliases:
        version = registry.alias_version(model, alias)
        if version is None:
            plans.append(ShadowPlan(alias, None, None, f"alias {alias!r} names no version of "
                                                       f"{model}: nothing to shadow"))
            continue
        if version in seen:
            why = ("is the champion" if version == champion_version
                   else "is already shadowed under another alias")
            plans.append(ShadowPlan(alias, version, None, f"alias {alias!r} names version "
                                                          f"{version}, which {why}"))
            continue
        seen.add(version)
        predict = load(f"models:/{model}/{version}")
        run_id = registry.client.get_model_version(model, version).run_id
        log = InferenceLog(root, model=model, version=version, run_id=run_id,
                           threshold=THRESHOLD, role="shadow",
                           batch_id=f"{batch_prefix}-v{version}" if batch_prefix else None)
        plans.append(ShadowPlan(alias, version, Shadow(predict, log, mp.shadow.max_share)))
    return plans
