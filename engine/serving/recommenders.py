"""Domain recommenders: Personalize's ECOMMERCE and VIDEO_ON_DEMAND use cases, one command each.

A recommender is a recipe preset (which recipe, trained on which events) plus what its use case
implies at request time (recommended-for-you never shows what the shopper already bought). It is
served from its solution's newest version, so retraining it updates it with no redeploy.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from engine.errors import AlreadyExists, InvalidInput, NotFound
from engine.jobs.train import train
from engine.records import PURCHASE, VIEW
from engine.storage import CampaignInfo, Store
from engine.storage import tables as t
from engine.storage.store import check_name

WATCH = "watch"


@dataclass(frozen=True)
class UseCase:
    domain: str
    recipe: str
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    #: What the use case leaves out of every answer: items with these events in the shopper's
    #: whole history (Personalize: "automatically filters out items the user purchased").
    exclude_event_types: tuple[str, ...] = ()
    #: Whether items the shopper interacted with are left out: None lets the recipe decide
    #: (user-personalization learns whether shoppers come back to items), False keeps them.
    exclude_interacted: bool | None = None


USE_CASES: dict[str, UseCase] = {
    "aws-ecomm-recommended-for-you": UseCase("ECOMMERCE", "user-personalization", exclude_event_types=(PURCHASE,)),
    "aws-ecomm-customers-who-viewed-x-also-viewed": UseCase(
        "ECOMMERCE", "sims", {"event_types": [VIEW]}, exclude_event_types=(PURCHASE,)
    ),
    "aws-ecomm-frequently-bought-together": UseCase("ECOMMERCE", "sims", {"event_types": [PURCHASE]}),
    "aws-ecomm-popular-items-by-purchases": UseCase(
        "ECOMMERCE", "popularity-count", {"event_types": [PURCHASE]}, exclude_interacted=False
    ),
    "aws-ecomm-popular-items-by-views": UseCase(
        "ECOMMERCE", "popularity-count", {"event_types": [VIEW]}, exclude_interacted=False
    ),
    "aws-vod-top-picks": UseCase("VIDEO_ON_DEMAND", "user-personalization"),
    "aws-vod-because-you-watched-x": UseCase("VIDEO_ON_DEMAND", "sims", {"event_types": [WATCH]}),
    "aws-vod-more-like-x": UseCase("VIDEO_ON_DEMAND", "similar-items"),
    "aws-vod-most-popular": UseCase(
        "VIDEO_ON_DEMAND", "popularity-count", {"event_types": [WATCH]}, exclude_interacted=False
    ),
    "aws-vod-trending-now": UseCase("VIDEO_ON_DEMAND", "trending-now", exclude_interacted=False),
}

_ARN_PREFIX = "arn:aws:personalize:::recipe/"


def use_case(name: str) -> tuple[str, UseCase]:
    key = name.removeprefix(_ARN_PREFIX)
    if key not in USE_CASES:
        raise InvalidInput(f"unknown recommender recipe {name!r}; known: {', '.join(sorted(USE_CASES))}")
    return key, USE_CASES[key]


@dataclass(frozen=True)
class RecommenderInfo:
    name: str
    dataset_group: str
    use_case: str
    solution: str
    solution_version_id: str | None


def create_recommender(
    store: Store, artifact_dir: str | Path, dataset_group: str, name: str, recipe: str
) -> RecommenderInfo:
    """Train the use case's recipe and register the recommender; trained before it is visible."""
    check_name(name, "recommender")
    key, case = use_case(recipe)
    group = store.get_dataset_group(dataset_group)
    if group.domain and group.domain != case.domain:
        raise InvalidInput(f"{key} is a {case.domain} use case; dataset group {dataset_group!r} is {group.domain}")
    solution = f"recommender-{name}"[:63]
    with store.session() as s:
        exists = s.scalar(
            select(t.Recommender.id).where(t.Recommender.dataset_group_id == group.id, t.Recommender.name == name)
        )
    if exists:
        raise AlreadyExists(f"recommender {name!r} already exists in {dataset_group!r}")
    version = train(
        store,
        artifact_dir,
        dataset_group=dataset_group,
        recipe=case.recipe,
        solution=solution,
        hyperparameters=case.hyperparameters,
    )
    try:
        with store.session() as s, s.begin():
            s.add(t.Recommender(dataset_group_id=group.id, name=name, use_case=key, solution=solution))
    except IntegrityError as exc:
        raise AlreadyExists(f"recommender {name!r} already exists in {dataset_group!r}") from exc
    return RecommenderInfo(name, dataset_group, key, solution, version.id)


def list_recommenders(store: Store, dataset_group: str) -> list[RecommenderInfo]:
    group = store.get_dataset_group(dataset_group)
    with store.session() as s:
        rows = s.scalars(
            select(t.Recommender).where(t.Recommender.dataset_group_id == group.id).order_by(t.Recommender.name)
        ).all()
    out = []
    for row in rows:
        latest = store.latest_solution_version(dataset_group, row.solution)
        out.append(RecommenderInfo(row.name, dataset_group, row.use_case, row.solution, latest and latest.id))
    return out


def recommender_deployment(store: Store, dataset_group: str, name: str) -> CampaignInfo:
    """What serves the recommender now: its solution's newest version, with its use case's rules."""
    group = store.get_dataset_group(dataset_group)
    with store.session() as s:
        row = s.scalar(
            select(t.Recommender).where(t.Recommender.dataset_group_id == group.id, t.Recommender.name == name)
        )
    if row is None:
        raise NotFound(f"recommender {name!r} does not exist in {dataset_group!r}")
    latest = store.latest_solution_version(dataset_group, row.solution)
    if latest is None:
        raise NotFound(f"recommender {name!r} has no trained version")
    case = USE_CASES[row.use_case]
    return CampaignInfo(
        name=f"recommender/{name}",
        dataset_group=dataset_group,
        solution_version_id=latest.id,
        recipe=latest.recipe,
        artifact_path=latest.artifact_path or "",
        config={
            "excludeEventTypes": list(case.exclude_event_types),
            **({} if case.exclude_interacted is None else {"excludeInteracted": case.exclude_interacted}),
        },
        updated_at=time.time(),
    )
