"""The service's checks and comparison: model code in sandboxes, judgement in Podium.

For one request: Podium reads the version's registry metadata, downloads its files into a
warm sandbox's input directory and the holdout into its own memory (it holds the
credentials), has the sandbox load the model and score the frames the checks build, and
runs every check on the numbers that come back. The comparison scores the champion in a
sandbox of its own (the challenger's scores on the holdout are kept from the checks), and
``compare()`` runs in Podium. Neither model can reach the other, the store, the network or
a secret (``sandbox/``), and neither chooses the data it is judged on (``holdout.py``).
"""

from __future__ import annotations

import contextvars
import functools
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from model_tests import bundle as bundles
from model_tests import holdout as holdouts
from model_tests.checks import CheckReport, run_checks
from model_tests.compare import Comparison, compare
from model_tests.config import JudgeConfig
from model_tests.context import (
    ModelUnderTest,
    VersionInfo,
    model_name,
    signature_of,
    version_info,
)
from model_tests.sandbox import (
    SandboxedModel,
    SandboxError,
    SandboxPool,
    SandboxUnavailable,
)
from model_tests.score_cache import ScoreCache
from podium_policy.digests import model_sha256

log = logging.getLogger(__name__)


# No sandbox could start on this machine now (memory or processes short for a moment): the
# job tries again this many seconds later, every time, instead of after the queue's backoff
# (2 s doubling: the fifth retry waited 32 s, ~62 s in all, for a machine that is usually
# ready again within seconds). Its attempts still count, so a machine that never starts
# one fails the request with the reason.
SANDBOX_RETRY_S = 2.0


class CheckRunError(Exception):
    """The check run itself could not give a verdict. ``transient``: retry the job (MLflow
    did not answer, no sandbox could start), after ``retry_after_s`` when set; otherwise
    the request fails with this reason (the service hands it to the workflow as
    ``GateFailed`` / ``TransientGateError``)."""

    def __init__(self, message: str, transient: bool,
                 retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.transient, self.retry_after_s = transient, retry_after_s


def _needs_a_sandbox(method):
    """A sandbox that could not be had is no verdict on the model: CheckRunError, transient
    (retried ``SANDBOX_RETRY_S`` later) when this machine could not start one."""
    @functools.wraps(method)
    def judged(*args, **kwargs):
        try:
            return method(*args, **kwargs)
        except SandboxUnavailable as exc:
            raise CheckRunError(exc.reason, transient=exc.transient,
                                retry_after_s=SANDBOX_RETRY_S if exc.transient else None
                                ) from None
    return judged


class SandboxGates:
    """``check`` / ``compare`` / ``release`` for the workflow (``Gates``), and ``score``
    for the drift job.

    Sandboxes come from the pool's spares; the pool is refilled when the job is done
    (``release``), not between its check and its comparison, so no spare imports beside a
    model being measured and a request never waits for a spare it started itself."""

    def __init__(self, pool: SandboxPool, config_for: Callable[[str], JudgeConfig],
                 tracking_uri: str | None = None, scores: ScoreCache | None = None) -> None:
        self.pool, self.config_for, self.tracking_uri = pool, config_for, tracking_uri
        self.scores = scores if scores is not None else ScoreCache()
        self._trained: dict[str, np.ndarray | None] = {}  # training row ids by run
        self._files: dict[tuple, str] = {}  # (name, version, source) -> last files digest
        self._lock = threading.Lock()
        self._local = threading.local()

    # --- what the workflow calls ---------------------------------------------------------

    @_needs_a_sandbox
    def check(self, model_uri: str) -> CheckReport:
        cfg = self._config(model_name(model_uri) or "")
        info = version_info(model_uri, self._client())
        self._step_infos([info])
        holdout, missing = None, None
        try:
            holdout = self._holdout(cfg, info.run_id)
        except holdouts.RunHoldoutMissing as exc:  # the version's fault: its checks fail
            missing = str(exc)
        model = self._start(info, f"{info.name} v{info.version}", cfg)
        try:
            m = self._under_test(info, model, holdout, missing)
            results = tuple(run_checks(m, cfg.thresholds))
            scores = m.extras.get("holdout_scores")
            if scores is not None and holdout is not None:  # the comparison reuses them
                self.scores.put(ScoreCache.key(info, holdout.sha256, model.sha256), scores)
        finally:
            model.close()
        return CheckReport(results, holdout.as_json() if holdout is not None else None,
                           model.sha256)

    @_needs_a_sandbox
    def compare(self, model: str, challenger: str, champion: str) -> Comparison:
        client = self._client()
        cfg = self._config(model)
        with ThreadPoolExecutor(2) as run:  # both read at once: four MLflow calls each,
            # in the caller's context (its trace and log fields), as the registry adapter does
            asked = {who: run.submit(contextvars.copy_context().run, version_info,
                                     f"models:/{model}/{v}", client)
                     for who, v in (("challenger", challenger), ("champion", champion))}
            versions = {who: future.result() for who, future in asked.items()}
        self._step_infos(versions.values())
        info = versions["challenger"]
        try:
            holdout = self._holdout(cfg, info.run_id)
        except holdouts.RunHoldoutMissing as exc:
            raise CheckRunError(str(exc), transient=False) from None
        scores = {who: self.scores.get(ScoreCache.key(v, holdout.sha256, self._known(v)))
                  for who, v in versions.items()}
        todo = {who: v for who, v in versions.items() if scores[who] is None}
        if todo:
            with ThreadPoolExecutor(len(todo)) as run:  # both models score at once
                futures = {who: run.submit(contextvars.copy_context().run, self._score, v,
                                           f"the {who} v{v.version}", holdout.frame, cfg)
                           for who, v in todo.items()}
                for who, future in futures.items():
                    scores[who] = future.result()
                    self.scores.put(ScoreCache.key(todo[who], holdout.sha256,
                                                   self._known(todo[who])), scores[who])
        overlap = {f"challenger v{challenger}": self._overlap(info, holdout, cfg),
                   f"champion v{champion}": self._overlap(versions["champion"], holdout, cfg)}
        out = compare(holdout.labels, scores["challenger"],
                      scores["champion"], challenger_version=str(challenger),
                      champion_version=str(champion), threshold=cfg.decision_threshold,
                      comparison=cfg.comparison, business=cfg.business,
                      seed_from=(model, holdout.sha256), overlap=overlap)
        return _with_holdout(out, holdout.as_json())

    def _overlap(self, info: VersionInfo, holdout: holdouts.Holdout,
                 cfg: JudgeConfig) -> int | None:
        """Holdout rows the version trained on (its run's ``lineage/train_ids.npy``), or
        None when its training rows were not recorded."""
        import mlflow

        from training.lineage import TRAIN_IDS, overlap

        if not info.run_id or cfg.id_column not in holdout.frame.columns:
            return None
        if info.run_id not in self._trained:  # a run's artifacts do not change
            try:
                path = mlflow.artifacts.download_artifacts(
                    artifact_uri=f"runs:/{info.run_id}/{TRAIN_IDS}",
                    tracking_uri=self.tracking_uri)
                trained = np.load(path, allow_pickle=False)
            except Exception as exc:
                if holdouts.is_transient(exc):
                    raise
                trained = None  # trained before Podium recorded training rows
            with self._lock:
                self._trained[info.run_id] = trained
                while len(self._trained) > 64:
                    self._trained.pop(next(iter(self._trained)))
        trained = self._trained.get(info.run_id)
        return None if trained is None else overlap(holdout.frame[cfg.id_column], trained)

    @_needs_a_sandbox
    def score(self, model_uri: str, frame) -> np.ndarray:
        """P(churn) for each row of ``frame`` from the version ``model_uri`` names, scored in
        a sandbox under the model's policy (the scheduled drift job: model code never runs
        in the worker). CheckRunError when it cannot be scored."""
        info = version_info(model_uri, self._client())
        cfg = self._config(info.name or "")
        return self._score(info, f"{info.name} v{info.version}", frame, cfg)

    @_needs_a_sandbox
    def open(self, model_uri: str) -> SandboxedModel:
        """The version ``model_uri`` names, loaded in a sandbox of its own under its model's
        policy and kept for many calls (``podium score``'s shadows: a version nobody
        promoted never runs in Podium's process). The caller closes it. CheckRunError when
        no sandbox can be had; ModelFailed / ModelCrashed when the model does not load."""
        info = version_info(model_uri, self._client())
        model = self._start(info, f"{info.name} v{info.version}", self._config(info.name or ""))
        try:
            model.load()
        except BaseException:
            model.close()
            raise
        return model

    @_needs_a_sandbox
    def bundle(self, directory: str, *, request_id: int, model: str, version: str,
               target: str | None, champion: str | None, checks: list, comparison: dict | None,
               verdict: dict) -> tuple[str, dict]:
        """Write the evidence bundle of a decision into ``directory`` (``bundle.py``): the
        holdout's ids, labels and slice columns, both models' scores on it (from the cache;
        scored again only when evicted), the digests and the policy section; its digest and
        ``{file: sha256}``."""
        cfg = self._config(model)
        client = self._client()
        versions = {"challenger": self._step_info(model, version, client)}
        if champion is not None:
            versions["champion"] = self._step_info(model, champion, client)
        try:
            holdout = self._holdout(cfg, versions["challenger"].run_id)
        except holdouts.RunHoldoutMissing:
            holdout = None  # the checks failed on it; the bundle keeps their results
        scores = {who: self._scores_of(v, holdout, cfg) if holdout is not None else None
                  for who, v in versions.items()}
        doc = {"request": {"id": request_id, "model": model, "version": str(version),
                           "target": target, "champion": champion},
               "podium_version": bundles.podium_version(),
               "holdout": holdout.as_json() if holdout is not None else None,
               "models": {who: {"version": str(v.version), "sha256": self._known(v)}
                          for who, v in versions.items()},
               "policy": {"sha256": cfg.policy_sha256, "source": cfg.policy_source,
                          "section": bundles.section(cfg.thresholds, cfg.comparison,
                                                     cfg.business)},
               "checks": checks, "comparison": comparison, "decision": verdict,
               "seed_from": [model, holdout.sha256 if holdout is not None else None]}
        frame = holdout.frame if holdout is not None else None
        ids = (frame[cfg.id_column] if frame is not None and cfg.id_column in frame.columns
               else range(0 if frame is None else len(frame)))
        slices = {c: frame[c] for c in cfg.thresholds.slice_columns
                  if frame is not None and c in frame.columns}
        vectors = bundles.scores_frame(
            ids, holdout.labels if holdout is not None else [], scores["challenger"],
            scores.get("champion"), slices)
        return bundles.write(directory, doc, vectors)

    def _scores_of(self, info: VersionInfo, holdout: holdouts.Holdout,
                   cfg: JudgeConfig) -> np.ndarray | None:
        """The version's holdout scores: cached, else scored again (None: it cannot be)."""
        cached = self.scores.get(ScoreCache.key(info, holdout.sha256, self._known(info)))
        if cached is not None:
            return cached
        try:
            return self._score(info, f"{info.name} v{info.version}", holdout.frame, cfg)
        except CheckRunError as exc:
            if exc.transient:
                raise
            return None

    def release(self) -> None:
        """The job is done: drop its holdouts and start the spares it used up again (the
        scores stay in the cache: numbers, no model code)."""
        self._local.holdouts = {}
        self._local.infos = {}
        self.pool.warm()

    # --- pieces --------------------------------------------------------------------------

    def _client(self):
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    def _config(self, name: str) -> JudgeConfig:
        cfg = self.config_for(name)
        if cfg.sandbox_required and not self.pool.isolation.strong:
            raise CheckRunError(
                f"the policy requires the bubblewrap sandbox for {name} (sandbox: required) "
                f"and this worker has {self.pool.isolation.describe()}: model code was not "
                "run", transient=False)
        if (cfg.sandbox_required and not self.pool.cgroups.available
                and not cfg.sandbox_limits.accept_per_process):
            raise CheckRunError(
                f"the policy requires a sandbox cgroup for {name} (sandbox: required) and "
                f"this worker has {self.pool.describe_limits()}: model code was not run "
                "(sandbox_limits.accept_per_process: true accepts that)", transient=False)
        return cfg

    def _step_infos(self, infos) -> None:
        """What the job's latest check or comparison read of its versions in the registry:
        the evidence bundle it writes next (at the end of that step, or of the first
        champion's comparing step, which compares nothing) records those, not a second
        reading (four MLflow calls a version). ``release`` forgets them with the job."""
        self._local.infos = {(i.name, str(i.version)): i for i in infos}

    def _step_info(self, model: str, version: str, client) -> VersionInfo:
        known = getattr(self._local, "infos", {}).get((model, str(version)))
        return known if known is not None else version_info(f"models:/{model}/{version}",
                                                            client)

    def _holdout(self, cfg: JudgeConfig, run_id: str | None) -> holdouts.Holdout:
        if not hasattr(self._local, "holdouts"):
            self._local.holdouts = {}
        key = (cfg.holdout, cfg.holdout_sha256, None if cfg.holdout else run_id)
        if key not in self._local.holdouts:
            try:
                self._local.holdouts[key] = holdouts.resolve(
                    cfg.holdout, cfg.holdout_sha256,
                    allow_run=cfg.allow_run_holdout, run_id=run_id,
                    tracking_uri=self.tracking_uri)
            except holdouts.RunHoldoutMissing:
                raise
            except holdouts.HoldoutRefused as exc:
                raise CheckRunError(str(exc), transient=False) from None
        return self._local.holdouts[key]

    def _known(self, info: VersionInfo) -> str | None:
        """The digest of the version's files when Podium last downloaded them."""
        with self._lock:
            return self._files.get((info.name, str(info.version), info.source))

    def _start(self, info: VersionInfo, label: str, cfg: JudgeConfig) -> SandboxedModel:
        """A sandbox holding the version's files (downloaded by Podium), under the model's
        own cgroup limits, and their digest (``model.sha256``) computed by Podium before any
        model code runs."""
        import mlflow

        model = SandboxedModel(lambda: self.pool.take(cfg.sandbox_limits), label)
        try:
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=info.source, dst_path=str(model.sandbox.inputs / "download"),
                tracking_uri=self.tracking_uri)
            os.rename(local, model.files)
            model.sha256 = model_sha256(model.files)
        except BaseException:
            model.close()
            raise
        with self._lock:
            self._files[(info.name, str(info.version), info.source)] = model.sha256
            while len(self._files) > 256:
                self._files.pop(next(iter(self._files)))
        return model

    def _under_test(self, info: VersionInfo, model: SandboxedModel,
                    holdout: holdouts.Holdout | None, missing: str | None) -> ModelUnderTest:
        load_s, error = 0.0, None
        try:
            load_s = model.load()
        except SandboxError as exc:
            error = exc.reason
        return ModelUnderTest(
            f"models:/{info.name}/{info.version}", info.name, info.version, info.description,
            info.tags, info.run_id, info.run_inputs, model.files,
            model if error is None else None, error, load_s,
            None if holdout is None else holdout.frame,
            None if holdout is None else holdout.labels, holdout_error=missing,
            signature=signature_of(model.files))

    def _score(self, info: VersionInfo, label: str, frame, cfg: JudgeConfig) -> np.ndarray:
        model = self._start(info, label, cfg)
        try:
            model.load()
            return model.predict(frame)
        except SandboxError as exc:  # ModelFailed, ModelCrashed: a verdict, not a retry
            raise CheckRunError(f"{label} could not be scored: {exc.reason}",
                                transient=False) from None
        finally:
            model.close()


def _with_holdout(c: Comparison, holdout: dict) -> Comparison:
    from dataclasses import replace

    return replace(c, holdout=holdout)

