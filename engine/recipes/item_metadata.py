"""Item metadata as vectors, so items nobody has interacted with yet can still be placed.

Personalize marks fields ``categorical`` or ``textual`` in the Items schema; the training snapshot
carries only the values, so the kind is read off them: short strings (``|`` separates several
values, as in Personalize's categorical fields) are categories, strings of several words are
text. Numbers and timestamps play no part. A cold item then borrows the standing of the warm
items whose metadata it shares most (:func:`neighbour_matrix`).
"""

from __future__ import annotations

import re
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
    n_words: dict[str, int] = {}  # per distinct value: catalogs repeat theirs
    for item in items.values():
        for name, value in item.properties.items():
            if isinstance(value, str) and value and name.upper() not in _SKIP:
                if (count := n_words.get(value)) is None:
                    count = n_words[value] = len(value.split())
                words.setdefault(name, []).append(count)
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
    return tfidf_columns(item_ids, items)[0]


def tfidf_columns(
    item_ids: np.ndarray, items: Mapping[str, Item]
) -> tuple[sp.csr_matrix, dict[str, str], list[str], np.ndarray]:
    """:func:`feature_matrix`'s matrix with what defines its columns: the field kinds, each
    column's token and its idf (engine.recipes.feature_space keeps them to place new items).

    Built from flat arrays rather than a Counter per item: at 100,000 items the per-item Python
    work was a visible share of a FULL training. The result is the same as counting
    :func:`tokens` item by item."""
    kinds = field_kinds(items)
    n_docs = len(item_ids)
    rows, token_ids, names = _token_occurrences(np.asarray(item_ids).tolist(), items, kinds)
    n_tokens = max(len(names), 1)
    # One entry per (item, token): its count is the term frequency, its column count the df.
    pairs, tf = np.unique(rows * n_tokens + token_ids, return_counts=True)
    rows, token_ids = pairs // n_tokens, pairs % n_tokens
    df = np.bincount(token_ids, minlength=len(names))
    # A token on one item links it to nothing; one on nearly every item says nothing.
    kept = np.flatnonzero((df > 1) & (df <= 0.5 * n_docs)).tolist()
    kept.sort(key=names.__getitem__)
    column = np.full(len(names), -1, dtype=np.int64)
    column[kept] = np.arange(len(kept))
    use = column[token_ids] >= 0
    rows, token_ids, tf = rows[use], token_ids[use], tf[use]
    vals = (1.0 + np.log(tf)) * np.log(max(n_docs, 1) / df[token_ids])
    matrix = sp.csr_matrix((vals, (rows, column[token_ids])), shape=(n_docs, len(kept)), dtype=np.float32)
    idf = np.log(max(n_docs, 1) / df[kept]) if kept else np.empty(0)
    return l2_rows(matrix), kinds, [names[k] for k in kept], idf.astype(np.float64)


def l2_rows(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """Each row scaled to unit length (empty rows stay empty)."""
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    return sp.diags(1.0 / np.maximum(norms, 1e-12)).astype(np.float32) @ matrix


def _token_occurrences(
    item_ids: list[str], items: Mapping[str, Item], kinds: Mapping[str, str]
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Every token occurrence as (row, token id), with the tokens by id: what :func:`tokens`
    yields for each item, but with stop words and one-letter words dropped once per distinct
    word instead of once per occurrence."""
    present = [(row, items[i].properties) for row, i in enumerate(item_ids) if i in items]
    index: dict[str, int] = {}
    # Catalogs repeat their values (a category on thousands of items): each distinct value of a
    # field is split into tokens once, token ids given in first-occurrence order as before.
    value_tokens: list[list[int]] = []
    occurrence_value: list[int] = []
    owners: list[int] = []
    for name, kind in kinds.items():
        seen_values: dict[str, int] = {}
        for row, properties in present:
            value = properties.get(name)
            if not isinstance(value, str):
                continue
            at = seen_values.get(value)
            if at is None:
                if kind == "categorical":
                    doc = [f"{name}={part.strip().lower()}" for part in value.split("|") if part.strip()]
                else:
                    doc = _WORD.findall(value.lower())
                at = seen_values[value] = len(value_tokens)
                value_tokens.append([index.setdefault(t, len(index)) for t in doc])
            occurrence_value.append(at)
            owners.append(row)
    lengths = np.asarray([len(doc) for doc in value_tokens], dtype=np.int64)
    flat = np.fromiter((t for doc in value_tokens for t in doc), dtype=np.int64, count=int(lengths.sum()))
    starts = np.cumsum(lengths) - lengths
    occurrence = np.asarray(occurrence_value, dtype=np.int64)
    per_occurrence = lengths[occurrence]
    offsets = np.arange(per_occurrence.sum()) - np.repeat(np.cumsum(per_occurrence) - per_occurrence, per_occurrence)
    token_ids = flat[np.repeat(starts[occurrence], per_occurrence) + offsets]
    rows = np.repeat(np.asarray(owners, dtype=np.int64), per_occurrence)
    names = list(index)
    # Category tokens carry "=", which no text word can; only text words are filtered.
    dropped = np.array([("=" not in t) and (t in _STOP or len(t) < 2) for t in names], dtype=bool)
    keep = ~dropped[token_ids]
    return rows[keep], token_ids[keep], names


def neighbour_matrix(
    features: sp.csr_matrix, cold: np.ndarray, warm: np.ndarray, n_items: int, *, neighbours: int
) -> sp.csr_matrix:
    """n_items × n_items, rows only for ``cold`` items: each cold item's most similar warm items
    by metadata, weights summing to 1 (so a cold item's score is a weighted mean of theirs).

    Worked out once per distinct metadata row (cold items with the same metadata, common where a
    catalog is described by categories alone, get the same row), sparsely: a row's best k are
    read off its non-zero similarities. Only where similarities tie across the k-th place does
    the choice depend on the rule ties always followed (one argpartition over the whole dense
    row), and only such rows are laid out densely (:func:`_dense_top`).
    """
    if len(cold) == 0 or len(warm) == 0 or features.shape[1] == 0:
        return sp.csr_matrix((n_items, n_items), dtype=np.float32)
    k = min(neighbours, len(warm))
    cold_features = features[np.asarray(cold)].tocsr()
    distinct, owner = _distinct_rows(cold_features)
    warm_features = features[warm].T.tocsr()
    rows_of: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    for start in range(0, len(distinct), _CHUNK):  # bounded memory on big catalogs
        chunk = distinct[start : start + _CHUNK]
        similarity = (cold_features[chunk] @ warm_features).tocsr()
        for r in range(len(chunk)):
            lo, hi = similarity.indptr[r], similarity.indptr[r + 1]
            columns, sims = similarity.indices[lo:hi], similarity.data[lo:hi]
            top = _sparse_top(columns, sims, k)
            if top is None:
                top = _dense_top(columns, sims, len(warm), k)
            chosen = _sims_of(columns, sims, top)
            keep = chosen > 0
            if not keep.any():
                continue
            # Summed in the order chosen (a dense row's: its argpartition order, as before).
            total = np.where(keep, chosen, 0.0).sum(dtype=np.float32)
            rows_of.append(np.full(int(keep.sum()), start + r))
            cols.append(top[keep])
            vals.append(chosen[keep] / total)
    if not rows_of:
        return sp.csr_matrix((n_items, n_items), dtype=np.float32)
    # Each distinct row's neighbours, copied to every cold item that has it.
    row_of, column, weight = np.concatenate(rows_of), np.concatenate(cols), np.concatenate(vals)
    starts = np.searchsorted(row_of, np.arange(len(distinct) + 1))
    lengths = np.diff(starts)[owner]
    offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    take = np.repeat(starts[owner], lengths) + offsets
    rows = np.repeat(np.asarray(cold), lengths)
    return sp.csr_matrix(
        (weight[take], (rows, np.asarray(warm)[column[take]])), shape=(n_items, n_items), dtype=np.float32
    )


def _distinct_rows(matrix: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """The first row of each distinct row of ``matrix`` (same columns, same values, same order),
    and for every row the position of its distinct row among them."""
    first: dict[bytes, int] = {}
    owner = np.empty(matrix.shape[0], dtype=np.int64)
    distinct: list[int] = []
    for r in range(matrix.shape[0]):
        lo, hi = matrix.indptr[r], matrix.indptr[r + 1]
        key = matrix.indices[lo:hi].tobytes() + b"|" + matrix.data[lo:hi].tobytes()
        at = first.get(key)
        if at is None:
            at = first[key] = len(distinct)
            distinct.append(r)
        owner[r] = at
    return np.asarray(distinct, dtype=np.int64), owner


def _sims_of(columns: np.ndarray, sims: np.ndarray, top: np.ndarray) -> np.ndarray:
    """The similarity of each chosen warm position (0 where the row has none stored)."""
    order = np.argsort(columns, kind="stable")
    at = np.minimum(np.searchsorted(columns[order], top), max(len(columns) - 1, 0))
    found = columns[order][at] == top if len(columns) else np.zeros(len(top), dtype=bool)
    return np.where(found, sims[order][at] if len(columns) else 0.0, 0.0).astype(np.float32)


def _sparse_top(columns: np.ndarray, sims: np.ndarray, k: int) -> np.ndarray | None:
    """The warm positions of a row's best k positive similarities when no tie crosses the k-th
    place (then the set is the same whichever way ties fall); None when one does."""
    positive = sims > 0
    if positive.sum() <= k:
        return columns[positive]
    kth = np.partition(sims, len(sims) - k)[len(sims) - k]
    above = sims >= kth
    if above.sum() > k:
        return None
    return columns[above]


def _dense_top(columns: np.ndarray, sims: np.ndarray, n_warm: int, k: int) -> np.ndarray:
    """The best k of the dense row, ties falling as one argpartition over it sends them."""
    row = np.zeros(n_warm, dtype=sims.dtype)
    row[columns] = sims
    return np.argpartition(-row, k - 1)[:k]
