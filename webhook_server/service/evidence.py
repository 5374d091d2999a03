"""``podium verify REQUEST``: a decision computed again from its evidence bundle alone.

The bundle is read from where the request says it is (an MLflow artifact), its files are
checked against the digest the request recorded (a changed file: ``tampered``), and
``model_tests.evidence.rederive`` computes the checks judged on scores, the comparison and
the verdict again under the bundle's own policy section. No model is loaded and nothing
is written, in the store or in MLflow.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from webhook_server.adapters.registry import Registry
from webhook_server.store import Store, states
from webhook_server.store import transition_requests as reqs
from webhook_server.store.records import Request

# what the policy's verdict means for a request the policy decided
STATES_OF = {"promote": (states.PROMOTED, states.PROMOTING),
             "stage": (states.STAGED, states.PROMOTING),
             "reject": (states.REJECTED,),
             "ask": ()}
# a holdout pass that waited for live evidence (comparison.live): what the live look decided
LIVE_STATES_OF = {"promote": (states.PROMOTED, states.PROMOTING),
                  "reject": (states.REJECTED,), "inconclusive": (states.INCONCLUSIVE,)}


class EvidenceError(Exception):
    """No verification is possible (unknown request, no bundle, MLflow unreachable);
    ``status`` for HTTP."""

    def __init__(self, message: str, status: int = 404) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Verification:
    request_id: int
    verified: bool
    tampered: bool
    differences: list[str]
    bundle_uri: str | None = None
    bundle_sha256: str | None = None
    recorded_checks: list[str] = field(default_factory=list)  # kept as recorded, not recomputed
    # the live evidence's decisive look (comparison.live): recorded, not recomputed (its
    # labelled pairs are in the store, not in the bundle); None when there was none
    recorded_live: dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        return {"request": self.request_id, "verified": self.verified,
                "tampered": self.tampered, "differences": self.differences,
                "bundle_uri": self.bundle_uri, "bundle_sha256": self.bundle_sha256,
                "recorded_checks": self.recorded_checks, "recorded_live": self.recorded_live}

    def text(self) -> str:
        if self.verified:
            n = len(self.recorded_checks)
            kept = (f" ({n} check(s) kept as recorded, their inputs not being in the "
                    "bundle: --json lists them)" if n else "")
            live = self.recorded_live
            if live:
                kept += (f"; live evidence kept as recorded ({live.get('pairs')} labelled "
                         f"pairs in the store, decision {live.get('decision')}): the bundle "
                         "verifies the holdout decision")
            return f"verified: request {self.request_id}, bundle {self.bundle_sha256}{kept}"
        head = "tampered" if self.tampered else "differences"
        return "\n".join([f"{head}: request {self.request_id}",
                          *(f"  {d}" for d in self.differences)])


class Bundles:
    """Evidence bundles fetched from MLflow into a local cache keyed by digest (each read
    checks the files against the digest again, so a changed cache is found as well)."""

    def __init__(self, registry: Registry, cache: str | None = None) -> None:
        self.registry = registry
        self._own = None if cache else tempfile.TemporaryDirectory(prefix="podium-bundles-")
        self.cache = Path(cache or self._own.name)
        self.cache.mkdir(parents=True, exist_ok=True)

    def close(self) -> None:
        """Remove the cache this object made (one given to it stays)."""
        if self._own is not None:
            self._own.cleanup()

    def get(self, req: Request):
        from model_tests.bundle import read

        if not req.bundle_uri or not req.bundle_sha256:
            raise EvidenceError(f"request {req.id} has no evidence bundle (decided before "
                                "Podium kept them, or not judged)")
        local = self.cache / req.bundle_sha256
        if not (local / "bundle.json").is_file():
            tmp = Path(tempfile.mkdtemp(prefix="fetch-", dir=self.cache))
            try:
                got = self.registry.download(req.bundle_uri, str(tmp))
            except Exception as exc:
                raise EvidenceError(f"the bundle of request {req.id} at {req.bundle_uri} "
                                    f"cannot be read: {type(exc).__name__}: "
                                    f"{str(exc)[:200]}", 503) from None
            if not local.exists():
                os.replace(got, local)
            shutil.rmtree(tmp, ignore_errors=True)
        files = (req.evidence_json().get("bundle") or {}).get("files")
        return read(local, expect=req.bundle_sha256, files=files)


def _request(store: Store, request_id: int) -> Request:
    with store.read() as conn:
        req = reqs.get(conn, request_id)
    if req is None:
        raise EvidenceError(f"no request {request_id}")
    return req


def _against_request(req: Request, bundle) -> list[str]:
    """The bundle against the request row: the same holdout, files and decision."""
    out = []
    holdout = (req.evidence_json().get("holdout") or {}).get("sha256")
    if holdout and (bundle.doc.get("holdout") or {}).get("sha256") != holdout:
        out.append(f"holdout: the request records {holdout[:12]}, the bundle "
                   f"{((bundle.doc.get('holdout') or {}).get('sha256') or '-')[:12]}")
    files = ((bundle.doc.get("models") or {}).get("challenger") or {}).get("sha256")
    if req.model_sha256 and files != req.model_sha256:
        out.append(f"model files: the request records {req.model_sha256[:12]}, the bundle "
                   f"{(files or '-')[:12]}")
    said = (bundle.doc.get("decision") or {}).get("verdict")
    expected = STATES_OF.get(said, ())
    live = _live(req)
    if live is not None and said == "promote":  # the holdout passed; live outcomes decided
        expected = LIVE_STATES_OF.get(live.get("decision"), ())
    if req.decided_by == "policy" and req.state in states.TERMINAL + (states.PROMOTING,) \
            and req.state not in expected:
        out.append(f"decision: the request is {req.state} by the policy, the bundle's "
                   f"verdict is {said!r}" + (f" and the live evidence's "
                                             f"{live.get('decision')!r}" if live else ""))
    return out


def _live(req: Request) -> dict[str, Any] | None:
    """The live evidence's last look, when it decided the request (comparison.live)."""
    live = req.evidence_json().get("live")
    return live if isinstance(live, dict) and live.get("decision") else None


def verify(store: Store, registry: Registry, request_id: int,
           cache: str | None = None) -> Verification:
    """Verify one request from its bundle (EvidenceError: nothing to verify)."""
    from model_tests.bundle import BundleError
    from model_tests.evidence import differences, rederive

    req = _request(store, request_id)
    bundles = Bundles(registry, cache)
    try:
        bundle = bundles.get(req)
    except BundleError as exc:
        return Verification(req.id, False, exc.tampered, [exc.reason], req.bundle_uri,
                            req.bundle_sha256)
    finally:
        bundles.close()
    again = rederive(bundle)
    found = _against_request(req, bundle) + differences(bundle, again)
    return Verification(req.id, not found, False, found, req.bundle_uri, req.bundle_sha256,
                        again.recorded, _live(req))
