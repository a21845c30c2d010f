"""GET /v1/solution-versions/<id>: a version's stored metrics (Personalize's GetSolutionMetrics)
and, when it was trained with ``--hpo``, its hyperparameter search with every trial (secret key)."""

from __future__ import annotations

from flask import Blueprint

from engine.api.app import get_store
from engine.api.auth import current_key, require_key
from engine.errors import NotFound
from engine.recipes import Recipe
from engine.storage.hpo import get_search

bp = Blueprint("solutions", __name__, url_prefix="/v1")


@bp.get("/solution-versions/<version_id>")
@require_key("solutions")
def get_solution_version(version_id: str):
    store = get_store()
    try:
        version = store.get_solution_version(version_id)
    except NotFound:
        version = None
    # Another store's versions are as absent as ones that never existed.
    if version is None or version.dataset_group != current_key().dataset_group:
        raise NotFound(f"solution version {version_id!r} does not exist")
    search = get_search(store, version.id)
    return {
        "solutionVersionId": version.id,
        "solution": version.solution,
        "recipe": version.recipe,
        "trainingMode": version.training_mode,
        "status": version.status,
        "numInteractions": version.num_interactions,
        "trainingSeconds": None if version.training_seconds is None else round(version.training_seconds, 3),
        "metrics": version.metrics,
        "hyperparameters": _hyperparameters(version.artifact_path),
        "hpo": None if search is None else search.as_json(),
    }


def _hyperparameters(artifact_path: str | None) -> dict | None:
    """What the version was trained with, from its artifact's header (None if it is not here)."""
    try:
        return Recipe.saved_hyperparameters(artifact_path)
    except (OSError, KeyError, TypeError, ValueError):
        return None
