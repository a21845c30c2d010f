"""The catalog as training sees it: every item id up front, the entries read only when needed.

Reading and decoding a whole catalog (100,000 items' JSON properties) takes about as long as an
UPDATE's own work, and an UPDATE needs only the metadata of the items it has not seen before. So
the training job hands an UPDATE's recipe a :class:`Catalog`: a read-only mapping whose ids are
known at once and whose entries come from a loader the first time one is asked for;
:meth:`Catalog.subset` reads only the entries asked for, where the source can.

Recipes see plain ``Mapping[str, Item]`` behaviour (a dict works everywhere a catalog does); the
loaders are callables, so nothing here knows where the items come from.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, ItemsView, Iterable, Iterator, KeysView, Mapping, Sequence, ValuesView
from functools import cached_property

from engine.records import Item

Loader = Callable[[], Mapping[str, Item]]
SubsetLoader = Callable[[list[str]], Mapping[str, Item]]


class Catalog(Mapping[str, Item]):
    """Items by id: ``ids`` are the catalog's; entries are loaded on first use.

    An id whose entry is gone by the time the entries are read (an item deleted meanwhile) is
    reported absent from then on, so ``id in catalog`` and ``catalog[id]`` agree once loaded."""

    def __init__(self, ids: Sequence[str], load_all: Loader, load_some: SubsetLoader | None = None) -> None:
        self._ids = list(ids)
        self._load_all, self._load_some = load_all, load_some
        self._entries: dict[str, Item] | None = None
        self._lock = threading.Lock()

    @cached_property
    def _id_set(self) -> frozenset[str]:
        # Built on the first lookup: a training that only lists the ids (sims) never needs it, and
        # hashing 100,000 ids is a tenth of a small UPDATE's read.
        return frozenset(self._ids)

    @property
    def loaded(self) -> bool:
        return self._entries is not None

    def entries(self) -> dict[str, Item]:
        """Every entry, as a plain dict (read now unless read already): for a caller that needs
        them all, dict lookups cost a third of this class's."""
        if self._entries is not None:
            return self._entries
        with self._lock:
            if self._entries is None:
                entries = self._load_all()
                # Only the ids known up front: from here on every lookup is the dict's.
                if isinstance(entries, dict) and entries.keys() == self._id_set:
                    self._entries = entries  # the usual case: nothing added or removed in between
                else:
                    self._entries = {i: entries[i] for i in self._ids if i in entries}
            return self._entries

    def subset(self, ids: Iterable[str]) -> Mapping[str, Item]:
        """The entries of these ids (those in the catalog), reading only them where the catalog is
        not loaded yet and the source can."""
        wanted = [i for i in dict.fromkeys(ids) if i in self._id_set]
        if self._entries is None and self._load_some is not None:
            return dict(self._load_some(wanted)) if wanted else {}
        entries = self.entries()
        return {i: entries[i] for i in wanted if i in entries}

    # ----------------------------------------------------------------- Mapping
    def __getitem__(self, item_id: str) -> Item:
        if self._entries is None and item_id not in self._id_set:
            raise KeyError(item_id)
        return self.entries()[item_id]

    def get(self, item_id: str, default: Item | None = None) -> Item | None:
        if self._entries is None and item_id not in self._id_set:
            return default
        return self.entries().get(item_id, default)

    def __contains__(self, item_id: object) -> bool:
        if self._entries is None:
            return item_id in self._id_set
        return item_id in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids if self._entries is None else self._entries)

    def __len__(self) -> int:
        return len(self._ids if self._entries is None else self._entries)

    def keys(self) -> KeysView[str]:
        return super().keys() if self._entries is None else self._entries.keys()

    def values(self) -> ValuesView[Item]:
        return self.entries().values()  # every entry: read them

    def items(self) -> ItemsView[str, Item]:
        return self.entries().items()

    def __repr__(self) -> str:
        state = "loaded" if self._entries is not None else "not loaded"
        return f"<Catalog of {len(self._ids)} items, {state}>"


def subset(items: Mapping[str, Item], ids: Iterable[str]) -> Mapping[str, Item]:
    """These ids' entries of any mapping of items; a :class:`Catalog` reads only them."""
    if isinstance(items, Catalog):
        return items.subset(ids)
    return {i: items[i] for i in ids if i in items}


def all_entries(items: Mapping[str, Item]) -> Mapping[str, Item]:
    """Every entry of any mapping of items, for a caller about to look at all of them: a
    :class:`Catalog`'s entries as a plain dict (read now unless read already)."""
    return items.entries() if isinstance(items, Catalog) else items
