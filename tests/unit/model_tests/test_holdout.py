"""The judge's data: from the policy, pinned by digest; the run's own only when allowed."""

import hashlib

import pytest

from model_tests.holdout import HoldoutRefused, resolve, sha256_of
from training import data as churn_data


@pytest.fixture
def holdout_csv(tmp_path):
    path = tmp_path / "judge.csv"
    churn_data.generate(300, seed=5)[0].to_csv(path, index=False)
    return path


def test_a_policy_holdout_is_read_with_its_digest_and_without_labels_in_the_frame(holdout_csv):
    digest = hashlib.sha256(holdout_csv.read_bytes()).hexdigest()
    h = resolve(str(holdout_csv), digest)
    assert h.sha256 == digest == sha256_of(holdout_csv)
    assert h.source == "policy" and len(h.frame) == len(h.labels) == 300
    assert "Churn" not in h.frame.columns  # the sandbox gets features only
    assert h.as_json() == {"uri": str(holdout_csv), "sha256": digest, "source": "policy",
                           "rows": 300, "positives": int(h.labels.sum())}


def test_a_holdout_whose_digest_is_not_the_pinned_one_is_refused(holdout_csv):
    with pytest.raises(HoldoutRefused, match="the policy pins 000000000000… "
                                             r"\(holdout_sha256\): refusing to judge"):
        resolve(str(holdout_csv), "0" * 64)


def test_without_a_policy_holdout_the_runs_own_is_refused_unless_allowed():
    with pytest.raises(HoldoutRefused, match="set holdout \\(and holdout_sha256\\) in the "
                                             "policy; the challenger's own logged holdout is "
                                             "used only with allow_run_holdout: true"):
        resolve(None, allow_run=False, run_id="abc")


def test_a_missing_or_unreadable_holdout_is_refused_with_the_reason(tmp_path):
    with pytest.raises(HoldoutRefused, match="does not exist"):
        resolve(str(tmp_path / "nope.csv"))
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(HoldoutRefused, match="cannot be read"):
        resolve(str(bad))
