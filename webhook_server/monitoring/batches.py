"""``podium score``'s inference log: open one for a registered model version, and record the
logged batch's summary in the store once its file is complete."""

from __future__ import annotations

from typing import TYPE_CHECKING

from webhook_server.store import Store
from webhook_server.store import monitoring as rows

if TYPE_CHECKING:
    from training.inference_log import InferenceLog


def open_log(root: str, version_ref: str, client=None) -> InferenceLog | None:
    """The log of a batch scored by ``version_ref`` (``"churn/3"``, as ``resolve_version``
    answers), with the version's run id from the registry (``client``: an MlflowClient);
    None when the model is not a registered version (a run or a local path)."""
    from training.inference_log import InferenceLog
    from training.score import THRESHOLD

    name, sep, number = version_ref.rpartition("/")
    if not sep or not name or not number.isdigit() or ":" in version_ref:
        return None
    run_id = None
    if client is not None:
        run_id = client.get_model_version(name, number).run_id
    return InferenceLog(root, model=name, version=number, run_id=run_id, threshold=THRESHOLD)


def record(store: Store, log: InferenceLog, *, rejected: int = 0,
           source: str | None = None) -> dict:
    """The batch's summary (the log closed), recorded in the store; as a dict."""
    summary = log.close()
    data = summary.as_json()
    with store.tx() as conn:
        rows.record_batch(conn, {**data, "scored_at": summary.scored_at}, rejected=rejected,
                          source=source)
    return data
