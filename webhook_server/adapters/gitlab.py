"""GitLab: a note on the merge request a version came from, and an optional deploy trigger.

A request that ends (promoted, rejected, failed, ...) leaves a ``gitlab`` row in the outbox
in the same transaction. The sender reads the version's tags: with ``gitlab.mr_iid`` it
posts one note on that merge request (a hidden marker makes it findable, so a crash between
posting and recording never posts twice); without it nothing is posted. On promotion, when
the policy names ``gitlab.deploy_ref`` and a trigger token is set, a deploy pipeline is
triggered with ``MODEL_NAME``, ``MODEL_VERSION`` and ``PODIUM_DECISION``. A GitLab outage
delays notes (retried with backoff) and never blocks a decision.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from typing import Any

import gitlab
import requests
from gitlab.exceptions import GitlabError

from webhook_server import contract
from webhook_server.adapters.notify.blocks import version_url
from webhook_server.adapters.notify.drain import DeliveryError, drain
from webhook_server.core import scrub, tracing
from webhook_server.core.settings import Settings
from webhook_server.intake.validate import is_digits
from webhook_server.store import Store
from webhook_server.store import outbox as ob
from webhook_server.store import transition_requests as reqs
from webhook_server.store.records import Request

log = logging.getLogger(__name__)
MAX_BACKOFF_S = 300.0


class GitLabFailure(DeliveryError):
    """GitLab did not take the call; 4xx answers are permanent."""


def marker(request_id: int, key: str | None) -> str:
    """The hidden first line of Podium's note on a request. Its HMAC (keyed by the GitLab
    token) makes it Podium's alone: a reason cannot forge it (``md`` escapes ``<``), nor can
    a person commenting on the merge request."""
    tag = hmac.new((key or "").encode(), f"podium:request:{request_id}".encode(),
                   hashlib.sha256).hexdigest()[:20]
    return f"<!-- podium:request:{request_id}:{tag} -->"


# GitLab turns these into mentions and references (@all notifies everyone) when a word
# follows them; a zero-width space after the sigil keeps the text and drops the reference
_SIGIL = re.compile(r"([@#!~%$&^])(?=[\w\[{(\"'-])")
_AUTOLINK = re.compile(r"(?i)(\w)(://)|\b(www)(\.)")
_MD_ESCAPE = {"&": "&amp;", "\\": "\\\\", "`": "\\`", "*": "\\*", "[": "\\[", "]": "\\]",
              "|": "\\|", "<": "&lt;", ">": "&gt;"}


def md(text: object, limit: int = 500) -> str:
    """Model or user text as one inert table cell of GitLab markdown: secrets redacted,
    capped, on one line; no HTML (so no ``<!--``), links, images, code spans, mentions or
    references; ``|`` cannot end the cell."""
    out = _SIGIL.sub("\\1\u200b", " ".join(scrub.clean(text, limit).split()))
    out = "".join(_MD_ESCAPE.get(c, c) for c in out)
    return _AUTOLINK.sub(lambda m: (m[1] or m[3]) + "\u200b" + (m[2] or m[4]), out)


def note_body(req: Request, tracking_uri: str | None = None, key: str | None = None) -> str:
    icon = {"promoted": ":trophy:", "rejected": ":no_entry:", "failed": ":x:",
            "staged": ":package:", "cancelled": ":heavy_minus_sign:",
            "archived": ":file_cabinet:", "inconclusive": ":grey_question:"}.get(req.state, "")
    lines = [marker(req.id, key),
             f"### {icon} Podium: {md(req.model, 200)} v{md(req.version, 40)} → "
             f"{md(req.target, 40)}: **{md(req.state, 40)}**", "", "| | |", "|---|---|",
             f"| decided by | {md(req.decided_by or '-', 200)} |",
             f"| checks | {md(req.checks or '-')} |",
             f"| comparison | {md(req.comparison or '-')} |"]
    if live := req.live_line():  # comparison.live: what live outcomes said
        lines.append(f"| live evidence | {md(live)} |")
    if req.reason:
        lines.append(f"| reason | {md(req.reason)} |")
    link = version_url(tracking_uri, req.model, req.version)
    lines += ["", f"Podium request {req.id}" + (f" · [MLflow version]({link})" if link
                                                else "")]
    return "\n".join(lines) + "\n"


def allowed_projects(configured: str | None, extra: str | None = None) -> frozenset[str]:
    """The projects a version's ``gitlab.project_id`` tag may name: GITLAB_PROJECT_ID and
    the comma-separated GITLAB_ALLOWED_PROJECTS (ids or paths, compared as written)."""
    return frozenset(p.strip() for p in [configured or "", *(extra or "").split(",")]
                     if p.strip())


def choose_project(tag: str | None, configured: str | None,
                   extra: str | None = None) -> tuple[str | None, str | None]:
    """(project to post to, None) or (None, why not). A tag is honoured only when it names
    an allowed project: anyone who can tag a version must not steer notes elsewhere."""
    if not tag:
        if configured:
            return configured, None
        return None, "no gitlab.project_id tag and GITLAB_PROJECT_ID unset"
    if tag in allowed_projects(configured, extra):
        return tag, None
    return None, (f"gitlab.project_id {tag[:80]!r} is not an allowed project "
                  f"(GITLAB_PROJECT_ID={configured or 'unset'}, or GITLAB_ALLOWED_PROJECTS): "
                  "no note posted")


class GitLabClient:
    """python-gitlab with transient-error retries; the only place GitLab objects live."""

    def __init__(self, url: str, token: str | None, timeout_s: float = 10) -> None:
        self.gl = gitlab.Gitlab(url, private_token=token, timeout=timeout_s,
                                retry_transient_errors=True)

    def _mr(self, project: str, iid: str):
        return self.gl.projects.get(project, lazy=True).mergerequests.get(int(iid), lazy=True)

    def find_note(self, project: str, iid: str, mark: str) -> int | None:
        """Podium's note: the one whose body starts with ``mark`` (never a note that
        merely quotes it)."""
        notes = _call(lambda: self._mr(project, iid).notes.list(get_all=True, max_retries=2),
                      "notes.list", project)
        return next((n.id for n in notes if (n.body or "").startswith(mark)), None)

    def post_note(self, project: str, iid: str, body: str) -> int:
        return _call(lambda: self._mr(project, iid).notes.create({"body": body},
                                                                 max_retries=2),
                     "notes.create", project).id

    def put_note(self, project: str, iid: str, mark: str, body: str) -> tuple[int, bool]:
        """The note that starts with ``mark``, edited to ``body``, or a new one: (its id,
        whether it was edited)."""
        found = self.find_note(project, iid, mark)
        if found is None:
            return self.post_note(project, iid, body), False
        _call(lambda: self._mr(project, iid).notes.update(found, {"body": body},
                                                          max_retries=2),
              "notes.update", project)
        return found, True

    def trigger(self, project: str, ref: str, token: str, variables: dict[str, str]) -> int:
        return _call(lambda: self.gl.projects.get(project, lazy=True).trigger_pipeline(
            ref, token, variables=variables, max_retries=2), "trigger_pipeline", project).id


def _call(fn, what: str, project: str):
    try:
        with tracing.span(f"gitlab {what}", kind="client",
                          attributes=tracing.attrs(gitlab_project=project)):
            return fn()
    except GitlabError as exc:
        code = exc.response_code
        raise GitLabFailure(f"gitlab: {code} {exc.error_message}",
                            permanent=code in (400, 401, 403, 404, 422)) from None
    except requests.RequestException as exc:
        raise GitLabFailure(f"gitlab: {type(exc).__name__}: {exc}") from None


def policy_marker(key: str | None) -> str:
    """The hidden first line of the policy-diff note of a merge request (keyed like
    ``marker``: nobody else's note can pass for it)."""
    tag = hmac.new((key or "").encode(), b"podium:policy-diff", hashlib.sha256).hexdigest()[:20]
    return f"{contract.POLICY_DIFF_MARKER[:-4]}:{tag} -->"


def policy_diff_body(old: str, new: str, table: str, key: str | None) -> str:
    """The note: which files were compared, then the table ``podium policy diff`` printed
    (numbers and words Podium wrote; a model's words never reach it)."""
    return "\n".join([policy_marker(key), "### Podium: this policy change, replayed on the "
                      "last decisions", "", f"`{md(old, 200)}` → `{md(new, 200)}`", "",
                      table.rstrip(), ""])


def post_policy_diff(settings: Settings, iid: str, old: str, new: str, table: str) -> str:
    """Post (or edit in place) the policy-diff note on merge request ``iid`` of
    GITLAB_PROJECT_ID; a line saying what was done."""
    if not (settings.gitlab_url and settings.gitlab_project_id):
        return "no note: GITLAB_URL and GITLAB_PROJECT_ID are not set"
    if not is_digits(iid):
        return f"no note: {iid[:40]!r} is not a merge request number"
    client = GitLabClient(settings.gitlab_url, settings.gitlab_token)
    note, edited = client.put_note(settings.gitlab_project_id, iid,
                                   policy_marker(settings.gitlab_token),
                                   policy_diff_body(old, new, table, settings.gitlab_token))
    return f"{'edited' if edited else 'posted'} note {note} on !{iid}"


class GitLabSender:
    def __init__(self, store: Store, settings: Settings, registry, policy,
                 client: GitLabClient | None = None, owner: str = "sender",
                 lease_s: float = 60) -> None:
        self.store, self.settings, self.registry, self.policy = store, settings, registry, policy
        self.owner, self.lease_s = owner, lease_s
        self.client = client or (GitLabClient(settings.gitlab_url, settings.gitlab_token)
                                 if settings.gitlab_url and settings.gitlab_token else None)

    def flush(self, limit: int = 100) -> dict[str, int]:
        """Send what is due (a follow-up queued during the pass goes in the same call)."""
        done = {"sent": 0, "retry": 0, "dead": 0}
        for _ in range(5):
            batch = drain(self.store, channel="gitlab", owner=self.owner, send=self._send,
                          limit=limit, max_backoff_s=MAX_BACKOFF_S, permanent_attempts=1,
                          lease_s=self.lease_s)
            for k, v in batch.items():
                done[k] += v
            if not batch["sent"] or batch["retry"]:
                break
        return done

    def _send(self, row: dict[str, Any]) -> tuple[str, dict | None]:
        if row["kind"] == "deploy":
            return self._deploy(row), None
        if self.client is None:  # nothing to post to: no need to ask MLflow for the tags
            return "skipped: GITLAB_URL / GITLAB_TOKEN not set", None
        with self.store.read() as conn:
            req = reqs.get(conn, row["request_id"])
        tags = self.registry.version_tags(req.model, req.version) if self.registry else {}
        iid = tags.get("gitlab.mr_iid")
        project, why_not = choose_project(tags.get("gitlab.project_id"),
                                          self.settings.gitlab_project_id,
                                          self.settings.gitlab_allowed_projects)
        if why_not and tags.get("gitlab.project_id"):
            log.warning("request %s: %s", req.id, why_not)
        follow_up = None
        deploy_ref = self.policy.for_model(req.model).gitlab.deploy_ref
        # deploy pipelines run in the version's (allowed) project, else the configured one
        deploy_project = project or self.settings.gitlab_project_id
        if (req.state == "promoted" and deploy_ref and deploy_project
                and self.settings.gitlab_trigger_token):
            follow_up = {"key": contract.gitlab_deploy(req.id), "kind": "deploy",
                         "request_id": req.id,
                         "payload": {"project": deploy_project, "ref": deploy_ref,
                                     "variables": {"MODEL_NAME": req.model,
                                                   "MODEL_VERSION": req.version,
                                                   "PODIUM_DECISION": req.state}}}
        if not iid:
            return "skipped: no merge request linked to the version", follow_up
        if not project:
            return f"skipped: {why_not}", follow_up
        if not is_digits(iid):
            why_not = f"gitlab.mr_iid {iid[:40]!r} is not a merge request number"
            return f"skipped: {why_not}", follow_up
        mark = marker(req.id, self.settings.gitlab_token)
        if row["attempted_at"] and (found := self.client.find_note(project, iid, mark)):
            return f"note {found} (found after a retry)", follow_up
        with self.store.tx() as conn:
            ob.mark_attempt(conn, row["id"])
        note_id = self.client.post_note(project, iid, note_body(
            req, self.settings.mlflow_tracking_uri, self.settings.gitlab_token))
        return f"note {note_id} on !{iid}", follow_up

    def _deploy(self, row: dict[str, Any]) -> str:
        p = row["payload"]
        with self.store.tx() as conn:
            ob.mark_attempt(conn, row["id"])
        pipeline = self.client.trigger(p["project"], p["ref"],
                                       self.settings.gitlab_trigger_token, p["variables"])
        return f"pipeline {pipeline}"
