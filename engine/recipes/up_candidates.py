"""An opt-in approximate candidate index for user-personalization over very large catalogs.

The exact request path (:mod:`engine.recipes.up_request`) scores every item with one
catalog-sized matrix-vector product: at 100,000 items × 64 factors that is 25.6 MB read per
request, memory-bandwidth bound, and the largest single cost of a request. This index (an
inverted file, "IVF") groups the item factor rows by k-means cluster and stores them cluster by
cluster, so a request scores the cluster centroids first and then only the items of its ``probe``
best clusters (about ``probe / clusters`` of the catalog), plus the shopper's own items.

Items the index does not reach score just below the lowest score any reached item got (in the
order of their clusters' centroid scores), so they rank after every scored item and never
displace one; the sequence signal, cold-item borrowing, calibration
and filters then work on these scores as on exact ones. The answers are approximate: the tests
hold the top of the list to the exact one within a recall tolerance. It is off unless a campaign
asks for it (campaign config ``approximateCandidates``), and only the ALS family uses it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.errors import InvalidInput

#: Rows per block when assigning items to clusters (bounds the distance matrix's memory).
_BLOCK = 16_384


@dataclass(frozen=True)
class CandidateSettings:
    """How finely the catalog is clustered and how many clusters one request scores."""

    clusters: int
    probe: int

    @classmethod
    def from_config(cls, value: Any, n_items: int) -> CandidateSettings | None:
        """``approximateCandidates`` from a campaign's config: absent or false is the exact path;
        true picks defaults for the catalog size (√n clusters, 1/8 of them probed); an object may
        set ``clusters`` and ``probe``."""
        if value is None or value is False:
            return None
        if value is True:
            value = {}
        if not isinstance(value, Mapping):
            raise InvalidInput('approximateCandidates must be true, false or {"clusters": N, "probe": M}')
        clusters = value.get("clusters", max(1, round(math.sqrt(max(n_items, 1)))))
        probe = value.get("probe", max(1, math.ceil(clusters / 8)))
        if not (isinstance(clusters, int) and isinstance(probe, int)) or clusters < 1 or probe < 1:
            raise InvalidInput("approximateCandidates: clusters and probe must be positive integers")
        return cls(clusters=min(clusters, max(n_items, 1)), probe=min(probe, clusters))


def _nearest(rows: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """The nearest centroid (squared Euclidean distance) of each row, in blocks."""
    norms = np.einsum("ij,ij->i", centroids, centroids)
    out = np.empty(len(rows), dtype=np.int64)
    for start in range(0, len(rows), _BLOCK):
        block = rows[start : start + _BLOCK]
        out[start : start + len(block)] = np.argmin(norms[None, :] - 2.0 * (block @ centroids.T), axis=1)
    return out


def _kmeans(rows: np.ndarray, k: int, rng: np.random.Generator, iterations: int) -> np.ndarray:
    centroids = rows[rng.choice(len(rows), k, replace=False)].astype(np.float32)
    for _ in range(iterations):
        assign = _nearest(rows, centroids)
        counts = np.bincount(assign, minlength=k)
        filled = counts > 0
        sums = np.stack([np.bincount(assign, weights=rows[:, j], minlength=k) for j in range(rows.shape[1])], axis=1)
        centroids[filled] = (sums[filled] / counts[filled, None]).astype(np.float32)
    return centroids


class CandidateIndex:
    """Item factors grouped by cluster; built once per loaded model (a second or two at 100,000
    items: k-means on a sample, then one assignment pass)."""

    def __init__(
        self,
        item_factors: np.ndarray,
        settings: CandidateSettings,
        *,
        seed: int = 0,
        iterations: int = 10,
        sample: int = 20_000,
    ) -> None:
        factors = np.ascontiguousarray(item_factors, dtype=np.float32)
        n = len(factors)
        self.settings = settings
        self.n_items = n
        k = max(1, min(settings.clusters, n))
        rng = np.random.default_rng(seed)
        train = factors[np.sort(rng.choice(n, sample, replace=False))] if n > sample else factors
        self.centroids = _kmeans(train, min(k, len(train)), rng, iterations) if n else np.zeros((0, 0), np.float32)
        assign = _nearest(factors, self.centroids) if n else np.empty(0, dtype=np.int64)
        #: Catalog index of each stored row; rows of one cluster are contiguous.
        self.assign = assign
        self.order = np.argsort(assign, kind="stable")
        self.factors = factors[self.order]
        self.bounds = np.searchsorted(assign[self.order], np.arange(len(self.centroids) + 1))
        self.probe = min(settings.probe, len(self.centroids))

    def scores(self, vector: np.ndarray, always: np.ndarray, exact_factors: np.ndarray) -> np.ndarray:
        """Every item's score against ``vector``: exact for the items of the best ``probe``
        clusters and for ``always`` (the shopper's own items); the rest rank just below the lowest of
        those, in the order of their clusters' centroid scores."""
        out = np.empty(self.n_items)
        if self.n_items == 0:
            return out
        v = vector.astype(np.float32)
        by_centroid = self.centroids @ v
        best = np.argpartition(-by_centroid, self.probe - 1)[: self.probe] if self.probe < len(by_centroid) else None
        if best is None:
            reached, values = self.order, self.factors @ v
        else:
            # Each cluster is a contiguous slice: products over slices, no gathered copy of rows.
            spans = list(zip(self.bounds[best].tolist(), self.bounds[best + 1].tolist(), strict=True))
            reached = np.concatenate([self.order[s:e] for s, e in spans])
            values = np.concatenate([self.factors[s:e] @ v for s, e in spans])
        own = exact_factors[always] @ v if len(always) else np.empty(0, np.float32)
        floor = min(float(values.min()) if len(values) else 0.0, float(own.min()) if len(own) else 0.0)
        # Unreached items sit just below the floor, ordered by their cluster's centroid score: not
        # one value shared by most of the catalog, which makes the top-k partition degrade badly.
        by_centroid = by_centroid.astype(np.float64)  # float32 would round the ramp below away
        spread = float(by_centroid.max() - by_centroid.min())
        behind = (by_centroid.max() - by_centroid) / spread if spread > 0 else np.zeros(len(by_centroid))
        out[:] = floor - 1e-6 * max(abs(floor), 1e-12) * behind[self.assign]
        out[reached] = values
        out[always] = own
        return out


def candidate_index(model: Any, settings: CandidateSettings) -> CandidateIndex:
    """The model's index for these settings, built on first use and kept with the model."""
    cached = model.__dict__.get("_candidate_index")
    if cached is not None and cached[0] == (settings, id(model.item_factors)):
        return cached[1]
    index = CandidateIndex(model.item_factors, settings)
    model.__dict__["_candidate_index"] = ((settings, id(model.item_factors)), index)
    return index


def use_candidate_index(model: Any, settings: CandidateSettings | None) -> None:
    """Switch a loaded user-personalization model to the approximate path (``None``: exact).

    The campaign service calls this once per loaded model, from the campaign's config; the index
    is built here, before the model answers anything, so no request pays for it."""
    if settings is None:
        model.__dict__.pop("candidate_settings", None)
        return
    candidate_index(model, settings)
    model.__dict__["candidate_settings"] = settings
