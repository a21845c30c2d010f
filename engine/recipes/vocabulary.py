"""A previous model's per-item arrays laid out for a new item vocabulary (UPDATE training: the
vocabulary only grows between versions, so the common case reuses the arrays as they are)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from engine.sorting import sorted_search


def vocabulary_map(old_ids: np.ndarray, new_ids: np.ndarray) -> np.ndarray:
    """Per old item, its index in ``new_ids`` (-1: no longer there); vectorised, no Python loop."""
    old_ids, new_ids = np.asarray(old_ids, dtype=str), np.asarray(new_ids, dtype=str)
    if len(new_ids) == 0:
        return np.full(len(old_ids), -1, dtype=np.int64)
    ascending = bool(np.all(new_ids[1:] > new_ids[:-1]))
    order = np.arange(len(new_ids)) if ascending else np.argsort(new_ids, kind="stable")
    ordered = new_ids[order]
    at = np.minimum(sorted_search(ordered, old_ids), len(ordered) - 1)
    return np.where(ordered[at] == old_ids, order[at], -1).astype(np.int64)


def carry(values: np.ndarray, old_to_new: np.ndarray, n: int) -> np.ndarray:
    """Rows of ``values`` (one per old item) laid out for the new vocabulary; new items get zeros."""
    out = np.zeros((n, *values.shape[1:]), dtype=values.dtype)
    ok = old_to_new >= 0
    out[old_to_new[ok]] = values[ok]
    return out


def carry_rows(matrix: sp.spmatrix, old_to_new: np.ndarray, n: int, *, columns: bool) -> sp.csr_matrix:
    """A sparse matrix with rows (and, when ``columns``, columns too) indexed by old items, laid
    out for the new vocabulary. When the old items keep their order (a sorted vocabulary that only
    grew) the arrays are reused as they are, with empty rows inserted, instead of re-sorted."""
    matrix = sp.csr_matrix(matrix)
    n_cols = n if columns else matrix.shape[1]
    if len(old_to_new) == 0 or matrix.nnz == 0:
        return sp.csr_matrix((n, n_cols), dtype=matrix.dtype)
    if np.all(old_to_new >= 0) and np.all(np.diff(old_to_new) > 0):
        counts = np.zeros(n, dtype=np.int64)
        counts[old_to_new] = np.diff(matrix.indptr)
        indptr = np.concatenate([[0], np.cumsum(counts)])
        # The new column numbers in the matrix's own index type (int32 as a rule): an int64 copy
        # of every index doubled the later sums' work.
        index_type = matrix.indices.dtype if n_cols <= np.iinfo(matrix.indices.dtype).max else np.int64
        indices = old_to_new.astype(index_type)[matrix.indices] if columns else matrix.indices
        return sp.csr_matrix((matrix.data, indices, indptr), shape=(n, n_cols))
    coo = matrix.tocoo()
    rows = old_to_new[coo.row]
    cols = old_to_new[coo.col] if columns else coo.col
    ok = (rows >= 0) & (cols >= 0)
    out = sp.csr_matrix((coo.data[ok], (rows[ok], cols[ok])), shape=(n, n_cols), dtype=matrix.dtype)
    out.sum_duplicates()
    return out
