"""The Store contract, run against SQLite and the real PostgreSQL alike."""

from __future__ import annotations

import threading

import pytest

from engine.errors import AlreadyExists, InvalidInput, NotFound, Unauthorized
from engine.records import Alias, Erasure, Interaction, Item, User


def test_dataset_groups_are_created_listed_and_unique(store):
    store.create_dataset_group("shop-a", "ECOMMERCE")
    store.create_dataset_group("shop-b")
    assert [g.name for g in store.list_dataset_groups()] == ["shop-a", "shop-b"]
    assert store.get_dataset_group("shop-a").domain == "ECOMMERCE"
    with pytest.raises(AlreadyExists):
        store.create_dataset_group("shop-a")
    with pytest.raises(InvalidInput):
        store.create_dataset_group("bad name!")
    with pytest.raises(InvalidInput):
        store.create_dataset_group("shop-c", "GROCERY")
    with pytest.raises(NotFound):
        store.get_dataset_group("missing")


def test_items_and_users_are_upserted_and_interactions_appended(store):
    store.create_dataset_group("g")
    store.ingest("g", [Item("p1", {"TITLE": "Boots", "PRICE": 99.5}, 1_700_000_000), User("u1", {"TIER": "gold"})])
    store.ingest("g", [Item("p1", {"TITLE": "Boots v2", "PRICE": 89.0})])
    store.ingest("g", [Interaction("u1", "p1", "view", 10.0, session_id="s1", context={"DEVICE": "mobile"})])
    store.ingest("g", [Interaction("u1", "p1", "purchase", 20.0, event_value=89.0, recommendation_id="RID-1")])
    assert store.items("g")["p1"].properties == {"TITLE": "Boots v2", "PRICE": 89.0}
    assert store.users("g")["u1"].properties == {"TIER": "gold"}
    events = store.latest_events("g", "u1")
    assert [(e.event_type, e.timestamp) for e in events] == [("view", 10.0), ("purchase", 20.0)]
    assert events[1].event_value == 89.0 and events[1].recommendation_id == "RID-1"
    assert store.count_interactions("g") == 2


def test_item_ids_lists_the_whole_catalog_even_with_odd_ids(store):
    store.create_dataset_group("g")
    store.create_dataset_group("other")
    assert store.item_ids("g") == []
    store.ingest("g", [Item("a"), Item("b,c"), Item("tab\tand\nnewline"), Item("é")])
    store.ingest("other", [Item("z")])
    assert sorted(store.item_ids("g")) == sorted(["a", "b,c", "tab\tand\nnewline", "é"])
    store.ingest("g", [Item("sep\x1finside")])  # the separator the fast path splits on: read row by row
    assert sorted(store.item_ids("g")) == sorted(["a", "b,c", "tab\tand\nnewline", "é", "sep\x1finside"])


def test_a_catalog_larger_than_one_statement_holds_is_upserted(store):
    store.create_dataset_group("g")
    # One batch of 14,000 items: 70,000 values at 5 an item, over psycopg's 65,535 for one statement.
    store.ingest("g", [Item(f"i{n}", {"CATEGORY": "a"}) for n in range(14_000)], batch_size=20_000)
    store.ingest("g", [Item(f"i{n}", {"CATEGORY": "b"}) for n in range(13_990, 14_010)])
    items = store.items("g")
    assert len(items) == 14_010 and items["i0"].properties == {"CATEGORY": "a"}
    assert items["i13995"].properties == {"CATEGORY": "b"} and items["i14009"].properties == {"CATEGORY": "b"}


def test_latest_events_are_bounded_and_oldest_first(store):
    store.create_dataset_group("g")
    store.ingest("g", [Interaction("u1", f"p{i}", "view", float(i)) for i in range(50)])
    events = store.latest_events("g", "u1", limit=5)
    assert [e.item_id for e in events] == ["p45", "p46", "p47", "p48", "p49"]


def test_tenants_never_see_each_others_data(store):
    store.create_dataset_group("a")
    store.create_dataset_group("b")
    store.ingest("a", [Item("p1"), Interaction("u1", "p1", "view", 1.0)])
    assert store.items("b") == {}
    assert store.latest_events("b", "u1") == []
    assert len(store.interaction_arrays("b")) == 0


def test_an_ingest_is_all_or_nothing(store):
    store.create_dataset_group("g")
    with pytest.raises(InvalidInput):
        store.ingest("g", [Interaction("u1", "p1", "view", 1.0), "not a record"])
    assert store.count_interactions("g") == 0


def test_erasure_forgets_the_user_and_only_that_user(store):
    store.create_dataset_group("g")
    store.ingest(
        "g", [User("u1"), User("u2"), Interaction("u1", "p1", "view", 1.0), Interaction("u2", "p1", "view", 1.0)]
    )
    store.ingest("g", [Erasure(user_id="u1")])
    assert store.latest_events("g", "u1") == [] and "u1" not in store.users("g")
    assert len(store.latest_events("g", "u2")) == 1


def test_interaction_arrays_come_in_time_order(store):
    store.create_dataset_group("g")
    store.ingest("g", [Interaction("u2", "p2", "purchase", 5.0, event_value=3.0), Interaction("u1", "p1", "view", 1.0)])
    arrays = store.interaction_arrays("g")
    assert arrays.user_ids.tolist() == ["u1", "u2"]
    assert arrays.timestamps.tolist() == [1.0, 5.0]
    assert arrays.event_values[0] != arrays.event_values[0]  # NaN where no value was sent


def test_api_keys_authenticate_and_are_stored_hashed(store):
    store.create_dataset_group("g")
    key, info = store.create_api_key("g", "public", ["https://shop.example/"])
    assert info.allowed_origins == ("https://shop.example",)
    assert store.authenticate_key(key).dataset_group == "g"
    key_id, secret = key.split(".")
    with pytest.raises(Unauthorized):
        store.authenticate_key(f"{key_id}.wrong")
    with pytest.raises(Unauthorized):
        store.authenticate_key("pk_nothing.at-all")
    from sqlalchemy import text

    with store.engine.connect() as conn:
        stored = conn.execute(text("select key_hash from api_keys")).scalar()
    assert secret not in stored


def test_a_delivery_id_can_be_claimed_once_even_under_concurrency(store):
    store.create_dataset_group("g")
    ids = [store.record_delivery("g", "shopify", "orders/create", {}, b"{}") for _ in range(6)]
    results: list[bool] = []
    threads = [threading.Thread(target=lambda i=i: results.append(store.claim_delivery(i, "same-key"))) for i in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 5 + [True]


def test_solutions_versions_and_campaigns(store):
    store.create_dataset_group("g")
    solution = store.create_solution("g", "sol", "popularity-count", {"hyperparameters": {}})
    version = store.add_solution_version(
        solution, training_mode="full", artifact_path="/tmp/x.npz", num_interactions=3, training_seconds=0.1
    )
    assert store.latest_solution_version("g", "sol").id == version.id
    campaign = store.create_campaign("c1", version.id, {"excludeInteracted": False})
    assert campaign.recipe == "popularity-count" and campaign.config == {"excludeInteracted": False}
    with pytest.raises(AlreadyExists):
        store.create_campaign("c1", version.id)
    newer = store.add_solution_version(
        solution, training_mode="update", artifact_path="/tmp/y.npz", num_interactions=4, training_seconds=0.1
    )
    assert store.create_campaign("c1", newer.id, replace=True).solution_version_id == newer.id
    with pytest.raises(NotFound):
        store.get_campaign("g", "nope")


def test_deleting_a_dataset_group_removes_everything_it_owns(store):
    store.create_dataset_group("g")
    store.ingest("g", [Item("p1"), Interaction("u1", "p1", "view", 1.0)])
    store.create_api_key("g", "secret")
    store.delete_dataset_group("g")
    with pytest.raises(NotFound):
        store.get_dataset_group("g")


def test_an_event_id_is_stored_once(store):
    store.create_dataset_group("g")
    store.ingest("g", [Interaction("u1", "p1", "purchase", 1.0, event_id="order-1:line-1")])
    store.ingest(
        "g",
        [
            Interaction("u1", "p1", "purchase", 2.0, event_id="order-1:line-1"),
            Interaction("u1", "p2", "view", 3.0),
            Interaction("u1", "p2", "view", 4.0),
        ],
    )
    assert [e.timestamp for e in store.latest_events("g", "u1")] == [1.0, 3.0, 4.0]


def test_ingest_can_mark_a_delivery_processed_in_the_same_transaction(store):
    store.create_dataset_group("g")
    delivery = store.record_delivery("g", "shopify", "orders/create", {}, b"{}")
    with pytest.raises(InvalidInput):
        store.ingest("g", [Interaction("u1", "p1", "view", 1.0), "junk"], processed_delivery=delivery)
    assert store.deliveries("g")[0].status == "received"
    store.ingest("g", [Interaction("u1", "p1", "view", 1.0)], processed_delivery=delivery)
    [info] = store.deliveries("g")
    assert info.status == "processed" and info.records == 1


def test_an_alias_hands_the_anonymous_shoppers_events_to_the_known_user(store):
    store.create_dataset_group("g")
    store.ingest("g", [Interaction("anon-7", "p1", "view", 1.0), Interaction("u1", "p2", "purchase", 2.0)])
    counts = store.ingest("g", [Alias(anonymous_id="anon-7", user_id="u1")])
    assert counts["aliases"] == 1
    assert [e.item_id for e in store.latest_events("g", "u1")] == ["p1", "p2"]
    assert store.latest_events("g", "anon-7") == []


def test_impressions_are_kept_but_are_not_a_shoppers_history(store):
    store.create_dataset_group("g")
    store.ingest("g", [Interaction("u1", "p1", "impression", 1.0), Interaction("u1", "p2", "click", 2.0)])
    assert [e.item_id for e in store.latest_events("g", "u1")] == ["p2"]
    assert store.interaction_arrays("g").item_ids.tolist() == ["p2"]
    assert store.count_interactions("g") == 2
