"""The rules across keys, checked on the merged policy of each model: somebody may approve
what needs approval (and a quorum is reachable), a rollback quorum is reachable, champion and
staging are different aliases, and the holdout: a local file must exist, a digest must pin a
holdout, a holdout without a digest (or with another one) is a warning."""

from __future__ import annotations

from pathlib import Path

from podium_policy.digests import sha256_file
from podium_policy.people import Ctx
from podium_policy.schema import ModelPolicy, is_uri
from podium_policy.targets import TARGETS


def check_model(ctx: Ctx, mp: ModelPolicy, scope: str, raw: dict) -> None:
    """Rules across keys, on the merged policy of one model (reported for a model only
    when its own section sets the keys involved: the default's are reported once)."""
    a = mp.approval
    section = f"{scope}.approval"
    if scope == "default" or "approval" in raw:
        line = ctx.line_of(section, scope)
        if a.targets and not a.approvers and not a.slack_usergroup:
            targets = [t for t in TARGETS if t in a.targets]
            ctx.error(section, f"{', '.join(targets)} need{'s' if len(targets) == 1 else ''} "
                               "approval but nobody may approve (no approvers, no "
                               "slack_usergroup)", line)
        elif a.approvers and not a.slack_usergroup and a.quorum > len(a.approvers):
            ctx.error(f"{section}.quorum",
                      f"quorum {a.quorum} but only {len(a.approvers)} "
                      f"{'person' if len(a.approvers) == 1 else 'people'} may approve "
                      f"({', '.join(a.approvers)}): no request could ever be approved",
                      ctx.line_of(f"{section}.quorum", f"{section}.approvers", section, scope))
    own = raw.get("approval") or {}
    if ((scope == "default" or "inconclusive" in (raw.get("comparison") or {})
         or "approvers" in own or "slack_usergroup" in own)
            and mp.comparison.inconclusive == "approval" and not a.approvers
            and not a.slack_usergroup):
        ctx.error(f"{scope}.comparison.inconclusive", "approval but nobody may approve (no "
                  "approvers, no slack_usergroup)",
                  ctx.line_of(f"{scope}.comparison.inconclusive", f"{scope}.approval.approvers",
                              f"{scope}.approval.slack_usergroup", section,
                              f"{scope}.comparison", scope))
    r = mp.rollback
    if (scope == "default" or "rollback" in raw) and r.quorum > 1:
        who = r.approvers or a.approvers
        if r.quorum > len(who):
            ctx.error(f"{scope}.rollback.quorum",
                      f"rollback quorum {r.quorum} but only {len(who)} "
                      f"{'person' if len(who) == 1 else 'people'} may roll back: no rollback "
                      "could ever happen", ctx.line_of(f"{scope}.rollback.quorum",
                                                       f"{scope}.rollback", scope))
    if ((scope == "default" or "monitoring" in raw) and mp.monitoring.on_decay == "propose"
            and not (r.approvers or a.approvers or a.slack_usergroup)):
        ctx.error(f"{scope}.monitoring.on_decay", "propose but nobody may roll back (no "
                  "rollback.approvers, no approval approvers or slack_usergroup): a proposal "
                  "could never be decided", ctx.line_of(f"{scope}.monitoring.on_decay",
                                                        f"{scope}.monitoring", scope))
    if (scope == "default" or "aliases" in raw) and mp.aliases.champion == mp.aliases.staging:
        ctx.error(f"{scope}.aliases", f"champion and staging are the same alias "
                                      f"({mp.aliases.champion!r})",
                  ctx.line_of(f"{scope}.aliases.staging", f"{scope}.aliases", scope))
    if ((scope == "default" or "shadow" in raw or "aliases" in raw)
            and mp.aliases.champion in mp.shadow.aliases):
        ctx.error(f"{scope}.shadow.aliases", f"the champion alias "
                  f"{mp.aliases.champion!r} cannot be scored in shadow (it is the model "
                  "whose scores are written)",
                  ctx.line_of(f"{scope}.shadow.aliases", f"{scope}.shadow", scope))
    _check_live(ctx, mp, scope, raw)
    _check_holdout(ctx, mp, scope, raw)


def _check_live(ctx: Ctx, mp: ModelPolicy, scope: str, raw: dict) -> None:
    """``comparison.live`` needs a shadow alias to put the waiting version on, and not the
    staging alias."""
    own_cmp = raw.get("comparison") or {}
    if ((scope == "default" or "live" in own_cmp or "shadow" in raw)
            and mp.comparison.live is not None and not mp.shadow.aliases):
        ctx.error(f"{scope}.comparison.live", "needs shadow.aliases: a request waiting for "
                  "live evidence puts its version on the first shadow alias (e.g. shadow: "
                  "[challenger])", ctx.line_of(f"{scope}.comparison.live", f"{scope}.shadow",
                                               f"{scope}.comparison", scope))
    if ((scope == "default" or "live" in own_cmp or "shadow" in raw or "aliases" in raw)
            and mp.comparison.live is not None and mp.shadow.aliases
            and mp.shadow.aliases[0] == mp.aliases.staging):
        ctx.error(f"{scope}.shadow.aliases", f"the staging alias {mp.aliases.staging!r} cannot "
                  "hold a version waiting for live evidence",
                  ctx.line_of(f"{scope}.shadow.aliases", f"{scope}.shadow", scope))


def _check_holdout(ctx: Ctx, mp: ModelPolicy, scope: str, raw: dict) -> None:
    """A local holdout must exist; a digest must pin a holdout; a holdout without a digest
    is a warning (showing the file's digest now), and so is a file whose digest is not the
    pinned one (every request would fail)."""
    own_holdout = scope == "default" or "holdout" in raw
    if not (own_holdout or "holdout_sha256" in raw):
        return
    where, line = f"{scope}.holdout", ctx.line_of(f"{scope}.holdout", scope)
    if mp.holdout is None:
        if mp.holdout_sha256 is not None:
            ctx.error(f"{scope}.holdout_sha256", "holdout_sha256 pins nothing: set holdout "
                      "(the path or URI of the file)",
                      ctx.line_of(f"{scope}.holdout_sha256", scope))
        return
    digest = None
    if not is_uri(mp.holdout):
        path = Path(mp.holdout)
        if not path.exists():
            if own_holdout:
                ctx.error(where, f"holdout file does not exist: {path}", line)
            return
        if not path.is_file():
            if own_holdout:
                ctx.error(where, f"holdout is not a file: {path}", line)
            return
        digest = ctx.digests.get(str(path))
        if digest is None:
            try:
                digest = ctx.digests[str(path)] = sha256_file(path)
            except OSError as exc:
                if own_holdout:
                    ctx.error(where, f"holdout file cannot be read: {exc}", line)
                return
    if mp.holdout_sha256 is None:
        ctx.warn(where, f"holdout is not pinned by digest: add holdout_sha256: {digest}"
                 if digest else "holdout is not pinned by digest: add holdout_sha256 (the "
                 "digest is recorded with every decision either way)", line)
    elif digest is not None and digest != mp.holdout_sha256:
        ctx.warn(where, f"the holdout file's sha256 is {digest}, not holdout_sha256 "
                        f"{mp.holdout_sha256}: every request fails until they agree",
                 ctx.line_of(f"{scope}.holdout_sha256", where, scope))
