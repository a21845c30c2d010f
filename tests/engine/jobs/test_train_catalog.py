"""The catalog a FULL training hands its recipe: ids at once, entries read when the recipe asks."""

from __future__ import annotations

import numpy as np

from engine.jobs.train import train
from engine.recipes import recipe_class
from engine.records import Interaction, Item
from engine.storage import Store

GROUP = "shop"


def fill(store: Store) -> None:
    """Shoppers on items 0-29; item 30 ("boots", like every third item) has no interactions."""
    store.create_dataset_group(GROUP)
    kinds = ("boots", "hats", "socks")
    catalog = [Item(f"i{n}", {"CATEGORY_L1": kinds[n % 3]}) for n in range(31)]
    rng = np.random.default_rng(4)
    events = [
        Interaction(f"u{u}", f"i{int(rng.integers(0, 30))}", "view", 1_700_000_000.0 + 60 * k)
        for u in range(40)
        for k in range(8)
    ]
    store.ingest(GROUP, [*catalog, *events])


def whole_reads(store: Store, monkeypatch) -> list[str]:
    """The name of the thread of each whole-catalog read."""
    import threading

    calls: list[str] = []
    original = store.items

    def spy(group, item_ids=None):
        if item_ids is None:
            calls.append(threading.current_thread().name)
        return original(group, item_ids)

    monkeypatch.setattr(store, "items", spy)
    return calls


def test_sims_full_training_never_reads_the_catalogs_entries(store, tmp_path, monkeypatch):
    fill(store)
    reads = whole_reads(store, monkeypatch)
    version = train(store, tmp_path / "art", dataset_group=GROUP, recipe="sims", solution="s", metrics=False)
    assert reads == []
    model = recipe_class("sims").load(version.artifact_path)
    assert "i30" in model.item_ids.tolist()  # every catalog id is in the vocabulary


def test_user_personalization_full_reads_the_entries_once_and_places_the_cold_item(store, tmp_path, monkeypatch):
    fill(store)
    reads = whole_reads(store, monkeypatch)
    version = train(
        store, tmp_path / "art", dataset_group=GROUP, recipe="user-personalization", solution="up", metrics=False
    )
    assert len(reads) == 1 and reads[0].startswith("features")  # beside the fit, not during the read
    model = recipe_class("user-personalization").load(version.artifact_path)
    cold = model.item_ids.tolist().index("i30")
    assert model.item_features[cold].nnz > 0  # its metadata reached the features
    neighbours = model.cold_neighbours[cold].indices
    assert len(neighbours) and all(int(model.item_ids[i][1:]) % 3 == 0 for i in neighbours)  # other boots
