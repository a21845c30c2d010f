"""Hyperparameter search for ``shelfwise train --hpo``: try settings on a validation split of users,
keep every trial's figures, hand the best settings to the FULL training.

The split and the metrics are the offline evaluation's own (engine.evaluation): for ranking and
related-items recipes the validation users are the protocol's *second* fold of 10% of users, so
they are never the users a version's stored metrics (GetSolutionMetrics, the first fold) are
measured on, and the stored figures are not inflated by the choice. Segment recipes use the
segment protocol (every user's newest 20% held out), which has no users to set aside.

The sampler is optuna's TPE, seeded, asked and told one trial at a time so each trial is stored
as soon as it ends. The solution's own values are the first trial, so the search never picks
something worse on validation than what the solution already had.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.errors import InvalidInput, ShelfwiseError
from engine.evaluation import RANKING_METRICS, SEGMENT_METRICS
from engine.evaluation.protocol import evaluate, query_kind, score_cases
from engine.evaluation.split import user_folds
from engine.recipes import Recipe, TrainingData
from engine.recipes.search_space import FloatRange, IntRange, OneOf, Range, describe_space, seed_params
from engine.recipes.validation import holdout
from engine.storage import SolutionInfo, Store
from engine.storage.hpo import add_trial, finish_search, start_search

log = logging.getLogger(__name__)

DEFAULT_TRIALS = 10
MAX_TRIALS = 500
#: What a search maximises unless told otherwise, by how the recipe is queried.
DEFAULT_METRIC = "normalized_discounted_cumulative_gain_at_10"
DEFAULT_SEGMENT_METRIC = "recall_at_1_percent"


@dataclass(frozen=True)
class HpoSettings:
    trials: int = DEFAULT_TRIALS
    #: A metric name as ``shelfwise evaluate`` prints it; None: the recipe kind's default.
    metric: str | None = None
    seed: int = 0


@dataclass(frozen=True)
class SearchResult:
    hyperparameters: dict[str, Any]
    best_trial: int
    best_value: float
    metric: str


def check_settings(recipe: type[Recipe], settings: HpoSettings) -> str:
    """Refuse a search that cannot run before any data is read; returns the metric to maximise."""
    if not recipe.hpo_space:
        raise InvalidInput(
            f"recipe {recipe.name!r} has no hyperparameters to search (--hpo works for: {', '.join(searchable())})"
        )
    trials = settings.trials
    if isinstance(trials, bool) or not isinstance(trials, int) or not 1 <= trials <= MAX_TRIALS:
        raise InvalidInput(f"--hpo-trials must be a whole number from 1 to {MAX_TRIALS}, not {settings.trials!r}")
    segment = query_kind(recipe.recipe_type) == "segment"
    names = SEGMENT_METRICS if segment else RANKING_METRICS
    metric = settings.metric or (DEFAULT_SEGMENT_METRIC if segment else DEFAULT_METRIC)
    if metric not in names:
        raise InvalidInput(f"unknown metric {metric!r} for {recipe.name}; use one of: {', '.join(names)}")
    return metric


def searchable() -> list[str]:
    from engine.recipes import RECIPES

    return sorted(name for name, cls in RECIPES.items() if cls.hpo_space)


class _Validation:
    """The validation split, made once and scored the same way for every trial."""

    def __init__(self, data: TrainingData, recipe: type[Recipe], seed: int) -> None:
        self.data, self.recipe = data, recipe
        self.kind = query_kind(recipe.recipe_type)
        if self.kind == "segment":
            self.summary: dict[str, Any] = {"protocol": "segment", "users": data.n_users}
            return
        folds = user_folds(data.n_users, 2, seed)
        users = folds[1] if len(folds) > 1 else folds[0]
        self.train, self.cases = holdout(data, users)
        if not self.cases or len(self.train) == 0:
            raise InvalidInput("too few users with enough events to hold any out for the search")
        self.summary = {"protocol": "users", "users": len(users), "requests": len(self.cases), "seed": seed}

    def score(self, hyperparameters: Mapping[str, Any]) -> dict[str, float]:
        settings = self.recipe.validate_hyperparameters(hyperparameters)
        if self.kind == "segment":
            result = evaluate(self.data, lambda train: self.recipe(**settings).fit(train), kind="segment")
            return result.metrics
        model = self.recipe(**settings).fit(self.train)
        return score_cases(model, self.cases, kind=self.kind, catalog_size=self.data.n_items)


def search(
    store: Store,
    solution: SolutionInfo,
    recipe: type[Recipe],
    data: TrainingData,
    base: Mapping[str, Any],
    version_id: str,
    settings: HpoSettings,
    *,
    progress: bool = False,
) -> SearchResult:
    """Run the trials, store each as it ends, and return the solution's settings with the best
    trial's values. Every trial failing is an error: there is nothing to choose from."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # our own bar and records say what happens
    metric = check_settings(recipe, settings)
    started = time.perf_counter()
    validation = _Validation(data, recipe, settings.seed)
    space = recipe.hpo_space
    distributions = {name: _distribution(r) for name, r in space.items()}
    search_id = start_search(
        store,
        solution,
        version_id,
        metric=metric,
        space=describe_space(space),
        trials=settings.trials,
        validation=validation.summary,
    )
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=settings.seed))
    first = seed_params(space, base)
    if first:
        study.enqueue_trial(first)
    bar = _bar(settings.trials, recipe.name) if progress else None
    best: tuple[float, int, dict[str, Any]] | None = None
    try:
        for _ in range(settings.trials):
            trial = study.ask(distributions)
            params = dict(trial.params)
            trial_started = time.perf_counter()
            try:
                metrics = validation.score({**base, **params})
                value, error = float(metrics[metric]), None
            except (ShelfwiseError, ValueError, ArithmeticError, MemoryError) as exc:
                metrics, value, error = {}, math.nan, f"{type(exc).__name__}: {exc}"
            seconds = time.perf_counter() - trial_started
            add_trial(
                store,
                search_id,
                trial.number,
                params=params,
                metrics={k: round(v, 6) for k, v in metrics.items()},
                value=value,
                seconds=seconds,
                error=error,
            )
            if math.isfinite(value):
                study.tell(trial, value)
                if best is None or value > best[0]:
                    best = (value, trial.number, params)
            else:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                log.info("trial %d of %s failed: %s", trial.number, recipe.name, error)
            if bar is not None:
                bar.update(1)
                if best is not None:
                    bar.set_postfix_str(f"best {_short(metric)}={best[0]:.4f} (trial {best[1]})")
    except BaseException:
        finish_search(store, search_id, status="FAILED", seconds=time.perf_counter() - started)
        raise
    finally:
        if bar is not None:
            bar.close()
    if best is None:
        finish_search(store, search_id, status="FAILED", seconds=time.perf_counter() - started)
        raise InvalidInput(f"every one of the {settings.trials} trials failed; see `shelfwise hpo trials`")
    chosen = recipe.validate_hyperparameters({**base, **best[2]})
    finish_search(
        store,
        search_id,
        status="COMPLETED",
        seconds=time.perf_counter() - started,
        best_trial=best[1],
        best_value=round(best[0], 6),
        hyperparameters=chosen,
    )
    log.info("hpo for %s: trial %d of %d best, %s=%.4f", recipe.name, best[1], settings.trials, metric, best[0])
    return SearchResult(chosen, best[1], best[0], metric)


def _distribution(r: Range):
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if isinstance(r, IntRange):
        return IntDistribution(r.low, r.high, log=r.log)
    if isinstance(r, FloatRange):
        return FloatDistribution(r.low, r.high, log=r.log)
    if isinstance(r, OneOf):
        return CategoricalDistribution(r.choices)
    raise TypeError(f"not a search range: {r!r}")  # pragma: no cover - a declaration error


def _bar(total: int, name: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=f"hpo {name}", unit="trial", file=sys.stderr, dynamic_ncols=True)


def _short(metric: str) -> str:
    return metric.replace("normalized_discounted_cumulative_gain_at_", "ndcg@").replace("precision_at_", "p@")
