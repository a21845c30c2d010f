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
norm changed), spliced in with whole-array operations, so the work follows the affected users'
histories plus a few linear passes over the stored entries, not the catalogue's rows. Event
weights are read for the events that need them (the affected users' and those on the items whose
norm changes), not for every event. The result is the same, entry for entry and bit for bit, as
applying the update to the whole matrices at once (``tests/engine/recipes/test_sims_update_rows.py``
keeps that whole-matrix form as the reference).

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

    previous, old_to_new = _in_order(previous, old_to_new)
    counts = np.zeros(n, dtype=np.int64)
    counts[old_to_new] = np.diff(previous.indptr)
    changed = np.diff(change.indptr)
    rows = np.flatnonzero((changed > 0) | (counts > k))
    carried, buffer = _carried(previous, old_to_new, n, room=int(np.minimum(counts[rows] + changed[rows], k).sum()))
    factor = ratio.astype(np.float32)

    # The rows the change reaches, exactly as the whole-matrix form computes them: it reads the
    # previous matrix only in those rows and, for the mirrored pairs, in the change's columns.
    pattern = change.copy()
    pattern.data[:] = 1.0
    flipped = pattern.T.tocsr()
    mirrored = flipped.multiply(_only_rows(carried, np.flatnonzero(np.diff(flipped.indptr)))).T.tocsr()
    previous_rows = _only_rows(carried, rows)
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
    previous_data = carried.data.astype(np.float32, copy=False)
    data = np.empty(len(buffer), dtype=np.float32)
    _gather(factor, carried.indices, data[: carried.nnz])
    data[: carried.nnz] *= previous_data
    outside = np.ones(n, dtype=bool)
    outside[rows] = False
    scaled_rows = np.flatnonzero((factor != 1) & outside & (counts > 0))
    if len(scaled_rows):  # rows first, then columns, as the whole-matrix form rounds
        at = _ranges(carried.indptr[scaled_rows], counts[scaled_rows])
        data[at] = previous_data[at] * np.repeat(factor[scaled_rows], counts[scaled_rows]) * factor[carried.indices[at]]
    similarity = _assembled(carried, buffer, data, rows, recomputed)
    _drop(similarity, similarity.data <= SIMILARITY_FLOOR)
    return similarity


def _updated_sequence(
    previous: sp.csr_matrix, old_to_new: np.ndarray, change: sp.csr_matrix, keep: int
) -> sp.csr_matrix:
    """The transition matrix (both directions) plus ``change`` and its transpose, each row cut
    back to its best ``keep``: the previous rows where the change does not reach."""
    n = change.shape[0]
    previous, old_to_new = _in_order(previous, old_to_new)
    counts = np.zeros(n, dtype=np.int64)
    counts[old_to_new] = np.diff(previous.indptr)
    transposed = change.T.tocsr()
    changed = np.diff(change.indptr) + np.diff(transposed.indptr)
    rows = np.flatnonzero((changed > 0) | (counts > keep))
    carried, buffer = _carried(previous, old_to_new, n, room=int(np.minimum(counts[rows] + changed[rows], keep).sum()))
    recomputed = (_rows(carried, rows) + _rows(change, rows) + _rows(transposed, rows)).tocsr()
    recomputed.data[recomputed.data < SEQUENCE_FLOOR] = 0.0  # what the old histories contributed to a cut entry
    recomputed.eliminate_zeros()
    recomputed = _keep_top(recomputed, keep)
    data = np.empty(len(buffer), dtype=np.float32)
    data[: carried.nnz] = carried.data
    sequence = _assembled(carried, buffer, data, rows, recomputed)
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


def _carried(matrix: sp.csr_matrix, old_to_new: np.ndarray, n: int, *, room: int) -> tuple[sp.csr_matrix, np.ndarray]:
    """An items × items ``matrix`` of the old vocabulary (from :func:`_in_order`) laid out for the
    new one, sharing its data; and the buffer its indices lie at the start of, with ``room``
    entries to spare at the end (for :func:`_assembled`)."""
    counts = np.zeros(n, dtype=np.int64)
    counts[old_to_new] = np.diff(matrix.indptr)
    index = np.int32 if matrix.nnz + room < 2**31 and n < 2**31 else np.int64
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(index)
    buffer = np.empty(matrix.nnz + room, dtype=index)
    if len(old_to_new) == n:  # no new item: the same vocabulary
        buffer[: matrix.nnz] = matrix.indices
    else:
        _gather(old_to_new.astype(index), matrix.indices, buffer[: matrix.nnz])
    return sp.csr_matrix((matrix.data, buffer[: matrix.nnz], indptr), shape=(n, n), copy=False), buffer


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


def _only_rows(matrix: sp.csr_matrix, rows: np.ndarray) -> sp.csr_matrix:
    """``matrix`` with every row but ``rows`` (ascending) emptied."""
    counts = np.zeros(matrix.shape[0], dtype=np.int64)
    counts[rows] = np.diff(matrix.indptr)[rows]
    at = _ranges(matrix.indptr[rows], counts[rows])
    indptr = np.concatenate([[0], np.cumsum(counts)])
    return sp.csr_matrix((matrix.data[at], matrix.indices[at], indptr), shape=matrix.shape)


def _assembled(
    carried: sp.csr_matrix, indices: np.ndarray, data: np.ndarray, rows: np.ndarray, replacement: sp.csr_matrix
) -> sp.csr_matrix:
    """``carried``'s rows (its indices and ``data`` at the start of ``indices`` and ``data``) with
    rows ``rows`` (ascending) taken from ``replacement`` (one row each) instead: the replacement
    rows go into the buffers' spare room and one row gather puts every row in its place."""
    n, nnz = carried.shape[0], carried.nnz
    end = nnz + replacement.nnz
    indices[nnz:end] = replacement.indices
    data[nnz:end] = replacement.data
    indptr = np.concatenate([carried.indptr, nnz + replacement.indptr[1:]]).astype(indices.dtype)
    stacked = sp.csr_matrix((data[:end], indices[:end], indptr), shape=(n + len(rows), n), copy=False)
    order = np.arange(n, dtype=indices.dtype)
    order[rows] = n + np.arange(len(rows), dtype=indices.dtype)
    return stacked[order]


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
