"""Filters as their own serving stage: created once (parsed and checked), applied per request.

The same filter means the same thing for every recipe: a request's filter becomes a
:class:`~engine.serving.filters_eval.FilterDecision`, which the campaign turns into the recipe's
``Query.exclude`` (or a narrower candidate list when re-ranking). Parsed expressions and the
catalog (items as columns) are cached per process; the shopper's history is read fresh on every
request, so an event sent a moment ago is already filtered on.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.errors import InvalidInput
from engine.expiring import Expiring
from engine.records import Item
from engine.serving.filters_eval import (
    ALLOW_ALL,
    EvaluationInput,
    FilterDecision,
    Table,
    evaluate,
    history_table,
    item_table,
    norm_key,
    single_row,
    user_table,
)
from engine.serving.filters_syntax import DATASETS, CurrentItem, FilterExpression, FilterSyntaxError, parse_filter
from engine.serving.filters_values import check_filter_values
from engine.storage import Store
from engine.storage import filters as storage
from engine.storage.filters import FilterInfo

_ARN_MARKER = ":filter/"
_MAX_CACHED_MASKS = 256


def filter_name_from(name: str | None = None, arn: str | None = None) -> str | None:
    """The filter a request names, by ``filter`` or by ``filterArn`` (the part after ``filter/``)."""
    from_arn = None
    if arn is not None:
        if not arn.startswith("arn:") or _ARN_MARKER not in arn:
            raise InvalidInput(
                f"filterArn {arn!r} is not a filter ARN (arn:aws:personalize:REGION:ACCOUNT:filter/NAME)"
            )
        from_arn = arn.rsplit(_ARN_MARKER, 1)[1]
    if name is not None and from_arn is not None and name != from_arn:
        raise InvalidInput(f"filter {name!r} and filterArn {arn!r} name different filters")
    return name if name is not None else from_arn


def create_filter(store: Store, dataset_group: str, name: str, expression: str) -> FilterInfo:
    """Parse ``expression`` and check it against the group's schemas before storing it, so a bad
    filter is refused at creation with the position and the reason, never at request time."""
    parsed = parse_filter(expression)
    _check_fields(parsed, store, dataset_group)
    return storage.add_filter(store, dataset_group, name, expression)


def _check_fields(parsed: FilterExpression, store: Store, dataset_group: str) -> None:
    """Fields must exist in the dataset's schema, when one was imported, and be filterable:
    Personalize refuses textual and boolean fields, and comparisons need numbers."""
    schemas: dict[str, dict[str, dict[str, Any]] | None] = {}

    def spec(dataset: str, name: str) -> dict[str, Any] | bool | None:
        if dataset not in schemas:
            schema = store.get_schema(dataset_group, dataset)
            schemas[dataset] = (
                {norm_key(f["name"]): f for f in schema.get("fields", []) if isinstance(f, dict) and "name" in f}
                if schema
                else None
            )
        fields = schemas[dataset]
        if fields is None:
            return True  # no schema to check against (items sent without one)
        return fields.get(norm_key(name))

    def check(dataset: str, label: str, name: str, op: str, pos: int) -> None:
        found = spec(dataset, name)
        if found is True or norm_key(name) in ("ITEMID", "USERID", "CREATIONTIMESTAMP"):
            return
        if found is None:
            raise FilterSyntaxError(f"the {label} schema has no field {name}", pos + 1)
        types = found.get("type")
        types = set(types) if isinstance(types, list) else {types}
        if found.get("textual"):
            raise FilterSyntaxError(
                f"{label}.{name} is a textual field, and textual fields cannot be filtered", pos + 1
            )
        if "boolean" in types:
            raise FilterSyntaxError(
                f"{label}.{name} is a boolean, and booleans cannot be filtered (use a string or 0/1)", pos + 1
            )
        if op in ("<", "<=", ">", ">=") and not types & {"int", "long", "float", "double"}:
            raise FilterSyntaxError(f"{op} compares numbers, and {label}.{name} is not numeric", pos + 1)

    for expr in parsed.expressions:
        for cond in expr.conditions():
            if cond.field.dataset in ("ITEMS", "USERS"):
                label = DATASETS[cond.field.dataset]
                check(cond.field.dataset, label, cond.field.name, cond.op, cond.field.pos)
                if isinstance(cond.operand, CurrentItem):
                    check("ITEMS", "Items", cond.operand.name, cond.op, cond.operand.pos)
        for cond in expr.if_conditions:
            check("USERS", "Users", cond.field.name, cond.op, cond.field.pos)


@dataclass
class _CatalogEntry:
    items: dict[str, Item]
    table: Table
    version: tuple[int, float]
    checked_at: float
    loaded_at: float


class FilterService:
    """Applies a dataset group's filters to requests. One per process (held by CampaignService)."""

    def __init__(self, store: Store, *, catalog_ttl_s: float = 1.0, full_reload_s: float = 300.0) -> None:
        self.store = store
        #: How long a catalog snapshot is trusted before checking whether items changed.
        self.catalog_ttl_s = catalog_ttl_s
        #: How often the catalog is read whole rather than merged with what changed.
        self.full_reload_s = full_reload_s
        self._parsed: dict[tuple[int, str], FilterExpression] = {}
        self._infos: Expiring[tuple[str, str], FilterInfo] = Expiring(self.FILTER_CACHE_SECONDS)
        self._catalogs: dict[str, _CatalogEntry] = {}
        self._lock = threading.Lock()

    def create(self, dataset_group: str, name: str, expression: str) -> FilterInfo:
        return create_filter(self.store, dataset_group, name, expression)

    #: How long a filter's definition is trusted before it is read again: a deleted or recreated
    #: filter reaches every worker within this time, without a query per request.
    FILTER_CACHE_SECONDS = 1.0

    def compiled(self, dataset_group: str, name: str) -> FilterExpression:
        """The parsed filter, parsed once per process (a recreated filter has a new row id)."""
        info = self._infos.get((dataset_group, name), lambda: storage.get_filter(self.store, dataset_group, name))
        key = (info.id, info.expression)
        parsed = self._parsed.get(key)
        if parsed is None:
            parsed = parse_filter(info.expression)
            self._parsed[key] = parsed
        return parsed

    def decide(
        self,
        dataset_group: str,
        name: str | None,
        values: Mapping[str, str] | None = None,
        *,
        user_id: str | None = None,
        item_id: str | None = None,
        where: str = "filterValues",
        history_pairs: Callable[[], list[tuple[str, str]]] | None = None,
    ) -> FilterDecision:
        """What filter ``name`` allows for this request; no filter allows everything.

        ``history_pairs`` supplies the shopper's (item, event type) pairs when the caller reads them
        anyway (a request shares one read of the shopper's events between its stages)."""
        values = check_filter_values(values, where)
        if name is None:
            if values:
                raise InvalidInput(f"{where} were given without a filter")
            return ALLOW_ALL
        parsed = self.compiled(dataset_group, name)
        if parsed.target != "ItemID":
            raise InvalidInput(f"filter {name!r} filters {parsed.target}s; item recommendations need an ItemID filter")
        if parsed.uses_current_item and item_id is None:
            used = next(
                c.operand.name for e in parsed.expressions for c in e.conditions() if isinstance(c.operand, CurrentItem)
            )
            raise InvalidInput(
                f"filter {name!r} uses CurrentItem.{used}, which needs the request's itemId (related items)"
            )

        catalog = _once(lambda: self.catalog(dataset_group))

        def current_item() -> Mapping[str, Any] | None:
            return catalog().row(item_id) if item_id is not None else None

        def user() -> Table:
            if user_id is None:
                return single_row(None, None)
            found = self.store.users(dataset_group, [user_id]).get(user_id)
            return single_row(user_id if found else None, found.properties if found else None)

        def history() -> Table:
            if history_pairs is not None:
                return history_table(history_pairs())
            pairs = storage.user_item_event_types(self.store, dataset_group, user_id) if user_id else []
            return history_table(pairs)

        data = EvaluationInput(
            values=values,
            catalog=catalog,
            history=_once(history),
            user=_once(user),
            current_item=_once(current_item),
        )
        return evaluate(parsed, data, name=name)

    def user_filter(self, dataset_group: str, name: str, *, recipe: str | None = None) -> UserFilter:
        """Filter ``name`` ready to rule on users (batch segments): a UserID filter, with the Users
        dataset and every user's event types read once for the whole job."""
        parsed = self.compiled(dataset_group, name)
        if parsed.target != "UserID":
            raise InvalidInput(
                f"filter {name!r} filters {parsed.target}s; user segments need a UserID filter, "
                'e.g. EXCLUDE UserID WHERE Users.MEMBERSHIP IN ("lapsed")'
            )
        if recipe == "item-attribute-affinity" and "INTERACTIONS" in parsed.datasets:
            raise InvalidInput(
                f"filter {name!r} tests Interactions, and item-attribute-affinity segments cannot use "
                "interaction filters (as in Personalize); filter on Users fields instead"
            )
        users = (
            _once(lambda: user_table(self.store.users(dataset_group)))
            if "USERS" in parsed.datasets
            else (lambda: Table([]))
        )
        events = (
            _once(lambda: history_table(storage.users_event_types(self.store, dataset_group)))
            if "INTERACTIONS" in parsed.datasets
            else (lambda: Table([]))
        )
        return UserFilter(name, parsed, users, events)

    def catalog(self, dataset_group: str) -> Table:
        """The group's items as columns, kept current without reading the whole catalog per request.

        At most every ``catalog_ttl_s`` seconds a (count, newest update) query says whether items
        changed; if so only the rows written since are read and merged in. An erased item (the count
        no longer adds up) or ``full_reload_s`` since the last full read means a full read, which
        also bounds what a write committed out of timestamp order could leave stale.
        """
        now = time.monotonic()
        entry = self._catalogs.get(dataset_group)
        if entry is not None and now - entry.checked_at < self.catalog_ttl_s:
            return entry.table
        version = storage.catalog_version(self.store, dataset_group)
        if entry is not None and entry.version == version and now - entry.loaded_at < self.full_reload_s:
            entry.checked_at = now
            return entry.table
        with self._lock:
            entry = self._catalogs.get(dataset_group)
            if entry is not None and entry.version == version and now - entry.loaded_at < self.full_reload_s:
                return entry.table
            items: dict[str, Item] | None = None
            loaded_at = now
            if entry is not None and now - entry.loaded_at < self.full_reload_s:
                items = dict(entry.items)
                for item_id, props, created, _ in storage.catalog_rows(
                    self.store, dataset_group, updated_since=entry.version[1]
                ):
                    items[item_id] = Item(item_id, props, created)
                loaded_at = entry.loaded_at
                if len(items) != version[0]:
                    items = None  # something was erased: read it all
            if items is None:
                rows = storage.catalog_rows(self.store, dataset_group)
                items = {item_id: Item(item_id, props, created) for item_id, props, created, _ in rows}
                loaded_at = now
                version = (len(rows), max((r[3] for r in rows), default=0.0))
            entry = _CatalogEntry(items, item_table(items), version, now, loaded_at)
            self._catalogs[dataset_group] = entry
            return entry.table


class UserFilter:
    """A UserID filter with its tables loaded: which users it allows, per set of filterValues."""

    def __init__(
        self, name: str, parsed: FilterExpression, users: Callable[[], Table], events: Callable[[], Table]
    ) -> None:
        self.name = name
        self.parsed = parsed
        self._users = users
        self._events = events
        self._masks: dict[frozenset[tuple[str, str]], np.ndarray] = {}
        self._masked: np.ndarray | None = None  # the user ids the cached masks are over

    def decide(self, values: Mapping[str, str] | None = None) -> FilterDecision:
        """The users allowed with these filterValues (Personalize's encoding, one set per input line)."""
        data = EvaluationInput(
            values=check_filter_values(values),
            catalog=self._users,
            history=self._events,
            user=lambda: Table([]),
            current_item=lambda: None,
        )
        return evaluate(self.parsed, data, name=self.name)

    def allowed(self, user_ids: np.ndarray, values: Mapping[str, str] | None = None) -> np.ndarray:
        """Mask over ``user_ids`` (a model's users) of those the filter keeps; lines with the same
        filterValues share one mask (a few hundred kept, as a file may vary them line by line)."""
        if self._masked is not user_ids or len(self._masks) >= _MAX_CACHED_MASKS:
            self._masks, self._masked = {}, user_ids
        key = frozenset((values or {}).items())
        mask = self._masks.get(key)
        if mask is None:
            mask = self.decide(values).mask(user_ids)
            self._masks[key] = mask
        return mask


def _once(fn):
    """Memoise a zero-argument loader, so an expression chain reads each table once per request."""
    cache: list = []

    def load():
        if not cache:
            cache.append(fn())
        return cache[0]

    return load


__all__ = ["FilterService", "UserFilter", "create_filter", "filter_name_from"]
