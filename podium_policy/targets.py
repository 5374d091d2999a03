"""The stages a transition request may name (MLflow's stage names)."""

from __future__ import annotations

TARGETS = ("Staging", "Production", "Archived")
_TARGET_BY_LOWER = {t.lower(): t for t in TARGETS}


def normalise_target(value: str | None) -> str | None:
    """``'production'`` -> ``'Production'``; ``None`` for anything that is not a target."""
    if value is None:
        return None
    return _TARGET_BY_LOWER.get(value.strip().lower())
