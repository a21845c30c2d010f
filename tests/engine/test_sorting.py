"""engine.sorting: the stable order of whole-number keys (timestamps, codes)."""

import numpy as np
import pytest

from engine import sorting
from engine.sorting import sorted_search, stable_order


@pytest.mark.parametrize(
    "stamps",
    [
        np.array([5.0, 3.0, 5.0, 3.0, 1.0, 5.0]),  # ties keep their positions
        np.array([1_700_000_000.0 + s for s in (90, 10, 10, 50, 0, 90, 10)]),
        np.array([2.5, 1.0, 2.5, 0.5]),  # fractions: the plain stable sort
        np.array([1.0, np.nan, 0.0, 1.0]),  # not a number: the plain stable sort
        np.array([0.0, 2.0**62, 1.0]),  # too wide for the packed keys
        np.array([7.0]),
        np.array([], dtype=np.float64),
    ],
)
def test_stable_order_is_numpys_stable_argsort(stamps):
    assert np.array_equal(stable_order(stamps), np.argsort(stamps, kind="stable"))


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_stable_order_of_integer_codes(dtype):
    codes = np.random.default_rng(2).integers(0, 50, 1000).astype(dtype)
    assert np.array_equal(stable_order(codes), np.argsort(codes, kind="stable"))
    extremes = np.array([np.iinfo(dtype).max, np.iinfo(dtype).min, 0, np.iinfo(dtype).max], dtype=dtype)
    assert np.array_equal(stable_order(extremes), np.argsort(extremes, kind="stable"))
    huge = np.array([2**62 + 3, 2**62 + 1, 2**62 + 3, 2**62 + 2], dtype=np.int64)  # beyond float64's integers
    assert np.array_equal(stable_order(huge), np.argsort(huge, kind="stable"))


def test_stable_order_builds_its_keys_a_block_at_a_time(monkeypatch):
    monkeypatch.setattr(sorting, "_KEY_BLOCK", 7)
    stamps = np.random.default_rng(1).integers(0, 20, 500).astype(np.float64) + 1_700_000_000
    assert np.array_equal(stable_order(stamps), np.argsort(stamps, kind="stable"))
    stamps[321] += 0.25  # a fraction in a later block: the plain sort, from scratch
    assert np.array_equal(stable_order(stamps), np.argsort(stamps, kind="stable"))


@pytest.mark.parametrize("sorted_values", [True, False])
def test_sorted_search_is_numpys_left_searchsorted(sorted_values):
    rng = np.random.default_rng(5)
    for _ in range(200):
        ordered = np.unique(rng.integers(0, 40, rng.integers(0, 25)).astype(str))
        values = rng.integers(0, 50, rng.integers(0, 25)).astype(str)
        values = np.sort(values) if sorted_values else values  # ties and values absent from ordered
        assert np.array_equal(sorted_search(ordered, values), np.searchsorted(ordered, values))
