"""The policy's ``comparison.live`` section: promotion on live evidence. A Production request
that passed the holdout waits in ``shadowing``, its version on the first ``shadow.aliases``
alias, until the always-valid live comparison with the champion decides it (read by
``webhook_server/workflow/shadowing.py``)."""

from __future__ import annotations

from dataclasses import dataclass

from podium_policy.fields import AsDict, key

RULES = ("superiority", "noninferiority")  # the comparison's rules, live or on the holdout


@dataclass(frozen=True)
class Live(AsDict):
    """``comparison.live``: off (None) unless the policy sets it; ``{}`` for the defaults."""

    min_pairs: int = key("int", 1000, "labelled pairs (outcomes both the version and the "
                         "champion predicted) before the live comparison may decide", lo=20)
    rule: str = key("rule", "superiority", "superiority: promote when the always-valid "
                    "interval's lower end clears min_improvement; noninferiority: when it "
                    "clears -margin (the comparison's own min_improvement and margin); the "
                    "upper end below that bound rejects", choices=RULES)
    alpha: float = key("float", 0.05, "error rate of the live decision, however often it is "
                       "looked at (the confidence sequence's level is 1 - alpha)", lo=0.0,
                       hi=0.5, lo_open=True)
    max_days: float = key("float", 30.0, "days in shadowing after which an undecided request "
                          "ends inconclusive (the version leaves the shadow alias)",
                          lo=0.0, hi=366.0, lo_open=True)
