"""The errors that report a policy's problems: ``Problem`` (where and why), ``PolicyError``
(every problem of a file, one per line) and ``Bad`` (a value is wrong; the caller adds where).
``podium_policy.schema`` re-exports them, where callers have always found them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a policy: where (file, line, key path) and why."""

    path: str
    reason: str
    line: int | None = None
    source: str | None = None

    def __str__(self) -> str:
        where = ""
        if self.source:
            where = f"{self.source}:{self.line}: " if self.line else f"{self.source}: "
        elif self.line:
            where = f"line {self.line}: "
        return f"{where}{self.path}: {self.reason}" if self.path else f"{where}{self.reason}"

    def as_json(self) -> dict[str, Any]:
        return {"file": self.source, "line": self.line, "path": self.path,
                "reason": self.reason}


class PolicyError(ValueError):
    """Every problem of a policy file, one per line (``file:line: key.path: reason``)."""

    def __init__(self, problems: str | Problem | list[Problem],
                 warnings: tuple[str, ...] = ()) -> None:
        if isinstance(problems, str):
            problems = [Problem("", problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: tuple[Problem, ...] = tuple(problems)
        self.warnings = tuple(warnings)
        super().__init__("\n".join(map(str, self.problems)))

    def one_line(self) -> str:
        """The first problem, and how many more there are (for a refusal to start)."""
        more = len(self.problems) - 1
        return str(self.problems[0]) + (
            f" (and {more} more problem(s): `podium policy check` lists them)" if more else "")


class Bad(Exception):
    """A value is wrong: the reason (the caller adds where)."""
