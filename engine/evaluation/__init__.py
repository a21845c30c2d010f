"""Offline evaluation with Personalize's protocol and metric names.

:func:`evaluate_recipe` is what ``shelfwise evaluate`` and training's stored metrics
(GetSolutionMetrics) run; :mod:`engine.evaluation.baselines` holds the evaluation-only models
the quality benchmark compares against.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.evaluation.metrics import RANKING_METRICS, SEGMENT_METRICS
from engine.evaluation.protocol import Evaluation, evaluate, query_kind
from engine.recipes import Recipe, TrainingData, recipe_class


def evaluate_recipe(
    data: TrainingData,
    recipe: str | type[Recipe],
    hyperparameters: Mapping[str, Any] | None = None,
    *,
    folds: int = 1,
    seed: int = 0,
) -> Evaluation:
    """Train ``recipe`` on each fold's training users and score it as its campaign would answer
    (queried the way its recipe type is: by user, by the user's latest item, by a list to rank,
    or for user segments)."""
    cls = recipe_class(recipe) if isinstance(recipe, str) else recipe
    settings = cls.validate_hyperparameters(hyperparameters or {})
    return evaluate(
        data, lambda train: cls(**settings).fit(train), kind=query_kind(cls.recipe_type), folds=folds, seed=seed
    )


def solution_metrics(data: TrainingData, recipe: type[Recipe], hyperparameters: Mapping[str, Any]) -> dict[str, float]:
    """The metrics a solution version stores: one fold, rounded as Personalize reports them."""
    result = evaluate_recipe(data, recipe, hyperparameters, folds=1)
    return {name: round(value, 4) for name, value in result.metrics.items()}


__all__ = ["RANKING_METRICS", "SEGMENT_METRICS", "Evaluation", "evaluate", "evaluate_recipe", "solution_metrics"]
