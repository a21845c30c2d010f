"""Personalize's offline metrics, computed on one ranked list at a time and then averaged.

The names are the exact keys GetSolutionMetrics returns, so a figure printed here can be put
next to one from Personalize. Definitions follow the developer guide (personalize-formats.md
§3.4): a relevant item is one in the user's held-out truth; precision divides by K even when
fewer than K items came back; NDCG uses 1/log(1 + position) (the base cancels) normalised by
the ideal ordering of min(|truth|, K) hits.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence

import numpy as np

CUTOFFS = (5, 10, 25)
MRR_CUTOFF = 25
#: How many results are asked for per request: the deepest cut-off.
LIST_LENGTH = max(*CUTOFFS, MRR_CUTOFF)

#: The ranking metrics, in the order Personalize lists them.
RANKING_METRICS: tuple[str, ...] = (
    "coverage",
    "mean_reciprocal_rank_at_25",
    *(f"normalized_discounted_cumulative_gain_at_{k}" for k in CUTOFFS),
    *(f"precision_at_{k}" for k in CUTOFFS),
)
#: USER_SEGMENTATION recipes report these instead.
SEGMENT_METRICS: tuple[str, ...] = ("coverage", "hits_at_1_percent", "recall_at_1_percent")

_DISCOUNT = 1.0 / np.log2(np.arange(2, LIST_LENGTH + 2))


def reciprocal_rank(ranked: Sequence[str], truth: Collection[str], k: int = MRR_CUTOFF) -> float:
    """1/position of the first relevant item within the top ``k`` (0 when there is none)."""
    for position, item in enumerate(ranked[:k], start=1):
        if item in truth:
            return 1.0 / position
    return 0.0


def precision_at(ranked: Sequence[str], truth: Collection[str], k: int) -> float:
    return sum(1 for item in ranked[:k] if item in truth) / k


def ndcg_at(ranked: Sequence[str], truth: Collection[str], k: int) -> float:
    if not truth:
        return 0.0
    gains = np.array([item in truth for item in ranked[:k]], dtype=np.float64)
    dcg = float(gains @ _discount(len(gains)))
    ideal = float(_discount(min(len(truth), k)).sum())
    return dcg / ideal


def _discount(n: int) -> np.ndarray:
    return _DISCOUNT[:n] if n <= len(_DISCOUNT) else 1.0 / np.log2(np.arange(2, n + 2))


def list_metrics(ranked: Sequence[str], truth: Collection[str]) -> dict[str, float]:
    """Every per-request ranking metric for one list (coverage is a property of all lists)."""
    out = {"mean_reciprocal_rank_at_25": reciprocal_rank(ranked, truth)}
    for k in CUTOFFS:
        out[f"normalized_discounted_cumulative_gain_at_{k}"] = ndcg_at(ranked, truth, k)
    for k in CUTOFFS:
        out[f"precision_at_{k}"] = precision_at(ranked, truth, k)
    return out


class RankingAccumulator:
    """Collects per-request metrics and the set of items ever recommended, for one fold."""

    def __init__(self, catalog_size: int) -> None:
        self.catalog_size = catalog_size
        self.sums = dict.fromkeys(RANKING_METRICS[1:], 0.0)
        self.requests = 0
        self.recommended: set[str] = set()

    def add(self, ranked: Sequence[str], truth: Collection[str]) -> None:
        for name, value in list_metrics(ranked, truth).items():
            self.sums[name] += value
        self.requests += 1
        self.recommended.update(ranked[:LIST_LENGTH])

    def result(self) -> dict[str, float]:
        n = max(self.requests, 1)
        coverage = len(self.recommended) / self.catalog_size if self.catalog_size else 0.0
        return {"coverage": coverage, **{name: total / n for name, total in self.sums.items()}}


def segment_metrics(
    predicted: Sequence[Sequence[str]], actual: Sequence[Collection[str]], n_users: int, k: int
) -> dict[str, float]:
    """USER_SEGMENTATION metrics over queries (one item each).

    ``hits_at_1_percent`` is the average number of the top-K predicted users (K = 1% of users)
    who really interacted with the query item in the held-out data, as the developer guide
    words it; ``recall_at_1_percent`` is the average share of the real users found in the top K;
    ``coverage`` is the share of all users that appear in some segment.
    """
    hits, recalls, seen = [], [], set()
    for users, truth in zip(predicted, actual, strict=True):
        top = list(users[:k])
        found = sum(1 for u in top if u in truth)
        hits.append(found)
        recalls.append(found / len(truth) if truth else 0.0)
        seen.update(top)
    return {
        "coverage": len(seen) / n_users if n_users else 0.0,
        "hits_at_1_percent": float(np.mean(hits)) if hits else 0.0,
        "recall_at_1_percent": float(np.mean(recalls)) if recalls else 0.0,
    }


def average(results: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """Mean of each metric over folds (folds weigh the same, as Personalize's repeats would)."""
    results = list(results)
    if not results:
        return {}
    names = list(results[0])
    return {name: float(math.fsum(r[name] for r in results) / len(results)) for name in names}
