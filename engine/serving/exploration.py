"""Exploration: give new and rarely-shown items exposure, and take it away from those nobody clicks.

Personalize's campaign settings, same names: ``explorationWeight`` (0 = none, 1 = the most;
default 0.3) and ``explorationItemAgeCutOff`` (days; items created more recently count as new;
default 30). Up to half of a list at weight 1 is given to exploration candidates: items created
within the cut-off, or shown fewer than ``RARELY_SHOWN`` times (once the store reports impressions:
``impression`` events, as the widget sends for the cards a shopper actually saw). Candidates are chosen by Thompson
sampling on their click-through so far (clicks and impressions from the dataset group's events):
an item whose impressions draw no clicks soon samples low and drops out, one that is clicked keeps
its exposure — the feedback loop the widget's impression and click events close.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from sqlalchemy import func, select

from engine.errors import InvalidInput
from engine.records import CLICK, IMPRESSION
from engine.serving.filters_eval import FilterDecision
from engine.storage import Store
from engine.storage import tables as t

log = logging.getLogger(__name__)

DEFAULT_WEIGHT = 0.3
DEFAULT_AGE_CUTOFF_DAYS = 30.0
#: Items shown fewer times than this still count as unexplored.
RARELY_SHOWN = 20
#: Impression and click counts look this far back.
STATS_WINDOW_DAYS = 30.0


@dataclass(frozen=True)
class ExplorationConfig:
    weight: float = DEFAULT_WEIGHT
    age_cutoff_days: float = DEFAULT_AGE_CUTOFF_DAYS

    @classmethod
    def from_campaign(cls, config: dict) -> ExplorationConfig:
        """Validated from a campaign's config; Personalize sends these as strings."""
        try:
            weight = float(config.get("explorationWeight", DEFAULT_WEIGHT))
            cutoff = float(config.get("explorationItemAgeCutOff", DEFAULT_AGE_CUTOFF_DAYS))
        except (TypeError, ValueError):
            raise InvalidInput("explorationWeight and explorationItemAgeCutOff must be numbers") from None
        if not 0.0 <= weight <= 1.0:
            raise InvalidInput("explorationWeight must be between 0 and 1")
        if cutoff <= 0:
            raise InvalidInput("explorationItemAgeCutOff must be a positive number of days")
        return cls(weight, cutoff)

    def slots(self, num_results: int, rng: np.random.Generator) -> int:
        """How many of ``num_results`` go to exploration: weight × half the list, rounded at random
        so small lists explore too, in proportion."""
        expected = num_results * self.weight * 0.5
        return min(num_results, int(expected) + int(rng.random() < expected - int(expected)))


#: Up to this many candidates are ruled on one by one; a longer pool (a store reporting
#: impressions: every known item shown fewer than RARELY_SHOWN times) is ruled on as arrays.
SMALL_POOL = 256


def best(values: np.ndarray, n: int) -> np.ndarray:
    """``np.argsort(-values, kind="stable")[:n]`` (highest first, ties by position) without
    sorting them all: everything at or above the n-th highest value, in position order, sorted."""
    if n <= 0:
        return np.empty(0, dtype=np.int64)
    if n * 4 >= len(values):
        return np.argsort(-values, kind="stable")[:n]
    threshold = np.partition(values, len(values) - n)[len(values) - n]
    above = np.flatnonzero(values >= threshold)
    return above[np.argsort(-values[above], kind="stable")[:n]]


@dataclass
class CandidatePool:
    """One snapshot's exploration candidates for one model vocabulary (sorted ids), with their
    impression and click counts as arrays: worked out once per snapshot, so a request only rules
    out what it must, however many candidates there are."""

    ids: list[str]
    shown: np.ndarray  # float64, impressions per candidate
    clicked: np.ndarray  # float64, clicks per candidate

    @cached_property
    def position(self) -> dict[str, int]:
        return {item: k for k, item in enumerate(self.ids)}

    @cached_property
    def array(self) -> np.ndarray:
        return np.asarray(self.ids, dtype=str)

    def allowed(self, ruled_out: Iterable[str], decision: FilterDecision) -> np.ndarray:
        """Positions of the candidates not in ``ruled_out`` that ``decision`` allows, in order."""
        if len(self.ids) <= SMALL_POOL:
            ruled_out = ruled_out if isinstance(ruled_out, set | frozenset) else set(ruled_out)
            return np.array(
                [k for k, c in enumerate(self.ids) if c not in ruled_out and decision.allows(c)], dtype=np.int64
            )
        keep = np.ones(len(self.ids), dtype=bool)
        named = list(ruled_out)
        if decision.restricts and decision.names_all_it_rules_out:
            named += decision.exclude.tolist()  # exactly what it rules out: no pass over the pool
        position = self.position
        keep[[p for c in named if (p := position.get(c)) is not None]] = False
        if decision.restricts and not decision.names_all_it_rules_out:
            keep &= decision.mask(self.array)
        return np.flatnonzero(keep)


@dataclass
class _Stats:
    impressions: dict[str, int]
    clicks: dict[str, int]
    created: dict[str, float]
    loaded_at: float
    #: Candidate pools worked out from this snapshot, per (age cut-off, model vocabulary).
    candidates: dict[tuple[float, int], tuple[np.ndarray, CandidatePool]] = field(default_factory=dict)


class ExplorationService:
    """Per-process cache of each dataset group's impression/click counts and item ages.

    Reading them scans a month of impressions and every item's creation time (seconds on a big
    store), so an expired snapshot keeps answering while one background thread reads the next;
    only the very first request of a process (or ``ttl_s=0``) waits for a read.
    """

    def __init__(self, store: Store, *, ttl_s: float = 30.0) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self._stats: dict[str, _Stats] = {}
        self._lock = threading.Lock()
        self._refreshing: set[str] = set()

    def stats(self, dataset_group: str) -> _Stats:
        cached = self._stats.get(dataset_group)
        if cached is not None and time.monotonic() - cached.loaded_at < self.ttl_s:
            return cached
        if cached is not None and self.ttl_s > 0:
            self._refresh_in_background(dataset_group)
            return cached
        with self._lock:
            return self._load(dataset_group)

    def _refresh_in_background(self, dataset_group: str) -> None:
        with self._lock:
            if dataset_group in self._refreshing:
                return
            self._refreshing.add(dataset_group)

        def refresh() -> None:
            try:
                self._load(dataset_group)
            except Exception:  # the stale snapshot keeps serving; the next request tries again
                log.exception("could not refresh exploration statistics for %s", dataset_group)
            finally:
                with self._lock:
                    self._refreshing.discard(dataset_group)

        threading.Thread(target=refresh, name=f"exploration-stats-{dataset_group}", daemon=True).start()

    def _load(self, dataset_group: str) -> _Stats:
        group = self.store.get_dataset_group(dataset_group)
        since = time.time() - STATS_WINDOW_DAYS * 86400
        impressions: dict[str, int] = {}
        clicks: dict[str, int] = {}
        with self.store.engine.connect() as conn:
            rows = conn.execute(
                select(t.InteractionRow.item_id, t.InteractionRow.event_type, func.count())
                .where(
                    t.InteractionRow.dataset_group_id == group.id,
                    t.InteractionRow.event_type.in_([IMPRESSION, CLICK]),
                    t.InteractionRow.timestamp >= since,
                )
                .group_by(t.InteractionRow.item_id, t.InteractionRow.event_type)
            ).all()
            created = dict(
                conn.execute(
                    select(t.ItemRow.item_id, t.ItemRow.creation_timestamp).where(
                        t.ItemRow.dataset_group_id == group.id, t.ItemRow.creation_timestamp.isnot(None)
                    )
                ).all()
            )
        for item_id, event_type, count in rows:
            (impressions if event_type == IMPRESSION else clicks)[item_id] = int(count)
        stats = _Stats(impressions, clicks, created, time.monotonic())
        self._stats[dataset_group] = stats
        return stats

    def candidates(self, dataset_group: str, config: ExplorationConfig, known_items: np.ndarray) -> CandidatePool:
        """New items (created within the cut-off) and items the model knows but few have seen;
        worked out once per snapshot (a pass over the catalog), not per request."""
        stats = self.stats(dataset_group)
        key = (config.age_cutoff_days, id(known_items))
        cached = stats.candidates.get(key)
        if cached is not None and cached[0] is known_items:  # an id can be reused once a model is gone
            return cached[1]
        ids = self._candidates(stats, config, known_items)
        found = CandidatePool(
            ids,
            np.array([stats.impressions.get(c, 0) for c in ids], dtype=np.float64),
            np.array([stats.clicks.get(c, 0) for c in ids], dtype=np.float64),
        )
        if len(stats.candidates) > 16:  # a few campaigns' models per snapshot at most
            stats.candidates.clear()
        stats.candidates[key] = (known_items, found)
        return found

    @staticmethod
    def _candidates(stats: _Stats, config: ExplorationConfig, known_items: np.ndarray) -> list[str]:
        cutoff = time.time() - config.age_cutoff_days * 86400
        new = {item for item, created in stats.created.items() if created is not None and created >= cutoff}
        if not stats.impressions:
            # A store that reports no impressions says nothing about what was rarely shown: only
            # its new items are explored, rather than the whole catalog at random.
            return sorted(new)
        rarely = {item for item in known_items.tolist() if stats.impressions.get(item, 0) < RARELY_SHOWN}
        return sorted(new | rarely)

    @staticmethod
    def choose(
        pool: CandidatePool, ruled_out: Iterable[str], decision: FilterDecision, n: int, rng: np.random.Generator
    ) -> list[str]:
        """Thompson sampling on the click-through of each candidate not in ``ruled_out`` that
        ``decision`` allows: Beta(clicks + 1, misses + 1), the ``n`` best draws."""
        if n <= 0:
            return []
        allowed = pool.allowed(ruled_out, decision)
        if len(allowed) == 0:
            return []
        shown, clicked = pool.shown[allowed], pool.clicked[allowed]
        samples = rng.beta(clicked + 1.0, np.maximum(shown - clicked, 0.0) + 1.0)
        return [pool.ids[i] for i in allowed[best(samples, n)].tolist()]
