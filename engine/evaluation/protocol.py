"""The offline evaluation protocol, the same for every recipe and every baseline.

A model is trained on the training users only, then asked exactly what a campaign would ask
for each test user, with the campaign's default exclusions (the recipe's own
``default_exclusions``), and the answer is scored against what the user did next.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from engine.errors import InvalidInput
from engine.evaluation.metrics import LIST_LENGTH, RankingAccumulator, average, segment_metrics
from engine.evaluation.split import segment_split, user_folds
from engine.recipes.base import Query, Ranked, TrainingData
from engine.recipes.validation import Case, holdout
from engine.records import Interaction

#: How a model is asked, by Personalize recipe type.
QUERY_KINDS = {
    "USER_PERSONALIZATION": "user",
    "POPULAR_ITEMS": "user",
    "PERSONALIZED_RANKING": "ranking",
    "RELATED_ITEMS": "related",
    "USER_SEGMENTATION": "segment",
}
#: Segment recipes are asked about at most this many held-out items (each query ranks all users).
MAX_SEGMENT_QUERIES = 300


class Model(Protocol):
    """What the protocol needs: a recipe, or one of the evaluation-only baselines."""

    name: str
    recipe_type: str

    def recommend(self, query: Query) -> Ranked: ...

    def default_exclusions(self, history: Sequence[Interaction]) -> frozenset[str]: ...


#: Builds and trains a model on the training part of a fold.
Factory = Callable[[TrainingData], Model]


@dataclass
class Evaluation:
    """Averaged metrics, and what they were averaged over."""

    metrics: dict[str, float]
    kind: str
    folds: int
    requests: int
    seconds: float
    per_fold: list[dict[str, float]] = field(default_factory=list)

    def as_json(self) -> dict:
        return {
            "metrics": {k: round(v, 6) for k, v in self.metrics.items()},
            "queryKind": self.kind,
            "folds": self.folds,
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
        }


def query_kind(recipe_type: str) -> str:
    try:
        return QUERY_KINDS[recipe_type]
    except KeyError:
        raise InvalidInput(f"recipe type {recipe_type!r} cannot be evaluated offline") from None


def evaluate(
    data: TrainingData,
    factory: Factory,
    *,
    kind: str = "user",
    folds: int = 1,
    seed: int = 0,
    history_limit: int = 500,
) -> Evaluation:
    """Train with ``factory`` on each fold's training users and score the answers.

    ``kind`` is how the model is queried: "user" (a user and their live events), "ranking" (the
    whole catalog re-ranked for the user), "related" (the user's latest input item) or "segment".
    """
    if kind == "segment":
        started = time.perf_counter()
        if len(data) == 0:
            raise InvalidInput("nothing to evaluate: the data set has no interactions")
        metrics, requests = _evaluate_segments(data, factory, seed=seed)
        return Evaluation(metrics, kind, 1, requests, time.perf_counter() - started, [metrics])
    return evaluate_kinds(data, factory, kinds=(kind,), folds=folds, seed=seed, history_limit=history_limit)[kind]


def evaluate_kinds(
    data: TrainingData,
    factory: Factory,
    *,
    kinds: Sequence[str],
    folds: int = 1,
    seed: int = 0,
    history_limit: int = 500,
) -> dict[str, Evaluation]:
    """Like :func:`evaluate`, asking each fold's model in several ways (one training per fold)."""
    started = time.perf_counter()
    if len(data) == 0:
        raise InvalidInput("nothing to evaluate: the data set has no interactions")
    for kind in kinds:
        if kind not in ("user", "ranking", "related"):
            raise InvalidInput(f"unknown query kind {kind!r}")
    results: dict[str, list[dict[str, float]]] = {kind: [] for kind in kinds}
    requests = 0
    for test_users in user_folds(data.n_users, folds, seed):
        train, cases = holdout(data, test_users, history_limit=history_limit)
        model = factory(train)
        for kind in kinds:
            results[kind].append(score_cases(model, cases, kind=kind, catalog_size=data.n_items))
        requests += len(cases)
    seconds = time.perf_counter() - started
    return {
        kind: Evaluation(average(per_fold), kind, len(per_fold), requests, seconds, per_fold)
        for kind, per_fold in results.items()
    }


def score_cases(model: Model, cases: Sequence[Case], *, kind: str, catalog_size: int) -> dict[str, float]:
    acc = RankingAccumulator(catalog_size)
    catalog = _catalog(model) if kind == "ranking" else ()
    for case in cases:
        acc.add(ask(model, case, kind=kind, catalog=catalog).item_ids, case.truth)
    return acc.result()


def ask(model: Model, case: Case, *, kind: str, catalog: Sequence[str] = (), n: int = LIST_LENGTH) -> Ranked:
    """The request a campaign would make for this user, with the campaign's default exclusions."""
    if kind == "related":
        latest = case.history[-1].item_id if case.history else None
        # A related-items campaign asked about an item never returns that item.
        exclude = frozenset() if latest is None else frozenset([latest])
        return model.recommend(Query(item_id=latest, num_results=n, exclude=exclude))
    exclude = model.default_exclusions(case.history)
    if kind == "ranking":
        # A storefront asks to rank what it could show: the catalog less what the recipe would
        # leave out by default. The top of that ranking is what gets scored.
        candidates = tuple(i for i in catalog if i not in exclude)
        ranked = model.recommend(
            Query(user_id=case.user_id, history=case.history, candidates=candidates, context=case.context)
        )
        return Ranked(ranked.item_ids[:n], ranked.scores[:n])
    return model.recommend(
        Query(user_id=case.user_id, history=case.history, num_results=n, exclude=exclude, context=case.context)
    )


def _catalog(model: Model) -> tuple[str, ...]:
    items = getattr(model, "item_ids", None)
    if items is None:
        raise InvalidInput(f"{model.name} has no item vocabulary to rank")
    return tuple(np.asarray(items).tolist())


def _evaluate_segments(data: TrainingData, factory: Factory, *, seed: int) -> tuple[dict[str, float], int]:
    train, held_out = segment_split(data)
    model = factory(train)
    items = sorted(held_out)
    if len(items) > MAX_SEGMENT_QUERIES:
        rng = np.random.default_rng(seed)
        items = sorted(rng.choice(items, size=MAX_SEGMENT_QUERIES, replace=False).tolist())
    k = max(1, math.ceil(0.01 * data.n_users))
    predicted: list[Sequence[str]] = []
    actual: list[Collection[str]] = []
    for item in items:
        predicted.append(model.recommend_users([item], k).item_ids)  # type: ignore[attr-defined]
        actual.append(held_out[item])
    return segment_metrics(predicted, actual, data.n_users, k), len(items)
