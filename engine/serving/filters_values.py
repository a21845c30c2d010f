"""``filterValues``: the per-request values of a filter's $PARAMETERS, in Personalize's encoding.

Each value is written as it would appear inside the expression: ``"\\"comedy\\",\\"drama\\""`` for
``IN ($GENRES)`` (double-quoted strings, comma-separated), not a JSON list (DESIGN.md pitfalls).
Personalize never documented how a number for ``Items.PRICE <= $PRICE`` is written (reference
§1.5, gaps 2), so both ``25`` and ``"25"`` are read as the number 25.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from engine.errors import InvalidInput
from engine.serving.filters_syntax import FilterSyntaxError, tokenize

#: botocore's FilterValues map: at most 25 entries, keys [A-Za-z0-9_]+ up to 50 characters,
#: values up to 1000 characters.
MAX_ENTRIES = 25
MAX_KEY_LENGTH = 50
MAX_VALUE_LENGTH = 1000
_KEY = re.compile(r"^[A-Za-z0-9_]+$")


@dataclass(frozen=True)
class Decoded:
    """One filterValues entry read: strings as written, or numbers, and whether ``*`` was given."""

    strings: tuple[str, ...]
    wildcard: bool = False


def check_filter_values(values: Mapping[str, str] | None, where: str = "filterValues") -> dict[str, str]:
    """The map's own limits, checked here too so callers other than the HTTP API get them."""
    if values is None:
        return {}
    if not isinstance(values, Mapping):
        raise InvalidInput(f"{where} must be a map of parameter names to strings")
    if len(values) > MAX_ENTRIES:
        raise InvalidInput(f"{where} can have at most {MAX_ENTRIES} entries, not {len(values)}")
    for key, value in values.items():
        if not isinstance(key, str) or not 1 <= len(key) <= MAX_KEY_LENGTH or not _KEY.match(key):
            raise InvalidInput(f"{where}: invalid parameter name {key!r} (1-{MAX_KEY_LENGTH} letters, digits or _)")
        if not isinstance(value, str):
            raise InvalidInput(f'{where}["{key}"] must be a string, e.g. "\\"shoes\\""')
        if len(value) > MAX_VALUE_LENGTH:
            raise InvalidInput(f'{where}["{key}"] is longer than {MAX_VALUE_LENGTH} characters')
    return dict(values)


def decode_value(raw: str, key: str, where: str = "filterValues") -> Decoded:
    """Read ``"a","b"`` (or numbers, or ``*``) into its values; raises with the position on error."""
    subject = f'{where}["{key}"]'
    tokens = tokenize(raw, subject=subject)
    strings: list[str] = []
    wildcard = False
    expect_value = True
    for tok in tokens:
        if tok.kind == "end":
            break
        if expect_value:
            if tok.kind in ("string", "number"):
                strings.append(tok.text)
            elif tok.kind == "op" and tok.text == "*":
                wildcard = True
            elif tok.kind == "word":
                raise FilterSyntaxError(f'values must be quoted, e.g. "\\"{tok.text}\\""', tok.pos + 1, subject=subject)
            else:
                raise FilterSyntaxError(
                    f'expected a quoted value such as "\\"shoes\\"", found {tok.shown()}', tok.pos + 1, subject=subject
                )
        elif not (tok.kind == "op" and tok.text == ","):
            raise FilterSyntaxError(f"expected ',' between values, found {tok.shown()}", tok.pos + 1, subject=subject)
        expect_value = not expect_value
    if not strings and not wildcard:
        raise FilterSyntaxError("no value given", 1, subject=subject)
    if expect_value:
        raise FilterSyntaxError("a value is missing after the last ','", len(raw) + 1, subject=subject)
    return Decoded(tuple(strings), wildcard)


def as_number(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return number if number == number and abs(number) != float("inf") else None
