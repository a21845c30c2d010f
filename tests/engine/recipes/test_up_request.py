"""The sparse request path answers exactly as the dense definition does."""

import numpy as np
import pytest

from engine.recipes import Query, TrainingData
from engine.recipes.up_request import ranks_of
from engine.recipes.user_personalization import UserPersonalization
from engine.records import Interaction
from tests.engine.recipes.contract import clustered_data
from tests.engine.recipes.test_user_personalization import catalog, film_data, grocery_data

FAST = {"factors": 8, "iterations": 10}


def with_cold_items(base: TrainingData) -> TrainingData:
    items = catalog(base, {"a-new": "a", "b-new": "b", "a-newer": "a"})
    return TrainingData.from_columns(
        base.user_ids[base.user_index], base.item_ids[base.item_index], base.event_types, base.timestamps, items=items
    )


def histories(model: UserPersonalization, rng: np.random.Generator, n: int) -> list[tuple]:
    """Random shoppers: mixed event types, repeats, cold items, unknown items."""
    ids = [*model.item_ids.tolist(), "never-seen"]
    out = []
    for k in range(n):
        picks = rng.choice(len(ids), size=int(rng.integers(1, 12)))
        out.append(
            tuple(
                Interaction(f"s{k}", ids[p], str(rng.choice(["view", "add-to-cart", "purchase"])), 1_700_000_000 + t)
                for t, p in enumerate(picks.tolist())
            )
        )
    return out


def assert_same(a, b) -> None:
    assert a.item_ids == b.item_ids
    np.testing.assert_allclose(np.array(a.scores, dtype=float), np.array(b.scores, dtype=float), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize(
    "data, hyperparameters",
    [
        (with_cold_items(clustered_data()), {"cold_item_weight": 1.0}),
        (with_cold_items(clustered_data()), {"model": "ease"}),
        (grocery_data(), {}),
        (film_data(), {"sequence_weight": 0.5}),
    ],
    ids=["cold-items-als", "cold-items-ease", "repeats", "no-repeats"],
)
def test_the_request_path_matches_the_dense_definition(data, hyperparameters):
    model = UserPersonalization(**FAST, **hyperparameters).fit(data)
    rng = np.random.default_rng(0)
    ids = model.item_ids.tolist()
    for k, events in enumerate(histories(model, rng, 40)):
        exclude = (
            frozenset(rng.choice(ids, size=int(rng.integers(0, len(ids) // 2))).tolist()) if k % 2 else frozenset()
        )
        for n in (1, 3, 10, len(ids)):
            query = Query(user_id="x", history=events, num_results=n, exclude=exclude)
            assert_same(model.recommend(query), model.recommend_dense(query))
        candidates = tuple(rng.choice([*ids, "never-seen"], size=8, replace=False).tolist())
        query = Query(user_id="x", history=events, candidates=candidates, num_results=len(candidates))
        assert_same(model.recommend(query), model.recommend_dense(query))


def test_ranks_are_counted_as_a_stable_sort_would_place_them():
    rng = np.random.default_rng(1)
    for trial in range(200):
        n = int(rng.integers(1, 200))
        scores = rng.integers(-3, 3, n).astype(float) if trial % 2 else rng.random(n)
        index = rng.choice(n, size=int(rng.integers(1, n + 1)), replace=False)
        expected = np.empty(n, dtype=np.int64)
        expected[np.argsort(-scores, kind="stable")] = np.arange(n)
        assert (ranks_of(scores, index) == expected[index]).all()
