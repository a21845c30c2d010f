"""The baselines are the textbook models, answering the protocol's questions."""

import numpy as np
import pytest
import scipy.sparse as sp

from engine.evaluation.baselines import EASE, ItemKNN, PlainALS
from engine.recipes import Query
from tests.engine.recipes.contract import clustered_data, history


@pytest.fixture(scope="module")
def data():
    return clustered_data()


@pytest.mark.parametrize("cls", [PlainALS, ItemKNN, EASE])
def test_each_baseline_answers_users_and_items_and_leaves_out_what_it_is_told(cls, data):
    model = cls().fit(data)
    seen = history("a1", "a2", "a3")
    assert model.default_exclusions(seen) == {"a1", "a2", "a3"}
    ranked = model.recommend(Query(user_id="x", history=seen, num_results=10, exclude=frozenset({"a1", "a2", "a3"})))
    assert len(ranked) == 10 and not {"a1", "a2", "a3"} & set(ranked.item_ids)
    assert sum(i.startswith("a") for i in ranked.item_ids) >= 8
    related = model.recommend(Query(item_id="b1", num_results=5, exclude=frozenset({"b1"})))
    assert len(related) == 5 and "b1" not in related.item_ids
    assert len(model.recommend(Query(user_id="stranger", num_results=4))) == 4  # popular items


def test_plain_als_folds_users_in_with_implicits_own_user_step(data):
    model = PlainALS().fit(data)
    row = model._row(history("a1", "a2", "a2"))
    expected = model.model.recommend(0, row, N=5, recalculate_user=True, filter_already_liked_items=True)[0]
    ranked = model.recommend(
        Query(user_id="x", history=history("a1", "a2", "a2"), num_results=5, exclude=frozenset({"a1", "a2"}))
    )
    assert list(ranked.item_ids) == model.item_ids[expected].tolist()


def test_ease_is_the_closed_form_solution(data):
    model = EASE(regularization=10.0).fit(data)
    x = sp.coo_matrix((np.ones(len(data)), (data.user_index, data.item_index))).tocsr()
    x.data[:] = 1.0
    g = (x.T @ x).toarray() + 10.0 * np.eye(data.n_items)
    p = np.linalg.inv(g)
    expected = -p / np.diag(p)
    np.fill_diagonal(expected, 0.0)
    assert np.allclose(model.weights, expected[np.ix_(model.active, model.active)], atol=1e-5)
