"""Fit-time selection scoring ALS taste in norm order until the bound stops each user
(engine.recipes.up_selection_pruned): the lists stay the dense definition's."""

import numpy as np
import pytest

from engine.recipes import TrainingData
from engine.recipes import up_selection as selection
from engine.recipes import up_selection_pruned as pruned
from engine.recipes.implicit_backend import float64_gram
from engine.recipes.item_metadata import feature_matrix
from engine.recipes.user_personalization import UserPersonalization, _top
from engine.recipes.validation import holdout, validation_users
from engine.records import Item
from tests.engine.recipes.test_up_batch import shop_data
from tests.engine.recipes.test_up_fit_speed import scorer_for
from tests.engine.recipes.test_up_selection import HP, dense_tops
from tests.engine.recipes.test_user_personalization import device_data

HALF_LIVES = (3.0, None)
MIXES = (0.0, 0.5)


def wide_catalog() -> TrainingData:
    """4,000 items in two categories, Zipf-popular within each (so their factors' norms spread
    as a real catalog's do); more than half of the catalog nobody touched (cold items, placed by
    their category)."""
    rng = np.random.default_rng(7)
    n_users, n_items = 1000, 4000
    users = np.repeat(np.arange(n_users), 20)
    half = n_items // 2
    ranks = np.minimum(rng.zipf(1.1, len(users)) - 1, half - 1)
    items = (users % 2) * half + rng.permutation(half)[ranks]
    kinds = np.where(rng.random(len(users)) < 0.2, "purchase", "view")
    stamps = 1_700_000_000 + np.arange(len(users)) * 60.0
    catalog = {f"i{i}": Item(f"i{i}", {"CATEGORY": "ab"[i // half]}) for i in range(n_items)}
    return TrainingData.from_columns([f"u{u}" for u in users], [f"i{i}" for i in items], kinds, stamps, items=catalog)


@pytest.fixture
def forced(monkeypatch):
    """Pruning on this small catalog, in small chunks; the scored count of every row kept."""
    monkeypatch.setattr(pruned, "MIN_ITEMS", 0)
    monkeypatch.setattr(pruned, "FIRST_CHUNK", 16)
    scored = []
    original = selection.block_taste

    def spy(*args, **kwargs):
        taste = original(*args, **kwargs)
        scored.append(taste.scored.copy())
        return taste

    monkeypatch.setattr(selection, "block_taste", spy)
    return scored


def fitted(hyperparameters: dict) -> tuple[UserPersonalization, list]:
    data = wide_catalog()
    model = UserPersonalization(**HP, **hyperparameters)
    held_out = validation_users(data, share=0.2, max_users=500, seed=42)
    train, cases = holdout(data, held_out)
    model._fit_core(train, "als", features=feature_matrix(train.item_ids, train.items), need_als=True)
    return model, [c for c in cases if model._known(c.history)]


def scored_lists(model, cases, zero_rows=()) -> tuple[selection._Scorer, dict]:
    """Every held-out user's list per (half-life, mix), scored as score_settings scores a block;
    ``zero_rows``: users whose taste is made all zero."""
    seen = [model._seen(c.history)[0] for c in cases]
    scorer = selection._Scorer(model, "als", cases, seen, False, MIXES)
    for h in HALF_LIVES:
        scorer.inputs(h)[list(zero_rows)] = 0.0
    scorer.prepare()
    lists = {}
    for lo, hi in scorer.blocks():
        scorer.block(lo, hi)
        scorer.tastes(HALF_LIVES)
        for h in HALF_LIVES:
            scorer.taste(h)
            for m in MIXES:
                items, valid = scorer.top(m, 0.0)
                for k, r in enumerate(range(lo, hi)):
                    lists[(h, m, r)] = items[k][valid[k]]
    return scorer, lists


def agreement(model, cases, lists) -> tuple[float, float]:
    """The shares of list places, and of listed items, that the dense definition agrees with."""
    same = shared = total = 0
    for h in HALF_LIVES:
        for m in MIXES:
            for r, dense in enumerate(dense_tops(model, cases, "als", h, m, 0.0)):
                fast = lists[(h, m, r)]
                assert len(fast) == len(dense)
                total += len(dense)
                same += int((fast == dense).sum())
                shared += len(set(fast.tolist()) & set(dense.tolist()))
    return same / total, shared / total


@pytest.mark.parametrize("hyperparameters", [{}, {"cold_item_weight": 0.0}, {"cold_item_weight": 1.0}])
def test_pruned_scoring_stops_early_and_ranks_as_the_dense_definition(hyperparameters, forced):
    model, cases = fitted(hyperparameters)
    n = len(model.item_ids)
    cold = np.flatnonzero(model.popularity <= 0)
    assert len(cold) > 100 and model.cold_neighbours.nnz  # cold items, placed by their category
    scorer, lists = scored_lists(model, cases)
    assert scorer._order is not None
    assert scorer.borrow == (hyperparameters.get("cold_item_weight", 0.5) > 0)
    scored = np.concatenate(forced)
    assert len(scored) == len(cases) * len(HALF_LIVES)
    # Most users stop before every item with factors is scored (cold items have none).
    assert np.median(scored) < min(n / 2, np.count_nonzero(model.popularity > 0))
    # float32 taste may swap near-ties; the lists are otherwise the definition's.
    assert agreement(model, cases, lists)[0] >= 0.97


def test_pruned_and_whole_scoring_choose_alike(forced, monkeypatch):
    model, cases = fitted({})
    pruned_results = list(selection.score_settings(model, cases, "als", HALF_LIVES, MIXES))
    assert forced and np.concatenate(forced).min() < len(model.item_ids)
    monkeypatch.setattr(pruned, "MIN_ITEMS", 10**9)
    whole = list(selection.score_settings(model, cases, "als", HALF_LIVES, MIXES))
    for (choice_a, _, ndcg_a), (choice_b, _, ndcg_b) in zip(pruned_results, whole, strict=True):
        assert (choice_a.half_life, choice_a.sequence_weight) == (choice_b.half_life, choice_b.sequence_weight)
        assert abs(ndcg_a - ndcg_b) < 1e-3


def test_rows_the_bound_cannot_stop_are_scored_whole(forced):
    model, cases = fitted({})
    # Every item's factors of one length (cold items keep none): no item with factors is ever
    # below the bound, so every one of them is scored for every user.
    norms = np.linalg.norm(model.item_factors, axis=1, keepdims=True)
    model.item_factors = (model.item_factors / np.where(norms > 0, norms, 1.0)).astype(np.float32)
    model.yty = float64_gram(model.item_factors)
    _, lists = scored_lists(model, cases)
    with_factors = np.count_nonzero(norms)
    assert with_factors > len(model.item_ids) / 3
    assert (np.concatenate(forced) >= with_factors).all()
    # Factors of one length make near-ties common (scoring every item at once agrees as often).
    places, items = agreement(model, cases, lists)
    assert places >= 0.95 and items >= 0.99


def test_users_with_no_taste_get_the_dense_definitions_list(forced):
    model, cases = fitted({"cold_item_weight": 0.0})
    zero_rows = [0, 3, 7]
    _, lists = scored_lists(model, cases, zero_rows)
    n = len(model.item_ids)
    for r in zero_rows:
        case = cases[r]
        for h in HALF_LIVES:
            for m in MIXES:
                scores = model._blend(np.zeros(n), model._sequence_scores(case.history), m)
                scores[model._seen(case.history)[0]] = -np.inf
                scores[(model.popularity <= 0) & (scores <= 0)] = -np.inf
                dense = _top(scores, selection.CALIBRATED_RANKS)
                fast = lists[(h, m, r)]
                # Every score past what "what comes next" reaches ties at 0: any of them will do.
                assert len(fast) == len(dense)
                assert (scores[fast] >= scores[dense[-1]]).all()
                assert set(dense[scores[dense] > scores[dense[-1]]]) <= set(fast)
    assert np.concatenate(forced).max() == n  # a zero taste never lets the bound stop


def test_pruned_blocks_scored_in_threads_give_the_one_thread_results(forced, monkeypatch):
    model, cases = fitted({})
    monkeypatch.setattr(selection, "_BLOCK_ELEMENTS", 7 * len(model.item_ids))

    def scored(threads):
        monkeypatch.setattr(selection, "_THREADS", threads)
        return list(selection.score_settings(model, cases, "als", HALF_LIVES, MIXES))

    one, several = scored(1), scored(4)
    assert len(cases) > 7 * 4
    for (choice_a, calibration_a, ndcg_a), (choice_b, calibration_b, ndcg_b) in zip(one, several, strict=True):
        assert choice_a == choice_b and ndcg_a == ndcg_b
        assert np.array_equal(calibration_a.hit_rates, calibration_b.hit_rates)


@pytest.mark.parametrize(
    "make, hyperparameters",
    [
        (wide_catalog, {}),
        (wide_catalog, {"cold_item_weight": 0.0}),
        (shop_data, {"cold_item_weight": 1.0}),
        (device_data, {}),
    ],
)
def test_pruned_setting_aside_ranks_exactly_as_every_candidate_does(make, hyperparameters, forced):
    """Extras left unscored or set aside by the bound never change a list: every candidate
    (unscored ones scored for it) ranks the same, context weights included."""
    scorer, mixes, weights = scorer_for(make(), **hyperparameters)
    scorer.prepare()
    unscored = compared = 0
    for lo, hi in scorer.blocks():
        scorer.block(lo, hi)
        for h in selection.HALF_LIVES:
            scorer.taste(h)
            unscored += int(scorer.e_unknown.sum())
            for m in mixes:
                for g in weights:
                    items, valid = scorer.top(m, g)
                    full_items, full_valid = scorer._full_rows(np.arange(hi - lo), m, g)
                    assert (valid == full_valid).all()
                    assert (items[valid] == full_items[full_valid]).all()
                    compared += int(valid.sum())
    assert scorer._order is not None and compared > 0
    if make is wide_catalog:
        assert unscored > 0  # the bound really leaves extras unscored here
