"""item-attribute-affinity: user segments for an attribute query over items.

``ITEMS.CATEGORY_L1 = "shoes" AND ITEMS.BRAND = "Acme"`` selects the catalogue items matching it;
the segment is the users with the highest affinity for those items, from the same model as
item-affinity. Personalize's batch segment queries allow only ``=`` joined by ``AND``; ``OR``
and parentheses are accepted here too (AND binds tighter). Field names are case-insensitive,
values are not (Personalize ignores case only for event types); a multi-valued field
(``Comedy|Drama``) matches any of its values. Textual fields cannot be queried.

The parser is deliberately small: a query names item attributes and values, nothing else, so it
does not need (or depend on) the filter-expression language of the serving layer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self

import numpy as np

from engine.errors import InvalidInput
from engine.recipes.base import Ranked, TrainingData
from engine.recipes.item_affinity import ItemAffinity
from engine.recipes.text_features import category_values, is_textual_field


@dataclass(frozen=True)
class Equals:
    field: str  # upper case
    value: str | float


@dataclass(frozen=True)
class Either:
    parts: tuple[Any, ...]  # Equals | Both | Either


@dataclass(frozen=True)
class Both:
    parts: tuple[Any, ...]


_TOKENS = re.compile(
    r"""\s*(?:
        (?P<string>"(?:\\.|[^"\\])*")
      | (?P<number>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)
      | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<symbol>[().=])
    )""",
    re.VERBOSE,
)


def _tokens(text: str) -> list[tuple[str, str, int]]:
    out, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKENS.match(text, pos)
        if match is None or match.end() == pos:
            raise InvalidInput(f"item attribute query: unexpected {text[pos:].strip()[:20]!r} at position {pos + 1}")
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind), match.start(kind) + 1))
        pos = match.end()
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.at = 0

    def fail(self, expected: str) -> InvalidInput:
        if self.at >= len(self.tokens):
            return InvalidInput(f"item attribute query {self.text!r}: expected {expected} at the end")
        _, value, pos = self.tokens[self.at]
        return InvalidInput(f"item attribute query {self.text!r}: expected {expected}, found {value!r} at {pos}")

    def peek_word(self, *words: str) -> bool:
        if self.at < len(self.tokens):
            kind, value, _ = self.tokens[self.at]
            return kind == "word" and value.upper() in words
        return False

    def take(self, kind: str, value: str | None = None, expected: str = "") -> str:
        if self.at < len(self.tokens):
            k, v, _ = self.tokens[self.at]
            if k == kind and (value is None or v.upper() == value):
                self.at += 1
                return v
        raise self.fail(expected or (value or kind))

    def parse(self) -> Any:
        if not self.tokens:
            raise InvalidInput("item attribute query is empty")
        node = self.either()
        if self.at != len(self.tokens):
            raise self.fail("AND, OR or the end")
        return node

    def either(self) -> Any:
        parts = [self.both()]
        while self.peek_word("OR"):
            self.at += 1
            parts.append(self.both())
        return parts[0] if len(parts) == 1 else Either(tuple(parts))

    def both(self) -> Any:
        parts = [self.atom()]
        while self.peek_word("AND"):
            self.at += 1
            parts.append(self.atom())
        return parts[0] if len(parts) == 1 else Both(tuple(parts))

    def atom(self) -> Any:
        if self.at < len(self.tokens) and self.tokens[self.at][:2] == ("symbol", "("):
            self.at += 1
            node = self.either()
            self.take("symbol", ")", "')'")
            return node
        self.take("word", "ITEMS", "ITEMS.<field>")
        self.take("symbol", ".", "'.' after ITEMS")
        name = self.take("word", expected="a field name").upper()
        self.take("symbol", "=", f"'=' after ITEMS.{name} (only = is supported)")
        if self.at < len(self.tokens) and self.tokens[self.at][0] == "number":
            return Equals(name, float(self.take("number")))
        raw = self.take("string", expected='a "quoted" value or a number')
        return Equals(name, re.sub(r"\\(.)", r"\1", raw[1:-1]))


def parse_attribute_query(text: str) -> Any:
    """Parse ``ITEMS.FIELD = "value" [AND|OR ...]`` into Equals / Both / Either nodes."""
    if not isinstance(text, str):
        raise InvalidInput("itemAttributes must be a string")
    return _Parser(text).parse()


def _cell_strings(value: Any) -> list[str]:
    if isinstance(value, bool):
        return ["true" if value else "false"]
    if isinstance(value, int | float):
        return [repr(value)]
    return category_values(value)


class ItemAttributeAffinity(ItemAffinity):
    name = "item-attribute-affinity"
    recipe_type = "USER_SEGMENTATION"

    def __init__(self, **hyperparameters) -> None:
        super().__init__(**hyperparameters)
        # The catalogue's non-textual attributes as (item, field, value) triples.
        self.attribute_names = np.empty(0, dtype=str)
        self.attribute_item = np.empty(0, dtype=np.int64)
        self.attribute_field = np.empty(0, dtype=np.int64)
        self.attribute_value = np.empty(0, dtype=str)

    def fit(self, data: TrainingData, *, previous: Self | None = None) -> Self:
        super().fit(data, previous=previous)
        names: dict[str, int] = {}
        items, fields_, values = [], [], []
        for row, item_id in enumerate(data.item_ids.tolist()):
            item = data.items.get(item_id)
            for name, value in (item.properties if item else {}).items():
                if is_textual_field(name):
                    continue
                column = names.setdefault(name.upper(), len(names))
                for v in _cell_strings(value):
                    items.append(row)
                    fields_.append(column)
                    values.append(v)
        self.attribute_names = np.array(list(names), dtype=str)
        self.attribute_item = np.array(items, dtype=np.int64)
        self.attribute_field = np.array(fields_, dtype=np.int64)
        self.attribute_value = np.array(values, dtype=str)
        return self

    def matching_items(self, expression: str) -> list[str]:
        """The catalogue items an attribute query selects."""
        mask = self._mask(parse_attribute_query(expression))
        return self.item_ids[mask].tolist()

    def segment_for_attributes(self, expression: str, num_results: int) -> Ranked:
        """The users most likely to interact with items matching ``expression``; none when no item matches."""
        items = self.matching_items(expression)
        return self.recommend_users(items, num_results) if items else Ranked((), ())

    def _mask(self, node: Any) -> np.ndarray:
        if isinstance(node, Either):
            return np.logical_or.reduce([self._mask(p) for p in node.parts])
        if isinstance(node, Both):
            return np.logical_and.reduce([self._mask(p) for p in node.parts])
        if is_textual_field(node.field):
            raise InvalidInput(f"ITEMS.{node.field} is a textual field; item attribute queries use categorical fields")
        column = np.nonzero(self.attribute_names == node.field)[0]
        if not len(column):
            known = ", ".join(self.attribute_names.tolist()) or "none"
            raise InvalidInput(f"the items have no attribute {node.field} (known: {known})")
        here = self.attribute_field == column[0]
        if isinstance(node.value, float):
            cells = self.attribute_value[here]
            numbers = np.array([_as_number(c) for c in cells.tolist()], dtype=np.float64)
            hit = numbers == node.value
        else:
            hit = self.attribute_value[here] == node.value
        mask = np.zeros(len(self.item_ids), dtype=bool)
        mask[self.attribute_item[here][hit]] = True
        return mask

    def _arrays(self) -> dict[str, np.ndarray]:
        return {
            **super()._arrays(),
            "attribute_names": self.attribute_names,
            "attribute_item": self.attribute_item,
            "attribute_field": self.attribute_field,
            "attribute_value": self.attribute_value,
        }

    def _restore(self, arrays: Mapping[str, np.ndarray]) -> None:
        super()._restore(arrays)
        self.attribute_names = np.asarray(arrays["attribute_names"], dtype=str)
        self.attribute_item = np.asarray(arrays["attribute_item"], dtype=np.int64)
        self.attribute_field = np.asarray(arrays["attribute_field"], dtype=np.int64)
        self.attribute_value = np.asarray(arrays["attribute_value"], dtype=str)


def _as_number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("nan")
