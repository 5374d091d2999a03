"""Request states (the values of the `podium.status` tag)."""

QUEUED = "queued"
CHECKING = "checking"
COMPARING = "comparing"
AWAITING_APPROVAL = "awaiting_approval"
PROMOTED = "promoted"
STAGED = "staged"
REJECTED = "rejected"
ARCHIVED = "archived"
FAILED = "failed"
CANCELLED = "cancelled"

OPEN = (QUEUED, CHECKING, COMPARING, AWAITING_APPROVAL)
TERMINAL = (PROMOTED, STAGED, REJECTED, ARCHIVED, FAILED, CANCELLED)
