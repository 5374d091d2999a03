"""A ceiling for everything a model can take (``model_tests/cgroups.py``): its sandbox's
processes together, not each one.

The probes (``tests/support/hostile_model.py``): ``forkbomb`` forks up to 200 children in a
bounded loop, ``memhog`` forks 5 children that each fill 100 MiB. Without a cgroup both walk
through the per-process limits (every child is under its own address-space limit; nothing
counts processes). Here each runs at every isolation level this machine has, in a sandbox
whose cgroup allows 384 MiB and 64 processes (bounded on purpose: a probe that escaped
could not take the shared machine down), and must end as the model's failure naming the
limit, with the cgroup's own peak counters under the limit and the cgroup gone afterwards.
Level ``zygote``: the ``bwrap`` isolation, each sandbox forked from the session's zygote
(``zygote.py``: the zygote joins the sandbox's cgroup for the fork, so all of it is there).
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from model_tests.sandbox import (
    CgroupLimits,
    Cgroups,
    Isolation,
    Limits,
    ModelCrashed,
    ModelFailed,
    Sandbox,
    SandboxedModel,
)
from model_tests.sandbox import detect as detect_isolation
from model_tests.sandbox import detect_cgroups as detect
from tests.support import hostile_model as hm
from tests.support.waiting import wait_for

FRAME = pd.DataFrame({"tenure": np.arange(40, dtype=float),
                      "charges": 20.0 + np.arange(40, dtype=float)})
PROBE = Limits(memory_mb=2048, cpu_s=120, timeout_s=60, file_mb=64, start_timeout_s=90,
               total_memory_mb=384, pids=64, cpu_shares=256)
LEVELS = ["bwrap", "zygote", "user", "process"]


def cgroups_here() -> Cgroups:
    found = detect()
    if not found.available:
        pytest.skip(f"no sandbox cgroup on this machine: {found.why}")
    return found


def isolation_for(level: str) -> Isolation:
    if level == "process":
        return Isolation("process", "test: same user, allow-listed environment and limits")
    wanted = "bwrap" if level == "zygote" else level
    iso = detect_isolation(wanted)
    if iso.level != wanted:
        pytest.skip(f"no {level!r} isolation here: {iso.why}")
    return iso


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class Probe:
    """A SandboxedModel holding a hostile model, in sandboxes with their own cgroups; keeps
    every sandbox it took (to read its counters after the call) and removes them."""

    def __init__(self, level: str, cgroups: Cgroups, limits: Limits = PROBE,
                 zygote=None) -> None:
        self.isolation, self.cgroups, self.limits = isolation_for(level), cgroups, limits
        self.zygote = zygote
        self.taken: list[Sandbox] = []

    def take(self) -> Sandbox:
        self.taken.append(Sandbox(self.isolation, self.limits, cgroups=self.cgroups,
                                  zygote=self.zygote))
        return self.taken[-1]

    def model(self, hostile: hm.HostileModel) -> SandboxedModel:
        model = SandboxedModel(self.take, f"the {hostile.mode} model")
        hm.save(model.files, hostile)
        return model

    def close(self) -> None:
        for sandbox in self.taken:
            sandbox.remove()


@pytest.fixture
def probe(request):
    made: list[Probe] = []

    def make(level: str, limits: Limits = PROBE) -> Probe:
        cgroups = cgroups_here()
        zygote = request.getfixturevalue("zygote") if level == "zygote" else None
        made.append(Probe(level, cgroups, limits, zygote))
        return made[-1]
    yield make
    for p in made:
        p.close()


def measured(sandbox: Sandbox, what: str) -> dict:
    used = sandbox.cgroup.usage()
    figures = {"memory_peak_mb": used.memory_peak_mb, "pids_peak": used.pids_peak,
               "oom_kills": used.oom_kills, "forks_refused": used.forks_refused}
    level = "zygote" if sandbox.forked else sandbox.isolation.level
    print(f"MEASURED {what} {level}: {figures}")
    return figures


# --- the doors: a fork bomb, memory held by many processes -------------------------------

@pytest.mark.parametrize("level", LEVELS)
def test_a_fork_bomb_is_the_models_failure_at_the_process_limit(probe, level):
    p = probe(level)
    model = p.model(hm.HostileModel("forkbomb", forks=200, hold_s=30))
    model.load()
    with pytest.raises(ModelFailed) as err:
        model.predict(FRAME)
    assert err.value.reason.startswith("the model exceeded the sandbox process limit (64): "
                                       "BlockingIOError"), err.value.reason
    sandbox = model.sandbox
    report = hm.reports(sandbox.stderr_path.read_text())[-1]
    figures = measured(sandbox, "forkbomb")
    assert report["forked"] < 64 and figures["forks_refused"] > 0
    assert figures["pids_peak"] is None or figures["pids_peak"] <= 64
    # the children it made are in the cgroup; ending the sandbox ends them and the cgroup
    held = sandbox.cgroup.pids()
    assert len(held) > report["forked"]
    model.close()
    assert not any(alive(pid) for pid in held)
    assert not any(d.exists() for d in sandbox.cgroup.dirs.values())


@pytest.mark.parametrize("level", LEVELS)
def test_memory_held_by_many_processes_is_the_models_failure_at_the_memory_limit(probe,
                                                                                level):
    p = probe(level)
    model = p.model(hm.HostileModel("memhog", children=5, child_mb=100, hold_s=30))
    model.load()
    with pytest.raises((ModelFailed, ModelCrashed)) as err:
        model.predict(FRAME)
    # a child killed (the model raises) or the model's own process (no retry: a verdict)
    assert "the model exceeded the sandbox memory limit (384 MiB)" in err.value.reason, \
        err.value.reason
    sandbox = p.taken[-1]
    assert len(p.taken) == 1  # a limit is not a crash to retry in a fresh sandbox
    figures = measured(sandbox, "memhog")
    assert figures["oom_kills"] >= 1
    assert 0 < figures["memory_peak_mb"] <= 384
    model.close()
    assert not any(d.exists() for d in sandbox.cgroup.dirs.values())


# --- the cgroup goes with the sandbox ----------------------------------------------------

@pytest.mark.parametrize("level", ["bwrap", "zygote", "process"])
def test_the_cgroup_and_everything_in_it_go_when_the_sandbox_ends(probe, level):
    p = probe(level)
    model = p.model(hm.HostileModel("fork", setsid=True))
    model.load()
    model.predict(FRAME)
    sandbox = model.sandbox
    line = wait_for(lambda: next((ln for ln in sandbox.stderr_path.read_text().splitlines()
                                  if ln.startswith(hm.GRANDCHILD)), None), 10,
                    "the grandchild to report")
    assert line and len(sandbox.cgroup.pids()) >= 2
    held, dirs = sandbox.cgroup.pids(), list(sandbox.cgroup.dirs.values())
    assert all(d.is_dir() for d in dirs) and len(dirs) >= 2
    if p.zygote is not None:  # it joined the cgroup to fork the sandbox, then left it
        assert p.zygote.host_pid() not in held
    model.close()
    assert not any(alive(pid) for pid in held)
    assert not any(d.exists() for d in dirs)
    if p.zygote is not None:  # the sandbox's end is not the zygote's
        assert p.zygote.alive and alive(p.zygote.host_pid())
    with contextlib.suppress(ProcessLookupError):  # nothing of it is left to kill
        for pid in held:
            os.kill(pid, signal.SIGKILL)


def test_kill_waits_for_processes_that_left_the_cgroup_before_they_died(tmp_path):
    """With bubblewrap, ending the PID namespace's init kills the sandbox's processes; they
    leave ``cgroup.procs`` before they have finished dying, so an empty cgroup is not yet
    "nothing runs": ``kill`` also waits for the members taken before (``known``)."""
    import subprocess

    from model_tests.sandbox import cgroups as cg

    group = object.__new__(cg.Cgroup)
    group.version, group.dirs = "v1", {"pids": tmp_path}
    (tmp_path / "cgroup.procs").write_text("")  # empty: they left it
    proc = subprocess.Popen(["sleep", "60"])
    try:
        known = {proc.pid: cg._stat(proc.pid)[1]}
        assert group.kill(timeout_s=0.3, known=known) is False  # it still runs
    finally:
        proc.kill()
        proc.wait()
    assert group.kill(timeout_s=5, known=known) is True  # gone: now nothing runs


def test_a_models_own_limits_apply_to_a_started_sandbox(probe):
    p = probe("process")
    sandbox = p.take()
    sandbox.ready()
    sandbox.restrict(CgroupLimits(memory_mb=320, pids=32, cpu_shares=100))
    memory, pids = sandbox.cgroup.dirs["memory"], sandbox.cgroup.dirs["pids"]
    assert (memory / "memory.limit_in_bytes").read_text().strip() == str(320 << 20)
    assert (pids / "pids.max").read_text().strip() == "32"
    sandbox.restrict(CgroupLimits(memory_mb=512, pids=64, cpu_shares=100))  # and raised
    assert (memory / "memory.limit_in_bytes").read_text().strip() == str(512 << 20)
    with pytest.raises(OSError, match="cannot apply memory 16 MiB"):
        sandbox.restrict(CgroupLimits(memory_mb=16, pids=64))  # below what it holds


# --- no cgroup here ------------------------------------------------------------------------

def test_no_cgroup_root_means_per_process_limits_said_so(tmp_path):
    missing = detect(str(tmp_path / "nowhere"))
    assert not missing.available
    assert missing.describe(CgroupLimits()) == (
        f"limits: per-process only (no writable cgroup: {tmp_path / 'nowhere'} does not "
        "exist)")
    assert "no cgroup root configured" in detect("").why


def test_a_cgroup_tree_without_the_controls_is_no_cgroup(tmp_path):
    """A directory where cgroups should be, but not a cgroup filesystem (mkdir works, the
    made directory has no memory.limit_in_bytes): not taken for one."""
    for name in ("memory", "pids", "cpu"):
        (tmp_path / name / "podium").mkdir(parents=True)
    own = tmp_path / "self-cgroup"
    own.write_text("4:memory:/podium\n8:pids:/podium\n1:cpu:/podium\n0::/\n")
    found = detect(str(tmp_path), str(own))
    assert not found.available
    assert found.why == (f"{tmp_path}/memory/podium has no memory.limit_in_bytes; "
                         f"{tmp_path}/pids/podium has no pids.max")
    assert list(Path(tmp_path / "memory" / "podium").iterdir()) == []  # the probe is gone


def test_this_machine_says_which_cgroup_it_uses():
    found = cgroups_here()
    text = found.describe(CgroupLimits(memory_mb=4096, pids=256, cpu_shares=512))
    assert text == f"limits: cgroup {found.version} (memory 4096 MiB, pids 256, cpu shares 512)"


def test_a_cgroup_v2_that_does_not_give_memory_and_pids_is_no_cgroup(tmp_path):
    """cgroup v2 (a cgroup.controllers file at the root): Podium's own cgroup must be given
    memory and pids to hand to its sandboxes' cgroups, else it says which are missing."""
    (tmp_path / "cgroup.controllers").write_text("cpu io memory pids\n")
    podium = tmp_path / "podium.service"
    podium.mkdir()
    (podium / "cgroup.controllers").write_text("cpu io\n")
    (podium / "cgroup.subtree_control").write_text("")
    own = tmp_path / "self-cgroup"
    own.write_text("0::/podium.service\n")
    found = detect(str(tmp_path), str(own))
    assert (found.available, found.why) == (
        False, f"cgroup v2 at {podium} is not given memory, pids")
