"""Per-process caches of definitions read on every request (dataset groups, keys, campaigns,
filters, schemas): each entry is trusted for a few seconds, so a change reaches every worker within
that time without a query per request."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Expiring(Generic[K, V]):
    def __init__(self, seconds: float, *, max_entries: int | None = None) -> None:
        self.seconds = seconds
        #: Past this many entries the cache starts again (keys that are never asked twice, such
        #: as wrong API keys, must not grow it without bound).
        self.max_entries = max_entries
        self._entries: dict[K, tuple[V, float]] = {}

    def get(self, key: K, load: Callable[[], V]) -> V:
        """The cached value while it is fresh, else ``load()`` (not cached if it raises)."""
        cached = self._entries.get(key)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        value = load()
        if self.max_entries is not None and len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[key] = (value, time.monotonic() + self.seconds)
        return value

    def discard(self, key: K) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()
