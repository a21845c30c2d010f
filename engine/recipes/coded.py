"""A string column held as small integer codes into its vocabulary.

Training data carries a string per event for a few columns that take few distinct values (event
types: "view", "purchase"...; session ids repeat over a session's events). As numpy unicode arrays
they cost 4 bytes a character per event (32 bytes for "purchase"): at 25 million events the event
types alone took 800 MB, and every copy of the training data (a held-out split) took as much again.
Kept as codes they cost one byte an event, and the recipes that weigh or select events by type work
on the codes without ever sorting or comparing the strings.

:class:`CodedStrings` behaves like the string array it replaces where recipes used one (indexing,
iteration, ``tolist``, ``np.asarray``, ``== "purchase"``), so code that still wants strings gets
them (materialised on demand); the hot paths ask for :meth:`CodedStrings.mask` or the codes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np


def _smallest_codes(codes: np.ndarray, n_names: int) -> np.ndarray:
    """The codes in the narrowest signed integer type that holds them (-1 included)."""
    for dtype in (np.int8, np.int16, np.int32):
        if n_names <= np.iinfo(dtype).max:
            return codes if codes.dtype == dtype else codes.astype(dtype)
    return codes.astype(np.int64)


class CodedStrings:
    """Per row, ``names[codes[row]]``. ``names`` may hold values no row uses, and a code of -1
    reads the last name (a column of optional values keeps None there)."""

    __slots__ = ("codes", "names")

    def __init__(self, names: np.ndarray, codes: np.ndarray, *, narrow: bool = True) -> None:
        self.names = names
        self.codes = _smallest_codes(np.asarray(codes), len(names)) if narrow else np.asarray(codes)

    @classmethod
    def encode(cls, values: Iterable[Any] | np.ndarray) -> CodedStrings:
        """The column of these strings (sorted vocabulary, as ``np.unique`` gives it)."""
        if isinstance(values, CodedStrings):
            return values
        from engine.recipes.weighting import string_codes  # weighting builds on this module

        names, codes = string_codes(np.asarray(values if isinstance(values, np.ndarray) else list(values), dtype=str))
        return cls(names, codes)

    # ----------------------------------------------------------------- as an array of strings
    def __len__(self) -> int:
        return len(self.codes)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.codes.shape

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, (int, np.integer)):
            value = self.names[self.codes[key]]
            return value.item() if isinstance(value, np.generic) else value
        return CodedStrings(self.names, self.codes[key], narrow=False)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.tolist())

    def tolist(self) -> list[Any]:
        return self.names[self.codes].tolist()

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        values = self.names[self.codes]
        return values if dtype is None else values.astype(dtype)

    def astype(self, dtype: Any) -> np.ndarray:
        return np.asarray(self, dtype=dtype)

    def __eq__(self, other: object) -> Any:  # type: ignore[override]
        if isinstance(other, str):
            return self.mask([other], lower=False)
        return NotImplemented

    def __ne__(self, other: object) -> Any:  # type: ignore[override]
        if isinstance(other, str):
            return ~self.mask([other], lower=False)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"CodedStrings({len(self)} rows, names={self.names.tolist()!r})"

    # ----------------------------------------------------------------- the fast paths
    def mask(self, wanted: Iterable[str], *, lower: bool = True) -> np.ndarray:
        """Per row, whether its value is one of ``wanted`` (compared in lower case by default, as
        event types are): a lookup per name, then one pass over the codes."""
        wanted = {w.lower() for w in wanted} if lower else set(wanted)
        hit = np.array(
            [isinstance(n, str) and (n.lower() if lower else n) in wanted for n in self.names.tolist()], dtype=bool
        )
        if not hit.any():
            return np.zeros(len(self.codes), dtype=bool)
        return hit[self.codes]

    def compact(self) -> tuple[np.ndarray, np.ndarray]:
        """``np.unique(strings, return_inverse=True)`` without the strings: the names rows use,
        sorted, and each row's position among them."""
        # -1 (the trailing name) counts for the last name, as indexing reads it.
        used = np.flatnonzero(np.bincount(self.codes % max(len(self.names), 1), minlength=len(self.names)))
        order = used[np.argsort(self.names[used], kind="stable")]
        position = np.full(len(self.names), -1, dtype=np.intp)
        position[order] = np.arange(len(order))
        return self.names[order], position[self.codes]
