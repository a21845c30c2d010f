"""Item metadata features with the space they live in, so an UPDATE can place new items without
reading the whole catalog again.

:func:`feature_space` returns :func:`engine.recipes.item_metadata.feature_matrix`'s matrix and its
columns (field kinds, tokens, idf); :meth:`FeatureSpace.rows` gives any items rows in those
columns. The space is learned at FULL training and kept on the model; an UPDATE reuses it (the next
FULL training learns it again).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from engine.recipes.catalog import all_entries
from engine.recipes.item_metadata import l2_rows, tfidf_columns, tokens
from engine.records import Item

#: Items' feature rows, or a function giving them: FULL training works them out in a thread while it
#: does other work, and waits for them where they are first needed.
Features = sp.csr_matrix | Callable[[], sp.csr_matrix]


def resolved(features: Features) -> sp.csr_matrix:
    return features() if callable(features) else features


@dataclass(frozen=True)
class FeatureSpace:
    """The columns of a :func:`feature_space` matrix (field kinds, tokens, idf), so an UPDATE can
    give new items rows in the same space without reading the whole catalog again."""

    kinds: dict[str, str]
    names: np.ndarray  # str per column
    idf: np.ndarray  # float64 per column

    def rows(self, item_ids: np.ndarray, items: Mapping[str, Item]) -> sp.csr_matrix:
        """TF-IDF rows (L2-normalised) of these items in this space; tokens it lacks are left out."""
        column = {name: c for c, name in enumerate(self.names.tolist())}
        rows: list[int] = []
        cols: list[int] = []
        for row, item_id in enumerate(np.asarray(item_ids).tolist()):
            if (item := items.get(item_id)) is not None:
                known = [c for t in tokens(item, self.kinds) if (c := column.get(t)) is not None]
                rows.extend([row] * len(known))
                cols.extend(known)
        n_tokens = max(len(self.names), 1)
        pairs, tf = np.unique(
            np.asarray(rows, dtype=np.int64) * n_tokens + np.asarray(cols, dtype=np.int64), return_counts=True
        )
        r, c = pairs // n_tokens, pairs % n_tokens
        matrix = sp.csr_matrix(
            ((1.0 + np.log(tf)) * self.idf[c], (r, c)), shape=(len(item_ids), len(self.names)), dtype=np.float32
        )
        return l2_rows(matrix)


def feature_space(item_ids: np.ndarray, items: Mapping[str, Item]) -> tuple[sp.csr_matrix, FeatureSpace]:
    """:func:`feature_matrix`'s matrix, with the space its columns live in, for :meth:`FeatureSpace.rows`."""
    matrix, kinds, names, idf = tfidf_columns(item_ids, all_entries(items))
    return matrix, FeatureSpace(dict(kinds), np.array(names, dtype=str), idf)
