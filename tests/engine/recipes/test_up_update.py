"""The incremental UPDATE of user-personalization (engine.recipes.up_update), on small data."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from engine.recipes import Query, TrainingData, up_update
from engine.recipes.feature_space import feature_space
from engine.recipes.item_metadata import feature_matrix, neighbour_matrix
from engine.recipes.sequences import transition_matrix
from engine.recipes.user_personalization import TRANSITION_DECAY, UserPersonalization
from engine.recipes.vocabulary import carry_rows, vocabulary_map
from engine.records import Item, User
from tests.engine.recipes.contract import history

FAST = {"factors": 8, "iterations": 10}
T0 = 1_700_000_000


WORDS = {"a": "alpha woollen", "b": "bravo leather", "c": "charlie linen"}


def _catalog(item_ids) -> dict[str, Item]:
    """Metadata by cluster (first letter); five c-items nobody touches keep each cluster's
    category under half the catalog (more common tokens say nothing, item_metadata drops them)."""
    ids = [*item_ids, *(f"c{k}" for k in range(5))]
    return {i: Item(i, {"CATEGORY": "cat-" + i[0], "DESCRIPTION": f"{WORDS[i[0]]} things"}) for i in ids}


def _events(n_users: int, seed: int, start: int = 0) -> list[tuple[str, str, str, float]]:
    """Two taste clusters: even users like items a0..a19, odd users b0..b19."""
    rng = np.random.default_rng(seed)
    out = []
    for u in range(start, start + n_users):
        prefix = "a" if u % 2 == 0 else "b"
        for k in range(12):
            out.append(
                (f"u{u}", f"{prefix}{rng.integers(0, 20)}", "purchase" if k % 4 == 0 else "view", T0 + u * 100 + k)
            )
    return out


def _data(events, catalog, users=None, new=None) -> TrainingData:
    users_col, items_col, types, ts = zip(*events, strict=True)
    data = TrainingData.from_columns(users_col, items_col, types, ts, items=catalog, users=users or {})
    if new is not None:
        data.new_events = np.asarray(new, dtype=bool)
    return data


@pytest.fixture(scope="module")
def scenario():
    """A FULL version, then new users who buy a new item together with cluster-a items; a new
    item nobody touched (cluster-a metadata) and a catalog item that gets its first events."""
    old_events = _events(120, seed=0)
    items = [f"{p}{k}" for p in "ab" for k in range(20)]
    old_catalog = _catalog([*items, "a-cold-before"])
    first = UserPersonalization(**FAST).fit(_data(old_events, old_catalog))
    rng = np.random.default_rng(1)
    added = []
    for u in range(200, 230, 2):  # fifteen new shoppers of cluster a
        for k in range(8):
            item = "a-new" if k % 2 == 0 else f"a{rng.integers(0, 20)}"
            added.append((f"u{u}", item, "purchase", T0 + 10**6 + u * 100 + k))
    added += [("u230", "a-cold-before", "purchase", T0 + 2 * 10**6), ("u230", "a3", "view", T0 + 2 * 10**6 + 1)]
    catalog = _catalog([*items, "a-cold-before", "a-new", "a-new-cold"])
    events = old_events + added
    new = [False] * len(old_events) + [True] * len(added)
    delta = UserPersonalization(**FAST).fit(_data(events, catalog, new=new), previous=first)
    refit = UserPersonalization(**FAST).fit(_data(events, catalog), previous=first)
    return first, delta, refit, events, catalog, new


def _factors(model, item_id):
    return model.item_factors[model.item_index(item_id)]


def test_a_new_item_bought_with_others_is_recommended_to_similar_users(scenario):
    _, delta, _, *_ = scenario
    likes_a = delta.recommend(Query(user_id="x", history=history("a1", "a2", "a5"), num_results=10))
    likes_b = delta.recommend(Query(user_id="y", history=history("b1", "b2", "b5"), num_results=10))
    assert "a-new" in likes_a.item_ids
    assert "a-new" not in likes_b.item_ids
    # It has factors of its own, aligned with cluster a's items rather than b's.
    new = _factors(delta, "a-new")
    a = np.mean([_factors(delta, f"a{k}") for k in range(20)], axis=0)
    b = np.mean([_factors(delta, f"b{k}") for k in range(20)], axis=0)
    assert new @ a > new @ b


def test_existing_items_keep_their_factors_and_the_shoppers_join_the_gram(scenario):
    first, delta, refit, *_ = scenario
    for item in ("a1", "b7", "a19"):
        assert np.array_equal(_factors(delta, item), _factors(first, item))
        assert not np.array_equal(_factors(refit, item), _factors(first, item))  # the old path refits
    assert delta.user_gram is not None and first.user_gram is not None
    assert np.trace(delta.user_gram) > np.trace(first.user_gram)  # fifteen more shoppers' factors
    assert np.allclose(delta.yty, delta.item_factors.T.astype(np.float64) @ delta.item_factors, rtol=1e-4)


def test_counts_equal_a_full_recount(scenario):
    _, delta, _, events, catalog, _ = scenario
    data = _data(events, catalog)
    weights = delta._weights(data)
    assert np.allclose(delta.popularity, np.bincount(data.item_index, weights=weights, minlength=data.n_items))
    full = transition_matrix(
        data, window=delta.hyperparameters["sequence_window"], decay=TRANSITION_DECAY, event_mask=weights > 0
    )
    assert abs(delta.transitions - full).max() < 1e-4
    assert delta.transitions[delta.item_index("a-new")].nnz > 0  # what the new shoppers did next


def test_cold_items_borrow_from_their_metadata_and_warm_ones_stop(scenario):
    first, delta, *_ = scenario
    assert first.popularity[first.item_index("a-cold-before")] == 0
    assert first.cold_neighbours[first.item_index("a-cold-before")].nnz > 0
    # It got events: it is warm now, with factors and no borrowed row.
    turned = delta.item_index("a-cold-before")
    assert delta.popularity[turned] > 0 and delta.cold_neighbours[turned].nnz == 0
    assert np.abs(delta.item_factors[turned]).sum() > 0
    # The new item nobody touched borrows from cluster-a items, by its metadata.
    row = delta.cold_neighbours[delta.item_index("a-new-cold")]
    assert row.nnz > 0 and np.isclose(row.sum(), 1.0)
    assert all(delta.item_ids[j].startswith("a") for j in row.indices)
    ranked = delta.recommend(Query(user_id="x", history=history("a-new-cold"), num_results=10))
    assert sum(i.startswith("a") for i in ranked.item_ids) >= 8


def test_answers_are_close_to_a_full_refit(scenario):
    _, delta, refit, *_ = scenario
    overlaps = []
    for seed in range(12):
        rng = np.random.default_rng(seed)
        prefix = "ab"[seed % 2]
        items = [f"{prefix}{k}" for k in rng.choice(20, 4, replace=False)]
        q = Query(user_id="x", history=history(*items), num_results=10)
        overlaps.append(len(set(delta.recommend(q).item_ids) & set(refit.recommend(q).item_ids)) / 10)
    assert np.mean(overlaps) >= 0.7


def test_save_and_load_keep_the_answers_and_a_second_update_works(scenario, tmp_path):
    _, delta, _, events, catalog, _ = scenario
    loaded = UserPersonalization.load(delta.save(tmp_path / "delta.npz"))
    q = Query(user_id="x", history=history("a1", "a2", "a-new"), num_results=10)
    assert loaded.recommend(q) == delta.recommend(q)
    assert np.allclose(loaded.user_gram, delta.user_gram)
    assert loaded.feature_space.names.tolist() == delta.feature_space.names.tolist()
    more = [
        ("u240", "b-new", "purchase", T0 + 3 * 10**6 + k) if k % 2 else ("u240", f"b{k}", "view", T0 + 3 * 10**6 + k)
        for k in range(6)
    ]
    second = UserPersonalization(**FAST).fit(
        _data(events + more, _catalog([*catalog, "b-new"]), new=[False] * len(events) + [True] * len(more)),
        previous=loaded,
    )
    assert np.array_equal(_factors(second, "a-new"), _factors(delta, "a-new"))
    likes_b = second.recommend(Query(user_id="y", history=history("b0", "b2", "b4"), num_results=10))
    assert all(i.startswith("b") for i in likes_b.item_ids)


def test_an_artifact_without_the_update_state_still_updates(scenario):
    first, delta, _, events, catalog, new = scenario
    old = UserPersonalization(**FAST)
    old.__dict__.update(first.__dict__)
    old.user_gram = old.item_features = old.feature_space = None
    again = UserPersonalization(**FAST).fit(_data(events, catalog, new=new), previous=old)
    # The Gram matrix comes back from the previous item factors (close to implicit's, not equal).
    assert np.allclose(again.user_gram, delta.user_gram, rtol=0.2, atol=0.5)
    q = Query(user_id="x", history=history("a1", "a2", "a5"), num_results=10)
    assert "a-new" in again.recommend(q).item_ids
    assert again.cold_neighbours[again.item_index("a-new-cold")].nnz > 0


def test_without_new_events_an_update_refits_as_before(scenario):
    first, _, refit, *_ = scenario
    assert refit.choice == first.choice
    assert not np.array_equal(_factors(refit, "a1"), _factors(first, "a1"))
    assert refit.item_features is not None and refit.user_gram is not None


def test_new_users_with_metadata_join_the_attribute_table():
    events = _events(60, seed=3)
    tiers = {f"u{u}": User(f"u{u}", {"TIER": "gold" if u % 2 == 0 else "basic"}) for u in range(60)}
    first = UserPersonalization(**FAST).fit(_data(events, _catalog({e[1] for e in events}), users=tiers))
    assert len(first.attributes.keys)
    added = [("u99", "a3", "view", T0 + 10**6)]
    users = {**tiers, "u99": User("u99", {"TIER": "gold"}), "u98": User("u98", {"TIER": "gold"})}
    data = _data(events + added, _catalog({e[1] for e in events}), users=users, new=[False] * len(events) + [True])
    delta = UserPersonalization(**FAST).fit(data, previous=first)
    gold = delta.attributes.scores(delta.popularity, "u0", {})
    assert np.allclose(delta.attributes.scores(delta.popularity, "u98", {}), gold)
    assert list(delta.attributes.user_ids) == sorted(delta.attributes.user_ids)


# --------------------------------------------------------------------- the pieces
def test_vocabulary_map_and_carried_rows_follow_item_ids():
    old = np.array(["a", "c", "d"])
    new = np.array(["d", "b", "a", "e"])  # unsorted, "c" gone
    mapping = vocabulary_map(old, new)
    assert mapping.tolist() == [2, -1, 0]
    m = sp.csr_matrix(np.array([[0, 1, 2], [3, 0, 4], [5, 6, 0]], dtype=np.float32))
    carried = carry_rows(m, mapping, 4, columns=True).toarray()
    expected = np.zeros((4, 4), dtype=np.float32)
    expected[2, 0], expected[0, 2] = 2, 5  # a→d and d→a; everything through "c" is gone
    assert np.array_equal(carried, expected)
    grown = vocabulary_map(np.array(["a", "c"]), np.array(["a", "b", "c"]))  # sorted, only grew
    fast = carry_rows(sp.csr_matrix(np.array([[0, 1], [2, 0]], dtype=np.float32)), grown, 3, columns=True)
    assert np.array_equal(fast.toarray(), [[0, 0, 1], [0, 0, 0], [2, 0, 0]])


def test_feature_space_is_feature_matrix_and_places_new_items_in_it():
    catalog = _catalog([f"{p}{k}" for p in "abc" for k in range(6)])
    ids = np.array(sorted(catalog))
    matrix, space = feature_space(ids, catalog)
    assert abs(matrix - feature_matrix(ids, catalog)).max() < 1e-6
    assert abs(space.rows(ids, catalog) - matrix).max() < 1e-6
    newcomer = {"a-late": Item("a-late", {"CATEGORY": "cat-a", "DESCRIPTION": "unheard of words"})}
    row = space.rows(np.array(["a-late"]), newcomer)
    assert row.nnz > 0 and np.isclose(row.multiply(row).sum(), 1.0)
    near = neighbour_matrix(
        sp.vstack([matrix, row]).tocsr(), np.array([len(ids)]), np.arange(len(ids)), len(ids) + 1, neighbours=4
    )
    assert near.nnz == 4 and all(ids[j].startswith("a") for j in near[len(ids)].indices)


def test_an_update_with_nothing_new_answers_as_before(scenario):
    first, *_ = scenario
    events = _events(120, seed=0)
    items = [f"{p}{k}" for p in "ab" for k in range(20)]
    same = UserPersonalization(**FAST).fit(
        _data(events, _catalog([*items, "a-cold-before"]), new=[False] * len(events)), previous=first
    )
    for h in (history("a1", "a2"), history("b3", "b4", "a-cold-before")):
        q = Query(user_id="x", history=h, num_results=10)
        assert same.recommend(q) == first.recommend(q)


def test_an_erased_shoppers_events_send_the_update_down_the_full_refit(scenario, tmp_path):
    first, _, _, events, catalog, new = scenario
    assert first.trained_events == len(_events(120, seed=0))
    kept = [(e, n) for e, n in zip(events, new, strict=True) if e[0] != "u4"]  # u4's data was erased
    data = _data([e for e, _ in kept], catalog, new=[n for _, n in kept])
    assert not up_update.applies(first, data)
    refit = UserPersonalization(**FAST).fit(data, previous=first)
    assert not np.array_equal(_factors(refit, "a1"), _factors(first, "a1"))  # refitted, not carried
    data.new_events = None
    assert not up_update.applies(first, data)
    assert up_update.applies(first, _data(events, catalog, new=new))
    loaded_count = UserPersonalization.load(refit.save(tmp_path / "m.npz")).trained_events
    assert loaded_count == len(kept)
