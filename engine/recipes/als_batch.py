"""ALS for many users at once: the user step solved in vectorised blocks, and top-N by blocks.

Answering one shopper solves one small least-squares system; answering a hundred thousand (a
batch job, or the user factors of a segment model) one at a time wastes most of the time in
per-call overhead (DESIGN.md, pitfalls). Here the systems are solved a block at a time with
stacked numpy linear algebra, and top-N is taken over a block of score rows at once.

The user step is the one ``implicit`` solves while training:
``(YᵀY + λI + Yᵀ(Cᵤ − I)Y) x = YᵀCᵤ p``. Most shoppers touched few items (L, far fewer than the
factors f), so it is solved through the Woodbury identity: one f×f inverse shared by everyone,
then an L×L system per user, instead of an f×f one.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp

#: Working memory per block, in float64 elements (about 128 MB).
_BLOCK_ELEMENTS = 16_000_000


def solve_users(
    item_factors: np.ndarray, gram: np.ndarray, regularization: float, confidence: sp.csr_matrix
) -> np.ndarray:
    """ALS user vectors (one float64 row per row of ``confidence``) for the given item factors.

    ``confidence`` holds, per user and item interacted with, the confidence c (alpha × weight);
    a user with no entry gets a zero vector. ``gram`` is ``YᵀY`` of ``item_factors``.
    """
    confidence = sp.csr_matrix(confidence, dtype=np.float64)
    confidence.sum_duplicates()
    y = np.ascontiguousarray(item_factors, dtype=np.float32)
    n_users, f = confidence.shape[0], y.shape[1]
    used = np.unique(confidence.indices)
    if len(used) < len(y) // 2:
        # Only the items these users touched take part (the gram already holds everyone): for a
        # few hundred users (fit-time selection) their rows, not Y M⁻¹ over the whole catalogue
        # (200,000 items: 250 MB of float64 work arrays per call).
        y, confidence = y[used], on_columns(confidence, used)
    base = np.asarray(gram, dtype=np.float64) + regularization * np.eye(f)
    out = np.zeros((n_users, f))
    lengths = np.diff(confidence.indptr)
    base_inverse = stable_inverse(base)
    projected = (y.astype(np.float64) @ base_inverse).astype(np.float32) if base_inverse is not None else None
    for block, small in length_blocks(lengths, f, woodbury=projected is not None, budget=_BLOCK_ELEMENTS):
        index, conf, valid = padded_rows(confidence, block)
        if small:
            out[block] = _woodbury_block(y, projected, index, conf, valid)
        else:
            out[block] = _direct_block(y, base, index, conf, valid)
    return out


def on_columns(matrix: sp.csr_matrix, used: np.ndarray) -> sp.csr_matrix:
    """``matrix`` over the columns ``used`` alone (ascending, holding every column it has entries
    in): column ``j`` of the result is column ``used[j]``. The renumbering keeps the columns' order,
    so a product with the matching rows of another matrix adds the same products in the same turn."""
    return sp.csr_matrix(
        (matrix.data, np.searchsorted(used, matrix.indices), matrix.indptr), shape=(matrix.shape[0], len(used))
    )


def length_blocks(lengths: np.ndarray, f: int, *, woodbury: bool, budget: int) -> Iterator[tuple[np.ndarray, bool]]:
    """Rows with items (``lengths`` > 0) in blocks of similar length, each with whether it is solved
    through Woodbury's identity (rows no longer than the factors, when ``woodbury``); a block's
    working arrays stay around ``budget`` elements."""
    users = np.nonzero(lengths)[0]
    users = users[np.argsort(lengths[users], kind="stable")]
    start = 0
    while start < len(users):
        width = int(lengths[users[start]])
        small = woodbury and width <= f
        per_user = width * width + 2 * width * f if small else f * f + 2 * width * f
        block = users[start : start + max(1, budget // max(per_user, 1))]
        # Users come shortest first; a block stops at twice its first user's length, which bounds
        # both the padding wasted and the memory the estimate above allowed for.
        block = block[lengths[block] <= 2 * width]
        start += len(block)
        yield block, small


def stable_inverse(matrix: np.ndarray) -> np.ndarray | None:
    """The inverse when it is safe to use (regularised systems); None sends every user to the direct solve."""
    if np.linalg.cond(matrix) > 1e10:
        return None
    return np.linalg.inv(matrix)


def padded_rows(confidence: sp.csr_matrix, users: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The users' item indices and confidences as (users × longest) arrays, padded with zeros."""
    starts = confidence.indptr[users]
    lengths = confidence.indptr[users + 1] - starts
    width = int(lengths.max(initial=0))
    position = np.arange(width)[None, :]
    valid = position < lengths[:, None]
    flat = np.where(valid, starts[:, None] + position, 0)
    index = np.where(valid, confidence.indices[flat], 0)
    conf = np.where(valid, confidence.data[flat], 0.0)
    return index, conf, valid


def _woodbury_block(
    y: np.ndarray, projected: np.ndarray, index: np.ndarray, conf: np.ndarray, valid: np.ndarray
) -> np.ndarray:
    """x = z − Pᵤᵀ (I + D K)⁻¹ D Yᵤ z with M = YᵀY + λI, P = Y M⁻¹, z = Pᵤᵀ c, K = Yᵤ Pᵤᵀ, D = C − I.

    Padding needs no masking: a padded slot has c = 0 and d = 0, so its row of the L×L system
    is the identity row with a zero right-hand side, its w is 0, and it adds nothing to z or x.
    The gathers and products run in float32 (they are most of the work, and memory-bound); the
    small systems are solved in float64.
    """
    yu = np.take(y, index, axis=0)
    pu = np.take(projected, index, axis=0)
    c = conf.astype(np.float32)
    d = np.where(valid, c - 1.0, 0.0).astype(np.float32)
    z = np.matmul(c[:, None, :], pu)[:, 0, :]
    k = np.matmul(yu, pu.transpose(0, 2, 1))
    system = np.eye(index.shape[1])[None] + (d[:, :, None] * k).astype(np.float64)
    rhs = (d * np.matmul(yu, z[:, :, None])[:, :, 0]).astype(np.float64)
    w = _solve(system, rhs).astype(np.float32)
    return z - np.matmul(w[:, None, :], pu)[:, 0, :]


def _direct_block(
    y: np.ndarray, base: np.ndarray, index: np.ndarray, conf: np.ndarray, valid: np.ndarray
) -> np.ndarray:
    yu = np.take(y, index, axis=0).astype(np.float64)
    d = np.where(valid, conf - 1.0, 0.0)
    a = base[None] + np.matmul(yu.transpose(0, 2, 1) * d[:, None, :], yu)
    b = np.matmul(conf[:, None, :], yu)[:, 0, :]
    return _solve(a, b)


def _solve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    try:
        return np.linalg.solve(a, b[:, :, None])[:, :, 0]
    except np.linalg.LinAlgError:
        # A singular system (no regularisation): least squares per user rather than failing all.
        return np.stack([np.linalg.lstsq(a[i], b[i], rcond=None)[0] for i in range(len(a))])


def top_n(
    vectors: np.ndarray, item_factors: np.ndarray, n: int, exclude: sp.csr_matrix | None = None, *, group: int = 32
) -> tuple[np.ndarray, np.ndarray]:
    """Best ``n`` items per row of ``vectors`` by dot product, best first: (indices, scores).

    Excluded entries (``exclude``: rows × items, any stored entry excludes) score -inf; a row
    with fewer than ``n`` items left has -inf scores at its end, which callers drop.

    A full sort or partition of every row costs more than the matrix product itself, so the
    selection narrows first: items are dealt into groups, and the n-th highest group maximum τ
    is a lower bound of the n-th highest score (n groups each hold an item scoring at least τ).
    Only items of groups reaching τ can score τ or more, so only those few are gathered and
    ranked. Rows are scored a cache-sized block at a time.
    """
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    factors_t = np.ascontiguousarray(np.asarray(item_factors, dtype=np.float32).T)
    n_rows, n_items = vectors.shape[0], factors_t.shape[1]
    n = max(0, min(n, n_items))
    ids = np.zeros((n_rows, n), dtype=np.int64)
    scores = np.full((n_rows, n), -np.inf, dtype=np.float32)
    if n == 0 or n_rows == 0:
        return ids, scores
    groups = -(-n_items // group)
    width = groups * group
    rows_per_block = max(1, min(n_rows, 5_000_000 // width))
    block = np.full((rows_per_block, width), -np.inf, dtype=np.float32)
    for start in range(0, n_rows, rows_per_block):
        stop = min(n_rows, start + rows_per_block)
        rows = block[: stop - start]
        np.matmul(vectors[start:stop], factors_t, out=rows[:, :n_items])
        if exclude is not None:
            part = exclude[start:stop]
            rows[np.repeat(np.arange(stop - start), np.diff(part.indptr)), part.indices] = -np.inf
        if n >= groups:
            ids[start:stop], scores[start:stop] = sorted_top(rows[:, :n_items], n)
        else:
            ids[start:stop], scores[start:stop] = grouped_top(rows, n, group, groups)
    return ids, scores


def sorted_top(rows: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    top = np.argpartition(-rows, n - 1, axis=1)[:, :n]
    values = np.take_along_axis(rows, top, axis=1)
    order = np.argsort(-values, axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1), np.take_along_axis(values, order, axis=1)


def grouped_top(rows: np.ndarray, n: int, group: int, groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Top ``n`` of each row of ``rows`` (R × group·groups; item j is in group j mod groups)."""
    count, width = rows.shape
    best = rows.reshape(count, group, groups).max(axis=1)
    tau = np.partition(best, groups - n, axis=1)[:, groups - n]
    # Groups reaching τ (n of them, more on ties) and their items' flat positions in ``rows``.
    row_of, group_of = np.nonzero(best >= tau[:, None])
    columns = group_of[:, None] + groups * np.arange(group)
    values = np.take(rows, (row_of * width)[:, None] + columns)
    hit_at, hit_item = np.nonzero(values >= tau[row_of][:, None])
    hit_row = row_of[hit_at]
    hit_column = columns[hit_at, hit_item]
    hit_value = values[hit_at, hit_item]
    # Rank the (few) survivors within their row, best first, and keep the first n of each.
    order = np.lexsort((-hit_value, hit_row))
    hit_row, hit_column, hit_value = hit_row[order], hit_column[order], hit_value[order]
    rank = np.arange(len(hit_row)) - np.searchsorted(hit_row, np.arange(count))[hit_row]
    keep = rank < n
    ids = np.zeros((count, n), dtype=np.int64)
    scores = np.full((count, n), -np.inf, dtype=np.float32)
    ids[hit_row[keep], rank[keep]] = hit_column[keep]
    scores[hit_row[keep], rank[keep]] = hit_value[keep]
    return ids, scores
