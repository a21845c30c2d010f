"""sims UPDATE: the previous version plus what the new events change, instead of a refit.

The training job marks which events the previous version did not see (``TrainingData.new_events``).
Only those change the model:

* cosine similarity: a cosine is a dot product over two norms, and only the users with new events
  (the affected users) change dot products and norms. Each stored similarity is rescaled to the
  new norms and the change of its dot product added (``after.T @ after - before.T @ before`` over
  the affected users' rows only: as sparse as their histories), and pairs that newly co-occur join;
  then each row keeps its best ``neighbours - 1`` again. Approximations against a full refit: a
  pair that neither item kept among its neighbours before starts from an old dot product of 0,
  and an item just outside a list is not brought back when another drops out of it;
* transitions: the previous matrix plus the transitions of the affected users' whole histories
  minus those of their old histories (entries the previous version had already cut stay cut);
* popularity: the previous counts plus the new events' weights.

Cost: only the rows the change reaches (the items the affected users touched) are recomputed and
cut back; every other row is the previous one carried over (its entries rescaled where a column's
norm changed): the previous matrix (usually a mapping of its artifact) is read where those rows are
needed and once as runs between the recomputed rows, joined with them straight into the new arrays
(:class:`_Carried`), so the work follows the affected users' histories plus a few linear passes over
the stored entries, not the catalogue's rows. Event weights are read for the events that need them
(the affected users' and those on the items whose norm changes), not for every event. The result is
the same, entry for entry and bit for bit, as applying the update to the whole matrices at once
(``tests/engine/recipes/test_sims_update_rows.py`` keeps that whole-matrix form as the reference).

The blend weight stays the previous version's. :func:`update` declines (and the recipe refits)
when the previous vocabulary is not part of the new one or the new events touch too much of it.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from engine.recipes.base import TrainingData
from engine.recipes.sequences import transitions_gained
from engine.recipes.sims import TRANSITION_DECAY, Sims, _keep_top, _ranges
from engine.recipes.vocabulary import carry, carry_rows, vocabulary_map
from engine.recipes.weighting import user_item_matrix

#: Above this share of the catalog touched by new events, a full refit is about as cheap (and
#: exact); catalogs under :data:`SMALL_CATALOG` items are updated whatever the share.
MAX_TOUCHED_SHARE = 0.3
SMALL_CATALOG = 1000
#: Entries at or under these are dropped (what old histories left of a cut or vanished pair).
SIMILARITY_FLOOR = 1e-7
SEQUENCE_FLOOR = 1e-6


def update(model: Sims, previous: Sims, data: TrainingData) -> bool:
    """Fit ``model`` as ``previous`` updated with ``data.new_events``; False (``model`` untouched)
    when a full fit is needed instead."""
    hp = model.hyperparameters
    new = np.asarray(data.new_events, dtype=bool)
    if len(new) != len(data) or previous.similarity.shape[0] != len(previous.item_ids):
        return False
    old_to_new = vocabulary_map(previous.item_ids, data.item_ids)
    if np.any(old_to_new < 0):  # an item the previous version knew is gone
        return False
    n = data.n_items
    new_at = np.flatnonzero(new)
    new_weights = model.event_weights(data, new_at)
    fresh_at = new_at[new_weights > 0]
    is_new_item = np.ones(n, dtype=bool)
    is_new_item[old_to_new] = False
    touched = np.zeros(n, dtype=bool)
    touched[data.item_index[fresh_at]] = True
    touched |= is_new_item
    if n >= SMALL_CATALOG and touched.sum() > MAX_TOUCHED_SHARE * n:
        return False

    # The affected users' events (whole histories) that count, in event order.
    affected = np.zeros(data.n_users, dtype=bool)
    affected[data.user_index[fresh_at]] = True
    mine = np.flatnonzero(affected[data.user_index])
    weights = model.event_weights(data, mine)
    mine, weights = mine[weights > 0], weights[weights > 0]
    after, before = _user_items(data, mine, ~new[mine], weights)

    k = max(hp["neighbours"] - 1, 0)  # the item itself was one of its ``neighbours`` (then dropped)
    norms = _squared_norms(model, data, np.unique(after.indices))
    model.similarity = _updated_similarity(previous.similarity, old_to_new, norms, after, before, k)

    change = transitions_gained(data, mine, new[mine], window=hp["sequence_window"], decay=TRANSITION_DECAY)
    model.sequence = _updated_sequence(previous.sequence, old_to_new, change, hp["neighbours"])

    gained = np.bincount(data.item_index[fresh_at], weights=new_weights[new_weights > 0], minlength=n)
    model.popularity = carry(previous.popularity, old_to_new, n) + gained
    model._set_items(data.item_ids)
    return True


def _user_items(
    data: TrainingData, events: np.ndarray, old: np.ndarray, weights: np.ndarray
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """The user × item matrices of ``events`` (indices, with their ``weights``) and of the ``old``
    ones among them, one row per user with an event, in the same order in both."""
    users = np.unique(data.user_index[events])
    row = np.full(data.n_users, -1, dtype=np.int64)
    row[users] = np.arange(len(users))
    rows, items = row[data.user_index[events]], data.item_index[events]
    return tuple(
        user_item_matrix(rows[keep], items[keep], weights[keep], len(users), data.n_items)
        for keep in (np.ones(len(events), dtype=bool), old)
    )


def _squared_norms(model: Sims, data: TrainingData, items: np.ndarray) -> np.ndarray:
    """Each of ``items``' squared norm over the whole user × item matrix (every other item: 0),
    the same float32 values as that matrix's column sums.

    A column sum adds its users' (user, item) sums in user order whatever else the matrix holds,
    so only the events on ``items`` are read, as long as those sums come out the same: they do when
    float32 adds the weights exactly in any order (:func:`_adds_exactly`, e.g. the default whole
    weights); otherwise each (user, item) sum's order follows its user's whole row, and the whole
    histories of the users concerned are read instead."""
    n = data.n_items
    wanted = np.zeros(n, dtype=bool)
    wanted[items] = True
    at = np.flatnonzero(wanted[data.item_index])
    weights = model.event_weights(data, at)
    if not _adds_exactly(weights):
        users = np.zeros(data.n_users, dtype=bool)
        users[data.user_index[at]] = True
        at = np.flatnonzero(users[data.user_index])
        weights = model.event_weights(data, at)
    matrix = user_item_matrix(data.user_index[at], data.item_index[at], weights, data.n_users, n)
    squares = np.asarray(matrix.power(2).sum(axis=0), dtype=np.float64).ravel()
    return np.where(wanted, squares, 0.0)


def _adds_exactly(weights: np.ndarray) -> bool:
    """Whether float32 adds up any of these weights exactly, in any order: they are all (as
    float32) multiples of one power of two ``q`` and their total is at most ``2**24 q``, so every
    partial sum is a float32."""
    counted = weights[weights > 0].astype(np.float32).astype(np.float64)
    if len(counted) == 0:
        return True
    values = np.unique(counted)
    total = float(counted.sum())
    for bits in range(25):
        scaled = values * 2.0**bits
        if np.all(scaled == np.floor(scaled)):
            return total * 2.0**bits <= 2.0**24
    return False


def _updated_similarity(
    previous: sp.csr_matrix,
    old_to_new: np.ndarray,
    norms_squared: np.ndarray,
    after: sp.csr_matrix,
    before: sp.csr_matrix,
    k: int,
) -> sp.csr_matrix:
    """Cosine similarities after the affected users' rows of the user × item matrix went from
    ``before`` to ``after`` (matrices of those users' rows only, in the same order), from the
    ``previous`` ones (rows and columns indexed by old items, ``old_to_new`` placing them), each
    row cut back to its best ``k`` (``norms_squared``: the squared norm, over the whole updated
    matrix, of each item ``after`` holds).

    A cosine is a dot product over two norms. Only the affected users change dot products, by
    ``after.T @ after - before.T @ before`` = ``added.T @ after + before.T @ added`` with
    ``added = after - before`` (so the cost follows the new events times the histories they join,
    not the square of long histories), and only the norms of items they touched; so each stored
    similarity is rescaled to the new norms and the change of its dot product added. A pair that
    neither item kept among its neighbours before starts from an old dot product of 0 (both were
    outside each other's lists). Items outside ``after`` keep their norm: a factor of exactly 1.
    """
    n = len(norms_squared)
    in_after = np.zeros(n, dtype=bool)
    in_after[after.indices] = True
    new_norm = np.sqrt(norms_squared)
    old_squared = norms_squared - _column_squares(after) + _column_squares(before)
    old_norm = np.sqrt(np.maximum(old_squared, 0.0))
    inverse = np.divide(1.0, new_norm, out=np.zeros_like(new_norm), where=new_norm > 0)
    ratio = np.where(in_after, old_norm * inverse, 1.0)

    added = (after - before).tocsr()
    added.eliminate_zeros()
    change = (added.T @ after + before.T @ added).tocsr()
    change.data[np.repeat(np.arange(n), np.diff(change.indptr)) == change.indices] = 0  # no pair with itself
    change.eliminate_zeros()
    change.sort_indices()  # the same entries, in order: the products below take the fast path

    old = _Carried(previous, old_to_new, n)
    counts = old.counts
    changed = np.diff(change.indptr)
    rows = np.flatnonzero((changed > 0) | (counts > k))
    factor = ratio.astype(np.float32)

    # The rows the change reaches, exactly as the whole-matrix form computes them: it reads the
    # previous matrix only in those rows and, for the mirrored pairs, in the change's columns.
    pattern = change.copy()
    pattern.data[:] = 1.0
    flipped = pattern.T.tocsr()
    mirrored = flipped.multiply(old.only_rows(np.flatnonzero(np.diff(flipped.indptr)))).T.tocsr()
    previous_rows = old.only_rows(rows)
    here = pattern.multiply(previous_rows)
    here.data[:] = 1.0
    mirrored = (mirrored - mirrored.multiply(here)).tocsr()
    mirrored.eliminate_zeros()
    rescaled = _scaled(previous_rows, factor)
    added = _scaled(mirrored, factor) + _scaled(change, inverse)
    recomputed = (rescaled + added).tocsr()
    recomputed.data[recomputed.data <= SIMILARITY_FLOOR] = 0.0
    recomputed.eliminate_zeros()
    recomputed = _keep_top(_rows(recomputed, rows), k)

    # Every other row: the previous one, rescaled where its item's or a column's norm changed.
    similarity = old.spliced(rows, recomputed, column_factor=factor)
    outside = np.ones(n, dtype=bool)
    outside[rows] = False
    scaled_rows = np.flatnonzero((factor != 1) & outside & (counts > 0))
    if len(scaled_rows):  # rows first, then columns, as the whole-matrix form rounds
        sizes = counts[scaled_rows]
        at = _ranges(similarity.indptr[scaled_rows], sizes)
        previous_data = old.matrix.data[_ranges(old.starts[scaled_rows], sizes)].astype(np.float32, copy=False)
        similarity.data[at] = previous_data * np.repeat(factor[scaled_rows], sizes) * factor[similarity.indices[at]]
    _drop(similarity, similarity.data <= SIMILARITY_FLOOR)
    return similarity


def _updated_sequence(
    previous: sp.csr_matrix, old_to_new: np.ndarray, change: sp.csr_matrix, keep: int
) -> sp.csr_matrix:
    """The transition matrix (both directions) plus ``change`` and its transpose, each row cut
    back to its best ``keep``: the previous rows where the change does not reach."""
    n = change.shape[0]
    old = _Carried(previous, old_to_new, n)
    transposed = change.T.tocsr()
    changed = np.diff(change.indptr) + np.diff(transposed.indptr)
    rows = np.flatnonzero((changed > 0) | (old.counts > keep))
    recomputed = (_rows(old.only_rows(rows), rows) + _rows(change, rows) + _rows(transposed, rows)).tocsr()
    recomputed.data[recomputed.data < SEQUENCE_FLOOR] = 0.0  # what the old histories contributed to a cut entry
    recomputed.eliminate_zeros()
    recomputed = _keep_top(recomputed, keep)
    sequence = old.spliced(rows, recomputed)
    _drop(sequence, sequence.data < SEQUENCE_FLOOR)
    return sequence


def _in_order(matrix: sp.csr_matrix, old_to_new: np.ndarray) -> tuple[sp.csr_matrix, np.ndarray]:
    """``matrix`` with its rows sorted and no duplicates, and ``old_to_new``, with the old items
    laid out in the new order first where that order is not theirs (a vocabulary only grows, so
    it normally is)."""
    matrix = sp.csr_matrix(matrix)
    if len(old_to_new) and not np.all(np.diff(old_to_new) > 0):
        n = int(old_to_new.max()) + 1
        matrix = carry_rows(matrix, old_to_new, n, columns=True)
        old_to_new = np.arange(n)
    if not matrix.has_canonical_format:
        matrix = matrix.copy()
        matrix.sum_duplicates()
    return matrix, old_to_new


class _Carried:
    """An items × items matrix of the old vocabulary (``matrix``, from :func:`_in_order`) as seen
    from the new one (``old_to_new``, increasing, places its rows and columns among ``n`` items),
    read where needed rather than laid out anew: ``counts`` (entries per new row) and ``starts``
    (where each new row's entries start in ``matrix``)."""

    def __init__(self, matrix: sp.csr_matrix, old_to_new: np.ndarray, n: int) -> None:
        self.matrix, self.old_to_new = _in_order(matrix, old_to_new)
        self.n = n
        self.counts = np.zeros(n, dtype=np.int64)
        self.counts[self.old_to_new] = np.diff(self.matrix.indptr)
        self.starts = np.concatenate([[0], np.cumsum(self.counts)[:-1]]).astype(np.int64) if n else self.counts

    def _index_dtype(self, nnz: int) -> type:
        return np.int32 if nnz < 2**31 and self.n < 2**31 else np.int64

    def _new_columns(self, indices: np.ndarray, index: type) -> np.ndarray:
        """Old column numbers as new ones."""
        if len(self.old_to_new) == self.n:  # no new item: the same vocabulary
            return indices.astype(index, copy=False)
        out = np.empty(len(indices), dtype=index)
        _gather(self.old_to_new.astype(index), indices, out)
        return out

    def only_rows(self, rows: np.ndarray) -> sp.csr_matrix:
        """The matrix laid out for the new vocabulary with every row but ``rows`` (ascending) empty."""
        sizes = self.counts[rows]
        at = _ranges(self.starts[rows], sizes)
        counts = np.zeros(self.n, dtype=np.int64)
        counts[rows] = sizes
        index = self._index_dtype(len(at))
        indptr = np.concatenate([[0], np.cumsum(counts)]).astype(index)
        columns = self._new_columns(self.matrix.indices[at], index)
        return sp.csr_matrix((self.matrix.data[at], columns, indptr), shape=(self.n, self.n), copy=False)

    def spliced(
        self, rows: np.ndarray, replacement: sp.csr_matrix, *, column_factor: np.ndarray | None = None
    ) -> sp.csr_matrix:
        """The matrix laid out for the new vocabulary, rows ``rows`` (ascending) taken from
        ``replacement`` (one row each, new columns) instead, as float32; ``column_factor``: every
        other entry multiplied by its (new) column's factor.

        Written once into the result: the other rows keep their order, so between two replaced
        rows they are one run of the old arrays, and the runs and the replacement rows are joined
        in one concatenation (the old arrays are read, never copied whole first)."""
        n, matrix = self.n, self.matrix
        counts = self.counts.copy()
        counts[rows] = np.diff(replacement.indptr)
        index = self._index_dtype(int(counts.sum()))
        indptr = np.concatenate([[0], np.cumsum(counts)]).astype(index)
        run_from = np.concatenate([[0], self.starts[rows] + self.counts[rows]]).tolist()  # after each replaced row
        run_to = np.concatenate([self.starts[rows], [matrix.nnz]]).tolist()
        new_only = len(self.old_to_new) != n
        if new_only:  # the replacement's columns as codes the old matrix's table also maps
            codes = np.empty(n, dtype=index)
            codes[self.old_to_new] = np.arange(len(self.old_to_new), dtype=index)
            fresh = np.ones(n, dtype=bool)
            fresh[self.old_to_new] = False
            codes[fresh] = len(self.old_to_new) + np.arange(int(fresh.sum()), dtype=index)
            table = np.concatenate([self.old_to_new, np.flatnonzero(fresh)]).astype(index)
            replaced_columns = codes[replacement.indices]
        else:
            replaced_columns = replacement.indices
        data = matrix.data if matrix.data.dtype == np.float32 else matrix.data.astype(np.float32)
        replaced_data = replacement.data.astype(np.float32, copy=False)
        at = replacement.indptr.tolist()
        indices, values = [matrix.indices[run_from[0] : run_to[0]]], [data[run_from[0] : run_to[0]]]
        for i in range(len(rows)):
            indices += (replaced_columns[at[i] : at[i + 1]], matrix.indices[run_from[i + 1] : run_to[i + 1]])
            values += (replaced_data[at[i] : at[i + 1]], data[run_from[i + 1] : run_to[i + 1]])
        indices = np.concatenate(indices, dtype=index)
        values = np.concatenate(values, dtype=np.float32)
        if new_only:
            _gather(table, indices, indices)
        if column_factor is not None:
            carried = np.ones(n, dtype=bool)
            carried[rows] = False
            _scale_columns(values, indices, column_factor, np.repeat(carried, counts))
        return sp.csr_matrix((values, indices, indptr), shape=(n, n), copy=False)


def _scale_columns(
    values: np.ndarray, columns: np.ndarray, factor: np.ndarray, where: np.ndarray, block: int = 1 << 20
) -> None:
    """``values[where] *= factor[columns[where]]``, in place, a block at a time (see :func:`_gather`)."""
    scale = np.empty(min(block, len(values)), dtype=factor.dtype)
    for start in range(0, len(values), block):
        stop = min(start + block, len(values))
        np.take(factor, columns[start:stop], out=scale[: stop - start], mode="clip")
        np.multiply(scale[: stop - start], values[start:stop], out=values[start:stop], where=where[start:stop])


def _gather(table: np.ndarray, at: np.ndarray, out: np.ndarray, block: int = 1 << 20) -> None:
    """``out[:] = table[at]`` a block at a time: ``np.take`` turns its indices into a temporary
    of pointer-sized integers, which for a whole matrix is a fresh allocation whose first touch
    (page faults) cost more than the gather in a training process."""
    for start in range(0, len(at), block):
        np.take(table, at[start : start + block], out=out[start : start + block], mode="clip")


def _rows(matrix: sp.csr_matrix, rows: np.ndarray) -> sp.csr_matrix:
    """``matrix[rows]`` (``rows`` ascending) as a CSR of ``len(rows)`` rows."""
    counts = np.diff(matrix.indptr)[rows]
    at = _ranges(matrix.indptr[rows], counts)
    indptr = np.concatenate([[0], np.cumsum(counts)])
    return sp.csr_matrix((matrix.data[at], matrix.indices[at], indptr), shape=(len(rows), matrix.shape[1]))


def _drop(matrix: sp.csr_matrix, drop: np.ndarray) -> None:
    """Removes ``matrix``'s entries where ``drop``, in place (usually none are)."""
    if drop.any():
        matrix.data[drop] = 0.0
        matrix.eliminate_zeros()


def _column_squares(matrix: sp.csr_matrix) -> np.ndarray:
    return np.asarray(matrix.power(2).sum(axis=0), dtype=np.float64).ravel()


def _scaled(matrix: sp.spmatrix, factor: np.ndarray) -> sp.csr_matrix:
    """``diag(factor) @ matrix @ diag(factor)``, computed on the stored entries."""
    matrix = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    factor = factor.astype(np.float32)
    matrix.data *= np.repeat(factor, np.diff(matrix.indptr))
    matrix.data *= factor[matrix.indices]
    return matrix
