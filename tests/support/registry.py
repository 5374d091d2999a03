"""An in-memory MLflow registry for workflow tests, and a wrapper that fails one call."""

from __future__ import annotations

from model_tests.checks import REGISTRY, CheckReport, CheckResult
from model_tests.compare import Comparison, Side


class MemoryRegistry:
    """The registry of one model as dicts: aliases, tags, and every alias move made."""

    def __init__(self, aliases=None):
        self.aliases = dict(aliases or {})
        self.tags: dict[str, dict] = {}
        self.moves: list[tuple[str, str | None, str]] = []  # (alias, from, to)
        self.files: dict[str, str] = {}  # version -> digest of its files (to swap them)

    def ask(self, version, origin="tag", target="Production", alias="challenger"):
        """A person's ask in the registry, as the webhook a test then records reports it:
        the ``transition_request`` tag set on ``version``, or ``alias`` put on it (not an
        alias move of Podium's: ``moves`` is not changed)."""
        if origin == "tag":
            self.tags.setdefault(version, {})["transition_request"] = target
        elif origin == "alias":
            self.aliases[alias] = version

    def withdraw(self, version, origin="tag", alias="challenger"):
        """The ask withdrawn: the tag deleted from ``version``, or ``alias`` removed."""
        if origin == "tag":
            self.tags.get(version, {}).pop("transition_request", None)
        else:
            self.aliases.pop(alias, None)

    def alias_version(self, model, alias):
        return self.aliases.get(alias)

    def set_alias(self, model, alias, version):
        if self.aliases.get(alias) != version:
            self.moves.append((alias, self.aliases.get(alias), version))
        self.aliases[alias] = version

    def delete_alias(self, model, alias):
        self.aliases.pop(alias, None)

    def set_tags(self, model, version, tags):
        self.tags.setdefault(version, {}).update(tags)

    def version_exists(self, model, version):
        return True

    def model_sha256(self, model, version):
        """The digest of the version's files: ``files`` (set by a test) or one per version."""
        return self.files.get(version, f"{int(version):064x}")

    def requesters(self, model, version):
        tags = self.tags.get(version, {})
        return [v for v in (tags.get("requested_by"), tags.get("mlflow.user")) if v]

    def version_tags(self, model, version):
        return dict(self.tags.get(version, {}))

    def transition_stage(self, model, version, stage):
        self.set_tags(model, version, {"stage": stage})

    def log_report(self, *args):
        pass

    def log_evidence(self, model, version, request_id, directory, digest):
        """Keep the bundle's files by digest (as MLflow keeps them under the digest's folder:
        logging the same bundle twice leaves one); its URI."""
        from pathlib import Path

        files = {f.name: f.read_bytes() for f in Path(directory).iterdir()}
        self.evidence = {**getattr(self, "evidence", {}), digest: files}
        return f"memory://{model}/{version}/evidence/request-{request_id}/{digest}"


def fake_bundle(directory, *, request_id, model, version, **_):
    """The judge's bundle, reduced to one file naming what was decided: its digest and
    ``{file: sha256}`` (what ``SandboxGates.bundle`` returns)."""
    import hashlib
    from pathlib import Path

    body = f"request {request_id}: {model} v{version}".encode()
    (Path(directory) / "bundle.json").write_bytes(body)
    digest = hashlib.sha256(body).hexdigest()
    return digest, {"bundle.json": digest}


class InjectedFault(ConnectionError):
    """What MLflow unreachable looks like to the workflow (a transient error)."""


class Faults:
    """Counts calls to MLflow (and to the gates, which call MLflow) and fails call number
    ``fail_at`` once: ``before`` the call has any effect, or ``after`` it took effect (the
    answer was lost)."""

    def __init__(self, fail_at: int | None = None, mode: str = "before") -> None:
        self.fail_at, self.mode = fail_at, mode
        self.calls: list[str] = []
        self.fired: str | None = None

    def wrap(self, name: str, fn):
        def call(*args, **kwargs):
            self.calls.append(name)
            hit = len(self.calls) == self.fail_at
            if hit and self.mode == "before":
                self.fired = name
                raise InjectedFault(f"injected fault before call {self.fail_at} ({name})")
            result = fn(*args, **kwargs)
            if hit:
                self.fired = name
                raise InjectedFault(f"injected fault after call {self.fail_at} ({name})")
            return result
        return call


class FaultyRegistry:
    def __init__(self, registry, faults: Faults) -> None:
        self._registry, self._faults = registry, faults

    def __getattr__(self, name):
        return self._faults.wrap(name, getattr(self._registry, name))


def passing(model_uri):
    return CheckReport(tuple(CheckResult(name, cat, True, 1, 1, "ok")
                             for name, (cat, _) in REGISTRY.items()))


def comparison(challenger, champion, wins=True):
    side = Side(challenger, 0.85, 0.6, 0.6, 0.6, 100.0)
    return Comparison("roc_auc", 100, side, Side(champion, 0.84, 0.6, 0.6, 0.6, 90.0), 0.01,
                      0.001, 0.02, 0.95, 1000, wins, [] if wins else ["worse"], "EUR",
                      outcome="wins" if wins else "loses")
