"""MLflow registry actions. The only module that builds an ``MlflowClient``
(``mlflow_client``: the CLI, the model jobs, the monitoring and the demo get theirs here);
everything ``Registry`` returns is plain data."""

from __future__ import annotations

import contextvars
import functools
import json
import logging
import tempfile
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from podium_policy.digests import model_sha256
from webhook_server.contract import (
    MLFLOW_EVENTS,
    TAG_STATUS,
    TRANSITION_REQUEST_TAG,
    evidence_artifact_path,
)
from webhook_server.core import tracing

if TYPE_CHECKING:
    from mlflow import MlflowClient

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RequestedVersion:
    """A version the registry says someone asked to move (tag or alias)."""

    model: str
    version: str
    raw_target: str
    origin: str  # "tag" | "alias"


def mlflow_client(tracking_uri: str | None) -> MlflowClient:
    """An ``MlflowClient`` of the server at ``tracking_uri`` (its registry too). MLflow is
    imported on first use: a command that never calls it starts fast."""
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


class Registry:
    def __init__(self, tracking_uri: str | None) -> None:
        self.tracking_uri = tracking_uri
        self._client = None

    @property
    def client(self) -> MlflowClient:
        """The client; with tracing on, each of its calls is a span ``mlflow <method>``."""
        if self._client is None:
            client = mlflow_client(self.tracking_uri)
            self._client = _TracedClient(client) if tracing.enabled() else client
        return self._client

    def requested_versions(self, challenger_alias: str) -> list[RequestedVersion]:
        found: list[RequestedVersion] = []
        for mv in _pages(lambda token: self.client.search_model_versions(
                filter_string=f"tags.{TRANSITION_REQUEST_TAG} LIKE '%'", max_results=200,
                page_token=token)):
            value = mv.tags.get(TRANSITION_REQUEST_TAG)
            if value is not None:
                found.append(RequestedVersion(mv.name, str(mv.version), value, "tag"))
        for rm in _pages(lambda token: self.client.search_registered_models(
                max_results=200, page_token=token)):
            version = (rm.aliases or {}).get(challenger_alias)
            if version is not None:
                found.append(RequestedVersion(rm.name, str(version), "Production", "alias"))
        return found

    def set_tags(self, model: str, version: str, tags: dict[str, str]) -> None:
        """One call per tag (MLflow has no batch call for version tags), up to eight at a
        time; ``podium.status`` goes last, so a reader that sees it sees the rest."""
        rest = {k: v for k, v in tags.items() if k != TAG_STATUS}
        if len(rest) > 1:
            with ThreadPoolExecutor(max_workers=8) as pool:
                # each call in the caller's context: its span joins the job's trace
                for future in [pool.submit(contextvars.copy_context().run,
                                           self.client.set_model_version_tag, model, version,
                                           k, v) for k, v in rest.items()]:
                    future.result()  # the first failure raises (the job retries)
        else:
            for key, value in rest.items():
                self.client.set_model_version_tag(model, version, key, value)
        if TAG_STATUS in tags:
            self.client.set_model_version_tag(model, version, TAG_STATUS, tags[TAG_STATUS])

    def alias_version(self, model: str, alias: str) -> str | None:
        try:
            return str(self.client.get_model_version_by_alias(model, alias).version)
        except Exception as exc:
            if getattr(exc, "error_code", "") in ("RESOURCE_DOES_NOT_EXIST",
                                                  "INVALID_PARAMETER_VALUE"):
                return None
            raise

    def set_alias(self, model: str, alias: str, version: str) -> None:
        self.client.set_registered_model_alias(model, alias, version)

    def delete_alias(self, model: str, alias: str) -> None:
        """Remove ``alias`` (already gone: nothing to do, so a retry is harmless)."""
        try:
            self.client.delete_registered_model_alias(model, alias)
        except Exception as exc:
            if getattr(exc, "error_code", "") != "RESOURCE_DOES_NOT_EXIST":
                raise

    def version_tags(self, model: str, version: str) -> dict[str, str]:
        return dict(self.client.get_model_version(model, version).tags or {})

    def requesters(self, model: str, version: str) -> list[str]:
        """Every identity the registry names for a request made there (a tag or an alias set
        in MLflow names no author Podium can check): the version's ``requested_by`` tag,
        the version's creator and the source run's ``mlflow.user``; none may approve it."""
        mv = self.client.get_model_version(model, version)
        named = [(mv.tags or {}).get("requested_by"),
                 f"mlflow:{mv.user_id}" if getattr(mv, "user_id", None) else None]
        if mv.run_id:
            try:
                user = self.client.get_run(mv.run_id).data.tags.get("mlflow.user")
            except Exception as exc:
                if getattr(exc, "error_code", "") != "RESOURCE_DOES_NOT_EXIST":
                    raise
                user = None
            named.append(f"mlflow:{user}" if user else None)
        return list(dict.fromkeys(n for n in named if n))

    def model_sha256(self, model: str, version: str) -> str:
        """The digest of the version's files as the registry serves them now (downloaded
        into a temporary directory and hashed: ``podium_policy.digests.model_sha256``; no
        model code is loaded)."""
        import mlflow

        uri = self.client.get_model_version_download_uri(model, version)
        with tempfile.TemporaryDirectory(prefix="podium-digest-") as tmp:
            local = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp,
                                                        tracking_uri=self.tracking_uri)
            return model_sha256(local)

    def version_exists(self, model: str, version: str) -> bool:
        try:
            self.client.get_model_version(model, version)
            return True
        except Exception as exc:
            if getattr(exc, "error_code", "") == "RESOURCE_DOES_NOT_EXIST":
                return False
            raise

    def transition_stage(self, model: str, version: str, stage: str) -> None:
        """Legacy MLflow stages (policy ``stages: true``)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            self.client.transition_model_version_stage(model, version, stage)

    def log_report(self, model: str, version: str, name: str, report: dict,
                   markdown: str) -> None:
        """The request's report (JSON + Markdown) as artifacts of the version's run."""
        run_id = self.client.get_model_version(model, version).run_id
        if not run_id:
            log.warning("%s v%s has no run: report %s not logged", model, version, name)
            return
        self.client.log_text(run_id, json.dumps(report, indent=2, default=str),
                             f"podium/{name}.json")
        self.client.log_text(run_id, markdown, f"podium/{name}.md")

    def log_evidence(self, model: str, version: str, request_id: int, directory: str,
                     digest: str) -> str | None:
        """The files of a request's evidence bundle as artifacts of the version's run, under
        ``podium/evidence/request-<id>/<digest prefix>/`` (never overwritten: other
        content is another folder); their URI (None: the version has no run)."""
        run_id = self.client.get_model_version(model, version).run_id
        if not run_id:
            log.warning("%s v%s has no run: the evidence of request %s is not kept", model,
                        version, request_id)
            return None
        path = evidence_artifact_path(request_id, digest)
        self.client.log_artifacts(run_id, directory, path)
        return f"runs:/{run_id}/{path}"

    def download(self, uri: str, directory: str) -> str:
        """A local copy of the artifacts at ``uri`` (an evidence bundle) under
        ``directory``: its path."""
        import mlflow

        return mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=directory,
                                                   tracking_uri=self.tracking_uri)

    def register_webhook(self, url: str, secret: str | None, name: str = "podium") -> dict:
        """Create (or replace, by name) the MLflow webhook for every event Podium uses."""
        for hook in _pages(lambda token: self.client.list_webhooks(max_results=100,
                                                                   page_token=token)):
            if hook.name == name:
                self.client.delete_webhook(hook.webhook_id)
                log.info("replaced existing webhook %s (%s)", name, hook.webhook_id)
        hook = self.client.create_webhook(name=name, url=url, events=list(MLFLOW_EVENTS),
                                          secret=secret,
                                          description="Podium: automated model promotions")
        return {"id": hook.webhook_id, "name": hook.name, "url": hook.url,
                "events": [str(e) for e in hook.events], "signed": secret is not None}

    def test_webhook(self, webhook_id: str) -> dict:
        result = self.client.test_webhook(webhook_id)
        return {"success": result.success, "status": result.response_status,
                "error": result.error_message}


class _TracedClient:
    """An ``MlflowClient`` whose every method call is a client span named after the method,
    with the model (and version) it was called with as attributes."""

    def __init__(self, client: MlflowClient) -> None:
        self._inner = client

    def __getattr__(self, name: str):
        value = getattr(self._inner, name)
        if not callable(value) or name.startswith("_"):
            return value

        @functools.wraps(value)
        def traced(*args, **kwargs):
            with tracing.span(f"mlflow {name}", kind="client",
                              attributes=_call_attributes(name, args, kwargs)):
                return value(*args, **kwargs)

        return traced


# MlflowClient methods by what their first arguments are: (model, version), (model, alias)
_VERSION_ARGS = ("get_model_version", "set_model_version_tag", "delete_model_version_tag",
                 "get_model_version_download_uri", "transition_model_version_stage")
_ALIAS_ARGS = ("get_model_version_by_alias", "set_registered_model_alias",
               "delete_registered_model_alias")


def _call_attributes(method: str, args: tuple, kwargs: dict) -> dict:
    """The span attributes of one client call: the model and version (or alias) it names,
    the run for run methods; never an argument's content (a report, a tag's value)."""
    def arg(i: int, key: str):
        value = kwargs.get(key, args[i] if len(args) > i else None)
        return value if isinstance(value, (str, int)) else None

    if method in _VERSION_ARGS:
        return tracing.attrs(model=arg(0, "name"), version=arg(1, "version"))
    if method in _ALIAS_ARGS:
        return tracing.attrs(model=arg(0, "name"), alias=arg(1, "alias"))
    if method in ("get_run", "log_text", "log_artifact", "download_artifacts"):
        return tracing.attrs(run_id=arg(0, "run_id"))
    return {}


def _pages(fetch):
    token = None
    while True:
        page = fetch(token)
        yield from page
        token = getattr(page, "token", None)
        if not token:
            return
