"""Who trains, who is tested, and what a test user's request carries."""

import numpy as np
import pytest

from engine.errors import InvalidInput
from engine.evaluation.split import segment_split, user_folds
from engine.recipes import TrainingData
from engine.recipes.validation import holdout


def sequential_data(n_users: int = 40, per_user: int = 20) -> TrainingData:
    """User k touches items i0..i{per_user-1} in order, one per hour, shuffled in the log."""
    rows = [(f"u{u}", f"i{k}", "view", 1_700_000_000 + 3600 * k) for u in range(n_users) for k in range(per_user)]
    rows = [rows[i] for i in np.random.default_rng(0).permutation(len(rows))]
    users, items, types, ts = zip(*rows, strict=True)
    return TrainingData.from_columns(users, items, types, ts)


def test_ten_folds_test_every_user_once_ten_percent_at_a_time():
    folds = user_folds(200, 10, seed=3)
    assert all(len(f) == 20 for f in folds)
    assert sorted(np.concatenate(folds).tolist()) == list(range(200))
    assert [f.tolist() for f in user_folds(200, 10, seed=3)] == [f.tolist() for f in folds]


@pytest.mark.parametrize("folds", [0, 11])
def test_more_folds_than_ten_percent_slices_are_refused(folds):
    with pytest.raises(InvalidInput, match="folds"):
        user_folds(100, folds, seed=0)


def test_test_users_never_train_and_their_oldest_90_percent_is_the_input():
    data = sequential_data()
    test_users = np.array([0, 5, 7])
    train, cases = holdout(data, test_users)
    held_out = {str(data.user_ids[u]) for u in test_users}
    assert not held_out & set(train.user_ids.tolist())
    assert len(train) == len(data) - 3 * 20
    case = cases[0]
    assert [e.item_id for e in case.history] == [f"i{k}" for k in range(18)]
    assert case.truth == {"i18", "i19"}
    assert train.item_ids.tolist() == data.item_ids.tolist()  # the catalog stays whole


def test_the_input_is_bounded_like_a_campaigns_live_history():
    _, cases = holdout(sequential_data(n_users=2), np.array([1]), history_limit=5)
    assert [e.item_id for e in cases[0].history] == [f"i{k}" for k in range(13, 18)]


def test_a_single_event_user_is_asked_with_no_input():
    data = TrainingData.from_columns(["a", "b", "b"], ["x", "x", "y"], ["view"] * 3, [1, 2, 3])
    _, cases = holdout(data, np.array([0]))
    assert cases[0].history == () and cases[0].truth == {"x"}


def test_segments_hold_out_each_users_newest_20_percent():
    data = sequential_data(n_users=3, per_user=10)
    train, held_out = segment_split(data)
    assert len(train) == 3 * 8
    assert held_out == {"i8": {"u0", "u1", "u2"}, "i9": {"u0", "u1", "u2"}}
