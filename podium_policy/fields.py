"""What a typed key accepts, declared once on its dataclass field: the metadata engine of the
policy file (``podium_policy.schema``) and of the settings (``webhook_server.core.settings``).

A key is ``key(kind, default, doc, ...)``: its kind (``int``, ``float``, ``bool``, ``str``,
or a kind of the policy's own: ``cron``, ``path``, ``target``, ``sha256``, ...), its meaning,
its allowed range (``lo``/``hi``, each closed unless ``lo_open``/``hi_open``), its choices,
whether null is allowed (``optional``), a ``note`` that ends the "expected ..." of a refusal,
and for a setting its environment variable (``env``) and whether it is a ``secret`` (kept out
of the repr). ``section(cls, doc)`` nests a dataclass of keys. From the metadata come the
range check (``in_range``), the words of a refusal (``range_text``, ``bounds_text``,
``expected``) and the documentation table (``table``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from podium_policy.targets import TARGETS


class AsDict:
    """A section of keys that also reads as plain values (``as_dict``)."""

    def as_dict(self) -> dict[str, Any]:
        """Plain values (lists, not tuples; a section as its dict, an optional one left out
        while off) for code that takes dicts (model_tests, the evidence bundle)."""
        return {f.name: _plain(v) for f in dataclasses.fields(self)
                if (v := getattr(self, f.name)) is not None or not f.metadata.get("optional")
                or "section" not in f.metadata}


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    return value.as_dict() if isinstance(value, AsDict) else value


def meta(kind: str, doc: str, *, lo: float | None = None, hi: float | None = None,
         lo_open: bool = False, hi_open: bool = False, optional: bool = False,
         note: str | None = None, choices: tuple[str, ...] | None = None,
         env: str | None = None, secret: bool = False) -> dict[str, Any]:
    """What a key accepts: its kind, meaning and allowed range (``note`` ends the "expected
    ..." of a refusal, e.g. for a deprecated key)."""
    return {"kind": kind, "doc": doc, "lo": lo, "hi": hi, "lo_open": lo_open,
            "hi_open": hi_open, "optional": optional, "note": note, "choices": choices,
            "env": env, "secret": secret}


def key(kind: str, default: Any, doc: str, **allowed: Any) -> Any:
    """A dataclass field that is a key: its kind, default, meaning and allowed range (a
    secret is left out of the repr)."""
    return dataclasses.field(default=default, repr=not allowed.get("secret", False),
                             metadata=meta(kind, doc, **allowed))


def section(cls: type, doc: str, *, optional: bool = False) -> Any:
    """A dataclass field that is a section of keys (``cls``, built with its defaults); an
    ``optional`` one is off (None) unless the file sets it (``{}``: on, with its defaults)."""
    if optional:
        return dataclasses.field(default=None, metadata={"section": cls, "doc": doc,
                                                         "optional": True})
    return dataclasses.field(default_factory=cls, metadata={"section": cls, "doc": doc})


def num(x: float) -> str:
    """A bound as written (1048576, not 1.04858e+06)."""
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else f"{x:g}"


def in_range(x: float, meta: Mapping[str, Any]) -> bool:
    lo, hi = meta["lo"], meta["hi"]
    if lo is not None and (x <= lo if meta["lo_open"] else x < lo):
        return False
    return not (hi is not None and (x >= hi if meta["hi_open"] else x > hi))


def range_text(meta: Mapping[str, Any]) -> str:
    """The range as an interval, after a noun: `` in (0, 1]``, `` >= 1``, or nothing."""
    lo, hi = meta["lo"], meta["hi"]
    if lo is not None and hi is not None:
        return (f" in {'(' if meta['lo_open'] else '['}{num(lo)}, {num(hi)}"
                f"{')' if meta['hi_open'] else ']'}")
    if lo is not None:
        return f" {'>' if meta['lo_open'] else '>='} {num(lo)}"
    if hi is not None:
        return f" {'<' if meta['hi_open'] else '<='} {num(hi)}"
    return ""


def bounds_text(meta: Mapping[str, Any]) -> str:
    """The range as conditions: ``> 0 and <= 3600`` (the words of a setting's refusal)."""
    lo, hi = meta["lo"], meta["hi"]
    return " and ".join(
        ([f"{'>' if meta['lo_open'] else '>='} {num(lo)}"] if lo is not None else [])
        + ([f"{'<' if meta['hi_open'] else '<='} {num(hi)}"] if hi is not None else []))


def one_of(names: tuple[str, ...]) -> str:
    return " or ".join(names) if len(names) == 2 else f"one of {', '.join(names)}"


def note(meta: Mapping[str, Any]) -> str:
    return f" ({meta['note']})" if meta.get("note") else ""


_WORDS = {"bool": "true or false", "cron": "a cron expression", "path": "a path",
          "target": one_of(TARGETS), "sha256": "a sha256 hex digest (64 hex digits)"}


def expected(meta: Mapping[str, Any]) -> str:
    """What a key accepts, as the end of "expected ...": ``a number in [0, 1]``."""
    kind = meta["kind"]
    if kind == "int":
        return "a whole number" + range_text(meta) + note(meta)
    if kind == "float":
        return "a number" + range_text(meta) + note(meta)
    if meta.get("choices"):
        return one_of(meta["choices"]) + note(meta)
    return _WORDS.get(kind, "a non-empty string") + note(meta)


def table(cls: type, label: str | None = None, prefix: str = "") -> list[tuple[str, str, str]]:
    """(name, default, meaning) of every key of ``cls``, sections walked in order: the name
    is the key path (``checks.roc_auc``), or the metadata ``label`` (``env``)."""
    rows: list[tuple[str, str, str]] = []
    for f in dataclasses.fields(cls):
        if "section" in f.metadata:
            if f.metadata.get("optional"):  # off unless set: the section's own row first
                rows.append((prefix + f.name, "None", f.metadata["doc"]))
            rows += table(f.metadata["section"], label, f"{prefix}{f.name}.")
        else:
            name = f.metadata[label] if label else prefix + f.name
            rows.append((name, repr(f.default), f.metadata["doc"]))
    return rows
