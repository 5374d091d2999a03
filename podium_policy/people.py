"""People and who may decide: ``people.<name>`` (the identities a person uses: ``slack``,
``cli``, ``api``, ``ui``, ``mlflow``, ``gitlab``; each a string or a list; an identity belongs
to one person), ``approval.approvers`` and ``operators`` (lists of people; for one release an
identity is still accepted, with a deprecation warning), and ``Ctx``, what a validation has
found so far (problems, warnings, lines, people)."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from podium_policy.load import lineno
from podium_policy.schema import IDENTITY_KINDS, SLACK_USER, Bad, Problem


class Ctx:
    """What one validation has found so far: problems, warnings, the line of each key path,
    people and who owns each identity, and the digests of the local files read."""

    def __init__(self, base: Path, source: str | None, problems: list[Problem]) -> None:
        self.base, self.source, self.problems = base, source, problems
        self.warnings: list[str] = []
        self.lines: dict[str, int] = {}
        self.people: dict[str, dict[str, tuple[str, ...]]] = {}
        self.owner: dict[str, str] = {}  # identity -> person
        self.where: dict[str, str] = {}  # identity -> key path that lists it
        self.implicit: set[str] = set()  # people named by a deprecated approvers entry
        self.digests: dict[str, str] = {}  # local file -> sha256 (each file read once)

    def error(self, path: str, reason: str, line: int | None = None) -> None:
        self.problems.append(Problem(path, reason, line, self.source))

    def warn(self, path: str, reason: str, line: int | None = None) -> None:
        self.warnings.append(str(Problem(path, reason, line, self.source)))

    def line_of(self, *paths: str) -> int | None:
        for p in paths:
            if self.lines.get(p):
                return self.lines[p]
        return None


def suggest(key: Any, known) -> str:
    close = difflib.get_close_matches(str(key), list(known), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def parse_people(ctx: Ctx, doc: Any, line: int | None) -> None:
    if doc is None:
        return
    if not isinstance(doc, dict):
        ctx.error("people", "expected a mapping of person name to identities, e.g. "
                            "alice: {slack: U0123ALICE, cli: alice}", line)
        return
    for name, kinds in doc.items():
        where = f"people.{name}"
        name_line = lineno(doc, name)
        if not isinstance(name, str) or not name.strip() or ":" in name:
            ctx.error(where, "a person's name is a non-empty string without ':' (identities "
                             "such as slack:U0123 go inside)", name_line)
            continue
        if not isinstance(kinds, dict) or not kinds:
            ctx.error(where, "no identities: give at least one of "
                             f"{', '.join(IDENTITY_KINDS)}, e.g. {{slack: U0123ALICE}}",
                      name_line)
            ctx.people.setdefault(name, {})
            continue
        person: dict[str, tuple[str, ...]] = {}
        for kind, values in kinds.items():
            kw = f"{where}.{kind}"
            kline = lineno(kinds, kind) or name_line
            if kind not in IDENTITY_KINDS:
                ctx.error(kw, f"unknown identity kind (expected one of "
                              f"{', '.join(IDENTITY_KINDS)})" + suggest(kind, IDENTITY_KINDS),
                          kline)
                continue
            items = values if isinstance(values, list) else [values]
            if not items:
                ctx.error(kw, "expected an identity or a list of them, got []", kline)
            found = []
            for i, value in enumerate(items):
                vline = lineno(values, i) if isinstance(values, list) else kline
                try:
                    found.append(_identity_value(kind, value))
                except Bad as exc:
                    ctx.error(kw + (f"[{i}]" if isinstance(values, list) else ""), str(exc),
                              vline or kline)
                    continue
                identity = f"{kind}:{found[-1]}"
                owner = ctx.owner.get(identity)
                if owner is not None and owner != name:
                    ctx.error(kw, f"{identity} is already {owner}'s ({ctx.where[identity]}): "
                                  "an identity belongs to one person", vline or kline)
                    continue
                ctx.owner[identity], ctx.where[identity] = name, kw
            person[kind] = tuple(dict.fromkeys(found))
        ctx.people[name] = person


def _identity_value(kind: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or any(c.isspace() for c in value):
        raise Bad(f"expected a {kind} identity (a string without spaces), got {value!r}")
    if kind == "slack" and not SLACK_USER.match(value):
        raise Bad(f"expected a Slack user id (U0123ABCD, never a name), got {value!r}")
    return value


def approvers(ctx: Ctx, value: Any, where: str, line: int | None) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise Bad(f"expected a list of people (names under people:), got {value!r}")
    names: dict[str, str] = {}  # person -> the entry that named them
    for i, entry in enumerate(value):
        at, eline = f"{where}[{i}]", lineno(value, i) or line
        if not isinstance(entry, str) or not entry.strip():
            ctx.error(at, f"expected a person's name, got {entry!r}", eline)
            continue
        person = _approver(ctx, entry, at, eline)
        if person is None:
            continue
        if person in names:
            same = "" if names[person] == entry else (
                f" ({names[person]!r} and {entry!r} are both {person})")
            ctx.error(at, f"{person} is listed twice{same}: a quorum counts people, so "
                          "list each person once", eline)
            continue
        names[person] = entry
    return tuple(names)


def _approver(ctx: Ctx, entry: str, at: str, line: int | None) -> str | None:
    """The person an ``approvers`` entry names (None after reporting a problem)."""
    if entry in ctx.people and entry not in ctx.implicit:
        return entry
    kind, sep, _ = entry.partition(":")
    if sep and kind in IDENTITY_KINDS:
        identity = entry
    elif not sep and SLACK_USER.match(entry):
        identity = f"slack:{entry}"
    else:
        known = f" (people: {', '.join(sorted(ctx.people))})" if ctx.people else ""
        ctx.error(at, f"{entry!r} is not a person: add people.{entry.split(':')[0]} with "
                      f"their identities{known}" + suggest(entry, ctx.people), line)
        return None
    try:
        _identity_value(identity.partition(":")[0], identity.partition(":")[2])
    except Bad as exc:
        ctx.error(at, str(exc), line)
        return None
    owner = ctx.owner.get(identity)
    if owner is not None and owner not in ctx.implicit:
        ctx.warn(at, f"{entry!r} is an identity, not a person (deprecated, accepted for one "
                     f"release): it is {owner}'s, list {owner!r} instead", line)
        return owner
    kind = identity.partition(":")[0]
    ctx.warn(at, f"{entry!r} is an identity, not a person (deprecated, accepted for one "
                 f"release as the person {identity!r}): move it under people, e.g. "
                 f"people: {{<name>: {{{kind}: {identity.partition(':')[2]}}}}}, and list "
                 "<name>", line)
    if owner is None:
        ctx.people[identity] = {kind: (identity.partition(":")[2],)}
        ctx.owner[identity], ctx.where[identity] = identity, at
        ctx.implicit.add(identity)
    return identity


def operators(ctx: Ctx, doc: dict) -> tuple[str, ...] | None:
    """``operators:`` (people who may replay jobs and resend notifications), or None."""
    if "operators" not in doc:
        return None
    try:
        return approvers(ctx, doc["operators"] or [], "operators", lineno(doc, "operators"))
    except Bad as exc:
        ctx.error("operators", str(exc), lineno(doc, "operators"))
        return ()
