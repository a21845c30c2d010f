"""A long given list's ranks (GetPersonalizedRanking) are counted in bins of the scores' range
instead of a sort of the catalog: the same ranks as a stable sort, ties and crowded bins included."""

from __future__ import annotations

import numpy as np
import pytest

from engine.recipes import up_request
from engine.recipes.up_request import _counted_in_bins, ranks_of


def sorted_ranks(scores: np.ndarray, index: np.ndarray) -> np.ndarray:
    expected = np.empty(len(scores), dtype=np.int64)
    expected[np.argsort(-scores, kind="stable")] = np.arange(len(scores))
    return expected[index]


@pytest.mark.parametrize("bins", [2, 7, None])
def test_ranks_counted_in_bins_are_the_sorted_ranks(monkeypatch, bins):
    if bins is not None:  # crowded bins; None: the module's own
        monkeypatch.setattr(up_request, "RANK_BINS", bins)
    rng = np.random.default_rng(bins or 0)
    for trial in range(200):
        n = int(rng.integers(20, 3000))
        kind = trial % 4
        if kind == 0:
            scores = rng.integers(-3, 3, n).astype(float)  # many ties
        elif kind == 1:
            scores = rng.standard_normal(n) * 10.0 ** float(rng.integers(-300, 300))  # any scale
        elif kind == 2:
            scores = np.round(rng.random(n), 2)
        else:
            scores = rng.random(n)
        index = rng.choice(n, size=int(rng.integers(up_request.FEW_RANKS + 1, n + 1)), replace=False)
        index[:2] = [int(np.argmin(scores)), int(np.argmax(scores))]  # the range's ends
        index = np.unique(index)
        if len(index) <= up_request.FEW_RANKS:
            continue
        assert _counted_in_bins(scores, scores[index]) is not None
        assert (ranks_of(scores, index) == sorted_ranks(scores, index)).all()


def test_scores_the_bins_cannot_hold_are_left_to_the_sort(monkeypatch):
    """All-equal, infinite or NaN scores, or a range too wide to divide: the sort counts, as before."""
    rng = np.random.default_rng(2)
    scores = rng.random(100)
    cases = [np.full(100, 0.5), np.array([-1.7e308, 1.7e308] * 50)]
    for odd in (np.inf, -np.inf, np.nan):
        with_odd = scores.copy()
        with_odd[[3, 50]] = odd
        cases.append(with_odd)
    index = np.arange(40)
    for case in cases:
        assert _counted_in_bins(case, case[index]) is None
    # With the bins out of the way, every case's ranks are the sort's (NaN counted as the highest).
    found = [ranks_of(case, index) for case in cases]
    monkeypatch.setattr(up_request, "_counted_in_bins", lambda scores, values: None)
    for case, ranks in zip(cases, found, strict=True):
        assert (ranks_of(case, index) == ranks).all()
    assert (found[1] == sorted_ranks(cases[1], index)).all()
