"""The words of Podium's standalone Slack messages (outbox kind ``message``), rendered at send
time from the data the workflow, the intake, the service and the job runner wrote.

A payload names what happened (``what``) and carries its figures; ``text`` returns the plain
line(s), before ``blocks.md`` escapes them for mrkdwn. A row written by an older Podium
(whole text in ``payload["text"]``) still reads as it was written. ``reply`` words the
ephemeral answers to a click. The threaded steps of a request are ``blocks.step``; GitLab's
note is ``adapters/gitlab.note_body``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Payload = dict[str, Any]


def text(payload: Payload) -> str:
    """The message a payload stands for (its ``text`` when it carries one)."""
    render = _BY_WHAT.get(payload.get("what", ""))
    return render(payload) if render else payload["text"]


def _version(p: Payload) -> str:
    return (f":new: {p['model']} v{p['version']} registered"
            + (f" (run {p['run_id']})" if p.get("run_id") else ""))


def _files_swapped(p: Payload) -> str:
    return (f":rotating_light: the files of {p['model']} v{p['version']} changed after they "
            f"were checked (judged sha256 {p['judged'][:12]}, now {p['now'][:12]}): the "
            f"{p['alias']} alias was not moved; request a new check of the new files")


def _external(p: Payload) -> str:
    return (f":warning: {p['model']}: alias `{p['alias']}` was moved to v{p['seen']} "
            "outside Podium; recorded in the ledger as external")


def _reverted(p: Payload) -> str:
    return (f":rotating_light: {p['model']}: alias `{p['alias']}` was moved to "
            f"v{p['moved_to']} outside Podium (MLflow does not say by whom); put back to "
            f"v{p['home']} (aliases.protect: revert). Promote a version through Podium: "
            "`podium request`.")


def _revert_refused(p: Payload) -> str:
    return (f":rotating_light: {p['model']}: alias `{p['alias']}` was moved outside Podium "
            f"to v{p['moved_to']}, and v{p['home']}'s files changed since its promotion "
            f"(sha256 {p['promoted'][:12]}, now {p['files'][:12]}): not reverted; a person "
            "must decide")


def _files_changed(p: Payload) -> str:
    return (f":rotating_light: {p['model']}: the files of the champion v{p['version']} "
            f"changed after its promotion (sha256 {p['promoted'][:12]} promoted, "
            f"{p['files'][:12]} now): serving may load code nothing judged; roll back "
            f"(`podium rollback {p['model']}`) or promote a checked version")


def _drift(p: Payload) -> str:
    return (f":warning: {p['model']} ({p['model_version']}): drift in "
            f"{', '.join(p['drifted'])} (PSI >= {p['threshold']:g})"
            + ("; retraining queued" if p.get("retrain") else ""))


def _monitoring(p: Payload) -> str:
    lines = [f":chart_with_downwards_trend: {p['model']}, monitoring {p['period']}"]
    if d := p.get("decay"):
        lines.append(f"DECAY: {p['model']} v{d['version']} in {d['period']}: {d['reason']}")
    if p.get("drifted"):
        d = p["drift"]
        lines.append(f"drift ({d['model_version']}): "
                     + ", ".join(f"{k} PSI {d['psi'][k]:.2f}" for k in p["drifted"])
                     + f" (threshold {d['threshold']:g})")
    if p.get("retrain"):
        lines.append(f"retrain {p['retrain']} (policy monitoring.retrain_on_decay)")
    if r := p.get("rollback"):
        lines.append(_decay_rollback(r))
    return "\n".join(lines)


def _decay_rollback(r: Payload) -> str:
    """What became of the rollback ``monitoring.on_decay`` asked for."""
    head = f"rollback ({r['mode']}): {r['why']}"
    if r["state"] == "awaiting_approval":
        return (f"{head}; proposed as request {r['request']}: Rollback or Dismiss it (who may "
                "roll back)")
    if r["state"] == "queued":
        return f"{head}; rolling back now (request {r['request']})"
    return f"{head}; no request: {r['note']}" if r.get("note") else f"{head}; not asked"


def _job_dead(p: Payload) -> str:
    hook = (f"; its dead hook failed: {p['hook_error']}" if p.get("hook_error") else "")
    return (f":skull: job {p['job']} ({p['kind']}) is dead after {p['attempts']} "
            f"attempt(s): {p['error']}{hook} (`podium jobs --state dead`, `podium replay`)")


def reply(payload: Payload) -> str:
    """An ephemeral answer to a click (``service/approvals.py``); its ``text`` when it
    carries one."""
    if "say" not in payload:
        return payload["text"]
    rid, why = payload["request_id"], payload.get("why")
    say = payload["say"]
    if say == "approved_short":
        return (f"You approved request {rid} ({payload['approvals']} of "
                f"{payload['quorum']}); waiting for more approvals.")
    if say == "approved" and payload.get("rollback"):
        return (f"You agreed to request {rid}: rolling {payload['model']} back to "
                f"v{payload['version']}.")
    if say == "approved":
        return f"You approved request {rid}: promoting {payload['model']} v{payload['version']}."
    return _REPLIES[say].format(rid=rid, why=why)


_REPLIES = {
    "rejected": "You rejected request {rid}.",
    "no_request": "Request {rid} does not exist; nothing was decided.",
    "needs_reason": ("Nothing changed: a rejection needs a reason; use `podium reject {rid} "
                     "--reason ...`."),
    "stale": ("Nothing changed: request {rid}'s evidence changed since this message was "
              "posted; look again at the updated message."),
    "no_form": ("Nothing changed: the form asking why could not be opened in time. Click "
                "Reject again, or reject on Podium's page or with `podium reject {rid} "
                "--reason ...`."),
    "no_digest": ("Nothing changed: this message of request {rid} carries no evidence digest "
                  "(it was posted before digests); decide on the page or with `podium "
                  "approve {rid} --evidence ...`."),
    "refused": "Nothing changed: {why}.",
    "give_reason": "Nothing changed: {why}; use Reject and give one.",
}


_BY_WHAT: dict[str, Callable[[Payload], str]] = {
    "version": _version, "files_swapped": _files_swapped, "external": _external,
    "reverted": _reverted, "revert_refused": _revert_refused,
    "files_changed": _files_changed, "drift": _drift, "monitoring": _monitoring,
    "job_dead": _job_dead,
}
