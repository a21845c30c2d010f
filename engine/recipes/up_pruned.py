"""user-personalization's list for one request without scoring every item: exact, bounded.

A request's ALS scores are ``item_factors @ vector``, one pass over 25.6 MB at 100,000 items × 64,
which was half of a request's time. A list needs only the items that can reach its top, and an
item's score is at most its factors' norm times the vector's (Cauchy–Schwarz). So the items are
scored in descending order of norm, in chunks that double, until both

* no unscored item can hold the largest absolute score (the blend divides every score by it), and
* no unscored item can reach the list: the ``n``-th best allowed score so far is above the bound
  on every unscored item's blended score.

Items that score by another route are always scored: those "what comes next" reaches, cold items
and the items whose scores cold items borrow. On the benchmark's catalog (100,000 items, power-law
popularity) about a tenth of the items are scored.

The scores that are computed are the whole product's, bit for bit: each product's rows are padded
to a multiple of :data:`ROW_MULTIPLE` (OpenBLAS's matrix-vector kernel takes rows in groups and
computes a group's leftover rows another way), the catalog's own leftover rows are computed as the
end of a product that ends where the catalog does, and a model whose BLAS does not give the same
bits this way (checked once per model) is always scored whole. The list is taken from the scored
items with :func:`~engine.recipes.up_request.top_new`'s rules and order; anything that needs every
score (ranks of a given list, exploration's picks) scores the catalog whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from engine.recipes.up_request import RequestIndex, SparseScores
    from engine.recipes.user_personalization import UserPersonalization

#: Smaller catalogs are scored whole: the bookkeeping would cost more than the product.
MIN_ITEMS = 8192
#: Items (by descending norm) in the first chunk; each next chunk is twice as long.
FIRST_CHUNK = 2048
#: At most this much of the factors is kept again in norm order, per process (3.7 MB at 100,000
#: items × 64 factors, where a quarter of the catalog is the limit).
HEAD_BYTES = 32 * 1024 * 1024
#: Rows of every product are padded to a multiple of this (see the module's docstring).
ROW_MULTIPLE = 32
#: Relative slack on the norm bound, for the float32 rounding of the products (far above it).
SLACK = 1e-3
#: When the items scored up front ("what comes next" reaches them, or they are cold or borrowed
#: from) are at least this share of the catalog, one whole product is cheaper than gathering
#: their rows: a shopper with popular recent items reaches three quarters of a 20,000-item catalog.
WHOLE_SHARE = 0.5


def by_norm(factors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The items in descending order of their factors' norm (ties by index), and those norms
    (float64) in that order: the order a norm bound scores them in."""
    norms = np.sqrt(np.einsum("ij,ij->i", factors, factors, dtype=np.float64))
    order = np.argsort(-norms, kind="stable")
    return order, norms[order]


@dataclass(frozen=True)
class Pruning:
    """Per model: the items in descending order of their factors' norm, and what is always scored."""

    order: np.ndarray
    norms: np.ndarray
    #: The first chunks' rows of the factors, in that order and contiguous: a chunk there is a
    #: slice, not a gather of rows from all over the factors (about five times faster).
    head: np.ndarray
    #: Scored for every request (below ``tail_start``): the columns cold items borrow their scores
    #: from, or, where they borrow nothing, the cold items themselves.
    always: np.ndarray
    #: Cold items whose own score is replaced by the one they borrow: never scored, never needed.
    replaced: np.ndarray
    #: The catalog's leftover rows start here (computed as the end of their own product).
    tail_start: int

    @classmethod
    def build(cls, model: UserPersonalization, index: RequestIndex) -> Pruning | None:
        factors = model.item_factors
        total = len(factors) if factors.ndim == 2 else 0
        if total < max(MIN_ITEMS, 2 * ROW_MULTIPLE):
            return None
        order, norms = by_norm(factors)
        tail_start = total - total % ROW_MULTIPLE
        borrowing = (
            index.cold_matrix is not None and model.hyperparameters["cold_item_weight"] > 0 and len(index.cold_rows)
        )
        if borrowing:
            always = np.unique(index.cold_matrix.indices).astype(np.int64)
            replaced = np.setdiff1d(index.cold_rows, always)
        else:
            always, replaced = index.cold_rows.astype(np.int64), np.empty(0, dtype=np.int64)
        # Whole chunks, up to a quarter of the catalog and HEAD_BYTES.
        most = min(total // 4, HEAD_BYTES // max(factors.itemsize * factors.shape[1], 1))
        head_rows = FIRST_CHUNK
        while 2 * head_rows + FIRST_CHUNK <= most:
            head_rows = 2 * head_rows + FIRST_CHUNK
        head = np.ascontiguousarray(factors[order[:head_rows]])
        pruning = cls(order, norms, head, always[always < tail_start], replaced, tail_start)
        return pruning if pruning.same_bits(factors) else None

    def same_bits(self, factors: np.ndarray) -> bool:
        """Whether scoring parts of the catalog here gives the whole product's bits (this BLAS)."""
        rng = np.random.default_rng(0)
        vector = rng.standard_normal(factors.shape[1]).astype(np.float32)
        whole = (factors @ vector).astype(np.float64)
        rows = rng.choice(self.tail_start, size=min(self.tail_start, 999), replace=False)
        parts = np.zeros(len(factors))
        parts[rows] = self.product(factors, rows, vector)
        parts[self.tail_start :] = self.tail(factors, vector)
        check = np.concatenate([rows, np.arange(self.tail_start, len(factors))])
        head = self.order[: len(self.head)]
        inside = head < self.tail_start
        return bool(
            np.array_equal(parts[check], whole[check])
            and np.array_equal(self.slice(0, len(self.head), factors, vector)[inside], whole[head[inside]])
        )

    @staticmethod
    def product(factors: np.ndarray, rows: np.ndarray, vector: np.ndarray) -> np.ndarray:
        """``(factors @ vector)[rows]`` (rows before ``tail_start``) as float64."""
        if len(rows) == 0:
            return np.empty(0)
        extra = -len(rows) % ROW_MULTIPLE
        padded = np.concatenate([rows, np.repeat(rows[:1], extra)]) if extra else rows
        # np.take: a third of the time of fancy indexing for rows of a 2-D array.
        return (np.take(factors, padded, axis=0) @ vector)[: len(rows)].astype(np.float64)

    def slice(self, start: int, stop: int, factors: np.ndarray, vector: np.ndarray) -> np.ndarray:
        """The products of the items ``order[start:stop]`` (a chunk: ``start`` and the length are
        multiples of ``ROW_MULTIPLE`` unless it ends the catalog), read from ``head`` where it holds
        them; rows in the catalog's tail are wrong here and must not be used."""
        if stop <= len(self.head):
            return (self.head[start:stop] @ vector).astype(np.float64)
        return self.product(factors, self.order[start:stop], vector)

    def tail(self, factors: np.ndarray, vector: np.ndarray) -> np.ndarray:
        """The catalog's leftover rows, as the whole product computes them."""
        if self.tail_start == len(factors):
            return np.empty(0)
        return (factors[self.tail_start - ROW_MULTIPLE :] @ vector)[ROW_MULTIPLE:].astype(np.float64)


def pruned_top(
    model: UserPersonalization,
    index: RequestIndex,
    vector: np.ndarray,
    sequence: SparseScores,
    mix: float,
    blocked: np.ndarray,
    n: int,
) -> tuple[np.ndarray, np.ndarray] | None:
    """The ``n`` best items not ``blocked`` (nor cold at zero or below, nor NaN) by their blended
    score (:func:`~engine.recipes.up_request.blend`), best first (ties: the lower index first, as
    :func:`~engine.recipes.up_request.top_new` orders them), with those scores; None where this
    does not apply (the caller scores the catalog whole).

    The stopping test counts only items whose blended score is their taste score scaled (not cold,
    not reached by "what comes next", not always scored): the others can only raise the ``n``-th
    best score, so the test is conservative and needs no blended score until the end.
    """
    pruning = index.pruning
    if pruning is None or n <= 0 or mix >= 1.0:
        return None  # (with mix 1 every taste scales to 0: ties that only the whole catalog orders)
    factors = model.item_factors
    total = len(factors)
    v32 = vector.astype(np.float32)
    taste = np.empty(total)
    done = np.zeros(total, dtype=bool)
    is_blocked = np.zeros(total, dtype=bool)
    is_blocked[blocked] = True
    done[pruning.always] = True
    done[pruning.tail_start :] = True
    done[pruning.replaced] = True
    # What "what comes next" reaches is scored with the items always scored, in one product.
    reached = sequence.index[sequence.index < pruning.tail_start]
    reached = reached[~done[reached]]
    always = np.concatenate([pruning.always, reached]) if len(reached) else pruning.always
    done[reached] = True
    best = np.empty(0)  # the n best plain scores (as tastes) of the chunks
    if len(always) + total - pruning.tail_start >= WHOLE_SHARE * total:
        # The whole product (the definition's own bits); every item is scored, nothing is left.
        taste = (factors @ v32).astype(np.float64)
        taste[pruning.replaced] = 0.0
        scored = [np.arange(total)]
        top = float(np.abs(taste).max(initial=0.0))
        start = total
    else:
        scored = [always, np.arange(pruning.tail_start, total), pruning.replaced]
        taste[always] = pruning.product(factors, always, v32)
        taste[pruning.tail_start :] = pruning.tail(factors, v32)
        taste[pruning.replaced] = 0.0
        top = float(np.abs(taste[np.concatenate(scored[:2])]).max(initial=0.0))
        start = 0
    # Every chunk item not scored already is plain.
    length = float(np.sqrt(np.dot(v32.astype(np.float64), v32.astype(np.float64)))) * (1.0 + SLACK)
    size = FIRST_CHUNK
    while start < total:
        stop = min(start + size, total)
        rows = pruning.order[start:stop]
        fresh = ~done[rows]  # cold items and "what comes next" were scored first: the rest is plain
        if stop <= len(pruning.head):
            rows, part = rows[fresh], pruning.slice(start, stop, factors, v32)[fresh]
        else:
            rows = rows[fresh]
            part = pruning.product(factors, rows, v32)
        if len(rows):
            taste[rows] = part
            done[rows] = True
            scored.append(rows)
            top = max(top, float(np.abs(part).max()))
            candidates = part[~is_blocked[rows]]
            if len(best) >= n:
                candidates = candidates[candidates > best[0]]  # most of a later chunk is below
            best = _best(np.concatenate([best, candidates]), n)
        start, size = stop, 2 * size
        reach = pruning.norms[start] * length if start < total else 0.0
        # Stop once no unscored item can hold the largest absolute score (every score is divided by
        # it) or beat the n-th best plain one (blended scores keep the order of plain tastes).
        if reach <= top and len(best) >= n and best[0] > reach:
            break
    if top <= 0:
        return None  # nothing to scale by: the whole definition's edge cases, left to it
    items = np.concatenate(scored)
    scores = _blended(model, index, taste, items, top, sequence, mix)
    keep = ~is_blocked[items] & ~(index.cold[items] & (scores <= 0)) & np.isfinite(scores)
    if len(best) >= n:
        # The n-th best plain taste, blended as ``_blended`` does (rounding keeps order): the list's
        # n-th score is at least this, so nothing below it can be on the list.
        floor = best[0] / top
        floor *= 1.0 - mix
        keep &= scores >= floor
    items, scores = items[keep], scores[keep]
    if len(scores) > n:  # the n best and any tied with the n-th, then ordered
        nth = np.partition(scores, len(scores) - n)[len(scores) - n]
        near = scores >= nth
        items, scores = items[near], scores[near]
    order = np.lexsort((items, -scores))[:n]
    return items[order], scores[order]


def _best(values: np.ndarray, n: int) -> np.ndarray:
    """The ``n`` largest of ``values`` (or all), smallest first."""
    if len(values) > n:
        values = np.partition(values, len(values) - n)[len(values) - n :]
    return np.sort(values)


def _blended(
    model: UserPersonalization,
    index: RequestIndex,
    taste: np.ndarray,
    items: np.ndarray,
    top: float,
    sequence: SparseScores,
    mix: float,
) -> np.ndarray:
    """:func:`~engine.recipes.up_request.blend`'s arithmetic, step for step (the same bits), for
    ``items`` (every scored item); ``taste`` (catalog-sized, read only there) is overwritten."""
    part = taste[items] / top
    part *= 1.0 - mix
    scores = taste
    scores[items] = part
    if len(sequence.index):
        seq_top = np.abs(sequence.values).max()
        if seq_top > 0:
            scores[sequence.index] += mix * (sequence.values / seq_top)
    weight = model.hyperparameters["cold_item_weight"]
    if index.cold_matrix is not None and weight > 0 and len(index.cold_rows):
        # Every column these rows borrow from is scored (``Pruning.always``); nothing else is read.
        scores[index.cold_rows] = weight * (index.cold_matrix @ scores)
    return scores[items]
