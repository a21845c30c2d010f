"""user-personalization's fit-time selection (engine.recipes.up_selection), and UPDATE training."""

import numpy as np
import pytest

from engine.recipes import Query, TrainingData
from engine.recipes import up_selection as selection
from engine.recipes.item_affinity import ItemAffinity
from engine.recipes.item_metadata import feature_matrix
from engine.recipes.repeats import RankCalibration
from engine.recipes.sims import Sims
from engine.recipes.user_personalization import UserPersonalization, _top
from engine.recipes.validation import holdout, validation_users
from tests.engine.recipes.contract import clustered_data, history
from tests.engine.recipes.test_up_batch import shop_data

HP = {"factors": 8, "iterations": 8}


def dense_tops(probe, cases, family, h, m, g):
    """The definition the fast scorer must reproduce: every user's whole catalog scored as
    ``recommend`` scores it, their own items and unplaceable items left out, top 50."""
    out = []
    for case in cases:
        scores = probe._blend(probe._taste_scores(case.history, h, family), probe._sequence_scores(case.history), m)
        if g and (lift := probe.attributes.context_lift(case.context)) is not None:
            scores[probe.attributes.items] += g * lift
        seen, _ = probe._seen(case.history)
        scores[seen] = -np.inf
        scores[(probe.popularity <= 0) & (scores <= 0)] = -np.inf
        out.append(_top(scores, selection.CALIBRATED_RANKS))
    return out


def wide_data() -> TrainingData:
    """A catalog wide enough (over 1,600 items) that each user's best are found through group maxima."""
    rng = np.random.default_rng(7)
    n_users, n_items = 600, 5000
    users = np.repeat(np.arange(n_users), 20)
    items = (users % 2) * (n_items // 2) + rng.integers(0, n_items // 2, len(users)) ** 2 // (n_items // 2)
    kinds = np.where(rng.random(len(users)) < 0.2, "purchase", "view")
    stamps = 1_700_000_000 + np.arange(len(users)) * 60.0
    return TrainingData.from_columns([f"u{u}" for u in users], [f"i{i}" for i in items], kinds, stamps)


@pytest.mark.parametrize(
    "family, hyperparameters, make",
    [
        ("als", {}, shop_data),
        ("ease", {"ease_regularization": 20.0}, shop_data),
        ("als", {"cold_item_weight": 1.0}, shop_data),
        ("als", {}, wide_data),
    ],
)
def test_the_fast_scorer_ranks_as_the_dense_definition(family, hyperparameters, make, monkeypatch):
    data = make()
    model = UserPersonalization(**HP, **hyperparameters)
    held_out = validation_users(data, share=0.2, max_users=500, seed=42)
    train, cases = holdout(data, held_out)
    features = feature_matrix(train.item_ids, train.items)
    model._fit_core(train, family, features=features, need_als=True)
    cases = [c for c in cases if model._known(c.history)]
    captured = {}
    original = selection._Scorer.top

    def spy(self, mix, context_weight):
        items, valid = original(self, mix, context_weight)
        for k, r in enumerate(range(self.lo, self.hi)):
            captured.setdefault((self.half_life, mix), {})[r] = items[k][valid[k]]
        return items, valid

    original_taste = selection._Scorer.taste

    def taste(self, half_life):
        self.half_life = half_life
        return original_taste(self, half_life)

    monkeypatch.setattr(selection._Scorer, "top", spy)
    monkeypatch.setattr(selection._Scorer, "taste", taste)
    results = list(selection.score_settings(model, cases, family, (3.0, None), (0.0, 0.5)))
    assert len(results) == 4
    same = total = 0
    for (h, m), rows in captured.items():
        for r, dense in enumerate(dense_tops(model, cases, family, h, m, 0.0)):
            fast = rows[r]
            assert len(fast) == len(dense)
            total += len(dense)
            same += int((fast == dense).sum())
    # float32 taste may swap near-ties; the lists are otherwise the definition's.
    assert same >= 0.97 * total


def test_blocks_scored_in_threads_give_the_one_thread_results(monkeypatch):
    data = wide_data()
    model = UserPersonalization(**HP)
    held_out = validation_users(data, share=0.2, max_users=500, seed=42)
    train, cases = holdout(data, held_out)
    model._fit_core(train, "als", features=feature_matrix(train.item_ids, train.items), need_als=True)
    cases = [c for c in cases if model._known(c.history)]
    # Blocks of 7 users: many blocks, shared by the threads in whatever order they take them.
    monkeypatch.setattr(selection, "_BLOCK_ELEMENTS", 7 * len(model.item_ids))

    def scored(threads):
        monkeypatch.setattr(selection, "_THREADS", threads)
        return list(selection.score_settings(model, cases, "als", (3.0, None), (0.0, 0.5)))

    one, several = scored(1), scored(4)
    assert len(cases) > 7 * 4
    for (choice_a, calibration_a, ndcg_a), (choice_b, calibration_b, ndcg_b) in zip(one, several, strict=True):
        assert choice_a == choice_b and ndcg_a == ndcg_b
        assert np.array_equal(calibration_a.hit_rates, calibration_b.hit_rates)


def test_on_large_data_one_fit_is_both_the_probe_and_the_final_model(monkeypatch):
    data = shop_data()
    monkeypatch.setattr(selection, "SHARED_FIT_EVENTS", 0)
    model = UserPersonalization(**HP).fit(data)
    assert model.choice.validation_ndcg is not None
    assert len(model.calibration.hit_rates) == selection.CALIBRATED_RANKS
    assert len(model.item_factors) == len(model.item_ids) == data.n_items
    if model.choice.family == "als":
        assert len(model.ease_items) == 0
    ranked = model.recommend(Query(user_id="x", history=history("a1", "a2", "a3"), num_results=10))
    assert sum(i.startswith("a") for i in ranked.item_ids) >= 8


def test_the_held_out_answers_are_all_that_leaves_the_shared_fit():
    data = shop_data()
    held_out = validation_users(data, share=0.2, max_users=500, seed=42)
    train, cases = selection.holdout_answers(data, held_out)
    _, reference = holdout(data, held_out)
    assert [(c.user_id, c.truth, len(c.history)) for c in cases] == [
        (c.user_id, c.truth, len(c.history)) for c in reference
    ]
    assert train.item_ids is data.item_ids and train.user_ids is data.user_ids
    dropped = len(data) - len(train)
    assert 0 < dropped <= sum(len(c.truth) * 10 for c in cases)
    assert np.isin(held_out, train.user_index).all()  # their oldest 90% still trains the model


def with_newcomers(data: TrainingData) -> TrainingData:
    """1% and more: new shoppers who take to a new item of the a-cluster, after everything else."""
    users = list(data.user_ids[data.user_index])
    items = list(data.item_ids[data.item_index])
    types = list(data.event_types)
    stamps = list(data.timestamps)
    for n in range(6):
        for k, item in enumerate(("a1", "a2", "a-new", "a3", "a-new")):
            users.append(f"newcomer{n}")
            items.append(item)
            types.append("purchase")
            stamps.append(1.8e9 + 100 * n + k)
    return TrainingData.from_columns(users, items, types, stamps)


def test_update_folds_in_new_shoppers_and_items_and_keeps_what_full_chose():
    first = UserPersonalization(**HP).fit(clustered_data())
    more = with_newcomers(clustered_data())
    updated = UserPersonalization(**HP).fit(more, previous=first)
    assert updated.choice == first.choice and updated.repeats is first.repeats
    assert isinstance(updated.calibration, RankCalibration)
    assert "a-new" in updated.item_ids.tolist()
    assert updated.popularity[updated.item_index("a-new")] > 0
    # A shopper like the newcomers is shown the new item; the a-cluster stays the a-cluster.
    ranked = updated.recommend(Query(user_id="newcomer0", history=history("a1", "a2", "a3"), num_results=8))
    assert "a-new" in ranked.item_ids
    assert sum(i.startswith("a") for i in ranked.item_ids) >= 7


def test_sims_update_keeps_the_blend_and_relates_the_new_item():
    first = Sims().fit(clustered_data())
    first.sequence_weight = 0.25  # whatever FULL chose is kept
    updated = Sims().fit(with_newcomers(clustered_data()), previous=first)
    assert updated.sequence_weight == 0.25
    related = updated.recommend(Query(item_id="a-new", num_results=5))
    assert related.item_ids and all(i.startswith("a") for i in related.item_ids)


def test_item_affinity_update_starts_from_the_previous_factors():
    first = ItemAffinity(**HP).fit(clustered_data())
    more = with_newcomers(clustered_data())
    updated = ItemAffinity(**HP).fit(more, previous=first)
    assert "newcomer0" in updated.user_ids.tolist()
    kept = updated.item_index("a1")
    assert np.corrcoef(updated.item_factors[kept], first.item_factors[first.item_index("a1")])[0, 1] > 0.5
    segment = updated.recommend_users(["a-new"], 10)
    assert sum(u.startswith("newcomer") or int(u[1:]) % 2 == 0 for u in segment.item_ids) >= 9


def test_events_by_user_is_worked_out_once_per_data_and_never_stale():
    from engine.recipes import sequences

    data = wide_data()
    first = sequences.events_by_user(data)
    assert sequences.events_by_user(data) is first  # the same arrays: the kept answer
    other = TrainingData.from_columns(["b", "a", "a"], ["x", "y", "x"], ["view"] * 3, [3.0, 1.0, 2.0])
    order, offsets = sequences.events_by_user(other)
    assert order.tolist() == [1, 2, 0] and offsets.tolist() == [0, 2, 3]
    copy = TrainingData(**{**other.__dict__, "user_index": other.user_index.copy()})
    assert sequences.events_by_user(copy)[0] is not order  # other arrays: worked out again
    del data, first, other, order, copy
    assert sequences._LAST_BY_USER == []  # nothing kept once the arrays are gone
