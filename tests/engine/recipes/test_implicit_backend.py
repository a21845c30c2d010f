"""The ALS wrapper gives implicit's own answer while holding fewer copies of the interactions."""

import numpy as np
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares
from threadpoolctl import threadpool_limits

from engine.recipes.implicit_backend import fit_als, float64_gram, gram


def test_fit_als_scales_confidence_itself_with_implicits_exact_factors():
    rng = np.random.default_rng(0)
    matrix = sp.random(300, 200, density=0.05, format="csr", random_state=rng, dtype=np.float32)
    matrix.data *= 3
    before = matrix.copy()
    with threadpool_limits(1, "blas"):
        plain = AlternatingLeastSquares(factors=8, regularization=0.1, alpha=5.0, iterations=3, random_state=1)
        plain.fit(matrix.astype(np.float32), show_progress=False)
    factors, user_gram = fit_als(matrix, factors=8, regularization=0.1, alpha=5.0, iterations=3, random_state=1)
    np.testing.assert_array_equal(factors, plain.item_factors)
    np.testing.assert_allclose(user_gram, gram(plain.user_factors), rtol=1e-6)
    np.testing.assert_array_equal(matrix.data, before.data)  # the caller's weights are left as they were


def test_float64_gram_is_the_whole_float64_product_a_block_at_a_time():
    rows = np.random.default_rng(3).standard_normal((1000, 16)).astype(np.float32)
    whole = rows.T.astype(np.float64) @ rows
    for block in (7, 64, 1000, 5000):
        assert np.allclose(float64_gram(rows, block=block), whole, rtol=1e-12, atol=1e-12)
    assert float64_gram(rows[:0]).shape == (16, 16)
