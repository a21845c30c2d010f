"""The one interface every recipe implements, and the data shapes it works on.

Recipes see numpy arrays and external ids, never HTTP or the database: training hands them a
:class:`TrainingData` snapshot, serving hands them a :class:`Query` that already carries the
user's latest events (real-time fold-in without shared state between workers).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
from marshmallow import Schema, ValidationError

from engine.errors import InvalidInput
from engine.recipes.activity import ActivityRequest, RecentActivity
from engine.recipes.array_file import read_arrays, write_arrays
from engine.recipes.coded import CodedStrings
from engine.recipes.search_space import SearchSpace
from engine.records import Interaction, Item, User

ARTIFACT_FORMAT = 1


@dataclass
class TrainingData:
    """A snapshot of one dataset group, with id vocabularies and interactions as index arrays."""

    user_ids: np.ndarray  # unicode array: row number → external user id
    item_ids: np.ndarray  # unicode array: column number → external item id
    user_index: np.ndarray  # int32 per interaction
    item_index: np.ndarray  # int32 per interaction
    #: Per interaction, its event type: codes into a few names (engine.recipes.coded); any array
    #: or list of strings given here is encoded.
    event_types: CodedStrings
    event_values: np.ndarray  # float64 per interaction, NaN where absent
    timestamps: np.ndarray  # float64 epoch seconds per interaction
    items: Mapping[str, Item] = field(default_factory=dict)
    users: Mapping[str, User] = field(default_factory=dict)
    #: Per interaction, its session id or None (an object array, or codes into the session ids).
    session_ids: np.ndarray | CodedStrings | None = None
    #: Per interaction, its contextual metadata (dict of upper-case field → value, or None);
    #: None when the interactions schema declares no contextual fields.
    contexts: np.ndarray | None = None
    #: Per interaction, its row id in the store (None when not known; the training job lets the ids
    #: go before the fit: a recipe reads ``new_events``).
    interaction_ids: np.ndarray | None = None
    #: Per interaction, True for events the previous solution version did not see (set on UPDATE;
    #: None: unknown, and a recipe refits as if everything were new).
    new_events: np.ndarray | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.event_types, CodedStrings):
            self.event_types = CodedStrings.encode(self.event_types)

    @classmethod
    def from_columns(
        cls,
        user_ids: Sequence[str] | np.ndarray,
        item_ids: Sequence[str] | np.ndarray,
        event_types: Sequence[str] | np.ndarray,
        timestamps: Sequence[float] | np.ndarray,
        event_values: Sequence[float] | np.ndarray | None = None,
        *,
        items: Mapping[str, Item] | None = None,
        users: Mapping[str, User] | None = None,
        session_ids: Sequence[str | None] | np.ndarray | None = None,
        contexts: Sequence[Mapping[str, Any] | None] | np.ndarray | None = None,
        interaction_ids: Sequence[int] | np.ndarray | None = None,
        new_events: Sequence[bool] | np.ndarray | None = None,
    ) -> TrainingData:
        """Build vocabularies from external ids; catalog items without events join the vocabulary."""
        users_arr = np.asarray(user_ids, dtype=str)
        items_arr = np.asarray(item_ids, dtype=str)
        catalog = np.array(sorted(items or {}), dtype=str)
        user_vocab, user_index = np.unique(users_arr, return_inverse=True)
        item_vocab = np.unique(np.concatenate([items_arr, catalog])) if len(catalog) else np.unique(items_arr)
        item_index = np.searchsorted(item_vocab, items_arr)
        n = len(users_arr)
        values = np.full(n, np.nan) if event_values is None else np.asarray(event_values, dtype=np.float64)
        return cls(
            user_ids=user_vocab,
            item_ids=item_vocab,
            user_index=user_index.astype(np.int32),
            item_index=item_index.astype(np.int32),
            event_types=CodedStrings.encode(event_types),
            event_values=values,
            timestamps=np.asarray(timestamps, dtype=np.float64),
            items=dict(items or {}),
            users=dict(users or {}),
            session_ids=None if session_ids is None else np.asarray(session_ids, dtype=object),
            contexts=None if contexts is None else _object_array(contexts),
            interaction_ids=None if interaction_ids is None else np.asarray(interaction_ids, dtype=np.int64),
            new_events=None if new_events is None else np.asarray(new_events, dtype=bool),
        )

    def rows(self, events: np.ndarray, *, bookkeeping: bool = True) -> TrainingData:
        """Only these events (indices in the order given, or a mask), with the same vocabularies,
        catalog and users: ids keep their columns, so models fitted on the rows line up with this
        data. ``bookkeeping=False`` leaves out what only the training job and evaluation read
        (interaction ids, session ids, new-event marks): a split to fit on, at a fraction of the
        memory (20 bytes an event fewer).
        """

        def taken(column: Any) -> Any:
            return None if column is None else column[events]

        def kept(column: Any) -> Any:
            return taken(column) if bookkeeping else None

        return TrainingData(
            user_ids=self.user_ids,
            item_ids=self.item_ids,
            user_index=self.user_index[events],
            item_index=self.item_index[events],
            event_types=self.event_types[events],
            event_values=self.event_values[events],
            timestamps=self.timestamps[events],
            items=self.items,
            users=self.users,
            session_ids=kept(self.session_ids),
            contexts=taken(self.contexts),
            interaction_ids=kept(self.interaction_ids),
            new_events=kept(self.new_events),
        )

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def __len__(self) -> int:
        return len(self.user_index)


def _object_array(values: Sequence[Any] | np.ndarray) -> np.ndarray:
    """One Python object per element (np.asarray would try to turn a list of dicts into a table)."""
    out = np.empty(len(values), dtype=object)
    out[:] = list(values)
    return out


@dataclass(frozen=True)
class Query:
    """One request, as a recipe sees it."""

    user_id: str | None = None
    item_id: str | None = None
    #: The user's latest events, oldest first, read from the store at request time.
    history: tuple[Interaction, ...] = ()
    num_results: int = 25
    #: Items that must not be returned (filters decided this before the recipe runs).
    exclude: frozenset[str] = frozenset()
    #: For re-ranking: score only these items.
    candidates: tuple[str, ...] | None = None
    context: Mapping[str, str] = field(default_factory=dict)
    #: Catalogue-wide recent counts, when the recipe asks for them (:meth:`Recipe.activity_request`).
    activity: RecentActivity | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Ranked:
    """Item ids best first, with their scores (NaN where a recipe has no meaningful score)."""

    item_ids: tuple[str, ...]
    scores: tuple[float, ...]

    @classmethod
    def from_scores(cls, vocabulary: np.ndarray, scores: np.ndarray, n: int, exclude: Iterable[int] = ()) -> Ranked:
        """Top ``n`` by vectorised partial sort; excluded columns never appear."""
        scores = np.asarray(scores, dtype=np.float64).copy()
        excluded = np.fromiter(exclude, dtype=np.int64)
        if len(excluded):
            scores[excluded] = -np.inf
        n = max(0, min(n, int(np.isfinite(scores).sum())))
        if n == 0:
            return cls((), ())
        top = np.argpartition(-scores, n - 1)[:n]
        top = top[np.argsort(-scores[top], kind="stable")]
        return cls(tuple(vocabulary[top].tolist()), tuple(scores[top].tolist()))

    def __len__(self) -> int:
        return len(self.item_ids)


class Recipe(ABC):
    """Base of every recipe. Subclasses set ``name`` and a marshmallow ``Hyperparameters`` schema."""

    name: ClassVar[str]
    #: What requests the recipe answers: "USER_PERSONALIZATION", "PERSONALIZED_RANKING",
    #: "RELATED_ITEMS", "POPULAR_ITEMS" or "USER_SEGMENTATION" (Personalize's recipe types).
    recipe_type: ClassVar[str]
    Hyperparameters: ClassVar[type[Schema]]
    #: The ranges ``shelfwise train --hpo`` searches (engine.recipes.search_space); empty: the
    #: recipe has nothing worth searching and refuses ``--hpo``.
    hpo_space: ClassVar[SearchSpace] = {}
    #: The highest interaction id the model was trained on (kept in the artifact's header): the
    #: next UPDATE trains on what lies above it as new. None where unknown (older artifacts).
    data_watermark: int | None = None

    def __init__(self, **hyperparameters: Any) -> None:
        self.hyperparameters = self.validate_hyperparameters(hyperparameters)
        self.item_ids: np.ndarray = np.empty(0, dtype=str)
        self._lookup: dict[str, int] | None = {}

    @classmethod
    def validate_hyperparameters(cls, values: Mapping[str, Any]) -> dict[str, Any]:
        """Reject a bad configuration when the solution is created, not at training time."""
        try:
            return cls.Hyperparameters().load(dict(values))
        except ValidationError as exc:
            raise InvalidInput(f"invalid hyperparameters for {cls.name}: {exc.messages}") from exc

    @abstractmethod
    def fit(self, data: TrainingData, *, previous: Self | None = None) -> Self:
        """Train on ``data``; ``previous`` (UPDATE mode) lets a recipe reuse the last model."""

    @abstractmethod
    def recommend(self, query: Query) -> Ranked:
        """Rank items for the query; unknown ids take the cold-start path, never an exception."""

    def recommend_users(self, item_ids: Sequence[str], num_results: int) -> Ranked:
        """User segments (item-affinity recipes): the users most likely to interact with these
        items, best first, as a :class:`Ranked` of user ids. Only ``USER_SEGMENTATION`` recipes
        answer it."""
        raise InvalidInput(f"recipe {self.name!r} does not produce user segments")

    def activity_request(self) -> ActivityRequest | None:
        """What catalogue-wide recent activity the serving layer should count and pass in
        ``Query.activity`` (None: the recipe answers from its model alone)."""
        return None

    def default_exclusions(self, history: Sequence[Interaction]) -> frozenset[str]:
        """Which of the shopper's past items a campaign leaves out unless configured otherwise.

        The one place that decides it, for campaigns and offline evaluation alike. By default
        everything already interacted with; a recipe that learns how often people come back to
        items (user-personalization) keeps the ones worth showing again and ranks them itself.
        """
        return frozenset(e.item_id for e in history)

    @abstractmethod
    def _arrays(self) -> dict[str, np.ndarray]:
        """The model's state as plain arrays (saved without pickle)."""

    @abstractmethod
    def _restore(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Inverse of :meth:`_arrays`."""

    # ----------------------------------------------------------------- vocabulary helpers
    def _set_items(self, item_ids: np.ndarray) -> None:
        self.item_ids = np.asarray(item_ids, dtype=str)
        self._lookup: dict[str, int] | None = None

    @property
    def _item_lookup(self) -> dict[str, int]:
        """Item id → column, built on first use: serving asks for it on every request, but a
        training that only carries arrays over (an UPDATE loading its previous version) never
        does, and at 100,000 items the dict costs about a tenth of a second."""
        if self._lookup is None:
            self._lookup = {item: i for i, item in enumerate(self.item_ids.tolist())}
        return self._lookup

    def warm(self) -> None:
        """Build the lookups requests use, so that a freshly loaded model's first request does not
        pay for them (serving calls this right after loading a version)."""
        self._item_lookup  # noqa: B018 (built on first use)

    def item_index(self, item_id: str | None) -> int | None:
        return None if item_id is None else self._item_lookup.get(item_id)

    def indices(self, item_ids: Iterable[str]) -> np.ndarray:
        found = [self._item_lookup.get(i) for i in item_ids]
        return np.array([i for i in found if i is not None], dtype=np.int64)

    def seed_items(self, query: Query, decay: float) -> dict[int, float]:
        """Columns to find neighbours of, with weights: the asked-about item alone, else the
        shopper's recent items, newest first, each ``decay`` times the weight of the one after it
        (related-items recipes answer "because of what you just looked at" this way)."""
        if (i := self.item_index(query.item_id)) is not None:
            return {i: 1.0}
        seeds: dict[int, float] = {}
        weight = 1.0
        for event in reversed(query.history):  # newest first
            i = self.item_index(event.item_id)
            if i is not None and i not in seeds:
                seeds[i] = weight
                weight *= decay
            if weight < 1e-3:
                break
        return seeds

    def rank_candidates(self, candidates: Sequence[str], scores: np.ndarray) -> Ranked:
        """Re-rank a given list by ``scores``; items the model never saw go last, unscored
        (Personalize's GetPersonalizedRanking behaves the same way)."""
        known = [(c, float(scores[i])) for c in candidates if (i := self.item_index(c)) is not None]
        known.sort(key=lambda pair: -pair[1])
        unknown = [c for c in candidates if self.item_index(c) is None]
        return Ranked(
            tuple([c for c, _ in known] + unknown), tuple([s for _, s in known] + [float("nan")] * len(unknown))
        )

    # ----------------------------------------------------------------- persistence
    def save(self, path: str | Path) -> Path:
        """Write one ``.npz`` file: arrays, vocabularies and a JSON header; never pickles.

        Written uncompressed with each array aligned in the file (engine.recipes.array_file), to
        a temporary name renamed into place: :meth:`load` maps it rather than reading it."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        header = {
            "format": ARTIFACT_FORMAT,
            "recipe": self.name,
            "hyperparameters": self.hyperparameters,
            "data_watermark": None if self.data_watermark is None else int(self.data_watermark),
        }
        arrays = {"item_ids": self.item_ids, **self._arrays()}
        return write_arrays(path, {"__header__": np.array(json.dumps(header)), **arrays})

    @staticmethod
    def saved_hyperparameters(path: str | Path) -> dict[str, Any]:
        """The hyperparameters a saved model was trained with (a search may have chosen them),
        read from its header alone, without loading the arrays."""
        with np.load(Path(path), allow_pickle=False) as npz:
            return dict(json.loads(str(npz["__header__"]))["hyperparameters"])

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """The model saved at ``path``. Its arrays lie in a copy-on-write mapping of the file where
        they can (any ``.npz`` of plain arrays loads, mapped or read: engine.recipes.array_file)."""
        arrays = read_arrays(path)
        header = json.loads(str(arrays.pop("__header__")))
        if header.get("recipe") != cls.name:
            raise InvalidInput(f"artifact {path} holds a {header.get('recipe')!r} model, not {cls.name!r}")
        recipe = cls(**header["hyperparameters"])
        recipe._set_items(arrays.pop("item_ids"))
        recipe._restore(arrays)
        watermark = header.get("data_watermark")
        recipe.data_watermark = None if watermark is None else int(watermark)
        return recipe
