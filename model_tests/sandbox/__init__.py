"""The sandbox: where model code runs, and the one door the checks use to reach it.

A registered model is code, so Podium never loads one in its own process: each model gets
a child process of its own (``sandbox_child.py``, run by path as ``python -I -S -B``;
inside bubblewrap it is bound at ``/podium/sandbox_child.py``), and what comes back is
numbers, checked for count and type. The checks and the comparison run in Podium.

What the rest of ``model_tests`` calls (``gates.py`` does; so do the worker's start-up and
the tests):

- **start**: ``SandboxPool(isolation, limits, env=, spares=, cgroups=, zygote=)`` keeps warm
  spares (at the ``bwrap`` level, forks of one warm zygote: ``zygote.py``);
  ``pool.take(overrides)`` hands one out (``overrides``: a model's cgroup limits over the
  pool's, any object with ``memory_mb``, ``pids``, ``cpu_shares``: ``LimitOverrides``),
  ``pool.warm()`` starts spares again, ``pool.close()`` ends them.
  ``SandboxedModel(take, label)`` is one model in a sandbox from ``take``: Podium puts its
  files in ``model.files``;
- **score**: ``model.load()`` -> seconds; ``model.predict(frame)`` -> one float per row;
  ``model.predict_timed(frame)`` -> (scores, seconds measured by Podium around the call).
  A sandbox that dies is replaced once for the same call;
- **close**: ``model.close()`` kills every process of the sandbox and removes its files
  (and its cgroup);
- **levels**: ``detect(mode, user)`` -> ``Isolation`` (``bwrap``, ``user``, ``process``:
  ``levels.py``; what each gives: ``isolation.py``), ``harden_process()`` for Podium's own
  process;
- **limits**: ``Limits`` (per process, per call, and the sandbox's cgroup:
  ``Limits.cgroup()`` -> ``CgroupLimits``); ``detect_cgroups(root)`` -> ``Cgroups``, where
  a cgroup per sandbox can be made here, or why not (``cgroups.py``);
- **errors** (``errors.py``): ``SandboxError`` and its kinds are the model's failure (a check
  fails with ``reason``); ``SandboxUnavailable`` is no sandbox at all (never the model's).

The modules: ``pool.py`` (spares), ``sandboxed.py`` (a model seen from Podium, the reply
checks), ``isolation.py`` (one sandbox: process, limits, framed protocol), ``levels.py``
(choosing the level, bubblewrap's command line), ``zygote.py`` (sandboxes forked from a warm
zygote; ``sandbox_zygote.py`` runs inside bubblewrap), ``cgroups.py``, ``errors.py`` and
``sandbox_child.py`` (self-contained: it imports nothing of Podium). Importing this package
starts nothing and probes nothing: ``detect`` and ``detect_cgroups`` probe when called.
"""

from model_tests.sandbox.cgroups import CgroupError, CgroupLimits, Cgroups
from model_tests.sandbox.cgroups import detect as detect_cgroups
from model_tests.sandbox.errors import (
    ModelCrashed,
    ModelFailed,
    SandboxDied,
    SandboxError,
    SandboxLimit,
    SandboxTimeout,
    SandboxUnavailable,
)
from model_tests.sandbox.isolation import Limits, Sandbox
from model_tests.sandbox.levels import BASE_ENV, LEVELS, Isolation, detect, harden_process
from model_tests.sandbox.pool import LimitOverrides, SandboxPool
from model_tests.sandbox.sandboxed import SandboxedModel

__all__ = [
    "BASE_ENV", "LEVELS", "CgroupError", "CgroupLimits", "Cgroups", "Isolation", "LimitOverrides",
    "Limits",
    "ModelCrashed", "ModelFailed", "Sandbox", "SandboxDied", "SandboxError", "SandboxLimit",
    "SandboxPool", "SandboxTimeout", "SandboxUnavailable", "SandboxedModel", "detect",
    "detect_cgroups", "harden_process",
]
