"""Many shoppers' latest events as columns (engine.storage.histories): grouped in the order asked for,
each shopper's oldest first by (timestamp, id), the newest ``limit`` kept, on every backend; on SQLite
the block aggregates must give exactly what plain rows give, whatever the values."""

from __future__ import annotations

import numpy as np
import pytest

from engine.jobs.batch import as_user_events
from engine.records import Interaction
from engine.storage import histories
from engine.storage.histories import latest_events_of_users


def as_lists(cols) -> list[tuple]:
    values = [None if v != v else v for v in cols.event_values.tolist()]
    return list(
        zip(
            cols.user_ids.tolist(),
            cols.item_ids.tolist(),
            cols.event_types.tolist(),
            values,
            cols.timestamps.tolist(),
            strict=True,
        )
    )


def expected(records: list[Interaction], users: list[str], limit: int | None) -> list[tuple]:
    """What the columns must hold, from the records (their order of ingestion is their id order)."""
    out = []
    for user in dict.fromkeys(users):
        mine = sorted(((r.timestamp, n, r) for n, r in enumerate(records) if r.user_id == user), key=lambda x: x[:2])
        kept = mine[-limit:] if limit is not None else mine
        out += [(r.user_id, r.item_id, r.event_type, r.event_value, float(r.timestamp)) for _, _, r in kept]
    return out


def history(seed: int = 0, fractional: bool = False, values: bool = False) -> list[Interaction]:
    rng = np.random.default_rng(seed)
    records = []
    for _ in range(400):
        stamp = float(rng.integers(0, 30))  # ties within a shopper are common
        records.append(
            Interaction(
                f"u{rng.integers(0, 25)}",
                f"i{rng.integers(0, 40)}",
                "purchase" if rng.random() < 0.3 else "view",
                stamp + (0.25 if fractional and rng.random() < 0.5 else 0.0),
                event_value=float(rng.integers(1, 5)) / 3 if values and rng.random() < 0.4 else None,
            )
        )
    return records


ASKED = ["u7", "nobody", "u3", "u11", "u7", "u0", "u24", "u13", "u2", "u1"]


@pytest.mark.parametrize("kind", ["whole seconds", "fractions", "event values"])
@pytest.mark.parametrize("limit", [None, 4])
def test_events_grouped_in_the_order_asked_oldest_first(store, kind, limit):
    records = history(fractional=kind == "fractions", values=kind == "event values")
    store.create_dataset_group("g")
    store.ingest("g", records)
    store.create_dataset_group("other")
    store.ingest("other", [Interaction("u7", "elsewhere", "view", 5.0)])
    cols = latest_events_of_users(store, "g", ASKED, limit=limit)
    assert as_lists(cols) == expected(records, ASKED, limit)
    assert cols.user_ids.dtype == object and cols.item_ids.dtype == object and cols.event_types.dtype == object
    assert cols.event_values.dtype == np.float64 and cols.timestamps.dtype == np.float64
    users = list(dict.fromkeys(ASKED))
    events = as_user_events(cols, users)
    for k, user in enumerate(users):
        lo, hi = events.offsets[k], events.offsets[k + 1]
        assert set(cols.user_ids[lo:hi].tolist()) <= {user}
        assert hi - lo == sum(1 for r in expected(records, [user], limit))
    # Asked in another order (or as another list), the same rows are found by their ids.
    assert np.array_equal(as_user_events(cols, list(reversed(users))).offsets[-1], events.offsets[-1])


def test_blocks_of_users_are_read_query_by_query(store, monkeypatch):
    records = history(seed=3)
    store.create_dataset_group("g")
    store.ingest("g", records)
    monkeypatch.setattr(histories, "USERS_PER_QUERY", 3)
    assert as_lists(latest_events_of_users(store, "g", ASKED, limit=5)) == expected(records, ASKED, 5)


def test_nobody_asked_or_nobody_known(store):
    store.create_dataset_group("g")
    store.ingest("g", [Interaction("u1", "i", "view", 1.0)])
    for asked in ([], ["ghost", "spook"]):
        cols = latest_events_of_users(store, "g", asked, limit=3)
        assert len(cols) == 0 and cols.event_values.dtype == np.float64
        assert as_user_events(cols, asked).offsets.tolist() == [0] * (len(asked) + 1)


def test_sqlite_aggregates_equal_plain_rows(sqlite_store):
    records = history(seed=5, fractional=True, values=True)
    sqlite_store.create_dataset_group("g")
    sqlite_store.ingest("g", records)
    group = sqlite_store.get_dataset_group("g").id
    wanted = list(dict.fromkeys(ASKED))
    with sqlite_store.engine.connect() as conn:
        fast = histories._sqlite_events(conn.connection.driver_connection, group, wanted)
        plain = histories._row_events(conn, group, wanted)
    assert fast is not None
    for a, b in zip(fast, plain, strict=True):
        assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype == np.float64)


def test_sqlite_events_in_another_order_are_sorted(sqlite_store, monkeypatch):
    """Nothing but the query plan keeps the aggregate's rows in order: rows in any order come out
    grouped in the order asked for, each shopper's by (timestamp, id)."""
    records = history(seed=7, values=True)
    sqlite_store.create_dataset_group("g")
    sqlite_store.ingest("g", records)
    # The same aggregate over the same rows, fed to it in a random order.
    head = histories._SQLITE_BLOCK.removesuffix(histories._SQLITE_FROM).replace("j.key", "i.key")
    shuffled = f"{head} FROM (SELECT j.key AS key, i.* {histories._SQLITE_FROM} ORDER BY random()) AS i"
    monkeypatch.setattr(histories, "_SQLITE_BLOCK", shuffled)
    assert as_lists(latest_events_of_users(sqlite_store, "g", ASKED, limit=6)) == expected(records, ASKED, 6)


@pytest.mark.parametrize(
    "user, item",
    [("u\x1fx", "i1"), ("u1", "i\x1fsep"), ("tab\tand\nnewline", "i2"), ("nul\x00", "i3"), ('quo"te\\', "ü")],
)
def test_odd_ids_read_alike(store, user, item):
    """Separators inside values or ids JSON escapes: the SQLite read falls back to plain rows."""
    if "\x00" in user and store.engine.dialect.name == "postgresql":
        pytest.skip("PostgreSQL text holds no NUL")
    records = [
        Interaction(user, item, "view", 2.0),
        Interaction(user, "later", "view\x1f", 3.0, event_value=1.5),
        Interaction("u9", item, "buy", 1.0),
    ]
    store.create_dataset_group("g")
    store.ingest("g", records)
    asked = ["u9", user, "none"]
    assert as_lists(latest_events_of_users(store, "g", asked)) == expected(records, asked, None)
