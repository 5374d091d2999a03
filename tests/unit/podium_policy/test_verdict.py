"""The decision rule on plain values (``podium_policy/verdict.py``), as the request job and
``podium verify`` / ``policy diff`` read it."""

import pytest

from podium_policy.policy import Comparison
from podium_policy.verdict import decide


@pytest.mark.parametrize("failed,target,outcome,inconclusive,kind,reason", [
    (["roc_auc", "slices"], "Production", "wins", "reject", "reject",
     "failed checks: roc_auc, slices"),
    ([], "Staging", None, "reject", "stage", ""),
    ([], "Production", None, "reject", "promote", ""),  # a first champion
    ([], "Production", "wins", "reject", "promote", ""),
    ([], "Production", "loses", "approval", "reject", "loses the comparison: why"),
    ([], "Production", "inconclusive", "reject", "reject", "inconclusive comparison: why"),
    ([], "Production", "inconclusive", "approval", "ask", "inconclusive comparison: why"),
])
def test_the_rule_gives_each_verdict_with_its_reason(failed, target, outcome, inconclusive,
                                                     kind, reason):
    said = decide(failed, target, outcome, ["why"], Comparison(inconclusive=inconclusive))
    assert (said.kind, said.reason) == (kind, reason)
