"""The faster FULL-training parts of user-personalization, held to what they replace: the scorer
that sets extras aside, neighbours per distinct metadata row, event-type codes, the repeat
model's guarded Newton steps and attribute popularity's lazily computed weights."""

import numpy as np
import pytest
import scipy.sparse as sp

from engine.recipes import up_selection as selection
from engine.recipes.attribute_popularity import AttributePopularity
from engine.recipes.item_metadata import feature_matrix, neighbour_matrix
from engine.recipes.repeats import RepeatModel, _logistic, _sigmoid
from engine.recipes.user_personalization import UserPersonalization
from engine.recipes.validation import holdout, validation_users
from engine.recipes.weighting import string_codes
from engine.records import Item
from tests.engine.recipes.test_up_batch import shop_data
from tests.engine.recipes.test_up_selection import wide_data
from tests.engine.recipes.test_user_personalization import device_data

HP = {"factors": 8, "iterations": 8}


def scorer_for(data, **hyperparameters):
    model = UserPersonalization(**HP, **hyperparameters)
    held_out = validation_users(data, share=0.2, max_users=500, seed=42)
    train, cases = holdout(data, held_out)
    model._fit_core(train, "als", features=feature_matrix(train.item_ids, train.items), need_als=True)
    model.repeats = RepeatModel.fit(train, seed=42)
    model.attributes = AttributePopularity().fit(train, lambda: model._weights(train))
    cases = [c for c in cases if model._known(c.history)]
    has_context = model.attributes.has_context and any(c.context for c in cases)
    weights = selection.CONTEXT_WEIGHTS if has_context else (0.0,)
    seen = [model._seen(c.history)[0] for c in cases]
    mixes = selection.SEQUENCE_WEIGHTS
    return selection._Scorer(model, "als", cases, seen, has_context, mixes, weights), mixes, weights


@pytest.mark.parametrize(
    "make, hyperparameters",
    [
        (wide_data, {}),
        (shop_data, {"cold_item_weight": 1.0}),
        (shop_data, {"cold_item_weight": 0.0}),
        (device_data, {}),
    ],
)
def test_setting_extras_aside_ranks_exactly_as_every_candidate_does(make, hyperparameters):
    scorer, mixes, weights = scorer_for(make(), **hyperparameters)
    set_aside = compared = 0
    for lo, hi in scorer.blocks():
        scorer.block(lo, hi)
        for h in selection.HALF_LIVES:
            scorer.taste(h)
            set_aside += len(scorer.e_rows) - len(scorer.kept)
            for m in mixes:
                for g in weights:
                    items, valid = scorer.top(m, g)
                    full_items, full_valid = scorer._full_rows(np.arange(hi - lo), m, g)
                    assert items.shape == full_items.shape
                    assert (valid == full_valid).all()
                    assert (items[valid] == full_items[full_valid]).all()
                    compared += int(valid.sum())
    assert compared > 0
    if make is wide_data:
        assert set_aside > 0  # the bound really leaves candidates out here


def old_neighbour_matrix(features, cold, warm, n_items, k):
    """The dense definition this replaces, bit for bit (one argpartition per dense row)."""
    k = min(k, len(warm))
    similarity = (features[cold] @ features[warm].T.tocsc()).toarray()
    out = np.zeros((n_items, n_items), dtype=np.float32)
    for item, row in zip(cold.tolist(), similarity, strict=True):
        top = np.argpartition(-row, k - 1)[:k]
        sims = row[top]
        keep = sims > 0
        if keep.any():
            out[item, warm[top[keep]]] = sims[keep] / np.where(keep, sims, 0.0).sum(dtype=np.float32)
    return out


@pytest.mark.parametrize("k", [3, 20])
def test_cold_items_with_the_same_metadata_share_one_row_and_ties_fall_as_before(k):
    """Category-only catalogs: every similarity ties, and many cold items have the same row."""
    n = 400
    items = {f"i{i}": Item(f"i{i}", {"CATEGORY_L1": f"c{i % 7}", "BRAND": f"b{i % 3}"}) for i in range(n)}
    ids = np.array(sorted(items))
    features = feature_matrix(ids, items)
    cold = np.arange(0, n, 5)
    warm = np.setdiff1d(np.arange(n), cold)
    got = neighbour_matrix(features, cold, warm, n, neighbours=k).toarray()
    assert np.array_equal(got, old_neighbour_matrix(features, cold, warm, n, k))
    assert np.allclose(got[cold].sum(axis=1), 1.0, atol=1e-6)


def test_string_codes_are_what_unique_gives():
    rng = np.random.default_rng(0)
    for values in (
        np.array([], dtype=str),
        np.array(["view"]),
        np.array(["view", "Purchase", "view", "", "purchase"]),
        rng.choice(["view", "purchase", "add-to-cart"], 5000),
        np.array([f"t{i}" for i in rng.integers(0, 40, 1000)]),  # more than a few: sorted instead
    ):
        uniq, inverse = np.unique(values, return_inverse=True)
        got_uniq, got_inverse = string_codes(values)
        assert np.array_equal(got_uniq, uniq) and np.array_equal(got_inverse, inverse)


def test_the_repeat_model_reaches_the_optimum_of_its_penalised_loss():
    rng = np.random.default_rng(3)
    n = 20_000
    x = np.column_stack([np.ones(n), np.log1p(rng.integers(0, 50, n)), rng.random(n) < 0.05, rng.random(n) * 3])
    y = (rng.random(n) < _sigmoid(-6 + 0.8 * x[:, 3])).astype(float)
    coef = _logistic(x, y)
    penalty = np.array([0.0, 1.0, 1.0, 1.0])
    gradient = x.T @ (_sigmoid(x @ coef) - y) + penalty * coef
    assert np.abs(gradient).max() < 1e-4 and np.abs(coef).max() < 20


def test_attribute_popularity_weighs_events_only_when_it_has_values_to_learn():
    calls = []

    def weights(data):
        def compute():
            calls.append(1)
            return np.ones(len(data))

        return compute

    plain = shop_data()
    assert len(AttributePopularity().fit(plain, weights(plain)).keys) == 0 and not calls
    with_context = device_data()
    lazy = AttributePopularity().fit(with_context, weights(with_context))
    eager = AttributePopularity().fit(with_context, np.ones(len(with_context)))
    assert calls == [1] and np.array_equal(lazy.log_lift, eager.log_lift) and len(lazy.keys)


def test_neighbour_matrix_of_nothing_shared_is_empty():
    features = sp.csr_matrix(np.array([[1.0, 0], [0, 1.0], [0, 1.0]], dtype=np.float32))
    none = neighbour_matrix(features, np.array([0]), np.array([1, 2]), 3, neighbours=2)
    assert none.shape == (3, 3) and none.nnz == 0
