"""Item metadata as sparse feature vectors: TF-IDF over text, one-hot (IDF-weighted) categories.

Small and dependency-free on purpose (numpy + scipy.sparse): recipes need only cosine similarity
between catalogue items, which a few dozen lines of TF-IDF give exactly, so pulling in
scikit-learn for it is not worth an install. Rows are L2-normalised, so ``X @ X.T`` is cosine.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)

#: Words too common in shop copy to say anything about similarity. IDF discounts them anyway;
#: dropping them keeps the vocabulary (and the artifact) small.
STOP_WORDS = frozenset(
    """a an and are as at be but by for from has have in into is it its of on or our that the their
    this to with your you yours will can all any more most other some such than too very just also""".split()  # noqa: SIM905
)

#: Personalize separates the values of a multi-valued categorical field with '|'.
MULTI_VALUE_SEPARATOR = "|"


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens of two characters or more, without stop words."""
    return [t for t in _TOKEN.findall(text.casefold()) if len(t) > 1 and t not in STOP_WORDS]


def is_textual_field(name: str) -> bool:
    """Personalize allows textual metadata in fields like PRODUCT_DESCRIPTION or DESCRIPTION; the
    importer marks any field ending in DESCRIPTION textual by default, and so do recipes."""
    return name.upper().endswith("DESCRIPTION")


def category_values(value: Any) -> list[str]:
    """The values of a categorical cell: '|'-separated strings, stripped; numbers are not categories."""
    if value is None or isinstance(value, bool | int | float):
        return []
    if isinstance(value, list | tuple):
        return [str(v).strip() for v in value if str(v).strip()]
    return [v.strip() for v in str(value).split(MULTI_VALUE_SEPARATOR) if v.strip()]


def categorical_fields(properties: Sequence[Mapping[str, Any]]) -> list[str]:
    """Fields that look categorical when no schema says so: string values, not textual, some value
    shared by two items or more (a field unique per item, like an image name, links nothing), and
    not one value for everybody (a constant flag would make every item look alike)."""
    values: dict[str, list[str]] = {}
    for props in properties:
        for name, value in props.items():
            if is_textual_field(name) or isinstance(value, bool | int | float) or value is None:
                continue
            values.setdefault(name.upper(), []).extend(category_values(value))
    chosen = []
    for name, vals in values.items():
        distinct = len(set(vals))
        if 2 <= distinct < len(vals):
            chosen.append(name)
    return sorted(chosen)


def tfidf(documents: Sequence[Iterable[str]], *, max_vocabulary: int = 20_000, sublinear: bool = True) -> sp.csr_matrix:
    """Rows = documents (token lists), L2-normalised TF-IDF; the ``max_vocabulary`` terms that
    occur in the most documents are kept. A document without tokens is an all-zero row."""
    counts = [Counter(doc) for doc in documents]
    df: Counter[str] = Counter()
    for c in counts:
        df.update(c.keys())
    # Terms in a single document link no two items; keep the rest, most widespread first.
    ranked = sorted((t for t, n in df.items() if n >= 2), key=lambda t: (-df[t], t))[:max_vocabulary]
    vocabulary = {t: j for j, t in enumerate(ranked)}
    n_docs = len(counts)
    indptr, indices, data = [0], [], []
    for c in counts:
        for term, n in c.items():
            j = vocabulary.get(term)
            if j is not None:
                indices.append(j)
                data.append(1.0 + np.log(n) if sublinear else float(n))
        indptr.append(len(indices))
    matrix = sp.csr_matrix(
        (np.asarray(data, dtype=np.float64), np.asarray(indices, dtype=np.int64), np.asarray(indptr, dtype=np.int64)),
        shape=(n_docs, len(vocabulary)),
    )
    idf = np.log((1.0 + n_docs) / (1.0 + np.array([df[t] for t in ranked], dtype=np.float64))) + 1.0
    return normalize_rows(matrix @ sp.diags(idf))


def normalize_rows(matrix: sp.spmatrix) -> sp.csr_matrix:
    matrix = sp.csr_matrix(matrix, dtype=np.float64)
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    return sp.csr_matrix(sp.diags(scale) @ matrix)


def item_features(
    properties: Sequence[Mapping[str, Any]],
    *,
    text_fields: Sequence[str] = (),
    category_fields: Sequence[str] = (),
    text_weight: float = 0.5,
    max_vocabulary: int = 20_000,
) -> sp.csr_matrix:
    """One row per item: text TF-IDF and category one-hots side by side, each block L2-normalised
    and scaled by the square root of its weight, so a dot product of two rows is
    ``text_weight * text cosine + (1 - text_weight) * category cosine``.

    Empty ``text_fields`` means every field ending in DESCRIPTION; empty ``category_fields`` means
    :func:`categorical_fields` decides.
    """
    upper = [{k.upper(): v for k, v in p.items()} for p in properties]
    texts = [u.upper() for u in text_fields] or sorted({k for p in upper for k in p if is_textual_field(k)})
    cats = [c.upper() for c in category_fields] or categorical_fields(upper)
    documents = [[t for f in texts for t in tokenize(str(p.get(f) or ""))] for p in upper]
    # A category token names its field too: "CATEGORY_L1=shoes" and "STYLE=shoes" differ.
    categories = [[f"{f}={v.casefold()}" for f in cats for v in category_values(p.get(f))] for p in upper]
    blocks = [
        np.sqrt(text_weight) * tfidf(documents, max_vocabulary=max_vocabulary),
        np.sqrt(1.0 - text_weight) * tfidf(categories, max_vocabulary=max_vocabulary, sublinear=False),
    ]
    return sp.hstack(blocks, format="csr")


def top_neighbours(
    features: sp.csr_matrix,
    neighbours: int,
    *,
    block: int = 1024,
    prior: np.ndarray | None = None,
    rows: np.ndarray | None = None,
) -> sp.csr_matrix:
    """Cosine similarity of every row to every other (rows L2-normalised), keeping each row's
    ``neighbours`` best positive entries; the diagonal is dropped. Computed a block of rows at a
    time so memory stays at ``block × n`` floats.

    ``prior`` (one positive factor per column) multiplies the similarities before the best are
    kept: many items share exactly the same categories, and without it the tie among them would
    be broken by catalogue order rather than by, say, which of them people actually want.
    ``rows``: compute only these rows (the rest stay empty), when only a few items are asked about."""
    n = features.shape[0]
    features = sp.csr_matrix(features, dtype=np.float32)
    transposed = features.T.tocsc()
    wanted = np.arange(n) if rows is None else np.unique(np.asarray(rows, dtype=np.int64))
    factor = None if prior is None else np.asarray(prior, dtype=np.float32)[None, :]
    out_rows, cols, vals = [], [], []
    k = max(0, min(neighbours, n - 1))
    for start in range(0, len(wanted) if k else 0, block):
        chunk = wanted[start : start + block]
        sims = (features[chunk] @ transposed).toarray()
        sims[np.arange(len(chunk)), chunk] = 0.0
        if factor is not None:
            sims *= factor
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        values = np.take_along_axis(sims, top, axis=1)
        keep = values > 0
        out_rows.append(chunk[np.nonzero(keep)[0]])
        cols.append(top[keep])
        vals.append(values[keep])
    if not out_rows:
        return sp.csr_matrix((n, n), dtype=np.float32)
    return sp.csr_matrix(
        (np.concatenate(vals).astype(np.float32), (np.concatenate(out_rows), np.concatenate(cols))), shape=(n, n)
    )
