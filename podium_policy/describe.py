"""The policy's documentation table: every per-model key with its default and meaning."""

from __future__ import annotations

from podium_policy.fields import table
from podium_policy.schema import ModelPolicy


def describe() -> list[tuple[str, str, str]]:
    """(key path, default, meaning) of every per-model key, for documentation."""
    return table(ModelPolicy)
