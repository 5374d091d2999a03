"""One test per model-quality check, for ``pytest model_tests --model-uri ...``."""

import pytest

from model_tests.checks import REGISTRY, run_checks


@pytest.mark.parametrize("name", list(REGISTRY))
def test_check(model_under_test, name):
    m, thresholds = model_under_test
    (result,) = run_checks(m, thresholds, only=[name])
    assert result.passed, f"{result.category}/{name}: {result.reason} " \
                          f"(value {result.value!r}, threshold {result.threshold!r})"
