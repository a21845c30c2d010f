"""The request path's top-k takes its candidates from a threshold on blocks' maxima instead of a
partition of every score: the same lists as the dense definition, ties, infinities and NaN included."""

from __future__ import annotations

import numpy as np
import pytest

from engine.recipes import Query, up_request
from engine.recipes.up_request import top_candidates
from engine.recipes.user_personalization import UserPersonalization
from tests.engine.recipes.contract import clustered_data
from tests.engine.recipes.test_up_request import FAST, assert_same, histories, with_cold_items


def scores_with_ties(rng: np.random.Generator, n: int, trial: int) -> np.ndarray:
    scores = rng.integers(-4, 4, n).astype(float) if trial % 3 == 0 else rng.random(n)
    if trial % 4 == 1:
        scores[rng.choice(n, size=5, replace=False)] = rng.choice([np.inf, -np.inf, np.nan], size=5)
    return scores


def test_the_candidates_hold_every_item_at_or_above_the_kth_best(monkeypatch):
    monkeypatch.setattr(up_request, "TOP_BLOCK", 7)
    rng = np.random.default_rng(3)
    for trial in range(300):
        n = int(rng.integers(100, 2000))
        scores = scores_with_ties(rng, n, trial)
        k = int(rng.integers(1, n // 28 + 1))
        found = top_candidates(scores, k)
        assert found is not None
        assert (np.diff(found) > 0).all()
        inside = np.zeros(n, dtype=bool)
        inside[found] = True
        if not np.isnan(scores).any():
            # The k best (NaN aside) are all there, and nothing left out scores as high as what is in.
            assert len(found) >= k
            assert np.sort(scores)[-k] >= scores[~inside].max(initial=-np.inf)
        outside = scores[~inside]
        outside = outside[~np.isnan(outside)]
        assert not np.isnan(scores[found]).any()
        if len(found) and len(outside):
            assert outside.max() < scores[found].min()


def test_too_few_blocks_leave_it_to_the_partition(monkeypatch):
    monkeypatch.setattr(up_request, "TOP_BLOCK", 10)
    assert top_candidates(np.random.default_rng(0).random(390), 10) is None
    assert top_candidates(np.random.default_rng(0).random(400), 10) is not None


@pytest.mark.parametrize("block", [1, 2, 3])
def test_the_request_path_still_matches_the_dense_definition(monkeypatch, block):
    monkeypatch.setattr(up_request, "TOP_BLOCK", block)
    model = UserPersonalization(**FAST, cold_item_weight=1.0).fit(
        with_cold_items(clustered_data(n_users=300, n_items=400))
    )
    rng = np.random.default_rng(block)
    ids = model.item_ids.tolist()
    used = 0
    original = up_request.top_candidates

    def counted(scores, k):
        nonlocal used
        found = original(scores, k)
        used += found is not None
        return found

    monkeypatch.setattr(up_request, "top_candidates", counted)
    for k, events in enumerate(histories(model, rng, 40)):
        exclude = frozenset(rng.choice(ids, size=int(rng.integers(0, 4))).tolist()) if k % 2 else frozenset()
        for n in (1, 3, 10):
            query = Query(user_id="x", history=events, num_results=n, exclude=exclude)
            assert_same(model.recommend(query), model.recommend_dense(query))
    assert used > 40


def test_blocked_candidates_are_found_as_isin_finds_them():
    from engine.recipes.up_request import _sorted_members

    rng = np.random.default_rng(8)
    for _ in range(500):
        ascending = np.unique(rng.integers(0, 300, int(rng.integers(0, 80))))
        values = rng.integers(-3, 310, int(rng.integers(0, 40)))  # repeats and values outside too
        assert np.array_equal(_sorted_members(ascending, values), np.isin(ascending, values))
