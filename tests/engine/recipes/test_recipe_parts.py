"""The parts user-personalization and sims are built from: repeats, calibration, metadata,
transitions and EASE."""

import numpy as np
import pytest

from engine.recipes import TrainingData
from engine.recipes.ease import active_items, ease_weights
from engine.recipes.item_metadata import feature_matrix, field_kinds, neighbour_matrix
from engine.recipes.repeats import RankCalibration, RepeatModel, merge, seen_items
from engine.recipes.sequences import transition_matrix
from engine.records import Interaction, Item


def test_seen_items_are_newest_first_with_their_last_event():
    history = [
        Interaction("u", "a", "view", 100.0),
        Interaction("u", "b", "view", 200.0),
        Interaction("u", "a", "purchase", 300.0),
    ]
    items = seen_items(history)
    assert [(s.item_id, s.rank, s.events, s.last_type, s.age_seconds) for s in items] == [
        ("a", 0, 2, "purchase", 0.0),
        ("b", 1, 1, "view", 100.0),
    ]


def test_the_repeat_model_learns_that_a_cart_leads_to_a_purchase_of_the_same_item():
    """Shoppers view items, cart one, browse on, and end up buying exactly the one they carted."""
    rng = np.random.default_rng(0)
    users, items, types, ts = [], [], [], []
    for u in range(150):
        v = [f"i{i}" for i in rng.choice(50, size=9, replace=False)]
        steps = [(i, "view") for i in v[:5]] + [(v[2], "add-to-cart")] + [(i, "view") for i in v[5:]]
        steps.append((v[2], "purchase"))
        for k, (item, kind) in enumerate(steps):
            users.append(f"u{u}")
            items.append(item)
            types.append(kind)
            ts.append(1_700_000_000 + 1000 * u + k)
    model = RepeatModel.fit(TrainingData.from_columns(users, items, types, ts))
    assert model.enabled
    history = [Interaction("x", f"i{k}", "view", float(k)) for k in range(5)]
    history.append(Interaction("x", "i2", "add-to-cart", 10.0))
    p = dict(zip([s.item_id for s in seen_items(history)], model.probabilities(seen_items(history)), strict=True))
    assert p["i2"] > 0.5 > max(v for k, v in p.items() if k != "i2")


def test_no_repeats_in_the_data_means_a_disabled_model_that_scores_zero():
    data = TrainingData.from_columns(
        [f"u{u}" for u in range(40) for _ in range(10)],
        [f"i{k}" for _ in range(40) for k in range(10)],
        ["view"] * 400,
        [float(k) for k in range(400)],
    )
    model = RepeatModel.fit(data)
    assert not model.enabled
    assert model.probabilities(seen_items([Interaction("x", "i1", "view", 1.0)])).tolist() == [0.0]


def test_rank_calibration_never_increases_and_decays_past_the_table():
    hits = np.array([[1, 0, 1, 0], [0, 0, 1, 0], [1, 0, 0, 0]], dtype=float)
    calibration = RankCalibration.from_hits(hits)
    rates = calibration(np.arange(8))
    assert np.all(np.diff(rates) <= 1e-12)
    assert rates[0] == pytest.approx(2 / 3) and rates[1] == pytest.approx(rates[2])
    assert rates[7] == pytest.approx(rates[3] * 4 / 8)


def test_merge_interleaves_by_probability_and_new_items_win_ties():
    items, scores = merge(np.array([1, 2, 3]), np.array([0.3, 0.2, 0.1]), np.array([9, 8]), np.array([0.25, 0.2]), 4)
    assert items.tolist() == [1, 9, 2, 8]
    assert scores.tolist() == [0.3, 0.25, 0.2, 0.2]


def test_metadata_fields_are_told_apart_and_similar_items_become_neighbours():
    items = {
        "tent": Item("tent", {"CATEGORY": "outdoors|camping", "DESCRIPTION": "a light tent for wild camping trips"}),
        "tarp": Item("tarp", {"CATEGORY": "outdoors|camping", "DESCRIPTION": "a light tarp for camping trips"}),
        "pan": Item("pan", {"CATEGORY": "kitchen", "DESCRIPTION": "a cast iron pan for cooking at home"}),
        "pot": Item("pot", {"CATEGORY": "kitchen", "DESCRIPTION": "a steel pot for cooking at home", "PRICE": 9.5}),
    }
    assert field_kinds(items) == {"CATEGORY": "categorical", "DESCRIPTION": "text"}
    ids = np.array(sorted(items))  # pan pot tarp tent
    features = feature_matrix(ids, items)
    neighbours = neighbour_matrix(features, np.array([3]), np.array([0, 1, 2]), 4, neighbours=2)
    row = neighbours[3].toarray().ravel()
    assert row[2] == pytest.approx(1.0) and row[:2].sum() == 0  # tent borrows from tarp only
    assert neighbours[:3].nnz == 0


def test_transitions_count_steps_ahead_and_collapse_repeats_of_one_item():
    data = TrainingData.from_columns(
        ["u"] * 5, ["a", "a", "b", "c", "a"], ["view", "purchase", "view", "view", "view"], [1, 2, 3, 4, 5]
    )
    t = transition_matrix(data, window=2, decay=0.5).toarray()
    a, b, c = (data.item_ids.tolist().index(x) for x in "abc")
    assert t[a, b] == 1.0 and t[a, c] == 0.5 and t[b, c] == 1.0 and t[c, a] == 1.0 and t[b, a] == 0.5
    assert t[a, a] == 0.0


def test_transitions_counted_in_small_stretches_are_the_same_matrix(monkeypatch):
    """The matrix is summed from parts (a gap and a stretch of events at a time): stretches of
    seven pairs, across users' boundaries, give what one pass over every pair gives."""
    import engine.recipes.sequences as sequences

    rng = np.random.default_rng(3)
    n = 400
    data = TrainingData.from_columns(
        [f"u{u}" for u in rng.integers(0, 30, n)],
        [f"i{i}" for i in rng.zipf(1.5, n) % 40],
        ["view"] * n,
        np.sort(rng.uniform(0, 1e6, n)),
    )
    whole = transition_matrix(data, window=4, decay=0.5).toarray()
    monkeypatch.setattr(sequences, "TRANSITION_CHUNK", 7)
    parts = transition_matrix(data, window=4, decay=0.5)
    assert parts.has_canonical_format
    np.testing.assert_allclose(parts.toarray(), whole, rtol=1e-6)
    assert whole.sum() > 100  # plenty of transitions, of every gap


def test_ease_has_a_zero_diagonal_and_links_items_bought_together():
    import scipy.sparse as sp

    x = sp.csr_matrix(np.array([[1, 1, 0], [1, 1, 0], [0, 0, 1], [1, 1, 1]], dtype=float))
    b = ease_weights(x, 0.5)
    assert np.allclose(np.diag(b), 0) and b[0, 1] > b[0, 2]
    assert active_items(np.array([5, 1, 3, 2]), max_items=2).tolist() == [0, 2]


def test_symmetric_top_cut_a_block_of_rows_at_a_time_is_the_whole_sum_cut(monkeypatch):
    """sims keeps each row's top entries of transitions both ways; summed and cut in blocks of
    rows, the answer is the whole sum cut at once, entry for entry."""
    import scipy.sparse as sp

    import engine.recipes.sims as sims

    rng = np.random.default_rng(5)
    n = 60
    forward = sp.random(n, n, density=0.3, format="csr", random_state=rng, dtype=np.float32)
    forward.data = np.round(forward.data * 4) / 4  # ties, broken by column
    whole = sims._keep_top(forward + forward.T, 5)
    monkeypatch.setattr(sims, "SYMMETRIC_BLOCK_ENTRIES", 37)
    blocks = sims._symmetric_top(forward, 5)
    assert blocks.shape == whole.shape and blocks.nnz == whole.nnz == 5 * n
    np.testing.assert_array_equal(blocks.indptr, whole.indptr)
    np.testing.assert_array_equal(blocks.indices, whole.indices)
    np.testing.assert_array_equal(blocks.data, whole.data)
    assert sims._symmetric_top(sp.csr_matrix((0, 0), dtype=np.float32), 5).shape == (0, 0)


def test_rows_by_user_knows_the_splits_grouping_without_sorting_it_again():
    from engine.recipes import sequences

    rng = np.random.default_rng(8)
    n = 500
    stamps = rng.integers(0, 50, n).astype(np.float64)  # ties in time, and not in time order
    data = TrainingData.from_columns(
        [f"u{u}" for u in rng.integers(0, 40, n)], [f"i{i}" for i in rng.integers(0, 30, n)], ["view"] * n, stamps
    )
    keep = rng.random(n) > 0.3
    split = sequences.rows_by_user(data, keep)
    sort_afresh = sequences._events_by_user
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sequences, "_events_by_user", lambda _: pytest.fail("the split was sorted again"))
        remembered = sequences.events_by_user(split)
    order, offsets = sort_afresh(split)
    np.testing.assert_array_equal(remembered[0], order)
    np.testing.assert_array_equal(remembered[1], offsets)
    assert split.interaction_ids is None and len(split) == keep.sum()
