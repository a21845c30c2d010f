"""Run a platform back-fill into the store, checkpoint by checkpoint.

The adapter reads its platform's API page by page and yields records with a
:class:`~adapters.actions.Checkpoint` after each page; here each page's records are ingested in one
transaction and then the checkpoint's state is saved in the connection's settings. An interrupted
run (rate limit exhausted, network down, Ctrl-C) therefore loses at most the page in flight, and
the next run continues from the last saved page; a run after a complete one catches up on changes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from adapters import ADAPTERS
from adapters.actions import Checkpoint
from engine.errors import InvalidInput, NotFound
from engine.records import Record
from engine.storage.store import Store
from webhooks import connections

log = logging.getLogger(__name__)


@dataclass
class BackfillReport:
    platform: str
    dataset_group: str
    pages: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)

    def add(self, counts: dict[str, int]) -> None:
        for key, value in counts.items():
            self.counts[key] = self.counts.get(key, 0) + value

    def as_json(self) -> dict[str, Any]:
        return {
            "platform": self.platform,
            "datasetGroup": self.dataset_group,
            "pages": self.pages,
            "ingested": self.counts,
            "state": self.state,
        }


def run_backfill(
    store: Store,
    dataset_group: str,
    platform: str,
    *,
    since: float | None = None,
    client_options: dict[str, Any] | None = None,
    progress: Callable[[BackfillReport], None] | None = None,
) -> BackfillReport:
    """Back-fill one connected store; ``since`` (epoch seconds) starts a fresh pass from that time."""
    adapter_class = ADAPTERS.get(platform)
    if adapter_class is None:
        raise InvalidInput(f"unknown platform {platform!r}; known: {', '.join(sorted(ADAPTERS))}")
    try:
        _secret, config = store.connection(dataset_group, platform)
    except NotFound as exc:
        raise NotFound(
            f"{exc.message}: run `shelfwise connect {platform} --dataset-group {dataset_group} ...` first"
        ) from exc
    if connections.is_disabled(config):
        raise InvalidInput(
            f"the {platform} connection of {dataset_group!r} is disabled (the store uninstalled Shelfwise); "
            "connect it again to back-fill"
        )
    settings = dict(config)
    if since is not None:
        settings["backfill_since"] = since
    adapter = adapter_class.from_connection(settings)
    client = adapter.api_client(**(client_options or {}))

    report = BackfillReport(platform, dataset_group, state=dict(config.get(connections.BACKFILL) or {}))
    pending: list[Record] = []
    for item in adapter.backfill(client):
        if not isinstance(item, Checkpoint):
            pending.append(item)
            continue
        report.add(store.ingest(dataset_group, pending))
        pending = []
        connections.update_config(store, dataset_group, platform, {connections.BACKFILL: item.state})
        report.pages += 1
        report.state = item.state
        if progress is not None:
            progress(report)
    if pending:  # records after the last checkpoint (an adapter that yields none)
        report.add(store.ingest(dataset_group, pending))
    return report
