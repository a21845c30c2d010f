"""Fit-time taste of a block of held-out users without scoring every item (ALS), by a norm bound.

Fit-time selection (:mod:`engine.recipes.up_selection`) needs, per held-out user and half-life,
the largest absolute taste score (every score is divided by it), the best
:data:`~engine.recipes.up_selection.CALIBRATED_RANKS` items by taste among those allowed, and the
taste of a few named items. Scoring the whole catalog for that was most of the selection's time on
large catalogs (a 40 × 100,000 × 64 product per block and half-life, then full-width passes).

A user's score of item i is ``u · fᵢ ≤ |u| |fᵢ|`` (Cauchy–Schwarz). So the items are scored in
descending order of norm, in chunks that double, and a user stops once no unscored item can hold
their largest absolute score nor reach their k-th best taste among the items that count (as
:mod:`engine.recipes.up_pruned` does for one request). Items count where their score is at least
their scaled taste in every setting: the plain items, and the extras that "what comes next" (never
negative) or the context only lift. Their k-th best is a higher bar than the plain items' alone (the
items "what comes next" reaches are often the most popular), so users stop sooner: on the 1M
benchmark after a median 6,144 of 100,000 items. Extras never scored keep a bound instead of a
score, which is enough to set most of them aside; the rest are scored one by one (:func:`exact`).
The selection need not be bit-exact: chunked products may round the last bit differently from a
whole one, which can only swap float32 near-ties.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from engine.recipes.up_pruned import SLACK, by_norm

#: Smaller catalogs are scored whole: the bookkeeping would cost more than the product.
MIN_ITEMS = 8192
#: Items (by descending norm) in the first chunk; each next chunk is twice as long.
FIRST_CHUNK = 2048


@dataclass(frozen=True)
class NormOrder:
    """The catalog in descending order of factor norm, built once per scoring and shared."""

    #: Items in that order, and each item's place in it.
    order: np.ndarray
    position: np.ndarray
    #: Norms in that order (float64), with a trailing 0: the bound past the last item.
    norms: np.ndarray
    item_factors: np.ndarray
    #: Chunks of the factors' rows in that order, contiguous, by their start: made when a block
    #: first needs them (new memory costs up to 3 ms a megabyte on the 2-core machine; most users
    #: stop early).
    chunks: dict = field(default_factory=dict)

    @classmethod
    def build(cls, item_factors: np.ndarray) -> NormOrder | None:
        if item_factors.ndim != 2 or len(item_factors) < max(MIN_ITEMS, 1):
            return None
        factors = np.asarray(item_factors, dtype=np.float32)
        order, norms = by_norm(factors)
        position = np.empty(len(order), dtype=np.int64)
        position[order] = np.arange(len(order))
        return cls(order, position, np.append(norms, 0.0), factors)

    def __len__(self) -> int:
        return len(self.order)

    def factors(self, start: int, stop: int) -> np.ndarray:
        """The factors of ``order[start:stop]`` (a chunk: the same bounds every time)."""
        chunk = self.chunks.get(start)
        if chunk is None or len(chunk) != stop - start:
            # Threads may both make one: the same rows either way, and the dict keeps one.
            chunk = np.take(self.item_factors, self.order[start:stop], axis=0)
            self.chunks[start] = chunk
        return chunk


@dataclass(frozen=True)
class BlockTaste:
    """A block's taste (one row per user and half-life), as far as it was scored."""

    #: Each row's largest absolute taste (exact), 1 where it is 0 (as ``_unit`` divides).
    top: np.ndarray
    #: Each row's k-th best taste among the items that count (divided by ``top``; -inf where
    #: fewer than k count): at least k items score this much in every setting.
    threshold: np.ndarray
    #: Each row's items that are not extras among its best k that count, best first, and their
    #: taste divided by ``top`` (-inf past them); every such item with taste from ``threshold`` on.
    best: np.ndarray
    values: np.ndarray
    #: Positions (in norm order) scored per row: every item before it has its raw score in ``raw``
    #: (row ``offset + r`` there).
    scored: np.ndarray
    raw: np.ndarray
    #: ``|u|`` with the slack: ``length × norm`` bounds an unscored item's absolute raw score.
    length: np.ndarray
    offset: int = 0

    def rows(self, lo: int, hi: int) -> BlockTaste:
        """Rows ``lo:hi`` (one half-life's users) on their own."""
        part = slice(lo, hi)
        return BlockTaste(
            self.top[part],
            self.threshold[part],
            self.best[part],
            self.values[part],
            self.scored[part],
            self.raw,
            self.length[part],
            self.offset + lo,
        )

    def taste_at(self, rows: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """Taste (divided by ``top``) of these rows' items at these positions (in norm order);
        NaN where not scored."""
        known = positions < self.scored[rows]
        # A flat take: a tenth of the time of indexing the matrix with two arrays.
        out = np.take(self.raw, np.where(known, (rows + self.offset) * self.raw.shape[1] + positions, 0))
        out /= self.top[rows]
        return np.where(known, out, np.float32(np.nan))

    def bound(self, norms: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """An upper bound on the absolute taste (divided by ``top``) of items with these factor
        norms (float32), ``counts[r]`` of them for row r, in row order (in float32: the slack in
        ``length`` is far above its rounding)."""
        return np.repeat((self.length / self.top).astype(np.float32), counts) * norms


def block_taste(
    order: NormOrder,
    vectors: np.ndarray,
    users: np.ndarray,
    uncounted: np.ndarray,
    cold: np.ndarray | None,
    cold_floor: float,
    extras: np.ndarray,
    k: int,
    raw: np.ndarray,
) -> BlockTaste:
    """Score the rows ``vectors`` (float32; row r is user ``users[r]`` of the block) until the
    bound stops each of them. Rows of several half-lives are scored together: each chunk of the
    factors is read from memory once for all of them.

    An item counts towards a row's k-th best taste where its score in every setting is at least
    its taste scaled as a plain item's is: items that are not extras nor the user's own, and
    extras whose other parts are never negative. ``uncounted`` (users × items, in norm order)
    marks the rest; ``cold`` (items, in norm order; None for none) marks items that count only
    where their taste is above ``cold_floor`` (0, or infinity where their scores are borrowed);
    ``extras`` holds the sorted keys ``user × n + item`` of the extras; ``raw`` (at least rows ×
    items, float32) receives the raw scores, in norm order.
    """
    count, n = len(vectors), len(order)
    wide = vectors.astype(np.float64)
    length = np.sqrt(np.einsum("ij,ij->i", wide, wide)) * (1.0 + SLACK)
    top = np.zeros(count, dtype=np.float32)
    best_value = np.full((count, k), -np.inf, dtype=np.float32)
    best_at = np.zeros((count, k), dtype=np.int64)
    scored = np.full(count, n, dtype=np.int64)
    active = np.arange(count)
    start, size = 0, FIRST_CHUNK
    while len(active) and start < n:
        stop = min(start + size, n)
        if len(active) == count:  # straight into ``raw`` (half the time of a product and a copy)
            part = np.matmul(vectors, order.factors(start, stop).T, out=raw[:count, start:stop])
        else:
            part = vectors[active] @ order.factors(start, stop).T
            raw[active, start:stop] = part
        highest = part.max(axis=1)
        top[active] = np.maximum(top[active], np.maximum(highest, -part.min(axis=1)))
        if start == 0:
            value, at = _first(part, users, uncounted, cold, cold_floor, k)
        else:
            value, at = best_value[active], best_at[active]
            value, at = _merged(value, at, part, highest, users[active], start, uncounted, cold, cold_floor, k)
        best_value[active], best_at[active] = value, at
        reach = length[active] * order.norms[stop]
        # Done: no unscored item can hold the largest absolute score or reach the k-th best.
        done = (reach <= top[active]) & (value.min(axis=1, initial=np.inf) > reach)
        scored[active[done]] = stop
        active = active[~done]
        start, size = stop, 2 * size
    top = np.where(top > 0, top, 1.0).astype(np.float32)
    threshold = best_value.min(axis=1, initial=np.inf) / top if k else np.full(count, -np.inf, dtype=np.float32)
    # The extras among the best are left to the caller (they are scored as extras).
    items = order.order[best_at]
    if len(extras):
        keys = users[:, None] * len(order) + items
        at = np.minimum(np.searchsorted(extras, keys), len(extras) - 1)
        best_value = np.where(extras[at] == keys, -np.inf, best_value).astype(np.float32)
    # Best first; equal tastes by item, so the order does not depend on where a chunk ended.
    ranked = np.lexsort((items, -best_value), axis=1) if k else best_at
    items = np.take_along_axis(items, ranked, axis=1)
    values = np.take_along_axis(best_value, ranked, axis=1)
    values /= top[:, None]
    return BlockTaste(top, threshold.astype(np.float32), items, values, scored, raw, length)


def _first(
    part: np.ndarray, users: np.ndarray, uncounted: np.ndarray, cold: np.ndarray | None, cold_floor: float, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The best ``k`` (in no order) of the first chunk's scores that count, -inf where fewer."""
    width = part.shape[1]
    if k == 0:
        return np.empty((len(part), 0), dtype=np.float32), np.empty((len(part), 0), dtype=np.int64)
    counted = np.where(uncounted[users, :width], -np.inf, part)
    if cold is not None:
        counted[:, cold[:width]] = np.where(counted[:, cold[:width]] > cold_floor, counted[:, cold[:width]], -np.inf)
    if width <= k:
        value = np.full((len(part), k), -np.inf, dtype=np.float32)
        at = np.zeros((len(part), k), dtype=np.int64)
        value[:, :width], at[:, :width] = counted, np.arange(width)
        return value, at
    at = np.argpartition(-counted, k - 1, axis=1)[:, :k]
    return np.take_along_axis(counted, at, axis=1), at


def _merged(
    value: np.ndarray,
    at: np.ndarray,
    part: np.ndarray,
    highest: np.ndarray,
    users: np.ndarray,
    start: int,
    uncounted: np.ndarray,
    cold: np.ndarray | None,
    cold_floor: float,
    k: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The best ``k`` (in no order) of (``value``, ``at``) and of a chunk's scores that count
    (``part``: rows of the block's ``users``, its column j is position ``start + j``; ``highest``:
    each row's largest score there)."""
    if k == 0:
        return value, at
    kth = value.min(axis=1)
    # Past the first chunk most rows have nothing above their k-th best: only the others are read.
    some = np.flatnonzero(highest > kth)
    if len(some) == 0:
        return value, at
    inner, columns = np.nonzero(part[some] > kth[some, None])
    rows = some[inner]
    # Only the few scores above the k-th best so far are looked up (not a pass over the chunk).
    places = start + columns
    found = part[rows, columns]
    counts = ~np.take(uncounted, users[rows] * uncounted.shape[1] + places)
    if cold is not None:
        counts &= ~(cold[places] & (found <= cold_floor))
    rows, places, found = rows[counts], places[counts], found[counts]
    per_row = np.bincount(rows, minlength=len(value))
    width = int(per_row.max(initial=0))
    if width == 0:
        return value, at
    slot = np.arange(len(rows)) - np.repeat(np.cumsum(per_row) - per_row, per_row)
    values = np.full((len(value), k + width), -np.inf, dtype=np.float32)
    where = np.zeros((len(value), k + width), dtype=np.int64)
    values[:, :k], where[:, :k] = value, at
    values[rows, k + slot], where[rows, k + slot] = found, places
    pick = np.argpartition(-values, k - 1, axis=1)[:, :k]
    return np.take_along_axis(values, pick, axis=1), np.take_along_axis(where, pick, axis=1)


def exact(factors: np.ndarray, vectors: np.ndarray, top: np.ndarray, rows: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Taste (divided by ``top``) of these (row, item) pairs: one matrix-vector product per row
    (half the time of gathering both sides of every pair)."""
    out = np.empty(len(rows), dtype=np.float32)
    if len(rows) == 0:
        return out
    order = None
    if (np.diff(rows) < 0).any():
        order = np.argsort(rows, kind="stable")
        rows, items = rows[order], items[order]
    bounds = np.flatnonzero(np.diff(rows)) + 1
    for lo, hi in zip([0, *bounds.tolist()], [*bounds.tolist(), len(rows)], strict=True):
        out[lo:hi] = np.take(factors, items[lo:hi], axis=0) @ vectors[rows[lo]]
    out /= top[rows]
    if order is not None:
        out[order] = out.copy()
    return out
