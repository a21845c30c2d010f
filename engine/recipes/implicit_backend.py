"""The one place that talks to ``implicit``: CPU or GPU, and OpenBLAS kept single-threaded."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

log = logging.getLogger(__name__)

#: Whether ``implicit`` draws its own progress bars (on stderr): set by the training job for a
#: person watching a terminal, so recipes need not pass it through every call.
_SHOW_PROGRESS: ContextVar[bool] = ContextVar("shelfwise_show_progress", default=False)


@contextmanager
def progress_bars(show: bool) -> Iterator[None]:
    """Within this block, ALS and nearest-neighbour fits show ``implicit``'s progress bars."""
    token = _SHOW_PROGRESS.set(show)
    try:
        yield
    finally:
        _SHOW_PROGRESS.reset(token)


def has_cuda() -> bool:
    try:
        import implicit.gpu

        return bool(implicit.gpu.HAS_CUDA)
    except Exception:  # pragma: no cover - a broken CUDA install must not break CPU training
        return False


def fit_als(
    user_items: sp.csr_matrix,
    *,
    factors: int,
    regularization: float,
    alpha: float,
    iterations: int,
    random_state: int,
    initial_item_factors: np.ndarray | None = None,
    show_progress: bool | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Fit ALS; return the item factors (float32, items × factors) and the Gram matrix XᵀX of the
    user factors (float64, factors × factors): an incremental UPDATE solves new items' factors
    against it without refitting every user.

    ``implicit`` warns and runs far slower when OpenBLAS spawns its own threads inside its
    parallel loops, hence the thread-pool limit (DESIGN.md, pitfalls).
    """
    from implicit.als import AlternatingLeastSquares

    use_gpu = has_cuda()
    # Confidence is alpha × weight. implicit scales a copy of the matrix it is given (beside the
    # transposed copy it makes); scaled here, in the one copy made for it, the fit holds one copy
    # of the interactions fewer (200 MB at 25 million events), with the same float32 products.
    confidence = user_items.astype(np.float32)
    confidence.data *= np.float32(alpha)
    # The model checks the BLAS configuration when it is built, so build it inside the limit too.
    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(
            factors=factors,
            regularization=regularization,
            alpha=1.0,
            iterations=iterations,
            random_state=random_state,
            use_gpu=use_gpu,
        )
        if initial_item_factors is not None and not use_gpu:
            # UPDATE mode: start from the previous model's item factors so a few sweeps suffice.
            model.item_factors = np.ascontiguousarray(initial_item_factors, dtype=np.float32)
        show = _SHOW_PROGRESS.get() if show_progress is None else show_progress
        model.fit(confidence, show_progress=show)
    del confidence
    if use_gpu:
        model = model.to_cpu()
    return np.ascontiguousarray(model.item_factors, dtype=np.float32), gram(model.user_factors)


def fit_als_with(
    user_items: sp.csr_matrix, hyperparameters: Mapping[str, Any], initial_item_factors: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`fit_als` with a recipe's ``factors``, ``regularization``, ``alpha``, ``iterations``
    and ``random_state``; from an earlier model's item factors (an UPDATE) a third of the sweeps
    (at least two) suffice. The GPU fit starts from random factors whatever it is given, so it
    runs every sweep."""
    hp = hyperparameters
    warm = initial_item_factors is not None and not has_cuda()
    return fit_als(
        user_items,
        factors=hp["factors"],
        regularization=hp["regularization"],
        alpha=hp["alpha"],
        iterations=max(2, hp["iterations"] // 3) if warm else hp["iterations"],
        random_state=hp["random_state"],
        initial_item_factors=initial_item_factors if warm else None,
    )


def float64_gram(rows: np.ndarray, block: int = 8192) -> np.ndarray:
    """``rowsᵀ rows`` with each block's product in float64 too, for the precision of a whole float64
    product: blocks of a few thousand rows, as a float64 copy of all the rows at once is fresh memory whose
    first touch cost several times the product itself (0.15 s against 0.03 s for 100,000 items'
    factors on these machines)."""
    return gram(rows, block=block, dtype=np.float64)


def gram(rows: np.ndarray, block: int = 65_536, dtype: type | None = None) -> np.ndarray:
    """``rowsᵀ rows`` (float64), a block of rows at a time, the blocks summed in float64. Each
    block's product is in ``dtype`` (None: the rows' own precision; float32 is several times
    faster than float64)."""
    rows = np.asarray(rows)
    out = np.zeros((rows.shape[1], rows.shape[1]))
    for start in range(0, len(rows), block):
        part = rows[start : start + block]
        if dtype is not None:
            part = part.astype(dtype, copy=False)
        out += part.T @ part
    return out


def fit_cosine(user_items: sp.csr_matrix, *, neighbours: int) -> sp.csr_matrix:
    """Item-item cosine similarities (items × items), each row keeping its nearest ``neighbours``."""
    from implicit.nearest_neighbours import CosineRecommender

    model = CosineRecommender(K=neighbours)
    with threadpool_limits(1, "blas"), warnings.catch_warnings():
        # implicit normalises into a COO matrix internally and then warns about its own input.
        warnings.filterwarnings("ignore", message="Method expects CSR input")
        model.fit(user_items.astype(np.float32), show_progress=_SHOW_PROGRESS.get())
    similarity = model.similarity.tocsr()
    # Drop each item's similarity to itself (masking beats setdiag, which inserts entries one by one).
    rows = np.repeat(np.arange(similarity.shape[0]), np.diff(similarity.indptr))
    similarity.data[rows == similarity.indices] = 0
    similarity.eliminate_zeros()
    return similarity
