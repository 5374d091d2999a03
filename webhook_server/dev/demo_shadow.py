"""The demo's ``podium score`` with shadows, run as the command runs it but in the demo's
process (the champion is loaded here once): the champion scores the customers and writes the
output; each shadow the policy names (``plan_shadows``: the ``shadow.aliases`` versions and,
with ``former``, the former champion) is scored in a sandbox of its own on the same rows and
logged beside it (role shadow), never written. Both the decay step and the live-evidence
step score this way."""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path

from webhook_server.adapters.registry import mlflow_client
from webhook_server.monitoring import batches
from webhook_server.monitoring.shadow import (
    ShadowPlan,
    former_champion,
    plan_shadows,
    sandboxed,
)


@dataclass(frozen=True)
class Scored:
    logged: dict  # the champion's batch as recorded (version, rows, mean_score, ...)
    version: str  # "model/version" of the champion
    plans: list[ShadowPlan]
    shadow_rows: list[int]  # rows each scored plan logged, in the order of ``scored()``

    def scored(self) -> list[ShadowPlan]:
        return [p for p in self.plans if p.shadow is not None]


def score_with_shadows(demo, model: str, src: Path, dst: Path, log_root: str, *,
                       former: bool, say, error) -> Scored:
    """``demo``: the running demo (``svc``, ``mlflow``); ``src``: customers without outcomes;
    ``former``: the former champion is shadowed too (policy ``monitoring.shadow_former``)."""
    from training.score import load_predictor, score_file

    svc = demo.svc
    with contextlib.redirect_stdout(io.StringIO()):
        predict, version = load_predictor(f"models:/{model}@champion")
    log = batches.open_log(log_root, version, mlflow_client(demo.mlflow.url))
    mp, opened = svc.policy.for_model(model), []
    try:
        plans = plan_shadows(mp, model, log.version, log_root, svc.registry,
                             lambda uri: sandboxed(svc.judge, uri, opened, say),
                             batch_prefix=log.batch_id, former=former_champion(
                                 svc.store, model, mp, log.version) if former else None)
        shadows = [p.shadow for p in plans if p.shadow is not None]
        with contextlib.ExitStack() as logs:
            for each in [log, *(s.log for s in shadows)]:
                logs.enter_context(each)
            report = score_file(predict, src, dst, model_version=version, log=log,
                                shadows=shadows)
    except Exception as exc:
        raise error("podium score", f"{type(exc).__name__}: {exc}") from None
    finally:
        for sandbox in opened:
            sandbox.close()
    logged = batches.record(svc.store, log, rejected=report.rejected, source=str(src))
    for shadow in shadows:
        batches.record(svc.store, shadow.log, source=str(src))
    return Scored(logged, version, plans, list(report.shadow_rows))
