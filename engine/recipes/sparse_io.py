"""Sparse matrices as plain arrays, so artifacts hold them without pickling."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import scipy.sparse as sp


def sparse_arrays(prefix: str, matrix: sp.spmatrix) -> dict[str, np.ndarray]:
    m = sp.csr_matrix(matrix)
    return {
        f"{prefix}_data": m.data,
        f"{prefix}_indices": m.indices,
        f"{prefix}_indptr": m.indptr,
        f"{prefix}_shape": np.array(m.shape, dtype=np.int64),
    }


def sparse_from(prefix: str, arrays: Mapping[str, np.ndarray]) -> sp.csr_matrix:
    shape = tuple(int(x) for x in arrays[f"{prefix}_shape"])
    return sp.csr_matrix(
        (arrays[f"{prefix}_data"], arrays[f"{prefix}_indices"], arrays[f"{prefix}_indptr"]), shape=shape
    )
