"""Training snapshots (engine.jobs.snapshot) and the fast interaction read, on SQLite and PostgreSQL:
a snapshot plus the new rows must give exactly what a full read gives, and anything that makes a
snapshot doubtful (erasures, aliases, another database, a damaged file) must lead to a full read."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest
from sqlalchemy import select

from engine.jobs.snapshot import SNAPSHOT_FILE, read_interactions, snapshot_directory
from engine.jobs.train import load_training_data, train
from engine.recipes import TrainingData, recipe_class
from engine.records import Alias, Erasure, Interaction, Item, User
from engine.storage import Store
from engine.storage import columns as storage_columns
from engine.storage import tables as t

GROUP = "shop"


def events(users: range, items: int, start: float, *, seed: int) -> list[Interaction]:
    """Events with ties in time, fractional seconds, values, sessions and impressions."""
    rng = np.random.default_rng(seed)
    out = []
    for u in users:
        for k in range(6):
            kind = ("view", "purchase", "add-to-cart", "impression")[int(rng.integers(0, 4))]
            out.append(
                Interaction(
                    f"u{u}",
                    f"i{int(rng.integers(0, items))}",
                    kind,
                    start + float(rng.integers(0, 5)) + (0.25 if k == 3 else 0.0),
                    event_value=float(rng.integers(1, 9)) if kind == "purchase" else None,
                    session_id=f"s{u}-{k // 3}" if u % 3 else None,
                )
            )
    return out


def reference(store: Store, group: str = GROUP) -> TrainingData:
    """What training read before snapshots: ORM rows ordered by the database, then from_columns."""
    group_id = store.get_dataset_group(group).id
    r = t.InteractionRow
    with store.session() as s:
        rows = s.execute(
            select(r.user_id, r.item_id, r.event_type, r.timestamp, r.event_value, r.session_id, r.id)
            .where(r.dataset_group_id == group_id, r.event_type != "impression")
            .order_by(r.timestamp, r.id)
        ).all()
    data = TrainingData.from_columns(
        [x[0] for x in rows],
        [x[1] for x in rows],
        [x[2] for x in rows],
        [x[3] for x in rows],
        [math.nan if x[4] is None else x[4] for x in rows],
        items=store.items(group),
        users=store.users(group),
        session_ids=[x[5] for x in rows],
    )
    data.interaction_ids = np.array([x[6] for x in rows], dtype=np.int64)
    return data


def assert_same(a: TrainingData, b: TrainingData) -> None:
    assert a.user_ids.tolist() == b.user_ids.tolist()
    assert a.item_ids.tolist() == b.item_ids.tolist()
    assert a.user_index.tolist() == b.user_index.tolist() and a.user_index.dtype == b.user_index.dtype
    assert a.item_index.tolist() == b.item_index.tolist() and a.item_index.dtype == b.item_index.dtype
    assert a.event_types.tolist() == b.event_types.tolist()
    assert np.array_equal(a.event_values, b.event_values, equal_nan=True)
    assert a.timestamps.tolist() == b.timestamps.tolist()
    assert a.session_ids.tolist() == b.session_ids.tolist()
    assert a.items == b.items and a.users == b.users
    assert a.interaction_ids.tolist() == b.interaction_ids.tolist()


@pytest.fixture
def reads(store, monkeypatch):
    """Each interaction read the store answers, as the id it read above (0: a full read)."""
    calls: list[int] = []
    original = store.interaction_columns

    def spy(group, *, after_id=0):
        calls.append(after_id)
        return original(group, after_id=after_id)

    monkeypatch.setattr(store, "interaction_columns", spy)
    return calls


def fill(store: Store) -> None:
    store.create_dataset_group(GROUP)
    catalog = [Item(f"i{n}", {"CATEGORY_L1": "shoes" if n % 2 else "hats"}) for n in range(25)]
    store.ingest(GROUP, [*catalog, User("u1", {"TIER": "gold"}), *events(range(20), 20, 1_700_000_000, seed=1)])


@pytest.mark.parametrize("block_ids", [250_000, 7], ids=["one-block", "many-blocks"])
def test_the_fast_read_matches_plain_rows_and_the_old_order(store, monkeypatch, block_ids):
    # Many small blocks: each block's query runs while the one before is decoded.
    monkeypatch.setattr(storage_columns, "SQLITE_BLOCK_IDS", block_ids)
    monkeypatch.setattr(storage_columns, "POSTGRES_BLOCK_IDS", block_ids)
    fill(store)
    group_id = store.get_dataset_group(GROUP).id
    fast = (storage_columns.read_sqlite if store.engine.dialect.name == "sqlite" else storage_columns.read_postgres)(
        store.engine, group_id, ("impression",), 0
    )
    assert fast is not None  # ordinary ids take the fast path
    plain = storage_columns.read_rows(store.engine, group_id, ("impression",), 0)
    for name in ("ids", "event_values", "timestamps"):
        assert np.array_equal(getattr(fast, name), getattr(plain, name), equal_nan=True), name
    for name in ("user", "item", "type", "session"):  # vocabularies come in reading order: compare values

        def decoded(columns, name=name):
            vocab = [*getattr(columns, f"{name}_vocab").tolist(), None]
            return [vocab[c] for c in getattr(columns, f"{name}_codes").tolist()]

        assert decoded(fast) == decoded(plain), name
    assert_same(load_training_data(store, GROUP), reference(store))


def test_ids_that_defeat_the_fast_path_still_read_right(store):
    store.create_dataset_group(GROUP)
    odd = ["tab\tuser", "back\\slash", "sep\x1fuser", "new\nline", "plain"]
    store.ingest(
        GROUP,
        [Interaction(u, f"item {u}", "view", 1_700_000_000 + k, session_id=u) for k, u in enumerate(odd)]
        + [Interaction("plain", "i1", "view", 1_700_000_000.5, event_value=2.5)],
    )
    assert_same(load_training_data(store, GROUP), reference(store))


def test_a_snapshot_plus_new_rows_equals_a_full_read(store, tmp_path, reads):
    fill(store)
    directory = snapshot_directory(tmp_path, GROUP)
    assert_same(load_training_data(store, GROUP, snapshot_dir=directory), reference(store))
    assert reads == [0] and (directory / SNAPSHOT_FILE).is_file()
    watermark = int(reference(store).interaction_ids.max())

    # New shoppers, new catalog items, and events tied in time with old ones.
    store.ingest(GROUP, [Item("i-new", {"CATEGORY_L1": "socks"}), User("u99", {"TIER": "new"})])
    store.ingest(GROUP, events(range(15, 30), 27, 1_700_000_000, seed=2))
    reads.clear()
    data = load_training_data(store, GROUP, snapshot_dir=directory)
    assert reads == [watermark]  # only the rows above the watermark were read
    assert_same(data, reference(store))

    # Nothing new: the snapshot alone.
    reads.clear()
    assert_same(load_training_data(store, GROUP, snapshot_dir=directory), reference(store))
    assert reads == [int(data.interaction_ids.max())]


@pytest.mark.parametrize("rewrite", [Erasure(user_id="u4"), Alias("u5", "u1")])
def test_erasures_and_aliases_lead_to_a_full_read(store, tmp_path, reads, rewrite):
    fill(store)
    directory = snapshot_directory(tmp_path, GROUP)
    load_training_data(store, GROUP, snapshot_dir=directory)
    store.ingest(GROUP, [rewrite, *events(range(40, 42), 20, 1_700_000_100, seed=3)])
    reads.clear()
    data = load_training_data(store, GROUP, snapshot_dir=directory)
    assert_same(data, reference(store))
    assert reads == [0]
    # The snapshot written by that full read is good again.
    store.ingest(GROUP, events(range(50, 52), 20, 1_700_000_200, seed=4))
    reads.clear()
    assert_same(load_training_data(store, GROUP, snapshot_dir=directory), reference(store))
    assert reads[0] > 0


def test_rows_deleted_behind_the_stores_back_are_noticed(store, tmp_path, reads):
    fill(store)
    directory = snapshot_directory(tmp_path, GROUP)
    load_training_data(store, GROUP, snapshot_dir=directory)
    with store.session() as s, s.begin():  # no ingest, no rewrite count: only the row count tells
        s.execute(t.InteractionRow.__table__.delete().where(t.InteractionRow.user_id == "u2"))
    reads.clear()
    assert_same(load_training_data(store, GROUP, snapshot_dir=directory), reference(store))
    # The newer rows are read while the rows up to the watermark are counted; the count decides.
    assert reads[-1] == 0 and reads[:-1] in ([], [int(reference(store).interaction_ids.max())])


def test_what_is_made_before_the_count_decides_is_made_again_from_a_full_read(store, tmp_path):
    fill(store)
    directory = snapshot_directory(tmp_path, GROUP)
    read_interactions(store, GROUP, directory)
    made = []

    def then(columns):
        made.append(len(columns))
        return len(made), columns

    first, columns = read_interactions(store, GROUP, directory, then=then)
    assert first == 1 and made == [len(columns)]  # the snapshot was good: made once
    with store.session() as s, s.begin():
        s.execute(t.InteractionRow.__table__.delete().where(t.InteractionRow.user_id == "u2"))
    made.clear()
    second, columns = read_interactions(store, GROUP, directory, then=then)
    # Made from the snapshot's rows while they were counted, then from the full read that follows.
    assert second == 2 and made == [made[0], len(columns)] and made[0] > len(columns)
    assert columns.ids.tolist() == reference(store).interaction_ids.tolist()


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_a_damaged_snapshot_is_ignored(store, tmp_path, reads, damage):
    fill(store)
    directory = snapshot_directory(tmp_path, GROUP)
    load_training_data(store, GROUP, snapshot_dir=directory)
    path = directory / SNAPSHOT_FILE
    content = path.read_bytes()
    damaged = {"truncate": content[: len(content) // 2], "garbage": b"not a snapshot" * 50, "empty": b""}
    path.write_bytes(damaged[damage])
    reads.clear()
    assert_same(load_training_data(store, GROUP, snapshot_dir=directory), reference(store))
    assert reads == [0]
    assert not list(directory.glob("*.partial"))


def test_a_snapshot_of_another_database_is_ignored(store, tmp_path, reads):
    fill(store)
    other = Store(f"sqlite:///{tmp_path}/other.db")
    other.create_dataset_group(GROUP)
    other.ingest(GROUP, [Interaction("x", "y", "view", 1.0)])
    foreign = tmp_path / "foreign"
    read_interactions(other, GROUP, foreign)
    other.close()
    directory = snapshot_directory(tmp_path, GROUP)
    directory.mkdir(parents=True)
    shutil.copy(foreign / SNAPSHOT_FILE, directory / SNAPSHOT_FILE)
    reads.clear()
    assert_same(load_training_data(store, GROUP, snapshot_dir=directory), reference(store))
    assert reads == [0]


def test_training_records_its_watermark_and_update_marks_new_events(store, tmp_path, monkeypatch):
    fill(store)
    cls = recipe_class("popularity-count")
    seen: list[TrainingData] = []
    original = cls.fit

    def spy(self, data, *, previous=None):
        seen.append(data)
        return original(self, data, previous=previous)

    monkeypatch.setattr(cls, "fit", spy)
    first = train(store, tmp_path, dataset_group=GROUP, recipe="popularity-count", solution="pop", metrics=False)
    watermark = int(reference(store).interaction_ids.max())
    assert cls.load(first.artifact_path).data_watermark == watermark
    assert seen[0].new_events is None

    store.ingest(GROUP, events(range(60, 63), 20, 1_700_000_300, seed=5))
    second = train(store, tmp_path, dataset_group=GROUP, recipe="popularity-count", solution="pop", mode="update")
    data = seen[1]
    # The recipe gets the marks, not the ids (dropped once the marks exist): both in time order.
    assert data.interaction_ids is None
    ids = reference(store).interaction_ids
    assert data.new_events is not None and data.new_events.tolist() == (ids > watermark).tolist()
    assert 0 < int(data.new_events.sum()) < len(data)
    assert cls.load(second.artifact_path).data_watermark == int(reference(store).interaction_ids.max())


def test_artifacts_without_a_watermark_still_load(tmp_path):
    cls = recipe_class("popularity-count")
    data = TrainingData.from_columns(["u1", "u2"], ["a", "b"], ["view", "view"], [1.0, 2.0])
    model = cls().fit(data)
    assert cls.load(model.save(tmp_path / "none.npz")).data_watermark is None
    model.data_watermark = 41
    assert cls.load(model.save(tmp_path / "some.npz")).data_watermark == 41
    # An artifact written before the header had the field.
    with np.load(tmp_path / "some.npz", allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    import json

    header = json.loads(str(arrays["__header__"]))
    del header["data_watermark"]
    arrays["__header__"] = np.array(json.dumps(header))
    np.savez(tmp_path / "old.npz", **arrays)
    assert cls.load(tmp_path / "old.npz").data_watermark is None


def test_a_few_new_rows_are_read_again_rather_than_rewritten(store, tmp_path, reads, monkeypatch):
    from engine.jobs import snapshot

    fill(store)
    directory = snapshot_directory(tmp_path, GROUP)
    load_training_data(store, GROUP, snapshot_dir=directory)
    first = (directory / SNAPSHOT_FILE).read_bytes()
    watermark = int(reference(store).interaction_ids.max())
    monkeypatch.setattr(snapshot, "REWRITE_SHARE", 0.2)  # 120 rows kept: up to 24 new ones are read again

    store.ingest(GROUP, events(range(70, 72), 20, 1_700_000_400, seed=6))  # 12 rows
    for _ in range(2):
        reads.clear()
        assert_same(load_training_data(store, GROUP, snapshot_dir=directory), reference(store))
        assert reads == [watermark] and (directory / SNAPSHOT_FILE).read_bytes() == first

    store.ingest(GROUP, events(range(72, 75), 20, 1_700_000_500, seed=7))  # 30 new rows in all: rewritten
    reads.clear()
    assert_same(load_training_data(store, GROUP, snapshot_dir=directory), reference(store))
    assert reads == [watermark] and (directory / SNAPSHOT_FILE).read_bytes() != first
    reads.clear()
    load_training_data(store, GROUP, snapshot_dir=directory)
    assert reads == [int(reference(store).interaction_ids.max())]


def test_an_update_reads_only_the_new_items_metadata(store, tmp_path, monkeypatch):
    fill(store)
    hp = {"factors": 4, "iterations": 2}
    common = {"dataset_group": GROUP, "recipe": "user-personalization", "solution": "up", "hyperparameters": hp}
    train(store, tmp_path, **common, metrics=False)
    store.ingest(GROUP, [Item("i-new", {"CATEGORY_L1": "shoes"}), *events(range(80, 83), 25, 1_700_000_600, seed=8)])
    asked: list[list[str] | None] = []
    original = store.items

    def spy(group, item_ids=None):
        asked.append(None if item_ids is None else sorted(item_ids))
        return original(group, item_ids)

    monkeypatch.setattr(store, "items", spy)
    version = train(store, tmp_path, **common, mode="update")
    assert asked == [["i-new"]]  # not the whole catalog
    model = recipe_class("user-personalization").load(version.artifact_path)
    new = model.item_index("i-new")
    assert new is not None and model.item_features[new].nnz > 0  # placed through its metadata


def test_later_rows_merged_into_time_order_equal_a_full_sort():
    from engine.storage.columns import InteractionColumns

    rng = np.random.default_rng(11)

    def columns(ids: np.ndarray) -> InteractionColumns:
        n = len(ids)
        vocab = np.array([f"v{k}" for k in range(7)])
        codes = lambda: rng.integers(0, 7, n).astype(np.int32)  # noqa: E731
        return InteractionColumns(
            ids, vocab, codes(), vocab, codes(), vocab, codes(),
            rng.random(n), rng.integers(0, 20, n).astype(np.float64), vocab, codes(),
        )  # fmt: skip

    old = columns(np.arange(1, 301)).by_time()
    later = columns(np.arange(400, 460)[rng.permutation(60)])  # any order, ties in time with old rows
    merged = old.merged_by_time(later)
    expected = old.concat(later)
    expected = expected._rows(np.lexsort((expected.ids, expected.timestamps)))
    assert merged.in_time_order() and not later.in_time_order()
    for name in ("ids", "user_codes", "item_codes", "type_codes", "event_values", "timestamps", "session_codes"):
        assert np.array_equal(getattr(merged, name), getattr(expected, name)), name
    with pytest.raises(ValueError):
        old.merged_by_time(columns(np.arange(200, 210)))  # ids not above the kept ones


def stamped_columns(ids, stamps):
    """Interactions with these ids and timestamps, every other column alike (one vocabulary)."""
    from engine.storage.columns import InteractionColumns

    vocab = np.array(["a", "b"])
    n = len(ids)
    codes = np.zeros(n, dtype=np.int32)
    return InteractionColumns(
        np.asarray(ids, dtype=np.int64), vocab, codes, vocab, codes, vocab, codes,
        np.full(n, np.nan), np.asarray(stamps, dtype=np.float64), vocab, codes,
    )  # fmt: skip


def test_later_rows_all_newer_in_time_are_appended():
    merged = stamped_columns([1, 2, 3], [10, 20, 20]).merged_by_time(stamped_columns([5, 4], [30, 20]))
    assert merged.ids.tolist() == [1, 2, 3, 4, 5] and merged.timestamps.tolist() == [10, 20, 20, 20, 30]
    assert merged.in_time_order()


def test_consuming_reorder_gives_the_same_rows_and_lets_the_originals_go():
    from engine.storage.columns import InteractionColumns

    n = 200
    vocab = np.array([f"v{k}" for k in range(5)])

    def read() -> InteractionColumns:  # a fresh read each time, in id order, not in time order
        r = np.random.default_rng(3)
        codes = lambda: r.integers(0, 5, n).astype(np.int32)  # noqa: E731
        return InteractionColumns(
            np.arange(1, n + 1), vocab, codes(), vocab, codes(), vocab, codes(),
            r.random(n), r.integers(0, 30, n).astype(np.float64), vocab, codes(),
        )  # fmt: skip

    expected = read().by_time()
    fresh = read()
    assert not fresh.in_time_order()
    consumed = fresh.by_time(consume=True)
    assert consumed.in_time_order()
    for name in ("ids", "user_codes", "item_codes", "type_codes", "event_values", "timestamps", "session_codes"):
        assert np.array_equal(getattr(consumed, name), getattr(expected, name)), name
        assert len(getattr(fresh, name)) == 0, name  # the read's own column is let go
    assert consumed.user_vocab is vocab


def test_new_rows_all_later_in_time_are_written_into_the_snapshots_room(store, tmp_path, reads, monkeypatch):
    from engine.jobs import snapshot

    fill(store)
    directory = snapshot_directory(tmp_path, GROUP)
    load_training_data(store, GROUP, snapshot_dir=directory)
    with np.load(directory / SNAPSHOT_FILE) as npz:  # vocabularies kept sorted, room after the rows
        for name in ("user_vocab", "item_vocab", "type_vocab", "session_vocab"):
            assert npz[name].tolist() == sorted(npz[name].tolist()), name
        assert len(npz["ids"]) > len(reference(store))
    watermark = int(reference(store).interaction_ids.max())
    # New shoppers, new items, new sessions, all after everything kept (the usual case).
    store.ingest(GROUP, [Item("i-new", {"CATEGORY_L1": "socks"})])
    store.ingest(GROUP, events(range(18, 23), 27, 1_700_000_100, seed=5))
    monkeypatch.setattr(
        storage_columns.InteractionColumns, "merged_by_time", lambda *_: (_ for _ in ()).throw(AssertionError())
    )
    reads.clear()
    monkeypatch.setattr(snapshot, "REWRITE_SHARE", 0.5)  # the snapshot stays: the new rows are read again
    assert_same(load_training_data(store, GROUP, snapshot_dir=directory), reference(store))
    assert reads == [watermark]
    reads.clear()
    assert_same(load_training_data(store, GROUP, snapshot_dir=directory), reference(store))
    assert reads == [watermark]


def test_more_rows_than_the_room_holds_are_merged():
    from engine.jobs.snapshot import _appended
    from engine.storage.columns import InteractionColumns

    kept = stamped_columns([1, 2, 3], [10, 20, 20])
    per_row = ("ids", "user_codes", "item_codes", "type_codes", "event_values", "timestamps", "session_codes")
    whole = {name: np.concatenate([getattr(kept, name), np.zeros(1, getattr(kept, name).dtype)]) for name in per_row}
    trimmed = {name: whole[name][:3] for name in whole}
    kept = InteractionColumns(**{**kept.__dict__, **trimmed})
    assert _appended(kept, whole, stamped_columns([4, 5], [30, 40])) is None  # one row of room
    assert _appended(kept, whole, stamped_columns([4], [15])) is None  # goes between kept rows
    appended = _appended(kept, whole, stamped_columns([4], [30]))
    assert appended.ids.tolist() == [1, 2, 3, 4] and appended.ids.base is not None


@pytest.mark.parametrize("seed", range(6))
def test_vocabularies_from_a_sorted_head_and_a_tail_are_what_a_full_sort_gives(seed):
    from engine.jobs.snapshot import _vocabulary

    rng = np.random.default_rng(seed)
    values = np.unique(np.array([f"v{x}" for x in rng.integers(0, 400, 300)]))
    rng.shuffle(values)
    head_length = int(rng.integers(0, len(values) + 1))
    vocab = np.concatenate([np.sort(values[:head_length]), values[head_length:]])
    codes = rng.integers(0, len(vocab), int(rng.integers(0, 500))).astype(np.int32)
    extra = [f"v{x}" for x in rng.integers(0, 500, int(rng.integers(0, 100)))]
    if seed == 0:
        extra = sorted(set(vocab[codes].tolist()))  # the catalog is exactly what is in use
    ordered, remap = _vocabulary(vocab, codes, extra)
    expected = np.unique(np.concatenate([vocab[codes], np.array(extra, dtype=str)]))
    assert ordered.tolist() == expected.tolist()
    assert ordered[remap[codes]].tolist() == vocab[codes].tolist()


@pytest.mark.parametrize("rows", [1, 2, 3, 1000])
def test_the_time_order_check_a_block_at_a_time_sees_every_pair(monkeypatch, rows):
    monkeypatch.setattr(storage_columns, "_CHECK_ROWS", rows)

    def plainly_in_time_order(columns):  # the whole columns at once
        step = np.diff(columns.timestamps)
        return bool(np.all(step >= 0) and np.all((step > 0) | (np.diff(columns.ids) > 0)))

    ids, stamps = np.arange(1, 9), np.array([1, 2, 2, 3, 5, 5, 8, 9], dtype=np.float64)
    assert stamped_columns(ids, stamps).in_time_order()
    for i in range(len(ids) - 1):  # each neighbouring pair out of order, wherever the blocks end
        swapped = np.arange(len(ids))
        swapped[[i, i + 1]] = swapped[[i + 1, i]]
        columns = stamped_columns(ids[swapped], stamps[swapped])
        assert columns.in_time_order() == plainly_in_time_order(columns)
