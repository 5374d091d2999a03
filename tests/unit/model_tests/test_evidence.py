"""A decision computed again from its evidence bundle alone (``model_tests/evidence.py``):
the bundle's own policy gives what was recorded; a changed file is tampered; another
policy's alpha or floor flips the verdict the way the live rule would."""

from __future__ import annotations

import json

import pytest

from model_tests.bundle import BundleError, read
from model_tests.evidence import differences, rederive
from podium_policy.policy import Checks
from podium_policy.policy import Comparison as ComparisonRule
from tests.support.bundles import make, scores

SLICES = {"slice_columns": ("Contract",), "slice_roc_auc": 0.5, "slice_gap": 0.5}


def _bundle(tmp_path, gain, seed=0, **kw):
    y, c, k, contract = scores(gain=gain, seed=seed)
    digest, files, verdict = make(tmp_path / "b", y, c, k, contract=contract, **kw)
    return read(tmp_path / "b", expect=digest, files=files), verdict


def test_rederive_under_the_bundles_own_policy_gives_every_recorded_figure(tmp_path):
    bundle, verdict = _bundle(tmp_path, gain=0.5)
    again = rederive(bundle)
    assert verdict.kind == again.verdict.kind == "promote"
    assert differences(bundle, again) == []
    assert again.recorded == ["latency_p95"]  # its inputs are not in the bundle


def test_a_score_changed_in_the_bundle_is_reported_as_tampered_naming_the_file(tmp_path):
    import pandas as pd

    y, c, k, contract = scores(gain=0.5)
    digest, files, _ = make(tmp_path / "b", y, c, k, contract=contract)
    frame = pd.read_parquet(tmp_path / "b" / "scores.parquet")
    frame.loc[3, "champion"] = 0.99
    frame.to_parquet(tmp_path / "b" / "scores.parquet", index=False)
    with pytest.raises(BundleError) as caught:
        read(tmp_path / "b", expect=digest, files=files)
    assert caught.value.tampered
    assert caught.value.reason.startswith("tampered: scores.parquet changed (bundle digest")


def test_a_recorded_figure_that_the_scores_do_not_give_is_a_difference(tmp_path):
    """The files match their digest, but bundle.json claims a figure the scores do not give
    (what a bug in the live path, or a bundle written by hand, would leave)."""
    y, c, k, contract = scores(gain=0.5)
    make(tmp_path / "b", y, c, k, contract=contract)
    doc = json.loads((tmp_path / "b" / "bundle.json").read_text())
    doc["comparison"]["delta"] += 0.01
    doc["checks"][0]["value"] = 0.5
    (tmp_path / "b" / "bundle.json").write_text(json.dumps(doc))
    found = differences(bundle := read(tmp_path / "b"), rederive(bundle))
    assert any(d.startswith("check roc_auc: recorded pass 0.5, recomputed pass") for d in found)
    assert any(d.startswith("comparison delta: recorded") for d in found)


def test_alpha_0_2_flips_a_borderline_rejection_to_a_promotion(tmp_path):
    bundle, verdict = _bundle(tmp_path, gain=0.08, seed=24)  # p between 0.05 and 0.2
    assert verdict.kind == "reject" and "not shown better" in verdict.reason
    now = rederive(bundle, rule=ComparisonRule(alpha=0.2))
    assert now.verdict.kind == "promote"
    assert 0.05 < now.comparison.p_value < 0.2


def test_a_new_check_floor_flips_a_promotion_to_a_rejection(tmp_path):
    bundle, verdict = _bundle(tmp_path, gain=0.5)
    now = rederive(bundle, checks=Checks(roc_auc=0.99, **SLICES))
    assert verdict.kind == "promote"
    assert now.verdict.kind == "reject" and now.failed() == ["roc_auc"]
    assert now.verdict.reason == "failed checks: roc_auc"


def test_a_slice_column_missing_from_the_bundle_keeps_the_recorded_slice_result(tmp_path):
    bundle, _ = _bundle(tmp_path, gain=0.5)
    now = rederive(bundle, checks=Checks(slice_columns=("Contract", "gender")))
    assert "slices" in now.recorded


def test_a_first_champion_bundle_has_no_comparison_and_promotes(tmp_path):
    y, c, _, contract = scores(gain=0.5)
    digest, files, verdict = make(tmp_path / "b", y, c, None, contract=contract)
    bundle = read(tmp_path / "b", expect=digest, files=files)
    again = rederive(bundle)
    assert (verdict.kind, again.verdict.kind, again.comparison) == ("promote", "promote", None)
    assert differences(bundle, again) == []
