"""Request states (the values of the `podium.status` tag).

``promoting`` is recorded, with the ledger's intent row, before an alias moves: once a
request is promoting, only its own job ends it (it is not cancellable or superseded), so
the alias, the ledger and the tags never disagree after a crash.

``shadowing``: the version passed the holdout and waits, on the policy's shadow alias, for
live outcomes (``comparison.live``) to decide it; ``inconclusive``: they did not within
``max_days`` (a final state).
"""

QUEUED = "queued"
CHECKING = "checking"
COMPARING = "comparing"
AWAITING_APPROVAL = "awaiting_approval"
SHADOWING = "shadowing"
PROMOTING = "promoting"
PROMOTED = "promoted"
STAGED = "staged"
REJECTED = "rejected"
ARCHIVED = "archived"
FAILED = "failed"
CANCELLED = "cancelled"
INCONCLUSIVE = "inconclusive"

OPEN = (QUEUED, CHECKING, COMPARING, SHADOWING, AWAITING_APPROVAL, PROMOTING)
# What a deleted tag, a withdrawn alias or a newer request may still end.
CANCELLABLE = (QUEUED, CHECKING, COMPARING, SHADOWING, AWAITING_APPROVAL)
TERMINAL = (PROMOTED, STAGED, REJECTED, ARCHIVED, FAILED, CANCELLED, INCONCLUSIVE)
