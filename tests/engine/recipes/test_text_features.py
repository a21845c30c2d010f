import numpy as np

from engine.recipes.text_features import categorical_fields, category_values, item_features, tfidf, tokenize


def test_tokens_are_lower_case_words_without_stop_words():
    assert tokenize("The Rugged, WATER-proof backpack for 2 days!") == ["rugged", "water", "proof", "backpack", "days"]


def test_tfidf_rows_are_unit_length_and_identical_texts_are_cosine_one():
    x = tfidf([["red", "shoe"], ["red", "shoe"], ["blue", "hat"], ["blue", "lonely"]])
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
    assert np.allclose(norms, 1.0)
    sims = (x @ x.T).toarray()
    assert np.isclose(sims[0, 1], 1.0) and sims[0, 2] == 0.0
    # "lonely" occurs once and links nothing: it is not in the vocabulary.
    assert x.shape[1] == 3


def test_categorical_fields_leave_out_unique_and_constant_fields():
    props = [
        {"CATEGORY": "shoes", "TITLE": "Boot A", "VISIBLE": "UI", "PRICE": 10.0, "DESCRIPTION": "x"},
        {"CATEGORY": "shoes", "TITLE": "Boot B", "VISIBLE": "UI", "PRICE": 12.0, "DESCRIPTION": "y"},
        {"CATEGORY": "hats", "TITLE": "Hat C", "VISIBLE": "UI", "PRICE": 10.0, "DESCRIPTION": "z"},
        {"CATEGORY": "hats", "TITLE": "Hat D", "VISIBLE": "UI", "PRICE": 11.0, "DESCRIPTION": "w"},
    ]
    assert categorical_fields(props) == ["CATEGORY"]


def test_multi_valued_categories_link_items_sharing_any_value():
    assert category_values("Comedy| Drama |") == ["Comedy", "Drama"]
    x = item_features([{"GENRES": "Comedy|Drama"}, {"GENRES": "Drama"}, {"GENRES": "Horror"}, {"GENRES": "Horror"}])
    sims = (x @ x.T).toarray()
    assert sims[0, 1] > 0 and sims[0, 2] == 0 and np.isclose(sims[2, 3], 1.0 - 0.5)
