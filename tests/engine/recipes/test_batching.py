"""Batch answers are the answers ``recommend`` gives, query by query, for every recipe."""

import math

import numpy as np
import pytest
import scipy.sparse as sp

from engine.recipes import RECIPES, Query, Ranked
from engine.recipes.als_batch import solve_users, top_n
from engine.recipes.batching import BatchQuery, UserEvents, full_query, recommend_many
from tests.engine.recipes.contract import clustered_data


def user_events(histories: list[list[tuple[str, str, float | None, float]]]) -> UserEvents:
    """One row per history of (item, event type, value, timestamp)."""
    flat = [e for h in histories for e in h]
    offsets = np.concatenate([[0], np.cumsum([len(h) for h in histories])]).astype(np.int64)
    column = lambda k, dtype: np.array([e[k] for e in flat], dtype=dtype)  # noqa: E731
    values = np.array([np.nan if e[2] is None else e[2] for e in flat], dtype=np.float64)
    return UserEvents(offsets, column(0, object), column(1, object), values, column(3, np.float64))


def mixed_batch(item_ids: list[str]) -> tuple[UserEvents, list[BatchQuery]]:
    rng = np.random.default_rng(7)
    histories = []
    for u in range(40):
        picks = rng.choice(item_ids, size=int(rng.integers(1, 12)))
        events = [
            (str(i), "purchase" if k % 3 == 0 else "view", 0.2 if k % 5 == 4 else None, 1.7e9 + 3600 * k)
            for k, i in enumerate(picks)
        ]
        if u % 7 == 0:
            events.append(("never-seen-item", "view", None, 1.7e9))
        histories.append(events)
    histories.append([("never-seen-item", "view", None, 1.7e9)])  # only unknown items: a cold user
    histories.append([])  # no events at all
    events = user_events(histories)
    queries = []
    for row in range(len(histories)):
        n = [10, 3, 25][row % 3]
        exclude = frozenset({item_ids[row % len(item_ids)]}) if row % 4 == 0 else frozenset()
        queries.append(BatchQuery(Query(user_id=f"x{row}", num_results=n, exclude=exclude), row, row % 2 == 0))
    queries.append(BatchQuery(Query(user_id="nobody", num_results=5), None, True))
    queries.append(
        BatchQuery(Query(user_id="x1", candidates=("a1", "b2", "zzz", "a1", "a3"), exclude=frozenset({"a3"})), 1)
    )
    queries.append(BatchQuery(Query(user_id="x3", candidates=("b1", "a2")), 3))
    return events, queries


def same_score(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, abs=1e-4)


def assert_same(batch: Ranked, single: Ranked) -> None:
    """Equal answers, allowing tied items to trade places (and to swap in or out at the cut)."""
    assert len(batch) == len(single)
    assert all(same_score(a, b) for a, b in zip(batch.scores, single.scores, strict=True))
    mine = dict(zip(batch.item_ids, batch.scores, strict=True))
    theirs = dict(zip(single.item_ids, single.scores, strict=True))
    assert all(same_score(mine[i], theirs[i]) for i in mine.keys() & theirs.keys())
    assert all(same_score(mine.get(i, theirs.get(i)), single.scores[-1]) for i in mine.keys() ^ theirs.keys())


CHEAP = {
    "user-personalization": {"factors": 8, "iterations": 4, "model": "als", "history_half_life": 10.0},
    "personalized-ranking": {"factors": 8, "iterations": 4, "model": "als", "history_half_life": 10.0},
    "item-affinity": {"factors": 8, "iterations": 5},
    "item-attribute-affinity": {"factors": 8, "iterations": 5},
}


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_every_recipe_answers_a_batch_as_recommend_does(name):
    cls = RECIPES[name]
    hp = {k: v for k, v in CHEAP.get(name, {}).items() if k in cls.Hyperparameters().fields}
    model = cls(**hp).fit(clustered_data())
    events, queries = mixed_batch(model.item_ids.tolist())
    if model.recipe_type == "PERSONALIZED_RANKING":
        queries = [q for q in queries if q.query.candidates is not None]
    for bq, answer in zip(queries, recommend_many(model, events, queries), strict=True):
        assert_same(answer, model.recommend(full_query(model, events, bq)))


def test_solve_users_matches_implicits_own_user_step():
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(3)
    y = rng.standard_normal((300, 16)).astype(np.float32) * 0.3
    lengths = rng.integers(0, 40, size=200)  # some longer than the factors: the direct solve
    rows = np.repeat(np.arange(200), lengths)
    cols = rng.integers(0, 300, size=len(rows))
    confidence = sp.csr_matrix((rng.random(len(rows)) * 5 + 0.5, (rows, cols)), shape=(200, 300))
    with threadpool_limits(1, "blas"):
        als = AlternatingLeastSquares(factors=16, regularization=0.5, alpha=1.0, random_state=0)
        als.item_factors = y
        expected = als.recalculate_user(np.arange(200), confidence.astype(np.float32))
    ours = solve_users(y, y.astype(np.float64).T @ y, 0.5, confidence)
    assert np.allclose(ours, expected, atol=1e-3)
    assert not ours[lengths == 0].any()
    # A few users touching a few of the items: solved over those items' rows alone, same vectors.
    few = confidence[:4]
    assert len(np.unique(few.indices)) < 300 // 2
    np.testing.assert_allclose(solve_users(y, y.astype(np.float64).T @ y, 0.5, few), ours[:4], rtol=1e-5, atol=1e-6)


def test_top_n_is_the_exact_top_with_exclusions():
    rng = np.random.default_rng(5)
    vectors = rng.standard_normal((50, 6)).astype(np.float32)
    items = rng.standard_normal((1000, 6)).astype(np.float32)
    exclude = sp.random(50, 1000, density=0.05, format="csr", random_state=1).astype(bool)
    ids, scores = top_n(vectors, items, 7, exclude, group=16)
    full = vectors @ items.T
    full[exclude.toarray()] = -np.inf
    expected = np.sort(full, axis=1)[:, ::-1][:, :7]
    assert np.allclose(scores, expected)
    assert not exclude[np.arange(50)[:, None], ids].toarray().any()
    few, _ = top_n(vectors[:2], items[:3], 10)
    assert few.shape == (2, 3)


def test_top_n_copes_with_ties_and_rows_almost_all_excluded():
    items = np.random.default_rng(2).standard_normal((500, 4)).astype(np.float32)
    ids, scores = top_n(np.zeros((2, 4), dtype=np.float32), items, 5)
    assert (scores == 0).all() and all(len(set(row)) == 5 for row in ids.tolist())
    allowed = [3, 99]
    exclude = sp.csr_matrix(np.isin(np.arange(500), allowed, invert=True)[None, :])
    ids, scores = top_n(np.ones((1, 4), dtype=np.float32), items, 5, exclude)
    assert sorted(ids[0, :2].tolist()) == allowed and np.isinf(scores[0, 2:]).all()
