"""Exploration picks from a pool worked out once per statistics snapshot (CandidatePool): the same
picks, in the same order, as ruling on every candidate one by one and sampling their counts from the
statistics, for small pools and for pools of most of a catalog, under every kind of filter."""

from __future__ import annotations

import numpy as np
import pytest

from engine.serving.exploration import SMALL_POOL, CandidatePool, ExplorationService, best
from engine.serving.filters_eval import ALLOW_ALL, FilterDecision, Table


def reference(candidates, impressions, clicks, ruled_out, decision, n, rng):
    """What a request did before pools: a pass over the candidates, then Thompson sampling."""
    pool = [c for c in candidates if c not in ruled_out and decision.allows(c)]
    if n <= 0 or not pool:
        return []
    shown = np.array([impressions.get(c, 0) for c in pool], dtype=np.float64)
    clicked = np.array([clicks.get(c, 0) for c in pool], dtype=np.float64)
    samples = rng.beta(clicked + 1.0, np.maximum(shown - clicked, 0.0) + 1.0)
    return [pool[i] for i in np.argsort(-samples, kind="stable")[:n]]


def decisions(ids, rng):
    picked = rng.choice(ids, size=min(len(ids), 40), replace=False).tolist()
    catalog = Table(ids[: len(ids) // 2])
    return [
        ALLOW_ALL,
        FilterDecision(exclude=np.array([*picked[:10], "not-a-candidate"], dtype=str)),
        FilterDecision(include=np.array(picked, dtype=str)),
        FilterDecision(include=np.array(picked[:5], dtype=str), include_unlisted=True, catalog=catalog),
        FilterDecision(exclude=np.array(picked[:3], dtype=str), exclude_unlisted=True, catalog=catalog),
        FilterDecision(exclude_unlisted=True),  # no catalog looked at: everything counts as unlisted
    ]


@pytest.mark.parametrize("size", [0, 12, SMALL_POOL, SMALL_POOL + 1, 5000])
def test_pool_picks_are_the_one_by_one_picks(size):
    rng = np.random.default_rng(size)
    ids = sorted(f"i{k}" for k in rng.choice(10 * max(size, 1), size=size, replace=False).tolist())
    impressions = {c: int(rng.integers(0, 30)) for c in ids if rng.random() < 0.7}
    clicks = {c: int(rng.integers(0, 5)) for c in ids if rng.random() < 0.3}
    pool = CandidatePool(
        ids,
        np.array([impressions.get(c, 0) for c in ids], dtype=np.float64),
        np.array([clicks.get(c, 0) for c in ids], dtype=np.float64),
    )
    for decision in decisions(ids, rng) if ids else [ALLOW_ALL]:
        for n in (0, 1, 7, 30):
            ruled_out = frozenset(rng.choice(ids, size=min(len(ids), 25), replace=False).tolist()) if ids else set()
            seed = int(rng.integers(1 << 30))
            expected = reference(ids, impressions, clicks, ruled_out, decision, n, np.random.default_rng(seed))
            got = ExplorationService.choose(pool, ruled_out, decision, n, np.random.default_rng(seed))
            assert got == expected


def test_best_is_the_stable_descending_order_cut_short():
    rng = np.random.default_rng(3)
    for size in (0, 1, 5, 100, 3000):
        for values in (rng.random(size), rng.integers(0, 4, size).astype(np.float64), np.zeros(size)):
            for n in (0, 1, 3, 10, size):
                assert best(values, n).tolist() == np.argsort(-values, kind="stable")[:n].tolist()
