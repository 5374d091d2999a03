"""Reading a policy: ``load_policy`` (a file), ``parse_text`` (YAML), ``parse_policy`` (a
parsed document). Each section's keys are checked and converted as the schema declares them
(``_clean``, ``_value``), deprecated keys are read as their replacement or refused
(``_DEPRECATED``), each model's section is merged over ``default`` and built once, and the
rules across keys are checked on the result (``_check_model``, ``_check_holdout``). Every
problem is collected, never just the first."""

from __future__ import annotations

import dataclasses
import logging
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from podium_policy import fields
from podium_policy.fields import expected, in_range, note, range_text
from podium_policy.load import lineno, load_yaml
from podium_policy.people import Ctx, approvers, operators, parse_people, suggest
from podium_policy.rules import check_model
from podium_policy.schema import (
    PROBABILITY,
    SHA256,
    SLACK_GROUP,
    TOP_LEVEL,
    Bad,
    Comparison,
    ModelPolicy,
    Policy,
    PolicyError,
    Problem,
    Shadow,
    is_uri,
)
from podium_policy.targets import TARGETS, normalise_target

log = logging.getLogger("podium_policy.policy")  # the name it has always logged under


def load_policy(path: str | Path | None, *, warn: bool = True) -> Policy:
    """Read and validate ``path``; PolicyError lists every problem. ``None`` means "no policy
    file" (the built-in defaults: only for commands that decide nothing, e.g. ``podium
    check`` without ``--policy``); a path that does not exist is an error."""
    if path is None:
        return Policy.empty()
    p = Path(path)
    if not p.exists():
        raise PolicyError(Problem("", "the policy file does not exist (fail closed: Podium "
                                      "never falls back to defaults for a named file)",
                                  source=str(path)))
    if not p.is_file():
        raise PolicyError(Problem("", "not a file", source=str(path)))
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(Problem("", f"cannot read it: {exc}", source=str(path))) from None
    return parse_text(text, base=p.parent, source=str(path), warn=warn)


def parse_text(text: str, base: Path = Path("."), source: str | None = None, *,
               warn: bool = True) -> Policy:
    """Parse policy YAML (duplicate keys refused, lines kept for the messages)."""
    doc, problems = load_yaml(text, source)
    return parse_policy(doc, base=base, source=source, warn=warn, problems=problems)


def parse_policy(doc: Any, base: Path = Path("."), source: str | None = None, *,
                 warn: bool = True, problems: list[Problem] | None = None) -> Policy:
    """Validate a parsed document (a dict, or what ``load_yaml`` returns, which knows its
    lines) into a Policy; PolicyError lists every problem."""
    ctx = Ctx(base, source, list(problems or ()))
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        ctx.error("policy", "expected a mapping with 'default', 'models' and/or 'people'",
                  lineno(doc))
        raise PolicyError(ctx.problems)
    for key in doc:
        if key not in TOP_LEVEL:
            ctx.error(str(key), "unknown key (expected 'default', 'models', 'people' or "
                      "'operators')" + suggest(key, TOP_LEVEL), lineno(doc, key))
    parse_people(ctx, doc.get("people"), lineno(doc, "people"))
    ops = operators(ctx, doc)
    default_raw = _clean(ctx, doc.get("default"), ModelPolicy, "default", lineno(doc, "default"))
    models_doc = doc.get("models")
    models_raw: dict[str, dict] = {}
    if models_doc is not None and not isinstance(models_doc, dict):
        ctx.error("models", "expected a mapping of model name to settings",
                  lineno(doc, "models"))
    elif models_doc:
        for name, body in models_doc.items():
            models_raw[str(name)] = _clean(ctx, body, ModelPolicy, f"models.{name}",
                                           lineno(models_doc, name))
    default = _build(ModelPolicy, default_raw)
    check_model(ctx, default, "default", default_raw)
    models = {}
    for name, raw in models_raw.items():
        models[name] = _build(ModelPolicy, _merge(default_raw, raw))
        check_model(ctx, models[name], f"models.{name}", raw)
    if ctx.problems:
        raise PolicyError(sorted(ctx.problems, key=lambda p: (p.line is None, p.line or 0)),
                          tuple(ctx.warnings))
    if warn:
        for line in ctx.warnings:
            log.warning("%s", line)
    people = {name: MappingProxyType(dict(kinds)) for name, kinds in ctx.people.items()}
    return Policy(default=default, models=MappingProxyType(models),
                  people=MappingProxyType(people), source=source,
                  warnings=tuple(ctx.warnings), identities=MappingProxyType(dict(ctx.owner)),
                  operators=ops)


@dataclass(frozen=True)
class _Old:
    """A key a section no longer has. With ``new`` it is read as ``new`` (the value checked
    as ``meta`` says, else as ``new`` is, then ``convert``-ed) with the deprecation warning
    ``message`` (formatted with ``value``, the converted value), unless the section also sets
    ``new``; without ``new`` it is refused with ``message``."""

    message: str
    new: str | None = None
    convert: Callable[[Any], Any] | None = None
    meta: Mapping[str, Any] | None = None


_DEPRECATED: dict[type, dict[str, _Old]] = {Comparison: {
    "confidence": _Old("comparison.confidence is deprecated (a two-sided interval): read as "
                       "alpha: {value:g} (one-sided); write alpha instead", "alpha",
                       lambda x: float(f"{(1 - x) / 2:.12g}"),
                       fields.meta("float", "", **PROBABILITY, note="deprecated: use alpha")),
    "min_gain": _Old("comparison.min_gain is deprecated: read as min_improvement: {value:g}",
                     "min_improvement"),
    "seed": _Old("comparison.seed is no longer a setting: the bootstrap seed is derived from "
                 "the model, the versions and the holdout digest, so a decision cannot be "
                 "re-rolled; remove it"),
}}


def _clean(ctx: Ctx, doc: Any, cls: type, path: str, line: int | None) -> dict:
    """The keys ``doc`` sets, converted; each bad key or value is one problem (and left
    out, so the checks after it see the default instead). A deprecated key is read as its
    replacement with a warning, or refused (``_DEPRECATED``)."""
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        ctx.error(path, f"expected a mapping, got {doc!r}", line)
        return {}
    if line:
        ctx.lines[path] = line
    spec = {f.name: f for f in dataclasses.fields(cls)}
    old = _DEPRECATED.get(cls, {})
    out: dict[str, Any] = {}
    for key, value in doc.items():
        where = f"{path}.{key}"
        kline = lineno(doc, key) or line
        if kline:
            ctx.lines[where] = kline
        f = spec.get(key) if isinstance(key, str) else None
        if f is None and key in old:
            _deprecated(ctx, old[key], str(key), value, spec, doc, out, path, kline)
            continue
        if f is None:
            ctx.error(where, f"unknown key (expected one of {', '.join(sorted(spec))})"
                      + suggest(key, spec), kline)
            continue
        if "section" in f.metadata:
            if f.metadata["section"] is Shadow and isinstance(value, list):
                value = {"aliases": value}  # shadow: [challenger], the short form
            if value is None and f.metadata.get("optional"):
                out[key] = None  # off (and off over a default that sets it)
                continue
            out[key] = _clean(ctx, value, f.metadata["section"], where, kline)
            continue
        try:
            out[key] = _value(ctx, value, f.metadata, where, kline)
        except Bad as exc:
            ctx.error(where, str(exc), kline)
    return out


def _deprecated(ctx: Ctx, old: _Old, key: str, value: Any, spec: Mapping[str, Any],
                doc: dict, out: dict[str, Any], path: str, line: int | None) -> None:
    """Read the deprecated ``key`` of the section at ``path`` into ``out`` as its
    replacement (with a warning), or refuse it; a problem names the old key's line."""
    where = f"{path}.{key}"
    if old.new is None:
        ctx.error(where, old.message, line)
        return
    if old.new in doc:
        ctx.error(where, f"set {old.new} or the deprecated {key}, not both", line)
        return
    meta = old.meta or {**spec[old.new].metadata, "note": f"deprecated: use {old.new}"}
    try:
        converted = _value(ctx, value, meta, where, line)
    except Bad as exc:
        ctx.error(where, str(exc), line)
        return
    if old.convert is not None:
        converted = old.convert(converted)
    out[old.new] = converted
    if line:
        ctx.lines.setdefault(f"{path}.{old.new}", line)
    ctx.warn(where, old.message.format(value=converted), line)


def _value(ctx: Ctx, value: Any, meta: Mapping[str, Any], where: str,
           line: int | None) -> Any:
    """``value`` as the key ``meta`` describes accepts it, converted; Bad says why not."""
    kind = meta["kind"]
    if value is None:
        if kind in ("targets", "approvers", "names", "aliases"):
            return frozenset() if kind == "targets" else ()
        if meta["optional"]:
            return None
        raise Bad(f"expected {expected(meta)}, got null")
    if kind in ("int", "float"):
        return _number(value, meta)
    if kind == "approvers":
        return approvers(ctx, value, where, line)
    if kind == "path":
        if not isinstance(value, str) or not value.strip():
            raise Bad(f"expected a path, got {value!r}")
        if is_uri(value):  # a URI (s3://, runs:/ ...) is kept as written
            return value
        p = Path(value)
        return str(p if p.is_absolute() else (ctx.base / p).resolve())
    if meta["choices"]:
        if not isinstance(value, str) or value not in meta["choices"]:
            raise Bad(f"expected {expected(meta)}, got {value!r}")
        return value
    return _KINDS[kind](value, meta)


def _number(value: Any, meta: Mapping[str, Any]) -> int | float:
    if meta["kind"] == "int":
        if isinstance(value, bool) or not isinstance(value, int) or not in_range(value, meta):
            raise Bad(f"expected {expected(meta)}, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Bad(f"expected {expected(meta)}, got {value!r}")
    if not math.isfinite(value):
        raise Bad(f"expected a finite number{range_text(meta)}{note(meta)}, got {value!r}")
    if not in_range(value, meta):
        raise Bad(f"expected {expected(meta)}, got {value!r}")
    return float(value)


def _text(value: Any, meta: Mapping[str, Any]) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Bad(f"expected a non-empty string, got {value!r}")
    if meta["kind"] == "alias" and (any(c.isspace() for c in value)
                                    or re.fullmatch(r"(?i)v\d+|latest", value)):
        raise Bad(f"expected an MLflow alias (no spaces, not 'latest' or v<N>), got {value!r}")
    return value


def _bool(value: Any, meta: Mapping[str, Any]) -> bool:
    if not isinstance(value, bool):
        raise Bad(f"expected true or false, got {value!r}")
    return value


def _cron(value: Any, meta: Mapping[str, Any]) -> str:
    from apscheduler.triggers.cron import CronTrigger

    try:
        CronTrigger.from_crontab(str(value), timezone="UTC")
    except ValueError as exc:
        raise Bad(f"invalid cron expression {value!r} ({exc})") from None
    return str(value)


def _target(value: Any, meta: Mapping[str, Any]) -> str:
    target = normalise_target(value) if isinstance(value, str) else None
    if target is None:
        raise Bad(f"expected one of {', '.join(TARGETS)}, got {value!r}")
    return target


def _targets(value: Any, meta: Mapping[str, Any]) -> frozenset[str]:
    items = value if isinstance(value, list) else [value]
    out = [normalise_target(v) if isinstance(v, str) else None for v in items]
    if None in out:
        raise Bad(f"expected targets among {', '.join(TARGETS)}, got {value!r}")
    return frozenset(out)


def _names(value: Any, meta: Mapping[str, Any]) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise Bad(f"expected a list of names, got {value!r}")
    return tuple(value)


def _aliases(value: Any, meta: Mapping[str, Any]) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    for v in items:
        try:
            _text(v, {"kind": "alias"})
        except Bad as exc:
            raise Bad(f"expected a list of MLflow aliases, got {value!r}: "
                      f"{str(exc).removeprefix('expected ')}") from None
    if len(set(items)) != len(items):
        raise Bad(f"an alias is listed twice in {value!r}")
    return tuple(items)


def _slack_group(value: Any, meta: Mapping[str, Any]) -> str:
    if not isinstance(value, str) or not SLACK_GROUP.match(value):
        raise Bad(f"expected a Slack user group id (S0123ABCD), got {value!r}")
    return value


def _sha256(value: Any, meta: Mapping[str, Any]) -> str:
    if not isinstance(value, str) or not SHA256.match(value):
        raise Bad(f"expected {expected(meta)}, got {value!r}")
    return value.lower()


_KINDS: dict[str, Callable[[Any, Mapping[str, Any]], Any]] = {
    "str": _text, "alias": _text, "bool": _bool, "cron": _cron, "target": _target,
    "targets": _targets, "names": _names, "aliases": _aliases, "slack_group": _slack_group,
    "sha256": _sha256}


def _build(cls: type, values: dict) -> Any:
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in values:
            v = values[f.name]
            nested = "section" in f.metadata and v is not None
            kwargs[f.name] = _build(f.metadata["section"], v) if nested else v
    return cls(**kwargs)


def _merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out
