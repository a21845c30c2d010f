"""Item-item similarity from who touched what: cosine over shoppers, shrunk towards zero for pairs
seen together only a few times.

Plain cosine (``implicit``'s CosineRecommender) rates two items that one shopper touched together
as highly as two that a hundred shoppers did, as long as both are rare; on a long-tailed catalogue
those one-off pairs crowd the top of a rare item's list. Dividing by ``sqrt(n_i * n_j) + shrink``
instead of ``sqrt(n_i * n_j)`` discounts them (the usual "shrunk" similarity of item-based
collaborative filtering). Each shopper counts once per item: a view, an add-to-cart and a purchase
of one item are one signal of "touched", not three, and heavy repeat events do not swamp it.

Computed a block of item rows at a time with scipy's sparse product, so memory stays bounded by
``MAX_BLOCK_PAIRS`` however large the catalogue.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

#: Upper bound on the co-occurring pairs materialised at once (about 12 bytes each).
MAX_BLOCK_PAIRS = 20_000_000


def shrunk_cosine(
    user_items: sp.spmatrix, *, shrink: float, neighbours: int, rows: np.ndarray | None = None
) -> sp.csr_matrix:
    """items × items: ``|U_i ∩ U_j| / (sqrt(|U_i| |U_j|) + shrink)`` over the shoppers ``U`` who
    touched each item (any positive entry of ``user_items``), each row keeping its ``neighbours``
    largest entries; no item is its own neighbour. ``rows``: compute only these items' rows."""
    touched = sp.csr_matrix(user_items, dtype=np.float32, copy=True)
    touched.eliminate_zeros()
    touched.data[:] = 1.0
    n_items = touched.shape[1]
    by_item = touched.T.tocsr()  # items × users
    counts = np.diff(by_item.indptr).astype(np.float64)
    # Pairs each item row can produce at most: the sum of its shoppers' item counts.
    per_user = np.diff(touched.indptr).astype(np.float64)
    wanted = np.arange(n_items) if rows is None else np.unique(np.asarray(rows, dtype=np.int64))
    row_pairs = by_item[wanted] @ per_user
    parts = []
    for start, stop in _blocks(row_pairs, MAX_BLOCK_PAIRS):
        chunk = wanted[start:stop]
        together = (by_item[chunk] @ touched).tocoo()
        items, cols, shared = chunk[together.row], together.col, together.data.astype(np.float64)
        keep = items != cols
        items, cols, shared = items[keep], cols[keep], shared[keep]
        values = shared / (np.sqrt(counts[items] * counts[cols]) + shrink)
        block = sp.csr_matrix((values.astype(np.float32), (items, cols)), shape=(n_items, n_items))
        parts.append(top_per_row(block, neighbours).tocoo())
    if not parts:
        return sp.csr_matrix((n_items, n_items), dtype=np.float32)
    return sp.csr_matrix(
        (
            np.concatenate([p.data for p in parts]).astype(np.float32),
            (np.concatenate([p.row for p in parts]), np.concatenate([p.col for p in parts])),
        ),
        shape=(n_items, n_items),
    )


def top_per_row(matrix: sp.spmatrix, k: int) -> sp.csr_matrix:
    """Each row's ``k`` largest positive entries. Rows already that short are kept whole at once;
    only longer rows are partitioned one at a time (no full sort of every entry)."""
    matrix = sp.csr_matrix(matrix)
    matrix.sum_duplicates()
    keep = matrix.data > 0
    lengths = np.diff(matrix.indptr)
    for r in np.flatnonzero(lengths > k).tolist():
        lo, hi = matrix.indptr[r], matrix.indptr[r + 1]
        values = np.where(keep[lo:hi], matrix.data[lo:hi], -np.inf)
        cut = np.argpartition(-values, k - 1)[k:]
        keep[lo + cut] = False
    rows = np.repeat(np.arange(matrix.shape[0]), lengths)[keep]
    return sp.csr_matrix((matrix.data[keep], (rows, matrix.indices[keep])), shape=matrix.shape)


def _blocks(weights: np.ndarray, budget: float) -> list[tuple[int, int]]:
    """Consecutive index ranges whose ``weights`` sum to at most ``budget`` (at least one index each)."""
    out, start, total = [], 0, 0.0
    for i, w in enumerate(weights.tolist()):
        if i > start and total + w > budget:
            out.append((start, i))
            start, total = i, 0.0
        total += w
    if start < len(weights):
        out.append((start, len(weights)))
    return out
