"""Retention of trained models: scheduled retraining writes a new artifact every couple of hours,
so without pruning a solution's folder grows by a dozen model files a day.

After each scheduled training the solution keeps its newest ``keep`` versions' files and every
version a campaign serves; older ones are marked ARCHIVED (their record, metrics and HPO trials
stay, so history and GetSolutionMetrics still answer) and their files deleted. An archived version
cannot be deployed again (``campaign create`` says why).
"""

from __future__ import annotations

import logging
from pathlib import Path

from engine.storage import Store
from engine.storage.store import ARCHIVED

log = logging.getLogger(__name__)


def prune_versions(store: Store, dataset_group: str, solution: str, *, keep: int) -> list[str]:
    """Archive the solution's versions past the newest ``keep`` that nothing serves; returns their ids."""
    if keep < 1:
        return []
    versions = store.solution_version_ids(dataset_group, solution)
    served = store.served_version_ids(dataset_group)
    archived = []
    for version_id, status in versions[keep:]:
        if version_id in served or status == ARCHIVED:
            continue
        path = store.get_solution_version(version_id).artifact_path
        # Marked first, so no campaign is pointed at it while its file goes.
        store.set_solution_version_status(version_id, ARCHIVED)
        if path:
            Path(path).unlink(missing_ok=True)
        archived.append(version_id)
    if archived:
        log.info(
            "retention %s/%s: archived %d old versions (kept the newest %d and those served)",
            dataset_group,
            solution,
            len(archived),
            keep,
        )
    return archived
