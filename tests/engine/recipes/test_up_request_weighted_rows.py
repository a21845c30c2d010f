"""The "what comes next" scores sum the seeds' transition rows; where the rows cover much of the catalogue
they are summed over every column instead of sorting the entries: the same columns and the same
sums, bit for bit (each column adds the same values in the same order)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from engine.recipes import up_request
from engine.recipes.up_request import weighted_rows


def test_summing_over_every_column_gives_the_sorted_sums_bit_for_bit(monkeypatch):
    rng = np.random.default_rng(3)
    cases = []
    for trial in range(60):
        width = int(rng.integers(1, 400))
        density = rng.choice([0.01, 0.2, 0.9])
        matrix = sp.random(50, width, density=density, format="csr", random_state=trial, dtype=np.float32)
        rows = rng.choice(50, size=int(rng.integers(1, 12)))  # a seed may repeat
        weights = rng.random(len(rows)) * 10.0 ** rng.integers(-6, 6, len(rows))
        cases.append((matrix, rows, weights))
    monkeypatch.setattr(up_request, "DENSE_GATHER", 10**9)  # every case by columns
    by_columns = [weighted_rows(*case) for case in cases]
    monkeypatch.setattr(up_request, "DENSE_GATHER", 0)  # every case sorted
    for case, dense in zip(cases, by_columns, strict=True):
        sorted_ = weighted_rows(*case)
        assert dense.index.dtype == sorted_.index.dtype == np.int64
        assert np.array_equal(dense.index, sorted_.index)
        assert np.array_equal(dense.values, sorted_.values)
        expected = np.asarray(case[2] @ case[0][case[1]].toarray().astype(np.float64)).ravel()
        assert np.allclose(dense.values, expected[dense.index])
        assert set(dense.index.tolist()) == set(np.flatnonzero(case[0][case[1]].getnnz(axis=0)).tolist())
