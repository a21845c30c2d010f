"""The catalog training hands to recipes (engine.recipes.catalog): ids at once, entries when asked."""

import pytest

from engine.recipes.catalog import Catalog, all_entries, subset
from engine.records import Item

ENTRIES = {f"i{n}": Item(f"i{n}", {"CATEGORY": f"c{n % 3}"}) for n in range(10)}


class Source:
    """Loaders that count what they are asked."""

    def __init__(self, entries=ENTRIES):
        self.entries = dict(entries)
        self.whole = 0
        self.some: list[list[str]] = []

    def load_all(self):
        self.whole += 1
        return dict(self.entries)

    def load_some(self, ids):
        self.some.append(list(ids))
        return {i: self.entries[i] for i in ids if i in self.entries}


def test_ids_are_known_without_reading_any_entry():
    source = Source()
    catalog = Catalog(list(ENTRIES), source.load_all, source.load_some)
    assert list(catalog) == list(ENTRIES) and len(catalog) == 10 and "i3" in catalog and "nope" not in catalog
    assert source.whole == 0 and not catalog.loaded


def test_a_subset_reads_only_its_entries_and_an_entry_reads_them_all_once():
    source = Source()
    catalog = Catalog(list(ENTRIES), source.load_all, source.load_some)
    assert subset(catalog, ["i1", "i2", "unknown", "i1"]) == {"i1": ENTRIES["i1"], "i2": ENTRIES["i2"]}
    assert source.some == [["i1", "i2"]] and source.whole == 0
    assert catalog["i4"] == ENTRIES["i4"] and catalog.get("i5") == ENTRIES["i5"] and catalog.get("x") is None
    assert source.whole == 1 and catalog.loaded
    assert subset(catalog, ["i6"]) == {"i6": ENTRIES["i6"]} and source.some == [["i1", "i2"]]  # from memory now
    assert dict(catalog) == ENTRIES and source.whole == 1
    with pytest.raises(KeyError):
        catalog["unknown"]


def test_an_item_gone_before_its_entries_were_read_is_absent_from_then_on():
    source = Source()
    catalog = Catalog(list(ENTRIES), source.load_all, source.load_some)
    del source.entries["i7"]
    assert "i7" in catalog  # only the ids are known yet
    assert catalog.get("i7") is None and "i7" not in catalog and len(catalog) == 9 and "i7" not in list(catalog)


def test_entries_are_the_plain_dict_read_once_and_errors_reach_the_reader():
    source = Source()
    catalog = Catalog(list(ENTRIES), source.load_all, source.load_some)
    assert catalog.entries() == ENTRIES and type(catalog.entries()) is dict and source.whole == 1

    def broken():
        raise RuntimeError("database gone")

    failing = Catalog(["a"], broken)
    with pytest.raises(RuntimeError, match="database gone"):
        failing["a"]


def test_plain_mappings_work_with_subset_too():
    assert subset(ENTRIES, ["i1", "x"]) == {"i1": ENTRIES["i1"]}


def test_all_entries_is_a_catalogs_plain_dict_or_the_mapping_itself():
    source = Source()
    catalog = Catalog(list(ENTRIES), source.load_all, source.load_some)
    assert type(all_entries(catalog)) is dict and all_entries(catalog) == ENTRIES and source.whole == 1
    plain = dict(ENTRIES)
    assert all_entries(plain) is plain
