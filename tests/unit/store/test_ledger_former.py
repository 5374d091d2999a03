"""The ledger's former champions after a hand move Podium reverted: the version set by hand
never becomes one (a rollback, and a decay's proposal, go to the champion before)."""

import pytest

from webhook_server.store import ledger
from webhook_server.workflow import rollback


@pytest.fixture
def moved(svc):
    """v1 promoted, v3 promoted over it, v2 set by hand in MLflow, v3 put back by Podium."""
    with svc.store.tx() as conn:
        for kind, old, new, actor in (("promote", None, "1", "a"), ("promote", "1", "3", "a"),
                                      ("external", "3", "2", "external"),
                                      ("reverted", "2", "3", "podium:guard")):
            ledger.record(conn, model="churn", alias="champion", from_version=old,
                          to_version=new, kind=kind, actor=actor)
    return svc


def test_the_version_before_a_reverted_hand_move_is_the_rollback_target(moved):
    with moved.store.read() as conn:
        assert ledger.current(conn, "churn", "champion") == "3"
        assert ledger.rollback_target(conn, "churn", "champion", "3") == "1"
        assert ledger.former_champions(conn, "churn", "champion") == ["1", "3"]


def test_a_rollback_to_the_hand_set_version_is_refused(moved):
    with moved.store.read() as conn:
        refused = rollback.validate(conn, "churn", "champion", "2")
        assert rollback.validate(conn, "churn", "champion", "1") is None
    assert refused is not None and "v2 of churn was never champion" in str(refused)


def test_an_unreverted_hand_move_still_rolls_back_to_the_champion_it_replaced(svc):
    with svc.store.tx() as conn:
        ledger.record(conn, model="churn", alias="champion", from_version=None,
                      to_version="1", kind="promote", actor="a")
        ledger.record(conn, model="churn", alias="champion", from_version="1",
                      to_version="2", kind="external", actor="external")
    with svc.store.read() as conn:
        assert ledger.rollback_target(conn, "churn", "champion", "2") == "1"
        assert ledger.former_champions(conn, "churn", "champion") == ["1"]
