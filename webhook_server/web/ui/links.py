"""Links from a request to where it lives elsewhere: the MLflow version and its run, the
Slack thread, the merge request.

Every URL is built from a configured base (``MLFLOW_TRACKING_URI``, ``GITLAB_URL``, Slack's
web client) and quoted parts; text from the registry never becomes a URL on its own. The
version's run and tags come from MLflow's REST API with a short timeout and are cached a
minute, so a slow or unreachable MLflow costs a page at most ``TIMEOUT_S`` and the links
it would give, never the page (the MLflow client would retry for minutes).
"""

from __future__ import annotations

import re
import threading
import time
from urllib.parse import quote

import requests as http

from webhook_server.core.settings import Settings

TIMEOUT_S, TTL_S, MAX_CACHED = 1.5, 60.0, 256
SLACK_PART = re.compile(r"^[A-Za-z0-9.]{1,40}$")
PROJECT_PATH = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$")
_cache: dict[tuple[str, str, str], tuple[float, dict]] = {}
_lock = threading.Lock()


def mlflow_base(settings: Settings) -> str | None:
    uri = settings.mlflow_tracking_uri or ""
    return uri.rstrip("/") if uri.startswith(("http://", "https://")) else None


def version_url(base: str, model: str, version: str) -> str:
    return f"{base}/#/models/{quote(model, safe='')}/versions/{quote(version, safe='')}"


def model_url(base: str, model: str) -> str:
    return f"{base}/#/models/{quote(model, safe='')}"


def version_info(base: str, model: str, version: str) -> dict:
    """``{"run_id": ..., "tags": {...}}`` of a version, or {} when MLflow does not say."""
    key, now = (base, model, version), time.monotonic()
    with _lock:
        hit = _cache.get(key)
        if hit and now - hit[0] < TTL_S:
            return hit[1]
    try:
        resp = http.get(f"{base}/api/2.0/mlflow/model-versions/get",
                        params={"name": model, "version": version}, timeout=TIMEOUT_S)
        mv = resp.json().get("model_version", {}) if resp.status_code == 200 else {}
        info = {"run_id": str(mv.get("run_id") or ""),
                "tags": {t.get("key"): t.get("value") for t in mv.get("tags", [])
                         if isinstance(t, dict)}}
    except (http.RequestException, ValueError, AttributeError, TypeError):
        info = {}
    with _lock:
        if len(_cache) >= MAX_CACHED:
            _cache.clear()
        _cache[key] = (now, info)
    return info


def for_request(settings: Settings, req, thread: dict | None) -> dict:
    """Named links (label -> URL or None for plain text) of a request."""
    out: dict[str, tuple[str, str | None]] = {}
    base = mlflow_base(settings)
    info: dict = {}
    if base:
        out["MLflow version"] = (f"{req.model} v{req.version}",
                                 version_url(base, req.model, req.version))
        info = version_info(base, req.model, req.version)
        if info.get("run_id"):
            out["MLflow run"] = (info["run_id"], f"{base}/#/runs/{quote(info['run_id'])}")
    if thread and SLACK_PART.match(str(thread.get("channel", ""))) \
            and SLACK_PART.match(str(thread.get("ts", ""))):
        channel, ts = thread["channel"], thread["ts"]
        team = settings.slack_team_id
        url = (f"https://app.slack.com/client/{quote(team)}/{channel}/thread/{channel}-{ts}"
               if team and SLACK_PART.match(team) else None)
        out["Slack thread"] = (f"{channel} / {ts}", url)
    tags = info.get("tags") or {}
    iid, project = str(tags.get("gitlab.mr_iid") or ""), str(tags.get("gitlab.project_id") or "")
    if iid.isdigit() and len(iid) < 12:
        gitlab = (settings.gitlab_url or "").rstrip("/")
        url = (f"{gitlab}/{project}/-/merge_requests/{iid}"
               if gitlab.startswith(("http://", "https://")) and PROJECT_PATH.match(project)
               else None)
        out["Merge request"] = (f"!{iid}" + (f" in {project[:80]}" if project else ""), url)
    return out
