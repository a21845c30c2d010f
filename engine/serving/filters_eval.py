"""Evaluating a parsed filter into a decision about item ids, vectorised over the catalog.

Conditions are tests on the rows of one dataset: the catalog (one row per item), the shopper's
interactions (one row per item and event type) or the shopper. An expression keeps the ids of
the rows its WHERE matches; expressions combine as Personalize documents (reference §1.3):
``Include A | Include B | Exclude C`` allows (A ∪ B) − C, and with no INCLUDE everything but the
excluded. Semantics chosen where Personalize is silent, kept the same for every recipe:

* IN / NOT IN are set tests on exact strings; a multi-valued field (``shoes|sale``) is IN a list
  when any of its values is; NOT IN is exactly the opposite of IN, so an item without the field is
  NOT IN anything. Event types match case-insensitively, ``*`` matches every event type.
* <, <=, >, >=, and = / != with a number compare numbers (a field holding "45" counts as 45); they
  are false for an item whose field is missing or not a number.
* Items the catalog does not describe (known to a model, never imported) are treated as items
  with no fields at all, so ``EXCLUDE ... NOT IN (...)`` removes them and ``INCLUDE ... IN (...)``
  leaves them out.
* An IF that does not hold (an unknown shopper, a missing field) switches its expression off.
* EXCLUDE expressions missing a $PARAMETER are skipped; INCLUDE ones are an error (reference §1.2).

A UserID filter (batch segments) is the same evaluation over user ids: the Users dataset stands in
for the catalog and every user's event types for the shopper's interactions, so a user the Users
dataset does not describe is treated like an item the catalog lacks.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping, Sequence, Set
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from engine.errors import InvalidInput
from engine.serving.filters_syntax import (
    COMPARISONS,
    Condition,
    CurrentItem,
    Expression,
    FilterExpression,
    Literal,
    Node,
    Param,
    Wildcard,
)
from engine.serving.filters_values import Decoded, as_number, decode_value

_EMPTY_INDEX = np.empty(0, dtype=np.int64)
_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def norm_key(name: str) -> str:
    """Field names match case- and underscore-insensitively: CATEGORY_L1, category_l1 and
    categoryL1 (PutItems' camelCase) are one field."""
    return name.upper().replace("_", "")


def value_strings(value: Any) -> tuple[str, ...]:
    """A property's values as the exact strings IN compares against."""
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(value.split("|")) if "|" in value else (value,)
    if isinstance(value, bool):
        return (str(value),)
    if isinstance(value, int | float):
        forms = {str(value)}
        if float(value).is_integer():
            forms.update({str(int(value)), repr(float(value))})
        return tuple(forms)
    if isinstance(value, list | tuple):
        return tuple(s for v in value for s in value_strings(v))
    return (str(value),)


def value_number(value: Any) -> float:
    if isinstance(value, bool) or value is None:
        return np.nan
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        number = as_number(value.strip())
        return np.nan if number is None else number
    return np.nan


# --------------------------------------------------------------------------- tables
class Table:
    """Rows of one dataset with lazily built columns: an inverted index per field for IN, a float
    array per field for comparisons. Built once per catalog snapshot and reused by requests, so
    rows are kept as given (not copied) and only the fields filters ask about are ever read."""

    def __init__(
        self,
        ids: Sequence[str],
        rows: Sequence[Mapping[str, Any]] | None = None,
        *,
        columns: Mapping[str, Sequence[Any]] | None = None,
        lower_case: Iterable[str] = (),
    ) -> None:
        self.ids = np.asarray(list(ids), dtype=str) if len(ids) else np.empty(0, dtype=str)
        self._rows: Sequence[Mapping[str, Any]] = rows if rows is not None else [{}] * len(self.ids)
        #: Whole columns given up front (ITEM_ID, CREATION_TIMESTAMP, EVENT_TYPE); they win over rows.
        self._columns = {norm_key(k): v for k, v in (columns or {}).items()}
        self._lower = {norm_key(f) for f in lower_case}
        self._index: dict[str, tuple[dict[str, np.ndarray], np.ndarray]] = {}
        self._numbers: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.ids)

    @cached_property
    def _positions(self) -> dict[str, int]:
        return {entity: row for row, entity in enumerate(self.ids.tolist())}

    @property
    def id_set(self) -> Set[str]:
        return self._positions.keys()

    def row(self, entity_id: str) -> Mapping[str, Any] | None:
        """One row's fields, None when it is not here."""
        position = self._positions.get(entity_id)
        if position is None:
            return None
        return {**self._rows[position], **{k: column[position] for k, column in self._columns.items()}}

    def _raw(self, name: str) -> Iterable[Any]:
        key = norm_key(name)
        if key in self._columns:
            return self._columns[key]
        upper = name.upper()
        return (_lookup(row, upper, key) for row in self._rows)

    def _inverted(self, name: str) -> tuple[dict[str, np.ndarray], np.ndarray]:
        key = norm_key(name)
        cached = self._index.get(key)
        if cached is None:
            lower = key in self._lower
            postings: dict[str, list[int]] = {}
            has = np.zeros(len(self), dtype=bool)
            for row, value in enumerate(self._raw(name)):
                strings = value_strings(value)
                if strings:
                    has[row] = True
                for s in set(strings):
                    postings.setdefault(s.lower() if lower else s, []).append(row)
            cached = ({s: np.asarray(r, dtype=np.int64) for s, r in postings.items()}, has)
            self._index[key] = cached
        return cached

    def isin(self, name: str, values: Iterable[str], *, wildcard: bool = False) -> np.ndarray:
        index, has = self._inverted(name)
        if wildcard:
            return has.copy()
        lower = norm_key(name) in self._lower
        mask = np.zeros(len(self), dtype=bool)
        for v in values:
            mask[index.get(v.lower() if lower else v, _EMPTY_INDEX)] = True
        return mask

    def numbers(self, name: str) -> np.ndarray:
        key = norm_key(name)
        column = self._numbers.get(key)
        if column is None:
            column = np.fromiter((value_number(v) for v in self._raw(name)), dtype=np.float64, count=len(self))
            self._numbers[key] = column
        return column


def _lookup(row: Mapping[str, Any], upper: str, key: str) -> Any:
    """A row's value for a field: by its upper-case name (how imports store it), else by any
    spelling that normalises the same (PutItems' camelCase)."""
    value = row.get(upper)
    if value is not None:
        return value
    for k, v in row.items():
        if norm_key(k) == key:
            return v
    return None


def item_table(items: Mapping[str, Any]) -> Table:
    """The catalog as a Table; ITEM_ID and CREATION_TIMESTAMP are fields like any other."""
    ids = sorted(items)
    entries = [items[i] for i in ids]
    created = [
        e.creation_timestamp
        if e.creation_timestamp is not None
        else _lookup(e.properties, "CREATION_TIMESTAMP", "CREATIONTIMESTAMP")
        for e in entries
    ]
    return Table(ids, [e.properties for e in entries], columns={"ITEM_ID": ids, "CREATION_TIMESTAMP": created})


def user_table(users: Mapping[str, Any]) -> Table:
    """The Users dataset as a Table (the "catalog" a UserID filter's Users conditions test)."""
    ids = sorted(users)
    return Table(ids, [users[u].properties for u in ids], columns={"USER_ID": ids})


def history_table(pairs: Iterable[tuple[str, str]]) -> Table:
    """A shopper's interactions, one row per (item, event type): the whole history, uncapped."""
    pairs = list(pairs)
    return Table([i for i, _ in pairs], columns={"EVENT_TYPE": [e for _, e in pairs]}, lower_case=["EVENT_TYPE"])


def single_row(entity_id: str | None, properties: Mapping[str, Any] | None) -> Table:
    """One entity (the shopper for IF, the blank item); no row at all when it is unknown."""
    if entity_id is None:
        return Table([])
    return Table([entity_id], [dict(properties or {})])


BLANK_ITEM = Table([""], [{}])


# --------------------------------------------------------------------------- decisions
@dataclass(frozen=True)
class FilterDecision:
    """What a filter allows for one request. ``include`` None: no INCLUDE applies (all allowed
    but the excluded). The ``*_unlisted`` flags say what happens to items the catalog lacks."""

    include: np.ndarray | None = None  # ids, str
    exclude: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=str))
    include_unlisted: bool = False
    exclude_unlisted: bool = False
    catalog: Table | None = None  # what "listed" means; None when only interactions were looked at

    @property
    def restricts(self) -> bool:
        return self.include is not None or len(self.exclude) > 0 or self.exclude_unlisted

    @property
    def names_all_it_rules_out(self) -> bool:
        """Whether ``exclude`` is exactly what this decision rules out (no INCLUDE, nothing said
        about items the catalog lacks), as for ``EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN
        (...)``: a request then needs no pass over a model's whole vocabulary (:meth:`excluded_from`
        costs milliseconds at 100,000 ids) to know what to leave out."""
        return self.include is None and not self.exclude_unlisted

    @cached_property
    def _include_set(self) -> frozenset[str]:
        return frozenset(self.include.tolist()) if self.include is not None else frozenset()

    @cached_property
    def _exclude_set(self) -> frozenset[str]:
        return frozenset(self.exclude.tolist())

    def _unlisted(self, item_id: str) -> bool:
        return self.catalog is None or item_id not in self.catalog.id_set

    def allows(self, item_id: str) -> bool:
        if self.include is not None and not (
            item_id in self._include_set or (self.include_unlisted and self._unlisted(item_id))
        ):
            return False
        return not (item_id in self._exclude_set or (self.exclude_unlisted and self._unlisted(item_id)))

    def mask(self, item_ids: np.ndarray) -> np.ndarray:
        """Vectorised :meth:`allows` over many ids (a model's whole vocabulary)."""
        ids = np.asarray(item_ids, dtype=str)
        need_unlisted = (self.include is not None and self.include_unlisted) or self.exclude_unlisted
        if need_unlisted and self.catalog is not None:
            unlisted = ~np.isin(ids, self.catalog.ids)
        else:
            unlisted = np.full(len(ids), need_unlisted, dtype=bool)
        allowed = np.ones(len(ids), dtype=bool)
        if self.include is not None:
            allowed = np.isin(ids, self.include) | (unlisted & self.include_unlisted)
        if len(self.exclude):
            allowed &= ~np.isin(ids, self.exclude)
        if self.exclude_unlisted:
            allowed &= ~unlisted
        return allowed

    def excluded_from(self, item_ids: np.ndarray) -> list[str]:
        """The ids of ``item_ids`` this decision rules out (what becomes Query.exclude)."""
        if not self.restricts:
            return []
        ids = np.asarray(item_ids, dtype=str)
        return ids[~self.mask(ids)].tolist()


ALLOW_ALL = FilterDecision()


@dataclass
class EvaluationInput:
    """Everything a filter may look at for one request; tables are fetched only when needed."""

    values: Mapping[str, str]
    catalog: Callable[[], Table]
    history: Callable[[], Table]
    user: Callable[[], Table]
    current_item: Callable[[], Mapping[str, Any] | None]


def evaluate(parsed: FilterExpression, data: EvaluationInput, *, name: str = "filter") -> FilterDecision:
    """Decide which items ``parsed`` allows; raises InvalidInput for missing or bad values."""
    decoded = _decode_values(parsed, data.values, name)
    missing_include = [p for e in parsed.expressions if e.action == "INCLUDE" for p in e.params if p not in decoded]
    if missing_include:
        names = ", ".join(f"${p}" for p in dict.fromkeys(missing_include))
        raise InvalidInput(f"filter {name!r} needs filterValues for {names} (INCLUDE expressions need all of theirs)")

    includes: list[tuple[np.ndarray, bool]] = []
    excludes: list[tuple[np.ndarray, bool]] = []
    catalog: Table | None = None
    for expr in parsed.expressions:
        if any(p not in decoded for p in expr.params):
            continue  # an EXCLUDE whose values were not given: Personalize skips it
        if expr.if_conditions and not _if_holds(expr, data, decoded):
            continue
        if expr.dataset == "INTERACTIONS":
            matched, blank = _matching_ids(expr.where, data.history(), data, decoded), False
        else:
            catalog = data.catalog()
            matched = _matching_ids(expr.where, catalog, data, decoded)
            blank = bool(_mask(expr.where, BLANK_ITEM, data, decoded)[0])
        (includes if expr.action == "INCLUDE" else excludes).append((matched, blank))
    if not includes and not excludes:
        return ALLOW_ALL
    return FilterDecision(
        include=np.concatenate([m for m, _ in includes]) if includes else None,
        exclude=np.concatenate([m for m, _ in excludes]) if excludes else np.empty(0, dtype=str),
        include_unlisted=any(b for _, b in includes),
        exclude_unlisted=any(b for _, b in excludes),
        catalog=catalog,
    )


def _decode_values(parsed: FilterExpression, values: Mapping[str, str], name: str) -> dict[str, Decoded]:
    params = parsed.params
    unknown = [k for k in values if k not in params]
    if unknown:
        uses = ", ".join(f"${p}" for p in params) or "no parameters"
        raise InvalidInput(
            f"filterValues has {', '.join(map(repr, unknown))}, which filter {name!r} does not use "
            f"(it uses {uses}; names are case-sensitive)"
        )
    return {k: decode_value(v, k) for k, v in values.items()}


def _if_holds(expr: Expression, data: EvaluationInput, decoded: Mapping[str, Decoded]) -> bool:
    user = data.user()
    if not len(user):
        return False
    return all(bool(_condition_mask(c, user, data, decoded)[0]) for c in expr.if_conditions)


def _matching_ids(node: Node, table: Table, data: EvaluationInput, decoded: Mapping[str, Decoded]) -> np.ndarray:
    if not len(table):
        return table.ids
    return np.unique(table.ids[_mask(node, table, data, decoded)])


def _mask(node: Node, table: Table, data: EvaluationInput, decoded: Mapping[str, Decoded]) -> np.ndarray:
    if isinstance(node, Condition):
        return _condition_mask(node, table, data, decoded)
    masks = [_mask(part, table, data, decoded) for part in node.parts]
    combine = np.logical_and if node.op == "AND" else np.logical_or
    return combine.reduce(masks)


# --------------------------------------------------------------------------- conditions
@dataclass(frozen=True)
class _Set:
    strings: tuple[str, ...]
    wildcard: bool = False


@dataclass(frozen=True)
class _Number:
    value: float | None  # None: nothing to compare with, the condition is false


def _condition_mask(cond: Condition, table: Table, data: EvaluationInput, decoded: Mapping[str, Decoded]) -> np.ndarray:
    operand = _resolve(cond, data, decoded)
    name = cond.field.name
    if isinstance(operand, _Set):
        # Personalize writes "all event types" as * (the docs show it quoted too: IN ("*")).
        wildcard = operand.wildcard or (cond.field.dataset == "INTERACTIONS" and "*" in operand.strings)
        mask = table.isin(name, operand.strings, wildcard=wildcard)
        return ~mask if cond.op in ("NOT IN", "!=") else mask
    if operand.value is None:
        return np.zeros(len(table), dtype=bool)
    column = table.numbers(name)
    with np.errstate(invalid="ignore"):
        return ~np.isnan(column) & _COMPARE[cond.op](column, operand.value)


def _resolve(cond: Condition, data: EvaluationInput, decoded: Mapping[str, Decoded]) -> _Set | _Number:
    """The operand as values to test: a set for IN / NOT IN (and = / != on text), else a number."""
    operand = cond.operand
    numeric = cond.op in COMPARISONS
    if isinstance(operand, tuple):
        return _Set(
            tuple(v.value for v in operand if isinstance(v, Literal)),  # type: ignore[misc]
            any(isinstance(v, Wildcard) for v in operand),
        )
    if isinstance(operand, Literal):
        return _Number(operand.value) if operand.is_number else _Set((str(operand.value),))  # type: ignore[arg-type]
    if isinstance(operand, CurrentItem):
        props = {norm_key(k): v for k, v in (data.current_item() or {}).items()}
        value = props.get(norm_key(operand.name))
        if not numeric:
            return _Set(value_strings(value))
        number = value_number(value)
        if number == number:
            return _Number(number)
        return _Set(value_strings(value)) if cond.op in ("=", "!=") and value is not None else _Number(None)
    return _param_operand(cond, operand, decoded[operand.name], numeric)


def _param_operand(cond: Condition, param: Param, values: Decoded, numeric: bool) -> _Set | _Number:
    where = f'filterValues["{param.name}"]'
    is_event_type = cond.field.dataset == "INTERACTIONS"
    if values.wildcard and not is_event_type:
        raise InvalidInput(f"{where}: * can only be used for Interactions.EVENT_TYPE, not {cond.field}")
    if not numeric:
        return _Set(values.strings, values.wildcard)
    if values.wildcard or len(values.strings) != 1:
        raise InvalidInput(f"{where}: {cond.field} {cond.op} ${param.name} needs exactly one value")
    text = values.strings[0]
    number = as_number(text)
    if number is not None:
        return _Number(number)
    if cond.op in ("=", "!="):
        return _Set((text,))
    raise InvalidInput(f"{where}: {cond.field} {cond.op} ${param.name} compares numbers, and {text!r} is not one")
