"""user-personalization at request time, without a pass over the catalog that is not needed.

:class:`~engine.recipes.user_personalization.UserPersonalization` defines its scores over dense
catalog-sized vectors (clear, and what fit-time validation scores in blocks). Answering one
request that way costs about ten full passes over the catalog; at 100,000 items that is most of
a request's time. This module computes the same scores with at most one pass (the ALS
matrix-vector product; a list, :func:`top_list`, usually scores only the items that can reach it,
engine/recipes/up_pruned.py) and sparse vectors elsewhere:

* the shopper's events stay sparse; events on cold items are mapped to their metadata neighbours
  through those items' rows only;
* "what comes next" is a sparse row (transitions of a handful of seed items);
* the list is taken from a top-k partition, and only when exclusions would empty it does the
  dense mask run;
* a given list is re-ranked with each candidate's rank counted, not the catalog sorted.

The results are the dense definitions' results (the tests compare them item for item).
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from engine.recipes.up_pruned import Pruning, pruned_top

if TYPE_CHECKING:
    from engine.recipes.user_personalization import UserPersonalization


@dataclass(frozen=True)
class SparseScores:
    """A score vector that is zero outside ``index`` (sorted, unique)."""

    index: np.ndarray
    values: np.ndarray

    @classmethod
    def empty(cls) -> SparseScores:
        return cls(np.empty(0, dtype=np.int64), np.empty(0))


class RequestIndex:
    """What one loaded model keeps to answer requests sparsely; built once per model."""

    def __init__(self, model: UserPersonalization) -> None:
        n = len(model.item_ids)
        self.cold = model.popularity <= 0
        self.cold_rows = np.flatnonzero(self.cold)
        neighbours = model.cold_neighbours.tocsr() if model.cold_neighbours.nnz else None
        self.neighbours = neighbours
        #: Only the cold rows (every other row is empty), to borrow their scores in one product.
        self.cold_matrix = neighbours[self.cold_rows] if neighbours is not None else None
        self.transitions = model.transitions.tocsr()
        self.ease_position = np.full(n, -1, dtype=np.int64)
        if len(model.ease_items):
            self.ease_position[model.ease_items] = np.arange(len(model.ease_items))
        self.eye = np.eye(model.item_factors.shape[1]) if model.item_factors.ndim == 2 else np.eye(0)
        #: None where BLAS runs several threads: a product split among threads is not the same
        #: sum, row by row, as the blocks' products (the server runs BLAS on one thread).
        shared = model.item_factors.ndim == 2 and single_threaded_blas()
        self.products = SharedProducts(model.item_factors) if shared else None
        #: A list's scores without a pass over the catalog (engine/recipes/up_pruned.py); None where
        #: the catalog is small, the model is not ALS or BLAS runs several threads.
        als = getattr(getattr(model, "choice", None), "family", None) == "als"
        self.pruning = Pruning.build(model, self) if shared and als else None


#: Rows of the item factors per block when concurrent requests share one pass over them: a block
#: (1 MiB at 64 factors) is read from memory once and stays in cache for every request's product.
SHARED_BLOCK = 4096


#: A last block shorter than this joins the one before it (a one-row block is a dot product to
#: numpy, not the matrix-vector product's kernel, and its bits differ).
SHARED_TAIL = 16

#: :func:`weighted_rows` sums over every column, instead of sorting the entries, once it has at
#: least one entry per this many columns.
DENSE_GATHER = 8


def single_threaded_blas() -> bool:
    from threadpoolctl import threadpool_info

    return all(lib.get("num_threads") == 1 for lib in threadpool_info() if lib.get("user_api") == "blas")


class _Product:
    __slots__ = ("error", "lead", "ready", "result", "vector")

    def __init__(self, vector: np.ndarray) -> None:
        self.vector = vector
        self.result: np.ndarray | None = None
        self.error: BaseException | None = None
        self.ready = threading.Event()
        #: Set when the pass that ran before hands this request the next one.
        self.lead = False


class SharedProducts:
    """``factors @ vector`` for the concurrent requests of one process, in one pass over the
    factors: the catalog-sized product is bound by reading the factors from memory (25.6 MB at
    100,000 items × 64), not by arithmetic. A request that finds a pass running waits for it and
    then takes the next pass together with every request that arrived meanwhile; a request on its
    own computes its product at once, as before. Each request's product is taken block by block
    (``SHARED_BLOCK`` rows) with the same BLAS call on the same rows, so its bits are those of the
    whole product with BLAS on one thread (tests/engine/recipes/test_up_request_shared.py checks
    this with the BLAS in use)."""

    def __init__(self, factors: np.ndarray) -> None:
        self.factors = factors
        rows = len(factors)
        starts = list(range(0, rows, SHARED_BLOCK)) or [0]
        if len(starts) > 1 and rows - starts[-1] < SHARED_TAIL:
            starts.pop()
        self.blocks = [slice(a, b) for a, b in zip(starts, [*starts[1:], rows], strict=True)]
        self._lock = threading.Lock()
        self._waiting: list[_Product] = []
        self._busy = False
        #: Passes taken, and products computed in them (how often requests shared a pass).
        self.passes = 0
        self.products = 0

    def __call__(self, vector: np.ndarray) -> np.ndarray:
        job = _Product(vector)
        with self._lock:
            self._waiting.append(job)
            lead = not self._busy
            self._busy = True
        if not lead:
            job.ready.wait()
            if not job.lead:
                if job.error is not None:
                    raise job.error
                assert job.result is not None
                return job.result
        with self._lock:
            batch, self._waiting = self._waiting, []
        try:
            self._compute(batch)
        except BaseException as error:
            for other in batch:
                other.error = error
            raise
        finally:
            for other in batch:
                if other is not job:
                    other.ready.set()
            with self._lock:
                if self._waiting:
                    following = self._waiting[0]
                    following.lead = True
                    following.ready.set()
                else:
                    self._busy = False
        assert job.result is not None
        return job.result

    def _compute(self, batch: list[_Product]) -> None:
        factors = self.factors
        self.passes += 1
        self.products += len(batch)
        if len(batch) == 1:
            batch[0].result = factors @ batch[0].vector
            return
        out = np.empty((len(batch), len(factors)), dtype=np.result_type(factors, batch[0].vector))
        for rows in self.blocks:
            block = factors[rows]
            for row, job in zip(out, batch, strict=True):
                np.dot(block, job.vector, out=row[rows])
        for row, job in zip(out, batch, strict=True):
            job.result = row


def request_index(model: UserPersonalization) -> RequestIndex:
    """The model's index, rebuilt if the model was trained or loaded again since."""
    key = tuple(
        id(a)
        for a in (
            model.item_ids,
            model.item_factors,
            model.popularity,
            model.transitions,
            model.cold_neighbours,
            model.ease_items,
        )
    )
    cached = getattr(model, "_request_index", None)
    if cached is None or cached[0] != key:
        cached = (key, RequestIndex(model))
        model._request_index = cached
    return cached[1]


def weighted_rows(matrix: sp.csr_matrix, rows: np.ndarray, weights: np.ndarray) -> SparseScores:
    """``weightsᵀ · matrix[rows]`` as a sparse vector, gathered straight from the CSR arrays
    (scipy's own slicing and products cost more in set-up than in arithmetic at this size)."""
    starts, ends = matrix.indptr[rows], matrix.indptr[rows + 1]
    lengths = ends - starts
    total = int(lengths.sum())
    if total == 0:
        return SparseScores.empty()
    positions = np.repeat(ends - np.cumsum(lengths), lengths) + np.arange(total)
    columns = matrix.indices[positions]
    values = matrix.data[positions].astype(np.float64) * np.repeat(np.asarray(weights, dtype=np.float64), lengths)
    width = matrix.shape[1]
    if total * DENSE_GATHER >= width:
        # Many entries over a small catalogue: counted over all its columns rather than sorted
        # (np.unique sorts them: a tenth of the time at 23,000 entries over 20,000 columns). Each
        # column's sum adds the same values in the same order either way, so it is the same sum.
        uniq = np.flatnonzero(np.bincount(columns, minlength=width))
        return SparseScores(uniq, np.bincount(columns, weights=values, minlength=width)[uniq])
    uniq, inverse = np.unique(columns, return_inverse=True)
    return SparseScores(uniq.astype(np.int64), np.bincount(inverse, weights=values))


def sparse_input(model: UserPersonalization, items: np.ndarray, weights: np.ndarray) -> SparseScores:
    """:meth:`UserPersonalization._input_vector`, kept sparse: events on items with no
    interactions in training count for their metadata neighbours instead."""
    if len(items) == 0:
        return SparseScores.empty()
    weights = np.asarray(weights, dtype=np.float64)
    ix = request_index(model)
    if ix.neighbours is not None:
        cold = ix.cold[items]
        if cold.any():
            borrowed = weighted_rows(ix.neighbours, items[cold], weights[cold])
            index = np.concatenate([items[~cold], borrowed.index])
            values = np.concatenate([weights[~cold], borrowed.values])
            uniq, inverse = np.unique(index, return_inverse=True)
            return SparseScores(uniq.astype(np.int64), np.bincount(inverse, weights=values))
    order = np.argsort(items, kind="stable")
    return SparseScores(items[order].astype(np.int64), weights[order])


def taste_scores(model: UserPersonalization, x: SparseScores, family: str) -> np.ndarray:
    """Long-term taste over the whole catalog (dense: every item can be recommended)."""
    n = len(model.item_ids)
    if family == "als":
        return als_scores(model, x)
    scores = np.zeros(n)
    ix = request_index(model)
    positions = ix.ease_position[x.index]
    keep = (positions >= 0) & (x.values != 0)
    if keep.any():
        order = np.argsort(positions[keep], kind="stable")
        rows = positions[keep][order]
        scores[model.ease_items] = np.log1p(x.values[keep][order]).astype(np.float32) @ model.ease_weights[rows]
    return scores


def user_vector(model: UserPersonalization, x: SparseScores) -> tuple[np.ndarray, np.ndarray] | None:
    """The ALS user step for these weights (see ``_als_scores``) and the items it stood on; None
    when no weight is positive (every score is 0)."""
    hp = model.hyperparameters
    positive = x.values > 0
    if not positive.any():
        return None
    nz = x.index[positive]
    confidence = hp["alpha"] * x.values[positive]
    y = model.item_factors[nz].astype(np.float64)
    a = model.yty + hp["regularization"] * request_index(model).eye + (y.T * confidence) @ y
    b = y.T @ (1.0 + confidence)
    return np.linalg.solve(a, b), nz


def als_scores(model: UserPersonalization, x: SparseScores) -> np.ndarray:
    """The ALS user step for these weights and every item's score (see ``_als_scores``)."""
    solved = user_vector(model, x)
    if solved is None:
        return np.zeros(len(model.item_ids))
    vector, nz = solved
    settings = model.__dict__.get("candidate_settings")
    if settings is not None:
        # Opt-in per campaign (engine/recipes/up_candidates.py): only the best clusters' items.
        from engine.recipes.up_candidates import candidate_index

        return candidate_index(model, settings).scores(vector, nz, model.item_factors)
    products = request_index(model).products
    if products is None or products.factors is not model.item_factors:
        return (model.item_factors @ vector.astype(np.float32)).astype(np.float64)
    # Concurrent requests of this process share one pass over the factors (same bits).
    return products(vector.astype(np.float32)).astype(np.float64)


def sequence_scores(model: UserPersonalization, items: np.ndarray) -> SparseScores:
    """What people went on to interact with after the shopper's latest items, as a sparse row."""
    ix = request_index(model)
    if len(items) == 0 or ix.transitions.nnz == 0:
        return SparseScores.empty()
    window = model.hyperparameters["sequence_window"]
    from engine.recipes.user_personalization import SEED_DECAY

    seeds = sparse_input(model, items[:window], np.power(SEED_DECAY, np.arange(min(len(items), window))))
    nonzero = seeds.values != 0
    rows, weights = seeds.index[nonzero], seeds.values[nonzero]
    if len(rows) == 0:
        return SparseScores.empty()
    return weighted_rows(ix.transitions, rows, weights)


def blend(model: UserPersonalization, taste: np.ndarray, sequence: SparseScores, mix: float) -> np.ndarray:
    """:meth:`UserPersonalization._blend` for one request, with "what comes next" sparse; ``taste``
    is consumed (scaled in place into the result)."""
    # In place: ``taste`` is this request's own array, and each catalog-sized temporary costs
    # about as much as the arithmetic.
    top = max(taste.max(), -taste.min()) if taste.size else 0.0
    scores = taste
    if top > 0:
        scores /= top
    scores *= 1.0 - mix
    if len(sequence.index):
        seq_top = np.abs(sequence.values).max()
        if seq_top > 0:
            scores[sequence.index] += mix * (sequence.values / seq_top)
    ix = request_index(model)
    weight = model.hyperparameters["cold_item_weight"]
    if ix.cold_matrix is not None and weight > 0 and len(ix.cold_rows):
        scores[ix.cold_rows] = weight * (ix.cold_matrix @ scores)
    return scores


def top_new(model: UserPersonalization, scores: np.ndarray, blocked: np.ndarray, n: int) -> np.ndarray:
    """:meth:`UserPersonalization._top_new`: the ``n`` best items not ``blocked`` (seen or
    excluded), leaving out items nothing recommends (cold, with no positive borrowed score).

    The best ``n + len(blocked)`` by score are taken first (every item at or above a threshold
    from the blocks' maxima, :func:`top_candidates`, or a partition in a small catalog); only if too
    few of them are allowed (cold items at zero crowding the top) is the whole catalog masked.
    """
    total = len(scores)
    k = n + len(blocked)
    if n <= 0:
        return np.empty(0, dtype=np.int64)
    ix = request_index(model)
    if k * 4 < total:
        part = top_candidates(scores, k)
        if part is None:
            part = np.argpartition(scores, total - k)[total - k :]
            is_blocked = np.isin(part, blocked)
        else:
            is_blocked = _sorted_members(part, blocked)
        keep = ~is_blocked & ~(ix.cold[part] & (scores[part] <= 0)) & np.isfinite(scores[part])
        allowed = part[keep]
        if len(allowed) >= n:
            allowed = allowed[np.argsort(-scores[allowed], kind="stable")]
            return allowed[:n]
    masked = scores.copy()
    masked[blocked] = -np.inf
    masked[ix.cold & (masked <= 0)] = -np.inf
    finite = min(n, int(np.isfinite(masked).sum()))
    if finite <= 0:
        return np.empty(0, dtype=np.int64)
    top = np.argpartition(-masked, finite - 1)[:finite]
    return top[np.argsort(-masked[top], kind="stable")]


def _sorted_members(ascending: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``np.isin(ascending, values)`` for distinct ``ascending`` items: a binary search for each of
    the few values instead of the sorts ``isin`` runs (a tenth of the time here)."""
    found = np.zeros(len(ascending), dtype=bool)
    if len(ascending) and len(values):
        at = np.searchsorted(ascending, values)
        inside = at < len(ascending)
        at = at[inside]
        found[at[ascending[at] == values[inside]]] = True
    return found


#: Items per block in :func:`top_candidates`: the blocks' maxima take one pass over the scores.
TOP_BLOCK = 128


def top_candidates(scores: np.ndarray, k: int) -> np.ndarray | None:
    """Every item (ascending) scoring at least the ``k``-th highest of the maxima of blocks of
    ``TOP_BLOCK`` items: the best ``k`` are among them, as each of the ``k`` blocks with the highest
    maxima holds one item at or above the threshold, and everything left out scores below it (or is
    NaN). Usually little more than ``k`` items; about 0.1 ms at 100,000 items against 1 ms for a
    partition of the scores. None when there are too few blocks for that to pay."""
    blocks = -(-len(scores) // TOP_BLOCK)
    if blocks < 4 * k:
        return None
    maxima = np.maximum.reduceat(scores, np.arange(0, len(scores), TOP_BLOCK))
    threshold = np.partition(maxima, blocks - k)[blocks - k]
    # A NaN threshold (NaN maxima) selects nothing, and the caller falls back to masking.
    return np.flatnonzero(scores >= threshold)


#: Up to this many items (exploration's few picks) are ranked by counting, two passes over the
#: catalog each, rather than with one sort of it (about 1 ms at 100,000 items).
FEW_RANKS = 8


def ranks_of(scores: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Each ``index`` item's position in ``argsort(-scores, kind="stable")``, without a stable sort
    of the catalog (the slow kind): items scoring higher (NaN counts as the highest, as sorting places
    it), counted in one plain sort (vectorised in numpy) or, for a few items, by comparisons, plus
    items scoring the same with a lower index."""
    if len(index) == 0:
        return np.empty(0, dtype=np.int64)
    values = scores[index]
    if len(index) <= FEW_RANKS and not np.isnan(values).any():
        nan = np.count_nonzero(np.isnan(scores))
        higher = np.array([np.count_nonzero(scores > v) for v in values.tolist()], dtype=np.int64)
        at_least = np.array([np.count_nonzero(scores >= v) for v in values.tolist()], dtype=np.int64)
        ranks = higher + nan
        tied = np.flatnonzero(at_least - higher > 1)
    elif (counted := _counted_in_bins(scores, values)) is not None:
        ranks, tied = counted
    else:
        ordered = np.sort(scores)
        above = np.searchsorted(ordered, values, side="right")
        ranks = (len(scores) - above).astype(np.int64)
        tied = np.flatnonzero(above - np.searchsorted(ordered, values, side="left") > 1)
    for value in np.unique(values[tied]):
        at = tied[values[tied] == value]
        ranks[at] += np.searchsorted(np.flatnonzero(scores == value), index[at])
    return ranks


#: Bins of the scores' range in :func:`_counted_in_bins`: blended scores crowd a small part of their
#: range, and at 100,000 items this many leave about 5,000 scores sharing a bin with 100 given items
#: (4,096 bins left about 48,000, a quarter million made the counts cost more than the sort).
RANK_BINS = 1 << 16


def _counted_in_bins(scores: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """For each of ``values`` (some of ``scores``): how many scores are higher, and which values more
    than one score equals, as the sort would count them, in a few passes over the scores instead of
    a sort (a long given list's ranks: GetPersonalizedRanking). Scores fall into ``RANK_BINS`` equal
    bins of their range by ``floor((score - lowest) × scale)``, which never puts a lower score in a
    higher bin (each step rounds monotonically): everything in a higher bin than a value's scores
    higher, and only the value's own bin is compared score by score. None (the sort counts) where
    the scores are not all finite."""
    lowest, highest = scores.min(), scores.max()
    if not (np.isfinite(lowest) and np.isfinite(highest)) or highest <= lowest or np.isnan(values).any():
        return None
    with np.errstate(over="ignore"):
        span = highest - lowest
        scale = (RANK_BINS - 1) / span
    if not (np.isfinite(span) and np.isfinite(scale) and scale > 0):
        return None  # a range too wide or too narrow to divide
    bins = ((scores - lowest) * scale).astype(np.int64)
    at_or_above = np.append(np.cumsum(np.bincount(bins, minlength=RANK_BINS)[::-1])[::-1], 0)
    value_bins = ((values - lowest) * scale).astype(np.int64)
    wanted = np.zeros(RANK_BINS + 1, dtype=bool)
    wanted[value_bins] = True
    # The scores sharing a bin with some value, in order (bins follow the scores' order).
    shares = wanted[bins]
    near_bins = bins[shares]
    near = np.sort(scores[shares])
    near_at_or_above = np.append(np.cumsum(np.bincount(near_bins, minlength=RANK_BINS)[::-1])[::-1], 0)
    right = np.searchsorted(near, values, side="right")
    # Higher: every score in a higher bin, plus those in the value's own bin above it.
    in_own_bin = (len(near) - right) - near_at_or_above[value_bins + 1]
    ranks = (at_or_above[value_bins + 1] + in_own_bin).astype(np.int64)
    tied = np.flatnonzero(right - np.searchsorted(near, values, side="left") > 1)
    return ranks, tied


def taste_input(model: UserPersonalization, history) -> tuple[np.ndarray, SparseScores | None]:
    """The shopper's known items, newest first, and what long-term taste is computed from: their
    weights, older ones faded by the chosen half-life (None: no known item)."""
    items, weights = model._history_weights(history)
    if len(items) == 0:
        return items, None
    half_life = model.choice.half_life
    if half_life is not None:
        weights = weights * np.power(0.5, np.arange(len(items)) / half_life)
    return items, sparse_input(model, items, weights)


def request_scores(model: UserPersonalization, history) -> np.ndarray:
    """Every item's blended score for a shopper with these events (the dense definition:
    ``_blend(_taste_scores(...), _sequence_scores(...), mix)``)."""
    items, x = taste_input(model, history)
    taste = np.zeros(len(model.item_ids)) if x is None else taste_scores(model, x, model.choice.family)
    return blend(model, taste, sequence_scores(model, items), model.choice.sequence_weight)


def calibrated_at(
    model: UserPersonalization, scores: np.ndarray, seen: np.ndarray, seen_p: np.ndarray, index: np.ndarray
) -> np.ndarray:
    """``_calibrated`` where only ``index`` is read: a catalog-sized array, right at ``index``."""
    if len(model.calibration.hit_rates) == 0:
        return scores
    out = np.zeros(len(scores))
    top = np.abs(scores).max() if scores.size else 0.0
    unit = scores[index] / top if top > 0 else scores[index]
    out[index] = model.calibration(ranks_of(scores, index)) + 1e-9 * unit
    out[seen] = seen_p
    return out


#: Recent requests' scores per model, so one request that asks several times (its list, each
#: promotion's share, exploration's picks) scores the shopper once.
_MEMO_SIZE = 8


def top_list(
    model: UserPersonalization, history, context, exclude: np.ndarray, n: int, *, block_seen: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(the ``n`` best items not in ``exclude`` nor, with ``block_seen``, seen, best first; their
    scores; the seen items; their repeat chances): :func:`top_new` over :func:`scored`, computed
    from only the items that can reach the list (engine/recipes/up_pruned.py) where that applies."""
    memo = model.__dict__.setdefault("_request_memo", {})
    context_key = tuple(sorted((context or {}).items()))
    key = (id(history), id(model.item_factors), context_key, n, block_seen, exclude.tobytes())
    hit = memo.get(key)
    if hit is not None and hit[0] is history:
        return hit[1]
    found = _pruned_list(model, history, context, exclude, n, block_seen)
    if found is None:
        scores, seen, seen_p = scored(model, history, context)
        top = top_new(model, scores, np.concatenate([seen, exclude]) if block_seen else exclude, n)
        found = (top, scores[top], seen, seen_p)
    _remember(memo, key, history, found)
    return found


def _pruned_list(
    model: UserPersonalization, history, context, exclude: np.ndarray, n: int, block_seen: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    choice = model.choice
    ix = request_index(model)
    if (
        ix.pruning is None
        or choice.sequence_weight >= 1.0  # (every taste scales to 0: see pruned_top)
        or model.__dict__.get("candidate_settings") is not None
        or (choice.context_weight and model.attributes.context_lift(context) is not None)
    ):
        return None
    items, x = taste_input(model, history)
    solved = None if x is None else user_vector(model, x)
    if solved is None:
        return None
    seen, seen_p = model._seen(history)
    blocked = np.concatenate([seen, exclude]) if block_seen else exclude
    sequence = sequence_scores(model, items)
    found = pruned_top(model, ix, solved[0], sequence, choice.sequence_weight, blocked, n)
    return None if found is None else (*found, seen, seen_p)


def _remember(memo: dict, key: tuple, history, result: tuple) -> None:
    if len(memo) >= _MEMO_SIZE:
        with contextlib.suppress(StopIteration, RuntimeError):  # another thread may be trimming too
            memo.pop(next(iter(memo)), None)
    memo[key] = (history, result)


def scored(model: UserPersonalization, history, context) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(scores with the context's lift, seen items, their repeat chances) for these events.

    Memoised on the identity of the ``history`` tuple a request passes to every call (an id alone
    could be reused once a request is gone, so the tuple itself is kept and compared).
    """
    memo = model.__dict__.setdefault("_request_memo", {})
    key = (id(history), id(model.item_factors), tuple(sorted((context or {}).items())))
    hit = memo.get(key)
    if hit is not None and hit[0] is history:
        return hit[1]
    scores = request_scores(model, history)
    choice = model.choice
    if choice.context_weight and (lift := model.attributes.context_lift(context)) is not None:
        scores[model.attributes.items] += choice.context_weight * lift
    seen, seen_p = model._seen(history)
    result = (scores, seen, seen_p)
    scores.setflags(write=False)
    _remember(memo, key, history, result)
    return result
