"""The metric definitions, checked on the developer guide's own worked examples."""

import pytest

from engine.evaluation.metrics import (
    RANKING_METRICS,
    RankingAccumulator,
    average,
    ndcg_at,
    precision_at,
    reciprocal_rank,
    segment_metrics,
)


def test_mean_reciprocal_rank_is_the_guides_example():
    requests = [(["x", "x", "x", "hit"], {"hit"}), (["x", "hit"], {"hit"}), (["x"] * 5 + ["hit"], {"hit"})]
    mean = sum(reciprocal_rank(ranked, truth) for ranked, truth in requests) / 3
    assert mean == pytest.approx(0.3056, abs=1e-4)


def test_reciprocal_rank_counts_only_the_top_25():
    assert reciprocal_rank(["x"] * 25 + ["hit"], {"hit"}) == 0.0
    assert reciprocal_rank(["x"] * 24 + ["hit"], {"hit"}) == pytest.approx(1 / 25)


def test_ndcg_is_the_guides_example_and_one_for_a_perfect_list():
    ranked = ["x", "a", "y", "z", "b"]
    assert ndcg_at(ranked, {"a", "b"}, 5) == pytest.approx(0.6241, abs=1e-4)
    assert ndcg_at(["a", "b", "x"], {"a", "b"}, 5) == pytest.approx(1.0)
    assert ndcg_at(["x", "y"], {"a"}, 5) == 0.0


def test_precision_divides_by_k_even_when_the_list_is_shorter():
    assert precision_at(["a", "x", "b", "c"] + ["y"] * 6, {"a", "b", "c"}, 10) == pytest.approx(0.3)
    assert precision_at(["a"], {"a"}, 5) == pytest.approx(0.2)


def test_coverage_is_the_share_of_the_catalog_ever_recommended():
    acc = RankingAccumulator(catalog_size=10)
    acc.add(["a", "b"], {"a"})
    acc.add(["b", "c"], {"z"})
    result = acc.result()
    assert list(result) == list(RANKING_METRICS)
    assert result["coverage"] == pytest.approx(0.3)
    assert result["precision_at_5"] == pytest.approx((1 / 5 + 0) / 2)


def test_segment_hits_count_real_users_in_the_top_k_and_recall_is_their_share():
    result = segment_metrics([["u1", "u2"], ["u3", "u4"]], [{"u1", "u9"}, {"u8"}], n_users=10, k=2)
    assert result == {"coverage": pytest.approx(0.4), "hits_at_1_percent": 0.5, "recall_at_1_percent": 0.25}


def test_folds_are_averaged_with_equal_weight():
    assert average([{"m": 0.2}, {"m": 0.4}]) == {"m": pytest.approx(0.3)}
