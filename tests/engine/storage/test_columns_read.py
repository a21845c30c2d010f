"""The SQLite read's numpy coding of string columns (engine.storage.encoding): the codes and
vocabularies must be exactly what a dict gives (first come, first numbered), whatever the tokens
(unicode, longer than a fixed-width key, empty, sharing a hash), and the store read must still equal
plain rows."""

from __future__ import annotations

import numpy as np
import pytest

from engine.jobs.train import load_training_data
from engine.records import Interaction
from engine.storage import Store, encoding
from engine.storage import columns as storage_columns
from engine.storage.columns import _Codes
from engine.storage.encoding import MAX_TOKEN_BYTES, TokenCodes
from tests.engine.jobs.test_snapshot import GROUP, assert_same, reference

SEP = 0x1F


def coded_both_ways(blocks: list[list[str]]) -> tuple[TokenCodes, np.ndarray, np.ndarray, list]:
    """The blocks through TokenCodes and through the dict; asserts they agree, returns both."""
    fast, slow = TokenCodes(), _Codes()
    fast_parts, slow_parts = [], []
    for block in blocks:
        codes = fast.encode("\x1f".join(block).encode("utf-8"), SEP, len(block))
        assert codes is not None and codes.dtype == np.int32
        fast_parts.append(codes)
        slow_parts.append(slow.encode(block))
    vocab, codes = fast.finish(np.concatenate(fast_parts) if fast_parts else np.empty(0, np.int32))
    slow_vocab, slow_codes = slow.finish(np.concatenate(slow_parts) if slow_parts else np.empty(0, np.int32))
    expected_vocab = np.array(slow_vocab, dtype=str)
    assert vocab.dtype == expected_vocab.dtype
    assert vocab.tolist() == expected_vocab.tolist()
    assert codes.tolist() == slow_codes.tolist()
    return fast, vocab, codes, slow_vocab


def random_blocks(seed: int, alphabet: list[str], sizes: list[int], lengths: tuple[int, int]) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    pool = ["".join(rng.choice(alphabet, size=int(rng.integers(*lengths)))) for _ in range(300)]
    return [[pool[int(k)] for k in rng.integers(0, len(pool), size=n)] for n in sizes]


@pytest.mark.parametrize("seed", range(3))
def test_short_ascii_ids_in_many_blocks_match_the_dict(seed):
    fast, *_ = coded_both_ways(random_blocks(seed, list("abc019"), [500, 1, 0, 700, 3], (0, 8)))
    assert fast._dict is None  # all on the numpy path


def test_runs_of_one_id_and_a_single_block_match_the_dict():
    block = ["u1"] * 5 + ["u2"] * 3 + ["u1"] + ["u3"] * 4
    coded_both_ways([block])
    coded_both_ways([["only"]])
    coded_both_ways([[""], ["", "x", ""]])  # empty strings are values too


def test_unicode_and_wider_keys_across_blocks_match_the_dict():
    # Widths change from block to block (one word, then up to eight): the same id keeps its code.
    blocks = random_blocks(4, ["a", "é", "日本", "🙂", "z"], [300, 200], (1, 4))
    blocks += random_blocks(5, ["a", "é", "x", "😀"], [400], (8, 20))
    blocks.append(blocks[0][:50] + blocks[2][:50])
    fast, vocab, _, _ = coded_both_ways(blocks)
    assert fast._dict is None
    assert "日本" in "".join(vocab.tolist()) or any(not s.isascii() for s in vocab.tolist())


def test_ids_longer_than_a_key_move_the_column_to_the_dict():
    long_id = "L" * (MAX_TOKEN_BYTES + 1)
    blocks = [["a", "b", "a"], ["c", long_id, "a", "é" * 40], ["b", long_id, "d"]]
    fast, *_ = coded_both_ways(blocks)
    assert fast._dict is not None
    # Exactly at the limit still gets a key (with a multi-byte character ending at the limit).
    fast, *_ = coded_both_ways([["x" * MAX_TOKEN_BYTES, "é" * (MAX_TOKEN_BYTES // 2), "x"]])
    assert fast._dict is None


def test_nul_characters_and_trailing_nuls_match_the_dict():
    coded_both_ways([["a", "a\x00", "\x00", "a\x00b", "a"], ["a\x00", "b"]])


def test_a_shared_hash_is_caught_and_the_dict_takes_over(monkeypatch):
    # Every key hashes alike: the byte comparison must notice, whatever the width.
    monkeypatch.setattr(encoding, "_hashes", lambda words: np.zeros(len(words), dtype=np.uint64))
    fast, *_ = coded_both_ways([["abcdefghij", "abcdefghij"], ["abcdefghij", "klmnopqrstu", "abcdefghij"]])
    assert fast._dict is not None
    fast, *_ = coded_both_ways([["a", "b", "a"]])
    assert fast._dict is not None


def test_a_separator_count_that_does_not_match_is_refused():
    codes = TokenCodes()
    assert codes.encode(b"a\x1fb", SEP, 3) is None
    assert codes.encode(b"a\x1fb", SEP, 2).tolist() == [0, 1]
    assert codes.encode(b"", SEP, 0).tolist() == []
    assert len(codes) == 2


# ----------------------------------------------------------------- the store read
def fill(store: Store, users: list[str], items: list[str]) -> None:
    store.create_dataset_group(GROUP)
    store.create_dataset_group("other")
    rng = np.random.default_rng(7)
    events, others = [], []
    for k in range(240):
        user, item = users[int(rng.integers(0, len(users)))], items[int(rng.integers(0, len(items)))]
        kind = ("view", "purchase", "impression")[k % 3]
        stamp = 1_700_000_000 + int(rng.integers(0, 50))
        events.append(Interaction(user, item, kind, float(stamp), session_id=f"s{k % 4}" if k % 5 else None))
        if 40 <= k < 120:  # another group's rows: blocks of ours in between hold nothing
            others.append(Interaction("x", "y", "view", float(stamp)))
    store.ingest(GROUP, events[:40])
    store.ingest("other", others)
    store.ingest(GROUP, events[40:])


ODD_USERS = ["u1", "ü2", "用户三", "u" * 70, "", "u1x", "🙂"]
ODD_ITEMS = ["i1", "i2", "ítem", "i" * 63, "i" * 64, "long-" + "é" * 40, "i3"]


@pytest.mark.parametrize("block_ids", [1_000_000, 50, 7], ids=["one-block", "some-blocks", "many-blocks"])
@pytest.mark.parametrize("ids", ["short", "odd"])
def test_the_sqlite_read_matches_plain_rows(sqlite_store, monkeypatch, block_ids, ids):
    monkeypatch.setattr(storage_columns, "SQLITE_BLOCK_IDS", block_ids)
    users, items = (["u1", "u2", "u3"], ["i1", "i2", "i3", "i4"]) if ids == "short" else (ODD_USERS, ODD_ITEMS)
    fill(sqlite_store, users, items)
    group_id = sqlite_store.get_dataset_group(GROUP).id
    fast = storage_columns.read_sqlite(sqlite_store.engine, group_id, ("impression",), 0)
    assert fast is not None
    plain = storage_columns.read_rows(sqlite_store.engine, group_id, ("impression",), 0)
    for name in ("ids", "event_values", "timestamps"):
        assert np.array_equal(getattr(fast, name), getattr(plain, name), equal_nan=True), name
    for name in ("user", "item", "type", "session"):
        vocab, codes = getattr(fast, f"{name}_vocab"), getattr(fast, f"{name}_codes")

        def decoded(columns, name=name):
            vocab = [*getattr(columns, f"{name}_vocab").tolist(), None]
            return [vocab[c] for c in getattr(columns, f"{name}_codes").tolist()]

        assert decoded(fast) == decoded(plain), name
        # Numbered first come, first numbered in id order (plain rows come in the database's order).
        used, first = np.unique(codes[codes >= 0], return_index=True)
        assert used.tolist() == list(range(len(vocab))) and np.all(np.diff(first) > 0), name
    assert_same(load_training_data(sqlite_store, GROUP), reference(sqlite_store))


def test_an_empty_group_and_rows_above_the_last_id_read_empty(sqlite_store):
    sqlite_store.create_dataset_group(GROUP)
    group_id = sqlite_store.get_dataset_group(GROUP).id
    assert len(storage_columns.read_sqlite(sqlite_store.engine, group_id, ("impression",), 0)) == 0
    fill_group = [Interaction("u", "i", "view", 1_700_000_000.0)]
    sqlite_store.ingest(GROUP, fill_group)
    top = storage_columns.read_sqlite(sqlite_store.engine, group_id, ("impression",), 0).ids.max()
    assert len(storage_columns.read_sqlite(sqlite_store.engine, group_id, ("impression",), int(top))) == 0


def test_a_column_filled_past_its_room_grows_and_keeps_every_row():
    column = storage_columns._Filled(np.dtype(np.int64), 3)
    blocks = [np.arange(2), np.arange(2, 7), np.arange(7, 8), np.arange(8, 30)]
    for block in blocks:
        column.add(block)
    (filled,) = column.filled()
    assert filled.tolist() == list(range(30))


def test_a_consuming_reorder_keeps_one_valued_columns_and_reorders_the_rest():
    from engine.storage.columns import InteractionColumns

    vocab = np.array(["a", "b"])
    n = 6
    zeros = np.array([0.0, -0.0, 0.0, 0.0, 0.0, 0.0])  # equal as numbers, not as bits: reordered
    columns = InteractionColumns(
        np.arange(1, n + 1), vocab, np.array([0, 1, 0, 1, 0, 1], dtype=np.int32), vocab,
        np.zeros(n, dtype=np.int32), vocab, np.zeros(n, dtype=np.int32), np.full(n, np.nan),
        np.array([5.0, 4, 3, 2, 1, 0]), vocab, zeros.astype(np.int32) - 1,
    )  # fmt: skip
    columns.event_values = zeros.copy()
    expected = columns.by_time()
    consumed = columns.by_time(consume=True)
    for name in ("ids", "user_codes", "item_codes", "type_codes", "event_values", "timestamps", "session_codes"):
        assert getattr(consumed, name).tobytes() == getattr(expected, name).tobytes(), name
    assert np.signbit(consumed.event_values).tolist() == [False, False, False, False, True, False]
    nan_values = InteractionColumns(
        np.arange(1, 4), vocab, np.zeros(3, dtype=np.int32), vocab, np.zeros(3, dtype=np.int32), vocab,
        np.zeros(3, dtype=np.int32), np.full(3, np.nan), np.array([3.0, 2, 1]), vocab, np.full(3, -1, dtype=np.int32),
    ).by_time(consume=True)  # fmt: skip
    assert np.isnan(nan_values.event_values).all() and nan_values.ids.tolist() == [3, 2, 1]


def test_a_utf16_database_is_read_from_plain_rows(tmp_path):
    import sqlite3

    path = tmp_path / "utf16.db"
    with sqlite3.connect(path) as db:  # the encoding is fixed by the first table made
        db.execute("PRAGMA encoding = 'UTF-16le'")
        db.execute("CREATE TABLE first (x)")
    store = Store(f"sqlite:///{path}")
    try:
        fill(store, ["u1", "ü2", "u3"], ["i1", "ítem"])
        group_id = store.get_dataset_group(GROUP).id
        assert storage_columns.read_sqlite(store.engine, group_id, ("impression",), 0) is None
        assert_same(load_training_data(store, GROUP), reference(store))
    finally:
        store.close()
