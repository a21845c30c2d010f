"""The demo store generator: deterministic, well-formed, and carrying the structure recipes need."""

from __future__ import annotations

import csv
import json
import random
from collections import Counter, defaultdict
from itertools import combinations, pairwise
from pathlib import Path

import pytest

from engine.demo.sample_store import (
    CATEGORIES,
    INTERACTIONS_SCHEMA,
    ITEMS_SCHEMA,
    NEW_ITEM_DAYS,
    USERS_SCHEMA,
    SampleStore,
    export_personalize_csv,
    generate_sample_store,
)
from engine.records import ADD_TO_CART, PURCHASE, VIEW

NOW = 1_750_000_000.0
DAY = 86_400.0


@pytest.fixture(scope="module")
def store() -> SampleStore:
    return generate_sample_store(seed=7, now=NOW)


@pytest.fixture(scope="module")
def sessions(store: SampleStore) -> dict[str, list]:
    by_session: dict[str, list] = defaultdict(list)
    for event in store.interactions:
        by_session[event.session_id].append(event)
    return by_session


def test_same_seed_same_store_different_seed_different_store(store: SampleStore) -> None:
    again = generate_sample_store(seed=7, now=NOW)
    assert again.items == store.items
    assert again.users == store.users
    assert again.interactions == store.interactions

    other = generate_sample_store(seed=8, now=NOW)
    assert other.interactions != store.interactions
    assert [i.properties for i in other.items] != [i.properties for i in store.items]


def test_default_sizes_are_in_the_documented_ranges(store: SampleStore) -> None:
    assert len(store.items) == 300
    assert len(store.users) == 2000
    assert 30_000 <= len(store.interactions) <= 80_000
    types = Counter(e.event_type for e in store.interactions)
    assert set(types) == {VIEW, ADD_TO_CART, PURCHASE}
    assert types[VIEW] > types[ADD_TO_CART] > types[PURCHASE] > 1000
    assert len({e.user_id for e in store.interactions}) == len(store.users)


def test_size_parameters_are_honoured() -> None:
    small = generate_sample_store(seed=1, n_items=60, n_users=100, now=NOW)
    assert len(small.items) == 60
    assert len(small.users) == 100
    assert 100 < len(small.interactions) < 10_000
    with pytest.raises(ValueError):
        generate_sample_store(n_items=5)


def test_catalog_looks_like_a_shop(store: SampleStore) -> None:
    ids = [i.item_id for i in store.items]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(len(i) == 5 and i.startswith("p") for i in ids)
    titles = [i.properties["TITLE"] for i in store.items]
    assert len(set(titles)) == len(titles)
    assert {i.properties["CATEGORY_L1"] for i in store.items} == set(CATEGORIES)
    assert 8 <= len(CATEGORIES) <= 10
    for item in store.items:
        props = item.properties
        assert set(props) == {"TITLE", "PRODUCT_DESCRIPTION", "CATEGORY_L1", "CATEGORY_L2", "PRICE", "STOCK"}
        assert props["PRODUCT_DESCRIPTION"].count(".") >= 2
        assert isinstance(props["PRICE"], float) and props["PRICE"] > 0
        assert round(props["PRICE"], 2) == props["PRICE"]
        assert isinstance(props["STOCK"], int) and props["STOCK"] >= 0
        assert NOW - 366 * DAY <= item.creation_timestamp <= NOW
    assert any(i.properties["STOCK"] == 0 for i in store.items)
    new = [i for i in store.items if i.creation_timestamp > NOW - NEW_ITEM_DAYS * DAY]
    assert 5 <= len(new) <= 40


def test_users_have_only_non_personal_attributes(store: SampleStore) -> None:
    assert store.users[0].user_id == "u00001"
    for user in store.users:
        assert set(user.properties) == {"MEMBERSHIP_STATUS", "AGE_GROUP"}
    assert {u.properties["MEMBERSHIP_STATUS"] for u in store.users} == {"bronze", "silver", "gold"}


def test_interactions_reference_real_items_and_users_inside_the_window(store: SampleStore) -> None:
    items = {i.item_id: i for i in store.items}
    users = {u.user_id for u in store.users}
    start = NOW - 90 * DAY
    for event in store.interactions:
        assert event.item_id in items
        assert event.user_id in users
        assert start <= event.timestamp <= NOW
        assert event.timestamp == int(event.timestamp)
        # Nobody browses a product before it exists.
        assert event.timestamp >= items[event.item_id].creation_timestamp
        assert event.session_id is not None and event.session_id.startswith("s")
    times = [e.timestamp for e in store.interactions]
    assert times == sorted(times)


def test_sessions_belong_to_one_user_and_move_forward_in_time(sessions: dict[str, list]) -> None:
    for events in sessions.values():
        assert len({e.user_id for e in events}) == 1
        times = [e.timestamp for e in events]
        assert all(a < b for a, b in pairwise(times))
        assert times[-1] - times[0] < DAY / 2
        carted = {e.item_id for e in events if e.event_type == ADD_TO_CART}
        # Every purchase was carted first in the same session.
        assert {e.item_id for e in events if e.event_type == PURCHASE} <= carted


def test_purchases_carry_the_price_and_other_events_carry_nothing(store: SampleStore) -> None:
    price = {i.item_id: i.properties["PRICE"] for i in store.items}
    for event in store.interactions:
        if event.event_type == PURCHASE:
            assert event.event_value == price[event.item_id]
        else:
            assert event.event_value is None


def test_complements_are_bought_together_far_above_chance(store: SampleStore, sessions: dict[str, list]) -> None:
    complements = store.truth.complements
    assert all(1 <= len(c) <= 3 for c in complements.values())
    pairs = {frozenset((a, b)) for a, cs in complements.items() for b in cs}

    def complement_pairs(baskets: list[list[str]]) -> int:
        return sum(frozenset(p) in pairs for basket in baskets for p in combinations(set(basket), 2))

    baskets = [[e.item_id for e in ev if e.event_type == PURCHASE] for ev in sessions.values()]
    baskets = [b for b in baskets if len(b) >= 2]
    observed = complement_pairs(baskets)
    # Chance level: the same purchases dealt into baskets of the same sizes at random.
    bought = [i for b in baskets for i in b]
    random.Random(0).shuffle(bought)
    shuffled, k = [], 0
    for b in baskets:
        shuffled.append(bought[k : k + len(b)])
        k += len(b)
    assert observed > 200
    assert observed > 10 * max(complement_pairs(shuffled), 1)


def test_earlier_sessions_predict_the_next_sessions_category(store: SampleStore) -> None:
    """Tastes are stable: a user's past categories beat the global favourite by far."""
    category = {i.item_id: i.properties["CATEGORY_L1"] for i in store.items}
    by_user: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for event in store.interactions:  # already in time order
        by_user[event.user_id][event.session_id].append(event)

    cases = []
    for user_sessions in by_user.values():
        if len(user_sessions) < 2:
            continue
        *earlier, last = user_sessions.values()  # insertion order is time order
        history = Counter(category[e.item_id] for events in earlier for e in events)
        target = Counter(category[e.item_id] for e in last).most_common(1)[0][0]
        cases.append((history, target))
    assert len(cases) > 1000

    overall = Counter()
    for history, _ in cases:
        overall.update(history)
    most_popular = overall.most_common(1)[0][0]
    personal = sum(h.most_common(1)[0][0] == t for h, t in cases) / len(cases)
    popular = sum(most_popular == t for _, t in cases) / len(cases)
    assert personal > 2 * popular
    assert personal > 0.4


def test_truth_arrays_line_up_with_the_records(store: SampleStore) -> None:
    truth = store.truth
    assert truth.item_factors.shape[0] == len(store.items)
    assert truth.user_factors.shape[0] == len(store.users)
    assert truth.user_category_preference.shape == (len(store.users), len(CATEGORIES))
    assert truth.user_category_preference.sum(axis=1) == pytest.approx(1.0)
    sessions = {e.session_id for e in store.interactions}
    assert sessions == set(truth.session_category)


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def test_export_round_trips_through_personalize_csv(store: SampleStore, tmp_path: Path) -> None:
    paths = export_personalize_csv(store, tmp_path / "export")
    assert set(paths) == {
        "interactions",
        "items",
        "users",
        "interactions-schema",
        "items-schema",
        "users-schema",
    }

    for name, schema, records in (
        ("interactions", INTERACTIONS_SCHEMA, store.interactions),
        ("items", ITEMS_SCHEMA, store.items),
        ("users", USERS_SCHEMA, store.users),
    ):
        header, rows = _read_csv(paths[name])
        assert len(rows) == len(records)
        on_disk = json.loads(paths[f"{name}-schema"].read_text(encoding="utf-8"))
        assert on_disk == schema
        assert on_disk["type"] == "record"
        assert on_disk["namespace"] == "com.amazonaws.personalize.schema"
        assert header == [f["name"] for f in on_disk["fields"]]

    _, interactions = _read_csv(paths["interactions"])
    for row, event in zip(interactions, store.interactions, strict=True):
        assert row["USER_ID"] == event.user_id and row["ITEM_ID"] == event.item_id
        assert int(row["TIMESTAMP"]) == event.timestamp
        assert row["EVENT_TYPE"] == event.event_type
        assert row["SESSION_ID"] == event.session_id
        if event.event_value is None:
            assert row["EVENT_VALUE"] == ""
        else:
            assert float(row["EVENT_VALUE"]) == event.event_value

    _, items = _read_csv(paths["items"])
    for row, item in zip(items, store.items, strict=True):
        assert row["ITEM_ID"] == item.item_id
        assert row["TITLE"] == item.properties["TITLE"]
        assert row["PRODUCT_DESCRIPTION"] == item.properties["PRODUCT_DESCRIPTION"]
        assert row["CATEGORY_L2"] == item.properties["CATEGORY_L2"]
        assert float(row["PRICE"]) == item.properties["PRICE"]
        assert int(row["STOCK"]) == item.properties["STOCK"]
        assert int(row["CREATION_TIMESTAMP"]) == item.creation_timestamp

    _, users = _read_csv(paths["users"])
    assert [u["USER_ID"] for u in users] == [u.user_id for u in store.users]
    assert users[0]["MEMBERSHIP_STATUS"] == store.users[0].properties["MEMBERSHIP_STATUS"]


def test_schemas_follow_personalize_rules() -> None:
    # Only one textual field, and string metadata is categorical unless it is display-only (TITLE).
    textual = [f["name"] for f in ITEMS_SCHEMA["fields"] if f.get("textual")]
    assert textual == ["PRODUCT_DESCRIPTION"]
    categorical = {f["name"] for f in ITEMS_SCHEMA["fields"] if f.get("categorical")}
    assert categorical == {"CATEGORY_L1", "CATEGORY_L2"}
    assert [f["name"] for f in INTERACTIONS_SCHEMA["fields"]][:4] == [
        "USER_ID",
        "ITEM_ID",
        "TIMESTAMP",
        "EVENT_TYPE",
    ]
    assert json.loads(json.dumps(USERS_SCHEMA)) == USERS_SCHEMA
