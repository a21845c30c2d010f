"""user-personalization's vectorised batch answers are exactly ``recommend``'s, shopper by shopper."""

import numpy as np
import pytest

from engine.recipes import Query, TrainingData
from engine.recipes.batching import BatchQuery, UserEvents, full_query
from engine.recipes.personalized_ranking import PersonalizedRanking
from engine.recipes.up_batch import _Block
from engine.recipes.user_personalization import UserPersonalization
from engine.records import Interaction, Item

T0 = 1_700_000_000
KINDS = {"a": "outdoor gear for hiking", "b": "kitchenware for cooking"}


def shopper(rng: np.random.Generator, cluster: str, n_steps: int) -> list[tuple[str, str, float | None]]:
    """Staples bought again and again, walks along a trail of items, and one-off items."""
    staples = [f"{cluster}{s}" for s in rng.choice(25, size=2, replace=False)]
    start = int(rng.integers(0, 20))
    out = []
    for step in range(n_steps):
        roll = rng.random()
        if roll < 0.3:
            out.append((staples[step % 2], "purchase", None))
        elif roll < 0.7:
            out.append((f"{cluster}{(start + step) % 25}", "view", None))
        elif roll < 0.85:
            out.append((f"{cluster}{rng.integers(25)}", "add-to-cart", float(rng.integers(1, 5))))
        else:
            other = "b" if cluster == "a" else "a"
            out.append((f"{other}{rng.integers(25)}", "view", None))
    return out


def shop_data(n_users: int = 160, seed: int = 0) -> TrainingData:
    rng = np.random.default_rng(seed)
    users, items, types, values, ts = [], [], [], [], []
    for u in range(n_users):
        for k, (item, kind, value) in enumerate(shopper(rng, "ab"[u % 2], 14)):
            users.append(f"u{u}")
            items.append(item)
            types.append(kind)
            values.append(np.nan if value is None else value)
            ts.append(T0 + 5000 * u + 60 * k)
    catalog = {i: Item(i, {"CATEGORY": i[0], "DESCRIPTION": KINDS[i[0]]}) for i in set(items)}
    for new in ("a-new", "b-new"):  # in the catalog, never interacted with
        catalog[new] = Item(new, {"CATEGORY": new[0], "DESCRIPTION": KINDS[new[0]]})
    return TrainingData.from_columns(users, items, types, ts, values, items=catalog)


def film_data(n_users: int = 80) -> TrainingData:
    """Nobody watches a film twice: no repeats to learn, seen items are left out by default."""
    rng = np.random.default_rng(2)
    users, items, ts = [], [], []
    for u in range(n_users):
        for k, film in enumerate(rng.choice(25, size=12, replace=False)):
            users.append(f"u{u}")
            items.append(f"{'ab'[u % 2]}{film}")
            ts.append(T0 + 1000 * u + k)
    return TrainingData.from_columns(users, items, ["watch"] * len(users), ts)


def batch(item_ids: list[str], n_shoppers: int = 120) -> tuple[UserEvents, list[BatchQuery]]:
    """Shoppers the model never saw, with every kind of query a batch job sends."""
    rng = np.random.default_rng(11)
    histories: list[list[Interaction]] = []
    for s in range(n_shoppers):
        steps = shopper(rng, "ab"[s % 2], int(rng.integers(1, 30)))
        if s % 9 == 0:
            steps.insert(len(steps) // 2, (f"{'ab'[s % 2]}-new", "view", None))  # the item nobody has touched
        if s % 11 == 0:
            steps.append(("not-in-catalog", "purchase", None))
        if s % 13 == 0:
            steps.append((steps[0][0], "hover", None))  # an event type that weighs nothing here
        histories.append(
            [Interaction(f"s{s}", i, kind, T0 + 10**6 + 60 * k, value) for k, (i, kind, value) in enumerate(steps)]
        )
    histories.append([Interaction("cold", "not-in-catalog", "view", T0)])  # nothing the model knows
    histories.append([])  # no events at all
    histories.append([Interaction("nil", "a3", "hover", T0)])  # only events that weigh nothing
    events = UserEvents.of(*histories)
    queries = []
    for row in range(len(histories)):
        n = [25, 5, 1, 10, 100][row % 5]
        exclude = (
            frozenset(rng.choice(item_ids, size=int(rng.integers(0, 6))).tolist()) if row % 3 == 0 else frozenset()
        )
        if row % 6 == 0:
            exclude = exclude | {"not-in-catalog", *(e.item_id for e in histories[row][:2])}
        q = Query(user_id=f"s{row}", num_results=n, exclude=exclude)
        queries.append(BatchQuery(q, row, exclude_seen=row % 4 != 3, exclude_history=row % 4 == 3))
    queries.append(BatchQuery(Query(user_id="s0", num_results=7), 0, exclude_seen=True))  # the same shopper again
    queries.append(BatchQuery(Query(user_id="nobody", num_results=5), None, exclude_seen=True))
    queries.append(BatchQuery(Query(user_id="s1", candidates=("a1", "b2", "zzz")), 1))  # re-ranking: recommend's
    return events, queries


HP = {"factors": 8, "iterations": 8, "event_weights": {"view": 1, "add-to-cart": 3, "purchase": 5, "hover": 0}}
MODELS = {
    "als, chosen on held-out users": lambda: UserPersonalization(**HP, model="als").fit(shop_data()),
    "ease": lambda: UserPersonalization(**HP, model="ease", ease_regularization=20.0).fit(shop_data()),
    "als, recency and a value threshold": lambda: UserPersonalization(
        **HP, model="als", recency_half_life_days=0.01, event_value_threshold=2.0, history_half_life=3.0
    ).fit(shop_data()),
    "no calibration (too few users)": lambda: UserPersonalization(**HP, model="als").fit(shop_data(n_users=20)),
    "no repeats": lambda: UserPersonalization(**HP, model="als").fit(film_data()),
    "sequence only": lambda: UserPersonalization(**HP, model="als", sequence_weight=1.0).fit(shop_data()),
}


@pytest.fixture(scope="module", params=sorted(MODELS))
def model(request) -> UserPersonalization:
    return MODELS[request.param]()


def test_the_batch_lists_are_exactly_recommends(model):
    events, queries = batch(model.item_ids.tolist())
    answers = model.recommend_batch(events, queries)
    for bq, answer in zip(queries, answers, strict=True):
        single = model.recommend(full_query(model, events, bq))
        assert answer.item_ids == single.item_ids, bq.query
        assert answer.scores == pytest.approx(single.scores, rel=1e-6, abs=1e-6, nan_ok=True)


def test_most_shoppers_are_answered_as_matrices_not_one_by_one(model):
    """The exactness above must come from the vectorised path, not from the per-query fallback."""
    events, queries = batch(model.item_ids.tolist())
    fast = [bq for bq in queries if bq.query.candidates is None and bq.events_row is not None]
    vectorised = [a is not None for a in _Block(model, events, fast).answers()]
    assert sum(vectorised) >= 0.85 * len(fast)


def test_the_cases_the_matrices_leave_to_recommend():
    model = UserPersonalization(**HP, model="als").fit(shop_data())
    events, queries = batch(model.item_ids.tolist())
    asked = queries[:-2]  # not the query without an events row, nor the itemList one
    by_user = {bq.query.user_id: a for bq, a in zip(asked, _Block(model, events, asked).answers(), strict=True)}
    assert by_user[f"s{len(queries) - 6}"] is None  # only unknown items: cold start
    assert by_user[f"s{len(queries) - 5}"] is None  # no events
    assert by_user[f"s{len(queries) - 4}"] is None  # only events that weigh nothing: every score ties
    assert model.cold_neighbours.nnz and (model.popularity <= 0).sum() == 2
    new_item_fans = [by_user[f"s{s}"] for s in range(0, 120, 9)]
    assert sum(a is not None for a in new_item_fans) >= 0.8 * len(new_item_fans)


def test_a_subclass_that_answers_differently_is_asked_query_by_query():
    model = PersonalizedRanking(**HP, model="als").fit(shop_data(n_users=40))
    events, queries = batch(model.item_ids.tolist(), n_shoppers=6)
    ranking = [bq for bq in queries if bq.query.candidates is not None]
    assert model.recommend_batch(events, ranking)[0].item_ids[:2] in {("a1", "b2"), ("b2", "a1")}
    with pytest.raises(Exception, match="re-ranks a given list"):
        model.recommend_batch(events, queries[:1])
