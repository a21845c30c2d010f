"""Training: snapshot a dataset group from the store, fit a recipe, save a solution version."""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from engine.errors import InvalidInput, NotFound, ShelfwiseError
from engine.jobs.hpo import HpoSettings, check_settings, search
from engine.jobs.snapshot import read_interactions, snapshot_directory, to_training_data
from engine.recipes import Recipe, TrainingData, recipe_class
from engine.recipes.catalog import Catalog
from engine.recipes.implicit_backend import progress_bars
from engine.records import Item
from engine.storage import SolutionVersionInfo, Store
from engine.storage.columns import InteractionColumns
from engine.storage.contexts import contextual_fields, interaction_contexts
from engine.storage.db import in_memory

log = logging.getLogger(__name__)

TRAINING_MODES = ("full", "update")


def load_training_data(
    store: Store, dataset_group: str, *, snapshot_dir: str | Path | None = None, whole_catalog: bool = True
) -> TrainingData:
    """The group's training snapshot: interactions in time order, the catalog and the users.

    With ``snapshot_dir`` the interaction columns are kept there and later reads fetch only the
    interactions added since (engine.jobs.snapshot); a schema with contextual fields reads
    everything each time (the contexts are read beside the columns, in the same order).

    ``whole_catalog``: every catalog entry, read in a thread beside the interactions. Otherwise
    the catalog is a lazy :class:`~engine.recipes.catalog.Catalog`: its ids now, its entries when a
    recipe asks (training's own; user-personalization reads them in a thread while ALS fits), only
    those it asks for where it can say which. An in-memory database's catalog is read whole, here:
    another thread would get another, empty database.
    """
    # Contextual metadata (device, location...) only where the schema declares it.
    contextual = bool(contextual_fields(store, dataset_group))
    memory = in_memory(store.database_url)
    whole_catalog = whole_catalog or memory
    beside = whole_catalog and not memory
    # The catalog is read and the new snapshot written while the interactions are read and become
    # training data (leaving the block waits for both).
    with ThreadPoolExecutor(2, thread_name_prefix="training-read") as side:
        whole = side.submit(store.items, dataset_group) if beside else None

        def training_data(columns: InteractionColumns) -> TrainingData:
            # Made while the snapshot's row count is still being checked (engine.jobs.snapshot).
            contexts = interaction_contexts(store, dataset_group) if contextual else None
            if whole is not None:
                items: Mapping[str, Item] = whole.result()
            else:
                items = store.items(dataset_group) if whole_catalog else training_catalog(store, dataset_group)
            return to_training_data(
                columns,
                items,
                store.users(dataset_group),
                contexts if contexts is not None and len(contexts) == len(columns) else None,
            )

        directory = None if contextual else snapshot_dir
        return read_interactions(store, dataset_group, directory, writer=side, then=training_data)


#: Ids per query when a training reads some of the catalog's entries (bound parameters per statement).
CATALOG_CHUNK = 500


def training_catalog(store: Store, dataset_group: str) -> Catalog:
    """The group's catalog for training: its ids now, its entries from the store when needed."""

    def some(ids: list[str]) -> dict[str, Item]:
        found: dict[str, Item] = {}
        for lo in range(0, len(ids), CATALOG_CHUNK):
            found.update(store.items(dataset_group, ids[lo : lo + CATALOG_CHUNK]))
        return found

    return Catalog(store.item_ids(dataset_group), lambda: store.items(dataset_group), some)


def ensure_solution(
    store: Store, dataset_group: str, solution: str, recipe: str, hyperparameters: dict[str, Any] | None
):
    """Get the named solution, creating it on first use; its recipe cannot change afterwards."""
    cls = recipe_class(recipe)
    try:
        existing = store.get_solution(dataset_group, solution)
    except NotFound:
        config = {"hyperparameters": cls.validate_hyperparameters(hyperparameters or {})}
        return store.create_solution(dataset_group, solution, cls.name, config)
    if existing.recipe != cls.name:
        raise InvalidInput(
            f"solution {solution!r} uses recipe {existing.recipe!r}; create a new solution for {cls.name!r}"
        )
    return existing


def train(
    store: Store,
    artifact_dir: str | Path,
    *,
    dataset_group: str,
    recipe: str,
    solution: str,
    mode: str = "full",
    hyperparameters: dict[str, Any] | None = None,
    metrics: bool | None = None,
    hpo: HpoSettings | None = None,
    progress: bool = False,
) -> SolutionVersionInfo:
    """Train one solution version and record it; returns the new version.

    A FULL version also stores its offline metrics (GetSolutionMetrics): the recipe is trained
    once more on 90% of the users and scored on the rest (engine.evaluation). ``metrics=False``
    skips that (it costs about one more training); None reads ``SHELFWISE_TRAINING_METRICS``
    (on unless "0").

    ``hpo`` searches the recipe's hyperparameters on validation users first (engine.jobs.hpo) and
    trains with the best; ``progress`` draws progress bars on stderr (for a terminal).
    """
    mode = mode.lower()
    if mode not in TRAINING_MODES:
        raise InvalidInput(f"invalid training mode {mode!r}: use full or update")
    if hpo is not None:
        if mode != "full":
            raise InvalidInput("--hpo runs with --mode full; an UPDATE keeps the settings of the version it updates")
        check_settings(recipe_class(recipe), hpo)
    info = ensure_solution(store, dataset_group, solution, recipe, hyperparameters)
    cls = recipe_class(info.recipe)
    last = None
    if mode == "update":
        last = store.latest_solution_version(dataset_group, solution)
        if last is None:
            raise InvalidInput(f"solution {solution!r} has no version yet: train it with --mode full first")

    started = time.perf_counter()
    # An UPDATE's previous version is loaded (its file mapped, engine.recipes.array_file) while the
    # store is read.
    with ThreadPoolExecutor(1, thread_name_prefix="previous-version") as side:
        loading = side.submit(cls.load, last.artifact_path) if last is not None else None
        # The catalog's entries are read when a recipe first asks for them (user-personalization: in
        # a thread while ALS fits; sims: never), its ids now.
        data = load_training_data(
            store, dataset_group, snapshot_dir=snapshot_directory(artifact_dir, dataset_group), whole_catalog=False
        )
        previous = loading.result() if loading is not None else None
    if len(data) == 0:
        raise InvalidInput(f"dataset group {dataset_group!r} has no interactions to train on")
    # The highest interaction id this version sees, kept in its artifact: the next UPDATE tells
    # the events this version never saw from the ones it did (None where an older artifact lacks it).
    watermark = int(data.interaction_ids.max()) if data.interaction_ids is not None else None
    if previous is not None:
        seen = previous.data_watermark
        data.new_events = None if seen is None or data.interaction_ids is None else data.interaction_ids > seen
    # Past this point only the watermark and the new-event marks speak of interaction ids: let
    # them go (8 bytes an event, 200 MB at 25 million, once the snapshot writer is done with them).
    data.interaction_ids = None
    # An UPDATE keeps the settings of the version it updates (a search may have chosen them).
    settings = previous.hyperparameters if previous is not None else info.config.get("hyperparameters", {})
    version_id = f"sv-{uuid.uuid4().hex[:16]}"
    if hpo is not None:
        settings = search(store, info, cls, data, settings, version_id, hpo, progress=progress).hyperparameters
        # The choice becomes the solution's own: later FULL trainings (by hand or on the retraining
        # schedule) keep it rather than going back to the settings the search started from.
        info = store.set_solution_hyperparameters(info, settings)
    with progress_bars(progress):
        model = cls(**settings).fit(data, previous=previous)
    model.data_watermark = watermark
    n_events = len(data)
    wants_metrics = _wants_metrics(metrics, mode)
    if not wants_metrics:
        # Nothing reads the training data any more: let it go before the artifact is written, whose
        # file pages then reuse the memory it held (a training process's first touch of fresh pages
        # costs about as much as writing them).
        del data
    path = Path(artifact_dir) / dataset_group / solution / f"{version_id}.npz"
    model.save(path)
    elapsed = time.perf_counter() - started
    log.info(
        "trained %s/%s (%s, %s) on %d events in %.2fs", dataset_group, solution, info.recipe, mode, n_events, elapsed
    )
    scores = {}
    if wants_metrics:
        scores = _offline_metrics(data, cls, settings)
    return store.add_solution_version(
        info,
        training_mode=mode,
        artifact_path=str(path.resolve()),
        num_interactions=n_events,
        training_seconds=elapsed,
        metrics=scores,
        version_id=version_id,
    )


def _wants_metrics(metrics: bool | None, mode: str) -> bool:
    if mode != "full":  # UPDATE folds in new items; Personalize reports no new metrics for it either
        return False
    if metrics is None:
        return os.environ.get("SHELFWISE_TRAINING_METRICS", "1") != "0"
    return metrics


def _offline_metrics(data: TrainingData, cls: type[Recipe], hyperparameters: dict[str, Any]) -> dict[str, float]:
    from engine.evaluation import solution_metrics

    try:
        return solution_metrics(data, cls, hyperparameters)
    except ShelfwiseError as exc:  # too little data to hold any users out: the version still trains
        log.info("no offline metrics for %s: %s", cls.name, exc.message)
        return {}
