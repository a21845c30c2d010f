"""user-personalization: what this shopper is likely to want next, updated with every event.

Three signals, each learned at training time and combined at request time with the shopper's
latest events (read from the store per request, so a click counts on the next page, for brand-new
shoppers too, with no retraining and no shared state):

* long-term taste: implicit-feedback ALS (``implicit``), or EASE, a closed-form item-item model
  that often ranks better on small and medium catalogs; the shopper's events are folded in per
  request (ALS: one least-squares solve; EASE: one vector-matrix product), recent ones weighing
  more;
* what comes next: transitions from each item to what people went on to interact with
  (:func:`engine.recipes.sequences.transition_matrix`), seeded with the shopper's latest items;
* coming back: the chance that each item the shopper already touched is among their next ones
  (:mod:`engine.recipes.repeats`), merged with new suggestions on one calibrated scale.

Which family, how fast old events fade and how much "what comes next" counts are chosen by what
wins on held-out users at fit time (``model="auto"``). Items with no interactions yet are placed
through their metadata (categories, text); shoppers with no events get popular items shaped by
their user metadata and the request's context.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from typing import Self, TypeVar

import numpy as np
import scipy.sparse as sp
from marshmallow import Schema, fields, validate

from engine.recipes import up_request, up_update
from engine.recipes.attribute_popularity import AttributePopularity
from engine.recipes.base import Query, Ranked, Recipe, TrainingData
from engine.recipes.batching import BatchQuery, UserEvents, full_query
from engine.recipes.ease import active_items, ease_weights
from engine.recipes.feature_space import Features, FeatureSpace, feature_space, resolved
from engine.recipes.implicit_backend import fit_als_with, float64_gram
from engine.recipes.item_metadata import neighbour_matrix
from engine.recipes.repeats import RankCalibration, RepeatModel, merge, seen_items
from engine.recipes.search_space import FloatRange, IntRange, OneOf
from engine.recipes.sequences import recency_ranked, transition_matrix
from engine.recipes.sparse_io import sparse_arrays, sparse_from
from engine.recipes.up_selection import FAMILIES, Choice, select
from engine.recipes.weighting import DEFAULT_EVENT_WEIGHTS, configured_weights, user_item_matrix
from engine.records import Interaction

#: How much each older seed item counts when following transitions.
SEED_DECAY = 0.7
TRANSITION_DECAY = 0.7
T = TypeVar("T")
#: Up to this many events the transitions are counted in a thread while ALS fits (their working
#: memory, about 30 bytes an event, then adds to the fit's). Above it they are counted after the fit,
#: once its matrices are gone: at 25 million events the FULL's peak (3.7 GB) is already near the
#: 4 GB the benchmark allows it.
TRANSITIONS_BESIDE_EVENTS = 10_000_000


class UserPersonalizationHyperparameters(Schema):
    #: "auto" picks ALS or EASE by what ranks better on held-out users; or fix one.
    model = fields.String(load_default="auto", validate=validate.OneOf(["auto", *FAMILIES]))
    factors = fields.Integer(load_default=64, validate=validate.Range(2, 1024))
    regularization = fields.Float(load_default=1.0, validate=validate.Range(0.0, 1000.0))
    #: Confidence per unit of event weight (implicit's ``alpha``).
    alpha = fields.Float(load_default=5.0, validate=validate.Range(0.0, 1000.0, min_inclusive=False))
    iterations = fields.Integer(load_default=15, validate=validate.Range(1, 200))
    #: EASE's λ, and the most items it models (a dense items × items solve).
    ease_regularization = fields.Float(load_default=200.0, validate=validate.Range(0.01, 1e7))
    ease_max_items = fields.Integer(load_default=5000, validate=validate.Range(10, 20000))
    #: Weight per event type (view < add-to-cart < purchase by default); unknown types weigh 1.
    event_weights = fields.Dict(
        keys=fields.String(),
        values=fields.Float(validate=validate.Range(0.0, 100.0)),
        load_default=lambda: dict(DEFAULT_EVENT_WEIGHTS),
    )
    #: Events with an EVENT_VALUE below this are ignored (Personalize's eventValueThreshold).
    event_value_threshold = fields.Float(load_default=None, allow_none=True)
    #: Older events count less in training: weight halves every this many days (None: no decay).
    recency_half_life_days = fields.Float(load_default=None, allow_none=True, validate=validate.Range(0.01, None))
    #: At request time an item's weight halves every this many more recent items the shopper
    #: touched since (None: chosen on held-out users).
    history_half_life = fields.Float(load_default=None, allow_none=True, validate=validate.Range(0.1, None))
    #: Share of the score that comes from "what people go on to interact with next" (None: chosen
    #: on held-out users).
    sequence_weight = fields.Float(load_default=None, allow_none=True, validate=validate.Range(0.0, 1.0))
    #: How many steps ahead a transition counts, and how many of the latest items seed it.
    sequence_window = fields.Integer(load_default=5, validate=validate.Range(1, 50))
    #: Learn whether shoppers come back to items they already have (False: never show them).
    learn_repeats = fields.Boolean(load_default=True)
    #: How a new item's metadata-borrowed score compares to its warm neighbours' (0: never shown).
    cold_item_weight = fields.Float(load_default=0.5, validate=validate.Range(0.0, 1.0))
    metadata_neighbours = fields.Integer(load_default=20, validate=validate.Range(1, 500))
    #: Share of users held out at fit time to choose settings and calibrate (at most 500).
    validation_share = fields.Float(load_default=0.2, validate=validate.Range(0.05, 0.5))
    random_state = fields.Integer(load_default=42)


class UserPersonalization(Recipe):
    name = "user-personalization"
    recipe_type = "USER_PERSONALIZATION"
    Hyperparameters = UserPersonalizationHyperparameters
    #: What ``--hpo`` searches. The family, how fast a shopper's older items fade and how much
    #: "what comes next" counts are already chosen on held-out users at every fit.
    hpo_space = {
        "factors": IntRange(16, 256, log=True),
        "regularization": FloatRange(0.01, 100.0, log=True),
        "alpha": FloatRange(0.5, 50.0, log=True),
        "iterations": IntRange(5, 30),
        "ease_regularization": FloatRange(10.0, 2000.0, log=True),
        "recency_half_life_days": OneOf((None, 7.0, 30.0, 90.0, 365.0)),
    }

    def __init__(self, **hyperparameters) -> None:
        super().__init__(**hyperparameters)
        self.choice = Choice("als", 10.0, 0.5)
        self.item_factors = np.empty((0, self.hyperparameters["factors"]), dtype=np.float32)
        self.yty = np.empty((0, 0), dtype=np.float64)
        self.ease_items = np.empty(0, dtype=np.int64)
        self.ease_weights = np.empty((0, 0), dtype=np.float32)
        self.transitions = sp.csr_matrix((0, 0), dtype=np.float32)
        self.cold_neighbours = sp.csr_matrix((0, 0), dtype=np.float32)
        self.popularity = np.empty(0, dtype=np.float64)
        self.repeats = RepeatModel()
        self.calibration = RankCalibration()
        self.attributes = AttributePopularity()
        # Kept for an incremental UPDATE (engine.recipes.up_update): XᵀX of the ALS user factors,
        # and the items' metadata features with the space they live in (None: not known).
        self.user_gram: np.ndarray | None = None
        self.item_features: sp.csr_matrix | None = None
        self.feature_space: FeatureSpace | None = None
        #: How many events the model was trained on (an UPDATE checks none has gone since).
        self.trained_events: int | None = None

    # ----------------------------------------------------------------- training
    def fit(self, data: TrainingData, *, previous: Self | None = None) -> Self:
        self.trained_events = len(data)
        if up_update.applies(previous, data):
            # UPDATE with the new events known: fold them in, keep the rest (engine.recipes.up_update).
            return up_update.update(self, data, previous)
        # The metadata features are worked out in a thread (training waits for them where the cold
        # items' neighbours are found, after the ALS fit).
        with ThreadPoolExecutor(1, thread_name_prefix="features") as side:
            space = side.submit(feature_space, data.item_ids, data.items)

            def features() -> sp.csr_matrix:
                return space.result()[0]

            self._fit_chosen(data, previous, features)
            self.item_features, self.feature_space = space.result()
        return self

    def _fit_chosen(self, data: TrainingData, previous: Self | None, features: Features) -> None:
        hp = self.hyperparameters
        if previous is not None:
            # UPDATE: keep the settings and calibration the last FULL training chose.
            self.choice, self.calibration = previous.choice, previous.calibration
        else:
            # Fit-time selection on held-out users (engine.recipes.up_selection); on large data
            # its one fit is also the final model.
            selection = select(self, data, features)
            self.choice, self.calibration = selection.choice, selection.calibration
            if selection.fitted:
                return

        def beside() -> tuple[RepeatModel, AttributePopularity]:
            if previous is not None:
                repeats = previous.repeats  # it looks at recency and counts, not at item ids
            else:
                repeats = RepeatModel.fit(data, seed=hp["random_state"]) if hp["learn_repeats"] else RepeatModel()
            return repeats, AttributePopularity().fit(data, lambda: self._weights(data))

        self.repeats, self.attributes = self._fit_core(
            data, self.choice.family, previous=previous, features=features, beside=beside
        )

    def _weights(self, data: TrainingData) -> np.ndarray:
        return configured_weights(self.hyperparameters, data.event_types, data.event_values, data.timestamps)

    def _fit_core(
        self,
        data: TrainingData,
        family: str,
        *,
        features: Features,
        previous: Self | None = None,
        need_als: bool = True,
        beside: Callable[[], T] | None = None,
    ) -> T | None:
        """The scorers, without choosing anything: long-term taste, transitions, cold items.

        The ALS factors are kept even when EASE ranks: the segment recipes built on this one and
        :meth:`user_vector` answer from them.

        ``beside`` (work that needs nothing of this fit) runs in a thread while ALS fits, and its
        result is returned; so do the transitions on all but the largest data. The fit is compiled
        code on both cores without the interpreter lock, so single-threaded work beside it costs the
        fit less time than it would take after it.
        """
        hp = self.hyperparameters
        weights = self._weights(data)
        matrix = user_item_matrix(data.user_index, data.item_index, weights, data.n_users, data.n_items)
        self._set_items(data.item_ids)
        self.popularity = np.asarray(matrix.sum(axis=0)).ravel().astype(np.float64)
        counted = weights > 0

        def transitions() -> sp.csr_matrix:
            return transition_matrix(data, window=hp["sequence_window"], decay=TRANSITION_DECAY, event_mask=counted)

        # Up to TRANSITIONS_BESIDE_EVENTS the transitions are counted beside the fit too; above, they
        # wait for the fit's matrices to go (see the constant).
        early = len(data) <= TRANSITIONS_BESIDE_EVENTS

        def alongside() -> tuple[sp.csr_matrix | None, T | None]:
            return transitions() if early else None, beside() if beside is not None else None

        with ThreadPoolExecutor(1, thread_name_prefix="beside-als") as side:
            aside = side.submit(alongside)
            if family == "als" or need_als:
                initial = None
                if previous is not None and len(previous.item_factors):
                    initial = previous._aligned_item_factors(data.item_ids)
                self.item_factors, self.user_gram = fit_als_with(matrix, hp, initial)
                self.yty = float64_gram(self.item_factors)
            counts, result = aside.result()
        if family == "ease":
            users_per_item = np.asarray((matrix > 0).sum(axis=0)).ravel()
            self.ease_items = active_items(users_per_item, max_items=hp["ease_max_items"])
            binary = (matrix[:, self.ease_items] > 0).astype(np.float64)
            self.ease_weights = ease_weights(binary, hp["ease_regularization"])
        else:
            self.ease_items, self.ease_weights = np.empty(0, dtype=np.int64), np.empty((0, 0), dtype=np.float32)
        del weights, matrix
        self.transitions = counts if counts is not None else transitions()
        warm = np.flatnonzero(self.popularity > 0)
        cold = np.flatnonzero(self.popularity <= 0)
        self.cold_neighbours = neighbour_matrix(
            resolved(features), cold, warm, data.n_items, neighbours=hp["metadata_neighbours"]
        )
        return result

    def _aligned_item_factors(self, item_ids: np.ndarray) -> np.ndarray:
        """This model's factors laid out for a new vocabulary; new items start small and random."""
        rng = np.random.default_rng(self.hyperparameters["random_state"])
        out = (rng.random((len(item_ids), self.item_factors.shape[1])) * 0.01).astype(np.float32)
        for row, item in enumerate(np.asarray(item_ids).tolist()):
            old = self._item_lookup.get(item)
            if old is not None:
                out[row] = self.item_factors[old]
        return out

    # ----------------------------------------------------------------- ALS user step
    def user_vector(self, history: tuple) -> np.ndarray | None:
        """The ALS user step for these events (None when none is a known item): the user factors
        the segment recipes and the batch ALS path work with."""
        if not history or len(self.item_factors) == 0:
            return None
        hp = self.hyperparameters
        idx, w = self._known_events(history)
        if len(idx) == 0:
            return None
        keep = w > 0
        if not keep.any():
            return None
        uniq, inverse = np.unique(idx[keep], return_inverse=True)
        confidence = hp["alpha"] * np.bincount(inverse, weights=w[keep])
        y = self.item_factors[uniq].astype(np.float64)
        a = self.yty + hp["regularization"] * np.eye(y.shape[1]) + (y.T * (confidence - 1.0)) @ y
        b = y.T @ confidence
        return np.linalg.solve(a, b)

    def recommend_batch(self, events: UserEvents, queries: Sequence[BatchQuery]) -> list[Ranked]:
        """Batch inference: each query answered exactly as :meth:`recommend` answers it, blocks of
        shoppers as matrices (:mod:`engine.recipes.up_batch`) unless a subclass answers differently."""
        cls = type(self)
        if cls.recommend is not UserPersonalization.recommend or (
            cls.default_exclusions is not UserPersonalization.default_exclusions
        ):
            return [self.recommend(full_query(self, events, q)) for q in queries]
        from engine.recipes import up_batch  # imports this module

        return up_batch.recommend_batch(self, events, queries)

    # ----------------------------------------------------------------- scoring
    def _known(self, history: Sequence[Interaction]) -> bool:
        return any(self.item_index(e.item_id) is not None for e in history)

    def _known_events(self, history: Sequence[Interaction]) -> tuple[np.ndarray, np.ndarray]:
        """The catalog index and training weight of each event on a known item, in history order."""
        rows = [(i, e) for e in history if (i := self.item_index(e.item_id)) is not None]
        if not rows:
            return np.empty(0, dtype=np.int64), np.empty(0)
        w = configured_weights(
            self.hyperparameters,
            np.array([e.event_type for _, e in rows], dtype=str),
            np.array([np.nan if e.event_value is None else e.event_value for _, e in rows], dtype=np.float64),
            np.array([e.timestamp for _, e in rows], dtype=np.float64),
        )
        return np.array([i for i, _ in rows], dtype=np.int64), w

    def _history_weights(self, history: Sequence[Interaction]) -> tuple[np.ndarray, np.ndarray]:
        """Known items of the history, newest first, with their summed event weights."""
        idx, w = self._known_events(history)
        if len(idx) == 0:
            return np.empty(0, dtype=np.int64), np.empty(0)
        order = np.array(recency_ranked(idx.tolist()), dtype=np.int64)
        # Summed over the history's own items (the same additions in the same order as a
        # catalog-sized bincount, without writing a catalog-sized array per history).
        distinct, slot = np.unique(idx, return_inverse=True)
        total = np.bincount(slot, weights=w)[np.searchsorted(distinct, order)]
        keep = total > 0
        return order[keep], total[keep]

    def _input_vector(self, items: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Dense weights over the catalog; events on items with no interactions in training count
        for their metadata neighbours instead."""
        x = np.zeros(len(self.item_ids))
        x[items] = weights
        if self.cold_neighbours.nnz:
            cold = x * (self.popularity <= 0)
            if cold.any():
                x = x * (self.popularity > 0) + np.asarray(self.cold_neighbours.T @ cold).ravel()
        return x

    def _taste_scores(self, history: Sequence[Interaction], half_life: float | None, family: str) -> np.ndarray:
        items, weights = self._history_weights(history)
        if len(items) == 0:
            return np.zeros(len(self.item_ids))
        if half_life is not None:
            weights = weights * np.power(0.5, np.arange(len(items)) / half_life)
        x = self._input_vector(items, weights)
        if family == "als":
            return self._als_scores(x)
        scores = np.zeros(len(self.item_ids))
        active = x[self.ease_items]
        nz = np.flatnonzero(active)
        if len(nz):
            scores[self.ease_items] = np.log1p(active[nz]).astype(np.float32) @ self.ease_weights[nz]
        return scores

    def _als_scores(self, x: np.ndarray) -> np.ndarray:
        """Solve the ALS user step for these weights: (YᵀY + λI + Yᵀ(C-I)Y) u = YᵀCp, with Hu et
        al.'s confidence C = 1 + α·weight, so an event faded by recency tends smoothly towards
        "not seen" rather than below it."""
        hp = self.hyperparameters
        nz = np.flatnonzero(x > 0)
        if len(nz) == 0:
            return np.zeros(len(self.item_ids))
        confidence = hp["alpha"] * x[nz]
        y = self.item_factors[nz].astype(np.float64)
        a = self.yty + hp["regularization"] * np.eye(y.shape[1]) + (y.T * confidence) @ y
        b = y.T @ (1.0 + confidence)
        vector = np.linalg.solve(a, b)
        return (self.item_factors @ vector.astype(np.float32)).astype(np.float64)

    def _sequence_scores(self, history: Sequence[Interaction]) -> np.ndarray:
        items, _ = self._history_weights(history)
        if len(items) == 0 or self.transitions.nnz == 0:
            return np.zeros(len(self.item_ids))
        seeds = self._input_vector(
            items[: self.hyperparameters["sequence_window"]],
            np.power(SEED_DECAY, np.arange(min(len(items), self.hyperparameters["sequence_window"]))),
        )
        nz = np.flatnonzero(seeds)
        return np.asarray(self.transitions[nz].T @ seeds[nz]).ravel()

    def _blend(self, taste: np.ndarray, sequence: np.ndarray, mix: float) -> np.ndarray:
        """Each signal on a common scale (its top score is 1), mixed; cold items borrow. Works on
        one score vector or on a matrix of them (one row per user)."""
        scores = (1.0 - mix) * _unit(taste) + mix * _unit(sequence)
        if self.cold_neighbours.nnz and self.hyperparameters["cold_item_weight"] > 0:
            borrowed = (self.cold_neighbours @ np.atleast_2d(scores).T).T.reshape(scores.shape)
            cold = self.popularity <= 0
            scores[..., cold] = self.hyperparameters["cold_item_weight"] * borrowed[..., cold]
        return scores

    def _seen(self, history: Sequence[Interaction]) -> tuple[np.ndarray, np.ndarray]:
        """Known items the shopper already has, and the chance each is among their next ones."""
        lookup = self._item_lookup
        items = [s for s in seen_items(history) if s.item_id in lookup]
        probabilities = self.repeats.probabilities(items)
        ranked = [lookup[s.item_id] for s in items]
        # Older items past the repeat model's horizon are left out like before (sorted, as a set
        # difference of arrays gave them; sets of a history's few items cost less than its sorts).
        rest = sorted({lookup[e.item_id] for e in history if e.item_id in lookup}.difference(ranked))
        seen = np.array(ranked + rest, dtype=np.int64)
        return seen, np.concatenate([probabilities, np.zeros(len(rest))])

    def _top_new(self, scores: np.ndarray, seen: np.ndarray, *, exclude: np.ndarray, n: int) -> np.ndarray:
        masked = scores.copy()
        masked[seen] = -np.inf
        masked[exclude] = -np.inf
        # Items nobody interacted with and no metadata places have nothing to recommend them.
        masked[(self.popularity <= 0) & (masked <= 0)] = -np.inf
        return _top(masked, n)

    def _merged(
        self, new: np.ndarray, calibration: RankCalibration, seen: np.ndarray, seen_p: np.ndarray, *, n: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """New suggestions and seen items on one scale; seen items nobody comes back to (chance 0)
        only fill a list longer than the suggestions, when a campaign keeps seen items at all."""
        return merge(new, calibration(np.arange(len(new))), seen, seen_p, n)

    def default_exclusions(self, history: Sequence[Interaction]) -> frozenset[str]:
        """Nothing when repeats were learned (seen items are ranked by how likely shoppers come
        back to them); everything already interacted with when the data shows no repeats."""
        if self.repeats.enabled and len(self.calibration.hit_rates):
            return frozenset()
        return super().default_exclusions(history)

    def recommend(self, query: Query) -> Ranked:
        """One request, computed sparsely where the dense definition (:meth:`recommend_dense`)
        would pass over the whole catalog (engine/recipes/up_request.py); same answers."""
        exclude = self.indices(query.exclude)
        if not self._known(query.history):
            return self._cold_start(query, exclude)
        if query.candidates is not None:
            scores, seen, seen_p = up_request.scored(self, query.history, query.context)
            index = self.indices(query.candidates)
            return self.rank_candidates(query.candidates, up_request.calibrated_at(self, scores, seen, seen_p, index))
        n = query.num_results
        if n == 0:
            return Ranked((), ())
        calibrated = len(self.calibration.hit_rates) > 0
        # Seen items are ranked apart (by their repeat chances) when calibrated.
        top, top_scores, seen, seen_p = up_request.top_list(
            self, query.history, query.context, exclude, n, block_seen=calibrated
        )
        if not calibrated:
            # Nothing calibrated (too few users to hold any out): everything allowed, by raw score;
            # seen items are left out by default_exclusions unless the campaign keeps them.
            return Ranked(tuple(self.item_ids[top].tolist()), tuple(top_scores.tolist()))
        allowed = ~np.isin(seen, exclude)
        items, probabilities = self._merged(top, self.calibration, seen[allowed], seen_p[allowed], n=n)
        return Ranked(tuple(self.item_ids[items].tolist()), tuple(probabilities.tolist()))

    def recommend_dense(self, query: Query) -> Ranked:
        """The reference definition of :meth:`recommend`, over dense catalog-sized vectors (as
        fit-time validation scores held-out users); the tests hold the two to the same answers."""
        exclude = self.indices(query.exclude)
        if not self._known(query.history):
            return self._cold_start(query, exclude)
        h, m = self.choice.half_life, self.choice.sequence_weight
        scores = self._blend(
            self._taste_scores(query.history, h, self.choice.family), self._sequence_scores(query.history), m
        )
        if self.choice.context_weight and (lift := self.attributes.context_lift(query.context)) is not None:
            scores[self.attributes.items] += self.choice.context_weight * lift
        seen, seen_p = self._seen(query.history)
        if query.candidates is not None:
            return self.rank_candidates(query.candidates, self._calibrated(scores, seen, seen_p))
        n = query.num_results
        if n == 0:
            return Ranked((), ())
        if len(self.calibration.hit_rates) == 0:
            # Nothing calibrated (too few users to hold any out): everything allowed, by raw score;
            # seen items are left out by default_exclusions unless the campaign keeps them.
            top = self._top_new(scores, np.empty(0, dtype=np.int64), exclude=exclude, n=n)
            return Ranked(tuple(self.item_ids[top].tolist()), tuple(scores[top].tolist()))
        new = self._top_new(scores, seen, exclude=exclude, n=n)
        allowed = ~np.isin(seen, exclude)
        items, probabilities = self._merged(new, self.calibration, seen[allowed], seen_p[allowed], n=n)
        return Ranked(tuple(self.item_ids[items].tolist()), tuple(probabilities.tolist()))

    def _calibrated(self, scores: np.ndarray, seen: np.ndarray, seen_p: np.ndarray) -> np.ndarray:
        """Every item's estimated chance, for re-ranking a given list the same way."""
        if len(self.calibration.hit_rates) == 0:
            return scores
        ranks = np.empty(len(scores), dtype=np.int64)
        ranks[np.argsort(-scores, kind="stable")] = np.arange(len(scores))
        out = self.calibration(ranks) + 1e-9 * _unit(scores)  # the model's order where calibration ties
        out[seen] = seen_p
        return out

    def _cold_start(self, query: Query, exclude: np.ndarray) -> Ranked:
        """Nothing known about this shopper's behaviour: what is popular, shaped by their metadata."""
        shaped = self.attributes.scores(self.popularity, query.user_id, query.context)
        scores = np.where(shaped > 0, shaped / max(shaped.sum(), 1e-12), -np.inf)
        if query.candidates is not None:
            return self.rank_candidates(query.candidates, scores)
        return Ranked.from_scores(self.item_ids, scores, query.num_results, exclude)

    # ----------------------------------------------------------------- persistence
    def _arrays(self) -> dict[str, np.ndarray]:
        t, c = self.transitions.tocsr(), self.cold_neighbours.tocsr()
        return {
            "choice": np.array(json.dumps(asdict(self.choice))),
            "item_factors": self.item_factors,
            "ease_items": self.ease_items,
            "ease_weights": self.ease_weights,
            "popularity": self.popularity,
            "calibration": self.calibration.hit_rates,
            **sparse_arrays("transitions", t),
            **sparse_arrays("cold", c),
            **self.repeats.to_arrays("repeat_"),
            **self.attributes.to_arrays("attr_"),
            **self._update_arrays(),
        }

    def _update_arrays(self) -> dict[str, np.ndarray]:
        """What an incremental UPDATE starts from (engine.recipes.up_update), where known."""
        out: dict[str, np.ndarray] = {"yty": self.yty} if self.yty.shape == (self.item_factors.shape[1],) * 2 else {}
        if self.trained_events is not None:
            out["trained_events"] = np.array(self.trained_events, dtype=np.int64)
        if self.user_gram is not None:
            out["user_gram"] = self.user_gram
        if self.item_features is not None and self.feature_space is not None:
            out |= sparse_arrays("features", self.item_features.tocsr())
            out["feature_kinds"] = np.array(json.dumps(self.feature_space.kinds))
            out["feature_names"] = self.feature_space.names
            out["feature_idf"] = self.feature_space.idf
        return out

    def _restore(self, arrays: Mapping[str, np.ndarray]) -> None:
        # Artifacts from before the blended model hold ALS factors only: they answer as plain ALS
        # fold-in and leave every seen item out, as they always did.
        legacy = "choice" not in arrays
        self.choice = Choice("als", None, 0.0) if legacy else Choice(**json.loads(str(arrays["choice"])))
        self.item_factors = np.asarray(arrays["item_factors"], dtype=np.float32)
        if "yty" in arrays:  # saved since incremental UPDATEs (a product over every item otherwise)
            self.yty = np.asarray(arrays["yty"], dtype=np.float64)
        else:
            self.yty = float64_gram(self.item_factors)
        self.popularity = np.asarray(arrays["popularity"], dtype=np.float64)
        # Artifacts from before incremental UPDATEs lack these: an UPDATE recomputes them once.
        self.user_gram = np.asarray(arrays["user_gram"], dtype=np.float64) if "user_gram" in arrays else None
        self.trained_events = int(arrays["trained_events"]) if "trained_events" in arrays else None
        if "feature_names" in arrays:
            self.item_features = sparse_from("features", arrays)
            self.feature_space = FeatureSpace(
                json.loads(str(arrays["feature_kinds"])),
                np.asarray(arrays["feature_names"], dtype=str),
                np.asarray(arrays["feature_idf"], dtype=np.float64),
            )
        if legacy:
            return
        self.ease_items = np.asarray(arrays["ease_items"], dtype=np.int64)
        self.ease_weights = np.asarray(arrays["ease_weights"], dtype=np.float32)
        self.calibration = RankCalibration(arrays["calibration"])
        self.transitions = sparse_from("transitions", arrays)
        self.cold_neighbours = sparse_from("cold", arrays)
        self.repeats = RepeatModel.from_arrays(arrays, "repeat_")
        self.attributes = AttributePopularity.from_arrays(arrays, "attr_")


def _top(scores: np.ndarray, n: int) -> np.ndarray:
    """Indices of the ``n`` highest finite scores, best first."""
    n = min(n, int(np.isfinite(scores).sum()))
    if n <= 0:
        return np.empty(0, dtype=np.int64)
    top = np.argpartition(-scores, n - 1)[:n]
    return top[np.argsort(-scores[top], kind="stable")]


def _unit(scores: np.ndarray) -> np.ndarray:
    """Scores divided by their largest magnitude (per row for a matrix); all-zero rows stay zero."""
    if scores.size == 0:
        return scores
    top = np.abs(scores).max(axis=-1, keepdims=True)
    return scores / np.where(top > 0, top, 1.0)
