"""The ranges a recipe's hyperparameters are searched over (``shelfwise train --hpo``).

Each recipe declares them as ``hpo_space`` next to its ``Hyperparameters`` schema, so the ranges
are documented where the hyperparameters are, and every range lies inside what the schema
accepts (a contract test checks it). The classes are plain data: turning them into a sampler's
distributions is the search job's business (:mod:`engine.jobs.hpo`), so recipes stay free of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class IntRange:
    """Integers from ``low`` to ``high`` inclusive; ``log`` samples small values as often as large."""

    low: int
    high: int
    log: bool = False

    def describe(self) -> str:
        return f"{self.low}..{self.high}" + (" (log)" if self.log else "")

    def contains(self, value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and self.low <= value <= self.high


@dataclass(frozen=True)
class FloatRange:
    """Reals from ``low`` to ``high`` inclusive; ``log`` for scales spanning orders of magnitude."""

    low: float
    high: float
    log: bool = False

    def describe(self) -> str:
        return f"{self.low:g}..{self.high:g}" + (" (log)" if self.log else "")

    def contains(self, value: Any) -> bool:
        return isinstance(value, int | float) and not isinstance(value, bool) and self.low <= value <= self.high


@dataclass(frozen=True)
class OneOf:
    """One of a few values (``None`` allowed, e.g. "no recency decay")."""

    choices: tuple[Any, ...]

    def describe(self) -> str:
        return " | ".join("none" if c is None else str(c) for c in self.choices)

    def contains(self, value: Any) -> bool:
        return value in self.choices


Range = IntRange | FloatRange | OneOf
#: Hyperparameter name → the range it is searched over.
SearchSpace = Mapping[str, Range]


def describe_space(space: SearchSpace) -> dict[str, str]:
    """The ranges as short strings, for the CLI, the stored search and the README."""
    return {name: r.describe() for name, r in space.items()}


def seed_params(space: SearchSpace, hyperparameters: Mapping[str, Any]) -> dict[str, Any]:
    """The solution's own values that lie inside the space: the search tries them first, so it
    never ends up choosing something worse on validation than what the solution already had."""
    return {name: hyperparameters[name] for name, r in space.items() if r.contains(hyperparameters.get(name))}
