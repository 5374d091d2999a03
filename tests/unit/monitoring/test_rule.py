"""The decay rule: judged only with enough labels and a promotion AUC; fires on a drop over
the margin whose interval lies above zero."""

from webhook_server.monitoring.rule import judge

RULE = {"max_auc_drop": 0.05, "min_labels": 200}


def test_a_large_drop_with_enough_labels_is_decay():
    v = judge(500, 0.70, (0.66, 0.74), 0.84, **RULE)
    assert v.decayed and v.judged
    assert v.drop == 0.84 - 0.70 and v.drop_ci == (0.84 - 0.74, 0.84 - 0.66)
    assert v.reason.startswith("ROC AUC 0.700 vs 0.840 at promotion: drop 0.140, more than 0.05")


def test_the_same_drop_with_too_few_labels_is_not_judged():
    v = judge(150, 0.70, (0.62, 0.78), 0.84, **RULE)
    assert not v.decayed and not v.judged
    assert v.reason == "150 labelled, fewer than min_labels 200"


def test_a_drop_within_the_margin_or_an_interval_reaching_zero_is_no_decay():
    small = judge(500, 0.81, (0.77, 0.85), 0.84, **RULE)
    assert small.judged and not small.decayed and "drop 0.030, within 0.05" in small.reason
    wide = judge(200, 0.78, (0.62, 0.94), 0.84, **RULE)
    assert wide.judged and not wide.decayed and "interval reaches -0.100" in wide.reason


def test_without_a_promotion_auc_or_with_one_class_nothing_is_judged():
    assert judge(500, 0.7, (0.6, 0.8), None, **RULE).reason == \
        "no ROC AUC recorded at promotion"
    one_class = judge(500, None, None, 0.84, **RULE)
    assert not one_class.judged and "one class" in one_class.reason
