"""The sandbox tests' shared zygote (``model_tests/sandbox/zygote.py``): one warm zygote per
test process, started at its first use (its imports take seconds), for every test that
holds sandboxes forked from it to what the ``bwrap`` level promises."""

from __future__ import annotations

import pytest

from model_tests.sandbox import detect
from model_tests.sandbox.zygote import Zygote, ZygoteUnavailable


def start_zygote() -> Zygote:
    """A new zygote, or the test skipped with the reason this machine has none."""
    iso = detect("bwrap")
    if iso.level != "bwrap":
        pytest.skip(f"bubblewrap does not work here, so no zygote: {iso.why}")
    try:
        return Zygote()
    except ZygoteUnavailable as exc:
        pytest.skip(f"the zygote does not start here: {exc}")


@pytest.fixture(scope="session")
def zygote():
    started = start_zygote()
    yield started
    started.close()
