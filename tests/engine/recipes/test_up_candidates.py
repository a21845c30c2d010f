"""The opt-in approximate candidate index: exact when every cluster is probed, close to exact
(recall against the exact top list, with a tolerance) when only some are."""

import numpy as np
import pytest

from engine.errors import InvalidInput
from engine.recipes import Query
from engine.recipes.up_candidates import CandidateIndex, CandidateSettings, use_candidate_index
from engine.recipes.user_personalization import UserPersonalization
from engine.records import Interaction
from tests.engine.recipes.contract import clustered_data


def blobs(seed: int = 0, n_blobs: int = 40, per_blob: int = 100, dim: int = 16) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_blobs, dim)) * 3.0
    return (np.repeat(centres, per_blob, axis=0) + rng.standard_normal((n_blobs * per_blob, dim))).astype(np.float32)


def test_settings_come_from_the_campaign_config():
    assert CandidateSettings.from_config(None, 10_000) is None
    assert CandidateSettings.from_config(False, 10_000) is None
    assert CandidateSettings.from_config(True, 10_000) == CandidateSettings(clusters=100, probe=13)
    assert CandidateSettings.from_config({"clusters": 50, "probe": 99}, 10_000) == CandidateSettings(50, 50)
    for bad in ("yes", {"clusters": 0}, {"probe": 1.5}):
        with pytest.raises(InvalidInput):
            CandidateSettings.from_config(bad, 10_000)


def test_probing_every_cluster_is_the_exact_product():
    factors = blobs()
    index = CandidateIndex(factors, CandidateSettings(clusters=40, probe=40))
    v = np.random.default_rng(1).standard_normal(factors.shape[1])
    np.testing.assert_allclose(
        index.scores(v, np.empty(0, np.int64), factors), factors @ v.astype(np.float32), rtol=1e-5
    )


def test_recall_of_the_top_items_against_the_exact_product():
    factors = blobs()
    index = CandidateIndex(factors, CandidateSettings(clusters=64, probe=8))
    rng = np.random.default_rng(2)
    recalls = []
    for _ in range(50):
        v = factors[rng.integers(0, len(factors), 5)].mean(axis=0).astype(np.float64)
        exact = set(np.argsort(-(factors @ v.astype(np.float32)))[:20].tolist())
        approx = index.scores(v, np.empty(0, np.int64), factors)
        recalls.append(len(exact & set(np.argsort(-approx)[:20].tolist())) / 20)
    assert np.mean(recalls) >= 0.9


def test_unreached_items_rank_below_every_reached_and_own_item():
    factors = blobs()
    index = CandidateIndex(factors, CandidateSettings(clusters=40, probe=4))
    v = np.random.default_rng(3).standard_normal(factors.shape[1])
    own = np.array([0, 1500, 3999])
    scores = index.scores(v, own, factors)
    exact = factors @ v.astype(np.float32)
    reached = np.isclose(scores, exact, rtol=1e-6)
    assert reached[own].all() and 0 < reached.sum() < len(factors)
    assert scores[~reached].max() < scores[reached].min()
    assert len(np.unique(scores[~reached])) > 1  # not one value shared by most of the catalog


def test_a_model_answers_as_exactly_when_every_cluster_is_probed_and_closely_when_not():
    model = UserPersonalization(factors=8, iterations=10, sequence_weight=0.0).fit(clustered_data(n_items=80))
    rng = np.random.default_rng(4)
    ids = model.item_ids.tolist()
    shoppers = [
        tuple(Interaction("s", ids[p], "view", 1_700_000_000 + t) for t, p in enumerate(rng.choice(len(ids), 6)))
        for _ in range(30)
    ]

    def lists():
        out = []
        for h in shoppers:
            model.__dict__.pop("_request_memo", None)
            out.append(model.recommend(Query(user_id="s", history=h, num_results=10)).item_ids)
        return out

    exact = lists()
    use_candidate_index(model, CandidateSettings(clusters=8, probe=8))
    assert lists() == exact
    use_candidate_index(model, CandidateSettings(clusters=8, probe=4))
    approx = lists()
    assert all(len(a) == len(e) for a, e in zip(approx, exact, strict=True))
    recall = np.mean([len(set(a) & set(e)) / len(e) for a, e in zip(approx, exact, strict=True)])
    assert recall >= 0.85  # 0.97 when written
    use_candidate_index(model, None)
    assert lists() == exact
