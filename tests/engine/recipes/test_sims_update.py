"""sims UPDATE (only what the new events touch is recomputed) and the large-data fit path."""

import numpy as np
import pytest
import scipy.sparse as sp

from engine.recipes import Query, TrainingData
from engine.recipes import sims as sims_module
from engine.recipes.sims import Sims, _keep_top
from engine.recipes.up_selection import holdout_answers
from engine.recipes.validation import ndcg_at_10, validation_users
from tests.engine.recipes.contract import clustered_data
from tests.engine.recipes.test_sims import trail_data


def columns(data: TrainingData) -> tuple[list, list, list, list]:
    return (
        data.user_ids[data.user_index].tolist(),
        data.item_ids[data.item_index].tolist(),
        data.event_types.tolist(),
        data.timestamps.tolist(),
    )


def with_new_events(old: TrainingData, users, items, types) -> TrainingData:
    """``old``'s events then these later ones, marked new as the training job marks them."""
    u, i, t, ts = columns(old)
    later = [max(ts) + 1 + n for n in range(len(users))]
    data = TrainingData.from_columns(u + list(users), i + list(items), t + list(types), ts + later)
    data.new_events = np.r_[np.zeros(len(old), dtype=bool), np.ones(len(users), dtype=bool)]
    return data


def refit(data: TrainingData, previous: Sims) -> Sims:
    """What a full refit with the previous version's blend gives."""
    return Sims(**{**previous.hyperparameters, "sequence_weight": previous.sequence_weight}).fit(data)


def updated(previous: Sims, data: TrainingData, monkeypatch) -> Sims:
    """An UPDATE that must take the delta path (a full fit in between fails the test)."""
    with monkeypatch.context() as patch:
        patch.setattr(Sims, "_fit_core", lambda *_: (_ for _ in ()).throw(AssertionError("refitted")))
        return Sims(**previous.hyperparameters).fit(data, previous=previous)


def grown_clusters() -> tuple[Sims, TrainingData]:
    """A model of the clustered data, and that data grown by a new user, new items and more
    events of existing users (their old histories' transitions change too)."""
    old = clustered_data()
    previous = Sims().fit(old)
    data = with_new_events(
        old,
        ["new-user"] * 4 + ["u0", "u0", "u3", "u3", "u3"],
        ["a1", "a-new", "a2", "a-new", "a3", "a4", "b1", "b-new", "b2"],
        ["purchase", "view", "view", "purchase", "view", "view", "purchase", "view", "view"],
    )
    return previous, data


def test_an_update_links_a_new_item_bought_together_with_an_existing_one(monkeypatch):
    old = TrainingData.from_columns(
        [f"u{u}" for u in range(20) for _ in range(2)],
        [item for u in range(20) for item in (("boots", "socks") if u % 2 else ("tent", "lamp"))],
        ["purchase"] * 40,
        range(40),
    )
    previous = Sims().fit(old)
    data = with_new_events(
        old, [f"n{u}" for u in range(6) for _ in range(2)], ["boots", "laces"] * 6, ["purchase"] * 12
    )
    model = updated(previous, data, monkeypatch)
    assert "laces" in model.item_ids.tolist()
    assert model.recommend(Query(item_id="laces", num_results=1)).item_ids == ("boots",)
    assert "laces" in model.recommend(Query(item_id="boots", num_results=2)).item_ids
    assert "laces" not in model.recommend(Query(item_id="tent", num_results=3)).item_ids


def test_an_update_matches_a_full_refit_when_no_neighbour_list_is_cut(monkeypatch):
    previous, data = grown_clusters()
    model = updated(previous, data, monkeypatch)
    full = refit(data, previous)
    assert model.sequence_weight == previous.sequence_weight
    np.testing.assert_array_equal(model.item_ids, full.item_ids)
    np.testing.assert_allclose(model.similarity.toarray(), full.similarity.toarray(), atol=1e-5)
    np.testing.assert_allclose(model.sequence.toarray(), full.sequence.toarray(), atol=1e-5)
    np.testing.assert_allclose(model.popularity, full.popularity)


def test_an_update_stays_close_to_a_full_refit_when_lists_are_cut(monkeypatch):
    old = clustered_data(seed=3, n_items=60)
    previous = Sims(neighbours=8, sequence_weight=0.5).fit(old)
    rng = np.random.default_rng(5)
    users = [f"n{u}" for u in range(10) for _ in range(6)]
    items = [f"{'ab'[u % 2]}{rng.integers(0, 35)}" for u in range(10) for _ in range(6)]
    data = with_new_events(old, users, items, ["view"] * len(users))
    model = updated(previous, data, monkeypatch)
    full = refit(data, previous)
    assert np.diff(model.similarity.indptr).max() <= 7
    same = (model.similarity != 0).multiply(full.similarity != 0).sum()
    assert same >= 0.9 * full.similarity.nnz
    overlap = [
        len(set(model.recommend(q).item_ids) & set(full.recommend(q).item_ids))
        for q in (Query(item_id=i, num_results=5) for i in data.item_ids.tolist())
    ]
    assert np.mean(overlap) >= 4.5


def test_an_updated_model_survives_saving(tmp_path, monkeypatch):
    previous, data = grown_clusters()
    model = updated(previous, data, monkeypatch)
    loaded = Sims.load(model.save(tmp_path / "sims.npz"))
    for item in ("a-new", "a1", "b-new"):
        query = Query(item_id=item, num_results=5)
        assert loaded.recommend(query) == model.recommend(query)
    again = updated(loaded, with_new_events(data, ["u5", "u5"], ["b-new", "a-new"], ["view", "view"]), monkeypatch)
    assert again.recommend(Query(item_id="b-new", num_results=3)).item_ids


def test_without_new_events_marked_an_update_refits_everything_keeping_the_blend():
    previous, data = grown_clusters()
    data.new_events = None
    previous.sequence_weight = 0.25  # not what a FULL fit would choose here
    model = Sims(**previous.hyperparameters).fit(data, previous=previous)
    assert model.sequence_weight == 0.25
    full = refit(data, previous)
    assert (model.similarity != full.similarity).nnz == 0
    assert (model.sequence != full.sequence).nnz == 0


def test_an_update_whose_old_items_are_gone_refits():
    previous, data = grown_clusters()
    u, i, t, _ = columns(data)
    keep = [n for n, item in enumerate(i) if item != "a1"]
    smaller = TrainingData.from_columns(
        [u[n] for n in keep], [i[n] for n in keep], [t[n] for n in keep], range(len(keep))
    )
    smaller.new_events = np.zeros(len(smaller), dtype=bool)
    model = Sims(**previous.hyperparameters).fit(smaller, previous=previous)
    assert "a1" not in model.item_ids.tolist()
    assert (model.similarity != refit(smaller, previous).similarity).nnz == 0


# ----------------------------------------------------------------- the large-data fit path
def test_blend_scores_match_what_recommend_lists():
    data = clustered_data(seed=1)
    model = Sims(sequence_weight=0.5).fit(data)
    held_out = validation_users(data, share=0.2, max_users=500, seed=42)
    _, cases = holdout_answers(data, held_out)
    latest = np.array([model.item_index(c.history[-1].item_id) for c in cases])
    fast = model.blend_ndcg(latest, [model.indices(c.truth) for c in cases])
    for weight in sims_module.SEQUENCE_WEIGHTS:
        model.sequence_weight = weight
        slow = sum(
            ndcg_at_10(model.recommend(Query(item_id=c.history[-1].item_id, num_results=10)).item_ids, c.truth)
            for c in cases
        )
        assert abs(fast[weight] - slow) < 1e-9


def test_on_large_data_one_fit_chooses_the_blend_and_is_the_model(monkeypatch):
    monkeypatch.setattr(sims_module, "SHARED_FIT_EVENTS", 100)
    data = trail_data()
    calls = []
    original = Sims._fit_core
    monkeypatch.setattr(Sims, "_fit_core", lambda self, d: (calls.append(len(d)), original(self, d)))
    model = Sims().fit(data)
    assert len(calls) == 1 and calls[0] < len(data)  # without the held-out users' answers only
    assert model.sequence_weight > 0
    assert set(model.recommend(Query(item_id="t4", num_results=2)).item_ids) == {"t3", "t5"}


def test_keep_top_keeps_each_rows_largest_in_column_order_on_ties():
    rng = np.random.default_rng(2)
    matrix = sp.random(50, 60, density=0.4, random_state=rng, dtype=np.float32).tocsr()
    matrix.data = np.round(matrix.data * 4) - 1  # ties, zeros and negatives
    for k in (1, 3, 30, 100):
        kept = _keep_top(matrix, k).toarray()
        for r in range(50):
            row = matrix.getrow(r)
            order = np.lexsort((row.indices, -row.data))[:k]
            expected = np.zeros(60, dtype=np.float32)
            expected[row.indices[order]] = row.data[order]
            np.testing.assert_array_equal(kept[r], expected)


def test_an_update_refits_only_when_its_work_comes_near_a_refits(monkeypatch):
    # Not the share of the catalogue touched (a few new shoppers touch many popular items) but
    # the work: a few new shoppers are updated, a batch as large as the history refits.
    from engine.recipes import sims_update

    monkeypatch.setattr(sims_update, "SMALL_CATALOG", 0)
    old = clustered_data(seed=6)
    previous = Sims(sequence_weight=0.5).fit(old)
    catalog = sorted(set(old.item_ids.tolist()))
    few = with_new_events(old, ["n1", "n1", "n1", "n2", "n2"], catalog[:5], ["view"] * 5)
    assert len(set(few.item_index[few.new_events].tolist())) > 0.05 * few.n_items
    assert sims_update.update(Sims(**previous.hyperparameters), previous, few)

    u, i, t, _ = columns(old)
    many = with_new_events(old, u + u, i + i[::-1], t + t)  # every shopper's history again, twice
    assert not sims_update.update(Sims(**previous.hyperparameters), previous, many)
    model = Sims(**previous.hyperparameters).fit(many, previous=previous)  # a refit, blend kept
    assert model.sequence_weight == previous.sequence_weight
    assert (model.similarity != refit(many, previous).similarity).nnz == 0


def test_an_update_keeps_the_norms_a_refit_would_have(tmp_path, monkeypatch):
    # The norms an UPDATE carries on (the previous ones plus what the affected shoppers' rows
    # changed) are the whole matrix's, exactly with whole event weights; they are saved with it.
    previous, data = grown_clusters()
    model = updated(previous, data, monkeypatch)
    expected = refit(data, previous).norms
    np.testing.assert_array_equal(model.norms, expected)
    np.testing.assert_array_equal(Sims.load(model.save(tmp_path / "m.npz")).norms, expected)


def test_a_previous_matrix_with_columns_out_of_range_is_refused(monkeypatch):
    previous, data = grown_clusters()
    damaged = previous.similarity.copy()
    damaged.indices[-1] = damaged.shape[1]  # a column past the last item
    previous.similarity = damaged
    with pytest.raises(ValueError, match="out of range"):
        updated(previous, data, monkeypatch)
