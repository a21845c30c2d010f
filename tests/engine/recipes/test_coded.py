"""A coded string column answers as the string array it replaces, from its codes."""

import numpy as np

from engine.recipes.base import TrainingData
from engine.recipes.coded import CodedStrings
from engine.recipes.weighting import DEFAULT_EVENT_WEIGHTS, event_weights, string_codes

TYPES = np.array(["view", "Purchase", "view", "add-to-cart", "view", "purchase"])


def test_encoded_column_reads_back_its_strings():
    coded = CodedStrings.encode(TYPES)
    assert coded.codes.dtype == np.int8
    assert coded.tolist() == TYPES.tolist()
    assert list(coded) == TYPES.tolist()
    assert np.asarray(coded).tolist() == TYPES.tolist()
    assert coded[1] == "Purchase" and isinstance(coded[1], str)
    assert coded[np.array([4, 3])].tolist() == ["view", "add-to-cart"]
    assert (coded == "view").tolist() == (TYPES == "view").tolist()
    assert (coded != "view").tolist() == (TYPES != "view").tolist()


def test_mask_compares_in_lower_case_by_default():
    coded = CodedStrings.encode(TYPES)
    assert coded.mask(["PURCHASE"]).tolist() == [False, True, False, False, False, True]
    assert coded.mask(["Purchase"], lower=False).tolist() == [False, True, False, False, False, False]
    assert not coded.mask(["wishlist"]).any()


def test_compact_is_numpys_unique_even_with_unused_names():
    names = np.array(["view", "zzz-unused", "add-to-cart", "purchase"])
    coded = CodedStrings(names, np.array([3, 0, 0, 2, 3]))
    uniq, inverse = np.unique(coded.tolist(), return_inverse=True)
    got_uniq, got_inverse = string_codes(coded)
    assert got_uniq.tolist() == uniq.tolist()
    assert got_inverse.tolist() == inverse.tolist()


def test_minus_one_reads_the_trailing_none_of_an_optional_column():
    sessions = CodedStrings(np.array(["s1", "s2", None], dtype=object), np.array([0, -1, 1, -1]), narrow=False)
    assert sessions.tolist() == ["s1", None, "s2", None]
    assert sessions[1] is None
    assert sessions[np.array([2, 0])].tolist() == ["s2", "s1"]


def test_event_weights_are_the_same_from_codes_and_from_strings():
    values = np.full(len(TYPES), np.nan)
    stamps = np.arange(len(TYPES), dtype=np.float64) * 86400
    plain = event_weights(TYPES, values, stamps, weights=DEFAULT_EVENT_WEIGHTS, half_life_days=2.0)
    coded = event_weights(CodedStrings.encode(TYPES), values, stamps, weights=DEFAULT_EVENT_WEIGHTS, half_life_days=2.0)
    np.testing.assert_array_equal(plain, coded)


def test_training_data_keeps_event_types_as_codes_through_rows():
    data = TrainingData.from_columns(["u1", "u2", "u1"], ["a", "b", "c"], ["view", "purchase", "view"], [1.0, 2.0, 3.0])
    assert isinstance(data.event_types, CodedStrings)
    subset = data.rows(np.array([2, 1]))
    assert isinstance(subset.event_types, CodedStrings)
    assert subset.event_types.tolist() == ["view", "purchase"]
