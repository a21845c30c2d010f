"""Concurrent requests of one process share one pass over the item factors: each gets the bits of
its own whole product, whether it computed alone or in a pass with others."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from engine.recipes import up_request
from engine.recipes.up_request import SharedProducts


def test_a_shared_pass_gives_the_bits_of_each_whole_product(monkeypatch):
    """With BLAS on one thread, as the server runs it; every short last block included."""
    rng = np.random.default_rng(4)
    cases = [(rows, 64, d) for d in (8, 32, 64) for rows in range(3 * 64, 3 * 64 + 40)]
    cases += [(4097, 4096, 64), (10_001, 1000, 64), (333, 1000, 64), (100_000, 4096, 64)]
    with threadpool_limits(1, "blas"):
        assert up_request.single_threaded_blas()
        for rows, block, d in cases:
            monkeypatch.setattr(up_request, "SHARED_BLOCK", block)
            factors = rng.standard_normal((rows, d)).astype(np.float32)
            products = SharedProducts(factors)
            jobs = [up_request._Product(rng.standard_normal(d).astype(np.float32)) for _ in range(3)]
            products._compute(jobs)
            for job in jobs:
                assert job.result is not None and job.result.dtype == np.float32
                assert np.array_equal(job.result, factors @ job.vector), (rows, block, d)
            assert products.blocks[-1].stop == rows


def test_requests_share_passes_only_with_blas_on_one_thread():
    from engine.recipes.up_request import RequestIndex
    from engine.recipes.user_personalization import UserPersonalization
    from tests.engine.recipes.contract import clustered_data

    model = UserPersonalization(factors=8, iterations=2).fit(clustered_data())
    with threadpool_limits(1, "blas"):
        assert RequestIndex(model).products is not None
    with threadpool_limits(2, "blas"):
        assert RequestIndex(model).products is None


@pytest.fixture
def one_blas_thread():
    """BLAS on one thread, as the server runs it (engine/server.py)."""
    with threadpool_limits(1, "blas"):
        yield


def test_requests_arriving_during_a_pass_share_the_next_one(one_blas_thread):
    rng = np.random.default_rng(5)
    factors = rng.standard_normal((5000, 16)).astype(np.float32)
    products = SharedProducts(factors)
    started, release = threading.Event(), threading.Event()
    compute = products._compute

    def held_first_pass(batch):
        if products.passes == 0:
            started.set()
            assert release.wait(10)
        compute(batch)

    products._compute = held_first_pass
    vectors = [rng.standard_normal(16).astype(np.float32) for _ in range(6)]
    results: dict[int, np.ndarray] = {}

    def ask(k: int) -> None:
        results[k] = products(vectors[k])

    first = threading.Thread(target=ask, args=(0,))
    first.start()
    assert started.wait(10)
    others = [threading.Thread(target=ask, args=(k,)) for k in range(1, 6)]
    for thread in others:
        thread.start()
    while len(products._waiting) < 5:  # all five queued behind the held pass
        threading.Event().wait(0.001)
    release.set()
    for thread in [first, *others]:
        thread.join(10)
    assert (products.passes, products.products) == (2, 6)
    for k, vector in enumerate(vectors):
        assert np.array_equal(results[k], factors @ vector)
    # The next request alone takes a pass of its own.
    assert np.array_equal(products(vectors[0]), factors @ vectors[0])
    assert products.passes == 3 and not products._busy


def test_a_failed_pass_fails_the_requests_in_it_and_the_next_one_still_runs():
    factors = np.ones((100, 4), dtype=np.float32)
    products = SharedProducts(factors)
    started, release = threading.Event(), threading.Event()
    compute = products._compute

    def failing_first_pass(batch):
        if products.passes == 0:
            products.passes += 1
            started.set()
            assert release.wait(10)
            raise MemoryError("no room")
        compute(batch)

    products._compute = failing_first_pass
    outcome: dict[str, object] = {}

    def ask(name: str, vector: np.ndarray) -> None:
        try:
            outcome[name] = products(vector)
        except MemoryError as error:
            outcome[name] = error

    first = threading.Thread(target=ask, args=("first", np.ones(4, dtype=np.float32)))
    first.start()
    assert started.wait(10)
    second = threading.Thread(target=ask, args=("second", np.full(4, 2.0, dtype=np.float32)))
    second.start()
    while not products._waiting:
        threading.Event().wait(0.001)
    release.set()
    first.join(10)
    second.join(10)
    assert isinstance(outcome["first"], MemoryError)
    # The second request was waiting for the next pass, not in the failed one.
    np.testing.assert_array_equal(outcome["second"], np.full(100, 8.0, dtype=np.float32))
    assert not products._busy


@pytest.mark.parametrize("threads", [8])
def test_many_threads_at_once_each_get_their_own_product(one_blas_thread, threads):
    rng = np.random.default_rng(6)
    factors = rng.standard_normal((20_000, 32)).astype(np.float32)
    products = SharedProducts(factors)
    vectors = [rng.standard_normal(32).astype(np.float32) for _ in range(threads * 20)]
    results: list[np.ndarray | None] = [None] * len(vectors)
    barrier = threading.Barrier(threads)

    def work(slot: int) -> None:
        barrier.wait()
        for k in range(slot, len(vectors), threads):
            results[k] = products(vectors[k])

    pool = [threading.Thread(target=work, args=(s,)) for s in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(30)
    assert products.products == len(vectors)
    for vector, result in zip(vectors, results, strict=True):
        assert np.array_equal(result, factors @ vector)
