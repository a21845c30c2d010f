"""Item metadata as vectors, so items nobody has interacted with yet can still be placed.

Personalize marks fields ``categorical`` or ``textual`` in the Items schema; the training snapshot
carries only the values, so the kind is read off them: short strings (``|`` separates several
values, as in Personalize's categorical fields) are categories, strings of several words are
text. Numbers and timestamps play no part. A cold item then borrows the standing of the warm
items whose metadata it shares most (:func:`neighbour_matrix`).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping

import numpy as np
import scipy.sparse as sp

from engine.records import Item

#: Strings averaging at least this many words are text; shorter ones are categories.
TEXT_MIN_WORDS = 3
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_STOP = frozenset(
    {"a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "has", "have", "in", "is", "it", "its"}
    | {"of", "on", "or", "our", "the", "this", "to", "with", "you", "your"}
)
_SKIP = frozenset({"ITEM_ID", "CREATION_TIMESTAMP"})
_CHUNK = 1024


def field_kinds(items: Mapping[str, Item]) -> dict[str, str]:
    """Field name → "categorical" or "text", for the string fields of the catalog."""
    words: dict[str, list[int]] = {}
    for item in items.values():
        for name, value in item.properties.items():
            if isinstance(value, str) and value and name.upper() not in _SKIP:
                words.setdefault(name, []).append(len(value.split()))
    return {
        name: "text" if np.mean(counts) >= TEXT_MIN_WORDS else "categorical"
        for name, counts in words.items()
        if len(counts) >= max(2, 0.05 * len(items))
    }


def tokens(item: Item, kinds: Mapping[str, str]) -> list[str]:
    out = []
    for name, kind in kinds.items():
        value = item.properties.get(name)
        if not isinstance(value, str):
            continue
        if kind == "categorical":
            out.extend(f"{name}={part.strip().lower()}" for part in value.split("|") if part.strip())
        else:
            out.extend(w for w in _WORD.findall(value.lower()) if w not in _STOP and len(w) > 1)
    return out


def feature_matrix(item_ids: np.ndarray, items: Mapping[str, Item]) -> sp.csr_matrix:
    """TF-IDF rows (L2-normalised), one per item of ``item_ids``; items without metadata are empty."""
    kinds = field_kinds(items)
    docs = [tokens(items[i], kinds) if i in items else [] for i in np.asarray(item_ids).tolist()]
    df = Counter(t for doc in docs for t in set(doc))
    # A token on one item links it to nothing; one on nearly every item says nothing.
    vocab = {t: k for k, t in enumerate(sorted(t for t, c in df.items() if 1 < c <= 0.5 * len(docs)))}
    rows, cols, vals = [], [], []
    n = max(len(docs), 1)
    for row, doc in enumerate(docs):
        for token, count in Counter(doc).items():
            if (col := vocab.get(token)) is not None:
                rows.append(row)
                cols.append(col)
                vals.append((1.0 + np.log(count)) * np.log(n / df[token]))
    matrix = sp.csr_matrix((vals, (rows, cols)), shape=(len(docs), len(vocab)), dtype=np.float32)
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    return sp.diags(1.0 / np.maximum(norms, 1e-12)).astype(np.float32) @ matrix


def neighbour_matrix(
    features: sp.csr_matrix, cold: np.ndarray, warm: np.ndarray, n_items: int, *, neighbours: int
) -> sp.csr_matrix:
    """n_items × n_items, rows only for ``cold`` items: each cold item's most similar warm items
    by metadata, weights summing to 1 (so a cold item's score is a weighted mean of theirs)."""
    if len(cold) == 0 or len(warm) == 0 or features.shape[1] == 0:
        return sp.csr_matrix((n_items, n_items), dtype=np.float32)
    rows, cols, vals = [], [], []
    k = min(neighbours, len(warm))
    warm_features = features[warm].T.tocsc()
    for start in range(0, len(cold), _CHUNK):  # bounded memory on big catalogs
        chunk = cold[start : start + _CHUNK]
        similarity = (features[chunk] @ warm_features).toarray()
        for r, item in enumerate(chunk.tolist()):
            sims = similarity[r]
            top = np.argpartition(-sims, k - 1)[:k]
            top = top[sims[top] > 0]
            if len(top) == 0:
                continue
            rows.extend([item] * len(top))
            cols.extend(warm[top].tolist())
            vals.extend((sims[top] / sims[top].sum()).tolist())
    return sp.csr_matrix((vals, (rows, cols)), shape=(n_items, n_items), dtype=np.float32)
