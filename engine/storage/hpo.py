"""Hyperparameter searches and their trials, as the search job records them and the CLI and API
read them back (by solution version: each search belongs to the version it trained)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from engine.errors import NotFound
from engine.storage import SolutionInfo, Store
from engine.storage import tables as t


@dataclass(frozen=True)
class TrialInfo:
    number: int
    params: dict[str, Any]
    metrics: dict[str, float]
    value: float | None
    status: str
    error: str | None
    seconds: float

    def as_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "status": self.status,
            "params": self.params,
            "value": self.value,
            "metrics": self.metrics,
            "seconds": round(self.seconds, 3),
            **({"error": self.error} if self.error else {}),
        }


@dataclass(frozen=True)
class SearchInfo:
    solution_version_id: str
    metric: str
    space: dict[str, str]
    trials_requested: int
    status: str
    validation: dict[str, Any]
    best_trial: int | None
    best_value: float | None
    hyperparameters: dict[str, Any] | None
    seconds: float | None
    trials: list[TrialInfo] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """The shape ``--json`` and the API print (camelCase, like the rest of the wire)."""
        return {
            "solutionVersionId": self.solution_version_id,
            "status": self.status,
            "metric": self.metric,
            "space": self.space,
            "trialsRequested": self.trials_requested,
            "validation": self.validation,
            "bestTrial": self.best_trial,
            "bestValue": self.best_value,
            "hyperparameters": self.hyperparameters,
            "seconds": None if self.seconds is None else round(self.seconds, 3),
            "trials": [trial.as_json() for trial in self.trials],
        }


def start_search(
    store: Store,
    solution: SolutionInfo,
    version_id: str,
    *,
    metric: str,
    space: dict[str, str],
    trials: int,
    validation: dict[str, Any],
) -> int:
    """Record a search before its first trial; returns its id for :func:`add_trial`."""
    row = t.HpoSearch(
        solution_id=solution.id,
        solution_version_id=version_id,
        metric=metric,
        space=space,
        trials_requested=trials,
        validation=validation,
        status="IN_PROGRESS",
    )
    with store.session() as s, s.begin():
        s.add(row)
    return row.id


def add_trial(
    store: Store,
    search_id: int,
    number: int,
    *,
    params: dict[str, Any],
    metrics: dict[str, float],
    value: float | None,
    seconds: float,
    error: str | None = None,
) -> None:
    """Store one finished trial at once, so a search cut short still shows what it tried."""
    finite = value is not None and math.isfinite(value)
    with store.session() as s, s.begin():
        s.add(
            t.HpoTrial(
                search_id=search_id,
                number=number,
                params=params,
                metrics=metrics,
                value=value if finite else None,
                status="COMPLETE" if error is None and finite else "FAILED",
                error=error,
                seconds=seconds,
            )
        )


def finish_search(
    store: Store,
    search_id: int,
    *,
    status: str,
    seconds: float,
    best_trial: int | None = None,
    best_value: float | None = None,
    hyperparameters: dict[str, Any] | None = None,
) -> None:
    with store.session() as s, s.begin():
        row = s.get(t.HpoSearch, search_id)
        if row is None:  # pragma: no cover - the search was recorded by this same job
            raise NotFound(f"hyperparameter search {search_id} does not exist")
        row.status = status
        row.seconds = seconds
        row.best_trial = best_trial
        row.best_value = best_value
        row.hyperparameters = hyperparameters


def get_search(store: Store, version_id: str) -> SearchInfo | None:
    """The search that trained ``version_id`` with all its trials, or None (trained without --hpo)."""
    with store.session() as s:
        row = s.scalar(select(t.HpoSearch).where(t.HpoSearch.solution_version_id == version_id))
        if row is None:
            return None
        trials = s.scalars(select(t.HpoTrial).where(t.HpoTrial.search_id == row.id).order_by(t.HpoTrial.number)).all()
    return SearchInfo(
        solution_version_id=row.solution_version_id,
        metric=row.metric,
        space=dict(row.space or {}),
        trials_requested=row.trials_requested,
        status=row.status,
        validation=dict(row.validation or {}),
        best_trial=row.best_trial,
        best_value=row.best_value,
        hyperparameters=None if row.hyperparameters is None else dict(row.hyperparameters),
        seconds=row.seconds,
        trials=[
            TrialInfo(
                tr.number, dict(tr.params or {}), dict(tr.metrics or {}), tr.value, tr.status, tr.error, tr.seconds
            )
            for tr in trials
        ],
    )
