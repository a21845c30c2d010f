"""ALS taste for a block of shoppers without a rows × catalogue taste matrix of its own.

A batch block needs three things from the taste ``t = U Yᵀ``: each row's largest ``|t|`` (the
blend divides by it), the blended approximation ``q + c·t`` over every item (to find each row's
best few) and ``t`` itself for those few. Written as a taste matrix and then passes over it
(maximum, minimum, scale, add), that was four catalogue-wide passes per shopper besides the
product. Here:

* the largest ``|t|`` comes from the items with the largest factors (``HEAD`` of them, by norm):
  no item beyond them can score more than the shopper's vector's norm times theirs
  (Cauchy–Schwarz), which is below the largest seen for nearly every shopper; the rest are
  scored whole;
* ``q + c·t`` is one single-precision GEMM that adds ``(c·U) Yᵀ`` onto the transition scores in
  place (BLAS's ``beta = 1``);
* the best few items' ``t`` are dot products, in float64.

On the batch benchmark (20,000 items, 64 factors) this took the block's scoring from about 157
to about 125 µs a shopper.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg.blas import sgemm

from engine.recipes.up_pruned import SLACK, by_norm

#: Items with the largest factors whose taste is computed to find each row's largest ``|t|``
#: (a row whose bound is not settled by them is scored whole). On the batch benchmark's model a
#: row needed at most about 600 for 90% of shoppers.
HEAD = 2048


class TasteLayout:
    """Per model: the item factors padded to a block's width, and those with the largest norms."""

    def __init__(self, factors: np.ndarray, width: int) -> None:
        n, f = factors.shape
        self.factors = np.ascontiguousarray(factors, dtype=np.float32)
        self.padded = np.zeros((width, f), dtype=np.float32)
        self.padded[:n] = self.factors
        order, norms = by_norm(self.factors)
        head = min(n, HEAD)
        self.head_t = np.ascontiguousarray(self.factors[order[:head]].T)
        #: Largest norm of an item outside the head, with the bound's slack for float32 rounding.
        self.beyond = float(norms[head]) * (1.0 + SLACK) if head < n else 0.0

    def largest(self, vectors: np.ndarray) -> np.ndarray:
        """Each row's largest ``|vectors · yᵢ|`` over every item, float64."""
        head = vectors @ self.head_t
        top = np.maximum(head.max(axis=1, initial=0.0), -head.min(axis=1, initial=0.0)).astype(np.float64)
        length = np.sqrt(np.einsum("ij,ij->i", vectors, vectors, dtype=np.float64))
        unsure = np.flatnonzero(length * self.beyond > top)
        if len(unsure):
            whole = vectors[unsure] @ self.factors.T
            top[unsure] = np.maximum(whole.max(axis=1), -whole.min(axis=1))
        return top

    def accumulate(self, out: np.ndarray, vectors: np.ndarray) -> None:
        """``out += vectors @ paddedᵀ`` in place (``out``: rows × width, C-contiguous float32).

        A C-contiguous rows × width array is BLAS's (column-major) width × rows matrix, so the
        product is asked for transposed: ``outᵀ += Y_padded · vectorsᵀ``.
        """
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        result = sgemm(1.0, self.padded.T, vectors.T, beta=1.0, c=out.T, trans_a=1, overwrite_c=1)
        if not np.shares_memory(result, out):  # (a BLAS wrapper that copied: not seen, but cheap to cover)
            out[:] = result.T

    def columns(self, vectors: np.ndarray, items: np.ndarray) -> np.ndarray:
        """``vectors @ y[items]ᵀ`` (rows × len(items), float32): the taste of a few whole columns."""
        return vectors @ self.factors[items].T

    def at(self, vectors: np.ndarray, rows: np.ndarray, items: np.ndarray) -> np.ndarray:
        """``vectors[rows[k]] · y[items[k]]`` for each k, in float64."""
        return np.einsum("ij,ij->i", vectors[rows], self.factors[items], dtype=np.float64)


def taste_layout(model, width: int) -> TasteLayout:
    """The model's :class:`TasteLayout` for blocks ``width`` wide, built once per loaded model."""
    cached = getattr(model, "_batch_taste_layout", None)
    if cached is None or cached[0] is not model.item_factors or cached[1] != width:
        cached = (model.item_factors, width, TasteLayout(model.item_factors, width))
        model._batch_taste_layout = cached
    return cached[2]
