"""The batch's ALS taste without a taste matrix: each row's largest |taste| from the norm head
(whole rows where the head cannot settle it), the approximation added in place by one GEMM, and
the few items' taste as float64 dot products."""

from __future__ import annotations

import numpy as np
import pytest

from engine.recipes import up_batch_taste
from engine.recipes.up_batch_taste import TasteLayout


@pytest.mark.parametrize("head", [1, 7, 64, 10_000])
def test_the_largest_taste_is_the_whole_rows_largest(monkeypatch, head):
    monkeypatch.setattr(up_batch_taste, "HEAD", head)
    rng = np.random.default_rng(head)
    # Power-law norms, as a model's popular items have: the head settles most rows, not all.
    factors = (rng.standard_normal((300, 16)) * rng.pareto(1.5, (300, 1))).astype(np.float32)
    vectors = rng.standard_normal((50, 16)).astype(np.float32)
    vectors[3] = 0.0  # a shopper whose every taste is 0
    layout = TasteLayout(factors, width=320)
    whole = vectors @ factors.T
    expected = np.maximum(whole.max(axis=1), -whole.min(axis=1))
    assert np.allclose(layout.largest(vectors), expected, rtol=1e-6, atol=0)
    assert layout.largest(vectors)[3] == 0.0


def test_the_approximation_is_added_in_place_and_the_padding_stays_zero():
    rng = np.random.default_rng(1)
    factors = rng.standard_normal((300, 16)).astype(np.float32)
    vectors = rng.standard_normal((40, 16)).astype(np.float32)
    layout = TasteLayout(factors, width=320)
    out = np.zeros((64, 320), dtype=np.float32)[:40]  # the leading rows of a block's buffer
    out[:, :300] = rng.random((40, 300))
    before = out.copy()
    layout.accumulate(out, vectors)
    assert np.allclose(out[:, :300], before[:, :300] + vectors @ factors.T, atol=1e-5)
    assert (out[:, 300:] == 0).all()


def test_a_few_items_taste_is_their_dot_product_in_float64():
    rng = np.random.default_rng(2)
    factors = rng.standard_normal((300, 16)).astype(np.float32)
    vectors = rng.standard_normal((40, 16)).astype(np.float32)
    layout = TasteLayout(factors, width=320)
    rows, items = rng.integers(0, 40, 500), rng.integers(0, 300, 500)
    got = layout.at(vectors, rows, items)
    assert got.dtype == np.float64
    expected = (vectors[rows].astype(np.float64) * factors[items].astype(np.float64)).sum(axis=1)
    assert np.allclose(got, expected, rtol=1e-12)
    assert np.allclose(layout.columns(vectors, items[:9]), vectors @ factors[items[:9]].T)
