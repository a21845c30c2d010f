"""similar-items: related items from interactions *and* item metadata, so new items have neighbours.

Two item-item similarities, each scaled so an item's closest neighbour scores 1, are blended per
item:

* co-occurrence: shrunk cosine over who touched what (:mod:`engine.recipes.cooccurrence`), each
  shopper counting once per item, so pairs seen together by one or two shoppers do not outrank
  pairs many shoppers share;
* metadata: TF-IDF of the description plus the categorical fields; among items equally alike by
  metadata (many share exactly the same categories) the ones more people touched come first.

How much an item leans on metadata depends on how much interaction evidence it has: an item with
``n`` interactions takes ``c / (c + n)`` of its neighbours' weight from metadata (plus a fixed
floor, ``metadata_weight``), so an item nobody has touched yet is placed by metadata alone, an
item with ``c`` interactions half and half, and a well-known item by co-occurrence. ``c`` is chosen
at fit time by what best predicts, for held-out shoppers, what they touched after their latest
item (unless it is given). An unknown item, or one with no neighbour at all, gets popular items,
as Personalize does; those fill-ins carry no similarity score (NaN).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Self

import numpy as np
import scipy.sparse as sp
from marshmallow import Schema, fields, validate

from engine.recipes.base import Query, Ranked, Recipe, TrainingData
from engine.recipes.catalog import all_entries
from engine.recipes.cooccurrence import shrunk_cosine, top_per_row
from engine.recipes.search_space import FloatRange, IntRange
from engine.recipes.text_features import item_features, top_neighbours
from engine.recipes.validation import holdout, ndcg_at_10, validation_users
from engine.recipes.weighting import DEFAULT_EVENT_WEIGHTS, event_weights, user_item_matrix

#: Candidates for ``cold_item_interactions`` when it is chosen on held-out shoppers.
EVIDENCE_CHOICES = (0, 2, 5, 15, 50)
#: Used when too few shoppers can be held out to choose (Personalize calls an item with fewer
#: than 5 interactions cold).
DEFAULT_EVIDENCE = 5
MIN_VALIDATION_USERS = 10
MAX_VALIDATION_USERS = 500


class SimilarItemsHyperparameters(Schema):
    #: Neighbours kept per item (of each similarity, and of the blend).
    neighbours = fields.Integer(load_default=100, validate=validate.Range(1, 5000))
    #: Share of metadata similarity every item keeps, however many interactions it has
    #: (0: well-known items lean on co-occurrence alone; 1: metadata only).
    metadata_weight = fields.Float(load_default=0.0, validate=validate.Range(0.0, 1.0))
    #: Interactions at which an item's neighbours come half from co-occurrence, half from metadata
    #: (fewer: more metadata). None: chosen at fit time on held-out shoppers.
    cold_item_interactions = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(0, 100_000))
    #: Co-occurrence shrinkage: pairs seen together by far fewer shoppers than this count less.
    shrink = fields.Float(load_default=5.0, validate=validate.Range(0.0, 10_000.0))
    #: How strongly, among items equally alike by metadata, the more popular are preferred
    #: (the metadata similarity is multiplied by ``(1 + log(1 + shoppers)) ** metadata_popularity``).
    metadata_popularity = fields.Float(load_default=3.0, validate=validate.Range(0.0, 10.0))
    #: Within metadata: the share of the description's TF-IDF against the categorical fields.
    text_weight = fields.Float(load_default=0.5, validate=validate.Range(0.0, 1.0))
    #: Textual fields to read (default: every field ending in DESCRIPTION).
    text_fields = fields.List(fields.String(), load_default=list)
    #: Categorical fields to read (default: string fields whose values repeat across items).
    categorical_fields = fields.List(fields.String(), load_default=list)
    max_vocabulary = fields.Integer(load_default=20_000, validate=validate.Range(10, 1_000_000))
    #: Events of a type weighted 0 are ignored; any other event marks the item as touched.
    event_weights = fields.Dict(
        keys=fields.String(),
        values=fields.Float(validate=validate.Range(0.0, 100.0)),
        load_default=lambda: dict(DEFAULT_EVENT_WEIGHTS),
    )
    #: How much less each older event of the user's history counts when no item is given.
    history_decay = fields.Float(load_default=0.8, validate=validate.Range(0.0, 1.0))
    validation_share = fields.Float(load_default=0.2, validate=validate.Range(0.05, 0.5))
    random_state = fields.Integer(load_default=42)


class SimilarItems(Recipe):
    name = "similar-items"
    recipe_type = "RELATED_ITEMS"
    Hyperparameters = SimilarItemsHyperparameters
    #: What ``--hpo`` searches.
    hpo_space = {
        "neighbours": IntRange(10, 500, log=True),
        "metadata_weight": FloatRange(0.0, 1.0),
        "text_weight": FloatRange(0.0, 1.0),
        "cold_item_interactions": IntRange(0, 50),
        "history_decay": FloatRange(0.3, 1.0),
    }

    def __init__(self, **hyperparameters) -> None:
        super().__init__(**hyperparameters)
        self.similarity = sp.csr_matrix((0, 0), dtype=np.float32)
        self.popularity = np.empty(0, dtype=np.float64)
        #: The ``cold_item_interactions`` in use (given, or chosen at fit time).
        self.evidence = DEFAULT_EVIDENCE
        # Fit-time parts, kept only until the blend is made.
        self._together = self._alike = sp.csr_matrix((0, 0), dtype=np.float32)
        self._touched = np.empty(0, dtype=np.float64)
        self._has_metadata = np.empty(0, dtype=bool)

    # ----------------------------------------------------------------- training
    def fit(self, data: TrainingData, *, previous: Self | None = None) -> Self:
        features = self._features(data)
        given = self.hyperparameters["cold_item_interactions"]
        self.evidence = given if given is not None else self._choose_evidence(data, features)
        self._fit_parts(data, features)
        self.similarity = self._blend(self.evidence)
        self._together = self._alike = sp.csr_matrix((0, 0), dtype=np.float32)
        return self

    def _features(self, data: TrainingData) -> sp.csr_matrix:
        hp = self.hyperparameters
        items = all_entries(data.items)
        properties = [items[i].properties if i in items else {} for i in data.item_ids.tolist()]
        return item_features(
            properties,
            text_fields=hp["text_fields"],
            category_fields=hp["categorical_fields"],
            text_weight=hp["text_weight"],
            max_vocabulary=hp["max_vocabulary"],
        )

    def _fit_parts(self, data: TrainingData, features: sp.csr_matrix, rows: np.ndarray | None = None) -> None:
        """Both similarities (unblended; only the ``rows`` items' when given), interaction counts
        and popularity."""
        hp = self.hyperparameters
        weights = event_weights(data.event_types, data.event_values, data.timestamps, weights=hp["event_weights"])
        matrix = user_item_matrix(data.user_index, data.item_index, weights, data.n_users, data.n_items)
        self._touched = np.diff(matrix.tocsc().indptr).astype(np.float64)  # shoppers per item
        together = shrunk_cosine(matrix, shrink=hp["shrink"], neighbours=hp["neighbours"], rows=rows)
        self._together = _unit_rows(together)
        prior = np.power(1.0 + np.log1p(self._touched), hp["metadata_popularity"])
        self._alike = _unit_rows(top_neighbours(features, hp["neighbours"], prior=prior, rows=rows))
        self._has_metadata = features.getnnz(axis=1) > 0
        self.popularity = np.asarray(matrix.sum(axis=0)).ravel().astype(np.float64)
        self._set_items(data.item_ids)

    def _metadata_share(self, evidence: int) -> np.ndarray:
        """Per item, how much its neighbours come from metadata rather than co-occurrence."""
        floor = self.hyperparameters["metadata_weight"]
        touched = self._touched
        thin = evidence / (evidence + touched) if evidence else np.zeros_like(touched)
        thin = np.where(touched == 0, 1.0, thin)
        return np.where(self._has_metadata, floor + (1.0 - floor) * thin, 0.0)

    def _blend(self, evidence: int) -> sp.csr_matrix:
        share = self._metadata_share(evidence)
        blended = sp.diags(1.0 - share) @ self._together + sp.diags(share) @ self._alike
        return sp.csr_matrix(top_per_row(blended, self.hyperparameters["neighbours"]), dtype=np.float32)

    def _choose_evidence(self, data: TrainingData, features: sp.csr_matrix) -> int:
        """The ``cold_item_interactions`` that best predicts, for held-out shoppers, what they
        touched after their latest item (the question a related-items campaign answers)."""
        hp = self.hyperparameters
        held_out = validation_users(
            data, share=hp["validation_share"], max_users=MAX_VALIDATION_USERS, seed=hp["random_state"]
        )
        if len(held_out) < MIN_VALIDATION_USERS:
            return DEFAULT_EVIDENCE
        train, cases = holdout(data, held_out)
        probe = type(self)(**hp)
        same_catalog = np.array_equal(train.item_ids, data.item_ids)
        asked = [(case.history[-1].item_id, case.truth) for case in cases if case.history]
        # Only the items asked about need neighbours.
        probe._set_items(train.item_ids)
        rows = probe.indices(item for item, _ in asked)
        probe._fit_parts(train, features if same_catalog else probe._features(train), rows=rows)
        totals = {}
        for evidence in EVIDENCE_CHOICES:
            probe.similarity = probe._blend(evidence)
            totals[evidence] = sum(
                ndcg_at_10(probe.recommend(Query(item_id=item, num_results=10)).item_ids, truth)
                for item, truth in asked
            )
        # Ties go to the default rather than to either extreme.
        return max(
            EVIDENCE_CHOICES,
            key=lambda c: (round(totals[c], 9), -abs(math.log1p(c) - math.log1p(DEFAULT_EVIDENCE))),
        )

    # ----------------------------------------------------------------- serving
    def _seed_weights(self, query: Query) -> dict[int, float]:
        return self.seed_items(query, self.hyperparameters["history_decay"])

    def recommend(self, query: Query) -> Ranked:
        seeds = self._seed_weights(query)
        rows = np.fromiter(seeds, dtype=np.int64, count=len(seeds))
        similar = np.zeros(len(self.item_ids))
        if len(rows):
            vector = np.fromiter(seeds.values(), dtype=np.float64, count=len(seeds))
            similar = np.asarray(self.similarity[rows].T @ vector).ravel()
        share = self.popularity / max(self.popularity.sum(), 1.0)
        # Similar items first (shifted above every popularity share), then popular items as filler.
        order_key = np.where(similar > 0, 2.0 + similar, np.where(self.popularity > 0, share, -np.inf))
        shown = np.where(similar > 0, similar, np.nan)
        if query.candidates is not None:
            ranked = self.rank_candidates(query.candidates, order_key)
        else:
            exclude = np.concatenate([self.indices(query.exclude), rows])
            ranked = Ranked.from_scores(self.item_ids, order_key, query.num_results, exclude.tolist())
        return Ranked(ranked.item_ids, tuple(self._shown_score(i, shown) for i in ranked.item_ids))

    def _shown_score(self, item_id: str, shown: np.ndarray) -> float:
        i = self.item_index(item_id)
        return float("nan") if i is None else float(shown[i])

    # ----------------------------------------------------------------- persistence
    def _arrays(self) -> dict[str, np.ndarray]:
        s = self.similarity.tocsr()
        return {
            "sim_data": s.data,
            "sim_indices": s.indices,
            "sim_indptr": s.indptr,
            "sim_shape": np.array(s.shape, dtype=np.int64),
            "popularity": self.popularity,
            "evidence": np.array([self.evidence], dtype=np.int64),
        }

    def _restore(self, arrays: Mapping[str, np.ndarray]) -> None:
        shape = tuple(int(x) for x in arrays["sim_shape"])
        self.similarity = sp.csr_matrix((arrays["sim_data"], arrays["sim_indices"], arrays["sim_indptr"]), shape=shape)
        self.popularity = np.asarray(arrays["popularity"], dtype=np.float64)
        if "evidence" in arrays:  # artifacts saved before it was chosen at fit time lack it
            self.evidence = int(arrays["evidence"][0])


def _unit_rows(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """Each row divided by its largest entry, so an item's closest neighbour scores 1 in either
    similarity and the blend weights mean what they say."""
    matrix = sp.csr_matrix(matrix, dtype=np.float32)
    top = matrix.max(axis=1).toarray().ravel()
    scale = np.divide(1.0, top, out=np.zeros_like(top), where=top > 0)
    return sp.csr_matrix(sp.diags(scale) @ matrix, dtype=np.float32)
