"""A dataset group's interactions read as numpy columns, for training.

Training reads every interaction of a group (a million rows and more); a Python object per value,
or the database's sort through the time index (a random row lookup per event), cost more than the
model fit. So the read scans the table in primary-key order, turns strings into integer codes as it
goes (a dict per column, no sort of a million strings; on SQLite numpy over the bytes of each block,
engine.storage.encoding), and leaves ordering by time to numpy.

On SQLite one aggregate per block of ids hands each text column over as one byte string
(``group_concat`` cast to a blob), split and coded by numpy; the order of the values is checked
against the ids read in the same statement, and anything unexpected (a separator inside a value, an
order SQLite did not keep) falls back to plain rows. PostgreSQL does the same with ``string_agg``
(its strings coded by a dict).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Engine, select, text

from engine.sorting import stable_order
from engine.storage import tables as t
from engine.storage.encoding import TokenCodes

#: How many ids one block of the SQLite read covers (bounds the strings it builds). Several blocks
#: let the next block's query run while this one is decoded: at 1M events, 250k-id blocks read in
#: 1.2 s against 2.3 s for one block.
SQLITE_BLOCK_IDS = 250_000
#: The same for PostgreSQL's blocks (read one after the other).
POSTGRES_BLOCK_IDS = 1_000_000
#: Rows converted at a time on the generic path (bounds the Python objects alive at once).
FETCH_ROWS = 100_000
_SEP = "\x1f"
#: The per-row columns of :class:`InteractionColumns`, and its vocabularies.
_ROW_COLUMNS = ("ids", "user_codes", "item_codes", "type_codes", "event_values", "timestamps", "session_codes")
_VOCABULARY_COLUMNS = ("user_vocab", "item_vocab", "type_vocab", "session_vocab")
#: Rows :meth:`InteractionColumns.in_time_order` checks at a time (its temporaries stay small).
_CHECK_ROWS = 1 << 20
#: The columns the SQLite read codes from bytes with numpy (in the order its aggregate gives them).
_TOKEN_COLUMNS = ("user", "item", "type")


@dataclass
class InteractionColumns:
    """Interactions as columns (a store read gives them in ascending id order; training and its
    snapshot keep them by time, :meth:`by_time`), strings as codes into vocabularies.

    A vocabulary lists each distinct value once, in no particular order; ``session_codes`` is -1
    where an event has no session id. This is the shape a training snapshot keeps and extends.
    """

    ids: np.ndarray  # int64, distinct
    user_vocab: np.ndarray  # unicode
    user_codes: np.ndarray  # int32
    item_vocab: np.ndarray
    item_codes: np.ndarray
    type_vocab: np.ndarray
    type_codes: np.ndarray
    event_values: np.ndarray  # float64, NaN where absent
    timestamps: np.ndarray  # float64 epoch seconds
    session_vocab: np.ndarray
    session_codes: np.ndarray  # int32, -1: none

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def empty(cls) -> InteractionColumns:
        no_str, no_code = np.empty(0, dtype=str), np.empty(0, dtype=np.int32)
        return cls(
            np.empty(0, dtype=np.int64), no_str, no_code, no_str, no_code, no_str, no_code,
            np.empty(0), np.empty(0), no_str, no_code,
        )  # fmt: skip

    # ----------------------------------------------------------------- time order
    def in_time_order(self) -> bool:
        """True when the rows run by (timestamp, id): the order training uses. Checked a block of
        rows at a time: over the whole columns at once its differences and masks were new memory
        (tens of megabytes) on every snapshot load."""
        n, stamps, ids = len(self), self.timestamps, self.ids
        for lo in range(0, max(n - 1, 0), _CHECK_ROWS):
            hi = min(n, lo + _CHECK_ROWS + 1)
            step = np.diff(stamps[lo:hi])
            if not (np.all(step >= 0) and np.all((step > 0) | (ids[lo + 1 : hi] > ids[lo : hi - 1]))):
                return False
        return True

    def by_time(self, *, consume: bool = False) -> InteractionColumns:
        """These rows ordered by (timestamp, id).

        ``consume`` (a fresh read that nothing else holds): each column is let go as soon as its
        reordered copy exists, and this object is left empty. A copy of every column beside the
        originals was the read's peak (a gigabyte at 25 million events)."""
        if self.in_time_order():
            return self
        ascending_ids = len(self) < 2 or bool(np.all(self.ids[1:] > self.ids[:-1]))
        # Rows in id order (as the store reads them): a stable sort by time keeps ties by id.
        order = stable_order(self.timestamps) if ascending_ids else np.lexsort((self.ids, self.timestamps))
        if not consume:
            return self._rows(order)
        reordered = {}
        for name in _ROW_COLUMNS:
            column = getattr(self, name)
            # A column of one value (no sessions, no event values: the usual case) is its own reorder.
            reordered[name] = column if _one_value(column) else column[order]
            setattr(self, name, column[:0])
        vocabularies = {name: getattr(self, name) for name in _VOCABULARY_COLUMNS}
        return InteractionColumns(**reordered, **vocabularies)

    def merged_by_time(self, later: InteractionColumns) -> InteractionColumns:
        """These time-ordered rows and ``later``'s (all of whose ids are higher), in time order:
        ``later``'s rows inserted at their places rather than everything sorted again (a snapshot
        of millions of rows gains a few thousand)."""
        if not len(later):
            return self
        if not self.in_time_order():
            raise ValueError("merged_by_time needs these rows in time order")
        later = later.by_time()  # not consumed: the caller may still hold the rows it read
        if later.ids.min() <= self.ids.max():
            raise ValueError("later interactions must all have higher ids")
        if not len(self) or later.timestamps[0] >= self.timestamps[-1]:
            return self._joined(later, None)  # the usual case (events arrive in time): appended
        # Ties in time go after the older rows: the later rows have the higher ids.
        at = np.searchsorted(self.timestamps, later.timestamps, side="right") + np.arange(len(later))
        return self._joined(later, at)

    def _rows(self, order: np.ndarray) -> InteractionColumns:
        """These rows in ``order`` (indices), vocabularies shared."""
        return InteractionColumns(
            self.ids[order],
            self.user_vocab,
            self.user_codes[order],
            self.item_vocab,
            self.item_codes[order],
            self.type_vocab,
            self.type_codes[order],
            self.event_values[order],
            self.timestamps[order],
            self.session_vocab,
            self.session_codes[order],
        )

    def concat(self, later: InteractionColumns) -> InteractionColumns:
        """These rows followed by ``later``'s (all of whose ids are higher), vocabularies merged."""
        if not len(later):
            return self
        if len(self) and later.ids.min() <= self.ids.max():
            raise ValueError("later interactions must all have higher ids")
        return self._joined(later, None)

    def _joined(self, later: InteractionColumns, at: np.ndarray | None) -> InteractionColumns:
        """These rows and ``later``'s, vocabularies merged: ``later``'s rows at positions ``at`` of
        the result (ascending), or after these where None."""
        n, m = len(self), len(later)
        if at is not None:
            older = np.ones(n + m, dtype=bool)
            older[at] = False

        def joined(mine: np.ndarray, theirs: np.ndarray) -> np.ndarray:
            if at is None:
                return np.concatenate([mine, theirs])
            out = np.empty(n + m, dtype=np.result_type(mine, theirs))
            out[older], out[at] = mine, theirs
            return out

        def column(vocab: np.ndarray, codes: np.ndarray, more: np.ndarray, more_codes: np.ndarray):
            vocab, mapped = merge_vocabulary(vocab, more, more_codes)
            return vocab, joined(codes, mapped)

        return InteractionColumns(
            joined(self.ids, later.ids),
            *column(self.user_vocab, self.user_codes, later.user_vocab, later.user_codes),
            *column(self.item_vocab, self.item_codes, later.item_vocab, later.item_codes),
            *column(self.type_vocab, self.type_codes, later.type_vocab, later.type_codes),
            joined(self.event_values, later.event_values),
            joined(self.timestamps, later.timestamps),
            *column(self.session_vocab, self.session_codes, later.session_vocab, later.session_codes),
        )


def _one_value(column: np.ndarray) -> bool:
    """Whether every entry of ``column`` has the same bits (so that any order of it is itself: -0.0
    and 0.0, or two NaNs, differ)."""
    bits = column.view(f"u{column.itemsize}") if column.dtype.kind in "iuf" else column
    return len(bits) == 0 or bool(np.all(bits == bits[0]))


def merge_vocabulary(vocab: np.ndarray, more: np.ndarray, more_codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``vocab`` extended with ``more``'s values it lacks (at its end), and ``more_codes`` (-1:
    none) as codes into it.

    Each vocabulary lists a value once: ``more``'s values are looked up in the sorted old
    vocabulary (a dict over 100,000 items' ids cost more than the whole new read); a vocabulary
    that is sorted already (a training snapshot keeps its own sorted) is searched as it is."""
    vocab, more = vocab.astype(str, copy=False), more.astype(str, copy=False)
    ascending = len(vocab) < 2 or bool(np.all(vocab[1:] > vocab[:-1]))
    order = None if ascending else np.argsort(vocab, kind="stable")
    ordered = vocab if order is None else vocab[order]
    at = np.minimum(np.searchsorted(ordered, more), max(len(vocab) - 1, 0))
    known = ordered[at] == more if len(vocab) else np.zeros(len(more), dtype=bool)
    new = ~known
    remap = np.empty(len(more), dtype=np.int64)
    remap[known] = at[known] if order is None else order[at[known]]
    remap[new] = len(vocab) + np.arange(int(new.sum()))
    merged = np.concatenate([vocab, more[new]]) if new.any() else vocab
    mapped = np.where(more_codes < 0, -1, remap[np.maximum(more_codes, 0)]) if len(more) else more_codes
    return merged, mapped.astype(np.int32)


class _Codes:
    """Integer codes for strings, first come first numbered, over any number of blocks (int32
    positions: up to 2**31 interactions in one read)."""

    def __init__(self) -> None:
        self._first: dict[Any, int] = {}
        self._seen = 0

    def encode(self, values: Sequence[Any]) -> np.ndarray:
        """Per value, the position of its first occurrence overall (made dense by :meth:`finish`)."""
        n = len(values)
        out = np.fromiter(map(self._first.setdefault, values, itertools.count(self._seen)), np.int32, n)
        self._seen += n
        return out

    def same(self, value: Any, n: int) -> np.ndarray:
        """``encode([value] * n)`` without the per-value work."""
        out = np.full(n, self._first.setdefault(value, self._seen), dtype=np.int32)
        self._seen += n
        return out

    def finish(self, positions: np.ndarray) -> tuple[list[Any], np.ndarray]:
        """The vocabulary (in first-occurrence order) and the dense codes of ``positions``."""
        firsts = np.fromiter(self._first.values(), np.int32, len(self._first))
        dense = np.zeros(self._seen, dtype=np.int32)
        dense[firsts] = np.arange(len(firsts), dtype=np.int32)
        return list(self._first), dense[positions]


def _build(ids, users, items, types, values, stamps, sessions, codes: dict[str, Any]) -> InteractionColumns:
    """Columns from per-block codes (``_Codes.encode``'s positions, or :class:`TokenCodes`' dense
    codes), sorted by id. Each list of blocks is emptied once joined, so that the blocks and the
    whole columns are not all held at once."""
    ids = _joined_blocks(ids) if ids else np.empty(0, dtype=np.int64)
    if not len(ids):
        return InteractionColumns.empty()
    order = None if np.all(ids[1:] > ids[:-1]) else np.argsort(ids, kind="stable")

    def ordered(a: np.ndarray) -> np.ndarray:
        return a if order is None else a[order]

    def column(name: str, parts: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        vocab, dense = codes[name].finish(_joined_blocks(parts))
        return np.asarray(vocab, dtype=str), ordered(dense)

    session_vocab, session_codes = codes["session"].finish(_joined_blocks(sessions))
    # Sessions arrive as '+id' or '-' (none): a None-free vocabulary that .npy files can hold.
    has = np.array([s[0] == "+" for s in session_vocab], dtype=bool)
    remap = np.where(has, np.cumsum(has) - 1, -1).astype(np.int32)
    return InteractionColumns(
        ordered(ids),
        *column("user", users),
        *column("item", items),
        *column("type", types),
        ordered(_joined_blocks(values)),
        ordered(_joined_blocks(stamps)),
        np.array([s[1:] for s in session_vocab if s[0] == "+"], dtype=str),
        ordered(remap[session_codes]) if len(remap) else ordered(session_codes),
    )


def _joined_blocks(parts: list[np.ndarray]) -> np.ndarray:
    """The blocks as one array; the list is emptied (its blocks freed once nothing else holds them)."""
    joined = parts[0] if len(parts) == 1 else np.concatenate(parts)
    parts.clear()
    return joined


def _new_codes() -> dict[str, _Codes]:
    return {name: _Codes() for name in ("user", "item", "type", "session")}


def _session_texts(values: Iterable[str | None]) -> list[str]:
    return ["-" if s is None else "+" + s for s in values]


# --------------------------------------------------------------------- SQLite
def read_sqlite(engine: Engine, group_id: int, excluded: Sequence[str], after_id: int) -> InteractionColumns | None:
    """The group's interactions with id > ``after_id``, by blocks of ids, in one read transaction;
    None where a value or an order defeats the fast path (the caller then reads plain rows)."""
    with engine.connect() as conn:
        db = conn.connection.driver_connection
        began = not db.in_transaction
        if began:
            db.execute("BEGIN")  # one consistent view (WAL) across the blocks and their queries
        try:
            return _sqlite_blocks(db, group_id, tuple(excluded), after_id)
        finally:
            if began:
                db.execute("ROLLBACK")


def _sqlite_blocks(db: Any, group_id: int, excluded: tuple[str, ...], after_id: int) -> InteractionColumns | None:
    if db.execute("PRAGMA encoding").fetchone()[0] != "UTF-8":
        return None  # the strings come over as their stored bytes, which are then not UTF-8
    top = db.execute("SELECT max(id) FROM interactions").fetchone()[0] or 0
    not_in = ", ".join("?" * len(excluded))
    # NOT INDEXED: a scan of the table in rowid order, not a lookup per row through a time index.
    where = "FROM interactions NOT INDEXED WHERE dataset_group_id = ? AND id > ? AND id <= ?" + (
        f" AND event_type NOT IN ({not_in})" if excluded else ""
    )
    aggregate = (
        "SELECT count(*), count(event_value), count(session_id), total(timestamp <> CAST(timestamp AS INTEGER)),"
        " group_concat(id, ' '), CAST(group_concat(user_id, char(31)) AS BLOB),"
        " CAST(group_concat(item_id, char(31)) AS BLOB), CAST(group_concat(event_type, char(31)) AS BLOB),"
        " group_concat(CAST(timestamp AS INTEGER), ' ') " + where
    )
    codes: dict[str, Any] = {**_new_codes(), **{name: TokenCodes() for name in _TOKEN_COLUMNS}}
    columns: list[_Filled] = []  # ids, users, items, types, stamps, values, sessions
    bounds = [(low, min(top, low + SQLITE_BLOCK_IDS)) for low in range(after_id, top, SQLITE_BLOCK_IDS)]

    def aggregated(block: int) -> tuple:
        low, high = bounds[block]
        return db.execute(aggregate, (group_id, low, high, *excluded)).fetchone()

    # The next block's query runs (SQLite releases the GIL while it steps) while this block's texts
    # are decoded: the two take about as long. Same connection, so the same read transaction.
    with ThreadPoolExecutor(max_workers=1) as prefetch:
        pending = prefetch.submit(aggregated, 0) if bounds else None
        for block, (low, high) in enumerate(bounds):
            row = pending.result()
            pending = prefetch.submit(aggregated, block + 1) if block + 1 < len(bounds) else None
            decoded = _decode_block(db, where, (group_id, low, high, *excluded), row, codes)
            if decoded is None:
                if pending is not None:
                    pending.result()
                return None
            if decoded is False:
                continue
            if not columns:  # sized from the first block's share of its ids: no join of blocks at the end
                rows = int(len(decoded[0]) * (top - after_id) / (high - low) * 1.05) + 1024
                columns = [_Filled(part.dtype, min(rows, top - after_id)) for part in decoded]
            for column, part in zip(columns, decoded, strict=True):
                column.add(part)
    if not columns:
        return InteractionColumns.empty()
    ids, users, items, types, stamps, values, sessions = (column.filled() for column in columns)
    return _build(ids, users, items, types, values, stamps, sessions, codes)


class _Filled:
    """A column written block by block into one array sized up front (grown if it runs out), as the
    blocks are decoded: joining the blocks after the last one was a serial half second at 5 million
    events (fresh memory), where the decode runs beside the next block's query."""

    def __init__(self, dtype: np.dtype, capacity: int) -> None:
        self._array = np.empty(capacity, dtype=dtype)
        self._n = 0

    def add(self, block: np.ndarray) -> None:
        end = self._n + len(block)
        if end > len(self._array):
            grown = np.empty(max(end, 2 * len(self._array)), dtype=self._array.dtype)
            grown[: self._n] = self._array[: self._n]
            self._array = grown
        self._array[self._n : end] = block
        self._n = end

    def filled(self) -> list[np.ndarray]:
        """The rows written, as the one block :func:`_build` takes (a view: room never written to
        holds no memory)."""
        return [self._array[: self._n]]


def _decode_block(db: Any, where: str, args: tuple, row: tuple, codes: dict[str, Any]) -> tuple | bool | None:
    """One block's columns from its aggregate row: False for an empty block, None where a value or
    an order defeats the fast path."""
    n, n_values, n_sessions, fractional, *texts = row
    if not n:
        return False
    block_ids = np.fromstring(texts[0], dtype=np.int64, sep=" ")
    if len(block_ids) != n or not np.all(block_ids[1:] > block_ids[:-1]):
        return None  # not in rowid order: nothing guarantees the columns line up with numeric reads
    # Strings as UTF-8 bytes (CAST AS BLOB: no str built), coded by numpy (engine.storage.encoding).
    coded = [codes[name].encode(data, ord(_SEP), n) for name, data in zip(_TOKEN_COLUMNS, texts[1:4], strict=True)]
    if any(c is None for c in coded):
        return None  # a separator inside a value
    if fractional:
        rows = db.execute("SELECT timestamp " + where + " ORDER BY id", args).fetchall()
        block_stamps = np.fromiter(itertools.chain.from_iterable(rows), np.float64, n)
    else:  # whole seconds (the usual epoch timestamps): exact as integer text
        block_stamps = np.fromstring(texts[4], dtype=np.int64, sep=" ").astype(np.float64)
    if n_values:
        rows = db.execute("SELECT event_value " + where + " ORDER BY id", args).fetchall()
        block_values = np.array([v for (v,) in rows], dtype=np.float64)  # None → NaN
    else:
        block_values = np.full(n, np.nan)
    if n_sessions:
        rows = db.execute("SELECT session_id " + where + " ORDER BY id", args).fetchall()
        if len(rows) != n:
            return None
        block_sessions = codes["session"].encode(_session_texts(s for (s,) in rows))
    else:
        block_sessions = codes["session"].same("-", n)
    if len(block_stamps) != n or len(block_values) != n:
        return None
    return (
        block_ids,
        *coded,
        block_stamps,
        block_values,
        block_sessions,
    )


# --------------------------------------------------------------------- any database
def _query(group_id: int, excluded: Sequence[str], after_id: int):
    r = t.InteractionRow
    query = select(r.id, r.user_id, r.item_id, r.event_type, r.event_value, r.timestamp, r.session_id).where(
        r.dataset_group_id == group_id, r.id > after_id
    )
    return query.where(r.event_type.notin_(list(excluded))) if excluded else query


def driver_statement(query: Any, dialect: Any) -> tuple[str, Any]:
    """A select as the database driver's own cursor takes it (SQL text and parameters), for reads
    of a whole dataset that skip SQLAlchemy's per-row result objects."""
    compiled = query.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    params = compiled.params
    return str(compiled), tuple(params[k] for k in compiled.positiontup or ()) if compiled.positional else params


def read_rows(engine: Engine, group_id: int, excluded: Sequence[str], after_id: int) -> InteractionColumns:
    """The same columns from plain driver rows, converted a block at a time."""
    query = _query(group_id, excluded, after_id)
    codes = _new_codes()
    ids, users, items, types, values, stamps, sessions = [], [], [], [], [], [], []
    with engine.connect() as conn:
        cursor = conn.connection.driver_connection.cursor()
        try:
            cursor.execute(*driver_statement(query, conn.dialect))
            while rows := cursor.fetchmany(FETCH_ROWS):
                i, u, it, ty, v, ts, s = zip(*rows, strict=True)
                ids.append(np.array(i, dtype=np.int64))
                users.append(codes["user"].encode(u))
                items.append(codes["item"].encode(it))
                types.append(codes["type"].encode(ty))
                values.append(np.array(v, dtype=np.float64))  # None → NaN
                stamps.append(np.array(ts, dtype=np.float64))
                sessions.append(codes["session"].encode(_session_texts(s)))
        finally:
            cursor.close()
    return _build(ids, users, items, types, values, stamps, sessions, codes)


# --------------------------------------------------------------------- PostgreSQL
#: Per block of ids: every column as one string (``string_agg``, no row objects). The aggregates of
#: one statement see the rows in the same order, so the ids line up the other columns; event values
#: and session ids come with their own ids, only where they are present.
_POSTGRES_BLOCK = text(
    "SELECT count(*), string_agg(id::text, ' '), string_agg(user_id, chr(31)), string_agg(item_id, chr(31)),"
    " string_agg(event_type, chr(31)), string_agg(timestamp::text, ' '),"
    " string_agg(id::text, ' ') FILTER (WHERE event_value IS NOT NULL),"
    " string_agg(event_value::text, ' ') FILTER (WHERE event_value IS NOT NULL),"
    " string_agg(id::text, ' ') FILTER (WHERE session_id IS NOT NULL),"
    " string_agg(session_id, chr(31)) FILTER (WHERE session_id IS NOT NULL)"
    " FROM interactions WHERE dataset_group_id = :group AND id > :low AND id <= :high"
    " AND NOT (event_type = ANY(:excluded))"
)


def read_postgres(engine: Engine, group_id: int, excluded: Sequence[str], after_id: int) -> InteractionColumns | None:
    """The group's interactions with id > ``after_id``, by blocks of ids, in one repeatable-read
    transaction; None where a separator inside a value defeats the fast path."""
    codes = _new_codes()
    ids, users, items, types, values, stamps, sessions = [], [], [], [], [], [], []
    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn, conn.begin():
        # Floats as text that reads back to the same double (the default since PostgreSQL 12).
        conn.execute(text("SET LOCAL extra_float_digits = 1"))
        top = conn.execute(text("SELECT max(id) FROM interactions")).scalar() or 0
        low = after_id
        while low < top:
            high = min(top, low + POSTGRES_BLOCK_IDS)
            row = conn.execute(
                _POSTGRES_BLOCK, {"group": group_id, "low": low, "high": high, "excluded": list(excluded)}
            ).one()
            low = high
            n = row[0]
            if not n:
                continue
            block_ids = np.fromstring(row[1], dtype=np.int64, sep=" ")
            split = [row[k].split(_SEP) for k in (2, 3, 4)]
            block_stamps = np.fromstring(row[5], dtype=np.float64, sep=" ")
            if len(block_ids) != n or len(block_stamps) != n or any(len(x) != n for x in split):
                return None
            order = np.argsort(block_ids)
            block_values = np.full(n, np.nan)
            if row[6]:
                at = np.fromstring(row[6], dtype=np.int64, sep=" ")
                present = np.fromstring(row[7], dtype=np.float64, sep=" ")
                if len(at) != len(present):
                    return None
                block_values[order[np.searchsorted(block_ids[order], at)]] = present
            block_sessions = codes["session"].same("-", n)
            if row[8]:
                at = np.fromstring(row[8], dtype=np.int64, sep=" ")
                named = row[9].split(_SEP)
                if len(at) != len(named):
                    return None
                block_sessions[order[np.searchsorted(block_ids[order], at)]] = codes["session"].encode(
                    ["+" + v for v in named]
                )
            ids.append(block_ids)
            users.append(codes["user"].encode(split[0]))
            items.append(codes["item"].encode(split[1]))
            types.append(codes["type"].encode(split[2]))
            stamps.append(block_stamps)
            values.append(block_values)
            sessions.append(block_sessions)
    return _build(ids, users, items, types, values, stamps, sessions, codes)
