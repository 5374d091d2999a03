"""Plain-dict views of stored rows, shared by the API and the CLI."""

from __future__ import annotations

from typing import Any


def _iso(value):
    return value.isoformat() if value is not None else None


def request_json(row: dict[str, Any], history: list[dict[str, Any]] | None = None) -> dict:
    out = {k: row[k] for k in ("id", "model", "version", "target", "raw_target", "origin",
                               "state", "reason", "requested_by", "decided_by", "comment")}
    out["created_at"], out["updated_at"] = _iso(row["created_at"]), _iso(row["updated_at"])
    if history is not None:
        out["history"] = [{"at": _iso(h["at"]), "from": h["from_state"], "to": h["to_state"],
                           "actor": h["actor"], "note": h["note"]} for h in history]
    return out
