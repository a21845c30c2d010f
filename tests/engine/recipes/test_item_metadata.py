"""The array-built feature and neighbour matrices against the plain one-item-at-a-time versions."""

from collections import Counter

import numpy as np
import pytest
import scipy.sparse as sp

from engine.recipes import item_metadata
from engine.recipes.item_metadata import feature_matrix, field_kinds, neighbour_matrix, tokens
from engine.records import Item

WORDS = "the a of x tent tarp light stove pan pot steel iron camp cook wild trip home cast red blue".split()  # noqa: SIM905


def reference_features(item_ids: np.ndarray, items: dict[str, Item]) -> np.ndarray:
    kinds = field_kinds(items)
    docs = [tokens(items[i], kinds) if i in items else [] for i in item_ids.tolist()]
    df = Counter(t for doc in docs for t in set(doc))
    vocab = sorted(t for t, c in df.items() if 1 < c <= 0.5 * len(docs))
    out = np.zeros((len(docs), len(vocab)))
    for row, doc in enumerate(docs):
        counts = Counter(doc)
        for col, token in enumerate(vocab):
            if counts[token]:
                out[row, col] = (1.0 + np.log(counts[token])) * np.log(max(len(docs), 1) / df[token])
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.maximum(norms, 1e-12)


def reference_neighbours(features: sp.csr_matrix, cold: np.ndarray, warm: np.ndarray, n: int, k: int) -> np.ndarray:
    """Row by row; ties at the k-th place go the way one-row argpartition sends them, the rule
    the recipe has always used."""
    out = np.zeros((n, n))
    k = min(k, len(warm))
    similarity = (features[cold] @ features[warm].T).toarray()
    for item, sims in zip(cold.tolist(), similarity, strict=True):
        top = np.argpartition(-sims, k - 1)[:k]
        top = top[sims[top] > 0]
        if len(top):
            out[item, warm[top]] = sims[top] / sims[top].sum()
    return out


def catalogue(seed: int, n: int) -> tuple[np.ndarray, dict[str, Item]]:
    rng = np.random.default_rng(seed)
    items = {}
    for i in range(n):
        props: dict = {"PRICE": float(rng.random())}
        if rng.random() < 0.8:  # few values: many items share exactly the same metadata
            props["CATEGORY"] = "|".join(f" c{v} " for v in rng.choice(4, size=rng.integers(1, 3), replace=False))
        if rng.random() < 0.5:
            props["BRAND"] = f"B{rng.integers(6)}"
        if rng.random() < 0.6:
            props["DESCRIPTION"] = " ".join(rng.choice(WORDS, size=rng.integers(3, 9))).capitalize() + "."
        if rng.random() < 0.1:
            props = {"PRICE": 1.0}  # no metadata at all
        items[f"i{i}"] = Item(f"i{i}", props)
    ids = np.array([f"i{i}" for i in rng.permutation(n)] + ["unknown-1", "unknown-2"])
    return ids, items


@pytest.mark.parametrize("seed", range(4))
def test_feature_matrix_matches_the_item_by_item_reference(seed):
    ids, items = catalogue(seed, 300)
    assert set(field_kinds(items)) == {"CATEGORY", "BRAND", "DESCRIPTION"}
    features = feature_matrix(ids, items)
    expected = reference_features(ids, items)
    assert features.shape == expected.shape and features.dtype == np.float32
    np.testing.assert_allclose(features.toarray(), expected, rtol=1e-5, atol=1e-6)
    assert features[-2:].nnz == 0  # ids missing from the catalogue stay empty


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("k", [1, 5, 400])
def test_neighbour_matrix_matches_the_row_by_row_reference_ties_included(seed, k, monkeypatch):
    monkeypatch.setattr(item_metadata, "_CHUNK", 7)  # several chunks, the last one short
    ids, items = catalogue(seed, 200)
    features = feature_matrix(ids, items)
    rng = np.random.default_rng(seed)
    cold = np.sort(rng.choice(len(ids), size=40, replace=False))
    warm = np.setdiff1d(np.arange(len(ids)), cold)
    got = neighbour_matrix(features, cold, warm, len(ids), neighbours=k).toarray()
    expected = reference_neighbours(features, cold, warm, len(ids), k)
    assert ((got != 0) == (expected != 0)).all()  # the same neighbours, whichever way ties fell
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    # Ties are common here, so the tie rule above is really exercised.
    sims = (features[cold] @ features[warm].T).toarray()
    assert any(len(np.unique(row[row > 0])) < (row > 0).sum() for row in sims)


def test_edge_cases_give_empty_results():
    assert feature_matrix(np.array([], dtype=str), {}).shape == (0, 0)
    items = {"a": Item("a", {"PRICE": 1}), "b": Item("b", {})}
    assert feature_matrix(np.array(["a", "b", "c"]), items).shape == (3, 0)
    features = sp.csr_matrix(np.array([[1.0, 0], [0, 1.0], [1.0, 0]], dtype=np.float32))
    none = neighbour_matrix(features, np.array([1]), np.array([0, 2]), 3, neighbours=2)  # nothing shared
    assert none.shape == (3, 3) and none.nnz == 0
