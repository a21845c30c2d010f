"""Helpers for intake tests: wait for the background worker, sign deliveries for each platform."""

from __future__ import annotations

import time
from collections.abc import Callable

from engine.storage.store import Store
from webhooks import queue


def settle(store: Store, group: str | None = None, *, timeout: float = 10.0) -> list[queue.DeliverySummary]:
    """The group's deliveries once the worker has dealt with every one of them (oldest first)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = queue.summaries(store, dataset_group=group)
        if all(r.status not in (*queue.PENDING, queue.PROCESSING) for r in rows):
            return rows
        if time.monotonic() > deadline:
            raise AssertionError(f"deliveries still waiting after {timeout}s: {[(r.id, r.status) for r in rows]}")
        time.sleep(0.01)


def wait_for(condition: Callable[[], bool], *, timeout: float = 10.0, what: str = "condition") -> None:
    """Poll until ``condition()`` holds (work the worker does just after marking a delivery)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout}s")
        time.sleep(0.01)
