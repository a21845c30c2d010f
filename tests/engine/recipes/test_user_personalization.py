import numpy as np
import pytest

from engine.recipes import Query, TrainingData
from engine.recipes.user_personalization import UserPersonalization
from engine.recipes.weighting import DEFAULT_EVENT_WEIGHTS
from engine.records import Item, User
from tests.engine.recipes.contract import RecipeContract, clustered_data, history

FAST = {"factors": 8, "iterations": 10}


class TestUserPersonalizationContract(RecipeContract):
    recipe_cls = UserPersonalization
    hyperparameters = FAST


def cluster_share(item_ids, prefix):
    return sum(i.startswith(prefix) for i in item_ids) / max(len(item_ids), 1)


def test_a_brand_new_user_is_personalised_from_the_first_events():
    model = UserPersonalization(**FAST).fit(clustered_data())
    likes_b = model.recommend(Query(user_id="new", history=history("b1", "b2"), num_results=10))
    likes_a = model.recommend(Query(user_id="new", history=history("a1", "a2"), num_results=10))
    assert cluster_share(likes_b.item_ids, "b") >= 0.9
    assert cluster_share(likes_a.item_ids, "a") >= 0.9


def test_a_user_with_no_events_gets_popular_items():
    data = clustered_data()
    model = UserPersonalization(**FAST).fit(data)
    weights = np.array([DEFAULT_EVENT_WEIGHTS[t] for t in data.event_types])
    counts = np.bincount(data.item_index, weights=weights, minlength=data.n_items)
    most_popular = data.item_ids[np.argmax(counts)]
    assert model.recommend(Query(user_id="stranger", num_results=3)).item_ids[0] == most_popular


def test_a_new_event_changes_the_next_answer_without_retraining():
    model = UserPersonalization(**FAST).fit(clustered_data())
    before = model.recommend(Query(user_id="u0", history=history("a1", "a2", "a3"), num_results=10))
    after = model.recommend(
        Query(user_id="u0", history=history("a1", "a2", "a3", "b1", "b2", "b3", "b4", "b5"), num_results=10)
    )
    assert cluster_share(after.item_ids, "b") > cluster_share(before.item_ids, "b")


def test_purchases_weigh_more_than_views():
    data = clustered_data()
    model = UserPersonalization(**FAST).fit(data)
    viewed_b_bought_a = history("b1", "b2") + history("a1", "a2", event_type="purchase")
    ranked = model.recommend(Query(user_id="x", history=viewed_b_bought_a, num_results=10))
    assert cluster_share(ranked.item_ids, "a") > 0.5
    equal = UserPersonalization(**FAST, event_weights={"purchase": 1, "view": 1}).fit(data)
    weights = equal.hyperparameters["event_weights"]
    assert weights["purchase"] == weights["view"] == 1


def test_update_mode_starts_from_the_previous_model_and_adds_new_items():
    data = clustered_data()
    first = UserPersonalization(**FAST).fit(data)
    more = TrainingData.from_columns(
        [*list(np.asarray(data.user_ids)[data.user_index]), "u0", "u2", "u4"],
        [*list(np.asarray(data.item_ids)[data.item_index]), "a-new", "a-new", "a-new"],
        list(data.event_types) + ["purchase"] * 3,
        list(data.timestamps) + [1.8e9] * 3,
    )
    updated = UserPersonalization(**FAST).fit(more, previous=first)
    assert "a-new" in updated.item_ids.tolist()
    ranked = updated.recommend(Query(user_id="u0", history=history("a1", "a2"), num_results=5))
    assert cluster_share(ranked.item_ids, "a") >= 0.8


def test_hyperparameters_are_validated():
    from engine.errors import InvalidInput

    with pytest.raises(InvalidInput):
        UserPersonalization(factors=0)
    with pytest.raises(InvalidInput):
        UserPersonalization(event_weights={"view": -1})


# --------------------------------------------------------------------------- learned behaviour
def grocery_data(n_users: int = 80, seed: int = 1) -> TrainingData:
    """Each shopper re-buys their own three staples week after week, plus one-off items."""
    rng = np.random.default_rng(seed)
    users, items, types, ts = [], [], [], []
    for u in range(n_users):
        staples = rng.choice(30, size=3, replace=False)
        for week in range(8):
            basket = [f"g{s}" for s in staples] + [f"g{rng.integers(30)}"]
            for item in basket:
                users.append(f"u{u}")
                items.append(item)
                types.append("purchase")
                ts.append(1_700_000_000 + week * 604_800 + len(ts))
    return TrainingData.from_columns(users, items, types, ts)


def film_data(n_users: int = 80, seed: int = 2) -> TrainingData:
    """Nobody watches a film twice; two taste clusters."""
    rng = np.random.default_rng(seed)
    users, items, ts = [], [], []
    for u in range(n_users):
        prefix = "a" if u % 2 == 0 else "b"
        for k, film in enumerate(rng.choice(25, size=12, replace=False)):
            users.append(f"u{u}")
            items.append(f"{prefix}{film}")
            ts.append(1_700_000_000 + 1000 * u + k)
    return TrainingData.from_columns(users, items, ["watch"] * len(users), ts)


def purchases(*item_ids: str) -> tuple:
    return history(*item_ids, event_type="purchase")


def test_shoppers_who_rebuy_are_shown_their_staples_first():
    model = UserPersonalization(**FAST).fit(grocery_data())
    staples = ("g1", "g2", "g3")
    basket = purchases(*staples, "g9", *staples, "g17", *staples, "g4")
    assert model.repeats.enabled
    assert model.default_exclusions(basket) == frozenset()  # the campaign leaves the choice to the recipe
    ranked = model.recommend(Query(user_id="x", history=basket, num_results=5))
    assert set(ranked.item_ids[:3]) == set(staples)


def test_what_nobody_comes_back_to_is_left_out():
    data = film_data()
    model = UserPersonalization(**FAST).fit(data)
    watched = history("a1", "a2", "a3", "a4")
    assert not model.repeats.enabled
    assert model.default_exclusions(watched) == {"a1", "a2", "a3", "a4"}
    ranked = model.recommend(Query(user_id="x", history=watched, num_results=10))
    assert not set(ranked.item_ids) & {"a1", "a2", "a3", "a4"}
    assert cluster_share(ranked.item_ids, "a") >= 0.9
    # A campaign configured to keep seen items (excludeInteracted: false) gets them, ranked last.
    everything = model.recommend(Query(user_id="x", history=watched, num_results=len(model.item_ids)))
    assert set(everything.item_ids[-4:]) == {"a1", "a2", "a3", "a4"}


def test_the_latest_items_point_to_what_people_go_on_to_next():
    """Everyone walks the same trail t0 → t9 from a random start: taste cannot tell what is next,
    the order can."""
    rng = np.random.default_rng(4)
    users, items, ts = [], [], []
    for u in range(100):
        start = int(rng.integers(0, 5))
        for step in range(start, start + 5):
            users.append(f"u{u}")
            items.append(f"t{step}")
            ts.append(1_700_000_000 + 100 * u + step)
    model = UserPersonalization(**FAST).fit(TrainingData.from_columns(users, items, ["view"] * len(users), ts))
    assert model.choice.sequence_weight > 0
    ranked = model.recommend(Query(user_id="x", history=history("t1", "t2", "t3"), num_results=1))
    assert ranked.item_ids == ("t4",)


def catalog(data: TrainingData, extra: dict[str, str]) -> dict[str, Item]:
    """Category metadata for every item (a*: outdoor gear, b*: kitchenware), plus ``extra``."""
    kinds = {"a": "outdoor gear for hiking", "b": "kitchenware for cooking"}
    out = {i: Item(i, {"CATEGORY": i[0], "DESCRIPTION": kinds[i[0]]}) for i in data.item_ids.tolist()}
    for item_id, prefix in extra.items():
        out[item_id] = Item(item_id, {"CATEGORY": prefix, "DESCRIPTION": kinds[prefix]})
    return out


def test_a_new_item_is_placed_through_its_metadata():
    base = clustered_data()
    items = catalog(base, {"a-new": "a", "b-new": "b"})
    data = TrainingData.from_columns(
        base.user_ids[base.user_index], base.item_ids[base.item_index], base.event_types, base.timestamps, items=items
    )
    model = UserPersonalization(**FAST, cold_item_weight=1.0).fit(data)
    assert {"a-new", "b-new"} <= set(model.item_ids.tolist())
    likes_a = history("a1", "a2", "a3")
    ranked = model.recommend(Query(user_id="x", history=likes_a, candidates=("b-new", "a-new")))
    assert ranked.item_ids == ("a-new", "b-new")
    assert "a-new" in model.recommend(Query(user_id="x", history=likes_a, num_results=20)).item_ids
    # A shopper whose only event is on the new item is placed among its metadata neighbours.
    only_new = model.recommend(Query(user_id="y", history=history("a-new"), num_results=10))
    assert cluster_share(only_new.item_ids, "a") >= 0.9


def test_a_shopper_with_no_events_gets_popular_items_shaped_by_their_metadata():
    users, items, ts = [], [], []
    tiers = {}
    for u in range(60):
        tier = "gold" if u % 3 == 0 else "silver"
        tiers[f"u{u}"] = tier
        for k in range(6):
            users.append(f"u{u}")
            items.append(f"{tier[0]}{k % 3}")
            ts.append(1_700_000_000 + 10 * u + k)
    tiers["newcomer"] = "gold"
    data = TrainingData.from_columns(
        users,
        items,
        ["purchase"] * len(users),
        ts,
        users={u: User(u, {"MEMBERSHIP": t}) for u, t in tiers.items()},
    )
    model = UserPersonalization(**FAST).fit(data)
    stranger = model.recommend(Query(user_id="stranger", num_results=3))
    assert cluster_share(stranger.item_ids, "s") == 1.0  # silver shoppers are the majority
    known = model.recommend(Query(user_id="newcomer", num_results=3))
    assert cluster_share(known.item_ids, "g") == 1.0
    by_context = model.recommend(Query(user_id="other", num_results=3, context={"MEMBERSHIP": "gold"}))
    assert cluster_share(by_context.item_ids, "g") == 1.0


@pytest.mark.parametrize("family", ["als", "ease"])
def test_either_family_can_be_fixed_and_auto_chooses_on_held_out_users(family, tmp_path):
    model = UserPersonalization(**FAST, model=family).fit(film_data())
    assert model.choice.family == family
    ranked = model.recommend(Query(user_id="x", history=history("b1", "b2", "b3"), num_results=10))
    assert cluster_share(ranked.item_ids, "b") >= 0.9
    loaded = UserPersonalization.load(model.save(tmp_path / "m.npz"))
    assert loaded.choice == model.choice
    auto = UserPersonalization(**FAST).fit(film_data())
    assert auto.choice.family in ("als", "ease") and auto.choice.validation_ndcg is not None


def test_fixed_settings_are_used_as_given():
    model = UserPersonalization(**FAST, history_half_life=4, sequence_weight=0.3).fit(film_data())
    assert (model.choice.half_life, model.choice.sequence_weight) == (4, 0.3)


def device_data(n_users: int = 80) -> TrainingData:
    """The same shoppers browse phone cases on their phones and monitors on their desktops."""
    rng = np.random.default_rng(5)
    users, items, ts, contexts = [], [], [], []
    for u in range(n_users):
        for session in range(6):
            device = "mobile" if rng.random() < 0.5 else "desktop"
            for k in range(3):
                users.append(f"u{u}")
                items.append(f"{device[0]}{rng.integers(0, 6)}")
                ts.append(1_700_000_000 + 10_000 * u + 100 * session + k)
                contexts.append({"DEVICE_TYPE": device})
    return TrainingData.from_columns(users, items, ["view"] * len(users), ts, contexts=contexts)


def test_the_requests_context_shifts_what_is_shown():
    model = UserPersonalization(**FAST).fit(device_data())
    assert model.choice.context_weight > 0
    mixed = history("m1", "d1", "m2", "d2")
    on_phone = model.recommend(Query(user_id="x", history=mixed, num_results=4, context={"DEVICE_TYPE": "mobile"}))
    on_desktop = model.recommend(Query(user_id="x", history=mixed, num_results=4, context={"DEVICE_TYPE": "desktop"}))
    assert cluster_share(on_phone.item_ids, "m") > 0.5 > cluster_share(on_desktop.item_ids, "m")
    newcomer = model.recommend(Query(user_id="new", num_results=4, context={"DEVICE_TYPE": "desktop"}))
    assert cluster_share(newcomer.item_ids, "d") == 1.0


def test_an_artifact_of_the_earlier_als_only_model_still_loads_and_answers(tmp_path):
    import json

    model = UserPersonalization(**FAST).fit(clustered_data())
    path = tmp_path / "legacy.npz"
    header = {"format": 1, "recipe": "user-personalization", "hyperparameters": FAST}
    with path.open("wb") as f:
        np.savez(
            f,
            __header__=np.array(json.dumps(header)),
            item_ids=model.item_ids,
            item_factors=model.item_factors,
            popularity=model.popularity,
        )
    legacy = UserPersonalization.load(path)
    seen = history("a1", "a2")
    assert legacy.default_exclusions(seen) == {"a1", "a2"}
    ranked = legacy.recommend(Query(user_id="x", history=seen, num_results=10, exclude=frozenset({"a1", "a2"})))
    assert cluster_share(ranked.item_ids, "a") >= 0.7 and not {"a1", "a2"} & set(ranked.item_ids)
