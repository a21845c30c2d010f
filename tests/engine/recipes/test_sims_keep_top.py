"""sims' per-row cut (``_keep_top``): each row keeps its ``k`` largest entries, ties in column order,
in the row's stored order, whatever the rows' lengths and however the selection is split up."""

import numpy as np
import pytest
import scipy.sparse as sp

from engine.recipes import sims
from engine.recipes.sims import _keep_top


def expected(matrix: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Row by row: the entries among the ``k`` first by (value descending, column), in stored order."""
    matrix = matrix.tocsr()
    matrix.sum_duplicates()
    rows, cols, vals = [], [], []
    for r in range(matrix.shape[0]):
        lo, hi = matrix.indptr[r], matrix.indptr[r + 1]
        indices, data = matrix.indices[lo:hi], matrix.data[lo:hi]
        chosen = set(np.lexsort((indices, -data))[:k].tolist())
        keep = [i for i in range(hi - lo) if i in chosen]
        rows += [r] * len(keep)
        cols += indices[keep].tolist()
        vals += data[keep].tolist()
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=matrix.shape[0]))])
    return sp.csr_matrix((np.array(vals, dtype=np.float32), np.array(cols), indptr), shape=matrix.shape)


def rows_of_many_lengths(seed: int = 5) -> sp.csr_matrix:
    """Rows from empty to a few hundred entries (across several powers of two), with ties and negatives."""
    rng = np.random.default_rng(seed)
    n = 700
    lengths = np.concatenate(
        [[0, 1, 2, 3, 4, 5, 8, 9, 16, 17, 63, 64, 65, 127, 128, 129, 300, 600], rng.integers(0, 40, 30)]
    )
    rows = np.repeat(np.arange(len(lengths)), lengths)
    cols = np.concatenate([rng.choice(n, size, replace=False) for size in lengths])
    values = (rng.integers(-3, 12, len(cols)) / 4).astype(np.float32)  # many ties
    values[values == 0] = 0.5
    return sp.csr_matrix((values, (rows, cols)), shape=(len(lengths), n))


@pytest.mark.parametrize("k", [0, 1, 2, 4, 16, 64, 99, 128, 1000])
def test_each_row_keeps_its_k_largest_in_stored_order(k):
    matrix = rows_of_many_lengths()
    got, want = _keep_top(matrix, k), expected(matrix, k)
    np.testing.assert_array_equal(got.indptr, want.indptr)
    np.testing.assert_array_equal(got.indices, want.indices)
    np.testing.assert_array_equal(got.data, want.data)
    assert got.data.dtype == np.float32


@pytest.mark.parametrize("cells", [1, 64, 1000])
def test_the_same_when_the_selection_is_split_into_small_tables(monkeypatch, cells):
    matrix = rows_of_many_lengths(seed=8)
    monkeypatch.setattr(sims, "TOP_TABLE_CELLS", cells)  # rows wider than a table, tables of one row
    for k in (3, 50):
        got, want = _keep_top(matrix, k), expected(matrix, k)
        np.testing.assert_array_equal(got.indices, want.indices)
        np.testing.assert_array_equal(got.data, want.data)


def test_duplicates_are_summed_before_the_cut():
    matrix = sp.csr_matrix((np.float32([1, 1, 1.5, 0.5]), ([0, 0, 0, 0], [3, 3, 1, 2])), shape=(1, 5))
    kept = _keep_top(matrix, 1)
    assert kept.indices.tolist() == [3] and kept.data.tolist() == [2.0]
