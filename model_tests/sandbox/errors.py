"""What a call into a sandbox raises, for a person (``reason``) and for code (the class).

``SandboxError`` and its subclasses are about the model: the check that asked fails with
the reason (``ModelFailed``: its code raised; ``SandboxDied``, ``SandboxTimeout``,
``SandboxLimit``: its process ended; ``ModelCrashed``: it did so twice, or passed a
deadline). ``SandboxUnavailable`` is not: no sandbox could be had for the model, so no
check ran (``transient``: this machine could not start one; otherwise the model's own
limits cannot be applied). It is deliberately not a ``SandboxError``: a failure to start a
sandbox is never counted against the model.
"""

from __future__ import annotations


class SandboxError(Exception):
    """A call into a sandbox did not give an answer. ``reason`` says why, for a person."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ModelFailed(SandboxError):
    """The model code raised (``kinds``: its exception class names)."""

    def __init__(self, reason: str, kinds: tuple[str, ...] = ()) -> None:
        super().__init__(reason)
        self.kinds = kinds


class SandboxDied(SandboxError):
    """The process exited, was killed, or broke the protocol."""


class SandboxTimeout(SandboxError):
    """A call passed its deadline; the sandbox was killed."""


class SandboxLimit(SandboxError):
    """The model's processes hit the sandbox cgroup's memory or process limit."""


class ModelCrashed(SandboxError):
    """The model's sandbox died twice on the same call, or passed a deadline: a verdict."""


class SandboxUnavailable(Exception):
    """No sandbox for the model: ``transient`` when this machine could not start one (try
    again later), not when the model's ``sandbox_limits`` cannot be applied."""

    def __init__(self, reason: str, transient: bool) -> None:
        super().__init__(reason)
        self.reason, self.transient = reason, transient
