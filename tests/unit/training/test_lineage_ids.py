"""Training rows recorded as hashed ids; a holdout row among them is found."""

import numpy as np

from training.lineage import id_hashes, overlap


def test_training_ids_are_sorted_unique_64_bit_hashes_naming_no_customer():
    hashed = id_hashes(["0002-BBBBB", "0001-AAAAA", "0001-AAAAA"])
    assert hashed.dtype == np.uint64 and len(hashed) == 2
    assert list(hashed) == sorted(hashed)
    assert b"AAAAA" not in hashed.tobytes()


def test_a_leaked_holdout_row_is_counted_and_unseen_rows_are_not():
    trained = id_hashes([f"{i:04d}-TRAIN" for i in range(1000)])
    holdout = [f"{i:04d}-HOLD" for i in range(300)]
    assert overlap(holdout, trained) == 0
    assert overlap(holdout + ["0007-TRAIN"], trained) == 1
