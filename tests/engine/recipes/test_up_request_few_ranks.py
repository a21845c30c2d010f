"""A few items' ranks (exploration's picks) are counted by comparisons instead of one sort of the
catalog: the same ranks as the sort, ties, infinities and NaN scores included."""

from __future__ import annotations

import numpy as np

from engine.recipes import up_request
from engine.recipes.up_request import FEW_RANKS, ranks_of


def test_counted_ranks_are_the_sorted_ranks(monkeypatch):
    rng = np.random.default_rng(5)
    cases = []
    for trial in range(300):
        n = int(rng.integers(1, 300))
        scores = rng.integers(-3, 3, n).astype(float) if trial % 3 == 0 else rng.random(n)
        if trial % 5 == 0:
            scores[rng.choice(n, size=min(n, 3))] = rng.choice([np.inf, -np.inf, np.nan], size=min(n, 3))
        index = rng.choice(n, size=int(rng.integers(1, min(n, FEW_RANKS) + 1)), replace=False)
        cases.append((scores, index, ranks_of(scores, index)))
    monkeypatch.setattr(up_request, "FEW_RANKS", 0)  # every case through the sort
    for scores, index, counted in cases:
        assert (ranks_of(scores, index) == counted).all()
